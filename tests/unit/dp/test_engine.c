/*
 * Proxy engine, plaintext TCP: byte-exact proxying, half-close,
 * back-pressure, load balancing, connect timeouts and retries, outlier
 * ejection, configuration swap and drain. Each test runs the engine
 * in-process on ephemeral loopback ports with real sockets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/engine.h"
#include "dp_helpers.h"
#include "test.h"

static struct dp_engine *engine(int workers, uint32_t bufsize, uint32_t drain_ms)
{
    signal(SIGPIPE, SIG_IGN);
    struct dp_engine_opts o = {
        .workers = workers, .buffer_size = bufsize, .drain_timeout_ms = drain_ms};
    struct dp_engine *eng = NULL;
    struct err e = {{0}};
    if (dp_engine_new(&o, &eng, &e) != 0)
        TEST_FAIL_("dp_engine_new: %s", e.msg);
    return eng;
}

/* A config with one outbound listener on an ephemeral port → cluster `name`
 * with the given endpoint ports (weights optional). */
static struct dp_config *simple(const char *cluster, const int *ports, const uint32_t *weights,
                                size_t n, enum dp_lb_policy lb)
{
    struct dp_config *c = dp_config_new("1");
    struct dp_listener *l = dp_config_add_listener(c, "outbound:127.0.0.1:0", "127.0.0.1", 0);
    l->traffic_direction = DP_DIR_OUTBOUND;
    l->tcp_proxy.stat_prefix = xstrdup(cluster);
    l->tcp_proxy.cluster = xstrdup(cluster);
    struct dp_cluster *cl = dp_config_add_cluster(c, cluster);
    cl->lb_policy = lb;
    for (size_t i = 0; i < n; i++)
        dp_cla_add_endpoint(&cl->load_assignment, "127.0.0.1", (uint32_t)ports[i],
                            weights ? weights[i] : 0);
    return c;
}

static void apply(struct dp_engine *eng, struct dp_config *c)
{
    struct err e = {{0}};
    if (dp_engine_apply(eng, c, &e) != 0)
        TEST_FAIL_("dp_engine_apply: %s", e.msg);
}

static int lport(struct dp_engine *eng)
{
    int p = dp_engine_listener_port(eng, "outbound:127.0.0.1:0");
    ASSERT(p > 0);
    return p;
}

/* A client connection through the proxy to an echo backend, proven by one
 * echoed "ping". */
static int echoed_client(int port)
{
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    char buf[8];
    ASSERT(write_full(fd, "ping", 4) == 0);
    ASSERT_INT_EQ(read_full(fd, buf, 4), 4);
    return fd;
}

TEST(dp_tcp_proxy_byte_exact_both_ways)
{
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = engine(2, 0, 0);
    int ports[] = {backend_port(b)};
    apply(eng, simple("echo", ports, NULL, 1, DP_LB_ROUND_ROBIN));
    size_t n = 8u << 20;
    char *out = xmalloc(n), *in = xmalloc(n + 1);
    for (int round = 0; round < 2; round++) {
        fill_random(out, n, 42 + (uint64_t)round);
        int fd = client_connect(lport(eng));
        ASSERT(fd >= 0);
        size_t got = exchange(fd, out, n, in, n + 1);
        close(fd);
        ASSERT_INT_EQ(got, n);
        ASSERT(memcmp(out, in, n) == 0);
    }
    ASSERT(stat_wait(eng, "cluster.echo.upstream_cx_destroy", 2) == 2);
    ASSERT_INT_EQ(stat_get(eng, "cluster.echo.upstream_cx_tx_bytes_total"), 2 * n);
    ASSERT_INT_EQ(stat_get(eng, "cluster.echo.upstream_cx_rx_bytes_total"), 2 * n);
    ASSERT_INT_EQ(stat_get(eng, "tcp.echo.downstream_cx_rx_bytes_total"), 2 * n);
    ASSERT_INT_EQ(stat_get(eng, "cluster.echo.upstream_cx_active"), 0);
    free(out);
    free(in);
    dp_engine_free(eng);
    backend_stop(b);
}

struct par {
    int port;
    uint64_t seed;
    int ok;
};

static void *par_main(void *arg)
{
    struct par *p = arg;
    size_t n = 1u << 20;
    char *out = xmalloc(n), *in = xmalloc(n + 1);
    fill_random(out, n, p->seed);
    int fd = client_connect(p->port);
    p->ok = fd >= 0 && exchange(fd, out, n, in, n + 1) == n && memcmp(out, in, n) == 0;
    if (fd >= 0)
        close(fd);
    free(out);
    free(in);
    return NULL;
}

TEST(dp_tcp_proxy_concurrent_connections)
{
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = engine(2, 4096, 0);
    int ports[] = {backend_port(b)};
    apply(eng, simple("echo", ports, NULL, 1, DP_LB_ROUND_ROBIN));
    struct par ps[16];
    pthread_t th[16];
    for (int i = 0; i < 16; i++) {
        ps[i] = (struct par){lport(eng), (uint64_t)i + 7, 0};
        pthread_create(&th[i], NULL, par_main, &ps[i]);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        ASSERT(ps[i].ok);
    }
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_tcp_half_close_propagates)
{
    /* The backend answers only after it has seen our EOF. */
    struct backend *b = backend_start(BACKEND_REPLY_AFTER_EOF, NULL);
    struct dp_engine *eng = engine(1, 0, 0);
    int ports[] = {backend_port(b)};
    apply(eng, simple("echo", ports, NULL, 1, DP_LB_ROUND_ROBIN));
    int fd = client_connect(lport(eng));
    ASSERT(fd >= 0);
    ASSERT(write_full(fd, "hello", 5) == 0);
    /* Our FIN must reach the backend, and its reply must still come back. */
    shutdown(fd, SHUT_WR);
    char buf[16];
    size_t got = read_full(fd, buf, sizeof(buf));
    ASSERT_INT_EQ(got, 5);
    ASSERT(memcmp(buf, "hello", 5) == 0);
    close(fd);
    char name[128];
    snprintf(name, sizeof(name), "listener.127.0.0.1_%d.downstream_cx_destroy", lport(eng));
    ASSERT_INT_EQ(stat_wait(eng, name, 1), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.echo.upstream_cx_destroy_remote") +
                      stat_get(eng, "cluster.echo.upstream_cx_destroy_local"),
                  1);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_backpressure_slow_consumer_bounded)
{
    struct backend *b = backend_start(BACKEND_PAUSE, NULL);
    uint32_t bufsize = 16384;
    struct dp_engine *eng = engine(1, bufsize, 0);
    int ports[] = {backend_port(b)};
    apply(eng, simple("sink", ports, NULL, 1, DP_LB_ROUND_ROBIN));
    int fd = client_connect(lport(eng));
    ASSERT(fd >= 0);
    struct timeval tv = {0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t chunk = 65536, total = 0, limit = 256u << 20;
    char *p = xmalloc(chunk);
    /* Write until the path is full: a paused consumer must stall us. */
    while (total < limit) {
        fill_random(p, chunk, total + 1);
        ssize_t n = send(fd, p, chunk, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        total += (size_t)n;
        if ((size_t)n < chunk)
            break; /* the send timed out part-way: the path is full */
    }
    ASSERT(total < limit);
    /* What the proxy holds in memory is bounded by its buffer. */
    long long rx = stat_get(eng, "tcp.sink.downstream_cx_rx_bytes_total");
    long long tx = stat_get(eng, "cluster.sink.upstream_cx_tx_bytes_total");
    ASSERT(rx - tx <= (long long)bufsize);
    /* stat_wait: when the pair was forwarded in the kernel, the pause is
     * counted by the engine's timer (docs/proxy.md, "Kernel forwarding"). */
    ASSERT(stat_wait(eng, "tcp.sink.downstream_flow_control_paused_reading_total", 1) >= 1);
    fprintf(stderr, "stalled after %zu bytes; proxy holds %lld\n", total, rx - tx);
    ASSERT_INT_EQ(dp_engine_active_connections(eng), 1);
    close(fd);
    free(p);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_backpressure_resumes_byte_exact)
{
    struct backend *b = backend_start(BACKEND_PAUSE, NULL);
    struct dp_engine *eng = engine(1, 8192, 0);
    int ports[] = {backend_port(b)};
    apply(eng, simple("sink", ports, NULL, 1, DP_LB_ROUND_ROBIN));
    int fd = client_connect(lport(eng));
    ASSERT(fd >= 0);
    size_t n = 32u << 20;
    char *p = xmalloc(n);
    fill_random(p, n, 99);
    uint64_t want = fnv64(p, n, 1469598103934665603ull);
    /* Resume the consumer after the writer has stalled for a while. */
    usleep(200000);
    backend_resume(b);
    ASSERT(write_full(fd, p, n) == 0);
    close(fd);
    for (int i = 0; i < 500 && backend_received(b) < n; i++)
        usleep(10000);
    ASSERT_INT_EQ(backend_received(b), n);
    ASSERT(backend_hash(b) == want);
    free(p);
    dp_engine_free(eng);
    backend_stop(b);
}

static void count_ids(int port, int conns, int *counts, int nb)
{
    for (int i = 0; i < conns; i++) {
        char *s = client_read_all(port);
        int id = s[0] - 'A';
        if (id >= 0 && id < nb)
            counts[id]++;
        else
            TEST_FAIL_("unexpected reply \"%s\"", s);
        free(s);
    }
}

TEST(dp_lb_round_robin_even)
{
    struct backend *b[3] = {backend_start(BACKEND_ID, "A"), backend_start(BACKEND_ID, "B"),
                            backend_start(BACKEND_ID, "C")};
    struct dp_engine *eng = engine(2, 0, 0);
    int ports[] = {backend_port(b[0]), backend_port(b[1]), backend_port(b[2])};
    apply(eng, simple("svc", ports, NULL, 3, DP_LB_ROUND_ROBIN));
    int counts[3] = {0};
    count_ids(lport(eng), 30, counts, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_INT_EQ(counts[i], 10);
    dp_engine_free(eng);
    for (int i = 0; i < 3; i++)
        backend_stop(b[i]);
}

TEST(dp_lb_weighted_split_within_tolerance)
{
    struct backend *b[2] = {backend_start(BACKEND_ID, "A"), backend_start(BACKEND_ID, "B")};
    struct dp_engine *eng = engine(2, 0, 0);
    int ports[] = {backend_port(b[0]), backend_port(b[1])};
    uint32_t w[] = {1, 3};
    apply(eng, simple("svc", ports, w, 2, DP_LB_ROUND_ROBIN));
    int counts[2] = {0};
    count_ids(lport(eng), 200, counts, 2);
    /* 25 % / 75 %; smooth weighted round-robin is exact over whole cycles. */
    ASSERT(counts[0] >= 45 && counts[0] <= 55);
    ASSERT(counts[1] >= 145 && counts[1] <= 155);
    dp_engine_free(eng);
    backend_stop(b[0]);
    backend_stop(b[1]);
}

/* A flattened split (xds_map.h) as kuma-cp's weighted_clusters become: a
 * synthetic cluster whose endpoints name the real cluster they came from.
 * Real clusters api-a (endpoint ports[0]) and api-b (ports[1..]) are in the
 * configuration too, as CDS sends them. */
static struct dp_config *split_config(const int *ports, size_t n, const uint32_t *w)
{
    struct dp_config *c = dp_config_new("1");
    struct dp_listener *l = dp_config_add_listener(c, "outbound:127.0.0.1:0", "127.0.0.1", 0);
    l->traffic_direction = DP_DIR_OUTBOUND;
    l->tcp_proxy.stat_prefix = xstrdup("api");
    l->tcp_proxy.cluster = xstrdup("outbound:127.0.0.1:0:weighted");
    struct dp_cluster *a = dp_config_add_cluster(c, "api-a");
    dp_cla_add_endpoint(&a->load_assignment, "127.0.0.1", (uint32_t)ports[0], 0);
    struct dp_cluster *b = dp_config_add_cluster(c, "api-b");
    for (size_t i = 1; i < n; i++)
        dp_cla_add_endpoint(&b->load_assignment, "127.0.0.1", (uint32_t)ports[i], 0);
    struct dp_cluster *sp = dp_config_add_cluster(c, "outbound:127.0.0.1:0:weighted");
    free(sp->alt_stat_name);
    sp->alt_stat_name = xstrdup("api-a");
    sp->synthetic = 1;
    for (size_t i = 0; i < n; i++)
        dp_cla_add_endpoint(&sp->load_assignment, "127.0.0.1", (uint32_t)ports[i], w[i])
            ->stat_cluster = xstrdup(i == 0 ? "api-a" : "api-b");
    return c;
}

/* Envoy counts a split under the cluster it picked: every upstream stat of a
 * flattened split goes to the real cluster of the host, and the synthetic
 * cluster shows nowhere (/stats, /clusters). */
TEST(dp_split_stats_counted_under_real_clusters)
{
    struct backend *b[2] = {backend_start(BACKEND_ID, "A"), backend_start(BACKEND_ID, "B")};
    struct dp_engine *eng = engine(2, 0, 0);
    int ports[] = {backend_port(b[0]), backend_port(b[1])};
    uint32_t w[] = {1, 3};
    apply(eng, split_config(ports, 2, w));
    int counts[2] = {0};
    count_ids(lport(eng), 40, counts, 2);
    ASSERT_INT_EQ(counts[0], 10);
    ASSERT_INT_EQ(counts[1], 30);
    ASSERT(stat_wait(eng, "cluster.api-b.upstream_cx_destroy", 30) == 30);
    ASSERT(stat_wait(eng, "cluster.api-a.upstream_cx_destroy", 10) == 10);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_cx_total"), 10);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.upstream_cx_total"), 30);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_cx_rx_bytes_total"), 10);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.upstream_cx_rx_bytes_total"), 30);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_cx_active"), 0);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.upstream_cx_active"), 0);
    /* Membership is the real clusters' own. */
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.membership_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.membership_total"), 1);
    struct buf out;
    buf_init(&out, 0);
    dp_engine_render_stats(eng, NULL, &out);
    ASSERT(strstr(buf_str(&out), "weighted") == NULL);
    ASSERT(strstr(buf_str(&out), "cluster.outbound") == NULL);
    buf_free(&out);
    buf_init(&out, 0);
    dp_engine_render_clusters(eng, &out);
    ASSERT(strstr(buf_str(&out), "weighted") == NULL);
    /* The hosts' counters are the real clusters' host lines. */
    char *line = xasprintf("api-b::127.0.0.1:%d::cx_total::30", ports[1]);
    ASSERT_STR_CONTAINS(buf_str(&out), line);
    free(line);
    line = xasprintf("api-a::127.0.0.1:%d::cx_total::10", ports[0]);
    ASSERT_STR_CONTAINS(buf_str(&out), line);
    free(line);
    buf_free(&out);

    /* Connect failures and ejections of a split's host go to its real
     * cluster, whose host (the same host block) is ejected too. */
    int dead = closed_port();
    int ports2[] = {backend_port(b[0]), dead};
    uint32_t w2[] = {1, 1};
    struct dp_config *c2 = split_config(ports2, 2, w2);
    c2->listeners[0].tcp_proxy.max_connect_attempts = 2;
    struct dp_cluster *sp = &c2->clusters[2];
    sp->outlier_detection = xcalloc(1, sizeof(struct dp_outlier_detection));
    sp->outlier_detection->consecutive_local_origin_failure = 1;
    sp->outlier_detection->base_ejection_time_ms = 60000;
    apply(eng, c2);
    for (int i = 0; i < 6; i++) {
        char *s = client_read_all(lport(eng));
        ASSERT_STR_EQ(s, "A");
        free(s);
    }
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.upstream_cx_connect_fail"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_cx_connect_fail"), 0);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.outlier_detection.ejections_enforced_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.outlier_detection.ejections_active"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-b.membership_healthy"), 0);
    ASSERT_INT_EQ(stat_get(eng, "cluster.api-a.upstream_cx_total"), 16);
    buf_init(&out, 0);
    dp_engine_render_clusters(eng, &out);
    line = xasprintf("api-b::127.0.0.1:%d::health_flags::/failed_outlier_check", dead);
    ASSERT_STR_CONTAINS(buf_str(&out), line);
    free(line);
    buf_free(&out);
    dp_engine_free(eng);
    backend_stop(b[0]);
    backend_stop(b[1]);
}

TEST(dp_lb_least_request_prefers_idle_host)
{
    struct backend *b[2] = {backend_start(BACKEND_ECHO, NULL), backend_start(BACKEND_ECHO, NULL)};
    struct dp_engine *eng = engine(1, 0, 0);
    int ports[] = {backend_port(b[0]), backend_port(b[1])};
    apply(eng, simple("svc", ports, NULL, 2, DP_LB_LEAST_REQUEST));
    int fds[20];
    for (int i = 0; i < 20; i++) {
        fds[i] = client_connect(lport(eng));
        ASSERT(fds[i] >= 0);
        ASSERT(write_full(fds[i], "x", 1) == 0);
        char c;
        ASSERT_INT_EQ(read_full(fds[i], &c, 1), 1);
    }
    /* Power of two choices on active connections keeps the hosts balanced. */
    long a = backend_accepted(b[0]), c = backend_accepted(b[1]);
    fprintf(stderr, "least request split %ld/%ld\n", a, c);
    ASSERT(a >= 6 && c >= 6);
    for (int i = 0; i < 20; i++)
        close(fds[i]);
    dp_engine_free(eng);
    backend_stop(b[0]);
    backend_stop(b[1]);
}

TEST(dp_connect_timeout_then_retry_next_endpoint)
{
    int bh[3];
    int dead = blackhole_start(bh);
    struct backend *b = backend_start(BACKEND_ID, "A");
    struct dp_engine *eng = engine(1, 0, 0);
    int ports[] = {dead, backend_port(b)};
    struct dp_config *c = simple("svc", ports, NULL, 2, DP_LB_ROUND_ROBIN);
    c->clusters[0].connect_timeout_ms = 200;
    c->listeners[0].tcp_proxy.max_connect_attempts = 2;
    apply(eng, c);
    int64_t t0 = mono_ms();
    char *s = client_read_all(lport(eng));
    int64_t dt = mono_ms() - t0;
    ASSERT_STR_EQ(s, "A");
    free(s);
    fprintf(stderr, "took %lld ms\n", (long long)dt);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_connect_timeout"), 1);
    ASSERT(dt >= 180 && dt < 2000);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_total"), 2);
    dp_engine_free(eng);
    backend_stop(b);
    blackhole_stop(bh);
}

/* A plaintext downstream joins epoll (edge-triggered) only once its upstream
 * is connected. The client's data and FIN, sent while the first endpoint's
 * connect hangs, are both already queued by then: the FIN must still be
 * seen (it raises no edge of its own after the data) and reach the
 * backend, whose reply comes back. */
TEST(dp_tcp_data_and_fin_before_upstream_connects)
{
    int bh[3];
    int dead = blackhole_start(bh);
    struct backend *b = backend_start(BACKEND_REPLY_AFTER_EOF, NULL);
    struct dp_engine *eng = engine(1, 0, 0);
    int ports[] = {dead, backend_port(b)};
    struct dp_config *c = simple("svc", ports, NULL, 2, DP_LB_ROUND_ROBIN);
    c->clusters[0].connect_timeout_ms = 200;
    c->listeners[0].tcp_proxy.max_connect_attempts = 2;
    apply(eng, c);
    int fd = client_connect(lport(eng));
    ASSERT(fd >= 0);
    ASSERT(write_full(fd, "early bytes", 11) == 0);
    shutdown(fd, SHUT_WR);
    char buf[32];
    size_t got = read_full(fd, buf, sizeof(buf));
    close(fd);
    ASSERT_INT_EQ(got, 11);
    ASSERT(memcmp(buf, "early bytes", 11) == 0);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_connect_timeout"), 1);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.svc.upstream_cx_active", 0), 0);
    dp_engine_free(eng);
    backend_stop(b);
    blackhole_stop(bh);
}

/* A client that leaves while the only endpoint's connect hangs: its
 * connection is closed when connect_timeout ends the attempt, nothing
 * leaks (docs/proxy.md "Edge-triggered plaintext sides"). */
TEST(dp_tcp_client_gone_during_connect_closed_at_timeout)
{
    int bh[3];
    int dead = blackhole_start(bh);
    struct dp_engine *eng = engine(1, 0, 0);
    int ports[] = {dead};
    struct dp_config *c = simple("svc", ports, NULL, 1, DP_LB_ROUND_ROBIN);
    c->clusters[0].connect_timeout_ms = 200;
    c->listeners[0].tcp_proxy.max_connect_attempts = 1;
    apply(eng, c);
    int fd = client_connect(lport(eng));
    ASSERT(fd >= 0);
    ASSERT(write_full(fd, "bye", 3) == 0);
    close(fd);
    char name[128];
    snprintf(name, sizeof(name), "listener.127.0.0.1_%d.downstream_cx_destroy", lport(eng));
    ASSERT_INT_EQ(stat_wait(eng, name, 1), 1);
    snprintf(name, sizeof(name), "listener.127.0.0.1_%d.downstream_cx_active", lport(eng));
    ASSERT_INT_EQ(stat_get(eng, name), 0);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_connect_timeout"), 1);
    ASSERT_INT_EQ(dp_engine_active_connections(eng), 0);
    dp_engine_free(eng);
    blackhole_stop(bh);
}

TEST(dp_connect_refused_attempts_exceeded)
{
    struct dp_engine *eng = engine(1, 0, 0);
    int ports[] = {closed_port()};
    struct dp_config *c = simple("svc", ports, NULL, 1, DP_LB_ROUND_ROBIN);
    c->listeners[0].tcp_proxy.max_connect_attempts = 3;
    apply(eng, c);
    char *s = client_read_all(lport(eng));
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.svc.upstream_cx_connect_fail", 3), 3);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.svc.upstream_cx_connect_attempts_exceeded", 1), 1);
    dp_engine_free(eng);
}

TEST(dp_outlier_ejects_failing_endpoint)
{
    struct backend *b = backend_start(BACKEND_ID, "A");
    struct dp_engine *eng = engine(1, 0, 0);
    int dead = closed_port();
    int ports[] = {dead, backend_port(b)};
    struct dp_config *c = simple("svc", ports, NULL, 2, DP_LB_ROUND_ROBIN);
    c->listeners[0].tcp_proxy.max_connect_attempts = 3;
    c->clusters[0].outlier_detection = xcalloc(1, sizeof(struct dp_outlier_detection));
    c->clusters[0].outlier_detection->consecutive_local_origin_failure = 2;
    c->clusters[0].outlier_detection->base_ejection_time_ms = 60000;
    apply(eng, c);
    for (int i = 0; i < 12; i++) {
        char *s = client_read_all(lport(eng));
        ASSERT_STR_EQ(s, "A");
        free(s);
    }
    /* Two failures eject the dead host; after that it gets no traffic. */
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_connect_fail"), 2);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.outlier_detection.ejections_enforced_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.outlier_detection.ejections_active"), 1);
    struct buf out;
    buf_init(&out, 0);
    dp_engine_render_clusters(eng, &out);
    char *line = xasprintf("svc::127.0.0.1:%d::health_flags::/failed_outlier_check", dead);
    ASSERT_STR_CONTAINS(buf_str(&out), line);
    free(line);
    line = xasprintf("svc::127.0.0.1:%d::health_flags::healthy", backend_port(b));
    ASSERT_STR_CONTAINS(buf_str(&out), line);
    free(line);
    buf_free(&out);
    /* The ejection survives a configuration swap with the same cluster. */
    struct dp_config *c2 = simple("svc", ports, NULL, 2, DP_LB_ROUND_ROBIN);
    c2->clusters[0].outlier_detection = xcalloc(1, sizeof(struct dp_outlier_detection));
    apply(eng, c2);
    for (int i = 0; i < 4; i++) {
        char *s = client_read_all(lport(eng));
        ASSERT_STR_EQ(s, "A");
        free(s);
    }
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.upstream_cx_connect_fail"), 2);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.membership_healthy"), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.svc.membership_total"), 2);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_config_swap_keeps_established_connection)
{
    struct backend *b1 = backend_start(BACKEND_ECHO, NULL);
    struct backend *b2 = backend_start(BACKEND_ID, "B");
    struct dp_engine *eng = engine(2, 0, 0);
    int p1[] = {backend_port(b1)}, p2[] = {backend_port(b2)};
    apply(eng, simple("one", p1, NULL, 1, DP_LB_ROUND_ROBIN));
    int port = lport(eng);
    int fd = echoed_client(port);
    char buf[8];
    /* Same listener, now routed to another cluster: the socket is kept. */
    apply(eng, simple("two", p2, NULL, 1, DP_LB_ROUND_ROBIN));
    ASSERT_INT_EQ(lport(eng), port);
    char *s = client_read_all(port);
    ASSERT_STR_EQ(s, "B");
    free(s);
    /* The established connection still reaches the old cluster. */
    for (int i = 0; i < 3; i++) {
        ASSERT(write_full(fd, "pong", 4) == 0);
        ASSERT_INT_EQ(read_full(fd, buf, 4), 4);
        ASSERT(memcmp(buf, "pong", 4) == 0);
    }
    ASSERT_INT_EQ(stat_get(eng, "cluster.one.upstream_cx_active"), 1);
    close(fd);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.two.upstream_cx_total", 1), 1);
    /* Stats of the removed cluster go once its last connection (and with it
     * the old snapshot) is gone: memory stays bounded under churn. */
    long long v = 0;
    for (int i = 0; i < 300 && (v = stat_get(eng, "cluster.one.upstream_cx_total")) != -1; i++)
        usleep(10000);
    ASSERT_INT_EQ(v, -1);
    dp_engine_free(eng);
    backend_stop(b1);
    backend_stop(b2);
}

TEST(dp_removed_listener_stops_accepting_and_drains)
{
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = engine(2, 0, 300);
    int p[] = {backend_port(b)};
    apply(eng, simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN));
    int port = lport(eng);
    int fd = echoed_client(port);
    char buf[8];
    struct dp_config *empty = dp_config_new("2");
    apply(eng, empty);
    /* A second update right behind, with no listener change: workers that
     * skip straight to it must still drain. */
    apply(eng, dp_config_new("3"));
    ASSERT_INT_EQ(dp_engine_listener_port(eng, "outbound:127.0.0.1:0"), -1);
    /* Workers drop the socket asynchronously; it is closed soon after. */
    int refused = 0;
    for (int i = 0; i < 100 && !refused; i++) {
        int f = client_connect(port);
        if (f < 0)
            refused = 1;
        else
            close(f);
        usleep(5000);
    }
    ASSERT(refused);
    /* Still usable until the drain timeout... */
    ASSERT(write_full(fd, "pong", 4) == 0);
    ASSERT_INT_EQ(read_full(fd, buf, 4), 4);
    /* ...then closed by the proxy. */
    ASSERT_INT_EQ(read_full(fd, buf, 1), 0);
    close(fd);
    for (int i = 0; i < 100 && dp_engine_active_connections(eng) > 0; i++)
        usleep(10000);
    ASSERT_INT_EQ(dp_engine_active_connections(eng), 0);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_apply_rejects_bad_config_keeps_old)
{
    struct backend *b = backend_start(BACKEND_ID, "A");
    struct dp_engine *eng = engine(1, 0, 0);
    int p[] = {backend_port(b)};
    apply(eng, simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN));
    struct dp_config *bad = simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN);
    free(bad->clusters[0].load_assignment.endpoints[0].address.address);
    bad->clusters[0].load_assignment.endpoints[0].address.address = xstrdup("not-an-ip");
    struct err e = {{0}};
    ASSERT(dp_engine_apply(eng, bad, &e) != 0);
    ASSERT_STR_CONTAINS(e.msg, "not an IP address");
    char *s = client_read_all(lport(eng));
    ASSERT_STR_EQ(s, "A");
    free(s);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_unknown_cluster_counts_no_route)
{
    struct dp_engine *eng = engine(1, 0, 0);
    struct dp_config *c = dp_config_new("1");
    struct dp_listener *l = dp_config_add_listener(c, "outbound:127.0.0.1:0", "127.0.0.1", 0);
    l->tcp_proxy.stat_prefix = xstrdup("missing");
    l->tcp_proxy.cluster = xstrdup("missing");
    apply(eng, c);
    char *s = client_read_all(lport(eng));
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(eng, "tcp.missing.downstream_cx_no_route", 1), 1);
    dp_engine_free(eng);
}

TEST(dp_drain_waits_then_forces)
{
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = engine(2, 0, 0);
    int p[] = {backend_port(b)};
    apply(eng, simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN));
    int port = lport(eng);
    int fd = echoed_client(port);
    char buf[8];
    int64_t t0 = mono_ms();
    long forced = dp_engine_drain(eng, 300);
    int64_t dt = mono_ms() - t0;
    ASSERT_INT_EQ(forced, 1);
    ASSERT(dt >= 280 && dt < 3000);
    ASSERT_INT_EQ(read_full(fd, buf, 1), 0);
    close(fd);
    ASSERT(client_connect(port) < 0);
    ASSERT_INT_EQ(dp_engine_state(eng), 1);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_drain_returns_when_connections_finish)
{
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = engine(1, 0, 0);
    int p[] = {backend_port(b)};
    apply(eng, simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN));
    int64_t t0 = mono_ms();
    ASSERT_INT_EQ(dp_engine_drain(eng, 5000), 0);
    ASSERT(mono_ms() - t0 < 1000);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_idle_timeout_closes)
{
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = engine(1, 0, 0);
    int p[] = {backend_port(b)};
    struct dp_config *c = simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN);
    c->listeners[0].tcp_proxy.idle_timeout_ms = 200;
    apply(eng, c);
    int fd = client_connect(lport(eng));
    char buf[4];
    ASSERT(write_full(fd, "ping", 4) == 0);
    ASSERT_INT_EQ(read_full(fd, buf, 4), 4);
    int64_t t0 = mono_ms();
    ASSERT_INT_EQ(read_full(fd, buf, 1), 0);
    ASSERT(mono_ms() - t0 >= 150);
    close(fd);
    ASSERT_INT_EQ(stat_get(eng, "tcp.one.idle_timeout"), 1);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_cluster_without_endpoints_counts_none_healthy)
{
    struct dp_engine *eng = engine(1, 0, 0);
    struct dp_config *c = simple("empty", NULL, NULL, 0, DP_LB_ROUND_ROBIN);
    c->clusters[0].type = DP_CLUSTER_EDS; /* and no ClusterLoadAssignment yet */
    apply(eng, c);
    char *s = client_read_all(lport(eng));
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.empty.upstream_cx_none_healthy", 1), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.empty.membership_total"), 0);
    dp_engine_free(eng);
}

TEST(dp_renamed_listener_keeps_its_socket)
{
    struct backend *b = backend_start(BACKEND_ID, "A");
    struct dp_engine *eng = engine(2, 0, 0);
    int p[] = {backend_port(b)};
    apply(eng, simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN));
    int port = lport(eng);
    /* Same address, new name (and a fixed port this time). */
    struct dp_config *c = simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN);
    free(c->listeners[0].name);
    c->listeners[0].name = xstrdup("outbound:renamed");
    c->listeners[0].address.port_value = (uint32_t)port;
    apply(eng, c); /* port 0 was bound to `port`: the socket is reused */
    ASSERT_INT_EQ(dp_engine_listener_port(eng, "outbound:renamed"), port);
    ASSERT_INT_EQ(dp_engine_listener_port(eng, "outbound:127.0.0.1:0"), -1);
    c = simple("one", p, NULL, 1, DP_LB_ROUND_ROBIN);
    free(c->listeners[0].name);
    c->listeners[0].name = xstrdup("outbound:renamed-again");
    c->listeners[0].address.port_value = (uint32_t)port;
    apply(eng, c); /* same configured address: the socket is reused */
    ASSERT_INT_EQ(dp_engine_listener_port(eng, "outbound:renamed-again"), port);
    char *s = client_read_all(port);
    ASSERT_STR_EQ(s, "A");
    free(s);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_upstream_close_while_downstream_slow_loses_nothing)
{
    /* The backend sends 4 MiB and closes while our client is not reading:
     * the upstream socket hangs up with data still queued behind a full
     * downstream. Every byte must still arrive. */
    struct backend *b = backend_start(BACKEND_BLAST, NULL);
    struct dp_engine *eng = engine(1, 16384, 0);
    int p[] = {backend_port(b)};
    apply(eng, simple("blast", p, NULL, 1, DP_LB_ROUND_ROBIN));
    /* A small receive buffer (set before connecting, and above loopback's
     * MSS) so the downstream path fills up early. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rcv = 131072;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport(eng))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    ASSERT(write_full(fd, "go", 2) == 0);
    shutdown(fd, SHUT_WR);
    usleep(500000);
    char *want = xmalloc(BLAST_BYTES), *got = xmalloc(BLAST_BYTES + 1);
    fill_random(want, BLAST_BYTES, 7);
    size_t n = read_full(fd, got, BLAST_BYTES + 1);
    ASSERT_INT_EQ(n, BLAST_BYTES);
    ASSERT(memcmp(want, got, BLAST_BYTES) == 0);
    close(fd);
    free(want);
    free(got);
    dp_engine_free(eng);
    backend_stop(b);
}
