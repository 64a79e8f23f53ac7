/*
 * Shared helpers for the ca module's tests: temp files and the openssl CLI,
 * used as an independent check of what the module writes.
 */
#ifndef TEST_CA_HELPERS_H
#define TEST_CA_HELPERS_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../test.h"
#include "core/util.h"

/* Writes content to <tmpdir>/name and returns the path (static storage per call site is not
 * needed: the caller frees). */
static __attribute__((unused)) char *tmp_write(const char *name, const char *content)
{
    char *path = xasprintf("%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (!f)
        TEST_FAIL_("cannot write %s", path);
    fputs(content, f);
    fclose(f);
    return path;
}

/* Runs a shell command; returns its stdout+stderr; *status gets the exit code. */
static __attribute__((unused, format(printf, 2, 3))) char *sh(int *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    char *full = xasprintf("(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        TEST_FAIL_("popen failed: %s", cmd);
    struct buf b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        buf_append(&b, chunk, n);
    int st = pclose(p);
    if (status)
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char *out = xstrdup(buf_str(&b));
    buf_free(&b);
    free(full);
    free(cmd);
    return out;
}

/* `openssl x509 -noout -text` of a PEM certificate. */
static __attribute__((unused)) char *x509_text(const char *pem)
{
    char *path = tmp_write("x509-text.pem", pem);
    int st = 0;
    char *out = sh(&st, "openssl x509 -noout -text -in '%s'", path);
    if (st != 0)
        TEST_FAIL_("openssl x509 failed: %s", out);
    free(path);
    return out;
}

/* `openssl verify -CAfile ca leaf`; returns the exit status, output in *out if not NULL. */
static __attribute__((unused)) int ossl_verify(const char *ca_pem, const char *leaf_pem, char **out)
{
    char *ca = tmp_write("verify-ca.pem", ca_pem);
    char *leaf = tmp_write("verify-leaf.pem", leaf_pem);
    int st = 0;
    char *o = sh(&st, "openssl verify -CAfile '%s' '%s'", ca, leaf);
    if (out)
        *out = o;
    else
        free(o);
    free(ca);
    free(leaf);
    return st;
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define CA_LEAK_CHECK() ASSERT_INT_EQ(__lsan_do_recoverable_leak_check(), 0)
#else
#define CA_LEAK_CHECK() ((void)0)
#endif

/* TEST with a leak check after the body: the runner ends each test with _exit(),
 * which skips LeakSanitizer's own check at exit. */
#define CA_TEST(name)                                                                              \
    static void ca_body_##name(void);                                                              \
    TEST(name)                                                                                     \
    {                                                                                              \
        ca_body_##name();                                                                          \
        CA_LEAK_CHECK();                                                                           \
    }                                                                                              \
    static void ca_body_##name(void)

/* Joined violations of ve ("f: m; f: m"); freed by the caller. */
#define VERR_STR(ve) verr_join(ve)

#endif
