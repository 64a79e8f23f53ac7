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
        add_msg(g, XDS_CDS, cname, &c->base);

        char *lname = xds_name_inbound(in->address, in->port);
        Envoy__Config__Listener__V3__Listener *l =
            tcp_listener(&a, lname, in->address, in->port,
                         ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND, stat, cname);
        if (in->ntags)
            l->metadata = pb_metadata_tags(&a, "io.kuma.tags", in->tags, in->ntags);
        if (transparent(dp))
            l->bind_to_port = pb_bool(&a, 0);
        add_msg(g, XDS_LDS, lname, &l->base);
        free(lname);
        free(stat);
        free(cname);
        pb_arena_free(&a);
    }
}

/* Outbound: a listener per outbound proxying to the service's EDS cluster. */
static void gen_outbound(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        const struct xds_outbound *out = &dp->outbounds[i];
        struct pb_arena a = {0};
        char *lname = xds_name_outbound(out->address, out->port);
        char *stat = xds_stat_name(out->service);
        Envoy__Config__Listener__V3__Listener *l =
            tcp_listener(&a, lname, out->address, out->port,
                         ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND, stat, out->service);
        struct xds_tag tag = {(char *)XDS_TAG_SERVICE, out->service};
        l->metadata = pb_metadata_tags(&a, "io.kuma.tags", &tag, 1);
        if (transparent(dp))
            l->bind_to_port = pb_bool(&a, 0);
        add_msg(g, XDS_LDS, lname, &l->base);
        free(lname);
        free(stat);
        pb_arena_free(&a);
    }
}

/* The EDS clusters and endpoint assignments of every outbound service
 * (shared by the Envoy and the proxyless outputs). */
static void gen_outbound_clusters(struct gen *g)
{
    const struct xds_dataplane *dp = g->dp;
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        const char *svc = g->dp->outbounds[i].service;
        struct pb_arena a = {0};
        add_msg(g, XDS_CDS, svc, &eds_cluster(&a, svc)->base);
        pb_arena_free(&a);
        const struct xds_service *s = xds_snapshot_service(g->snap, svc);
        if (s) {
            add_owned(g, XDS_EDS, svc, s->cla, s->cla_len, 1);
        } else {
            size_t len;
            uint8_t *data = xds_empty_cla(svc, &len);
            add_owned(g, XDS_EDS, svc, data, len, 0);
        }
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
                                        gen_transparent};
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
