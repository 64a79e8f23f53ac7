/*
 * xDS unit tests: node id parsing, names, generator goldens
 * (testdata/<case>.golden.json; UPDATE_GOLDEN=1 rewrites them), mesh
 * isolation, input hashing, and the ADS server's start/stop on port 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/codec.h"
#include "core/types.h"
#include "mesh/events.h"
#include "mesh/manager.h"
#include "store/store.h"
#include "dp/xds_map.h"
#include "test.h"
#include "xds/crossmesh.h"
#include "xds/generator.h"
#include "xds/hmap.h"
#include "xds/policies.h"
#include "xds/model.h"
#include "xds/names.h"
#include "xds/pbjson.h"
#include "xds/server.h"
#include "xds/snapshot.h"

static struct resource *res(const char *text)
{
    json_t *doc = NULL;
    struct err e;
    if (codec_parse_one(text, strlen(text), &doc, &e) < 0)
        TEST_FAIL_("parse: %s", e.msg);
    struct resource *r = NULL;
    if (resource_from_json(doc, &r, &e) < 0)
        TEST_FAIL_("resource: %s", e.msg);
    json_decref(doc);
    return r;
}

static void free_all(struct resource **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        resource_free(v[i]);
}

TEST(xds_proxy_id_parse)
{
    struct err e;
    char *mesh = NULL, *name = NULL;
    ASSERT_INT_EQ(xds_parse_proxy_id("", &mesh, &name, &e), -1);
    ASSERT_STR_EQ(e.msg, "Envoy ID must not be nil");
    ASSERT_INT_EQ(xds_parse_proxy_id(NULL, &mesh, &name, &e), -1);
    ASSERT_STR_EQ(e.msg, "Envoy ID must not be nil");
    ASSERT_INT_EQ(xds_parse_proxy_id("demo", &mesh, &name, &e), -1);
    ASSERT_STR_EQ(e.msg, "the name should be provided after the dot");
    ASSERT_INT_EQ(xds_parse_proxy_id("demo.", &mesh, &name, &e), -1);
    ASSERT_STR_EQ(e.msg, "name must not be empty");
    ASSERT_INT_EQ(xds_parse_proxy_id("demo.example", &mesh, &name, &e), 0);
    ASSERT_STR_EQ(mesh, "demo");
    ASSERT_STR_EQ(name, "example");
    free(mesh);
    free(name);
    /* SplitN(id, ".", 2): the name keeps further dots. */
    ASSERT_INT_EQ(xds_parse_proxy_id("demo.example.sample", &mesh, &name, &e), 0);
    ASSERT_STR_EQ(mesh, "demo");
    ASSERT_STR_EQ(name, "example.sample");
    free(mesh);
    free(name);
    /* An empty mesh is allowed (zone proxies). */
    ASSERT_INT_EQ(xds_parse_proxy_id(".ingress", &mesh, &name, &e), 0);
    ASSERT_STR_EQ(mesh, "");
    ASSERT_STR_EQ(name, "ingress");
    free(mesh);
    free(name);
}

TEST(xds_names)
{
    char *s;
    ASSERT_STR_EQ((s = xds_name_inbound("10.0.0.1", 8080)), "inbound:10.0.0.1:8080");
    free(s);
    ASSERT_STR_EQ((s = xds_name_inbound("fd00::1", 80)), "inbound:[fd00::1]:80");
    free(s);
    ASSERT_STR_EQ((s = xds_name_outbound("127.0.0.1", 10001)), "outbound:127.0.0.1:10001");
    free(s);
    ASSERT_STR_EQ((s = xds_name_local_cluster(8080)), "localhost:8080");
    free(s);
    ASSERT_STR_EQ((s = xds_stat_name("outbound:passthrough:ipv4")), "outbound_passthrough_ipv4");
    free(s);
}

TEST(xds_parse_duration)
{
    int64_t ms = -1;
    ASSERT_INT_EQ(xds_parse_duration_ms("10s", &ms), 0);
    ASSERT_INT_EQ(ms, 10000);
    ASSERT_INT_EQ(xds_parse_duration_ms("1m30s", &ms), 0);
    ASSERT_INT_EQ(ms, 90000);
    ASSERT_INT_EQ(xds_parse_duration_ms("250ms", &ms), 0);
    ASSERT_INT_EQ(ms, 250);
    ASSERT_INT_EQ(xds_parse_duration_ms("0", &ms), 0);
    ASSERT_INT_EQ(ms, 0);
    ASSERT_INT_EQ(xds_parse_duration_ms("10", &ms), -1);
    ASSERT_INT_EQ(xds_parse_duration_ms("abc", &ms), -1);
}

static const char *MESH_DEFAULT = "{\"type\":\"Mesh\",\"name\":\"default\"}";

static const char *WEB = "type: Dataplane\n"
                         "mesh: default\n"
                         "name: web-1\n"
                         "networking:\n"
                         "  address: 10.0.0.1\n"
                         "  inbound:\n"
                         "  - port: 18080\n"
                         "    servicePort: 8080\n"
                         "    tags:\n"
                         "      kuma.io/service: web\n"
                         "      kuma.io/protocol: http\n"
                         "  outbound:\n"
                         "  - port: 10001\n"
                         "    tags:\n"
                         "      kuma.io/service: backend\n"
                         "  - port: 10002\n"
                         "    address: 127.0.0.2\n"
                         "    tags:\n"
                         "      kuma.io/service: db\n";

static const char *BACKEND1 = "type: Dataplane\n"
                              "mesh: default\n"
                              "name: backend-1\n"
                              "networking:\n"
                              "  address: 10.0.0.2\n"
                              "  inbound:\n"
                              "  - port: 9090\n"
                              "    serviceAddress: 10.0.0.2\n"
                              "    tags:\n"
                              "      kuma.io/service: backend\n"
                              "      version: v1\n";

static const char *BACKEND2_NOT_READY = "type: Dataplane\n"
                                        "mesh: default\n"
                                        "name: backend-2\n"
                                        "networking:\n"
                                        "  address: 10.0.0.3\n"
                                        "  inbound:\n"
                                        "  - port: 9090\n"
                                        "    health:\n"
                                        "      ready: false\n"
                                        "    tags:\n"
                                        "      kuma.io/service: backend\n";

/* The generated configuration as indented JSON with sorted keys (what the
 * assertions below search); caller frees. */
static char *config_text(struct xds_proxy_config *cfg)
{
    json_t *j = xds_proxy_config_to_json(cfg);
    char *s = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static void check_golden(const char *name, struct xds_proxy_config *cfg)
{
    json_t *j = xds_proxy_config_to_json(cfg);
    char *got = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    char *path = xasprintf("tests/unit/xds/testdata/%s.golden.json", name);
    struct err e;
    if (getenv("UPDATE_GOLDEN")) {
        char *text = xasprintf("%s\n", got);
        if (write_file_atomic(path, text, strlen(text), 0644, &e) < 0)
            TEST_FAIL_("%s", e.msg);
        free(text);
    }
    size_t len;
    char *want = read_file(path, 1 << 20, &len, &e);
    if (!want)
        TEST_FAIL_("%s (run with UPDATE_GOLDEN=1 to create it)", e.msg);
    if (len && want[len - 1] == '\n')
        want[len - 1] = '\0';
    ASSERT_STR_EQ(got, want);
    free(want);
    free(got);
    free(path);
}

static struct xds_proxy_config *gen_for(struct xds_mesh_snapshot *snap, const char *name,
                                        int proxyless)
{
    const struct xds_dataplane *dp = xds_snapshot_dataplane(snap, name);
    ASSERT(dp != NULL);
    struct xds_gen_opts o = {.proxyless = proxyless};
    return xds_generate(snap, dp, &o);
}

TEST(xds_golden_sidecar)
{
    struct resource *mesh = res(MESH_DEFAULT);
    struct resource *dps[] = {res(WEB), res(BACKEND1), res(BACKEND2_NOT_READY)};
    struct xds_mesh_snapshot *snap = xds_snapshot_build("default", mesh, dps, 3);
    ASSERT_INT_EQ(snap->n_dataplanes, 3);
    ASSERT_INT_EQ(snap->n_services, 2); /* backend (1 ready endpoint), web */
    ASSERT_INT_EQ(xds_snapshot_service(snap, "backend")->n_endpoints, 1);
    struct xds_proxy_config *cfg = gen_for(snap, "web-1", 0);
    /* db has no endpoints: an empty assignment, so the cluster can warm. */
    ASSERT_INT_EQ(cfg->sets[XDS_EDS].n, 2);
    check_golden("sidecar", cfg);
    /* Same input, same bytes, same version. */
    struct xds_proxy_config *again = gen_for(snap, "web-1", 0);
    for (int t = 0; t < XDS_TYPE_N; t++)
        ASSERT_STR_EQ(again->sets[t].version, cfg->sets[t].version);
    /* The shared endpoint bytes are borrowed from the snapshot, not copied. */
    ASSERT(cfg->sets[XDS_EDS].v[0].borrowed);
    ASSERT(cfg->sets[XDS_EDS].v[0].data == xds_snapshot_service(snap, "backend")->cla);
    xds_proxy_config_unref(again);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 3);
    resource_free(mesh);
}

static const char *TP = "type: Dataplane\n"
                        "mesh: default\n"
                        "name: tp-1\n"
                        "networking:\n"
                        "  address: 10.0.0.5\n"
                        "  inbound:\n"
                        "  - port: 8080\n"
                        "    tags:\n"
                        "      kuma.io/service: web\n"
                        "  outbound:\n"
                        "  - port: 80\n"
                        "    address: 240.0.0.1\n"
                        "    tags:\n"
                        "      kuma.io/service: backend\n"
                        "  transparentProxying:\n"
                        "    redirectPortInbound: 15006\n"
                        "    redirectPortOutbound: 15001\n"
                        "    ipFamilyMode: dualstack\n";

TEST(xds_golden_transparent_proxy)
{
    struct resource *mesh = res(MESH_DEFAULT);
    struct resource *dps[] = {res(TP), res(BACKEND1)};
    struct xds_mesh_snapshot *snap = xds_snapshot_build("default", mesh, dps, 2);
    struct xds_proxy_config *cfg = gen_for(snap, "tp-1", 0);
    check_golden("transparent-proxy", cfg);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 2);
    resource_free(mesh);
}

TEST(xds_golden_passthrough_off)
{
    struct resource *mesh = res("type: Mesh\nname: default\nnetworking:\n  outbound:\n"
                                "    passthrough: false\n");
    struct resource *dps[] = {res(TP)};
    struct xds_mesh_snapshot *snap = xds_snapshot_build("default", mesh, dps, 1);
    ASSERT_INT_EQ(snap->passthrough, 0);
    struct xds_proxy_config *cfg = gen_for(snap, "tp-1", 0);
    check_golden("passthrough-off", cfg);
    /* The listener stays, the cluster goes (Kuma's behaviour). */
    int listener = 0, cluster = 0;
    for (size_t i = 0; i < cfg->sets[XDS_LDS].n; i++)
        listener |= strcmp(cfg->sets[XDS_LDS].v[i].name, "outbound:passthrough:ipv4") == 0;
    for (size_t i = 0; i < cfg->sets[XDS_CDS].n; i++)
        cluster |= strcmp(cfg->sets[XDS_CDS].v[i].name, "outbound:passthrough:ipv4") == 0;
    ASSERT(listener);
    ASSERT(!cluster);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 1);
    resource_free(mesh);
}

TEST(xds_golden_proxyless)
{
    struct resource *mesh = res(MESH_DEFAULT);
    struct resource *dps[] = {res(WEB), res(BACKEND1)};
    struct xds_mesh_snapshot *snap = xds_snapshot_build("default", mesh, dps, 2);
    struct xds_proxy_config *cfg = gen_for(snap, "web-1", 1);
    check_golden("proxyless", cfg);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 2);
    resource_free(mesh);
}

TEST(xds_isolation_between_meshes)
{
    /* Same service name in two meshes: each side sees only its own. */
    struct resource *dps[] = {
        res("type: Dataplane\nmesh: a\nname: backend-a\nnetworking:\n  address: 10.1.0.1\n"
            "  inbound:\n  - port: 9090\n    tags:\n      kuma.io/service: backend\n"),
        res("type: Dataplane\nmesh: a\nname: only-a\nnetworking:\n  address: 10.1.0.2\n"
            "  inbound:\n  - port: 7070\n    tags:\n      kuma.io/service: secret\n"),
        res("type: Dataplane\nmesh: b\nname: backend-b\nnetworking:\n  address: 10.2.0.1\n"
            "  inbound:\n  - port: 9090\n    tags:\n      kuma.io/service: backend\n"),
        res("type: Dataplane\nmesh: b\nname: web-b\nnetworking:\n  address: 10.2.0.2\n"
            "  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: backend\n"
            "  - port: 10002\n    tags:\n      kuma.io/service: secret\n"),
    };
    struct xds_mesh_snapshot *b = xds_snapshot_build("b", NULL, dps, 4);
    ASSERT_INT_EQ(b->n_dataplanes, 2);
    ASSERT(xds_snapshot_dataplane(b, "backend-a") == NULL);
    ASSERT(xds_snapshot_service(b, "secret") == NULL);
    struct xds_proxy_config *cfg = gen_for(b, "web-b", 0);
    char *text = config_text(cfg);
    ASSERT_STR_CONTAINS(text, "10.2.0.1");
    ASSERT(strstr(text, "10.1.0.") == NULL);
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(b);
    free_all(dps, 4);
}

TEST(xds_input_hash_tracks_dependencies)
{
    struct resource *mesh = res(MESH_DEFAULT);
    struct resource *before[] = {res(WEB), res(BACKEND1)};
    struct resource *other[] = {
        res(WEB), res(BACKEND1),
        res("type: Dataplane\nmesh: default\nname: x-1\nnetworking:\n  address: 10.9.0.1\n"
            "  inbound:\n  - port: 1\n    tags:\n      kuma.io/service: unrelated\n")};
    struct resource *moved[] = {res(WEB),
                                res("type: Dataplane\nmesh: default\nname: backend-1\nnetworking:\n"
                                    "  address: 10.0.0.9\n  inbound:\n  - port: 9090\n    tags:\n"
                                    "      kuma.io/service: backend\n")};
    struct xds_mesh_snapshot *s1 = xds_snapshot_build("default", mesh, before, 2);
    struct xds_mesh_snapshot *s2 = xds_snapshot_build("default", mesh, other, 3);
    struct xds_mesh_snapshot *s3 = xds_snapshot_build("default", mesh, moved, 2);
    struct xds_gen_opts o = {0};
    uint64_t h1 = xds_gen_input_hash(s1, xds_snapshot_dataplane(s1, "web-1"), &o);
    uint64_t h2 = xds_gen_input_hash(s2, xds_snapshot_dataplane(s2, "web-1"), &o);
    uint64_t h3 = xds_gen_input_hash(s3, xds_snapshot_dataplane(s3, "web-1"), &o);
    ASSERT(h1 == h2); /* a service web-1 does not call: nothing to regenerate */
    ASSERT(h1 != h3); /* an endpoint of backend moved */
    xds_snapshot_unref(s1);
    xds_snapshot_unref(s2);
    xds_snapshot_unref(s3);
    free_all(before, 2);
    free_all(other, 3);
    free_all(moved, 2);
    resource_free(mesh);
}

TEST(xds_server_ephemeral_port_and_clean_stop)
{
    struct store *st;
    struct err e;
    ASSERT_INT_EQ(store_open(STORE_KIND_MEMORY, NULL, &st, &e), 0);
    struct event_bus *bus = event_bus_new();
    struct manager_config mc = {0};
    struct manager *mgr = manager_new(st, bus, &mc);
    struct xds_server_config c;
    ASSERT_INT_EQ(xds_server_config_init(&c, &e), 0);
    ASSERT_INT_EQ(c.deregistration_delay_ms, XDS_DEFAULT_DEREGISTRATION_DELAY_MS);
    c.address = "127.0.0.1";
    c.port = 0;
    struct xds_server *srv = NULL;
    int port = 0;
    ASSERT_INT_EQ(xds_server_start(mgr, bus, &c, &srv, &port, &e), 0);
    ASSERT(port > 0);
    /* SO_REUSEPORT is off: a second server cannot share the port. */
    struct xds_server *srv2 = NULL;
    int port2 = 0;
    c.port = port;
    struct event_bus *bus2 = event_bus_new();
    ASSERT_INT_EQ(xds_server_start(mgr, bus2, &c, &srv2, &port2, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "could not bind");
    event_bus_free(bus2);
    struct xds_dataplane_insight in;
    ASSERT_INT_EQ(xds_server_insight(srv, "default", "nobody", &in), -1);
    event_bus_close(bus);
    xds_server_stop(srv);
    manager_free(mgr);
    event_bus_free(bus);
    store_close(st);
}

/* ---- phase B: mTLS, permissions, routes, connection policies ---------- */

static const char *MESH_MTLS = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n"
                               "  backends:\n  - name: ca-1\n    type: builtin\n";

static struct xds_mesh_snapshot *snap_with(const char *mesh_text, struct resource **dps, size_t n,
                                           struct resource **pols, size_t np)
{
    struct resource *mesh = res(mesh_text);
    struct xds_snapshot_input in = {.mesh_name = "default",
                                    .mesh = mesh,
                                    .dataplanes = dps,
                                    .n_dataplanes = n,
                                    .policies = pols,
                                    .n_policies = np,
                                    /* a fixed "CA" (no key: no signer) keeps goldens stable */
                                    .ca_cert_pem = "-----FAKE CA-----\n"};
    struct xds_mesh_snapshot *s = xds_snapshot_build_from(&in);
    resource_free(mesh);
    return s;
}

static struct xds_proxy_config *gen_mtls(struct xds_mesh_snapshot *snap, const char *name)
{
    const struct xds_dataplane *dp = xds_snapshot_dataplane(snap, name);
    ASSERT(dp != NULL);
    struct xds_gen_opts o = {.identity_cert_pem = "-----FAKE CERT-----\n",
                             .identity_key_pem = "-----FAKE KEY-----\n"};
    return xds_generate(snap, dp, &o);
}

static const char *TP_WEB_TO_BACKEND =
    "type: TrafficPermission\nmesh: default\nname: web-to-backend\n"
    "sources:\n- match:\n    kuma.io/service: web\n"
    "    version: v1\n"
    "destinations:\n- match:\n    kuma.io/service: backend\n";

TEST(xds_golden_sidecar_mtls_permissions)
{
    struct resource *dps[] = {res(WEB), res(BACKEND1)};
    struct resource *pols[] = {res(TP_WEB_TO_BACKEND)};
    struct xds_mesh_snapshot *snap = snap_with(MESH_MTLS, dps, 2, pols, 1);
    ASSERT(snap->mtls);
    ASSERT(snap->signer == NULL); /* no key given */
    /* backend-1: the permission's principals; web-1: deny all (no permission). */
    struct xds_proxy_config *cfg = gen_mtls(snap, "backend-1");
    check_golden("sidecar-mtls-backend", cfg);
    xds_proxy_config_unref(cfg);
    cfg = gen_mtls(snap, "web-1");
    check_golden("sidecar-mtls-web", cfg);
    ASSERT_INT_EQ(cfg->sets[XDS_SDS].n, 2);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 2);
    free_all(pols, 1);
}

TEST(xds_mesh_traffic_permission_precedence)
{
    struct resource *dps[] = {res(BACKEND1)};
    struct resource *pols[] = {
        res(TP_WEB_TO_BACKEND),
        res("type: MeshTrafficPermission\nmesh: default\nname: mtp\nspec:\n"
            "  targetRef: {kind: Mesh}\n  from:\n"
            "  - targetRef: {kind: Mesh}\n    default: {action: Allow}\n"
            "  - targetRef: {kind: MeshSubset, tags: {kuma.io/service: evil}}\n"
            "    default: {action: Deny}\n")};
    struct xds_mesh_snapshot *snap = snap_with(MESH_MTLS, dps, 1, pols, 2);
    struct xds_proxy_config *cfg = gen_mtls(snap, "backend-1");
    char *text = config_text(cfg);
    /* MeshTrafficPermission wins; the Deny carves spiffe://default/evil out. */
    ASSERT_STR_CONTAINS(text, "\"MeshTrafficPermission\"");
    ASSERT(strstr(text, "web-to-backend") == NULL);
    ASSERT_STR_CONTAINS(text, "\"notId\"");
    ASSERT_STR_CONTAINS(text, "spiffe://default/evil");
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 1);
    free_all(pols, 2);
}

TEST(xds_no_rbac_without_mtls)
{
    struct resource *dps[] = {res(BACKEND1)};
    struct resource *pols[] = {res(TP_WEB_TO_BACKEND)};
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 1, pols, 1);
    struct xds_proxy_config *cfg = gen_for(snap, "backend-1", 0);
    char *text = config_text(cfg);
    ASSERT(strstr(text, "rbac") == NULL);
    ASSERT(strstr(text, "transportSocket") == NULL);
    ASSERT_INT_EQ(cfg->sets[XDS_SDS].n, 0);
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 1);
    free_all(pols, 1);
}

TEST(xds_golden_split_and_connection_policies)
{
    struct resource *dps[] = {res(WEB), res(BACKEND1)};
    struct resource *pols[] = {
        res("type: TrafficRoute\nmesh: default\nname: split\n"
            "sources:\n- match:\n    kuma.io/service: web\n"
            "destinations:\n- match:\n    kuma.io/service: backend\n"
            "conf:\n  loadBalancer: {leastRequest: {}}\n  split:\n"
            "  - weight: 90\n    destination: {kuma.io/service: backend, version: v1}\n"
            "  - weight: 10\n    destination: {kuma.io/service: backend, version: v2}\n"
            "  - weight: 0\n    destination: {kuma.io/service: backend, version: v3}\n"),
        res("type: MeshTimeout\nmesh: default\nname: mt\nspec:\n  targetRef: {kind: Mesh}\n"
            "  to:\n  - targetRef: {kind: Mesh}\n    default: {connectionTimeout: 2s, idleTimeout: "
            "1h}\n"
            "  - targetRef: {kind: MeshService, name: db}\n    default: {connectionTimeout: "
            "500ms}\n"
            "  from:\n  - targetRef: {kind: Mesh}\n    default: {connectionTimeout: 3s}\n"),
        res("type: MeshCircuitBreaker\nmesh: default\nname: cb\nspec:\n  targetRef: {kind: Mesh}\n"
            "  to:\n  - targetRef: {kind: Mesh}\n    default:\n"
            "      connectionLimits: {maxConnections: 7, maxRequests: 8}\n"
            "      outlierDetection:\n        interval: 5s\n        baseEjectionTime: 30s\n"
            "        detectors: {totalFailures: {consecutive: 4}}\n"),
        res("type: MeshRetry\nmesh: default\nname: mr\nspec:\n  targetRef: {kind: Mesh}\n"
            "  to:\n  - targetRef: {kind: Mesh}\n    default: {tcp: {maxConnectAttempt: 3}}\n"),
        res("type: HealthCheck\nmesh: default\nname: hc\n"
            "sources:\n- match:\n    kuma.io/service: '*'\n"
            "destinations:\n- match:\n    kuma.io/service: db\n"
            "conf:\n  interval: 10s\n  timeout: 2s\n  unhealthyThreshold: 3\n  healthyThreshold: "
            "1\n"),
        res("type: Timeout\nmesh: default\nname: legacy-timeout\n"
            "sources:\n- match:\n    kuma.io/service: '*'\n"
            "destinations:\n- match:\n    kuma.io/service: db\n"
            "conf:\n  connectTimeout: 9s\n  tcp: {idleTimeout: 7m}\n"),
    };
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 2, pols, 6);
    struct xds_proxy_config *cfg = gen_for(snap, "web-1", 0);
    check_golden("split-policies", cfg);
    /* Two weighted clusters (weight 0 dropped), both reading backend's EDS. */
    int split = 0;
    for (size_t i = 0; i < cfg->sets[XDS_CDS].n; i++)
        split += strncmp(cfg->sets[XDS_CDS].v[i].name, "backend-", 8) == 0;
    ASSERT_INT_EQ(split, 2);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 2);
    free_all(pols, 6);
}

TEST(xds_golden_gateway_mtls)
{
    struct resource *dps[] = {
        res("type: Dataplane\nmesh: default\nname: gw-1\nnetworking:\n  address: 10.0.0.7\n"
            "  gateway:\n    tags:\n      kuma.io/service: edge\n"
            "  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: backend\n"),
        res(BACKEND1)};
    struct xds_mesh_snapshot *snap = snap_with(MESH_MTLS, dps, 2, NULL, 0);
    const struct xds_dataplane *gw = xds_snapshot_dataplane(snap, "gw-1");
    ASSERT(gw && gw->gateway && !gw->builtin_gateway);
    /* A delegated gateway: outbounds like a sidecar, no inbound; its
     * identity comes from the gateway tags. */
    ASSERT(gw->identity_tags != NULL);
    struct xds_proxy_config *cfg = gen_mtls(snap, "gw-1");
    check_golden("gateway-delegated-mtls", cfg);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 2);
}

TEST(xds_input_hash_tracks_policies_and_ca)
{
    struct resource *dps[] = {res(WEB), res(BACKEND1)};
    /* Both meshes have a legacy TrafficPermission (which one decides who
     * generates web-1's HTTP permissions: network RBAC with TrafficPermissions
     * in the mesh, the HTTP RBAC filter without), only for other services. */
    struct resource *pols[] = {res(TP_WEB_TO_BACKEND),
                               res("type: TrafficPermission\nmesh: default\nname: a-to-db\n"
                                   "sources:\n- match:\n    kuma.io/service: a\n"
                                   "destinations:\n- match:\n    kuma.io/service: db\n")};
    struct xds_mesh_snapshot *s1 = snap_with(MESH_MTLS, dps, 2, pols + 1, 1);
    struct xds_mesh_snapshot *s2 = snap_with(MESH_MTLS, dps, 2, pols, 2);
    struct xds_gen_opts o = {.identity_cert_pem = "A"};
    struct xds_gen_opts o2 = {.identity_cert_pem = "B"};
    uint64_t h1 = xds_gen_input_hash(s1, xds_snapshot_dataplane(s1, "web-1"), &o);
    uint64_t h2 = xds_gen_input_hash(s2, xds_snapshot_dataplane(s2, "web-1"), &o);
    uint64_t h3 = xds_gen_input_hash(s1, xds_snapshot_dataplane(s1, "web-1"), &o2);
    ASSERT(h1 != h2); /* a policy changed */
    ASSERT(h1 != h3); /* a new certificate */
    /* But web-1's output did not change with a permission for backend: no push. */
    struct xds_proxy_config *c1 = gen_mtls(s1, "web-1"), *c2 = gen_mtls(s2, "web-1");
    for (int t = 0; t < XDS_TYPE_N; t++)
        ASSERT_STR_EQ(c1->sets[t].version, c2->sets[t].version);
    xds_proxy_config_unref(c1);
    xds_proxy_config_unref(c2);
    xds_snapshot_unref(s1);
    xds_snapshot_unref(s2);
    free_all(dps, 2);
    free_all(pols, 2);
}

TEST(xds_sni_and_hmap)
{
    struct xds_tag tags[] = {{(char *)"version", (char *)"v1"}, {(char *)"az", (char *)"a"}};
    char *s = xds_sni("default", "backend", NULL, 0);
    ASSERT_STR_EQ(s, "backend{mesh=default}");
    free(s);
    s = xds_sni("default", "backend", tags, 2);
    ASSERT_STR_EQ(s, "backend{az=a,mesh=default,version=v1}");
    free(s);
    struct hmap m = {0};
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "mesh\n%d", i);
        hmap_put(&m, key, (void *)(intptr_t)(i + 1));
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof(key), "mesh\n%d", i);
        ASSERT((intptr_t)hmap_del(&m, key) == i + 1);
    }
    ASSERT_INT_EQ(m.n, 2500);
    snprintf(key, sizeof(key), "mesh\n%d", 4999);
    ASSERT((intptr_t)hmap_get(&m, key) == 5000);
    snprintf(key, sizeof(key), "mesh\n%d", 4998);
    ASSERT(hmap_get(&m, key) == NULL);
    size_t n = 0;
    for (size_t i = 0; hmap_next(&m, &i, NULL, NULL);)
        n++;
    ASSERT_INT_EQ(n, 2500);
    hmap_free(&m);
}

/* ---- phase C: HTTP ------------------------------------------------------ */

static const char *API_HTTP_V1 = "type: Dataplane\nmesh: default\nname: api-1\n"
                                 "networking:\n  address: 10.0.0.5\n  inbound:\n"
                                 "  - port: 8080\n    tags:\n      kuma.io/service: api\n"
                                 "      kuma.io/protocol: http\n      version: v1\n";
static const char *API_HTTP_V2 = "type: Dataplane\nmesh: default\nname: api-2\n"
                                 "networking:\n  address: 10.0.0.6\n  inbound:\n"
                                 "  - port: 8080\n    tags:\n      kuma.io/service: api\n"
                                 "      kuma.io/protocol: http\n      version: v2\n";
static const char *GRPC_SVC = "type: Dataplane\nmesh: default\nname: rpc-1\n"
                              "networking:\n  address: 10.0.0.8\n  inbound:\n"
                              "  - port: 9090\n    tags:\n      kuma.io/service: rpc\n"
                              "      kuma.io/protocol: grpc\n";
static const char *FRONT = "type: Dataplane\nmesh: default\nname: front-1\n"
                           "networking:\n  address: 10.0.0.9\n  inbound:\n"
                           "  - port: 80\n    servicePort: 8000\n    tags:\n"
                           "      kuma.io/service: front\n      kuma.io/protocol: http\n"
                           "      team: edge\n"
                           "  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: api\n"
                           "  - port: 10002\n    tags:\n      kuma.io/service: rpc\n"
                           "  - port: 10003\n    tags:\n      kuma.io/service: backend\n";

TEST(xds_golden_http)
{
    struct resource *dps[] = {res(FRONT), res(API_HTTP_V1), res(API_HTTP_V2), res(GRPC_SVC),
                              res(BACKEND1)};
    struct resource *pols[] = {
        res("type: TrafficRoute\nmesh: default\nname: api-routes\n"
            "sources:\n- match:\n    kuma.io/service: front\n"
            "destinations:\n- match:\n    kuma.io/service: api\n"
            "conf:\n  http:\n"
            "  - match:\n      path: {prefix: /v2}\n      method: {exact: GET}\n"
            "      headers: {x-canary: {exact: 'yes'}, x-user: {regex: '^a.*'}}\n"
            "    destination: {kuma.io/service: api, version: v2}\n"
            "  - match:\n      path: {exact: /health}\n"
            "    modify:\n      path: {regex: {pattern: '^/health$', substitution: /ready}}\n"
            "      host: {fromPath: {pattern: '^/(.+)$', substitution: '\\\\1.local'}}\n"
            "      requestHeaders:\n        add: [{name: x-a, value: b}, {name: x-c, value: d, "
            "append: true}]\n        remove: [{name: x-e}]\n"
            "      responseHeaders: {add: [{name: x-r, value: s}], remove: [{name: server}]}\n"
            "    split:\n    - weight: 50\n      destination: {kuma.io/service: api, version: v1}\n"
            "    - weight: 50\n      destination: {kuma.io/service: api, version: v2}\n"
            "  - match:\n      path: {regex: '/items/[0-9]+'}\n"
            "    modify: {host: {value: items.local}}\n"
            "    destination: {kuma.io/service: api}\n"
            "  destination: {kuma.io/service: api}\n"),
        res("type: MeshTimeout\nmesh: default\nname: mt-http\nspec:\n  targetRef: {kind: Mesh}\n"
            "  to:\n  - targetRef: {kind: MeshService, name: api}\n    default:\n"
            "      idleTimeout: 30m\n      http: {requestTimeout: 5s, streamIdleTimeout: 1m, "
            "maxStreamDuration: 10m}\n"
            "  from:\n  - targetRef: {kind: Mesh}\n    default:\n"
            "      http: {requestTimeout: 20s, streamIdleTimeout: 2h}\n"),
        res("type: MeshRetry\nmesh: default\nname: mr-http\nspec:\n  targetRef: {kind: Mesh}\n"
            "  to:\n  - targetRef: {kind: MeshService, name: api}\n    default:\n"
            "      http:\n        numRetries: 3\n        perTryTimeout: 2s\n"
            "        backOff: {baseInterval: 100ms, maxInterval: 1s}\n"
            "        retryOn: [5xx, GatewayError, '503']\n"),
        res("type: Retry\nmesh: default\nname: legacy-retry\n"
            "sources:\n- match:\n    kuma.io/service: '*'\n"
            "destinations:\n- match:\n    kuma.io/service: rpc\n"
            "conf:\n  grpc: {numRetries: 2, perTryTimeout: 1s}\n"),
        res("type: Timeout\nmesh: default\nname: legacy-timeout\n"
            "sources:\n- match:\n    kuma.io/service: '*'\n"
            "destinations:\n- match:\n    kuma.io/service: rpc\n"
            "conf:\n  connectTimeout: 3s\n  grpc: {streamIdleTimeout: 5m, maxStreamDuration: 30m}\n"
            "  http: {requestTimeout: 7s}\n"),
    };
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 5, pols, 5);
    ASSERT_INT_EQ(xds_snapshot_service(snap, "api")->protocol, XDS_PROTO_HTTP);
    ASSERT_INT_EQ(xds_snapshot_service(snap, "rpc")->protocol, XDS_PROTO_GRPC);
    ASSERT_INT_EQ(xds_snapshot_service(snap, "backend")->protocol, XDS_PROTO_TCP);
    struct xds_proxy_config *cfg = gen_for(snap, "front-1", 0);
    check_golden("http-routes", cfg);
    xds_proxy_config_unref(cfg);
    /* mTLS: the inbound HCM forwards the client certificate's URI. */
    xds_snapshot_unref(snap);
    snap = snap_with(MESH_MTLS, dps, 5, pols, 5);
    cfg = gen_mtls(snap, "api-1");
    check_golden("http-inbound-mtls", cfg);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 5);
    free_all(pols, 5);
}

TEST(xds_protocol_common)
{
    ASSERT_INT_EQ(xds_protocol_common(XDS_PROTO_HTTP, XDS_PROTO_HTTP), XDS_PROTO_HTTP);
    ASSERT_INT_EQ(xds_protocol_common(XDS_PROTO_GRPC, XDS_PROTO_HTTP2), XDS_PROTO_HTTP2);
    ASSERT_INT_EQ(xds_protocol_common(XDS_PROTO_HTTP, XDS_PROTO_HTTP2), XDS_PROTO_TCP);
    ASSERT_INT_EQ(xds_protocol_common(XDS_PROTO_HTTP, XDS_PROTO_TCP), XDS_PROTO_TCP);
    ASSERT_INT_EQ(xds_protocol_parse("kafka"), XDS_PROTO_KAFKA);
    ASSERT_INT_EQ(xds_protocol_parse("HTTP"), XDS_PROTO_TCP);
}

TEST(xds_golden_builtin_gateway)
{
    struct resource *dps[] = {
        res("type: Dataplane\nmesh: default\nname: edge-1\nnetworking:\n  address: 192.168.1.1\n"
            "  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge-gateway\n"),
        res(BACKEND1)};
    struct resource *pols[] = {
        res("type: MeshGateway\nmesh: default\nname: edge\n"
            "selectors:\n- match:\n    kuma.io/service: edge-gateway\n"
            "conf:\n  listeners:\n"
            "  - {port: 8080, protocol: HTTP, hostname: echo.example.com}\n"
            "  - {port: 8080, protocol: HTTP, hostname: '*.example.com'}\n"
            "  - {port: 8080, protocol: HTTP}\n"
            "  - {port: 9090, protocol: HTTP, hostname: api.example.com}\n"
            "  - {port: 9443, protocol: TCP}\n"),
        res("type: MeshGateway\nmesh: default\nname: other\n"
            "selectors:\n- match:\n    kuma.io/service: other-gateway\n"
            "conf:\n  listeners:\n  - {port: 80, protocol: HTTP}\n"),
        /* Kuma's default gateway timeouts policy, with a shorter stream idle. */
        res("type: MeshTimeout\nmesh: default\nname: mesh-gateways-timeout-all-default\nspec:\n"
            "  targetRef: {kind: Mesh, proxyTypes: [Gateway]}\n"
            "  from:\n  - targetRef: {kind: Mesh}\n"
            "    default: {idleTimeout: 5m, http: {streamIdleTimeout: 3s, requestHeadersTimeout: "
            "500ms}}\n"),
    };
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 2, pols, 3);
    const struct xds_dataplane *gw = xds_snapshot_dataplane(snap, "edge-1");
    ASSERT(gw && gw->builtin_gateway);
    struct xds_proxy_config *cfg = gen_for(snap, "edge-1", 0);
    ASSERT_INT_EQ(cfg->sets[XDS_LDS].n, 2); /* edge:HTTP:8080, edge:HTTP:9090; no route for TCP */
    ASSERT_STR_EQ(cfg->sets[XDS_LDS].v[0].name, "edge:HTTP:8080");
    ASSERT_INT_EQ(cfg->sets[XDS_RDS].n, 2);
    ASSERT_STR_EQ(cfg->sets[XDS_RDS].v[0].name, "edge:HTTP:8080:*");
    check_golden("gateway-builtin", cfg);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 2);
    free_all(pols, 3);
}

TEST(xds_snapshot_reuses_dataplanes_on_policy_change)
{
    struct resource *dps[] = {res(WEB), res(BACKEND1)};
    struct xds_mesh_snapshot *a = snap_with(MESH_DEFAULT, dps, 2, NULL, 0);
    struct resource *pol = res("type: MeshTimeout\nmesh: default\nname: mt\nspec:\n"
                               "  targetRef: {kind: Mesh}\n  to:\n  - targetRef: {kind: Mesh}\n"
                               "    default: {connectionTimeout: 7s}\n");
    struct resource *mesh = res(MESH_DEFAULT);
    struct xds_snapshot_input in = {
        .mesh_name = "default", .mesh = mesh, .policies = &pol, .n_policies = 1, .reuse = a};
    struct xds_mesh_snapshot *b = xds_snapshot_build_from(&in);
    /* Parsed dataplanes and endpoint bytes are shared, policies are new. */
    ASSERT(b->dataplanes == a->dataplanes && b->services == a->services);
    ASSERT_INT_EQ(b->n_dataplanes, 2);
    ASSERT(b->policy_hash != a->policy_hash);
    struct xds_proxy_config *ca = gen_for(a, "web-1", 0);
    xds_snapshot_unref(a); /* b keeps the shared part alive */
    struct xds_proxy_config *cb = gen_for(b, "web-1", 0);
    ASSERT(strcmp(ca->sets[XDS_CDS].version, cb->sets[XDS_CDS].version) != 0);
    ASSERT_STR_EQ(ca->sets[XDS_EDS].version, cb->sets[XDS_EDS].version);
    xds_proxy_config_unref(ca);
    xds_proxy_config_unref(cb);
    xds_snapshot_unref(b);
    resource_free(pol);
    resource_free(mesh);
    free_all(dps, 2);
}

/* Kuma's admin listener: with an admin port and a server certificate, the
 * proxy gets kuma:envoy:admin on its address (tls_inspector, a plaintext
 * /ready chain, a "tls" chain with the static mTLS context) and the admin and
 * readiness clusters; without a port nothing; on 127.0.0.1 only the
 * clusters (the admin itself is bound there). */
TEST(xds_admin_listener)
{
    struct resource *dps[] = {res(BACKEND1)};
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 1, NULL, 0);
    const struct xds_dataplane *dp = xds_snapshot_dataplane(snap, "backend-1");
    struct xds_gen_opts o = {.admin_port = 9901,
                             .admin_cert_pem = "-----ADMIN CERT-----\n",
                             .admin_key_pem = "-----ADMIN KEY-----\n",
                             .admin_ca_pem = "-----ADMIN CA-----\n"};
    struct xds_proxy_config *cfg = xds_generate(snap, dp, &o);
    char *text = config_text(cfg);
    ASSERT_STR_CONTAINS(text, "\"kuma:envoy:admin\"");
    ASSERT_STR_CONTAINS(text, "\"kuma:readiness\"");
    ASSERT_STR_CONTAINS(text, "envoy.filters.listener.tls_inspector");
    ASSERT_STR_CONTAINS(text, "\"transportProtocol\": \"tls\"");
    ASSERT_STR_CONTAINS(text, "\"requireClientCertificate\": true");
    ASSERT_STR_CONTAINS(text, "\"portValue\": 9901");
    free(text);
    int listeners = 0;
    for (size_t i = 0; i < cfg->sets[XDS_LDS].n; i++)
        listeners += strcmp(cfg->sets[XDS_LDS].v[i].name, "kuma:envoy:admin") == 0;
    ASSERT_INT_EQ(listeners, 1);
    uint64_t with = cfg->input_hash;
    xds_proxy_config_unref(cfg);

    struct xds_gen_opts none = {0};
    cfg = xds_generate(snap, dp, &none);
    ASSERT(cfg->input_hash != with);
    for (int t = 0; t < XDS_TYPE_N; t++)
        for (size_t i = 0; i < cfg->sets[t].n; i++)
            ASSERT(strncmp(cfg->sets[t].v[i].name, "kuma:", 5) != 0);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 1);

    struct resource *local[] = {res("type: Dataplane\nmesh: default\nname: l\nnetworking:\n"
                                    "  address: 127.0.0.1\n  inbound:\n  - port: 9090\n"
                                    "    servicePort: 9091\n"
                                    "    tags:\n      kuma.io/service: l\n")};
    snap = snap_with(MESH_DEFAULT, local, 1, NULL, 0);
    cfg = xds_generate(snap, xds_snapshot_dataplane(snap, "l"), &o);
    for (size_t i = 0; i < cfg->sets[XDS_LDS].n; i++)
        ASSERT(strcmp(cfg->sets[XDS_LDS].v[i].name, "kuma:envoy:admin") != 0);
    int clusters = 0;
    for (size_t i = 0; i < cfg->sets[XDS_CDS].n; i++)
        clusters += strncmp(cfg->sets[XDS_CDS].v[i].name, "kuma:", 5) == 0;
    ASSERT_INT_EQ(clusters, 2);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(local, 1);
}

/* kuma-cp's output read back by kuma-dp's mapper (dp/xds_map.c): what one
 * generates the other must accept. */
static struct dp_config *to_dp(struct xds_proxy_config *cfg)
{
    static const enum xds_type from[DP_XDS_NTYPES] = {[DP_XDS_CDS] = XDS_CDS,
                                                      [DP_XDS_EDS] = XDS_EDS,
                                                      [DP_XDS_LDS] = XDS_LDS,
                                                      [DP_XDS_SDS] = XDS_SDS};
    struct dp_xds_set *sets[DP_XDS_NTYPES] = {0};
    struct err e = {{0}};
    for (int t = 0; t < DP_XDS_NTYPES; t++) {
        const struct xds_resource_set *rs = &cfg->sets[from[t]];
        const void **vals = xcalloc(rs->n + 1, sizeof(*vals));
        size_t *lens = xcalloc(rs->n + 1, sizeof(*lens));
        const char **urls = xcalloc(rs->n + 1, sizeof(*urls));
        for (size_t i = 0; i < rs->n; i++) {
            vals[i] = rs->v[i].data;
            lens[i] = rs->v[i].len;
            urls[i] = xds_type_url(from[t]);
        }
        if (dp_xds_set_decode((enum dp_xds_type)t, "1", vals, lens, urls, rs->n, &sets[t], &e) < 0)
            TEST_FAIL_("decode: %s", e.msg);
        free(vals);
        free(lens);
        free(urls);
    }
    struct dp_config *out = NULL;
    int missing = 0;
    if (dp_xds_build(sets, &out, &missing, &e) < 0)
        TEST_FAIL_("kuma-dp refused kuma-cp's configuration: %s", e.msg);
    for (int t = 0; t < DP_XDS_NTYPES; t++)
        dp_xds_set_free(sets[t]);
    return out;
}

static const struct dp_listener *dp_listener_named(const struct dp_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_listeners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

/* PERMISSIVE (mtls.backends[].mode): a tls_inspector and Kuma's three
 * chains; RBAC only on the mTLS chain; kuma-dp maps it to one listener that
 * also takes plaintext and non-mesh TLS. The admin listener maps too. */
TEST(xds_permissive_inbound_and_dp_mapping)
{
    struct resource *dps[] = {res(BACKEND1)};
    struct resource *pols[] = {res(TP_WEB_TO_BACKEND)};
    struct xds_mesh_snapshot *snap =
        snap_with("type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n"
                  "  backends:\n  - name: ca-1\n    type: builtin\n    mode: PERMISSIVE\n",
                  dps, 1, pols, 1);
    ASSERT(snap->mtls_permissive);
    const struct xds_dataplane *dp = xds_snapshot_dataplane(snap, "backend-1");
    struct xds_gen_opts o = {.identity_cert_pem = "-----FAKE CERT-----\n",
                             .identity_key_pem = "-----FAKE KEY-----\n",
                             .admin_port = 9901,
                             .admin_cert_pem = "-----ADMIN CERT-----\n",
                             .admin_key_pem = "-----ADMIN KEY-----\n",
                             .admin_ca_pem = "-----ADMIN CA-----\n"};
    struct xds_proxy_config *cfg = xds_generate(snap, dp, &o);
    char *text = config_text(cfg);
    ASSERT_STR_CONTAINS(text, "\"raw_buffer\"");
    ASSERT_STR_CONTAINS(text, "\"applicationProtocols\": [\"kuma\"]");
    /* One RBAC filter: on the mTLS chain. */
    const char *first = strstr(text, "envoy.filters.network.rbac");
    ASSERT(first && !strstr(first + 1, "envoy.filters.network.rbac"));
    free(text);

    struct dp_config *dc = to_dp(cfg);
    const struct dp_listener *l = dp_listener_named(dc, "inbound:10.0.0.2:9090");
    ASSERT(l);
    ASSERT_INT_EQ(l->inspect, 1);
    ASSERT(l->tls && l->rbac);
    ASSERT(l->raw_tcp_proxy && l->tls_tcp_proxy);
    ASSERT_STR_EQ(l->raw_tcp_proxy->cluster, "localhost:9090");
    ASSERT_STR_EQ(l->tls_tcp_proxy->cluster, "localhost:9090");
    ASSERT_STR_EQ(l->tcp_proxy.cluster, "localhost:9090");
    const struct dp_listener *al = dp_listener_named(dc, "kuma:envoy:admin");
    ASSERT(al && al->tls && al->tls->require_client_certificate);
    ASSERT_STR_EQ(al->address.address, "10.0.0.2");
    ASSERT_STR_EQ(al->tcp_proxy.cluster, "kuma:envoy:admin");
    const struct dp_secret *sec = dp_config_find_secret(dc, "kuma:envoy:admin:certificate");
    ASSERT(sec && strcmp(sec->private_key, "-----ADMIN KEY-----\n") == 0);
    dp_config_free(dc);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);

    /* STRICT: one chain, no inspector. */
    snap = snap_with(MESH_MTLS, dps, 1, pols, 1);
    ASSERT(!snap->mtls_permissive);
    cfg = xds_generate(snap, xds_snapshot_dataplane(snap, "backend-1"), &o);
    dc = to_dp(cfg);
    l = dp_listener_named(dc, "inbound:10.0.0.2:9090");
    ASSERT(l && !l->inspect && !l->raw_tcp_proxy);
    dp_config_free(dc);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 1);
    free_all(pols, 1);
}

/* ---- MeshHTTPRoute / MeshTCPRoute ------------------------------------------ */

static const char *MHR_SPECIFIC =
    "type: MeshHTTPRoute\nmesh: default\nname: api-route\nspec:\n"
    "  targetRef: {kind: MeshSubset, tags: {team: edge}}\n"
    "  to:\n  - targetRef: {kind: MeshService, name: api}\n    rules:\n"
    "    - matches:\n      - path: {type: PathPrefix, value: /v2}\n        method: GET\n"
    "        headers: [{name: x-canary, value: 'yes'}]\n"
    "        queryParams: [{type: Exact, name: debug, value: '1'}]\n"
    "      default:\n        filters:\n"
    "        - type: RequestHeaderModifier\n          requestHeaderModifier:\n"
    "            set: [{name: x-a, value: 'b,c'}]\n            add: [{name: x-d, value: e}]\n"
    "            remove: [x-f]\n"
    "        - type: ResponseHeaderModifier\n"
    "          responseHeaderModifier: {set: [{name: x-r, value: s}]}\n"
    "        - type: URLRewrite\n          urlRewrite:\n            hostname: api.internal\n"
    "            path: {type: ReplacePrefixMatch, replacePrefixMatch: /v3}\n"
    "        - type: RequestMirror\n          requestMirror:\n"
    "            backendRef: {kind: MeshServiceSubset, name: api, tags: {version: v1}}\n"
    "            percentage: 25\n"
    "        backendRefs:\n"
    "        - {kind: MeshServiceSubset, name: api, tags: {version: v2}, weight: 90}\n"
    "        - {kind: MeshServiceSubset, name: api, tags: {version: v1}, weight: 10}\n"
    "    - matches: [{path: {type: Exact, value: /old}}]\n      default:\n        filters:\n"
    "        - type: RequestRedirect\n          requestRedirect:\n            scheme: https\n"
    "            hostname: example.com\n            port: 8443\n            statusCode: 302\n"
    "            path: {type: ReplaceFullPath, replaceFullPath: /new}\n"
    "    - matches:\n      - path: {type: RegularExpression, value: '/items/[0-9]+'}\n"
    "      - headers:\n        - {type: Present, name: x-any}\n"
    "        - {type: RegularExpression, name: x-re, value: '^a'}\n"
    "      default: {}\n";
/* Less specific: its /old rule is overridden, its / rule replaces Kuma's
 * default route. */
static const char *MHR_MESH =
    "type: MeshHTTPRoute\nmesh: default\nname: api-route-mesh\nspec:\n"
    "  targetRef: {kind: Mesh}\n"
    "  to:\n  - targetRef: {kind: MeshService, name: api}\n    rules:\n"
    "    - matches: [{path: {type: Exact, value: /old}}]\n"
    "      default: {backendRefs: [{kind: MeshService, name: backend}]}\n"
    "    - matches: [{path: {type: PathPrefix, value: /}}]\n"
    "      default: {backendRefs: [{kind: MeshServiceSubset, name: api, tags: {version: v1}}]}\n";
static const char *MTCPR =
    "type: MeshTCPRoute\nmesh: default\nname: tcp-routes\nspec:\n  targetRef: {kind: Mesh}\n"
    "  to:\n  - targetRef: {kind: MeshService, name: backend}\n    rules:\n"
    "    - default:\n        backendRefs:\n        - {kind: MeshService, name: backend, weight: "
    "70}\n"
    "        - {kind: MeshService, name: rpc, weight: 30}\n"
    "  - targetRef: {kind: MeshService, name: rpc}\n    rules:\n"
    "    - default: {backendRefs: [{kind: MeshService, name: rpc}]}\n";

static const char *LEGACY_API_ROUTE = "type: TrafficRoute\nmesh: default\nname: api-routes\n"
                                      "sources:\n- match:\n    kuma.io/service: front\n"
                                      "destinations:\n- match:\n    kuma.io/service: api\n"
                                      "conf:\n  http:\n  - match:\n      path: {prefix: /legacy}\n"
                                      "    destination: {kuma.io/service: api, version: v2}\n"
                                      "  destination: {kuma.io/service: api}\n";

static int set_has(const struct xds_resource_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return 1;
    return 0;
}

static char *set_json(struct xds_proxy_config *cfg)
{
    json_t *j = xds_proxy_config_to_json(cfg);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return s;
}

TEST(xds_golden_mesh_routes)
{
    struct resource *dps[] = {res(FRONT), res(API_HTTP_V1), res(API_HTTP_V2), res(GRPC_SVC),
                              res(BACKEND1)};
    /* With a TrafficRoute in the mesh, the Mesh*Routes that select front-1
     * take over: the TrafficRoute is ignored for it. */
    struct resource *pols[] = {res(LEGACY_API_ROUTE), res(MHR_SPECIFIC), res(MHR_MESH), res(MTCPR)};
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 5, pols, 4);
    struct xds_proxy_config *cfg = gen_for(snap, "front-1", 0);
    check_golden("mesh-routes", cfg);
    char *text = set_json(cfg);
    ASSERT(strstr(text, "/legacy") == NULL);
    /* rpc (grpc) is routed by a MeshTCPRoute only: a TCP proxy. */
    ASSERT(strstr(text, "\"cluster\":\"rpc\",\"statPrefix\":\"rpc\"") != NULL);
    free(text);
    /* The subset clusters of the split and of the mirror exist. */
    size_t subsets = 0;
    for (size_t i = 0; i < cfg->sets[XDS_CDS].n; i++)
        if (strncmp(cfg->sets[XDS_CDS].v[i].name, "api-", 4) == 0)
            subsets++;
    ASSERT_INT_EQ(subsets, 2);
    ASSERT(set_has(&cfg->sets[XDS_CDS], "backend"));
    ASSERT(set_has(&cfg->sets[XDS_CDS], "rpc"));
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(pols, 4);

    /* A Mesh*Route selecting another proxy only: front-1 keeps the
     * TrafficRoute. */
    struct resource *pols2[] = {
        res(LEGACY_API_ROUTE),
        res("type: MeshHTTPRoute\nmesh: default\nname: other\nspec:\n"
            "  targetRef: {kind: Dataplane, name: api-1}\n"
            "  to:\n  - targetRef: {kind: MeshService, name: api}\n    rules:\n"
            "    - matches: [{path: {type: Exact, value: /x}}]\n      default: {}\n")};
    snap = snap_with(MESH_DEFAULT, dps, 5, pols2, 2);
    cfg = gen_for(snap, "front-1", 0);
    text = set_json(cfg);
    ASSERT(strstr(text, "/legacy") != NULL);
    ASSERT(strstr(text, "\"/x\"") == NULL);
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(pols2, 2);

    /* Without TrafficRoutes the Mesh*Route path applies; a service nothing
     * routes goes to itself. */
    struct resource *pols3[] = {res(MHR_MESH)};
    snap = snap_with(MESH_DEFAULT, dps, 5, pols3, 1);
    cfg = gen_for(snap, "front-1", 0);
    text = set_json(cfg);
    ASSERT(strstr(text, "\"path\":\"/old\"") != NULL);
    ASSERT(strstr(text, "\"cluster\":\"rpc\"") != NULL);
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(pols3, 1);
    free_all(dps, 5);
}

/* The generator never trusts a stored route's shape (specs stored by an
 * older version, or written around the validator): junk in, a config out. */
TEST(xds_mesh_routes_hostile_specs)
{
    static const char *const specs[] = {
        "{}",
        "{'to':'x'}",
        "{'to':[1,null,{'targetRef':{'kind':'MeshService','name':'api'},'rules':'x'}]}",
        "{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'MeshService','name':'api'},"
        "'rules':[1,{'matches':'x','default':'y'},{'matches':[null,{'path':1,'headers':{},"
        "'queryParams':[1,{'name':2}],'method':[]}],'default':{'filters':[1,{'type':"
        "'RequestMirror','requestMirror':{'backendRef':'x','percentage':'abc'}},{'type':"
        "'RequestRedirect','requestRedirect':{'path':1,'statusCode':'x','port':99999}},{'type':"
        "'URLRewrite','urlRewrite':{'path':{'type':'ReplacePrefixMatch'}}},{'type':"
        "'RequestHeaderModifier','requestHeaderModifier':{'set':[1,{'name':2}],'remove':[3]}}],"
        "'backendRefs':[1,{'kind':'MeshServiceSubset','name':'api','tags':[],'weight':-1},"
        "{'kind':'MeshService','name':'','weight':1e30},{'kind':'MeshServiceSubset','name':'api',"
        "'tags':{'version':1}}]}}]}]}",
        "{'to':[{'targetRef':{'kind':'MeshService','name':'backend'},'rules':[{'default':"
        "{'backendRefs':[{'kind':'MeshExternalService','name':'x'}]}}]}]}",
    };
    struct resource *dps[] = {res(FRONT), res(API_HTTP_V1), res(BACKEND1)};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        for (int tcp = 0; tcp < 2; tcp++) {
            struct resource *p =
                resource_new(tcp ? &TYPE_MESH_TCP_ROUTE : &TYPE_MESH_HTTP_ROUTE, "default", "junk");
            char *q = xstrdup(specs[i]);
            for (char *c = q; *c; c++)
                if (*c == '\'')
                    *c = '"';
            json_decref(p->spec);
            p->spec = json_loads(q, 0, NULL);
            free(q);
            ASSERT(p->spec != NULL);
            struct resource *pols[] = {p};
            struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 3, pols, 1);
            struct xds_proxy_config *cfg = gen_for(snap, "front-1", 0);
            ASSERT(cfg->sets[XDS_LDS].n >= 3);
            xds_proxy_config_unref(cfg);
            xds_snapshot_unref(snap);
            resource_free(p);
        }
    }
    free_all(dps, 3);
}

/* A self-signed ECDSA certificate and key (PEM, base64) for HTTPS listeners. */
static const char *GW_CERT_B64 =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrakNDQVRlZ0F3SUJBZ0lVWUQvSkttbHBRL3dU"
    "OFVyVWRLRmtSam1IOUljd0NnWUlLb1pJemowRUF3SXcKSFRFYk1Ca0dBMVVFQXd3U2MyVmpkWEpsTG1W"
    "NFlXMXdiR1V1WTI5dE1DQVhEVEkyTVRFeU5USXpORGsxTTFvWQpEekl4TWpZeE1UQXhNak0wT1RVeldq"
    "QWRNUnN3R1FZRFZRUUREQkp6WldOMWNtVXVaWGhoYlhCc1pTNWpiMjB3CldUQVRCZ2NxaGtqT1BRSUJC"
    "Z2dxaGtqT1BRTUJCd05DQUFSV09QVTFEY1hjS2NJdkRXeVd0TmprVUNRSnZiSXkKQ2VERGx0RkhxeEdF"
    "M3ZEQ3lqS3FrT1AyblZqZWx4cVN2dlBHSkJmUHlOVzlsdEJCcW1kTnVIVjBvMU13VVRBZApCZ05WSFE0"
    "RUZnUVVjMzdOSFJuMXE1Sm9BRGZ2VHVTTFpmOU5xNUF3SHdZRFZSMGpCQmd3Rm9BVWMzN05IUm4xCnE1"
    "Sm9BRGZ2VHVTTFpmOU5xNUF3RHdZRFZSMFRBUUgvQkFVd0F3RUIvekFLQmdncWhrak9QUVFEQWdOSkFE"
    "QkcKQWlFQW1iSTZVM0RFcCtZUjkyZDBsSVpJZDUwU09JR2dXaC85RTNmMU84OGUrT1VDSVFENGNxTzNN"
    "dTQ0VXl3WQpYcHZmSjFqZlh1MjJIa2EyVVhXR0lkNFV1b1N3M0E9PQotLS0tLUVORCBDRVJUSUZJQ0FU"
    "RS0tLS0tCi0tLS0tQkVHSU4gUFJJVkFURSBLRVktLS0tLQpNSUdIQWdFQU1CTUdCeXFHU000OUFnRUdD"
    "Q3FHU000OUF3RUhCRzB3YXdJQkFRUWc3Z2hZUmh4akd3VEIxcWU5CkZhRnR3c3dpRU1YcU1mSnFXYTdT"
    "MW5jc0VMcWhSQU5DQUFSV09QVTFEY1hjS2NJdkRXeVd0TmprVUNRSnZiSXkKQ2VERGx0RkhxeEdFM3ZE"
    "Q3lqS3FrT1AyblZqZWx4cVN2dlBHSkJmUHlOVzlsdEJCcW1kTnVIVjAKLS0tLS1FTkQgUFJJVkFURSBL"
    "RVktLS0tLQo=";

/* Builtin gateway routed by MeshHTTPRoute / MeshTCPRoute targeting its
 * MeshGateway. */
TEST(xds_golden_gateway_routes)
{
    struct resource *dps[] = {
        res("type: Dataplane\nmesh: default\nname: edge-1\nnetworking:\n  address: 192.168.1.1\n"
            "  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge-gateway\n"),
        res(BACKEND1), res(API_HTTP_V1), res(API_HTTP_V2)};
    struct resource *pols[] = {
        res("type: MeshGateway\nmesh: default\nname: edge\n"
            "selectors:\n- match:\n    kuma.io/service: edge-gateway\n"
            "conf:\n  listeners:\n"
            "  - {port: 8080, protocol: HTTP, tags: {name: public}}\n"
            "  - {port: 8081, protocol: HTTP, hostname: '*.example.com'}\n"
            "  - {port: 9090, protocol: HTTP, hostname: quiet.example.com}\n"
            "  - {port: 9443, protocol: TCP, tags: {name: db}}\n"
            "  - {port: 9444, protocol: TCP}\n"
            "  - {port: 8443, protocol: HTTPS, hostname: secure.example.com,\n"
            "     tls: {mode: TERMINATE, certificates: [{secret: gw-cert}]}}\n"
            "  - {port: 8443, protocol: HTTPS, hostname: nocert.example.com,\n"
            "     tls: {mode: TERMINATE, certificates: [{secret: missing}]}}\n"),
        /* Routes on every listener of the gateway. */
        res("type: MeshHTTPRoute\nmesh: default\nname: edge-all\nspec:\n"
            "  targetRef: {kind: MeshGateway, name: edge}\n"
            "  to:\n  - targetRef: {kind: Mesh}\n    rules:\n"
            "    - matches: [{path: {type: PathPrefix, value: /api}}]\n      default:\n"
            "        backendRefs:\n"
            "        - {kind: MeshServiceSubset, name: api, tags: {version: v1}, weight: 80}\n"
            "        - {kind: MeshServiceSubset, name: api, tags: {version: v2}, weight: 20}\n"
            "    - matches: [{path: {type: Exact, value: /old}}]\n      default:\n"
            "        filters: [{type: RequestRedirect, requestRedirect: {path: {type: "
            "ReplaceFullPath, replaceFullPath: /new}}}]\n"),
        /* Hostname-specific routes on the listener tagged name: public. */
        res("type: MeshHTTPRoute\nmesh: default\nname: edge-public\nspec:\n"
            "  targetRef: {kind: MeshGateway, name: edge, tags: {name: public}}\n"
            "  to:\n  - targetRef: {kind: Mesh}\n    hostnames: [shop.example.com, "
            "'*.example.com']\n"
            "    rules:\n    - matches: [{path: {type: PathPrefix, value: /}}]\n"
            "      default: {backendRefs: [{kind: MeshService, name: backend}]}\n"),
        res("type: MeshTCPRoute\nmesh: default\nname: edge-tcp\nspec:\n"
            "  targetRef: {kind: MeshGateway, name: edge, tags: {name: db}}\n"
            "  to:\n  - targetRef: {kind: Mesh}\n    rules:\n"
            "    - default: {backendRefs: [{kind: MeshService, name: backend}]}\n"),
        /* a route of another gateway never attaches */
        res("type: MeshHTTPRoute\nmesh: default\nname: other\nspec:\n"
            "  targetRef: {kind: MeshGateway, name: other}\n"
            "  to:\n  - targetRef: {kind: Mesh}\n    rules:\n"
            "    - matches: [{path: {type: Exact, value: /other}}]\n"
            "      default: {backendRefs: [{kind: MeshService, name: api}]}\n"),
    };
    char *secret_text =
        xasprintf("type: Secret\nmesh: default\nname: gw-cert\ndata: %s\n", GW_CERT_B64);
    struct resource *all[] = {pols[0], pols[1], pols[2], pols[3], pols[4], res(secret_text)};
    free(secret_text);
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 4, all, 6);
    struct xds_proxy_config *cfg = gen_for(snap, "edge-1", 0);
    check_golden("gateway-routes", cfg);
    /* HTTPS: one filter chain (the listener with a missing Secret has
     * none), its certificate over SDS under Kuma's name. */
    ASSERT(set_has(&cfg->sets[XDS_LDS], "edge:HTTPS:8443"));
    ASSERT(set_has(&cfg->sets[XDS_RDS], "edge:HTTPS:8443:secure.example.com"));
    ASSERT(!set_has(&cfg->sets[XDS_RDS], "edge:HTTPS:8443:nocert.example.com"));
    ASSERT(set_has(&cfg->sets[XDS_SDS], "cert.ecdsa:secret:gw-cert"));
    resource_free(all[5]);
    char *text = set_json(cfg);
    ASSERT(strstr(text, "/other") == NULL);
    free(text);
    /* HTTP 8080/8081/9090, HTTPS 8443 and the routed TCP 9443 (9444 has no
     * route) */
    ASSERT_INT_EQ(cfg->sets[XDS_LDS].n, 5);
    ASSERT(set_has(&cfg->sets[XDS_LDS], "edge:TCP:9443"));
    ASSERT(set_has(&cfg->sets[XDS_CDS], "backend"));
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 4);
    free_all(pols, 5);
}

/* Permissions on an HTTP inbound (mTLS): MeshTrafficPermission, or nobody
 * in a mesh without TrafficPermissions, is the HTTP RBAC filter in the HCM;
 * a legacy TrafficPermission keeps the network RBAC filter. */
TEST(xds_http_inbound_rbac_kinds)
{
    struct resource *dps[] = {res(FRONT), res(API_HTTP_V1)};
    struct resource *mtp = res(
        "type: MeshTrafficPermission\nmesh: default\nname: allow-front\nspec:\n"
        "  targetRef: {kind: MeshService, name: api}\n"
        "  from:\n  - targetRef: {kind: MeshService, name: front}\n    default: {action: Allow}\n");
    struct resource *tp = res("type: TrafficPermission\nmesh: default\nname: tp-api\n"
                              "sources:\n- match:\n    kuma.io/service: front\n"
                              "destinations:\n- match:\n    kuma.io/service: api\n");
    struct {
        struct resource *pol;
        int http, network;
        const char *needle;
    } cases[] = {
        {mtp, 1, 0, "\"MeshTrafficPermission\":{\"permissions\":[{\"any\":true}],\"principals\":"},
        {NULL, 1, 0, "\"rules\":{}"},
        {tp, 0, 1, "\"tp-api\""},
    };
    for (size_t i = 0; i < 3; i++) {
        struct resource *pols[] = {cases[i].pol};
        struct xds_mesh_snapshot *snap =
            snap_with(MESH_MTLS, dps, 2, cases[i].pol ? pols : NULL, cases[i].pol ? 1 : 0);
        struct xds_proxy_config *cfg = gen_mtls(snap, "api-1");
        char *text = set_json(cfg);
        ASSERT_INT_EQ(strstr(text, "envoy.filters.http.rbac") != NULL, cases[i].http);
        ASSERT_INT_EQ(strstr(text, "envoy.filters.network.rbac") != NULL, cases[i].network);
        ASSERT_STR_CONTAINS(text, cases[i].needle);
        free(text);
        xds_proxy_config_unref(cfg);
        xds_snapshot_unref(snap);
    }
    /* PERMISSIVE: the HTTP RBAC filter guards the mTLS chain only; the
     * plaintext chains carry the connection manager without it. */
    struct resource *pols[] = {mtp};
    struct xds_mesh_snapshot *snap =
        snap_with("type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n"
                  "  backends:\n  - name: ca-1\n    type: builtin\n    mode: PERMISSIVE\n",
                  dps, 2, pols, 1);
    ASSERT(snap->mtls_permissive);
    struct xds_proxy_config *cfg = gen_mtls(snap, "api-1");
    char *text = set_json(cfg);
    const char *first = strstr(text, "envoy.filters.http.rbac");
    ASSERT(first && !strstr(first + 1, "envoy.filters.http.rbac"));
    ASSERT_STR_CONTAINS(text, "\"raw_buffer\"");
    /* Three chains, each with a connection manager. */
    int hcms = 0;
    for (const char *p = text; (p = strstr(p, "envoy.filters.network.http_connection_manager"));
         p++)
        hcms++;
    ASSERT(hcms >= 3);
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);

    resource_free(mtp);
    resource_free(tp);
    free_all(dps, 2);
}

/* Gateway routes and listeners of any stored shape never crash the
 * generator. */
TEST(xds_gateway_routes_hostile_specs)
{
    static const char *const gws[] = {
        "{'selectors':[{'match':{'kuma.io/service':'edge-gateway'}}],'conf':{'listeners':[1,"
        "{'port':8443,'protocol':'HTTPS','tls':{'certificates':[1,{'secret':2},{'secret':'nope'},"
        "{'secret':'bad'}]}},{'port':8443,'protocol':'HTTPS','hostname':'a.b','tls':'x'},"
        "{'port':70000,'protocol':'TCP'},{'port':9000,'protocol':'TCP','tags':[]},"
        "{'port':80,'protocol':'HTTP','hostname':5}]}}",
    };
    static const char *const routes[] = {
        "{'targetRef':{'kind':'MeshGateway','name':'edge','tags':{'a':1}},'to':[{'targetRef':"
        "{'kind':'Mesh'},'hostnames':[1,'*','x.b'],'rules':[1,{'matches':[{'path':{}}],"
        "'default':{'backendRefs':[]}}]}]}",
        "{'targetRef':{'kind':'MeshGateway','name':'edge'},'to':[{'targetRef':{'kind':'Mesh'},"
        "'hostnames':'x','rules':[{'default':{'backendRefs':'y','filters':[{'type':"
        "'RequestRedirect'}]}}]},{'targetRef':{'kind':'Mesh'},'rules':[{'default':{'backendRefs':"
        "[{'kind':'MeshService','name':'backend','weight':0}]}}]}]}",
    };
    struct resource *dps[] = {
        res("type: Dataplane\nmesh: default\nname: edge-1\nnetworking:\n  address: 192.168.1.1\n"
            "  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge-gateway\n")};
    for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++) {
        for (int tcp = 0; tcp < 2; tcp++) {
            const char *texts[] = {gws[0], routes[r], "{'data':'!!notbase64'}"};
            const struct res_type *types[] = {&TYPE_MESH_GATEWAY,
                                              tcp ? &TYPE_MESH_TCP_ROUTE : &TYPE_MESH_HTTP_ROUTE,
                                              &TYPE_SECRET};
            const char *names[] = {"edge", "junk", "bad"};
            struct resource *pols[3];
            for (int k = 0; k < 3; k++) {
                pols[k] = resource_new(types[k], "default", names[k]);
                char *q = xstrdup(texts[k]);
                for (char *c = q; *c; c++)
                    if (*c == '\'')
                        *c = '"';
                json_decref(pols[k]->spec);
                pols[k]->spec = json_loads(q, 0, NULL);
                free(q);
                ASSERT(pols[k]->spec != NULL);
            }
            struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 1, pols, 3);
            struct xds_proxy_config *cfg = gen_for(snap, "edge-1", 0);
            ASSERT(set_has(&cfg->sets[XDS_LDS], "edge:HTTP:80"));
            ASSERT(!set_has(&cfg->sets[XDS_LDS], "edge:HTTPS:8443")); /* no usable certificate */
            xds_proxy_config_unref(cfg);
            xds_snapshot_unref(snap);
            for (int k = 0; k < 3; k++)
                resource_free(pols[k]);
        }
    }
    free_all(dps, 1);
}

/* Route names are Kuma's HashMatches, byte for byte: the names below are
 * from Kuma's meshhttproute golden basic.listeners.golden.yaml. */
TEST(xds_mesh_route_names_as_kuma)
{
    struct resource *dps[] = {res(FRONT), res(API_HTTP_V1)};
    struct resource *pols[] = {
        res("type: MeshHTTPRoute\nmesh: default\nname: names\nspec:\n"
            "  targetRef: {kind: Mesh}\n"
            "  to:\n  - targetRef: {kind: MeshService, name: api}\n    rules:\n"
            "    - matches: [{path: {type: PathPrefix, value: /v1}}]\n      default: {}\n"
            "    - matches: [{queryParams: [{type: Exact, name: v1, value: 'true'}]}]\n"
            "      default: {}\n")};
    struct xds_mesh_snapshot *snap = snap_with(MESH_DEFAULT, dps, 2, pols, 1);
    struct xds_proxy_config *cfg = gen_for(snap, "front-1", 0);
    char *text = set_json(cfg);
    ASSERT_STR_CONTAINS(text, "\"name\":\"bzv64o+joRk33jfDADgGv5ar4QyONO0NEVKnoBfJW/E=\"");
    ASSERT_STR_CONTAINS(text, "\"name\":\"eIgW92wXHwW4jQW9ZASIi/jftgxb/u98hIBaTzIRSIw=\"");
    ASSERT_STR_CONTAINS(text, "\"name\":\"9Zuf5Tg79OuZcQITwBbQykxAk2u4fRKrwYn3//AL4Yo=\"");
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    free_all(dps, 2);
    free_all(pols, 1);
}

/* A cross-mesh gateway listener: mTLS with ALPN kuma, clients validated
 * against every mesh's CA (mesh_ca:secret:all over SDS, no SAN matcher). */
TEST(xds_gateway_cross_mesh_ca_bundle)
{
    struct resource *dps[] = {
        res("type: Dataplane\nmesh: default\nname: edge-1\nnetworking:\n  address: 192.168.1.1\n"
            "  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge-gateway\n")};
    struct resource *pols[] = {
        res("type: MeshGateway\nmesh: default\nname: edge\n"
            "selectors:\n- match:\n    kuma.io/service: edge-gateway\n"
            "conf:\n  listeners:\n  - {port: 8080, protocol: HTTP, crossMesh: true}\n"
            "  - {port: 8081, protocol: HTTP}\n")};
    struct resource *mesh = res(MESH_MTLS);
    struct xds_snapshot_input in = {.mesh_name = "default",
                                    .mesh = mesh,
                                    .dataplanes = dps,
                                    .n_dataplanes = 1,
                                    .policies = pols,
                                    .n_policies = 1,
                                    .ca_cert_pem = "-----FAKE CA-----\n",
                                    .all_ca_pem = "-----CA A-----\n-----CA B-----\n"};
    struct xds_mesh_snapshot *snap = xds_snapshot_build_from(&in);
    struct xds_proxy_config *cfg = gen_mtls(snap, "edge-1");
    ASSERT(set_has(&cfg->sets[XDS_SDS], "mesh_ca:secret:all"));
    check_golden("gateway-cross-mesh", cfg);
    xds_proxy_config_unref(cfg);
    /* The bundle is part of the CA hash: another mesh's new CA regenerates. */
    in.all_ca_pem = "-----CA A-----\n-----CA C-----\n";
    struct xds_mesh_snapshot *snap2 = xds_snapshot_build_from(&in);
    ASSERT(snap->ca_hash != snap2->ca_hash);
    xds_snapshot_unref(snap);
    xds_snapshot_unref(snap2);
    resource_free(mesh);
    free_all(dps, 1);
    free_all(pols, 1);
}

/* ---- cross-mesh outbounds (xds/crossmesh.h) ----------------------------- */

/* Mesh a: a cross-mesh gateway (two gateway dataplanes, one of them on a
 * listener without crossMesh only), an ordinary service and a secret-ish one.
 * Mesh c: another mesh nobody in b calls. Mesh b: web-b calls a's gateway. */
static const char *XM_MESH_A = "type: Mesh\nname: a\nmtls:\n  enabledBackend: ca-1\n"
                               "  backends:\n  - name: ca-1\n    type: builtin\n";
static const char *XM_GW_A = "type: MeshGateway\nmesh: a\nname: edge\n"
                             "selectors:\n- match:\n    kuma.io/service: edge-gateway\n"
                             "tags:\n  gw: edge\n"
                             "conf:\n  listeners:\n"
                             "  - {port: 8080, protocol: HTTP, crossMesh: true, tags: {l: x}}\n"
                             "  - {port: 8081, protocol: HTTP}\n";
static const char *XM_EDGE1 = "type: Dataplane\nmesh: a\nname: edge-1\nnetworking:\n"
                              "  address: 10.1.0.1\n  gateway:\n    type: BUILTIN\n"
                              "    tags:\n      kuma.io/service: edge-gateway\n";
static const char *XM_EDGE2 = "type: Dataplane\nmesh: a\nname: edge-2\nnetworking:\n"
                              "  address: 10.1.0.2\n  gateway:\n    type: BUILTIN\n"
                              "    tags:\n      kuma.io/service: edge-gateway\n";
static const char *XM_SECRET_A = "type: Dataplane\nmesh: a\nname: secret-a\nnetworking:\n"
                                 "  address: 10.1.0.9\n  inbound:\n  - port: 7070\n"
                                 "    tags:\n      kuma.io/service: edge-gateway\n";
static const char *XM_WEB_B =
    "type: Dataplane\nmesh: b\nname: web-b\nnetworking:\n  address: 10.2.0.2\n"
    "  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: web\n"
    "  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: backend\n"
    "  - port: 10002\n    tags:\n      kuma.io/service: edge-gateway\n      kuma.io/mesh: a\n";
static const char *XM_OTHER_B = "type: Dataplane\nmesh: b\nname: other-b\nnetworking:\n"
                                "  address: 10.2.0.3\n"
                                "  inbound:\n  - port: 8080\n    tags:\n"
                                "      kuma.io/service: other\n"
                                "  outbound:\n  - port: 10001\n    tags:\n"
                                "      kuma.io/service: backend\n";

static const char *XM_MESH_B = "type: Mesh\nname: b\nmtls:\n  enabledBackend: ca-b\n"
                               "  backends:\n  - name: ca-b\n    type: builtin\n";

struct xm {
    struct resource *mesh_a, *mesh_b, *mesh_c;
    struct resource *a_dps[3], *a_gw[1], *b_dps[2], *c_dps[1];
    struct xds_mesh_snapshot *b;
};

static void xm_build(struct xm *x, const char *mesh_b_text, int edges)
{
    memset(x, 0, sizeof(*x));
    x->mesh_a = res(XM_MESH_A);
    x->mesh_b = res(mesh_b_text);
    x->mesh_c = res("type: Mesh\nname: c\n");
    x->a_dps[0] = res(XM_EDGE1);
    x->a_dps[1] = res(XM_SECRET_A);
    x->a_dps[2] = res(XM_EDGE2);
    x->a_gw[0] = res(XM_GW_A);
    x->b_dps[0] = res(XM_WEB_B);
    x->b_dps[1] = res(XM_OTHER_B);
    x->c_dps[0] = res("type: Dataplane\nmesh: c\nname: edge-c\nnetworking:\n"
                      "  address: 10.3.0.1\n  gateway:\n    type: BUILTIN\n"
                      "    tags:\n      kuma.io/service: edge-gateway\n");
    struct xds_snapshot_input in = {.mesh_name = "b",
                                    .mesh = x->mesh_b,
                                    .dataplanes = x->b_dps,
                                    .n_dataplanes = 2,
                                    .ca_cert_pem = "-----CA B-----\n"};
    x->b = xds_snapshot_build_from(&in);
    struct xds_cross_input cin[] = {
        {.mesh_name = "a",
         .mesh = x->mesh_a,
         .ca_cert_pem = "-----CA A-----\n",
         .dataplanes = x->a_dps,
         .n_dataplanes = (size_t)edges,
         .gateways = x->a_gw,
         .n_gateways = 1},
        {.mesh_name = "c",
         .mesh = x->mesh_c,
         .ca_cert_pem = "-----CA C-----\n",
         .dataplanes = x->c_dps,
         .n_dataplanes = 1,
         .gateways = x->a_gw,
         .n_gateways = 1},
        /* b itself as "another mesh": ignored */
        {.mesh_name = "b", .mesh = x->mesh_b, .ca_cert_pem = "-----CA B-----\n"},
    };
    xds_crossmesh_set(x->b, cin, 3);
}

static void xm_free(struct xm *x)
{
    xds_snapshot_unref(x->b);
    resource_free(x->mesh_a);
    resource_free(x->mesh_b);
    resource_free(x->mesh_c);
    free_all(x->a_dps, 3);
    free_all(x->a_gw, 1);
    free_all(x->b_dps, 2);
    free_all(x->c_dps, 1);
}

static char *cfg_text(struct xds_proxy_config *cfg)
{
    char *text = config_text(cfg);
    return text;
}

TEST(xds_cross_mesh_outbound_golden)
{
    struct xm x;
    xm_build(&x, XM_MESH_B, 3);
    /* Only a is wanted: c and b's own input are ignored. */
    ASSERT_INT_EQ(x.b->n_cross, 1);
    ASSERT_STR_EQ(x.b->cross[0].mesh, "a");
    ASSERT(xds_crossmesh_depends_on(x.b, "a"));
    ASSERT(!xds_crossmesh_depends_on(x.b, "c"));
    ASSERT(!xds_crossmesh_depends_on(x.b, "b"));
    /* Two gateway dataplanes x one crossMesh listener; not the inbound of
     * secret-a with the same service name, not the plain listener. */
    ASSERT_INT_EQ(x.b->cross[0].n_eps, 2);

    struct xds_proxy_config *cfg = gen_mtls(x.b, "web-b");
    /* Kuma's name: sha256("kuma.io/mesh" "a" "kuma.io/service" "edge-gateway")[:8]. */
    const char *cname = "edge-gateway-d2368f8f48c9e73f_a";
    ASSERT(set_has(&cfg->sets[XDS_CDS], cname));
    ASSERT(set_has(&cfg->sets[XDS_EDS], cname));
    ASSERT(set_has(&cfg->sets[XDS_LDS], "outbound:127.0.0.1:10002"));
    ASSERT(set_has(&cfg->sets[XDS_SDS], "mesh_ca:secret:a"));
    ASSERT(set_has(&cfg->sets[XDS_SDS], "mesh_ca:secret:b"));
    ASSERT(set_has(&cfg->sets[XDS_SDS], "identity_cert:secret:b"));
    ASSERT(!set_has(&cfg->sets[XDS_CDS], "edge-gateway")); /* never a local cluster */
    char *text = cfg_text(cfg);
    ASSERT_STR_CONTAINS(text, "spiffe://a/edge-gateway");
    ASSERT_STR_CONTAINS(text, "edge-gateway{mesh=a}");
    ASSERT_STR_CONTAINS(text, "10.1.0.1");
    ASSERT_STR_CONTAINS(text, "10.1.0.2");
    ASSERT(strstr(text, "10.1.0.9") == NULL); /* a's other dataplanes: never */
    ASSERT(strstr(text, "10.3.0.1") == NULL); /* c's gateway: never */
    ASSERT(strstr(text, "CA C") == NULL);     /* c's CA: never */
    ASSERT(strstr(text, "secret:c") == NULL);
    ASSERT(strstr(text, "8081") == NULL); /* the non-crossMesh listener */
    free(text);
    check_golden("cross-mesh-outbound", cfg);
    xds_proxy_config_unref(cfg);

    /* A proxy of b without a cross-mesh outbound gets nothing of a. */
    cfg = gen_mtls(x.b, "other-b");
    text = cfg_text(cfg);
    ASSERT(strstr(text, "10.1.0.") == NULL);
    ASSERT(strstr(text, "secret:a") == NULL);
    ASSERT(strstr(text, "CA A") == NULL);
    free(text);
    xds_proxy_config_unref(cfg);
    xm_free(&x);
}

TEST(xds_cross_mesh_outbound_plaintext_and_tags)
{
    /* b without mTLS: Kuma's CrossMeshClientSideMTLS needs both meshes'
     * mTLS, so plaintext and no secret of a. */
    struct xm x;
    xm_build(&x, "type: Mesh\nname: b\n", 3);
    struct xds_proxy_config *cfg = gen_for(x.b, "web-b", 0);
    ASSERT_INT_EQ(cfg->sets[XDS_SDS].n, 0);
    char *text = cfg_text(cfg);
    ASSERT(strstr(text, "transport_socket") == NULL && strstr(text, "transportSocket") == NULL);
    ASSERT_STR_CONTAINS(text, "10.1.0.2");
    free(text);
    xds_proxy_config_unref(cfg);
    xm_free(&x);

    /* Extra outbound tags select endpoints by tag and enter name and SNI. */
    struct resource *mb = res("type: Mesh\nname: b\nmtls:\n  enabledBackend: x\n"
                              "  backends:\n  - name: x\n    type: builtin\n");
    struct resource *ma = res(XM_MESH_A), *gw = res(XM_GW_A);
    struct resource *adps[] = {res(XM_EDGE1)};
    struct resource *bdps[] = {
        res("type: Dataplane\nmesh: b\nname: t\nnetworking:\n  address: 10.2.0.9\n"
            "  outbound:\n  - port: 1\n    tags: {kuma.io/service: edge-gateway, "
            "kuma.io/mesh: a, l: x}\n"
            "  - port: 2\n    tags: {kuma.io/service: edge-gateway, kuma.io/mesh: a, l: z}\n"
            "  - port: 3\n    tags: {kuma.io/service: edge-gateway, kuma.io/mesh: nowhere}\n")};
    struct xds_snapshot_input in = {.mesh_name = "b",
                                    .mesh = mb,
                                    .dataplanes = bdps,
                                    .n_dataplanes = 1,
                                    .ca_cert_pem = "-----CA B-----\n"};
    struct xds_mesh_snapshot *b = xds_snapshot_build_from(&in);
    struct xds_cross_input cin = {.mesh_name = "a",
                                  .mesh = ma,
                                  .ca_cert_pem = "-----CA A-----\n",
                                  .dataplanes = adps,
                                  .n_dataplanes = 1,
                                  .gateways = &gw,
                                  .n_gateways = 1};
    xds_crossmesh_set(b, &cin, 1);
    ASSERT_INT_EQ(b->n_cross, 2); /* a, and nowhere (absent, still a dependency) */
    ASSERT(xds_crossmesh_depends_on(b, "nowhere"));
    cfg = gen_mtls(b, "t");
    text = cfg_text(cfg);
    ASSERT_STR_CONTAINS(text, "edge-gateway{l=x,mesh=a}");
    ASSERT_STR_CONTAINS(text, "edge-gateway{l=z,mesh=a}");
    free(text);
    ASSERT_INT_EQ(cfg->sets[XDS_EDS].n, 3);
    size_t with_eps = 0;
    for (size_t i = 0; i < cfg->sets[XDS_EDS].n; i++) {
        const char *name = cfg->sets[XDS_EDS].v[i].name;
        int has = 0;
        const uint8_t *d = cfg->sets[XDS_EDS].v[i].data;
        for (size_t k = 0; k + 8 <= cfg->sets[XDS_EDS].v[i].len; k++)
            has |= memcmp(d + k, "10.1.0.1", 8) == 0;
        with_eps += has;
        /* l=z matches no endpoint (the listener tags l: x); nowhere has none */
        if (has)
            ASSERT(strstr(name, "_a") != NULL);
    }
    ASSERT_INT_EQ(with_eps, 1);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(b);
    resource_free(mb);
    resource_free(ma);
    resource_free(gw);
    free_all(adps, 1);
    free_all(bdps, 1);
}

/* What the server's dirtying relies on: a change in the gateway mesh changes
 * the input hash of the proxies that call it, and of no other proxy. */
TEST(xds_cross_mesh_input_hash_and_dirtying)
{
    struct xm one, two;
    xm_build(&one, XM_MESH_B, 1); /* edge-1 only */
    xm_build(&two, XM_MESH_B, 3); /* edge-2 added */
    ASSERT(one.b->cross_hash != two.b->cross_hash);
    struct xds_gen_opts o = {0};
    ASSERT(xds_gen_input_hash(one.b, xds_snapshot_dataplane(one.b, "web-b"), &o) !=
           xds_gen_input_hash(two.b, xds_snapshot_dataplane(two.b, "web-b"), &o));
    ASSERT(xds_gen_input_hash(one.b, xds_snapshot_dataplane(one.b, "other-b"), &o) ==
           xds_gen_input_hash(two.b, xds_snapshot_dataplane(two.b, "other-b"), &o));
    xm_free(&one);
    xm_free(&two);

    /* From a store: xds_snapshot_load reads a's gateway for b, and a new
     * gateway dataplane in a shows in b's next snapshot. */
    struct store *st;
    struct err e;
    ASSERT_INT_EQ(store_open(STORE_KIND_MEMORY, NULL, &st, &e), 0);
    const char *texts[] = {
        "type: Mesh\nname: a\n", "type: Mesh\nname: b\n", XM_GW_A, XM_EDGE1, XM_SECRET_A, XM_WEB_B};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct resource *r = res(texts[i]);
        ASSERT_INT_EQ(store_create(st, r, NULL, &e), 0);
        resource_free(r);
    }
    struct xds_mesh_snapshot *s1 = NULL, *s2 = NULL;
    ASSERT_INT_EQ(xds_snapshot_load(st, "b", &s1, &e), 0);
    ASSERT(xds_crossmesh_depends_on(s1, "a"));
    ASSERT_INT_EQ(xds_crossmesh_find(s1, "a")->n_eps, 1);
    struct resource *r = res(XM_EDGE2);
    ASSERT_INT_EQ(store_create(st, r, NULL, &e), 0);
    resource_free(r);
    ASSERT_INT_EQ(xds_snapshot_reload(st, "b", s1, &s2, &e), 0);
    ASSERT_INT_EQ(xds_crossmesh_find(s2, "a")->n_eps, 2);
    ASSERT(s1->cross_hash != s2->cross_hash);
    xds_snapshot_unref(s1);
    xds_snapshot_unref(s2);
    store_close(st);
}

/* Kuma: "mTLS must be enabled for crossMesh-enabled MeshGateways"; without
 * mTLS the crossMesh listener is not served (never as plaintext). */
TEST(xds_cross_mesh_gateway_needs_mtls)
{
    struct resource *dps[] = {res(XM_EDGE1)};
    struct resource *pols[] = {res(XM_GW_A)};
    struct resource *mesh = res("type: Mesh\nname: a\n");
    struct xds_snapshot_input in = {.mesh_name = "a",
                                    .mesh = mesh,
                                    .dataplanes = dps,
                                    .n_dataplanes = 1,
                                    .policies = pols,
                                    .n_policies = 1};
    struct xds_mesh_snapshot *snap = xds_snapshot_build_from(&in);
    struct xds_proxy_config *cfg = gen_for(snap, "edge-1", 0);
    int l8080 = 0, l8081 = 0;
    for (size_t i = 0; i < cfg->sets[XDS_LDS].n; i++) {
        l8080 |= strstr(cfg->sets[XDS_LDS].v[i].name, ":8080") != NULL;
        l8081 |= strstr(cfg->sets[XDS_LDS].v[i].name, ":8081") != NULL;
    }
    ASSERT(!l8080);
    ASSERT(l8081);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(snap);
    resource_free(mesh);
    free_all(dps, 1);
    free_all(pols, 1);
}

/* Hostile specs on either side never crash and never yield bogus endpoints:
 * bad listener ports and flags, non-IP gateway addresses, gateways without a
 * service, non-string tags; an outbound naming its own mesh stays local. */
TEST(xds_cross_mesh_hostile_specs)
{
    struct resource *ma = res(XM_MESH_A);
    struct resource *gws[] = {
        res("type: MeshGateway\nmesh: a\nname: g1\nselectors:\n- match:\n"
            "    kuma.io/service: edge-gateway\ntags: [1, 2]\n"
            "conf:\n  listeners:\n  - {port: 70000, protocol: HTTP, crossMesh: true}\n"
            "  - {port: -1, protocol: HTTP, crossMesh: true}\n"
            "  - {port: abc, protocol: HTTP, crossMesh: true}\n"
            "  - {port: 8080, protocol: HTTP, crossMesh: 'yes'}\n"
            "  - {port: 9090, protocol: HTTP, crossMesh: true, tags: {n: 5, ok: v}}\n"
            "  - 42\n"),
        res("type: MeshGateway\nmesh: a\nname: g2\nselectors:\n- match:\n"
            "    kuma.io/service: other-gw\nconf:\n  listeners: {port: 1}\n"),
    };
    struct resource *adps[] = {
        res(XM_EDGE1),
        res("type: Dataplane\nmesh: a\nname: dns-gw\nnetworking:\n  address: gw.example.com\n"
            "  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge-gateway\n"),
        res("type: Dataplane\nmesh: a\nname: nosvc\nnetworking:\n  address: 10.1.0.7\n"
            "  gateway:\n    type: BUILTIN\n    tags:\n      x: y\n"),
        res("type: Dataplane\nmesh: a\nname: other-gw\nnetworking:\n  address: 10.1.0.8\n"
            "  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: other-gw\n"),
    };
    struct resource *bdps[] = {
        res("type: Dataplane\nmesh: b\nname: t\nnetworking:\n  address: 10.2.0.9\n"
            "  outbound:\n"
            "  - port: 1\n    tags: {kuma.io/service: edge-gateway, kuma.io/mesh: a}\n"
            "  - port: 2\n    tags: {kuma.io/service: backend, kuma.io/mesh: b}\n"
            "  - port: 3\n    tags: {kuma.io/service: x, kuma.io/mesh: 5}\n"
            "  - port: 4\n    service: other-gw\n    tags: {kuma.io/mesh: a}\n"
            "  - port: 0\n    tags: {kuma.io/service: y, kuma.io/mesh: a}\n")};
    struct resource *mb = res(XM_MESH_B);
    struct xds_snapshot_input in = {.mesh_name = "b",
                                    .mesh = mb,
                                    .dataplanes = bdps,
                                    .n_dataplanes = 1,
                                    .ca_cert_pem = "-----CA B-----\n"};
    struct xds_mesh_snapshot *b = xds_snapshot_build_from(&in);
    const struct xds_dataplane *t = xds_snapshot_dataplane(b, "t");
    ASSERT(t != NULL);
    ASSERT_INT_EQ(t->n_cross_outbounds, 2); /* ports 1 and 4 */
    ASSERT_INT_EQ(t->n_outbounds, 2);       /* own mesh named, and a non-string mesh */
    struct xds_cross_input cin = {.mesh_name = "a",
                                  .mesh = ma,
                                  .ca_cert_pem = "-----CA A-----\n",
                                  .dataplanes = adps,
                                  .n_dataplanes = 4,
                                  .gateways = gws,
                                  .n_gateways = 2};
    xds_crossmesh_set(b, &cin, 1);
    const struct xds_cross_mesh *cm = xds_crossmesh_find(b, "a");
    ASSERT(cm != NULL);
    ASSERT_INT_EQ(cm->n_eps, 1); /* edge-1 on 9090 only */
    ASSERT_STR_EQ(cm->eps[0].address, "10.1.0.1");
    ASSERT_INT_EQ(cm->eps[0].port, 9090);
    struct xds_proxy_config *cfg = gen_mtls(b, "t");
    char *text = cfg_text(cfg);
    ASSERT_STR_CONTAINS(text, "10.1.0.1");
    ASSERT(strstr(text, "gw.example.com") == NULL);
    ASSERT(strstr(text, "10.1.0.7") == NULL);
    ASSERT(strstr(text, "10.1.0.8") == NULL); /* g2 has no crossMesh listener */
    ASSERT_STR_CONTAINS(text, "other-gw{mesh=a}");
    free(text);
    xds_proxy_config_unref(cfg);
    xds_snapshot_unref(b);
    resource_free(ma);
    resource_free(mb);
    free_all(gws, 2);
    free_all(adps, 4);
    free_all(bdps, 1);
}
