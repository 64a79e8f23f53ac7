/*
 * Proxy engine, kernel forwarding of plaintext TCP pairs (sockmap.h): each
 * test sets DP_SOCKMAP_AFTER=0 and DP_SOCKMAP_BULK_WRITE=0, so a pair is
 * handed to the kernel as soon as its upstream is connected, bulk or not,
 * and checks what a client sees (bytes, EOFs,
 * closes) and what the stats say, on real loopback sockets. Each test runs in
 * its own process (tests/unit/main.c), so the environment stays local.
 */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/engine.h"
#include "dp/sockmap.h"
#include "dp_helpers.h"
#include "test.h"

/* An engine with kernel forwarding from the first byte, or off. */
static struct dp_engine *sm_engine(int on)
{
    signal(SIGPIPE, SIG_IGN);
    setenv("DP_SOCKMAP", on ? "1" : "0", 1);
    setenv("DP_SOCKMAP_AFTER", "0", 1);
    setenv("DP_SOCKMAP_BULK_WRITE", "0", 1); /* bulk transfers too: the hard cases */
    struct dp_engine_opts o = {.workers = 1, .buffer_size = 16384};
    struct dp_engine *eng = NULL;
    struct err e = {{0}};
    if (dp_engine_new(&o, &eng, &e) != 0)
        TEST_FAIL_("dp_engine_new: %s", e.msg);
    return eng;
}

static int sm_start(struct dp_engine *eng, struct backend *b, uint32_t idle_ms)
{
    struct dp_config *c = dp_config_new("1");
    struct dp_listener *l = dp_config_add_listener(c, "outbound:127.0.0.1:0", "127.0.0.1", 0);
    l->traffic_direction = DP_DIR_OUTBOUND;
    l->tcp_proxy.stat_prefix = xstrdup("k");
    l->tcp_proxy.cluster = xstrdup("k");
    l->tcp_proxy.idle_timeout_ms = idle_ms;
    struct dp_cluster *cl = dp_config_add_cluster(c, "k");
    dp_cla_add_endpoint(&cl->load_assignment, "127.0.0.1", (uint32_t)backend_port(b), 0);
    struct err e = {{0}};
    if (dp_engine_apply(eng, c, &e) != 0)
        TEST_FAIL_("dp_engine_apply: %s", e.msg);
    int p = dp_engine_listener_port(eng, "outbound:127.0.0.1:0");
    ASSERT(p > 0);
    return p;
}

/* The kernel must accept the program here (root, kernel 6.x with sockmap):
 * otherwise these tests would pass in user space and prove nothing. */
static void require_sockmap(void)
{
    struct dp_sockmap *m = NULL;
    struct err e = {{0}};
    if (dp_sockmap_open(&m, &e) != 0)
        TEST_FAIL_("sockmap unavailable on this machine: %s", e.msg);
    dp_sockmap_free(m);
}

TEST(dp_sockmap_byte_exact_sizes_and_counters)
{
    require_sockmap();
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = sm_engine(1);
    int port = sm_start(eng, b, 0);
    static const size_t sizes[] = {1, 1000, 65536, 1u << 20, 8u << 20};
    size_t total = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        char *out = xmalloc(n), *in = xmalloc(n + 1);
        fill_random(out, n, 1000 + i);
        int fd = client_connect(port);
        ASSERT(fd >= 0);
        /* Quiet until the upstream is connected: the pair is then handed
         * to the kernel before the first byte. */
        usleep(50000);
        /* Sends, half-closes, reads the echo to EOF. */
        size_t got = exchange(fd, out, n, in, n + 1);
        close(fd);
        ASSERT_INT_EQ(got, n);
        ASSERT(memcmp(out, in, n) == 0);
        total += n;
        free(out);
        free(in);
    }
    ASSERT_INT_EQ(stat_wait(eng, "cluster.k.upstream_cx_destroy", 5), 5);
    /* Every connection went through the kernel, every byte counted once. */
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.sockmap_cx_total"), 5);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.downstream_cx_rx_bytes_total"), total);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.downstream_cx_tx_bytes_total"), total);
    ASSERT_INT_EQ(stat_get(eng, "cluster.k.upstream_cx_tx_bytes_total"), total);
    ASSERT_INT_EQ(stat_get(eng, "cluster.k.upstream_cx_rx_bytes_total"), total);
    ASSERT_INT_EQ(stat_get(eng, "cluster.k.upstream_cx_active"), 0);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_sockmap_half_close_then_reply)
{
    require_sockmap();
    /* The backend answers only after our EOF reached it: the FIN must cross
     * the forwarded pair after the bytes, and the reply come back after. */
    struct backend *b = backend_start(BACKEND_REPLY_AFTER_EOF, NULL);
    struct dp_engine *eng = sm_engine(1);
    int port = sm_start(eng, b, 0);
    size_t n = 300000;
    char *out = xmalloc(n), *in = xmalloc(n + 1);
    fill_random(out, n, 5);
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    usleep(50000); /* forwarded in the kernel before the first byte */
    ASSERT(write_full(fd, out, n) == 0);
    shutdown(fd, SHUT_WR);
    ASSERT_INT_EQ(read_full(fd, in, n + 1), n);
    ASSERT(memcmp(out, in, n) == 0);
    close(fd);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.k.upstream_cx_destroy", 1), 1);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.sockmap_cx_total"), 1);
    /* The client's EOF came first: the close is the downstream's. */
    ASSERT_INT_EQ(stat_get(eng, "cluster.k.upstream_cx_destroy_local"), 1);
    free(out);
    free(in);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_sockmap_slow_consumer_bounded_then_exact)
{
    require_sockmap();
    struct backend *b = backend_start(BACKEND_PAUSE, NULL);
    struct dp_engine *eng = sm_engine(1);
    int port = sm_start(eng, b, 0);
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    struct timeval tv = {0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t chunk = 65536, total = 0, limit = 512u << 20;
    char *p = xmalloc(chunk);
    uint64_t h = 1469598103934665603ull;
    /* Write until the path is full: the paused consumer must stall us. */
    while (total < limit) {
        fill_random(p, chunk, total + 1);
        ssize_t n = send(fd, p, chunk, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        h = fnv64(p, (size_t)n, h);
        total += (size_t)n;
        if ((size_t)n < chunk)
            break;
    }
    fprintf(stderr, "stalled after %zu bytes\n", total);
    /* The kernel path has no back-pressure of its own: the program takes at
     * most KF_CREDIT (1 MiB) more than the backend's socket accepted, then
     * leaves the bytes on the client's socket, whose window closes; the
     * engine takes the pair back to user space. Without the credit the
     * kernel took 256 MiB and more here. */
    ASSERT(total < (16u << 20));
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.sockmap_cx_total"), 1);
    /* At least the pause that took the pair back; the pump may pause again. */
    ASSERT(stat_wait(eng, "tcp.k.downstream_flow_control_paused_reading_total", 1) >= 1);
    /* Resume: everything arrives, once and in order. */
    backend_resume(b);
    close(fd);
    for (int i = 0; i < 1000 && backend_received(b) < total; i++)
        usleep(10000);
    ASSERT_INT_EQ(backend_received(b), total);
    ASSERT(backend_hash(b) == h);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.k.upstream_cx_tx_bytes_total", (long long)total), total);
    free(p);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_sockmap_idle_timeout_applies)
{
    require_sockmap();
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = sm_engine(1);
    int port = sm_start(eng, b, 300);
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    char buf[4];
    /* Traffic in the kernel keeps the connection alive past the timeout. */
    for (int i = 0; i < 6; i++) {
        usleep(100000);
        ASSERT(write_full(fd, "ping", 4) == 0);
        ASSERT_INT_EQ(read_full(fd, buf, 4), 4);
    }
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.sockmap_cx_total"), 1);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.idle_timeout"), 0);
    /* Then silence closes it. */
    int64_t t0 = mono_ms();
    ASSERT_INT_EQ(read_full(fd, buf, 1), 0);
    ASSERT(mono_ms() - t0 >= 250);
    close(fd);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.idle_timeout"), 1);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.downstream_cx_rx_bytes_total"), 24);
    dp_engine_free(eng);
    backend_stop(b);
}

TEST(dp_sockmap_upstream_close_reaches_downstream)
{
    require_sockmap();
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = sm_engine(1);
    int port = sm_start(eng, b, 0);
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    char buf[4];
    ASSERT(write_full(fd, "ping", 4) == 0);
    ASSERT_INT_EQ(read_full(fd, buf, 4), 4);
    /* The backend goes away: the forwarded pair must not linger. */
    backend_stop(b);
    ssize_t r = recv(fd, buf, 1, 0);
    ASSERT(r <= 0);
    close(fd);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.k.upstream_cx_destroy", 1), 1);
    ASSERT_INT_EQ(stat_get(eng, "cluster.k.upstream_cx_active"), 0);
    dp_engine_free(eng);
}

TEST(dp_sockmap_off_stays_in_user_space)
{
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = sm_engine(0);
    int port = sm_start(eng, b, 0);
    size_t n = 1u << 20;
    char *out = xmalloc(n), *in = xmalloc(n + 1);
    fill_random(out, n, 9);
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(exchange(fd, out, n, in, n + 1), n);
    ASSERT(memcmp(out, in, n) == 0);
    close(fd);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.k.upstream_cx_destroy", 1), 1);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.sockmap_cx_total"), 0);
    free(out);
    free(in);
    dp_engine_free(eng);
    backend_stop(b);
}

/* Drops the capabilities BPF needs from this (forked) test process. */
static void drop_bpf_caps(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    ASSERT(syscall(SYS_capget, &h, d) == 0);
    static const int drop[] = {CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_PERFMON};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
        int c = drop[i];
        d[c / 32].effective &= ~(1u << (c % 32));
        d[c / 32].permitted &= ~(1u << (c % 32));
    }
    ASSERT(syscall(SYS_capset, &h, d) == 0);
}

TEST(dp_sockmap_without_bpf_falls_back_to_user_space)
{
    drop_bpf_caps();
    struct dp_sockmap *m = NULL;
    struct err e = {{0}};
    ASSERT(dp_sockmap_open(&m, &e) != 0);
    fprintf(stderr, "dp_sockmap_open without CAP_BPF: %s\n", e.msg);
    ASSERT(strlen(e.msg) > 0);
    /* The engine logs one line and proxies in user space. */
    struct backend *b = backend_start(BACKEND_ECHO, NULL);
    struct dp_engine *eng = sm_engine(1);
    int port = sm_start(eng, b, 0);
    size_t n = 1u << 20;
    char *out = xmalloc(n), *in = xmalloc(n + 1);
    fill_random(out, n, 11);
    int fd = client_connect(port);
    ASSERT(fd >= 0);
    usleep(50000);
    ASSERT_INT_EQ(exchange(fd, out, n, in, n + 1), n);
    ASSERT(memcmp(out, in, n) == 0);
    close(fd);
    ASSERT_INT_EQ(stat_wait(eng, "cluster.k.upstream_cx_destroy", 1), 1);
    ASSERT_INT_EQ(stat_get(eng, "tcp.k.sockmap_cx_total"), 0);
    ASSERT_INT_EQ(stat_get(eng, "cluster.k.upstream_cx_rx_bytes_total"), n);
    free(out);
    free(in);
    dp_engine_free(eng);
    backend_stop(b);
}
