/*
 * manager — parse → default → validate → store → publish (see manager.h).
 *
 * Events are published only after the store call returned, i.e. after its
 * transaction committed; a failed write publishes nothing.
 */
#include "mesh/manager.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/validate.h"
#include "mesh/defaults.h"
#include "mesh/identity.h"

struct manager {
    struct store *st;
    struct event_bus *bus;
    struct manager_config cfg;
};

void mgr_result_free(struct mgr_result *res)
{
    verr_free(&res->ve);
    res->code = MGR_OK;
    res->manager_level = 0;
    res->msg[0] = '\0';
}

struct manager *manager_new(struct store *st, struct event_bus *bus,
                            const struct manager_config *cfg)
{
    struct manager *m = xcalloc(1, sizeof(*m));
    m->st = st;
    m->bus = bus;
    m->cfg = *cfg;
    return m;
}

void manager_free(struct manager *m)
{
    free(m);
}

struct store *manager_store(struct manager *m)
{
    return m->st;
}

static int fail(struct mgr_result *res, enum mgr_code code, const char *msg)
{
    res->code = code;
    snprintf(res->msg, sizeof(res->msg), "%s", msg);
    return code;
}

/* Maps a store status to a manager code, keeping the store's message. */
static int from_store(struct mgr_result *res, int rc, const struct err *e)
{
    switch (rc) {
    case STORE_OK:
        return MGR_OK;
    case STORE_ENOTFOUND:
        return fail(res, MGR_ENOTFOUND, e->msg);
    case STORE_EEXIST:
        return fail(res, MGR_EEXIST, e->msg);
    case STORE_ECONFLICT:
        return fail(res, MGR_ECONFLICT, e->msg);
    case STORE_ENOMESH:
        return fail(res, MGR_EMESH_NOT_FOUND, "Mesh is not found");
    case STORE_EINVALID:
        return fail(res, MGR_EBAD, e->msg);
    default:
        log_error("manager", "store failed: %s", e->msg);
        return fail(res, MGR_EINTERNAL, e->msg);
    }
}

static void publish(struct manager *m, struct changes *ch)
{
    if (m->bus && ch->n)
        event_publish(m->bus, ch);
    changes_free(ch);
}

int manager_check(struct manager *m, struct resource *r, struct mgr_result *res)
{
    (void)m;
    resource_default(r);
    validate_meta(r, &res->ve);
    if (r->type->validate)
        r->type->validate(r, &res->ve);
    if (!verr_empty(&res->ve))
        return fail(res, MGR_EINVALID, "Resource is not valid");
    return MGR_OK;
}

/* Mesh-scoped resources: the mesh must exist; dataplanes must meet its
 * constraints. */
static int check_mesh_scoped(struct manager *m, const struct resource *r, struct mgr_result *res)
{
    struct resource *mesh = NULL;
    struct err e;
    int rc = store_get(m->st, &TYPE_MESH, "", r->mesh, &mesh, &e);
    if (rc == STORE_ENOTFOUND)
        return fail(res, MGR_EMESH_NOT_FOUND, "Mesh is not found");
    if (rc < 0)
        return from_store(res, rc, &e);
    if (r->type == &TYPE_DATAPLANE) {
        validate_dataplane_constraints(mesh, r, &res->ve);
        if (!verr_empty(&res->ve)) {
            res->manager_level = 1;
            resource_free(mesh);
            return fail(res, MGR_EINVALID, "Resource is not valid");
        }
    }
    resource_free(mesh);
    return MGR_OK;
}

/* Root CAs of builtin backends and, for a new mesh, the dataplane-token
 * signing key (made even when initial policies are skipped). */
static int ensure_mesh_identity(struct manager *m, const struct resource *mesh, int created,
                                struct mgr_result *res)
{
    struct changes ch = {0};
    struct err e;
    int rc = identity_ensure_cas(m->st, mesh, &ch, &e);
    if (rc == 0 && created)
        rc = identity_ensure_signing_key(m->st, mesh->name, &ch, &e);
    publish(m, &ch);
    if (rc < 0) {
        log_error("manager", "could not create the identity of mesh %s: %s", mesh->name, e.msg);
        return fail(res, MGR_EINTERNAL, e.msg);
    }
    return MGR_OK;
}

static void create_mesh_defaults(struct manager *m, const struct resource *mesh)
{
    struct resource_list defs = {0};
    defaults_mesh_resources(mesh, m->cfg.create_mesh_routing_resources, &defs);
    for (size_t i = 0; i < defs.n; i++) {
        struct changes ch = {0};
        struct err e;
        int rc = store_create(m->st, defs.items[i], &ch, &e);
        if (rc < 0 && rc != STORE_EEXIST)
            log_error("manager", "could not create default %s %s in mesh %s: %s",
                      defs.items[i]->type->name, defs.items[i]->name, mesh->name, e.msg);
        publish(m, &ch);
    }
    resource_list_free(&defs);
}

int manager_create(struct manager *m, struct resource *r, struct mgr_result *res)
{
    int rc;
    if ((rc = manager_check(m, r, res)) != MGR_OK)
        return rc;
    if (r->type == &TYPE_MESH) {
        validate_mesh_create(r, &res->ve);
        if (verr_empty(&res->ve))
            identity_validate_backends(m->st, r, &res->ve);
        if (!verr_empty(&res->ve)) {
            res->manager_level = 1;
            return fail(res, MGR_EINVALID, "Resource is not valid");
        }
    } else if (r->type->scope == RES_SCOPE_MESH) {
        if ((rc = check_mesh_scoped(m, r, res)) != MGR_OK)
            return rc;
    }
    struct changes ch = {0};
    struct err e;
    rc = store_create(m->st, r, &ch, &e);
    publish(m, &ch);
    if (rc < 0)
        return from_store(res, rc, &e);
    if (r->type == &TYPE_MESH) {
        log_info("manager", "mesh %s created", r->name);
        if ((rc = ensure_mesh_identity(m, r, 1, res)) != MGR_OK)
            return rc;
        create_mesh_defaults(m, r);
    }
    return MGR_OK;
}

static int manager_update(struct manager *m, struct resource *old, struct resource *r,
                          struct mgr_result *res)
{
    int rc;
    if ((rc = manager_check(m, r, res)) != MGR_OK)
        return rc;
    if (r->type == &TYPE_MESH) {
        validate_mesh_update(old, r, &res->ve);
        if (verr_empty(&res->ve))
            identity_validate_backends(m->st, r, &res->ve);
        if (!verr_empty(&res->ve)) {
            res->manager_level = 1;
            return fail(res, MGR_EINVALID, "Resource is not valid");
        }
        /* As Kuma: the CAs exist before the mesh that enables them. */
        if ((rc = ensure_mesh_identity(m, r, 0, res)) != MGR_OK)
            return rc;
    } else if (r->type == &TYPE_DATAPLANE) {
        if ((rc = check_mesh_scoped(m, r, res)) != MGR_OK)
            return rc;
    }
    r->version = old->version;
    r->creation_time = old->creation_time;
    struct changes ch = {0};
    struct err e;
    rc = store_update(m->st, r, &ch, &e);
    publish(m, &ch);
    return rc < 0 ? from_store(res, rc, &e) : MGR_OK;
}

int manager_put(struct manager *m, struct resource *r, int *created, struct mgr_result *res)
{
    struct resource *old = NULL;
    struct err e;
    int rc = store_get(m->st, r->type, r->mesh, r->name, &old, &e);
    if (rc == STORE_ENOTFOUND) {
        *created = 1;
        rc = manager_create(m, r, res);
        /* Lost a race with another creator: Kuma answers 409 as well. */
        if (rc == MGR_EEXIST)
            res->code = rc = MGR_ECONFLICT;
        return rc;
    }
    if (rc < 0)
        return from_store(res, rc, &e);
    *created = 0;
    rc = manager_update(m, old, r, res);
    resource_free(old);
    return rc;
}

int manager_delete(struct manager *m, const struct res_type *t, const char *mesh, const char *name,
                   struct mgr_result *res)
{
    struct err e;
    int rc;
    if (t == &TYPE_MESH && !m->cfg.unsafe_delete) {
        struct resource *old = NULL;
        rc = store_get(m->st, t, "", name, &old, &e);
        if (rc < 0)
            return from_store(res, rc, &e);
        resource_free(old);
        size_t n = 0;
        if ((rc = store_count(m->st, &TYPE_DATAPLANE, name, &n, &e)) < 0)
            return from_store(res, rc, &e);
        if (n > 0) {
            verr_add(&res->ve, "mesh",
                     "unable to delete mesh, there are still some dataplanes attached");
            res->manager_level = 1;
            return fail(res, MGR_EINVALID, "Resource is not valid");
        }
    }
    struct changes ch = {0};
    rc = store_delete(m->st, t, t->scope == RES_SCOPE_MESH ? mesh : "", name, &ch, &e);
    publish(m, &ch);
    if (rc < 0)
        return from_store(res, rc, &e);
    if (t == &TYPE_MESH)
        log_info("manager", "mesh %s deleted", name);
    return MGR_OK;
}

int manager_ensure_default_mesh(struct manager *m, struct mgr_result *res)
{
    struct resource *old = NULL;
    struct err e;
    int rc = store_get(m->st, &TYPE_MESH, "", "default", &old, &e);
    if (rc == STORE_OK) {
        resource_free(old);
        return MGR_OK;
    }
    if (rc != STORE_ENOTFOUND)
        return from_store(res, rc, &e);
    struct resource *mesh = resource_new(&TYPE_MESH, "", "default");
    rc = manager_create(m, mesh, res);
    resource_free(mesh);
    if (rc == MGR_EEXIST) {
        mgr_result_free(res);
        return MGR_OK;
    }
    if (rc == MGR_OK)
        log_info("defaults", "default Mesh created");
    return rc;
}
