/*
 * Proxy engine, HTTP connection manager: Envoy-like local replies (404 no
 * route, 503 no healthy upstream / connection failure / termination, 504
 * route timeout), connect retries per the route's retry policy, and
 * keep-alive after a local reply. In-process engine, real sockets, and a
 * minimal HTTP/1.1 backend thread.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/engine.h"
#include "dp_helpers.h"
#include "test.h"

/* --- a minimal HTTP backend ---------------------------------------------------------------- */

enum hb_mode {
    HB_OK,         /* answers "ok", keeps the connection */
    HB_SLOW,       /* answers after 1.5 s */
    HB_CLOSE,      /* closes on the first request, no answer */
    HB_IDLE_CLOSE, /* answers, closes after 200 ms without a request */
    HB_EOF_BODY    /* answers without a length, the body ends when it closes */
};

struct hb {
    int lfd, port;
    enum hb_mode mode;
    pthread_t th;
    atomic_int stop;
    atomic_long requests;
    atomic_int live; /* connection threads running */
    pthread_mutex_t mu;
    int fds[64]; /* their sockets, shut down by hb_stop */
};

static void *hb_conn(void *arg);

struct hb_conn_arg {
    struct hb *b;
    int fd;
};

static void *hb_main(void *arg)
{
    struct hb *b = arg;
    while (!atomic_load(&b->stop)) {
        int fd = accept(b->lfd, NULL, NULL);
        if (fd < 0)
            break;
        struct hb_conn_arg *a = xcalloc(1, sizeof(*a));
        a->b = b;
        a->fd = fd;
        pthread_mutex_lock(&b->mu);
        for (int i = 0; i < 64; i++)
            if (b->fds[i] < 0) {
                b->fds[i] = fd;
                break;
            }
        pthread_mutex_unlock(&b->mu);
        atomic_fetch_add(&b->live, 1);
        pthread_t t;
        pthread_create(&t, NULL, hb_conn, a);
        pthread_detach(t);
    }
    return NULL;
}

/* Answers each request head ("\r\n\r\n"; no bodies) with "ok". */
static void *hb_conn(void *arg)
{
    struct hb_conn_arg *a = arg;
    struct hb *b = a->b;
    int fd = a->fd;
    free(a);
    if (b->mode == HB_IDLE_CLOSE) {
        struct timeval tv = {0, 200 * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + have, sizeof(buf) - have - 1, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = 0;
        char *end;
        while ((end = strstr(buf, "\r\n\r\n"))) {
            atomic_fetch_add(&b->requests, 1);
            if (b->mode == HB_CLOSE)
                goto out;
            if (b->mode == HB_EOF_BODY) {
                const char *rs = "HTTP/1.1 200 OK\r\n\r\nuntil close";
                write_full(fd, rs, strlen(rs));
                goto out;
            }
            if (b->mode == HB_SLOW)
                usleep(1500 * 1000);
            const char *rs = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if (write_full(fd, rs, strlen(rs)) != 0)
                goto out;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, have - used + 1);
            have -= used;
        }
    }
out:
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < 64; i++)
        if (b->fds[i] == fd)
            b->fds[i] = -1;
    close(fd);
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_sub(&b->live, 1);
    return NULL;
}

static struct hb *hb_start(enum hb_mode mode)
{
    struct hb *b = xcalloc(1, sizeof(*b));
    b->mode = mode;
    pthread_mutex_init(&b->mu, NULL);
    for (int i = 0; i < 64; i++)
        b->fds[i] = -1;
    b->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(b->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(b->lfd, 64) != 0)
        TEST_FAIL_("hb bind");
    getsockname(b->lfd, (struct sockaddr *)&sa, &len);
    b->port = ntohs(sa.sin_port);
    pthread_create(&b->th, NULL, hb_main, b);
    return b;
}

static void hb_stop(struct hb *b)
{
    atomic_store(&b->stop, 1);
    shutdown(b->lfd, SHUT_RDWR);
    close(b->lfd);
    pthread_join(b->th, NULL);
    /* Connection threads use b: end them before it goes. */
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < 64; i++)
        if (b->fds[i] >= 0)
            shutdown(b->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < 500 && atomic_load(&b->live) > 0; i++)
        usleep(10 * 1000);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* --- engine set-up ------------------------------------------------------------------------- */

static struct dp_engine *engine(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct dp_engine_opts o = {.workers = 1};
    struct dp_engine *eng = NULL;
    struct err e = {{0}};
    if (dp_engine_new(&o, &eng, &e) != 0)
        TEST_FAIL_("dp_engine_new: %s", e.msg);
    return eng;
}

/* An HCM listener "web" with virtual host "only.example" → route "/" to
 * cluster "svc" (endpoints ports[0..n)). */
static struct dp_config *http_config(const int *ports, size_t n, struct dp_http_route **route)
{
    struct dp_config *c = dp_config_new("1");
    struct dp_listener *l = dp_config_add_listener(c, "web", "127.0.0.1", 0);
    l->hcm = xcalloc(1, sizeof(*l->hcm));
    l->hcm->stat_prefix = xstrdup("web");
    struct dp_http_vhost *vh = dp_http_add_vhost(&l->hcm->route_config, "only");
    dp_http_vhost_add_domain(vh, "only.example");
    struct dp_http_route *r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "svc");
    if (route)
        *route = r;
    struct dp_cluster *cl = dp_config_add_cluster(c, "svc");
    cl->connect_timeout_ms = 500;
    for (size_t i = 0; i < n; i++)
        dp_cla_add_endpoint(&cl->load_assignment, "127.0.0.1", (uint32_t)ports[i], 0);
    return c;
}

static int start(struct dp_engine *eng, struct dp_config *c)
{
    struct err e = {{0}};
    if (dp_engine_apply(eng, c, &e) != 0)
        TEST_FAIL_("dp_engine_apply: %s", e.msg);
    int p = dp_engine_listener_port(eng, "web");
    ASSERT(p > 0);
    return p;
}

/* Sends req in one write, then reads until the proxy closes (or 5 s). */
static char *roundtrip(int port, const char *req)
{
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(write_full(fd, req, strlen(req)), 0);
    char *buf = xcalloc(1, 65536);
    read_full(fd, buf, 65535);
    close(fd);
    return buf;
}

#define GET_ONLY       "GET /x HTTP/1.1\r\nHost: only.example\r\n\r\n"
#define GET_ONLY_CLOSE "GET /y HTTP/1.1\r\nHost: only.example\r\nConnection: close\r\n\r\n"

#define OK_REPLY "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

/* A client connection whose first (keep-alive) request was answered "ok". */
static int keep_alive_client(int port)
{
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    char buf[64] = {0};
    ASSERT_INT_EQ(write_full(fd, GET_ONLY, strlen(GET_ONLY)), 0);
    ASSERT_INT_EQ(read_full(fd, buf, strlen(OK_REPLY)), strlen(OK_REPLY));
    ASSERT_STR_EQ(buf, OK_REPLY);
    return fd;
}

/* Its last request (Connection: close), answered "ok"; closes fd. */
static void last_request_ok(int fd)
{
    char buf[256] = {0};
    ASSERT_INT_EQ(write_full(fd, GET_ONLY_CLOSE, strlen(GET_ONLY_CLOSE)), 0);
    ASSERT_INT_EQ(read_full(fd, buf, sizeof(buf) - 1), strlen(OK_REPLY));
    ASSERT_STR_EQ(buf, OK_REPLY);
    close(fd);
}

TEST(dp_http_404_then_keep_alive)
{
    struct hb *b = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    char *out = roundtrip(port, "GET /a HTTP/1.1\r\nHost: elsewhere\r\n\r\n" GET_ONLY_CLOSE);
    ASSERT_STR_EQ(out, "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ncontent-type: "
                       "text/plain\r\nserver: envoy\r\n\r\n" OK_REPLY);
    free(out);
    ASSERT_INT_EQ(stat_get(eng, "http.web.no_route"), 1);
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_rq_4xx"), 1);
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_rq_2xx"), 1);
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_cx_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_rq_200"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_rq_total"), 1);
    dp_engine_free(eng);
    hb_stop(b);
}

TEST(dp_http_503_no_healthy_upstream)
{
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(NULL, 0, NULL));
    char *out = roundtrip(port, GET_ONLY_CLOSE);
    ASSERT_STR_CONTAINS(out, "HTTP/1.1 503 Service Unavailable\r\n");
    ASSERT_STR_CONTAINS(out, "\r\n\r\nno healthy upstream");
    free(out);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_none_healthy"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_rq_503"), 1);
    dp_engine_free(eng);
}

TEST(dp_http_503_connect_failure_then_retry)
{
    struct dp_engine *eng = engine();
    int dead = closed_port();
    int port = start(eng, http_config(&dead, 1, NULL));
    char *out = roundtrip(port, GET_ONLY_CLOSE);
    ASSERT_STR_CONTAINS(out, "HTTP/1.1 503 Service Unavailable\r\n");
    ASSERT_STR_CONTAINS(out, "upstream connect error or disconnect/reset before headers. reset "
                             "reason: connection failure");
    free(out);
    /* With a retry policy on connect-failure, the next endpoint answers. */
    struct hb *b = hb_start(HB_OK);
    int ports[] = {dead, b->port};
    struct dp_http_route *r;
    struct dp_config *c = http_config(ports, 2, &r);
    r->retry_on = xstrdup("connect-failure");
    r->num_retries = 2;
    port = start(eng, c);
    usleep(100 * 1000); /* the worker picks the new snapshot up */
    for (int i = 0; i < 4; i++) {
        out = roundtrip(port, GET_ONLY_CLOSE);
        ASSERT_STR_EQ(out, OK_REPLY);
        free(out);
    }
    /* One retry: then the connection is reused from the pool. */
    ASSERT(stat_get(eng, "cluster.svc.upstream_rq_retry") >= 1);
    dp_engine_free(eng);
    hb_stop(b);
}

TEST(dp_http_504_route_timeout)
{
    struct hb *b = hb_start(HB_SLOW);
    struct dp_engine *eng = engine();
    struct dp_http_route *r;
    struct dp_config *c = http_config(&b->port, 1, &r);
    r->timeout_ms = 200;
    int port = start(eng, c);
    int64_t t0 = mono_ms();
    char *out = roundtrip(port, GET_ONLY_CLOSE);
    int64_t dt = mono_ms() - t0;
    ASSERT_STR_CONTAINS(out, "HTTP/1.1 504 Gateway Timeout\r\n");
    ASSERT_STR_CONTAINS(out, "\r\n\r\nupstream request timeout");
    free(out);
    ASSERT(dt >= 180 && dt < 1400);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_rq_timeout"), 1);
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_rq_5xx"), 1);
    dp_engine_free(eng);
    hb_stop(b);
}

TEST(dp_http_503_upstream_closes_before_response)
{
    struct hb *b = hb_start(HB_CLOSE);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    char *out = roundtrip(port, GET_ONLY_CLOSE);
    ASSERT_STR_CONTAINS(out, "HTTP/1.1 503 Service Unavailable\r\n");
    ASSERT_STR_CONTAINS(out, "reset reason: connection termination");
    free(out);
    dp_engine_free(eng);
    hb_stop(b);
}

/* A route's split (flattened by xds_map into a synthetic cluster whose
 * endpoints name their real clusters): each request is counted under the
 * real cluster of the host that served it, as Envoy counts under the
 * cluster the split picked; a request with no host at all under the first
 * cluster. The synthetic cluster shows nowhere in /stats. */
TEST(dp_http_split_counted_under_real_clusters)
{
    struct hb *b[2] = {hb_start(HB_OK), hb_start(HB_OK)};
    struct dp_engine *eng = engine();
    struct dp_http_route *r;
    struct dp_config *c = http_config(NULL, 0, &r);
    free(r->cluster);
    r->cluster = xstrdup("web:only:0:weighted");
    const char *real[2] = {"api-a", "api-b"};
    for (int i = 0; i < 2; i++)
        dp_cla_add_endpoint(&dp_config_add_cluster(c, real[i])->load_assignment, "127.0.0.1",
                            (uint32_t)b[i]->port, 0);
    struct dp_cluster *sp = dp_config_add_cluster(c, "web:only:0:weighted");
    free(sp->alt_stat_name);
    sp->alt_stat_name = xstrdup("api-a");
    sp->synthetic = 1;
    for (int i = 0; i < 2; i++)
        dp_cla_add_endpoint(&sp->load_assignment, "127.0.0.1", (uint32_t)b[i]->port, 1)
            ->stat_cluster = xstrdup(real[i]);
    int port = start(eng, c);
    /* Two keep-alive requests per client connection, from 6 clients. */
    for (int i = 0; i < 6; i++) {
        char *out = roundtrip(port, GET_ONLY GET_ONLY_CLOSE);
        ASSERT_STR_EQ(out, OK_REPLY OK_REPLY);
        free(out);
    }
    long served[2] = {atomic_load(&b[0]->requests), atomic_load(&b[1]->requests)};
    ASSERT_INT_EQ(served[0] + served[1], 12);
    /* Each request is balanced, keep-alive and pooled connections alike:
     * the 1:1 split holds exactly (smooth weighted round robin). */
    ASSERT_INT_EQ(served[0], 6);
    for (int i = 0; i < 2; i++) {
        char *n = xasprintf("cluster.%s.upstream_rq_total", real[i]);
        ASSERT_INT_EQ(stat_get(eng, n), served[i]);
        free(n);
        n = xasprintf("cluster.%s.upstream_rq_2xx", real[i]);
        ASSERT_INT_EQ(stat_get(eng, n), served[i]);
        free(n);
        n = xasprintf("cluster.%s.upstream_rq_completed", real[i]);
        ASSERT_INT_EQ(stat_get(eng, n), served[i]);
        free(n);
        n = xasprintf("cluster.%s.upstream_rq_active", real[i]);
        ASSERT_INT_EQ(stat_get(eng, n), 0);
        free(n);
        n = xasprintf("cluster.%s.upstream_cx_rx_bytes_total", real[i]);
        ASSERT(served[i] == 0 || stat_get(eng, n) > 0);
        free(n);
    }
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_cx_http1_total") +
                      stat_get(eng, "cluster.api-b.upstream_cx_http1_total"),
                  stat_get(eng, "cluster.api-a.upstream_cx_total") +
                      stat_get(eng, "cluster.api-b.upstream_cx_total"));
    struct buf out;
    buf_init(&out, 0);
    dp_engine_render_stats(eng, NULL, &out);
    ASSERT(strstr(buf_str(&out), "weighted") == NULL);
    buf_free(&out);

    /* No host: the 503 is counted under the first cluster of the split. */
    struct dp_config *c2 = http_config(NULL, 0, &r);
    free(r->cluster);
    r->cluster = xstrdup("web:only:0:weighted");
    dp_config_add_cluster(c2, "api-a");
    sp = dp_config_add_cluster(c2, "web:only:0:weighted");
    free(sp->alt_stat_name);
    sp->alt_stat_name = xstrdup("api-a");
    sp->synthetic = 1;
    port = start(eng, c2);
    usleep(100 * 1000); /* the worker picks the new snapshot up */
    char *o = roundtrip(port, GET_ONLY_CLOSE);
    ASSERT_STR_CONTAINS(o, "HTTP/1.1 503 Service Unavailable\r\n");
    free(o);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_cx_none_healthy"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_rq_503"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_rq_active"), 0);
    dp_engine_free(eng);
    hb_stop(b[0]);
    hb_stop(b[1]);
}

/* Many keep-alive requests on one client connection use one upstream
 * connection; a new client connection opens its own. */
TEST(dp_http_keep_alive_reuses_upstream)
{
    struct hb *b = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    char req[4096] = "";
    for (int i = 0; i < 20; i++)
        strcat(req, GET_ONLY);
    strcat(req, GET_ONLY_CLOSE);
    char *out = roundtrip(port, req);
    int n = 0;
    for (const char *p = out; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        n++;
    ASSERT_INT_EQ(n, 21);
    free(out);
    ASSERT_INT_EQ(atomic_load(&b->requests), 21);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_rq_total"), 21);
    dp_engine_free(eng);
    hb_stop(b);
}

/* envoy.filters.http.rbac, per request: ALLOW with no policies denies
 * (403, Envoy's body); a policy with `any` lets requests through. */
TEST(dp_http_rbac_per_request)
{
    struct hb *b = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    struct dp_config *c = http_config(&b->port, 1, NULL);
    struct dp_http_conn_manager *m = c->listeners[0].hcm;
    m->rbac = xcalloc(1, sizeof(*m->rbac));
    m->rbac->stat_prefix = xstrdup("http.web.");
    m->rbac->action = DP_RBAC_ALLOW;
    int port = start(eng, c);
    char *out = roundtrip(port, GET_ONLY GET_ONLY_CLOSE);
    ASSERT_STR_EQ(out, "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: "
                       "text/plain\r\nserver: envoy\r\n\r\nRBAC: access denied"
                       "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: "
                       "text/plain\r\nserver: envoy\r\nconnection: close\r\n\r\n"
                       "RBAC: access denied");
    free(out);
    ASSERT_INT_EQ(stat_get(eng, "http.web.rbac.denied"), 2);
    ASSERT_INT_EQ(atomic_load(&b->requests), 0);
    /* Prometheus: Envoy's tags, the prefix and the response code class. */
    struct buf pb;
    buf_init(&pb, 0);
    struct dp_stats_query q = {.format = DP_STATS_PROMETHEUS};
    dp_engine_render_stats(eng, &q, &pb);
    ASSERT_STR_CONTAINS(buf_str(&pb),
                        "envoy_http_rbac_denied{envoy_http_conn_manager_prefix=\"web\"} 2\n");
    ASSERT_STR_CONTAINS(buf_str(&pb), "envoy_http_downstream_rq_xx{envoy_response_code_class="
                                      "\"4\",envoy_http_conn_manager_prefix=\"web\"} 2\n");
    buf_free(&pb);

    c = http_config(&b->port, 1, NULL);
    m = c->listeners[0].hcm;
    m->rbac = xcalloc(1, sizeof(*m->rbac));
    m->rbac->stat_prefix = xstrdup("http.web.");
    m->rbac->action = DP_RBAC_ALLOW;
    dp_rbac_policy_add_any(dp_rbac_add_policy(m->rbac, "allow-all"));
    port = start(eng, c);
    usleep(100 * 1000); /* the worker picks the new snapshot up */
    out = roundtrip(port, GET_ONLY_CLOSE);
    ASSERT_STR_EQ(out, OK_REPLY);
    free(out);
    ASSERT_INT_EQ(stat_get(eng, "http.web.rbac.allowed"), 1);
    dp_engine_free(eng);
    hb_stop(b);
}

/* Requests on separate client connections share one upstream connection
 * through the worker's pool (one at a time: each client waits for its
 * reply, then closes). */
TEST(dp_http_pool_reuses_across_clients)
{
    struct hb *b = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    for (int i = 0; i < 10; i++) {
        char *out = roundtrip(port, GET_ONLY_CLOSE);
        ASSERT_STR_EQ(out, OK_REPLY);
        free(out);
    }
    ASSERT_INT_EQ(atomic_load(&b->requests), 10);
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_cx_total"), 10);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_rq_total"), 10);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_active"), 1); /* parked */
    dp_engine_free(eng);
    hb_stop(b);
}

/* A client told the connection closes after its response (Connection:
 * close) sends nothing more: the upstream connection goes back to the pool
 * as the response completes, not when that client gets round to closing.
 * The first client here lingers; the second one still reuses it. */
TEST(dp_http_pool_parks_before_client_closes)
{
    struct hb *b = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    const char *ok = OK_REPLY;
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(write_full(fd, GET_ONLY_CLOSE, strlen(GET_ONLY_CLOSE)), 0);
    char buf[256] = {0};
    ASSERT_INT_EQ(read_full(fd, buf, sizeof(buf) - 1), strlen(ok)); /* up to the proxy's FIN */
    ASSERT_STR_EQ(buf, ok);
    char *out = roundtrip(port, GET_ONLY_CLOSE); /* fd still open */
    ASSERT_STR_EQ(out, ok);
    free(out);
    close(fd);
    ASSERT_INT_EQ(atomic_load(&b->requests), 2);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_rq_total"), 2);
    dp_engine_free(eng);
    hb_stop(b);
}

/* A parked connection the upstream closes is dropped from the pool; the
 * next request connects again. */
TEST(dp_http_pool_drops_closed)
{
    struct hb *b = hb_start(HB_IDLE_CLOSE);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    char *out = roundtrip(port, GET_ONLY_CLOSE);
    ASSERT_STR_EQ(out, OK_REPLY);
    free(out);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.svc.upstream_cx_destroy_remote", 1), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_active"), 0);
    out = roundtrip(port, GET_ONLY_CLOSE);
    ASSERT_STR_EQ(out, OK_REPLY);
    free(out);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_total"), 2);
    dp_engine_free(eng);
    hb_stop(b);
}

/* A keep-alive connection follows a configuration change that keeps its
 * listener (here: the cluster's endpoints move): the next request goes to
 * the new endpoint, as Envoy routes every request with the current
 * configuration. */
TEST(dp_http_keep_alive_follows_new_config)
{
    struct hb *b1 = hb_start(HB_OK), *b2 = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b1->port, 1, NULL));
    int fd = keep_alive_client(port);
    ASSERT_INT_EQ(start(eng, http_config(&b2->port, 1, NULL)), port);
    usleep(100 * 1000); /* the worker picks the snapshot up */
    last_request_ok(fd);
    ASSERT_INT_EQ(atomic_load(&b1->requests), 1);
    ASSERT_INT_EQ(atomic_load(&b2->requests), 1);
    dp_engine_free(eng);
    hb_stop(b1);
    hb_stop(b2);
}

/* A request head that stops coming (slowloris) gets Envoy's 408 "stream
 * timeout" after stream_idle_timeout and the connection closes; an idle
 * connection between requests is not a stream and stays. */
TEST(dp_http_stream_idle_timeout)
{
    struct hb *b = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    struct dp_config *c = http_config(&b->port, 1, NULL);
    c->listeners[0].hcm->stream_idle_timeout_ms = 200;
    int port = start(eng, c);
    int64_t t0 = mono_ms();
    char *out = roundtrip(port, "GET /slow HTTP/1.1\r\nHost: only.exa");
    int64_t dt = mono_ms() - t0;
    ASSERT_STR_CONTAINS(out, "HTTP/1.1 408 Request Timeout\r\n");
    ASSERT_STR_CONTAINS(out, "connection: close\r\n\r\nstream timeout");
    free(out);
    ASSERT(dt >= 180 && dt < 2000);
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_rq_idle_timeout"), 1);
    /* Between requests the connection idle timeout (1 h) applies. */
    int fd = keep_alive_client(port);
    usleep(500 * 1000);
    last_request_ok(fd);
    dp_engine_free(eng);
    hb_stop(b);
}

/* The upstream closes its idle keep-alive connection between two requests
 * of one client: the second request gets a new upstream connection, not a
 * 503. */
TEST(dp_http_keep_alive_upstream_closed_between_requests)
{
    struct hb *b = hb_start(HB_IDLE_CLOSE);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    int fd = keep_alive_client(port);
    usleep(500 * 1000); /* the backend closes after 200 ms idle */
    last_request_ok(fd);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_total"), 2);
    ASSERT_INT_EQ(atomic_load(&b->requests), 2);
    dp_engine_free(eng);
    hb_stop(b);
}

/* Draining the proxy closes idle keep-alive HTTP connections at once
 * instead of waiting for the drain deadline. */
TEST(dp_http_drain_closes_idle_keep_alive)
{
    struct hb *b = hb_start(HB_OK);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    int fd = keep_alive_client(port);
    char buf[256];
    int64_t t0 = mono_ms();
    ASSERT_INT_EQ(dp_engine_drain(eng, 5000), 0);
    ASSERT(mono_ms() - t0 < 1000);
    ASSERT_INT_EQ(read_full(fd, buf, sizeof(buf)), 0); /* EOF */
    close(fd);
    dp_engine_free(eng);
    hb_stop(b);
}

/* A response delimited by the upstream closing is forwarded as it is, so
 * the client's keep-alive connection closes after it too (else the client
 * could not tell where the body ends). */
TEST(dp_http_eof_delimited_response_closes_downstream)
{
    struct hb *b = hb_start(HB_EOF_BODY);
    struct dp_engine *eng = engine();
    int port = start(eng, http_config(&b->port, 1, NULL));
    int64_t t0 = mono_ms();
    char *out = roundtrip(port, GET_ONLY); /* keep-alive request; read until close */
    ASSERT_STR_EQ(out, "HTTP/1.1 200 OK\r\n\r\nuntil close");
    free(out);
    ASSERT(mono_ms() - t0 < 2000); /* closed, not the client's 5 s read timeout */
    ASSERT_INT_EQ(stat_get(eng, "http.web.downstream_rq_2xx"), 1);
    dp_engine_free(eng);
    hb_stop(b);
}
