/*
 * resource — the resource model and its universal and Kubernetes JSON forms.
 *
 * Universal form: meta keys (type, mesh, name, creationTime,
 * modificationTime, labels, kri) next to the spec fields; new-style targetRef
 * policies (MeshTimeout, ...) keep their spec under "spec" as Kuma's do.
 * Kubernetes form: apiVersion/kind/metadata/spec, with the mesh at the top
 * level or, for targetRef policies, in the kuma.io/mesh label.
 */
#include "core/resource.h"

#include <stdlib.h>
#include <string.h>

#define K8S_API_VERSION "kuma.io/v1alpha1"

struct resource *resource_new(const struct res_type *t, const char *mesh, const char *name)
{
    struct resource *r = xcalloc(1, sizeof(*r));
    r->type = t;
    r->mesh = xstrdup(mesh ? mesh : "");
    r->name = xstrdup(name ? name : "");
    r->labels = json_object();
    r->spec = json_object();
    return r;
}

struct resource *resource_dup(const struct resource *r)
{
    struct resource *d = xcalloc(1, sizeof(*d));
    d->type = r->type;
    d->mesh = xstrdup(r->mesh);
    d->name = xstrdup(r->name);
    d->version = r->version;
    d->creation_time = r->creation_time;
    d->modification_time = r->modification_time;
    d->labels = json_deep_copy(r->labels);
    d->spec = json_deep_copy(r->spec);
    return d;
}

void resource_free(struct resource *r)
{
    if (!r)
        return;
    free(r->mesh);
    free(r->name);
    json_decref(r->labels);
    json_decref(r->spec);
    free(r);
}

static int is_meta_key(const char *k)
{
    static const char *const keys[] = {"type",   "mesh", "name", "creationTime", "modificationTime",
                                       "labels", "kri",  NULL};
    for (size_t i = 0; keys[i]; i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

/* Reads an optional string member; -1 with a message if it is not a string. */
static int opt_string(const json_t *obj, const char *key, const char *where, const char **out,
                      struct err *e)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(e, "%s%s: must be a string", where, key);
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v))
        return err_set(e, "%s%s: must not contain NUL characters", where, key);
    return 0;
}

static int read_labels(const json_t *v, const char *where, json_t **out, struct err *e)
{
    *out = json_object();
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        json_decref(*out);
        return err_set(e, "%slabels: must be an object", where);
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        if (!json_is_string(x)) {
            json_decref(*out);
            return err_set(e, "%slabels[\"%s\"]: must be a string", where, k);
        }
        json_object_set(*out, k, x);
    }
    return 0;
}

static int from_k8s(const json_t *doc, struct resource **out, struct err *e)
{
    const char *api, *kind, *mesh, *name;
    if (opt_string(doc, "apiVersion", "", &api, e) < 0 ||
        opt_string(doc, "kind", "", &kind, e) < 0 || opt_string(doc, "mesh", "", &mesh, e) < 0)
        return -1;
    if (!api || strcmp(api, K8S_API_VERSION) != 0)
        return err_set(e, "apiVersion: must be \"%s\"", K8S_API_VERSION);
    if (!kind)
        return err_set(e, "kind: must be set");
    const struct res_type *t = types_by_name(kind);
    if (!t)
        return err_set(e, "unknown kind \"%s\"", kind);
    json_t *md = json_object_get(doc, "metadata");
    if (!json_is_object(md))
        return err_set(e, "metadata: must be an object");
    if (opt_string(md, "name", "metadata.", &name, e) < 0)
        return -1;
    json_t *labels;
    if (read_labels(json_object_get(md, "labels"), "metadata.", &labels, e) < 0)
        return -1;
    json_t *spec = json_object_get(doc, "spec");
    if (spec && !json_is_null(spec) && !json_is_object(spec)) {
        json_decref(labels);
        return err_set(e, "spec: must be an object");
    }
    if (!mesh && t->scope == RES_SCOPE_MESH)
        mesh = json_string_value(json_object_get(labels, "kuma.io/mesh"));
    struct resource *r = resource_new(t, t->scope == RES_SCOPE_MESH ? mesh : "", name);
    json_decref(r->labels);
    r->labels = labels;
    if (json_is_object(spec))
        json_object_update(r->spec, spec);
    *out = r;
    return 0;
}

int resource_from_json(const json_t *doc, struct resource **out, struct err *e)
{
    if (!json_is_object(doc))
        return err_set(e, "a resource must be an object");
    if (json_object_get(doc, "apiVersion") || json_object_get(doc, "kind"))
        return from_k8s(doc, out, e);

    const char *type, *mesh, *name;
    if (opt_string(doc, "type", "", &type, e) < 0 || opt_string(doc, "mesh", "", &mesh, e) < 0 ||
        opt_string(doc, "name", "", &name, e) < 0)
        return -1;
    if (!type || !*type)
        return err_set(e, "type: must be set");
    const struct res_type *t = types_by_name(type);
    if (!t)
        return err_set(e, "unknown type \"%s\"", type);
    json_t *labels;
    if (read_labels(json_object_get(doc, "labels"), "", &labels, e) < 0)
        return -1;
    struct resource *r = resource_new(t, t->scope == RES_SCOPE_MESH ? mesh : "", name);
    json_decref(r->labels);
    r->labels = labels;
    if (t->is_target_ref) {
        json_t *spec = json_object_get(doc, "spec");
        if (spec && !json_is_null(spec) && !json_is_object(spec)) {
            resource_free(r);
            return err_set(e, "spec: must be an object");
        }
        if (json_is_object(spec))
            json_object_update(r->spec, spec);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)doc, k, v) if (!is_meta_key(k))
            json_object_set(r->spec, k, v);
    }
    *out = r;
    return 0;
}

char *resource_kri(const struct resource *r)
{
    return xasprintf("kri_%s_%s___%s_", r->type->short_name, r->mesh, r->name);
}

static void set_time(json_t *obj, const char *key, int64_t ns)
{
    char ts[64];
    time_format_rfc3339(ns, ts, sizeof(ts));
    json_object_set_new(obj, key, json_string(ts));
}

json_t *resource_to_json(const struct resource *r, enum res_form form)
{
    json_t *o = json_object();
    if (form == RES_FORM_K8S) {
        json_object_set_new(o, "apiVersion", json_string(K8S_API_VERSION));
        json_object_set_new(o, "kind", json_string(r->type->name));
        if (r->type->scope == RES_SCOPE_MESH && !r->type->is_target_ref)
            json_object_set_new(o, "mesh", json_string(r->mesh));
        json_t *md = json_object();
        json_object_set_new(md, "name", json_string(r->name));
        if (r->creation_time)
            set_time(md, "creationTimestamp", r->creation_time);
        json_t *labels = json_deep_copy(r->labels);
        if (r->type->is_target_ref && *r->mesh)
            json_object_set_new(labels, "kuma.io/mesh", json_string(r->mesh));
        if (json_object_size(labels))
            json_object_set_new(md, "labels", labels);
        else
            json_decref(labels);
        json_object_set_new(o, "metadata", md);
        json_object_set_new(o, "spec", json_deep_copy(r->spec));
        return o;
    }
    json_object_set_new(o, "type", json_string(r->type->name));
    if (r->type->scope == RES_SCOPE_MESH)
        json_object_set_new(o, "mesh", json_string(r->mesh));
    json_object_set_new(o, "name", json_string(r->name));
    set_time(o, "creationTime", r->creation_time);
    set_time(o, "modificationTime", r->modification_time);
    if (json_object_size(r->labels))
        json_object_set_new(o, "labels", json_deep_copy(r->labels));
    char *kri = resource_kri(r);
    json_object_set_new(o, "kri", json_string(kri));
    free(kri);
    if (r->type->is_target_ref) {
        json_object_set_new(o, "spec", json_deep_copy(r->spec));
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(r->spec, k, v) json_object_set_new(o, k, json_deep_copy(v));
    }
    return o;
}

void resource_list_push(struct resource_list *l, struct resource *r)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = r;
}

void resource_list_free(struct resource_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        resource_free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}
