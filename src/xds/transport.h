/*
 * transport — the gRPC side of the ADS server: gRPC over HTTP/2 by hand
 * (libnghttp2 + OpenSSL + epoll, transport.c; no gRPC library).
 *
 * Event-loop threads (one per core, 2..8, started here) accept connections,
 * run the TLS handshakes and HTTP/2 sessions, and accept calls to
 * /envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources
 * (other methods get UNIMPLEMENTED). Each received message is delivered as
 * raw bytes, and the end of the call is reported. Sending is allowed from
 * any thread: xds_stream_send() appends to the stream's write queue and
 * wakes the stream's loop, which writes as the socket and the peer's HTTP/2
 * flow control allow. Nothing polls; a timer runs only while a connection
 * is being set up (setup_timeout_ms).
 *
 * Lifetime: a stream is reference counted. The transport holds a reference
 * until the stream closes; on_open hands the callee one more reference,
 * which it drops with xds_stream_unref() when it is done with the stream
 * (after on_close at the latest). The stream is freed when the last
 * reference goes.
 *
 * TLS: xds_transport_opts.tls_cert_pem/tls_key_pem (kuma-cp's DP-server
 * certificate, then its chain) switch the port from plaintext HTTP/2 (prior
 * knowledge) to TLS with ALPN h2; NULL keeps plaintext.
 */
#ifndef XDS_TRANSPORT_H
#define XDS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/grpcframe.h"
#include "core/util.h"

#define XDS_ADS_METHOD                                                                             \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"

struct xds_transport;
struct xds_stream;

/* Called on a loop thread, no lock held; they must not block for long. */
struct xds_transport_cb {
    /* A new stream: s carries one reference for the callee. */
    void (*on_open)(void *ctx, struct xds_stream *s);
    /* One request message (the bytes are valid only during the call). */
    void (*on_message)(void *ctx, struct xds_stream *s, const uint8_t *data, size_t len);
    /* The call ended (client went away, cancelled, finished, or shutdown). */
    void (*on_close)(void *ctx, struct xds_stream *s);
};

struct xds_transport_opts {
    const char *address;      /* interface to bind, e.g. "0.0.0.0" */
    int port;                 /* 0 = ephemeral */
    const char *tls_cert_pem; /* NULL = plaintext */
    const char *tls_key_pem;
    size_t max_message;   /* largest request accepted, bytes (0 = 4 MiB) */
    size_t max_queue;     /* messages queued per stream before send fails (0 = 256) */
    int setup_timeout_ms; /* TLS handshake + the client's first HTTP/2 frame (0 = 60 s) */
};

/* The DP server's TLS context as the transport builds it from a PEM
 * certificate (then its chain) and key: what xds_transport_start uses, and
 * what bench/xds/hs_bench.c measures. NULL with e set. */
struct ssl_ctx_st;
struct ssl_ctx_st *xds_transport_tls_ctx(const char *cert_pem, const char *key_pem, struct err *e);

/* Binds, starts the server and its loop threads. *bound_port
 * receives the port (useful with port 0). Returns 0, or -1 with e set. */
int xds_transport_start(const struct xds_transport_opts *o, const struct xds_transport_cb *cb,
                        void *ctx, struct xds_transport **out, int *bound_port, struct err *e);

/* Stops accepting, sends every connection a GOAWAY and closes it (on_close
 * is delivered for each open call), and joins the loop threads. Streams still referenced stay valid
 * (sends fail) until unreferenced. */
void xds_transport_shutdown(struct xds_transport *t);

/* Destroys the server after xds_transport_shutdown() and after every stream
 * reference was dropped. NULL is a no-op. */
void xds_transport_free(struct xds_transport *t);

void xds_stream_ref(struct xds_stream *s);
void xds_stream_unref(struct xds_stream *s);

/* Queues one message (copied). Safe from any thread. Returns 0, or -1 if the
 * stream is closed or finishing, or its queue is full. */
int xds_stream_send(struct xds_stream *s, const void *data, size_t len);
/* The same, taking ownership of a malloc'd buffer (no copy; freed by the
 * transport, also on failure). */
int xds_stream_send_owned(struct xds_stream *s, void *data, size_t len);

/* Ends the call with a status once the queued messages are sent. Safe from
 * any thread; later calls are ignored. */
void xds_stream_finish(struct xds_stream *s, enum grpcf_status code, const char *msg);

/* A number unique per stream in this process, for logs and insights. */
uint64_t xds_stream_id(const struct xds_stream *s);
/* The client's address ("ipv4:127.0.0.1:4567"). */
const char *xds_stream_peer(const struct xds_stream *s);
/* The `authorization` request metadata (Kuma's dataplane token, sent without a
 * "Bearer" prefix), or NULL when absent. */
const char *xds_stream_authorization(const struct xds_stream *s);

/* One pointer the callee may attach to a stream. */
void xds_stream_set_user(struct xds_stream *s, void *user);
void *xds_stream_user(const struct xds_stream *s);

#endif
