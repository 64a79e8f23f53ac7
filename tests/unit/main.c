/*
 * The unit-test runner: runs every registered test (or those whose name
 * contains argv[1]) in a forked child with a 60 s timeout and its own temp
 * directory, and ends with the line "N passed, N failed".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

struct test_entry {
    const char *name, *file;
    test_fn *fn;
};

static struct test_entry tests[4096];
static size_t ntests;
static char tmpdir[256];

void test_register(const char *name, const char *file, test_fn *fn)
{
    if (ntests < sizeof(tests) / sizeof(tests[0]))
        tests[ntests++] = (struct test_entry){name, file, fn};
}

const char *test_tmpdir(void)
{
    return tmpdir;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct test_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

static int run_one(const struct test_entry *t)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/unit-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 0;
    }
    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s.log", tmpdir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* The test's own output is shown only if it fails. */
        FILE *log = fopen(logpath, "w");
        if (log) {
            dup2(fileno(log), STDERR_FILENO);
            dup2(fileno(log), STDOUT_FILENO);
        }
        alarm(60);
        t->fn();
        /* exit, not _exit: LeakSanitizer checks for leaks at exit. */
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        FILE *log = fopen(logpath, "r");
        char line[4096];
        while (log && fgets(line, sizeof(line), log))
            fputs(line, stderr);
        if (log)
            fclose(log);
    }
    unlink(logpath);
    if (ok)
        return 1;
    if (WIFSIGNALED(status))
        fprintf(stderr, "  killed by signal %d%s\n", WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    size_t passed = 0, failed = 0;

    qsort(tests, ntests, sizeof(tests[0]), cmp_entry);
    for (size_t i = 0; i < ntests; i++) {
        if (filter && !strstr(tests[i].name, filter) && !strstr(tests[i].file, filter))
            continue;
        if (run_one(&tests[i])) {
            passed++;
            printf("ok   %s (%s)\n", tests[i].name, tests[i].file);
        } else {
            failed++;
            printf("FAIL %s (%s)\n", tests[i].name, tests[i].file);
        }
    }
    printf("unit: %zu passed, %zu failed\n", passed, failed);
    return failed ? 1 : 0;
}
