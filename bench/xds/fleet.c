/*
 * Simulated xDS fleet in C (bench/xds/run.sh drives it with FLEET=c): the
 * same scenario, phases and output as bench/xds/fleet.js, at a fraction of
 * its CPU, so that on a 2-core box the measured times reflect kuma-cp.
 *
 * One ADS stream per simulated dataplane, over CHANNELS gRPC channels
 * (default N: one TLS connection per dataplane, as real proxies have). Each
 * stream subscribes to CDS, EDS and LDS (and SDS with MTLS=1) with node id
 * "default.dp-<i>" (the Dataplane itself is created over the REST API, as
 * fleet.js does) and ACKs every response at once with its version and nonce.
 *
 * Threads: the main thread runs the phases and the REST calls (libcurl);
 * THREADS completion-queue threads (default 2) own the streams' completions,
 * proxy i on queue i % THREADS. A proxy's stream state is under its own
 * mutex (the main thread starts and cancels calls; its queue's thread does
 * the rest); what the main thread reads while streams run (per-type change
 * counters and times, the count of complete proxies) is atomic.
 *
 * Phases (as fleet.js):
 *   cold     every stream opens; time until the last proxy has ACKed every
 *            type (the ACK's send completed)
 *   policy   a mesh-wide MeshTimeout: per-proxy delay from the PUT to its
 *            new CDS (p50/p99/max)
 *   churn    dp-0 moves: who received a new EDS (only the callers of svc-0
 *            must), and their delay
 *   idle     IDLE_S seconds with nothing changing (run.sh samples kuma-cp)
 *   storm    every stream cancelled and reopened at once (STORM=reconnect:
 *            the channels too, so every TLS connection is made again)
 * Lines COLD_BEGIN/COLD_END, POLICY_BEGIN/POLICY_END, IDLE_BEGIN/IDLE_END
 * tell run.sh when to sample kuma-cp; the figures come as one line
 * "RESULT {json}" (fleet.js's keys, plus a few of this fleet's own).
 *
 * Env: XDS_ADDR host:port, CP_URL, XDS_CA (PEM file; unset = plaintext), N,
 * SERVICES (N/10), OUTBOUNDS (5), CHANNELS (N), THREADS (2), MTLS, IDLE_S
 * (10), RDS (1: subscribe to RDS too, and wait for it), PROTOCOL (a
 * kuma.io/protocol tag on every inbound, e.g. http; default none: TCP),
 * ADDRS (1: with more, channel c connects to 127.0.0.(1 + c % ADDRS),
 * for when one address runs out of ephemeral ports), STORM, TIMEOUT_S (120),
 * PERF (longer pauses before the timed phases, for perf to attach).
 */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#define ADS_METHOD                                                                                 \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define MAX_THREADS 16

enum { T_CDS, T_EDS, T_LDS, T_RDS, T_SDS, NT };
static const char *const type_url[NT] = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
};

enum tag_kind { TAG_START, TAG_RECV, TAG_SEND, TAG_STATUS };

struct tag {
    enum tag_kind kind;
    struct proxy *p;
};

struct msg {
    grpc_byte_buffer *bb;
    int type; /* the type an ACK acknowledges, -1 for a subscription */
    struct msg *next;
};

struct proxy {
    int i;
    pthread_mutex_t mu;
    grpc_call *call; /* NULL when no stream */
    int cq;
    struct tag t_start, t_recv, t_send, t_status;
    int outstanding; /* batches in flight */
    int status_done, closing;
    struct msg *qhead, *qtail, *sending;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array imd, tmd;
    grpc_status_code status;
    grpc_slice details;
    unsigned acked;  /* types ACKed on this stream */
    int counted;     /* counted in `complete` */
    int64_t done_ns; /* when it was (read by the main thread once all are) */
    char version[NT][40];
    /* Read by the main thread while the stream runs. */
    atomic_uint vcount[NT]; /* version changes seen */
    atomic_llong vtime[NT]; /* when the last one arrived (ns) */
    unsigned mark[NT];      /* main thread only */
};

static struct {
    int n, services, outbounds, channels, threads, mtls, idle_s, addrs, timeout_s, perf;
    int storm_reconnect;
    const char *protocol; /* kuma.io/protocol of every inbound, NULL = none (TCP) */
    unsigned want;
    const char *xds, *cp;
    char *ca;
    grpc_channel_credentials *creds;
    grpc_channel **ch;
    grpc_completion_queue *cqs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    struct proxy *px;
    atomic_int complete; /* proxies with every type ACKed on their stream */
    atomic_int open;     /* proxies with a stream */
    atomic_long responses, acks, bad_responses, stream_errors;
} g;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fleet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xcalloc_(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        die("out of memory");
    return p;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int env_int(const char *k, int def)
{
    const char *v = getenv(k);
    if (!v || !*v)
        return def;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > 10000000)
        die("%s: not a count: \"%s\"", k, v);
    return (int)x;
}

/* Abseil built without NDEBUG (Debian's) checks every absl::Mutex lock for
 * deadlock cycles in one global graph under one global lock; gRPC locks
 * several mutexes per call and per connection, so with thousands of
 * connections that graph cost a tenth of the fleet's CPU. Turn the check off
 * when the library has it (absl::SetMutexDeadlockDetectionMode(kIgnore);
 * looked up by name: C cannot name it, and the inline namespace varies). */
static void absl_deadlock_detection_off(void)
{
    static const char *const names[] = {
        "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        if (f) {
            ((void (*)(int))f)(0); /* OnDeadlockCycle::kIgnore */
            return;
        }
    }
}

/* ---- REST (libcurl) ----------------------------------------------------------------------- */

static size_t sink(char *ptr, size_t size, size_t n, void *ud)
{
    char *buf = ud; /* keeps the start of the body for error messages */
    size_t have = strlen(buf), len = size * n;
    if (have < 255) {
        size_t k = len < 255 - have ? len : 255 - have;
        memcpy(buf + have, ptr, k);
        buf[have + k] = 0;
    }
    return len;
}

/* PUT body at CP_URL+path; returns the HTTP status (0: no answer). */
static long api_put(CURL *c, const char *path, const char *body, char err[256])
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", g.cp, path);
    struct curl_slist *h = curl_slist_append(NULL, "content-type: application/json");
    err[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, err);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else
        snprintf(err, 256, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    return code;
}

static int svc_of_outbound(int i, int k)
{
    return (i + k * 7) % g.services;
}

/* The Dataplane of proxy i, as fleet.js's dpSpec. */
static char *dp_json(int i, const char *address)
{
    size_t cap = 512 + (size_t)g.outbounds * 96;
    char *b = xcalloc_(1, cap);
    char addr[32];
    if (!address) {
        snprintf(addr, sizeof(addr), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        address = addr;
    }
    int n = snprintf(b, cap,
                     "{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":\"dp-%d\","
                     "\"networking\":{\"address\":\"%s\",\"inbound\":[{\"port\":8080,"
                     "\"tags\":{\"kuma.io/service\":\"svc-%d\"%s%s%s}}],\"outbound\":[",
                     i, address, i % g.services, g.protocol ? ",\"kuma.io/protocol\":\"" : "",
                     g.protocol ? g.protocol : "", g.protocol ? "\"" : "");
    for (int k = 1; k <= g.outbounds; k++)
        n += snprintf(b + n, cap - (size_t)n,
                      "%s{\"port\":%d,\"tags\":{\"kuma.io/service\":\"svc-%d\"}}", k > 1 ? "," : "",
                      10000 + k, svc_of_outbound(i, k));
    snprintf(b + n, cap - (size_t)n, "]}}");
    return b;
}

struct put_range {
    int from, step;
};

static void *create_worker(void *arg)
{
    struct put_range *r = arg;
    CURL *c = curl_easy_init();
    if (!c)
        die("curl_easy_init failed");
    char err[256];
    for (int i = r->from; i < g.n; i += r->step) {
        char path[128];
        snprintf(path, sizeof(path), "/meshes/default/dataplanes/dp-%d", i);
        char *body = dp_json(i, NULL);
        long st = api_put(c, path, body, err);
        free(body);
        if (st != 200 && st != 201)
            die("PUT %s: %ld %s", path, st, err);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void put_or_die(const char *path, const char *body)
{
    CURL *c = curl_easy_init();
    if (!c)
        die("curl_easy_init failed");
    char err[256];
    long st = api_put(c, path, body, err);
    curl_easy_cleanup(c);
    if (st != 200 && st != 201)
        die("PUT %s: %ld %s", path, st, err);
}

/* ---- streams ------------------------------------------------------------------------------ */

static grpc_byte_buffer *pack_request(Envoy__Service__Discovery__V3__DiscoveryRequest *req)
{
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(req);
    grpc_slice s = grpc_slice_malloc(len);
    envoy__service__discovery__v3__discovery_request__pack(req, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static int start(struct proxy *p, const grpc_op *ops, size_t n, struct tag *t)
{
    p->outstanding++;
    grpc_call_error rc = grpc_call_start_batch(p->call, ops, n, t, NULL);
    if (rc != GRPC_CALL_OK) {
        p->outstanding--;
        fprintf(stderr, "fleet: dp-%d: grpc_call_start_batch: %d\n", p->i, (int)rc);
        return -1;
    }
    return 0;
}

/* Starts the next queued send when none is in flight. p->mu held. */
static void send_next(struct proxy *p)
{
    if (p->sending || p->status_done || !p->qhead)
        return;
    struct msg *m = p->qhead;
    p->qhead = m->next;
    if (!p->qhead)
        p->qtail = NULL;
    p->sending = m;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = m->bb;
    if (start(p, &op, 1, &p->t_send) < 0) {
        p->sending = NULL;
        grpc_byte_buffer_destroy(m->bb);
        free(m);
    }
}

static void enqueue(struct proxy *p, grpc_byte_buffer *bb, int type)
{
    struct msg *m = xcalloc_(1, sizeof(*m));
    m->bb = bb;
    m->type = type;
    if (p->qtail)
        p->qtail->next = m;
    else
        p->qhead = m;
    p->qtail = m;
    send_next(p);
}

static void recv_next(struct proxy *p)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &p->recv_bb;
    start(p, &op, 1, &p->t_recv);
}

/* Opens proxy p's stream and subscribes (main thread). */
static void proxy_open(struct proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->status_done = p->closing = 0;
    p->acked = 0;
    p->counted = 0;
    grpc_metadata_array_init(&p->imd);
    grpc_metadata_array_init(&p->tmd);
    p->details = grpc_empty_slice();
    grpc_channel *ch = g.ch[p->i % g.channels];
    p->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, g.cqs[p->cq],
                                       grpc_slice_from_static_string(ADS_METHOD), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    atomic_fetch_add(&g.open, 1);
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &p->imd;
    start(p, ops, 2, &p->t_start);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &p->tmd;
    ops[0].data.recv_status_on_client.status = &p->status;
    ops[0].data.recv_status_on_client.status_details = &p->details;
    start(p, ops, 1, &p->t_status);

    char id[64];
    snprintf(id, sizeof(id), "default.dp-%d", p->i);
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    node.id = id;
    node.cluster = "bench";
    node.user_agent_name = "envoy";
    int first = 1;
    for (int t = 0; t < NT; t++) {
        if (!(g.want & (1u << t)))
            continue;
        Envoy__Service__Discovery__V3__DiscoveryRequest req =
            ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
        req.type_url = (char *)type_url[t];
        if (first)
            req.node = &node;
        first = 0;
        enqueue(p, pack_request(&req), -1);
    }
    recv_next(p);
    pthread_mutex_unlock(&p->mu);
}

static int type_of(const char *url)
{
    for (int t = 0; t < NT; t++)
        if (url && strcmp(url, type_url[t]) == 0)
            return t;
    return -1;
}

/* A response: note a version change, ACK it. p->mu held. */
static void on_response(struct proxy *p, const uint8_t *data, size_t len)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);
    int t = r ? type_of(r->type_url) : -1;
    if (t < 0 || !r->version_info || !*r->version_info ||
        strlen(r->version_info) >= sizeof(p->version[0])) {
        if (atomic_fetch_add(&g.bad_responses, 1) < 5)
            fprintf(stderr, "fleet: dp-%d: unexpected response (%zu bytes, type %s)\n", p->i, len,
                    r && r->type_url ? r->type_url : "?");
        if (r)
            envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
        return;
    }
    atomic_fetch_add(&g.responses, 1);
    if (strcmp(p->version[t], r->version_info) != 0) {
        strcpy(p->version[t], r->version_info);
        atomic_store(&p->vtime[t], now_ns());
        atomic_fetch_add(&p->vcount[t], 1); /* after vtime: the reader checks vcount first */
    }
    Envoy__Service__Discovery__V3__DiscoveryRequest ack =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    ack.type_url = r->type_url;
    ack.version_info = r->version_info;
    ack.response_nonce = r->nonce;
    enqueue(p, pack_request(&ack), t);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

/* The stream is over once its status arrived and nothing is in flight. p->mu held. */
static void maybe_end(struct proxy *p)
{
    if (!p->call || !p->status_done || p->outstanding)
        return;
    if (!p->closing) {
        atomic_fetch_add(&g.stream_errors, 1);
        char *d = grpc_slice_to_c_string(p->details);
        fprintf(stderr, "fleet: dp-%d: stream ended: status %d: %s\n", p->i, (int)p->status, d);
        gpr_free(d);
    }
    for (struct msg *m = p->qhead, *n; m; m = n) {
        n = m->next;
        grpc_byte_buffer_destroy(m->bb);
        free(m);
    }
    p->qhead = p->qtail = NULL;
    grpc_metadata_array_destroy(&p->imd);
    grpc_metadata_array_destroy(&p->tmd);
    grpc_slice_unref(p->details);
    grpc_call_unref(p->call);
    p->call = NULL;
    if (p->counted)
        atomic_fetch_sub(&g.complete, 1);
    p->counted = 0;
    atomic_fetch_sub(&g.open, 1);
}

static void *cq_main(void *arg)
{
    grpc_completion_queue *cq = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct tag *t = ev.tag;
        struct proxy *p = t->p;
        pthread_mutex_lock(&p->mu);
        p->outstanding--;
        switch (t->kind) {
        case TAG_START:
            break;
        case TAG_SEND: {
            struct msg *m = p->sending;
            p->sending = NULL;
            if (m) {
                if (ev.success && m->type >= 0) {
                    atomic_fetch_add(&g.acks, 1);
                    p->acked |= 1u << m->type;
                    if (!p->counted && (p->acked & g.want) == g.want) {
                        p->counted = 1;
                        p->done_ns = now_ns();
                        atomic_fetch_add(&g.complete, 1);
                    }
                }
                grpc_byte_buffer_destroy(m->bb);
                free(m);
            }
            if (ev.success)
                send_next(p);
            break;
        }
        case TAG_RECV:
            if (ev.success && p->recv_bb) {
                grpc_byte_buffer_reader rd;
                if (grpc_byte_buffer_reader_init(&rd, p->recv_bb)) {
                    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
                    grpc_byte_buffer_reader_destroy(&rd);
                    on_response(p, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
                    grpc_slice_unref(s);
                }
                grpc_byte_buffer_destroy(p->recv_bb);
                p->recv_bb = NULL;
                if (!p->status_done)
                    recv_next(p);
            } else if (p->recv_bb) {
                grpc_byte_buffer_destroy(p->recv_bb);
                p->recv_bb = NULL;
            }
            break;
        case TAG_STATUS:
            p->status_done = 1;
            break;
        }
        maybe_end(p);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static void proxy_cancel(struct proxy *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->call) {
        p->closing = 1;
        grpc_call_cancel(p->call, NULL);
    }
    pthread_mutex_unlock(&p->mu);
}

/* ---- channels ----------------------------------------------------------------------------- */

static void channels_create(void)
{
    const char *colon = strrchr(g.xds, ':');
    if (!colon)
        die("XDS_ADDR: want host:port, got \"%s\"", g.xds);
    int loopback = strncmp(g.xds, "127.0.0.1:", 10) == 0;
    if (g.addrs > 1 && !loopback)
        die("ADDRS > 1 needs XDS_ADDR 127.0.0.1:<port>");
    for (int c = 0; c < g.channels; c++) {
        grpc_arg args[3];
        int na = 0;
        memset(args, 0, sizeof(args));
        /* One connection per channel: without a local subchannel pool gRPC
         * shares one subchannel among channels with equal arguments. */
        args[na].type = GRPC_ARG_INTEGER;
        args[na].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
        args[na++].value.integer = 1;
        args[na].type = GRPC_ARG_INTEGER;
        args[na].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
        args[na++].value.integer = 64 << 20;
        char target[128];
        if (g.addrs > 1) {
            snprintf(target, sizeof(target), "ipv4:127.0.0.%d%s", 1 + c % g.addrs, colon);
            /* kuma-cp's certificate names localhost and its interfaces'
             * addresses, not 127.0.0.2 and up. */
            args[na].type = GRPC_ARG_STRING;
            args[na].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
            args[na++].value.string = (char *)"localhost";
        } else {
            snprintf(target, sizeof(target), "%s%s", loopback ? "ipv4:" : "", g.xds);
        }
        grpc_channel_args ca = {(size_t)na, args};
        g.ch[c] = grpc_channel_create(target, g.creds, &ca);
    }
}

static void channels_destroy(void)
{
    for (int c = 0; c < g.channels; c++) {
        grpc_channel_destroy(g.ch[c]);
        g.ch[c] = NULL;
    }
}

/* ---- phases ------------------------------------------------------------------------------- */

static int wait_until(int (*pred)(void *), void *arg, const char *what)
{
    int64_t deadline = now_ns() + (int64_t)g.timeout_s * 1000000000;
    while (!pred(arg)) {
        if (now_ns() > deadline) {
            fprintf(stderr,
                    "fleet: timed out after %d s waiting for %s (complete %d, open %d of %d, "
                    "responses %ld, stream errors %ld)\n",
                    g.timeout_s, what, atomic_load(&g.complete), atomic_load(&g.open), g.n,
                    atomic_load(&g.responses), atomic_load(&g.stream_errors));
            return -1;
        }
        sleep_ms(2);
    }
    return 0;
}

static int all_complete(void *arg)
{
    (void)arg;
    return atomic_load(&g.complete) == g.n;
}

static int none_open(void *arg)
{
    (void)arg;
    return atomic_load(&g.open) == 0;
}

static void mark_all(void)
{
    for (int i = 0; i < g.n; i++)
        for (int t = 0; t < NT; t++)
            g.px[i].mark[t] = atomic_load(&g.px[i].vcount[t]);
}

static int changed(const struct proxy *p, int t)
{
    return atomic_load(&((struct proxy *)p)->vcount[t]) != p->mark[t];
}

struct subset {
    const int *ids;
    int n, type;
};

static int subset_changed(void *arg)
{
    struct subset *s = arg;
    for (int k = 0; k < s->n; k++)
        if (!changed(&g.px[s->ids[k]], s->type))
            return 0;
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* fleet.js's pct: the element at floor(n * q) of the sorted values. */
static double pct(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int k = (int)((double)n * q);
    return v[k < n ? k : n - 1];
}

/* Opens every stream; returns the time until the last proxy is complete,
 * and in q[0..2] when 10%, 50% and 90% of them were. */
static double open_all(double q[3])
{
    int64_t t0 = now_ns();
    for (int i = 0; i < g.n; i++)
        proxy_open(&g.px[i]);
    if (wait_until(all_complete, NULL, "every proxy to ACK every type") < 0)
        exit(1);
    double total = (double)(now_ns() - t0) / 1e6;
    double *v = xcalloc_((size_t)g.n, sizeof(double));
    for (int i = 0; i < g.n; i++) {
        pthread_mutex_lock(&g.px[i].mu);
        v[i] = (double)(g.px[i].done_ns - t0) / 1e6;
        pthread_mutex_unlock(&g.px[i].mu);
    }
    q[0] = pct(v, g.n, 0.1);
    q[1] = pct(v, g.n, 0.5);
    q[2] = pct(v, g.n, 0.9);
    free(v);
    return total;
}

static void close_all(void)
{
    for (int i = 0; i < g.n; i++)
        proxy_cancel(&g.px[i]);
    if (wait_until(none_open, NULL, "every stream to end") < 0)
        exit(1);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    g.n = env_int("N", 1000);
    if (g.n < 1)
        die("N must be at least 1");
    g.services = env_int("SERVICES", g.n / 10 > 1 ? g.n / 10 : 1);
    g.outbounds = env_int("OUTBOUNDS", 5);
    g.channels = env_int("CHANNELS", g.n);
    g.threads = env_int("THREADS", 2);
    g.mtls = env_int("MTLS", 0) == 1;
    g.idle_s = env_int("IDLE_S", 10); /* run.sh samples from 1 s after IDLE_BEGIN */
    g.addrs = env_int("ADDRS", 1);
    g.timeout_s = env_int("TIMEOUT_S", 120);
    g.perf = getenv("PERF") && *getenv("PERF");
    g.storm_reconnect = getenv("STORM") && strcmp(getenv("STORM"), "reconnect") == 0;
    g.xds = getenv("XDS_ADDR");
    g.cp = getenv("CP_URL");
    if (!g.xds || !g.cp)
        die("XDS_ADDR and CP_URL are required");
    if (g.services < 1 || g.channels < 1 || g.channels > g.n || g.threads < 1 ||
        g.threads > MAX_THREADS || g.addrs < 1 || g.addrs > 254 || g.timeout_s < 1 || g.idle_s < 2)
        die("need SERVICES >= 1, 1 <= CHANNELS <= N, 1 <= THREADS <= %d, 1 <= ADDRS <= 254, "
            "IDLE_S >= 2",
            MAX_THREADS);
    g.want = (1u << T_CDS) | (1u << T_EDS) | (1u << T_LDS) | (g.mtls ? 1u << T_SDS : 0) |
             (env_int("RDS", 0) == 1 ? 1u << T_RDS : 0);
    g.protocol = getenv("PROTOCOL") && *getenv("PROTOCOL") ? getenv("PROTOCOL") : NULL;
    if (g.protocol &&
        strspn(g.protocol, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(g.protocol))
        die("PROTOCOL: want a protocol name such as http, got \"%s\"", g.protocol);

    /* One socket per channel, plus gRPC's own descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)g.channels + 256)
        die("%d channels need %d open files; ulimit -n is %llu", g.channels, g.channels + 256,
            (unsigned long long)rl.rlim_cur);
    FILE *pr = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int lo, hi;
    if (pr && fscanf(pr, "%d %d", &lo, &hi) == 2 && g.channels / g.addrs > (hi - lo) / 2)
        fprintf(stderr,
                "fleet: warning: %d connections per address and %d ephemeral ports; a "
                "reconnect storm may run out (set ADDRS)\n",
                g.channels / g.addrs, hi - lo + 1);
    if (pr)
        fclose(pr);

    const char *ca_path = getenv("XDS_CA");
    if (ca_path && *ca_path) {
        FILE *f = fopen(ca_path, "r");
        if (!f)
            die("XDS_CA %s: %s", ca_path, strerror(errno));
        g.ca = xcalloc_(1, 256 * 1024);
        size_t got = fread(g.ca, 1, 256 * 1024 - 1, f);
        fclose(f);
        if (!got)
            die("XDS_CA %s: empty", ca_path);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!getenv("ABSL_DEADLOCK_CHECK"))
        absl_deadlock_detection_off();
    grpc_init();
    g.creds = g.ca ? grpc_ssl_credentials_create(g.ca, NULL, NULL, NULL)
                   : grpc_insecure_credentials_create();
    g.ch = xcalloc_((size_t)g.channels, sizeof(*g.ch));
    g.px = xcalloc_((size_t)g.n, sizeof(*g.px));
    for (int i = 0; i < g.n; i++) {
        struct proxy *p = &g.px[i];
        p->i = i;
        p->cq = i % g.threads;
        pthread_mutex_init(&p->mu, NULL);
        p->t_start = (struct tag){TAG_START, p};
        p->t_recv = (struct tag){TAG_RECV, p};
        p->t_send = (struct tag){TAG_SEND, p};
        p->t_status = (struct tag){TAG_STATUS, p};
    }
    for (int k = 0; k < g.threads; k++) {
        g.cqs[k] = grpc_completion_queue_create_for_next(NULL);
        if (pthread_create(&g.tids[k], NULL, cq_main, g.cqs[k]) != 0)
            die("cannot start a completion-queue thread");
    }

    /* Dataplanes over the REST API (8 connections), then the mesh's mTLS. */
    int64_t t = now_ns();
    enum { PUTTERS = 8 };
    pthread_t put_tids[PUTTERS];
    struct put_range ranges[PUTTERS];
    for (int k = 0; k < PUTTERS; k++) {
        ranges[k] = (struct put_range){k, PUTTERS};
        if (pthread_create(&put_tids[k], NULL, create_worker, &ranges[k]) != 0)
            die("cannot start a REST thread");
    }
    for (int k = 0; k < PUTTERS; k++)
        pthread_join(put_tids[k], NULL);
    double create_s = (double)(now_ns() - t) / 1e9;
    if (g.mtls)
        put_or_die("/meshes/default",
                   "{\"type\":\"Mesh\",\"name\":\"default\",\"mtls\":{\"enabledBackend\":\"ca-1\","
                   "\"backends\":[{\"name\":\"ca-1\",\"type\":\"builtin\",\"conf\":{\"caCert\":"
                   "{\"keyType\":\"ecdsa\"}}}]}}");
    channels_create();

    /* Cold. */
    puts("COLD_BEGIN");
    sleep_ms(g.perf ? 2500 : 50); /* run.sh samples kuma-cp's CPU (and starts perf) */
    double c0 = cpu_ms();
    double cq[3], sq[3];
    double cold_ms = open_all(cq);
    double cold_cpu = cpu_ms() - c0;
    puts("COLD_END");

    /* Mesh-wide policy change. */
    sleep_ms(500); /* let the cold phase's ACKs drain */
    mark_all();
    puts("POLICY_BEGIN");
    sleep_ms(g.perf ? 2500 : 50);
    c0 = cpu_ms();
    int64_t t0 = now_ns();
    put_or_die("/meshes/default/meshtimeouts/mesh-timeout-all-default",
               "{\"type\":\"MeshTimeout\",\"mesh\":\"default\",\"name\":\"mesh-timeout-all-"
               "default\",\"spec\":{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":"
               "{\"kind\":\"Mesh\"},\"default\":{\"connectionTimeout\":\"7s\",\"idleTimeout\":"
               "\"1h\"}}]}}");
    int *all_ids = xcalloc_((size_t)g.n, sizeof(int));
    for (int i = 0; i < g.n; i++)
        all_ids[i] = i;
    struct subset everyone = {all_ids, g.n, T_CDS};
    if (wait_until(subset_changed, &everyone, "every proxy's new CDS") < 0)
        exit(1);
    double *lat = xcalloc_((size_t)g.n, sizeof(double));
    for (int i = 0; i < g.n; i++)
        lat[i] = (double)(atomic_load(&g.px[i].vtime[T_CDS]) - t0) / 1e6;
    double pol_max = 0;
    for (int i = 0; i < g.n; i++)
        pol_max = lat[i] > pol_max ? lat[i] : pol_max;
    double pol_p50 = pct(lat, g.n, 0.5), pol_p99 = pct(lat, g.n, 0.99);
    double pol_cpu = cpu_ms() - c0;
    puts("POLICY_END");

    /* Endpoint churn: dp-0 (svc-0) moves. */
    mark_all();
    int *callers = xcalloc_((size_t)g.n, sizeof(int));
    int nc = 0;
    for (int i = 0; i < g.n; i++)
        for (int k = 1; k <= g.outbounds; k++)
            if (svc_of_outbound(i, k) == 0) {
                callers[nc++] = i;
                break;
            }
    t0 = now_ns();
    char *moved = dp_json(0, "10.255.255.254");
    put_or_die("/meshes/default/dataplanes/dp-0", moved);
    free(moved);
    struct subset cs = {callers, nc, T_EDS};
    if (wait_until(subset_changed, &cs, "the callers' new EDS") < 0)
        exit(1);
    sleep_ms(500); /* settle: who else got one */
    int received = 0;
    for (int i = 0; i < g.n; i++)
        received += changed(&g.px[i], T_EDS);
    for (int k = 0; k < nc; k++)
        lat[k] = (double)(atomic_load(&g.px[callers[k]].vtime[T_EDS]) - t0) / 1e6;
    double churn_p99 = nc ? pct(lat, nc, 0.99) : 0;

    /* Idle: run.sh samples kuma-cp's CPU while we sleep. */
    puts("IDLE_BEGIN");
    c0 = cpu_ms();
    sleep_ms(g.idle_s * 1000);
    double idle_cpu = cpu_ms() - c0;
    puts("IDLE_END");

    /* Reconnect storm. */
    close_all();
    if (g.storm_reconnect) {
        channels_destroy();
        channels_create();
    }
    sleep_ms(200);
    c0 = cpu_ms();
    double storm_ms = open_all(sq);
    double storm_cpu = cpu_ms() - c0;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT {\"fleet\":\"c\",\"n\":%d,\"services\":%d,\"channels\":%d,\"threads\":%d,"
           "\"create_s\":%.3f,\"cold_ms\":%.1f,\"cold_p10_p50_p90_ms\":[%.0f,%.0f,%.0f],"
           "\"cold_client_cpu_ms\":%.0f,"
           "\"policy_p50_ms\":%.1f,\"policy_p99_ms\":%.1f,\"policy_max_ms\":%.1f,"
           "\"policy_client_cpu_ms\":%.0f,\"churn_callers\":%d,\"churn_received\":%d,"
           "\"churn_p99_ms\":%.1f,\"idle_client_cpu_ms\":%.0f,\"storm\":\"%s\",\"storm_ms\":%.1f,"
           "\"storm_p10_p50_p90_ms\":[%.0f,%.0f,%.0f],"
           "\"storm_client_cpu_ms\":%.0f,\"responses\":%ld,\"acks\":%ld,\"bad_responses\":%ld,"
           "\"stream_errors\":%ld,\"client_rss_mb\":%.0f}\n",
           g.n, g.services, g.channels, g.threads, create_s, cold_ms, cq[0], cq[1], cq[2], cold_cpu,
           pol_p50, pol_p99, pol_max, pol_cpu, nc, received, churn_p99, idle_cpu,
           g.storm_reconnect ? "reconnect" : "streams", storm_ms, sq[0], sq[1], sq[2], storm_cpu,
           atomic_load(&g.responses), atomic_load(&g.acks), atomic_load(&g.bad_responses),
           atomic_load(&g.stream_errors), (double)ru.ru_maxrss / 1024);

    /* Stop everything: streams, channels, queues and their threads. */
    close_all();
    channels_destroy();
    for (int k = 0; k < g.threads; k++) {
        grpc_completion_queue_shutdown(g.cqs[k]);
        pthread_join(g.tids[k], NULL);
        grpc_completion_queue_destroy(g.cqs[k]);
    }
    grpc_channel_credentials_release(g.creds);
    grpc_shutdown();
    curl_global_cleanup();
    for (int i = 0; i < g.n; i++)
        pthread_mutex_destroy(&g.px[i].mu);
    free(g.px);
    free(g.ch);
    free(g.ca);
    free(lat);
    free(callers);
    free(all_ids);
    return atomic_load(&g.stream_errors) || atomic_load(&g.bad_responses) ? 2 : 0;
}
