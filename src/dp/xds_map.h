/*
 * xds_map — Envoy v3 resources, as kuma-cp sends them over ADS, to the proxy
 * engine's model (model.h).
 *
 * The xDS client keeps, per type (LDS, CDS, EDS, SDS), the last resource set
 * of the state of the world: the decoded protobuf-c messages (src/proto, the
 * same types kuma-cp encodes with). dp_xds_build() maps the four sets
 * together into one struct dp_config for dp_engine_apply().
 *
 * What is mapped, and what is refused. The rule is Envoy's: what Envoy would
 * ignore is ignored; what the engine cannot do and whose absence would change
 * what the proxy lets through or where it sends it is refused with a message,
 * which the client sends back as a NACK (error_detail).
 *  - Listener: address.socket_address (TCP), traffic_direction, one filter
 *    chain with the tls transport socket (DownstreamTlsContext), the network
 *    RBAC filter and the tcp_proxy filter (cluster or weighted_clusters,
 *    idle_timeout, max_connect_attempts) or the HTTP connection manager
 *    (inline route_config: virtual hosts, path and header matchers, cluster
 *    or weighted_clusters, timeout, retry_policy, request_headers_to_remove;
 *    the http RBAC and router filters). Refused: api_listener, several
 *    filter chains, any other filter, RDS, HTTP/2 codecs, other HTTP filters
 *    (unless is_optional), RBAC
 *    action LOG and principals that are not `any`, `authenticated` or
 *    and_ids / or_ids / not_id of those (at most DP_RBAC_MAX_DEPTH deep);
 *    pipes and named ports. Transparent proxying: a listener with
 *    bind_to_port false gets no socket and is reached only by original
 *    destination from a use_original_dst listener (docs/transparent-proxy.md).
 *    The admin
 *    listener `kuma:envoy:admin` is mapped on its own (see map_admin_listener
 *    in xds_map.c): its TLS chain becomes a TLS listener proxying to the
 *    admin, its inline certificate, key and CA two model secrets.
 *  - Cluster: STATIC or EDS (eds_cluster_config.service_name honoured),
 *    connect_timeout, lb_policy (RING_HASH and MAGLEV are balanced as
 *    LEAST_REQUEST: both only spread load, and the engine has no hashing),
 *    outlier_detection (consecutive_5xx counts connect failures, as Envoy
 *    does for TCP when local-origin errors are not split),
 *    UpstreamTlsContext (SDS secrets, URI SAN matchers, ALPN, SNI),
 *    alt_stat_name. Ignored, as limits of the engine (see docs/proxy.md):
 *    circuit_breakers, health_checks. ORIGINAL_DST clusters connect to the
 *    connection's original destination, upstream_bind_config sets the
 *    source address; DNS types are refused.
 *  - weighted_clusters: the engine's tcp_proxy (and an HTTP route) has one
 *    cluster, so a split is flattened into one synthetic STATIC cluster named
 *    "<listener>:weighted" ("<listener>:<vhost>:<route>:weighted" for a
 *    route) whose endpoints are the endpoints of each weighted
 *    cluster (its EDS service, filtered by metadata_match against the
 *    endpoints' `envoy.lb` metadata, Kuma's subset rule with fallback to any
 *    endpoint), each weighted so that the smooth weighted round robin gives
 *    every cluster exactly its share. Its TLS context is the first
 *    cluster's, with the URI SAN matchers of all of them.
 *    The synthetic cluster is internal (dp_cluster.synthetic): each of its
 *    endpoints names the real cluster it came from (stat_cluster), and the
 *    engine counts every stat (upstream_cx_*, upstream_rq_* and per-code,
 *    bytes, connect failures, ejections) under that cluster's stats and host
 *    block, as Envoy counts a split under the cluster it picked; what comes
 *    before a host is picked goes to the first cluster (its alt_stat_name).
 *    It is left out of /stats, /clusters and /config_dump, where the
 *    listener or route shows its weighted_clusters as sent (names, weights:
 *    dp_weighted_clusters).
 *  - ClusterLoadAssignment: priority 0, every locality; endpoints whose
 *    health_status is UNHEALTHY, DRAINING or TIMEOUT are left out, as
 *    Envoy does.
 *  - Secret: tls_certificate and validation_context with inline bytes or
 *    strings (files are refused: kuma-cp never sends paths).
 */
#ifndef DP_XDS_MAP_H
#define DP_XDS_MAP_H

#include <stddef.h>

#include "core/util.h"
#include "dp/model.h"

enum dp_xds_type { DP_XDS_CDS, DP_XDS_EDS, DP_XDS_LDS, DP_XDS_SDS, DP_XDS_NTYPES };

/* Kuma's (Envoy's) type URL of a type, and back (-1 if unknown). */
const char *dp_xds_type_url(enum dp_xds_type t);
int dp_xds_type_from_url(const char *url);
/* "CDS", "EDS", ... */
const char *dp_xds_type_name(enum dp_xds_type t);

/* One type's resources from one DiscoveryResponse: decoded messages, owned. */
struct dp_xds_set;

/* Decodes the resources (google.protobuf.Any values) of a response of type t.
 * Each Any must carry t's type URL. Returns 0 with *out, or -1 with e set
 * (the client NACKs). */
int dp_xds_set_decode(enum dp_xds_type t, const char *version, const void *const *values,
                      const size_t *lens, const char *const *type_urls, size_t n,
                      struct dp_xds_set **out, struct err *e);
void dp_xds_set_free(struct dp_xds_set *s);
const char *dp_xds_set_version(const struct dp_xds_set *s);
size_t dp_xds_set_size(const struct dp_xds_set *s);

/* Maps the four sets (any may be NULL: nothing received yet) into a new
 * configuration. Returns 0 with *out, or -1 with e set when a resource cannot
 * be applied (unsupported in a way that changes semantics).
 * *missing_secret is set (and *out still produced) when a TLS context names
 * a secret SDS has not delivered yet: the caller waits for SDS before
 * applying, as Envoy keeps such listeners and clusters warming. */
int dp_xds_build(struct dp_xds_set *const sets[DP_XDS_NTYPES], struct dp_config **out,
                 int *missing_secret, struct err *e);

#endif
