/*
 * admin — the proxy's admin HTTP endpoint on 127.0.0.1:<port> (Envoy's admin
 * paths, Kuma's default port 9901): /ready, /stats (with Envoy's format=,
 * usedonly and filter= parameters, which Kuma's metrics hijacker uses),
 * /stats/prometheus, /config_dump and /clusters. Read-only; GET only.
 *
 * Served by libmicrohttpd (already a project dependency, used by the REST
 * API), on its own single thread, so no HTTP parsing is written by hand here.
 * Requests are bounded by the library's per-connection memory limit (32 KiB)
 * and a connection timeout; responses are rendered from the engine's
 * read-only views.
 */
#ifndef DP_ADMIN_H
#define DP_ADMIN_H

#include "core/util.h"
#include "dp/engine.h"

struct dp_admin;

/* Starts the endpoint on 127.0.0.1:port (0 = ephemeral). */
int dp_admin_start(struct dp_engine *eng, int port, struct dp_admin **out, struct err *e);
/* The bound port. */
int dp_admin_port(const struct dp_admin *a);
/* Stops and frees; NULL ok. Call before dp_engine_free(). */
void dp_admin_stop(struct dp_admin *a);

#endif
