/*
 * policies — see policies.h. Matching rules (simplified from Kuma, documented
 * in docs/xds.md):
 *
 * Legacy policies (TrafficPermission, TrafficRoute, Timeout, Retry,
 * CircuitBreaker, HealthCheck) select with `sources[].match` and
 * `destinations[].match` tag maps ("*" = any value). Among the policies that
 * match, the most specific wins: rank = exact tag matches, then wildcard
 * matches, summed over the best source and the best destination selector;
 * ties go to the first name in lexical order.
 *
 * Mesh* policies select with `targetRef` (Mesh < MeshSubset < MeshService <
 * Dataplane in specificity); their `to[]` / `from[]` entries are merged in
 * order of that specificity, then policy name, then position, later entries
 * overriding earlier ones field by field. A Mesh* policy overrides the
 * legacy one of the same concern.
 */
#include "xds/policies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/types.h"
#include "core/util.h"
#include "xds/server.h"

/* ---- tag matching ------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Does tagset ({k:[v...]}) have value v for key k? */
static int tagset_has(const json_t *tagset, const char *k, const char *v)
{
    const json_t *vals = json_object_get(tagset, k);
    if (json_is_string(vals))
        return strcmp(json_string_value(vals), v) == 0;
    size_t i;
    json_t *x;
    json_array_foreach(vals, i,
                       x) if (json_is_string(x) && strcmp(json_string_value(x), v) == 0) return 1;
    return 0;
}

/* A legacy `match` against a tag set: returns -1 if it does not match, else
 * a rank (exact matches * 1000 + wildcard matches). */
static int match_rank(const json_t *match, const json_t *tagset)
{
    int exact = 0, wild = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)match, k, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            return -1;
        if (strcmp(s, "*") == 0) {
            if (!json_object_get(tagset, k))
                return -1;
            wild++;
        } else {
            if (!tagset_has(tagset, k, s))
                return -1;
            exact++;
        }
    }
    return exact * 1000 + wild;
}

/* The best rank of any selector of a list ({match: {...}} items), or -1. */
static int best_rank(const json_t *selectors, const json_t *tagset)
{
    int best = -1;
    size_t i;
    json_t *sel;
    json_array_foreach(selectors, i, sel)
    {
        int r = match_rank(json_object_get(sel, "match"), tagset);
        if (r > best)
            best = r;
    }
    return best;
}

static json_t *inbound_tagset(const struct xds_inbound *in)
{
    json_t *t = json_object();
    for (size_t i = 0; i < in->ntags; i++)
        json_object_set_new(t, in->tags[i].key, json_string(in->tags[i].value));
    return t;
}

static json_t *service_tagset(const char *service)
{
    json_t *t = json_object();
    json_object_set_new(t, XDS_TAG_SERVICE, json_string(service));
    return t;
}

/* The best legacy policy of a type for (source tag set, destination tag
 * set), or NULL. */
static const struct xds_policy *best_legacy(const struct xds_mesh_snapshot *snap,
                                            const struct res_type *type, const json_t *src,
                                            const json_t *dst)
{
    const struct xds_policy *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < snap->n_policies; i++) {
        const struct xds_policy *p = &snap->policies[i];
        if (p->type != type)
            continue;
        int rs = src ? best_rank(json_object_get(p->spec, "sources"), src) : 0;
        int rd = best_rank(json_object_get(p->spec, "destinations"), dst);
        if (rs < 0 || rd < 0)
            continue;
        if (rs + rd > best_score) { /* policies are sorted by name: first wins ties */
            best_score = rs + rd;
            best = p;
        }
    }
    return best;
}

/* ---- targetRef ------------------------------------------------------------ */

/* Specificity of a top-level targetRef that selects dp (or inbound `in` when
 * given), or -1 when it does not select it. */
static int target_rank(const json_t *ref, const struct xds_dataplane *dp,
                       const struct xds_inbound *in)
{
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    const json_t *pt = json_object_get(ref, "proxyTypes");
    if (json_array_size(pt) > 0) {
        int ok = 0;
        size_t i;
        json_t *x;
        json_array_foreach(pt, i, x)
        {
            const char *s = json_string_value(x);
            if (s && strcmp(s, dp->gateway ? "Gateway" : "Sidecar") == 0)
                ok = 1;
        }
        if (!ok)
            return -1;
    }
    if (!kind || strcmp(kind, "Mesh") == 0)
        return 0;
    if (strcmp(kind, "MeshSubset") == 0) {
        json_t *ts = in ? inbound_tagset(in) : json_incref(dp->tagset);
        int r = match_rank(json_object_get(ref, "tags"), ts);
        json_decref(ts);
        return r < 0 ? -1 : 1;
    }
    if (strcmp(kind, "MeshService") == 0 || strcmp(kind, "MeshServiceSubset") == 0) {
        const char *name = json_string_value(json_object_get(ref, "name"));
        int ok = 0;
        if (in)
            ok = in->service && name && strcmp(in->service, name) == 0;
        else
            ok = name && tagset_has(dp->tagset, XDS_TAG_SERVICE, name);
        return ok ? 2 : -1;
    }
    if (strcmp(kind, "Dataplane") == 0) {
        const char *name = json_string_value(json_object_get(ref, "name"));
        return name && strcmp(name, dp->name) == 0 ? 3 : -1;
    }
    return -1;
}

/* An entry of a Mesh* policy's to/from list, with its merge order. */
struct entry {
    int rank; /* top-level specificity */
    const char *policy;
    size_t index;
    int sub_rank; /* of the entry's own targetRef: Mesh 0 < MeshService 1 */
    const json_t *item;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    if (x->sub_rank != y->sub_rank)
        return x->sub_rank - y->sub_rank;
    int c = strcmp(x->policy, y->policy);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Entries of `list` ("to" or "from") of every policy of type selecting dp (or
 * in), whose targetRef applies to service (NULL = any; "to" entries of kind
 * Mesh or MeshService <service>), sorted in merge order. */
static struct entry *collect(const struct xds_mesh_snapshot *snap, const struct res_type *type,
                             const char *list, const struct xds_dataplane *dp,
                             const struct xds_inbound *in, const char *service, size_t *n)
{
    struct entry *v = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t i = 0; i < snap->n_policies; i++) {
        const struct xds_policy *p = &snap->policies[i];
        if (p->type != type)
            continue;
        int rank = target_rank(json_object_get(p->spec, "targetRef"), dp, in);
        if (rank < 0)
            continue;
        size_t j;
        json_t *item;
        json_array_foreach(json_object_get(p->spec, list), j, item)
        {
            const json_t *ref = json_object_get(item, "targetRef");
            const char *kind = json_string_value(json_object_get(ref, "kind"));
            int sub = 0;
            if (service) {
                if (kind && strcmp(kind, "MeshService") == 0) {
                    const char *name = json_string_value(json_object_get(ref, "name"));
                    if (!name || strcmp(name, service) != 0)
                        continue;
                    sub = 1;
                } else if (kind && strcmp(kind, "Mesh") != 0) {
                    continue;
                }
            }
            if (cnt == cap) {
                cap = cap ? cap * 2 : 8;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[cnt++] = (struct entry){rank, p->name, j, sub, item};
        }
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_entry);
    *n = cnt;
    return v;
}

/* ---- permissions -------------------------------------------------------- */

static Envoy__Config__Rbac__V3__Principal *principal_new(struct pb_arena *a)
{
    return PB_NEW(a, Envoy__Config__Rbac__V3__Principal, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__INIT);
}

static Envoy__Config__Rbac__V3__Principal *principal_any(struct pb_arena *a)
{
    Envoy__Config__Rbac__V3__Principal *p = principal_new(a);
    p->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY;
    p->any = 1;
    return p;
}

static Envoy__Config__Rbac__V3__Principal *principal_name(struct pb_arena *a, const char *uri)
{
    Envoy__Config__Rbac__V3__Principal *p = principal_new(a);
    p->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED;
    p->authenticated = PB_NEW(a, Envoy__Config__Rbac__V3__Principal__Authenticated,
                              ENVOY__CONFIG__RBAC__V3__PRINCIPAL__AUTHENTICATED__INIT);
    p->authenticated->principal_name = pb_exact(a, uri);
    return p;
}

static Envoy__Config__Rbac__V3__Principal *
principal_set(struct pb_arena *a, int and, Envoy__Config__Rbac__V3__Principal **ids, size_t n)
{
    if (n == 1)
        return ids[0];
    Envoy__Config__Rbac__V3__Principal *p = principal_new(a);
    Envoy__Config__Rbac__V3__Principal__Set *set = PB_NEW(
        a, Envoy__Config__Rbac__V3__Principal__Set, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__SET__INIT);
    set->n_ids = n;
    set->ids = pb_alloc(a, n * sizeof(*set->ids));
    memcpy(set->ids, ids, n * sizeof(*ids));
    if (and) {
        p->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS;
        p->and_ids = set;
    } else {
        p->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS;
        p->or_ids = set;
    }
    return p;
}

/* Principals of a tag match: spiffe://<mesh>/<service> for kuma.io/service,
 * kuma://<tag>/<value> for the others, all required; "*" values are
 * skipped; nothing left = any. */
static Envoy__Config__Rbac__V3__Principal *principal_tags(struct pb_arena *a, const char *mesh,
                                                          const json_t *match)
{
    size_t n = json_object_size(match);
    Envoy__Config__Rbac__V3__Principal **ids = pb_alloc(a, (n ? n : 1) * sizeof(*ids));
    size_t k = 0;
    /* Sorted keys, so the output is stable. */
    const char **keys = xcalloc(n ? n : 1, sizeof(*keys));
    size_t nk = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)match, key, v) keys[nk++] = key;
    qsort(keys, nk, sizeof(*keys), cmp_str_ptr);
    for (size_t i = 0; i < nk; i++) {
        const char *val = json_string_value(json_object_get(match, keys[i]));
        if (!val || strcmp(val, "*") == 0)
            continue;
        char *uri = strcmp(keys[i], XDS_TAG_SERVICE) == 0 ? xasprintf("spiffe://%s/%s", mesh, val)
                                                          : xasprintf("kuma://%s/%s", keys[i], val);
        ids[k++] = principal_name(a, uri);
        free(uri);
    }
    free(keys);
    return k ? principal_set(a, 1, ids, k) : principal_any(a);
}

/* The principal of a MeshTrafficPermission `from[].targetRef`. */
static Envoy__Config__Rbac__V3__Principal *principal_ref(struct pb_arena *a, const char *mesh,
                                                         const json_t *ref)
{
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    if (!kind || strcmp(kind, "Mesh") == 0)
        return principal_any(a);
    json_t *m = json_deep_copy(json_object_get(ref, "tags"));
    if (!json_is_object(m)) {
        json_decref(m);
        m = json_object();
    }
    const char *name = json_string_value(json_object_get(ref, "name"));
    if (name && (strcmp(kind, "MeshService") == 0 || strcmp(kind, "MeshServiceSubset") == 0))
        json_object_set_new(m, XDS_TAG_SERVICE, json_string(name));
    Envoy__Config__Rbac__V3__Principal *p = principal_tags(a, mesh, m);
    json_decref(m);
    return p;
}

static Envoy__Config__Rbac__V3__RBAC *rbac_new(struct pb_arena *a)
{
    Envoy__Config__Rbac__V3__RBAC *r =
        PB_NEW(a, Envoy__Config__Rbac__V3__RBAC, ENVOY__CONFIG__RBAC__V3__RBAC__INIT);
    r->action = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW;
    return r;
}

static void rbac_add_policy(struct pb_arena *a, Envoy__Config__Rbac__V3__RBAC *r, const char *name,
                            Envoy__Config__Rbac__V3__Principal **principals, size_t n)
{
    Envoy__Config__Rbac__V3__Policy *pol =
        PB_NEW(a, Envoy__Config__Rbac__V3__Policy, ENVOY__CONFIG__RBAC__V3__POLICY__INIT);
    Envoy__Config__Rbac__V3__Permission *perm =
        PB_NEW(a, Envoy__Config__Rbac__V3__Permission, ENVOY__CONFIG__RBAC__V3__PERMISSION__INIT);
    perm->rule_case = ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY;
    perm->any = 1;
    pol->n_permissions = 1;
    pol->permissions = pb_alloc(a, sizeof(*pol->permissions));
    pol->permissions[0] = perm;
    pol->n_principals = n;
    pol->principals = principals;
    Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *e =
        PB_NEW(a, Envoy__Config__Rbac__V3__RBAC__PoliciesEntry,
               ENVOY__CONFIG__RBAC__V3__RBAC__POLICIES_ENTRY__INIT);
    e->key = pb_strdup(a, name);
    e->value = pol;
    /* At most one policy per filter here: a fresh one-element array. */
    r->policies = pb_alloc(a, sizeof(*r->policies));
    r->policies[0] = e;
    r->n_policies = 1;
}

Envoy__Config__Rbac__V3__RBAC *xds_inbound_rbac(struct pb_arena *a,
                                                const struct xds_mesh_snapshot *snap,
                                                const struct xds_dataplane *dp,
                                                const struct xds_inbound *in, const char **origin)
{
    Envoy__Config__Rbac__V3__RBAC *r = rbac_new(a);
    /* MeshTrafficPermission first: when one selects the inbound it decides. */
    size_t n;
    struct entry *ents = collect(snap, &TYPE_MESH_TRAFFIC_PERMISSION, "from", dp, in, NULL, &n);
    if (n > 0) {
        *origin = "MeshTrafficPermission";
        Envoy__Config__Rbac__V3__Principal **allow = pb_alloc(a, n * sizeof(*allow));
        size_t na = 0;
        for (size_t i = 0; i < n; i++) {
            const char *action = json_string_value(
                json_object_get(json_object_get(ents[i].item, "default"), "action"));
            if (action && strcmp(action, "Deny") == 0)
                continue;
            Envoy__Config__Rbac__V3__Principal *p =
                principal_ref(a, snap->mesh, json_object_get(ents[i].item, "targetRef"));
            /* Later (more specific) denies carve out of this allow. */
            Envoy__Config__Rbac__V3__Principal **deny = pb_alloc(a, n * sizeof(*deny));
            size_t nd = 0;
            for (size_t j = i + 1; j < n; j++) {
                const char *aj = json_string_value(
                    json_object_get(json_object_get(ents[j].item, "default"), "action"));
                if (aj && strcmp(aj, "Deny") == 0)
                    deny[nd++] =
                        principal_ref(a, snap->mesh, json_object_get(ents[j].item, "targetRef"));
            }
            if (nd > 0) {
                Envoy__Config__Rbac__V3__Principal *not = principal_new(a);
                not ->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID;
                not ->not_id = principal_set(a, 0, deny, nd);
                Envoy__Config__Rbac__V3__Principal **both = pb_alloc(a, 2 * sizeof(*both));
                both[0] = p;
                both[1] = not ;
                p = principal_set(a, 1, both, 2);
            }
            allow[na++] = p;
        }
        if (na > 0)
            rbac_add_policy(a, r, "MeshTrafficPermission", allow, na);
        free(ents);
        return r;
    }
    free(ents);
    json_t *dst = inbound_tagset(in);
    const struct xds_policy *tp = best_legacy(snap, &TYPE_TRAFFIC_PERMISSION, NULL, dst);
    json_decref(dst);
    if (!tp) {
        *origin = "none";
        return r; /* ALLOW without policies: deny all */
    }
    *origin = "TrafficPermission";
    const json_t *sources = json_object_get(tp->spec, "sources");
    size_t ns = json_array_size(sources);
    Envoy__Config__Rbac__V3__Principal **ps = pb_alloc(a, (ns ? ns : 1) * sizeof(*ps));
    size_t k = 0;
    size_t i;
    json_t *src;
    json_array_foreach(sources, i, src) ps[k++] =
        principal_tags(a, snap->mesh, json_object_get(src, "match"));
    if (k > 0)
        rbac_add_policy(a, r, tp->name, ps, k);
    return r;
}

/* ---- routes ----------------------------------------------------------------- */

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct xds_tag *)a)->key, ((const struct xds_tag *)b)->key);
}

char *xds_sni(const char *mesh, const char *service, const struct xds_tag *tags, size_t n)
{
    /* mesh sorts among the other keys. */
    struct xds_tag *all = xcalloc(n + 1, sizeof(*all));
    all[0] = (struct xds_tag){(char *)"mesh", (char *)mesh};
    size_t k = 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(tags[i].key, "mesh") != 0)
            all[k++] = tags[i];
    qsort(all, k, sizeof(*all), cmp_tag);
    char *out = xasprintf("%s{", service);
    for (size_t i = 0; i < k; i++) {
        char *next = xasprintf("%s%s%s=%s", out, i ? "," : "", all[i].key, all[i].value);
        free(out);
        out = next;
    }
    char *done = xasprintf("%s}", out);
    free(out);
    free(all);
    return done;
}

static void split_set_cluster(struct xds_split *s)
{
    if (s->ntags == 0) {
        s->cluster = xstrdup(s->service);
        return;
    }
    uint64_t h = xds_hash_str(XDS_HASH_INIT, s->service);
    for (size_t i = 0; i < s->ntags; i++) {
        h = xds_hash_str(h, s->tags[i].key);
        h = xds_hash_str(h, s->tags[i].value);
    }
    s->cluster = xasprintf("%s-%016llx", s->service, (unsigned long long)h);
}

/* A split destination from a legacy `destination` tag map. */
static int split_from(const json_t *dest, const char *service, uint32_t weight,
                      struct xds_split *out)
{
    memset(out, 0, sizeof(*out));
    const char *svc = json_string_value(json_object_get(dest, XDS_TAG_SERVICE));
    out->service = xstrdup(!svc || strcmp(svc, "*") == 0 ? service : svc);
    out->weight = weight;
    size_t n = json_object_size(dest);
    out->tags = xcalloc(n ? n : 1, sizeof(*out->tags));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)dest, k, v)
    {
        const char *s = json_string_value(v);
        if (!s || strcmp(k, XDS_TAG_SERVICE) == 0 || strcmp(s, "*") == 0)
            continue;
        out->tags[out->ntags].key = xstrdup(k);
        out->tags[out->ntags++].value = xstrdup(s);
    }
    qsort(out->tags, out->ntags, sizeof(*out->tags), cmp_tag);
    split_set_cluster(out);
    return 0;
}

static int lb_policy(const json_t *lb)
{
    if (!json_is_object(lb))
        return -1;
    if (json_object_get(lb, "roundRobin"))
        return ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
    if (json_object_get(lb, "leastRequest"))
        return ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
    if (json_object_get(lb, "ringHash"))
        return ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH;
    if (json_object_get(lb, "random"))
        return ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM;
    if (json_object_get(lb, "maglev"))
        return ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV;
    return -1;
}

int xds_policy_target_rank(const json_t *ref, const struct xds_dataplane *dp)
{
    return target_rank(ref, dp, NULL);
}

void xds_split_set_cluster(struct xds_split *s)
{
    split_set_cluster(s);
}

void xds_outbound_route(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                        const char *service, struct xds_route *out)
{
    if (xds_mesh_route(snap, dp, service, out))
        return;
    memset(out, 0, sizeof(*out));
    out->lb_policy = -1;
    json_t *dst = service_tagset(service);
    const struct xds_policy *tr = best_legacy(snap, &TYPE_TRAFFIC_ROUTE, dp->tagset, dst);
    json_decref(dst);
    const json_t *conf = tr ? json_object_get(tr->spec, "conf") : NULL;
    if (conf) {
        out->lb_policy = lb_policy(json_object_get(conf, "loadBalancer"));
        const json_t *split = json_object_get(conf, "split");
        size_t i;
        json_t *sp;
        out->splits = xcalloc(json_array_size(split) + 1, sizeof(*out->splits));
        json_array_foreach(split, i, sp)
        {
            json_int_t w = json_integer_value(json_object_get(sp, "weight"));
            if (w <= 0)
                continue; /* Envoy requires weight >= 1; Kuma drops zero weights */
            split_from(json_object_get(sp, "destination"), service, (uint32_t)w,
                       &out->splits[out->n++]);
        }
        if (out->n == 0 && json_is_object(json_object_get(conf, "destination")))
            split_from(json_object_get(conf, "destination"), service, 1, &out->splits[out->n++]);
        const json_t *http = json_object_get(conf, "http");
        if (json_array_size(http) > 0) {
            out->http = xcalloc(json_array_size(http), sizeof(*out->http));
            json_t *h;
            json_array_foreach(http, i, h)
            {
                struct xds_http_route *hr = &out->http[out->n_http];
                const json_t *hs = json_object_get(h, "split");
                hr->splits = xcalloc(json_array_size(hs) + 1, sizeof(*hr->splits));
                size_t k;
                json_t *sp2;
                json_array_foreach(hs, k, sp2)
                {
                    json_int_t w = json_integer_value(json_object_get(sp2, "weight"));
                    if (w > 0)
                        split_from(json_object_get(sp2, "destination"), service, (uint32_t)w,
                                   &hr->splits[hr->n++]);
                }
                if (hr->n == 0 && json_is_object(json_object_get(h, "destination")))
                    split_from(json_object_get(h, "destination"), service, 1, &hr->splits[hr->n++]);
                if (hr->n == 0) {
                    free(hr->splits);
                    continue;
                }
                hr->match = json_object_get(h, "match");
                hr->modify = json_object_get(h, "modify");
                out->n_http++;
            }
        }
    }
    if (out->n == 0) {
        free(out->splits);
        out->splits = xcalloc(1, sizeof(*out->splits));
        out->splits[0].service = xstrdup(service);
        out->splits[0].weight = 1;
        out->splits[0].cluster = xstrdup(service);
        out->n = 1;
    }
}

static void splits_free(struct xds_split *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].service);
        free(v[i].cluster);
        xds_tags_free(v[i].tags, v[i].ntags);
    }
    free(v);
}

void xds_route_free(struct xds_route *r)
{
    splits_free(r->splits, r->n);
    for (size_t i = 0; i < r->n_http; i++) {
        splits_free(r->http[i].splits, r->http[i].n);
        free(r->http[i].name);
    }
    free(r->http);
    memset(r, 0, sizeof(*r));
}

/* ---- connection settings ------------------------------------------------------ */

static void conn_init(struct xds_conn_policy *c)
{
    memset(c, 0, sizeof(*c));
    c->connect_timeout_ms = c->idle_timeout_ms = c->max_connect_attempts = XDS_UNSET;
    c->max_connections = c->max_pending_requests = c->max_requests = c->max_retries = XDS_UNSET;
    c->outlier_consecutive_5xx = c->outlier_interval_ms = c->outlier_base_ejection_ms =
        c->outlier_max_ejection_percent = XDS_UNSET;
    c->request_timeout_ms = c->stream_idle_timeout_ms = c->max_stream_duration_ms = XDS_UNSET;
    c->request_headers_timeout_ms = XDS_UNSET;
    c->retry_num = c->retry_per_try_ms = c->retry_base_ms = c->retry_max_ms = XDS_UNSET;
}

/* MeshRetry's retryOn names → Envoy's (numbers are status codes). */
static void retry_on_from(struct xds_conn_policy *c, const json_t *list)
{
    static const char *const names[][2] = {
        {"5xx", "5xx"},
        {"GatewayError", "gateway-error"},
        {"Reset", "reset"},
        {"Retriable4xx", "retriable-4xx"},
        {"ConnectFailure", "connect-failure"},
        {"EnvoyRatelimited", "envoy-ratelimited"},
        {"RefusedStream", "refused-stream"},
        {"Http3PostConnectFailure", "http3-post-connect-failure"},
        {"HttpMethodConnect", "http-method-connect"},
        {"RetriableStatusCodes", "retriable-status-codes"},
        {"RetriableHeaders", "retriable-headers"},
        {"Canceled", "cancelled"},
        {"DeadlineExceeded", "deadline-exceeded"},
        {"Internal", "internal"},
        {"ResourceExhausted", "resource-exhausted"},
        {"Unavailable", "unavailable"},
    };
    if (!json_is_array(list))
        return;
    c->retry_on[0] = 0;
    c->n_retry_codes = 0;
    size_t i;
    json_t *v;
    int codes = 0;
    json_array_foreach(list, i, v)
    {
        const char *n = json_string_value(v);
        if (!n)
            continue;
        const char *env = NULL;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strcmp(n, names[k][0]) == 0 || strcmp(n, names[k][1]) == 0)
                env = names[k][1];
        char *end;
        long code = strtol(n, &end, 10);
        if (!env && *n && !*end && code >= 100 && code <= 599) {
            if (c->n_retry_codes < sizeof(c->retry_codes) / sizeof(c->retry_codes[0]))
                c->retry_codes[c->n_retry_codes++] = (uint32_t)code;
            codes = 1;
            continue;
        }
        if (!env)
            continue;
        size_t len = strlen(c->retry_on);
        snprintf(c->retry_on + len, sizeof(c->retry_on) - len, "%s%s", len ? "," : "", env);
    }
    if (codes && !strstr(c->retry_on, "retriable-status-codes")) {
        size_t len = strlen(c->retry_on);
        snprintf(c->retry_on + len, sizeof(c->retry_on) - len, "%sretriable-status-codes",
                 len ? "," : "");
    }
}

static void set_dur(int64_t *dst, const json_t *v)
{
    int64_t ms;
    if (json_is_string(v) && xds_parse_duration_ms(json_string_value(v), &ms) == 0)
        *dst = ms;
}

static void set_int(int64_t *dst, const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        *dst = json_integer_value(v);
}

/* MeshTimeout `default` (to or from). */
static void apply_mesh_timeout(struct xds_conn_policy *c, const json_t *d)
{
    set_dur(&c->connect_timeout_ms, json_object_get(d, "connectionTimeout"));
    set_dur(&c->idle_timeout_ms, json_object_get(d, "idleTimeout"));
    const json_t *h = json_object_get(d, "http");
    set_dur(&c->request_timeout_ms, json_object_get(h, "requestTimeout"));
    set_dur(&c->stream_idle_timeout_ms, json_object_get(h, "streamIdleTimeout"));
    set_dur(&c->max_stream_duration_ms, json_object_get(h, "maxStreamDuration"));
    set_dur(&c->request_headers_timeout_ms, json_object_get(h, "requestHeadersTimeout"));
}

/* An HTTP retry section (MeshRetry `http`/`grpc`, legacy `conf.http`/`conf.grpc`). */
static void apply_http_retry(struct xds_conn_policy *c, const json_t *r, int grpc)
{
    if (!json_is_object(r))
        return;
    if (!c->retry) {
        c->retry = 1;
        /* Kuma's defaults when retryOn is not given. */
        snprintf(c->retry_on, sizeof(c->retry_on), "%s",
                 grpc ? "cancelled,connect-failure,gateway-error,refused-stream,reset,"
                        "resource-exhausted,unavailable"
                      : "gateway-error,connect-failure,refused-stream");
    }
    set_int(&c->retry_num, json_object_get(r, "numRetries"));
    set_dur(&c->retry_per_try_ms, json_object_get(r, "perTryTimeout"));
    const json_t *bo = json_object_get(r, "backOff");
    set_dur(&c->retry_base_ms, json_object_get(bo, "baseInterval"));
    set_dur(&c->retry_max_ms, json_object_get(bo, "maxInterval"));
    retry_on_from(c, json_object_get(r, "retryOn"));
    const json_t *codes = json_object_get(r, "retriableStatusCodes"); /* legacy */
    if (json_array_size(codes) > 0) {
        c->n_retry_codes = 0;
        size_t i;
        json_t *v;
        json_array_foreach(codes, i, v)
        {
            if (json_is_integer(v) &&
                c->n_retry_codes < sizeof(c->retry_codes) / sizeof(c->retry_codes[0]))
                c->retry_codes[c->n_retry_codes++] = (uint32_t)json_integer_value(v);
        }
        if (!strstr(c->retry_on, "retriable-status-codes")) {
            size_t len = strlen(c->retry_on);
            snprintf(c->retry_on + len, sizeof(c->retry_on) - len, "%sretriable-status-codes",
                     len ? "," : "");
        }
    }
}

static void apply_mesh_cb(struct xds_conn_policy *c, const json_t *d)
{
    const json_t *cl = json_object_get(d, "connectionLimits");
    set_int(&c->max_connections, json_object_get(cl, "maxConnections"));
    set_int(&c->max_pending_requests, json_object_get(cl, "maxPendingRequests"));
    set_int(&c->max_requests, json_object_get(cl, "maxRequests"));
    set_int(&c->max_retries, json_object_get(cl, "maxRetries"));
    const json_t *od = json_object_get(d, "outlierDetection");
    if (json_is_object(od)) {
        c->outlier = !json_is_true(json_object_get(od, "disabled"));
        set_dur(&c->outlier_interval_ms, json_object_get(od, "interval"));
        set_dur(&c->outlier_base_ejection_ms, json_object_get(od, "baseEjectionTime"));
        set_int(&c->outlier_max_ejection_percent, json_object_get(od, "maxEjectionPercent"));
        set_int(&c->outlier_consecutive_5xx,
                json_object_get(json_object_get(json_object_get(od, "detectors"), "totalFailures"),
                                "consecutive"));
    }
}

static void apply_mesh_retry(struct xds_conn_policy *c, const json_t *d, enum xds_protocol proto)
{
    set_int(&c->max_connect_attempts,
            json_object_get(json_object_get(d, "tcp"), "maxConnectAttempt"));
    if (proto == XDS_PROTO_GRPC)
        apply_http_retry(c, json_object_get(d, "grpc"), 1);
    else if (XDS_PROTO_IS_HTTP(proto))
        apply_http_retry(c, json_object_get(d, "http"), 0);
}

/* Legacy Timeout / CircuitBreaker / Retry / HealthCheck `conf`. */
static void apply_legacy(struct xds_conn_policy *c, const struct xds_policy *p,
                         enum xds_protocol proto)
{
    const json_t *conf = json_object_get(p->spec, "conf");
    if (p->type == &TYPE_TIMEOUT) {
        set_dur(&c->connect_timeout_ms, json_object_get(conf, "connectTimeout"));
        if (XDS_PROTO_IS_HTTP(proto)) {
            const json_t *h = json_object_get(conf, proto == XDS_PROTO_GRPC ? "grpc" : "http");
            if (!h)
                h = json_object_get(conf, "http");
            set_dur(&c->request_timeout_ms, json_object_get(h, "requestTimeout"));
            set_dur(&c->idle_timeout_ms, json_object_get(h, "idleTimeout"));
            set_dur(&c->stream_idle_timeout_ms, json_object_get(h, "streamIdleTimeout"));
            set_dur(&c->max_stream_duration_ms, json_object_get(h, "maxStreamDuration"));
        } else {
            set_dur(&c->idle_timeout_ms,
                    json_object_get(json_object_get(conf, "tcp"), "idleTimeout"));
        }
    } else if (p->type == &TYPE_CIRCUIT_BREAKER) {
        const json_t *t = json_object_get(conf, "thresholds");
        set_int(&c->max_connections, json_object_get(t, "maxConnections"));
        set_int(&c->max_pending_requests, json_object_get(t, "maxPendingRequests"));
        set_int(&c->max_requests, json_object_get(t, "maxRequests"));
        set_int(&c->max_retries, json_object_get(t, "maxRetries"));
        const json_t *det = json_object_get(conf, "detectors");
        if (json_is_object(det)) {
            c->outlier = 1;
            set_dur(&c->outlier_interval_ms, json_object_get(conf, "interval"));
            set_dur(&c->outlier_base_ejection_ms, json_object_get(conf, "baseEjectionTime"));
            set_int(&c->outlier_max_ejection_percent, json_object_get(conf, "maxEjectionPercent"));
            set_int(&c->outlier_consecutive_5xx,
                    json_object_get(json_object_get(det, "totalErrors"), "consecutive"));
        }
    } else if (p->type == &TYPE_RETRY) {
        set_int(&c->max_connect_attempts,
                json_object_get(json_object_get(conf, "tcp"), "maxConnectAttempts"));
        if (proto == XDS_PROTO_GRPC)
            apply_http_retry(c, json_object_get(conf, "grpc"), 1);
        else if (XDS_PROTO_IS_HTTP(proto))
            apply_http_retry(c, json_object_get(conf, "http"), 0);
    } else if (p->type == &TYPE_HEALTH_CHECK) {
        c->health_check = 1;
        c->hc_interval_ms = 10000;
        c->hc_timeout_ms = 2000;
        c->hc_unhealthy = c->hc_healthy = 1;
        set_dur(&c->hc_interval_ms, json_object_get(conf, "interval"));
        set_dur(&c->hc_timeout_ms, json_object_get(conf, "timeout"));
        set_int(&c->hc_unhealthy, json_object_get(conf, "unhealthyThreshold"));
        set_int(&c->hc_healthy, json_object_get(conf, "healthyThreshold"));
    }
}

void xds_outbound_conn_policy(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                              const char *service, struct xds_conn_policy *out)
{
    xds_outbound_conn_policy_proto(snap, dp, service, XDS_PROTO_TCP, out);
}

void xds_outbound_conn_policy_proto(const struct xds_mesh_snapshot *snap,
                                    const struct xds_dataplane *dp, const char *service,
                                    enum xds_protocol proto, struct xds_conn_policy *out)
{
    conn_init(out);
    static const struct res_type *const legacy[] = {&TYPE_TIMEOUT, &TYPE_CIRCUIT_BREAKER,
                                                    &TYPE_RETRY, &TYPE_HEALTH_CHECK};
    json_t *dst = service_tagset(service);
    for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++) {
        const struct xds_policy *p = best_legacy(snap, legacy[i], dp->tagset, dst);
        if (p)
            apply_legacy(out, p, proto);
    }
    json_decref(dst);
    static const struct res_type *const modern[] = {&TYPE_MESH_TIMEOUT, &TYPE_MESH_CIRCUIT_BREAKER,
                                                    &TYPE_MESH_RETRY};
    for (size_t t = 0; t < 3; t++) {
        size_t n;
        struct entry *ents = collect(snap, modern[t], "to", dp, NULL, service, &n);
        for (size_t i = 0; i < n; i++) {
            const json_t *d = json_object_get(ents[i].item, "default");
            if (modern[t] == &TYPE_MESH_TIMEOUT)
                apply_mesh_timeout(out, d);
            else if (modern[t] == &TYPE_MESH_CIRCUIT_BREAKER)
                apply_mesh_cb(out, d);
            else
                apply_mesh_retry(out, d, proto);
        }
        free(ents);
    }
}

void xds_inbound_conn_policy(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                             const struct xds_inbound *in, struct xds_conn_policy *out)
{
    conn_init(out);
    size_t n;
    struct entry *ents = collect(snap, &TYPE_MESH_TIMEOUT, "from", dp, in, NULL, &n);
    for (size_t i = 0; i < n; i++)
        apply_mesh_timeout(out, json_object_get(ents[i].item, "default"));
    free(ents);
}

void xds_gateway_conn_policy(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                             struct xds_conn_policy *out)
{
    conn_init(out);
    out->idle_timeout_ms = 300000;
    out->stream_idle_timeout_ms = 5000;
    out->request_headers_timeout_ms = 500;
    size_t n;
    struct entry *ents = collect(snap, &TYPE_MESH_TIMEOUT, "from", dp, NULL, NULL, &n);
    for (size_t i = 0; i < n; i++)
        apply_mesh_timeout(out, json_object_get(ents[i].item, "default"));
    free(ents);
}

const struct xds_policy *xds_builtin_gateway(const struct xds_mesh_snapshot *snap,
                                             const struct xds_dataplane *dp)
{
    const struct xds_policy *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < snap->n_policies; i++) {
        const struct xds_policy *p = &snap->policies[i];
        if (p->type != &TYPE_MESH_GATEWAY)
            continue;
        int r = best_rank(json_object_get(p->spec, "selectors"), dp->tagset);
        if (r > best_score) {
            best_score = r;
            best = p;
        }
    }
    return best;
}
