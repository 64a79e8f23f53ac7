/* Helpers for kumactl's unit tests (see helpers.h). */
#define _GNU_SOURCE
#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "core/util.h"

void capture_open(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    ASSERT(c->f != NULL);
}

const char *capture_text(struct capture *c)
{
    fflush(c->f);
    return c->buf ? c->buf : "";
}

void capture_close(struct capture *c)
{
    if (c->f)
        fclose(c->f);
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

char *testdata_path(const char *name)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    return xasprintf("%.*s/testdata/%s", slash ? (int)(slash - file) : 1, slash ? file : ".", name);
}

char *testdata_read(const char *name)
{
    char *p = testdata_path(name);
    struct err e;
    size_t len;
    char *s = read_file(p, 1 << 24, &len, &e);
    if (!s)
        TEST_FAIL_("cannot read %s: %s", p, e.msg);
    free(p);
    return s;
}

json_t *testdata_json(const char *name)
{
    char *s = testdata_read(name);
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    if (!j)
        TEST_FAIL_("%s: %s", name, je.text);
    free(s);
    return j;
}

void assert_golden(const char *name, const char *got)
{
    char *p = testdata_path(name);
    if (getenv("UPDATE_GOLDEN")) {
        struct err e;
        if (write_file_atomic(p, got, strlen(got), 0644, &e) < 0)
            TEST_FAIL_("cannot write %s: %s", p, e.msg);
        free(p);
        return;
    }
    struct err e;
    size_t len;
    char *want = read_file(p, 1 << 24, &len, &e);
    if (!want)
        TEST_FAIL_("golden %s missing (run with UPDATE_GOLDEN=1): %s", p, e.msg);
    if (strcmp(want, got) != 0)
        TEST_FAIL_("output differs from %s:\n--- got ---\n%s--- expected ---\n%s", name, got, want);
    free(want);
    free(p);
}

/* --- fake server --- */

static pid_t server_pid;
static char server_url[64];
static char server_log_path[300];

static void serve_one(int fd, const struct fake_route *routes, size_t n, FILE *log)
{
    struct buf req;
    char tmp[4096];
    buf_init(&req, 1 << 20);
    const char *hdr_end = NULL;
    while (!hdr_end) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r <= 0)
            goto out;
        if (buf_append(&req, tmp, (size_t)r) < 0)
            goto out;
        hdr_end = strstr(buf_str(&req), "\r\n\r\n");
    }
    size_t hlen = (size_t)(hdr_end - req.data) + 4;
    size_t clen = 0;
    const char *cl = strcasestr(req.data, "\r\nContent-Length:");
    if (cl && cl < hdr_end)
        clen = (size_t)strtoul(cl + 17, NULL, 10);
    while (req.len < hlen + clen) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r <= 0 || buf_append(&req, tmp, (size_t)r) < 0)
            break;
    }
    char method[16] = "", target[1024] = "";
    sscanf(req.data, "%15s %1023s", method, target);
    char *line = xasprintf("%s %s", method, target);
    fprintf(log, "%s\n", line);
    if (clen)
        fprintf(log, "%.*s\n", (int)clen, req.data + hlen);
    fflush(log);
    int status = 404;
    const char *body = "{}";
    for (size_t i = 0; i < n; i++)
        if (strcmp(routes[i].request, line) == 0) {
            status = routes[i].status;
            body = routes[i].body;
            break;
        }
    free(line);
    char *head = xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                           status, strlen(body));
    if (write(fd, head, strlen(head)) < 0 || write(fd, body, strlen(body)) < 0) {
        /* the client may have given up; nothing to do */
    }
    free(head);
out:
    buf_free(&req);
}

const char *fake_server_start(const struct fake_route *routes, size_t nroutes, int max_requests)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    ASSERT(listen(fd, 16) == 0);
    socklen_t sl = sizeof(sa);
    ASSERT(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    snprintf(server_url, sizeof(server_url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    snprintf(server_log_path, sizeof(server_log_path), "%s/server.log", test_tmpdir());
    fflush(NULL);
    server_pid = fork();
    ASSERT(server_pid >= 0);
    if (server_pid == 0) {
        FILE *log = fopen(server_log_path, "w");
        for (int i = 0; i < max_requests && log; i++) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                break;
            serve_one(c, routes, nroutes, log);
            close(c);
        }
        if (log)
            fclose(log);
        _exit(0);
    }
    close(fd);
    return server_url;
}

char *fake_server_log(void)
{
    if (server_pid > 0) {
        int st;
        /* The server may still wait for requests that never come. */
        for (int i = 0; i < 50 && waitpid(server_pid, &st, WNOHANG) == 0; i++)
            usleep(10000);
        kill(server_pid, SIGKILL);
        waitpid(server_pid, &st, 0);
        server_pid = 0;
    }
    struct err e;
    size_t len;
    char *s = read_file(server_log_path, 1 << 24, &len, &e);
    return s ? s : xstrdup("");
}

/* --- ctl --- */

static const struct flag_def common_flags[] = {
    {"mesh", 'm', FLAG_STRING, "default", "", 0},
    {"output", 'o', FLAG_STRING, "table", "", 0},
    {"size", 0, FLAG_INT, "0", "", 0},
    {"offset", 0, FLAG_STRING, "", "", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

void test_ctl_init(struct ctl *c, struct capture *out, struct capture *err, const char *url)
{
    capture_open(out);
    capture_open(err);
    ctl_init(c, out->f, err->f, stdin);
    ctl_config_default(&c->cfg);
    free(c->cfg.cps[0].url);
    c->cfg.cps[0].url = xstrdup(url ? url : "http://127.0.0.1:1");
    c->timeout_ms = 5000;
    ASSERT(ctl_time_parse("2024-01-02T03:04:05Z", &c->now) == 0);
    /* Commands that save the configuration write it into the test's dir. */
    static char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/kumactl-config", test_tmpdir());
    c->config_file = cfg;
}

void test_ctl_args(struct ctl *c, struct args *a, const struct flag_def *flags, int argc,
                   char **argv)
{
    /* args keeps a pointer to the tables for defaults: they must outlive it. */
    static const struct flag_def *tables[2];
    tables[0] = flags ? flags : common_flags;
    tables[1] = common_flags;
    char *msg = NULL;
    if (args_parse(tables, 2, argc, argv, a, &msg) < 0)
        TEST_FAIL_("args: %s", msg);
    c->args = a;
}
