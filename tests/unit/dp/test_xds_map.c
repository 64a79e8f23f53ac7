/*
 * xds_map: Envoy resources, encoded with the same protobuf-c types kuma-cp
 * uses (src/xds/pb.h builds them), decoded into sets and mapped to the
 * engine's model — what is mapped, what is refused (NACK) and why.
 */
#include <stdlib.h>
#include <jansson.h>
#include <string.h>

#include "dp/xds_map.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "test.h"
#include "xds/pb.h"

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;

/* One encoded resource. */
struct enc {
    uint8_t *data;
    size_t len;
};

static struct dp_xds_set *decode_n(enum dp_xds_type t, const ProtobufCMessage **msgs, size_t n,
                                   struct err *e)
{
    const void *vals[8] = {0};
    size_t lens[8] = {0};
    const char *urls[8] = {0};
    for (size_t i = 0; i < n; i++) {
        vals[i] = pb_pack(msgs[i], &lens[i]);
        urls[i] = dp_xds_type_url(t);
    }
    struct dp_xds_set *s = NULL;
    int rc = dp_xds_set_decode(t, "v1", vals, lens, urls, n, &s, e);
    for (size_t i = 0; i < n; i++)
        free((void *)vals[i]);
    return rc == 0 ? s : NULL;
}

static struct dp_xds_set *decode1(enum dp_xds_type t, const ProtobufCMessage *m)
{
    struct err e = {{0}};
    struct dp_xds_set *s = decode_n(t, &m, 1, &e);
    if (!s)
        TEST_FAIL_("decode: %s", e.msg);
    return s;
}

static Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *
common_tls(struct pb_arena *a, const char *mesh, Envoy__Type__Matcher__V3__StringMatcher *san)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *c =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT);
    char n1[64], n2[64];
    snprintf(n1, sizeof(n1), "identity_cert:secret:%s", mesh);
    snprintf(n2, sizeof(n2), "mesh_ca:secret:%s", mesh);
    c->n_tls_certificate_sds_secret_configs = 1;
    c->tls_certificate_sds_secret_configs = pb_alloc(a, sizeof(void *));
    c->tls_certificate_sds_secret_configs[0] = pb_sds(a, n1);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
        *cv = PB_NEW(
            a,
            Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__COMBINED_CERTIFICATE_VALIDATION_CONTEXT__INIT);
    cv->validation_context_sds_secret_config = pb_sds(a, n2);
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *v =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT);
    Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__INIT);
    m->san_type =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI;
    m->matcher = san;
    v->n_match_typed_subject_alt_names = 1;
    v->match_typed_subject_alt_names = pb_alloc(a, sizeof(void *));
    v->match_typed_subject_alt_names[0] = m;
    cv->default_validation_context = v;
    c->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    c->combined_validation_context = cv;
    c->n_alpn_protocols = 1;
    c->alpn_protocols = pb_alloc(a, sizeof(char *));
    c->alpn_protocols[0] = pb_strdup(a, "kuma");
    return c;
}

static Envoy__Config__Rbac__V3__Principal *principal_name(struct pb_arena *a, const char *uri)
{
    Envoy__Config__Rbac__V3__Principal *p =
        PB_NEW(a, Envoy__Config__Rbac__V3__Principal, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__INIT);
    p->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED;
    p->authenticated = PB_NEW(a, Envoy__Config__Rbac__V3__Principal__Authenticated,
                              ENVOY__CONFIG__RBAC__V3__PRINCIPAL__AUTHENTICATED__INIT);
    p->authenticated->principal_name = pb_exact(a, uri);
    return p;
}

static Envoy__Config__Rbac__V3__Principal *
principal_set(struct pb_arena *a, int kind, Envoy__Config__Rbac__V3__Principal **ids, size_t n)
{
    Envoy__Config__Rbac__V3__Principal *p =
        PB_NEW(a, Envoy__Config__Rbac__V3__Principal, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__INIT);
    Envoy__Config__Rbac__V3__Principal__Set *set = PB_NEW(
        a, Envoy__Config__Rbac__V3__Principal__Set, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__SET__INIT);
    set->n_ids = n;
    set->ids = ids;
    p->identifier_case = kind;
    if (kind == ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS)
        p->and_ids = set;
    else
        p->or_ids = set;
    return p;
}

static Envoy__Config__Rbac__V3__Principal *principal_not(struct pb_arena *a,
                                                         Envoy__Config__Rbac__V3__Principal *id)
{
    Envoy__Config__Rbac__V3__Principal *p =
        PB_NEW(a, Envoy__Config__Rbac__V3__Principal, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__INIT);
    p->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID;
    p->not_id = id;
    return p;
}

/* A network RBAC with one policy whose principals are ps. */
static ProtobufCMessage *rbac(struct pb_arena *a, Envoy__Config__Rbac__V3__Principal **ps, size_t n)
{
    Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *r =
        PB_NEW(a, Envoy__Extensions__Filters__Network__Rbac__V3__RBAC,
               ENVOY__EXTENSIONS__FILTERS__NETWORK__RBAC__V3__RBAC__INIT);
    r->stat_prefix = pb_strdup(a, "inbound_10.0.0.1_80.");
    r->rules = PB_NEW(a, Envoy__Config__Rbac__V3__RBAC, ENVOY__CONFIG__RBAC__V3__RBAC__INIT);
    Envoy__Config__Rbac__V3__Policy *pol =
        PB_NEW(a, Envoy__Config__Rbac__V3__Policy, ENVOY__CONFIG__RBAC__V3__POLICY__INIT);
    Envoy__Config__Rbac__V3__Permission *perm =
        PB_NEW(a, Envoy__Config__Rbac__V3__Permission, ENVOY__CONFIG__RBAC__V3__PERMISSION__INIT);
    perm->rule_case = ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY;
    perm->any = 1;
    pol->n_permissions = 1;
    pol->permissions = pb_alloc(a, sizeof(void *));
    pol->permissions[0] = perm;
    pol->n_principals = n;
    pol->principals = ps;
    Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *pe =
        PB_NEW(a, Envoy__Config__Rbac__V3__RBAC__PoliciesEntry,
               ENVOY__CONFIG__RBAC__V3__RBAC__POLICIES_ENTRY__INIT);
    pe->key = pb_strdup(a, "allow-web");
    pe->value = pol;
    r->rules->n_policies = 1;
    r->rules->policies = pb_alloc(a, sizeof(void *));
    r->rules->policies[0] = pe;
    return &r->base;
}

static Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tcp(struct pb_arena *a,
                                                                        const char *cluster)
{
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *t =
        PB_NEW(a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
               ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__INIT);
    t->stat_prefix = pb_strdup(a, "backend");
    if (cluster) {
        t->cluster_specifier_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
        t->cluster = pb_strdup(a, cluster);
    }
    t->idle_timeout = pb_duration(a, 120, 0);
    t->max_connect_attempts = pb_u32(a, 3);
    return t;
}

/* Listener with one chain of the given filters (and TLS when mesh given). */
static Listener *listener(struct pb_arena *a, const char *name, const char *mesh,
                          Envoy__Config__Listener__V3__Filter **fs, size_t n)
{
    Listener *l = PB_NEW(a, Listener, ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT);
    l->name = pb_strdup(a, name);
    l->address = pb_address(a, "10.0.0.1", 80);
    l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND;
    Envoy__Config__Listener__V3__FilterChain *fc =
        PB_NEW(a, Envoy__Config__Listener__V3__FilterChain,
               ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN__INIT);
    fc->n_filters = n;
    fc->filters = fs;
    if (mesh) {
        fc->transport_socket =
            pb_downstream_tls_socket(a, common_tls(a, mesh, pb_prefix(a, "spiffe://default/")), 1);
    }
    l->n_filter_chains = 1;
    l->filter_chains = pb_alloc(a, sizeof(void *));
    l->filter_chains[0] = fc;
    return l;
}

static Cluster *eds_cluster(struct pb_arena *a, const char *name, const char *service)
{
    Cluster *c = PB_NEW(a, Cluster, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT);
    c->name = pb_strdup(a, name);
    c->cluster_discovery_type_case =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    c->eds_cluster_config = PB_NEW(a, Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
                                   ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT);
    c->eds_cluster_config->eds_config = pb_ads_source(a);
    if (service)
        c->eds_cluster_config->service_name = pb_strdup(a, service);
    c->connect_timeout = pb_duration(a, 2, 500000000);
    c->alt_stat_name = pb_strdup(a, name);
    return c;
}

/* A CLA with endpoints "ip:version" tagged envoy.lb {version}. */
static ProtobufCMessage *cla(struct pb_arena *a, const char *name, const char *const *eps, size_t n)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *c =
        PB_NEW(a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
               ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT);
    c->cluster_name = pb_strdup(a, name);
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc =
        PB_NEW(a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
               ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
    loc->n_lb_endpoints = n;
    loc->lb_endpoints = pb_alloc(a, n * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        const char *colon = strchr(eps[i], ':');
        snprintf(ip, sizeof(ip), "%.*s", (int)(colon - eps[i]), eps[i]);
        Envoy__Config__Endpoint__V3__LbEndpoint *lb = pb_lb_endpoint(a, ip, 8080);
        struct xds_tag tag = {(char *)"version", (char *)colon + 1};
        lb->metadata = pb_metadata_tags(a, "envoy.lb", &tag, 1);
        loc->lb_endpoints[i] = lb;
    }
    c->n_endpoints = 1;
    c->endpoints = pb_alloc(a, sizeof(void *));
    c->endpoints[0] = loc;
    return &c->base;
}

static ProtobufCMessage *secret(struct pb_arena *a, const char *name, int ca)
{
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *s =
        ca ? pb_secret_trusted_ca(a, name, "PEM")
           : pb_secret_tls_certificate(a, name, "PEM", 3, "KEY", 3);
    return &s->base;
}

static void free_sets(struct dp_xds_set **sets)
{
    for (int i = 0; i < DP_XDS_NTYPES; i++)
        dp_xds_set_free(sets[i]);
}

/* An mTLS inbound (RBAC + tcp_proxy) and an outbound EDS cluster with
 * UpstreamTlsContext, its CLA and both secrets: every field lands. */
TEST(xds_map_inbound_outbound_mtls)
{
    struct pb_arena a = {0};
    Envoy__Config__Rbac__V3__Principal **ps = pb_alloc(&a, 2 * sizeof(void *));
    ps[0] = principal_name(&a, "spiffe://default/web");
    /* or_ids are flattened into the policy's principals. */
    ps[1] =
        PB_NEW(&a, Envoy__Config__Rbac__V3__Principal, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__INIT);
    ps[1]->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS;
    ps[1]->or_ids = PB_NEW(&a, Envoy__Config__Rbac__V3__Principal__Set,
                           ENVOY__CONFIG__RBAC__V3__PRINCIPAL__SET__INIT);
    ps[1]->or_ids->n_ids = 1;
    ps[1]->or_ids->ids = pb_alloc(&a, sizeof(void *));
    ps[1]->or_ids->ids[0] = principal_name(&a, "kuma://team/a");
    Envoy__Config__Listener__V3__Filter **fs = pb_alloc(&a, 2 * sizeof(void *));
    fs[0] = pb_filter(&a, "envoy.filters.network.rbac", XDS_URL_NETWORK_RBAC, rbac(&a, ps, 2));
    fs[1] = pb_filter(&a, "envoy.filters.network.tcp_proxy", XDS_URL_TCP_PROXY,
                      &tcp(&a, "localhost:8080")->base);
    Listener *l = listener(&a, "inbound:10.0.0.1:80", "default", fs, 2);

    Cluster *c = eds_cluster(&a, "backend", NULL);
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
        PB_NEW(&a, Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT);
    u->common_tls_context = common_tls(&a, "default", pb_exact(&a, "spiffe://default/backend"));
    u->sni = pb_strdup(&a, "backend{mesh=default}");
    c->transport_socket = pb_tls_socket(&a, XDS_URL_UPSTREAM_TLS, &u->base);
    c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH;
    c->outlier_detection = PB_NEW(&a, Envoy__Config__Cluster__V3__OutlierDetection,
                                  ENVOY__CONFIG__CLUSTER__V3__OUTLIER_DETECTION__INIT);
    c->outlier_detection->consecutive_5xx = pb_u32(&a, 7);
    c->outlier_detection->base_ejection_time = pb_duration(&a, 10, 0);

    const char *eps[] = {"10.0.0.2:v1", "10.0.0.3:v2"};
    const ProtobufCMessage *secrets[] = {secret(&a, "identity_cert:secret:default", 0),
                                         secret(&a, "mesh_ca:secret:default", 1)};
    struct err e = {{0}};
    struct dp_xds_set *sets[DP_XDS_NTYPES] = {
        [DP_XDS_LDS] = decode1(DP_XDS_LDS, &l->base),
        [DP_XDS_CDS] = decode1(DP_XDS_CDS, &c->base),
        [DP_XDS_EDS] = decode1(DP_XDS_EDS, cla(&a, "backend", eps, 2)),
        [DP_XDS_SDS] = decode_n(DP_XDS_SDS, secrets, 2, &e),
    };
    ASSERT(sets[DP_XDS_SDS]);
    struct dp_config *cfg = NULL;
    int missing = -1;
    ASSERT_INT_EQ(dp_xds_build(sets, &cfg, &missing, &e), 0);
    ASSERT_INT_EQ(missing, 0);

    ASSERT_INT_EQ(cfg->n_listeners, 1);
    const struct dp_listener *dl = &cfg->listeners[0];
    ASSERT_STR_EQ(dl->address.address, "10.0.0.1");
    ASSERT_INT_EQ(dl->address.port_value, 80);
    ASSERT_INT_EQ(dl->traffic_direction, DP_DIR_INBOUND);
    ASSERT_STR_EQ(dl->tcp_proxy.cluster, "localhost:8080");
    ASSERT_INT_EQ(dl->tcp_proxy.idle_timeout_ms, 120000);
    ASSERT_INT_EQ(dl->tcp_proxy.max_connect_attempts, 3);
    ASSERT(dl->tls);
    ASSERT_INT_EQ(dl->tls->require_client_certificate, 1);
    ASSERT_STR_EQ(dl->tls->common_tls_context.tls_certificate_sds_secret,
                  "identity_cert:secret:default");
    ASSERT_STR_EQ(dl->tls->common_tls_context.validation_context_sds_secret,
                  "mesh_ca:secret:default");
    ASSERT_INT_EQ(dl->tls->common_tls_context.n_match_subject_alt_names, 1);
    ASSERT_INT_EQ(dl->tls->common_tls_context.match_subject_alt_names[0].kind, DP_MATCH_PREFIX);
    ASSERT(dl->rbac);
    ASSERT_INT_EQ(dl->rbac->action, DP_RBAC_ALLOW);
    ASSERT_STR_EQ(dl->rbac->stat_prefix, "inbound_10.0.0.1_80.");
    ASSERT_INT_EQ(dl->rbac->n_policies, 1);
    ASSERT_INT_EQ(dl->rbac->policies[0].n_principals, 2);
    ASSERT_STR_EQ(dl->rbac->policies[0].principals[1].principal_name.value, "kuma://team/a");

    ASSERT_INT_EQ(cfg->n_clusters, 1);
    const struct dp_cluster *dc = &cfg->clusters[0];
    ASSERT_INT_EQ(dc->type, DP_CLUSTER_EDS);
    ASSERT_INT_EQ(dc->connect_timeout_ms, 2500);
    ASSERT_INT_EQ(dc->lb_policy, DP_LB_LEAST_REQUEST);
    ASSERT(dc->outlier_detection);
    ASSERT_INT_EQ(dc->outlier_detection->consecutive_local_origin_failure, 7);
    ASSERT_INT_EQ(dc->outlier_detection->base_ejection_time_ms, 10000);
    ASSERT(dc->tls);
    ASSERT_STR_EQ(dc->tls->sni, "backend{mesh=default}");
    ASSERT_STR_EQ(dc->tls->common_tls_context.alpn_protocols[0], "kuma");
    ASSERT_STR_EQ(dc->tls->common_tls_context.match_subject_alt_names[0].value,
                  "spiffe://default/backend");
    const struct dp_cluster_load_assignment *ca = dp_config_cluster_endpoints(cfg, dc);
    ASSERT(ca);
    ASSERT_INT_EQ(ca->n_endpoints, 2);
    ASSERT_STR_EQ(ca->endpoints[1].address.address, "10.0.0.3");
    ASSERT_INT_EQ(ca->endpoints[1].address.port_value, 8080);

    ASSERT_INT_EQ(cfg->n_secrets, 2);
    const struct dp_secret *s0 = dp_config_find_secret(cfg, "identity_cert:secret:default");
    ASSERT(s0);
    ASSERT_STR_EQ(s0->certificate_chain, "PEM");
    ASSERT_STR_EQ(s0->private_key, "KEY");
    ASSERT_STR_EQ(dp_config_find_secret(cfg, "mesh_ca:secret:default")->trusted_ca, "PEM");
    ASSERT_STR_CONTAINS(cfg->version_info, "lds=v1");
    dp_config_free(cfg);

    /* Without SDS, the configuration waits for its secrets. */
    dp_xds_set_free(sets[DP_XDS_SDS]);
    sets[DP_XDS_SDS] = NULL;
    ASSERT_INT_EQ(dp_xds_build(sets, &cfg, &missing, &e), 0);
    ASSERT_INT_EQ(missing, 1);
    dp_config_free(cfg);
    free_sets(sets);
    pb_arena_free(&a);
}

/* A TrafficRoute split as kuma-cp sends it: weighted clusters reading the
 * service's EDS with metadata_match on `version` become one cluster whose
 * endpoint weights give 80/20. */
TEST(xds_map_weighted_split)
{
    struct pb_arena a = {0};
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *t = tcp(&a, NULL);
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc = PB_NEW(
        &a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__WEIGHTED_CLUSTER__INIT);
    const char *names[2] = {"backend-aaaa", "backend-bbbb"}, *vers[2] = {"v1", "v2"};
    uint32_t weights[2] = {80, 20};
    wc->n_clusters = 2;
    wc->clusters = pb_alloc(&a, 2 * sizeof(void *));
    Cluster *cs[2];
    for (int i = 0; i < 2; i++) {
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight
            *cw = PB_NEW(
                &a,
                Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight,
                ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__WEIGHTED_CLUSTER__CLUSTER_WEIGHT__INIT);
        cw->name = pb_strdup(&a, names[i]);
        cw->weight = weights[i];
        struct xds_tag tag = {(char *)"version", (char *)vers[i]};
        cw->metadata_match = pb_metadata_tags(&a, "envoy.lb", &tag, 1);
        wc->clusters[i] = cw;
        cs[i] = eds_cluster(&a, names[i], "backend");
    }
    t->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
    t->weighted_clusters = wc;
    Envoy__Config__Listener__V3__Filter **fs = pb_alloc(&a, sizeof(void *));
    fs[0] = pb_filter(&a, "envoy.filters.network.tcp_proxy", XDS_URL_TCP_PROXY, &t->base);
    Listener *l = listener(&a, "outbound:127.0.0.1:10001", NULL, fs, 1);
    /* v1 has two endpoints: each gets half of v1's share. */
    const char *eps[] = {"10.0.0.2:v1", "10.0.0.3:v1", "10.0.0.4:v2"};
    const ProtobufCMessage *cms[2] = {&cs[0]->base, &cs[1]->base};
    struct err e = {{0}};
    struct dp_xds_set *sets[DP_XDS_NTYPES] = {
        [DP_XDS_LDS] = decode1(DP_XDS_LDS, &l->base),
        [DP_XDS_CDS] = decode_n(DP_XDS_CDS, cms, 2, &e),
        [DP_XDS_EDS] = decode1(DP_XDS_EDS, cla(&a, "backend", eps, 3)),
    };
    struct dp_config *cfg = NULL;
    int missing;
    ASSERT_INT_EQ(dp_xds_build(sets, &cfg, &missing, &e), 0);
    ASSERT_STR_EQ(cfg->listeners[0].tcp_proxy.cluster, "outbound:127.0.0.1:10001:weighted");
    const struct dp_cluster *w = dp_config_find_cluster(cfg, "outbound:127.0.0.1:10001:weighted");
    ASSERT(w);
    ASSERT_INT_EQ(w->type, DP_CLUSTER_STATIC);
    ASSERT_INT_EQ(w->load_assignment.n_endpoints, 3);
    /* 40:40:20 reduced to 2:2:1. */
    ASSERT_INT_EQ(w->load_assignment.endpoints[0].load_balancing_weight, 2);
    ASSERT_INT_EQ(w->load_assignment.endpoints[1].load_balancing_weight, 2);
    ASSERT_STR_EQ(w->load_assignment.endpoints[2].address.address, "10.0.0.4");
    ASSERT_INT_EQ(w->load_assignment.endpoints[2].load_balancing_weight, 1);
    /* The subset clusters themselves copy the service's endpoints. */
    const struct dp_cluster *sub = dp_config_find_cluster(cfg, "backend-aaaa");
    ASSERT(sub);
    ASSERT_INT_EQ(sub->load_assignment.n_endpoints, 3);
    /* Stats of the split are counted under the real clusters: each endpoint
     * names the cluster it came from; what precedes a host pick goes to the
     * first cluster. */
    ASSERT_INT_EQ(w->synthetic, 1);
    ASSERT_INT_EQ(sub->synthetic, 0);
    ASSERT_STR_EQ(w->alt_stat_name, "backend-aaaa");
    ASSERT_STR_EQ(w->load_assignment.endpoints[0].stat_cluster, "backend-aaaa");
    ASSERT_STR_EQ(w->load_assignment.endpoints[1].stat_cluster, "backend-aaaa");
    ASSERT_STR_EQ(w->load_assignment.endpoints[2].stat_cluster, "backend-bbbb");
    ASSERT(sub->load_assignment.endpoints[0].stat_cluster == NULL);
    /* /config_dump shows the clusters kuma-cp sent, not the synthetic one. */
    char *dump = dp_config_dump_json(cfg);
    /* The listener shows the split as sent, no synthetic name anywhere. */
    ASSERT_STR_CONTAINS(dump, "weightedClusters");
    ASSERT(strstr(dump, "weighted\"") == NULL);
    json_t *root = json_loads(dump, 0, NULL);
    ASSERT(root);
    json_t *dc = json_object_get(json_array_get(json_object_get(root, "configs"), 1),
                                 "dynamicActiveClusters");
    ASSERT_INT_EQ(json_array_size(dc), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *cn = json_string_value(
            json_object_get(json_object_get(json_array_get(dc, i), "cluster"), "name"));
        ASSERT(cn && strstr(cn, "weighted") == NULL);
    }
    json_decref(root);
    free(dump);
    dp_config_free(cfg);
    free_sets(sets);
    pb_arena_free(&a);
}

/* ---- HTTP connection manager ---- */

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Config__Route__V3__Route Route;

static Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *
http_filter(struct pb_arena *a, const char *name, const char *url)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *f =
        PB_NEW(a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter,
               ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__INIT);
    f->name = pb_strdup(a, name);
    f->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    Envoy__Extensions__Filters__Http__Router__V3__Router *r =
        PB_NEW(a, Envoy__Extensions__Filters__Http__Router__V3__Router,
               ENVOY__EXTENSIONS__FILTERS__HTTP__ROUTER__V3__ROUTER__INIT);
    f->typed_config = pb_any(a, url, &r->base);
    return f;
}

/* An HCM with stat_prefix "backend", no route specifier, and the router
 * (after `extra`, an HTTP filter, when given). */
static Hcm *hcm_new(struct pb_arena *a, const char *extra)
{
    Hcm *h = PB_NEW(
        a, Hcm,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__INIT);
    h->stat_prefix = pb_strdup(a, "backend");
    h->http_filters = pb_alloc(a, 2 * sizeof(void *));
    if (extra)
        h->http_filters[h->n_http_filters++] =
            http_filter(a, extra, "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua");
    h->http_filters[h->n_http_filters++] =
        http_filter(a, "envoy.filters.http.router", XDS_URL_ROUTER);
    return h;
}

static Route *route_prefix(struct pb_arena *a, const char *prefix, const char *cluster)
{
    Route *r = PB_NEW(a, Route, ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT);
    r->match = PB_NEW(a, Envoy__Config__Route__V3__RouteMatch,
                      ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT);
    r->match->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    r->match->prefix = pb_strdup(a, prefix);
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = PB_NEW(a, Envoy__Config__Route__V3__RouteAction,
                      ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT);
    if (cluster) {
        r->route->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        r->route->cluster = pb_strdup(a, cluster);
    }
    return r;
}

/* Kuma's HTTP outbound: a route for /v2 to the v2 subset (weighted cluster
 * with metadata_match), a header route, a regex route with a timeout and a
 * retry policy, and the default route; the inbound-style header removal. */
TEST(xds_map_http_connection_manager)
{
    struct pb_arena a = {0};
    Route **routes = pb_alloc(&a, 4 * sizeof(void *));
    routes[0] = route_prefix(&a, "/v2", NULL);
    Envoy__Config__Route__V3__WeightedCluster *wc =
        PB_NEW(&a, Envoy__Config__Route__V3__WeightedCluster,
               ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__INIT);
    wc->n_clusters = 1;
    wc->clusters = pb_alloc(&a, sizeof(void *));
    wc->clusters[0] = PB_NEW(&a, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight,
                             ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__CLUSTER_WEIGHT__INIT);
    wc->clusters[0]->name = pb_strdup(&a, "backend-v2");
    wc->clusters[0]->weight = pb_u32(&a, 1);
    struct xds_tag tag = {"version", "v2"};
    wc->clusters[0]->metadata_match = pb_metadata_tags(&a, "envoy.lb", &tag, 1);
    routes[0]->route->cluster_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
    routes[0]->route->weighted_clusters = wc;

    routes[1] = route_prefix(&a, "/", "backend");
    routes[1]->match->n_headers = 2;
    routes[1]->match->headers = pb_alloc(&a, 2 * sizeof(void *));
    for (int i = 0; i < 2; i++)
        routes[1]->match->headers[i] = PB_NEW(&a, Envoy__Config__Route__V3__HeaderMatcher,
                                              ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__INIT);
    routes[1]->match->headers[0]->name = pb_strdup(&a, "X-Version");
    routes[1]->match->headers[0]->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    routes[1]->match->headers[0]->string_match = pb_exact(&a, "v2");
    routes[1]->match->headers[1]->name = pb_strdup(&a, "x-debug");
    routes[1]->match->headers[1]->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
    routes[1]->match->headers[1]->present_match = 0; /* must be absent */

    routes[2] = route_prefix(&a, "", "backend");
    routes[2]->match->path_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
    routes[2]->match->safe_regex = PB_NEW(&a, Envoy__Type__Matcher__V3__RegexMatcher,
                                          ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__INIT);
    routes[2]->match->safe_regex->regex = pb_strdup(&a, "/items/[0-9]+");
    routes[2]->route->timeout = pb_duration(&a, 2, 500000000);
    routes[2]->route->retry_policy = PB_NEW(&a, Envoy__Config__Route__V3__RetryPolicy,
                                            ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__INIT);
    routes[2]->route->retry_policy->retry_on = pb_strdup(&a, "connect-failure,gateway-error");
    routes[2]->route->retry_policy->num_retries = pb_u32(&a, 4);
    routes[3] = route_prefix(&a, "/", "backend");
    routes[3]->match->n_query_parameters = 1;
    routes[3]->match->query_parameters = pb_alloc(&a, sizeof(void *));
    routes[3]->match->query_parameters[0] =
        PB_NEW(&a, Envoy__Config__Route__V3__QueryParameterMatcher,
               ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__INIT);
    routes[3]->match->query_parameters[0]->name = pb_strdup(&a, "v");
    routes[3]->match->query_parameters[0]->query_parameter_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH;
    routes[3]->match->query_parameters[0]->string_match = pb_exact(&a, "2");
    routes[3]->route->cluster_not_found_response_code =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__NOT_FOUND;

    Envoy__Config__Route__V3__VirtualHost *vh = PB_NEW(
        &a, Envoy__Config__Route__V3__VirtualHost, ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT);
    vh->name = pb_strdup(&a, "backend");
    vh->n_domains = 1;
    vh->domains = pb_alloc(&a, sizeof(char *));
    vh->domains[0] = pb_strdup(&a, "*");
    vh->n_routes = 4;
    vh->routes = routes;
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        PB_NEW(&a, Envoy__Config__Route__V3__RouteConfiguration,
               ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT);
    rc->name = pb_strdup(&a, "outbound:backend");
    rc->n_virtual_hosts = 1;
    rc->virtual_hosts = pb_alloc(&a, sizeof(void *));
    rc->virtual_hosts[0] = vh;
    rc->n_request_headers_to_remove = 1;
    rc->request_headers_to_remove = pb_alloc(&a, sizeof(char *));
    rc->request_headers_to_remove[0] = pb_strdup(&a, "X-Kuma-Tags");
    Hcm *h = hcm_new(&a, NULL);
    h->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
    h->route_config = rc;
    h->stream_idle_timeout = pb_duration(&a, 0, 0);
    /* An HTTP RBAC filter in front of the router (its rules: allow web). */
    Envoy__Config__Rbac__V3__Principal **ps = pb_alloc(&a, sizeof(void *));
    ps[0] = principal_name(&a, "spiffe://default/web");
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *hr =
        PB_NEW(&a, Envoy__Extensions__Filters__Http__Rbac__V3__RBAC,
               ENVOY__EXTENSIONS__FILTERS__HTTP__RBAC__V3__RBAC__INIT);
    hr->rules = ((Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *)rbac(&a, ps, 1))->rules;
    h->http_filters[1] = h->http_filters[0];
    h->http_filters[0] = http_filter(&a, "envoy.filters.http.rbac", XDS_URL_ROUTER);
    h->http_filters[0]->typed_config =
        pb_any(&a, "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC", &hr->base);
    h->n_http_filters = 2;
    Envoy__Config__Listener__V3__Filter **fs = pb_alloc(&a, sizeof(void *));
    fs[0] = pb_filter(&a, "envoy.filters.network.http_connection_manager", XDS_URL_HCM, &h->base);
    Listener *l = listener(&a, "outbound:127.0.0.1:10001", NULL, fs, 1);

    Cluster *c1 = eds_cluster(&a, "backend", NULL);
    Cluster *c2 = eds_cluster(&a, "backend-v2", "backend");
    const ProtobufCMessage *cms[2] = {&c1->base, &c2->base};
    const char *eps[] = {"10.0.0.2:v1", "10.0.0.3:v2"};
    struct err e = {{0}};
    struct dp_xds_set *sets[DP_XDS_NTYPES] = {
        [DP_XDS_LDS] = decode1(DP_XDS_LDS, &l->base),
        [DP_XDS_CDS] = decode_n(DP_XDS_CDS, cms, 2, &e),
        [DP_XDS_EDS] = decode1(DP_XDS_EDS, cla(&a, "backend", eps, 2)),
    };
    struct dp_config *cfg = NULL;
    int missing;
    ASSERT_INT_EQ(dp_xds_build(sets, &cfg, &missing, &e), 0);
    const struct dp_listener *dl = &cfg->listeners[0];
    ASSERT(dl->hcm);
    ASSERT_STR_EQ(dl->hcm->stat_prefix, "backend");
    ASSERT_INT_EQ(dl->hcm->stream_idle_timeout_ms, UINT32_MAX); /* 0s: disabled */
    ASSERT(dl->hcm->rbac);
    ASSERT_STR_EQ(dl->hcm->rbac->stat_prefix, "http.backend.");
    ASSERT_INT_EQ(dl->hcm->rbac->action, DP_RBAC_ALLOW);
    ASSERT_INT_EQ(dl->hcm->rbac->n_policies, 1);
    ASSERT_STR_EQ(dl->hcm->rbac->policies[0].principals[0].principal_name.value,
                  "spiffe://default/web");
    const struct dp_http_route_config *drc = &dl->hcm->route_config;
    ASSERT_STR_EQ(drc->name, "outbound:backend");
    ASSERT_INT_EQ(drc->n_request_headers_to_remove, 1);
    ASSERT_STR_EQ(drc->request_headers_to_remove[0], "x-kuma-tags");
    ASSERT_INT_EQ(drc->n_vhosts, 1);
    ASSERT_STR_EQ(drc->vhosts[0].domains[0], "*");
    ASSERT_INT_EQ(drc->vhosts[0].n_routes, 4);
    const struct dp_http_route *r = drc->vhosts[0].routes;
    /* The subset route is flattened into a STATIC cluster of v2's endpoints. */
    ASSERT_INT_EQ(r[0].match.path_kind, DP_HTTP_PATH_PREFIX);
    ASSERT_STR_EQ(r[0].match.path, "/v2");
    const struct dp_cluster *w = dp_config_find_cluster(cfg, r[0].cluster);
    ASSERT(w);
    ASSERT_INT_EQ(w->type, DP_CLUSTER_STATIC);
    ASSERT_INT_EQ(w->load_assignment.n_endpoints, 1);
    ASSERT_STR_EQ(w->load_assignment.endpoints[0].address.address, "10.0.0.3");
    ASSERT_STR_EQ(r[1].cluster, "backend");
    ASSERT_INT_EQ(r[1].match.n_headers, 2);
    ASSERT_STR_EQ(r[1].match.headers[0].name, "x-version");
    ASSERT_INT_EQ(r[1].match.headers[0].kind, DP_HTTP_MATCH_EXACT);
    ASSERT_STR_EQ(r[1].match.headers[0].value, "v2");
    ASSERT_INT_EQ(r[1].match.headers[1].kind, DP_HTTP_MATCH_PRESENT);
    ASSERT_INT_EQ(r[1].match.headers[1].invert, 1);
    ASSERT_INT_EQ(r[2].match.path_kind, DP_HTTP_PATH_REGEX);
    ASSERT_STR_EQ(r[2].match.path, "/items/[0-9]+");
    ASSERT_INT_EQ(r[2].timeout_ms, 2500);
    ASSERT_STR_EQ(r[2].retry_on, "connect-failure,gateway-error");
    ASSERT_INT_EQ(r[2].num_retries, 4);
    ASSERT_INT_EQ(r[3].timeout_ms, 0);
    ASSERT_INT_EQ(r[3].match.n_query, 1);
    ASSERT_STR_EQ(r[3].match.query[0].name, "v");
    ASSERT_INT_EQ(r[3].match.query[0].kind, DP_HTTP_MATCH_EXACT);
    ASSERT_INT_EQ(r[3].cluster_not_found_status, 404);
    ASSERT_INT_EQ(r[1].cluster_not_found_status, 503);
    ASSERT(!r[3].retry_on);
    /* The listener dump shows the HCM (and so does its fingerprint). */
    char *dump = dp_config_dump_json(cfg);
    ASSERT_STR_CONTAINS(dump, "envoy.filters.network.http_connection_manager");
    ASSERT_STR_CONTAINS(dump, "envoy.filters.http.rbac");
    ASSERT_STR_CONTAINS(dump, "\"safeRegex\"");
    ASSERT_STR_CONTAINS(dump, "\"/items/[0-9]+\"");
    free(dump);
    dp_config_free(cfg);
    free_sets(sets);
    pb_arena_free(&a);
}

/* Kuma's principals for sources with several tags (and_ids of the SPIFFE id
 * and kuma:// names) and an Allow minus a Deny (and_ids with a not_id). */
TEST(xds_map_rbac_and_not_principals)
{
    struct pb_arena a = {0};
    Envoy__Config__Rbac__V3__Principal **two = pb_alloc(&a, 2 * sizeof(void *));
    two[0] = principal_name(&a, "spiffe://default/web");
    two[1] = principal_name(&a, "kuma://version/v1");
    Envoy__Config__Rbac__V3__Principal **carve = pb_alloc(&a, 2 * sizeof(void *));
    carve[0] = principal_name(&a, "spiffe://default/web");
    carve[1] = principal_not(&a, principal_name(&a, "kuma://version/v2"));
    Envoy__Config__Rbac__V3__Principal **ps = pb_alloc(&a, 2 * sizeof(void *));
    ps[0] = principal_set(&a, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS, two, 2);
    ps[1] = principal_set(&a, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS, carve, 2);
    Envoy__Config__Listener__V3__Filter **fs = pb_alloc(&a, 2 * sizeof(void *));
    fs[0] = pb_filter(&a, "envoy.filters.network.rbac", XDS_URL_NETWORK_RBAC, rbac(&a, ps, 2));
    fs[1] =
        pb_filter(&a, "envoy.filters.network.tcp_proxy", XDS_URL_TCP_PROXY, &tcp(&a, "x")->base);
    struct dp_xds_set *sets[DP_XDS_NTYPES] = {
        [DP_XDS_LDS] = decode1(DP_XDS_LDS, &listener(&a, "l", NULL, fs, 2)->base)};
    struct dp_config *cfg = NULL;
    int missing = -1;
    struct err e = {{0}};
    ASSERT_INT_EQ(dp_xds_build(sets, &cfg, &missing, &e), 0);
    const struct dp_rbac_policy *p = &cfg->listeners[0].rbac->policies[0];
    ASSERT_INT_EQ(p->n_principals, 2);
    ASSERT_INT_EQ(p->principals[0].set, DP_RBAC_AND);
    ASSERT_INT_EQ(p->principals[0].n_ids, 2);
    ASSERT_STR_EQ(p->principals[0].ids[0].principal_name.value, "spiffe://default/web");
    ASSERT_STR_EQ(p->principals[0].ids[1].principal_name.value, "kuma://version/v1");
    ASSERT_INT_EQ(p->principals[1].set, DP_RBAC_AND);
    ASSERT_INT_EQ(p->principals[1].ids[1].set, DP_RBAC_NOT);
    ASSERT_INT_EQ(p->principals[1].ids[1].n_ids, 1);
    ASSERT_STR_EQ(p->principals[1].ids[1].ids[0].principal_name.value, "kuma://version/v2");
    /* The config dump shows Envoy's shape. */
    char *dump = dp_config_dump_json(cfg);
    ASSERT_STR_CONTAINS(dump, "\"andIds\"");
    ASSERT_STR_CONTAINS(dump, "\"notId\"");
    free(dump);
    dp_config_free(cfg);
    free_sets(sets);
    pb_arena_free(&a);
}

static void expect_refused(const ProtobufCMessage *m, enum dp_xds_type t, const char *why)
{
    struct err e = {{0}};
    struct dp_xds_set *sets[DP_XDS_NTYPES] = {0};
    sets[t] = decode1(t, m);
    struct dp_config *cfg = NULL;
    int missing;
    if (dp_xds_build(sets, &cfg, &missing, &e) == 0)
        TEST_FAIL_("built a configuration that should be refused (%s)", why);
    ASSERT_STR_CONTAINS(e.msg, why);
    free_sets(sets);
}

/* What would change semantics is refused with a reason (the NACK's detail). */
TEST(xds_map_refusals)
{
    struct pb_arena a = {0};
    /* An HTTP connection manager with RDS (kuma-dp takes inline route
     * configurations only), and one with an HTTP filter it does not know. */
    Hcm *hcm = hcm_new(&a, NULL);
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm->rds = PB_NEW(&a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds,
                      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__RDS__INIT);
    hcm->rds->route_config_name = pb_strdup(&a, "r");
    Envoy__Config__Listener__V3__Filter **fs = pb_alloc(&a, sizeof(void *));
    fs[0] = pb_filter(&a, "envoy.filters.network.http_connection_manager", XDS_URL_HCM, &hcm->base);
    expect_refused(&listener(&a, "l1", NULL, fs, 1)->base, DP_XDS_LDS, "RDS is not");
    Hcm *hcm2 = hcm_new(&a, "envoy.filters.http.lua");
    Envoy__Config__Listener__V3__Filter **fs1 = pb_alloc(&a, sizeof(void *));
    fs1[0] =
        pb_filter(&a, "envoy.filters.network.http_connection_manager", XDS_URL_HCM, &hcm2->base);
    expect_refused(&listener(&a, "l1b", NULL, fs1, 1)->base, DP_XDS_LDS,
                   "HTTP filter envoy.filters.http.lua");
    /* A path rewrite (TrafficRoute modify, MeshHTTPRoute URLRewrite). */
    Hcm *hcm3 = hcm_new(&a, NULL);
    Envoy__Config__Route__V3__VirtualHost *vh3 = PB_NEW(
        &a, Envoy__Config__Route__V3__VirtualHost, ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT);
    vh3->name = pb_strdup(&a, "v");
    vh3->n_domains = 1;
    vh3->domains = pb_alloc(&a, sizeof(char *));
    vh3->domains[0] = pb_strdup(&a, "*");
    vh3->n_routes = 1;
    vh3->routes = pb_alloc(&a, sizeof(void *));
    vh3->routes[0] = route_prefix(&a, "/", "backend");
    vh3->routes[0]->route->prefix_rewrite = pb_strdup(&a, "/new");
    hcm3->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
    hcm3->route_config = PB_NEW(&a, Envoy__Config__Route__V3__RouteConfiguration,
                                ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT);
    hcm3->route_config->n_virtual_hosts = 1;
    hcm3->route_config->virtual_hosts = pb_alloc(&a, sizeof(void *));
    hcm3->route_config->virtual_hosts[0] = vh3;
    Envoy__Config__Listener__V3__Filter **fs3 = pb_alloc(&a, sizeof(void *));
    fs3[0] =
        pb_filter(&a, "envoy.filters.network.http_connection_manager", XDS_URL_HCM, &hcm3->base);
    expect_refused(&listener(&a, "l1c", NULL, fs3, 1)->base, DP_XDS_LDS,
                   "path and host rewrites are not supported");

    /* An empty principal set, and principals nested too deep. */
    Envoy__Config__Rbac__V3__Principal **ps = pb_alloc(&a, sizeof(void *));
    ps[0] = principal_set(&a, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS, NULL, 0);
    Envoy__Config__Listener__V3__Filter **fs2 = pb_alloc(&a, 2 * sizeof(void *));
    fs2[0] = pb_filter(&a, "envoy.filters.network.rbac", XDS_URL_NETWORK_RBAC, rbac(&a, ps, 1));
    fs2[1] =
        pb_filter(&a, "envoy.filters.network.tcp_proxy", XDS_URL_TCP_PROXY, &tcp(&a, "x")->base);
    expect_refused(&listener(&a, "l2", NULL, fs2, 2)->base, DP_XDS_LDS, "at least one id");
    Envoy__Config__Rbac__V3__Principal *deep = principal_name(&a, "spiffe://default/web");
    for (int i = 0; i < DP_RBAC_MAX_DEPTH + 2; i++)
        deep = principal_not(&a, deep);
    Envoy__Config__Rbac__V3__Principal **ps2 = pb_alloc(&a, sizeof(void *));
    ps2[0] = deep;
    Envoy__Config__Listener__V3__Filter **fs4 = pb_alloc(&a, 2 * sizeof(void *));
    fs4[0] = pb_filter(&a, "envoy.filters.network.rbac", XDS_URL_NETWORK_RBAC, rbac(&a, ps2, 1));
    fs4[1] = fs2[1];
    expect_refused(&listener(&a, "l4", NULL, fs4, 2)->base, DP_XDS_LDS, "nested deeper");

    /* Two filter chains (PERMISSIVE mTLS). */
    Listener *l3 = listener(&a, "l3", NULL, fs2 + 1, 1);
    Envoy__Config__Listener__V3__FilterChain **fcs = pb_alloc(&a, 2 * sizeof(void *));
    fcs[0] = fcs[1] = l3->filter_chains[0];
    l3->filter_chains = fcs;
    l3->n_filter_chains = 2;
    expect_refused(&l3->base, DP_XDS_LDS, "only behind a tls_inspector");

    /* DNS clusters. */
    Cluster *c = eds_cluster(&a, "dns", NULL);
    c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS;
    expect_refused(&c->base, DP_XDS_CDS, "discovery type");

    /* Secrets from files. */
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *s = (void *)secret(&a, "s", 1);
    s->validation_context->trusted_ca->specifier_case =
        ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
    s->validation_context->trusted_ca->filename = pb_strdup(&a, "/etc/ca.pem");
    expect_refused(&s->base, DP_XDS_SDS, "only inline data sources");
    pb_arena_free(&a);
}

/* Decoding: the Any's type must match the response's; names are unique;
 * transparent-proxy listeners are skipped, not refused. */
TEST(xds_map_decode_rules)
{
    struct pb_arena a = {0};
    Cluster *c = eds_cluster(&a, "backend", NULL);
    struct enc en;
    en.data = pb_pack(&c->base, &en.len);
    const void *vals[2] = {en.data, en.data};
    size_t lens[2] = {en.len, en.len};
    const char *urls[2] = {dp_xds_type_url(DP_XDS_LDS), dp_xds_type_url(DP_XDS_CDS)};
    struct dp_xds_set *s = NULL;
    struct err e = {{0}};
    ASSERT_INT_EQ(dp_xds_set_decode(DP_XDS_CDS, "1", vals, lens, urls, 1, &s, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "in a CDS response");
    urls[0] = urls[1];
    ASSERT_INT_EQ(dp_xds_set_decode(DP_XDS_CDS, "1", vals, lens, urls, 2, &s, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "duplicate CDS resource backend");
    ASSERT_INT_EQ(dp_xds_set_decode(DP_XDS_CDS, "1", vals, lens, urls, 1, &s, &e), 0);
    ASSERT_INT_EQ(dp_xds_set_size(s), 1);
    ASSERT_STR_EQ(dp_xds_set_version(s), "1");
    dp_xds_set_free(s);
    free(en.data);
    ASSERT_INT_EQ(dp_xds_type_from_url(dp_xds_type_url(DP_XDS_SDS)), DP_XDS_SDS);
    ASSERT_INT_EQ(dp_xds_type_from_url("type.googleapis.com/nope"), -1);

    Envoy__Config__Listener__V3__Filter **fs = pb_alloc(&a, sizeof(void *));
    fs[0] =
        pb_filter(&a, "envoy.filters.network.tcp_proxy", XDS_URL_TCP_PROXY, &tcp(&a, "x")->base);
    /* Transparent proxying: the redirect listener (use_original_dst), a
     * listener bound to no port, an ORIGINAL_DST cluster with its
     * CLUSTER_PROVIDED lb_policy and an upstream bind address. */
    Listener *ls[2];
    ls[0] = listener(&a, "outbound:passthrough:ipv4", NULL, fs, 1);
    ls[0]->use_original_dst = pb_bool(&a, 1);
    ls[1] = listener(&a, "inbound:10.0.0.1:80", NULL, fs, 1);
    ls[1]->bind_to_port = pb_bool(&a, 0);
    Cluster *od = eds_cluster(&a, "x", NULL);
    od->eds_cluster_config = NULL;
    od->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
    od->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
    od->upstream_bind_config =
        PB_NEW(&a, Envoy__Config__Core__V3__BindConfig, ENVOY__CONFIG__CORE__V3__BIND_CONFIG__INIT);
    od->upstream_bind_config->source_address = pb_socket_address(&a, "127.0.0.6", 0);
    const ProtobufCMessage *lms[2] = {&ls[0]->base, &ls[1]->base};
    struct dp_xds_set *sets[DP_XDS_NTYPES] = {[DP_XDS_LDS] = decode_n(DP_XDS_LDS, lms, 2, &e),
                                              [DP_XDS_CDS] = decode1(DP_XDS_CDS, &od->base)};
    struct dp_config *cfg = NULL;
    int missing;
    ASSERT_INT_EQ(dp_xds_build(sets, &cfg, &missing, &e), 0);
    ASSERT_INT_EQ(cfg->n_listeners, 2);
    ASSERT_INT_EQ(cfg->listeners[0].use_original_dst, 1);
    ASSERT_INT_EQ(cfg->listeners[0].no_bind, 0);
    ASSERT_INT_EQ(cfg->listeners[1].use_original_dst, 0);
    ASSERT_INT_EQ(cfg->listeners[1].no_bind, 1);
    ASSERT_INT_EQ(cfg->n_clusters, 1);
    ASSERT_INT_EQ(cfg->clusters[0].type, DP_CLUSTER_ORIGINAL_DST);
    ASSERT_STR_EQ(cfg->clusters[0].upstream_bind_address, "127.0.0.6");
    char *dump = dp_config_dump_json(cfg);
    ASSERT_STR_CONTAINS(dump, "\"useOriginalDst\": true");
    ASSERT_STR_CONTAINS(dump, "\"bindToPort\": false");
    ASSERT_STR_CONTAINS(dump, "\"type\": \"ORIGINAL_DST\"");
    free(dump);
    dp_config_free(cfg);
    free_sets(sets);
    /* CLUSTER_PROVIDED is an ORIGINAL_DST policy only. */
    od->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
    expect_refused(&od->base, DP_XDS_CDS, "lb_policy 6 is not supported");
    pb_arena_free(&a);
}
