/*
 * engine — kuma-dp's proxy engine: TCP (and mTLS) proxying from listeners to
 * clusters, driven by an immutable configuration snapshot that can be swapped
 * at run time.
 *
 * Threads. N worker threads (default: one per core), each with its own epoll
 * loop and timer heap; no thread per connection. A listening socket is shared
 * by all workers and registered in every worker's epoll with EPOLLEXCLUSIVE,
 * so the kernel wakes one worker per incoming connection and the accepting
 * worker owns the connection for its whole life (no cross-thread hand-off, no
 * locks on the data path). SO_REUSEPORT was not chosen: with it each worker
 * needs its own socket, and closing one (a removed listener, a drain) resets
 * the connections queued in its backlog.
 *
 * Buffers. Each connection has two byte buffers, one per direction, of at most
 * `buffer_size` bytes, taken from a per-worker pool only while they hold data
 * (an idle connection holds none). A full buffer stops reading from its source
 * (back-pressure: a slow reader slows the sender through TCP flow control);
 * memory per connection is bounded by 2 × buffer_size plus OpenSSL's state.
 * Half-close is forwarded: EOF from one side becomes shutdown(SHUT_WR) (or a
 * TLS close_notify) on the other once its buffer is flushed; the connection
 * ends when both directions are done, or on the first error.
 *
 * Config swap. dp_engine_apply() compiles a model (model.h) into a snapshot
 * (resolved addresses, SSL_CTXs, stat blocks, LB schedules) on the caller's
 * thread, binds new listeners, then publishes it under a mutex and wakes the
 * workers through an eventfd. A worker re-registers its listeners from the new
 * snapshot; new connections use it; established connections keep a reference
 * to the snapshot they started with, so a rotated certificate, a changed
 * cluster or a removed listener never breaks them. Connections of a removed or
 * changed listener are drained: closed after `drain_timeout_ms` if still open.
 * An apply that fails (bad certificate, address in use) changes nothing.
 *
 * HTTP. A listener with an HTTP connection manager is served by the HTTP
 * path (section "HTTP connection manager" in engine.c, protocol logic in
 * http.c): requests parsed and routed one exchange at a time over the same
 * bounded buffers, upstream connections kept alive and pooled per worker.
 *
 * Errors a peer or the configuration can cause are logged and counted, never
 * fatal. All functions are called from one controlling thread (kuma-dp's main
 * or a test); the admin thread only reads.
 */
#ifndef DP_ENGINE_H
#define DP_ENGINE_H

#include <stdint.h>

#include "core/util.h"
#include "dp/model.h"
#include "dp/stats.h"

struct dp_engine_opts {
    int workers;               /* 0 → number of online CPUs */
    uint32_t buffer_size;      /* per direction per connection; 0 → 32 KiB */
    uint32_t drain_timeout_ms; /* removed/changed listeners; 0 → 30 s (kuma-dp's --drain-time) */
    uint32_t handshake_timeout_ms; /* TLS handshake deadline; 0 → 10 s */
};

struct dp_engine;

/* Starts the workers with an empty configuration. */
int dp_engine_new(const struct dp_engine_opts *opts, struct dp_engine **out, struct err *e);

/* Compiles and installs cfg, taking ownership of it in every case. On error
 * the previous configuration stays in force (the xDS client NACKs). */
int dp_engine_apply(struct dp_engine *eng, struct dp_config *cfg, struct err *e);

/* The bound port of a listener of the current configuration (useful with port
 * 0), or -1 if there is no such listener. */
int dp_engine_listener_port(struct dp_engine *eng, const char *listener_name);

/* Stops accepting on every listener, lets open connections finish, and closes
 * the ones still open after deadline_ms. Returns the number force-closed.
 * Blocks the caller until done. */
long dp_engine_drain(struct dp_engine *eng, uint32_t deadline_ms);

/* Stops the workers, closes every connection and frees everything. NULL ok. */
void dp_engine_free(struct dp_engine *eng);

/* Open connections (downstream) across workers. */
long dp_engine_active_connections(struct dp_engine *eng);

/* --- read-only views for the admin endpoint (any thread) ------------------------------------ */

/* Envoy's server.state: 0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING (no config yet). */
int dp_engine_state(struct dp_engine *eng);
/* Renders the stats per q (see stats.h); q NULL = Envoy's text format, all. */
void dp_engine_render_stats(struct dp_engine *eng, const struct dp_stats_query *q, struct buf *out);
/* Envoy's /clusters text format. */
void dp_engine_render_clusters(struct dp_engine *eng, struct buf *out);
/* /config_dump JSON of the current model; caller frees. */
char *dp_engine_config_dump(struct dp_engine *eng);

#endif
