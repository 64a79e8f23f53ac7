/*
 * validate — Kuma's resource validators: the same rules, field paths and
 * messages as Kuma 2.14 (see shared/reference/kuma-2.14.md §2), applied to a
 * resource's JSON spec. Static validators (res_type.validate) need nothing but
 * the resource; the manager-level checks below also look at the old version.
 */
#ifndef CORE_VALIDATE_H
#define CORE_VALIDATE_H

#include "core/types.h"

struct resource;
struct verr;

/* Per-type static validators, referenced from the type table. */
res_validate_fn validate_mesh;
res_validate_fn validate_dataplane;
res_validate_fn validate_external_service;
res_validate_fn validate_secret;
res_validate_fn validate_traffic_permission;
res_validate_fn validate_traffic_route;
res_validate_fn validate_traffic_log;
res_validate_fn validate_traffic_trace;
res_validate_fn validate_health_check;
res_validate_fn validate_circuit_breaker;
res_validate_fn validate_retry;
res_validate_fn validate_timeout;
res_validate_fn validate_fault_injection;
res_validate_fn validate_rate_limit;
res_validate_fn validate_mesh_gateway;
res_validate_fn validate_target_ref_policy;
/* MeshHTTPRoute and MeshTCPRoute (validate_routes.c). */
res_validate_fn validate_mesh_http_route;
res_validate_fn validate_mesh_tcp_route;

/* Meta rules (§2.4): name (RFC 1123 subdomain, <= 253) and, for mesh-scoped
 * types, mesh. */
void validate_meta(const struct resource *r, struct verr *ve);

/* Manager-level Mesh rules (§2.3) on create: name length, mTLS backend types
 * and the builtin backend's name rules. */
void validate_mesh_create(const struct resource *r, struct verr *ve);
/* On update: refuses a CA change while mTLS stays enabled, then the backend
 * rules again. */
void validate_mesh_update(const struct resource *old, const struct resource *r, struct verr *ve);

/* A Dataplane against its mesh's constraints.dataplaneProxy (requirements and
 * restrictions on its tags). */
void validate_dataplane_constraints(const struct resource *mesh, const struct resource *dp,
                                    struct verr *ve);

/* Defaulting on create/update (§1.2): Mesh prometheus backends. */
void resource_default(struct resource *r);

#endif
