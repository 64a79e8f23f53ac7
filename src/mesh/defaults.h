/*
 * defaults — the resources Kuma creates with every new mesh (2.6+ set):
 * MeshTimeout mesh-gateways-timeout-all-<mesh> and mesh-timeout-all-<mesh>,
 * MeshCircuitBreaker mesh-circuit-breaker-all-<mesh>, MeshRetry
 * mesh-retry-all-<mesh>, and with routing resources enabled TrafficPermission
 * allow-all-<mesh> and TrafficRoute route-all-<mesh>. A type listed in the
 * mesh's skipCreatingInitialPolicies (or "*") is skipped.
 */
#ifndef MESH_DEFAULTS_H
#define MESH_DEFAULTS_H

#include "core/resource.h"

/* Appends the default resources for mesh to out (caller frees them). */
void defaults_mesh_resources(const struct resource *mesh, int routing_resources,
                             struct resource_list *out);

#endif
