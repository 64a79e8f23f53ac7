/*
 * policies — which of a mesh's policies apply to one proxy, and what they
 * say, in the terms the generator needs (docs/xds.md "Policies"):
 *
 *  - permissions: TrafficPermission (legacy) and MeshTrafficPermission →
 *    the network RBAC rules of an inbound (mTLS only);
 *  - routes: TrafficRoute → the weighted destinations and load balancer of
 *    an outbound;
 *  - connection settings: MeshTimeout / MeshRetry / MeshCircuitBreaker and
 *    legacy Timeout / Retry / CircuitBreaker / HealthCheck → connect and idle
 *    timeouts, connect attempts, circuit-breaker thresholds, outlier
 *    detection and health checks of a cluster.
 *
 * Pure functions of a snapshot and a dataplane; everything returned is owned
 * by the caller (or by the arena passed in).
 */
#ifndef XDS_POLICIES_H
#define XDS_POLICIES_H

#include <stdint.h>

#include "xds/pb.h"
#include "xds/snapshot.h"

/* The RBAC rules of an inbound (Kuma's semantics: with no permission
 * selecting it, an ALLOW action without policies, which denies everything).
 * *origin is "MeshTrafficPermission", "TrafficPermission" or "none". */
Envoy__Config__Rbac__V3__RBAC *xds_inbound_rbac(struct pb_arena *a,
                                                const struct xds_mesh_snapshot *snap,
                                                const struct xds_dataplane *dp,
                                                const struct xds_inbound *in, const char **origin);

/* One destination of an outbound after routing. */
struct xds_split {
    char *service;        /* kuma.io/service of the destination */
    struct xds_tag *tags; /* further tags (sorted), the subset */
    size_t ntags;
    uint32_t weight;
    char *cluster; /* <service>, or <service>-<16 hex> for a subset */
};

/* One `conf.http[]` entry of a TrafficRoute (HTTP outbounds only), or, when
 * the route's mesh_http is set, one match of a MeshHTTPRoute rule. */
struct xds_http_route {
    const json_t *match; /* {path, method, headers}, borrowed from the snapshot */
    struct xds_split *splits;
    size_t n;
    /* MeshHTTPRoute only (routes.c): the rule's filters (borrowed), the
     * route name (the hash of the rule's matches), and mirror_only for the
     * extra entries that only carry RequestMirror destinations (their
     * clusters are generated, no route). */
    const json_t *filters;
    char *name;
    int mirror_only;
    /* TrafficRoute only: the entry's `modify` (borrowed), or NULL. */
    const json_t *modify;
};

struct xds_route {
    struct xds_split *splits; /* weight > 0 only; at least one */
    size_t n;
    int lb_policy;               /* Cluster.LbPolicy, or -1 when the route sets none */
    struct xds_http_route *http; /* in order, before the default route */
    size_t n_http;
    /* MeshHTTPRoute (routes.c): http[] holds the sorted routes of the
     * outbound, the default one included (no route is appended). */
    int mesh_http;
    /* MeshTCPRoute applies and no MeshHTTPRoute: a TCP listener even for an
     * HTTP service. */
    int force_tcp;
};

/* The route of dp's outbound to service: MeshHTTPRoute / MeshTCPRoute when
 * they apply (xds_mesh_route), else the best TrafficRoute, or a single
 * destination (the service itself) when none applies. */
void xds_outbound_route(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                        const char *service, struct xds_route *out);
void xds_route_free(struct xds_route *r);

/* routes.c: the MeshHTTPRoute / MeshTCPRoute route of dp's outbound to
 * service. Returns 0 (out untouched) when the legacy TrafficRoute applies
 * instead: Kuma's rule, the mesh has TrafficRoutes and no Mesh*Route with
 * `to` entries selects dp. Otherwise fills out and returns 1. */
int xds_mesh_route(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                   const char *service, struct xds_route *out);

/* Shared with routes.c: the specificity of a top-level targetRef that
 * selects dp (-1: it does not), and the cluster name of a split whose
 * service and sorted tags are set. */
int xds_policy_target_rank(const json_t *ref, const struct xds_dataplane *dp);
void xds_split_set_cluster(struct xds_split *s);

#define XDS_UNSET (-1)

/* Connection settings of a cluster (XDS_UNSET = leave Envoy's default). */
struct xds_conn_policy {
    int64_t connect_timeout_ms, idle_timeout_ms;
    int64_t max_connect_attempts;
    int64_t max_connections, max_pending_requests, max_requests, max_retries;
    int outlier; /* outlier detection configured */
    int64_t outlier_consecutive_5xx, outlier_interval_ms, outlier_base_ejection_ms,
        outlier_max_ejection_percent;
    int health_check; /* legacy HealthCheck */
    int64_t hc_interval_ms, hc_timeout_ms, hc_unhealthy, hc_healthy;
    /* HTTP (MeshTimeout `http`, legacy Timeout `conf.http`): route timeout,
     * HCM stream idle timeout, max stream duration; idle_timeout_ms is the
     * HCM's and the upstream's connection idle timeout. */
    int64_t request_timeout_ms, stream_idle_timeout_ms, max_stream_duration_ms;
    int64_t request_headers_timeout_ms;
    /* HTTP retries (MeshRetry `http`/`grpc`, legacy Retry `conf.http`/`conf.grpc`). */
    int retry;
    int64_t retry_num, retry_per_try_ms, retry_base_ms, retry_max_ms;
    char retry_on[256]; /* Envoy's comma list */
    uint32_t retry_codes[16];
    size_t n_retry_codes;
};

/* Of dp's outbound cluster(s) to service. */
void xds_outbound_conn_policy(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                              const char *service, struct xds_conn_policy *out);
/* The same with the protocol of the outbound (HTTP retries read `http` or
 * `grpc`). */
void xds_outbound_conn_policy_proto(const struct xds_mesh_snapshot *snap,
                                    const struct xds_dataplane *dp, const char *service,
                                    enum xds_protocol proto, struct xds_conn_policy *out);
/* Of an inbound (MeshTimeout `from`). */
void xds_inbound_conn_policy(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                             const struct xds_inbound *in, struct xds_conn_policy *out);

/* Of a builtin gateway's listeners: Kuma's gateway defaults (idle 5m,
 * stream idle 5s, request headers 500ms), then the MeshTimeout `from`
 * entries selecting the gateway. */
void xds_gateway_conn_policy(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                             struct xds_conn_policy *out);

/* The MeshGateway a builtin gateway dataplane serves: the one whose
 * `selectors[].match` best matches its tags (ties: first name), or NULL. */
const struct xds_policy *xds_builtin_gateway(const struct xds_mesh_snapshot *snap,
                                             const struct xds_dataplane *dp);

/* Kuma's SNI for a cluster of service with subset tags (SNIFromTags):
 * "<service>{mesh=<mesh>,k=v,...}", keys sorted. Caller frees. */
char *xds_sni(const char *mesh, const char *service, const struct xds_tag *tags, size_t n);

#endif
