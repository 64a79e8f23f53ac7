/*
 * Server-side generation benchmark (no network): builds the snapshot of a
 * mesh with N dataplanes (N/10 services unless S is given, 1 inbound and 5
 * outbounds each, the fleet shape of bench/xds/fleet.js) and generates every
 * proxy, the way the mesh thread does on a cold start and after a mesh-wide
 * policy change. Prints the snapshot time, the generation time of all
 * proxies, and the same after a MeshTimeout is added.
 *   build/bench-xds-gen [N] [S] [MTLS=0|1] [threads]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/types.h"
#include "core/util.h"
#include "xds/generator.h"
#include "xds/snapshot.h"

static struct resource *res(const char *text)
{
    json_t *doc = NULL;
    struct err e;
    struct resource *r = NULL;
    if (codec_parse_one(text, strlen(text), &doc, &e) < 0 || resource_from_json(doc, &r, &e) < 0) {
        fprintf(stderr, "bad resource: %s\n%s\n", e.msg, text);
        exit(1);
    }
    json_decref(doc);
    return r;
}

static double ms_since(int64_t t0)
{
    return (double)(now_ns() - t0) / 1e6;
}

static void run(const char *label, struct xds_snapshot_input *in, size_t n, int threads)
{
    int64_t t0 = now_ns();
    struct xds_mesh_snapshot *snap = xds_snapshot_build_from(in);
    double snap_ms = ms_since(t0);
    struct xds_proxy_config **cfg = xcalloc(n, sizeof(*cfg));
    t0 = now_ns();
    struct xds_gen_job *jobs = xcalloc(n, sizeof(*jobs));
    for (size_t i = 0; i < n; i++)
        jobs[i].dp = snap->dataplanes[i];
    xds_generate_batch(snap, jobs, n, threads);
    double gen_ms = ms_since(t0);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        cfg[i] = jobs[i].out;
        for (int t = 0; t < XDS_TYPE_N; t++)
            for (size_t k = 0; k < cfg[i]->sets[t].n; k++)
                bytes += cfg[i]->sets[t].v[k].len;
    }
    printf("%-8s snapshot %.1f ms, generate %zu proxies %.1f ms (%.1f us/proxy), %.1f MB of "
           "resources (%zu threads)\n",
           label, snap_ms, n, gen_ms, gen_ms * 1000 / (double)n, (double)bytes / 1e6,
           (size_t)threads);
    for (size_t i = 0; i < n; i++)
        xds_proxy_config_unref(cfg[i]);
    free(cfg);
    free(jobs);
    xds_snapshot_unref(snap);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
    size_t s = argc > 2 ? strtoul(argv[2], NULL, 10) : n / 10;
    int http = getenv("HTTP") && strcmp(getenv("HTTP"), "1") == 0;
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (!s)
        s = 1;
    struct resource **dps = xcalloc(n, sizeof(*dps));
    for (size_t i = 0; i < n; i++) {
        char buf[2048];
        int len = snprintf(buf, sizeof(buf),
                           "{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":\"dp-%zu\","
                           "\"networking\":{\"address\":\"10.%zu.%zu.%zu\",\"inbound\":[{\"port\":"
                           "8080,\"tags\":{\"kuma.io/service\":\"svc-%zu\"%s}}],\"outbound\":[",
                           i, (i >> 16) & 255, (i >> 8) & 255, i & 255, i % s,
                           http ? ",\"kuma.io/protocol\":\"http\"" : "");
        for (size_t k = 1; k <= 5; k++)
            len += snprintf(buf + len, sizeof(buf) - (size_t)len,
                            "%s{\"port\":%zu,\"tags\":{\"kuma.io/service\":\"svc-%zu\"}}",
                            k > 1 ? "," : "", 10000 + k, (i + k * 7) % s);
        snprintf(buf + len, sizeof(buf) - (size_t)len, "]}}");
        dps[i] = res(buf);
    }
    struct resource *mesh = res("{\"type\":\"Mesh\",\"name\":\"default\"}");
    struct xds_snapshot_input in = {
        .mesh_name = "default", .mesh = mesh, .dataplanes = dps, .n_dataplanes = n};
    run("cold", &in, n, threads);
    struct resource *mt =
        res("{\"type\":\"MeshTimeout\",\"mesh\":\"default\",\"name\":\"mesh-timeout-all-default\","
            "\"spec\":{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":"
            "\"Mesh\"},\"default\":{\"connectionTimeout\":\"7s\",\"idleTimeout\":\"1h\"}}]}}");
    in.policies = &mt;
    in.n_policies = 1;
    run("policy", &in, n, threads);
    resource_free(mt);
    resource_free(mesh);
    for (size_t i = 0; i < n; i++)
        resource_free(dps[i]);
    free(dps);
    return 0;
}
