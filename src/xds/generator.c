/*
 * generator — see generator.h. Resource shapes follow Kuma's generators
 * (pkg/xds/generator/{inbound_proxy,outbound_proxy,transparent_proxy}_generator.go)
 * for a mesh without mTLS: TCP proxying on every listener.
 */
#include "xds/generator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "xds/names.h"
#include "xds/pb.h"
#include "xds/policies.h"

#define CONNECT_TIMEOUT_S 5 /* Kuma's default cluster connect timeout */

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

struct gen {
    struct xds_mesh_snapshot *snap;
    const struct xds_dataplane *dp;
    const struct xds_gen_opts *o;
    struct xds_proxy_config *cfg;
};

static void add_owned(struct gen *g, enum xds_type t, const char *name, uint8_t *data, size_t len,
                      int borrowed)
{
    struct xds_resource_set *set = &g->cfg->sets[t];
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->v[i].name, name) == 0) { /* first one wins, as in Kuma's ResourceSet */
            if (!borrowed)
                free(data);
            return;
        }
    }
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 8;
        set->v = xrealloc(set->v, set->cap * sizeof(*set->v));
    }
    set->v[set->n++] = (struct xds_resource){xstrdup(name), data, len, borrowed};
}

static void add_msg(struct gen *g, enum xds_type t, const char *name, const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *data = pb_pack(m, &len);
    add_owned(g, t, name, data, len, 0);
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

    Envoy__Config__Listener__V3__Filter *f =
        PB_NEW(a, Envoy__Config__Listener__V3__Filter, ENVOY__CONFIG__LISTENER__V3__FILTER__INIT);
    f->name = pb_strdup(a, "envoy.filters.network.tcp_proxy");
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = pb_any(a, XDS_URL_TCP_PROXY, &proxy->base);

    Envoy__Config__Listener__V3__FilterChain *fc =
        PB_NEW(a, Envoy__Config__Listener__V3__FilterChain,
               ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN__INIT);
    fc->n_filters = 1;
    fc->filters = pb_alloc(a, sizeof(*fc->filters));
    fc->filters[0] = f;

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

/* Inserts a filter in front of the chain's filters. */
static void prepend_filter(struct pb_arena *a, Envoy__Config__Listener__V3__FilterChain *fc,
                           const char *name, const char *url, const ProtobufCMessage *m)
{
    Envoy__Config__Listener__V3__Filter *f =
        PB_NEW(a, Envoy__Config__Listener__V3__Filter, ENVOY__CONFIG__LISTENER__V3__FILTER__INIT);
    f->name = pb_strdup(a, name);
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = pb_any(a, url, m);
    Envoy__Config__Listener__V3__Filter **v = pb_alloc(a, (fc->n_filters + 1) * sizeof(*v));
    v[0] = f;
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

static Envoy__Config__Core__V3__TransportSocket *tls_socket(struct pb_arena *a, const char *url,
                                                            const ProtobufCMessage *ctx)
{
    Envoy__Config__Core__V3__TransportSocket *ts =
        PB_NEW(a, Envoy__Config__Core__V3__TransportSocket,
               ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT);
    ts->name = pb_strdup(a, "envoy.transport_sockets.tls");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config = pb_any(a, url, ctx);
    return ts;
}

/* Inbound side of mTLS: client certificates required, signed by the mesh CA,
 * with a SAN under spiffe://<mesh>/. */
static Envoy__Config__Core__V3__TransportSocket *downstream_tls(struct pb_arena *a,
                                                                const char *mesh)
{
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__INIT);
    char *prefix = xasprintf("spiffe://%s/", mesh);
    d->common_tls_context = common_tls(a, mesh, pb_prefix(a, prefix));
    d->require_client_certificate = pb_bool(a, 1);
    free(prefix);
    return tls_socket(a, XDS_URL_DOWNSTREAM_TLS, &d->base);
}

/* Outbound side: the upstream must be spiffe://<mesh>/<service>; ALPN kuma;
 * Kuma's SNI. */
static Envoy__Config__Core__V3__TransportSocket *upstream_tls(struct pb_arena *a, const char *mesh,
                                                              const struct xds_split *sp)
{
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT);
    char *san = xasprintf("spiffe://%s/%s", mesh, sp->service);
    u->common_tls_context = common_tls(a, mesh, pb_exact(a, san));
    u->common_tls_context->n_alpn_protocols = 1;
    u->common_tls_context->alpn_protocols = pb_alloc(a, sizeof(char *));
    u->common_tls_context->alpn_protocols[0] = pb_strdup(a, "kuma");
    char *sni = xds_sni(mesh, sp->service, sp->tags, sp->ntags);
    u->sni = pb_strdup(a, sni);
    free(sni);
    free(san);
    return tls_socket(a, XDS_URL_UPSTREAM_TLS, &u->base);
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

static Envoy__Config__Cluster__V3__Cluster *
new_cluster(struct pb_arena *a, const char *name,
            Envoy__Config__Cluster__V3__Cluster__DiscoveryType type)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        PB_NEW(a, Envoy__Config__Cluster__V3__Cluster, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT);
    c->name = pb_strdup(a, name);
    char *stat = xds_stat_name(name);
    c->alt_stat_name = pb_strdup(a, stat);
    free(stat);
    c->cluster_discovery_type_case =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c->type = type;
    c->connect_timeout = pb_duration(a, CONNECT_TIMEOUT_S, 0);
    return c;
}

static Envoy__Config__Cluster__V3__Cluster *eds_cluster(struct pb_arena *a, const char *service)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        new_cluster(a, service, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    c->eds_cluster_config = PB_NEW(a, Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
                                   ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT);
    c->eds_cluster_config->eds_config = pb_ads_source(a);
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
            new_cluster(&a, cname, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
        Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
            PB_NEW(&a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
                   ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT);
        cla->cluster_name = pb_strdup(&a, cname);
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc =
            PB_NEW(&a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
                   ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
        Envoy__Config__Endpoint__V3__LbEndpoint *lb =
            PB_NEW(&a, Envoy__Config__Endpoint__V3__LbEndpoint,
                   ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT);
        lb->host_identifier_case =
            ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
        lb->endpoint = PB_NEW(&a, Envoy__Config__Endpoint__V3__Endpoint,
                              ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT);
        lb->endpoint->address = pb_address(&a, in->service_address, in->service_port);
        loc->n_lb_endpoints = 1;
        loc->lb_endpoints = pb_alloc(&a, sizeof(*loc->lb_endpoints));
        loc->lb_endpoints[0] = lb;
        cla->n_endpoints = 1;
        cla->endpoints = pb_alloc(&a, sizeof(*cla->endpoints));
        cla->endpoints[0] = loc;
        c->load_assignment = cla;
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
        add_msg(g, XDS_CDS, cname, &c->base);

        char *lname = xds_name_inbound(in->address, in->port);
        Envoy__Config__Listener__V3__Listener *l =
            tcp_listener(&a, lname, in->address, in->port,
                         ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND, stat, cname);
        if (in->ntags)
            l->metadata = pb_metadata_tags(&a, "io.kuma.tags", in->tags, in->ntags);
        Envoy__Config__Listener__V3__FilterChain *fc = only_chain(l);
        if (cp.idle_timeout_ms != XDS_UNSET || cp.max_connect_attempts > 0) {
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
            prepend_filter(&a, fc, "envoy.filters.network.rbac", XDS_URL_NETWORK_RBAC, &rb->base);
            fc->transport_socket = downstream_tls(&a, g->snap->mesh);
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
        struct xds_conn_policy cp;
        xds_outbound_conn_policy(g->snap, dp, out->service, &cp);
        Envoy__Config__Listener__V3__FilterChain *fc = only_chain(l);
        if (rt.n > 1 || cp.idle_timeout_ms != XDS_UNSET || cp.max_connect_attempts > 0) {
            Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = decode_tcp(&a, fc);
            if (rt.n > 1) {
                Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc = PB_NEW(
                    &a,
                    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster,
                    ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__WEIGHTED_CLUSTER__INIT);
                wc->n_clusters = rt.n;
                wc->clusters = pb_alloc(&a, rt.n * sizeof(*wc->clusters));
                for (size_t k = 0; k < rt.n; k++) {
                    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight
                        *cw = PB_NEW(
                            &a,
                            Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight,
                            ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__WEIGHTED_CLUSTER__CLUSTER_WEIGHT__INIT);
                    cw->name = pb_strdup(&a, rt.splits[k].cluster);
                    cw->weight = rt.splits[k].weight;
                    if (rt.splits[k].ntags)
                        cw->metadata_match =
                            pb_metadata_tags(&a, "envoy.lb", rt.splits[k].tags, rt.splits[k].ntags);
                    wc->clusters[k] = cw;
                }
                tp->cluster_specifier_case =
                    ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
                tp->weighted_clusters = wc;
            }
            apply_tcp_policy(&a, tp, &cp);
            repack_tcp(&a, fc, tp);
        }
        add_msg(g, XDS_LDS, lname, &l->base);
        xds_route_free(&rt);
        free(lname);
        free(stat);
        pb_arena_free(&a);
    }
}

static void add_cla(struct gen *g, const char *svc)
{
    const struct xds_service *s = xds_snapshot_service(g->snap, svc);
    if (s) {
        add_owned(g, XDS_EDS, svc, s->cla, s->cla_len, 1);
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
        struct xds_route rt;
        xds_outbound_route(g->snap, dp, svc, &rt);
        struct xds_conn_policy cp;
        xds_outbound_conn_policy(g->snap, dp, svc, &cp);
        for (size_t k = 0; k < rt.n; k++) {
            const struct xds_split *sp = &rt.splits[k];
            struct pb_arena a = {0};
            Envoy__Config__Cluster__V3__Cluster *c = eds_cluster(&a, sp->cluster);
            if (strcmp(sp->cluster, sp->service) != 0)
                c->eds_cluster_config->service_name = pb_strdup(&a, sp->service);
            if (sp->ntags) {
                Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig *ls =
                    PB_NEW(&a, Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig,
                           ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_SUBSET_CONFIG__INIT);
                ls->fallback_policy =
                    ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_SUBSET_CONFIG__LB_SUBSET_FALLBACK_POLICY__ANY_ENDPOINT;
                Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig__LbSubsetSelector *sel = PB_NEW(
                    &a, Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig__LbSubsetSelector,
                    ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_SUBSET_CONFIG__LB_SUBSET_SELECTOR__INIT);
                sel->n_keys = sp->ntags;
                sel->keys = pb_alloc(&a, sp->ntags * sizeof(char *));
                for (size_t t = 0; t < sp->ntags; t++)
                    sel->keys[t] = pb_strdup(&a, sp->tags[t].key);
                ls->n_subset_selectors = 1;
                ls->subset_selectors = pb_alloc(&a, sizeof(void *));
                ls->subset_selectors[0] = sel;
                c->lb_subset_config = ls;
            }
            if (rt.lb_policy >= 0)
                c->lb_policy = (Envoy__Config__Cluster__V3__Cluster__LbPolicy)rt.lb_policy;
            apply_cluster_policy(&a, c, &cp);
            if (g->snap->mtls && !g->o->proxyless)
                c->transport_socket = upstream_tls(&a, g->snap->mesh, sp);
            add_msg(g, XDS_CDS, sp->cluster, &c->base);
            pb_arena_free(&a);
            add_cla(g, sp->service);
        }
        xds_route_free(&rt);
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
        Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc =
            PB_NEW(&a, Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate,
                   ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT);
        Envoy__Config__Core__V3__DataSource *cc = PB_NEW(
            &a, Envoy__Config__Core__V3__DataSource, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT);
        cc->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
        cc->inline_bytes.data = (uint8_t *)g->o->identity_cert_pem;
        cc->inline_bytes.len = strlen(g->o->identity_cert_pem);
        Envoy__Config__Core__V3__DataSource *kk = PB_NEW(
            &a, Envoy__Config__Core__V3__DataSource, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT);
        kk->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
        kk->inline_bytes.data = (uint8_t *)g->o->identity_key_pem;
        kk->inline_bytes.len = strlen(g->o->identity_key_pem);
        tc->certificate_chain = cc;
        tc->private_key = kk;
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
            PB_NEW(&a, Envoy__Extensions__TransportSockets__Tls__V3__Secret,
                   ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT);
        sec->name = pb_strdup(&a, name);
        sec->type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
        sec->tls_certificate = tc;
        add_msg(g, XDS_SDS, name, &sec->base);
        free(name);
    }
    if (g->snap->ca_cert_pem) {
        char *name = xasprintf("mesh_ca:secret:%s", g->snap->mesh);
        Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc = PB_NEW(
            &a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT);
        Envoy__Config__Core__V3__DataSource *ds = PB_NEW(
            &a, Envoy__Config__Core__V3__DataSource, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT);
        ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
        ds->inline_bytes.data = (uint8_t *)g->snap->ca_cert_pem;
        ds->inline_bytes.len = strlen(g->snap->ca_cert_pem);
        vc->trusted_ca = ds;
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
            PB_NEW(&a, Envoy__Extensions__TransportSockets__Tls__V3__Secret,
                   ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT);
        sec->name = pb_strdup(&a, name);
        sec->type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
        sec->validation_context = vc;
        add_msg(g, XDS_SDS, name, &sec->base);
        free(name);
    }
    pb_arena_free(&a);
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
        Envoy__Config__Cluster__V3__Cluster *c = new_cluster(
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
        Envoy__Config__Cluster__V3__Cluster *ic = new_cluster(
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
        Envoy__Config__Route__V3__RouteAction *ra =
            PB_NEW(&a, Envoy__Config__Route__V3__RouteAction,
                   ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT);
        ra->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        ra->cluster = pb_strdup(&a, svc);
        Envoy__Config__Route__V3__Route *r =
            PB_NEW(&a, Envoy__Config__Route__V3__Route, ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT);
        r->match = PB_NEW(&a, Envoy__Config__Route__V3__RouteMatch,
                          ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT);
        r->match->path_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        r->match->prefix = pb_strdup(&a, "");
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
        r->route = ra;
        Envoy__Config__Route__V3__VirtualHost *vh =
            PB_NEW(&a, Envoy__Config__Route__V3__VirtualHost,
                   ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT);
        vh->name = pb_strdup(&a, svc);
        vh->n_domains = 1;
        vh->domains = pb_alloc(&a, sizeof(char *));
        vh->domains[0] = pb_strdup(&a, "*");
        vh->n_routes = 1;
        vh->routes = pb_alloc(&a, sizeof(*vh->routes));
        vh->routes[0] = r;
        Envoy__Config__Route__V3__RouteConfiguration *rc =
            PB_NEW(&a, Envoy__Config__Route__V3__RouteConfiguration,
                   ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT);
        char *rname = xasprintf("outbound:%s", svc); /* Kuma's outbound route config name */
        rc->name = pb_strdup(&a, rname);
        free(rname);
        rc->n_virtual_hosts = 1;
        rc->virtual_hosts = pb_alloc(&a, sizeof(*rc->virtual_hosts));
        rc->virtual_hosts[0] = vh;

        Envoy__Extensions__Filters__Http__Router__V3__Router *router =
            PB_NEW(&a, Envoy__Extensions__Filters__Http__Router__V3__Router,
                   ENVOY__EXTENSIONS__FILTERS__HTTP__ROUTER__V3__ROUTER__INIT);
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf = PB_NEW(
            &a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter,
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__INIT);
        hf->name = pb_strdup(&a, "envoy.filters.http.router");
        hf->config_type_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
        hf->typed_config = pb_any(&a, XDS_URL_ROUTER, &router->base);

        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm = PB_NEW(
            &a,
            Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager,
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__INIT);
        char *stat = xds_stat_name(svc);
        hcm->stat_prefix = pb_strdup(&a, stat);
        free(stat);
        hcm->route_specifier_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
        hcm->route_config = rc;
        hcm->n_http_filters = 1;
        hcm->http_filters = pb_alloc(&a, sizeof(*hcm->http_filters));
        hcm->http_filters[0] = hf;

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

typedef void gen_step(struct gen *g);

/* Envoy sidecars and gateways. */
static gen_step *const envoy_steps[] = {gen_inbound, gen_outbound, gen_outbound_clusters,
                                        gen_transparent, gen_secrets};
/* Proxyless gRPC clients. */
static gen_step *const proxyless_steps[] = {gen_proxyless, gen_outbound_clusters};

static int cmp_res(const void *a, const void *b)
{
    return strcmp(((const struct xds_resource *)a)->name, ((const struct xds_resource *)b)->name);
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
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        const struct xds_service *s = xds_snapshot_service(snap, dp->outbounds[i].service);
        h = xds_hash_u64(h, s ? s->hash : 0);
    }
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
    struct gen g = {snap, dp, o, cfg};
    if (o->proxyless) {
        for (size_t i = 0; i < sizeof(proxyless_steps) / sizeof(proxyless_steps[0]); i++)
            proxyless_steps[i](&g);
    } else {
        for (size_t i = 0; i < sizeof(envoy_steps) / sizeof(envoy_steps[0]); i++)
            envoy_steps[i](&g);
    }
    for (int t = 0; t < XDS_TYPE_N; t++) {
        struct xds_resource_set *set = &cfg->sets[t];
        if (set->n > 1)
            qsort(set->v, set->n, sizeof(*set->v), cmp_res);
        uint64_t h = XDS_HASH_INIT;
        for (size_t i = 0; i < set->n; i++) {
            h = xds_hash_str(h, set->v[i].name);
            h = xds_hash_u64(h, set->v[i].len);
            h = xds_hash(h, set->v[i].data, set->v[i].len);
        }
        set->hash = h;
        snprintf(set->version, sizeof(set->version), "%016llx", (unsigned long long)h);
    }
    return cfg;
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
            free(c->sets[t].v[i].name);
            if (!c->sets[t].v[i].borrowed)
                free(c->sets[t].v[i].data);
        }
        free(c->sets[t].v);
    }
    xds_snapshot_unref(c->snap);
    free(c);
}
