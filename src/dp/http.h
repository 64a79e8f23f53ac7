/*
 * http — the HTTP/1.1 side of kuma-dp's HTTP connection manager: route
 * tables compiled from an HttpConnectionManager's route_config, route
 * selection for a request, the parser glue (Node's http-parser, Debian's
 * libhttp-parser) that finds request and response boundaries in a byte
 * stream, and Envoy-like local replies.
 *
 * The engine (engine.c) owns sockets, buffers and upstream connections; it
 * hands this module the bytes it has read and asks it where messages begin
 * and end. Nothing here does I/O or allocates on the data path except the
 * codec itself (one per downstream connection), so the module can be tested
 * and fuzzed on its own.
 *
 * Streaming. The codec never copies a body. Requests are parsed one at a
 * time: parsing pauses when a request head is complete (the engine routes it)
 * and again when the request message is complete (the engine then waits for
 * the response before it parses the next pipelined request, so responses go
 * back in order). Head fields are kept as offsets from the start of the
 * message, so the head must stay in the caller's buffer, contiguous, until it
 * is routed: a head larger than `max_head` is refused (431).
 */
#ifndef DP_HTTP_H
#define DP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "dp/model.h"

/* --- routing ------------------------------------------------------------------------------- */

/* A request as routing sees it. Strings are not NUL-terminated. */
struct dp_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
struct dp_http_request {
    const char *method; /* NUL-terminated ("GET") */
    const char *path;   /* request target: path and query */
    size_t path_len;
    const char *authority; /* Host header; NULL if absent */
    size_t authority_len;
    int tls; /* :scheme is https */
    const struct dp_http_header *headers;
    size_t n_headers;
};

/* A route_config compiled for matching (regular expressions compiled). */
struct dp_http_routes;

/* Compiles m's route_config. Fails (with e) on a regular expression POSIX ERE
 * cannot compile. The table points into m, which must outlive it. */
int dp_http_routes_new(const struct dp_http_conn_manager *m, struct dp_http_routes **out,
                       struct err *e);
void dp_http_routes_free(struct dp_http_routes *r);
/* Number of routes over all virtual hosts; route indexes are 0..n-1 in
 * configuration order. */
size_t dp_http_routes_count(const struct dp_http_routes *r);
const struct dp_http_route *dp_http_routes_get(const struct dp_http_routes *r, size_t idx);

/* The index of the route for rq: the virtual host by domain (exact, then the
 * longest "*.suffix", then the longest "prefix.*", then "*", ignoring case;
 * a port in the Host header is part of it, as in Envoy), then its first route whose path
 * and header matchers all match. -1 = no route (Envoy answers 404). */
int dp_http_route_select(const struct dp_http_routes *r, const struct dp_http_request *rq);

/* --- codec --------------------------------------------------------------------------------- */

enum dp_http_ev {
    DP_HTTP_MORE,  /* every byte given was consumed; more are needed */
    DP_HTTP_HEAD,  /* a request head is complete: see dp_http_codec_request() */
    DP_HTTP_DONE,  /* the message (request or response) is complete */
    DP_HTTP_ERROR, /* malformed: dp_http_codec_error() gives the status to answer */
};

struct dp_http_codec;

/* max_head: the largest request head accepted (431 beyond). */
struct dp_http_codec *dp_http_codec_new(uint32_t max_head);
void dp_http_codec_free(struct dp_http_codec *h);

/* Starts a new request/response exchange (the parsers are reset). */
void dp_http_codec_next(struct dp_http_codec *h);

/* Parses request bytes p[0..n) and stops after the first event; *used is the
 * number of bytes consumed (fewer than n after an event). */
enum dp_http_ev dp_http_codec_request_feed(struct dp_http_codec *h, const char *p, size_t n,
                                           size_t *used);
/* After DP_HTTP_HEAD: the request, with its fields pointing into msg, the
 * caller's copy of the message from its first byte. hdrs is caller storage
 * for up to DP_HTTP_MAX_HEADERS entries. */
#define DP_HTTP_MAX_HEADERS 100
void dp_http_codec_request(const struct dp_http_codec *h, const char *msg,
                           struct dp_http_header *hdrs, struct dp_http_request *out);
/* After DP_HTTP_HEAD: the head's length in bytes (request line to blank line). */
size_t dp_http_codec_head_len(const struct dp_http_codec *h);
/* After DP_HTTP_HEAD: removes the header lines named in names (lower case)
 * from the head at msg, moving the avail - head bytes that follow (already
 * read) down. Returns the number of bytes removed. */
size_t dp_http_codec_strip(struct dp_http_codec *h, char *msg, size_t avail, char *const *names,
                           size_t n_names);
/* After DP_HTTP_HEAD (and any strip): appends the header line
 * "name: value" to the head at msg, moving the avail - head bytes that
 * follow up. cap is the room from msg on. Returns the number of bytes added,
 * 0 if they do not fit. */
size_t dp_http_codec_add_header(struct dp_http_codec *h, char *msg, size_t avail, size_t cap,
                                const char *name, const char *value);
/* After the request's DP_HTTP_DONE: whether the client keeps the connection
 * (HTTP/1.1 without "Connection: close", or HTTP/1.0 with keep-alive), and
 * whether it asked for an Upgrade. */
int dp_http_codec_request_keep_alive(const struct dp_http_codec *h);
int dp_http_codec_request_upgrade(const struct dp_http_codec *h);

/* Parses response bytes (n = 0 signals the upstream's EOF, which ends a
 * response delimited by the connection close). Interim 1xx responses other
 * than 101 are passed over. DP_HTTP_DONE when the response is complete. */
enum dp_http_ev dp_http_codec_response_feed(struct dp_http_codec *h, const char *p, size_t n,
                                            size_t *used);
/* The response's status code once its head was parsed, else 0. */
int dp_http_codec_status(const struct dp_http_codec *h);
int dp_http_codec_response_keep_alive(const struct dp_http_codec *h);
/* Whether the response's body was delimited by the upstream closing (no
 * Content-Length, not chunked): the downstream must then close as well,
 * since bytes are forwarded as they are. */
int dp_http_codec_response_until_close(const struct dp_http_codec *h);

/* After DP_HTTP_ERROR on the request side: 400, or 431 for a head too large. */
int dp_http_codec_error(const struct dp_http_codec *h);

/* --- local replies ------------------------------------------------------------------------- */

/* Writes an Envoy-like local reply ("HTTP/1.1 503 Service Unavailable",
 * content-length, content-type text/plain, server: envoy, and "connection:
 * close" when close) with body into out. Returns its length, or 0 if it does
 * not fit in cap. */
size_t dp_http_local_reply(char *out, size_t cap, int status, const char *body, int close);

#endif
