/*
 * transport — gRPC C core server for ADS streams; the contract is in
 * transport.h. Invariants:
 *  - every started batch completes exactly once on the completion queue, and
 *    holds a stream reference (and counts in t->outstanding) until then;
 *  - s->mu guards the write queue, the flags and every grpc_call_start_batch
 *    on the call (send and receive batches included);
 *  - after RECV_CLOSE_ON_SERVER completed (s->closed), no batch is started
 *    except by completions already in flight;
 *  - the completion queue is shut down only once the server shutdown tag has
 *    arrived and no batch is outstanding, so no batch can start on a dead CQ.
 */
#include "xds/transport.h"

#include <dlfcn.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

enum tag_kind { TAG_ACCEPT, TAG_RECV, TAG_SEND, TAG_WAKE, TAG_CLOSE, TAG_SHUTDOWN };

struct tag {
    enum tag_kind kind;
    struct xds_stream *s;
};

struct qmsg {
    grpc_byte_buffer *bb;
    struct qmsg *next;
};

struct accept_slot {
    struct tag tag;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
};

/* Completion queues, each with its own thread: one per core, 2 to 8. Calls
 * are spread over them round robin: besides using every core, this keeps
 * each queue's list of outstanding tags short (gRPC builds without NDEBUG
 * check every completed tag against that list linearly, which at 10,000
 * streams on one queue was 10-14% of kuma-cp's CPU). More queues than cores
 * only add wake-ups (docs/BENCHMARKS.md: 2 queues used 10% less CPU than 8
 * on 2 cores). */
#define XDS_CQS 8
/* The shortest PING period a proxy may use without being told off (GOAWAY
 * too_many_pings): kuma-dp pings at 5 s at the least, this leaves a second
 * of jitter. Kuma's DP server enforces 15 s. */
#define XDS_MIN_CLIENT_PING_MS 4000

struct cq_thread {
    struct xds_transport *t;
    grpc_completion_queue *cq;
    pthread_t thread;
    int started;
};

struct xds_transport {
    grpc_server *server;
    grpc_completion_queue *cq; /* = cqs[0].cq: accepts and the shutdown tag */
    struct cq_thread cqs[XDS_CQS];
    int n_cqs;        /* one per core, 2..XDS_CQS */
    unsigned next_cq; /* CQ 0 thread only */
    struct xds_transport_cb cb;
    void *ctx;
    size_t max_queue;
    struct accept_slot *accept;
    struct tag shutdown_tag;
    atomic_long outstanding; /* batches in flight, accept included */
    atomic_uint_fast64_t next_id;
    atomic_int shutting_down; /* set by xds_transport_shutdown, read by the CQ thread */
    atomic_int shutdown_tag_seen;
    atomic_int shutdown_started;
    SSL_CTX *ssl_ctx; /* gRPC's, seen by the interposed SSL_CTX_new; NULL = plaintext */
};

struct xds_stream {
    struct xds_transport *t;
    grpc_call *call;
    uint64_t id;
    pthread_mutex_t mu;
    atomic_int refs;
    struct tag recv_tag, send_tag, wake_tag, close_tag;
    grpc_byte_buffer *recv_bb;
    grpc_byte_buffer *send_bb; /* in flight */
    struct qmsg *qhead, *qtail;
    size_t qlen;
    int send_in_flight, wake_in_flight;
    int finish_requested, status_sent;
    enum xds_status finish_code;
    char *finish_msg;
    grpc_slice finish_slice;
    int closed, recv_done, opened, rejected;
    int cancelled;
    char *peer, *authorization;
    void *user;
};

static void batch_started(struct xds_stream *s)
{
    atomic_fetch_add(&s->refs, 1);
    atomic_fetch_add(&s->t->outstanding, 1);
}

static void stream_free(struct xds_stream *s)
{
    struct qmsg *m = s->qhead;
    while (m) {
        struct qmsg *n = m->next;
        grpc_byte_buffer_destroy(m->bb);
        free(m);
        m = n;
    }
    if (s->send_bb)
        grpc_byte_buffer_destroy(s->send_bb);
    if (s->status_sent)
        grpc_slice_unref(s->finish_slice);
    if (s->call)
        grpc_call_unref(s->call);
    pthread_mutex_destroy(&s->mu);
    free(s->finish_msg);
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

static int start_batch(struct xds_stream *s, const grpc_op *ops, size_t n, struct tag *tag)
{
    batch_started(s);
    grpc_call_error rc = grpc_call_start_batch(s->call, ops, n, tag, NULL);
    if (rc != GRPC_CALL_OK) {
        log_error("xds", "stream %llu: grpc_call_start_batch failed: %d", (unsigned long long)s->id,
                  (int)rc);
        atomic_fetch_sub(&s->refs, 1); /* never below 1 here: the caller holds one */
        atomic_fetch_sub(&s->t->outstanding, 1);
        return -1;
    }
    return 0;
}

/* Starts the next send (a queued message, or the final status). s->mu held. */
static void start_next_send_locked(struct xds_stream *s)
{
    if (s->send_in_flight || s->closed)
        return;
    if (s->qhead) {
        struct qmsg *m = s->qhead;
        s->qhead = m->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->qlen--;
        s->send_bb = m->bb;
        free(m);
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = s->send_bb;
        s->send_in_flight = 1;
        if (start_batch(s, &op, 1, &s->send_tag) < 0) {
            s->send_in_flight = 0;
            grpc_byte_buffer_destroy(s->send_bb);
            s->send_bb = NULL;
        }
        return;
    }
    if (s->finish_requested && !s->status_sent) {
        s->status_sent = 1;
        s->finish_slice = grpc_slice_from_copied_string(s->finish_msg ? s->finish_msg : "");
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        op.data.send_status_from_server.status = (grpc_status_code)s->finish_code;
        op.data.send_status_from_server.status_details = &s->finish_slice;
        s->send_in_flight = 1;
        if (start_batch(s, &op, 1, &s->send_tag) < 0)
            s->send_in_flight = 0;
    }
}

/* Wakes the CQ thread so it starts the next send. s->mu held. */
static void wake_locked(struct xds_stream *s)
{
    if (s->send_in_flight || s->wake_in_flight || s->closed)
        return;
    s->wake_in_flight = 1;
    if (start_batch(s, NULL, 0, &s->wake_tag) < 0)
        s->wake_in_flight = 0;
}

static int stream_send_slice(struct xds_stream *s, grpc_slice slice)
{
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    if (s->closed || s->finish_requested || s->rejected || s->qlen >= s->t->max_queue) {
        grpc_slice_unref(slice);
        goto out;
    }
    struct qmsg *m = xmalloc(sizeof(*m));
    m->bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    m->next = NULL;
    if (s->qtail)
        s->qtail->next = m;
    else
        s->qhead = m;
    s->qtail = m;
    s->qlen++;
    /* gRPC allows starting a batch from any thread: start the send here
     * when none is in flight (one completion instead of wake + send). */
    start_next_send_locked(s);
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int xds_stream_send(struct xds_stream *s, const void *data, size_t len)
{
    return stream_send_slice(s, grpc_slice_from_copied_buffer(data, len));
}

int xds_stream_send_owned(struct xds_stream *s, void *data, size_t len)
{
    return stream_send_slice(s, grpc_slice_new(data, len, free));
}

void xds_stream_finish(struct xds_stream *s, enum xds_status code, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    if (!s->finish_requested && !s->closed) {
        s->finish_requested = 1;
        s->finish_code = code;
        s->finish_msg = xstrdup(msg ? msg : "");
        wake_locked(s);
    }
    pthread_mutex_unlock(&s->mu);
}

static int request_call(struct xds_transport *t)
{
    struct accept_slot *a = xcalloc(1, sizeof(*a));
    a->tag.kind = TAG_ACCEPT;
    grpc_call_details_init(&a->details);
    grpc_metadata_array_init(&a->md);
    t->accept = a;
    atomic_fetch_add(&t->outstanding, 1);
    grpc_call_error rc =
        grpc_server_request_call(t->server, &a->call, &a->details, &a->md,
                                 t->cqs[t->next_cq++ % (unsigned)t->n_cqs].cq, t->cq, &a->tag);
    if (rc != GRPC_CALL_OK) {
        atomic_fetch_sub(&t->outstanding, 1);
        grpc_call_details_destroy(&a->details);
        grpc_metadata_array_destroy(&a->md);
        free(a);
        t->accept = NULL;
        log_error("xds", "grpc_server_request_call failed: %d", (int)rc);
        return -1;
    }
    return 0;
}

static void accept_free(struct accept_slot *a)
{
    grpc_call_details_destroy(&a->details);
    grpc_metadata_array_destroy(&a->md);
    free(a);
}

static void on_accept(struct xds_transport *t, struct accept_slot *a, int ok)
{
    if (!ok) { /* the server is shutting down */
        accept_free(a);
        return;
    }
    struct xds_stream *s = xcalloc(1, sizeof(*s));
    s->t = t;
    s->call = a->call;
    s->id = atomic_fetch_add(&t->next_id, 1) + 1;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->refs, 1); /* the transport's own, dropped at close */
    s->recv_tag = (struct tag){TAG_RECV, s};
    s->send_tag = (struct tag){TAG_SEND, s};
    s->wake_tag = (struct tag){TAG_WAKE, s};
    s->close_tag = (struct tag){TAG_CLOSE, s};
    char *peer = grpc_call_get_peer(s->call);
    s->peer = xstrdup(peer ? peer : "");
    gpr_free(peer);
    for (size_t i = 0; i < a->md.count; i++) {
        if (grpc_slice_str_cmp(a->md.metadata[i].key, "authorization") == 0) {
            char *v = grpc_slice_to_c_string(a->md.metadata[i].value);
            free(s->authorization);
            s->authorization = xstrdup(v);
            gpr_free(v);
        }
    }
    int is_ads = grpc_slice_str_cmp(a->details.method, XDS_ADS_METHOD) == 0;
    if (!is_ads) {
        char *m = grpc_slice_to_c_string(a->details.method);
        log_info("xds", "rejecting call to unknown method %s from %s", m, s->peer);
        gpr_free(m);
    }
    accept_free(a);
    if (!atomic_load(&t->shutting_down))
        request_call(t);

    /* on_open before any batch: the call's completions arrive on its own
     * queue's thread, which may run before this one gets further. */
    if (is_ads && t->cb.on_open) {
        xds_stream_ref(s); /* the callee's */
        t->cb.on_open(t->ctx, s);
    }
    pthread_mutex_lock(&s->mu);
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &s->cancelled;
    start_batch(s, ops, 1, &s->close_tag);
    if (is_ads) {
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_RECV_MESSAGE;
        ops[1].data.recv_message.recv_message = &s->recv_bb;
        start_batch(s, ops, 2, &s->recv_tag);
        s->opened = 1;
    } else {
        s->rejected = 1;
        s->recv_done = 1;
        s->finish_requested = 1;
        s->finish_code = 12; /* UNIMPLEMENTED */
        s->finish_msg = xstrdup("unknown method");
        start_next_send_locked(s);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_recv(struct xds_transport *t, struct xds_stream *s, int ok)
{
    grpc_byte_buffer *bb = s->recv_bb;
    s->recv_bb = NULL;
    if (!ok || !bb) {
        /* Cancelled, or the client half-closed: no more requests. */
        pthread_mutex_lock(&s->mu);
        s->recv_done = 1;
        if (ok && !bb && !s->finish_requested) {
            s->finish_requested = 1;
            s->finish_code = XDS_STATUS_OK;
            s->finish_msg = xstrdup("");
            wake_locked(s);
        }
        pthread_mutex_unlock(&s->mu);
        if (bb)
            grpc_byte_buffer_destroy(bb);
        return;
    }
    grpc_byte_buffer_reader r;
    if (grpc_byte_buffer_reader_init(&r, bb)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        if (t->cb.on_message)
            t->cb.on_message(t->ctx, s, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
        grpc_slice_unref(all);
    }
    grpc_byte_buffer_destroy(bb);
    pthread_mutex_lock(&s->mu);
    if (!s->closed && !s->recv_done) {
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &s->recv_bb;
        start_batch(s, &op, 1, &s->recv_tag);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_send(struct xds_stream *s, int ok)
{
    pthread_mutex_lock(&s->mu);
    s->send_in_flight = 0;
    if (s->send_bb) {
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
    }
    if (ok)
        start_next_send_locked(s);
    pthread_mutex_unlock(&s->mu);
}

static void on_wake(struct xds_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->wake_in_flight = 0;
    start_next_send_locked(s);
    pthread_mutex_unlock(&s->mu);
}

static void on_close(struct xds_transport *t, struct xds_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    struct qmsg *m = s->qhead;
    s->qhead = s->qtail = NULL;
    s->qlen = 0;
    int opened = s->opened;
    pthread_mutex_unlock(&s->mu);
    while (m) {
        struct qmsg *n = m->next;
        grpc_byte_buffer_destroy(m->bb);
        free(m);
        m = n;
    }
    if (opened && t->cb.on_close)
        t->cb.on_close(t->ctx, s);
    xds_stream_unref(s); /* the transport's own */
}

/* Shuts every queue down once the server's shutdown tag has been seen and no
 * batch is outstanding (whichever thread sees that last). */
static void maybe_shutdown_cqs(struct xds_transport *t)
{
    if (!atomic_load(&t->shutdown_tag_seen) || atomic_load(&t->outstanding) != 0)
        return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&t->shutdown_started, &expected, 1))
        return;
    for (int i = 0; i < t->n_cqs; i++)
        grpc_completion_queue_shutdown(t->cqs[i].cq);
}

static void *cq_main(void *arg)
{
    struct cq_thread *ct = arg;
    struct xds_transport *t = ct->t;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(ct->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct tag *tag = ev.tag;
        struct xds_stream *s = tag->s;
        enum tag_kind kind = tag->kind; /* the accept slot is freed in on_accept */
        switch (kind) {
        case TAG_ACCEPT:
            atomic_fetch_sub(&t->outstanding, 1);
            on_accept(t, (struct accept_slot *)tag, ev.success);
            break;
        case TAG_RECV:
            on_recv(t, s, ev.success);
            break;
        case TAG_SEND:
            on_send(s, ev.success);
            break;
        case TAG_WAKE:
            on_wake(s);
            break;
        case TAG_CLOSE:
            on_close(t, s);
            break;
        case TAG_SHUTDOWN:
            atomic_store(&t->shutdown_tag_seen, 1);
            break;
        }
        if (kind != TAG_ACCEPT && kind != TAG_SHUTDOWN) {
            atomic_fetch_sub(&t->outstanding, 1);
            xds_stream_unref(s); /* the batch's reference */
        }
        maybe_shutdown_cqs(t);
    }
    return NULL;
}

/* Abseil built without NDEBUG (Debian's) checks every absl::Mutex lock for
 * deadlock cycles in one global graph under one global lock. gRPC takes
 * several such mutexes per call and per connection, so with 10,000
 * connections the check alone cost ~8% of kuma-cp's CPU in the cold start and
 * serialized the threads on its lock (docs/BENCHMARKS.md). It only detects
 * lock-order bugs inside gRPC; turn it off when the library has it:
 * absl::SetMutexDeadlockDetectionMode(OnDeadlockCycle::kIgnore), looked up
 * by name because C cannot name it and the inline namespace varies. */
static void absl_deadlock_detection_off(void)
{
    static const char *const names[] = {
        "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        if (f) {
            void (*set_mode)(int);
            memcpy(&set_mode, &f, sizeof(set_mode));
            set_mode(0); /* kIgnore */
            return;
        }
    }
}

/* Per-connection TLS memory. With one connection per proxy, the buffers that
 * gRPC core's TLS layer (TSI) keeps for each connection were most of
 * kuma-cp's memory: 94 KB a connection, 35 KB of it the BIO pair between
 * gRPC and OpenSSL (two 17 KB rings), 34 KB OpenSSL's record buffers and
 * 16 KB the frame protector's (docs/xds.md, "Cost of a connection"). gRPC
 * 1.51 offers a channel argument only for the last (GRPC_ARG_TSI_MAX_FRAME_SIZE,
 * below); it creates the SSL_CTX, the SSL objects and the BIO pairs itself.
 * So this file interposes three libssl functions: the executable's
 * definitions come first in the dynamic symbol lookup, libgrpc's calls land
 * here, and each forwards to libssl's (RTLD_NEXT).
 *  - SSL_CTX_new: a context created on the thread that runs
 *    xds_transport_start while it binds the DP port (tls_capture) is the DP
 *    server's. It gets SSL_MODE_RELEASE_BUFFERS: OpenSSL frees a connection's
 *    read and write buffers whenever no record is pending, which is nearly
 *    always for an idle proxy.
 *  - SSL_new on that context marks the thread, and the BIO_new_bio_pair that
 *    gRPC calls next on it (with 0, 0: OpenSSL's 17 KB default) gets
 *    XDS_TLS_IN_BUF for the ring gRPC writes the peer's bytes into and
 *    tls_out_buf for the ring OpenSSL writes its records into. gRPC 1.51
 *    handles a partial write into the first ring (it retries the rest), but
 *    fails the connection when SSL_write finds the second ring full: that
 *    ring holds one record (at most XDS_TLS_FRAME bytes; gRPC drains it
 *    before each write) and, as a margin, the largest server flight (the
 *    certificate's PEM length plus 4 KB; the handshake itself copes with a
 *    smaller ring: tests/integration/test_xds_tls_chain.sh).
 * Any other caller (kuma-cp's own clients, a second context) gets libssl's
 * behaviour untouched; with several TLS transports in one process (tests),
 * the latest one's connections get the smaller rings, and
 * xds_transport_free forgets its context. The rings are touched only as far as data has gone
 * through them, so the saving shows as a proxy's traffic wraps them. */
#define XDS_TLS_FRAME  4096
#define XDS_TLS_IN_BUF 8192

static _Thread_local int tls_capture;      /* binding the DP port */
static _Thread_local int tls_pair_pending; /* SSL_new on the server's context */
static _Atomic(SSL_CTX *) tls_server_ctx;
static atomic_size_t tls_out_buf;

static void *libssl_sym(const char *name)
{
    void *sym = dlsym(RTLD_NEXT, name);
    if (!sym) { /* libssl is linked: a broken installation */
        fprintf(stderr, "kuma-cp: %s not found in libssl\n", name);
        abort();
    }
    return sym;
}

typedef SSL_CTX *ssl_ctx_new_fn(const SSL_METHOD *);
typedef SSL *ssl_new_fn(SSL_CTX *);
typedef int bio_new_bio_pair_fn(BIO **, size_t, BIO **, size_t);

SSL_CTX *SSL_CTX_new(const SSL_METHOD *meth)
{
    static _Atomic(ssl_ctx_new_fn *) real;
    ssl_ctx_new_fn *f = atomic_load(&real);
    if (!f) {
        void *sym = libssl_sym("SSL_CTX_new");
        memcpy(&f, &sym, sizeof(f));
        atomic_store(&real, f);
    }
    SSL_CTX *ctx = f(meth);
    if (ctx && tls_capture) {
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        atomic_store(&tls_server_ctx, ctx);
    }
    return ctx;
}

SSL *SSL_new(SSL_CTX *ctx)
{
    static _Atomic(ssl_new_fn *) real;
    ssl_new_fn *f = atomic_load(&real);
    if (!f) {
        void *sym = libssl_sym("SSL_new");
        memcpy(&f, &sym, sizeof(f));
        atomic_store(&real, f);
    }
    SSL *ssl = f(ctx);
    tls_pair_pending = ssl && ctx && ctx == atomic_load(&tls_server_ctx);
    return ssl;
}

int BIO_new_bio_pair(BIO **bio1, size_t writebuf1, BIO **bio2, size_t writebuf2)
{
    static _Atomic(bio_new_bio_pair_fn *) real;
    bio_new_bio_pair_fn *f = atomic_load(&real);
    if (!f) {
        void *sym = libssl_sym("BIO_new_bio_pair");
        memcpy(&f, &sym, sizeof(f));
        atomic_store(&real, f);
    }
    if (tls_pair_pending && writebuf1 == 0 && writebuf2 == 0) {
        writebuf1 = XDS_TLS_IN_BUF;
        writebuf2 = atomic_load(&tls_out_buf);
    }
    tls_pair_pending = 0;
    return f(bio1, writebuf1, bio2, writebuf2);
}

int xds_transport_start(const struct xds_transport_opts *o, const struct xds_transport_cb *cb,
                        void *ctx, struct xds_transport **out, int *bound_port, struct err *e)
{
    absl_deadlock_detection_off();
    grpc_init();
    struct xds_transport *t = xcalloc(1, sizeof(*t));
    t->cb = *cb;
    t->ctx = ctx;
    t->max_queue = o->max_queue ? o->max_queue : 256;
    t->shutdown_tag.kind = TAG_SHUTDOWN;
    atomic_init(&t->outstanding, 0);
    atomic_init(&t->next_id, 0);
    atomic_init(&t->shutting_down, 0);

    /* SO_REUSEPORT off: a stale server on the same port must fail the bind,
     * not silently share the clients. */
    grpc_arg args[7];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = (int)(o->max_message ? o->max_message : 4u << 20);
    /* Keepalive: proxies PING (kuma-dp every 15 s by default, docs/dp-xds.md)
     * with or without streams, down to one PING per XDS_MIN_CLIENT_PING_MS,
     * and get no GOAWAY too_many_pings. Unlike Kuma's DP server this one
     * sends no PINGs itself: nothing runs at rest (a proxy that vanished is
     * noticed when a push to it fails, or its own keepalive reconnects it). */
    static const char *const ka_keys[3] = {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                                           GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                                           GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA};
    const int ka_vals[3] = {1, XDS_MIN_CLIENT_PING_MS, 0};
    for (int i = 0; i < 3; i++) {
        args[2 + i].type = GRPC_ARG_INTEGER;
        args[2 + i].key = (char *)ka_keys[i];
        args[2 + i].value.integer = ka_vals[i];
    }
    /* Smaller TLS records: the frame protector's buffer is one record, and
     * the BIO ring above must hold one (see the interposed functions). */
    args[5].type = GRPC_ARG_INTEGER;
    args[5].key = (char *)GRPC_ARG_TSI_MAX_FRAME_SIZE;
    args[5].value.integer = XDS_TLS_FRAME;
    /* First read of a connection: 4 KB instead of 8 (requests are small;
     * gRPC doubles it for a connection whose reads fill it). */
    args[6].type = GRPC_ARG_INTEGER;
    args[6].key = (char *)GRPC_ARG_TCP_READ_CHUNK_SIZE;
    args[6].value.integer = 4096;
    grpc_channel_args cargs = {7, args};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    t->n_cqs = ncpu < 2 ? 2 : ncpu > XDS_CQS ? XDS_CQS : (int)ncpu;
    t->server = grpc_server_create(&cargs, NULL);
    for (int i = 0; i < t->n_cqs; i++) {
        t->cqs[i].t = t;
        t->cqs[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(t->server, t->cqs[i].cq, NULL);
    }
    t->cq = t->cqs[0].cq;

    grpc_server_credentials *creds;
    if (o->tls_cert_pem && o->tls_key_pem) {
        grpc_ssl_pem_key_cert_pair pair = {o->tls_key_pem, o->tls_cert_pem};
        size_t flight = strlen(o->tls_cert_pem) + 4096;
        atomic_store(&tls_out_buf, flight > 8192 ? flight : 8192);
        creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    const char *addr = o->address && *o->address ? o->address : "0.0.0.0";
    char *hostport =
        strchr(addr, ':') ? xasprintf("[%s]:%d", addr, o->port) : xasprintf("%s:%d", addr, o->port);
    tls_capture = 1; /* gRPC creates the server's SSL_CTX in here */
    int port = grpc_server_add_http2_port(t->server, hostport, creds);
    tls_capture = 0;
    if (o->tls_cert_pem && o->tls_key_pem)
        t->ssl_ctx = atomic_load(&tls_server_ctx);
    grpc_server_credentials_release(creds);
    if (port <= 0) {
        err_set(e, "could not bind the DP server to %s", hostport);
        free(hostport);
        grpc_server_destroy(t->server);
        SSL_CTX *mine = t->ssl_ctx;
        if (mine)
            atomic_compare_exchange_strong(&tls_server_ctx, &mine, NULL);
        for (int i = 0; i < t->n_cqs; i++) {
            grpc_completion_queue_shutdown(t->cqs[i].cq);
            while (
                grpc_completion_queue_next(t->cqs[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                    .type != GRPC_QUEUE_SHUTDOWN)
                ;
            grpc_completion_queue_destroy(t->cqs[i].cq);
        }
        free(t);
        grpc_shutdown();
        return -1;
    }
    free(hostport);
    grpc_server_start(t->server);
    request_call(t);
    for (int i = 0; i < t->n_cqs; i++) {
        if (pthread_create(&t->cqs[i].thread, NULL, cq_main, &t->cqs[i]) != 0) {
            err_set(e, "could not start the xDS transport threads");
            xds_transport_shutdown(t);
            xds_transport_free(t);
            return -1;
        }
        t->cqs[i].started = 1;
    }
    *bound_port = port;
    *out = t;
    return 0;
}

void xds_transport_shutdown(struct xds_transport *t)
{
    if (!t || atomic_load(&t->shutting_down))
        return;
    atomic_store(&t->shutting_down, 1); /* no re-arm of request_call after this */
    grpc_server_shutdown_and_notify(t->server, t->cq, &t->shutdown_tag);
    grpc_server_cancel_all_calls(t->server);
    for (int i = 0; i < t->n_cqs; i++) {
        if (t->cqs[i].started) {
            pthread_join(t->cqs[i].thread, NULL);
            t->cqs[i].started = 0;
        }
    }
}

void xds_transport_free(struct xds_transport *t)
{
    if (!t)
        return;
    xds_transport_shutdown(t);
    grpc_server_destroy(t->server);
    /* The context is freed with the server: a later context at the same
     * address must not be taken for the DP server's. */
    SSL_CTX *mine = t->ssl_ctx;
    if (mine)
        atomic_compare_exchange_strong(&tls_server_ctx, &mine, NULL);
    for (int i = 0; i < t->n_cqs; i++)
        grpc_completion_queue_destroy(t->cqs[i].cq);
    free(t);
    grpc_shutdown();
}
