/*
 * resource — the in-memory resource model and its JSON forms.
 *
 * A resource is meta (type, mesh, name, version, times, labels) plus a spec
 * held as a JSON object, exactly the fields Kuma's universal form flattens
 * next to the meta keys. Keeping the spec as JSON (not C structs per type)
 * lets one store, one API and one CLI serve every type; validators and
 * generators read the fields they need.
 */
#ifndef CORE_RESOURCE_H
#define CORE_RESOURCE_H

#include <jansson.h>
#include <stdint.h>

#include "core/types.h"
#include "core/util.h"

struct resource {
    const struct res_type *type;
    char *mesh; /* "" for global-scoped types */
    char *name;
    int64_t version;           /* 0 until stored; starts at 1, +1 per update */
    int64_t creation_time;     /* ns since epoch, 0 until stored */
    int64_t modification_time; /* ns since epoch */
    json_t *labels;            /* object, never NULL */
    json_t *spec;              /* object, never NULL; meta keys excluded */
};

/* A new resource with empty labels and spec; mesh NULL means "". */
struct resource *resource_new(const struct res_type *t, const char *mesh, const char *name);
struct resource *resource_dup(const struct resource *r);
void resource_free(struct resource *r);

enum res_form { RES_FORM_UNIVERSAL, RES_FORM_K8S };

/*
 * Reads one parsed document in either form. Universal: `type`, `name`,
 * `mesh`, `labels` and the flattened spec (creationTime, modificationTime and
 * kri are read-only and ignored). Kubernetes: `apiVersion` kuma.io/v1alpha1,
 * `kind`, `metadata.name`, `metadata.labels`, `spec`, and the mesh from the
 * top-level `mesh` or the `kuma.io/mesh` label. Mesh-scoped documents without
 * a mesh get "" (the caller decides on a default). Returns 0, or -1 with a
 * message in e ("unknown type \"X\"", "missing type", ...).
 */
int resource_from_json(const json_t *doc, struct resource **out, struct err *e);

/* Kuma's REST/kumactl JSON for r in the given form; caller owns the result. */
json_t *resource_to_json(const struct resource *r, enum res_form form);

/* Kuma's kri, e.g. "kri_m____mesh-1_"; caller frees. */
char *resource_kri(const struct resource *r);

/* A resource list, as returned by the store. */
struct resource_list {
    struct resource **items;
    size_t n, cap;
    size_t total; /* matches before pagination */
    int has_next; /* more items after this page */
    size_t next_offset;
};
void resource_list_push(struct resource_list *l, struct resource *r);
void resource_list_free(struct resource_list *l);

#endif
