/*
 * api/server — Kuma's REST API (reference §6) on libmicrohttpd.
 *
 * libmicrohttpd runs a small pool of threads; each request is parsed, its
 * body collected up to API_MAX_BODY bytes, routed, and answered with JSON.
 * Handlers only parse, validate and call the resource manager; the store
 * serialises writes. Errors use Kuma's envelope (type "/std-errors").
 */
#ifndef API_SERVER_H
#define API_SERVER_H

#include "core/config.h"
#include "core/util.h"
#include "mesh/manager.h"

#define API_MAX_BODY (1u << 20) /* request bodies above 1 MiB get 413 */
#define API_THREADS  4

struct api_deps {
    struct manager *mgr;
    const struct cp_config *cfg;
    const char *hostname;
    const char *instance_id;
    const char *cluster_id;
};

struct api_server;

/* Starts serving on iface:port (port 0 = ephemeral); *bound_port receives the
 * port actually bound. */
int api_server_start(const struct api_deps *deps, const char *iface, int port,
                     struct api_server **out, int *bound_port, struct err *e);
/* The same API over HTTPS with the given certificate (chain) and key in PEM
 * (copied; the key copy is wiped on stop). */
int api_server_start_tls(const struct api_deps *deps, const char *iface, int port,
                         const char *cert_pem, const char *key_pem, struct api_server **out,
                         int *bound_port, struct err *e);
void api_server_stop(struct api_server *s);

/* The diagnostics server: GET /ready (200 once *ready is non-zero, 503
 * before) and GET /healthy. */
int diagnostics_server_start(const char *iface, int port, const volatile int *ready,
                             struct api_server **out, int *bound_port, struct err *e);

#endif
