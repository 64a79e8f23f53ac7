/*
 * dp_bench — runs the proxy engine standalone for benchmarks, with the
 * configuration model built in code (kuma-dp itself takes configuration only
 * from xDS). Modes:
 *
 *   dp_bench tcp      <listen_port> <backend_port> <workers>
 *   dp_bench mtls-out <listen_port> <inbound_port> <workers> <certdir>
 *   dp_bench mtls-in  <listen_port> <backend_port> <workers> <certdir>
 *   dp_bench rss      <n_clusters>
 *   dp_bench idle     <n_connections>
 *
 * certdir holds ca.pem, web.pem/web.key (client) and backend.pem/backend.key
 * (server), as bench/dp/run.sh makes them. DP_BENCH_NO_RESUME=1 makes
 * mtls-out do full handshakes (max_session_keys 0). The proxy runs until SIGTERM or
 * SIGINT, then prints its CPU time. `rss` applies n clusters and n listeners
 * and prints VmRSS. `idle` opens n connections through a TCP listener to an
 * in-process backend that holds them, and prints the RSS per connection.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/engine.h"
#include "dp/model.h"
#include "dp/tls.h"

static char *slurp(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    struct err e;
    char *s = read_file(path, 1 << 20, NULL, &e);
    if (!s) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    free(path);
    return s;
}

static void secrets(struct dp_config *c, const char *dir, const char *who)
{
    char *pem = xasprintf("%s.pem", who), *key = xasprintf("%s.key", who);
    struct dp_secret *s = dp_config_add_secret(c, "identity_cert:secret:default");
    s->certificate_chain = slurp(dir, pem);
    s->private_key = slurp(dir, key);
    s = dp_config_add_secret(c, "mesh_ca:secret:default");
    s->trusted_ca = slurp(dir, "ca.pem");
    free(pem);
    free(key);
}

static struct dp_config *tcp_cfg(int lport, int bport)
{
    struct dp_config *c = dp_config_new("bench");
    char *name = xasprintf("outbound:127.0.0.1:%d", lport);
    struct dp_listener *l = dp_config_add_listener(c, name, "127.0.0.1", (uint32_t)lport);
    free(name);
    l->tcp_proxy.stat_prefix = xstrdup("backend");
    l->tcp_proxy.cluster = xstrdup("backend");
    struct dp_cluster *cl = dp_config_add_cluster(c, "backend");
    dp_cla_add_endpoint(&cl->load_assignment, "127.0.0.1", (uint32_t)bport, 1);
    return c;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

struct holder {
    int fd, n, *fds;
};

static void *hold_main(void *arg)
{
    struct holder *h = arg;
    for (int i = 0; i < h->n; i++)
        h->fds[i] = accept(h->fd, NULL, NULL);
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 4096) != 0)
        exit(1);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Opens n idle connections through the engine; prints RSS per connection. */
static int idle(struct dp_engine *eng, int n)
{
    int bport;
    struct holder h = {.n = n};
    h.fd = listen_any(&bport);
    h.fds = calloc((size_t)n, sizeof(int));
    pthread_t th;
    pthread_create(&th, NULL, hold_main, &h);
    struct err e;
    struct dp_config *c = tcp_cfg(0, bport);
    if (dp_engine_apply(eng, c, &e) != 0)
        return 1;
    char name[64];
    snprintf(name, sizeof(name), "outbound:127.0.0.1:%d", 0);
    int lport = dp_engine_listener_port(eng, name);
    usleep(100000);
    long before = rss_kb();
    int *cfds = calloc((size_t)n, sizeof(int));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        cfds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cfds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0)
            return 1;
        /* One byte each way, so every connection is fully established. */
        if (write(cfds[i], "x", 1) != 1)
            return 1;
    }
    pthread_join(th, NULL);
    usleep(300000);
    long after = rss_kb();
    printf("idle connections=%d rss_before_kb=%ld rss_after_kb=%ld bytes_per_connection=%ld "
           "(user space; kernel socket memory is not in RSS)\n",
           n, before, after, (after - before) * 1024 / n);
    for (int i = 0; i < n; i++) {
        close(cfds[i]);
        close(h.fds[i]);
    }
    close(h.fd);
    free(cfds);
    free(h.fds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the header of bench/dp/dp_bench.c\n");
        return 2;
    }
    const char *mode = argv[1];
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    dp_tls_enable_fast_ec_keys(); /* as kuma-dp; DP_TLS_NO_LEGACY_EC=1 for A/B */
    struct dp_engine_opts o = {.workers = argc > 4 ? atoi(argv[4]) : 1};
    struct dp_engine *eng;
    struct err e;
    if (strcmp(mode, "rss") == 0 || strcmp(mode, "idle") == 0)
        o.workers = 2;
    if (dp_engine_new(&o, &eng, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    struct dp_config *c;
    if (strcmp(mode, "idle") == 0) {
        int rc = idle(eng, atoi(argv[2]));
        dp_engine_free(eng);
        return rc;
    }
    if (strcmp(mode, "rss") == 0) {
        long before = rss_kb();
        int n = atoi(argv[2]);
        c = dp_config_new("rss");
        for (int i = 0; i < n; i++) {
            char *cn = xasprintf("service-%d", i);
            char *ln = xasprintf("outbound:127.0.0.1:%d", 20000 + i);
            struct dp_listener *l = dp_config_add_listener(c, ln, "127.0.0.1", 0);
            l->tcp_proxy.stat_prefix = xstrdup(cn);
            l->tcp_proxy.cluster = xstrdup(cn);
            struct dp_cluster *cl = dp_config_add_cluster(c, cn);
            cl->type = DP_CLUSTER_EDS;
            struct dp_cluster_load_assignment *a = dp_config_add_assignment(c, cn);
            for (int k = 0; k < 3; k++)
                dp_cla_add_endpoint(a, "10.0.0.1", (uint32_t)(8000 + k), 1);
            free(cn);
            free(ln);
        }
        if (dp_engine_apply(eng, c, &e) != 0) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        usleep(100000);
        printf("clusters=%d listeners=%d rss_before_kb=%ld rss_after_kb=%ld\n", n, n, before,
               rss_kb());
        dp_engine_free(eng);
        return 0;
    }
    int lport = atoi(argv[2]), bport = atoi(argv[3]);
    if (strcmp(mode, "tcp") == 0) {
        c = tcp_cfg(lport, bport);
    } else if (strcmp(mode, "mtls-out") == 0 && argc > 5) {
        c = tcp_cfg(lport, bport);
        secrets(c, argv[5], "web");
        struct dp_cluster *cl = &c->clusters[0];
        cl->tls = xcalloc(1, sizeof(*cl->tls));
        cl->tls->sni = xstrdup("backend{mesh=default}");
        cl->tls->common_tls_context.tls_certificate_sds_secret =
            xstrdup("identity_cert:secret:default");
        cl->tls->common_tls_context.validation_context_sds_secret =
            xstrdup("mesh_ca:secret:default");
        dp_tls_add_san(&cl->tls->common_tls_context, DP_MATCH_EXACT, "spiffe://default/backend");
        dp_tls_add_alpn(&cl->tls->common_tls_context, "kuma");
        if (getenv("DP_BENCH_NO_RESUME")) /* full handshakes only */
            cl->tls->max_session_keys = (struct dp_uint32_value){1, 0};
    } else if (strcmp(mode, "mtls-in") == 0 && argc > 5) {
        c = tcp_cfg(lport, bport);
        secrets(c, argv[5], "backend");
        struct dp_listener *l = &c->listeners[0];
        l->tls = xcalloc(1, sizeof(*l->tls));
        l->tls->require_client_certificate = 1;
        l->tls->common_tls_context.tls_certificate_sds_secret =
            xstrdup("identity_cert:secret:default");
        l->tls->common_tls_context.validation_context_sds_secret =
            xstrdup("mesh_ca:secret:default");
        dp_tls_add_san(&l->tls->common_tls_context, DP_MATCH_PREFIX, "spiffe://default/");
        l->rbac = xcalloc(1, sizeof(*l->rbac));
        l->rbac->stat_prefix = xstrdup("inbound.");
        struct dp_rbac_policy *p = dp_rbac_add_policy(l->rbac, "allow");
        dp_rbac_policy_add_principal(p, DP_MATCH_EXACT, "spiffe://default/web");
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (dp_engine_apply(eng, c, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "dp_bench %s listening on %d\n", mode, lport);
    int sig;
    sigwait(&set, &sig);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "cpu_s=%.3f rss_kb=%ld\n",
            ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
            rss_kb());
    dp_engine_free(eng);
    return 0;
}
