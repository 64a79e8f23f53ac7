/*
 * bench_store — throughput of the SQLite store on this machine.
 *
 *   make build/libcore.a && cc -std=gnu11 -O2 -Isrc bench/bench_store.c build/libcore.a \
 *       $(pkg-config --cflags --libs jansson sqlite3) -lpthread -lm -o build/bench-store
 *   build/bench-store /var/tmp/bench-store.db [N] [THREADS]
 *
 * Measures, on a fresh file (removed first): N creates from one thread, N
 * creates spread over THREADS threads, N updates, N gets, and listing a page
 * of 100 out of N; then the same on the in-memory store. Every write on the
 * file store is one transaction with synchronous=FULL, so creates/s there is
 * bounded by the disk's fsync rate.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store.h"

static struct resource *dp(const char *mesh, int i)
{
    char name[32];
    snprintf(name, sizeof(name), "dp-%07d", i);
    struct resource *r = resource_new(&TYPE_DATAPLANE, mesh, name);
    json_t *inb = json_pack("[{s:i, s:{s:s, s:s}}]", "port", 8080, "tags", "kuma.io/service",
                            "backend", "version", "v1");
    json_object_set_new(r->spec, "networking",
                        json_pack("{s:s, s:o}", "address", "10.0.0.1", "inbound", inb));
    return r;
}

struct job {
    struct store *s;
    const char *mesh;
    int from, to;
};

static void *creator(void *arg)
{
    struct job *j = arg;
    struct err e;
    for (int i = j->from; i < j->to; i++) {
        struct resource *r = dp(j->mesh, i);
        if (store_create(j->s, r, NULL, &e) != 0) {
            fprintf(stderr, "create: %s\n", e.msg);
            exit(1);
        }
        resource_free(r);
    }
    return NULL;
}

static double rate(int n, int64_t t0)
{
    double secs = (double)(mono_ms() - t0) / 1000.0;
    return secs > 0 ? n / secs : 0;
}

static void run(enum store_kind kind, const char *path, int n, int threads)
{
    struct store *s = NULL;
    struct err e;
    if (path) {
        unlink(path);
        char *w = xasprintf("%s-wal", path), *m = xasprintf("%s-shm", path);
        unlink(w);
        unlink(m);
        free(w);
        free(m);
    }
    if (store_open(kind, path, &s, &e) != 0) {
        fprintf(stderr, "open: %s\n", e.msg);
        exit(1);
    }
    struct resource *m1 = resource_new(&TYPE_MESH, "", "m1"),
                    *m2 = resource_new(&TYPE_MESH, "", "m2");
    store_create(s, m1, NULL, &e);
    store_create(s, m2, NULL, &e);
    resource_free(m1);
    resource_free(m2);
    const char *label = kind == STORE_KIND_MEMORY ? "memory" : "sqlite FULL";

    int64_t t0 = mono_ms();
    struct job j = {s, "m1", 0, n};
    creator(&j);
    printf("%-12s creates, 1 thread:    %9.0f /s\n", label, rate(n, t0));

    t0 = mono_ms();
    pthread_t th[64];
    struct job jobs[64];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){s, "m2", n / threads * i, n / threads * (i + 1)};
        pthread_create(&th[i], NULL, creator, &jobs[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    printf("%-12s creates, %d threads:   %9.0f /s\n", label, threads,
           rate(n / threads * threads, t0));

    t0 = mono_ms();
    for (int i = 0; i < n; i++) {
        struct resource *r = dp("m1", i);
        r->version = 1;
        if (store_update(s, r, NULL, &e) != 0) {
            fprintf(stderr, "update: %s\n", e.msg);
            exit(1);
        }
        resource_free(r);
    }
    printf("%-12s updates, 1 thread:    %9.0f /s\n", label, rate(n, t0));

    t0 = mono_ms();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dp-%07d", i);
        struct resource *r = NULL;
        if (store_get(s, &TYPE_DATAPLANE, "m1", name, &r, &e) != 0) {
            fprintf(stderr, "get: %s\n", e.msg);
            exit(1);
        }
        resource_free(r);
    }
    printf("%-12s gets, 1 thread:       %9.0f /s\n", label, rate(n, t0));

    /* Reads while THREADS writers create: what an API GET sees under load. */
    {
        struct job wj[64];
        for (int i = 0; i < threads; i++) {
            wj[i] = (struct job){s, "m2", n + n / threads * i, n + n / threads * (i + 1)};
            pthread_create(&th[i], NULL, creator, &wj[i]);
        }
        int reads = 0;
        t0 = mono_ms();
        int64_t worst = 0;
        while (mono_ms() - t0 < 300 || reads < 100) {
            char name[32];
            snprintf(name, sizeof(name), "dp-%07d", reads % n);
            struct resource *r = NULL;
            int64_t r0 = mono_ms();
            if (store_get(s, &TYPE_DATAPLANE, "m1", name, &r, &e) != 0) {
                fprintf(stderr, "get: %s\n", e.msg);
                exit(1);
            }
            if (mono_ms() - r0 > worst)
                worst = mono_ms() - r0;
            resource_free(r);
            reads++;
        }
        printf("%-12s gets during %d writers: %7.0f /s (slowest %lld ms)\n", label, threads,
               rate(reads, t0), (long long)worst);
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
    }

    int lists = 200;
    t0 = mono_ms();
    for (int i = 0; i < lists; i++) {
        struct resource_list l = {0};
        struct store_filter f = {.mesh = "m1", .offset = (size_t)(i * 7 % n), .size = 100};
        if (store_list(s, &TYPE_DATAPLANE, &f, &l, &e) != 0) {
            fprintf(stderr, "list: %s\n", e.msg);
            exit(1);
        }
        resource_list_free(&l);
    }
    printf("%-12s list page of 100/%d:  %9.0f /s\n", label, n, rate(lists, t0));
    store_close(s);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/var/tmp/bench-store.db";
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    int threads = argc > 3 ? atoi(argv[3]) : 4;
    if (n <= 0 || threads <= 0 || threads > 64) {
        fprintf(stderr, "usage: %s PATH [N] [THREADS<=64]\n", argv[0]);
        return 2;
    }
    log_set_level(LOG_WARN);
    run(STORE_KIND_SQLITE, path, n, threads);
    run(STORE_KIND_MEMORY, NULL, n, threads);
    return 0;
}
