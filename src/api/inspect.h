/*
 * api/inspect — the REST endpoints built on the xDS server's insights and
 * generated configuration (reference §6):
 *
 *   GET /meshes/{mesh}/dataplanes+insights[/{name}]
 *   GET /meshes/{mesh}/dataplanes/_overview, /meshes/{mesh}/dataplanes/{name}/_overview
 *   GET /dataplanes/_overview, /dataplanes+insights
 *   GET /meshes/{mesh}/dataplanes/{name}/_config
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

/* Dataplanes of mesh with at least one xDS stream on this instance. */
size_t api_inspect_online(const char *mesh);

#endif
