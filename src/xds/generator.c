/*
 * generator — see generator.h. Resource shapes follow Kuma's generators
 * (pkg/xds/generator/{inbound_proxy,outbound_proxy,transparent_proxy}_generator.go)
 * for a mesh without mTLS: TCP proxying on every listener.
 */
#include "xds/generator.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/types.h"
#include "core/util.h"
#include "xds/admin.h"
#include "xds/crossmesh.h"
#include "xds/http_rbac.h"
#include "xds/names.h"
#include "xds/pb.h"
#include "xds/permissive.h"
#include "xds/policies.h"
#include "xds/routes.h"

static const char *const type_urls[XDS_TYPE_N] = {XDS_URL_CLUSTER, XDS_URL_ENDPOINT,
                                                  XDS_URL_LISTENER, XDS_URL_ROUTE, XDS_URL_SECRET};
static const char *const type_short[XDS_TYPE_N] = {"CDS", "EDS", "LDS", "RDS", "SDS"};

const char *xds_type_url(enum xds_type t)
{
    return type_urls[t];
}

const char *xds_type_short(enum xds_type t)
{
    return type_short[t];
}

int xds_type_from_url(const char *url)
{
    for (int t = 0; t < XDS_TYPE_N; t++)
        if (url && strcmp(url, type_urls[t]) == 0)
            return t;
    return -1;
}

/* A unit: the resources one step produces for one outbound (its listener;
 * its clusters and endpoint assignments), which are the same for every proxy
 * of the snapshot with the same policy context (unit_key). Built by the
 * first proxy that needs it, then borrowed by the others. */
struct unit_res {
    enum xds_type t;
    char *name;
    uint8_t *data;
    size_t len;
    uint64_t hash;
    int owned; /* else borrowed from the snapshot (an endpoint assignment) */
};

struct xds_unit {
    struct xds_unit *next;
    struct unit_res *v;
    size_t n, cap;
};

void xds_units_free(struct xds_unit *u)
{
    while (u) {
        struct xds_unit *next = u->next;
        for (size_t i = 0; i < u->n; i++) {
            free(u->v[i].name);
            if (u->v[i].owned)
                free(u->v[i].data);
        }
        free(u->v);
        free(u);
        u = next;
    }
}

struct gen {
    struct xds_mesh_snapshot *snap;
    const struct xds_dataplane *dp;
    const struct xds_gen_opts *o;
    struct xds_proxy_config *cfg;
    struct xds_unit *rec; /* the unit being recorded, or NULL */
    uint32_t seq;
};

static void set_push(struct gen *g, enum xds_type t, char *name, uint8_t *data, size_t len,
                     int borrowed, uint64_t hash)
{
    struct xds_resource_set *set = &g->cfg->sets[t];
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 8;
        set->v = xrealloc(set->v, set->cap * sizeof(*set->v));
    }
    set->v[set->n++] = (struct xds_resource){name, data, len, borrowed, g->seq++, hash};
}

/* Adds a resource: owned data (freed with the config) or borrowed from the
 * snapshot. While a unit is being recorded, owned data moves into the unit
 * and the config borrows it. */
static void add_owned(struct gen *g, enum xds_type t, const char *name, uint8_t *data, size_t len,
                      int borrowed)
{
    uint64_t h = xds_hash_fast(XDS_HASH_INIT, data, len);
    if (g->rec) {
        struct xds_unit *u = g->rec;
        if (u->n == u->cap) {
            u->cap = u->cap ? u->cap * 2 : 4;
            u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
        }
        u->v[u->n++] = (struct unit_res){t, xstrdup(name), data, len, h, !borrowed};
        set_push(g, t, u->v[u->n - 1].name, data, len, 1, h);
        return;
    }
    set_push(g, t, borrowed ? (char *)name : xstrdup(name), data, len, borrowed, h);
}

static void add_msg(struct gen *g, enum xds_type t, const char *name, const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *data = pb_pack(m, &len);
    add_owned(g, t, name, data, len, 0);
}

/* The policy context of the proxy: everything besides the outbound itself
 * that an outbound's resources depend on (tag set, gateway kind,
 * transparent proxying, proxyless, and the name when some policy targets a
 * Dataplane by name). */
static char *unit_key(struct gen *g, const char *kind, const char *a, const char *b, uint32_t port)
{
    return xasprintf("%s|%016llx|%d|%s|%s|%s|%u", kind, (unsigned long long)g->dp->tagset_hash,
                     g->o->proxyless, g->snap->dataplane_refs ? g->dp->name : "", a, b, port);
}

/* Returns 1 (resources added) when the unit exists, else starts recording. */
static int unit_begin(struct gen *g, const char *key)
{
    pthread_mutex_lock(&g->snap->unit_mu);
    struct xds_unit *u = hmap_get(&g->snap->units, key);
    pthread_mutex_unlock(&g->snap->unit_mu);
    if (u) {
        for (size_t i = 0; i < u->n; i++)
            set_push(g, u->v[i].t, u->v[i].name, u->v[i].data, u->v[i].len, 1, u->v[i].hash);
        return 1;
    }
    g->rec = xcalloc(1, sizeof(*g->rec));
    return 0;
}

static void unit_end(struct gen *g, const char *key)
{
    struct xds_unit *u = g->rec;
    g->rec = NULL;
    pthread_mutex_lock(&g->snap->unit_mu);
    if (!hmap_get(&g->snap->units, key)) /* another thread may have been first */
        hmap_put(&g->snap->units, key, u);
    u->next = g->snap->unit_list;
    g->snap->unit_list = u;
    pthread_mutex_unlock(&g->snap->unit_mu);
}

static int transparent(const struct xds_dataplane *dp)
{
    return dp->redirect_port_outbound != 0;
}

/* A listener with one filter chain holding one TCP proxy. */
static Envoy__Config__Listener__V3__Listener *
tcp_listener(struct pb_arena *a, const char *name, const char *ip, uint32_t port,
             Envoy__Config__Core__V3__TrafficDirection dir, const char *stat_prefix,
             const char *cluster)
{
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *proxy =
        PB_NEW(a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
               ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__INIT);
    proxy->stat_prefix = pb_strdup(a, stat_prefix);
    proxy->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
    proxy->cluster = pb_strdup(a, cluster);

    Envoy__Config__Listener__V3__FilterChain *fc = pb_filter_chain(
        a, pb_filter(a, "envoy.filters.network.tcp_proxy", XDS_URL_TCP_PROXY, &proxy->base));

    Envoy__Config__Listener__V3__Listener *l = PB_NEW(a, Envoy__Config__Listener__V3__Listener,
                                                      ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT);
    l->name = pb_strdup(a, name);
    l->address = pb_address(a, ip, port);
    l->traffic_direction = dir;
    l->n_filter_chains = 1;
    l->filter_chains = pb_alloc(a, sizeof(*l->filter_chains));
    l->filter_chains[0] = fc;
    return l;
}

/* The TCP proxy inside a listener's only filter chain (to adjust it). */
static Envoy__Config__Listener__V3__FilterChain *
only_chain(Envoy__Config__Listener__V3__Listener *l)
{
    return l->filter_chains[0];
}

/* Re-packs the chain's last filter (the TCP proxy) after changes. */
static void repack_tcp(struct pb_arena *a, Envoy__Config__Listener__V3__FilterChain *fc,
                       Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp)
{
    fc->filters[fc->n_filters - 1]->typed_config = pb_any(a, XDS_URL_TCP_PROXY, &tp->base);
}

static Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *
decode_tcp(struct pb_arena *a, Envoy__Config__Listener__V3__FilterChain *fc)
{
    Google__Protobuf__Any *any = fc->filters[fc->n_filters - 1]->typed_config;
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
        envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__unpack(NULL, any->value.len,
                                                                              any->value.data);
    /* Copy into the arena so everything is freed together. */
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *out =
        PB_NEW(a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
               ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__INIT);
    out->stat_prefix = pb_strdup(a, tp->stat_prefix);
    if (tp->cluster_specifier_case ==
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER) {
        out->cluster_specifier_case = tp->cluster_specifier_case;
        out->cluster = pb_strdup(a, tp->cluster);
    }
    envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__free_unpacked(tp, NULL);
    return out;
}

/* Points the TCP proxy at rt's splits as weighted clusters, each split's
 * tags as its envoy.lb metadata match (the outbound and the gateway TCP
 * listeners share this shape). */
static void tcp_weighted_clusters(struct pb_arena *a,
                                  Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp,
                                  const struct xds_route *rt)
{
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc = PB_NEW(
        a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__WEIGHTED_CLUSTER__INIT);
    wc->n_clusters = rt->n;
    wc->clusters = pb_alloc(a, rt->n * sizeof(*wc->clusters));
    for (size_t k = 0; k < rt->n; k++) {
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight
            *cw = PB_NEW(
                a,
                Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight,
                ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__WEIGHTED_CLUSTER__CLUSTER_WEIGHT__INIT);
        cw->name = pb_strdup(a, rt->splits[k].cluster);
        cw->weight = rt->splits[k].weight;
        if (rt->splits[k].ntags)
            cw->metadata_match =
                pb_metadata_tags(a, "envoy.lb", rt->splits[k].tags, rt->splits[k].ntags);
        wc->clusters[k] = cw;
    }
    tp->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
    tp->weighted_clusters = wc;
}

/* Inserts a filter in front of the chain's filters. */
static void prepend_filter(struct pb_arena *a, Envoy__Config__Listener__V3__FilterChain *fc,
                           const char *name, const char *url, const ProtobufCMessage *m)
{
    Envoy__Config__Listener__V3__Filter **v = pb_alloc(a, (fc->n_filters + 1) * sizeof(*v));
    v[0] = pb_filter(a, name, url, m);
    memcpy(v + 1, fc->filters, fc->n_filters * sizeof(*v));
    fc->filters = v;
    fc->n_filters++;
}

/* Kuma's CommonTlsContext: the proxy's identity and the mesh CA, both by SDS
 * over ADS, and a SAN matcher on the peer. */
static Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *
common_tls(struct pb_arena *a, const char *mesh, Envoy__Type__Matcher__V3__StringMatcher *san)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *c =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT);
    char *id = xasprintf("identity_cert:secret:%s", mesh);
    char *ca = xasprintf("mesh_ca:secret:%s", mesh);
    c->n_tls_certificate_sds_secret_configs = 1;
    c->tls_certificate_sds_secret_configs = pb_alloc(a, sizeof(void *));
    c->tls_certificate_sds_secret_configs[0] = pb_sds(a, id);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
        *cv = PB_NEW(
            a,
            Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__COMBINED_CERTIFICATE_VALIDATION_CONTEXT__INIT);
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *dv =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT);
    Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__INIT);
    m->san_type =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI;
    m->matcher = san;
    dv->n_match_typed_subject_alt_names = 1;
    dv->match_typed_subject_alt_names = pb_alloc(a, sizeof(void *));
    dv->match_typed_subject_alt_names[0] = m;
    cv->default_validation_context = dv;
    cv->validation_context_sds_secret_config = pb_sds(a, ca);
    c->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    c->combined_validation_context = cv;
    free(id);
    free(ca);
    return c;
}

/* Inbound side of mTLS: client certificates required, signed by the mesh CA,
 * with a SAN under spiffe://<mesh>/. */
static Envoy__Config__Core__V3__TransportSocket *downstream_tls(struct pb_arena *a,
                                                                const char *mesh)
{
    char *prefix = xasprintf("spiffe://%s/", mesh);
    Envoy__Config__Core__V3__TransportSocket *ts =
        pb_downstream_tls_socket(a, common_tls(a, mesh, pb_prefix(a, prefix)), 1);
    free(prefix);
    return ts;
}

/* Outbound side: this mesh's identity; the upstream must be
 * spiffe://<peer>/<service>, signed by the peer mesh's CA; ALPN kuma; Kuma's
 * SNI. The peer is the proxy's own mesh except for a cross-mesh outbound. */
static Envoy__Config__Core__V3__TransportSocket *
upstream_tls(struct pb_arena *a, const char *mesh, const char *peer, const struct xds_split *sp)
{
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT);
    char *san = xasprintf("spiffe://%s/%s", peer, sp->service);
    u->common_tls_context = common_tls(a, mesh, pb_exact(a, san));
    if (strcmp(peer, mesh) != 0) {
        char *ca = xasprintf("mesh_ca:secret:%s", peer);
        u->common_tls_context->combined_validation_context->validation_context_sds_secret_config =
            pb_sds(a, ca);
        free(ca);
    }
    u->common_tls_context->n_alpn_protocols = 1;
    u->common_tls_context->alpn_protocols = pb_alloc(a, sizeof(char *));
    u->common_tls_context->alpn_protocols[0] = pb_strdup(a, "kuma");
    char *sni = xds_sni(peer, sp->service, sp->tags, sp->ntags);
    u->sni = pb_strdup(a, sni);
    free(sni);
    free(san);
    return pb_tls_socket(a, XDS_URL_UPSTREAM_TLS, &u->base);
}

static Google__Protobuf__Duration *pb_ms(struct pb_arena *a, int64_t ms)
{
    return pb_duration(a, ms / 1000, (int32_t)((ms % 1000) * 1000000));
}

/* Applies connection settings to a cluster. */
static void apply_cluster_policy(struct pb_arena *a, Envoy__Config__Cluster__V3__Cluster *c,
                                 const struct xds_conn_policy *cp)
{
    if (cp->connect_timeout_ms != XDS_UNSET)
        c->connect_timeout = pb_ms(a, cp->connect_timeout_ms);
    if (cp->max_connections != XDS_UNSET || cp->max_pending_requests != XDS_UNSET ||
        cp->max_requests != XDS_UNSET || cp->max_retries != XDS_UNSET) {
        Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t =
            PB_NEW(a, Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds,
                   ENVOY__CONFIG__CLUSTER__V3__CIRCUIT_BREAKERS__THRESHOLDS__INIT);
        if (cp->max_connections != XDS_UNSET)
            t->max_connections = pb_u32(a, (uint32_t)cp->max_connections);
        if (cp->max_pending_requests != XDS_UNSET)
            t->max_pending_requests = pb_u32(a, (uint32_t)cp->max_pending_requests);
        if (cp->max_requests != XDS_UNSET)
            t->max_requests = pb_u32(a, (uint32_t)cp->max_requests);
        if (cp->max_retries != XDS_UNSET)
            t->max_retries = pb_u32(a, (uint32_t)cp->max_retries);
        c->circuit_breakers = PB_NEW(a, Envoy__Config__Cluster__V3__CircuitBreakers,
                                     ENVOY__CONFIG__CLUSTER__V3__CIRCUIT_BREAKERS__INIT);
        c->circuit_breakers->n_thresholds = 1;
        c->circuit_breakers->thresholds = pb_alloc(a, sizeof(void *));
        c->circuit_breakers->thresholds[0] = t;
    }
    if (cp->outlier) {
        Envoy__Config__Cluster__V3__OutlierDetection *o =
            PB_NEW(a, Envoy__Config__Cluster__V3__OutlierDetection,
                   ENVOY__CONFIG__CLUSTER__V3__OUTLIER_DETECTION__INIT);
        if (cp->outlier_consecutive_5xx != XDS_UNSET)
            o->consecutive_5xx = pb_u32(a, (uint32_t)cp->outlier_consecutive_5xx);
        if (cp->outlier_interval_ms > 0)
            o->interval = pb_ms(a, cp->outlier_interval_ms);
        if (cp->outlier_base_ejection_ms > 0)
            o->base_ejection_time = pb_ms(a, cp->outlier_base_ejection_ms);
        if (cp->outlier_max_ejection_percent != XDS_UNSET)
            o->max_ejection_percent = pb_u32(a, (uint32_t)cp->outlier_max_ejection_percent);
        c->outlier_detection = o;
    }
    if (cp->health_check) {
        Envoy__Config__Core__V3__HealthCheck *h = PB_NEW(
            a, Envoy__Config__Core__V3__HealthCheck, ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__INIT);
        h->timeout = pb_ms(a, cp->hc_timeout_ms);
        h->interval = pb_ms(a, cp->hc_interval_ms);
        h->unhealthy_threshold = pb_u32(a, (uint32_t)cp->hc_unhealthy);
        h->healthy_threshold = pb_u32(a, (uint32_t)cp->hc_healthy);
        h->health_checker_case =
            ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK;
        h->tcp_health_check = PB_NEW(a, Envoy__Config__Core__V3__HealthCheck__TcpHealthCheck,
                                     ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__TCP_HEALTH_CHECK__INIT);
        c->n_health_checks = 1;
        c->health_checks = pb_alloc(a, sizeof(void *));
        c->health_checks[0] = h;
    }
}

static void apply_tcp_policy(struct pb_arena *a,
                             Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp,
                             const struct xds_conn_policy *cp)
{
    if (cp->idle_timeout_ms != XDS_UNSET)
        tp->idle_timeout = pb_ms(a, cp->idle_timeout_ms);
    if (cp->max_connect_attempts > 0)
        tp->max_connect_attempts = pb_u32(a, (uint32_t)cp->max_connect_attempts);
}

/* ---- HTTP (listeners of services tagged kuma.io/protocol http, http2, grpc) ---- */

/* A StringMatcher from a legacy match value {exact|prefix|regex: s}. */
static Envoy__Type__Matcher__V3__StringMatcher *string_match(struct pb_arena *a, const json_t *m)
{
    const char *v;
    if ((v = json_string_value(json_object_get(m, "exact"))))
        return pb_exact(a, v);
    if ((v = json_string_value(json_object_get(m, "prefix"))))
        return pb_prefix(a, v);
    if ((v = json_string_value(json_object_get(m, "regex")))) {
        Envoy__Type__Matcher__V3__StringMatcher *sm =
            PB_NEW(a, Envoy__Type__Matcher__V3__StringMatcher,
                   ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT);
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
        sm->safe_regex = PB_NEW(a, Envoy__Type__Matcher__V3__RegexMatcher,
                                ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__INIT);
        sm->safe_regex->regex = pb_strdup(a, v);
        return sm;
    }
    return NULL;
}

static Envoy__Config__Route__V3__HeaderMatcher *
header_match(struct pb_arena *a, const char *name, Envoy__Type__Matcher__V3__StringMatcher *sm)
{
    Envoy__Config__Route__V3__HeaderMatcher *h = PB_NEW(
        a, Envoy__Config__Route__V3__HeaderMatcher, ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__INIT);
    h->name = pb_strdup(a, name);
    h->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    h->string_match = sm;
    return h;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A RouteMatch from a TrafficRoute `http[].match` (NULL = prefix "/"):
 * path {prefix|exact|regex}, method {…} as the :method header, headers
 * {name: {…}} (names sorted). */
static Envoy__Config__Route__V3__RouteMatch *route_match(struct pb_arena *a, const json_t *m)
{
    Envoy__Config__Route__V3__RouteMatch *rm = PB_NEW(a, Envoy__Config__Route__V3__RouteMatch,
                                                      ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT);
    const json_t *path = json_object_get(m, "path");
    const char *v;
    if ((v = json_string_value(json_object_get(path, "exact")))) {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
        rm->path = pb_strdup(a, v);
    } else if ((v = json_string_value(json_object_get(path, "regex")))) {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
        rm->safe_regex = PB_NEW(a, Envoy__Type__Matcher__V3__RegexMatcher,
                                ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__INIT);
        rm->safe_regex->regex = pb_strdup(a, v);
    } else {
        v = json_string_value(json_object_get(path, "prefix"));
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        rm->prefix = pb_strdup(a, v ? v : "/");
    }
    const json_t *hdrs = json_object_get(m, "headers");
    size_t nh = json_object_size(hdrs) + 1;
    rm->headers = pb_alloc(a, nh * sizeof(*rm->headers));
    Envoy__Type__Matcher__V3__StringMatcher *sm = string_match(a, json_object_get(m, "method"));
    if (sm)
        rm->headers[rm->n_headers++] = header_match(a, ":method", sm);
    if (json_object_size(hdrs)) {
        const char **keys = xcalloc(json_object_size(hdrs), sizeof(*keys));
        size_t nk = 0;
        const char *k;
        json_t *hv;
        json_object_foreach((json_t *)hdrs, k, hv) keys[nk++] = k;
        qsort(keys, nk, sizeof(*keys), cmp_cstr);
        for (size_t i = 0; i < nk; i++) {
            sm = string_match(a, json_object_get(hdrs, keys[i]));
            if (sm)
                rm->headers[rm->n_headers++] = header_match(a, keys[i], sm);
        }
        free(keys);
    }
    return rm;
}

/* A RouteAction to the splits, with the policies' HTTP settings. */
static Envoy__Config__Route__V3__RouteAction *route_action(struct pb_arena *a,
                                                           const struct xds_split *sp, size_t n,
                                                           const struct xds_conn_policy *cp)
{
    Envoy__Config__Route__V3__RouteAction *ra = PB_NEW(
        a, Envoy__Config__Route__V3__RouteAction, ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT);
    if (n == 1 && sp[0].ntags == 0) {
        ra->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        ra->cluster = pb_strdup(a, sp[0].cluster);
    } else {
        ra->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        ra->weighted_clusters = xds_route_weighted_clusters(a, sp, n);
    }
    if (cp->request_timeout_ms != XDS_UNSET)
        ra->timeout = pb_ms(a, cp->request_timeout_ms);
    if (cp->retry) {
        Envoy__Config__Route__V3__RetryPolicy *rp = PB_NEW(
            a, Envoy__Config__Route__V3__RetryPolicy, ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__INIT);
        rp->retry_on = pb_strdup(a, cp->retry_on);
        if (cp->retry_num != XDS_UNSET)
            rp->num_retries = pb_u32(a, (uint32_t)cp->retry_num);
        if (cp->retry_per_try_ms != XDS_UNSET)
            rp->per_try_timeout = pb_ms(a, cp->retry_per_try_ms);
        if (cp->n_retry_codes) {
            rp->n_retriable_status_codes = cp->n_retry_codes;
            rp->retriable_status_codes = pb_alloc(a, cp->n_retry_codes * sizeof(uint32_t));
            memcpy(rp->retriable_status_codes, cp->retry_codes,
                   cp->n_retry_codes * sizeof(uint32_t));
        }
        if (cp->retry_base_ms != XDS_UNSET) {
            rp->retry_back_off =
                PB_NEW(a, Envoy__Config__Route__V3__RetryPolicy__RetryBackOff,
                       ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RETRY_BACK_OFF__INIT);
            rp->retry_back_off->base_interval = pb_ms(a, cp->retry_base_ms);
            if (cp->retry_max_ms != XDS_UNSET)
                rp->retry_back_off->max_interval = pb_ms(a, cp->retry_max_ms);
        }
        ra->retry_policy = rp;
    }
    return ra;
}

/* Kuma's route configuration shape: {name, validateClusters: false,
 * virtualHosts: [{name: vhost, domains: ["*"], routes}]}. */
static Envoy__Config__Route__V3__RouteConfiguration *
route_config(struct pb_arena *a, const char *name, const char *vhost,
             Envoy__Config__Route__V3__Route **routes, size_t n)
{
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        pb_route_config(a, name, pb_virtual_host(a, vhost, routes, n));
    rc->validate_clusters = pb_bool(a, 0);
    return rc;
}

/* An HTTP connection manager with an inline route configuration and the
 * router filter; the policies' connection-level HTTP settings. */
static Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
hcm_new(struct pb_arena *a, const char *stat_prefix,
        Envoy__Config__Route__V3__RouteConfiguration *rc, const struct xds_conn_policy *cp)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm =
        pb_hcm(a, stat_prefix, rc);
    if (cp) {
        if (cp->stream_idle_timeout_ms != XDS_UNSET)
            hcm->stream_idle_timeout = pb_ms(a, cp->stream_idle_timeout_ms);
        if (cp->idle_timeout_ms != XDS_UNSET || cp->max_stream_duration_ms != XDS_UNSET) {
            hcm->common_http_protocol_options =
                PB_NEW(a, Envoy__Config__Core__V3__HttpProtocolOptions,
                       ENVOY__CONFIG__CORE__V3__HTTP_PROTOCOL_OPTIONS__INIT);
            if (cp->idle_timeout_ms != XDS_UNSET)
                hcm->common_http_protocol_options->idle_timeout = pb_ms(a, cp->idle_timeout_ms);
            if (cp->max_stream_duration_ms != XDS_UNSET)
                hcm->common_http_protocol_options->max_stream_duration =
                    pb_ms(a, cp->max_stream_duration_ms);
        }
    }
    return hcm;
}

/* Replaces the chain's filters by one HTTP connection manager. */
static void chain_set_hcm(
    struct pb_arena *a, Envoy__Config__Listener__V3__FilterChain *fc,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm)
{
    fc->n_filters = 1;
    fc->filters = pb_alloc(a, sizeof(*fc->filters));
    fc->filters[0] = pb_hcm_filter(a, hcm);
}

/* The cluster's upstream HTTP protocol (Kuma: HTTP/1.1 for http, HTTP/2 for
 * http2 and grpc) and connection idle timeout. */
static void cluster_http_options(struct pb_arena *a, Envoy__Config__Cluster__V3__Cluster *c,
                                 enum xds_protocol proto, const struct xds_conn_policy *cp)
{
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *o =
        PB_NEW(a, Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions,
               ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__INIT);
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig *e = PB_NEW(
        a, Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig,
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__INIT);
    if (proto == XDS_PROTO_HTTP) {
        e->protocol_config_case =
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP_PROTOCOL_OPTIONS;
        e->http_protocol_options = PB_NEW(a, Envoy__Config__Core__V3__Http1ProtocolOptions,
                                          ENVOY__CONFIG__CORE__V3__HTTP1_PROTOCOL_OPTIONS__INIT);
    } else {
        e->protocol_config_case =
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS;
        e->http2_protocol_options = PB_NEW(a, Envoy__Config__Core__V3__Http2ProtocolOptions,
                                           ENVOY__CONFIG__CORE__V3__HTTP2_PROTOCOL_OPTIONS__INIT);
    }
    o->upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG;
    o->explicit_http_config = e;
    if (cp && cp->idle_timeout_ms != XDS_UNSET) {
        o->common_http_protocol_options =
            PB_NEW(a, Envoy__Config__Core__V3__HttpProtocolOptions,
                   ENVOY__CONFIG__CORE__V3__HTTP_PROTOCOL_OPTIONS__INIT);
        o->common_http_protocol_options->idle_timeout = pb_ms(a, cp->idle_timeout_ms);
    }
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *en =
        PB_NEW(a, Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry,
               ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TYPED_EXTENSION_PROTOCOL_OPTIONS_ENTRY__INIT);
    en->key = pb_strdup(a, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    en->value = pb_any(a, XDS_URL_HTTP_PROTOCOL_OPTIONS, &o->base);
    c->n_typed_extension_protocol_options = 1;
    c->typed_extension_protocol_options = pb_alloc(a, sizeof(void *));
    c->typed_extension_protocol_options[0] = en;
}

/* Kuma's x-kuma-tags header value: "&k=v1,v2&k2=v&" over the proxy's tag
 * set, keys and values sorted. */
static char *kuma_tags_header(const struct xds_dataplane *dp)
{
    size_t n = json_object_size(dp->tagset);
    const char **keys = xcalloc(n ? n : 1, sizeof(*keys));
    size_t nk = 0;
    const char *k;
    json_t *v;
    json_object_foreach(dp->tagset, k, v) keys[nk++] = k;
    qsort(keys, nk, sizeof(*keys), cmp_cstr);
    struct strbuf {
        char *p;
        size_t len, cap;
    } b = {xstrdup("&"), 1, 2};
#define SB_ADD(str)                                                                                \
    do {                                                                                           \
        size_t l_ = strlen(str);                                                                   \
        if (b.len + l_ + 1 > b.cap) {                                                              \
            b.cap = (b.len + l_ + 1) * 2;                                                          \
            b.p = xrealloc(b.p, b.cap);                                                            \
        }                                                                                          \
        memcpy(b.p + b.len, str, l_ + 1);                                                          \
        b.len += l_;                                                                               \
    } while (0)
    for (size_t i = 0; i < nk; i++) {
        const json_t *vals = json_object_get(dp->tagset, keys[i]);
        size_t nv = json_is_array(vals) ? json_array_size(vals) : 1;
        const char **vs = xcalloc(nv, sizeof(*vs));
        size_t m = 0;
        if (json_is_array(vals)) {
            size_t j;
            json_t *x;
            json_array_foreach(vals, j, x) if (json_is_string(x)) vs[m++] = json_string_value(x);
        } else if (json_is_string(vals)) {
            vs[m++] = json_string_value(vals);
        }
        qsort(vs, m, sizeof(*vs), cmp_cstr);
        SB_ADD(keys[i]);
        SB_ADD("=");
        for (size_t j = 0; j < m; j++) {
            if (j)
                SB_ADD(",");
            SB_ADD(vs[j]);
        }
        SB_ADD("&");
        free(vs);
    }
#undef SB_ADD
    free(keys);
    return b.p;
}

/* The protocol of an outbound: the common protocol of the endpoints of all
 * its route's destinations (Kuma's InferServiceProtocol); TCP when a
 * destination has no endpoints. */
static enum xds_protocol route_protocol(const struct xds_mesh_snapshot *snap,
                                        const struct xds_route *rt)
{
    enum xds_protocol p = XDS_PROTO_TCP;
    if (rt->force_tcp)
        return p;
    for (size_t i = 0; i < rt->n; i++) {
        const struct xds_service *s = xds_snapshot_service(snap, rt->splits[i].service);
        enum xds_protocol sp = s ? s->protocol : XDS_PROTO_TCP;
        p = i == 0 ? sp : xds_protocol_common(p, sp);
    }
    return p;
}

static Envoy__Config__Cluster__V3__Cluster *eds_cluster(struct pb_arena *a, const char *service)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        pb_cluster(a, service, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    c->eds_cluster_config = PB_NEW(a, Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
                                   ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT);
    c->eds_cluster_config->eds_config = pb_ads_source(a);
    return c;
}

/* The EDS cluster of a route destination: the service's endpoints (under
 * the split's cluster name when it differs), and for a split with tags a
 * subset selector over their keys (endpoints carry them as envoy.lb
 * metadata), any endpoint as fallback. Outbounds and gateway routes alike. */
static Envoy__Config__Cluster__V3__Cluster *split_cluster(struct pb_arena *a,
                                                          const struct xds_split *sp)
{
    Envoy__Config__Cluster__V3__Cluster *c = eds_cluster(a, sp->cluster);
    if (strcmp(sp->cluster, sp->service) != 0)
        c->eds_cluster_config->service_name = pb_strdup(a, sp->service);
    if (sp->ntags) {
        Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig *ls =
            PB_NEW(a, Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig,
                   ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_SUBSET_CONFIG__INIT);
        ls->fallback_policy =
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_SUBSET_CONFIG__LB_SUBSET_FALLBACK_POLICY__ANY_ENDPOINT;
        Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig__LbSubsetSelector *sel =
            PB_NEW(a, Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig__LbSubsetSelector,
                   ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_SUBSET_CONFIG__LB_SUBSET_SELECTOR__INIT);
        sel->n_keys = sp->ntags;
        sel->keys = pb_alloc(a, sp->ntags * sizeof(char *));
        for (size_t t = 0; t < sp->ntags; t++)
            sel->keys[t] = pb_strdup(a, sp->tags[t].key);
        ls->n_subset_selectors = 1;
        ls->subset_selectors = pb_alloc(a, sizeof(void *));
        ls->subset_selectors[0] = sel;
        c->lb_subset_config = ls;
    }
    return c;
}

/* Inbound: a listener per inbound on <address>:<port> proxying to the local
 * application's cluster localhost:<servicePort>. */
static void gen_inbound(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    for (size_t i = 0; i < dp->n_inbounds; i++) {
        const struct xds_inbound *in = &dp->inbounds[i];
        struct pb_arena a = {0};
        char *cname = xds_name_local_cluster(in->service_port);
        char *stat = xds_stat_name(cname);

        Envoy__Config__Cluster__V3__Cluster *c =
            pb_static_cluster(&a, cname, in->service_address, in->service_port);
        if (transparent(dp)) {
            /* Traffic to the application comes from 127.0.0.6 so iptables
             * does not redirect it back into the proxy. */
            const char *src = strchr(in->service_address, ':') ? "::6" : "127.0.0.6";
            c->upstream_bind_config = PB_NEW(&a, Envoy__Config__Core__V3__BindConfig,
                                             ENVOY__CONFIG__CORE__V3__BIND_CONFIG__INIT);
            c->upstream_bind_config->source_address = pb_socket_address(&a, src, 0);
        }
        struct xds_conn_policy cp;
        xds_inbound_conn_policy(g->snap, dp, in, &cp);
        apply_cluster_policy(&a, c, &cp);
        int http = XDS_PROTO_IS_HTTP(in->protocol), http_rbac = 0;
        Envoy__Config__Listener__V3__Filter *plain_hcm = NULL;
        if (http)
            cluster_http_options(&a, c, in->protocol, &cp);
        add_msg(g, XDS_CDS, cname, &c->base);

        char *lname = xds_name_inbound(in->address, in->port);
        Envoy__Config__Listener__V3__Listener *l =
            tcp_listener(&a, lname, in->address, in->port,
                         ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND, stat, cname);
        if (in->ntags)
            l->metadata = pb_metadata_tags(&a, "io.kuma.tags", in->tags, in->ntags);
        Envoy__Config__Listener__V3__FilterChain *fc = only_chain(l);
        if (http) {
            /* Kuma's inbound HTTP: route config inbound:<service> sending
             * everything to the local cluster, x-kuma-tags stripped. */
            struct xds_split local = {.cluster = cname, .weight = 1};
            Envoy__Config__Route__V3__Route **routes = pb_alloc(&a, sizeof(*routes));
            struct xds_conn_policy rcp = cp;
            rcp.retry = 0;
            routes[0] = pb_route(&a, route_match(&a, NULL), route_action(&a, &local, 1, &rcp));
            char *rname = xasprintf("inbound:%s", in->service ? in->service : cname);
            Envoy__Config__Route__V3__RouteConfiguration *rc =
                route_config(&a, rname, in->service ? in->service : cname, routes, 1);
            free(rname);
            rc->n_request_headers_to_remove = 1;
            rc->request_headers_to_remove = pb_alloc(&a, sizeof(char *));
            rc->request_headers_to_remove[0] = pb_strdup(&a, "x-kuma-tags");
            Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
                *hcm = hcm_new(&a, stat, rc, &cp);
            if (g->snap->mtls) {
                hcm->forward_client_cert_details =
                    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__FORWARD_CLIENT_CERT_DETAILS__SANITIZE_SET;
                hcm->set_current_client_cert_details = PB_NEW(
                    &a,
                    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__SetCurrentClientCertDetails,
                    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__SET_CURRENT_CLIENT_CERT_DETAILS__INIT);
                hcm->set_current_client_cert_details->uri = 1;
                /* PERMISSIVE: the plaintext chains get the connection
                 * manager as it is before the HTTP RBAC filter goes in. */
                if (g->snap->mtls_permissive)
                    plain_hcm = pb_hcm_filter(&a, hcm);
                /* http_rbac.c: MeshTrafficPermission as the HTTP RBAC filter */
                http_rbac = xds_inbound_http_rbac(&a, g->snap, dp, in, hcm);
            }
            chain_set_hcm(&a, fc, hcm);
        } else if (cp.idle_timeout_ms != XDS_UNSET || cp.max_connect_attempts > 0) {
            Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = decode_tcp(&a, fc);
            apply_tcp_policy(&a, tp, &cp);
            repack_tcp(&a, fc, tp);
        }
        if (g->snap->mtls) {
            /* mTLS: client certificates of this mesh only, and who may call
             * decided by the permissions (none = nobody). */
            const char *origin;
            Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *rb =
                PB_NEW(&a, Envoy__Extensions__Filters__Network__Rbac__V3__RBAC,
                       ENVOY__EXTENSIONS__FILTERS__NETWORK__RBAC__V3__RBAC__INIT);
            rb->rules = xds_inbound_rbac(&a, g->snap, dp, in, &origin);
            char *sp = xds_stat_name(lname);
            char *sp2 = xasprintf("%s.", sp);
            rb->stat_prefix = pb_strdup(&a, sp2);
            free(sp);
            free(sp2);
            if (!http_rbac)
                prepend_filter(&a, fc, "envoy.filters.network.rbac", XDS_URL_NETWORK_RBAC,
                               &rb->base);
            fc->transport_socket = downstream_tls(&a, g->snap->mesh);
            if (g->snap->mtls_permissive)
                xds_permissive_inbound(&a, l, plain_hcm); /* xds/permissive.h */
        }
        if (transparent(dp))
            l->bind_to_port = pb_bool(&a, 0);
        add_msg(g, XDS_LDS, lname, &l->base);
        free(lname);
        free(stat);
        free(cname);
        pb_arena_free(&a);
    }
}

/* Outbound: a listener per outbound proxying to the service's cluster, or
 * to the weighted clusters of its TrafficRoute split. */
static void gen_outbound(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        const struct xds_outbound *out = &dp->outbounds[i];
        char *ukey = unit_key(g, "L", out->address, out->service, out->port);
        if (unit_begin(g, ukey)) {
            free(ukey);
            continue;
        }
        struct pb_arena a = {0};
        char *lname = xds_name_outbound(out->address, out->port);
        char *stat = xds_stat_name(out->service);
        struct xds_route rt;
        xds_outbound_route(g->snap, dp, out->service, &rt);
        Envoy__Config__Listener__V3__Listener *l = tcp_listener(
            &a, lname, out->address, out->port,
            ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND, stat, rt.splits[0].cluster);
        struct xds_tag tag = {(char *)XDS_TAG_SERVICE, out->service};
        l->metadata = pb_metadata_tags(&a, "io.kuma.tags", &tag, 1);
        if (transparent(dp))
            l->bind_to_port = pb_bool(&a, 0);
        enum xds_protocol proto = route_protocol(g->snap, &rt);
        struct xds_conn_policy cp;
        xds_outbound_conn_policy_proto(g->snap, dp, out->service, proto, &cp);
        Envoy__Config__Listener__V3__FilterChain *fc = only_chain(l);
        if (XDS_PROTO_IS_HTTP(proto)) {
            /* Kuma's outbound HTTP: route config outbound:<service>, one
             * route per TrafficRoute http entry, then the default one. */
            Envoy__Config__Route__V3__Route **routes;
            size_t nr = 0;
            if (rt.mesh_http) {
                routes = xds_mesh_http_routes(&a, &rt, &cp, &nr); /* routes.c */
            } else {
                routes = pb_alloc(&a, (rt.n_http + 1) * sizeof(*routes));
                for (size_t k = 0; k < rt.n_http; k++) {
                    routes[nr++] = pb_route(&a, route_match(&a, rt.http[k].match),
                                            route_action(&a, rt.http[k].splits, rt.http[k].n, &cp));
                    xds_traffic_route_modify(&a, routes[nr - 1], rt.http[k].modify); /* routes.c */
                }
                routes[nr++] =
                    pb_route(&a, route_match(&a, NULL), route_action(&a, rt.splits, rt.n, &cp));
            }
            char *rname = xasprintf("outbound:%s", out->service);
            Envoy__Config__Route__V3__RouteConfiguration *rc =
                route_config(&a, rname, out->service, routes, nr);
            free(rname);
            char *tags = kuma_tags_header(dp);
            rc->n_request_headers_to_add = 1;
            rc->request_headers_to_add = pb_alloc(&a, sizeof(void *));
            rc->request_headers_to_add[0] = pb_header_option(&a, "x-kuma-tags", tags);
            free(tags);
            chain_set_hcm(&a, fc, hcm_new(&a, stat, rc, &cp));
        } else if (rt.n > 1 || cp.idle_timeout_ms != XDS_UNSET || cp.max_connect_attempts > 0) {
            Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = decode_tcp(&a, fc);
            if (rt.n > 1) {
                tcp_weighted_clusters(&a, tp, &rt);
            }
            apply_tcp_policy(&a, tp, &cp);
            repack_tcp(&a, fc, tp);
        }
        add_msg(g, XDS_LDS, lname, &l->base);
        xds_route_free(&rt);
        free(lname);
        free(stat);
        pb_arena_free(&a);
        unit_end(g, ukey);
        free(ukey);
    }
}

static void add_cla(struct gen *g, const char *svc)
{
    const struct xds_service *s = xds_snapshot_service(g->snap, svc);
    if (s) {
        add_owned(g, XDS_EDS, s->name, s->cla, s->cla_len, 1);
    } else {
        size_t len;
        uint8_t *data = xds_empty_cla(svc, &len);
        add_owned(g, XDS_EDS, svc, data, len, 0);
    }
}

/* The EDS clusters and endpoint assignments of every outbound service
 * (shared by the Envoy and the proxyless outputs): one cluster per route
 * destination; a destination with subset tags selects its endpoints by
 * `envoy.lb` metadata from the service's assignment. */
static void gen_outbound_clusters(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        const char *svc = g->dp->outbounds[i].service;
        char *ukey = unit_key(g, "C", svc, "", 0);
        if (unit_begin(g, ukey)) {
            free(ukey);
            continue;
        }
        struct xds_route rt;
        xds_outbound_route(g->snap, dp, svc, &rt);
        enum xds_protocol proto = g->o->proxyless ? XDS_PROTO_TCP : route_protocol(g->snap, &rt);
        struct xds_conn_policy cp;
        xds_outbound_conn_policy_proto(g->snap, dp, svc, proto, &cp);
        /* The default route's destinations, then those of the HTTP routes. */
        size_t total = rt.n;
        if (XDS_PROTO_IS_HTTP(proto))
            for (size_t h = 0; h < rt.n_http; h++)
                total += rt.http[h].n;
        for (size_t k = 0; k < total; k++) {
            const struct xds_split *sp = &rt.splits[k];
            if (k >= rt.n) {
                size_t idx = k - rt.n, h = 0;
                while (idx >= rt.http[h].n)
                    idx -= rt.http[h++].n;
                sp = &rt.http[h].splits[idx];
            }
            struct pb_arena a = {0};
            Envoy__Config__Cluster__V3__Cluster *c = split_cluster(&a, sp);
            if (rt.lb_policy >= 0)
                c->lb_policy = (Envoy__Config__Cluster__V3__Cluster__LbPolicy)rt.lb_policy;
            apply_cluster_policy(&a, c, &cp);
            if (XDS_PROTO_IS_HTTP(proto))
                cluster_http_options(&a, c, proto, &cp);
            if (g->snap->mtls && !g->o->proxyless)
                c->transport_socket = upstream_tls(&a, g->snap->mesh, g->snap->mesh, sp);
            add_msg(g, XDS_CDS, sp->cluster, &c->base);
            pb_arena_free(&a);
            add_cla(g, sp->service);
        }
        xds_route_free(&rt);
        unit_end(g, ukey);
        free(ukey);
    }
}

/* mTLS: the two secrets every TLS context above refers to, delivered by SDS
 * on the same stream. Only this mesh's CA, never another's. */
static void gen_secrets(struct gen *g)
{
    if (!g->snap->mtls)
        return;
    struct pb_arena a = {0};
    if (g->o->identity_cert_pem && g->o->identity_key_pem) {
        char *name = xasprintf("identity_cert:secret:%s", g->snap->mesh);
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec = pb_secret_tls_certificate(
            &a, name, g->o->identity_cert_pem, strlen(g->o->identity_cert_pem),
            g->o->identity_key_pem, strlen(g->o->identity_key_pem));
        add_msg(g, XDS_SDS, name, &sec->base);
        free(name);
    }
    if (g->snap->ca_cert_pem) {
        char *name = xasprintf("mesh_ca:secret:%s", g->snap->mesh);
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
            pb_secret_trusted_ca(&a, name, g->snap->ca_cert_pem);
        add_msg(g, XDS_SDS, name, &sec->base);
        free(name);
    }
    pb_arena_free(&a);
}

/* Cross-mesh outbounds (crossmesh.h): per outbound a listener, a cluster
 * named as Kuma names it, its endpoint assignment (the other mesh's
 * crossMesh gateway listeners) and, when both meshes have mTLS, Kuma's
 * CrossMeshClientSideMTLS with the other mesh's CA delivered as
 * mesh_ca:secret:<other mesh>. Built per proxy: few proxies have any. */
static void gen_cross_mesh(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    for (size_t i = 0; i < dp->n_cross_outbounds; i++) {
        const struct xds_cross_outbound *o = &dp->cross_outbounds[i];
        const struct xds_cross_mesh *cm = xds_crossmesh_find(g->snap, o->mesh);
        struct pb_arena a = {0};
        char *cname = xds_crossmesh_cluster_name(o);
        char *lname = xds_name_outbound(o->address, o->port);
        char *stat = xds_stat_name(o->service);
        Envoy__Config__Listener__V3__Listener *l =
            tcp_listener(&a, lname, o->address, o->port,
                         ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND, stat, cname);
        if (o->ntags)
            l->metadata = pb_metadata_tags(&a, "io.kuma.tags", o->tags, o->ntags);
        if (transparent(dp))
            l->bind_to_port = pb_bool(&a, 0);
        add_msg(g, XDS_LDS, lname, &l->base);

        Envoy__Config__Cluster__V3__Cluster *c = eds_cluster(&a, cname);
        int tls = g->snap->mtls && cm && cm->mtls;
        if (tls) {
            /* Own identity, the other mesh's CA and its gateway's SPIFFE ID. */
            struct xds_split sp = {.service = o->service};
            struct xds_tag *extra = pb_alloc(&a, (o->ntags + 1) * sizeof(*extra));
            for (size_t t = 0; t < o->ntags; t++)
                if (strcmp(o->tags[t].key, XDS_TAG_SERVICE) != 0)
                    extra[sp.ntags++] = o->tags[t];
            sp.tags = extra;
            c->transport_socket = upstream_tls(&a, g->snap->mesh, o->mesh, &sp);
            char *ca = xasprintf("mesh_ca:secret:%s", o->mesh);
            if (cm->ca_cert_pem) {
                Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
                    pb_secret_trusted_ca(&a, ca, cm->ca_cert_pem);
                add_msg(g, XDS_SDS, ca, &sec->base);
            }
            free(ca);
        }
        add_msg(g, XDS_CDS, cname, &c->base);
        size_t len;
        uint8_t *cla = xds_crossmesh_cla(cm, o, cname, &len);
        add_owned(g, XDS_EDS, cname, cla, len, 0);
        free(stat);
        free(lname);
        free(cname);
        pb_arena_free(&a);
    }
}

static void gen_passthrough(struct gen *g, const char *out_name, const char *in_name,
                            const char *any_ip, const char *inbound_src)
{
    const struct xds_dataplane *dp = g->dp;
    struct pb_arena a = {0};
    char *out_stat = xds_stat_name(out_name);
    char *in_stat = xds_stat_name(in_name);

    /* Outbound: everything the iptables rules redirect that no outbound
     * listener claims. With passthrough off the cluster is left out, so such
     * traffic fails (Kuma keeps the listener). */
    Envoy__Config__Listener__V3__Listener *l =
        tcp_listener(&a, out_name, any_ip, dp->redirect_port_outbound,
                     ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND, out_stat, out_name);
    l->use_original_dst = pb_bool(&a, 1);
    add_msg(g, XDS_LDS, out_name, &l->base);
    if (g->snap->passthrough) {
        Envoy__Config__Cluster__V3__Cluster *c = pb_cluster(
            &a, out_name, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST);
        c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
        add_msg(g, XDS_CDS, out_name, &c->base);
    }

    if (dp->redirect_port_inbound) {
        Envoy__Config__Listener__V3__Listener *il =
            tcp_listener(&a, in_name, any_ip, dp->redirect_port_inbound,
                         ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND, in_stat, in_name);
        il->use_original_dst = pb_bool(&a, 1);
        il->enable_reuse_port = pb_bool(&a, 0);
        add_msg(g, XDS_LDS, in_name, &il->base);
        Envoy__Config__Cluster__V3__Cluster *ic = pb_cluster(
            &a, in_name, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST);
        ic->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
        ic->upstream_bind_config = PB_NEW(&a, Envoy__Config__Core__V3__BindConfig,
                                          ENVOY__CONFIG__CORE__V3__BIND_CONFIG__INIT);
        ic->upstream_bind_config->source_address = pb_socket_address(&a, inbound_src, 0);
        add_msg(g, XDS_CDS, in_name, &ic->base);
    }
    free(out_stat);
    free(in_stat);
    pb_arena_free(&a);
}

/* Transparent proxying: the passthrough listeners and clusters. */
static void gen_transparent(struct gen *g)
{
    if (!transparent(g->dp))
        return;
    gen_passthrough(g, XDS_NAME_OUTBOUND_PASSTHROUGH_V4, XDS_NAME_INBOUND_PASSTHROUGH_V4, "0.0.0.0",
                    "127.0.0.6");
    if (g->dp->ipv6)
        gen_passthrough(g, XDS_NAME_OUTBOUND_PASSTHROUGH_V6, XDS_NAME_INBOUND_PASSTHROUGH_V6,
                        "::", "::6");
}

/* Proxyless gRPC: an API listener per outbound service. */
static void gen_proxyless(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        const char *svc = dp->outbounds[i].service;
        struct pb_arena a = {0};
        Envoy__Config__Route__V3__Route **routes = pb_alloc(&a, sizeof(*routes));
        routes[0] = pb_prefix_route(&a, "", svc);
        char *rname = xasprintf("outbound:%s", svc); /* Kuma's outbound route config name */
        Envoy__Config__Route__V3__RouteConfiguration *rc =
            pb_route_config(&a, rname, pb_virtual_host(&a, svc, routes, 1));
        free(rname);
        char *stat = xds_stat_name(svc);
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm =
            pb_hcm(&a, stat, rc);
        free(stat);

        Envoy__Config__Listener__V3__Listener *l = PB_NEW(
            &a, Envoy__Config__Listener__V3__Listener, ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT);
        l->name = pb_strdup(&a, svc);
        l->api_listener = PB_NEW(&a, Envoy__Config__Listener__V3__ApiListener,
                                 ENVOY__CONFIG__LISTENER__V3__API_LISTENER__INIT);
        l->api_listener->api_listener = pb_any(&a, XDS_URL_HCM, &hcm->base);
        add_msg(g, XDS_LDS, svc, &l->base);
        pb_arena_free(&a);
    }
}

/* Builtin gateway (networking.gateway.type BUILTIN): the listeners of the
 * MeshGateway selecting it, as Kuma names them: one per HTTP port,
 * `<gateway>:HTTP:<port>` on the dataplane's address, an HTTP connection
 * manager with Kuma's gateway settings reading its routes over RDS
 * (`<gateway>:HTTP:<port>:*`, one virtual host per listener hostname). */
/* The EDS cluster of a gateway route's destination (and its endpoint
 * assignment): as an outbound's (subset clusters select their endpoints by
 * `envoy.lb` metadata), HTTP options by the service's protocol. */
static void gateway_cluster(struct gen *g, const struct xds_split *sp, int http)
{
    struct pb_arena a = {0};
    Envoy__Config__Cluster__V3__Cluster *c = split_cluster(&a, sp);
    const struct xds_service *s = xds_snapshot_service(g->snap, sp->service);
    enum xds_protocol proto = s ? s->protocol : XDS_PROTO_TCP;
    struct xds_conn_policy cp;
    xds_outbound_conn_policy_proto(g->snap, g->dp, sp->service, proto, &cp);
    apply_cluster_policy(&a, c, &cp);
    if (http && XDS_PROTO_IS_HTTP(proto))
        cluster_http_options(&a, c, proto, &cp);
    if (g->snap->mtls)
        c->transport_socket = upstream_tls(&a, g->snap->mesh, g->snap->mesh, sp);
    add_msg(g, XDS_CDS, sp->cluster, &c->base);
    pb_arena_free(&a);
    add_cla(g, sp->service);
}

static void gateway_route_clusters(struct gen *g, const struct xds_route *rt, int http)
{
    for (size_t k = 0; k < rt->n; k++)
        gateway_cluster(g, &rt->splits[k], http);
    for (size_t h = 0; h < rt->n_http; h++)
        for (size_t k = 0; k < rt->http[h].n; k++)
            gateway_cluster(g, &rt->http[h].splits[k], http);
}

/* A gateway TCP listener <gw>:TCP:<port> routed by a MeshTCPRoute (routes.c);
 * none without a route. */
static void gateway_tcp_listener(struct gen *g, const struct xds_policy *gw, const json_t *l,
                                 const char *svc)
{
    json_int_t port = json_integer_value(json_object_get(l, "port"));
    struct xds_route rt;
    if (port <= 0 || port > 65535 || !xds_gateway_tcp_route(g->snap, g->dp, gw, l, &rt))
        return;
    struct pb_arena a = {0};
    char *lname = xasprintf("%s:TCP:%u", gw->name, (unsigned)port);
    char *stat = xds_stat_name(svc ? svc : gw->name);
    Envoy__Config__Listener__V3__Listener *lis = tcp_listener(
        &a, lname, g->dp->address, (uint32_t)port,
        ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND, stat, rt.splits[0].cluster);
    lis->enable_reuse_port = pb_bool(&a, 1);
    if (rt.n > 1 || rt.splits[0].ntags) {
        Envoy__Config__Listener__V3__FilterChain *fc = only_chain(lis);
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = decode_tcp(&a, fc);
        tcp_weighted_clusters(&a, tp, &rt);
        repack_tcp(&a, fc, tp);
    }
    add_msg(g, XDS_LDS, lname, &lis->base);
    gateway_route_clusters(g, &rt, 0);
    xds_route_free(&rt);
    free(lname);
    free(stat);
    pb_arena_free(&a);
}

/* A gateway's route configuration <rname> (RDS): Kuma's shape
 * (`ignorePortInHostMatching`, `x-kuma-tags` removed, no cluster
 * validation). The MeshHTTPRoutes attached to the listeners of protocol on
 * port (only `hostname`'s when not NULL) decide the virtual hosts and their
 * routes (routes.c); without any, one empty virtual host per name of
 * `hosts` (Envoy answers 404). HTTPS virtual hosts require TLS and add
 * Kuma's Strict-Transport-Security header. Adds the routes' clusters. */
static void gateway_route_config(struct gen *g, const struct xds_policy *gw, const char *protocol,
                                 uint32_t port, const char *hostname, const char **hosts, size_t nh,
                                 const char *rname, const char *svc)
{
    struct pb_arena a = {0};
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        PB_NEW(&a, Envoy__Config__Route__V3__RouteConfiguration,
               ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT);
    rc->name = pb_strdup(&a, rname);
    rc->validate_clusters = pb_bool(&a, 0);
    rc->ignore_port_in_host_matching = 1;
    rc->n_request_headers_to_remove = 1;
    rc->request_headers_to_remove = pb_alloc(&a, sizeof(char *));
    rc->request_headers_to_remove[0] = pb_strdup(&a, "x-kuma-tags");
    size_t nv = 0;
    struct xds_gw_vhost *vhs =
        xds_gateway_vhosts(g->snap, g->dp, gw, protocol, port, hostname, &nv);
    if (nv)
        nh = nv;
    int https = strcmp(protocol, "HTTPS") == 0;
    rc->n_virtual_hosts = nh;
    rc->virtual_hosts = pb_alloc(&a, (nh ? nh : 1) * sizeof(*rc->virtual_hosts));
    for (size_t k = 0; k < nh; k++) {
        const char *vname = nv ? vhs[k].name : hosts[k];
        Envoy__Config__Route__V3__VirtualHost *vh =
            PB_NEW(&a, Envoy__Config__Route__V3__VirtualHost,
                   ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT);
        vh->name = pb_strdup(&a, vname);
        vh->n_domains = 1;
        vh->domains = pb_alloc(&a, sizeof(char *));
        vh->domains[0] = pb_strdup(&a, vname);
        if (nv) {
            vh->routes =
                xds_gateway_http_routes(&a, &vhs[k].rt, svc ? svc : gw->name, &vh->n_routes);
            gateway_route_clusters(g, &vhs[k].rt, 1);
        }
        if (https) {
            vh->require_tls = ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__TLS_REQUIREMENT_TYPE__ALL;
            Envoy__Config__Core__V3__HeaderValueOption *o = pb_header_option(
                &a, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
            o->append_action =
                ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
            vh->n_response_headers_to_add = 1;
            vh->response_headers_to_add = pb_alloc(&a, sizeof(*vh->response_headers_to_add));
            vh->response_headers_to_add[0] = o;
        }
        rc->virtual_hosts[k] = vh;
    }
    xds_gateway_vhosts_free(vhs, nv);
    add_msg(g, XDS_RDS, rname, &rc->base);
    pb_arena_free(&a);
}

/* A filter chain with Kuma's gateway HTTP connection manager: routes over
 * RDS (<rname>), `serverName: Kuma Gateway`, `useRemoteAddress`, the
 * gateway's timeouts. */
static Envoy__Config__Listener__V3__FilterChain *gateway_chain(struct pb_arena *a,
                                                               const char *service,
                                                               const char *rname,
                                                               const struct xds_conn_policy *cp)
{
    char *stat = xds_stat_name(service);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm =
        hcm_new(a, stat, NULL, cp);
    free(stat);
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm->rds = PB_NEW(a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds,
                      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__RDS__INIT);
    hcm->rds->config_source = pb_ads_source(a);
    hcm->rds->route_config_name = pb_strdup(a, rname);
    if (cp->request_headers_timeout_ms != XDS_UNSET)
        hcm->request_headers_timeout = pb_ms(a, cp->request_headers_timeout_ms);
    hcm->server_name = pb_strdup(a, "Kuma Gateway");
    hcm->use_remote_address = pb_bool(a, 1);
    return pb_filter_chain(a, pb_hcm_filter(a, hcm));
}

static Envoy__Config__Listener__V3__Listener *gateway_listener(struct pb_arena *a, const char *name,
                                                               const char *ip, uint32_t port)
{
    Envoy__Config__Listener__V3__Listener *lis = PB_NEW(
        a, Envoy__Config__Listener__V3__Listener, ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT);
    lis->name = pb_strdup(a, name);
    lis->address = pb_address(a, ip, port);
    lis->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND;
    lis->enable_reuse_port = pb_bool(a, 1);
    return lis;
}

/* The Secret named by a gateway certificate `{secret: <name>}`, decoded,
 * or NULL (with why) when it is missing or not base64. */
static unsigned char *gateway_secret_pem(const struct xds_mesh_snapshot *snap, const char *name,
                                         size_t *len)
{
    for (size_t i = 0; i < snap->n_policies; i++) {
        const struct xds_policy *p = &snap->policies[i];
        if (p->type != &TYPE_SECRET || strcmp(p->name, name) != 0)
            continue;
        const char *data = json_string_value(json_object_get(p->spec, "data"));
        return data ? base64_decode(data, strlen(data), len) : NULL;
    }
    return NULL;
}

/* The SDS secret of a gateway certificate, Kuma's name
 * `cert.<rsa|ecdsa>:secret:<name>`: the PEM's certificates as the chain,
 * its private key as the key. NULL name when it cannot be used. */
static char *gateway_cert_secret(struct gen *g, const char *secret)
{
    size_t len = 0;
    unsigned char *pem = gateway_secret_pem(g->snap, secret, &len);
    if (!pem) {
        log_warn("xds", "%s.%s: gateway certificate: Secret %s not found or not base64",
                 g->dp->mesh, g->dp->name, secret);
        return NULL;
    }
    char *name = NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    /* The certificates: every CERTIFICATE block; the key: re-encoded PKCS#8. */
    BIO *certs = BIO_new(BIO_s_mem()), *keyout = BIO_new(BIO_s_mem());
    bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x;
    int ncert = 0;
    while (bio && certs && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        PEM_write_bio_X509(certs, x);
        X509_free(x);
        ncert++;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (!key || ncert == 0 || !keyout ||
        !PEM_write_bio_PrivateKey(keyout, key, NULL, NULL, 0, NULL, NULL)) {
        log_warn("xds", "%s.%s: gateway certificate: Secret %s needs a PEM certificate and key",
                 g->dp->mesh, g->dp->name, secret);
    } else {
        name = xasprintf("cert.%s:secret:%s", EVP_PKEY_id(key) == EVP_PKEY_EC ? "ecdsa" : "rsa",
                         secret);
        char *cdata, *kdata;
        long clen = BIO_get_mem_data(certs, &cdata), klen = BIO_get_mem_data(keyout, &kdata);
        struct pb_arena a = {0};
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
            pb_secret_tls_certificate(&a, name, cdata, (size_t)clen, kdata, (size_t)klen);
        add_msg(g, XDS_SDS, name, &sec->base);
        pb_arena_free(&a);
    }
    EVP_PKEY_free(key);
    BIO_free(certs);
    BIO_free(keyout);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return name;
}

/* A gateway HTTPS port <gw>:HTTPS:<port> (tls.mode TERMINATE): the TLS
 * inspector, one filter chain per listener hostname matched by SNI (none
 * for "*"), each terminating TLS with its certificates (SDS, Kuma's
 * DownstreamTlsContext: ALPN h2 and http/1.1, TLS 1.2 minimum, no client
 * certificate) in front of the gateway HCM with routes over RDS
 * <gw>:HTTPS:<port>:<hostname>. A listener without a usable certificate,
 * or in PASSTHROUGH mode, gets no filter chain. */
static void gateway_https(struct gen *g, const struct xds_policy *gw, uint32_t port,
                          const char *svc, const struct xds_conn_policy *cp)
{
    const json_t *ls = json_object_get(json_object_get(gw->spec, "conf"), "listeners");
    struct pb_arena a = {0};
    char *lname = xasprintf("%s:HTTPS:%u", gw->name, (unsigned)port);
    Envoy__Config__Listener__V3__Listener *lis = gateway_listener(&a, lname, g->dp->address, port);
    lis->filter_chains = pb_alloc(&a, (json_array_size(ls) + 1) * sizeof(*lis->filter_chains));
    const char *seen[64];
    size_t nseen = 0;
    size_t i;
    json_t *l;
    json_array_foreach(ls, i, l)
    {
        const char *proto = json_string_value(json_object_get(l, "protocol"));
        if (!proto || strcmp(proto, "HTTPS") != 0 ||
            json_integer_value(json_object_get(l, "port")) != (json_int_t)port)
            continue;
        const char *host = json_string_value(json_object_get(l, "hostname"));
        host = host && *host ? host : "*";
        int dup = 0;
        for (size_t k = 0; k < nseen && !dup; k++)
            dup = strcmp(seen[k], host) == 0;
        if (dup || nseen == 64)
            continue; /* the first listener of a hostname wins */
        seen[nseen++] = host;
        const json_t *tls = json_object_get(l, "tls");
        const char *mode = json_string_value(json_object_get(tls, "mode"));
        if (mode && strcmp(mode, "TERMINATE") != 0)
            continue; /* PASSTHROUGH: not generated */
        const json_t *certs = json_object_get(tls, "certificates");
        char **names = xcalloc(json_array_size(certs) + 1, sizeof(*names));
        size_t nn = 0, c;
        json_t *cert;
        json_array_foreach(certs, c, cert)
        {
            const char *secret = json_string_value(json_object_get(cert, "secret"));
            char *sname = secret ? gateway_cert_secret(g, secret) : NULL;
            if (sname)
                names[nn++] = sname;
        }
        if (nn > 0) {
            char *rname = xasprintf("%s:%s", lname, host);
            gateway_route_config(g, gw, "HTTPS", port, host, &host, 1, rname, svc);
            Envoy__Config__Listener__V3__FilterChain *fc =
                gateway_chain(&a, svc ? svc : gw->name, rname, cp);
            fc->filter_chain_match = PB_NEW(&a, Envoy__Config__Listener__V3__FilterChainMatch,
                                            ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__INIT);
            if (strcmp(host, "*") != 0) {
                fc->filter_chain_match->n_server_names = 1;
                fc->filter_chain_match->server_names = pb_alloc(&a, sizeof(char *));
                fc->filter_chain_match->server_names[0] = pb_strdup(&a, host);
            }
            fc->filter_chain_match->transport_protocol = pb_strdup(&a, "tls");
            Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ctx =
                PB_NEW(&a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
                       ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT);
            ctx->n_alpn_protocols = 2;
            ctx->alpn_protocols = pb_alloc(&a, 2 * sizeof(char *));
            ctx->alpn_protocols[0] = pb_strdup(&a, "h2");
            ctx->alpn_protocols[1] = pb_strdup(&a, "http/1.1");
            ctx->tls_params =
                PB_NEW(&a, Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters,
                       ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__INIT);
            ctx->tls_params->tls_minimum_protocol_version =
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2;
            ctx->n_tls_certificate_sds_secret_configs = nn;
            ctx->tls_certificate_sds_secret_configs =
                pb_alloc(&a, nn * sizeof(*ctx->tls_certificate_sds_secret_configs));
            for (size_t k = 0; k < nn; k++)
                ctx->tls_certificate_sds_secret_configs[k] = pb_sds(&a, names[k]);
            fc->transport_socket = pb_downstream_tls_socket(&a, ctx, 0);
            lis->filter_chains[lis->n_filter_chains++] = fc;
            free(rname);
        }
        for (size_t k = 0; k < nn; k++)
            free(names[k]);
        free(names);
    }
    if (lis->n_filter_chains > 0) {
        lis->n_listener_filters = 1;
        lis->listener_filters = pb_alloc(&a, sizeof(*lis->listener_filters));
        lis->listener_filters[0] = xds_tls_inspector(&a); /* xds/permissive.h */
        add_msg(g, XDS_LDS, lname, &lis->base);
    }
    free(lname);
    pb_arena_free(&a);
}

/* A cross-mesh gateway listener (Kuma: a MeshGateway HTTP listener with
 * crossMesh: true in an mTLS mesh): its filter chain matches ALPN `kuma` and
 * terminates mTLS with the gateway's identity, validating clients against
 * every mesh's CA (`mesh_ca:secret:all`, no SAN matcher, so any mesh's
 * identity is accepted); the TLS inspector reads the ALPN. Adds that SDS
 * secret. */
static void gateway_cross_mesh(struct gen *g, struct pb_arena *a,
                               Envoy__Config__Listener__V3__Listener *lis)
{
    Envoy__Config__Listener__V3__FilterChain *fc = lis->filter_chains[0];
    fc->filter_chain_match = PB_NEW(a, Envoy__Config__Listener__V3__FilterChainMatch,
                                    ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__INIT);
    fc->filter_chain_match->n_application_protocols = 1;
    fc->filter_chain_match->application_protocols = pb_alloc(a, sizeof(char *));
    fc->filter_chain_match->application_protocols[0] = pb_strdup(a, "kuma");
    char *id = xasprintf("identity_cert:secret:%s", g->snap->mesh);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ctx =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT);
    ctx->n_tls_certificate_sds_secret_configs = 1;
    ctx->tls_certificate_sds_secret_configs = pb_alloc(a, sizeof(void *));
    ctx->tls_certificate_sds_secret_configs[0] = pb_sds(a, id);
    ctx->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
    ctx->validation_context_sds_secret_config = pb_sds(a, "mesh_ca:secret:all");
    free(id);
    fc->transport_socket = pb_downstream_tls_socket(a, ctx, 1);
    lis->n_listener_filters = 1;
    lis->listener_filters = pb_alloc(a, sizeof(*lis->listener_filters));
    lis->listener_filters[0] = xds_tls_inspector(a);

    struct pb_arena sa = {0};
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
        pb_secret_trusted_ca(&sa, "mesh_ca:secret:all", g->snap->all_ca_pem);
    add_msg(g, XDS_SDS, "mesh_ca:secret:all", &sec->base);
    pb_arena_free(&sa);
}

static int cmp_host(const void *a, const void *b)
{
    return xds_host_order(*(const char *const *)a, *(const char *const *)b);
}

static void gen_builtin_gateway(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    const struct xds_policy *gw = xds_builtin_gateway(g->snap, dp);
    if (!gw)
        return; /* no MeshGateway selects it: nothing to listen on yet */
    const char *svc = NULL;
    for (size_t i = 0; i < dp->n_gateway_tags; i++)
        if (strcmp(dp->gateway_tags[i].key, XDS_TAG_SERVICE) == 0)
            svc = dp->gateway_tags[i].value;
    struct xds_conn_policy cp;
    xds_gateway_conn_policy(g->snap, dp, &cp);
    const json_t *ls = json_object_get(json_object_get(gw->spec, "conf"), "listeners");
    size_t nl = json_array_size(ls);
    for (size_t i = 0; i < nl; i++) {
        const json_t *l = json_array_get(ls, i);
        const char *proto = json_string_value(json_object_get(l, "protocol"));
        json_int_t port = json_integer_value(json_object_get(l, "port"));
        if (proto && strcmp(proto, "TCP") == 0) {
            gateway_tcp_listener(g, gw, l, svc); /* routes.c: MeshTCPRoute */
            continue;
        }
        if (proto && strcmp(proto, "HTTPS") == 0 && port > 0 && port <= 65535) {
            int first = 1; /* one Envoy listener per port */
            for (size_t j = 0; j < i && first; j++) {
                const json_t *o = json_array_get(ls, j);
                const char *op = json_string_value(json_object_get(o, "protocol"));
                first = !(op && strcmp(op, "HTTPS") == 0 &&
                          json_integer_value(json_object_get(o, "port")) == port);
            }
            if (first)
                gateway_https(g, gw, (uint32_t)port, svc, &cp);
            continue;
        }
        if (!proto || strcmp(proto, "HTTP") != 0 || port <= 0 || port > 65535)
            continue; /* TLS listeners: not generated */
        int seen = 0; /* one Envoy listener per port */
        for (size_t j = 0; j < i; j++) {
            const json_t *o = json_array_get(ls, j);
            const char *op = json_string_value(json_object_get(o, "protocol"));
            if (op && strcmp(op, "HTTP") == 0 &&
                json_integer_value(json_object_get(o, "port")) == port)
                seen = 1;
        }
        if (seen)
            continue;
        const char **hosts = xcalloc(nl, sizeof(*hosts));
        size_t nh = 0;
        for (size_t j = i; j < nl; j++) {
            const json_t *o = json_array_get(ls, j);
            const char *op = json_string_value(json_object_get(o, "protocol"));
            if (!op || strcmp(op, "HTTP") != 0 ||
                json_integer_value(json_object_get(o, "port")) != port)
                continue;
            const char *h = json_string_value(json_object_get(o, "hostname"));
            if (!h || !*h)
                h = "*";
            int dup = 0;
            for (size_t k = 0; k < nh; k++)
                dup |= strcmp(hosts[k], h) == 0;
            if (!dup)
                hosts[nh++] = h;
        }
        qsort(hosts, nh, sizeof(*hosts), cmp_host);

        struct pb_arena a = {0};
        char *lname = xasprintf("%s:HTTP:%u", gw->name, (unsigned)port);
        char *rname = xasprintf("%s:*", lname);
        gateway_route_config(g, gw, "HTTP", (uint32_t)port, NULL, hosts, nh, rname, svc);
        Envoy__Config__Listener__V3__Listener *lis =
            gateway_listener(&a, lname, dp->address, (uint32_t)port);
        lis->n_filter_chains = 1;
        lis->filter_chains = pb_alloc(&a, sizeof(*lis->filter_chains));
        lis->filter_chains[0] = gateway_chain(&a, svc ? svc : gw->name, rname, &cp);
        int cross = 0;
        for (size_t j = 0; j < nl; j++) {
            const json_t *o = json_array_get(ls, j);
            const char *op = json_string_value(json_object_get(o, "protocol"));
            cross |= op && strcmp(op, "HTTP") == 0 &&
                     json_integer_value(json_object_get(o, "port")) == port &&
                     json_is_true(json_object_get(o, "crossMesh"));
        }
        if (cross && !g->snap->mtls) {
            /* Kuma fails the gateway's generation with this message; here
             * the listener is left out and the rest served. */
            log_warn("xds",
                     "%s.%s: MeshGateway %s: mTLS must be enabled for crossMesh-enabled "
                     "MeshGateways",
                     dp->mesh, dp->name, gw->name);
        } else {
            if (cross && g->snap->all_ca_pem)
                gateway_cross_mesh(g, &a, lis);
            add_msg(g, XDS_LDS, lname, &lis->base);
        }
        free(lname);
        free(rname);
        free(hosts);
        pb_arena_free(&a);
    }
}

static void admin_emit(void *ctx, enum xds_type t, const char *name, const ProtobufCMessage *m)
{
    add_msg(ctx, t, name, m);
}

/* The admin endpoints on the proxy's address (xds/admin.h). */
static void gen_admin(struct gen *g)
{
    xds_admin_resources(g->dp, g->o, admin_emit, g);
}

typedef void gen_step(struct gen *g);

/* Envoy sidecars and gateways. */
static gen_step *const envoy_steps[] = {gen_inbound,    gen_outbound,    gen_outbound_clusters,
                                        gen_cross_mesh, gen_transparent, gen_secrets,
                                        gen_admin};
/* Proxyless gRPC clients. */
static gen_step *const proxyless_steps[] = {gen_proxyless, gen_outbound_clusters};
/* Builtin gateways. */
static gen_step *const gateway_steps[] = {gen_builtin_gateway, gen_secrets, gen_admin};

static int cmp_res(const void *a, const void *b)
{
    const struct xds_resource *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

uint64_t xds_gen_input_hash(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                            const struct xds_gen_opts *o)
{
    uint64_t h = xds_hash_u64(XDS_HASH_INIT, dp->hash);
    h = xds_hash_u64(h, snap->mesh_hash);
    h = xds_hash_u64(h, (uint64_t)snap->passthrough);
    h = xds_hash_u64(h, (uint64_t)(o && o->proxyless));
    h = xds_hash_u64(h, snap->policy_hash);
    h = xds_hash_u64(h, snap->ca_hash);
    h = xds_hash_str(h, o ? o->identity_cert_pem : NULL);
    h = xds_hash_u64(h, o ? o->admin_port : 0);
    h = xds_hash_str(h, o ? o->admin_cert_pem : NULL);
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        const struct xds_service *s = xds_snapshot_service(snap, dp->outbounds[i].service);
        h = xds_hash_u64(h, s ? s->hash : 0);
    }
    /* Other meshes change only the proxies with cross-mesh outbounds. */
    if (dp->n_cross_outbounds)
        h = xds_hash_u64(h, snap->cross_hash);
    return h;
}

struct xds_proxy_config *xds_generate(struct xds_mesh_snapshot *snap,
                                      const struct xds_dataplane *dp, const struct xds_gen_opts *o)
{
    struct xds_gen_opts none = {0};
    if (!o)
        o = &none;
    struct xds_proxy_config *cfg = xcalloc(1, sizeof(*cfg));
    atomic_init(&cfg->refs, 1);
    cfg->snap = xds_snapshot_ref(snap);
    cfg->input_hash = xds_gen_input_hash(snap, dp, o);
    struct gen g = {.snap = snap, .dp = dp, .o = o, .cfg = cfg};
    if (o->proxyless) {
        for (size_t i = 0; i < sizeof(proxyless_steps) / sizeof(proxyless_steps[0]); i++)
            proxyless_steps[i](&g);
    } else if (dp->builtin_gateway) {
        for (size_t i = 0; i < sizeof(gateway_steps) / sizeof(gateway_steps[0]); i++)
            gateway_steps[i](&g);
    } else {
        for (size_t i = 0; i < sizeof(envoy_steps) / sizeof(envoy_steps[0]); i++)
            envoy_steps[i](&g);
    }
    for (int t = 0; t < XDS_TYPE_N; t++) {
        struct xds_resource_set *set = &cfg->sets[t];
        if (set->n > 1)
            qsort(set->v, set->n, sizeof(*set->v), cmp_res);
        /* Names are unique: the first one added wins, as in Kuma's
         * ResourceSet. */
        size_t k = 0;
        for (size_t i = 0; i < set->n; i++) {
            if (k > 0 && strcmp(set->v[k - 1].name, set->v[i].name) == 0) {
                if (!set->v[i].borrowed) {
                    free(set->v[i].name);
                    free(set->v[i].data);
                }
                continue;
            }
            set->v[k++] = set->v[i];
        }
        set->n = k;
        uint64_t h = XDS_HASH_INIT;
        for (size_t i = 0; i < set->n; i++) {
            h = xds_hash_fast(h, set->v[i].name, strlen(set->v[i].name));
            h = xds_hash_u64(h, set->v[i].hash);
        }
        set->hash = h;
        snprintf(set->version, sizeof(set->version), "%016llx", (unsigned long long)h);
    }
    return cfg;
}

struct batch {
    struct xds_mesh_snapshot *snap;
    struct xds_gen_job *jobs;
    size_t n;
    atomic_size_t next;
};

#define BATCH_CHUNK 16

static void *batch_worker(void *arg)
{
    struct batch *b = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, BATCH_CHUNK);
        if (i >= b->n)
            break;
        size_t end = i + BATCH_CHUNK < b->n ? i + BATCH_CHUNK : b->n;
        for (; i < end; i++)
            b->jobs[i].out = xds_generate(b->snap, b->jobs[i].dp, &b->jobs[i].o);
    }
    return NULL;
}

void xds_generate_batch(struct xds_mesh_snapshot *snap, struct xds_gen_job *jobs, size_t n,
                        int threads)
{
    struct batch b = {.snap = snap, .jobs = jobs, .n = n};
    atomic_init(&b.next, 0);
    if (threads > XDS_GEN_MAX_THREADS)
        threads = XDS_GEN_MAX_THREADS;
    if (n < 4 * BATCH_CHUNK)
        threads = 1;
    pthread_t tid[XDS_GEN_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, batch_worker, &b) == 0)
            started++;
    batch_worker(&b);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
}

struct xds_proxy_config *xds_proxy_config_ref(struct xds_proxy_config *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void xds_proxy_config_unref(struct xds_proxy_config *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (int t = 0; t < XDS_TYPE_N; t++) {
        for (size_t i = 0; i < c->sets[t].n; i++) {
            if (!c->sets[t].v[i].borrowed) {
                free(c->sets[t].v[i].name);
                free(c->sets[t].v[i].data);
            }
        }
        free(c->sets[t].v);
    }
    xds_snapshot_unref(c->snap);
    free(c);
}

/* For routes.c: the route action of a MeshHTTPRoute rule. */
Envoy__Config__Route__V3__RouteAction *xds__route_action(struct pb_arena *a,
                                                         const struct xds_split *sp, size_t n,
                                                         const struct xds_conn_policy *cp)
{
    return route_action(a, sp, n, cp);
}
