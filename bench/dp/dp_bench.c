/*
 * dp_bench — runs the proxy engine standalone for benchmarks, with the
 * configuration model built in code (kuma-dp itself takes configuration only
 * from xDS). Modes:
 *
 *   dp_bench tcp      <listen_port> <backend_port> <workers>
 *   dp_bench mtls-out <listen_port> <inbound_port> <workers> <certdir>
 *   dp_bench mtls-in  <listen_port> <backend_port> <workers> <certdir>
 *   dp_bench rss      <n_clusters>
 *
 * certdir holds ca.pem, web.pem/web.key (client) and backend.pem/backend.key
 * (server), as bench/dp/run.sh makes them. DP_BENCH_NO_RESUME=1 makes
 * mtls-out do full handshakes (max_session_keys 0). The proxy runs until SIGTERM or
 * SIGINT, then prints its CPU time. `rss` applies n clusters and n listeners
 * and prints VmRSS.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/engine.h"
#include "dp/model.h"

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
    struct dp_engine_opts o = {.workers = argc > 4 ? atoi(argv[4]) : 1};
    struct dp_engine *eng;
    struct err e;
    if (strcmp(mode, "rss") == 0)
        o.workers = 2;
    if (dp_engine_new(&o, &eng, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    struct dp_config *c;
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
