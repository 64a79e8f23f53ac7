/*
 * bench_ca — workload certificate issuance on one thread:
 *   1. N ECDSA P-256 leaves from a signer over Kuma's default RSA-2048 builtin CA
 *      (and over an ECDSA CA), each timed: total, throughput, p50/p99/max;
 *   2. "first certificate for a new dataplane": ca_issue_workload_cert from PEM
 *      (CA parsed every time), p50/p99;
 *   3. M RSA-2048 leaves (Kuma's choice), extrapolated to N.
 * Usage: bench-ca [N=10000] [M=200]. Run it pinned (taskset) for one-core figures.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/workload.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* Issues n certificates; prints totals and the latency distribution. */
static void run(const char *label, const struct ca_signer *s, const char *ca, const char *cak,
                enum ca_key_type kt, size_t n, int from_pem)
{
    json_t *tags = json_pack("{s:[s], s:s, s:s}", "kuma.io/service", "backend", "version", "v1",
                             "kuma.io/protocol", "http");
    double *lat = calloc(n, sizeof(double));
    double w0 = mono_s(), c0 = cpu_s();
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        char *c = NULL, *k = NULL;
        struct err e;
        double t0 = mono_s();
        int rc = from_pem ? ca_issue_workload_cert(ca, cak, "default", tags, 0, kt, &c, &k, &e)
                          : ca_signer_issue(s, "default", tags, 0, kt, &c, &k, &e);
        lat[i] = mono_s() - t0;
        if (rc != 0) {
            fprintf(stderr, "issue failed: %s\n", e.msg);
            exit(1);
        }
        bytes += strlen(c) + strlen(k);
        free(c);
        free(k);
    }
    double wall = mono_s() - w0, cpu = cpu_s() - c0;
    qsort(lat, n, sizeof(double), cmp_d);
    printf("%-44s n=%-6zu wall=%8.3f s  cpu=%8.3f s  %9.1f certs/s  per-cert=%8.3f ms  "
           "p50=%7.3f ms  p99=%7.3f ms  max=%7.3f ms  avg PEM bytes=%zu\n",
           label, n, wall, cpu, (double)n / wall, wall / (double)n * 1e3, pct(lat, n, 0.50) * 1e3,
           pct(lat, n, 0.99) * 1e3, lat[n - 1] * 1e3, bytes / n);
    fflush(stdout);
    free(lat);
    json_decref(tags);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
    size_t m = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
    char *rca, *rcak, *eca, *ecak;
    struct err e;
    if (ca_builtin_generate("default", NULL, CA_KEY_RSA, &rca, &rcak, &e) ||
        ca_builtin_generate("default", NULL, CA_KEY_ECDSA_P256, &eca, &ecak, &e)) {
        fprintf(stderr, "CA: %s\n", e.msg);
        return 1;
    }
    struct ca_signer *rs, *es;
    if (ca_signer_new(rca, rcak, &rs, &e) || ca_signer_new(eca, ecak, &es, &e)) {
        fprintf(stderr, "signer: %s\n", e.msg);
        return 1;
    }
    run("ECDSA P-256 leaf, RSA-2048 CA (default)", rs, NULL, NULL, CA_KEY_ECDSA_P256, n, 0);
    run("ECDSA P-256 leaf, ECDSA P-256 CA", es, NULL, NULL, CA_KEY_ECDSA_P256, n, 0);
    run("first cert, CA parsed from PEM, RSA CA", NULL, rca, rcak, CA_KEY_ECDSA_P256,
        n / 10 ? n / 10 : 1, 1);
    run("RSA-2048 leaf, RSA-2048 CA (Kuma's choice)", rs, NULL, NULL, CA_KEY_RSA, m, 0);
    ca_signer_free(rs);
    ca_signer_free(es);
    free(rca), free(rcak), free(eca), free(ecak);
    return 0;
}
