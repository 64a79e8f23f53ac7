/*
 * Simulated xDS fleet in C (bench/xds/run.sh drives it with FLEET=c): the
 * same scenario, phases and output as bench/xds/fleet.js, at a fraction of
 * its CPU, so that on a 2-core box the measured times reflect kuma-cp.
 *
 * One ADS stream per simulated dataplane, over CHANNELS HTTP/2 connections
 * (default N: one TLS connection per dataplane, as real proxies have; proxy
 * i uses connection i % CHANNELS). Each stream subscribes to CDS, EDS and
 * LDS (and SDS with MTLS=1) with node id "default.dp-<i>" (the Dataplane
 * itself is created over the REST API, as fleet.js does) and ACKs every
 * response at once with its version and nonce.
 *
 * Transport: gRPC by hand, as kuma-dp's ADS client does (src/dp/
 * xds_client.c): libnghttp2 client sessions over OpenSSL on non-blocking
 * sockets, gRPC message framing from src/core/grpcframe.c. An earlier
 * version used gRPC C core with one channel per dataplane; its per-channel
 * machinery cost the fleet more CPU than kuma-cp spent serving it (14.3 s
 * against 9.4 s in a 10,000-connection cold start on the same two cores),
 * so the benchmark measured the client as much as kuma-cp. The TLS setup is
 * what a proxy does: TLS 1.2+, ALPN h2, the server's certificate verified
 * against XDS_CA for XDS_ADDR's host (an IP address or a name; "localhost"
 * when ADDRS spreads connections over 127.0.0.x), no session resumption.
 * Certificates are decoded and verified through kuma-dp's legacy key-method
 * ENGINE (core/tlsfast.h): a quarter of the fleet's handshake CPU otherwise.
 *
 * Threads: the main thread runs the phases and the REST calls (libcurl);
 * THREADS event loops (default 2, epoll) own the connections, connection c
 * on loop c % THREADS, with everything on it (TLS, HTTP/2 session, its
 * proxies' streams). The main thread talks to a loop only by commands (a
 * bit set plus an eventfd): open every stream (connecting first where
 * needed), cancel every stream, close every connection, quit. What it reads
 * while streams run (per-type change counters and times, the counts of
 * complete and open proxies, the totals) is atomic. At most CONNECTING (256)
 * connections per loop are between connect() and the end of their TLS
 * handshake at a time, so that a cold start does not overflow kuma-cp's
 * listen backlog with SYNs (a dropped SYN costs a 1 s retransmit).
 *
 * What counts:
 *   an ACK      a request acknowledging a response, once its last byte has
 *               gone into an HTTP/2 DATA frame for the socket (what gRPC
 *               core's send completion meant before)
 *   complete    a proxy whose stream ACKed every subscribed type
 *   bad response a message that is not a DiscoveryResponse of a subscribed
 *               type with a version (kuma-dp would NACK it)
 *   stream error a stream that ended while the fleet did not end it: reset
 *               by kuma-cp, trailers (grpc-status), a non-200 or non-gRPC
 *               answer, a gRPC framing error, a refused stream after a
 *               GOAWAY, a connection that failed (connect, TLS handshake or
 *               certificate, EOF, an HTTP/2 protocol error) — one per proxy
 *               whose stream it took (or would have carried)
 * The first few of each are printed on stderr; the totals are in RESULT.
 *
 * Phases (as fleet.js):
 *   cold     every stream opens (connections are made in this phase); time
 *            until the last proxy has ACKed every type
 *   policy   a mesh-wide MeshTimeout: per-proxy delay from the PUT to its
 *            new CDS (p50/p99/max)
 *   churn    dp-0 moves: who received a new EDS (only the callers of svc-0
 *            must), and their delay
 *   idle     IDLE_S seconds with nothing changing (run.sh samples kuma-cp)
 *   storm    every stream cancelled (RST_STREAM CANCEL) and reopened at once
 *            (STORM=reconnect: the connections are closed too, so every TLS
 *            connection is made again)
 * Lines COLD_BEGIN/COLD_END, POLICY_BEGIN/POLICY_END, IDLE_BEGIN/IDLE_END
 * tell run.sh when to sample kuma-cp; the figures come as one line
 * "RESULT {json}" (fleet.js's keys, plus a few of this fleet's own).
 *
 * Two views of the cold start: the fleet's (cold_ms, cold_p10_p50_p90_ms:
 * from the phase's start, connections included, to each proxy's last
 * ACK) and kuma-cp's own (cold_cp_*: read from its DataplaneInsights right
 * after COLD_END, from the first stream it accepted to the last response it
 * sent, and per proxy from its stream's connectTime to its last response;
 * see cp_cold_view).
 *
 * Env: XDS_ADDR host:port, CP_URL, XDS_CA (PEM file; unset = plaintext
 * HTTP/2), N, SERVICES (N/10), OUTBOUNDS (5), CHANNELS (N), THREADS (2),
 * MTLS, IDLE_S (10), RDS (1: subscribe to RDS too, and wait for it),
 * PROTOCOL (a kuma.io/protocol tag on every inbound, e.g. http; default
 * none: TCP), ADDRS (1: with more, connection c connects to
 * 127.0.0.(1 + c % ADDRS), for when one address runs out of ephemeral
 * ports), STORM, TIMEOUT_S (120: no phase waits longer), CONNECTING (256),
 * PERF (longer pauses before the timed phases, for perf to attach).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/grpcframe.h"
#include "core/tlsfast.h"
#include "fleet_tls.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

#define ADS_METHOD                                                                                 \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define MAX_THREADS   16
#define MAX_MESSAGE   (64u << 20) /* largest response accepted, as the gRPC fleet's */
#define STREAM_WINDOW (1 << 20)   /* HTTP/2 flow-control windows we grant kuma-cp */
#define CONN_WINDOW   (16 << 20)
#define IO_CHUNK      16384 /* TLS reads; how much HTTP/2 output is gathered per write */
#define NOTE_LIMIT    5     /* messages printed per kind of error */

enum { T_CDS, T_EDS, T_LDS, T_RDS, T_SDS, NT };
static const char *const type_url[NT] = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
};

/* A framed request waiting to go into the stream's DATA. */
struct msg {
    struct msg *next;
    int type; /* the type an ACK acknowledges, -1 for a subscription */
    size_t len, off;
    uint8_t data[];
};

struct conn;

/* A simulated dataplane. Owned by its connection's loop thread, except the
 * atomics (read by the main thread) and mark[] (main thread only). */
struct proxy {
    int i;
    struct conn *c;
    int32_t sid;  /* HTTP/2 stream, 0 when none */
    int closing;  /* the fleet ends the stream (or it already failed): no error at its end */
    int deferred; /* the stream's body waits for a request (nghttp2 data deferred) */
    int http_status, grpc_status, headers_seen;
    char grpc_message[96];
    struct grpcf_deframer df;
    struct msg *qhead, *qtail;
    unsigned acked; /* types ACKed on this stream */
    int counted;    /* counted in `complete` */
    char version[NT][40];
    atomic_llong done_ns;   /* when it became complete */
    atomic_uint vcount[NT]; /* version changes seen */
    atomic_llong vtime[NT]; /* when the last one arrived (ns) */
    unsigned mark[NT];      /* main thread only */
};

enum conn_state { C_IDLE, C_QUEUED, C_TCP, C_TLS, C_UP };

/* One TCP (+TLS) connection carrying the streams of proxies c, c + CHANNELS, ... */
struct conn {
    int c;
    struct loop *l;
    enum conn_state st;
    int fd;
    SSL *ssl; /* NULL: plaintext */
    nghttp2_session *h2;
    uint32_t events;  /* registered with epoll */
    int want_streams; /* open the proxies' streams once up */
    int goaway;       /* kuma-cp sent GOAWAY */
    int closing;      /* the fleet closes it */
    uint8_t *out;     /* bytes for the socket that it has not taken yet */
    size_t out_len, out_cap;
};

enum { CMD_OPEN = 1, CMD_CANCEL = 2, CMD_DISCONNECT = 4, CMD_QUIT = 8 };

struct loop {
    int k, ep, efd;
    pthread_t tid;
    atomic_uint cmds;
    struct conn **conns; /* this loop's connections */
    int nconns;
    struct conn **queue; /* waiting to connect (ring) */
    int qhead, qlen;
    int connecting; /* between connect() and the end of the TLS handshake */
    uint8_t rbuf[IO_CHUNK];
};

static struct {
    int n, services, outbounds, channels, threads, mtls, idle_s, addrs, timeout_s, perf;
    int storm_reconnect, connecting_max;
    const char *protocol; /* kuma.io/protocol of every inbound, NULL = none (TCP) */
    unsigned want;
    const char *xds, *cp;
    char host[256], authority[300];
    struct sockaddr_storage sa;
    socklen_t salen;
    SSL_CTX *tls; /* NULL: plaintext */
    nghttp2_session_callbacks *cbs;
    nghttp2_option *h2opt;
    struct conn *conns;
    struct loop loops[MAX_THREADS];
    struct proxy *px;
    atomic_int complete; /* proxies with every type ACKed on their stream */
    atomic_int open;     /* proxies with a stream */
    atomic_int live;     /* connections not idle */
    atomic_long responses, acks, bad_responses, stream_errors, conn_errors, goaways;
    atomic_int notes[4];
} g;

enum { NOTE_STREAM, NOTE_CONN, NOTE_BAD, NOTE_GOAWAY };

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

/* Prints the first NOTE_LIMIT messages of a kind; says so once after that. */
__attribute__((format(printf, 2, 3))) static void note(int kind, const char *fmt, ...)
{
    int k = atomic_fetch_add(&g.notes[kind], 1);
    if (k > NOTE_LIMIT)
        return;
    if (k == NOTE_LIMIT) {
        fputs("fleet: (further messages of this kind not printed; see RESULT)\n", stderr);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("fleet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *xcalloc_(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        die("out of memory");
    return p;
}

static int64_t mono_ns(void)
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

static double pct(double *v, int n, double q);

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

/* ---- kuma-cp's view of the cold start ------------------------------------------------------ */

struct body {
    char *p;
    size_t len, cap;
};

static size_t body_sink(char *ptr, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t len = size * n;
    if (b->len + len + 1 > 64u << 20)
        return 0; /* a runaway answer: curl fails the transfer */
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, ptr, len);
    b->len += len;
    b->p[b->len] = 0;
    return len;
}

/* RFC 3339 (kuma-cp writes UTC, "Z", up to nanoseconds) → ns since the epoch; -1 if not. */
static int64_t rfc3339_ns(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t ns = (int64_t)timegm(&tm) * 1000000000;
    const char *f = s + used;
    if (*f == '.') {
        int64_t scale = 100000000;
        for (f++; *f >= '0' && *f <= '9'; f++, scale /= 10)
            ns += (*f - '0') * scale;
    }
    return *f == 'Z' ? ns : -1;
}

/* kuma-cp's own record of the cold start, from its DataplaneInsights (GET
 * /meshes/default/dataplanes/_overview, pages of 1,000): the time from the
 * first stream it accepted (min connectTime) to the last response it sent
 * (max status.lastUpdateTime), and per proxy from its stream's connectTime to
 * its last response (p50/p99). Times are kuma-cp's clock, so they exclude
 * the fleet's side (TCP/TLS connect before the stream, the ACKs after).
 * Called right after COLD_END, before anything else changes; returns 0 and
 * fills out[0..2], or -1 (printed) when kuma-cp's answer does not hold every
 * proxy with both times. */
static int cp_cold_view(double out[3])
{
    CURL *c = curl_easy_init();
    if (!c)
        die("curl_easy_init failed");
    int64_t first = INT64_MAX, last = 0;
    double *per = xcalloc_((size_t)g.n, sizeof(double));
    int got = 0, rc = -1;
    for (int off = 0; off < g.n; off += 1000) {
        char url[512];
        snprintf(url, sizeof(url), "%s/meshes/default/dataplanes/_overview?size=1000&offset=%d",
                 g.cp, off);
        struct body b = {0};
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_sink);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        long code = 0;
        CURLcode cr = curl_easy_perform(c);
        if (cr == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        json_error_t je;
        json_t *doc = code == 200 && b.p ? json_loads(b.p, 0, &je) : NULL;
        free(b.p);
        json_t *items = json_object_get(doc, "items");
        if (!json_is_array(items)) {
            fprintf(stderr, "fleet: GET %s: %s\n", url,
                    cr != CURLE_OK ? curl_easy_strerror(cr) : "no items");
            json_decref(doc);
            goto out;
        }
        size_t k;
        json_t *it;
        json_array_foreach(items, k, it)
        {
            json_t *sub = json_array_get(
                json_object_get(json_object_get(it, "dataplaneInsight"), "subscriptions"), 0);
            int64_t t0 = rfc3339_ns(json_string_value(json_object_get(sub, "connectTime")));
            int64_t t1 = rfc3339_ns(json_string_value(
                json_object_get(json_object_get(sub, "status"), "lastUpdateTime")));
            if (t0 < 0 || t1 < 0 || got >= g.n)
                continue;
            first = t0 < first ? t0 : first;
            last = t1 > last ? t1 : last;
            per[got++] = (double)(t1 - t0) / 1e6;
        }
        json_decref(doc);
    }
    if (got != g.n) {
        fprintf(stderr,
                "fleet: kuma-cp's insights hold %d of %d proxies with a stream and a "
                "response\n",
                got, g.n);
        goto out;
    }
    out[0] = (double)(last - first) / 1e6;
    out[1] = pct(per, got, 0.5);
    out[2] = pct(per, got, 0.99);
    rc = 0;
out:
    free(per);
    curl_easy_cleanup(c);
    return rc;
}

/* ---- streams (a loop thread; the proxy's connection is up) -------------------------------- */

static int type_of(const char *url)
{
    for (int t = 0; t < NT; t++)
        if (url && strcmp(url, type_url[t]) == 0)
            return t;
    return -1;
}

static void enqueue(struct proxy *p, Envoy__Service__Discovery__V3__DiscoveryRequest *req, int type)
{
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(req);
    if (len > UINT32_MAX - GRPCF_PREFIX)
        die("dp-%d: request too large", p->i);
    struct msg *m = xcalloc_(1, sizeof(*m) + GRPCF_PREFIX + len);
    grpcf_prefix(m->data, (uint32_t)len);
    envoy__service__discovery__v3__discovery_request__pack(req, m->data + GRPCF_PREFIX);
    m->len = GRPCF_PREFIX + len;
    m->type = type;
    if (p->qtail)
        p->qtail->next = m;
    else
        p->qhead = m;
    p->qtail = m;
    if (p->sid > 0 && p->deferred) {
        p->deferred = 0;
        nghttp2_session_resume_data(p->c->h2, p->sid);
    }
}

static void queue_free(struct proxy *p)
{
    for (struct msg *m = p->qhead, *n; m; m = n) {
        n = m->next;
        free(m);
    }
    p->qhead = p->qtail = NULL;
}

/* The stream of p is over (nghttp2 closed it, or its connection went). */
static void proxy_end(struct proxy *p, const char *why)
{
    if (!p->closing) {
        atomic_fetch_add(&g.stream_errors, 1);
        note(NOTE_STREAM, "dp-%d: stream ended: %s", p->i, why);
    }
    queue_free(p);
    grpcf_deframer_free(&p->df);
    p->sid = 0;
    p->deferred = 0;
    if (p->counted)
        atomic_fetch_sub(&g.complete, 1);
    p->counted = 0;
    atomic_fetch_sub(&g.open, 1);
}

/* Counts a stream error now and resets the stream (its end is then quiet). */
static void proxy_fail(struct proxy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void proxy_fail(struct proxy *p, const char *fmt, ...)
{
    if (p->closing)
        return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    atomic_fetch_add(&g.stream_errors, 1);
    note(NOTE_STREAM, "dp-%d: stream failed: %s", p->i, why);
    p->closing = 1;
    nghttp2_submit_rst_stream(p->c->h2, NGHTTP2_FLAG_NONE, p->sid, NGHTTP2_CANCEL);
}

/* A response: note a version change, ACK it. */
static int on_message(void *ctx, const uint8_t *data, size_t len, struct err *e)
{
    struct proxy *p = ctx;
    (void)e;
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);
    int t = r ? type_of(r->type_url) : -1;
    if (t < 0 || !(g.want & (1u << t)) || !r->version_info || !*r->version_info ||
        strlen(r->version_info) >= sizeof(p->version[0])) {
        atomic_fetch_add(&g.bad_responses, 1);
        note(NOTE_BAD, "dp-%d: unexpected response (%zu bytes, type %s)", p->i, len,
             r && r->type_url ? r->type_url : "?");
        if (r)
            envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
        return 0;
    }
    atomic_fetch_add(&g.responses, 1);
    if (strcmp(p->version[t], r->version_info) != 0) {
        strcpy(p->version[t], r->version_info);
        atomic_store(&p->vtime[t], mono_ns());
        atomic_fetch_add(&p->vcount[t], 1); /* after vtime: the reader checks vcount first */
    }
    Envoy__Service__Discovery__V3__DiscoveryRequest ack =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    ack.type_url = r->type_url;
    ack.version_info = r->version_info;
    ack.response_nonce = r->nonce;
    enqueue(p, &ack, t);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    return 0;
}

/* An ACK is sent once its last byte is in a DATA frame. */
static void acked(struct proxy *p, int t)
{
    atomic_fetch_add(&g.acks, 1);
    p->acked |= 1u << t;
    if (!p->counted && (p->acked & g.want) == g.want) {
        p->counted = 1;
        atomic_store(&p->done_ns, mono_ns());
        atomic_fetch_add(&g.complete, 1);
    }
}

/* The stream's body: queued requests, never an end (an ADS client does not
 * half-close its stream). */
static ssize_t read_body(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct proxy *p = src->ptr;
    size_t n = 0;
    (void)h2, (void)sid, (void)flags, (void)ud;
    while (p->qhead && n < length) {
        struct msg *m = p->qhead;
        size_t k = m->len - m->off;
        if (k > length - n)
            k = length - n;
        memcpy(buf + n, m->data + m->off, k);
        m->off += k;
        n += k;
        if (m->off == m->len) {
            p->qhead = m->next;
            if (!p->qhead)
                p->qtail = NULL;
            if (m->type >= 0)
                acked(p, m->type);
            free(m);
        }
    }
    if (n == 0) {
        p->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void proxy_open(struct proxy *p)
{
    struct conn *c = p->c;
    char id[64];
    snprintf(id, sizeof(id), "default.dp-%d", p->i);
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    node.id = id;
    node.cluster = "bench";
    node.user_agent_name = "envoy";
    int first = 1;
    p->closing = p->deferred = 0;
    p->acked = 0;
    p->counted = 0;
    p->http_status = p->grpc_status = -1;
    p->headers_seen = 0;
    p->grpc_message[0] = 0;
    grpcf_deframer_init(&p->df, MAX_MESSAGE);
    for (int t = 0; t < NT; t++) {
        if (!(g.want & (1u << t)))
            continue;
        Envoy__Service__Discovery__V3__DiscoveryRequest req =
            ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
        req.type_url = (char *)type_url[t];
        if (first)
            req.node = &node;
        first = 0;
        enqueue(p, &req, -1);
    }
#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME     \
    }
    const nghttp2_nv hdrs[] = {
        NV(":method", "POST"),
        NV(":scheme", g.tls ? "https" : "http"),
        NV(":path", ADS_METHOD),
        NV(":authority", g.authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("user-agent", "bench-xds-fleet"),
    };
#undef NV
    nghttp2_data_provider body = {.source.ptr = p, .read_callback = read_body};
    atomic_fetch_add(&g.open, 1);
    int32_t sid =
        nghttp2_submit_request(c->h2, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &body, p);
    if (sid < 0) {
        p->sid = 0;
        proxy_end(p, nghttp2_strerror(sid));
        return;
    }
    p->sid = sid;
}

/* ---- HTTP/2 callbacks --------------------------------------------------------------------- */

static struct proxy *stream_proxy(nghttp2_session *h2, int32_t sid)
{
    struct proxy *p = nghttp2_session_get_stream_user_data(h2, sid);
    return p && p->sid == sid ? p : NULL;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags, (void)ud;
    struct proxy *p = f->hd.type == NGHTTP2_HEADERS ? stream_proxy(h2, f->hd.stream_id) : NULL;
    if (!p)
        return 0;
#define IS(s) (namelen == sizeof(s) - 1 && memcmp(name, s, namelen) == 0)
    if (IS(":status")) {
        p->http_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            p->http_status = p->http_status * 10 + (value[i] - '0');
        if (p->http_status != 200)
            proxy_fail(p, "HTTP status %d", p->http_status);
    } else if (IS("content-type") && !p->headers_seen &&
               !(valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0)) {
        proxy_fail(p, "content-type %.*s", (int)(valuelen > 64 ? 64 : valuelen),
                   (const char *)value);
    } else if (IS("grpc-status")) {
        p->grpc_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            p->grpc_status = p->grpc_status * 10 + (value[i] - '0');
    } else if (IS("grpc-message")) {
        snprintf(p->grpc_message, sizeof(p->grpc_message), "%.*s",
                 (int)(valuelen > 90 ? 90 : valuelen), (const char *)value);
    } else if (IS("grpc-encoding") && !(valuelen == 8 && memcmp(value, "identity", 8) == 0)) {
        proxy_fail(p, "grpc-encoding %.*s (not negotiated)", (int)(valuelen > 64 ? 64 : valuelen),
                   (const char *)value);
    }
#undef IS
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct conn *c = ud;
    if (f->hd.type == NGHTTP2_HEADERS) {
        struct proxy *p = stream_proxy(h2, f->hd.stream_id);
        if (p)
            p->headers_seen = 1;
    } else if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        /* Streams beyond kuma-cp's limit wait in nghttp2 for a free slot,
         * which an ADS stream never gives back: say so once. */
        uint32_t max =
            nghttp2_session_get_remote_settings(h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        uint32_t per_conn = (uint32_t)((g.n + g.channels - 1) / g.channels);
        static atomic_int warned;
        if (max < per_conn && !atomic_exchange(&warned, 1))
            fprintf(stderr,
                    "fleet: warning: kuma-cp allows %u concurrent streams per connection and "
                    "CHANNELS=%d puts up to %u on one: the others wait (raise CHANNELS)\n",
                    max, g.channels, per_conn);
    } else if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = 1;
        atomic_fetch_add(&g.goaways, 1);
        note(NOTE_GOAWAY, "connection %d: GOAWAY from kuma-cp (%s, last stream %d)", c->c,
             nghttp2_http2_strerror(f->goaway.error_code), f->goaway.last_stream_id);
    }
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags, (void)ud;
    struct proxy *p = stream_proxy(h2, sid);
    if (!p || p->closing)
        return 0;
    struct err e;
    if (grpcf_deframer_feed(&p->df, data, len, on_message, p, &e) < 0) {
        proxy_fail(p, "%s", e.msg);
        return 0;
    }
    /* A response split over reads left its buffer (up to 64 KB) behind: give
     * it back between messages, 10,000 idle streams would keep them all. */
    if (p->df.buf && !grpcf_deframer_partial(&p->df)) {
        grpcf_deframer_free(&p->df);
        grpcf_deframer_init(&p->df, MAX_MESSAGE);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t sid, uint32_t code, void *ud)
{
    (void)ud;
    struct proxy *p = stream_proxy(h2, sid);
    if (!p)
        return 0;
    char why[192];
    if (p->grpc_status >= 0)
        snprintf(why, sizeof(why), "grpc-status %d: %s", p->grpc_status, p->grpc_message);
    else
        snprintf(why, sizeof(why), "HTTP/2 stream closed without a status (%s, HTTP status %d)",
                 nghttp2_http2_strerror(code), p->http_status);
    proxy_end(p, why);
    return 0;
}

/* ---- connections (a loop thread) ---------------------------------------------------------- */

static void conn_events(struct conn *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->l->ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->events = ev;
}

/* Ends connection c: every stream on it ends (an error unless the fleet
 * closes it), and so does every stream it was to carry if it never came up.
 * why NULL: the fleet closes it. */
static void conn_close(struct conn *c, const char *why)
{
    if (c->st == C_IDLE)
        return;
    if (why) {
        atomic_fetch_add(&g.conn_errors, 1);
        note(NOTE_CONN, "connection %d: %s", c->c, why);
    }
    if (c->st == C_TCP || c->st == C_TLS)
        c->l->connecting--;
    for (int i = c->c; i < g.n; i += g.channels) {
        struct proxy *p = &g.px[i];
        if (p->sid) {
            if (!why)
                p->closing = 1;
            proxy_end(p, why ? why : "closed");
        } else if (why && c->want_streams && c->st != C_UP) {
            atomic_fetch_add(&g.stream_errors, 1);
            note(NOTE_STREAM, "dp-%d: no stream: connection %d: %s", i, c->c, why);
        }
    }
    if (c->h2)
        nghttp2_session_del(c->h2);
    c->h2 = NULL;
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd); /* leaves the epoll set with it */
    c->fd = -1;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    c->events = 0;
    c->goaway = 0;
    c->closing = 0;
    atomic_fetch_sub(&g.live, 1);
    c->st = C_IDLE;
}

static void conn_close_ssl_error(struct conn *c, const char *what, int rc)
{
    char why[512];
    int se = SSL_get_error(c->ssl, rc);
    unsigned long e = ERR_get_error();
    if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK)
            snprintf(why, sizeof(why), "%s: %s (certificate: %s)", what, buf,
                     X509_verify_cert_error_string(vr));
        else
            snprintf(why, sizeof(why), "%s: %s", what, buf);
    } else if (se == SSL_ERROR_ZERO_RETURN || (se == SSL_ERROR_SYSCALL && errno == 0)) {
        snprintf(why, sizeof(why), "%s: kuma-cp closed the connection", what);
    } else if (se == SSL_ERROR_SYSCALL) {
        snprintf(why, sizeof(why), "%s: %s", what, strerror(errno));
    } else {
        snprintf(why, sizeof(why), "%s: TLS error %d", what, se);
    }
    ERR_clear_error();
    conn_close(c, why);
}

/* Writes what nghttp2 has for the socket, gathered into TLS records of up to
 * IO_CHUNK bytes; what the socket does not take waits in c->out for
 * EPOLLOUT. Returns -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
    for (;;) {
        while (c->out_len < IO_CHUNK) {
            const uint8_t *d;
            ssize_t k = nghttp2_session_mem_send(c->h2, &d);
            if (k < 0) {
                conn_close(c, nghttp2_strerror((int)k));
                return -1;
            }
            if (k == 0)
                break;
            if (c->out_len + (size_t)k > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : 4096;
                while (cap < c->out_len + (size_t)k)
                    cap *= 2;
                uint8_t *o = realloc(c->out, cap);
                if (!o)
                    die("out of memory");
                c->out = o;
                c->out_cap = cap;
            }
            memcpy(c->out + c->out_len, d, (size_t)k);
            c->out_len += (size_t)k;
        }
        if (c->out_len == 0)
            break;
        ssize_t w;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_write(c->ssl, c->out, c->out_len > INT32_MAX ? INT32_MAX : (int)c->out_len);
            if (r <= 0) {
                int se = SSL_get_error(c->ssl, r);
                if (se == SSL_ERROR_WANT_WRITE || se == SSL_ERROR_WANT_READ) {
                    conn_events(c, EPOLLIN | EPOLLOUT);
                    return 0;
                }
                conn_close_ssl_error(c, "TLS write", r);
                return -1;
            }
            w = r;
        } else {
            w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    conn_events(c, EPOLLIN | EPOLLOUT);
                    return 0;
                }
                conn_close(c, strerror(errno));
                return -1;
            }
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
        if (c->out_len) {
            conn_events(c, EPOLLIN | EPOLLOUT);
            return 0;
        }
    }
    /* Nothing waits: give the buffer back (10,000 idle connections). */
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
    conn_events(c, EPOLLIN);
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
        conn_close(c, c->closing  ? NULL
                      : c->goaway ? "kuma-cp ended the connection (GOAWAY)"
                                  : "HTTP/2 session over");
        return -1;
    }
    return 0;
}

static void conn_open_streams(struct conn *c)
{
    for (int i = c->c; i < g.n; i += g.channels)
        if (!g.px[i].sid)
            proxy_open(&g.px[i]);
}

/* TCP (and TLS) are up: start HTTP/2. */
static void conn_up(struct conn *c)
{
    if (c->ssl) {
        const unsigned char *alpn = NULL;
        unsigned alen = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
        if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
            conn_close(c, "kuma-cp did not select ALPN h2");
            return;
        }
    }
    c->l->connecting--;
    c->st = C_UP;
    if (nghttp2_session_client_new2(&c->h2, g.cbs, c, g.h2opt) != 0)
        die("nghttp2_session_client_new2 failed");
    nghttp2_settings_entry s[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, s, 2);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    if (c->want_streams)
        conn_open_streams(c);
    conn_flush(c);
}

static void conn_handshake(struct conn *c)
{
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        conn_up(c);
        return;
    }
    int se = SSL_get_error(c->ssl, r);
    if (se == SSL_ERROR_WANT_READ)
        conn_events(c, EPOLLIN);
    else if (se == SSL_ERROR_WANT_WRITE)
        conn_events(c, EPOLLOUT);
    else
        conn_close_ssl_error(c, "TLS handshake", r);
}

/* Starts connecting c (C_QUEUED → C_TCP). */
static void conn_connect(struct conn *c)
{
    struct sockaddr_storage sa = g.sa;
    if (g.addrs > 1)
        ((struct sockaddr_in *)&sa)->sin_addr.s_addr =
            htonl(0x7f000001u + (uint32_t)(c->c % g.addrs));
    c->st = C_TCP;
    c->l->connecting++;
    c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_close(c, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, g.salen) < 0 && errno != EINPROGRESS) {
        char why[300];
        snprintf(why, sizeof(why), "connect %s: %s", g.xds, strerror(errno));
        conn_close(c, why);
        return;
    }
    c->events = EPOLLOUT;
    struct epoll_event e = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(c->l->ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void conn_tcp_ready(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        char why[300];
        snprintf(why, sizeof(why), "connect %s: %s", g.xds, strerror(err));
        conn_close(c, why);
        return;
    }
    if (!g.tls) {
        conn_up(c);
        return;
    }
    c->ssl = SSL_new(g.tls);
    if (!c->ssl)
        die("SSL_new failed");
    SSL_set_fd(c->ssl, c->fd);
    if (g.addrs == 1 && !strchr(g.host, ':') && inet_addr(g.host) == INADDR_NONE)
        SSL_set_tlsext_host_name(c->ssl, g.host);
    c->st = C_TLS;
    conn_handshake(c);
}

static void conn_readable(struct conn *c)
{
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, c->l->rbuf, sizeof(c->l->rbuf));
            if (r <= 0) {
                int se = SSL_get_error(c->ssl, r);
                if (se == SSL_ERROR_WANT_READ)
                    break;
                if (se == SSL_ERROR_WANT_WRITE) {
                    conn_events(c, EPOLLIN | EPOLLOUT);
                    break;
                }
                conn_close_ssl_error(c, "TLS read", r);
                return;
            }
            n = r;
        } else {
            n = recv(c->fd, c->l->rbuf, sizeof(c->l->rbuf), 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (n <= 0) {
                conn_close(c, n == 0 ? "kuma-cp closed the connection" : strerror(errno));
                return;
            }
        }
        ssize_t k = nghttp2_session_mem_recv(c->h2, c->l->rbuf, (size_t)n);
        if (k < 0) {
            char why[128];
            snprintf(why, sizeof(why), "HTTP/2: %s", nghttp2_strerror((int)k));
            conn_close(c, why);
            return;
        }
    }
    conn_flush(c);
}

static void conn_event(struct conn *c, uint32_t ev)
{
    switch (c->st) {
    case C_TCP:
        conn_tcp_ready(c);
        break;
    case C_TLS:
        conn_handshake(c);
        /* Read-ahead may hold kuma-cp's first bytes already. */
        if (c->st == C_UP && c->ssl && SSL_has_pending(c->ssl))
            conn_readable(c);
        break;
    case C_UP:
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
            conn_readable(c);
        else
            conn_flush(c);
        break;
    default:
        break;
    }
}

/* ---- event loops -------------------------------------------------------------------------- */

static void loop_command(struct loop *l, unsigned cmds)
{
    if (cmds & CMD_CANCEL)
        for (int k = 0; k < l->nconns; k++) {
            struct conn *c = l->conns[k];
            c->want_streams = 0;
            if (c->st != C_UP)
                continue;
            for (int i = c->c; i < g.n; i += g.channels) {
                struct proxy *p = &g.px[i];
                if (p->sid && !p->closing) {
                    p->closing = 1;
                    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, p->sid, NGHTTP2_CANCEL);
                }
            }
            conn_flush(c);
        }
    if (cmds & (CMD_DISCONNECT | CMD_QUIT)) {
        l->qlen = 0;
        for (int k = 0; k < l->nconns; k++) {
            struct conn *c = l->conns[k];
            c->want_streams = 0;
            if (c->st == C_UP) {
                c->closing = 1;
                nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
                if (conn_flush(c) < 0)
                    continue;
            }
            conn_close(c, NULL);
        }
    }
    if (cmds & CMD_OPEN)
        for (int k = 0; k < l->nconns; k++) {
            struct conn *c = l->conns[k];
            c->want_streams = 1;
            if (c->st == C_UP) {
                conn_open_streams(c);
                conn_flush(c);
            } else if (c->st == C_IDLE) {
                c->st = C_QUEUED;
                l->queue[(l->qhead + l->qlen++) % l->nconns] = c;
                atomic_fetch_add(&g.live, 1);
            }
        }
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    struct epoll_event ev[256];
    for (;;) {
        while (l->qlen && l->connecting < g.connecting_max) {
            struct conn *c = l->queue[l->qhead];
            l->qhead = (l->qhead + 1) % l->nconns;
            l->qlen--;
            if (c->st == C_QUEUED)
                conn_connect(c);
        }
        int n = epoll_wait(l->ep, ev, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < n; k++) {
            if (ev[k].data.ptr == NULL) {
                uint64_t v;
                if (read(l->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    die("eventfd: %s", strerror(errno));
                unsigned cmds = atomic_exchange(&l->cmds, 0);
                loop_command(l, cmds);
                if (cmds & CMD_QUIT)
                    return NULL;
                continue;
            }
            struct conn *c = ev[k].data.ptr;
            if (c->fd >= 0)
                conn_event(c, ev[k].events);
        }
    }
}

/* Sends cmd to every loop. */
static void post(unsigned cmd)
{
    for (int k = 0; k < g.threads; k++) {
        atomic_fetch_or(&g.loops[k].cmds, cmd);
        uint64_t one = 1;
        if (write(g.loops[k].efd, &one, sizeof(one)) < 0)
            die("eventfd: %s", strerror(errno));
    }
}

/* XDS_ADDR → g.sa, g.host, g.authority; XDS_CA → g.tls. */
static void transport_init(void)
{
    const char *colon = strrchr(g.xds, ':');
    if (!colon || colon == g.xds || !colon[1])
        die("XDS_ADDR: want host:port, got \"%s\"", g.xds);
    size_t hl = (size_t)(colon - g.xds);
    if (g.xds[0] == '[' && colon[-1] == ']') /* [v6]:port */
        snprintf(g.host, sizeof(g.host), "%.*s", (int)(hl - 2), g.xds + 1);
    else
        snprintf(g.host, sizeof(g.host), "%.*s", (int)hl, g.xds);
    snprintf(g.authority, sizeof(g.authority), "%s", g.xds);
    int loopback = strcmp(g.host, "127.0.0.1") == 0;
    if (g.addrs > 1 && !loopback)
        die("ADDRS > 1 needs XDS_ADDR 127.0.0.1:<port>");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(g.host, colon + 1, &hints, &ai);
    if (rc != 0)
        die("XDS_ADDR %s: %s", g.xds, gai_strerror(rc));
    memcpy(&g.sa, ai->ai_addr, ai->ai_addrlen);
    g.salen = ai->ai_addrlen;
    freeaddrinfo(ai);

    const char *ca = getenv("XDS_CA");
    if (ca && *ca) {
        /* kuma-dp's legacy key methods (core/tlsfast.h), for RSA too: the
         * fleet parses kuma-cp's certificate on every handshake and never
         * generates keys (TLS 1.3's key share is X25519, not affected). */
        tls_fast_pkeys_enable(TLS_FAST_EC | TLS_FAST_RSA, "FLEET_NO_LEGACY_PKEY");
        /* kuma-cp's certificate names localhost and its interfaces' addresses,
         * not 127.0.0.2 and up. */
        char why[512];
        if (!(g.tls =
                  fleet_tls_client_ctx(ca, g.addrs > 1 ? "localhost" : g.host, why, sizeof(why))))
            die("%s", why);
    }

    if (nghttp2_session_callbacks_new(&g.cbs) != 0 || nghttp2_option_new(&g.h2opt) != 0)
        die("out of memory");
    nghttp2_session_callbacks_set_on_header_callback(g.cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(g.cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g.cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(g.cbs, on_stream_close);

    g.conns = xcalloc_((size_t)g.channels, sizeof(*g.conns));
    for (int k = 0; k < g.threads; k++) {
        struct loop *l = &g.loops[k];
        l->k = k;
        l->nconns = (g.channels - k + g.threads - 1) / g.threads;
        l->conns = xcalloc_((size_t)l->nconns, sizeof(*l->conns));
        l->queue = xcalloc_((size_t)l->nconns, sizeof(*l->queue));
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (l->ep < 0 || l->efd < 0)
            die("epoll/eventfd: %s", strerror(errno));
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &e) < 0)
            die("epoll_ctl: %s", strerror(errno));
    }
    for (int c = 0; c < g.channels; c++) {
        struct conn *cn = &g.conns[c];
        struct loop *l = &g.loops[c % g.threads];
        cn->c = c;
        cn->l = l;
        cn->fd = -1;
        l->conns[c / g.threads] = cn;
    }
    for (int i = 0; i < g.n; i++) {
        g.px[i].i = i;
        g.px[i].c = &g.conns[i % g.channels];
    }
    for (int k = 0; k < g.threads; k++)
        if (pthread_create(&g.loops[k].tid, NULL, loop_main, &g.loops[k]) != 0)
            die("cannot start an event loop thread");
}

static void transport_free(void)
{
    post(CMD_QUIT);
    for (int k = 0; k < g.threads; k++) {
        struct loop *l = &g.loops[k];
        pthread_join(l->tid, NULL);
        close(l->ep);
        close(l->efd);
        free(l->conns);
        free(l->queue);
    }
    free(g.conns);
    nghttp2_session_callbacks_del(g.cbs);
    nghttp2_option_del(g.h2opt);
    if (g.tls)
        SSL_CTX_free(g.tls);
}

/* ---- phases ------------------------------------------------------------------------------- */

static int wait_until(int (*pred)(void *), void *arg, const char *what)
{
    int64_t deadline = mono_ns() + (int64_t)g.timeout_s * 1000000000;
    while (!pred(arg)) {
        if (mono_ns() > deadline) {
            fprintf(stderr,
                    "fleet: timed out after %d s waiting for %s (complete %d, open %d of %d, "
                    "connections %d of %d, responses %ld, stream errors %ld, connection "
                    "errors %ld)\n",
                    g.timeout_s, what, atomic_load(&g.complete), atomic_load(&g.open), g.n,
                    atomic_load(&g.live), g.channels, atomic_load(&g.responses),
                    atomic_load(&g.stream_errors), atomic_load(&g.conn_errors));
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

static int none_live(void *arg)
{
    (void)arg;
    return atomic_load(&g.live) == 0;
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
    int64_t t0 = mono_ns();
    post(CMD_OPEN);
    if (wait_until(all_complete, NULL, "every proxy to ACK every type") < 0)
        exit(1);
    double total = (double)(mono_ns() - t0) / 1e6;
    double *v = xcalloc_((size_t)g.n, sizeof(double));
    for (int i = 0; i < g.n; i++)
        v[i] = (double)(atomic_load(&g.px[i].done_ns) - t0) / 1e6;
    q[0] = pct(v, g.n, 0.1);
    q[1] = pct(v, g.n, 0.5);
    q[2] = pct(v, g.n, 0.9);
    free(v);
    return total;
}

/* Cancels every stream. */
static void close_all(void)
{
    post(CMD_CANCEL);
    if (wait_until(none_open, NULL, "every stream to end") < 0)
        exit(1);
}

/* Closes every connection. */
static void disconnect_all(void)
{
    post(CMD_DISCONNECT);
    if (wait_until(none_live, NULL, "every connection to close") < 0)
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
    g.connecting_max = env_int("CONNECTING", 256);
    g.xds = getenv("XDS_ADDR");
    g.cp = getenv("CP_URL");
    if (!g.xds || !g.cp)
        die("XDS_ADDR and CP_URL are required");
    if (g.services < 1 || g.channels < 1 || g.channels > g.n || g.threads < 1 ||
        g.threads > MAX_THREADS || g.addrs < 1 || g.addrs > 254 || g.timeout_s < 1 ||
        g.idle_s < 2 || g.connecting_max < 1)
        die("need SERVICES >= 1, 1 <= CHANNELS <= N, 1 <= THREADS <= %d, 1 <= ADDRS <= 254, "
            "IDLE_S >= 2, CONNECTING >= 1",
            MAX_THREADS);
    g.want = (1u << T_CDS) | (1u << T_EDS) | (1u << T_LDS) | (g.mtls ? 1u << T_SDS : 0) |
             (env_int("RDS", 0) == 1 ? 1u << T_RDS : 0);
    g.protocol = getenv("PROTOCOL") && *getenv("PROTOCOL") ? getenv("PROTOCOL") : NULL;
    if (g.protocol &&
        strspn(g.protocol, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(g.protocol))
        die("PROTOCOL: want a protocol name such as http, got \"%s\"", g.protocol);

    /* One socket per connection. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)g.channels + 256)
        die("%d connections need %d open files; ulimit -n is %llu", g.channels, g.channels + 256,
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

    signal(SIGPIPE, SIG_IGN); /* a TLS write to a closed socket is an error, not a signal */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g.px = xcalloc_((size_t)g.n, sizeof(*g.px));
    transport_init();

    /* Dataplanes over the REST API (8 connections), then the mesh's mTLS. */
    int64_t t = mono_ns();
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
    double create_s = (double)(mono_ns() - t) / 1e9;
    if (g.mtls)
        put_or_die("/meshes/default",
                   "{\"type\":\"Mesh\",\"name\":\"default\",\"mtls\":{\"enabledBackend\":\"ca-1\","
                   "\"backends\":[{\"name\":\"ca-1\",\"type\":\"builtin\",\"conf\":{\"caCert\":"
                   "{\"keyType\":\"ecdsa\"}}}]}}");
    /* Cold. */
    puts("COLD_BEGIN");
    sleep_ms(g.perf ? 2500 : 50); /* run.sh samples kuma-cp's CPU (and starts perf) */
    double c0 = cpu_ms();
    double cq[3], sq[3];
    double cold_ms = open_all(cq);
    double cold_cpu = cpu_ms() - c0;
    puts("COLD_END");
    double cpv[3] = {-1, -1, -1};
    cp_cold_view(cpv);

    /* Mesh-wide policy change. */
    sleep_ms(500); /* let the cold phase's ACKs drain */
    mark_all();
    puts("POLICY_BEGIN");
    sleep_ms(g.perf ? 2500 : 50);
    c0 = cpu_ms();
    int64_t t0 = mono_ns();
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
    t0 = mono_ns();
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
    if (g.storm_reconnect)
        disconnect_all();
    sleep_ms(200);
    c0 = cpu_ms();
    double storm_ms = open_all(sq);
    double storm_cpu = cpu_ms() - c0;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT {\"fleet\":\"c\",\"n\":%d,\"services\":%d,\"channels\":%d,\"threads\":%d,"
           "\"create_s\":%.3f,\"cold_ms\":%.1f,\"cold_p10_p50_p90_ms\":[%.0f,%.0f,%.0f],"
           "\"cold_client_cpu_ms\":%.0f,\"cold_cp_first_stream_to_last_response_ms\":%.1f,"
           "\"cold_cp_stream_to_last_response_p50_p99_ms\":[%.0f,%.0f],"
           "\"policy_p50_ms\":%.1f,\"policy_p99_ms\":%.1f,\"policy_max_ms\":%.1f,"
           "\"policy_client_cpu_ms\":%.0f,\"churn_callers\":%d,\"churn_received\":%d,"
           "\"churn_p99_ms\":%.1f,\"idle_client_cpu_ms\":%.0f,\"storm\":\"%s\",\"storm_ms\":%.1f,"
           "\"storm_p10_p50_p90_ms\":[%.0f,%.0f,%.0f],"
           "\"storm_client_cpu_ms\":%.0f,\"responses\":%ld,\"acks\":%ld,\"bad_responses\":%ld,"
           "\"stream_errors\":%ld,\"connection_errors\":%ld,\"goaways\":%ld,"
           "\"client_rss_mb\":%.0f}\n",
           g.n, g.services, g.channels, g.threads, create_s, cold_ms, cq[0], cq[1], cq[2], cold_cpu,
           cpv[0], cpv[1], cpv[2], pol_p50, pol_p99, pol_max, pol_cpu, nc, received, churn_p99,
           idle_cpu, g.storm_reconnect ? "reconnect" : "streams", storm_ms, sq[0], sq[1], sq[2],
           storm_cpu, atomic_load(&g.responses), atomic_load(&g.acks),
           atomic_load(&g.bad_responses), atomic_load(&g.stream_errors),
           atomic_load(&g.conn_errors), atomic_load(&g.goaways), (double)ru.ru_maxrss / 1024);

    /* Stop everything: streams, connections, loops. */
    close_all();
    transport_free();
    curl_global_cleanup();
    for (int i = 0; i < g.n; i++)
        queue_free(&g.px[i]);
    free(g.px);
    free(lat);
    free(callers);
    free(all_ids);
    return atomic_load(&g.stream_errors) || atomic_load(&g.bad_responses) ||
                   atomic_load(&g.conn_errors)
               ? 2
               : 0;
}
