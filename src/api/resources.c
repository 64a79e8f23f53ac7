/*
 * api/resources — Kuma's REST endpoints: index, config, resource descriptors,
 * CRUD and lists for every type, and mesh insights.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/inspect.h"
#include "api/internal.h"
#include "core/codec.h"
#include "core/log.h"
#include "core/resource.h"
#include "store/store.h"

#define KUMA_VERSION      "2.14.3"
#define DEFAULT_PAGE_SIZE 100
#define MAX_PAGE_SIZE     1000

static int is_get(struct api_req *rq)
{
    return strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
}

static enum MHD_Result not_allowed(struct api_req *rq)
{
    return api_reply_error(rq, 405, "Method Not Allowed", "Method Not Allowed", NULL);
}

static enum MHD_Result no_route(struct api_req *rq)
{
    return api_reply_error(rq, 404, "Not Found", "Not found", NULL);
}

static enum MHD_Result internal_error(struct api_req *rq, const char *title, const char *why)
{
    log_error("api", "%s: %s", title, why);
    return api_reply_error(rq, 500, title, "Internal Server Error", NULL);
}

/* --- index, config, descriptors --- */

static enum MHD_Result get_index(struct api_req *rq)
{
    const struct api_deps *d = rq->deps;
    return api_reply(rq, 200,
                     json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "hostname", d->hostname,
                               "tagline", "Kuma", "product", "Kuma", "version", KUMA_VERSION,
                               "instanceId", d->instance_id, "clusterId", d->cluster_id, "gui",
                               "The gui is not available in this control plane"));
}

/* Policy flags of targetRef policies, as Kuma's /_resources shows them. */
static json_t *policy_info(const struct res_type *t)
{
    static const struct {
        const char *name;
        int has_from, has_to, from_as_rules;
    } tr[] = {
        {"MeshTrafficPermission", 1, 0, 0}, {"MeshTimeout", 1, 1, 1},   {"MeshRetry", 0, 1, 0},
        {"MeshCircuitBreaker", 1, 1, 1},    {"MeshHTTPRoute", 0, 1, 0}, {"MeshTCPRoute", 0, 1, 0},
    };
    int from = 0, to = 0, rules = 0;
    for (size_t i = 0; i < sizeof(tr) / sizeof(tr[0]); i++)
        if (strcmp(tr[i].name, t->name) == 0) {
            from = tr[i].has_from;
            to = tr[i].has_to;
            rules = tr[i].from_as_rules;
        }
    return json_pack("{s:b, s:b, s:b, s:b}", "hasFromTargetRef", from, "hasToTargetRef", to,
                     "isFromAsRules", rules, "isTargetRef", t->is_target_ref);
}

static int cmp_type_name(const void *a, const void *b)
{
    const struct res_type *x = *(const struct res_type *const *)a;
    const struct res_type *y = *(const struct res_type *const *)b;
    return strcmp(x->name, y->name);
}

static enum MHD_Result get_descriptors(struct api_req *rq)
{
    size_t n;
    const struct res_type *const *all = types_all(&n);
    const struct res_type **sorted = xcalloc(n, sizeof(*sorted));
    memcpy(sorted, all, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_type_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct res_type *t = sorted[i];
        json_t *o =
            json_pack("{s:b, s:s, s:s, s:s}", "includeInFederation", t->include_in_federation,
                      "name", t->name, "path", t->plural, "pluralDisplayName", t->plural_display);
        if (t->is_policy)
            json_object_set_new(o, "policy", policy_info(t));
        json_object_set_new(o, "readOnly", json_boolean(t->read_only));
        json_object_set_new(o, "scope",
                            json_string(t->scope == RES_SCOPE_MESH ? "Mesh" : "Global"));
        json_object_set_new(o, "shortName", json_string(t->short_name));
        json_object_set_new(o, "singularDisplayName", json_string(t->singular_display));
        json_array_append_new(arr, o);
    }
    free(sorted);
    return api_reply(rq, 200, json_pack("{s:o}", "resources", arr));
}

/* --- lists --- */

struct list_params {
    size_t size, offset;
    const char *name;
    const char *label_key, *label_value;
    char *label_key_buf;
    const char *tags[16]; /* "key:value" dataplane tag filters */
    int ntags;
    int bad_filter;
};

static void collect_query(void *arg, const char *key, const char *value)
{
    struct list_params *p = arg;
    if (strcmp(key, "tag") == 0) {
        if (p->ntags < 16)
            p->tags[p->ntags++] = value;
    } else if (str_has_prefix(key, "filter[")) {
        const char *in = key + strlen("filter[");
        size_t n = strlen(in);
        if (!str_has_prefix(in, "labels.") || n < 2 || in[n - 1] != ']' || p->label_key_buf) {
            p->bad_filter = 1;
            return;
        }
        p->label_key_buf = xstrndup(in + strlen("labels."), n - 1 - strlen("labels."));
        p->label_key = p->label_key_buf;
        p->label_value = value;
    }
}

/* Parses size, offset and filters; on error replies and returns -1. */
static int parse_list_params(struct api_req *rq, struct list_params *p, enum MHD_Result *r)
{
    const char *title = "Could not retrieve resources";
    memset(p, 0, sizeof(*p));
    p->size = DEFAULT_PAGE_SIZE;
    const char *size = api_query(rq, "size");
    if (size) {
        char *end;
        errno = 0;
        long long v = strtoll(size, &end, 10);
        if (errno || end == size || *end) {
            *r = api_reply_param_error(rq, 400, title, "Invalid page size", "size",
                                       "invalid format");
            return -1;
        }
        if (v <= 0) {
            *r = api_reply_param_error(rq, 400, title, "Invalid page size", "size",
                                       "must be greater than 0");
            return -1;
        }
        if (v > MAX_PAGE_SIZE) {
            char reason[128];
            snprintf(reason, sizeof(reason), "invalid page size of %lld. Maximum page size is %d",
                     v, MAX_PAGE_SIZE);
            *r = api_reply_param_error(rq, 400, title, "Invalid page size", "size", reason);
            return -1;
        }
        p->size = (size_t)v;
    }
    const char *offset = api_query(rq, "offset");
    if (offset && *offset) {
        char *end;
        errno = 0;
        long long v = strtoll(offset, &end, 10);
        if (errno || end == offset || *end || v < 0) {
            char detail[256];
            snprintf(detail, sizeof(detail), "invalid: invalid offset: %s",
                     v < 0 && !errno && !*end ? "must be non-negative" : "must be an integer");
            *r = api_reply_error(rq, 400, title, detail, NULL);
            return -1;
        }
        p->offset = (size_t)v;
    }
    p->name = api_query(rq, "name");
    api_query_each(rq, collect_query, p);
    if (p->bad_filter) {
        free(p->label_key_buf);
        *r = api_reply_error(rq, 400, title, "filters are only supported on labels", NULL);
        return -1;
    }
    return 0;
}

/* Kuma's tag filter: every tag=key:value must match some inbound (or the
 * gateway) tag key with a value containing the given value. */
static int dataplane_matches_tags(const struct resource *r, const struct list_params *p)
{
    json_t *net = json_object_get(r->spec, "networking");
    for (int i = 0; i < p->ntags; i++) {
        const char *colon = strchr(p->tags[i], ':');
        if (!colon)
            continue;
        char *key = xstrndup(p->tags[i], (size_t)(colon - p->tags[i]));
        const char *want = colon + 1;
        int found = 0;
        json_t *inb = json_object_get(net, "inbound");
        size_t j;
        json_t *in;
        json_array_foreach(inb, j, in)
        {
            const char *v = json_string_value(json_object_get(json_object_get(in, "tags"), key));
            if (v && strstr(v, want))
                found = 1;
        }
        const char *gv = json_string_value(
            json_object_get(json_object_get(json_object_get(net, "gateway"), "tags"), key));
        if (gv && strstr(gv, want))
            found = 1;
        free(key);
        if (!found)
            return 0;
    }
    return 1;
}

static void url_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~:/", c))
            buf_append(b, s, 1);
        else
            buf_printf(b, "%%%02X", c);
    }
}

static void keep_query_arg(void *arg, const char *key, const char *value)
{
    struct buf *b = arg;
    if (strcmp(key, "offset") == 0 || strcmp(key, "size") == 0)
        return;
    buf_append(b, "&", 1);
    url_escape(b, key);
    buf_append(b, "=", 1);
    url_escape(b, value);
}

/* Kuma's `next`: the same request with the next offset; the other query
 * arguments (filters) are kept. */
static char *next_link(struct api_req *rq, size_t offset, size_t size)
{
    const char *host = api_header(rq, "Host");
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s://%s%s?offset=%zu&size=%zu", rq->tls ? "https" : "http",
               host ? host : "localhost", rq->path, offset, size);
    api_query_each(rq, keep_query_arg, &b);
    buf_str(&b);
    return b.data;
}

static enum MHD_Result list_resources(struct api_req *rq, const struct res_type *t,
                                      const char *mesh)
{
    struct list_params p;
    enum MHD_Result r;
    if (parse_list_params(rq, &p, &r) < 0)
        return r;
    struct store_filter f = {.mesh = mesh,
                             .name_substr = p.name,
                             .label_key = p.label_key,
                             .label_value = p.label_value,
                             .offset = p.offset,
                             .size = p.size};
    int post_filter = t == &TYPE_DATAPLANE && p.ntags > 0;
    if (post_filter) {
        f.offset = 0;
        f.size = 0;
    }
    struct resource_list l = {0};
    struct err e;
    int rc = store_list(manager_store(rq->deps->mgr), t, &f, &l, &e);
    if (rc < 0) {
        free(p.label_key_buf);
        if (rc == STORE_EINVALID)
            return api_reply_error(rq, 400, "Could not retrieve resources", e.msg, NULL);
        return internal_error(rq, "Could not retrieve resources", e.msg);
    }
    json_t *items = json_array();
    size_t total = l.total, next = 0;
    int has_next = l.has_next;
    if (post_filter) {
        size_t matched = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (!dataplane_matches_tags(l.items[i], &p))
                continue;
            if (matched >= p.offset && matched < p.offset + p.size)
                json_array_append_new(items, resource_to_json(l.items[i], RES_FORM_UNIVERSAL));
            matched++;
        }
        total = matched;
        has_next = matched > p.offset + p.size;
        next = p.offset + p.size;
    } else {
        for (size_t i = 0; i < l.n; i++)
            json_array_append_new(items, resource_to_json(l.items[i], RES_FORM_UNIVERSAL));
        next = l.next_offset;
    }
    resource_list_free(&l);
    free(p.label_key_buf);
    json_t *o = json_pack("{s:I, s:o}", "total", (json_int_t)total, "items", items);
    if (has_next) {
        char *link = next_link(rq, next, p.size);
        json_object_set_new(o, "next", json_string(link));
        free(link);
    } else {
        json_object_set_new(o, "next", json_null());
    }
    return api_reply(rq, 200, o);
}

/* --- single resources --- */

/* Whether the mesh exists; replies 404 "Failed to retrieve Mesh" if not. */
static int require_mesh(struct api_req *rq, const char *mesh, enum MHD_Result *r)
{
    struct resource *m = NULL;
    struct err e;
    int rc = store_get(manager_store(rq->deps->mgr), &TYPE_MESH, "", mesh, &m, &e);
    if (rc == STORE_OK) {
        resource_free(m);
        return 0;
    }
    if (rc == STORE_ENOTFOUND)
        *r = api_reply_error(rq, 404, "Failed to retrieve Mesh", "Not found", NULL);
    else
        *r = internal_error(rq, "Failed to retrieve Mesh", e.msg);
    return -1;
}

static int wants_k8s(struct api_req *rq, enum MHD_Result *r)
{
    const char *fmt = api_query(rq, "format");
    if (!fmt || !*fmt || strcmp(fmt, "universal") == 0)
        return 0;
    if (strcmp(fmt, "kubernetes") == 0 || strcmp(fmt, "k8s") == 0)
        return 1;
    *r = api_reply_param_error(rq, 400, "Could not retrieve a resource", "Bad Request", "format",
                               "format must be one of universal, kubernetes, k8s");
    return -1;
}

static enum MHD_Result get_resource(struct api_req *rq, const struct res_type *t, const char *mesh,
                                    const char *name)
{
    enum MHD_Result r;
    int k8s = wants_k8s(rq, &r);
    if (k8s < 0)
        return r;
    struct resource *res = NULL;
    struct err e;
    int rc = store_get(manager_store(rq->deps->mgr), t, mesh, name, &res, &e);
    if (rc == STORE_ENOTFOUND)
        return api_reply_error(rq, 404, "Could not retrieve a resource", "Not found", NULL);
    if (rc < 0)
        return internal_error(rq, "Could not retrieve a resource", e.msg);
    json_t *o = resource_to_json(res, k8s ? RES_FORM_K8S : RES_FORM_UNIVERSAL);
    resource_free(res);
    return api_reply(rq, 200, o);
}

/* Replies with the manager's failure, titled for the operation. */
static enum MHD_Result reply_mgr_error(struct api_req *rq, const struct mgr_result *res,
                                       const char *title, const char *mesh)
{
    switch (res->code) {
    case MGR_ENOTFOUND:
        return api_reply_error(rq, 404, title, "Not found", NULL);
    case MGR_EMESH_NOT_FOUND: {
        char reason[512];
        snprintf(reason, sizeof(reason), "mesh of name %s is not found", mesh);
        return api_reply_param_error(rq, 400, title, "Mesh is not found", "mesh", reason);
    }
    case MGR_EINVALID:
        return api_reply_error(rq, 400, res->manager_level ? title : "Could not process a resource",
                               "Resource is not valid", &res->ve);
    case MGR_ECONFLICT:
    case MGR_EEXIST:
        return api_reply_error(rq, 409, title, "Conflict", NULL);
    case MGR_EBAD:
        return api_reply_error(rq, 400, "Bad Request", res->msg, NULL);
    default:
        return internal_error(rq, title, res->msg);
    }
}

static enum MHD_Result put_resource(struct api_req *rq, const struct res_type *t, const char *mesh,
                                    const char *name)
{
    const char *process = "Could not process a resource";
    if (rq->deps->cfg->api_read_only)
        return api_reply_error(rq, 405, "Method Not Allowed",
                               "On this control plane the API server is read-only", NULL);
    json_t *doc = NULL;
    struct err e;
    if (codec_parse_one(rq->body, rq->body_len, &doc, &e) < 0) {
        char *detail = xasprintf("invalid %s object: \"%s\"", t->name, e.msg);
        enum MHD_Result r = api_reply_error(rq, 400, "Bad Request", detail, NULL);
        free(detail);
        return r;
    }
    struct resource *res = NULL;
    int rc = resource_from_json(doc, &res, &e);
    json_decref(doc);
    if (rc < 0) {
        char *detail = xasprintf("invalid %s object: \"%s\"", t->name, e.msg);
        enum MHD_Result r = api_reply_error(rq, 400, "Bad Request", detail, NULL);
        free(detail);
        return r;
    }
    struct verr ve = {0};
    if (strcmp(res->name, name) != 0)
        verr_add(&ve, "name", "name from the URL has to be the same as in body");
    if (res->type != t)
        verr_add(&ve, "type", "type from the URL has to be the same as in body");
    if (t->scope == RES_SCOPE_MESH && strcmp(res->mesh, mesh) != 0)
        verr_add(&ve, "mesh", "mesh from the URL has to be the same as in body");
    if (ve.n) {
        enum MHD_Result r = api_reply_error(rq, 400, process, "Resource is not valid", &ve);
        verr_free(&ve);
        resource_free(res);
        return r;
    }
    struct mgr_result mr = {0};
    int created = 0;
    rc = manager_put(rq->deps->mgr, res, &created, &mr);
    enum MHD_Result r;
    if (rc == MGR_OK)
        r = api_reply(rq, created ? 201 : 200, json_object());
    else
        r = reply_mgr_error(
            rq, &mr, created ? "Failed to create a resource" : "Failed to update a resource", mesh);
    mgr_result_free(&mr);
    resource_free(res);
    return r;
}

static enum MHD_Result delete_resource(struct api_req *rq, const struct res_type *t,
                                       const char *mesh, const char *name)
{
    if (rq->deps->cfg->api_read_only)
        return api_reply_error(rq, 405, "Method Not Allowed",
                               "On this control plane the API server is read-only", NULL);
    struct mgr_result mr = {0};
    int rc = manager_delete(rq->deps->mgr, t, mesh, name, &mr);
    enum MHD_Result r = rc == MGR_OK
                            ? api_reply(rq, 200, json_object())
                            : reply_mgr_error(rq, &mr, "Could not delete a resource", mesh);
    mgr_result_free(&mr);
    return r;
}

static enum MHD_Result resource_item(struct api_req *rq, const struct res_type *t, const char *mesh,
                                     const char *name)
{
    if (is_get(rq))
        return get_resource(rq, t, mesh, name);
    if (strcmp(rq->method, "PUT") == 0)
        return put_resource(rq, t, mesh, name);
    if (strcmp(rq->method, "DELETE") == 0)
        return delete_resource(rq, t, mesh, name);
    return not_allowed(rq);
}

/* --- mesh insights --- */

static json_t *mesh_insight(struct api_req *rq, const struct resource *mesh, struct err *e)
{
    struct store *st = manager_store(rq->deps->mgr);
    size_t n;
    const struct res_type *const *all = types_all(&n);
    json_t *policies = json_object(), *resources = json_object();
    size_t dps = 0;
    for (size_t i = 0; i < n; i++) {
        const struct res_type *t = all[i];
        if (t->scope != RES_SCOPE_MESH)
            continue;
        size_t count = 0;
        if (store_count(st, t, mesh->name, &count, e) < 0) {
            json_decref(policies);
            json_decref(resources);
            return NULL;
        }
        if (t == &TYPE_DATAPLANE)
            dps = count;
        if (!count)
            continue;
        json_object_set_new(resources, t->name, json_pack("{s:I}", "total", (json_int_t)count));
        if (t->is_policy || t == &TYPE_EXTERNAL_SERVICE)
            json_object_set_new(policies, t->name, json_pack("{s:I}", "total", (json_int_t)count));
    }
    char ts[64];
    time_format_rfc3339(mesh->creation_time, ts, sizeof(ts));
    size_t online = api_inspect_online(mesh->name); /* xDS insights (api/inspect.c) */
    if (online > dps)
        online = dps;
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I}, s:o, s:o}", "type", "MeshInsight",
                     "name", mesh->name, "creationTime", ts, "modificationTime", ts, "dataplanes",
                     "total", (json_int_t)dps, "online", (json_int_t)online, "offline",
                     (json_int_t)(dps - online), "policies", policies, "resources", resources);
}

static enum MHD_Result get_mesh_insights(struct api_req *rq, const char *name)
{
    struct store *st = manager_store(rq->deps->mgr);
    struct err e;
    if (name) {
        struct resource *m = NULL;
        int rc = store_get(st, &TYPE_MESH, "", name, &m, &e);
        if (rc == STORE_ENOTFOUND)
            return api_reply_error(rq, 404, "Could not retrieve a resource", "Not found", NULL);
        if (rc < 0)
            return internal_error(rq, "Could not retrieve a resource", e.msg);
        json_t *o = mesh_insight(rq, m, &e);
        resource_free(m);
        return o ? api_reply(rq, 200, o)
                 : internal_error(rq, "Could not retrieve a resource", e.msg);
    }
    struct list_params p;
    enum MHD_Result r;
    if (parse_list_params(rq, &p, &r) < 0)
        return r;
    struct store_filter f = {.offset = p.offset, .size = p.size, .name_substr = p.name};
    struct resource_list l = {0};
    free(p.label_key_buf);
    if (store_list(st, &TYPE_MESH, &f, &l, &e) < 0)
        return internal_error(rq, "Could not retrieve resources", e.msg);
    json_t *items = json_array();
    for (size_t i = 0; i < l.n; i++) {
        json_t *o = mesh_insight(rq, l.items[i], &e);
        if (!o) {
            resource_list_free(&l);
            json_decref(items);
            return internal_error(rq, "Could not retrieve resources", e.msg);
        }
        json_array_append_new(items, o);
    }
    json_t *o = json_pack("{s:I, s:o}", "total", (json_int_t)l.total, "items", items);
    if (l.has_next) {
        char *link = next_link(rq, l.next_offset, p.size);
        json_object_set_new(o, "next", json_string(link));
        free(link);
    } else {
        json_object_set_new(o, "next", json_null());
    }
    resource_list_free(&l);
    return api_reply(rq, 200, o);
}

/* --- routing --- */

enum MHD_Result api_route(struct api_req *rq, char **seg, int nseg)
{
    if (nseg == 0)
        return is_get(rq) ? get_index(rq) : not_allowed(rq);
    if (nseg == 1 && strcmp(seg[0], "config") == 0)
        return is_get(rq) ? api_reply(rq, 200, config_to_json(rq->deps->cfg)) : not_allowed(rq);
    if (nseg == 1 && strcmp(seg[0], "_resources") == 0)
        return is_get(rq) ? get_descriptors(rq) : not_allowed(rq);
    /* --- xDS insights and inspection (api/inspect.c) --- */
    enum MHD_Result ires;
    if (api_inspect_route(rq, seg, nseg, &ires))
        return ires;
    /* --- end xDS --- */
    /* --- identity: token endpoints (tokens.c) --- */
    if (strcmp(seg[0], "tokens") == 0)
        return api_tokens_route(rq, seg, nseg);
    /* --- end identity --- */
    if (strcmp(seg[0], "mesh-insights") == 0 && nseg <= 2)
        return is_get(rq) ? get_mesh_insights(rq, nseg == 2 ? seg[1] : NULL) : not_allowed(rq);

    if (strcmp(seg[0], "meshes") == 0 && nseg >= 3) {
        const char *mesh = seg[1];
        const struct res_type *t = types_by_plural(seg[2]);
        if (!t || t->scope != RES_SCOPE_MESH || nseg > 4)
            return no_route(rq);
        enum MHD_Result r;
        if (require_mesh(rq, mesh, &r) < 0)
            return r;
        if (nseg == 3)
            return is_get(rq) ? list_resources(rq, t, mesh) : not_allowed(rq);
        return resource_item(rq, t, mesh, seg[3]);
    }

    const struct res_type *t = types_by_plural(seg[0]);
    if (!t || nseg > 2)
        return no_route(rq);
    if (nseg == 1)
        return is_get(rq) ? list_resources(rq, t, NULL) : not_allowed(rq);
    if (t->scope != RES_SCOPE_GLOBAL)
        return no_route(rq);
    return resource_item(rq, t, "", seg[1]);
}
