/* pb — see pb.h. */
#include "xds/pb.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "xds/names.h"

struct pb_chunk {
    struct pb_chunk *prev;
    size_t size;
    _Alignas(16) unsigned char data[];
};

#define PB_CHUNK 8192

void *pb_alloc(struct pb_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!size)
        size = 16;
    if (!a->head || a->used + size > a->size) {
        size_t cs = size > PB_CHUNK / 2 ? size : (a->head ? a->size * 2 : PB_CHUNK);
        if (cs > 256 * 1024 && size <= 256 * 1024)
            cs = 256 * 1024;
        struct pb_chunk *c = xmalloc(sizeof(*c) + cs);
        c->size = cs;
        if (size > PB_CHUNK / 2 && a->head) {
            /* A big block of its own, behind the current chunk. */
            c->prev = a->head->prev;
            a->head->prev = c;
            memset(c->data, 0, size);
            return c->data;
        }
        c->prev = a->head;
        a->head = c;
        a->used = 0;
        a->size = cs;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *pb_strdup(struct pb_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *p = pb_alloc(a, n + 1);
    memcpy(p, s, n);
    return p;
}

void pb_arena_free(struct pb_arena *a)
{
    struct pb_chunk *c = a->head;
    while (c) {
        struct pb_chunk *prev = c->prev;
        free(c);
        c = prev;
    }
    a->head = NULL;
    a->used = a->size = 0;
}

Envoy__Config__Core__V3__SocketAddress *pb_socket_address(struct pb_arena *a, const char *ip,
                                                          uint32_t port)
{
    Envoy__Config__Core__V3__SocketAddress *sa = PB_NEW(
        a, Envoy__Config__Core__V3__SocketAddress, ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT);
    sa->address = pb_strdup(a, ip);
    sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa->port_value = port;
    return sa;
}

Envoy__Config__Core__V3__Address *pb_address(struct pb_arena *a, const char *ip, uint32_t port)
{
    Envoy__Config__Core__V3__Address *ad =
        PB_NEW(a, Envoy__Config__Core__V3__Address, ENVOY__CONFIG__CORE__V3__ADDRESS__INIT);
    ad->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    ad->socket_address = pb_socket_address(a, ip, port);
    return ad;
}

Google__Protobuf__BoolValue *pb_bool(struct pb_arena *a, int v)
{
    Google__Protobuf__BoolValue *b =
        PB_NEW(a, Google__Protobuf__BoolValue, GOOGLE__PROTOBUF__BOOL_VALUE__INIT);
    b->value = v ? 1 : 0;
    return b;
}

Google__Protobuf__UInt32Value *pb_u32(struct pb_arena *a, uint32_t v)
{
    Google__Protobuf__UInt32Value *u =
        PB_NEW(a, Google__Protobuf__UInt32Value, GOOGLE__PROTOBUF__UINT32_VALUE__INIT);
    u->value = v;
    return u;
}

Google__Protobuf__Duration *pb_duration(struct pb_arena *a, int64_t seconds, int32_t nanos)
{
    Google__Protobuf__Duration *d =
        PB_NEW(a, Google__Protobuf__Duration, GOOGLE__PROTOBUF__DURATION__INIT);
    d->seconds = seconds;
    d->nanos = nanos;
    return d;
}

Envoy__Config__Core__V3__ConfigSource *pb_ads_source(struct pb_arena *a)
{
    Envoy__Config__Core__V3__ConfigSource *cs = PB_NEW(
        a, Envoy__Config__Core__V3__ConfigSource, ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT);
    cs->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs->ads = PB_NEW(a, Envoy__Config__Core__V3__AggregatedConfigSource,
                     ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT);
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    return cs;
}

Envoy__Type__Matcher__V3__StringMatcher *pb_exact(struct pb_arena *a, const char *s)
{
    Envoy__Type__Matcher__V3__StringMatcher *m = PB_NEW(
        a, Envoy__Type__Matcher__V3__StringMatcher, ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT);
    m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
    m->exact = pb_strdup(a, s);
    return m;
}

Envoy__Type__Matcher__V3__StringMatcher *pb_prefix(struct pb_arena *a, const char *s)
{
    Envoy__Type__Matcher__V3__StringMatcher *m = PB_NEW(
        a, Envoy__Type__Matcher__V3__StringMatcher, ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT);
    m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
    m->prefix = pb_strdup(a, s);
    return m;
}

Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *pb_sds(struct pb_arena *a,
                                                                      const char *name)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *c =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT);
    c->name = pb_strdup(a, name);
    c->sds_config = pb_ads_source(a);
    return c;
}

Envoy__Config__Core__V3__DataSource *pb_inline_bytes(struct pb_arena *a, const void *data,
                                                     size_t len)
{
    Envoy__Config__Core__V3__DataSource *ds =
        PB_NEW(a, Envoy__Config__Core__V3__DataSource, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT);
    ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    ds->inline_bytes.data = (uint8_t *)data;
    ds->inline_bytes.len = len;
    return ds;
}

Envoy__Extensions__TransportSockets__Tls__V3__Secret *
pb_secret_tls_certificate(struct pb_arena *a, const char *name, const void *cert, size_t cert_len,
                          const void *key, size_t key_len)
{
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT);
    tc->certificate_chain = pb_inline_bytes(a, cert, cert_len);
    tc->private_key = pb_inline_bytes(a, key, key_len);
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__Secret,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT);
    sec->name = pb_strdup(a, name);
    sec->type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
    sec->tls_certificate = tc;
    return sec;
}

Envoy__Extensions__TransportSockets__Tls__V3__Secret *
pb_secret_trusted_ca(struct pb_arena *a, const char *name, const char *ca_pem)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT);
    vc->trusted_ca = pb_inline_bytes(a, ca_pem, strlen(ca_pem));
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__Secret,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT);
    sec->name = pb_strdup(a, name);
    sec->type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
    sec->validation_context = vc;
    return sec;
}

Envoy__Config__Core__V3__TransportSocket *pb_tls_socket(struct pb_arena *a, const char *url,
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

Envoy__Config__Route__V3__Route *pb_route(struct pb_arena *a,
                                          Envoy__Config__Route__V3__RouteMatch *m,
                                          Envoy__Config__Route__V3__RouteAction *ra)
{
    Envoy__Config__Route__V3__Route *r =
        PB_NEW(a, Envoy__Config__Route__V3__Route, ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT);
    r->match = m;
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = ra;
    return r;
}

Envoy__Config__Route__V3__Route *pb_prefix_route(struct pb_arena *a, const char *prefix,
                                                 const char *cluster)
{
    Envoy__Config__Route__V3__RouteMatch *m = PB_NEW(a, Envoy__Config__Route__V3__RouteMatch,
                                                     ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT);
    m->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    m->prefix = pb_strdup(a, prefix);
    Envoy__Config__Route__V3__RouteAction *ra = PB_NEW(
        a, Envoy__Config__Route__V3__RouteAction, ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT);
    ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    ra->cluster = pb_strdup(a, cluster);
    return pb_route(a, m, ra);
}

Envoy__Config__Route__V3__VirtualHost *pb_virtual_host(struct pb_arena *a, const char *name,
                                                       Envoy__Config__Route__V3__Route **routes,
                                                       size_t n)
{
    Envoy__Config__Route__V3__VirtualHost *vh = PB_NEW(
        a, Envoy__Config__Route__V3__VirtualHost, ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT);
    vh->name = pb_strdup(a, name);
    vh->n_domains = 1;
    vh->domains = pb_alloc(a, sizeof(char *));
    vh->domains[0] = pb_strdup(a, "*");
    vh->n_routes = n;
    vh->routes = routes;
    return vh;
}

Envoy__Config__Route__V3__RouteConfiguration *
pb_route_config(struct pb_arena *a, const char *name, Envoy__Config__Route__V3__VirtualHost *vh)
{
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        PB_NEW(a, Envoy__Config__Route__V3__RouteConfiguration,
               ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT);
    if (name)
        rc->name = pb_strdup(a, name);
    rc->n_virtual_hosts = 1;
    rc->virtual_hosts = pb_alloc(a, sizeof(*rc->virtual_hosts));
    rc->virtual_hosts[0] = vh;
    return rc;
}

Envoy__Config__Listener__V3__Filter *pb_filter(struct pb_arena *a, const char *name,
                                               const char *url, const ProtobufCMessage *msg)
{
    Envoy__Config__Listener__V3__Filter *f =
        PB_NEW(a, Envoy__Config__Listener__V3__Filter, ENVOY__CONFIG__LISTENER__V3__FILTER__INIT);
    f->name = pb_strdup(a, name);
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = pb_any(a, url, msg);
    return f;
}

Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *
pb_http_filter(struct pb_arena *a, const char *name, const char *url, const ProtobufCMessage *msg)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf =
        PB_NEW(a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter,
               ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__INIT);
    hf->name = pb_strdup(a, name);
    hf->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    hf->typed_config = pb_any(a, url, msg);
    return hf;
}

Envoy__Config__Listener__V3__FilterChain *pb_filter_chain(struct pb_arena *a,
                                                          Envoy__Config__Listener__V3__Filter *f)
{
    Envoy__Config__Listener__V3__FilterChain *fc =
        PB_NEW(a, Envoy__Config__Listener__V3__FilterChain,
               ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN__INIT);
    fc->n_filters = 1;
    fc->filters = pb_alloc(a, sizeof(*fc->filters));
    fc->filters[0] = f;
    return fc;
}

Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
pb_hcm(struct pb_arena *a, const char *stat_prefix,
       Envoy__Config__Route__V3__RouteConfiguration *rc)
{
    Envoy__Extensions__Filters__Http__Router__V3__Router *router =
        PB_NEW(a, Envoy__Extensions__Filters__Http__Router__V3__Router,
               ENVOY__EXTENSIONS__FILTERS__HTTP__ROUTER__V3__ROUTER__INIT);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf =
        pb_http_filter(a, "envoy.filters.http.router", XDS_URL_ROUTER, &router->base);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm = PB_NEW(
        a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__INIT);
    hcm->stat_prefix = pb_strdup(a, stat_prefix);
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
    hcm->route_config = rc;
    hcm->n_http_filters = 1;
    hcm->http_filters = pb_alloc(a, sizeof(*hcm->http_filters));
    hcm->http_filters[0] = hf;
    return hcm;
}

Envoy__Config__Listener__V3__Filter *pb_hcm_filter(
    struct pb_arena *a,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm)
{
    return pb_filter(a, "envoy.filters.network.http_connection_manager", XDS_URL_HCM, &hcm->base);
}

Envoy__Config__Cluster__V3__Cluster *
pb_cluster(struct pb_arena *a, const char *name,
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
    c->connect_timeout = pb_duration(a, PB_CONNECT_TIMEOUT_S, 0);
    return c;
}

Envoy__Config__Endpoint__V3__LbEndpoint *pb_lb_endpoint(struct pb_arena *a, const char *ip,
                                                        uint32_t port)
{
    Envoy__Config__Endpoint__V3__LbEndpoint *lb = PB_NEW(
        a, Envoy__Config__Endpoint__V3__LbEndpoint, ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT);
    lb->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    lb->endpoint = PB_NEW(a, Envoy__Config__Endpoint__V3__Endpoint,
                          ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT);
    lb->endpoint->address = pb_address(a, ip, port);
    return lb;
}

Envoy__Config__Endpoint__V3__LbEndpoint *pb_eds_endpoint(struct pb_arena *a, const char *ip,
                                                         uint32_t port, const struct xds_tag *tags,
                                                         size_t ntags)
{
    Envoy__Config__Endpoint__V3__LbEndpoint *lb = pb_lb_endpoint(a, ip, port);
    if (ntags)
        lb->metadata = pb_metadata_tags(a, "envoy.lb", tags, ntags);
    lb->load_balancing_weight = pb_u32(a, 1);
    return lb;
}

Envoy__Config__Cluster__V3__Cluster *pb_static_cluster(struct pb_arena *a, const char *name,
                                                       const char *ip, uint32_t port)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        pb_cluster(a, name, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        PB_NEW(a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
               ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT);
    cla->cluster_name = pb_strdup(a, name);
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc =
        PB_NEW(a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
               ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
    loc->n_lb_endpoints = 1;
    loc->lb_endpoints = pb_alloc(a, sizeof(*loc->lb_endpoints));
    loc->lb_endpoints[0] = pb_lb_endpoint(a, ip, port);
    cla->n_endpoints = 1;
    cla->endpoints = pb_alloc(a, sizeof(*cla->endpoints));
    cla->endpoints[0] = loc;
    c->load_assignment = cla;
    return c;
}

Envoy__Config__Endpoint__V3__LocalityLbEndpoints *
pb_cla_locality(struct pb_arena *a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla,
                size_t n)
{
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc =
        PB_NEW(a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
               ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
    loc->locality =
        PB_NEW(a, Envoy__Config__Core__V3__Locality, ENVOY__CONFIG__CORE__V3__LOCALITY__INIT);
    loc->load_balancing_weight = pb_u32(a, 1);
    loc->lb_endpoints = pb_alloc(a, n * sizeof(*loc->lb_endpoints));
    cla->n_endpoints = 1;
    cla->endpoints = pb_alloc(a, sizeof(*cla->endpoints));
    cla->endpoints[0] = loc;
    return loc;
}

Envoy__Config__Core__V3__HeaderValueOption *pb_header_option(struct pb_arena *a, const char *key,
                                                             const char *value)
{
    Envoy__Config__Core__V3__HeaderValueOption *o =
        PB_NEW(a, Envoy__Config__Core__V3__HeaderValueOption,
               ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__INIT);
    o->header = PB_NEW(a, Envoy__Config__Core__V3__HeaderValue,
                       ENVOY__CONFIG__CORE__V3__HEADER_VALUE__INIT);
    o->header->key = pb_strdup(a, key);
    o->header->value = pb_strdup(a, value);
    return o;
}

Envoy__Config__Core__V3__TransportSocket *
pb_downstream_tls_socket(struct pb_arena *a,
                         Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ctx,
                         int require_client_cert)
{
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__INIT);
    d->common_tls_context = ctx;
    d->require_client_certificate = pb_bool(a, require_client_cert);
    return pb_tls_socket(a, XDS_URL_DOWNSTREAM_TLS, &d->base);
}

Google__Protobuf__Any *pb_any(struct pb_arena *a, const char *type_url, const ProtobufCMessage *msg)
{
    Google__Protobuf__Any *any = PB_NEW(a, Google__Protobuf__Any, GOOGLE__PROTOBUF__ANY__INIT);
    any->type_url = pb_strdup(a, type_url);
    size_t n = protobuf_c_message_get_packed_size(msg);
    any->value.data = pb_alloc(a, n);
    any->value.len = protobuf_c_message_pack(msg, any->value.data);
    return any;
}

Envoy__Config__Core__V3__Metadata *pb_metadata_tags(struct pb_arena *a, const char *filter,
                                                    const struct xds_tag *tags, size_t n)
{
    Google__Protobuf__Struct *st =
        PB_NEW(a, Google__Protobuf__Struct, GOOGLE__PROTOBUF__STRUCT__INIT);
    st->n_fields = n;
    st->fields = pb_alloc(a, n * sizeof(*st->fields));
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__Struct__FieldsEntry *fe = PB_NEW(
            a, Google__Protobuf__Struct__FieldsEntry, GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT);
        fe->key = pb_strdup(a, tags[i].key);
        fe->value = PB_NEW(a, Google__Protobuf__Value, GOOGLE__PROTOBUF__VALUE__INIT);
        fe->value->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        fe->value->string_value = pb_strdup(a, tags[i].value);
        st->fields[i] = fe;
    }
    Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *e =
        PB_NEW(a, Envoy__Config__Core__V3__Metadata__FilterMetadataEntry,
               ENVOY__CONFIG__CORE__V3__METADATA__FILTER_METADATA_ENTRY__INIT);
    e->key = pb_strdup(a, filter);
    e->value = st;
    Envoy__Config__Core__V3__Metadata *md =
        PB_NEW(a, Envoy__Config__Core__V3__Metadata, ENVOY__CONFIG__CORE__V3__METADATA__INIT);
    md->n_filter_metadata = 1;
    md->filter_metadata = pb_alloc(a, sizeof(*md->filter_metadata));
    md->filter_metadata[0] = e;
    return md;
}

uint8_t *pb_pack(const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xmalloc(n ? n : 1);
    *len = protobuf_c_message_pack(msg, buf);
    return buf;
}
