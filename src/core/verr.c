/* verr — Kuma-style validation errors (see verr.h). */
#include "core/verr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void verr_add(struct verr *ve, const char *field, const char *fmt, ...)
{
    if (ve->n == ve->cap) {
        ve->cap = ve->cap ? ve->cap * 2 : 8;
        ve->v = xrealloc(ve->v, ve->cap * sizeof(*ve->v));
    }
    va_list ap;
    va_start(ap, fmt);
    ve->v[ve->n].message = xvasprintf(fmt, ap);
    va_end(ap);
    ve->v[ve->n].field = xstrdup(field ? field : "");
    ve->n++;
}

void verr_add_prefixed(struct verr *ve, const char *prefix, const struct verr *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const char *f = src->v[i].field;
        char *full;
        if (!prefix || !*prefix)
            full = xstrdup(f);
        else if (!*f)
            full = xstrdup(prefix);
        else if (f[0] == '[')
            full = xasprintf("%s%s", prefix, f);
        else
            full = xasprintf("%s.%s", prefix, f);
        verr_add(ve, full, "%s", src->v[i].message);
        free(full);
    }
}

int verr_empty(const struct verr *ve)
{
    return ve->n == 0;
}

char *verr_join(const struct verr *ve)
{
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < ve->n; i++) {
        if (i)
            buf_append(&b, "; ", 2);
        buf_printf(&b, "%s: %s", ve->v[i].field, ve->v[i].message);
    }
    buf_str(&b);
    return b.data;
}

void verr_free(struct verr *ve)
{
    for (size_t i = 0; i < ve->n; i++) {
        free(ve->v[i].field);
        free(ve->v[i].message);
    }
    free(ve->v);
    ve->v = NULL;
    ve->n = ve->cap = 0;
}

char *path_field(const char *base, const char *name)
{
    if (!base || !*base)
        return xstrdup(name);
    return xasprintf("%s.%s", base, name);
}

char *path_index(const char *base, size_t i)
{
    return xasprintf("%s[%zu]", base ? base : "", i);
}

char *path_key(const char *base, const char *key)
{
    /* Go's %q: backslash-escape quotes and backslashes. */
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s[\"", base ? base : "");
    for (const char *p = key; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_append(&b, "\\", 1);
        buf_append(&b, p, 1);
    }
    buf_append(&b, "\"]", 2);
    return b.data;
}
