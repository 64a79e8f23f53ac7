/*
 * api/inspect — the REST endpoints built on the xDS server's insights and
 * generated configuration (reference §6):
 *
 *   GET /meshes/{mesh}/dataplanes+insights[/{name}]
 *   GET /meshes/{mesh}/dataplanes/_overview, /meshes/{mesh}/dataplanes/{name}/_overview
 *   GET /dataplanes/_overview, /dataplanes+insights
 *   GET /meshes/{mesh}/dataplanes/{name}/_config
 *   GET /meshes/{mesh}/dataplanes/{name}/{xds|stats|clusters}  (the proxy's
 *       admin, fetched over the network: see api_inspect_set_admin_tls)
 *
 * Insights are in memory (the xDS server's), never flushed to the store, so
 * reading them never triggers a regeneration.
 */
#ifndef API_INSPECT_H
#define API_INSPECT_H

#include <stddef.h>

struct xds_server;

/* Called by kuma-cp once the DP server runs (NULL before it stops). Until
 * then every dataplane reads as offline. Thread-safe. */
void api_inspect_set_xds(struct xds_server *x);

/* The envoy admin CA and kuma-cp's client certificate and key (PEM, owned
 * by the caller, valid until it passes NULLs after the API stopped). With
 * them, GET /meshes/{m}/dataplanes/{n}/{xds|stats|clusters} connects to the
 * dataplane's TLS admin listener (kuma:envoy:admin on networking.address at
 * its admin port), verifies the server certificate against the CA and the
 * address, presents the client certificate and returns the answer. A
 * dataplane on 127.0.0.1 is asked over plain HTTP, as Kuma does. */
void api_inspect_set_admin_tls(const char *ca_pem, const char *client_cert_pem,
                               const char *client_key_pem);

/* Dataplanes of mesh with at least one xDS stream on this instance. */
size_t api_inspect_online(const char *mesh);

#endif
