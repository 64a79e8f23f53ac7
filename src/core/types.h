/*
 * types — the registry of resource types: Kuma's names, REST paths, kumactl
 * arguments, display names and scope, plus each type's validator. The table is
 * static and immutable; lookups never allocate.
 */
#ifndef CORE_TYPES_H
#define CORE_TYPES_H

#include <stddef.h>

struct resource;
struct verr;

enum res_scope { RES_SCOPE_MESH, RES_SCOPE_GLOBAL };

/* Validates a resource's spec (static rules only, no store access), appending
 * violations with Kuma's field paths and messages. */
typedef void res_validate_fn(const struct resource *r, struct verr *ve);

struct res_type {
    const char *name;             /* "TrafficPermission": the `type` field */
    const char *plural;           /* REST path segment: "traffic-permissions" */
    const char *singular_display; /* "Traffic Permission" */
    const char *plural_display;   /* "Traffic Permissions" */
    const char *short_name;       /* kri short name: "tp" */
    const char *kumactl_arg;      /* "traffic-permission" */
    const char *kumactl_list_arg; /* "traffic-permissions" */
    enum res_scope scope;
    int is_policy;     /* a policy (shown in /policies, _resources "policy") */
    int is_target_ref; /* a new-style targetRef policy (Mesh*) */
    int read_only;     /* not writable over REST / kumactl apply */
    int include_in_federation;
    res_validate_fn *validate; /* NULL = nothing to check */
};

/* All registered types, in a stable order; *n receives the count. */
const struct res_type *const *types_all(size_t *n);
/* Lookups; each returns NULL when unknown. */
const struct res_type *types_by_name(const char *name);
const struct res_type *types_by_plural(const char *plural);
/* Accepts kumactl's singular or plural argument ("mesh", "meshes"). */
const struct res_type *types_by_kumactl_arg(const char *arg);

extern const struct res_type TYPE_MESH;
extern const struct res_type TYPE_DATAPLANE;
extern const struct res_type TYPE_SECRET;
extern const struct res_type TYPE_GLOBAL_SECRET;
extern const struct res_type TYPE_TRAFFIC_PERMISSION;
extern const struct res_type TYPE_TRAFFIC_ROUTE;
extern const struct res_type TYPE_MESH_TIMEOUT;
extern const struct res_type TYPE_MESH_RETRY;
extern const struct res_type TYPE_MESH_CIRCUIT_BREAKER;
extern const struct res_type TYPE_EXTERNAL_SERVICE;
extern const struct res_type TYPE_TRAFFIC_LOG;
extern const struct res_type TYPE_TRAFFIC_TRACE;
extern const struct res_type TYPE_HEALTH_CHECK;
extern const struct res_type TYPE_CIRCUIT_BREAKER;
extern const struct res_type TYPE_RETRY;
extern const struct res_type TYPE_TIMEOUT;
extern const struct res_type TYPE_FAULT_INJECTION;
extern const struct res_type TYPE_RATE_LIMIT;
extern const struct res_type TYPE_MESH_GATEWAY;
extern const struct res_type TYPE_MESH_TRAFFIC_PERMISSION;
extern const struct res_type TYPE_MESH_HTTP_ROUTE;
extern const struct res_type TYPE_MESH_TCP_ROUTE;

#endif
