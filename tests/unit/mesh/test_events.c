/*
 * Tests for events.c: RESYNC first, order, coalescing by (type, mesh, name),
 * overflow, timeouts, wake-ups, close and the bus outliving its owner.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "core/util.h"
#include "mesh/events.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() ASSERT_INT_EQ(__lsan_do_recoverable_leak_check(), 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

static void pub1(struct event_bus *b, const struct res_type *t, const char *mesh, const char *name,
                 enum change_op op, int64_t version)
{
    struct changes ch = {0};
    changes_add(&ch, t, mesh, name, op, version);
    event_publish(b, &ch);
    changes_free(&ch);
}

static void expect_resync(struct event_sub *s)
{
    struct event ev;
    ASSERT_INT_EQ(event_next(s, &ev, 0), 1);
    ASSERT_INT_EQ(ev.kind, EVENT_RESYNC);
    ASSERT(ev.mesh == NULL && ev.name == NULL);
    event_clear(&ev);
}

static void expect_change(struct event_sub *s, const struct res_type *t, const char *mesh,
                          const char *name, enum change_op op, int64_t version)
{
    struct event ev;
    ASSERT_INT_EQ(event_next(s, &ev, 0), 1);
    ASSERT_INT_EQ(ev.kind, EVENT_CHANGE);
    ASSERT(ev.type == t);
    ASSERT_STR_EQ(ev.mesh, mesh);
    ASSERT_STR_EQ(ev.name, name);
    ASSERT_INT_EQ(ev.op, op);
    ASSERT_INT_EQ(ev.version, version);
    event_clear(&ev);
}

static void expect_empty(struct event_sub *s)
{
    struct event ev;
    ASSERT_INT_EQ(event_next(s, &ev, 0), 0);
}

TEST(events_resync_first_then_changes_in_order)
{
    struct event_bus *b = event_bus_new();
    pub1(b, &TYPE_MESH, "", "before", CHANGE_CREATE, 1); /* nobody listening */
    struct event_sub *s = event_subscribe(b);
    struct changes ch = {0};
    changes_add(&ch, &TYPE_MESH, "", "m", CHANGE_CREATE, 1);
    changes_add(&ch, &TYPE_DATAPLANE, "m", "dp-2", CHANGE_CREATE, 1);
    changes_add(&ch, &TYPE_DATAPLANE, "m", "dp-1", CHANGE_CREATE, 1);
    event_publish(b, &ch);
    changes_free(&ch);

    expect_resync(s);
    expect_change(s, &TYPE_MESH, "", "m", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_DATAPLANE, "m", "dp-2", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_DATAPLANE, "m", "dp-1", CHANGE_CREATE, 1);
    expect_empty(s);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_coalesce_keeps_latest_and_first_position)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    expect_resync(s);
    pub1(b, &TYPE_DATAPLANE, "m", "a", CHANGE_CREATE, 1);
    pub1(b, &TYPE_DATAPLANE, "m", "b", CHANGE_CREATE, 1);
    pub1(b, &TYPE_DATAPLANE, "m", "a", CHANGE_UPDATE, 2);
    pub1(b, &TYPE_DATAPLANE, "m", "a", CHANGE_UPDATE, 3);
    pub1(b, &TYPE_DATAPLANE, "m", "b", CHANGE_DELETE, 1);
    pub1(b, &TYPE_DATAPLANE, "m", "c", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_DATAPLANE, "m", "a", CHANGE_UPDATE, 3);
    expect_change(s, &TYPE_DATAPLANE, "m", "b", CHANGE_DELETE, 1);
    expect_change(s, &TYPE_DATAPLANE, "m", "c", CHANGE_CREATE, 1);
    expect_empty(s);

    /* Once read, a key queues afresh at the back. */
    pub1(b, &TYPE_DATAPLANE, "m", "x", CHANGE_CREATE, 1);
    pub1(b, &TYPE_DATAPLANE, "m", "a", CHANGE_UPDATE, 4);
    expect_change(s, &TYPE_DATAPLANE, "m", "x", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_DATAPLANE, "m", "a", CHANGE_UPDATE, 4);
    expect_empty(s);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_coalesce_key_is_type_mesh_and_name)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    expect_resync(s);
    pub1(b, &TYPE_DATAPLANE, "m1", "x", CHANGE_CREATE, 1);
    pub1(b, &TYPE_DATAPLANE, "m2", "x", CHANGE_CREATE, 1);
    pub1(b, &TYPE_TRAFFIC_PERMISSION, "m1", "x", CHANGE_CREATE, 1);
    pub1(b, &TYPE_MESH, "", "x", CHANGE_CREATE, 1);
    /* Concatenations that collide must not coalesce. */
    pub1(b, &TYPE_DATAPLANE, "ab", "c", CHANGE_CREATE, 1);
    pub1(b, &TYPE_DATAPLANE, "a", "bc", CHANGE_CREATE, 1);
    pub1(b, &TYPE_DATAPLANE, "m2", "x", CHANGE_UPDATE, 2);
    expect_change(s, &TYPE_DATAPLANE, "m1", "x", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_DATAPLANE, "m2", "x", CHANGE_UPDATE, 2);
    expect_change(s, &TYPE_TRAFFIC_PERMISSION, "m1", "x", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_MESH, "", "x", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_DATAPLANE, "ab", "c", CHANGE_CREATE, 1);
    expect_change(s, &TYPE_DATAPLANE, "a", "bc", CHANGE_CREATE, 1);
    expect_empty(s);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_subscribers_are_independent)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s1 = event_subscribe(b), *s2 = event_subscribe(b);
    expect_resync(s1);
    pub1(b, &TYPE_MESH, "", "m", CHANGE_CREATE, 1);
    expect_change(s1, &TYPE_MESH, "", "m", CHANGE_CREATE, 1);
    pub1(b, &TYPE_MESH, "", "m", CHANGE_UPDATE, 2);
    expect_change(s1, &TYPE_MESH, "", "m", CHANGE_UPDATE, 2);
    /* s2 has not read anything yet: its own RESYNC, then one coalesced event. */
    expect_resync(s2);
    expect_change(s2, &TYPE_MESH, "", "m", CHANGE_UPDATE, 2);
    expect_empty(s1);
    expect_empty(s2);
    /* Unsubscribing one leaves the other working. */
    event_unsubscribe(s1);
    pub1(b, &TYPE_MESH, "", "n", CHANGE_CREATE, 1);
    expect_change(s2, &TYPE_MESH, "", "n", CHANGE_CREATE, 1);
    event_unsubscribe(s2);
    event_unsubscribe(NULL);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_overflow_resyncs)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    expect_resync(s);
    struct changes ch = {0};
    char name[32];
    for (int i = 0; i < EVENTS_QUEUE_MAX; i++) {
        snprintf(name, sizeof(name), "dp-%d", i);
        changes_add(&ch, &TYPE_DATAPLANE, "m", name, CHANGE_CREATE, 1);
    }
    event_publish(b, &ch);
    /* A full queue still coalesces without overflowing. */
    pub1(b, &TYPE_DATAPLANE, "m", "dp-0", CHANGE_UPDATE, 2);
    expect_change(s, &TYPE_DATAPLANE, "m", "dp-0", CHANGE_UPDATE, 2);
    /* Refill to the limit, then one key more: the queue is dropped. */
    pub1(b, &TYPE_DATAPLANE, "m", "dp-0", CHANGE_UPDATE, 3);
    int64_t t0 = mono_ms();
    pub1(b, &TYPE_DATAPLANE, "m", "one-too-many", CHANGE_CREATE, 1);
    ASSERT(mono_ms() - t0 < 1000); /* the publisher never waits for a reader */
    expect_resync(s);
    expect_empty(s);
    /* Changes after an overflow queue normally behind the RESYNC. */
    event_publish(b, &ch);                                /* fills the queue */
    pub1(b, &TYPE_MESH, "", "dropped", CHANGE_CREATE, 1); /* overflows it */
    pub1(b, &TYPE_MESH, "", "later", CHANGE_CREATE, 1);
    expect_resync(s);
    expect_change(s, &TYPE_MESH, "", "later", CHANGE_CREATE, 1);
    expect_empty(s);
    changes_free(&ch);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_overflow_only_hits_the_slow_subscriber)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *slow = event_subscribe(b), *fast = event_subscribe(b);
    expect_resync(fast);
    char name[32];
    for (int i = 0; i <= EVENTS_QUEUE_MAX; i++) {
        snprintf(name, sizeof(name), "dp-%d", i);
        pub1(b, &TYPE_DATAPLANE, "m", name, CHANGE_CREATE, 1);
        expect_change(fast, &TYPE_DATAPLANE, "m", name, CHANGE_CREATE, 1);
    }
    expect_empty(fast);
    expect_resync(slow); /* the subscribe-time RESYNC and the overflow merge */
    expect_empty(slow);
    event_unsubscribe(slow);
    event_unsubscribe(fast);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_next_times_out)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    expect_resync(s);
    struct event ev;
    int64_t t0 = mono_ms();
    ASSERT_INT_EQ(event_next(s, &ev, 120), 0);
    int64_t waited = mono_ms() - t0;
    ASSERT(waited >= 119);
    ASSERT(waited < 2000);
    t0 = mono_ms();
    ASSERT_INT_EQ(event_next(s, &ev, 0), 0); /* 0 = do not wait */
    ASSERT(mono_ms() - t0 < 100);
    /* A queued event is returned at once whatever the timeout. */
    pub1(b, &TYPE_MESH, "", "m", CHANGE_CREATE, 1);
    ASSERT_INT_EQ(event_next(s, &ev, 5000), 1);
    event_clear(&ev);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

struct waiter {
    struct event_sub *s;
    int timeout_ms;
    int rc;
    int64_t woke_ms;
    struct event ev;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->rc = event_next(w->s, &w->ev, w->timeout_ms);
    w->woke_ms = mono_ms();
    return NULL;
}

TEST(events_publish_wakes_a_waiter)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    expect_resync(s);
    struct waiter w = {.s = s, .timeout_ms = -1};
    pthread_t th;
    pthread_create(&th, NULL, waiter_main, &w);
    usleep(100 * 1000); /* let it block */
    int64_t published = mono_ms();
    pub1(b, &TYPE_MESH, "", "m", CHANGE_CREATE, 7);
    pthread_join(th, NULL);
    ASSERT_INT_EQ(w.rc, 1);
    ASSERT_INT_EQ(w.ev.version, 7);
    ASSERT(w.woke_ms - published < 1000);
    event_clear(&w.ev);

    /* Same with a finite timeout that has not run out. */
    w = (struct waiter){.s = s, .timeout_ms = 10000};
    pthread_create(&th, NULL, waiter_main, &w);
    usleep(50 * 1000);
    pub1(b, &TYPE_MESH, "", "m", CHANGE_UPDATE, 8);
    pthread_join(th, NULL);
    ASSERT_INT_EQ(w.rc, 1);
    ASSERT_INT_EQ(w.ev.op, CHANGE_UPDATE);
    event_clear(&w.ev);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_close_wakes_every_waiter)
{
    struct event_bus *b = event_bus_new();
    enum { N = 4 };
    struct event_sub *subs[N];
    struct waiter w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        subs[i] = event_subscribe(b);
        expect_resync(subs[i]);
        w[i] = (struct waiter){.s = subs[i], .timeout_ms = i % 2 ? -1 : 60000};
        pthread_create(&th[i], NULL, waiter_main, &w[i]);
    }
    usleep(100 * 1000);
    int64_t closed = mono_ms();
    event_bus_close(b);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ASSERT_INT_EQ(w[i].rc, -1);
        ASSERT(w[i].woke_ms - closed < 1000);
    }
    /* From now on -1 at once, even with something queued; publishing is a
     * no-op; subscribing still works and is closed too. */
    pub1(b, &TYPE_MESH, "", "m", CHANGE_CREATE, 1);
    struct event ev;
    ASSERT_INT_EQ(event_next(subs[0], &ev, -1), -1);
    struct event_sub *late = event_subscribe(b);
    ASSERT_INT_EQ(event_next(late, &ev, -1), -1);
    event_unsubscribe(late);
    for (int i = 0; i < N; i++)
        event_unsubscribe(subs[i]);
    event_bus_close(b); /* twice is fine */
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_close_beats_queued_events)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    pub1(b, &TYPE_MESH, "", "m", CHANGE_CREATE, 1);
    event_bus_close(b);
    struct event ev;
    ASSERT_INT_EQ(event_next(s, &ev, 0), -1);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

TEST(events_subscriber_may_outlive_the_bus)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    struct waiter w = {.s = s, .timeout_ms = -1};
    expect_resync(s);
    pthread_t th;
    pthread_create(&th, NULL, waiter_main, &w);
    usleep(50 * 1000);
    event_bus_free(b); /* wakes the waiter; the memory stays until unsubscribe */
    pthread_join(th, NULL);
    ASSERT_INT_EQ(w.rc, -1);
    struct event ev;
    ASSERT_INT_EQ(event_next(s, &ev, 10), -1);
    event_unsubscribe(s);
    event_bus_free(NULL);
    LEAK_CHECK();
}

TEST(events_empty_publish_and_clear_are_harmless)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    expect_resync(s);
    struct changes none = {0};
    event_publish(b, &none);
    event_publish(b, NULL);
    event_publish(NULL, &none);
    expect_empty(s);
    struct event ev = {0};
    event_clear(&ev);
    event_clear(NULL);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}

/* Publishers on several threads, each owning some keys and bumping their
 * versions; one reader. Per key the reader must see strictly increasing
 * versions and, at the end, the last one published. */
#define P_THREADS 4
#define P_KEYS    50
#define P_ROUNDS  400

struct publisher {
    struct event_bus *b;
    int id;
};

static void *publisher_main(void *arg)
{
    struct publisher *p = arg;
    char name[32];
    for (int v = 1; v <= P_ROUNDS; v++) {
        struct changes ch = {0};
        for (int k = 0; k < P_KEYS; k++) {
            snprintf(name, sizeof(name), "p%d-k%d", p->id, k);
            changes_add(&ch, &TYPE_DATAPLANE, "m", name, CHANGE_UPDATE, v);
        }
        event_publish(p->b, &ch);
        changes_free(&ch);
    }
    return NULL;
}

TEST(events_concurrent_publishers_one_reader)
{
    struct event_bus *b = event_bus_new();
    struct event_sub *s = event_subscribe(b);
    expect_resync(s);
    pthread_t th[P_THREADS];
    struct publisher p[P_THREADS];
    for (int i = 0; i < P_THREADS; i++) {
        p[i] = (struct publisher){.b = b, .id = i};
        pthread_create(&th[i], NULL, publisher_main, &p[i]);
    }
    static int64_t seen[P_THREADS][P_KEYS];
    int done = 0;
    size_t events = 0;
    while (!done) {
        struct event ev;
        int rc = event_next(s, &ev, 2000);
        ASSERT(rc >= 0);
        if (rc == 0)
            break; /* publishers finished and the queue is drained */
        ASSERT_INT_EQ(ev.kind, EVENT_CHANGE);
        int pid = -1, key = -1;
        ASSERT_INT_EQ(sscanf(ev.name, "p%d-k%d", &pid, &key), 2);
        ASSERT(ev.version > seen[pid][key]);
        seen[pid][key] = ev.version;
        events++;
        event_clear(&ev);
        done = 1;
        for (int i = 0; i < P_THREADS && done; i++)
            for (int k = 0; k < P_KEYS && done; k++)
                done = seen[i][k] == P_ROUNDS;
    }
    for (int i = 0; i < P_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < P_THREADS; i++)
        for (int k = 0; k < P_KEYS; k++)
            ASSERT_INT_EQ(seen[i][k], P_ROUNDS);
    ASSERT(events >= (size_t)P_THREADS * P_KEYS);
    ASSERT(events <= (size_t)P_THREADS * P_KEYS * P_ROUNDS);
    expect_empty(s);
    event_unsubscribe(s);
    event_bus_free(b);
    LEAK_CHECK();
}
