/*
 * routes — see routes.h. Kuma's rules, as implemented here:
 *
 * Precedence. A mesh with TrafficRoutes keeps using them for a proxy until
 * some MeshHTTPRoute or MeshTCPRoute with `to` entries selects the proxy;
 * a mesh without TrafficRoutes always uses the Mesh*Route path (with no
 * route for a service that is the service itself, as the legacy default).
 * Once on the Mesh*Route path, TrafficRoutes are ignored for the proxy.
 *
 * Selection and merge. A policy selects the proxy by its top-level
 * targetRef (Mesh, MeshSubset, MeshService, Dataplane; a MeshGateway top
 * routes builtin gateways and never a sidecar); its `to` entries apply to
 * an outbound when their targetRef is `MeshService <service>`. Entries are
 * merged from the least to the most specific policy (then policy name, then
 * position): the rules of the more specific policy come first, and a rule
 * whose `matches` equal those of a rule already taken is dropped (Kuma's
 * mergeValuesByKey on the hash of the matches).
 *
 * HTTP. Each match of each rule becomes a route, sorted stably by Gateway
 * API precedence (Kuma's SortRules): Exact, then PathPrefix (no path is
 * PathPrefix "/"), then RegularExpression, longer values first; a method
 * before none; more headers, then more query parameters, first. Kuma's default
 * rule (PathPrefix / to the service itself) is appended unless a rule has
 * exactly that match. A rule without backendRefs goes to the service of its
 * `to` entry. A MeshHTTPRoute only applies to an HTTP service (http, http2,
 * grpc); a TCP service ignores it.
 *
 * TCP. The first rule of the most specific MeshTCPRoute `to` entry gives
 * the weighted backends. It applies to TCP services, and to HTTP services
 * no MeshHTTPRoute routes (their listener becomes a TCP proxy, as in Kuma).
 *
 * Backends. `MeshService <name>` is the service <name>, `MeshServiceSubset`
 * the service with the extra tags (a subset cluster, policies.c), weight
 * default 1; weight 0 is dropped. MeshExternalService and
 * MeshMultiZoneService backends are not resolved (no such resources here)
 * and are skipped; a rule left without backend goes to the service.
 */
#include "xds/routes.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/types.h"
#include "core/util.h"
#include "xds/names.h"

/* ---- selection ---------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

struct to_entry {
    int rank;
    const char *policy;
    size_t index;
    const json_t *item;
};

static int cmp_to_entry(const void *a, const void *b)
{
    const struct to_entry *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    int c = strcmp(x->policy, y->policy);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int is_top_gateway(const json_t *spec)
{
    const char *k = json_string_value(json_object_get(json_object_get(spec, "targetRef"), "kind"));
    return k && strcmp(k, "MeshGateway") == 0;
}

/* Does any Mesh*Route with `to` entries select dp? */
static int any_route_selects(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp)
{
    for (size_t i = 0; i < snap->n_policies; i++) {
        const struct xds_policy *p = &snap->policies[i];
        if (p->type != &TYPE_MESH_HTTP_ROUTE && p->type != &TYPE_MESH_TCP_ROUTE)
            continue;
        if (is_top_gateway(p->spec) || json_array_size(json_object_get(p->spec, "to")) == 0)
            continue;
        if (xds_policy_target_rank(json_object_get(p->spec, "targetRef"), dp) >= 0)
            return 1;
    }
    return 0;
}

static int mesh_has_traffic_routes(const struct xds_mesh_snapshot *snap)
{
    for (size_t i = 0; i < snap->n_policies; i++)
        if (snap->policies[i].type == &TYPE_TRAFFIC_ROUTE)
            return 1;
    return 0;
}

/* The `to` entries of policies of type selecting dp for `MeshService
 * <service>`, least specific first. */
static struct to_entry *collect_to(const struct xds_mesh_snapshot *snap,
                                   const struct res_type *type, const struct xds_dataplane *dp,
                                   const char *service, size_t *n)
{
    struct to_entry *v = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t i = 0; i < snap->n_policies; i++) {
        const struct xds_policy *p = &snap->policies[i];
        if (p->type != type || is_top_gateway(p->spec))
            continue;
        int rank = xds_policy_target_rank(json_object_get(p->spec, "targetRef"), dp);
        if (rank < 0)
            continue;
        size_t j;
        json_t *item;
        json_array_foreach(json_object_get(p->spec, "to"), j, item)
        {
            const json_t *ref = json_object_get(item, "targetRef");
            const char *kind = json_string_value(json_object_get(ref, "kind"));
            const char *name = json_string_value(json_object_get(ref, "name"));
            if (!kind || strcmp(kind, "MeshService") != 0 || !name || strcmp(name, service) != 0)
                continue;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 4;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[cnt++] = (struct to_entry){rank, p->name, j, item};
        }
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_to_entry);
    *n = cnt;
    return v;
}

/* ---- backends ----------------------------------------------------------- */

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct xds_tag *)a)->key, ((const struct xds_tag *)b)->key);
}

/* A split from a backendRef; 0 when it cannot be resolved here. */
static int split_from_ref(const json_t *b, uint32_t weight, struct xds_split *out)
{
    const char *kind = json_string_value(json_object_get(b, "kind"));
    const char *name = json_string_value(json_object_get(b, "name"));
    if (!kind || !name || !*name)
        return 0;
    int subset = strcmp(kind, "MeshServiceSubset") == 0;
    if (!subset && strcmp(kind, "MeshService") != 0)
        return 0;
    memset(out, 0, sizeof(*out));
    out->service = xstrdup(name);
    out->weight = weight;
    const json_t *tags = subset ? json_object_get(b, "tags") : NULL;
    size_t nt = json_object_size(tags);
    out->tags = xcalloc(nt ? nt : 1, sizeof(*out->tags));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tags, k, v)
    {
        const char *s = json_string_value(v);
        if (!s || strcmp(k, XDS_TAG_SERVICE) == 0)
            continue;
        out->tags[out->ntags].key = xstrdup(k);
        out->tags[out->ntags++].value = xstrdup(s);
    }
    qsort(out->tags, out->ntags, sizeof(*out->tags), cmp_tag);
    xds_split_set_cluster(out);
    return 1;
}

static void split_service(struct xds_split *out, const char *service)
{
    memset(out, 0, sizeof(*out));
    out->service = xstrdup(service);
    out->weight = 1;
    out->cluster = xstrdup(service);
}

/* The weighted splits of a backendRefs list; the service itself when none
 * resolves (none for a gateway: service NULL). */
static struct xds_split *splits_from_refs(const json_t *refs, const char *service, size_t *n)
{
    struct xds_split *v = xcalloc(json_array_size(refs) + 1, sizeof(*v));
    size_t cnt = 0, i;
    json_t *b;
    json_array_foreach(refs, i, b)
    {
        json_int_t w = 1;
        const json_t *wj = json_object_get(b, "weight");
        if (json_is_integer(wj))
            w = json_integer_value(wj);
        if (w <= 0 || w > UINT32_MAX)
            continue; /* Envoy needs weight >= 1; Kuma's weight 0 sends nothing */
        if (split_from_ref(b, (uint32_t)w, &v[cnt]))
            cnt++;
    }
    if (cnt == 0 && service)
        split_service(&v[cnt++], service);
    *n = cnt;
    return v;
}

/* ---- HTTP rules --------------------------------------------------------- */

struct keyed {
    const json_t *match; /* NULL: no conditions (prefix /) */
    const json_t *rule;
    size_t order;
};

static int path_kind(const json_t *path)
{
    const char *t = json_string_value(json_object_get(path, "type"));
    if (!path || !t)
        return 3; /* none */
    if (strcmp(t, "Exact") == 0)
        return 0;
    if (strcmp(t, "PathPrefix") == 0)
        return 1;
    return 2;
}

/* The length a prefix or regex path sorts by; no path is the prefix "/"
 * (Kuma renders and sorts it as such). */
static size_t path_len(const json_t *path)
{
    return path ? strlen(jstr(path, "value")) : 1;
}

/* Kuma's CompareMatch (negative: a first): Exact, then PathPrefix, then
 * RegularExpression (no path counts as PathPrefix "/"), longer values
 * first; a method first; more headers first; more query parameters
 * first. */
static int compare_match(const json_t *a, const json_t *b)
{
    const json_t *pa = json_object_get(a, "path"), *pb = json_object_get(b, "path");
    int ka = path_kind(pa), kb = path_kind(pb);
    ka = ka == 3 ? 1 : ka;
    kb = kb == 3 ? 1 : kb;
    if (ka != kb)
        return ka - kb;
    if (ka == 1 || ka == 2) {
        size_t la = path_len(pa), lb = path_len(pb);
        if (la != lb)
            return la > lb ? -1 : 1;
    }
    int ma = json_object_get(a, "method") != NULL, mb = json_object_get(b, "method") != NULL;
    if (ma != mb)
        return ma ? -1 : 1;
    size_t ha = json_array_size(json_object_get(a, "headers"));
    size_t hb = json_array_size(json_object_get(b, "headers"));
    if (ha != hb)
        return ha > hb ? -1 : 1;
    size_t qa = json_array_size(json_object_get(a, "queryParams"));
    size_t qb = json_array_size(json_object_get(b, "queryParams"));
    if (qa != qb)
        return qa > qb ? -1 : 1;
    return 0;
}

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = compare_match(x->match, y->match);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order; /* stable */
}

/* Go's encoding/json text of the rule's matches, byte for byte as Kuma's
 * HashMatches produces it from its structs (field order path, method,
 * queryParams, headers; PathMatch value then type; QueryParamsMatch type,
 * name, value; HeaderMatch type (omitempty), name, value (omitempty);
 * HTML-safe string escaping). */
struct gobuf {
    char *p;
    size_t len, cap;
};

static void gb_put(struct gobuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void gb_cstr(struct gobuf *b, const char *s)
{
    gb_put(b, s, strlen(s));
}

/* A JSON string as Go's encoder writes it. */
static void gb_gostr(struct gobuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    gb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[7];
        switch (*c) {
        case '"':
            gb_put(b, "\\\"", 2);
            continue;
        case '\\':
            gb_put(b, "\\\\", 2);
            continue;
        case '\n':
            gb_put(b, "\\n", 2);
            continue;
        case '\r':
            gb_put(b, "\\r", 2);
            continue;
        case '\t':
            gb_put(b, "\\t", 2);
            continue;
        case '\b':
            gb_put(b, "\\b", 2);
            continue;
        case '\f':
            gb_put(b, "\\f", 2);
            continue;
        default:
            break;
        }
        if (*c < 0x20 || *c == '<' || *c == '>' || *c == '&') {
            esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
            esc[4] = hex[*c >> 4], esc[5] = hex[*c & 15];
            gb_put(b, esc, 6);
        } else if (c[0] == 0xe2 && c[1] == 0x80 && (c[2] == 0xa8 || c[2] == 0xa9)) {
            gb_cstr(b, c[2] == 0xa8 ? "\\u2028" : "\\u2029");
            c += 2;
        } else {
            gb_put(b, (const char *)c, 1);
        }
    }
    gb_put(b, "\"", 1);
}

static void gb_field(struct gobuf *b, int *first, const char *name, const char *value)
{
    gb_cstr(b, *first ? "\"" : ",\"");
    *first = 0;
    gb_cstr(b, name);
    gb_cstr(b, "\":");
    gb_gostr(b, value);
}

static void go_matches(struct gobuf *b, const json_t *matches)
{
    if (!json_is_array(matches)) {
        gb_cstr(b, "null");
        return;
    }
    gb_cstr(b, "[");
    size_t i;
    json_t *m;
    json_array_foreach(matches, i, m)
    {
        gb_cstr(b, i ? ",{" : "{");
        int first = 1;
        const json_t *path = json_object_get(m, "path");
        if (json_is_object(path)) {
            gb_cstr(b, "\"path\":{");
            int f2 = 1;
            gb_field(b, &f2, "value", jstr(path, "value"));
            gb_field(b, &f2, "type", jstr(path, "type"));
            gb_cstr(b, "}");
            first = 0;
        }
        if (json_is_string(json_object_get(m, "method")))
            gb_field(b, &first, "method", jstr(m, "method"));
        const json_t *qs = json_object_get(m, "queryParams");
        if (json_array_size(qs)) {
            gb_cstr(b, first ? "\"queryParams\":[" : ",\"queryParams\":[");
            first = 0;
            for (size_t k = 0; k < json_array_size(qs); k++) {
                const json_t *q = json_array_get(qs, k);
                gb_cstr(b, k ? ",{" : "{");
                int f2 = 1;
                gb_field(b, &f2, "type", jstr(q, "type"));
                gb_field(b, &f2, "name", jstr(q, "name"));
                gb_field(b, &f2, "value", jstr(q, "value"));
                gb_cstr(b, "}");
            }
            gb_cstr(b, "]");
        }
        const json_t *hs = json_object_get(m, "headers");
        if (json_array_size(hs)) {
            gb_cstr(b, first ? "\"headers\":[" : ",\"headers\":[");
            first = 0;
            for (size_t k = 0; k < json_array_size(hs); k++) {
                const json_t *h = json_array_get(hs, k);
                gb_cstr(b, k ? ",{" : "{");
                int f2 = 1;
                if (json_is_string(json_object_get(h, "type")))
                    gb_field(b, &f2, "type", jstr(h, "type"));
                gb_field(b, &f2, "name", jstr(h, "name"));
                if (*jstr(h, "value"))
                    gb_field(b, &f2, "value", jstr(h, "value"));
                gb_cstr(b, "}");
            }
            gb_cstr(b, "]");
        }
        gb_cstr(b, "}");
    }
    gb_cstr(b, "]");
}

/* Kuma names a rule's routes by its HashMatches: base64 of the SHA-256 of
 * the matches' Go JSON (so the default route is
 * 9Zuf5Tg79OuZcQITwBbQykxAk2u4fRKrwYn3//AL4Yo=, as in Kuma). */
static char *matches_hash(const json_t *matches)
{
    struct gobuf b = {0};
    go_matches(&b, matches);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)b.p, b.len, md);
    free(b.p);
    char *out = xcalloc(1, 4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, md, SHA256_DIGEST_LENGTH);
    return out;
}

/* The rule is exactly Kuma's default match [{path: PathPrefix /}]. */
static int is_default_matches(const json_t *matches)
{
    if (json_array_size(matches) != 1)
        return 0;
    const json_t *m = json_array_get(matches, 0);
    const json_t *path = json_object_get(m, "path");
    return json_object_size(m) == 1 && path_kind(path) == 1 &&
           strcmp(jstr(path, "value"), "/") == 0;
}

static void http_add(struct xds_route *out, size_t *cap, struct xds_http_route hr)
{
    if (out->n_http == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        out->http = xrealloc(out->http, *cap * sizeof(*out->http));
    }
    out->http[out->n_http++] = hr;
}

/* Fills out->http from the merged rules (most specific first). service:
 * the outbound's service (Kuma's default route and the destination of a
 * rule without backends), or NULL for a gateway (neither). */
static void http_routes(struct xds_route *out, const json_t **rules, size_t nrules,
                        const char *service)
{
    size_t nk = 0, capk = 0;
    struct keyed *keys = NULL;
    int has_default = 0;
    for (size_t r = 0; r < nrules; r++) {
        const json_t *matches = json_object_get(rules[r], "matches");
        has_default |= is_default_matches(matches);
        size_t nm = json_array_size(matches);
        for (size_t m = 0; m < (nm ? nm : 1); m++) {
            if (nk == capk) {
                capk = capk ? capk * 2 : 8;
                keys = xrealloc(keys, capk * sizeof(*keys));
            }
            keys[nk] = (struct keyed){nm ? json_array_get(matches, m) : NULL, rules[r], nk};
            nk++;
        }
    }
    qsort(keys, nk, sizeof(*keys), cmp_keyed);
    size_t cap = 0;
    for (size_t i = 0; i < nk; i++) {
        const json_t *def = json_object_get(keys[i].rule, "default");
        struct xds_http_route hr = {0};
        hr.match = keys[i].match;
        hr.filters = json_object_get(def, "filters");
        hr.name = matches_hash(json_object_get(keys[i].rule, "matches"));
        hr.splits = splits_from_refs(json_object_get(def, "backendRefs"), service, &hr.n);
        http_add(out, &cap, hr);
    }
    if (!has_default && service) {
        static const char dflt[] = "[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/\"}}]";
        json_t *dm = json_loads(dflt, 0, NULL);
        struct xds_http_route hr = {0};
        hr.name = matches_hash(dm);
        json_decref(dm);
        hr.splits = xcalloc(1, sizeof(*hr.splits));
        split_service(&hr.splits[0], service);
        hr.n = 1;
        http_add(out, &cap, hr);
    }
    /* RequestMirror destinations: clusters without a route. */
    for (size_t i = 0; i < nk; i++) {
        const json_t *filters =
            json_object_get(json_object_get(keys[i].rule, "default"), "filters");
        size_t f;
        json_t *flt;
        json_array_foreach(filters, f, flt)
        {
            const char *type = json_string_value(json_object_get(flt, "type"));
            const json_t *b = json_object_get(json_object_get(flt, "requestMirror"), "backendRef");
            struct xds_split sp;
            if (!type || strcmp(type, "RequestMirror") != 0 || !split_from_ref(b, 1, &sp))
                continue;
            struct xds_http_route hr = {0};
            hr.splits = xcalloc(1, sizeof(*hr.splits));
            hr.splits[0] = sp;
            hr.n = 1;
            hr.mirror_only = 1;
            http_add(out, &cap, hr);
        }
    }
    free(keys);
}

int xds_mesh_route(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                   const char *service, struct xds_route *out)
{
    if (mesh_has_traffic_routes(snap) && !any_route_selects(snap, dp))
        return 0;
    memset(out, 0, sizeof(*out));
    out->lb_policy = -1;
    const struct xds_service *svc = xds_snapshot_service(snap, service);
    int http = svc && XDS_PROTO_IS_HTTP(svc->protocol);
    size_t n = 0;
    struct to_entry *to = http ? collect_to(snap, &TYPE_MESH_HTTP_ROUTE, dp, service, &n) : NULL;
    /* Rules, most specific entry first; equal matches keep the first. */
    const json_t **rules = NULL;
    size_t nrules = 0, cap = 0;
    for (size_t e = n; e-- > 0;) {
        size_t i;
        json_t *rule;
        json_array_foreach(json_object_get(to[e].item, "rules"), i, rule)
        {
            if (!json_is_object(rule))
                continue;
            const json_t *m = json_object_get(rule, "matches");
            int dup = 0;
            for (size_t k = 0; k < nrules && !dup; k++)
                dup = json_equal((json_t *)json_object_get(rules[k], "matches"), (json_t *)m) ||
                      (!m && !json_object_get(rules[k], "matches"));
            if (dup)
                continue;
            if (nrules == cap) {
                cap = cap ? cap * 2 : 8;
                rules = xrealloc(rules, cap * sizeof(*rules));
            }
            rules[nrules++] = rule;
        }
    }
    free(to);
    out->splits = xcalloc(1, sizeof(*out->splits));
    split_service(&out->splits[0], service);
    out->n = 1;
    if (nrules > 0) {
        out->mesh_http = 1;
        http_routes(out, rules, nrules, service);
        free(rules);
        return 1;
    }
    free(rules);
    to = collect_to(snap, &TYPE_MESH_TCP_ROUTE, dp, service, &n);
    if (n > 0) {
        const json_t *rule = json_array_get(json_object_get(to[n - 1].item, "rules"), 0);
        const json_t *refs = json_object_get(json_object_get(rule, "default"), "backendRefs");
        if (json_array_size(refs) > 0) {
            free(out->splits[0].service);
            free(out->splits[0].cluster);
            free(out->splits);
            out->splits = splits_from_refs(refs, service, &out->n);
            out->force_tcp = 1;
        }
    }
    free(to);
    return 1;
}

/* ---- Envoy routes --------------------------------------------------------- */

static Envoy__Type__Matcher__V3__RegexMatcher *re2(struct pb_arena *a, const char *regex)
{
    Envoy__Type__Matcher__V3__RegexMatcher *r = PB_NEW(
        a, Envoy__Type__Matcher__V3__RegexMatcher, ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__INIT);
    r->engine_type_case = ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__ENGINE_TYPE_GOOGLE_RE2;
    r->google_re2 = PB_NEW(a, Envoy__Type__Matcher__V3__RegexMatcher__GoogleRE2,
                           ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__GOOGLE_RE2__INIT);
    r->regex = pb_strdup(a, regex);
    return r;
}

static Envoy__Type__Matcher__V3__StringMatcher *sm_regex(struct pb_arena *a, const char *regex)
{
    Envoy__Type__Matcher__V3__StringMatcher *sm = PB_NEW(
        a, Envoy__Type__Matcher__V3__StringMatcher, ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT);
    sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
    sm->safe_regex = re2(a, regex);
    return sm;
}

/* Method, query parameters and headers of a match onto an Envoy match. */
static void match_conditions(struct pb_arena *a, Envoy__Config__Route__V3__RouteMatch *rm,
                             const json_t *m)
{
    const json_t *hs = json_object_get(m, "headers");
    const json_t *qs = json_object_get(m, "queryParams");
    size_t nh = json_array_size(hs) + 1, nq = json_array_size(qs);
    rm->headers = pb_alloc(a, nh * sizeof(*rm->headers));
    const char *method = json_string_value(json_object_get(m, "method"));
    if (method) {
        Envoy__Config__Route__V3__HeaderMatcher *h =
            PB_NEW(a, Envoy__Config__Route__V3__HeaderMatcher,
                   ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__INIT);
        h->name = pb_strdup(a, ":method");
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
        h->string_match = pb_exact(a, method);
        rm->headers[rm->n_headers++] = h;
    }
    /* Only the first matcher of a name counts, as in Kuma. */
    rm->query_parameters = pb_alloc(a, (nq ? nq : 1) * sizeof(*rm->query_parameters));
    for (size_t i = 0; i < nq; i++) {
        const json_t *q = json_array_get(qs, i);
        const char *name = jstr(q, "name");
        int seen = 0;
        for (size_t k = 0; k < rm->n_query_parameters && !seen; k++)
            seen = strcmp(rm->query_parameters[k]->name, name) == 0;
        if (seen)
            continue;
        Envoy__Config__Route__V3__QueryParameterMatcher *qm =
            PB_NEW(a, Envoy__Config__Route__V3__QueryParameterMatcher,
                   ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__INIT);
        qm->name = pb_strdup(a, name);
        qm->query_parameter_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH;
        qm->string_match = strcmp(jstr(q, "type"), "RegularExpression") == 0
                               ? sm_regex(a, jstr(q, "value"))
                               : pb_exact(a, jstr(q, "value"));
        rm->query_parameters[rm->n_query_parameters++] = qm;
    }
    for (size_t i = 0; i < json_array_size(hs); i++) {
        const json_t *hj = json_array_get(hs, i);
        const char *name = jstr(hj, "name");
        int seen = 0;
        for (size_t k = method ? 1 : 0; k < rm->n_headers && !seen; k++)
            seen = strcmp(rm->headers[k]->name, name) == 0;
        if (seen)
            continue;
        const char *type = json_string_value(json_object_get(hj, "type"));
        const char *value = jstr(hj, "value");
        type = type ? type : "Exact";
        Envoy__Config__Route__V3__HeaderMatcher *h =
            PB_NEW(a, Envoy__Config__Route__V3__HeaderMatcher,
                   ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__INIT);
        h->name = pb_strdup(a, name);
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
        if (strcmp(type, "Present") == 0 || strcmp(type, "Absent") == 0 ||
            (strcmp(type, "Prefix") == 0 && !*value)) {
            h->header_match_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
            h->present_match = strcmp(type, "Absent") != 0;
        } else if (strcmp(type, "RegularExpression") == 0) {
            h->string_match = sm_regex(a, value);
        } else if (strcmp(type, "Prefix") == 0) {
            h->string_match = pb_prefix(a, value);
        } else {
            h->string_match = pb_exact(a, value);
        }
        rm->headers[rm->n_headers++] = h;
    }
}

/* The Envoy matches of one MeshHTTPRoute match: a PathPrefix other than "/"
 * becomes an exact match of the prefix and a prefix match of prefix + "/"
 * (only whole segments match). *prefix_match tells the filters. */
static size_t route_matches(struct pb_arena *a, const json_t *m,
                            Envoy__Config__Route__V3__RouteMatch *out[2], int *prefix_match)
{
    const json_t *path = json_object_get(m, "path");
    const char *value = jstr(path, "value");
    int kind = path_kind(path);
    size_t n = 1;
    *prefix_match = kind == 1;
    for (size_t i = 0; i < 2; i++)
        out[i] = PB_NEW(a, Envoy__Config__Route__V3__RouteMatch,
                        ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT);
    if (kind == 0) {
        out[0]->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
        out[0]->path = pb_strdup(a, value);
    } else if (kind == 2) {
        out[0]->path_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
        out[0]->safe_regex = re2(a, value);
    } else if (kind == 1 && strcmp(value, "/") != 0) {
        size_t len = strlen(value);
        while (len > 0 && value[len - 1] == '/')
            len--;
        char *trimmed = xstrndup(value, len);
        char *slash = xasprintf("%s/", trimmed);
        out[0]->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
        out[0]->path = pb_strdup(a, trimmed);
        out[1]->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        out[1]->prefix = pb_strdup(a, slash);
        free(trimmed);
        free(slash);
        n = 2;
    } else {
        out[0]->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        out[0]->prefix = pb_strdup(a, "/");
    }
    for (size_t i = 0; i < n; i++)
        match_conditions(a, out[i], m);
    return n;
}

static Envoy__Config__Core__V3__HeaderValueOption *header_opt(struct pb_arena *a, const char *k,
                                                              const char *v, int append)
{
    Envoy__Config__Core__V3__HeaderValueOption *o = pb_header_option(a, k, v);
    o->append = pb_bool(a, append);
    return o;
}

/* Kuma's headerModifiers: `set` values split at "," (the first replaces,
 * the others append), `add` values appended, `remove` names. */
static void header_modifier(struct pb_arena *a, const json_t *mod, size_t *n_add,
                            Envoy__Config__Core__V3__HeaderValueOption ***add, size_t *n_rm,
                            char ***rm)
{
    size_t cap = *n_add;
    static const char *const lists[] = {"set", "add"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *h;
        json_array_foreach(json_object_get(mod, lists[l]), i, h)
        {
            char *vals = xstrdup(jstr(h, "value"));
            char *p = vals;
            int idx = 0;
            /* strtok would skip empty values; split by hand. */
            for (;;) {
                char *comma = strchr(p, ',');
                if (comma)
                    *comma = '\0';
                if (*n_add == cap) {
                    cap = cap ? cap * 2 : 4;
                    Envoy__Config__Core__V3__HeaderValueOption **nv =
                        pb_alloc(a, cap * sizeof(*nv));
                    if (*n_add)
                        memcpy(nv, *add, *n_add * sizeof(*nv));
                    *add = nv;
                }
                (*add)[(*n_add)++] = header_opt(a, jstr(h, "name"), p, l == 1 || idx > 0);
                idx++;
                if (!comma)
                    break;
                p = comma + 1;
            }
            free(vals);
        }
    }
    const json_t *remove = json_object_get(mod, "remove");
    size_t nr = json_array_size(remove);
    if (nr) {
        char **nv = pb_alloc(a, (*n_rm + nr) * sizeof(*nv));
        if (*n_rm)
            memcpy(nv, *rm, *n_rm * sizeof(*nv));
        for (size_t i = 0; i < nr; i++) {
            const char *name = json_string_value(json_array_get(remove, i));
            nv[(*n_rm)++] = pb_strdup(a, name ? name : "");
        }
        *rm = nv;
    }
}

static Envoy__Type__Matcher__V3__RegexMatchAndSubstitute *regex_rewrite(struct pb_arena *a,
                                                                        const char *subst)
{
    Envoy__Type__Matcher__V3__RegexMatchAndSubstitute *r =
        PB_NEW(a, Envoy__Type__Matcher__V3__RegexMatchAndSubstitute,
               ENVOY__TYPE__MATCHER__V3__REGEX_MATCH_AND_SUBSTITUTE__INIT);
    r->pattern = re2(a, ".*");
    r->substitution = pb_strdup(a, subst);
    return r;
}

static void request_redirect(struct pb_arena *a, Envoy__Config__Route__V3__Route *r,
                             const json_t *rr, int prefix_match)
{
    Envoy__Config__Route__V3__RedirectAction *ra =
        PB_NEW(a, Envoy__Config__Route__V3__RedirectAction,
               ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__INIT);
    const char *host = json_string_value(json_object_get(rr, "hostname"));
    if (host)
        ra->host_redirect = pb_strdup(a, host);
    json_int_t port = json_integer_value(json_object_get(rr, "port"));
    if (port > 0 && port < 65536)
        ra->port_redirect = (uint32_t)port;
    const char *scheme = json_string_value(json_object_get(rr, "scheme"));
    if (scheme) {
        ra->scheme_rewrite_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_SCHEME_REDIRECT;
        ra->scheme_redirect = pb_strdup(a, scheme);
    }
    const json_t *path = json_object_get(rr, "path");
    if (path) {
        const char *type = jstr(path, "type");
        if (strcmp(type, "ReplaceFullPath") == 0) {
            ra->path_rewrite_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE;
            ra->regex_rewrite = regex_rewrite(a, jstr(path, "replaceFullPath"));
        } else if (strcmp(type, "ReplacePrefixMatch") == 0 && prefix_match) {
            const char *v = jstr(path, "replacePrefixMatch");
            if (r->match->path_specifier_case ==
                ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH) {
                ra->path_rewrite_specifier_case =
                    ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE;
                ra->regex_rewrite = regex_rewrite(a, v);
            } else {
                ra->path_rewrite_specifier_case =
                    ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE;
                ra->prefix_rewrite = pb_strdup(a, v);
            }
        }
    }
    switch (json_integer_value(json_object_get(rr, "statusCode"))) {
    case 302:
        ra->response_code =
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__FOUND;
        break;
    case 303:
        ra->response_code =
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__SEE_OTHER;
        break;
    case 307:
        ra->response_code =
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__TEMPORARY_REDIRECT;
        break;
    case 308:
        ra->response_code =
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__PERMANENT_REDIRECT;
        break;
    default: /* 301 */
        ra->response_code =
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__MOVED_PERMANENTLY;
    }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT;
    r->route = NULL;
    r->redirect = ra;
}

static void url_rewrite(struct pb_arena *a, Envoy__Config__Route__V3__Route *r, const json_t *uw,
                        int prefix_match)
{
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE)
        return;
    Envoy__Config__Route__V3__RouteAction *ra = r->route;
    const char *host = json_string_value(json_object_get(uw, "hostname"));
    if (host) {
        ra->host_rewrite_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
        ra->host_rewrite_literal = pb_strdup(a, host);
    }
    const json_t *path = json_object_get(uw, "path");
    const char *type = jstr(path, "type");
    if (strcmp(type, "ReplaceFullPath") == 0) {
        ra->regex_rewrite = regex_rewrite(a, jstr(path, "replaceFullPath"));
    } else if (strcmp(type, "ReplacePrefixMatch") == 0 && prefix_match) {
        const char *v = jstr(path, "replacePrefixMatch");
        if (r->match->path_specifier_case ==
            ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH)
            ra->regex_rewrite = regex_rewrite(a, v);
        else
            ra->prefix_rewrite = pb_strdup(a, v);
    }
}

/* Kuma's ConvertPercentage: whole percents over 100, else over 10,000 or
 * 1,000,000. */
static Envoy__Config__Core__V3__RuntimeFractionalPercent *percent(struct pb_arena *a,
                                                                  const json_t *pj)
{
    double v;
    if (json_is_number(pj))
        v = json_number_value(pj);
    else if (json_is_string(pj))
        v = strtod(json_string_value(pj), NULL);
    else
        return NULL;
    if (v < 0)
        v = 0;
    if (v > 100)
        v = 100;
    Envoy__Config__Core__V3__RuntimeFractionalPercent *rf =
        PB_NEW(a, Envoy__Config__Core__V3__RuntimeFractionalPercent,
               ENVOY__CONFIG__CORE__V3__RUNTIME_FRACTIONAL_PERCENT__INIT);
    rf->default_value =
        PB_NEW(a, Envoy__Type__V3__FractionalPercent, ENVOY__TYPE__V3__FRACTIONAL_PERCENT__INIT);
    if (v == (double)(uint32_t)v) {
        rf->default_value->numerator = (uint32_t)v;
    } else if (v * 100 == (double)(uint32_t)(v * 100)) {
        rf->default_value->numerator = (uint32_t)(v * 100);
        rf->default_value->denominator =
            ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND;
    } else {
        rf->default_value->numerator = (uint32_t)(v * 10000);
        rf->default_value->denominator =
            ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION;
    }
    return rf;
}

static void request_mirror(struct pb_arena *a, Envoy__Config__Route__V3__Route *r, const json_t *rm)
{
    struct xds_split sp;
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE ||
        !split_from_ref(json_object_get(rm, "backendRef"), 1, &sp))
        return;
    Envoy__Config__Route__V3__RouteAction *ra = r->route;
    Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *mp =
        PB_NEW(a, Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy,
               ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__REQUEST_MIRROR_POLICY__INIT);
    mp->cluster = pb_strdup(a, sp.cluster);
    mp->runtime_fraction = percent(a, json_object_get(rm, "percentage"));
    Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy **nv =
        pb_alloc(a, (ra->n_request_mirror_policies + 1) * sizeof(*nv));
    if (ra->n_request_mirror_policies)
        memcpy(nv, ra->request_mirror_policies, ra->n_request_mirror_policies * sizeof(*nv));
    nv[ra->n_request_mirror_policies++] = mp;
    ra->request_mirror_policies = nv;
    free(sp.service);
    free(sp.cluster);
    xds_tags_free(sp.tags, sp.ntags);
}

static void apply_filters(struct pb_arena *a, Envoy__Config__Route__V3__Route *r,
                          const json_t *filters, int prefix_match)
{
    size_t i;
    json_t *f;
    json_array_foreach(filters, i, f)
    {
        const char *type = jstr(f, "type");
        if (strcmp(type, "RequestHeaderModifier") == 0)
            header_modifier(a, json_object_get(f, "requestHeaderModifier"),
                            &r->n_request_headers_to_add, &r->request_headers_to_add,
                            &r->n_request_headers_to_remove, &r->request_headers_to_remove);
        else if (strcmp(type, "ResponseHeaderModifier") == 0)
            header_modifier(a, json_object_get(f, "responseHeaderModifier"),
                            &r->n_response_headers_to_add, &r->response_headers_to_add,
                            &r->n_response_headers_to_remove, &r->response_headers_to_remove);
        else if (strcmp(type, "RequestRedirect") == 0)
            request_redirect(a, r, json_object_get(f, "requestRedirect"), prefix_match);
        else if (strcmp(type, "URLRewrite") == 0)
            url_rewrite(a, r, json_object_get(f, "urlRewrite"), prefix_match);
        else if (strcmp(type, "RequestMirror") == 0)
            request_mirror(a, r, json_object_get(f, "requestMirror"));
    }
}

Envoy__Config__Route__V3__Route **xds_mesh_http_routes(struct pb_arena *a,
                                                       const struct xds_route *rt,
                                                       const struct xds_conn_policy *cp, size_t *n)
{
    Envoy__Config__Route__V3__Route **v = pb_alloc(a, (2 * rt->n_http + 1) * sizeof(*v));
    size_t cnt = 0;
    for (size_t i = 0; i < rt->n_http; i++) {
        const struct xds_http_route *hr = &rt->http[i];
        if (hr->mirror_only)
            continue;
        Envoy__Config__Route__V3__RouteMatch *ms[2];
        int prefix_match;
        size_t nm = route_matches(a, hr->match, ms, &prefix_match);
        for (size_t k = 0; k < nm; k++) {
            Envoy__Config__Route__V3__Route *r =
                PB_NEW(a, Envoy__Config__Route__V3__Route, ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT);
            r->name = pb_strdup(a, hr->name ? hr->name : "");
            r->match = ms[k];
            r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
            r->route = xds__route_action(a, hr->splits, hr->n, cp);
            apply_filters(a, r, hr->filters, prefix_match);
            v[cnt++] = r;
        }
    }
    *n = cnt;
    return v;
}

/* ---- builtin gateways ------------------------------------------------------ */

/* Does route hostname h cover virtual host v ("*", equal, or "*.s" over a
 * name ending in ".s")? */
static int host_covers(const char *h, const char *v)
{
    if (strcmp(h, "*") == 0 || strcmp(h, v) == 0)
        return 1;
    if (h[0] == '*' && h[1] == '.') {
        size_t lh = strlen(h + 1), lv = strlen(v);
        return lv > lh && strcmp(v + lv - lh, h + 1) == 0 && strcmp(v, "*") != 0;
    }
    return 0;
}

/* A listener's tags: the gateway dataplane's tags, then the listener's. */
static const char *listener_tag(const struct xds_dataplane *dp, const json_t *l, const char *k)
{
    const char *v = json_string_value(json_object_get(json_object_get(l, "tags"), k));
    if (v)
        return v;
    for (size_t i = 0; i < dp->n_gateway_tags; i++)
        if (strcmp(dp->gateway_tags[i].key, k) == 0)
            return dp->gateway_tags[i].value;
    return NULL;
}

/* The rank of a route targeting the gateway gw on listener l: the number
 * of listener tags it requires, or -1 when it does not attach. */
static int gateway_rank(const json_t *spec, const struct xds_dataplane *dp, const char *gw,
                        const json_t *l)
{
    const json_t *ref = json_object_get(spec, "targetRef");
    if (!is_top_gateway(spec) || strcmp(jstr(ref, "name"), gw) != 0)
        return -1;
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(json_object_get(ref, "tags"), k, v)
    {
        const char *have = listener_tag(dp, l, k);
        if (!json_is_string(v) || !have || strcmp(have, json_string_value(v)) != 0)
            return -1;
        n++;
    }
    return n;
}

/* `to` entries (kind Mesh) of the routes of type attached to listener l,
 * most specific first. */
static struct to_entry *gateway_entries(const struct xds_mesh_snapshot *snap,
                                        const struct res_type *type, const struct xds_dataplane *dp,
                                        const char *gw, const json_t *l, size_t *n)
{
    struct to_entry *v = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t i = 0; i < snap->n_policies; i++) {
        const struct xds_policy *p = &snap->policies[i];
        if (p->type != type)
            continue;
        int rank = gateway_rank(p->spec, dp, gw, l);
        if (rank < 0)
            continue;
        size_t j;
        json_t *item;
        json_array_foreach(json_object_get(p->spec, "to"), j, item)
        {
            if (strcmp(jstr(json_object_get(item, "targetRef"), "kind"), "Mesh") != 0)
                continue;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 4;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[cnt++] = (struct to_entry){rank, p->name, j, item};
        }
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_to_entry);
    /* most specific first */
    for (size_t i = 0; i < cnt / 2; i++) {
        struct to_entry t = v[i];
        v[i] = v[cnt - 1 - i];
        v[cnt - 1 - i] = t;
    }
    *n = cnt;
    return v;
}

static const char *const STAR = "*";

/* The hostnames of an entry ("*" when none). */
static size_t entry_hosts(const json_t *item, const char **out, size_t max)
{
    const json_t *hs = json_object_get(item, "hostnames");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(hs) && n < max; i++) {
        const char *h = json_string_value(json_array_get(hs, i));
        if (h && *h)
            out[n++] = h;
    }
    if (n == 0)
        out[n++] = STAR;
    return n;
}

static int cmp_vhost(const void *a, const void *b)
{
    return xds_host_order(((const struct xds_gw_vhost *)a)->name,
                          ((const struct xds_gw_vhost *)b)->name);
}

struct xds_gw_vhost *xds_gateway_vhosts(const struct xds_mesh_snapshot *snap,
                                        const struct xds_dataplane *dp, const struct xds_policy *gw,
                                        const char *protocol, uint32_t port, const char *hostname,
                                        size_t *n)
{
    const json_t *ls = json_object_get(json_object_get(gw->spec, "conf"), "listeners");
    struct xds_gw_vhost *v = NULL;
    size_t cnt = 0, cap = 0;
    int any_route = 0;
    size_t i;
    json_t *l;
    json_array_foreach(ls, i, l)
    {
        if (strcmp(jstr(l, "protocol"), protocol) != 0 ||
            json_integer_value(json_object_get(l, "port")) != (json_int_t)port)
            continue;
        const char *lh = jstr(l, "hostname");
        lh = *lh ? lh : STAR;
        if (hostname && strcmp(hostname, lh) != 0)
            continue;
        size_t ne;
        struct to_entry *es = gateway_entries(snap, &TYPE_MESH_HTTP_ROUTE, dp, gw->name, l, &ne);
        any_route |= ne > 0;
        /* The virtual host names of this listener: its hostname, narrowed
         * by the routes' hostnames. */
        const char *names[64];
        size_t nn = 0;
        if (ne == 0)
            names[nn++] = lh;
        for (size_t e = 0; e < ne && nn < 64; e++) {
            const char *hs[16];
            size_t nh = entry_hosts(es[e].item, hs, 16);
            for (size_t k = 0; k < nh && nn < 64; k++) {
                const char *name = host_covers(hs[k], lh)   ? lh
                                   : host_covers(lh, hs[k]) ? hs[k]
                                                            : NULL;
                int dup = !name;
                for (size_t m = 0; m < nn && !dup; m++)
                    dup = strcmp(names[m], name) == 0;
                if (!dup)
                    names[nn++] = name;
            }
        }
        for (size_t k = 0; k < nn; k++) {
            int dup = 0;
            for (size_t m = 0; m < cnt && !dup; m++)
                dup = strcmp(v[m].name, names[k]) == 0;
            if (dup)
                continue; /* the first listener of a hostname wins */
            if (cnt == cap) {
                cap = cap ? cap * 2 : 4;
                v = xrealloc(v, cap * sizeof(*v));
            }
            struct xds_gw_vhost *vh = &v[cnt++];
            memset(vh, 0, sizeof(*vh));
            vh->name = xstrdup(names[k]);
            vh->rt.lb_policy = -1;
            vh->rt.mesh_http = 1;
            /* Rules of every entry with a hostname covering this name,
             * most specific entry first; Kuma keeps equal matches of
             * different routes. */
            const json_t **rules = NULL;
            size_t nrules = 0, rcap = 0;
            for (size_t e = 0; e < ne; e++) {
                const char *hs[16];
                size_t nh = entry_hosts(es[e].item, hs, 16), hit = 0;
                for (size_t h = 0; h < nh && !hit; h++)
                    hit = host_covers(hs[h], vh->name);
                if (!hit)
                    continue;
                size_t r;
                json_t *rule;
                json_array_foreach(json_object_get(es[e].item, "rules"), r, rule)
                {
                    if (!json_is_object(rule))
                        continue;
                    if (nrules == rcap) {
                        rcap = rcap ? rcap * 2 : 8;
                        rules = xrealloc(rules, rcap * sizeof(*rules));
                    }
                    rules[nrules++] = rule;
                }
            }
            if (nrules)
                http_routes(&vh->rt, rules, nrules, NULL);
            free(rules);
        }
        free(es);
    }
    if (!any_route) {
        xds_gateway_vhosts_free(v, cnt);
        *n = 0;
        return NULL;
    }
    qsort(v, cnt, sizeof(*v), cmp_vhost);
    *n = cnt;
    return v;
}

void xds_gateway_vhosts_free(struct xds_gw_vhost *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        xds_route_free(&v[i].rt);
    }
    free(v);
}

int xds_gateway_tcp_route(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                          const struct xds_policy *gw, const json_t *listener,
                          struct xds_route *out)
{
    memset(out, 0, sizeof(*out));
    out->lb_policy = -1;
    size_t ne;
    struct to_entry *es = gateway_entries(snap, &TYPE_MESH_TCP_ROUTE, dp, gw->name, listener, &ne);
    for (size_t e = 0; e < ne; e++) {
        const json_t *rule = json_array_get(json_object_get(es[e].item, "rules"), 0);
        const json_t *refs = json_object_get(json_object_get(rule, "default"), "backendRefs");
        struct xds_split *sp = xcalloc(json_array_size(refs) + 1, sizeof(*sp));
        size_t cnt = 0, i;
        json_t *b;
        json_array_foreach(refs, i, b)
        {
            json_int_t w = json_is_integer(json_object_get(b, "weight"))
                               ? json_integer_value(json_object_get(b, "weight"))
                               : 1;
            if (w > 0 && w <= UINT32_MAX && split_from_ref(b, (uint32_t)w, &sp[cnt]))
                cnt++;
        }
        if (cnt) {
            out->splits = sp;
            out->n = cnt;
            free(es);
            return 1;
        }
        free(sp);
    }
    free(es);
    return 0;
}

Envoy__Config__Route__V3__WeightedCluster *
xds_route_weighted_clusters(struct pb_arena *a, const struct xds_split *sp, size_t n)
{
    Envoy__Config__Route__V3__WeightedCluster *wc =
        PB_NEW(a, Envoy__Config__Route__V3__WeightedCluster,
               ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__INIT);
    wc->n_clusters = n;
    wc->clusters = pb_alloc(a, (n ? n : 1) * sizeof(*wc->clusters));
    for (size_t i = 0; i < n; i++) {
        Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw =
            PB_NEW(a, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight,
                   ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__CLUSTER_WEIGHT__INIT);
        cw->name = pb_strdup(a, sp[i].cluster);
        cw->weight = pb_u32(a, sp[i].weight);
        if (sp[i].ntags)
            cw->metadata_match = pb_metadata_tags(a, "envoy.lb", sp[i].tags, sp[i].ntags);
        wc->clusters[i] = cw;
    }
    return wc;
}

/* A gateway route's action: Kuma's gateway shape (always weighted
 * clusters, each adding x-kuma-tags with the gateway's service, and 500
 * when a cluster is missing). */
static Envoy__Config__Route__V3__RouteAction *
gateway_action(struct pb_arena *a, const struct xds_split *sp, size_t n, const char *tags)
{
    Envoy__Config__Route__V3__RouteAction *ra = PB_NEW(
        a, Envoy__Config__Route__V3__RouteAction, ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT);
    ra->cluster_not_found_response_code =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__INTERNAL_SERVER_ERROR;
    Envoy__Config__Route__V3__WeightedCluster *wc = xds_route_weighted_clusters(a, sp, n);
    for (size_t i = 0; i < n; i++) {
        Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw = wc->clusters[i];
        cw->n_request_headers_to_add = 1;
        cw->request_headers_to_add = pb_alloc(a, sizeof(*cw->request_headers_to_add));
        cw->request_headers_to_add[0] = pb_header_option(a, "x-kuma-tags", tags);
    }
    ra->cluster_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
    ra->weighted_clusters = wc;
    return ra;
}

static int has_filter(const json_t *filters, const char *type)
{
    size_t i;
    json_t *f;
    json_array_foreach(filters, i, f) if (strcmp(jstr(f, "type"), type) == 0) return 1;
    return 0;
}

Envoy__Config__Route__V3__Route **xds_gateway_http_routes(struct pb_arena *a,
                                                          const struct xds_route *rt,
                                                          const char *gateway_service, size_t *n)
{
    Envoy__Config__Route__V3__Route **v = pb_alloc(a, (2 * rt->n_http + 1) * sizeof(*v));
    size_t cnt = 0;
    char *tags = xasprintf("&%s=%s&", XDS_TAG_SERVICE, gateway_service);
    for (size_t i = 0; i < rt->n_http; i++) {
        const struct xds_http_route *hr = &rt->http[i];
        if (hr->mirror_only || (hr->n == 0 && !has_filter(hr->filters, "RequestRedirect")))
            continue; /* nowhere to send it */
        Envoy__Config__Route__V3__RouteMatch *ms[2];
        int prefix_match;
        size_t nm = route_matches(a, hr->match, ms, &prefix_match);
        for (size_t k = 0; k < nm; k++) {
            Envoy__Config__Route__V3__Route *r =
                PB_NEW(a, Envoy__Config__Route__V3__Route, ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT);
            r->name = pb_strdup(a, hr->name ? hr->name : "");
            r->match = ms[k];
            r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
            r->route = gateway_action(a, hr->splits, hr->n, tags);
            apply_filters(a, r, hr->filters, prefix_match);
            v[cnt++] = r;
        }
    }
    free(tags);
    *n = cnt;
    return v;
}

/* ---- TrafficRoute modify ---------------------------------------------------- */

static Envoy__Type__Matcher__V3__RegexMatchAndSubstitute *legacy_regex(struct pb_arena *a,
                                                                       const json_t *rr)
{
    Envoy__Type__Matcher__V3__RegexMatchAndSubstitute *r =
        PB_NEW(a, Envoy__Type__Matcher__V3__RegexMatchAndSubstitute,
               ENVOY__TYPE__MATCHER__V3__REGEX_MATCH_AND_SUBSTITUTE__INIT);
    r->pattern = PB_NEW(a, Envoy__Type__Matcher__V3__RegexMatcher,
                        ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__INIT);
    r->pattern->regex = pb_strdup(a, jstr(rr, "pattern"));
    r->substitution = pb_strdup(a, jstr(rr, "substitution"));
    return r;
}

static void legacy_headers(struct pb_arena *a, const json_t *hs, size_t *n_add,
                           Envoy__Config__Core__V3__HeaderValueOption ***add, size_t *n_rm,
                           char ***rm)
{
    const json_t *adds = json_object_get(hs, "add"), *rms = json_object_get(hs, "remove");
    if (json_array_size(adds)) {
        *add = pb_alloc(a, json_array_size(adds) * sizeof(**add));
        size_t i;
        json_t *h;
        json_array_foreach(adds, i, h)
        {
            Envoy__Config__Core__V3__HeaderValueOption *o =
                pb_header_option(a, jstr(h, "name"), jstr(h, "value"));
            o->append_action =
                json_is_true(json_object_get(h, "append"))
                    ? ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD
                    : ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
            (*add)[(*n_add)++] = o;
        }
    }
    if (json_array_size(rms)) {
        *rm = pb_alloc(a, json_array_size(rms) * sizeof(**rm));
        size_t i;
        json_t *h;
        json_array_foreach(rms, i, h)(*rm)[(*n_rm)++] = pb_strdup(a, jstr(h, "name"));
    }
}

void xds_traffic_route_modify(struct pb_arena *a, Envoy__Config__Route__V3__Route *r,
                              const json_t *modify)
{
    if (!json_is_object(modify) || r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE)
        return;
    Envoy__Config__Route__V3__RouteAction *ra = r->route;
    const json_t *path = json_object_get(modify, "path");
    if (json_is_string(json_object_get(path, "rewritePrefix")))
        ra->prefix_rewrite = pb_strdup(a, jstr(path, "rewritePrefix"));
    else if (json_is_object(json_object_get(path, "regex")))
        ra->regex_rewrite = legacy_regex(a, json_object_get(path, "regex"));
    const json_t *host = json_object_get(modify, "host");
    if (json_is_string(json_object_get(host, "value"))) {
        ra->host_rewrite_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
        ra->host_rewrite_literal = pb_strdup(a, jstr(host, "value"));
    } else if (json_is_object(json_object_get(host, "fromPath"))) {
        ra->host_rewrite_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_PATH_REGEX;
        ra->host_rewrite_path_regex = legacy_regex(a, json_object_get(host, "fromPath"));
    }
    legacy_headers(a, json_object_get(modify, "requestHeaders"), &r->n_request_headers_to_add,
                   &r->request_headers_to_add, &r->n_request_headers_to_remove,
                   &r->request_headers_to_remove);
    legacy_headers(a, json_object_get(modify, "responseHeaders"), &r->n_response_headers_to_add,
                   &r->response_headers_to_add, &r->n_response_headers_to_remove,
                   &r->response_headers_to_remove);
}
