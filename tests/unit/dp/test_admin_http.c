/*
 * The admin endpoint's HTTP server (src/dp/admin.c) over real sockets:
 * keep-alive and pipelining, HEAD, methods, escaped paths and arguments, and
 * what a hostile or broken local client gets: an oversized head (431) or
 * body (413), garbage (400), a slow client (408, then closed), an idle
 * keep-alive connection (closed), and more clients at once than the
 * connection limit (all served).
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/admin.h"
#include "dp/engine.h"
#include "dp_helpers.h"
#include "test.h"

struct fx {
    struct dp_engine *eng;
    struct dp_admin *adm;
    int port;
};

static void up(struct fx *f, int timeout_ms)
{
    signal(SIGPIPE, SIG_IGN);
    struct dp_engine_opts o = {.workers = 1};
    struct err e = {{0}};
    ASSERT(dp_engine_new(&o, &f->eng, &e) == 0);
    ASSERT(dp_admin_start(f->eng, 0, &f->adm, &e) == 0);
    if (timeout_ms)
        dp_admin__set_timeout_ms(f->adm, timeout_ms);
    f->port = dp_admin_port(f->adm);
}

static void down(struct fx *f)
{
    dp_admin_stop(f->adm);
    dp_engine_free(f->eng);
}

/* Sends req on a new connection and reads until the server closes. */
static char *roundtrip(int port, const char *req, size_t len)
{
    int fd = client_connect(port);
    if (fd < 0)
        return xstrdup("");
    write_full(fd, req, len);
    static char in[1 << 16];
    size_t n = read_full(fd, in, sizeof(in) - 1);
    in[n] = '\0';
    close(fd);
    return xstrdup(in);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

TEST(dp_admin_http_keepalive_pipelining_head)
{
    struct fx f;
    up(&f, 0);
    /* Three requests in one write: answered in order on one connection,
     * HEAD without a body, and the last one closes it. */
    const char req[] = "GET /ready HTTP/1.1\r\nHost: a\r\n\r\n"
                       "HEAD /ready HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    char *r = roundtrip(f.port, req, sizeof(req) - 1);
    ASSERT_INT_EQ(count(r, "HTTP/1.1 "), 3);
    const char *first = strstr(r, "HTTP/1.1 503 Service Unavailable\r\n");
    ASSERT(first == r);
    ASSERT_STR_CONTAINS(r, "Content-Type: text/plain; charset=UTF-8\r\n");
    ASSERT_STR_CONTAINS(r, "Content-Length: 17\r\n");
    ASSERT_STR_CONTAINS(r, "\r\n\r\nPRE_INITIALIZING\nHTTP/1.1 503 ");
    /* The HEAD answer carries the length and no body: the 404 follows at once. */
    ASSERT_STR_CONTAINS(r, "\r\n\r\nHTTP/1.1 404 Not Found\r\n");
    ASSERT_STR_CONTAINS(r, "Connection: close\r\n");
    const char *tail = strstr(r, "HTTP/1.1 404");
    ASSERT(tail != NULL);
    ASSERT(str_has_suffix(tail, "\r\n\r\ninvalid path\n"));
    free(r);

    /* HTTP/1.0 closes by default; keeps the connection when asked, and says so. */
    const char r10[] = "GET /ready HTTP/1.0\r\n\r\n";
    r = roundtrip(f.port, r10, sizeof(r10) - 1);
    ASSERT_STR_CONTAINS(r, "Connection: close\r\n");
    ASSERT(str_has_suffix(r, "PRE_INITIALIZING\n"));
    free(r);
    const char r10ka[] = "GET /ready HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                         "GET /clusters HTTP/1.0\r\n\r\n";
    r = roundtrip(f.port, r10ka, sizeof(r10ka) - 1);
    ASSERT_INT_EQ(count(r, "HTTP/1.1 "), 2);
    const char *second = strstr(r + 1, "HTTP/1.1 200 OK");
    ASSERT(second != NULL);
    const char *ka = strstr(r, "Connection: keep-alive\r\n");
    ASSERT(ka != NULL && ka < second);
    ASSERT_STR_CONTAINS(second, "Connection: close\r\n");
    free(r);
    down(&f);
}

TEST(dp_admin_http_methods_and_escapes)
{
    struct fx f;
    up(&f, 0);
    /* Only GET and HEAD; the connection stays usable after a 405. */
    const char req[] = "POST /ready HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                       "DELETE /stats HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /st%61ts?filter=%5Eserver%5C.st%61te%24 HTTP/1.1\r\nHost: a\r\n"
                       "Connection: close\r\n\r\n";
    char *r = roundtrip(f.port, req, sizeof(req) - 1);
    ASSERT_INT_EQ(count(r, "HTTP/1.1 405 Method Not Allowed\r\n"), 2);
    ASSERT_INT_EQ(count(r, "\r\n\r\nmethod not allowed\n"), 2);
    /* %XX in the path and in arguments is decoded, as libmicrohttpd did. */
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 200 OK\r\n");
    ASSERT(str_has_suffix(r, "\r\n\r\nserver.state: 2\n"));
    free(r);
    /* '+' is a space in arguments; "format" without a value is the text default. */
    const char r2[] = "GET /stats?format&filter=server%5C.live|x+y HTTP/1.1\r\nHost: a\r\n"
                      "Connection: close\r\n\r\n";
    r = roundtrip(f.port, r2, sizeof(r2) - 1);
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 200 OK\r\n");
    ASSERT(str_has_suffix(r, "\r\n\r\nserver.live: 1\n"));
    free(r);
    down(&f);
}

TEST(dp_admin_http_hostile_requests)
{
    struct fx f;
    up(&f, 0);
    /* A head over the limit: 431 with a reason, then the connection closes. */
    size_t big = DP_ADMIN_MAX_HEAD + 4096;
    char *req = xmalloc(big + 64);
    int n = snprintf(req, 64, "GET /ready HTTP/1.1\r\nX-Pad: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    char *r = roundtrip(f.port, req, (size_t)n + big + 4);
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    ASSERT_STR_CONTAINS(r, "Connection: close\r\n");
    ASSERT_STR_CONTAINS(r, "request header fields too large (the limit is 16384 bytes)\n");
    free(r);
    /* A body over the limit: 413. */
    n = snprintf(req, 128, "GET /ready HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n",
                 DP_ADMIN_MAX_BODY * 2);
    req = realloc(req, (size_t)n + DP_ADMIN_MAX_BODY * 2);
    memset(req + n, 'b', DP_ADMIN_MAX_BODY * 2);
    r = roundtrip(f.port, req, (size_t)n + DP_ADMIN_MAX_BODY * 2);
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 413 Content Too Large\r\n");
    ASSERT_STR_CONTAINS(r, "request body too large");
    free(r);
    free(req);
    /* Garbage (a TLS ClientHello's first bytes, binary noise): 400 and close. */
    const char junk[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\xff\r\n\r\n";
    r = roundtrip(f.port, junk, sizeof(junk) - 1);
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 400 Bad Request\r\n");
    ASSERT_STR_CONTAINS(r, "bad request: malformed HTTP/1.1\n");
    free(r);
    const char badver[] = "GET /ready HTTP/9.9x\r\n\r\n";
    r = roundtrip(f.port, badver, sizeof(badver) - 1);
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 400 Bad Request\r\n");
    free(r);
    /* Still serving. */
    r = http_get(f.port, "/ready");
    ASSERT_STR_CONTAINS(r, "PRE_INITIALIZING");
    free(r);
    down(&f);
}

TEST(dp_admin_http_slow_and_idle_clients)
{
    struct fx f;
    up(&f, 400);
    /* Slowloris: one byte every 50 ms never completes a head; the request
     * gets 408 and the connection closes at the deadline, not later. */
    int fd = client_connect(f.port);
    ASSERT(fd >= 0);
    const char *slow =
        "GET /ready HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int64_t t0 = mono_ms();
    size_t sent = 0;
    for (; slow[sent] && mono_ms() - t0 < 2000; sent++) {
        if (write(fd, slow + sent, 1) != 1)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0)
            break; /* the server answered (and closed) */
    }
    char buf[512];
    size_t n = read_full(fd, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    int64_t took = mono_ms() - t0;
    close(fd);
    ASSERT_STR_CONTAINS(buf, "HTTP/1.1 408 Request Timeout\r\n");
    ASSERT(took >= 350 && took < 3000);
    ASSERT(sent < strlen(slow));

    /* Idle keep-alive: answered, then closed after the timeout without a 408. */
    fd = client_connect(f.port);
    const char req[] = "GET /ready HTTP/1.1\r\nHost: a\r\n\r\n";
    write_full(fd, req, sizeof(req) - 1);
    t0 = mono_ms();
    static char in[4096];
    n = read_full(fd, in, sizeof(in) - 1);
    in[n] = '\0';
    took = mono_ms() - t0;
    close(fd);
    ASSERT_INT_EQ(count(in, "HTTP/1.1 "), 1);
    ASSERT_STR_CONTAINS(in, "PRE_INITIALIZING\n");
    ASSERT(took >= 350 && took < 3000);

    /* A client that connects and sends nothing is closed too. */
    fd = client_connect(f.port);
    t0 = mono_ms();
    n = read_full(fd, in, sizeof(in));
    took = mono_ms() - t0;
    close(fd);
    ASSERT_INT_EQ((long long)n, 0);
    ASSERT(took >= 350 && took < 3000);
    down(&f);
}

TEST(dp_admin_http_more_clients_than_the_limit)
{
    struct fx f;
    up(&f, 0);
    /* 1.5× the connection limit, all connected and all asking at once: the
     * ones past the limit wait in the backlog and are served as others close. */
    enum { N = DP_ADMIN_MAX_CONNS + DP_ADMIN_MAX_CONNS / 2 };
    int fds[N];
    const char req[] = "GET /stats?filter=server%5C.state HTTP/1.1\r\nHost: a\r\n"
                       "Connection: close\r\n\r\n";
    for (int i = 0; i < N; i++) {
        fds[i] = client_connect(f.port);
        ASSERT(fds[i] >= 0);
        ASSERT(write_full(fds[i], req, sizeof(req) - 1) == 0);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        char in[1024];
        size_t n = read_full(fds[i], in, sizeof(in) - 1);
        in[n] = '\0';
        close(fds[i]);
        ok += strstr(in, "HTTP/1.1 200 OK\r\n") && str_has_suffix(in, "server.state: 2\n");
    }
    ASSERT_INT_EQ(ok, N);
    down(&f);
}
