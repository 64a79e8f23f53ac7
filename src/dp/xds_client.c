/*
 * xds_client — the ADS client of kuma-dp; the contract is in xds_client.h.
 *
 * Transport: gRPC over HTTP/2 done by hand with libnghttp2 (framing,
 * HPACK, flow control, PING) and OpenSSL (TLS, ALPN h2), instead of the
 * gRPC C core, whose shared libraries (gRPC, abseil, re2, upb, c-ares,
 * libstdc++) cost a proxy ~11 MB of RSS (docs/BENCHMARKS.md). What is used
 * of gRPC is small: one bidirectional stream
 *   POST ADS_METHOD, content-type application/grpc, te: trailers,
 *   authorization: <token>, user-agent
 * carrying length-prefixed messages (grpcframe.h) both ways, ended by
 * trailers with grpc-status / grpc-message (or a trailers-only response).
 *
 * Invariants:
 *  - the client thread owns the socket, the TLS object, the nghttp2 session
 *    and every per-stream byte; other threads only set c->stop and write a
 *    byte into the wake pipe (dp_xds_client_stop);
 *  - one connection per stream, dialled anew by each attempt, so the
 *    reconnect timing is the backoff below and nothing else;
 *  - requests wait in a queue that the stream's data source drains (it
 *    defers when empty and is resumed by enqueue); the client never
 *    half-closes its side;
 *  - a stream ends once (stream_end): trailers, a reset, GOAWAY, a
 *    transport or framing error, a missed PING ACK, or stop;
 *  - the per-type state (sets, accepted versions) outlives streams: a new
 *    stream starts from what is in force.
 */
#define _GNU_SOURCE /* pipe2 */
#include "dp/xds_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/grpcframe.h"
#include "dp/xds_map.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define LOG "xds"
#define ADS_METHOD                                                                                 \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define MAX_MESSAGE (64 * 1024 * 1024)
/* HTTP/2 receive windows (stream and connection): a large CDS/EDS response
 * flows without waiting for WINDOW_UPDATEs; what arrives is consumed at
 * once (nghttp2 returns the window as the deframer takes the bytes). */
#define H2_WINDOW (4 * 1024 * 1024)
/* Dialling plus the TLS handshake (gRPC's minimum connect timeout). */
#define CONNECT_TIMEOUT_MS 20000
#define USER_AGENT         "kuma-dp grpc-nghttp2"

/* A framed request (prefix included), sent from off. */
struct out_msg {
    struct out_msg *next;
    size_t len, off;
    uint8_t data[];
};

struct dp_xds_client {
    struct dp_xds_client_opts o; /* strings below are owned copies */
    char *target, *ca, *token, *mesh, *name, *resource;
    char *host, *port; /* target split; host without IPv6 brackets */
    SSL_CTX *ssl_ctx;  /* NULL = plaintext (h2c, prior knowledge) */
    int wake[2];       /* pipe: dp_xds_client_stop → client thread */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop;
    unsigned int rnd; /* jitter, client thread only */

    /* Client thread only. */
    struct dp_xds_set *sets[DP_XDS_NTYPES];
    char *accepted[DP_XDS_NTYPES]; /* version last ACKed */
    int received_all;

    /* Stats, read from other threads. */
    atomic_uint_fast64_t st_streams, st_responses, st_acks, st_nacks, st_applies;
    atomic_int st_connected;
};

/* Per-stream state, client thread only. */
struct stream {
    struct dp_xds_client *c;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    int32_t sid;
    struct out_msg *qhead, *qtail;
    int deferred;  /* the data source is waiting for a request */
    uint8_t *wbuf; /* bytes for the socket, from woff */
    size_t wlen, woff, wcap;
    int want_write; /* the last write would have blocked */
    struct grpcf_deframer df;
    int got_response, node_sent;
    int headers_seen;             /* the response's first HEADERS arrived */
    int http_status, grpc_status; /* -1: none */
    char grpc_message[512];
    int done, code; /* stream_end() was called; its status */
    char why[512];
    int64_t ping_due, ping_deadline; /* mono ms; deadline 0 = no PING out */
};

static int stopping(struct dp_xds_client *c)
{
    return atomic_load(&c->stop);
}

/* Ends the stream once with a gRPC status and a reason. */
__attribute__((format(printf, 3, 4))) static void stream_end(struct stream *st, int code,
                                                             const char *fmt, ...)
{
    if (st->done)
        return;
    st->done = 1;
    st->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof(st->why), fmt, ap);
    va_end(ap);
}

/* ---- requests ------------------------------------------------------------------------------ */

static Google__Protobuf__Value *str_value(const char *s)
{
    Google__Protobuf__Value *v = xcalloc(1, sizeof(*v));
    google__protobuf__value__init(v);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

/* Serializes and frames a DiscoveryRequest; the node goes with the first one. */
static struct out_msg *build_request(struct stream *st, enum dp_xds_type t, const char *version,
                                     const char *nonce, const char *error)
{
    struct dp_xds_client *c = st->c;
    Envoy__Service__Discovery__V3__DiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
    Google__Protobuf__Struct__FieldsEntry fe[3];
    Google__Protobuf__Struct__FieldsEntry *fes[3];
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    char *id = xasprintf("%s.%s", c->mesh, c->name);
    char port[16];
    snprintf(port, sizeof(port), "%d", c->o.admin_port);
    size_t nf = 0;
    if (!st->node_sent) {
        node.id = id;
        node.user_agent_name = "kuma-dp";
        node.user_agent_version_type_case =
            ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
        node.user_agent_version = "dev";
        const char *keys[3] = {"dataplane.resource", "dataplane.admin.port",
                               "dataplane.admin.address"};
        const char *vals[3] = {c->resource, port, "127.0.0.1"};
        for (int i = 0; i < 3; i++) {
            if (!vals[i])
                continue;
            google__protobuf__struct__fields_entry__init(&fe[nf]);
            fe[nf].key = (char *)keys[i];
            fe[nf].value = str_value(vals[i]);
            fes[nf] = &fe[nf];
            nf++;
        }
        md.n_fields = nf;
        md.fields = fes;
        node.metadata = &md;
        req.node = &node;
        st->node_sent = 1;
    }
    req.type_url = (char *)dp_xds_type_url(t);
    req.version_info = (char *)(version ? version : "");
    req.response_nonce = (char *)(nonce ? nonce : "");
    if (error) {
        status.code = 3; /* INVALID_ARGUMENT, as Envoy */
        status.message = (char *)error;
        req.error_detail = &status;
    }
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(&req);
    uint8_t *buf = xmalloc(len ? len : 1);
    envoy__service__discovery__v3__discovery_request__pack(&req, buf);
    for (size_t i = 0; i < nf; i++)
        free(fe[i].value);
    free(id);
    struct out_msg *m = xmalloc(sizeof(*m) + GRPCF_PREFIX + len);
    m->next = NULL;
    m->len = GRPCF_PREFIX + len;
    m->off = 0;
    grpcf_prefix(m->data, (uint32_t)len);
    memcpy(m->data + GRPCF_PREFIX, buf, len);
    free(buf);
    return m;
}

static void enqueue(struct stream *st, enum dp_xds_type t, const char *version, const char *nonce,
                    const char *error)
{
    struct out_msg *m = build_request(st, t, version, nonce, error);
    if (st->qtail)
        st->qtail->next = m;
    else
        st->qhead = m;
    st->qtail = m;
    if (st->deferred && st->h2 && st->sid > 0) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->h2, st->sid);
    }
}

/* ---- responses ----------------------------------------------------------------------------- */

static void set_accepted(struct dp_xds_client *c, enum dp_xds_type t, const char *v)
{
    free(c->accepted[t]);
    c->accepted[t] = xstrdup(v ? v : "");
}

/* Handles one DiscoveryResponse: stage, build, apply, then ACK or NACK. */
static void on_response(struct stream *st, const uint8_t *data, size_t len)
{
    struct dp_xds_client *c = st->c;
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);
    if (!resp) {
        log_warn(LOG, "could not decode a DiscoveryResponse (%zu bytes); ignored", len);
        return;
    }
    atomic_fetch_add(&c->st_responses, 1);
    st->got_response = 1;
    atomic_store(&c->st_connected, 1);
    int ti = dp_xds_type_from_url(resp->type_url);
    if (ti < 0) {
        log_debug(LOG, "ignoring a response of unsubscribed type %s", resp->type_url);
        envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
        return;
    }
    enum dp_xds_type t = (enum dp_xds_type)ti;
    struct err e = {{0}};
    const void **vals = xcalloc(resp->n_resources + 1, sizeof(*vals));
    size_t *lens = xcalloc(resp->n_resources + 1, sizeof(*lens));
    const char **urls = xcalloc(resp->n_resources + 1, sizeof(*urls));
    for (size_t i = 0; i < resp->n_resources; i++) {
        vals[i] = resp->resources[i]->value.data;
        lens[i] = resp->resources[i]->value.len;
        urls[i] = resp->resources[i]->type_url;
    }
    struct dp_xds_set *set = NULL;
    int rc =
        dp_xds_set_decode(t, resp->version_info, vals, lens, urls, resp->n_resources, &set, &e);
    free(vals);
    free(lens);
    free(urls);
    struct dp_xds_set *old = c->sets[t];
    int applied = 0;
    if (rc == 0) {
        c->sets[t] = set;
        int all = 1;
        for (int i = 0; i < DP_XDS_NTYPES; i++)
            all &= c->sets[i] != NULL;
        struct dp_config *cfg = NULL;
        int missing = 0;
        rc = dp_xds_build(c->sets, &cfg, &missing, &e);
        if (rc == 0 && all && !missing) {
            rc = c->o.apply(c->o.ctx, cfg, &e);
            applied = rc == 0;
        } else if (rc == 0) {
            log_debug(LOG, "%s version %s staged (%s)", dp_xds_type_name(t), resp->version_info,
                      all ? "waiting for SDS secrets" : "waiting for every type");
            dp_config_free(cfg);
        }
        if (rc < 0) {
            c->sets[t] = old;
            old = set;
        }
        dp_xds_set_free(old);
    }
    if (rc == 0) {
        set_accepted(c, t, resp->version_info);
        atomic_fetch_add(&c->st_acks, 1);
        if (applied) {
            atomic_fetch_add(&c->st_applies, 1);
            if (!c->received_all)
                log_info(LOG, "first configuration from the control plane applied");
            c->received_all = 1;
        }
        log_debug(LOG, "%s version %s ACK", dp_xds_type_name(t), resp->version_info);
        enqueue(st, t, resp->version_info, resp->nonce, NULL);
    } else {
        atomic_fetch_add(&c->st_nacks, 1);
        log_warn(LOG, "%s version %s rejected (NACK): %s", dp_xds_type_name(t), resp->version_info,
                 e.msg);
        enqueue(st, t, c->accepted[t], resp->nonce, e.msg);
    }
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
}

/* ---- HTTP/2 callbacks ---------------------------------------------------------------------- */

/* The stream's body: queued requests, never an end (the client does not
 * half-close an ADS stream). */
static ssize_t read_body(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct stream *st = ud;
    size_t n = 0;
    while (st->qhead && n < length) {
        struct out_msg *m = st->qhead;
        size_t k = m->len - m->off;
        if (k > length - n)
            k = length - n;
        memcpy(buf + n, m->data + m->off, k);
        m->off += k;
        n += k;
        if (m->off == m->len) {
            st->qhead = m->next;
            if (!st->qhead)
                st->qtail = NULL;
            free(m);
        }
    }
    if (n == 0) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* grpc-message is percent-encoded (gRPC's HTTP/2 spec). */
static void percent_decode(char *out, size_t cap, const uint8_t *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned int v;
        char hex[3] = {0};
        if (in[i] == '%' && i + 2 < n) {
            hex[0] = (char)in[i + 1];
            hex[1] = (char)in[i + 2];
            if (sscanf(hex, "%2x", &v) == 1 && strspn(hex, "0123456789abcdefABCDEF") == 2) {
                out[o++] = (char)v;
                i += 2;
                continue;
            }
        }
        out[o++] = (char)in[i];
    }
    out[o] = 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct stream *st = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != st->sid)
        return 0;
#define IS(s) (namelen == sizeof(s) - 1 && memcmp(name, s, namelen) == 0)
    if (IS(":status")) {
        st->http_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st->http_status = st->http_status * 10 + (value[i] - '0');
    } else if (IS("grpc-status")) {
        int v = 0;
        for (size_t i = 0; i < valuelen; i++) {
            if (value[i] < '0' || value[i] > '9' || i >= 3) {
                v = GRPCF_STATUS_UNKNOWN;
                break;
            }
            v = v * 10 + (value[i] - '0');
        }
        st->grpc_status = valuelen ? v : GRPCF_STATUS_UNKNOWN;
    } else if (IS("grpc-message")) {
        percent_decode(st->grpc_message, sizeof(st->grpc_message), value, valuelen);
    } else if (IS("grpc-encoding") && !(valuelen == 8 && memcmp(value, "identity", 8) == 0)) {
        stream_end(st, GRPCF_STATUS_INTERNAL,
                   "kuma-cp answered with grpc-encoding %.*s (not negotiated)",
                   (int)(valuelen > 64 ? 64 : valuelen), (const char *)value);
    } else if (IS("content-type") && !st->headers_seen &&
               !(valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0)) {
        stream_end(st, GRPCF_STATUS_UNKNOWN, "kuma-cp answered with content-type %.*s",
                   (int)(valuelen > 64 ? 64 : valuelen), (const char *)value);
    }
#undef IS
    return 0;
}

/* The gRPC code for a response that is not HTTP 200 (gRPC's
 * http-grpc-status-mapping). */
static int http_to_grpc(int s)
{
    switch (s) {
    case 400:
        return GRPCF_STATUS_INTERNAL;
    case 401:
        return GRPCF_STATUS_UNAUTHENTICATED;
    case 403:
        return GRPCF_STATUS_PERMISSION_DENIED;
    case 404:
        return GRPCF_STATUS_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPCF_STATUS_UNAVAILABLE;
    default:
        return GRPCF_STATUS_UNKNOWN;
    }
}

static void on_status(struct stream *st)
{
    if (st->grpc_status < 0)
        stream_end(st, GRPCF_STATUS_UNKNOWN, "the stream ended without a grpc-status");
    else
        stream_end(st, st->grpc_status, "%s", st->grpc_message);
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct stream *st = ud;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (f->hd.stream_id != st->sid)
            break;
        if (!st->headers_seen) {
            st->headers_seen = 1;
            if (st->http_status != 200 && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
                stream_end(st, http_to_grpc(st->http_status), "HTTP status %d from kuma-cp",
                           st->http_status);
                break;
            }
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            on_status(st); /* trailers, or a trailers-only response */
        break;
    case NGHTTP2_DATA:
        if (f->hd.stream_id == st->sid && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            stream_end(st, GRPCF_STATUS_UNKNOWN, "the stream ended without trailers");
        break;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK) {
            st->ping_deadline = 0;
            uint32_t ka =
                st->c->o.keepalive_time_ms ? st->c->o.keepalive_time_ms : DP_XDS_KEEPALIVE_TIME_MS;
            st->ping_due = mono_ms() + ka;
        }
        break;
    case NGHTTP2_GOAWAY: {
        size_t n = f->goaway.opaque_data_len;
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "kuma-cp sent GOAWAY (%s)%s%.*s",
                   nghttp2_http2_strerror(f->goaway.error_code), n ? ": " : "",
                   (int)(n > 200 ? 200 : n), n ? (const char *)f->goaway.opaque_data : "");
        break;
    }
    default:
        break;
    }
    return 0;
}

static int on_message(void *ctx, const uint8_t *msg, size_t len, struct err *e)
{
    on_response(ctx, msg, len);
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                   void *ud)
{
    struct stream *st = ud;
    if (sid != st->sid || st->done)
        return 0;
    struct err e = {{0}};
    if (grpcf_deframer_feed(&st->df, data, len, on_message, st, &e) < 0) {
        stream_end(st, GRPCF_STATUS_INTERNAL, "%s", e.msg);
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t sid, uint32_t code, void *ud)
{
    struct stream *st = ud;
    if (sid != st->sid)
        return 0;
    if (code != NGHTTP2_NO_ERROR)
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "stream reset (%s)", nghttp2_http2_strerror(code));
    else
        stream_end(st, GRPCF_STATUS_UNKNOWN, "the stream closed without a grpc-status");
    return 0;
}

/* ---- socket and TLS ------------------------------------------------------------------------ */

static void ssl_errors(char *out, size_t cap)
{
    unsigned long x = ERR_get_error();
    if (!x)
        snprintf(out, cap, "%s", "no OpenSSL error");
    else
        ERR_error_string_n(x, out, cap);
    ERR_clear_error();
}

/* Waits for events on fd or the wake pipe until deadline (mono ms; 0 = none
 * beyond timeout_ms). Returns revents of fd, 0 on timeout, -1 when stopped. */
static int wait_fd(struct stream *st, int fd, short events, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = st->c->wake[0], .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);
    if (stopping(st->c))
        return -1;
    if (n <= 0)
        return 0;
    return p[0].revents;
}

/* Connects to one address before the deadline: the socket, or -1 with why. */
static int dial_one(struct stream *st, const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    int64_t left = deadline - mono_ms();
    int ev = wait_fd(st, fd, POLLOUT, left > 0 ? (int)left : 0);
    if (ev <= 0) {
        if (ev == 0)
            stream_end(st, GRPCF_STATUS_UNAVAILABLE, "connect: timed out");
        close(fd);
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "connect: %s", strerror(soerr));
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* TCP, then TLS (verified, ALPN h2) when configured. 0, or -1 with the
 * stream ended. */
static int dial(struct stream *st)
{
    struct dp_xds_client *c = st->c;
    int64_t deadline = mono_ms() + CONNECT_TIMEOUT_MS;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "resolving %s: %s", c->host, gai_strerror(rc));
        return -1;
    }
    st->fd = -1;
    for (struct addrinfo *ai = res; ai && st->fd < 0 && !stopping(c); ai = ai->ai_next) {
        st->done = 0; /* only the last address's failure is reported */
        st->fd = dial_one(st, ai, deadline);
    }
    freeaddrinfo(res);
    if (st->fd < 0) {
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "cancelled");
        return -1;
    }
    if (!c->ssl_ctx)
        return 0;
    st->ssl = SSL_new(c->ssl_ctx);
    SSL_set_fd(st->ssl, st->fd);
    SSL_set_connect_state(st->ssl);
    unsigned char ip[16];
    if (inet_pton(AF_INET, c->host, ip) == 1 || inet_pton(AF_INET6, c->host, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(st->ssl), c->host);
    } else {
        SSL_set_tlsext_host_name(st->ssl, c->host);
        SSL_set1_host(st->ssl, c->host);
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(st->ssl);
        if (r == 1)
            break;
        int err = SSL_get_error(st->ssl, r);
        short want = err == SSL_ERROR_WANT_READ    ? POLLIN
                     : err == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                   : 0;
        if (!want) {
            char buf[256];
            long vr = SSL_get_verify_result(st->ssl);
            if (vr != X509_V_OK)
                snprintf(buf, sizeof(buf), "certificate verify failed: %s",
                         X509_verify_cert_error_string(vr));
            else
                ssl_errors(buf, sizeof(buf));
            stream_end(st, GRPCF_STATUS_UNAVAILABLE, "TLS handshake with %s: %s", c->target, buf);
            return -1;
        }
        int64_t left = deadline - mono_ms();
        int ev = left > 0 ? wait_fd(st, st->fd, want, (int)left) : 0;
        if (ev < 0) {
            stream_end(st, GRPCF_STATUS_CANCELLED, "cancelled");
            return -1;
        }
        if (ev == 0) {
            stream_end(st, GRPCF_STATUS_UNAVAILABLE, "TLS handshake with %s: timed out", c->target);
            return -1;
        }
    }
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    SSL_get0_alpn_selected(st->ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
        stream_end(st, GRPCF_STATUS_UNAVAILABLE, "%s did not negotiate HTTP/2 (ALPN h2)",
                   c->target);
        return -1;
    }
    return 0;
}

/* Bytes to the socket: >0 written, 0 would block, -1 broken. */
static ssize_t io_write(struct stream *st, const uint8_t *p, size_t n)
{
    if (!st->ssl) {
        ssize_t w = send(st->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return w < 0 ? -1 : w;
    }
    ERR_clear_error();
    int w = SSL_write(st->ssl, p, (int)(n > 1 << 20 ? 1 << 20 : n));
    if (w > 0)
        return w;
    int err = SSL_get_error(st->ssl, w);
    return err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* Bytes from the socket: >0 read, 0 would block, -1 closed or broken. */
static ssize_t io_read(struct stream *st, uint8_t *p, size_t n)
{
    if (!st->ssl) {
        ssize_t r = recv(st->fd, p, n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return r <= 0 ? -1 : r;
    }
    ERR_clear_error();
    int r = SSL_read(st->ssl, p, (int)n);
    if (r > 0)
        return r;
    int err = SSL_get_error(st->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    return -1;
}

/* Moves what nghttp2 has to send to the socket until it would block. */
static int flush(struct stream *st)
{
    st->want_write = 0;
    for (;;) {
        if (st->woff == st->wlen) {
            st->woff = st->wlen = 0;
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(st->h2, &d);
            if (n < 0) {
                stream_end(st, GRPCF_STATUS_INTERNAL, "HTTP/2: %s", nghttp2_strerror((int)n));
                return -1;
            }
            if (n == 0)
                return 0;
            if ((size_t)n > st->wcap) {
                st->wcap = (size_t)n;
                st->wbuf = xrealloc(st->wbuf, st->wcap);
            }
            memcpy(st->wbuf, d, (size_t)n);
            st->wlen = (size_t)n;
        }
        ssize_t w = io_write(st, st->wbuf + st->woff, st->wlen - st->woff);
        if (w < 0) {
            stream_end(st, GRPCF_STATUS_UNAVAILABLE, "connection to kuma-cp broken (write)");
            return -1;
        }
        if (w == 0) {
            st->want_write = 1;
            return 0;
        }
        st->woff += (size_t)w;
    }
}

/* Feeds what the socket has to nghttp2 until it would block. */
static int pump_in(struct stream *st)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t r = io_read(st, buf, sizeof(buf));
        if (r == 0)
            return 0;
        if (r < 0) {
            stream_end(st, GRPCF_STATUS_UNAVAILABLE, "connection closed by kuma-cp");
            return -1;
        }
        ssize_t n = nghttp2_session_mem_recv(st->h2, buf, (size_t)r);
        if (n < 0) {
            stream_end(st, GRPCF_STATUS_UNAVAILABLE, "HTTP/2: %s", nghttp2_strerror((int)n));
            return -1;
        }
        if (st->done)
            return 0;
    }
}

/* ---- one stream ---------------------------------------------------------------------------- */

static int open_session(struct stream *st)
{
    struct dp_xds_client *c = st->c;
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    int rc = nghttp2_session_client_new2(&st->h2, cb, st, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        stream_end(st, GRPCF_STATUS_INTERNAL, "HTTP/2: %s", nghttp2_strerror(rc));
        return -1;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
    };
    nghttp2_submit_settings(st->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(st->h2, NGHTTP2_FLAG_NONE, 0, H2_WINDOW);

#define NV(n, v)                                                                                   \
    {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME}
    nghttp2_nv hdrs[] = {
        NV(":method", "POST"),
        NV(":scheme", c->ssl_ctx ? "https" : "http"),
        NV(":path", ADS_METHOD),
        NV(":authority", c->target),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("user-agent", USER_AGENT),
        NV("grpc-accept-encoding", "identity"),
        NV("authorization", c->token ? c->token : ""),
    };
#undef NV
    size_t nh = sizeof(hdrs) / sizeof(hdrs[0]) - (c->token ? 0 : 1);
    nghttp2_data_provider body = {.read_callback = read_body};
    st->sid = nghttp2_submit_request(st->h2, NULL, hdrs, nh, &body, st);
    if (st->sid < 0) {
        stream_end(st, GRPCF_STATUS_INTERNAL, "HTTP/2: %s", nghttp2_strerror(st->sid));
        return -1;
    }
    return 0;
}

/* Sends a PING when one is due; ends the stream when the last one was not
 * ACKed in time. Returns the poll timeout until the next check. */
static int keepalive(struct stream *st)
{
    struct dp_xds_client *c = st->c;
    uint32_t kt =
        c->o.keepalive_timeout_ms ? c->o.keepalive_timeout_ms : DP_XDS_KEEPALIVE_TIMEOUT_MS;
    int64_t now = mono_ms();
    if (st->ping_deadline && now >= st->ping_deadline) {
        stream_end(st, GRPCF_STATUS_UNAVAILABLE,
                   "keepalive watchdog timeout (no PING ACK within %u ms)", kt);
        return 0;
    }
    if (!st->ping_deadline && now >= st->ping_due) {
        nghttp2_submit_ping(st->h2, NGHTTP2_FLAG_NONE, NULL);
        st->ping_deadline = now + kt;
    }
    int64_t next = st->ping_deadline ? st->ping_deadline : st->ping_due;
    return next > now ? (int)(next - now) : 0;
}

/* Runs one stream to its end. Returns whether it delivered a response. */
static int run_stream(struct dp_xds_client *c)
{
    struct stream st;
    memset(&st, 0, sizeof(st));
    st.c = c;
    st.fd = -1;
    st.http_status = st.grpc_status = -1;
    grpcf_deframer_init(&st.df, MAX_MESSAGE);
    atomic_fetch_add(&c->st_streams, 1);

    if (dial(&st) == 0 && open_session(&st) == 0) {
        /* Clusters and endpoints first, then listeners and secrets, as
         * Envoy subscribes; the versions in force tell kuma-cp what this
         * proxy has. */
        static const enum dp_xds_type order[] = {DP_XDS_CDS, DP_XDS_EDS, DP_XDS_LDS, DP_XDS_SDS};
        for (size_t i = 0; i < 4; i++)
            enqueue(&st, order[i], c->accepted[order[i]], NULL, NULL);
        uint32_t ka = c->o.keepalive_time_ms ? c->o.keepalive_time_ms : DP_XDS_KEEPALIVE_TIME_MS;
        st.ping_due = mono_ms() + ka;
        while (!st.done) {
            if (stopping(c)) {
                stream_end(&st, GRPCF_STATUS_CANCELLED, "cancelled");
                break;
            }
            if (flush(&st) < 0)
                break;
            if (!nghttp2_session_want_read(st.h2) && !nghttp2_session_want_write(st.h2)) {
                stream_end(&st, GRPCF_STATUS_UNAVAILABLE, "HTTP/2 session over");
                break;
            }
            int timeout = keepalive(&st);
            if (st.done)
                break;
            /* SSL may hold decrypted bytes poll cannot see. */
            if (st.ssl && SSL_pending(st.ssl) > 0)
                timeout = 0;
            short ev = POLLIN | (st.want_write ? POLLOUT : 0);
            int rev = wait_fd(&st, st.fd, ev, timeout);
            if (rev < 0)
                continue; /* stop: handled at the top */
            char drain[16];
            if (read(c->wake[0], drain, sizeof(drain)) < 0) {
                /* nothing to drain */
            }
            if (rev & (POLLIN | POLLHUP | POLLERR) || (st.ssl && SSL_pending(st.ssl) > 0))
                pump_in(&st);
        }
        if (st.code == GRPCF_STATUS_CANCELLED && st.h2) {
            /* Stop: tell kuma-cp, best effort. */
            nghttp2_submit_rst_stream(st.h2, NGHTTP2_FLAG_NONE, st.sid, NGHTTP2_CANCEL);
            nghttp2_session_terminate_session(st.h2, NGHTTP2_NO_ERROR);
            st.done = 0;
            flush(&st);
            st.done = 1;
        }
    }
    if (!stopping(c))
        log_warn(LOG, "ADS stream to %s ended: status %d: %s", c->target, st.code, st.why);
    atomic_store(&c->st_connected, 0);
    if (st.ssl) {
        SSL_shutdown(st.ssl); /* close_notify, not waited for */
        SSL_free(st.ssl);
    }
    if (st.fd >= 0)
        close(st.fd);
    nghttp2_session_del(st.h2);
    for (struct out_msg *m = st.qhead, *n; m; m = n) {
        n = m->next;
        free(m);
    }
    free(st.wbuf);
    grpcf_deframer_free(&st.df);
    return st.got_response;
}

static void *client_main(void *arg)
{
    struct dp_xds_client *c = arg;
    uint32_t initial = c->o.backoff_initial_ms ? c->o.backoff_initial_ms : 1000;
    uint32_t max = c->o.backoff_max_ms ? c->o.backoff_max_ms : 30000;
    uint32_t backoff = initial;
    for (;;) {
        if (stopping(c))
            break;
        if (run_stream(c))
            backoff = initial;
        /* Equal jitter: half fixed, half random, so proxies that lost the
         * same control plane do not come back in lockstep. */
        uint32_t delay = backoff / 2 + (uint32_t)(rand_r(&c->rnd) % (backoff / 2 + 1));
        backoff = backoff > max / 2 ? max : backoff * 2;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += delay / 1000;
        until.tv_nsec += (long)(delay % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->mu);
        if (!stopping(c))
            log_info(LOG, "reconnecting to %s in %u ms", c->target, delay);
        while (!stopping(c) && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* The TLS context: trust = every certificate of ca_pem, peer verified,
 * ALPN h2, TLS 1.2 or later. */
static SSL_CTX *make_ssl_ctx(const char *ca_pem, struct err *e)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return err_set(e, "xDS client: cannot create a TLS context"), NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *b = BIO_new_mem_buf(ca_pem, -1);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) == 1)
            n++;
        X509_free(x);
    }
    BIO_free(b);
    ERR_clear_error();
    if (n == 0) {
        SSL_CTX_free(ctx);
        return err_set(e, "xDS client: the CA bundle (--ca-cert-file) holds no PEM certificate"),
               NULL;
    }
    return ctx;
}

/* "host:port", "[v6]:port" → host (no brackets), port. */
static int split_target(const char *t, char **host, char **port, struct err *e)
{
    const char *colon;
    if (t[0] == '[') {
        const char *rb = strchr(t, ']');
        if (!rb || rb[1] != ':' || !rb[2])
            return err_set(e, "xDS client: bad target %s (want [ADDRESS]:PORT)", t);
        *host = xstrndup(t + 1, (size_t)(rb - t - 1));
        colon = rb + 1;
    } else {
        colon = strrchr(t, ':');
        if (!colon || colon == t || !colon[1])
            return err_set(e, "xDS client: bad target %s (want HOST:PORT)", t);
        *host = xstrndup(t, (size_t)(colon - t));
    }
    *port = xstrdup(colon + 1);
    return 0;
}

static void client_free(struct dp_xds_client *c)
{
    for (int i = 0; i < DP_XDS_NTYPES; i++) {
        dp_xds_set_free(c->sets[i]);
        free(c->accepted[i]);
    }
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    if (c->wake[0] >= 0)
        close(c->wake[0]);
    if (c->wake[1] >= 0)
        close(c->wake[1]);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->target);
    free(c->host);
    free(c->port);
    free(c->ca);
    free(c->token);
    free(c->mesh);
    free(c->name);
    free(c->resource);
    free(c);
}

int dp_xds_client_start(const struct dp_xds_client_opts *o, struct dp_xds_client **out,
                        struct err *e)
{
    if (!o->target || !o->mesh || !o->name || !o->apply)
        return err_set(e, "xDS client: target, mesh, name and apply are required");
    struct dp_xds_client *c = xcalloc(1, sizeof(*c));
    c->o = *o;
    c->wake[0] = c->wake[1] = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->target = xstrdup(o->target);
    c->ca = o->ca_cert_pem ? xstrdup(o->ca_cert_pem) : NULL;
    c->token = o->token ? xstrdup(o->token) : NULL;
    c->mesh = xstrdup(o->mesh);
    c->name = xstrdup(o->name);
    c->resource = o->dataplane_resource ? xstrdup(o->dataplane_resource) : NULL;
    c->rnd = (unsigned int)(time(NULL) ^ (getpid() << 8));
    if (split_target(c->target, &c->host, &c->port, e) < 0 ||
        (c->ca && !(c->ssl_ctx = make_ssl_ctx(c->ca, e)))) {
        client_free(c);
        return -1;
    }
    if (pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        c->wake[0] = c->wake[1] = -1;
        client_free(c);
        return err_set(e, "xDS client: pipe: %s", strerror(errno));
    }
    if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
        client_free(c);
        return err_set(e, "xDS client: cannot start its thread");
    }
    *out = c;
    return 0;
}

void dp_xds_client_get_stats(struct dp_xds_client *c, struct dp_xds_client_stats *out)
{
    out->streams = atomic_load(&c->st_streams);
    out->responses = atomic_load(&c->st_responses);
    out->acks = atomic_load(&c->st_acks);
    out->nacks = atomic_load(&c->st_nacks);
    out->applies = atomic_load(&c->st_applies);
    out->connected = atomic_load(&c->st_connected);
}

void dp_xds_client_stop(struct dp_xds_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->stop, 1);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (write(c->wake[1], "x", 1) < 0) {
        /* full: the thread is woken already */
    }
    pthread_join(c->thread, NULL);
    client_free(c);
}
