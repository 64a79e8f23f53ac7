/*
 * xds/permissive — Kuma's PERMISSIVE mTLS inbound (mesh
 * mtls.backends[].mode: PERMISSIVE; pkg/xds/generator/
 * inbound_proxy_generator.go): the inbound listener accepts both mTLS and
 * plaintext. A tls_inspector listener filter classifies each connection
 * and three filter chains take it:
 *   1. transport_protocol raw_buffer: the inbound's filters without RBAC and
 *      without a transport socket (plaintext straight to the application);
 *   2. transport_protocol tls: the same (TLS the application terminates);
 *   3. transport_protocol tls + application_protocols [kuma]: the mTLS chain
 *      with RBAC, unchanged.
 * RBAC stays on the mTLS chain only, as Kuma 2.x's MeshTrafficPermission
 * plugin configures only chains with Kuma's TLS transport socket. Outbound
 * traffic still originates mTLS.
 */
#ifndef XDS_PERMISSIVE_H
#define XDS_PERMISSIVE_H

#include "xds/pb.h"

/* A new listener filter envoy.filters.listener.tls_inspector (in a). */
Envoy__Config__Listener__V3__ListenerFilter *xds_tls_inspector(struct pb_arena *a);

/* Rewrites l (one mTLS filter chain: transport socket, RBAC, proxy) into
 * the three PERMISSIVE chains behind a tls_inspector. plain_hcm, when not
 * NULL, replaces the HTTP connection manager in the plaintext chains (the
 * same manager without the HTTP RBAC filter, which guards the mTLS chain
 * only). Allocates in a. */
void xds_permissive_inbound(struct pb_arena *a, Envoy__Config__Listener__V3__Listener *l,
                            Envoy__Config__Listener__V3__Filter *plain_hcm);

#endif
