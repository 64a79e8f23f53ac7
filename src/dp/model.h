/*
 * model — the proxy's configuration model, one C struct per Envoy v3 resource
 * kuma-dp consumes: Listener (with its tcp_proxy, network RBAC and
 * DownstreamTlsContext), Cluster (with its UpstreamTlsContext and outlier
 * detection), ClusterLoadAssignment and Secret. Field names follow the protos
 * (envoy.config.listener.v3.Listener, envoy.config.cluster.v3.Cluster, ...), so
 * the xDS client of the next phase fills it field by field.
 *
 * A model is plain data with one owner. It is built (by the xDS client, or by
 * tests in code), then handed to dp_engine_apply(), which takes ownership and
 * treats it as immutable from then on. Every string is owned by the model
 * (heap-allocated) and freed by dp_config_free().
 */
#ifndef DP_MODEL_H
#define DP_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* envoy.config.core.v3.SocketAddress (TCP only). Port 0 = ephemeral. */
struct dp_socket_address {
    char *address; /* IPv4 or IPv6 literal */
    uint32_t port_value;
};

/* envoy.type.matcher.v3.StringMatcher (exact, prefix, suffix). */
enum dp_match_kind { DP_MATCH_EXACT, DP_MATCH_PREFIX, DP_MATCH_SUFFIX };
struct dp_string_matcher {
    enum dp_match_kind kind;
    char *value;
};

/* CommonTlsContext, reduced to what Kuma sends: the identity certificate and
 * the validation context (mesh CA) both come from SDS secrets named
 * "identity_cert:secret:<mesh>" and "mesh_ca:secret:<mesh>"; URI SAN matchers
 * (match_typed_subject_alt_names with san_type URI); ALPN. */
struct dp_common_tls_context {
    char *tls_certificate_sds_secret;    /* name of a Secret with tls_certificate */
    char *validation_context_sds_secret; /* name of a Secret with validation_context */
    struct dp_string_matcher *match_subject_alt_names; /* URI SANs; any one must match */
    size_t n_match_subject_alt_names;
    char **alpn_protocols;
    size_t n_alpn_protocols;
};

/* envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext */
struct dp_downstream_tls_context {
    struct dp_common_tls_context common_tls_context;
    int require_client_certificate;
};

/* google.protobuf.UInt32Value: a value that may be unset. */
struct dp_uint32_value {
    int set;
    uint32_t value;
};

/* envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext */
struct dp_upstream_tls_context {
    struct dp_common_tls_context common_tls_context;
    char *sni;
    /* TLS sessions kept for resumption; unset → 1 (Envoy's default), 0 = none.
     * The engine keeps at most one per cluster whatever the value. */
    struct dp_uint32_value max_session_keys;
};

/* envoy.config.rbac.v3.Principal, reduced to what Kuma emits:
 * authenticated.principal_name matchers, `any`, and the sets and_ids /
 * or_ids / not_id over them (TrafficPermission sources and
 * MeshTrafficPermission targetRefs with several tags AND the SPIFFE id with
 * kuma://<tag>/<value> names; a Deny carved out of an Allow is a NOT). */
enum dp_rbac_set {
    DP_RBAC_LEAF = 0, /* any or principal_name */
    DP_RBAC_AND,      /* every one of ids */
    DP_RBAC_OR,       /* at least one of ids */
    DP_RBAC_NOT,      /* not ids[0] */
};
struct dp_rbac_principal {
    enum dp_rbac_set set;
    int any;                                 /* LEAF */
    struct dp_string_matcher principal_name; /* LEAF when !any */
    struct dp_rbac_principal *ids;           /* AND, OR, NOT */
    size_t n_ids;
};
/* Deepest principal tree accepted (xds_map refuses deeper ones). */
#define DP_RBAC_MAX_DEPTH 8
/* envoy.config.rbac.v3.Policy: permissions are always `any: true` for network
 * RBAC in Kuma, so only principals are modelled. */
struct dp_rbac_policy {
    char *name;
    struct dp_rbac_principal *principals;
    size_t n_principals;
};
enum dp_rbac_action { DP_RBAC_ALLOW, DP_RBAC_DENY };
/* envoy.extensions.filters.network.rbac.v3.RBAC (rules + stat_prefix). */
struct dp_rbac {
    char *stat_prefix; /* Kuma: "inbound_<ip>_<port>." */
    enum dp_rbac_action action;
    struct dp_rbac_policy *policies;
    size_t n_policies;
};

/* weighted_clusters as kuma-cp sent them (names and weights), kept for
 * /config_dump only: the engine uses the flattened cluster (xds_map.h). */
struct dp_weighted_cluster {
    char *name;
    uint32_t weight;
};
struct dp_weighted_clusters {
    struct dp_weighted_cluster *clusters;
    size_t n;
};

/* envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy */
struct dp_tcp_proxy {
    char *stat_prefix;
    char *cluster;
    struct dp_weighted_clusters weighted; /* n 0: a plain cluster */
    uint32_t max_connect_attempts;        /* 0 → 1 (Envoy's default) */
    uint32_t idle_timeout_ms;             /* 0 → 1 h (Envoy's default); UINT32_MAX = none */
};

/* --- HTTP (envoy.filters.network.http_connection_manager) ---------------------------------- */

/* envoy.type.matcher.v3.StringMatcher as routes use it, or HeaderMatcher's
 * present_match. */
enum dp_http_match_kind {
    DP_HTTP_MATCH_EXACT,
    DP_HTTP_MATCH_PREFIX,
    DP_HTTP_MATCH_SUFFIX,
    DP_HTTP_MATCH_CONTAINS,
    DP_HTTP_MATCH_REGEX, /* safe_regex (RE2); evaluated as POSIX ERE, anchored */
    DP_HTTP_MATCH_PRESENT,
};

/* envoy.config.route.v3.HeaderMatcher. Pseudo-headers :method, :path,
 * :authority and :scheme are matched as Envoy does. */
struct dp_http_header_matcher {
    char *name; /* lower case */
    enum dp_http_match_kind kind;
    char *value; /* unused for PRESENT */
    int ignore_case;
    int invert;
};

/* envoy.config.route.v3.RouteMatch: path_specifier and headers. */
enum dp_http_path_kind { DP_HTTP_PATH_PREFIX, DP_HTTP_PATH_EXACT, DP_HTTP_PATH_REGEX };
struct dp_http_route_match {
    enum dp_http_path_kind path_kind;
    char *path;
    struct dp_http_header_matcher *headers;
    size_t n_headers;
    /* RouteMatch.query_parameters (QueryParameterMatcher: string_match or
     * present_match), on the raw (undecoded) query string. */
    struct dp_http_header_matcher *query;
    size_t n_query;
};

/* envoy.config.route.v3.Route with a RouteAction. A weighted_clusters action
 * is flattened by the xDS mapping into one cluster (see xds_map.h), so a
 * route names exactly one cluster. */
struct dp_http_route {
    char *name;
    struct dp_http_route_match match;
    char *cluster;
    struct dp_weighted_clusters weighted; /* as sent; n 0: a plain cluster */
    uint32_t timeout_ms; /* RouteAction.timeout; 0 → 15 s (Envoy's default); UINT32_MAX = none */
    /* RetryPolicy: retry_on conditions and num_retries (unset → 1). */
    char *retry_on; /* NULL = no retry policy */
    uint32_t num_retries;
    /* cluster_not_found_response_code: 503 (default) or 404, 500. */
    int cluster_not_found_status;
};

/* envoy.config.route.v3.VirtualHost */
struct dp_http_vhost {
    char *name;
    char **domains; /* "*", "example.com", "*.example.com", "example.*" */
    size_t n_domains;
    struct dp_http_route *routes;
    size_t n_routes;
};

/* envoy.config.route.v3.RouteConfiguration (inline route_config). */
struct dp_http_route_config {
    char *name;
    struct dp_http_vhost *vhosts;
    size_t n_vhosts;
    char **request_headers_to_remove; /* lower case */
    size_t n_request_headers_to_remove;
};

/* envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
 * with the router filter. */
struct dp_http_conn_manager {
    char *stat_prefix;
    struct dp_http_route_config route_config;
    uint32_t idle_timeout_ms;        /* common_http_protocol_options.idle_timeout; 0 → 1 h */
    uint32_t stream_idle_timeout_ms; /* 0 → 5 min (Envoy's default) */
    /* envoy.filters.http.rbac before the router: its `rules`, enforced per
     * request (NULL = no filter, or a filter without rules). stat_prefix
     * is "http.<stat_prefix>." (Envoy's http.<prefix>.rbac.*). */
    struct dp_rbac *rbac;
};

enum dp_traffic_direction { DP_DIR_UNSPECIFIED, DP_DIR_INBOUND, DP_DIR_OUTBOUND };

/* envoy.config.listener.v3.Listener with one filter chain: optional TLS
 * transport socket, optional network RBAC, then tcp_proxy. */
struct dp_listener {
    char *name; /* "inbound:10.0.0.1:80", "outbound:127.0.0.1:10001" */
    struct dp_socket_address address;
    enum dp_traffic_direction traffic_direction;
    struct dp_downstream_tls_context *tls; /* NULL = plaintext */
    struct dp_rbac *rbac;                  /* NULL = no RBAC filter */
    struct dp_tcp_proxy tcp_proxy;         /* unused when hcm is set */
    struct dp_http_conn_manager *hcm;      /* NULL = tcp_proxy (main chain) */
    /* Kuma's PERMISSIVE inbound (a tls_inspector and filter chains by
     * transport protocol; docs/proxy.md "PERMISSIVE"): when `inspect` is
     * set the engine classifies each connection by its first bytes
     * (dp/sniff.h). A TLS ClientHello offering ALPN "kuma" takes the chain
     * above (the mTLS chain: tls, rbac, tcp_proxy); plaintext takes
     * raw_tcp_proxy (chain raw_buffer) and other TLS tls_tcp_proxy (chain
     * tls), both proxied as they are, without TLS termination or RBAC. A
     * class without a chain (NULL) is closed. */
    int inspect;
    struct dp_tcp_proxy *raw_tcp_proxy, *tls_tcp_proxy;
    /* PERMISSIVE with an HTTP connection manager (kuma.io/protocol http):
     * the plaintext chain holds the same HCM as the mTLS chain (Kuma copies
     * the inbound's filters), so plaintext connections are served by `hcm`
     * without TLS or network RBAC. */
    int raw_http;
    /* Transparent proxying (docs/transparent-proxy.md). bind_to_port false:
     * no socket; the listener only receives connections handed over by a
     * use_original_dst listener whose original destination it matches. */
    int no_bind;
    /* use_original_dst: hand each accepted connection to the listener that
     * matches its original destination (SO_ORIGINAL_DST); keep it when none
     * matches. */
    int use_original_dst;
};

/* envoy.config.endpoint.v3.LbEndpoint */
struct dp_lb_endpoint {
    struct dp_socket_address address;
    uint32_t load_balancing_weight; /* 0 → 1 */
    /* An endpoint of a flattened split (xds_map.h): the name of the real
     * cluster it came from, whose stats and host block it is counted under,
     * as Envoy counts a split under the cluster it picked. NULL = the
     * endpoint's own cluster. */
    char *stat_cluster;
};
/* envoy.config.endpoint.v3.ClusterLoadAssignment (one locality, priority 0). */
struct dp_cluster_load_assignment {
    char *cluster_name;
    struct dp_lb_endpoint *endpoints;
    size_t n_endpoints;
};

/* envoy.config.cluster.v3.OutlierDetection, local-origin (connect) failures. */
struct dp_outlier_detection {
    uint32_t consecutive_local_origin_failure; /* 0 → 5 */
    uint32_t base_ejection_time_ms;            /* 0 → 30 s */
    uint32_t max_ejection_time_ms;             /* 0 → 300 s */
    uint32_t max_ejection_percent;             /* 0 → 10; at least one host may go */
};

enum dp_lb_policy { DP_LB_ROUND_ROBIN, DP_LB_LEAST_REQUEST, DP_LB_RANDOM };
/* ORIGINAL_DST: no endpoints; each connection goes to its own original
 * destination (transparent proxying's passthrough). */
enum dp_discovery_type { DP_CLUSTER_STATIC, DP_CLUSTER_EDS, DP_CLUSTER_ORIGINAL_DST };

/* envoy.config.cluster.v3.Cluster */
struct dp_cluster {
    char *name;
    char *alt_stat_name; /* stats use this when set (Kuma: name with ':' → '_') */
    /* A flattened split (xds_map.h), not a cluster kuma-cp sent: left out of
     * /clusters, /stats and /config_dump as Envoy has no such cluster. Its
     * endpoints carry their real cluster (stat_cluster); alt_stat_name is the
     * first real cluster's, for what is counted before a host is picked. */
    int synthetic;
    enum dp_discovery_type type;
    uint32_t connect_timeout_ms; /* 0 → 5 s (Envoy's default) */
    enum dp_lb_policy lb_policy;
    struct dp_outlier_detection *outlier_detection; /* NULL = none */
    struct dp_upstream_tls_context *tls;            /* transport_socket; NULL = plaintext */
    /* upstream_bind_config.source_address (Kuma: 127.0.0.6 / ::6 under
     * transparent proxying, so iptables leaves the traffic alone); NULL = none */
    char *upstream_bind_address;
    /* STATIC clusters carry their endpoints inline; EDS clusters find theirs
     * among dp_config.endpoints by cluster_name. */
    struct dp_cluster_load_assignment load_assignment;
};

/* envoy.extensions.transport_sockets.tls.v3.Secret: either a certificate with
 * its key, or a validation context (trusted CA bundle). PEM text. */
struct dp_secret {
    char *name;
    char *certificate_chain; /* tls_certificate */
    char *private_key;
    char *trusted_ca; /* validation_context */
};

/* A complete configuration: what LDS, CDS, EDS and SDS together describe. */
struct dp_config {
    char *version_info;
    struct dp_listener *listeners;
    size_t n_listeners;
    struct dp_cluster *clusters;
    size_t n_clusters;
    struct dp_cluster_load_assignment *endpoints; /* EDS */
    size_t n_endpoints;
    struct dp_secret *secrets;
    size_t n_secrets;
};

struct dp_config *dp_config_new(const char *version_info);
void dp_config_free(struct dp_config *c);

/* Appenders return a zeroed element owned by c (pointers into c's arrays are
 * valid until the next append of the same kind). */
struct dp_listener *dp_config_add_listener(struct dp_config *c, const char *name,
                                           const char *address, uint32_t port);
struct dp_cluster *dp_config_add_cluster(struct dp_config *c, const char *name);
struct dp_cluster_load_assignment *dp_config_add_assignment(struct dp_config *c,
                                                            const char *cluster_name);
struct dp_secret *dp_config_add_secret(struct dp_config *c, const char *name);
struct dp_lb_endpoint *dp_cla_add_endpoint(struct dp_cluster_load_assignment *a,
                                           const char *address, uint32_t port, uint32_t weight);
struct dp_rbac_policy *dp_rbac_add_policy(struct dp_rbac *r, const char *name);
void dp_rbac_policy_add_principal(struct dp_rbac_policy *p, enum dp_match_kind kind,
                                  const char *value);
void dp_rbac_policy_add_any(struct dp_rbac_policy *p);
/* A compound principal (AND, OR, NOT) appended to p, or to a compound
 * principal; its members are added with dp_rbac_set_add. The returned
 * pointer is valid until the next append to the same array. */
struct dp_rbac_principal *dp_rbac_policy_add_set(struct dp_rbac_policy *p, enum dp_rbac_set set);
struct dp_rbac_principal *dp_rbac_set_add(struct dp_rbac_principal *set);
void dp_tls_add_san(struct dp_common_tls_context *t, enum dp_match_kind kind, const char *value);
void dp_tls_add_alpn(struct dp_common_tls_context *t, const char *proto);

/* HTTP model builders: zeroed elements owned by their parent. */
struct dp_http_vhost *dp_http_add_vhost(struct dp_http_route_config *rc, const char *name);
void dp_http_vhost_add_domain(struct dp_http_vhost *vh, const char *domain);
struct dp_http_route *dp_http_add_route(struct dp_http_vhost *vh, enum dp_http_path_kind kind,
                                        const char *path, const char *cluster);
struct dp_http_header_matcher *dp_http_route_add_header(struct dp_http_route *r, const char *name,
                                                        enum dp_http_match_kind kind,
                                                        const char *value);
struct dp_http_header_matcher *dp_http_route_add_query(struct dp_http_route *r, const char *name,
                                                       enum dp_http_match_kind kind,
                                                       const char *value);
void dp_http_conn_manager_free(struct dp_http_conn_manager *m);

/* Kuma's alt_stat_name for a cluster name: ':' replaced by '_'. Caller frees. */
char *dp_alt_stat_name(const char *cluster_name);

const struct dp_cluster *dp_config_find_cluster(const struct dp_config *c, const char *name);
const struct dp_secret *dp_config_find_secret(const struct dp_config *c, const char *name);
/* The endpoints of a cluster: inline for STATIC, from EDS otherwise (NULL if none). */
const struct dp_cluster_load_assignment *dp_config_cluster_endpoints(const struct dp_config *c,
                                                                     const struct dp_cluster *cl);

/* JSON in the shape of Envoy's /config_dump (ListenersConfigDump,
 * ClustersConfigDump, EndpointsConfigDump, SecretsConfigDump); private keys are
 * redacted as Envoy does ("[redacted]"). Caller frees. */
char *dp_config_dump_json(const struct dp_config *c);
/* A canonical JSON of one listener, used to tell a changed listener from an
 * unchanged one on a config swap. Caller frees. */
char *dp_listener_fingerprint(const struct dp_listener *l);

#endif
