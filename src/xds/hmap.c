/* hmap — see hmap.h. */
#include "xds/hmap.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "xds/model.h"

static size_t slot_of(const struct hmap *m, const char *key)
{
    return (size_t)xds_hash_str(XDS_HASH_INIT, key) & (m->cap - 1);
}

void *hmap_get(const struct hmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        const struct hmap_slot *s = &m->slots[i];
        if (!s->key && !s->tomb)
            return NULL;
        if (s->key && strcmp(s->key, key) == 0)
            return s->value;
    }
}

static void grow(struct hmap *m)
{
    struct hmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    while (old.n * 2 >= m->cap)
        m->cap *= 2;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    m->n = m->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].key)
            continue;
        size_t j = slot_of(m, old.slots[i].key);
        while (m->slots[j].key)
            j = (j + 1) & (m->cap - 1);
        m->slots[j] = old.slots[i];
        m->n++;
        m->used++;
    }
    free(old.slots);
}

void hmap_put(struct hmap *m, const char *key, void *value)
{
    if ((m->used + 1) * 4 >= m->cap * 3)
        grow(m);
    size_t tomb = (size_t)-1;
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        struct hmap_slot *s = &m->slots[i];
        if (s->key && strcmp(s->key, key) == 0) {
            s->value = value;
            return;
        }
        if (s->tomb && tomb == (size_t)-1)
            tomb = i;
        if (!s->key && !s->tomb) {
            struct hmap_slot *d = tomb != (size_t)-1 ? &m->slots[tomb] : s;
            if (d == s)
                m->used++;
            d->key = xstrdup(key);
            d->value = value;
            d->tomb = 0;
            m->n++;
            return;
        }
    }
}

void *hmap_del(struct hmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        struct hmap_slot *s = &m->slots[i];
        if (!s->key && !s->tomb)
            return NULL;
        if (s->key && strcmp(s->key, key) == 0) {
            void *v = s->value;
            free(s->key);
            s->key = NULL;
            s->value = NULL;
            s->tomb = 1;
            m->n--;
            return v;
        }
    }
}

void hmap_free(struct hmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

int hmap_next(const struct hmap *m, size_t *i, const char **key, void **value)
{
    for (; *i < m->cap; (*i)++) {
        if (m->slots[*i].key) {
            if (key)
                *key = m->slots[*i].key;
            if (value)
                *value = m->slots[*i].value;
            (*i)++;
            return 1;
        }
    }
    return 0;
}
