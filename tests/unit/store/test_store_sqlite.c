/*
 * Tests for store_sqlite.c: CRUD, versions and conflicts, mesh ownership and
 * cascades, listing, awkward names, thread races, file modes, reopening, a
 * crash (SIGKILL) in the middle of writes, and files we must not damage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "../test.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() ASSERT_INT_EQ(__lsan_do_recoverable_leak_check(), 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

/* ---- helpers ------------------------------------------------------------ */

static struct store *open_mem(void)
{
    struct store *s = NULL;
    struct err e = {{0}};
    int rc = store_open(STORE_KIND_MEMORY, NULL, &s, &e);
    if (rc != 0)
        TEST_FAIL_("store_open(memory): %d %s", rc, e.msg);
    return s;
}

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", test_tmpdir(), name);
}

static struct store *open_file(const char *path)
{
    struct store *s = NULL;
    struct err e = {{0}};
    int rc = store_open(STORE_KIND_SQLITE, path, &s, &e);
    if (rc != 0)
        TEST_FAIL_("store_open(%s): %d %s", path, rc, e.msg);
    return s;
}

static struct resource *res(const struct res_type *t, const char *mesh, const char *name,
                            const char *spec_json)
{
    struct resource *r = resource_new(t, mesh, name);
    if (spec_json) {
        json_decref(r->spec);
        r->spec = json_loads(spec_json, JSON_ALLOW_NUL, NULL);
        ASSERT(r->spec);
    }
    return r;
}

/* Creates a resource and frees the struct; returns the store's answer. */
static int put(struct store *s, const struct res_type *t, const char *mesh, const char *name)
{
    struct resource *r = res(t, mesh, name, NULL);
    struct err e;
    int rc = store_create(s, r, NULL, &e);
    resource_free(r);
    return rc;
}

static void put_ok(struct store *s, const struct res_type *t, const char *mesh, const char *name)
{
    struct resource *r = res(t, mesh, name, NULL);
    struct err e = {{0}};
    int rc = store_create(s, r, NULL, &e);
    if (rc != 0)
        TEST_FAIL_("create %s %s/%s: %d %s", t->name, mesh, name, rc, e.msg);
    resource_free(r);
}

static void mesh_ok(struct store *s, const char *name)
{
    put_ok(s, &TYPE_MESH, "", name);
}

static struct resource *get_ok(struct store *s, const struct res_type *t, const char *mesh,
                               const char *name)
{
    struct resource *r = NULL;
    struct err e = {{0}};
    int rc = store_get(s, t, mesh, name, &r, &e);
    if (rc != 0)
        TEST_FAIL_("get %s %s/%s: %d %s", t->name, mesh, name, rc, e.msg);
    return r;
}

static int exists(struct store *s, const struct res_type *t, const char *mesh, const char *name)
{
    struct resource *r = NULL;
    struct err e;
    int rc = store_get(s, t, mesh, name, &r, &e);
    resource_free(r);
    ASSERT(rc == 0 || rc == STORE_ENOTFOUND);
    return rc == 0;
}

static void list_ok(struct store *s, const struct res_type *t, const struct store_filter *f,
                    struct resource_list *l)
{
    struct err e = {{0}};
    int rc = store_list(s, t, f, l, &e);
    if (rc != 0)
        TEST_FAIL_("list %s: %d %s", t->name, rc, e.msg);
}

/* "name@mesh,name@mesh" for a list, to assert order in one line. */
static char *list_keys(const struct resource_list *l)
{
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < l->n; i++)
        buf_printf(&b, "%s%s@%s", i ? "," : "", l->items[i]->name, l->items[i]->mesh);
    char *out = xstrdup(buf_str(&b));
    buf_free(&b);
    return out;
}

static void assert_list(struct store *s, const struct res_type *t, const struct store_filter *f,
                        const char *want_keys, size_t want_total)
{
    struct resource_list l = {0};
    list_ok(s, t, f, &l);
    char *keys = list_keys(&l);
    ASSERT_STR_EQ(keys, want_keys);
    ASSERT_INT_EQ(l.total, want_total);
    free(keys);
    resource_list_free(&l);
}

static int file_mode(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        TEST_FAIL_("stat %s: %s", path, strerror(errno));
    return (int)(sb.st_mode & 07777);
}

/* ---- create / get / update / delete -------------------------------------- */

TEST(store_create_get_roundtrip)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    mesh_ok(s, "default");

    struct resource *r = res(&TYPE_DATAPLANE, "default", "dp-1",
                             "{\"networking\":{\"address\":\"10.0.0.1\",\"inbound\":[{\"port\":80,"
                             "\"tags\":{\"kuma.io/service\":\"web\"}}]},\"w\":1.5,\"b\":true,"
                             "\"n\":null,\"u\":\"\\u00e9\\u0000x\"}");
    json_object_set_new(r->labels, "team", json_string("a"));
    int64_t before = now_ns();
    ASSERT_INT_EQ(store_create(s, r, &ch, &e), 0);
    ASSERT_INT_EQ(r->version, 1);
    ASSERT(r->creation_time >= before && r->creation_time <= now_ns());
    ASSERT_INT_EQ(r->modification_time, r->creation_time);
    ASSERT_INT_EQ(ch.n, 1);
    ASSERT(ch.v[0].type == &TYPE_DATAPLANE);
    ASSERT_STR_EQ(ch.v[0].mesh, "default");
    ASSERT_STR_EQ(ch.v[0].name, "dp-1");
    ASSERT_INT_EQ(ch.v[0].op, CHANGE_CREATE);
    ASSERT_INT_EQ(ch.v[0].version, 1);

    struct resource *g = get_ok(s, &TYPE_DATAPLANE, "default", "dp-1");
    ASSERT(g->type == &TYPE_DATAPLANE);
    ASSERT_STR_EQ(g->mesh, "default");
    ASSERT_STR_EQ(g->name, "dp-1");
    ASSERT_INT_EQ(g->version, 1);
    ASSERT_INT_EQ(g->creation_time, r->creation_time);
    ASSERT_INT_EQ(g->modification_time, r->modification_time);
    ASSERT(json_equal(g->spec, r->spec));
    ASSERT(json_equal(g->labels, r->labels));

    /* Global resources live in mesh "" (NULL means the same). */
    struct resource *m = get_ok(s, &TYPE_MESH, NULL, "default");
    ASSERT_STR_EQ(m->mesh, "");
    ASSERT_INT_EQ(json_object_size(m->spec), 0);
    ASSERT_INT_EQ(json_object_size(m->labels), 0);

    resource_free(m);
    resource_free(g);
    resource_free(r);
    changes_free(&ch);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_update_bumps_version_and_time)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    struct resource *r = res(&TYPE_MESH, "", "m1", "{\"mtls\":{}}");
    ASSERT_INT_EQ(store_create(s, r, NULL, &e), 0);
    int64_t created = r->creation_time;

    for (int i = 2; i <= 4; i++) {
        json_object_set_new(r->spec, "i", json_integer(i));
        json_object_set_new(r->labels, "rev", json_integer(i));
        ASSERT_INT_EQ(store_update(s, r, &ch, &e), 0);
        ASSERT_INT_EQ(r->version, i);
        ASSERT_INT_EQ(r->creation_time, created);
        ASSERT(r->modification_time >= created);
    }
    ASSERT_INT_EQ(ch.n, 3);
    ASSERT_INT_EQ(ch.v[2].op, CHANGE_UPDATE);
    ASSERT_INT_EQ(ch.v[2].version, 4);

    struct resource *g = get_ok(s, &TYPE_MESH, "", "m1");
    ASSERT_INT_EQ(g->version, 4);
    ASSERT_INT_EQ(g->creation_time, created);
    ASSERT_INT_EQ(g->modification_time, r->modification_time);
    ASSERT_INT_EQ(json_integer_value(json_object_get(g->spec, "i")), 4);
    ASSERT(json_equal(g->labels, r->labels));
    resource_free(g);
    resource_free(r);
    changes_free(&ch);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_update_stale_version_conflicts)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    mesh_ok(s, "m1");
    struct resource *a = get_ok(s, &TYPE_MESH, "", "m1");
    struct resource *b = get_ok(s, &TYPE_MESH, "", "m1");

    json_object_set_new(a->spec, "who", json_string("a"));
    ASSERT_INT_EQ(store_update(s, a, &ch, &e), 0);
    json_object_set_new(b->spec, "who", json_string("b"));
    ASSERT_INT_EQ(store_update(s, b, &ch, &e), STORE_ECONFLICT);
    ASSERT_STR_EQ(e.msg, "resource conflict: type=\"Mesh\" name=\"m1\" mesh=\"\"");
    ASSERT_INT_EQ(b->version, 1); /* untouched on failure */
    ASSERT_INT_EQ(ch.n, 1);       /* only the successful update */

    struct resource *g = get_ok(s, &TYPE_MESH, "", "m1");
    ASSERT_INT_EQ(g->version, 2);
    ASSERT_STR_EQ(json_string_value(json_object_get(g->spec, "who")), "a");

    /* A version from the future conflicts too. */
    g->version = 7;
    ASSERT_INT_EQ(store_update(s, g, NULL, &e), STORE_ECONFLICT);
    resource_free(g);
    resource_free(a);
    resource_free(b);
    changes_free(&ch);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_update_missing_is_not_found)
{
    struct store *s = open_mem();
    struct err e = {{0}};
    mesh_ok(s, "m1");
    struct resource *r = res(&TYPE_TRAFFIC_PERMISSION, "m1", "tp", NULL);
    r->version = 1;
    ASSERT_INT_EQ(store_update(s, r, NULL, &e), STORE_ENOTFOUND);
    ASSERT_STR_EQ(e.msg, "resource not found: type=\"TrafficPermission\" name=\"tp\" mesh=\"m1\"");
    ASSERT(!exists(s, &TYPE_TRAFFIC_PERMISSION, "m1", "tp"));
    resource_free(r);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_delete)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    mesh_ok(s, "m1");
    put_ok(s, &TYPE_DATAPLANE, "m1", "dp");
    struct resource *r = get_ok(s, &TYPE_DATAPLANE, "m1", "dp");
    ASSERT_INT_EQ(store_update(s, r, NULL, &e), 0);

    ASSERT_INT_EQ(store_delete(s, &TYPE_DATAPLANE, "m1", "dp", &ch, &e), 0);
    ASSERT_INT_EQ(ch.n, 1); /* not a mesh: no cascade */
    ASSERT_INT_EQ(ch.v[0].op, CHANGE_DELETE);
    ASSERT_INT_EQ(ch.v[0].version, 2); /* the last version */
    ASSERT(!exists(s, &TYPE_DATAPLANE, "m1", "dp"));
    ASSERT(exists(s, &TYPE_MESH, "", "m1"));

    ASSERT_INT_EQ(store_delete(s, &TYPE_DATAPLANE, "m1", "dp", &ch, &e), STORE_ENOTFOUND);
    ASSERT_STR_EQ(e.msg, "resource not found: type=\"Dataplane\" name=\"dp\" mesh=\"m1\"");
    ASSERT_INT_EQ(ch.n, 1);

    struct resource *g = NULL;
    ASSERT_INT_EQ(store_get(s, &TYPE_DATAPLANE, "m1", "dp", &g, &e), STORE_ENOTFOUND);
    ASSERT(g == NULL);

    /* Re-creating starts over at version 1. */
    put_ok(s, &TYPE_DATAPLANE, "m1", "dp");
    g = get_ok(s, &TYPE_DATAPLANE, "m1", "dp");
    ASSERT_INT_EQ(g->version, 1);
    resource_free(g);
    resource_free(r);
    changes_free(&ch);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_create_existing_is_eexist)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    mesh_ok(s, "x");
    struct resource *r = res(&TYPE_MESH, "", "x", "{\"a\":1}");
    ASSERT_INT_EQ(store_create(s, r, &ch, &e), STORE_EEXIST);
    ASSERT_STR_EQ(e.msg, "resource already exists: type=\"Mesh\" name=\"x\" mesh=\"\"");
    ASSERT_INT_EQ(r->version, 0);
    ASSERT_INT_EQ(ch.n, 0);
    /* The stored row is unchanged. */
    struct resource *g = get_ok(s, &TYPE_MESH, "", "x");
    ASSERT_INT_EQ(json_object_size(g->spec), 0);
    ASSERT_INT_EQ(g->version, 1);
    resource_free(g);
    resource_free(r);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_create_in_missing_mesh_is_enomesh)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    struct resource *r = res(&TYPE_DATAPLANE, "nope", "dp", NULL);
    ASSERT_INT_EQ(store_create(s, r, &ch, &e), STORE_ENOMESH);
    ASSERT_STR_EQ(e.msg, "mesh of name nope is not found");
    ASSERT_INT_EQ(ch.n, 0);
    ASSERT_INT_EQ(put(s, &TYPE_TRAFFIC_PERMISSION, "", "tp"), STORE_ENOMESH);
    /* A global resource named like the mesh is not a mesh. */
    put_ok(s, &TYPE_GLOBAL_SECRET, "", "nope");
    ASSERT_INT_EQ(store_create(s, r, &ch, &e), STORE_ENOMESH);
    mesh_ok(s, "nope");
    ASSERT_INT_EQ(store_create(s, r, &ch, &e), 0);
    ASSERT_INT_EQ(ch.n, 1);
    resource_free(r);
    changes_free(&ch);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_rejects_bad_arguments)
{
    struct store *s = open_mem();
    struct err e = {{0}};
    ASSERT_INT_EQ(put(s, &TYPE_MESH, "m", "global-in-mesh"), STORE_EINVALID);
    ASSERT_INT_EQ(put(s, &TYPE_MESH, "", ""), STORE_EINVALID);
    ASSERT_INT_EQ(store_create(s, NULL, NULL, &e), STORE_EINVALID);
    ASSERT_INT_EQ(store_delete(s, NULL, "", "x", NULL, &e), STORE_EINVALID);
    /* A spec or labels that is not an object is refused, not stored. */
    struct resource *r = res(&TYPE_MESH, "", "m", NULL);
    json_decref(r->spec);
    r->spec = json_array();
    ASSERT_INT_EQ(store_create(s, r, NULL, &e), STORE_EINVALID);
    ASSERT_STR_CONTAINS(e.msg, "JSON objects");
    json_decref(r->spec);
    r->spec = json_object();
    json_decref(r->labels);
    r->labels = json_string("x");
    ASSERT_INT_EQ(store_create(s, r, NULL, &e), STORE_EINVALID);
    ASSERT(!exists(s, &TYPE_MESH, "", "m"));
    json_decref(r->labels);
    r->labels = json_object();
    ASSERT_INT_EQ(store_create(s, r, NULL, &e), 0);
    json_decref(r->spec);
    r->spec = json_integer(3);
    ASSERT_INT_EQ(store_update(s, r, NULL, &e), STORE_EINVALID);
    resource_free(r);
    r = get_ok(s, &TYPE_MESH, "", "m");
    ASSERT_INT_EQ(r->version, 1);
    resource_free(r);

    struct resource_list l = {0};
    struct store_filter f = {.label_key = "k"};
    ASSERT_INT_EQ(store_list(s, &TYPE_MESH, &f, &l, &e), STORE_EINVALID);
    f = (struct store_filter){.offset = (size_t)INT64_MAX + 1};
    ASSERT_INT_EQ(store_list(s, &TYPE_MESH, &f, &l, &e), STORE_EINVALID);
    ASSERT_STR_CONTAINS(e.msg, "invalid offset");
    ASSERT_INT_EQ(l.n, 0);
    store_close(s);
    LEAK_CHECK();
}

/* ---- meshes: ownership and cascade ---------------------------------------- */

TEST(store_delete_mesh_cascades_and_reports_children)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    mesh_ok(s, "m1");
    mesh_ok(s, "m2");
    put_ok(s, &TYPE_DATAPLANE, "m1", "dp-b");
    put_ok(s, &TYPE_DATAPLANE, "m1", "dp-a");
    put_ok(s, &TYPE_TRAFFIC_PERMISSION, "m1", "allow-all");
    put_ok(s, &TYPE_SECRET, "m1", "sec");
    put_ok(s, &TYPE_DATAPLANE, "m2", "dp-a");
    put_ok(s, &TYPE_GLOBAL_SECRET, "", "m1"); /* same name, not owned */
    struct resource *dp = get_ok(s, &TYPE_DATAPLANE, "m1", "dp-a");
    ASSERT_INT_EQ(store_update(s, dp, NULL, &e), 0);

    ASSERT_INT_EQ(store_delete(s, &TYPE_MESH, "", "m1", &ch, &e), 0);
    /* The mesh first, then every row the cascade removed, with its last
     * version, ordered by (type, mesh, name). */
    ASSERT_INT_EQ(ch.n, 5);
    ASSERT(ch.v[0].type == &TYPE_MESH);
    ASSERT_STR_EQ(ch.v[0].name, "m1");
    ASSERT_STR_EQ(ch.v[0].mesh, "");
    ASSERT(ch.v[1].type == &TYPE_DATAPLANE);
    ASSERT_STR_EQ(ch.v[1].name, "dp-a");
    ASSERT_INT_EQ(ch.v[1].version, 2);
    ASSERT(ch.v[2].type == &TYPE_DATAPLANE);
    ASSERT_STR_EQ(ch.v[2].name, "dp-b");
    ASSERT_INT_EQ(ch.v[2].version, 1);
    ASSERT(ch.v[3].type == &TYPE_SECRET);
    ASSERT(ch.v[4].type == &TYPE_TRAFFIC_PERMISSION);
    for (size_t i = 0; i < ch.n; i++) {
        ASSERT_INT_EQ(ch.v[i].op, CHANGE_DELETE);
        if (i > 0)
            ASSERT_STR_EQ(ch.v[i].mesh, "m1");
    }

    size_t n = 99;
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, "m1", &n, &e), 0);
    ASSERT_INT_EQ(n, 0);
    ASSERT_INT_EQ(store_count(s, &TYPE_TRAFFIC_PERMISSION, NULL, &n, &e), 0);
    ASSERT_INT_EQ(n, 0);
    ASSERT(exists(s, &TYPE_DATAPLANE, "m2", "dp-a"));
    ASSERT(exists(s, &TYPE_MESH, "", "m2"));
    ASSERT(exists(s, &TYPE_GLOBAL_SECRET, "", "m1"));

    /* A mesh re-created under the same name starts empty. */
    mesh_ok(s, "m1");
    ASSERT(!exists(s, &TYPE_DATAPLANE, "m1", "dp-a"));
    resource_free(dp);
    changes_free(&ch);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_same_name_in_two_meshes)
{
    struct store *s = open_mem();
    struct err e = {{0}};
    mesh_ok(s, "m1");
    mesh_ok(s, "m2");
    struct resource *a = res(&TYPE_DATAPLANE, "m1", "dp", "{\"where\":1}");
    struct resource *b = res(&TYPE_DATAPLANE, "m2", "dp", "{\"where\":2}");
    ASSERT_INT_EQ(store_create(s, a, NULL, &e), 0);
    ASSERT_INT_EQ(store_create(s, b, NULL, &e), 0);
    /* And the same name across types in one mesh. */
    put_ok(s, &TYPE_TRAFFIC_PERMISSION, "m1", "dp");

    ASSERT_INT_EQ(store_update(s, b, NULL, &e), 0);
    struct resource *ga = get_ok(s, &TYPE_DATAPLANE, "m1", "dp");
    struct resource *gb = get_ok(s, &TYPE_DATAPLANE, "m2", "dp");
    ASSERT_INT_EQ(ga->version, 1);
    ASSERT_INT_EQ(gb->version, 2);
    ASSERT_INT_EQ(json_integer_value(json_object_get(ga->spec, "where")), 1);
    ASSERT_INT_EQ(json_integer_value(json_object_get(gb->spec, "where")), 2);

    ASSERT_INT_EQ(store_delete(s, &TYPE_DATAPLANE, "m1", "dp", NULL, &e), 0);
    ASSERT(!exists(s, &TYPE_DATAPLANE, "m1", "dp"));
    ASSERT(exists(s, &TYPE_DATAPLANE, "m2", "dp"));
    ASSERT(exists(s, &TYPE_TRAFFIC_PERMISSION, "m1", "dp"));
    resource_free(ga);
    resource_free(gb);
    resource_free(a);
    resource_free(b);
    store_close(s);
    LEAK_CHECK();
}

/* ---- list ------------------------------------------------------------------ */

static void seed_list(struct store *s)
{
    mesh_ok(s, "m1");
    mesh_ok(s, "m2");
    mesh_ok(s, "m0");
    put_ok(s, &TYPE_DATAPLANE, "m2", "web-2");
    put_ok(s, &TYPE_DATAPLANE, "m1", "web-1");
    put_ok(s, &TYPE_DATAPLANE, "m1", "backend");
    put_ok(s, &TYPE_DATAPLANE, "m2", "backend");
    put_ok(s, &TYPE_DATAPLANE, "m0", "web-1");
    put_ok(s, &TYPE_TRAFFIC_PERMISSION, "m1", "web-1"); /* another type */
}

TEST(store_list_orders_by_name_then_mesh)
{
    struct store *s = open_mem();
    seed_list(s);
    assert_list(s, &TYPE_DATAPLANE, NULL, "backend@m1,backend@m2,web-1@m0,web-1@m1,web-2@m2", 5);
    struct store_filter f = {0};
    assert_list(s, &TYPE_DATAPLANE, &f, "backend@m1,backend@m2,web-1@m0,web-1@m1,web-2@m2", 5);
    assert_list(s, &TYPE_MESH, NULL, "m0@,m1@,m2@", 3);
    assert_list(s, &TYPE_SECRET, NULL, "", 0);

    struct resource_list l = {0};
    list_ok(s, &TYPE_DATAPLANE, NULL, &l);
    for (size_t i = 0; i < l.n; i++) {
        ASSERT(l.items[i]->type == &TYPE_DATAPLANE);
        ASSERT_INT_EQ(l.items[i]->version, 1);
        ASSERT(l.items[i]->creation_time > 0);
    }
    ASSERT(!l.has_next);
    resource_list_free(&l);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_list_filters_by_mesh_and_name)
{
    struct store *s = open_mem();
    seed_list(s);
    struct store_filter f = {.mesh = "m1"};
    assert_list(s, &TYPE_DATAPLANE, &f, "backend@m1,web-1@m1", 2);
    f = (struct store_filter){.name_substr = "web"};
    assert_list(s, &TYPE_DATAPLANE, &f, "web-1@m0,web-1@m1,web-2@m2", 3);
    f = (struct store_filter){.name_substr = "eb-"};
    assert_list(s, &TYPE_DATAPLANE, &f, "web-1@m0,web-1@m1,web-2@m2", 3);
    f = (struct store_filter){.name_substr = "WEB"}; /* case-sensitive, like Postgres LIKE */
    assert_list(s, &TYPE_DATAPLANE, &f, "", 0);
    f = (struct store_filter){.mesh = "m2", .name_substr = "web"};
    assert_list(s, &TYPE_DATAPLANE, &f, "web-2@m2", 1);
    f = (struct store_filter){.mesh = "nope"};
    assert_list(s, &TYPE_DATAPLANE, &f, "", 0);
    f = (struct store_filter){.name_substr = ""};
    assert_list(s, &TYPE_DATAPLANE, &f, "backend@m1,backend@m2,web-1@m0,web-1@m1,web-2@m2", 5);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_list_paginates)
{
    struct store *s = open_mem();
    seed_list(s);
    const char *pages[] = {"backend@m1,backend@m2", "web-1@m0,web-1@m1", "web-2@m2"};
    size_t offset = 0;
    for (int p = 0; p < 3; p++) {
        struct store_filter f = {.offset = offset, .size = 2};
        struct resource_list l = {0};
        list_ok(s, &TYPE_DATAPLANE, &f, &l);
        char *keys = list_keys(&l);
        ASSERT_STR_EQ(keys, pages[p]);
        free(keys);
        ASSERT_INT_EQ(l.total, 5);
        ASSERT_INT_EQ(l.has_next, p < 2);
        if (l.has_next)
            ASSERT_INT_EQ(l.next_offset, offset + 2);
        offset = l.next_offset;
        resource_list_free(&l);
    }
    /* Exactly at the end, past the end, and an unlimited page from 1. */
    struct store_filter f = {.offset = 3, .size = 2};
    struct resource_list l = {0};
    list_ok(s, &TYPE_DATAPLANE, &f, &l);
    ASSERT_INT_EQ(l.n, 2);
    ASSERT(!l.has_next);
    resource_list_free(&l);
    f = (struct store_filter){.offset = 50, .size = 2};
    list_ok(s, &TYPE_DATAPLANE, &f, &l);
    ASSERT_INT_EQ(l.n, 0);
    ASSERT_INT_EQ(l.total, 5);
    ASSERT(!l.has_next);
    resource_list_free(&l);
    f = (struct store_filter){.offset = 1};
    assert_list(s, &TYPE_DATAPLANE, &f, "backend@m2,web-1@m0,web-1@m1,web-2@m2", 5);
    /* Pagination with a filter: total counts the filtered matches. */
    f = (struct store_filter){.name_substr = "web", .size = 1, .offset = 1};
    list_ok(s, &TYPE_DATAPLANE, &f, &l);
    char *keys = list_keys(&l);
    ASSERT_STR_EQ(keys, "web-1@m1");
    free(keys);
    ASSERT_INT_EQ(l.total, 3);
    ASSERT(l.has_next);
    ASSERT_INT_EQ(l.next_offset, 2);
    resource_list_free(&l);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_list_filters_by_label)
{
    struct store *s = open_mem();
    struct err e = {{0}};
    mesh_ok(s, "m1");
    const char *names[] = {"a", "b", "c", "d"};
    const char *zone[] = {"east", "west", "east", NULL};
    for (int i = 0; i < 4; i++) {
        struct resource *r = res(&TYPE_DATAPLANE, "m1", names[i], NULL);
        if (zone[i])
            json_object_set_new(r->labels, "kuma.io/zone", json_string(zone[i]));
        json_object_set_new(r->labels, "odd \"key\".$[0]", json_string(names[i]));
        json_object_set_new(r->labels, "num", json_integer(1));
        ASSERT_INT_EQ(store_create(s, r, NULL, &e), 0);
        resource_free(r);
    }
    struct store_filter f = {.label_key = "kuma.io/zone", .label_value = "east"};
    assert_list(s, &TYPE_DATAPLANE, &f, "a@m1,c@m1", 2);
    f.label_value = "west";
    assert_list(s, &TYPE_DATAPLANE, &f, "b@m1", 1);
    f.label_value = "EAST";
    assert_list(s, &TYPE_DATAPLANE, &f, "", 0);
    f = (struct store_filter){.label_key = "odd \"key\".$[0]", .label_value = "d"};
    assert_list(s, &TYPE_DATAPLANE, &f, "d@m1", 1);
    /* Labels are strings: a number does not equal its text. */
    f = (struct store_filter){.label_key = "num", .label_value = "1"};
    assert_list(s, &TYPE_DATAPLANE, &f, "", 0);
    f = (struct store_filter){
        .label_key = "kuma.io/zone", .label_value = "east", .mesh = "m1", .name_substr = "c"};
    assert_list(s, &TYPE_DATAPLANE, &f, "c@m1", 1);

    /* Labels follow updates. */
    struct resource *r = get_ok(s, &TYPE_DATAPLANE, "m1", "b");
    json_object_set_new(r->labels, "kuma.io/zone", json_string("east"));
    ASSERT_INT_EQ(store_update(s, r, NULL, &e), 0);
    f = (struct store_filter){.label_key = "kuma.io/zone", .label_value = "east"};
    assert_list(s, &TYPE_DATAPLANE, &f, "a@m1,b@m1,c@m1", 3);
    resource_free(r);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_count)
{
    struct store *s = open_mem();
    struct err e = {{0}};
    seed_list(s);
    size_t n = 0;
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, NULL, &n, &e), 0);
    ASSERT_INT_EQ(n, 5);
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, "m1", &n, &e), 0);
    ASSERT_INT_EQ(n, 2);
    ASSERT_INT_EQ(store_count(s, &TYPE_MESH, NULL, &n, &e), 0);
    ASSERT_INT_EQ(n, 3);
    ASSERT_INT_EQ(store_count(s, &TYPE_SECRET, "m1", &n, &e), 0);
    ASSERT_INT_EQ(n, 0);
    store_close(s);
    LEAK_CHECK();
}

/* ---- awkward input ----------------------------------------------------------- */

TEST(store_names_with_sql_and_like_metacharacters)
{
    struct store *s = open_mem();
    struct err e = {{0}};
    const char *meshes[] = {"m%", "m_", "m'"};
    const char *names[] = {"a%b",
                           "a_b",
                           "axb",
                           "it's",
                           "say \"hi\"",
                           "back\\slash",
                           "x'); DROP TABLE resources; --",
                           "semi;colon",
                           "new\nline",
                           "ünï"};
    for (size_t m = 0; m < 3; m++) {
        mesh_ok(s, meshes[m]);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            put_ok(s, &TYPE_DATAPLANE, meshes[m], names[i]);
    }
    for (size_t m = 0; m < 3; m++)
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            struct resource *r = get_ok(s, &TYPE_DATAPLANE, meshes[m], names[i]);
            ASSERT_STR_EQ(r->name, names[i]);
            ASSERT_STR_EQ(r->mesh, meshes[m]);
            resource_free(r);
        }
    /* Wildcards in a mesh are not wildcards. */
    struct store_filter f = {.mesh = "m_", .name_substr = "%"};
    assert_list(s, &TYPE_DATAPLANE, &f, "a%b@m_", 1);
    f = (struct store_filter){.mesh = "m%", .name_substr = "_"};
    assert_list(s, &TYPE_DATAPLANE, &f, "a_b@m%", 1);
    f = (struct store_filter){.mesh = "m'", .name_substr = "'"};
    assert_list(s, &TYPE_DATAPLANE, &f, "it's@m',x'); DROP TABLE resources; --@m'", 2);
    f = (struct store_filter){.mesh = "m%", .name_substr = "\\"};
    assert_list(s, &TYPE_DATAPLANE, &f, "back\\slash@m%", 1);
    size_t n = 0;
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, "m%", &n, &e), 0);
    ASSERT_INT_EQ(n, 10);
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, "m", &n, &e), 0);
    ASSERT_INT_EQ(n, 0);

    /* Error messages quote like Go's %q. */
    ASSERT_INT_EQ(put(s, &TYPE_DATAPLANE, "m'", "say \"hi\""), STORE_EEXIST);
    struct resource *r = res(&TYPE_DATAPLANE, "m'", "say \"hi\"", NULL);
    ASSERT_INT_EQ(store_create(s, r, NULL, &e), STORE_EEXIST);
    ASSERT_STR_EQ(
        e.msg, "resource already exists: type=\"Dataplane\" name=\"say \\\"hi\\\"\" mesh=\"m'\"");
    resource_free(r);
    ASSERT_INT_EQ(store_delete(s, &TYPE_DATAPLANE, "m%", "new\nline", NULL, &e), 0);
    ASSERT_INT_EQ(store_delete(s, &TYPE_DATAPLANE, "m%", "new\nline", NULL, &e), STORE_ENOTFOUND);
    ASSERT_STR_EQ(e.msg, "resource not found: type=\"Dataplane\" name=\"new\\nline\" mesh=\"m%\"");

    /* Deleting mesh "m_" leaves "m%" and "m'" alone. */
    struct changes ch = {0};
    ASSERT_INT_EQ(store_delete(s, &TYPE_MESH, "", "m_", &ch, &e), 0);
    ASSERT_INT_EQ(ch.n, 11);
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, NULL, &n, &e), 0);
    ASSERT_INT_EQ(n, 19);
    changes_free(&ch);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_spec_roundtrips_exactly)
{
    struct store *s = open_mem();
    struct err e = {{0}};
    const char *spec = "{\"s\":\"\\u0000nul \\\"q\\\" \\\\ \\n \\u2603\",\"i\":9007199254740993,"
                       "\"neg\":-1,\"r\":0.1,\"big\":1e300,\"t\":true,\"f\":false,\"z\":null,"
                       "\"a\":[1,[2,{\"k\":[]}],{}],\"o\":{\"nested\":{\"deep\":{}}},"
                       "\"zz\":1,\"aa\":2}";
    struct resource *r = res(&TYPE_MESH, "", "m", spec);
    ASSERT_INT_EQ(store_create(s, r, NULL, &e), 0);
    struct resource *g = get_ok(s, &TYPE_MESH, "", "m");
    ASSERT(json_equal(g->spec, r->spec));
    /* Key order is kept (users see their document back as written). */
    char *a = json_dumps(r->spec, JSON_COMPACT), *b = json_dumps(g->spec, JSON_COMPACT);
    ASSERT_STR_EQ(b, a);
    free(a);
    free(b);
    resource_free(g);
    resource_free(r);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_changes_untouched_on_failure)
{
    struct store *s = open_mem();
    struct changes ch = {0};
    struct err e = {{0}};
    mesh_ok(s, "m");
    struct resource *r = res(&TYPE_MESH, "", "m", NULL);
    ASSERT(store_create(s, r, &ch, &e) < 0);
    r->version = 5;
    ASSERT(store_update(s, r, &ch, &e) < 0);
    ASSERT(store_delete(s, &TYPE_MESH, "", "zz", &ch, &e) < 0);
    ASSERT(put(s, &TYPE_DATAPLANE, "zz", "dp") < 0);
    ASSERT_INT_EQ(ch.n, 0);
    resource_free(r);
    store_close(s);
    LEAK_CHECK();
}

/* ---- threads ------------------------------------------------------------------ */

struct race {
    struct store *s;
    pthread_barrier_t *go;
    int rc;
    char msg[64];
};

static void *race_update(void *arg)
{
    struct race *ra = arg;
    struct resource *r = get_ok(ra->s, &TYPE_MESH, "", "contested");
    json_object_set_new(r->spec, "writer", json_string(ra->msg));
    struct err e;
    pthread_barrier_wait(ra->go);
    ra->rc = store_update(ra->s, r, NULL, &e);
    resource_free(r);
    return NULL;
}

/* Both racers read version v, then update at once: exactly one wins and the
 * stored spec is the winner's. Repeated to give the race many chances. */
static void race_rounds(struct store *s, int rounds)
{
    mesh_ok(s, "contested");
    for (int round = 0; round < rounds; round++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct race ra[2] = {{.s = s, .go = &go}, {.s = s, .go = &go}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            snprintf(ra[i].msg, sizeof(ra[i].msg), "w%d-%d", i, round);
            pthread_create(&th[i], NULL, race_update, &ra[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        /* Both may read before either writes, or one may read after the
         * other's write; in the first case exactly one wins. */
        int wins = (ra[0].rc == 0) + (ra[1].rc == 0);
        int conflicts = (ra[0].rc == STORE_ECONFLICT) + (ra[1].rc == STORE_ECONFLICT);
        ASSERT(wins >= 1);
        ASSERT_INT_EQ(wins + conflicts, 2);
        struct resource *g = get_ok(s, &TYPE_MESH, "", "contested");
        const char *writer = json_string_value(json_object_get(g->spec, "writer"));
        if (wins == 1)
            ASSERT_STR_EQ(writer, ra[0].rc == 0 ? ra[0].msg : ra[1].msg);
        resource_free(g);
    }
}

struct given {
    struct race *ra;
    struct resource *r;
};

/* The update half of a race: the test read the resource beforehand. */
static void *race_update_given(void *arg)
{
    struct given *g = arg;
    struct err e;
    pthread_barrier_wait(g->ra->go);
    g->ra->rc = store_update(g->ra->s, g->r, NULL, &e);
    return NULL;
}

TEST(store_racing_updates_exactly_one_wins)
{
    struct store *s = open_mem();
    mesh_ok(s, "contested");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    for (int round = 0; round < 100; round++) {
        /* Both hold the same version before either writes. */
        struct resource *a = get_ok(s, &TYPE_MESH, "", "contested");
        struct resource *b = get_ok(s, &TYPE_MESH, "", "contested");
        ASSERT_INT_EQ(a->version, round + 1);
        ASSERT_INT_EQ(b->version, round + 1);
        json_object_set_new(a->spec, "writer", json_string("a"));
        json_object_set_new(b->spec, "writer", json_string("b"));
        struct race ra[2] = {{.s = s, .go = &go}, {.s = s, .go = &go}};
        struct given g[2] = {{&ra[0], a}, {&ra[1], b}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race_update_given, &g[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        ASSERT_INT_EQ((ra[0].rc == 0) + (ra[1].rc == 0), 1);
        ASSERT_INT_EQ(ra[0].rc + ra[1].rc, STORE_ECONFLICT);
        struct resource *now = get_ok(s, &TYPE_MESH, "", "contested");
        ASSERT_INT_EQ(now->version, round + 2);
        ASSERT_STR_EQ(json_string_value(json_object_get(now->spec, "writer")),
                      ra[0].rc == 0 ? "a" : "b");
        resource_free(now);
        resource_free(a);
        resource_free(b);
    }
    pthread_barrier_destroy(&go);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_racing_read_modify_write)
{
    struct store *s = open_mem();
    race_rounds(s, 50);
    store_close(s);
    LEAK_CHECK();
}

#define WRITERS    8
#define PER_WRITER 100

struct writer {
    struct store *s;
    int id;
    int failures;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct err e;
    for (int i = 0; i < PER_WRITER; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dp-%d-%d", w->id, i);
        struct resource *r = res(&TYPE_DATAPLANE, "m", name, NULL);
        if (store_create(w->s, r, NULL, &e) != 0)
            w->failures++;
        r->version = 1;
        if (store_update(w->s, r, NULL, &e) != 0)
            w->failures++;
        resource_free(r);
        struct resource_list l = {0};
        struct store_filter f = {.mesh = "m", .size = 10};
        if (store_list(w->s, &TYPE_DATAPLANE, &f, &l, &e) != 0)
            w->failures++;
        resource_list_free(&l);
    }
    return NULL;
}

static void threads_write(struct store *s)
{
    struct err e = {{0}};
    mesh_ok(s, "m");
    pthread_t th[WRITERS];
    struct writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.s = s, .id = i};
        pthread_create(&th[i], NULL, writer_main, &w[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        ASSERT_INT_EQ(w[i].failures, 0);
    }
    size_t n = 0;
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, "m", &n, &e), 0);
    ASSERT_INT_EQ(n, WRITERS * PER_WRITER);
}

TEST(store_many_threads_memory)
{
    struct store *s = open_mem();
    threads_write(s);
    store_close(s);
    LEAK_CHECK();
}

TEST(store_many_threads_file)
{
    char *path = tmp_path("threads.db");
    struct store *s = open_file(path);
    threads_write(s);
    store_close(s);
    free(path);
    LEAK_CHECK();
}

/* ---- files ---------------------------------------------------------------- */

/* A file store reads through its own connection: every read that starts
 * after a write returned must see it, from this thread and from others. */
struct reader_arg {
    struct store *s;
    atomic_int stop;
    int errors;
};

static void *reader_main(void *arg)
{
    struct reader_arg *ra = arg;
    struct err e;
    while (!ra->stop) {
        struct resource_list l = {0};
        if (store_list(ra->s, &TYPE_DATAPLANE, NULL, &l, &e) != 0 || l.total != l.n)
            ra->errors++;
        resource_list_free(&l);
    }
    return NULL;
}

TEST(store_file_reads_see_every_committed_write)
{
    char *path = tmp_path("raw.db");
    struct store *s = open_file(path);
    struct err e = {{0}};
    mesh_ok(s, "m");
    struct reader_arg ra = {.s = s};
    pthread_t th;
    pthread_create(&th, NULL, reader_main, &ra);
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dp-%d", i);
        struct resource *r = res(&TYPE_DATAPLANE, "m", name, NULL);
        ASSERT_INT_EQ(store_create(s, r, NULL, &e), 0);
        struct resource *g = get_ok(s, &TYPE_DATAPLANE, "m", name);
        ASSERT_INT_EQ(g->version, 1);
        resource_free(g);
        ASSERT_INT_EQ(store_update(s, r, NULL, &e), 0);
        g = get_ok(s, &TYPE_DATAPLANE, "m", name);
        ASSERT_INT_EQ(g->version, 2);
        resource_free(g);
        size_t n = 0;
        ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, "m", &n, &e), 0);
        ASSERT_INT_EQ(n, 1); /* each is deleted before the next */
        ASSERT_INT_EQ(store_delete(s, &TYPE_DATAPLANE, "m", name, NULL, &e), 0);
        ASSERT(!exists(s, &TYPE_DATAPLANE, "m", name));
        resource_free(r);
    }
    ra.stop = 1;
    pthread_join(th, NULL);
    ASSERT_INT_EQ(ra.errors, 0);
    store_close(s);
    free(path);
    LEAK_CHECK();
}

TEST(store_file_mode_0600)
{
    umask(0); /* whatever the umask, the files must not be readable by others */
    char *path = tmp_path("kuma.db");
    struct store *s = open_file(path);
    mesh_ok(s, "m"); /* makes sure -wal and -shm exist */
    char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
    ASSERT_INT_EQ(file_mode(path), 0600);
    ASSERT_INT_EQ(file_mode(wal), 0600);
    ASSERT_INT_EQ(file_mode(shm), 0600);
    store_close(s);
    free(wal);
    free(shm);
    free(path);
    LEAK_CHECK();
}

TEST(store_file_loose_mode_is_tightened)
{
    char *path = tmp_path("loose.db");
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(fchmod(fd, 0644), 0);
    close(fd);
    struct store *s = open_file(path);
    ASSERT_INT_EQ(file_mode(path), 0600);
    mesh_ok(s, "m");
    store_close(s);
    free(path);
    LEAK_CHECK();
}

TEST(store_file_is_wal_with_schema_version)
{
    char *path = tmp_path("kuma.db");
    struct store *s = open_file(path);
    mesh_ok(s, "m");
    /* Look from outside, as an operator with the sqlite3 shell would. */
    sqlite3 *db = NULL;
    ASSERT_INT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ASSERT_INT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    ASSERT_INT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_INT_EQ(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    /* The Mesh row as Kuma would store it. */
    ASSERT_INT_EQ(sqlite3_prepare_v2(db,
                                     "SELECT mesh, version, spec, labels, owner_name IS NULL"
                                     " FROM resources WHERE type = 'Mesh' AND name = 'm'",
                                     -1, &st, NULL),
                  SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "");
    ASSERT_INT_EQ(sqlite3_column_int(st, 1), 1);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 2), "{}");
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 3), "{}");
    ASSERT_INT_EQ(sqlite3_column_int(st, 4), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    store_close(s);
    free(path);
    LEAK_CHECK();
}

TEST(store_reopen_keeps_data)
{
    char *path = tmp_path("kuma.db");
    struct err e = {{0}};
    struct store *s = open_file(path);
    mesh_ok(s, "m");
    struct resource *r = res(&TYPE_DATAPLANE, "m", "dp", "{\"k\":\"v\"}");
    json_object_set_new(r->labels, "l", json_string("x"));
    ASSERT_INT_EQ(store_create(s, r, NULL, &e), 0);
    ASSERT_INT_EQ(store_update(s, r, NULL, &e), 0);
    put_ok(s, &TYPE_DATAPLANE, "m", "gone");
    ASSERT_INT_EQ(store_delete(s, &TYPE_DATAPLANE, "m", "gone", NULL, &e), 0);
    store_close(s);

    for (int i = 0; i < 2; i++) { /* reopening twice runs no migration twice */
        s = open_file(path);
        struct resource *g = get_ok(s, &TYPE_DATAPLANE, "m", "dp");
        ASSERT_INT_EQ(g->version, 2);
        ASSERT_INT_EQ(g->creation_time, r->creation_time);
        ASSERT_INT_EQ(g->modification_time, r->modification_time);
        ASSERT(json_equal(g->spec, r->spec));
        ASSERT(json_equal(g->labels, r->labels));
        ASSERT(!exists(s, &TYPE_DATAPLANE, "m", "gone"));
        resource_free(g);
        /* Foreign keys are on again after reopening: the cascade works. */
        if (i == 1) {
            struct changes ch = {0};
            ASSERT_INT_EQ(store_delete(s, &TYPE_MESH, "", "m", &ch, &e), 0);
            ASSERT_INT_EQ(ch.n, 2);
            changes_free(&ch);
            ASSERT(!exists(s, &TYPE_DATAPLANE, "m", "dp"));
        }
        store_close(s);
    }
    resource_free(r);
    free(path);
    LEAK_CHECK();
}

TEST(store_memory_stores_are_separate)
{
    struct store *a = open_mem(), *b = open_mem();
    mesh_ok(a, "m");
    ASSERT(exists(a, &TYPE_MESH, "", "m"));
    ASSERT(!exists(b, &TYPE_MESH, "", "m"));
    store_close(a);
    store_close(b);
    store_close(NULL);

    enum store_kind k = STORE_KIND_SQLITE;
    ASSERT_INT_EQ(store_kind_parse("memory", &k), 0);
    ASSERT_INT_EQ(k, STORE_KIND_MEMORY);
    ASSERT_INT_EQ(store_kind_parse("sqlite", &k), 0);
    ASSERT_INT_EQ(k, STORE_KIND_SQLITE);
    ASSERT_INT_EQ(store_kind_parse(NULL, &k), 0);
    ASSERT_INT_EQ(k, STORE_KIND_SQLITE);
    ASSERT_INT_EQ(store_kind_parse("postgress", &k), -1);
    LEAK_CHECK();
}

TEST(store_open_refuses_bad_files_without_touching_them)
{
    struct store *s = NULL;
    struct err e = {{0}};
    /* Not a database: refused, and not one byte changes. */
    char *path = tmp_path("notes.txt");
    const char text[] = "these are someone's notes, not a database\n"
                        "............................................................";
    ASSERT_INT_EQ(write_file_atomic(path, text, sizeof(text) - 1, 0600, &e), 0);
    ASSERT_INT_EQ(store_open(STORE_KIND_SQLITE, path, &s, &e), STORE_EIO);
    ASSERT(s == NULL);
    ASSERT_STR_CONTAINS(e.msg, "not a database");
    size_t len = 0;
    char *after = read_file(path, 4096, &len, &e);
    ASSERT(after);
    ASSERT_INT_EQ(len, sizeof(text) - 1);
    ASSERT(memcmp(after, text, len) == 0);
    free(after);
    free(path);

    /* A directory, a missing directory, no path. */
    ASSERT_INT_EQ(store_open(STORE_KIND_SQLITE, test_tmpdir(), &s, &e), STORE_EIO);
    char *missing = tmp_path("no/such/dir/kuma.db");
    ASSERT_INT_EQ(store_open(STORE_KIND_SQLITE, missing, &s, &e), STORE_EIO);
    ASSERT_STR_CONTAINS(e.msg, "No such file");
    free(missing);
    ASSERT_INT_EQ(store_open(STORE_KIND_SQLITE, NULL, &s, &e), STORE_EINVALID);
    ASSERT_INT_EQ(store_open(STORE_KIND_SQLITE, "", &s, &e), STORE_EINVALID);
    LEAK_CHECK();
}

TEST(store_open_refuses_newer_schema)
{
    char *path = tmp_path("kuma.db");
    struct store *s = open_file(path);
    mesh_ok(s, "keep-me");
    store_close(s);

    sqlite3 *db = NULL;
    ASSERT_INT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct err e = {{0}};
    s = NULL;
    ASSERT_INT_EQ(store_open(STORE_KIND_SQLITE, path, &s, &e), STORE_EIO);
    ASSERT_STR_CONTAINS(e.msg, "schema version 99 is newer");

    ASSERT_INT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    s = open_file(path);
    ASSERT(exists(s, &TYPE_MESH, "", "keep-me"));
    store_close(s);
    free(path);
    LEAK_CHECK();
}

TEST(store_corrupt_row_is_eio_not_crash)
{
    char *path = tmp_path("kuma.db");
    struct store *s = open_file(path);
    mesh_ok(s, "m");
    mesh_ok(s, "ok");
    sqlite3 *db = NULL;
    ASSERT_INT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_exec(db, "UPDATE resources SET spec = '{not json' WHERE name = 'm'", NULL,
                               NULL, NULL),
                  SQLITE_OK);
    sqlite3_close(db);
    struct err e = {{0}};
    struct resource *r = NULL;
    ASSERT_INT_EQ(store_get(s, &TYPE_MESH, "", "m", &r, &e), STORE_EIO);
    ASSERT(r == NULL);
    struct resource_list l = {0};
    ASSERT_INT_EQ(store_list(s, &TYPE_MESH, NULL, &l, &e), STORE_EIO);
    ASSERT_INT_EQ(l.n, 0);
    /* The rest keeps working. */
    ASSERT(exists(s, &TYPE_MESH, "", "ok"));
    put_ok(s, &TYPE_MESH, "", "new");
    store_close(s);
    free(path);
    LEAK_CHECK();
}

TEST(store_locked_database_is_eio_then_recovers)
{
    char *path = tmp_path("kuma.db");
    struct store *s = open_file(path);
    struct err e = {{0}};
    struct changes ch = {0};
    mesh_ok(s, "m");
    /* Another process (here: connection) holds the write lock past our
     * busy timeout. */
    sqlite3 *other = NULL;
    ASSERT_INT_EQ(sqlite3_open(path, &other), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct resource *r = res(&TYPE_DATAPLANE, "m", "dp", NULL);
    int64_t t0 = mono_ms();
    ASSERT_INT_EQ(store_create(s, r, &ch, &e), STORE_EIO);
    ASSERT(mono_ms() - t0 >= 4000); /* it waited busy_timeout first */
    ASSERT_STR_CONTAINS(e.msg, "locked");
    ASSERT_INT_EQ(ch.n, 0);
    ASSERT_INT_EQ(r->version, 0);
    /* Reads go on meanwhile (WAL). */
    ASSERT(exists(s, &TYPE_MESH, "", "m"));
    ASSERT_INT_EQ(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* And the same store writes again. */
    ASSERT_INT_EQ(store_create(s, r, &ch, &e), 0);
    ASSERT_INT_EQ(ch.n, 1);
    ASSERT(exists(s, &TYPE_DATAPLANE, "m", "dp"));
    resource_free(r);
    changes_free(&ch);
    store_close(s);
    free(path);
    LEAK_CHECK();
}

/* ---- crash safety ------------------------------------------------------------ */

#define KILL_TOTAL 5000
#define KILL_AFTER 300

/* The child writes resources one by one and reports each acknowledged write
 * on the pipe; the parent kills it with SIGKILL mid-stream. Every reported
 * write must be in the database after reopening. */
TEST(store_sigkill_loses_no_acknowledged_write)
{
    char *path = tmp_path("crash.db");
    int fds[2];
    ASSERT_INT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct store *s = NULL;
        struct err e;
        if (store_open(STORE_KIND_SQLITE, path, &s, &e) != 0)
            _exit(2);
        struct resource *m = resource_new(&TYPE_MESH, "", "m");
        if (store_create(s, m, NULL, &e) != 0)
            _exit(3);
        for (int i = 0; i < KILL_TOTAL; i++) {
            char name[32];
            int n = snprintf(name, sizeof(name), "dp-%05d\n", i);
            name[n - 1] = '\0';
            struct resource *r = resource_new(&TYPE_DATAPLANE, "m", name);
            json_object_set_new(r->spec, "i", json_integer(i));
            if (store_create(s, r, NULL, &e) != 0)
                _exit(4);
            /* Every tenth write is also updated, to crash mid-update too. */
            if (i % 10 == 0 && store_update(s, r, NULL, &e) != 0)
                _exit(5);
            name[n - 1] = '\n';
            if (write(fds[1], name, (size_t)n) != n)
                _exit(6);
            resource_free(r);
        }
        _exit(0);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    ASSERT(in);
    char line[64];
    char **acked = xcalloc(KILL_TOTAL, sizeof(*acked));
    size_t nacked = 0;
    while (nacked < KILL_AFTER && fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = '\0';
        acked[nacked++] = xstrdup(line);
    }
    ASSERT_INT_EQ(nacked, KILL_AFTER);
    ASSERT_INT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Whatever the child reported before it died was acknowledged too. */
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = '\0';
        acked[nacked++] = xstrdup(line);
    }
    fclose(in);
    ASSERT(nacked < KILL_TOTAL); /* it really died mid-stream */

    struct store *s = open_file(path);
    for (size_t i = 0; i < nacked; i++) {
        struct resource *r = get_ok(s, &TYPE_DATAPLANE, "m", acked[i]);
        int idx = atoi(acked[i] + 3);
        ASSERT_INT_EQ(json_integer_value(json_object_get(r->spec, "i")), idx);
        ASSERT_INT_EQ(r->version, idx % 10 == 0 ? 2 : 1);
        resource_free(r);
        free(acked[i]);
    }
    free(acked);
    size_t n = 0;
    struct err e = {{0}};
    ASSERT_INT_EQ(store_count(s, &TYPE_DATAPLANE, "m", &n, &e), 0);
    ASSERT(n >= nacked && n <= nacked + 1); /* at most one committed, not yet reported */
    /* And the database is healthy. */
    put_ok(s, &TYPE_DATAPLANE, "m", "after-crash");
    store_close(s);
    free(path);
    LEAK_CHECK();
}
