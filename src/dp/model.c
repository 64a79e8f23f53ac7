/*
 * model — construction, lookup, destruction and JSON dump of the proxy's
 * configuration model (see model.h). The JSON uses Envoy's proto field names
 * in camelCase, as Envoy's /config_dump does.
 */
#include "dp/model.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define GROW(arr, n)                                                                               \
    do {                                                                                           \
        (arr) = xrealloc((arr), ((n) + 1) * sizeof(*(arr)));                                       \
        memset(&(arr)[(n)], 0, sizeof(*(arr)));                                                    \
    } while (0)

struct dp_config *dp_config_new(const char *version_info)
{
    struct dp_config *c = xcalloc(1, sizeof(*c));
    c->version_info = xstrdup(version_info ? version_info : "");
    return c;
}

static void free_common_tls(struct dp_common_tls_context *t)
{
    free(t->tls_certificate_sds_secret);
    free(t->validation_context_sds_secret);
    for (size_t i = 0; i < t->n_match_subject_alt_names; i++)
        free(t->match_subject_alt_names[i].value);
    free(t->match_subject_alt_names);
    for (size_t i = 0; i < t->n_alpn_protocols; i++)
        free(t->alpn_protocols[i]);
    free(t->alpn_protocols);
}

static void free_weighted(struct dp_weighted_clusters *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->clusters[i].name);
    free(w->clusters);
}

/* weightedClusters as sent, in Envoy's JSON. */
static json_t *j_weighted(const struct dp_weighted_clusters *w)
{
    json_t *cs = json_array();
    for (size_t i = 0; i < w->n; i++)
        json_array_append_new(cs, json_pack("{s:s,s:I}", "name", w->clusters[i].name, "weight",
                                            (json_int_t)w->clusters[i].weight));
    return json_pack("{s:o}", "clusters", cs);
}

static void free_cla(struct dp_cluster_load_assignment *a)
{
    free(a->cluster_name);
    for (size_t i = 0; i < a->n_endpoints; i++) {
        free(a->endpoints[i].address.address);
        free(a->endpoints[i].stat_cluster);
    }
    free(a->endpoints);
}

static void free_principal(struct dp_rbac_principal *pr)
{
    free(pr->principal_name.value);
    for (size_t i = 0; i < pr->n_ids; i++)
        free_principal(&pr->ids[i]);
    free(pr->ids);
}

static void free_rbac(struct dp_rbac *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_policies; i++) {
        struct dp_rbac_policy *p = &r->policies[i];
        for (size_t j = 0; j < p->n_principals; j++)
            free_principal(&p->principals[j]);
        free(p->principals);
        free(p->name);
    }
    free(r->policies);
    free(r->stat_prefix);
    free(r);
}

void dp_config_free(struct dp_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_listeners; i++) {
        struct dp_listener *l = &c->listeners[i];
        free(l->name);
        free(l->address.address);
        if (l->tls) {
            free_common_tls(&l->tls->common_tls_context);
            free(l->tls);
        }
        free_rbac(l->rbac);
        free(l->tcp_proxy.stat_prefix);
        free(l->tcp_proxy.cluster);
        free_weighted(&l->tcp_proxy.weighted);
        dp_http_conn_manager_free(l->hcm);
        struct dp_tcp_proxy *alt[2] = {l->raw_tcp_proxy, l->tls_tcp_proxy};
        for (int k = 0; k < 2; k++) {
            if (alt[k]) {
                free(alt[k]->stat_prefix);
                free(alt[k]->cluster);
                free(alt[k]);
            }
        }
    }
    free(c->listeners);
    for (size_t i = 0; i < c->n_clusters; i++) {
        struct dp_cluster *cl = &c->clusters[i];
        free(cl->name);
        free(cl->alt_stat_name);
        free(cl->upstream_bind_address);
        free(cl->outlier_detection);
        if (cl->tls) {
            free_common_tls(&cl->tls->common_tls_context);
            free(cl->tls->sni);
            free(cl->tls);
        }
        free_cla(&cl->load_assignment);
    }
    free(c->clusters);
    for (size_t i = 0; i < c->n_endpoints; i++)
        free_cla(&c->endpoints[i]);
    free(c->endpoints);
    for (size_t i = 0; i < c->n_secrets; i++) {
        free(c->secrets[i].name);
        free(c->secrets[i].certificate_chain);
        free(c->secrets[i].private_key);
        free(c->secrets[i].trusted_ca);
    }
    free(c->secrets);
    free(c->version_info);
    free(c);
}

void dp_http_conn_manager_free(struct dp_http_conn_manager *m)
{
    if (!m)
        return;
    struct dp_http_route_config *rc = &m->route_config;
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        struct dp_http_vhost *vh = &rc->vhosts[i];
        for (size_t j = 0; j < vh->n_domains; j++)
            free(vh->domains[j]);
        free(vh->domains);
        for (size_t j = 0; j < vh->n_routes; j++) {
            struct dp_http_route *r = &vh->routes[j];
            for (size_t k = 0; k < r->match.n_headers; k++) {
                free(r->match.headers[k].name);
                free(r->match.headers[k].value);
            }
            free(r->match.headers);
            for (size_t k = 0; k < r->match.n_query; k++) {
                free(r->match.query[k].name);
                free(r->match.query[k].value);
            }
            free(r->match.query);
            free(r->match.path);
            free(r->name);
            free(r->cluster);
            free_weighted(&r->weighted);
            free(r->retry_on);
        }
        free(vh->routes);
        free(vh->name);
    }
    free(rc->vhosts);
    for (size_t i = 0; i < rc->n_request_headers_to_remove; i++)
        free(rc->request_headers_to_remove[i]);
    free(rc->request_headers_to_remove);
    free(rc->name);
    free(m->stat_prefix);
    free_rbac(m->rbac);
    free(m);
}

struct dp_http_vhost *dp_http_add_vhost(struct dp_http_route_config *rc, const char *name)
{
    GROW(rc->vhosts, rc->n_vhosts);
    struct dp_http_vhost *vh = &rc->vhosts[rc->n_vhosts++];
    vh->name = xstrdup(name ? name : "");
    return vh;
}

void dp_http_vhost_add_domain(struct dp_http_vhost *vh, const char *domain)
{
    GROW(vh->domains, vh->n_domains);
    vh->domains[vh->n_domains++] = xstrdup(domain);
}

struct dp_http_route *dp_http_add_route(struct dp_http_vhost *vh, enum dp_http_path_kind kind,
                                        const char *path, const char *cluster)
{
    GROW(vh->routes, vh->n_routes);
    struct dp_http_route *r = &vh->routes[vh->n_routes++];
    r->match.path_kind = kind;
    r->match.path = xstrdup(path ? path : "");
    r->cluster = cluster ? xstrdup(cluster) : NULL;
    return r;
}

struct dp_http_header_matcher *dp_http_route_add_header(struct dp_http_route *r, const char *name,
                                                        enum dp_http_match_kind kind,
                                                        const char *value)
{
    GROW(r->match.headers, r->match.n_headers);
    struct dp_http_header_matcher *h = &r->match.headers[r->match.n_headers++];
    h->name = xstrdup(name);
    for (char *p = h->name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    h->kind = kind;
    h->value = value ? xstrdup(value) : NULL;
    return h;
}

struct dp_http_header_matcher *dp_http_route_add_query(struct dp_http_route *r, const char *name,
                                                       enum dp_http_match_kind kind,
                                                       const char *value)
{
    GROW(r->match.query, r->match.n_query);
    struct dp_http_header_matcher *q = &r->match.query[r->match.n_query++];
    q->name = xstrdup(name);
    q->kind = kind;
    q->value = value ? xstrdup(value) : NULL;
    return q;
}

struct dp_listener *dp_config_add_listener(struct dp_config *c, const char *name,
                                           const char *address, uint32_t port)
{
    GROW(c->listeners, c->n_listeners);
    struct dp_listener *l = &c->listeners[c->n_listeners++];
    l->name = xstrdup(name);
    l->address.address = xstrdup(address);
    l->address.port_value = port;
    return l;
}

struct dp_cluster *dp_config_add_cluster(struct dp_config *c, const char *name)
{
    GROW(c->clusters, c->n_clusters);
    struct dp_cluster *cl = &c->clusters[c->n_clusters++];
    cl->name = xstrdup(name);
    cl->alt_stat_name = dp_alt_stat_name(name);
    cl->load_assignment.cluster_name = xstrdup(name);
    return cl;
}

struct dp_cluster_load_assignment *dp_config_add_assignment(struct dp_config *c,
                                                            const char *cluster_name)
{
    GROW(c->endpoints, c->n_endpoints);
    struct dp_cluster_load_assignment *a = &c->endpoints[c->n_endpoints++];
    a->cluster_name = xstrdup(cluster_name);
    return a;
}

struct dp_secret *dp_config_add_secret(struct dp_config *c, const char *name)
{
    GROW(c->secrets, c->n_secrets);
    struct dp_secret *s = &c->secrets[c->n_secrets++];
    s->name = xstrdup(name);
    return s;
}

struct dp_lb_endpoint *dp_cla_add_endpoint(struct dp_cluster_load_assignment *a,
                                           const char *address, uint32_t port, uint32_t weight)
{
    GROW(a->endpoints, a->n_endpoints);
    struct dp_lb_endpoint *ep = &a->endpoints[a->n_endpoints++];
    ep->address.address = xstrdup(address);
    ep->address.port_value = port;
    ep->load_balancing_weight = weight;
    return ep;
}

struct dp_rbac_policy *dp_rbac_add_policy(struct dp_rbac *r, const char *name)
{
    GROW(r->policies, r->n_policies);
    struct dp_rbac_policy *p = &r->policies[r->n_policies++];
    p->name = xstrdup(name);
    return p;
}

void dp_rbac_policy_add_principal(struct dp_rbac_policy *p, enum dp_match_kind kind,
                                  const char *value)
{
    GROW(p->principals, p->n_principals);
    struct dp_rbac_principal *pr = &p->principals[p->n_principals++];
    pr->principal_name.kind = kind;
    pr->principal_name.value = xstrdup(value);
}

void dp_rbac_policy_add_any(struct dp_rbac_policy *p)
{
    GROW(p->principals, p->n_principals);
    p->principals[p->n_principals++].any = 1;
}

struct dp_rbac_principal *dp_rbac_policy_add_set(struct dp_rbac_policy *p, enum dp_rbac_set set)
{
    GROW(p->principals, p->n_principals);
    struct dp_rbac_principal *pr = &p->principals[p->n_principals++];
    memset(pr, 0, sizeof(*pr));
    pr->set = set;
    return pr;
}

struct dp_rbac_principal *dp_rbac_set_add(struct dp_rbac_principal *set)
{
    GROW(set->ids, set->n_ids);
    struct dp_rbac_principal *pr = &set->ids[set->n_ids++];
    memset(pr, 0, sizeof(*pr));
    return pr;
}

void dp_tls_add_san(struct dp_common_tls_context *t, enum dp_match_kind kind, const char *value)
{
    GROW(t->match_subject_alt_names, t->n_match_subject_alt_names);
    struct dp_string_matcher *m = &t->match_subject_alt_names[t->n_match_subject_alt_names++];
    m->kind = kind;
    m->value = xstrdup(value);
}

void dp_tls_add_alpn(struct dp_common_tls_context *t, const char *proto)
{
    GROW(t->alpn_protocols, t->n_alpn_protocols);
    t->alpn_protocols[t->n_alpn_protocols++] = xstrdup(proto);
}

char *dp_alt_stat_name(const char *cluster_name)
{
    char *s = xstrdup(cluster_name);
    for (char *p = s; *p; p++)
        if (*p == ':')
            *p = '_';
    return s;
}

const struct dp_cluster *dp_config_find_cluster(const struct dp_config *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_clusters; i++)
        if (strcmp(c->clusters[i].name, name) == 0)
            return &c->clusters[i];
    return NULL;
}

const struct dp_secret *dp_config_find_secret(const struct dp_config *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_secrets; i++)
        if (strcmp(c->secrets[i].name, name) == 0)
            return &c->secrets[i];
    return NULL;
}

const struct dp_cluster_load_assignment *dp_config_cluster_endpoints(const struct dp_config *c,
                                                                     const struct dp_cluster *cl)
{
    if (cl->type == DP_CLUSTER_STATIC)
        return &cl->load_assignment;
    if (cl->type == DP_CLUSTER_ORIGINAL_DST)
        return NULL;
    for (size_t i = 0; i < c->n_endpoints; i++)
        if (strcmp(c->endpoints[i].cluster_name, cl->name) == 0)
            return &c->endpoints[i];
    return NULL;
}

/* --- JSON ------------------------------------------------------------------------------------ */

static json_t *j_addr(const struct dp_socket_address *a)
{
    return json_pack("{s:{s:s,s:I}}", "socketAddress", "address", a->address ? a->address : "",
                     "portValue", (json_int_t)a->port_value);
}

static json_t *j_matcher(const struct dp_string_matcher *m)
{
    static const char *const kinds[] = {"exact", "prefix", "suffix"};
    return json_pack("{s:s}", kinds[m->kind], m->value ? m->value : "");
}

static json_t *j_sds(const char *name)
{
    return json_pack("{s:s,s:{s:{},s:s}}", "name", name, "sdsConfig", "ads", "resourceApiVersion",
                     "V3");
}

static json_t *j_common_tls(const struct dp_common_tls_context *t)
{
    json_t *o = json_object();
    if (t->tls_certificate_sds_secret)
        json_object_set_new(o, "tlsCertificateSdsSecretConfigs",
                            json_pack("[o]", j_sds(t->tls_certificate_sds_secret)));
    if (t->validation_context_sds_secret || t->n_match_subject_alt_names) {
        json_t *sans = json_array();
        for (size_t i = 0; i < t->n_match_subject_alt_names; i++)
            json_array_append_new(sans, json_pack("{s:s,s:o}", "sanType", "URI", "matcher",
                                                  j_matcher(&t->match_subject_alt_names[i])));
        json_t *cvc =
            json_pack("{s:{s:o}}", "defaultValidationContext", "matchTypedSubjectAltNames", sans);
        if (t->validation_context_sds_secret)
            json_object_set_new(cvc, "validationContextSdsSecretConfig",
                                j_sds(t->validation_context_sds_secret));
        json_object_set_new(o, "combinedValidationContext", cvc);
    }
    if (t->n_alpn_protocols) {
        json_t *a = json_array();
        for (size_t i = 0; i < t->n_alpn_protocols; i++)
            json_array_append_new(a, json_string(t->alpn_protocols[i]));
        json_object_set_new(o, "alpnProtocols", a);
    }
    return o;
}

static const char *dir_name(enum dp_traffic_direction d)
{
    return d == DP_DIR_INBOUND ? "INBOUND" : d == DP_DIR_OUTBOUND ? "OUTBOUND" : "UNSPECIFIED";
}

/* Envoy's JSON of a Principal. */
static json_t *j_principal(const struct dp_rbac_principal *pr)
{
    if (pr->set == DP_RBAC_LEAF)
        return pr->any ? json_pack("{s:b}", "any", 1)
                       : json_pack("{s:{s:o}}", "authenticated", "principalName",
                                   j_matcher(&pr->principal_name));
    if (pr->set == DP_RBAC_NOT)
        return json_pack("{s:o}", "notId", pr->n_ids ? j_principal(&pr->ids[0]) : json_object());
    json_t *ids = json_array();
    for (size_t i = 0; i < pr->n_ids; i++)
        json_array_append_new(ids, j_principal(&pr->ids[i]));
    return json_pack("{s:{s:o}}", pr->set == DP_RBAC_AND ? "andIds" : "orIds", "ids", ids);
}

static json_t *j_rbac(const struct dp_rbac *r, const char *type)
{
    json_t *policies = json_object();
    for (size_t i = 0; i < r->n_policies; i++) {
        const struct dp_rbac_policy *p = &r->policies[i];
        json_t *prs = json_array();
        for (size_t j = 0; j < p->n_principals; j++)
            json_array_append_new(prs, j_principal(&p->principals[j]));
        json_object_set_new(
            policies, p->name,
            json_pack("{s:[{s:b}],s:o}", "permissions", "any", 1, "principals", prs));
    }
    return json_pack("{s:s,s:s,s:{s:s,s:o}}", "@type", type, "statPrefix",
                     r->stat_prefix ? r->stat_prefix : "", "rules", "action",
                     r->action == DP_RBAC_ALLOW ? "ALLOW" : "DENY", "policies", policies);
}

static json_t *j_http_matcher(enum dp_http_match_kind k, const char *v, int ignore_case)
{
    static const char *const kinds[] = {"exact", "prefix", "suffix", "contains"};
    if (k == DP_HTTP_MATCH_REGEX)
        return json_pack("{s:{s:s}}", "safeRegex", "regex", v ? v : "");
    json_t *j = json_pack("{s:s}", kinds[k <= DP_HTTP_MATCH_CONTAINS ? k : 0], v ? v : "");
    if (ignore_case)
        json_object_set_new(j, "ignoreCase", json_true());
    return j;
}

static json_t *j_route(const struct dp_http_route *r)
{
    static const char *const pk[] = {"prefix", "path", "safeRegex"};
    json_t *match = json_object();
    if (r->match.path_kind == DP_HTTP_PATH_REGEX)
        json_object_set_new(match, pk[2], json_pack("{s:s}", "regex", r->match.path));
    else
        json_object_set_new(match, pk[r->match.path_kind], json_string(r->match.path));
    if (r->match.n_headers) {
        json_t *hs = json_array();
        for (size_t i = 0; i < r->match.n_headers; i++) {
            const struct dp_http_header_matcher *h = &r->match.headers[i];
            json_t *hj = json_pack("{s:s}", "name", h->name);
            if (h->kind == DP_HTTP_MATCH_PRESENT)
                json_object_set_new(hj, "presentMatch", json_true());
            else
                json_object_set_new(hj, "stringMatch",
                                    j_http_matcher(h->kind, h->value, h->ignore_case));
            if (h->invert)
                json_object_set_new(hj, "invertMatch", json_true());
            json_array_append_new(hs, hj);
        }
        json_object_set_new(match, "headers", hs);
    }
    if (r->match.n_query) {
        json_t *qs = json_array();
        for (size_t i = 0; i < r->match.n_query; i++) {
            const struct dp_http_header_matcher *q = &r->match.query[i];
            json_t *qj = json_pack("{s:s}", "name", q->name);
            if (q->kind == DP_HTTP_MATCH_PRESENT)
                json_object_set_new(qj, "presentMatch", json_true());
            else
                json_object_set_new(qj, "stringMatch",
                                    j_http_matcher(q->kind, q->value, q->ignore_case));
            json_array_append_new(qs, qj);
        }
        json_object_set_new(match, "queryParameters", qs);
    }
    json_t *action = r->weighted.n
                         ? json_pack("{s:o}", "weightedClusters", j_weighted(&r->weighted))
                         : json_pack("{s:s}", "cluster", r->cluster ? r->cluster : "");
    if (r->timeout_ms)
        json_object_set_new(action, "timeout",
                            r->timeout_ms == UINT32_MAX
                                ? json_string("0s")
                                : json_sprintf("%.3fs", r->timeout_ms / 1000.0));
    if (r->retry_on)
        json_object_set_new(action, "retryPolicy",
                            json_pack("{s:s,s:i}", "retryOn", r->retry_on, "numRetries",
                                      (json_int_t)r->num_retries));
    json_t *j = json_pack("{s:o,s:o}", "match", match, "route", action);
    if (r->name && *r->name)
        json_object_set_new(j, "name", json_string(r->name));
    return j;
}

static json_t *j_hcm(const struct dp_http_conn_manager *m)
{
    const struct dp_http_route_config *rc = &m->route_config;
    json_t *vhs = json_array();
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        const struct dp_http_vhost *vh = &rc->vhosts[i];
        json_t *doms = json_array(), *routes = json_array();
        for (size_t j = 0; j < vh->n_domains; j++)
            json_array_append_new(doms, json_string(vh->domains[j]));
        for (size_t j = 0; j < vh->n_routes; j++)
            json_array_append_new(routes, j_route(&vh->routes[j]));
        json_array_append_new(vhs, json_pack("{s:s,s:o,s:o}", "name", vh->name ? vh->name : "",
                                             "domains", doms, "routes", routes));
    }
    json_t *rcj = json_pack("{s:s,s:o}", "name", rc->name ? rc->name : "", "virtualHosts", vhs);
    if (rc->n_request_headers_to_remove) {
        json_t *rm = json_array();
        for (size_t i = 0; i < rc->n_request_headers_to_remove; i++)
            json_array_append_new(rm, json_string(rc->request_headers_to_remove[i]));
        json_object_set_new(rcj, "requestHeadersToRemove", rm);
    }
    json_t *hfs = json_array();
    if (m->rbac)
        json_array_append_new(
            hfs, json_pack("{s:s,s:o}", "name", "envoy.filters.http.rbac", "typedConfig",
                           j_rbac(m->rbac, "type.googleapis.com/"
                                           "envoy.extensions.filters.http.rbac.v3.RBAC")));
    json_array_append_new(hfs, json_pack("{s:s}", "name", "envoy.filters.http.router"));
    json_t *tc = json_pack(
        "{s:s,s:s,s:o,s:o}", "@type",
        "type.googleapis.com/"
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "statPrefix", m->stat_prefix ? m->stat_prefix : "", "routeConfig", rcj, "httpFilters", hfs);
    if (m->idle_timeout_ms)
        json_object_set_new(
            tc, "commonHttpProtocolOptions",
            json_pack("{s:o}", "idleTimeout", json_sprintf("%.3fs", m->idle_timeout_ms / 1000.0)));
    if (m->stream_idle_timeout_ms)
        json_object_set_new(tc, "streamIdleTimeout",
                            json_sprintf("%.3fs", m->stream_idle_timeout_ms / 1000.0));
    return json_pack("{s:s,s:o}", "name", "envoy.filters.network.http_connection_manager",
                     "typedConfig", tc);
}

static json_t *j_listener(const struct dp_listener *l)
{
    json_t *filters = json_array();
    if (l->rbac)
        json_array_append_new(
            filters, json_pack("{s:s,s:o}", "name", "envoy.filters.network.rbac", "typedConfig",
                               j_rbac(l->rbac, "type.googleapis.com/"
                                               "envoy.extensions.filters.network.rbac.v3.RBAC")));
    if (l->hcm) {
        json_array_append_new(filters, j_hcm(l->hcm));
    } else {
        json_t *tp =
            json_pack("{s:s,s:s,s:s}", "@type",
                      "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                      "statPrefix", l->tcp_proxy.stat_prefix ? l->tcp_proxy.stat_prefix : "",
                      "cluster", l->tcp_proxy.cluster ? l->tcp_proxy.cluster : "");
        if (l->tcp_proxy.weighted.n) {
            json_object_del(tp, "cluster");
            json_object_set_new(tp, "weightedClusters", j_weighted(&l->tcp_proxy.weighted));
        }
        if (l->tcp_proxy.max_connect_attempts)
            json_object_set_new(tp, "maxConnectAttempts",
                                json_integer(l->tcp_proxy.max_connect_attempts));
        if (l->tcp_proxy.idle_timeout_ms)
            json_object_set_new(tp, "idleTimeout",
                                json_sprintf("%.3fs", l->tcp_proxy.idle_timeout_ms / 1000.0));
        json_array_append_new(
            filters,
            json_pack("{s:s,s:o}", "name", "envoy.filters.network.tcp_proxy", "typedConfig", tp));
    }
    json_t *chain = json_pack("{s:o}", "filters", filters);
    if (l->tls) {
        json_t *dtc = json_pack(
            "{s:s,s:o,s:b}", "@type",
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "commonTlsContext", j_common_tls(&l->tls->common_tls_context),
            "requireClientCertificate", l->tls->require_client_certificate);
        json_object_set_new(
            chain, "transportSocket",
            json_pack("{s:s,s:o}", "name", "envoy.transport_sockets.tls", "typedConfig", dtc));
    }
    json_t *o = json_pack("{s:s,s:s,s:o,s:[o],s:s}", "@type",
                          "type.googleapis.com/envoy.config.listener.v3.Listener", "name", l->name,
                          "address", j_addr(&l->address), "filterChains", chain, "trafficDirection",
                          dir_name(l->traffic_direction));
    if (l->inspect) {
        /* PERMISSIVE: the mTLS chain matches tls + ALPN kuma; the others
         * come first, as Kuma orders them. */
        json_object_set_new(
            chain, "filterChainMatch",
            json_pack("{s:s,s:[s]}", "transportProtocol", "tls", "applicationProtocols", "kuma"));
        json_t *chains = json_object_get(o, "filterChains");
        const struct dp_tcp_proxy *alt[2] = {l->raw_tcp_proxy, l->tls_tcp_proxy};
        static const char *const proto[2] = {"raw_buffer", "tls"};
        for (int k = 1; k >= 0; k--) {
            if (k == 0 && l->raw_http && l->hcm) {
                json_array_insert_new(chains, 0,
                                      json_pack("{s:{s:s},s:[o]}", "filterChainMatch",
                                                "transportProtocol", "raw_buffer", "filters",
                                                j_hcm(l->hcm)));
                continue;
            }
            if (!alt[k])
                continue;
            json_t *f = json_pack(
                "{s:s,s:{s:s,s:s,s:s}}", "name", "envoy.filters.network.tcp_proxy", "typedConfig",
                "@type",
                "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "statPrefix", alt[k]->stat_prefix ? alt[k]->stat_prefix : "", "cluster",
                alt[k]->cluster ? alt[k]->cluster : "");
            json_array_insert_new(chains, 0,
                                  json_pack("{s:{s:s},s:[o]}", "filterChainMatch",
                                            "transportProtocol", proto[k], "filters", f));
        }
        json_object_set_new(o, "listenerFilters",
                            json_pack("[{s:s}]", "name", "envoy.filters.listener.tls_inspector"));
    }
    if (l->no_bind)
        json_object_set_new(o, "bindToPort", json_false());
    if (l->use_original_dst)
        json_object_set_new(o, "useOriginalDst", json_true());
    return o;
}

static json_t *j_cla(const struct dp_cluster_load_assignment *a)
{
    json_t *lbs = json_array();
    for (size_t i = 0; i < a->n_endpoints; i++)
        json_array_append_new(lbs,
                              json_pack("{s:{s:o},s:I}", "endpoint", "address",
                                        j_addr(&a->endpoints[i].address), "loadBalancingWeight",
                                        (json_int_t)(a->endpoints[i].load_balancing_weight
                                                         ? a->endpoints[i].load_balancing_weight
                                                         : 1)));
    return json_pack("{s:s,s:s,s:[{s:o}]}", "@type",
                     "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                     "clusterName", a->cluster_name ? a->cluster_name : "", "endpoints",
                     "lbEndpoints", lbs);
}

static json_t *j_cluster(const struct dp_cluster *c)
{
    static const char *const lb[] = {"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"};
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:s,s:s}", "@type", "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name", c->name, "altStatName", c->alt_stat_name ? c->alt_stat_name : c->name, "type",
        c->type == DP_CLUSTER_STATIC ? "STATIC"
        : c->type == DP_CLUSTER_EDS  ? "EDS"
                                     : "ORIGINAL_DST",
        "lbPolicy", c->type == DP_CLUSTER_ORIGINAL_DST ? "CLUSTER_PROVIDED" : lb[c->lb_policy]);
    json_object_set_new(
        o, "connectTimeout",
        json_sprintf("%.3fs", (c->connect_timeout_ms ? c->connect_timeout_ms : 5000) / 1000.0));
    if (c->upstream_bind_address)
        json_object_set_new(o, "upstreamBindConfig",
                            json_pack("{s:{s:s,s:i}}", "sourceAddress", "address",
                                      c->upstream_bind_address, "portValue", 0));
    if (c->type == DP_CLUSTER_STATIC)
        json_object_set_new(o, "loadAssignment", j_cla(&c->load_assignment));
    else if (c->type == DP_CLUSTER_EDS)
        json_object_set_new(
            o, "edsClusterConfig",
            json_pack("{s:{s:{},s:s}}", "edsConfig", "ads", "resourceApiVersion", "V3"));
    if (c->outlier_detection) {
        const struct dp_outlier_detection *od = c->outlier_detection;
        json_object_set_new(o, "outlierDetection",
                            json_pack("{s:I,s:I,s:I,s:b}", "consecutiveLocalOriginFailure",
                                      (json_int_t)od->consecutive_local_origin_failure,
                                      "maxEjectionPercent", (json_int_t)od->max_ejection_percent,
                                      "baseEjectionTimeMs", (json_int_t)od->base_ejection_time_ms,
                                      "splitExternalLocalOriginErrors", 1));
    }
    if (c->tls) {
        json_t *utc = json_pack(
            "{s:s,s:o}", "@type",
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "commonTlsContext", j_common_tls(&c->tls->common_tls_context));
        if (c->tls->sni)
            json_object_set_new(utc, "sni", json_string(c->tls->sni));
        if (c->tls->max_session_keys.set)
            json_object_set_new(utc, "maxSessionKeys",
                                json_integer(c->tls->max_session_keys.value));
        json_object_set_new(
            o, "transportSocket",
            json_pack("{s:s,s:o}", "name", "envoy.transport_sockets.tls", "typedConfig", utc));
    }
    return o;
}

static json_t *j_secret(const struct dp_secret *s)
{
    json_t *o = json_pack("{s:s,s:s}", "@type",
                          "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                          "name", s->name);
    if (s->certificate_chain)
        json_object_set_new(o, "tlsCertificate",
                            json_pack("{s:{s:s},s:{s:s}}", "certificateChain", "inlineBytes",
                                      s->certificate_chain, "privateKey", "inlineBytes",
                                      "[redacted]"));
    if (s->trusted_ca)
        json_object_set_new(o, "validationContext",
                            json_pack("{s:{s:s}}", "trustedCa", "inlineBytes", s->trusted_ca));
    return o;
}

char *dp_config_dump_json(const struct dp_config *c)
{
    const char *v = c->version_info ? c->version_info : "";
    json_t *ls = json_array(), *cs = json_array(), *es = json_array(), *ss = json_array();
    for (size_t i = 0; i < c->n_listeners; i++)
        json_array_append_new(ls, json_pack("{s:s,s:{s:s,s:o}}", "name", c->listeners[i].name,
                                            "activeState", "versionInfo", v, "listener",
                                            j_listener(&c->listeners[i])));
    for (size_t i = 0; i < c->n_clusters; i++)
        if (!c->clusters[i].synthetic)
            json_array_append_new(cs, json_pack("{s:s,s:o}", "versionInfo", v, "cluster",
                                                j_cluster(&c->clusters[i])));
    for (size_t i = 0; i < c->n_endpoints; i++)
        json_array_append_new(es, json_pack("{s:s,s:o}", "versionInfo", v, "endpointConfig",
                                            j_cla(&c->endpoints[i])));
    for (size_t i = 0; i < c->n_secrets; i++)
        json_array_append_new(ss, json_pack("{s:s,s:s,s:o}", "name", c->secrets[i].name,
                                            "versionInfo", v, "secret", j_secret(&c->secrets[i])));
    json_t *root = json_pack(
        "{s:[{s:s,s:s,s:o},{s:s,s:s,s:o},{s:s,s:o},{s:s,s:o}]}", "configs", "@type",
        "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "versionInfo", v,
        "dynamicListeners", ls, "@type", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
        "versionInfo", v, "dynamicActiveClusters", cs, "@type",
        "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamicEndpointConfigs", es,
        "@type", "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", "dynamicActiveSecrets",
        ss);
    char *out = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out ? out : xstrdup("{}");
}

char *dp_listener_fingerprint(const struct dp_listener *l)
{
    json_t *j = j_listener(l);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s ? s : xstrdup("");
}
