/*
 * events — the in-process change-event bus (see events.h for the contract).
 *
 * Each subscriber owns a FIFO of pending changes plus a hash index keyed by
 * (type, mesh, name). Publishing a key that is already pending rewrites that
 * entry's op and version in place, so the entry keeps its place in line and
 * the queue holds at most one entry per key. The index is a chained hash
 * table rather than a linear search: a queue may hold EVENTS_QUEUE_MAX keys,
 * and a burst (deleting a mesh cascades to every resource in it) would make a
 * linear search O(n^2) — 10^8 string compares for 10^4 keys — under the bus
 * lock, stalling the publisher (an API thread).
 *
 * Overflow: a subscriber whose queue already holds EVENTS_QUEUE_MAX keys when
 * a new key arrives loses its queue and gets RESYNC as its next event. The
 * RESYNC (like the one every new subscriber gets first) stands for everything
 * committed before the subscriber reads it, because it reads the store after
 * reading the RESYNC; changes published after the overflow are queued again
 * behind it. So the publisher never blocks and a subscriber never misses state.
 *
 * Locking: one mutex per bus guards the subscriber list and every queue; each
 * subscriber has a condition variable (on CLOCK_MONOTONIC, so wall-clock jumps
 * do not stretch timeouts) that publish and close signal. Nothing polls.
 *
 * Lifetime: the bus is reference counted by its owner and its subscribers.
 * event_bus_free closes the bus and drops the owner's reference, so a
 * subscriber that outlives it sees -1 from event_next and can still
 * unsubscribe safely; the memory goes with the last reference.
 */
#define _GNU_SOURCE
#include "mesh/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

#define INITIAL_BUCKETS 64

struct ev_node {
    struct ev_node *prev, *next; /* FIFO order */
    struct ev_node *hnext;       /* hash chain */
    uint64_t hash;
    const struct res_type *type;
    char *mesh, *name;
    enum change_op op;
    int64_t version;
};

struct event_sub {
    struct event_bus *bus;
    struct event_sub *prev, *next; /* the bus's list */
    pthread_cond_t cv;
    struct ev_node *head, *tail;
    size_t n;
    struct ev_node **buckets;
    size_t nbuckets; /* a power of two */
    int resync;      /* RESYNC is the next event */
};

struct event_bus {
    pthread_mutex_t mu;
    struct event_sub *subs;
    int closed;
    int refs; /* the owner's, plus one per subscriber */
};

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    /* A separator, so ("ab", "c") and ("a", "bc") differ. */
    h ^= 0xff;
    h *= 1099511628211ULL;
    return h;
}

static uint64_t key_hash(const struct res_type *t, const char *mesh, const char *name)
{
    uint64_t h = 14695981039346656037ULL;
    h = fnv1a(h, t ? t->name : "");
    h = fnv1a(h, mesh);
    return fnv1a(h, name);
}

static void bucket_insert(struct event_sub *s, struct ev_node *n)
{
    size_t i = n->hash & (s->nbuckets - 1);
    n->hnext = s->buckets[i];
    s->buckets[i] = n;
}

static void bucket_remove(struct event_sub *s, struct ev_node *n)
{
    struct ev_node **pp = &s->buckets[n->hash & (s->nbuckets - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = n->hnext;
}

static void rehash(struct event_sub *s, size_t nbuckets)
{
    free(s->buckets);
    s->buckets = xcalloc(nbuckets, sizeof(*s->buckets));
    s->nbuckets = nbuckets;
    for (struct ev_node *n = s->head; n; n = n->next)
        bucket_insert(s, n);
}

static struct ev_node *find(struct event_sub *s, uint64_t h, const struct res_type *t,
                            const char *mesh, const char *name)
{
    for (struct ev_node *n = s->buckets[h & (s->nbuckets - 1)]; n; n = n->hnext)
        if (n->hash == h && n->type == t && strcmp(n->mesh, mesh) == 0 &&
            strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

static void node_free(struct ev_node *n)
{
    free(n->mesh);
    free(n->name);
    free(n);
}

static void queue_clear(struct event_sub *s)
{
    struct ev_node *n = s->head;
    while (n) {
        struct ev_node *next = n->next;
        node_free(n);
        n = next;
    }
    s->head = s->tail = NULL;
    s->n = 0;
    if (s->nbuckets > INITIAL_BUCKETS) {
        rehash(s, INITIAL_BUCKETS);
    } else {
        memset(s->buckets, 0, s->nbuckets * sizeof(*s->buckets));
    }
}

/* Queues (or coalesces) one change for s; the bus lock is held. */
static void enqueue(struct event_sub *s, const struct change *c)
{
    const char *mesh = c->mesh ? c->mesh : "", *name = c->name ? c->name : "";
    uint64_t h = key_hash(c->type, mesh, name);
    struct ev_node *n = find(s, h, c->type, mesh, name);
    if (n) {
        n->op = c->op;
        n->version = c->version;
        return;
    }
    if (s->n >= EVENTS_QUEUE_MAX) {
        log_warn("events", "a subscriber fell %d changes behind; it will resync", EVENTS_QUEUE_MAX);
        queue_clear(s);
        s->resync = 1;
        return; /* covered by the RESYNC */
    }
    n = xcalloc(1, sizeof(*n));
    n->hash = h;
    n->type = c->type;
    n->mesh = xstrdup(mesh);
    n->name = xstrdup(name);
    n->op = c->op;
    n->version = c->version;
    n->prev = s->tail;
    if (s->tail)
        s->tail->next = n;
    else
        s->head = n;
    s->tail = n;
    s->n++;
    if (s->n > s->nbuckets)
        rehash(s, s->nbuckets * 2);
    else
        bucket_insert(s, n);
}

static struct ev_node *dequeue(struct event_sub *s)
{
    struct ev_node *n = s->head;
    if (!n)
        return NULL;
    bucket_remove(s, n);
    s->head = n->next;
    if (s->head)
        s->head->prev = NULL;
    else
        s->tail = NULL;
    s->n--;
    return n;
}

/* Drops one reference; the last one frees the bus. */
static void bus_unref(struct event_bus *b)
{
    pthread_mutex_lock(&b->mu);
    int last = --b->refs == 0;
    pthread_mutex_unlock(&b->mu);
    if (last) {
        pthread_mutex_destroy(&b->mu);
        free(b);
    }
}

struct event_bus *event_bus_new(void)
{
    struct event_bus *b = xcalloc(1, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    b->refs = 1;
    return b;
}

void event_bus_close(struct event_bus *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    for (struct event_sub *s = b->subs; s; s = s->next)
        pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&b->mu);
}

void event_bus_free(struct event_bus *b)
{
    if (!b)
        return;
    event_bus_close(b);
    bus_unref(b);
}

void event_publish(struct event_bus *b, const struct changes *ch)
{
    if (!b || !ch || ch->n == 0)
        return;
    pthread_mutex_lock(&b->mu);
    if (!b->closed) {
        for (struct event_sub *s = b->subs; s; s = s->next) {
            for (size_t i = 0; i < ch->n; i++)
                enqueue(s, &ch->v[i]);
            pthread_cond_broadcast(&s->cv);
        }
    }
    pthread_mutex_unlock(&b->mu);
}

struct event_sub *event_subscribe(struct event_bus *b)
{
    struct event_sub *s = xcalloc(1, sizeof(*s));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->buckets = xcalloc(INITIAL_BUCKETS, sizeof(*s->buckets));
    s->nbuckets = INITIAL_BUCKETS;
    s->resync = 1;
    s->bus = b;

    pthread_mutex_lock(&b->mu);
    b->refs++;
    s->next = b->subs;
    if (b->subs)
        b->subs->prev = s;
    b->subs = s;
    pthread_mutex_unlock(&b->mu);
    return s;
}

void event_unsubscribe(struct event_sub *s)
{
    if (!s)
        return;
    struct event_bus *b = s->bus;
    pthread_mutex_lock(&b->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        b->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    queue_clear(s);
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&s->cv);
    free(s->buckets);
    free(s);
    bus_unref(b);
}

int event_next(struct event_sub *s, struct event *ev, int timeout_ms)
{
    struct event_bus *b = s->bus;
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    int ret = 0, timed_out = 0;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (b->closed) {
            ret = -1;
            break;
        }
        if (s->resync) {
            s->resync = 0;
            *ev = (struct event){.kind = EVENT_RESYNC};
            ret = 1;
            break;
        }
        struct ev_node *n = dequeue(s);
        if (n) {
            *ev = (struct event){
                .kind = EVENT_CHANGE,
                .type = n->type,
                .mesh = n->mesh, /* ownership moves to ev */
                .name = n->name,
                .op = n->op,
                .version = n->version,
            };
            free(n);
            if (s->n == 0 && s->nbuckets > INITIAL_BUCKETS)
                rehash(s, INITIAL_BUCKETS); /* give back a burst's index */
            ret = 1;
            break;
        }
        if (timeout_ms == 0 || timed_out)
            break;
        if (timeout_ms < 0)
            pthread_cond_wait(&s->cv, &b->mu);
        else if (pthread_cond_timedwait(&s->cv, &b->mu, &deadline) == ETIMEDOUT)
            timed_out = 1; /* look once more, then give up */
    }
    pthread_mutex_unlock(&b->mu);
    return ret;
}

void event_clear(struct event *ev)
{
    if (!ev)
        return;
    free(ev->mesh);
    free(ev->name);
    memset(ev, 0, sizeof(*ev));
}
