/*
 * store — durable resource storage behind one interface.
 *
 * Backends: store_sqlite.c (the embedded default; KUMA_STORE_TYPE=sqlite, or
 * "memory" which is the same engine on an in-memory database) and, later,
 * store_postgres.c. A row is (type, mesh, name) with the spec as JSON text,
 * labels as JSON, an integer version (1 on create, +1 on each update) and
 * creation/modification times. Mesh-scoped rows are owned by their Mesh row:
 * deleting a mesh deletes everything in it (foreign keys with ON DELETE
 * CASCADE). Updates are optimistic: they name the version they read and fail
 * with STORE_ECONFLICT if another writer got there first.
 *
 * Every mutating call reports what it changed through `changes` (including
 * rows removed by cascade) so the caller can publish change events after the
 * commit. All calls are safe from any thread.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/resource.h"
#include "core/util.h"

enum store_status {
    STORE_OK = 0,
    STORE_ENOTFOUND = -1, /* no such resource */
    STORE_EEXIST = -2,    /* create of an existing (type, mesh, name) */
    STORE_ECONFLICT = -3, /* version mismatch on update */
    STORE_EINVALID = -4,  /* bad arguments (offset, filter) */
    STORE_ENOMESH = -5,   /* owner mesh row missing */
    STORE_EIO = -6,       /* the database failed */
};

enum change_op { CHANGE_CREATE, CHANGE_UPDATE, CHANGE_DELETE };

struct change {
    const struct res_type *type;
    char *mesh;
    char *name;
    enum change_op op;
    int64_t version; /* version after the change; for delete, the last one */
};

struct changes {
    struct change *v;
    size_t n, cap;
};
void changes_add(struct changes *c, const struct res_type *t, const char *mesh, const char *name,
                 enum change_op op, int64_t version);
void changes_free(struct changes *c);

struct store_filter {
    const char *mesh;        /* NULL = every mesh */
    const char *name_substr; /* NULL = any name (substring match, like SQL LIKE %x%) */
    const char *label_key;   /* with label_value: labels[key] == value */
    const char *label_value;
    size_t offset;
    size_t size; /* 0 = no limit */
};

struct store;

enum store_kind { STORE_KIND_SQLITE, STORE_KIND_MEMORY };

/* Maps KUMA_STORE_TYPE to a kind: "sqlite" (also NULL or "") or "memory".
 * Returns -1 for anything else (the caller reports the bad value). */
int store_kind_parse(const char *s, enum store_kind *kind);

/* Opens (creating if needed) the store. For sqlite, path is the database file,
 * created with mode 0600 and put in WAL mode with synchronous=FULL. */
int store_open(enum store_kind kind, const char *path, struct store **out, struct err *e);
void store_close(struct store *s);

/* Inserts r (version, creation and modification times are set by the store and
 * written back into r). Mesh-scoped resources need their Mesh to exist
 * (STORE_ENOMESH otherwise). */
int store_create(struct store *s, struct resource *r, struct changes *ch, struct err *e);

/* Updates the row if its stored version equals r->version; on success
 * r->version and r->modification_time take the new values. */
int store_update(struct store *s, struct resource *r, struct changes *ch, struct err *e);

/* Deletes one row (and, for a Mesh, everything in it). */
int store_delete(struct store *s, const struct res_type *t, const char *mesh, const char *name,
                 struct changes *ch, struct err *e);

int store_get(struct store *s, const struct res_type *t, const char *mesh, const char *name,
              struct resource **out, struct err *e);

/* Lists rows of type t ordered by (name, mesh) after filtering, and paginates.
 * out->total counts every match. */
int store_list(struct store *s, const struct res_type *t, const struct store_filter *f,
               struct resource_list *out, struct err *e);

/* Counts rows of type t in mesh (NULL = all meshes). */
int store_count(struct store *s, const struct res_type *t, const char *mesh, size_t *n,
                struct err *e);

#endif
