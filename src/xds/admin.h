/*
 * xds/admin — the resources that expose a proxy's admin endpoints on its
 * address, as Kuma's AdminProxyGenerator (pkg/xds/generator/
 * admin_proxy_generator.go) builds them:
 *
 *   cluster  kuma:envoy:admin  STATIC 127.0.0.1:<admin port>
 *   cluster  kuma:readiness    STATIC 127.0.0.1:<admin port> (Kuma: the
 *                              readiness reporter's port; kuma-dp serves
 *                              /ready on its admin)
 *   listener kuma:envoy:admin  <networking.address>:<admin port>, INBOUND,
 *            listener filter envoy.filters.listener.tls_inspector, two chains:
 *            - plaintext: HCM, /ready -> kuma:readiness;
 *            - transport_protocol "tls": HCM, /ready -> kuma:readiness,
 *              / -> kuma:envoy:admin, DownstreamTlsContext with the server
 *              certificate and key inline, the envoy admin CA as inline
 *              trusted_ca and require_client_certificate (only kuma-cp's
 *              client certificate, issued by the same CA, gets in).
 *
 * The listener is left out when the proxy reported no admin port (node
 * metadata dataplane.admin.port), when its address is a loopback one (the
 * admin itself is bound there) or when there is no server certificate.
 * Called by the generator for sidecars and gateways, never for proxyless
 * clients.
 */
#ifndef XDS_ADMIN_H
#define XDS_ADMIN_H

#include <protobuf-c/protobuf-c.h>

#include "xds/generator.h"

#define XDS_ADMIN_NAME           "kuma:envoy:admin"
#define XDS_ADMIN_READINESS_NAME "kuma:readiness"

/* Receives each resource (type, name, message valid during the call). */
typedef void xds_admin_emit_fn(void *ctx, enum xds_type t, const char *name,
                               const ProtobufCMessage *m);

void xds_admin_resources(const struct xds_dataplane *dp, const struct xds_gen_opts *o,
                         xds_admin_emit_fn *emit, void *ctx);

#endif
