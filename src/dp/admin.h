/*
 * admin — the proxy's admin HTTP endpoint on 127.0.0.1:<port> (Envoy's admin
 * paths, Kuma's default port 9901): /ready, /stats (with Envoy's format=,
 * usedonly and filter= parameters, which Kuma's metrics hijacker uses),
 * /stats/prometheus, /config_dump (include_eds) and /clusters. Read-only;
 * GET and HEAD only (405 otherwise), 404 "invalid path" for anything else.
 *
 * A small HTTP/1.1 server on one thread with its own epoll loop. Request
 * boundaries come from the proxy's own HTTP codec (dp/http.h, Node's
 * http-parser underneath), so no HTTP parsing is written here; the module
 * only splits the request target into its path and query arguments. It used
 * to be libmicrohttpd, which pulled GnuTLS, p11-kit and nettle (~2 MB of
 * resident library pages) into every proxy for a plaintext loopback port.
 *
 * Bounds, so a local client can neither exhaust the proxy nor hold the
 * endpoint: a request head of at most DP_ADMIN_MAX_HEAD bytes (431), a
 * request body of at most DP_ADMIN_MAX_BODY bytes (413; the paths take none),
 * DP_ADMIN_MAX_CONNS connections at once (more wait in the listen backlog),
 * and one deadline per connection: a request must arrive whole within
 * DP_ADMIN_TIMEOUT_MS of the connection or of the previous response (a
 * client that trickles bytes is not given more time per byte), an idle
 * keep-alive connection is closed after the same time, and a response must
 * make progress within it. Keep-alive and pipelined requests are served in
 * order; HTTP/1.0 closes unless the client asks for keep-alive.
 */
#ifndef DP_ADMIN_H
#define DP_ADMIN_H

#include "core/util.h"
#include "dp/engine.h"

#define DP_ADMIN_MAX_HEAD   (16 * 1024)
#define DP_ADMIN_MAX_BODY   (16 * 1024)
#define DP_ADMIN_MAX_CONNS  128
#define DP_ADMIN_TIMEOUT_MS 10000

struct dp_admin;

/* Starts the endpoint on 127.0.0.1:port (0 = ephemeral) and its thread.
 * eng must outlive the endpoint. On error fills e and writes nothing to out. */
int dp_admin_start(struct dp_engine *eng, int port, struct dp_admin **out, struct err *e);
/* The bound port. */
int dp_admin_port(const struct dp_admin *a);
/* Stops the thread, closes every connection and frees; NULL ok. Call before
 * dp_engine_free(). */
void dp_admin_stop(struct dp_admin *a);

/* Tests only: the per-connection deadline (default DP_ADMIN_TIMEOUT_MS).
 * Call before the first connection. */
void dp_admin__set_timeout_ms(struct dp_admin *a, int ms);

#endif
