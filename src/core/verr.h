/*
 * verr — validation errors as Kuma reports them: an ordered list of
 * violations, each a field path ("mtls.backends[0].name") and a message.
 * Path building follows Kuma's validators: a field appends ".x" (no dot at the
 * root), an index "[i]", a key "[\"k\"]".
 */
#ifndef CORE_VERR_H
#define CORE_VERR_H

#include <stddef.h>

struct violation {
    char *field;
    char *message;
};

struct verr {
    struct violation *v;
    size_t n, cap;
};

/* Adds a violation; field may be "" (root). */
void verr_add(struct verr *ve, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds every violation of src with prefix joined to its field (a "." between
 * them unless the field starts with "[" or either side is empty). */
void verr_add_prefixed(struct verr *ve, const char *prefix, const struct verr *src);
int verr_empty(const struct verr *ve);
/* "f1: m1; f2: m2" as Kuma's ValidationError.Error(); caller frees. */
char *verr_join(const struct verr *ve);
void verr_free(struct verr *ve);

/* Path helpers: each returns a newly allocated string. */
char *path_field(const char *base, const char *name);
char *path_index(const char *base, size_t i);
char *path_key(const char *base, const char *key);

#endif
