/*
 * validate_routes — Kuma's validators of the route policies MeshHTTPRoute
 * and MeshTCPRoute (pkg/plugins/policies/mesh{http,tcp}route/api/v1alpha1
 * validat*.go): the same paths, order and messages.
 *
 * The top-level targetRef follows Kuma's policy role: without a
 * `kuma.io/policy-role` label (every universal resource here) the role is
 * "system", which allows Mesh, MeshGateway (with listener tags), MeshSubset,
 * MeshService, MeshServiceSubset and Dataplane; a producer / consumer /
 * workload-owner role allows the same without MeshGateway (Kuma 2.x; later
 * releases dropped the deprecated subset kinds). Enum values Kuma's schema would refuse before
 * validating (an unknown path, header or filter type) are reported as "value is not supported" at
 * the field, so a route the generator cannot read is never stored.
 */
#include <jansson.h>
#include <string.h>

#include "core/resource.h"
#include "core/types.h"
#include "core/validate.h"
#include "core/validate_internal.h"

static const char *const TOP_SYSTEM[] = {
    "Mesh", "MeshGateway", "MeshSubset", "MeshService", "MeshServiceSubset", "Dataplane", NULL};
static const char *const TOP_OTHER[] = {
    "Mesh", "MeshSubset", "MeshService", "MeshServiceSubset", "Dataplane", NULL};
static const char *const TO_GATEWAY[] = {"Mesh", NULL};
static const char *const TO_KINDS[] = {"MeshService", "MeshExternalService", "MeshMultiZoneService",
                                       NULL};
static const char *const BACKEND_KINDS[] = {"MeshService", "MeshServiceSubset",
                                            "MeshExternalService", "MeshMultiZoneService", NULL};
static const char *const MIRROR_KINDS[] = {"MeshService", "MeshServiceSubset", NULL};

static int in_list(const char *s, const char *const *l)
{
    for (size_t i = 0; l[i]; i++)
        if (strcmp(s, l[i]) == 0)
            return 1;
    return 0;
}

/* The top-level targetRef (absent = Mesh); returns its kind. */
static const char *route_top(const struct resource *r, struct verr *ve, struct vpath *p)
{
    const json_t *ref = vj_obj(ve, p, r->spec, "targetRef");
    if (!ref)
        return "Mesh";
    const char *role = json_string_value(json_object_get(r->labels, "kuma.io/policy-role"));
    int system = !role || !*role || strcmp(role, "system") == 0;
    struct tr_opts o = {.kinds = system ? TOP_SYSTEM : TOP_OTHER, .gateway_listener_tags = system};
    size_t m = vp_field(p, "targetRef");
    v_target_ref(ve, p, ref, &o);
    vp_reset(p, m);
    const char *k = vj_peek_str(ref, "kind");
    return *k ? k : "";
}

/* A targetRef field of an item, p at the item. */
static void item_ref(struct verr *ve, struct vpath *p, const json_t *item, const char *key,
                     const char *const *kinds)
{
    const json_t *ref = vj_obj(ve, p, item, key);
    if (!ref && vj_present(item, key))
        return; /* wrong type, reported */
    size_t m = vp_field(p, key);
    struct tr_opts o = {.kinds = kinds};
    v_target_ref(ve, p, ref, &o);
    vp_reset(p, m);
}

/* ValidateBackendRef (common): a MeshMultiZoneService needs a port. p at
 * the backendRef, which is itself the targetRef. */
static void backend_ref(struct verr *ve, struct vpath *p, const json_t *b, const char *const *kinds)
{
    struct tr_opts o = {.kinds = kinds};
    v_target_ref(ve, p, b, &o);
    long long port = 0, weight = 0;
    int has_port = vj_int(ve, p, b, "port", &port);
    if (vj_int(ve, p, b, "weight", &weight) && weight < 0)
        vadd_at(ve, p, "weight", "must be greater or equal then: 0");
    if (strcmp(vj_peek_str(b, "kind"), "MeshMultiZoneService") == 0 && !has_port)
        vadd_at(ve, p, "port", "must be defined with kind MeshMultiZoneService");
}

/* ---- MeshHTTPRoute ---- */

static void http_path(struct verr *ve, struct vpath *p, const json_t *path)
{
    const char *type = vj_str(ve, p, path, "type");
    const char *value = vj_str(ve, p, path, "value");
    value = value ? value : "";
    if (!type || !*type) {
        vadd_at(ve, p, "type", "must be defined");
        return;
    }
    if (strcmp(type, "PathPrefix") == 0) {
        if (strcmp(value, "/") == 0)
            return;
        size_t n = strlen(value);
        if (n > 0 && value[n - 1] == '/')
            vadd_at(ve, p, "value",
                    "does not need a trailing slash because only a `/`-separated prefix or an "
                    "entire path is matched");
        if (value[0] != '/')
            vadd_at(ve, p, "value", "must be an absolute path");
    } else if (strcmp(type, "Exact") == 0) {
        if (value[0] != '/')
            vadd_at(ve, p, "value", "must be an absolute path");
    } else if (strcmp(type, "RegularExpression") != 0) {
        vadd_at(ve, p, "type", "value is not supported");
    }
}

static void http_query_params(struct verr *ve, struct vpath *p, const json_t *qp)
{
    for (size_t i = 0; i < json_array_size(qp); i++) {
        const json_t *q = vj_elem_obj(ve, p, qp, i);
        if (!q)
            continue;
        size_t mi = vp_index(p, i);
        const char *name = vj_str(ve, p, q, "name");
        const char *type = vj_str(ve, p, q, "type");
        vj_str(ve, p, q, "value");
        if (type && strcmp(type, "Exact") != 0 && strcmp(type, "RegularExpression") != 0)
            vadd_at(ve, p, "type", "value is not supported");
        for (size_t j = 0; name && j < i; j++)
            if (strcmp(vj_peek_str(json_array_get(qp, j), "name"), name) == 0) {
                vadd_at(ve, p, "name", "multiple entries for name %s", name);
                break;
            }
        vp_reset(p, mi);
    }
}

static void http_headers(struct verr *ve, struct vpath *p, const json_t *hs)
{
    for (size_t i = 0; i < json_array_size(hs); i++) {
        const json_t *h = vj_elem_obj(ve, p, hs, i);
        if (!h)
            continue;
        size_t mi = vp_index(p, i);
        vj_str(ve, p, h, "name");
        const char *type = vj_str(ve, p, h, "type");
        const char *value = vj_str(ve, p, h, "value");
        type = type ? type : "Exact";
        if (strcmp(type, "Present") == 0 || strcmp(type, "Absent") == 0) {
            if (value && *value)
                vadd_at(ve, p, "value", "must not be defined");
        } else if (strcmp(type, "Exact") != 0 && strcmp(type, "RegularExpression") != 0 &&
                   strcmp(type, "Prefix") != 0) {
            vadd_at(ve, p, "type", "value is not supported");
        }
        vp_reset(p, mi);
    }
}

static void http_matches(struct verr *ve, struct vpath *p, const json_t *matches)
{
    for (size_t i = 0; i < json_array_size(matches); i++) {
        const json_t *m = vj_elem_obj(ve, p, matches, i);
        if (!m)
            continue;
        size_t mi = vp_index(p, i);
        const json_t *path = vj_obj(ve, p, m, "path");
        if (path) {
            size_t mp = vp_field(p, "path");
            http_path(ve, p, path);
            vp_reset(p, mp);
        }
        const char *method = vj_str(ve, p, m, "method");
        static const char *const methods[] = {"CONNECT", "DELETE", "GET", "HEAD",  "OPTIONS",
                                              "PATCH",   "POST",   "PUT", "TRACE", NULL};
        if (method && !in_list(method, methods))
            vadd_at(ve, p, "method", "value is not supported");
        const json_t *qp = vj_arr(ve, p, m, "queryParams");
        size_t mq = vp_field(p, "queryParams");
        http_query_params(ve, p, qp);
        vp_reset(p, mq);
        const json_t *hs = vj_arr(ve, p, m, "headers");
        size_t mh = vp_field(p, "headers");
        http_headers(ve, p, hs);
        vp_reset(p, mh);
        vp_reset(p, mi);
    }
}

/* hasAnyMatchesWithoutPrefix: no matches count as the default "/" prefix. */
static int any_match_without_prefix(const json_t *matches)
{
    for (size_t i = 0; i < json_array_size(matches); i++) {
        const json_t *path = vj_peek_obj(json_array_get(matches, i), "path");
        if (!path || strcmp(vj_peek_str(path, "type"), "PathPrefix") != 0)
            return 1;
    }
    return 0;
}

static void header_modifier(struct verr *ve, struct vpath *p, const json_t *mod)
{
    const json_t *set = vj_arr(ve, p, mod, "set");
    const json_t *add = vj_arr(ve, p, mod, "add");
    const json_t *rm = vj_arr(ve, p, mod, "remove");
    if (!set && !add && !rm) {
        if (!vj_present(mod, "set") && !vj_present(mod, "add") && !vj_present(mod, "remove"))
            vadd(ve, p, "must have at least one defined: set, add, remove");
        return;
    }
    /* Names seen so far, in Kuma's order: set, add, remove. */
    const char *seen[256];
    size_t nseen = 0;
    static const char *const lists[] = {"set", "add", "remove"};
    const json_t *arrs[] = {set, add, rm};
    for (int l = 0; l < 3; l++) {
        size_t ml = vp_field(p, lists[l]);
        for (size_t i = 0; i < json_array_size(arrs[l]); i++) {
            const json_t *it = json_array_get(arrs[l], i);
            size_t mi = vp_index(p, i);
            const char *name = NULL;
            if (l < 2) {
                if (!json_is_object(it)) {
                    vadd(ve, p, VMSG_OBJECT);
                } else {
                    name = vj_str(ve, p, it, "name");
                    vj_str(ve, p, it, "value");
                }
            } else if (!json_is_string(it)) {
                vadd(ve, p, VMSG_STRING);
            } else {
                name = json_string_value(it);
            }
            if (name) {
                int dup = 0;
                for (size_t k = 0; k < nseen && !dup; k++)
                    dup = strcmp(seen[k], name) == 0;
                if (dup)
                    vadd_at(ve, p, "name", "duplicate header name");
                else if (nseen < sizeof(seen) / sizeof(seen[0]))
                    seen[nseen++] = name;
            }
            vp_reset(p, mi);
        }
        vp_reset(p, ml);
    }
}

/* validatePreciseHostname; p at the hostname field. */
static void precise_hostname(struct verr *ve, struct vpath *p, const json_t *o, const char *key)
{
    const char *h = vj_str(ve, p, o, key);
    if (!h)
        return;
    size_t m = vp_field(p, key);
    if (ip_ok(h)) {
        vadd(ve, p, "cannot be an IP address");
    } else {
        if (strlen(h) > 253)
            vadd(ve, p, "must be no more than 253 characters");
        if (!domain_ok(h))
            vadd(ve, p,
                 "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    }
    vp_reset(p, m);
}

/* The `path` of a redirect or rewrite: {type, replaceFullPath | replacePrefixMatch}. */
static void path_modifier(struct verr *ve, struct vpath *p, const json_t *o, const json_t *matches)
{
    const json_t *path = vj_obj(ve, p, o, "path");
    if (!path)
        return;
    size_t m = vp_field(p, "path");
    const char *type = vj_str(ve, p, path, "type");
    vj_str(ve, p, path, "replaceFullPath");
    vj_str(ve, p, path, "replacePrefixMatch");
    if (type && strcmp(type, "ReplaceFullPath") != 0 && strcmp(type, "ReplacePrefixMatch") != 0)
        vadd_at(ve, p, "type", "value is not supported");
    if (vj_present(path, "replacePrefixMatch") && any_match_without_prefix(matches))
        vadd_at(ve, p, "replacePrefixMatch", "can only appear if all matches match a path prefix");
    vp_reset(p, m);
}

static void http_filters(struct verr *ve, struct vpath *p, const json_t *filters,
                         const json_t *matches, const char *top)
{
    for (size_t i = 0; i < json_array_size(filters); i++) {
        const json_t *f = vj_elem_obj(ve, p, filters, i);
        if (!f)
            continue;
        size_t mi = vp_index(p, i);
        const char *type = vj_str(ve, p, f, "type");
        type = type ? type : "";
        if (strcmp(type, "RequestHeaderModifier") == 0 ||
            strcmp(type, "ResponseHeaderModifier") == 0) {
            const char *key = type[1] == 'e' && type[2] == 'q' ? "requestHeaderModifier"
                                                               : "responseHeaderModifier";
            const json_t *mod = vj_obj(ve, p, f, key);
            size_t mf = vp_field(p, key);
            if (!mod) {
                if (!vj_present(f, key))
                    vadd(ve, p, "must be defined");
            } else {
                header_modifier(ve, p, mod);
            }
            vp_reset(p, mf);
        } else if (strcmp(type, "RequestRedirect") == 0) {
            const json_t *rr = vj_obj(ve, p, f, "requestRedirect");
            size_t mf = vp_field(p, "requestRedirect");
            if (!rr) {
                if (!vj_present(f, "requestRedirect"))
                    vadd(ve, p, "must be defined");
            } else {
                path_modifier(ve, p, rr, matches);
                precise_hostname(ve, p, rr, "hostname");
                const char *scheme = vj_str(ve, p, rr, "scheme");
                if (scheme && strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
                    vadd_at(ve, p, "scheme", "value is not supported");
                long long v;
                if (vj_int(ve, p, rr, "port", &v) && (v < 1 || v > 65535))
                    vadd_at(ve, p, "port", "port must be a valid (1-65535)");
                if (vj_int(ve, p, rr, "statusCode", &v) && v != 301 && v != 302 && v != 303 &&
                    v != 307 && v != 308)
                    vadd_at(ve, p, "statusCode", "value is not supported");
            }
            vp_reset(p, mf);
        } else if (strcmp(type, "URLRewrite") == 0) {
            const json_t *uw = vj_obj(ve, p, f, "urlRewrite");
            size_t mf = vp_field(p, "urlRewrite");
            if (!uw) {
                if (!vj_present(f, "urlRewrite"))
                    vadd(ve, p, "must be defined");
            } else {
                path_modifier(ve, p, uw, matches);
                precise_hostname(ve, p, uw, "hostname");
                int h2b = 0;
                if (vj_bool(ve, p, uw, "hostToBackendHostname", &h2b) && h2b) {
                    if (strcmp(top, "MeshGateway") != 0)
                        vadd_at(ve, p, "hostToBackendHostname", "can only be set with MeshGateway");
                    if (vj_present(uw, "hostname"))
                        vadd_at(ve, p, "hostToBackendHostname",
                                "cannot be set together with hostname");
                }
            }
            vp_reset(p, mf);
        } else if (strcmp(type, "RequestMirror") == 0) {
            const json_t *rm = vj_obj(ve, p, f, "requestMirror");
            size_t mf = vp_field(p, "requestMirror");
            if (!rm) {
                if (!vj_present(f, "requestMirror"))
                    vadd(ve, p, "must be defined");
            } else {
                const json_t *b = vj_obj(ve, p, rm, "backendRef");
                if (b || !vj_present(rm, "backendRef")) {
                    size_t mb = vp_field(p, "backendRef");
                    struct tr_opts o = {.kinds = MIRROR_KINDS};
                    v_target_ref(ve, p, b, &o);
                    vp_reset(p, mb);
                }
            }
            vp_reset(p, mf);
        } else {
            vadd_at(ve, p, "type", *type ? "value is not supported" : "must be defined");
        }
        vp_reset(p, mi);
    }
}

static int has_redirect(const json_t *filters)
{
    for (size_t i = 0; i < json_array_size(filters); i++)
        if (strcmp(vj_peek_str(json_array_get(filters, i), "type"), "RequestRedirect") == 0)
            return 1;
    return 0;
}

static void http_rules(struct verr *ve, struct vpath *p, const json_t *rules, const char *top)
{
    for (size_t i = 0; i < json_array_size(rules); i++) {
        const json_t *rule = vj_elem_obj(ve, p, rules, i);
        if (!rule)
            continue;
        size_t mi = vp_index(p, i);
        const json_t *matches = vj_arr(ve, p, rule, "matches");
        size_t mm = vp_field(p, "matches");
        http_matches(ve, p, matches);
        vp_reset(p, mm);
        const json_t *def = vj_obj(ve, p, rule, "default");
        size_t md = vp_field(p, "default");
        const json_t *filters = vj_arr(ve, p, def, "filters");
        size_t mf = vp_field(p, "filters");
        http_filters(ve, p, filters, matches, top);
        vp_reset(p, mf);
        const json_t *brefs = vj_arr(ve, p, def, "backendRefs");
        size_t mb = vp_field(p, "backendRefs");
        if (json_array_size(brefs) == 0 && strcmp(top, "MeshGateway") == 0 &&
            !has_redirect(filters))
            vadd(ve, p, "must not be empty");
        for (size_t b = 0; b < json_array_size(brefs); b++) {
            const json_t *br = vj_elem_obj(ve, p, brefs, b);
            if (!br)
                continue;
            size_t mbi = vp_index(p, b);
            backend_ref(ve, p, br, BACKEND_KINDS);
            vp_reset(p, mbi);
        }
        vp_reset(p, mb);
        vp_reset(p, md);
        vp_reset(p, mi);
    }
}

static void http_to(struct verr *ve, struct vpath *p, const json_t *to, const char *top)
{
    int gw = strcmp(top, "MeshGateway") == 0;
    for (size_t i = 0; i < json_array_size(to); i++) {
        const json_t *it = vj_elem_obj(ve, p, to, i);
        if (!it)
            continue;
        size_t mi = vp_index(p, i);
        item_ref(ve, p, it, "targetRef", gw ? TO_GATEWAY : TO_KINDS);
        const json_t *rules = vj_arr(ve, p, it, "rules");
        size_t mr = vp_field(p, "rules");
        http_rules(ve, p, rules, top);
        vp_reset(p, mr);
        const json_t *hosts = vj_arr(ve, p, it, "hostnames");
        if (!gw && json_array_size(hosts) > 0)
            vadd_at(ve, p, "hostnames", "must not be defined");
        for (size_t h = 0; gw && h < json_array_size(hosts); h++)
            if (!json_is_string(json_array_get(hosts, h))) {
                size_t mh = vp_field(p, "hostnames");
                size_t mhi = vp_index(p, h);
                vadd(ve, p, VMSG_STRING);
                vp_reset(p, mhi);
                vp_reset(p, mh);
            }
        vp_reset(p, mi);
    }
}

void validate_mesh_http_route(const struct resource *r, struct verr *ve)
{
    if (!r)
        return;
    struct vpath p;
    vp_init(&p, "spec");
    const char *top = route_top(r, ve, &p);
    const json_t *to = vj_arr(ve, &p, r->spec, "to");
    size_t m = vp_field(&p, "to");
    http_to(ve, &p, to, top);
    vp_reset(&p, m);
    vp_free(&p);
}

/* ---- MeshTCPRoute ---- */

void validate_mesh_tcp_route(const struct resource *r, struct verr *ve)
{
    if (!r)
        return;
    struct vpath p;
    vp_init(&p, "spec");
    const char *top = route_top(r, ve, &p);
    int gw = strcmp(top, "MeshGateway") == 0;
    const json_t *to = vj_arr(ve, &p, r->spec, "to");
    size_t m = vp_field(&p, "to");
    for (size_t i = 0; i < json_array_size(to); i++) {
        const json_t *it = vj_elem_obj(ve, &p, to, i);
        if (!it)
            continue;
        size_t mi = vp_index(&p, i);
        item_ref(ve, &p, it, "targetRef", gw ? TO_GATEWAY : TO_KINDS);
        const json_t *rules = vj_arr(ve, &p, it, "rules");
        size_t mr = vp_field(&p, "rules");
        for (size_t k = 0; k < json_array_size(rules); k++) {
            const json_t *rule = vj_elem_obj(ve, &p, rules, k);
            if (!rule)
                continue;
            size_t mk = vp_index(&p, k);
            const json_t *def = vj_obj(ve, &p, rule, "default");
            size_t md = vp_field(&p, "default");
            const json_t *brefs = vj_arr(ve, &p, def, "backendRefs");
            size_t mb = vp_field(&p, "backendRefs");
            if (json_array_size(brefs) == 0)
                vadd(ve, &p, "must be defined");
            for (size_t b = 0; b < json_array_size(brefs); b++) {
                const json_t *br = vj_elem_obj(ve, &p, brefs, b);
                if (!br)
                    continue;
                size_t mbi = vp_index(&p, b);
                backend_ref(ve, &p, br, BACKEND_KINDS);
                vp_reset(&p, mbi);
            }
            vp_reset(&p, mb);
            vp_reset(&p, md);
            vp_reset(&p, mk);
        }
        vp_reset(&p, mr);
        vp_reset(&p, mi);
    }
    vp_reset(&p, m);
    vp_free(&p);
}
