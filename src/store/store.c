/*
 * store — backend-independent parts of the store contract: the change list
 * every mutating call fills, and parsing the store kind from configuration.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

void changes_add(struct changes *c, const struct res_type *t, const char *mesh, const char *name,
                 enum change_op op, int64_t version)
{
    if (!c)
        return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n++] = (struct change){
        .type = t,
        .mesh = xstrdup(mesh ? mesh : ""),
        .name = xstrdup(name ? name : ""),
        .op = op,
        .version = version,
    };
}

void changes_free(struct changes *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].mesh);
        free(c->v[i].name);
    }
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}

int store_kind_parse(const char *s, enum store_kind *kind)
{
    if (!s || !*s || strcmp(s, "sqlite") == 0) {
        *kind = STORE_KIND_SQLITE;
        return 0;
    }
    if (strcmp(s, "memory") == 0) {
        *kind = STORE_KIND_MEMORY;
        return 0;
    }
    return -1;
}
