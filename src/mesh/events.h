/*
 * events — change events from the resource manager to in-process subscribers.
 *
 * The manager publishes one event per committed change, after the commit.
 * Each subscriber has its own queue, coalesced by (type, mesh, name): if a key
 * changes several times before the subscriber reads it, it sees one event with
 * the latest operation and version. A new subscriber first receives a RESYNC
 * (load everything), and so does one whose queue overflowed, so a slow
 * subscriber never blocks the publisher and never misses state.
 */
#ifndef MESH_EVENTS_H
#define MESH_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define EVENTS_QUEUE_MAX 10000

enum event_kind { EVENT_CHANGE, EVENT_RESYNC };

struct event {
    enum event_kind kind;
    const struct res_type *type; /* EVENT_CHANGE only */
    char *mesh;
    char *name;
    enum change_op op;
    int64_t version;
};

struct event_bus;
struct event_sub;

struct event_bus *event_bus_new(void);
/* Wakes and detaches every subscriber's waiters, then frees the bus; subscribers
 * must be unsubscribed first. */
void event_bus_free(struct event_bus *b);

/* Publishes each change in order (call after the commit). */
void event_publish(struct event_bus *b, const struct changes *ch);

struct event_sub *event_subscribe(struct event_bus *b);
void event_unsubscribe(struct event_sub *s);

/* Waits up to timeout_ms (-1 = forever) for the next event. Returns 1 and fills
 * ev (free with event_clear), 0 on timeout, -1 once the bus is closed. */
int event_next(struct event_sub *s, struct event *ev, int timeout_ms);
void event_clear(struct event *ev);

/* Makes every event_next return -1 from now on (for shutdown). */
void event_bus_close(struct event_bus *b);

#endif
