/*
 * manager — the resource manager: every write from the REST API (and so from
 * kumactl) goes parse → default → validate → store, then publishes change
 * events after the commit. It owns the Mesh rules: default resources created
 * with a mesh, refusal to delete a mesh that still has dataplanes, CA-change
 * rules, and dataplane constraints of the mesh.
 *
 * Thread-safe: called from the API server's threads; the store serialises
 * writes and detects concurrent updates (MGR_ECONFLICT).
 */
#ifndef MESH_MANAGER_H
#define MESH_MANAGER_H

#include "core/resource.h"
#include "core/verr.h"
#include "mesh/events.h"
#include "store/store.h"

enum mgr_code {
    MGR_OK = 0,
    MGR_ENOTFOUND,       /* the resource does not exist */
    MGR_EMESH_NOT_FOUND, /* the mesh a resource names does not exist */
    MGR_EINVALID,        /* validation failed: see verr */
    MGR_ECONFLICT,       /* someone else updated it first */
    MGR_EEXIST,          /* create of an existing resource */
    MGR_EBAD,            /* bad request: see msg */
    MGR_EINTERNAL,       /* the store failed: see msg */
};

/* What went wrong, for the caller to turn into a response. */
struct mgr_result {
    enum mgr_code code;
    int manager_level; /* validation came from manager rules, not the static validator */
    struct verr ve;
    char msg[1024];
};
void mgr_result_free(struct mgr_result *res);

struct manager_config {
    int create_mesh_routing_resources; /* KUMA_DEFAULTS_CREATE_MESH_ROUTING_RESOURCES */
    int unsafe_delete;                 /* KUMA_STORE_UNSAFE_DELETE */
};

struct manager;

struct manager *manager_new(struct store *st, struct event_bus *bus,
                            const struct manager_config *cfg);
void manager_free(struct manager *m);
struct store *manager_store(struct manager *m);

/* Runs defaulting and static validation only (what Kuma does while
 * unmarshalling a request). Returns MGR_OK or MGR_EINVALID. */
int manager_check(struct manager *m, struct resource *r, struct mgr_result *res);

/*
 * Creates or updates r (decided by a prior get, as Kuma's PUT does). On
 * update, r->version is ignored and the stored version is used for the
 * optimistic check, so a concurrent writer yields MGR_ECONFLICT. *created
 * tells which happened. On success r holds the stored version and times.
 */
int manager_put(struct manager *m, struct resource *r, int *created, struct mgr_result *res);

/* Creates r; MGR_EEXIST if it exists. */
int manager_create(struct manager *m, struct resource *r, struct mgr_result *res);

int manager_delete(struct manager *m, const struct res_type *t, const char *mesh, const char *name,
                   struct mgr_result *res);

/* Creates mesh "default" (with its default resources) unless it exists. */
int manager_ensure_default_mesh(struct manager *m, struct mgr_result *res);

#endif
