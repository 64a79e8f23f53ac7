/*
 * pb — small helpers to build Envoy messages with protobuf-c: an arena that
 * owns every piece of a message tree until it is packed, constructors for
 * the shapes every generator repeats (addresses, wrappers, Any), and the
 * type URLs. protobuf-c only serializes a oneof member whose *_case is set;
 * the constructors here always set it.
 */
#ifndef XDS_PB_H
#define XDS_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/core.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "envoy/type/matcher/v3/regex.pb-c.h"
#include "envoy/type/matcher/v3/string.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "xds/model.h"

#define XDS_TYPE_PREFIX   "type.googleapis.com/"
#define XDS_URL_LISTENER  XDS_TYPE_PREFIX "envoy.config.listener.v3.Listener"
#define XDS_URL_CLUSTER   XDS_TYPE_PREFIX "envoy.config.cluster.v3.Cluster"
#define XDS_URL_ENDPOINT  XDS_TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment"
#define XDS_URL_ROUTE     XDS_TYPE_PREFIX "envoy.config.route.v3.RouteConfiguration"
#define XDS_URL_SECRET    XDS_TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret"
#define XDS_URL_TCP_PROXY XDS_TYPE_PREFIX "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define XDS_URL_HCM                                                                                \
    XDS_TYPE_PREFIX "envoy.extensions.filters.network.http_connection_manager.v3."                 \
                    "HttpConnectionManager"
#define XDS_URL_HTTP_PROTOCOL_OPTIONS                                                              \
    XDS_TYPE_PREFIX "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define XDS_URL_ROUTER XDS_TYPE_PREFIX "envoy.extensions.filters.http.router.v3.Router"
#define XDS_URL_TLS_INSPECTOR                                                                      \
    XDS_TYPE_PREFIX "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
#define XDS_URL_NETWORK_RBAC XDS_TYPE_PREFIX "envoy.extensions.filters.network.rbac.v3.RBAC"
#define XDS_URL_UPSTREAM_TLS                                                                       \
    XDS_TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
#define XDS_URL_DOWNSTREAM_TLS                                                                     \
    XDS_TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"

/* Every allocation of one message tree; freed at once. A bump allocator over
 * chunks (most trees fit in the first one), so building a message costs a
 * few mallocs rather than one per node. Zero-initialize ({0}) before use. */
struct pb_chunk;
struct pb_arena {
    struct pb_chunk *head; /* current chunk, linked to the previous ones */
    size_t used, size;     /* in the current chunk */
};
void *pb_alloc(struct pb_arena *a, size_t size); /* zeroed */
char *pb_strdup(struct pb_arena *a, const char *s);
void pb_arena_free(struct pb_arena *a);

/* Allocates and initializes a message of the given protobuf-c type. */
#define PB_NEW(a, T, INIT)                                                                         \
    ({                                                                                             \
        T *m_ = pb_alloc((a), sizeof(T));                                                          \
        T init_ = INIT;                                                                            \
        *m_ = init_;                                                                               \
        m_;                                                                                        \
    })

Envoy__Config__Core__V3__Address *pb_address(struct pb_arena *a, const char *ip, uint32_t port);
Envoy__Config__Core__V3__SocketAddress *pb_socket_address(struct pb_arena *a, const char *ip,
                                                          uint32_t port);
Google__Protobuf__BoolValue *pb_bool(struct pb_arena *a, int v);
Google__Protobuf__UInt32Value *pb_u32(struct pb_arena *a, uint32_t v);
Google__Protobuf__Duration *pb_duration(struct pb_arena *a, int64_t seconds, int32_t nanos);
/* An ADS config source ({ads: {}, resourceApiVersion: V3}). */
Envoy__Config__Core__V3__ConfigSource *pb_ads_source(struct pb_arena *a);
/* A StringMatcher {exact: s} or {prefix: s}. */
Envoy__Type__Matcher__V3__StringMatcher *pb_exact(struct pb_arena *a, const char *s);
Envoy__Type__Matcher__V3__StringMatcher *pb_prefix(struct pb_arena *a, const char *s);
/* An SdsSecretConfig {name, sdsConfig: {ads: {}, resourceApiVersion: V3}}. */
Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *pb_sds(struct pb_arena *a,
                                                                      const char *name);
/* Packs msg into an Any with the given type URL (bytes live in the arena). */
Google__Protobuf__Any *pb_any(struct pb_arena *a, const char *type_url,
                              const ProtobufCMessage *msg);
/* Metadata {filter_metadata: {filter: {k: v...}}} from string tags. */
Envoy__Config__Core__V3__Metadata *pb_metadata_tags(struct pb_arena *a, const char *filter,
                                                    const struct xds_tag *tags, size_t n);

/* A DataSource {inlineBytes}: points at data (not copied), which must outlive
 * the packing of the message. */
Envoy__Config__Core__V3__DataSource *pb_inline_bytes(struct pb_arena *a, const void *data,
                                                     size_t len);
/* An SDS Secret {name, tlsCertificate: {certificateChain, privateKey}} with
 * both PEMs inline (not copied). */
Envoy__Extensions__TransportSockets__Tls__V3__Secret *
pb_secret_tls_certificate(struct pb_arena *a, const char *name, const void *cert, size_t cert_len,
                          const void *key, size_t key_len);
/* An SDS Secret {name, validationContext: {trustedCa}} with the CA PEM inline
 * (not copied). */
Envoy__Extensions__TransportSockets__Tls__V3__Secret *
pb_secret_trusted_ca(struct pb_arena *a, const char *name, const char *ca_pem);

/* A TransportSocket {name: envoy.transport_sockets.tls, typedConfig: ctx
 * packed as url} (an Upstream- or DownstreamTlsContext). */
Envoy__Config__Core__V3__TransportSocket *pb_tls_socket(struct pb_arena *a, const char *url,
                                                        const ProtobufCMessage *ctx);

/* A Route {match, route: ra}. */
Envoy__Config__Route__V3__Route *pb_route(struct pb_arena *a,
                                          Envoy__Config__Route__V3__RouteMatch *m,
                                          Envoy__Config__Route__V3__RouteAction *ra);
/* A Route {match: {prefix}, route: {cluster}}. */
Envoy__Config__Route__V3__Route *pb_prefix_route(struct pb_arena *a, const char *prefix,
                                                 const char *cluster);
/* A VirtualHost {name, domains: ["*"], routes} (routes is taken, not copied). */
Envoy__Config__Route__V3__VirtualHost *pb_virtual_host(struct pb_arena *a, const char *name,
                                                       Envoy__Config__Route__V3__Route **routes,
                                                       size_t n);
/* A RouteConfiguration {name (omitted when NULL), virtualHosts: [vh]}. */
Envoy__Config__Route__V3__RouteConfiguration *
pb_route_config(struct pb_arena *a, const char *name, Envoy__Config__Route__V3__VirtualHost *vh);
/* A network filter {name, typedConfig: msg packed as url}. */
Envoy__Config__Listener__V3__Filter *pb_filter(struct pb_arena *a, const char *name,
                                               const char *url, const ProtobufCMessage *msg);
/* An HTTP filter {name, typedConfig: msg packed as url}. */
Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *
pb_http_filter(struct pb_arena *a, const char *name, const char *url, const ProtobufCMessage *msg);
/* A FilterChain {filters: [f]}. */
Envoy__Config__Listener__V3__FilterChain *pb_filter_chain(struct pb_arena *a,
                                                          Envoy__Config__Listener__V3__Filter *f);
/* An HTTP connection manager {statPrefix, routeConfig: rc, httpFilters:
 * [envoy.filters.http.router]}; callers add their own settings. */
Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
pb_hcm(struct pb_arena *a, const char *stat_prefix,
       Envoy__Config__Route__V3__RouteConfiguration *rc);
/* A network filter envoy.filters.network.http_connection_manager holding hcm. */
Envoy__Config__Listener__V3__Filter *pb_hcm_filter(
    struct pb_arena *a,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm);

/* A HeaderValueOption {header: {key, value}}; append options are the
 * caller's. */
Envoy__Config__Core__V3__HeaderValueOption *pb_header_option(struct pb_arena *a, const char *key,
                                                             const char *value);
/* Kuma's default cluster connect timeout. */
#define PB_CONNECT_TIMEOUT_S 5
/* A Cluster {name, altStatName, type, connectTimeout: 5s}. */
Envoy__Config__Cluster__V3__Cluster *
pb_cluster(struct pb_arena *a, const char *name,
           Envoy__Config__Cluster__V3__Cluster__DiscoveryType type);
/* A STATIC cluster (pb_cluster) whose load assignment is the one endpoint
 * ip:port. */
Envoy__Config__Cluster__V3__Cluster *pb_static_cluster(struct pb_arena *a, const char *name,
                                                       const char *ip, uint32_t port);
/* An LbEndpoint {endpoint: {address: ip:port}}. */
Envoy__Config__Endpoint__V3__LbEndpoint *pb_lb_endpoint(struct pb_arena *a, const char *ip,
                                                        uint32_t port);
/* An EDS LbEndpoint: pb_lb_endpoint with loadBalancingWeight 1 and the
 * tags (when any) as envoy.lb metadata. */
Envoy__Config__Endpoint__V3__LbEndpoint *pb_eds_endpoint(struct pb_arena *a, const char *ip,
                                                         uint32_t port, const struct xds_tag *tags,
                                                         size_t ntags);
/* Gives cla its one EDS locality {locality: {}, loadBalancingWeight: 1} with
 * room for n endpoints (n_lb_endpoints starts at 0); returns it. The weight
 * must be set or xDS clients drop the locality. */
Envoy__Config__Endpoint__V3__LocalityLbEndpoints *
pb_cla_locality(struct pb_arena *a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla,
                size_t n);

/* pb_tls_socket of a DownstreamTlsContext {commonTlsContext: ctx,
 * requireClientCertificate: require_client_cert}. */
Envoy__Config__Core__V3__TransportSocket *
pb_downstream_tls_socket(struct pb_arena *a,
                         Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ctx,
                         int require_client_cert);

/* Serializes msg into a new malloc'd buffer; *len gets its size. */
uint8_t *pb_pack(const ProtobufCMessage *msg, size_t *len);

#endif
