/*
 * hmap — a string-keyed hash map (open addressing, linear probing, FNV-1a)
 * for the xDS server's proxy and mesh tables, so a lookup is O(1) however
 * many proxies are connected. Keys are copied; values are borrowed. Not
 * thread-safe (the mesh thread owns every map).
 */
#ifndef XDS_HMAP_H
#define XDS_HMAP_H

#include <stddef.h>

struct hmap_slot {
    char *key; /* NULL = empty */
    void *value;
    int tomb; /* deleted */
};

struct hmap {
    struct hmap_slot *slots;
    size_t cap;     /* power of two */
    size_t n, used; /* live entries; live + tombstones */
};

void *hmap_get(const struct hmap *m, const char *key);
/* Inserts or replaces. */
void hmap_put(struct hmap *m, const char *key, void *value);
/* Removes; returns the value or NULL. */
void *hmap_del(struct hmap *m, const char *key);
void hmap_free(struct hmap *m);

/* Iteration: for (size_t i = 0; hmap_next(m, &i, &k, &v);) ... (no changes
 * to m while iterating). */
int hmap_next(const struct hmap *m, size_t *i, const char **key, void **value);

#endif
