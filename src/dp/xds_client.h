/*
 * xds_client — kuma-dp's ADS client: one state-of-the-world stream to
 * kuma-cp's
 * /envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources,
 * gRPC over HTTP/2 done with libnghttp2 and OpenSSL (no gRPC library; the
 * transport lives in xds_client.c, the message framing in grpcframe.c).
 *
 * Protocol. The first request carries the node: id "<mesh>.<name>",
 * user_agent_name "kuma-dp", metadata `dataplane.resource` (the Dataplane
 * text after --dataplane-var substitution) and `dataplane.admin.port`.
 * The call carries the dataplane token as `authorization` metadata. The
 * client subscribes to CDS, EDS, LDS and SDS (wildcard) and answers every
 * response once: an ACK (version_info = the response's version, nonce) when
 * it was applied, a NACK (the last accepted version, the nonce, error_detail
 * with the reason) when it could not be mapped or the engine refused it. A
 * NACKed set is never retried by the client; kuma-cp sends a new version
 * when something changes.
 *
 * Applying. The first configuration is applied once every type has been
 * received; later ones on every response. A configuration whose TLS contexts
 * name a secret SDS has not delivered yet is held back (and ACKed) until
 * the secret arrives, as Envoy keeps such resources warming.
 *
 * Threads. dp_xds_client_start() starts one thread that owns the
 * connection, the HTTP/2 session and the stream; it calls opts.apply from
 * that thread. dp_xds_client_stop() may be called from any other thread.
 *
 * Failures. When the stream ends (kuma-cp down, restarted, refused the
 * token), the proxy keeps the last applied configuration and the client
 * reconnects after an exponential backoff with jitter (initial → max,
 * doubling; a stream that delivered a response resets it). A new stream
 * resends the node and the versions in force, so kuma-cp sends only what
 * changed.
 */
#ifndef DP_XDS_CLIENT_H
#define DP_XDS_CLIENT_H

#include <stdint.h>

#include "core/util.h"
#include "dp/model.h"

struct dp_xds_client_opts {
    const char *target;             /* "host:port" of kuma-cp's DP server */
    const char *ca_cert_pem;        /* trust for kuma-cp's certificate; NULL = plaintext */
    const char *token;              /* dataplane token; NULL = none */
    const char *mesh, *name;        /* node id <mesh>.<name> */
    const char *dataplane_resource; /* Dataplane text for node metadata; NULL = none */
    int admin_port;                 /* reported in node metadata */
    uint32_t backoff_initial_ms;    /* 0 → 1 s */
    uint32_t backoff_max_ms;        /* 0 → 30 s */
    /* HTTP/2 keepalive on the ADS connection: a PING after this long
     * without one (0 → DP_XDS_KEEPALIVE_TIME_MS), and the connection is
     * dropped (then re-dialled) when its ACK takes longer than the timeout
     * (0 → DP_XDS_KEEPALIVE_TIMEOUT_MS). Pings are sent with or without
     * streams and data, so a control plane that vanished without a FIN/RST
     * (blackholed, frozen) is noticed within time + timeout. */
    uint32_t keepalive_time_ms;
    uint32_t keepalive_timeout_ms;
    /* Installs a configuration (ownership passes in every case); returns 0,
     * or -1 with e set, which the client NACKs. */
    int (*apply)(void *ctx, struct dp_config *cfg, struct err *e);
    void *ctx;
};

/* Kuma's DP server keepalive (pkg/dp-server/server/server.go: pings every
 * 15 s, 15 s timeout), applied from the proxy's side too. */
#define DP_XDS_KEEPALIVE_TIME_MS    15000
#define DP_XDS_KEEPALIVE_TIMEOUT_MS 15000

struct dp_xds_client;

/* Counters for logs, tests and the admin endpoint. */
struct dp_xds_client_stats {
    uint64_t streams;   /* streams opened */
    uint64_t responses; /* responses received */
    uint64_t acks, nacks;
    uint64_t applies; /* configurations installed */
    int connected;    /* a stream is open and has delivered a response */
};

/* Copies the options it keeps and starts the client thread. Fails when the
 * target is not HOST:PORT or ca_cert_pem holds no PEM certificate. */
int dp_xds_client_start(const struct dp_xds_client_opts *o, struct dp_xds_client **out,
                        struct err *e);
void dp_xds_client_get_stats(struct dp_xds_client *c, struct dp_xds_client_stats *out);
/* Cancels the stream, joins the thread, frees everything. NULL ok. */
void dp_xds_client_stop(struct dp_xds_client *c);

#endif
