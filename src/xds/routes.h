/*
 * routes — Kuma 2.x route policies on sidecar outbounds (docs/xds.md
 * "MeshHTTPRoute and MeshTCPRoute"):
 *
 *  - which routes apply (xds_mesh_route, declared in policies.h next to the
 *    legacy TrafficRoute it replaces): Kuma's precedence, merge order and
 *    Gateway API rule ordering;
 *  - the Envoy routes of an HTTP outbound routed by MeshHTTPRoute: matches
 *    (path Exact / PathPrefix / RegularExpression, method, headers, query
 *    parameters), filters (RequestHeaderModifier, ResponseHeaderModifier,
 *    RequestRedirect, URLRewrite, RequestMirror) and weighted backends.
 *
 * Pure functions of the snapshot and the dataplane; Envoy messages live in
 * the caller's arena.
 */
#ifndef XDS_ROUTES_H
#define XDS_ROUTES_H

#include <stddef.h>

#include "xds/pb.h"
#include "xds/policies.h"

/* The routes of rt (rt->mesh_http set) in order; *n receives the count. The
 * policies' HTTP settings (timeout, retries) come from cp. */
Envoy__Config__Route__V3__Route **xds_mesh_http_routes(struct pb_arena *a,
                                                       const struct xds_route *rt,
                                                       const struct xds_conn_policy *cp, size_t *n);

/* ---- builtin gateways ---- */

/* A virtual host of a gateway's route configuration and its routes
 * (rt.mesh_http set; http[] in order, no default route). */
struct xds_gw_vhost {
    char *name; /* the hostname, also the only domain; "*" for any */
    struct xds_route rt;
};

/* The virtual hosts of gateway gw's listeners of protocol ("HTTP", "HTTPS")
 * on port (only the listener of `hostname`, "*" for none, when not NULL),
 * from the MeshHTTPRoutes whose top-level targetRef is `MeshGateway <gw>`
 * (its tags, if any, a subset of the listener's tags: the gateway
 * dataplane's tags, then the listener's) with `to` entries of kind Mesh: one
 * per hostname — a listener's hostname, narrowed by the routes' hostnames —
 * with the rules of every entry whose hostname covers it, most specific
 * route first, then sorted as sidecar routes. Exact names first, then
 * wildcards longest first. NULL and *n = 0 when no route attaches to the
 * port. */
struct xds_gw_vhost *xds_gateway_vhosts(const struct xds_mesh_snapshot *snap,
                                        const struct xds_dataplane *dp, const struct xds_policy *gw,
                                        const char *protocol, uint32_t port, const char *hostname,
                                        size_t *n);
void xds_gateway_vhosts_free(struct xds_gw_vhost *v, size_t n);

/* Route weighted clusters over the n splits: each its cluster, weight and
 * (when it has tags) an envoy.lb metadata match. Outbound and gateway
 * route actions share it. */
Envoy__Config__Route__V3__WeightedCluster *
xds_route_weighted_clusters(struct pb_arena *a, const struct xds_split *sp, size_t n);

/* The Envoy routes of a gateway virtual host: Kuma's gateway route action
 * (weighted clusters adding `x-kuma-tags: &kuma.io/service=<gateway>&`,
 * clusterNotFoundResponseCode INTERNAL_SERVER_ERROR) and the filters. */
Envoy__Config__Route__V3__Route **xds_gateway_http_routes(struct pb_arena *a,
                                                          const struct xds_route *rt,
                                                          const char *gateway_service, size_t *n);

/* The MeshTCPRoute of a gateway TCP listener (the most specific attached
 * route's first rule): 1 and out->splits, or 0 when none attaches. */
int xds_gateway_tcp_route(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                          const struct xds_policy *gw, const json_t *listener,
                          struct xds_route *out);

/* A TrafficRoute `conf.http[].modify` on its Envoy route (Kuma's legacy
 * RoutesConfigurer): path.rewritePrefix → prefixRewrite, path.regex →
 * regexRewrite, host.value → hostRewriteLiteral, host.fromPath →
 * hostRewritePathRegex, request/responseHeaders add (appendAction
 * APPEND_IF_EXISTS_OR_ADD with `append`, else OVERWRITE_IF_EXISTS_OR_ADD) and
 * remove. modify may be NULL (nothing to do). */
void xds_traffic_route_modify(struct pb_arena *a, Envoy__Config__Route__V3__Route *r,
                              const json_t *modify);

/* generator.c's route action (cluster or weighted clusters, timeout,
 * retries), shared with this module. */
Envoy__Config__Route__V3__RouteAction *xds__route_action(struct pb_arena *a,
                                                         const struct xds_split *sp, size_t n,
                                                         const struct xds_conn_policy *cp);

#endif
