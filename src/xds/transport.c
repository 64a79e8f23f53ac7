/*
 * transport — the ADS server's gRPC transport done by hand: HTTP/2 with
 * libnghttp2 (framing, HPACK, flow control, PING ACKs), TLS with OpenSSL
 * (ALPN h2), the gRPC message framing of core/grpcframe.h, and epoll. The
 * contract is in transport.h. gRPC C core did the same with ~66 KB of fixed
 * buffers per connection (BIO pair, frame protector, staging buffers) and a
 * large share of kuma-cp's CPU (docs/BENCHMARKS.md); what an ADS server
 * needs of gRPC is one bidirectional stream:
 *   request  POST XDS_ADS_METHOD, content-type application/grpc*, metadata
 *   response :status 200, content-type application/grpc, messages, then
 *            trailers grpc-status / grpc-message (percent-encoded), or a
 *            trailers-only response for a refused call.
 *
 * Threads: one event loop (epoll) per core, 2..XDS_LOOPS. Loop 0 also owns
 * the listening socket and deals accepted connections round robin; a
 * connection and its streams then belong to one loop, whose thread alone
 * touches the socket, the SSL object and the nghttp2 session. Other threads
 * (the mesh and generation threads) queue messages with xds_stream_send and
 * xds_stream_finish: the stream is put on its loop's pending list under the
 * loop's mutex and the loop is woken through its eventfd when the list goes
 * from empty to non-empty. An idle server sleeps in epoll_wait: the only
 * timer runs while a connection is being set up (TLS handshake and HTTP/2
 * preface, XDS_SETUP_TIMEOUT_MS).
 *
 * Invariants:
 *  - lp->mu guards, for every stream of the loop, the message queue, qlen,
 *    finish_*, closed and the pending list links; everything else of a
 *    stream or a connection is the loop thread's;
 *  - a stream holds a reference for the transport (dropped when it closes),
 *    one for the callee (given by on_open) and one while on the pending list;
 *  - the loop never holds lp->mu while calling back (on_message may call
 *    xds_stream_finish);
 *  - back-pressure: nghttp2's frames are gathered into the loop's write
 *    buffer (one TLS record, one system call) and written at once; when the
 *    socket takes only part, the rest is kept for that connection (at most
 *    one buffer's worth) and nothing more is pulled from any of its streams
 *    until EPOLLOUT has let it go. Beyond that the peer's HTTP/2 flow
 *    control stops the pulls, and a stream's queue is capped by max_queue.
 *
 * Memory per connection (the point of this file): the socket BIO writes
 * OpenSSL's records straight to the socket (no BIO pair), OpenSSL releases
 * its record buffers whenever no record is pending (SSL_MODE_RELEASE_BUFFERS),
 * reads and writes go through buffers of the loop, nghttp2's 16 KB frame
 * buffer has pages of its own that are given back after large bursts, and
 * HPACK dynamic tables are off in both directions (one stream per
 * connection gains nothing from them).
 */
#define _GNU_SOURCE /* accept4 */
#include "xds/transport.h"

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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/grpcframe.h"
#include "core/log.h"

#define LOG "xds"
/* Event loops: one per core, 2 to 8 (docs/BENCHMARKS.md: more loops than
 * cores only add wake-ups). */
#define XDS_LOOPS 8
/* The shortest PING period a proxy may use without being told off (GOAWAY
 * ENHANCE_YOUR_CALM "too_many_pings", as gRPC): kuma-dp pings at 5 s at the
 * least, this leaves a second of jitter. Kuma's DP server enforces 15 s.
 * Like gRPC, a PING sooner than this after the previous one is a strike,
 * sending HEADERS or DATA forgives them, and the third strike ends the
 * connection. */
#define XDS_MIN_CLIENT_PING_MS 4000
#define XDS_MAX_PING_STRIKES   2
/* A connection must complete its TLS handshake and send its first HTTP/2
 * frame within this (gRPC core: 120 s). Generous, as a cold start of 10,000
 * proxies on two busy cores queues handshakes for many seconds. */
#define XDS_SETUP_TIMEOUT_MS 60000
/* Concurrent streams per connection: a proxy opens one ADS stream, but a
 * relay or a benchmark multiplexes many proxies on one connection (Kuma's
 * DP server, like go-control-plane's, allows 1,000,000; gRPC core no
 * limit). */
#define XDS_MAX_STREAMS 1000000
/* Request metadata a client may send (gRPC's default is 8 KB; a dataplane
 * token is ~1 KB). */
#define XDS_MAX_HEADER_LIST 16384
/* The per-loop read buffer: one TLS record's plaintext at most. */
#define XDS_READ_BUF 16384
/* The per-loop write buffer: one TLS record's plaintext. */
#define XDS_WRITE_BUF 16384

struct qmsg {
    struct qmsg *next;
    uint8_t *data; /* owned */
    size_t len;
    size_t off; /* bytes of prefix + data already handed to nghttp2 */
};

struct loop;

struct conn {
    struct loop *lp;
    int fd;
    SSL *ssl; /* NULL: plaintext */
    int handshaking;
    int64_t setup_deadline; /* mono ms; 0 once the client's first HTTP/2 frame arrived */
    nghttp2_session *h2;
    char peer[64];
    const uint8_t *wptr; /* the rest of nghttp2's last frame, not yet gathered */
    size_t wlen;
    uint8_t *pend; /* gathered bytes the socket refused (only while it does) */
    size_t pend_len, pend_off;
    uint32_t events; /* registered with epoll */
    int closing;     /* flush what is queued, then close (GOAWAY sent) */
    int dead;        /* closed; freed at the end of the round */
    int registered;  /* with epoll */
    int linked;      /* on lp->conns */
    int in_new;      /* nghttp2_session_server_new3 is running */
    void *fbuf;      /* nghttp2's frame buffer, pages of its own (h2_malloc) */
    size_t fbuf_len;
    int fbuf_dirty; /* a frame went past its first page since conn_trim */
    int64_t last_ping_ms;
    int ping_strikes;
    struct xds_stream *streams; /* open streams (s->cnext) */
    struct conn *prev, *next;   /* lp->conns */
};

struct loop {
    struct xds_transport *t;
    int idx;
    int epfd, evfd;
    int tfd;     /* timerfd: armed only while connections are being set up */
    int n_setup; /* connections with a setup_deadline */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    struct xds_stream *pending; /* streams with work queued (s->pnext) */
    struct conn *incoming;      /* accepted by loop 0, not yet registered */
    int stop;                   /* under mu */
    struct conn *conns;         /* loop thread only */
    struct conn *graveyard;     /* closed this round, freed after it (c->next) */
    uint8_t rbuf[XDS_READ_BUF];
    uint8_t wbuf[XDS_WRITE_BUF]; /* frames gathered for one write */
};

struct xds_transport {
    struct xds_transport_cb cb;
    void *ctx;
    size_t max_queue, max_message;
    int setup_timeout_ms;
    int lfd;
    SSL_CTX *ssl_ctx; /* NULL: plaintext */
    struct loop *loops[XDS_LOOPS];
    int n_loops;
    unsigned next_loop; /* loop 0 only */
    atomic_uint_fast64_t next_id;
    int shut;
};

struct xds_stream {
    struct xds_transport *t;
    struct loop *lp;
    struct conn *c; /* NULL once closed; loop thread only */
    int32_t sid;
    uint64_t id;
    atomic_int refs;
    /* Under lp->mu. */
    struct qmsg *qhead, *qtail;
    size_t qlen;
    int finish_requested, closed, in_pending;
    enum grpcf_status finish_code;
    char *finish_msg;
    struct xds_stream *pnext;
    /* Loop thread only. */
    struct xds_stream *rnext; /* the batch run_pending walks */
    struct xds_stream *cnext;
    int opened, deferred, trailers_sent, remote_closed;
    int bad_method, bad_path, bad_type;
    char *encoding; /* grpc-encoding other than identity */
    struct grpcf_deframer df;
    char *peer, *authorization;
    void *user;
};

/* ---- streams: the contract's accessors ------------------------------------------------------ */

static void qmsg_free_list(struct qmsg *m)
{
    while (m) {
        struct qmsg *n = m->next;
        free(m->data);
        free(m);
        m = n;
    }
}

static void stream_free(struct xds_stream *s)
{
    qmsg_free_list(s->qhead);
    grpcf_deframer_free(&s->df);
    free(s->finish_msg);
    free(s->encoding);
    free(s->peer);
    free(s->authorization);
    free(s);
}

void xds_stream_ref(struct xds_stream *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void xds_stream_unref(struct xds_stream *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        stream_free(s);
}

uint64_t xds_stream_id(const struct xds_stream *s)
{
    return s->id;
}
const char *xds_stream_peer(const struct xds_stream *s)
{
    return s->peer ? s->peer : "";
}
const char *xds_stream_authorization(const struct xds_stream *s)
{
    return s->authorization;
}
void xds_stream_set_user(struct xds_stream *s, void *user)
{
    s->user = user;
}
void *xds_stream_user(const struct xds_stream *s)
{
    return s->user;
}

/* Puts s on its loop's pending list and wakes the loop when the list was
 * empty. lp->mu held. */
static void pend_locked(struct xds_stream *s)
{
    struct loop *lp = s->lp;
    if (s->in_pending || lp->stop)
        return;
    int was_empty = lp->pending == NULL;
    s->in_pending = 1;
    atomic_fetch_add(&s->refs, 1); /* the list's */
    s->pnext = lp->pending;
    lp->pending = s;
    if (was_empty) {
        uint64_t one = 1;
        if (write(lp->evfd, &one, sizeof(one)) < 0) {
            /* the counter is saturated: the loop is awake anyway */
        }
    }
}

int xds_stream_send_owned(struct xds_stream *s, void *data, size_t len)
{
    struct loop *lp = s->lp;
    pthread_mutex_lock(&lp->mu);
    if (s->closed || s->finish_requested || !s->opened || s->qlen >= s->t->max_queue ||
        len > UINT32_MAX) {
        pthread_mutex_unlock(&lp->mu);
        free(data);
        return -1;
    }
    struct qmsg *m = xmalloc(sizeof(*m));
    m->next = NULL;
    m->data = data;
    m->len = len;
    m->off = 0;
    if (s->qtail)
        s->qtail->next = m;
    else
        s->qhead = m;
    s->qtail = m;
    s->qlen++;
    pend_locked(s);
    pthread_mutex_unlock(&lp->mu);
    return 0;
}

int xds_stream_send(struct xds_stream *s, const void *data, size_t len)
{
    void *copy = xmalloc(len ? len : 1);
    memcpy(copy, data, len);
    return xds_stream_send_owned(s, copy, len);
}

void xds_stream_finish(struct xds_stream *s, enum grpcf_status code, const char *msg)
{
    struct loop *lp = s->lp;
    pthread_mutex_lock(&lp->mu);
    if (!s->finish_requested && !s->closed) {
        s->finish_requested = 1;
        s->finish_code = code;
        s->finish_msg = xstrdup(msg ? msg : "");
        pend_locked(s);
    }
    pthread_mutex_unlock(&lp->mu);
}

/* ---- connections ------------------------------------------------------------------------------
 */

static void conn_events(struct conn *c, uint32_t ev)
{
    if (c->events == ev || c->dead)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->lp->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* Ends a stream for good: delivers on_close (for a stream on_open was given)
 * and drops the transport's reference. Loop thread. */
static void stream_close(struct xds_stream *s)
{
    struct loop *lp = s->lp;
    struct xds_transport *t = s->t;
    struct conn *c = s->c;
    if (!c)
        return;
    for (struct xds_stream **p = &c->streams; *p; p = &(*p)->cnext) {
        if (*p == s) {
            *p = s->cnext;
            break;
        }
    }
    s->c = NULL;
    if (c->h2 && s->sid > 0)
        nghttp2_session_set_stream_user_data(c->h2, s->sid, NULL);
    pthread_mutex_lock(&lp->mu);
    s->closed = 1;
    struct qmsg *q = s->qhead;
    s->qhead = s->qtail = NULL;
    s->qlen = 0;
    pthread_mutex_unlock(&lp->mu);
    qmsg_free_list(q);
    grpcf_deframer_free(&s->df);
    if (s->opened && t->cb.on_close)
        t->cb.on_close(t->ctx, s);
    xds_stream_unref(s); /* the transport's */
}

/* Closes a connection: its streams (on_close each), the socket, TLS and
 * HTTP/2 state. The struct itself stays until the end of the loop's round
 * (later events of the same epoll_wait may name it; c->dead tells). */
static void conn_free(struct conn *c)
{
    struct loop *lp = c->lp;
    if (c->dead)
        return;
    if (c->setup_deadline) {
        c->setup_deadline = 0;
        lp->n_setup--;
    }
    while (c->streams)
        stream_close(c->streams);
    if (c->registered)
        epoll_ctl(lp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->dead = 1;
    if (c->linked) {
        if (c->prev)
            c->prev->next = c->next;
        else
            lp->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    free(c->pend);
    c->pend = NULL;
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
    close(c->fd);
    c->prev = NULL;
    c->next = lp->graveyard;
    lp->graveyard = c;
}

static void bury(struct loop *lp)
{
    while (lp->graveyard) {
        struct conn *c = lp->graveyard;
        lp->graveyard = c->next;
        free(c);
    }
}

/* Bytes to the socket: >0 written, 0 would block, -1 broken. */
static ssize_t io_write(struct conn *c, const uint8_t *p, size_t n)
{
    if (!c->ssl) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return w < 0 ? -1 : w;
    }
    ERR_clear_error();
    int w = SSL_write(c->ssl, p, (int)(n > 1 << 20 ? 1 << 20 : n));
    if (w > 0)
        return w;
    int err = SSL_get_error(c->ssl, w);
    return err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* Bytes from the socket: >0 read, 0 would block, -1 closed or broken. */
static ssize_t io_read(struct conn *c, uint8_t *p, size_t n)
{
    if (!c->ssl) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return r <= 0 ? -1 : r;
    }
    ERR_clear_error();
    int r = SSL_read(c->ssl, p, (int)n);
    if (r > 0)
        return r;
    int err = SSL_get_error(c->ssl, r);
    return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* nghttp2's allocator, per session (mem_user_data = the connection). The
 * one large block a session allocates when it is created is its frame
 * buffer (16 KB and a few bytes: one frame of the largest size, which the
 * session keeps for its whole life and serializes every outgoing frame
 * into). It gets pages of its own (mmap) so that the pages beyond the first
 * are given back (MADV_DONTNEED, conn_trim) once a burst of large frames
 * has been written: an idle connection then holds one page of it instead of
 * five. Everything else goes to malloc. */
#define XDS_PAGE 4096

static void *h2_malloc(size_t size, void *ud)
{
    struct conn *c = ud;
    if (c->in_new && !c->fbuf && size >= 4 * XDS_PAGE) {
        size_t len = (size + XDS_PAGE - 1) & ~(size_t)(XDS_PAGE - 1);
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            c->fbuf = p;
            c->fbuf_len = len;
            return p;
        }
    }
    return malloc(size);
}

static void h2_free(void *ptr, void *ud)
{
    struct conn *c = ud;
    if (ptr && ptr == c->fbuf) {
        munmap(c->fbuf, c->fbuf_len);
        c->fbuf = NULL;
        return;
    }
    free(ptr);
}

static void *h2_calloc(size_t n, size_t size, void *ud)
{
    return calloc(n, size);
}

static void *h2_realloc(void *ptr, size_t size, void *ud)
{
    struct conn *c = ud;
    if (!ptr) /* how nghttp2 allocates a buffer, the frame buffer included */
        return h2_malloc(size, ud);
    if (ptr == c->fbuf) { /* not done by nghttp2 1.52; handled all the same */
        void *q = malloc(size);
        if (!q)
            return NULL;
        memcpy(q, ptr, size < c->fbuf_len ? size : c->fbuf_len);
        h2_free(ptr, ud);
        return q;
    }
    return realloc(ptr, size);
}

/* Gives back the frame buffer's pages beyond the first after a burst of
 * large frames; called when nghttp2 has nothing more to send, so no frame is
 * in it. */
static void conn_trim(struct conn *c)
{
    if (!c->fbuf_dirty || !c->fbuf)
        return;
    c->fbuf_dirty = 0;
    madvise((char *)c->fbuf + XDS_PAGE, c->fbuf_len - XDS_PAGE, MADV_DONTNEED);
}

/* Writes what nghttp2 has until the socket would block. 0, or -1 when the
 * connection is over (the caller frees it). */
static int conn_flush(struct conn *c)
{
    struct loop *lp = c->lp;
    if (c->handshaking)
        return 0;
    for (;;) {
        /* What the socket refused last time goes first, as it was (OpenSSL
         * wants a refused SSL_write repeated with the same bytes). */
        if (c->pend) {
            ssize_t w = io_write(c, c->pend + c->pend_off, c->pend_len - c->pend_off);
            if (w < 0)
                return -1;
            if (w == 0) {
                /* A closing connection reads no more: EPOLLIN would spin. */
                conn_events(c, c->closing ? EPOLLOUT : EPOLLIN | EPOLLOUT);
                return 0;
            }
            c->pend_off += (size_t)w;
            if (c->pend_off < c->pend_len)
                continue;
            free(c->pend);
            c->pend = NULL;
            c->pend_len = c->pend_off = 0;
        }
        /* Gather nghttp2's frames into one write (one TLS record, one
         * system call) instead of one per frame. */
        size_t n = 0;
        while (n < sizeof(lp->wbuf)) {
            if (c->wlen == 0) {
                const uint8_t *d;
                ssize_t k = nghttp2_session_mem_send(c->h2, &d);
                if (k < 0) {
                    log_debug(LOG, "connection from %s: HTTP/2: %s", c->peer,
                              nghttp2_strerror((int)k));
                    return -1;
                }
                if (k == 0)
                    break;
                if ((size_t)k > XDS_PAGE - 64)
                    c->fbuf_dirty = 1;
                c->wptr = d;
                c->wlen = (size_t)k;
            }
            size_t k = c->wlen < sizeof(lp->wbuf) - n ? c->wlen : sizeof(lp->wbuf) - n;
            memcpy(lp->wbuf + n, c->wptr, k);
            c->wptr += k;
            c->wlen -= k;
            n += k;
        }
        if (n == 0)
            break;
        ssize_t w = io_write(c, lp->wbuf, n);
        if (w < 0)
            return -1;
        if ((size_t)w < n) { /* keep the rest: the loop's buffer is shared */
            c->pend_len = n - (size_t)w;
            c->pend_off = 0;
            c->pend = xmalloc(c->pend_len);
            memcpy(c->pend, lp->wbuf + w, c->pend_len);
        }
    }
    if (c->closing || (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)))
        return -1;
    conn_trim(c);
    conn_events(c, EPOLLIN);
    return 0;
}

/* ---- HTTP/2 callbacks (loop thread) -----------------------------------------------------------
 */

/* grpc-message: bytes outside 0x20..0x7e and '%' are percent-encoded. */
static char *percent_encode(const char *in)
{
    size_t n = strlen(in);
    char *out = xmalloc(n * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%') {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        } else {
            *o++ = (char)*p;
        }
    }
    *o = 0;
    return out;
}

#define NV(n, v, vl)                                                                               \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME          \
    }

static int submit_status(struct conn *c, int32_t sid, int code, const char *msg, int trailers_only)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", code);
    char *enc = percent_encode(msg ? msg : "");
    nghttp2_nv nv[] = {
        NV(":status", "200", 3),
        NV("content-type", "application/grpc", 16),
        NV("grpc-status", num, strlen(num)),
        NV("grpc-message", enc, strlen(enc)),
    };
    size_t nn = *enc ? 4 : 3;
    int rc = trailers_only ? nghttp2_submit_response(c->h2, sid, nv, nn, NULL)
                           : nghttp2_submit_trailer(c->h2, sid, nv + 2, nn - 2);
    free(enc);
    return rc;
}

/* The response body: the queued messages, each with its 5-byte prefix;
 * then, once a finish was asked for and the queue is empty, the trailers. */
static ssize_t read_body(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct xds_stream *s = src->ptr;
    struct loop *lp = s->lp;
    size_t n = 0;
    struct qmsg *done = NULL, **done_tail = &done;
    int finish = 0, code = 0;
    char *msg = NULL;
    pthread_mutex_lock(&lp->mu);
    while (s->qhead && n < length) {
        struct qmsg *m = s->qhead;
        if (m->off < GRPCF_PREFIX) {
            uint8_t pre[GRPCF_PREFIX];
            grpcf_prefix(pre, (uint32_t)m->len);
            size_t k = GRPCF_PREFIX - m->off;
            if (k > length - n)
                k = length - n;
            memcpy(buf + n, pre + m->off, k);
            m->off += k;
            n += k;
            if (n == length)
                break;
        }
        size_t k = m->len + GRPCF_PREFIX - m->off;
        if (k > length - n)
            k = length - n;
        memcpy(buf + n, m->data + (m->off - GRPCF_PREFIX), k);
        m->off += k;
        n += k;
        if (m->off == m->len + GRPCF_PREFIX) {
            s->qhead = m->next;
            if (!s->qhead)
                s->qtail = NULL;
            s->qlen--;
            m->next = NULL;
            *done_tail = m; /* freed at once, outside the lock */
            done_tail = &m->next;
        }
    }
    if (!s->qhead && s->finish_requested && !s->trailers_sent) {
        finish = 1;
        code = (int)s->finish_code;
        msg = xstrdup(s->finish_msg ? s->finish_msg : "");
    }
    pthread_mutex_unlock(&lp->mu);
    qmsg_free_list(done);
    if (finish) {
        s->trailers_sent = 1;
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_status(s->c, sid, code, msg, 0);
        free(msg);
        return (ssize_t)n;
    }
    if (n == 0) {
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct xds_transport *t = c->lp->t;
    struct xds_stream *s = xcalloc(1, sizeof(*s));
    s->t = t;
    s->lp = c->lp;
    s->c = c;
    s->sid = f->hd.stream_id;
    s->id = atomic_fetch_add(&t->next_id, 1) + 1;
    atomic_init(&s->refs, 1); /* the transport's */
    s->peer = xstrdup(c->peer);
    s->bad_method = s->bad_path = s->bad_type = 1;
    grpcf_deframer_init(&s->df, t->max_message);
    s->cnext = c->streams;
    c->streams = s;
    nghttp2_session_set_stream_user_data(h2, s->sid, s);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers of a request carry nothing we use */
    struct xds_stream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (!s)
        return 0;
#define IS(str)  (namelen == sizeof(str) - 1 && memcmp(name, str, namelen) == 0)
#define VIS(str) (valuelen == sizeof(str) - 1 && memcmp(value, str, valuelen) == 0)
    if (IS(":method"))
        s->bad_method = !VIS("POST");
    else if (IS(":path"))
        s->bad_path = !VIS(XDS_ADS_METHOD);
    else if (IS("content-type"))
        s->bad_type = !(valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                        (valuelen == 16 || value[16] == '+' || value[16] == ';'));
    else if (IS("authorization")) {
        free(s->authorization);
        s->authorization = xstrndup((const char *)value, valuelen);
    } else if (IS("grpc-encoding") && !VIS("identity")) {
        free(s->encoding);
        s->encoding = xstrndup((const char *)value, valuelen > 64 ? 64 : valuelen);
    }
#undef IS
#undef VIS
    return 0;
}

/* The request's headers are complete: accept the ADS call, or refuse it
 * with a trailers-only response. */
static void on_request(struct conn *c, struct xds_stream *s)
{
    struct xds_transport *t = c->lp->t;
    if (s->bad_method || s->bad_path || s->bad_type) {
        const char *why = s->bad_path     ? "unknown method"
                          : s->bad_method ? "gRPC requires POST"
                                          : "content-type is not application/grpc";
        log_info(LOG, "refusing a call from %s: %s", c->peer, why);
        s->trailers_sent = 1;
        submit_status(c, s->sid, GRPCF_STATUS_UNIMPLEMENTED, why, 1);
        return;
    }
    /* on_open before any data can be sent: the callee sets its user pointer. */
    pthread_mutex_lock(&c->lp->mu);
    s->opened = 1;
    pthread_mutex_unlock(&c->lp->mu);
    if (t->cb.on_open) {
        xds_stream_ref(s); /* the callee's */
        t->cb.on_open(t->ctx, s);
    }
    nghttp2_nv nv[] = {
        NV(":status", "200", 3),
        NV("content-type", "application/grpc", 16),
        NV("grpc-accept-encoding", "identity", 8),
    };
    nghttp2_data_provider body = {.source.ptr = s, .read_callback = read_body};
    int rc = nghttp2_submit_response(c->h2, s->sid, nv, 3, &body);
    if (rc != 0)
        log_error(LOG, "stream %llu: HTTP/2: %s", (unsigned long long)s->id, nghttp2_strerror(rc));
}

/* The gRPC status for a request stream whose framing failed. */
static void framing_failed(struct xds_stream *s, const char *why)
{
    const struct grpcf_deframer *d = &s->df;
    if (d->hlen == GRPCF_PREFIX && d->hdr[0] == 1 && s->encoding) {
        char *m = xasprintf("grpc-encoding %s is not supported (identity only)", s->encoding);
        xds_stream_finish(s, GRPCF_STATUS_UNIMPLEMENTED, m);
        free(m);
    } else if (d->hlen == GRPCF_PREFIX && d->hdr[0] == 0) {
        uint32_t n = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                     (uint32_t)d->hdr[3] << 8 | (uint32_t)d->hdr[4];
        char *m = xasprintf("Received message larger than max (%u vs. %zu)", n, d->max);
        xds_stream_finish(s, GRPCF_STATUS_RESOURCE_EXHAUSTED, m);
        free(m);
    } else {
        xds_stream_finish(s, GRPCF_STATUS_INTERNAL, why);
    }
}

static int deliver(void *ctx, const uint8_t *msg, size_t len, struct err *e)
{
    struct xds_stream *s = ctx;
    struct xds_transport *t = s->t;
    if (t->cb.on_message)
        t->cb.on_message(t->ctx, s, msg, len);
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                   void *ud)
{
    struct xds_stream *s = nghttp2_session_get_stream_user_data(h2, sid);
    if (!s || !s->opened || s->df.failed)
        return 0;
    struct err e = {{0}};
    if (grpcf_deframer_feed(&s->df, data, len, deliver, s, &e) < 0) {
        log_info(LOG, "stream %llu from %s: %s", (unsigned long long)s->id, s->peer, e.msg);
        framing_failed(s, e.msg);
    } else if (s->df.buf && !grpcf_deframer_partial(&s->df)) {
        /* Between messages: an idle stream keeps no reassembly buffer. */
        grpcf_deframer_free(&s->df);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct conn *c = ud;
    if (c->setup_deadline) { /* the client speaks HTTP/2: set up */
        c->setup_deadline = 0;
        c->lp->n_setup--;
    }
    if (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        int64_t now = mono_ms();
        if (c->last_ping_ms && now - c->last_ping_ms < XDS_MIN_CLIENT_PING_MS &&
            ++c->ping_strikes > XDS_MAX_PING_STRIKES) {
            log_info(LOG, "connection from %s: too many pings, sending GOAWAY", c->peer);
            static const char why[] = "too_many_pings";
            nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(h2),
                                  NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)why, sizeof(why) - 1);
            c->closing = 1;
        }
        c->last_ping_ms = now;
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    struct xds_stream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (!s)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        on_request(c, s);
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->opened) {
        /* The client half-closed: no more requests; the call ends once
         * what is queued is sent (as gRPC core reports it to the server). */
        s->remote_closed = 1;
        if (grpcf_deframer_partial(&s->df) && !s->df.failed)
            xds_stream_finish(s, GRPCF_STATUS_INTERNAL,
                              "the request stream ended inside a message");
        else
            xds_stream_finish(s, GRPCF_STATUS_OK, "");
    }
    return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct conn *c = ud;
    if (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) {
        c->ping_strikes = 0; /* gRPC forgives pings once data flows */
        c->last_ping_ms = 0;
    }
    /* The status went out while the client still has its side open: reset
     * the stream (NO_ERROR), as gRPC servers do, so it closes now. */
    if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        if (nghttp2_session_get_stream_remote_close(h2, f->hd.stream_id) == 0)
            nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t sid, uint32_t code, void *ud)
{
    struct xds_stream *s = nghttp2_session_get_stream_user_data(h2, sid);
    if (s)
        stream_close(s);
    return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    return cb;
}

/* The HTTP/2 session of a connection, with the server's SETTINGS queued. */
static int conn_session(struct conn *c)
{
    static nghttp2_session_callbacks *_Atomic cbs;
    nghttp2_session_callbacks *cb = atomic_load(&cbs);
    if (!cb) {
        nghttp2_session_callbacks *mine = h2_callbacks();
        nghttp2_session_callbacks *expected = NULL;
        if (mine && !atomic_compare_exchange_strong(&cbs, &expected, mine))
            nghttp2_session_callbacks_del(mine);
        cb = atomic_load(&cbs);
        if (!cb)
            return -1;
    }
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0)
        return -1;
    /* No HPACK dynamic table for what we send (a few short headers). */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 0);
    /* Streams are forgotten once closed (no priority tree to keep). */
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_mem mem = {c, h2_malloc, h2_free, h2_calloc, h2_realloc};
    c->in_new = 1;
    int rc = nghttp2_session_server_new3(&c->h2, cb, c, opt, &mem);
    c->in_new = 0;
    nghttp2_option_del(opt);
    if (rc != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, XDS_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, XDS_MAX_HEADER_LIST},
        /* ...nor for what the client sends: one stream per connection. */
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 0},
    };
    return nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
}

/* ---- the event loop ---------------------------------------------------------------------------
 */

/* Reads until the socket would block: 0, or -1 when the connection is over. */
static int conn_read(struct conn *c)
{
    struct loop *lp = c->lp;
    if (c->handshaking) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int err = SSL_get_error(c->ssl, r);
            if (err == SSL_ERROR_WANT_READ) {
                conn_events(c, EPOLLIN);
                return 0;
            }
            if (err == SSL_ERROR_WANT_WRITE) {
                conn_events(c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            unsigned long x = ERR_peek_error();
            char buf[256];
            if (x)
                ERR_error_string_n(x, buf, sizeof(buf));
            else
                snprintf(buf, sizeof(buf), "%s", "connection closed");
            ERR_clear_error();
            log_info(LOG, "TLS handshake with %s failed: %s", c->peer, buf);
            return -1;
        }
        c->handshaking = 0;
        conn_events(c, EPOLLIN);
        /* The HTTP/2 session only now: a connection that never completes
         * its handshake costs no session. The server's SETTINGS go out with
         * the first flush below: with the SETTINGS ACK when the client's
         * preface has arrived already (one write instead of two). */
        if (conn_session(c) < 0) {
            log_error(LOG, "connection from %s: cannot create its HTTP/2 session", c->peer);
            return -1;
        }
    }
    /* SSL may hold a decrypted record, or read-ahead bytes, that epoll
     * cannot see: drain them. */
    for (int rounds = 0; rounds < 64 || (c->ssl && SSL_has_pending(c->ssl)); rounds++) {
        if (c->closing)
            return 0; /* a GOAWAY is going out: ignore the rest */
        ssize_t r = io_read(c, lp->rbuf, sizeof(lp->rbuf));
        if (r == 0)
            return 0;
        if (r < 0)
            return -1;
        ssize_t n = nghttp2_session_mem_recv(c->h2, lp->rbuf, (size_t)r);
        if (n < 0) {
            log_info(LOG, "connection from %s: HTTP/2: %s", c->peer, nghttp2_strerror((int)n));
            if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                return -1; /* not HTTP/2 at all (e.g. HTTP/1.1): nothing to tell it */
            /* nghttp2 queued a GOAWAY for protocol errors: send it, then close. */
            c->closing = 1;
            return 0;
        }
        if (conn_flush(c) < 0)
            return -1;
    }
    /* Fairness: another round after the other connections had theirs. */
    return 0;
}

static void conn_event(struct conn *c, uint32_t ev)
{
    if (c->dead)
        return;
    int rc = 0;
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        rc = conn_read(c);
    else if (c->handshaking)
        rc = conn_read(c); /* the handshake wanted to write */
    if (rc == 0)
        rc = conn_flush(c);
    if (rc < 0)
        conn_free(c);
}

/* Formats the peer as gRPC does: "ipv4:1.2.3.4:5", "ipv6:[::1]:5". */
static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "ipv4:%s:%u", host, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(out, cap, "ipv4:%s:%u", host, ntohs(a->sin6_port));
        } else {
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            snprintf(out, cap, "ipv6:[%s]:%u", host, ntohs(a->sin6_port));
        }
    } else {
        snprintf(out, cap, "%s", "unknown");
    }
}

/* Arms (periodic, a quarter of the setup timeout, 5 s at most) or disarms
 * the loop's timer. It runs only while some connection is being set up:
 * an idle server has no timer. */
static void setup_timer(struct loop *lp, int on)
{
    int64_t ms = lp->t->setup_timeout_ms / 4;
    if (ms < 10)
        ms = 10;
    if (ms > 5000)
        ms = 5000;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (on) {
        its.it_value.tv_sec = ms / 1000;
        its.it_value.tv_nsec = (ms % 1000) * 1000000L;
        its.it_interval = its.it_value;
    }
    timerfd_settime(lp->tfd, 0, &its, NULL);
}

/* Closes the connections whose TLS handshake and HTTP/2 preface did not
 * arrive in time (a client that connects and says nothing, or too slowly,
 * holds a socket and a TLS object: gRPC core closes them after 120 s). */
static void setup_expire(struct loop *lp)
{
    uint64_t v;
    if (read(lp->tfd, &v, sizeof(v)) < 0) {
        /* spurious */
    }
    int64_t now = mono_ms();
    for (struct conn *c = lp->conns, *n; c; c = n) {
        n = c->next;
        if (c->setup_deadline && now >= c->setup_deadline) {
            log_info(LOG, "connection from %s: no %s within %d ms; closed", c->peer,
                     c->handshaking ? "TLS handshake" : "HTTP/2 preface", lp->t->setup_timeout_ms);
            conn_free(c);
        }
    }
    if (lp->n_setup == 0)
        setup_timer(lp, 0);
}

/* Registers a connection accepted for this loop. */
static void conn_start(struct loop *lp, struct conn *c)
{
    struct xds_transport *t = lp->t;
    c->lp = lp;
    c->setup_deadline = mono_ms() + t->setup_timeout_ms;
    if (lp->n_setup++ == 0)
        setup_timer(lp, 1);
    if (!t->ssl_ctx && conn_session(c) < 0) {
        log_error(LOG, "connection from %s: cannot create its HTTP/2 session", c->peer);
        conn_free(c);
        return;
    }
    if (t->ssl_ctx) {
        c->ssl = SSL_new(t->ssl_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
            log_error(LOG, "connection from %s: cannot create its TLS state", c->peer);
            ERR_clear_error();
            conn_free(c);
            return;
        }
        SSL_set_accept_state(c->ssl);
        c->handshaking = 1;
    }
    c->next = lp->conns;
    if (lp->conns)
        lp->conns->prev = c;
    lp->conns = c;
    c->linked = 1;
    c->events = EPOLLIN;
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) {
        log_error(LOG, "connection from %s: epoll: %s", c->peer, strerror(errno));
        conn_free(c);
        return;
    }
    c->registered = 1;
    /* Plaintext: the server's SETTINGS go at once. With TLS, the client
     * speaks first (ClientHello); EPOLLIN starts the handshake. */
    if (!c->ssl && conn_flush(c) < 0)
        conn_free(c);
}

static void do_accept(struct loop *lp0)
{
    struct xds_transport *t = lp0->t;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(t->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warn(LOG, "accept on the DP server: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = xcalloc(1, sizeof(*c));
        c->fd = fd;
        format_peer(&ss, c->peer, sizeof(c->peer));
        struct loop *lp = t->loops[t->next_loop++ % (unsigned)t->n_loops];
        if (lp == lp0) {
            conn_start(lp, c);
            continue;
        }
        pthread_mutex_lock(&lp->mu);
        int was_empty = lp->incoming == NULL && lp->pending == NULL;
        c->next = lp->incoming;
        lp->incoming = c;
        pthread_mutex_unlock(&lp->mu);
        if (was_empty) {
            uint64_t v = 1;
            if (write(lp->evfd, &v, sizeof(v)) < 0) {
                /* saturated: awake anyway */
            }
        }
    }
}

/* Takes the loop's pending streams and incoming connections. Once
 * in_pending is clear, a sender may put a stream on the list again
 * (rewriting pnext): the batch taken is walked through rnext. */
static void take_pending(struct loop *lp, struct xds_stream **streams, struct conn **incoming)
{
    pthread_mutex_lock(&lp->mu);
    struct xds_stream *s = lp->pending;
    lp->pending = NULL;
    *incoming = lp->incoming;
    lp->incoming = NULL;
    for (struct xds_stream *p = s; p; p = p->pnext) {
        p->rnext = p->pnext;
        p->in_pending = 0;
    }
    pthread_mutex_unlock(&lp->mu);
    *streams = s;
}

/* Streams with queued work: resume their bodies, then flush their
 * connections. */
static void run_pending(struct loop *lp)
{
    uint64_t v;
    if (read(lp->evfd, &v, sizeof(v)) < 0) {
        /* nothing to read: woken by a previous write already drained */
    }
    struct xds_stream *s;
    struct conn *in;
    take_pending(lp, &s, &in);
    while (in) {
        struct conn *n = in->next;
        in->next = NULL;
        conn_start(lp, in);
        in = n;
    }
    /* Resume each stream, remembering which connections to flush: a
     * connection is flushed once, however many of its streams had work. */
    struct conn *flush_list[64];
    size_t nflush = 0;
    while (s) {
        struct xds_stream *n = s->rnext;
        struct conn *c = s->c;
        if (c && !c->dead && s->opened && !s->trailers_sent) {
            if (s->deferred) {
                s->deferred = 0;
                nghttp2_session_resume_data(c->h2, s->sid);
            }
            size_t i = 0;
            while (i < nflush && flush_list[i] != c)
                i++;
            if (i == nflush) {
                if (nflush == sizeof(flush_list) / sizeof(flush_list[0])) {
                    for (i = 0; i < nflush; i++)
                        if (conn_flush(flush_list[i]) < 0)
                            conn_free(flush_list[i]);
                    nflush = 0;
                }
                flush_list[nflush++] = c;
            }
        }
        xds_stream_unref(s); /* the list's */
        s = n;
    }
    for (size_t i = 0; i < nflush; i++)
        if (conn_flush(flush_list[i]) < 0)
            conn_free(flush_list[i]);
}

static void *loop_main(void *arg)
{
    struct loop *lp = arg;
    struct xds_transport *t = lp->t;
    struct epoll_event evs[64];
    for (;;) {
        pthread_mutex_lock(&lp->mu);
        int stop = lp->stop;
        pthread_mutex_unlock(&lp->mu);
        if (stop)
            break;
        int n = epoll_wait(lp->epfd, evs, 64, -1);
        if (n < 0 && errno != EINTR) {
            log_error(LOG, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == lp)
                run_pending(lp);
            else if (p == &lp->tfd)
                setup_expire(lp);
            else if (p == t)
                do_accept(lp);
            else
                conn_event(p, evs[i].events);
        }
        bury(lp);
    }
    /* Shutdown: every connection gets a GOAWAY (best effort, without
     * waiting: proxies tell it from a crash), then goes; every open stream
     * gets on_close. */
    while (lp->conns) {
        struct conn *c = lp->conns;
        if (!c->handshaking && c->h2 &&
            nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR) == 0) {
            c->closing = 1;
            conn_flush(c);
        }
        conn_free(c);
    }
    bury(lp);
    struct xds_stream *s;
    struct conn *in;
    take_pending(lp, &s, &in);
    while (s) {
        struct xds_stream *n = s->rnext;
        xds_stream_unref(s);
        s = n;
    }
    while (in) {
        struct conn *n = in->next;
        close(in->fd);
        free(in);
        in = n;
    }
    return NULL;
}

/* ---- TLS ----------------------------------------------------------------------------------------
 */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h2[] = {2, 'h', '2'};
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2), in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC speaks HTTP/2 only */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *xds_transport_tls_ctx(const char *cert_pem, const char *key_pem, struct err *e)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        err_set(e, "DP server: cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* No chain built from the (empty) trust store on every handshake: the
     * configured chain goes out as given. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_NO_AUTO_CHAIN);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* TLS 1.3: AES-128-GCM first, as Envoy (BoringSSL) and kuma-dp prefer it
     * with AES-NI; its SHA-256 key schedule is cheaper than AES-256's
     * SHA-384 (bench/xds/hs_bench.c). Clients that offer only the others
     * still get them. */
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                  "TLS_CHACHA20_POLY1305_SHA256");
    /* Whole flights and records with one recv instead of a header and a
     * body read per record (the read loop drains SSL_has_pending). */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* No session cache nor tickets: a proxy keeps its one connection; a
     * cache of 10,000 sessions would only cost memory. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int ok = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    X509 *x;
    while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            X509_free(x);
            ok = 0;
        }
    }
    BIO_free(b);
    ERR_clear_error(); /* the end of the PEM list */
    if (!ok) {
        SSL_CTX_free(ctx);
        err_set(e, "DP server: the TLS certificate is not a PEM certificate");
        return NULL;
    }
    b = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(k);
    if (!ok) {
        unsigned long x2 = ERR_peek_error();
        char buf[256] = "not a PEM private key";
        if (x2)
            ERR_error_string_n(x2, buf, sizeof(buf));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        err_set(e, "DP server: the TLS key does not fit the certificate: %s", buf);
        return NULL;
    }
    return ctx;
}

/* ---- start and stop -----------------------------------------------------------------------------
 */

static int listen_on(const char *addr, int port, int *bound, struct err *e)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(addr, ps, &hints, &res);
    if (rc != 0)
        return err_set(e, "could not bind the DP server to %s:%d: %s", addr, port,
                       gai_strerror(rc));
    int fd = -1;
    char why[128] = "no address";
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(why, sizeof(why), "socket: %s", strerror(errno));
            continue;
        }
        /* SO_REUSEADDR (restarts over TIME_WAIT), never SO_REUSEPORT: a
         * stale server on the same port must fail the bind, not silently
         * share the clients. */
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
            snprintf(why, sizeof(why), "%s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (strchr(addr, ':'))
            return err_set(e, "could not bind the DP server to [%s]:%d: %s", addr, port, why);
        return err_set(e, "could not bind the DP server to %s:%d: %s", addr, port, why);
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void loop_free(struct loop *lp)
{
    if (!lp)
        return;
    if (lp->epfd >= 0)
        close(lp->epfd);
    if (lp->evfd >= 0)
        close(lp->evfd);
    if (lp->tfd >= 0)
        close(lp->tfd);
    pthread_mutex_destroy(&lp->mu);
    free(lp);
}

static struct loop *loop_new(struct xds_transport *t, int idx, struct err *e)
{
    struct loop *lp = xcalloc(1, sizeof(*lp));
    lp->t = t;
    lp->idx = idx;
    pthread_mutex_init(&lp->mu, NULL);
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    lp->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    lp->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = lp};
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &lp->tfd};
    if (lp->epfd < 0 || lp->evfd < 0 || lp->tfd < 0 ||
        epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->evfd, &ev) < 0 ||
        epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->tfd, &tev) < 0) {
        err_set(e, "xDS transport: epoll/eventfd/timerfd: %s", strerror(errno));
        loop_free(lp);
        return NULL;
    }
    return lp;
}

int xds_transport_start(const struct xds_transport_opts *o, const struct xds_transport_cb *cb,
                        void *ctx, struct xds_transport **out, int *bound_port, struct err *e)
{
    struct xds_transport *t = xcalloc(1, sizeof(*t));
    t->cb = *cb;
    t->ctx = ctx;
    t->max_queue = o->max_queue ? o->max_queue : 256;
    t->max_message = o->max_message ? o->max_message : 4u << 20;
    t->setup_timeout_ms = o->setup_timeout_ms > 0 ? o->setup_timeout_ms : XDS_SETUP_TIMEOUT_MS;
    t->lfd = -1;
    atomic_init(&t->next_id, 0);
    if (o->tls_cert_pem && o->tls_key_pem &&
        !(t->ssl_ctx = xds_transport_tls_ctx(o->tls_cert_pem, o->tls_key_pem, e))) {
        free(t);
        return -1;
    }
    const char *addr = o->address && *o->address ? o->address : "0.0.0.0";
    int port = 0;
    t->lfd = listen_on(addr, o->port, &port, e);
    if (t->lfd < 0) {
        SSL_CTX_free(t->ssl_ctx);
        free(t);
        return -1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    t->n_loops = ncpu < 2 ? 2 : ncpu > XDS_LOOPS ? XDS_LOOPS : (int)ncpu;
    for (int i = 0; i < t->n_loops; i++) {
        if (!(t->loops[i] = loop_new(t, i, e))) {
            xds_transport_free(t);
            return -1;
        }
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};
    if (epoll_ctl(t->loops[0]->epfd, EPOLL_CTL_ADD, t->lfd, &ev) < 0) {
        err_set(e, "xDS transport: epoll: %s", strerror(errno));
        xds_transport_free(t);
        return -1;
    }
    for (int i = 0; i < t->n_loops; i++) {
        if (pthread_create(&t->loops[i]->thread, NULL, loop_main, t->loops[i]) != 0) {
            err_set(e, "could not start the xDS transport threads");
            xds_transport_free(t);
            return -1;
        }
        t->loops[i]->started = 1;
    }
    *bound_port = port;
    *out = t;
    return 0;
}

void xds_transport_shutdown(struct xds_transport *t)
{
    if (!t || t->shut)
        return;
    t->shut = 1;
    for (int i = 0; i < t->n_loops; i++) {
        struct loop *lp = t->loops[i];
        if (!lp)
            continue;
        pthread_mutex_lock(&lp->mu);
        lp->stop = 1;
        pthread_mutex_unlock(&lp->mu);
        uint64_t one = 1;
        if (write(lp->evfd, &one, sizeof(one)) < 0) {
            /* saturated: the loop is awake anyway */
        }
    }
    for (int i = 0; i < t->n_loops; i++) {
        struct loop *lp = t->loops[i];
        if (lp && lp->started) {
            pthread_join(lp->thread, NULL);
            lp->started = 0;
        }
    }
    /* Threads that never started (a failed start) leave their loop's
     * connections: none exist then, as nothing was accepted. */
    if (t->lfd >= 0) {
        close(t->lfd);
        t->lfd = -1;
    }
}

void xds_transport_free(struct xds_transport *t)
{
    if (!t)
        return;
    xds_transport_shutdown(t);
    for (int i = 0; i < t->n_loops; i++)
        loop_free(t->loops[i]);
    SSL_CTX_free(t->ssl_ctx);
    free(t);
}
