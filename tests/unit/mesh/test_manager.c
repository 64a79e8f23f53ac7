/* Tests for the resource manager: defaults, mesh rules and change events. */
#include "core/codec.h"
#include "mesh/events.h"
#include "mesh/manager.h"

#include "test.h"

struct fixture {
    struct store *st;
    struct event_bus *bus;
    struct manager *m;
    struct event_sub *sub;
};

static void setup(struct fixture *f, int routing)
{
    struct err e;
    if (store_open(STORE_KIND_MEMORY, ":memory:", &f->st, &e) < 0)
        TEST_FAIL_("store_open: %s", e.msg);
    f->bus = event_bus_new();
    f->sub = event_subscribe(f->bus);
    struct manager_config cfg = {.create_mesh_routing_resources = routing};
    f->m = manager_new(f->st, f->bus, &cfg);
    struct event ev;
    ASSERT_INT_EQ(event_next(f->sub, &ev, 1000), 1);
    ASSERT_INT_EQ(ev.kind, EVENT_RESYNC);
    event_clear(&ev);
}

static void teardown(struct fixture *f)
{
    manager_free(f->m);
    event_unsubscribe(f->sub);
    event_bus_free(f->bus);
    store_close(f->st);
}

static struct resource *yaml_resource(const char *y)
{
    json_t *doc;
    struct err e;
    struct resource *r = NULL;
    if (codec_parse_one(y, strlen(y), &doc, &e) < 0 || resource_from_json(doc, &r, &e) < 0)
        TEST_FAIL_("bad fixture: %s", e.msg);
    json_decref(doc);
    return r;
}

static int put(struct fixture *f, const char *y, struct mgr_result *res)
{
    struct resource *r = yaml_resource(y);
    int created;
    int rc = manager_put(f->m, r, &created, res);
    resource_free(r);
    return rc;
}

static size_t count(struct fixture *f, const struct res_type *t, const char *mesh)
{
    size_t n = 0;
    struct err e;
    ASSERT_INT_EQ(store_count(f->st, t, mesh, &n, &e), 0);
    return n;
}

TEST(manager_mesh_gets_default_policies)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    ASSERT_INT_EQ(put(&f, "type: Mesh\nname: m1\n", &res), MGR_OK);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_TIMEOUT, "m1"), 2);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_RETRY, "m1"), 1);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_CIRCUIT_BREAKER, "m1"), 1);
    ASSERT_INT_EQ(count(&f, &TYPE_TRAFFIC_PERMISSION, "m1"), 0);
    struct resource *r = NULL;
    struct err e;
    ASSERT_INT_EQ(store_get(f.st, &TYPE_MESH_TIMEOUT, "m1", "mesh-gateways-timeout-all-m1", &r, &e),
                  0);
    json_t *from0 = json_array_get(json_object_get(r->spec, "from"), 0);
    ASSERT_STR_EQ(
        json_string_value(json_object_get(
            json_object_get(json_object_get(from0, "default"), "http"), "requestHeadersTimeout")),
        "500ms");
    resource_free(r);
    teardown(&f);
}

TEST(manager_routing_resources_and_skip_list)
{
    struct fixture f;
    setup(&f, 1);
    struct mgr_result res = {0};
    ASSERT_INT_EQ(put(&f, "type: Mesh\nname: a\n", &res), MGR_OK);
    ASSERT_INT_EQ(count(&f, &TYPE_TRAFFIC_PERMISSION, "a"), 1);
    ASSERT_INT_EQ(count(&f, &TYPE_TRAFFIC_ROUTE, "a"), 1);
    ASSERT_INT_EQ(put(&f,
                      "type: Mesh\nname: b\nskipCreatingInitialPolicies: [MeshTimeout, "
                      "TrafficPermission]\n",
                      &res),
                  MGR_OK);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_TIMEOUT, "b"), 0);
    ASSERT_INT_EQ(count(&f, &TYPE_TRAFFIC_PERMISSION, "b"), 0);
    ASSERT_INT_EQ(count(&f, &TYPE_TRAFFIC_ROUTE, "b"), 1);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_RETRY, "b"), 1);
    ASSERT_INT_EQ(put(&f, "type: Mesh\nname: c\nskipCreatingInitialPolicies: ['*']\n", &res),
                  MGR_OK);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_RETRY, "c"), 0);
    ASSERT_INT_EQ(count(&f, &TYPE_TRAFFIC_ROUTE, "c"), 0);
    teardown(&f);
}

TEST(manager_updating_a_mesh_does_not_recreate_defaults)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    struct err e;
    ASSERT_INT_EQ(put(&f, "type: Mesh\nname: m\n", &res), MGR_OK);
    struct changes ch = {0};
    ASSERT_INT_EQ(store_delete(f.st, &TYPE_MESH_RETRY, "m", "mesh-retry-all-m", &ch, &e), 0);
    changes_free(&ch);
    ASSERT_INT_EQ(
        put(&f, "type: Mesh\nname: m\nrouting: {localityAwareLoadBalancing: true}\n", &res),
        MGR_OK);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_RETRY, "m"), 0);
    teardown(&f);
}

TEST(manager_default_mesh_once)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    ASSERT_INT_EQ(manager_ensure_default_mesh(f.m, &res), MGR_OK);
    ASSERT_INT_EQ(manager_ensure_default_mesh(f.m, &res), MGR_OK);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH, NULL), 1);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_TIMEOUT, "default"), 2);
    teardown(&f);
}

TEST(manager_mesh_scoped_needs_its_mesh)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    ASSERT_INT_EQ(put(&f,
                      "type: TrafficRoute\nmesh: ghost\nname: r\nsources: [{match: "
                      "{kuma.io/service: '*'}}]\ndestinations: [{match: {kuma.io/service: "
                      "'*'}}]\nconf: {destination: {kuma.io/service: a}}\n",
                      &res),
                  MGR_EMESH_NOT_FOUND);
    ASSERT_STR_EQ(res.msg, "Mesh is not found");
    mgr_result_free(&res);
    teardown(&f);
}

TEST(manager_delete_mesh_with_dataplanes_refused_then_cascades)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    ASSERT_INT_EQ(put(&f, "type: Mesh\nname: m\n", &res), MGR_OK);
    ASSERT_INT_EQ(put(&f,
                      "type: Dataplane\nmesh: m\nname: dp\nnetworking:\n  address: 127.0.0.1\n"
                      "  inbound: [{port: 8080, servicePort: 80, tags: {kuma.io/service: web}}]\n",
                      &res),
                  MGR_OK);
    ASSERT_INT_EQ(manager_delete(f.m, &TYPE_MESH, "", "m", &res), MGR_EINVALID);
    ASSERT_INT_EQ(res.ve.n, 1);
    ASSERT_STR_EQ(res.ve.v[0].field, "mesh");
    ASSERT_STR_EQ(res.ve.v[0].message,
                  "unable to delete mesh, there are still some dataplanes attached");
    mgr_result_free(&res);
    ASSERT_INT_EQ(manager_delete(f.m, &TYPE_DATAPLANE, "m", "dp", &res), MGR_OK);
    ASSERT_INT_EQ(manager_delete(f.m, &TYPE_MESH, "", "m", &res), MGR_OK);
    ASSERT_INT_EQ(count(&f, &TYPE_MESH_TIMEOUT, "m"), 0);
    ASSERT_INT_EQ(manager_delete(f.m, &TYPE_MESH, "", "m", &res), MGR_ENOTFOUND);
    mgr_result_free(&res);
    teardown(&f);
}

TEST(manager_events_after_commit_one_per_change)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    ASSERT_INT_EQ(put(&f, "type: Mesh\nname: m\nskipCreatingInitialPolicies: ['*']\n", &res),
                  MGR_OK);
    ASSERT_INT_EQ(put(&f,
                      "type: TrafficLog\nmesh: m\nname: l\nsources: [{match: {kuma.io/service: "
                      "'*'}}]\ndestinations: [{match: {kuma.io/service: '*'}}]\n",
                      &res),
                  MGR_OK);
    /* A failed write publishes nothing. */
    ASSERT(put(&f,
               "type: TrafficLog\nmesh: ghost\nname: l\nsources: [{match: {kuma.io/service: "
               "'*'}}]\ndestinations: [{match: {kuma.io/service: '*'}}]\n",
               &res) != MGR_OK);
    mgr_result_free(&res);
    struct event ev;
    ASSERT_INT_EQ(event_next(f.sub, &ev, 1000), 1);
    ASSERT(ev.type == &TYPE_MESH);
    ASSERT_STR_EQ(ev.name, "m");
    ASSERT_INT_EQ(ev.op, CHANGE_CREATE);
    event_clear(&ev);
    /* The mesh's token signing key, made even with every default skipped. */
    ASSERT_INT_EQ(event_next(f.sub, &ev, 1000), 1);
    ASSERT(ev.type == &TYPE_SECRET);
    ASSERT_STR_EQ(ev.name, "dataplane-token-signing-key-m-1");
    event_clear(&ev);
    ASSERT_INT_EQ(event_next(f.sub, &ev, 1000), 1);
    ASSERT(ev.type == &TYPE_TRAFFIC_LOG);
    ASSERT_STR_EQ(ev.mesh, "m");
    ASSERT_INT_EQ(ev.version, 1);
    event_clear(&ev);
    ASSERT_INT_EQ(event_next(f.sub, &ev, 50), 0);
    /* Deleting the mesh: an event for the mesh and for each child. */
    ASSERT_INT_EQ(manager_delete(f.m, &TYPE_MESH, "", "m", &res), MGR_OK);
    int seen_mesh = 0, seen_log = 0;
    while (event_next(f.sub, &ev, 100) == 1) {
        if (ev.type == &TYPE_MESH && ev.op == CHANGE_DELETE)
            seen_mesh = 1;
        if (ev.type == &TYPE_TRAFFIC_LOG && ev.op == CHANGE_DELETE)
            seen_log = 1;
        event_clear(&ev);
    }
    ASSERT(seen_mesh && seen_log);
    teardown(&f);
}

TEST(manager_put_update_uses_stored_version)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    ASSERT_INT_EQ(put(&f, "type: Mesh\nname: m\n", &res), MGR_OK);
    struct resource *r = yaml_resource("type: Mesh\nname: m\nrouting: {zoneEgress: false}\n");
    r->version = 99; /* ignored: the update is checked against what was read */
    int created = 1;
    ASSERT_INT_EQ(manager_put(f.m, r, &created, &res), MGR_OK);
    ASSERT_INT_EQ(created, 0);
    ASSERT_INT_EQ(r->version, 2);
    resource_free(r);
    teardown(&f);
}

TEST(manager_builtin_ca_created_once_and_provided_ca_checked)
{
    struct fixture f;
    setup(&f, 0);
    struct mgr_result res = {0};
    struct err e;
    ASSERT_INT_EQ(put(&f,
                      "type: Mesh\nname: m\nmtls:\n  enabledBackend: ca-1\n  backends:\n"
                      "  - {name: ca-1, type: builtin, conf: {caCert: {keyType: ecdsa}}}\n",
                      &res),
                  MGR_OK);
    struct resource *cert = NULL, *cert2 = NULL;
    ASSERT_INT_EQ(store_get(f.st, &TYPE_SECRET, "m", "m.ca-builtin-cert-ca-1", &cert, &e), 0);
    ASSERT_INT_EQ(store_get(f.st, &TYPE_SECRET, "m", "m.ca-builtin-key-ca-1", &cert2, &e), 0);
    resource_free(cert2);
    /* An update keeps the same CA. */
    ASSERT_INT_EQ(put(&f,
                      "type: Mesh\nname: m\nmtls:\n  enabledBackend: ca-1\n  backends:\n"
                      "  - {name: ca-1, type: builtin, conf: {caCert: {keyType: ecdsa}}}\n"
                      "routing: {localityAwareLoadBalancing: true}\n",
                      &res),
                  MGR_OK);
    ASSERT_INT_EQ(store_get(f.st, &TYPE_SECRET, "m", "m.ca-builtin-cert-ca-1", &cert2, &e), 0);
    ASSERT(json_equal(cert->spec, cert2->spec));
    resource_free(cert);
    resource_free(cert2);
    /* A provided CA whose secret holds no certificate is refused. */
    ASSERT_INT_EQ(put(&f,
                      "type: Mesh\nname: p\nmtls:\n  backends:\n  - name: prov\n    type: "
                      "provided\n    conf:\n      cert: {inlineString: garbage}\n"
                      "      key: {inlineString: garbage}\n",
                      &res),
                  MGR_EINVALID);
    ASSERT(res.ve.n >= 1);
    ASSERT_STR_CONTAINS(res.ve.v[0].field, "mtls.backends[0].conf.");
    mgr_result_free(&res);
    teardown(&f);
}
