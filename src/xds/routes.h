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

/* generator.c's route action (cluster or weighted clusters, timeout,
 * retries), shared with this module. */
Envoy__Config__Route__V3__RouteAction *xds__route_action(struct pb_arena *a,
                                                         const struct xds_split *sp, size_t n,
                                                         const struct xds_conn_policy *cp);

#endif
