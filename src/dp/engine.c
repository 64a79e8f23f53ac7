/*
 * engine — workers, listeners, connections, snapshot compilation and swap
 * (design in engine.h).
 *
 * Invariants:
 *  - A connection lives on one worker and is touched only by that worker.
 *  - A connection holds a reference to the snapshot it was accepted under;
 *    everything it points to (listener, cluster, hosts, SSL_CTX) lives in it.
 *  - A closed connection is unlinked at once but freed only after the current
 *    epoll batch, since later events of the batch may still name it.
 *  - Stat blocks and host outlier state live in the stats registry and are
 *    shared by snapshots (see stats.h).
 */
#define _GNU_SOURCE
#include "dp/engine.h"
#include "dp/tproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "dp/http.h"
#include "dp/sniff.h"
#include "dp/sockmap.h"
#include "dp/tls.h"

#define COMP         "dp"
#define MAX_WORKERS  64
#define POOL_MAX     64
#define ACCEPT_BATCH 64
#define PUMP_ROUNDS  64 /* read/write rounds per connection per wake-up (fairness) */

/* --- timers: a binary min-heap per worker ----------------------------------------------------- */

enum timer_kind { T_CONNECT, T_IDLE, T_DRAIN, T_ACCEPT_RESUME, T_ENGINE_DRAIN, T_HTTP_RQ };

struct timer {
    int64_t at;
    size_t idx; /* position in the heap, SIZE_MAX when not armed */
    enum timer_kind kind;
    void *owner;
};

struct heap {
    struct timer **v;
    size_t n, cap;
};

static void heap_swap(struct heap *h, size_t a, size_t b)
{
    struct timer *t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
    h->v[a]->idx = a;
    h->v[b]->idx = b;
}

static void heap_up(struct heap *h, size_t i)
{
    while (i > 0 && h->v[(i - 1) / 2]->at > h->v[i]->at) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l]->at < h->v[m]->at)
            m = l;
        if (r < h->n && h->v[r]->at < h->v[m]->at)
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void timer_init(struct timer *t, enum timer_kind kind, void *owner)
{
    t->idx = SIZE_MAX;
    t->kind = kind;
    t->owner = owner;
}

static void timer_stop(struct heap *h, struct timer *t)
{
    if (t->idx == SIZE_MAX)
        return;
    size_t i = t->idx;
    h->n--;
    if (i != h->n) {
        h->v[i] = h->v[h->n];
        h->v[i]->idx = i;
        heap_up(h, i);
        heap_down(h, h->v[i]->idx);
    }
    t->idx = SIZE_MAX;
}

static void timer_start(struct heap *h, struct timer *t, int64_t at)
{
    timer_stop(h, t);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    t->at = at;
    t->idx = h->n;
    h->v[h->n++] = t;
    heap_up(h, t->idx);
}

/* --- compiled snapshot ------------------------------------------------------------------------ */

struct lsock {
    atomic_int refs;
    int fd;
    char *name;
    char *model_addr; /* "<address>|<configured port>" identifies reuse */
    char *bound_addr; /* "<address>|<bound port>": also matches (port 0 → fixed) */
    int port;         /* bound port */
    int defer;        /* TCP_DEFER_ACCEPT on (a TLS-only listener) */
};

struct chost {
    struct sockaddr_storage sa;
    socklen_t salen;
    uint32_t weight;
    char addr[80]; /* "ip:port" */
    struct dp_host_stats *hs;
    /* The cluster stats the host is counted under: its cluster's, or for
     * an endpoint of a flattened split the real cluster's it came from
     * (dp_lb_endpoint.stat_cluster), as Envoy counts under the cluster a
     * split picked. A reference of its own. */
    struct dp_cluster_stats *st;
};

struct ccluster {
    const struct dp_cluster *m;
    struct dp_cluster_stats *st;
    struct chost *hosts;
    size_t n_hosts;
    uint32_t *sched; /* weighted round-robin order */
    size_t n_sched;
    atomic_uint_fast64_t rr; /* mutable on purpose: shared LB cursor */
    SSL_CTX *ctx;            /* borrowed from the snapshot's ctx list */
    unsigned char alpn[64];
    unsigned alpn_len;
    uint32_t connect_timeout_ms;
    /* Mutable on purpose: the TLS session kept for resumption (Envoy's
     * max_session_keys = 1), shared by the workers. */
    int keep_session;
    pthread_mutex_t sess_mu;
    SSL_SESSION *sess;
    int od; /* outlier detection on */
    uint32_t od_consecutive, od_base_ms, od_max_ms, od_max_pct;
    /* ORIGINAL_DST (transparent proxying): no hosts; each connection goes to
     * its original destination, counted under one host block. */
    struct dp_host_stats *odst_hs;
};

struct clistener {
    const struct dp_listener *m;
    struct lsock *ls; /* not owned; identity only */
    struct ccluster *cluster;
    struct dp_listener_stats *st;
    struct dp_tcp_stats *tst;
    struct dp_rbac_stats *rst;
    SSL_CTX *ctx;
    unsigned char alpn[64];
    unsigned alpn_len;
    char *fingerprint;
    uint32_t max_attempts, idle_ms;
    /* HTTP connection manager (NULL routes = tcp_proxy): the compiled route
     * table, each route's cluster (NULL = not in the configuration) and
     * the http.<stat_prefix> stats. */
    struct dp_http_routes *routes;
    struct ccluster **rcl;
    struct dp_http_stats *hst;
    struct dp_rbac_stats *hrst; /* http.<stat_prefix>.rbac.* */
};

struct snap {
    atomic_long refs;
    struct dp_engine *e;
    struct dp_config *m;
    struct clistener *ls;
    size_t n_ls;
    struct ccluster *cs;
    size_t n_cs;
    SSL_CTX **ctxs;
    char **ctx_keys;
    size_t n_ctx;
};

/* --- workers and connections ------------------------------------------------------------------ */

enum ev_kind { EV_WAKE, EV_LISTENER, EV_SIDE, EV_POOL };

struct ev {
    enum ev_kind kind;
};

struct wreg {
    struct ev ev;
    struct lsock *ls; /* owned reference */
    struct clistener *cl;
    struct worker *w;
    int paused, removed;
    struct timer resume;
    struct wreg *next_dead; /* freed after the current epoll batch */
};

enum conn_state { C_DOWN_HS, C_CONNECTING, C_UP_HS, C_PROXY, C_SNIFF };

struct side {
    struct ev ev;
    struct conn *c;
    int fd;
    SSL *ssl;
    uint32_t events; /* registered epoll events */
    int rd_eof, wr_shut;
    int rd_wants_write, wr_wants_read;
    /* Data may be waiting: set by epoll events, cleared when a read comes
     * back short or empty, so the pump does not spend a syscall on EAGAIN. */
    int can_read;
    /* TLS: the socket BIO's last recv was short and epoll has not reported
     * the socket readable since; the BIO does not recv again (see tls.h). */
    int drained;
    int hup;        /* epoll reported HUP or ERR */
    int registered; /* in the worker's epoll set */
    /* Edge-triggered (plaintext tcp_proxy sides): registered once for
     * everything (ET_EVENTS), never modified; can_read and the pump's
     * buffers say what to do on each edge. Cleared for good, back to level
     * interest, when the side is asked for anything else (kernel forwarding,
     * a hung-up side taken out of the set). */
    int et;
    /* Edge-triggered side whose peer has shut down (or that had an error):
     * a short read no longer means "wait for an edge", since the EOF that
     * follows the data raises none of its own. */
    int et_eof;
    struct dp_tls_verify v;
};

struct pbuf {
    char *data;
    uint32_t off, len;
};

struct hstate;

struct conn {
    struct worker *w;
    struct hstate *hs; /* HTTP connection manager state; NULL for tcp_proxy */
    struct conn *prev, *next;
    struct snap *snap;
    struct clistener *l;
    struct ccluster *cl;
    struct chost *host;
    /* HTTP: the host the balancer chose for the request being routed, for
     * start_connect (each request is balanced, as Envoy does). */
    struct chost *want_host;
    struct side s[2]; /* 0 downstream, 1 upstream */
    struct pbuf b[2]; /* b[i]: read from s[i], to be written to s[1-i] */
    enum conn_state state;
    uint32_t attempts;
    int up_established, draining, dead, paused_reading;
    int first_eof; /* 1 + index of the side that sent EOF first */
    int in_again;  /* on the worker's again list */
    struct conn *next_again;
    int64_t last_io;
    struct timer t_conn, t_idle, t_drain, t_rq;
    /* Transparent proxying: the original destination (valid when odst_len),
     * and the host an ORIGINAL_DST cluster connects to. */
    struct sockaddr_storage odst;
    socklen_t odst_len;
    struct chost odst_host;
    /* Kernel forwarding of a plaintext tcp_proxy pair (sockmap.h; see
     * "Kernel forwarding" below): its state, the sockets' cookies, what
     * each socket had accepted for sending when the kernel took over, the
     * kernel's byte counts already added to the stats, and the bytes moved
     * in user space before (the threshold). */
    enum { KF_NONE, KF_ON, KF_DRAIN, KF_DONE } kfwd;
    uint64_t kcookie[2], kbase[2], kcounted[2], kwritten, kcredit[2];
    int kpaused; /* bit d: the program paused side d's direction (credit) */
    uint64_t moved, nwrites;
    int kmapped; /* its counters are in the maps */
};

/* The cluster stats a connection's upstream traffic is counted under: its
 * host's (the real cluster of a split's endpoint), else its cluster's. */
static inline struct dp_cluster_stats *cx_st(const struct conn *c)
{
    return c->host && c->host->st ? c->host->st : c->cl->st;
}

struct worker {
    struct dp_engine *e;
    int id;
    pthread_t th;
    int epfd, evfd;
    struct ev wake_ev;
    struct heap heap;
    struct conn *conns, *dead;
    struct conn *again; /* to pump again without waiting for epoll */
    long n_conns;
    struct snap *snap;
    uint64_t gen;
    uint64_t listener_epoch; /* last eng->listener_epoch acted on */
    int drain_seen;
    struct wreg **regs;
    size_t n_regs;
    struct wreg *dead_regs;
    int64_t now;
    char *pool[POOL_MAX];
    int n_pool;
    uint64_t rnd;
    struct timer t_engine_drain;
    /* Idle keep-alive upstream HTTP connections (see "HTTP connection
     * manager"), and those closed in the current epoll batch. */
    struct pconn *idle, *dead_idle;
    int n_idle;
};

struct dp_engine {
    struct dp_engine_opts o;
    struct dp_stats *stats;
    pthread_mutex_t mu;
    struct snap *cur;
    struct lsock **lsocks;
    size_t n_lsocks;
    uint64_t gen;
    /* Bumped by an apply that removes or changes a listener: only then must
     * workers look for connections to drain (endpoint and secret updates,
     * the common case, cost them nothing per connection). */
    uint64_t listener_epoch;
    int draining;
    int64_t drain_deadline;
    atomic_int stop;
    atomic_long conns_active;
    atomic_long drain_forced; /* connections closed at the drain deadline */
    atomic_uint_fast64_t total_conns;
    int64_t start_ms;
    /* Kernel forwarding of plaintext pairs; NULL when off or unavailable. */
    struct dp_sockmap *sm;
    uint64_t sm_after; /* bytes a pair moves in user space first */
    /* Bulk transfers stay in user space: there the pump moves a full buffer
     * per recv/send, which costs less CPU in total than the kernel worker's
     * per-segment forwarding (docs/BENCHMARKS.md); what the kernel path
     * saves is the wake-up and two system calls per small message. A pair
     * whose writes averaged sm_bulk bytes or more is not handed over
     * (DP_SOCKMAP_BULK_WRITE, default 8192; 0: no such check). */
    uint64_t sm_bulk;
    struct worker w[MAX_WORKERS];
    int nw;
};

/* --- small helpers ---------------------------------------------------------------------------- */

static void lsock_unref(struct lsock *ls)
{
    if (ls && atomic_fetch_sub(&ls->refs, 1) == 1) {
        close(ls->fd);
        free(ls->name);
        free(ls->model_addr);
        free(ls->bound_addr);
        free(ls);
    }
}

static void snap_ref(struct snap *s)
{
    atomic_fetch_add(&s->refs, 1);
}

static void snap_unref(struct snap *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    struct dp_stats *st = s->e->stats;
    for (size_t i = 0; i < s->n_cs; i++) {
        struct ccluster *c = &s->cs[i];
        dp_stats_release(st, c->st);
        dp_stats_release(st, c->odst_hs);
        for (size_t j = 0; j < c->n_hosts; j++) {
            dp_stats_release(st, c->hosts[j].hs);
            dp_stats_release(st, c->hosts[j].st);
        }
        free(c->hosts);
        free(c->sched);
        if (c->keep_session) {
            SSL_SESSION_free(c->sess);
            pthread_mutex_destroy(&c->sess_mu);
        }
    }
    for (size_t i = 0; i < s->n_ls; i++) {
        struct clistener *l = &s->ls[i];
        dp_stats_release(st, l->st);
        dp_stats_release(st, l->tst);
        dp_stats_release(st, l->rst);
        dp_stats_release(st, l->hst);
        dp_stats_release(st, l->hrst);
        dp_http_routes_free(l->routes);
        free(l->rcl);
        free(l->fingerprint);
    }
    for (size_t i = 0; i < s->n_ctx; i++) {
        SSL_CTX_free(s->ctxs[i]);
        free(s->ctx_keys[i]);
    }
    free(s->ctxs);
    free(s->ctx_keys);
    free(s->cs);
    free(s->ls);
    dp_config_free(s->m);
    free(s);
}

static int parse_addr(const char *ip, uint32_t port, struct sockaddr_storage *sa, socklen_t *len)
{
    memset(sa, 0, sizeof(*sa));
    if (port > 65535 || !ip)
        return -1;
    struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -1;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static struct clistener *snap_find_listener(struct snap *s, const char *name)
{
    for (size_t i = 0; s && i < s->n_ls; i++)
        if (strcmp(s->ls[i].m->name, name) == 0)
            return &s->ls[i];
    return NULL;
}

/* --- compile ---------------------------------------------------------------------------------- */

static SSL_CTX *snap_ctx(struct snap *s, const struct dp_config *m,
                         const struct dp_common_tls_context *t, int server, int require,
                         struct err *e)
{
    char *key = xasprintf("%d|%d|%s|%s", server, require,
                          t->tls_certificate_sds_secret ? t->tls_certificate_sds_secret : "",
                          t->validation_context_sds_secret ? t->validation_context_sds_secret : "");
    for (size_t i = 0; i < s->n_ctx; i++)
        if (strcmp(s->ctx_keys[i], key) == 0) {
            free(key);
            return s->ctxs[i];
        }
    const struct dp_secret *id = NULL, *ca = NULL;
    if (t->tls_certificate_sds_secret &&
        !(id = dp_config_find_secret(m, t->tls_certificate_sds_secret))) {
        err_set(e, "secret %s not found", t->tls_certificate_sds_secret);
        free(key);
        return NULL;
    }
    if (t->validation_context_sds_secret &&
        !(ca = dp_config_find_secret(m, t->validation_context_sds_secret))) {
        err_set(e, "secret %s not found", t->validation_context_sds_secret);
        free(key);
        return NULL;
    }
    SSL_CTX *ctx = server ? dp_tls_server_ctx(id, ca, require, e) : dp_tls_client_ctx(id, ca, e);
    if (!ctx) {
        free(key);
        return NULL;
    }
    s->ctxs = xrealloc(s->ctxs, (s->n_ctx + 1) * sizeof(*s->ctxs));
    s->ctx_keys = xrealloc(s->ctx_keys, (s->n_ctx + 1) * sizeof(*s->ctx_keys));
    s->ctxs[s->n_ctx] = ctx;
    s->ctx_keys[s->n_ctx++] = key;
    return ctx;
}

/* Smooth weighted round-robin (as nginx): spreads heavy hosts evenly. */
static void build_sched(struct ccluster *c)
{
    uint64_t total = 0;
    for (size_t i = 0; i < c->n_hosts; i++)
        total += c->hosts[i].weight;
    if (total > 65536 || total == 0) {
        total = c->n_hosts;
        for (size_t i = 0; i < c->n_hosts; i++)
            c->hosts[i].weight = 1;
    }
    c->n_sched = (size_t)total;
    c->sched = xcalloc(c->n_sched ? c->n_sched : 1, sizeof(*c->sched));
    int64_t *cur = xcalloc(c->n_hosts ? c->n_hosts : 1, sizeof(*cur));
    for (size_t k = 0; k < c->n_sched; k++) {
        size_t best = 0;
        for (size_t i = 0; i < c->n_hosts; i++) {
            cur[i] += c->hosts[i].weight;
            if (cur[i] > cur[best])
                best = i;
        }
        cur[best] -= (int64_t)total;
        c->sched[k] = (uint32_t)best;
    }
    free(cur);
}

static int compile_cluster(struct dp_engine *eng, struct snap *s, struct ccluster *c,
                           const struct dp_cluster *m, struct err *e)
{
    const char *stat = m->alt_stat_name && *m->alt_stat_name ? m->alt_stat_name : m->name;
    c->m = m;
    c->st = dp_stats_acquire(eng->stats, DP_STAT_CLUSTER, stat);
    c->connect_timeout_ms = m->connect_timeout_ms ? m->connect_timeout_ms : 5000;
    if (m->type == DP_CLUSTER_ORIGINAL_DST) {
        char *hn = xasprintf("%s::original_dst", m->name);
        c->odst_hs = dp_stats_acquire(eng->stats, DP_STAT_HOST, hn);
        free(hn);
    }
    const struct dp_cluster_load_assignment *cla = dp_config_cluster_endpoints(s->m, m);
    size_t n = cla ? cla->n_endpoints : 0;
    c->hosts = xcalloc(n ? n : 1, sizeof(*c->hosts));
    const char *last_real = NULL;
    const struct dp_cluster *last_rm = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct dp_lb_endpoint *ep = &cla->endpoints[i];
        struct chost *h = &c->hosts[i];
        if (parse_addr(ep->address.address, ep->address.port_value, &h->sa, &h->salen) != 0)
            return err_set(e, "cluster %s: endpoint %s:%u is not an IP address and port", m->name,
                           ep->address.address ? ep->address.address : "", ep->address.port_value);
        h->weight = ep->load_balancing_weight ? ep->load_balancing_weight : 1;
        snprintf(h->addr, sizeof(h->addr), strchr(ep->address.address, ':') ? "[%s]:%u" : "%s:%u",
                 ep->address.address, ep->address.port_value);
        /* A split's endpoint shares the host block (outlier state) and the
         * stats of the real cluster it came from. */
        const char *real = ep->stat_cluster ? ep->stat_cluster : m->name;
        if (!last_real || strcmp(last_real, real) != 0) {
            /* A split's endpoints come cluster by cluster: one lookup each. */
            last_rm = ep->stat_cluster ? dp_config_find_cluster(s->m, real) : m;
            last_real = real;
        }
        const struct dp_cluster *rm = last_rm;
        char *hn = xasprintf("%s::%s", real, h->addr);
        h->hs = dp_stats_acquire(eng->stats, DP_STAT_HOST, hn);
        free(hn);
        h->st = dp_stats_acquire(eng->stats, DP_STAT_CLUSTER,
                                 rm && rm->alt_stat_name && *rm->alt_stat_name ? rm->alt_stat_name
                                                                               : real);
        c->n_hosts++;
    }
    build_sched(c);
    if (!m->synthetic) {
        /* A split's membership is its real clusters'. */
        atomic_store(&c->st->membership_total, (int_fast64_t)n);
        /* Ejections survive swaps (host blocks are shared), so count them. */
        size_t healthy = n;
        for (size_t i = 0; i < n; i++)
            healthy -= atomic_load(&c->hosts[i].hs->ejected) != 0;
        atomic_store(&c->st->membership_healthy, (int_fast64_t)healthy);
    }
    if (m->outlier_detection) {
        const struct dp_outlier_detection *od = m->outlier_detection;
        c->od = 1;
        c->od_consecutive =
            od->consecutive_local_origin_failure ? od->consecutive_local_origin_failure : 5;
        c->od_base_ms = od->base_ejection_time_ms ? od->base_ejection_time_ms : 30000;
        c->od_max_ms = od->max_ejection_time_ms ? od->max_ejection_time_ms : 300000;
        c->od_max_pct = od->max_ejection_percent ? od->max_ejection_percent : 10;
    }
    if (m->tls) {
        c->ctx = snap_ctx(s, s->m, &m->tls->common_tls_context, 0, 0, e);
        if (!c->ctx)
            return err_set(e, "cluster %s: %s", m->name, e ? e->msg : "bad TLS context");
        if (m->tls->common_tls_context.n_alpn_protocols) {
            c->alpn_len = dp_tls_alpn_wire(m->tls->common_tls_context.alpn_protocols,
                                           m->tls->common_tls_context.n_alpn_protocols, c->alpn,
                                           sizeof(c->alpn));
            if (!c->alpn_len)
                return err_set(e, "cluster %s: ALPN protocols too long", m->name);
        }
        if (!m->tls->max_session_keys.set || m->tls->max_session_keys.value > 0) {
            c->keep_session = 1;
            pthread_mutex_init(&c->sess_mu, NULL);
        }
    }
    return 0;
}

static void cluster_new_session(void *owner, SSL_SESSION *sess)
{
    struct ccluster *c = owner;
    pthread_mutex_lock(&c->sess_mu);
    SSL_SESSION *old = c->sess;
    c->sess = sess;
    pthread_mutex_unlock(&c->sess_mu);
    SSL_SESSION_free(old);
}

static struct lsock *bind_listener(const struct dp_listener *m, struct err *e)
{
    struct sockaddr_storage sa;
    socklen_t len;
    if (parse_addr(m->address.address, m->address.port_value, &sa, &len) != 0) {
        err_set(e, "listener %s: address %s:%u is not an IP address and port", m->name,
                m->address.address ? m->address.address : "", m->address.port_value);
        return NULL;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err_set(e, "listener %s: socket: %s", m->name, strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Accepted sockets inherit it (Linux): no setsockopt per connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* As Envoy (ipv4_compat false): [::]:15001 and 0.0.0.0:15001 coexist. */
    if (sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 1024) != 0) {
        err_set(e, "listener %s: bind %s:%u: %s", m->name, m->address.address,
                m->address.port_value, strerror(errno));
        close(fd);
        return NULL;
    }
    getsockname(fd, (struct sockaddr *)&sa, &len);
    struct lsock *ls = xcalloc(1, sizeof(*ls));
    atomic_init(&ls->refs, 1);
    ls->fd = fd;
    ls->name = xstrdup(m->name);
    ls->model_addr = xasprintf("%s|%u", m->address.address, m->address.port_value);
    ls->port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
                                             : ((struct sockaddr_in6 *)&sa)->sin6_port);
    ls->bound_addr = xasprintf("%s|%d", m->address.address, ls->port);
    return ls;
}

static int http_compile_listener(struct dp_engine *eng, struct snap *s, struct clistener *l,
                                 struct err *e);

static int compile_listener(struct dp_engine *eng, struct snap *s, struct clistener *l,
                            const struct dp_listener *m, struct lsock *ls, struct err *e)
{
    l->m = m;
    l->ls = ls;
    /* Envoy names listener stats by address with ':' → '_' ("127.0.0.1_15001"). */
    char *an = xasprintf("%s_%d", m->address.address, ls ? ls->port : (int)m->address.port_value);
    l->st = dp_stats_acquire(eng->stats, DP_STAT_LISTENER, an);
    free(an);
    const char *tp =
        m->tcp_proxy.stat_prefix && *m->tcp_proxy.stat_prefix ? m->tcp_proxy.stat_prefix : m->name;
    l->tst = dp_stats_acquire(eng->stats, DP_STAT_TCP, tp);
    if (m->rbac)
        l->rst = dp_stats_acquire(eng->stats, DP_STAT_RBAC,
                                  m->rbac->stat_prefix ? m->rbac->stat_prefix : "");
    l->fingerprint = dp_listener_fingerprint(m);
    l->max_attempts = m->tcp_proxy.max_connect_attempts ? m->tcp_proxy.max_connect_attempts : 1;
    l->idle_ms = m->tcp_proxy.idle_timeout_ms ? m->tcp_proxy.idle_timeout_ms : 3600 * 1000;
    if (m->hcm && http_compile_listener(eng, s, l, e) != 0)
        return -1;
    for (size_t i = 0; i < s->n_cs; i++)
        if (m->tcp_proxy.cluster && strcmp(s->cs[i].m->name, m->tcp_proxy.cluster) == 0)
            l->cluster = &s->cs[i];
    if (m->tls) {
        if (!m->tls->common_tls_context.tls_certificate_sds_secret)
            return err_set(e, "listener %s: DownstreamTlsContext without a certificate", m->name);
        l->ctx = snap_ctx(s, s->m, &m->tls->common_tls_context, 1,
                          m->tls->require_client_certificate, e);
        if (!l->ctx)
            return err_set(e, "listener %s: %s", m->name, e ? e->msg : "bad TLS context");
        if (m->tls->common_tls_context.n_alpn_protocols)
            l->alpn_len = dp_tls_alpn_wire(m->tls->common_tls_context.alpn_protocols,
                                           m->tls->common_tls_context.n_alpn_protocols, l->alpn,
                                           sizeof(l->alpn));
    }
    return 0;
}

/* --- engine lifecycle ------------------------------------------------------------------------- */

static void *worker_main(void *arg);

static void wake(struct worker *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->evfd, &one, sizeof(one));
    (void)r; /* EAGAIN: the counter is already nonzero, the worker will wake */
}

static void wake_all(struct dp_engine *eng)
{
    for (int i = 0; i < eng->nw; i++)
        wake(&eng->w[i]);
}

/* Kernel forwarding of plaintext pairs: on unless DP_SOCKMAP=0, and only
 * where the kernel allows it; one log line either way. DP_SOCKMAP_AFTER sets
 * the bytes a pair first moves in user space (short connections never pay
 * the set-up); DP_SOCKMAP_BULK_WRITE the average write size from which a pair
 * counts as bulk and stays in user space. */
static void sockmap_open(struct dp_engine *eng)
{
    const char *v = getenv("DP_SOCKMAP");
    if (v && strcmp(v, "0") == 0) {
        log_info(COMP, "kernel forwarding of plaintext TCP pairs (sockmap): off (DP_SOCKMAP=0)");
        return;
    }
    const char *after = getenv("DP_SOCKMAP_AFTER");
    eng->sm_after = after && *after ? strtoull(after, NULL, 10) : 16384;
    const char *bulk = getenv("DP_SOCKMAP_BULK_WRITE");
    eng->sm_bulk = bulk && *bulk ? strtoull(bulk, NULL, 10) : 8192;
    struct err e = {0};
    if (dp_sockmap_open(&eng->sm, &e) != 0) {
        eng->sm = NULL;
        log_info(COMP,
                 "kernel forwarding of plaintext TCP pairs (sockmap) unavailable (%s): "
                 "proxying in user space",
                 e.msg);
        return;
    }
    log_info(COMP,
             "kernel forwarding of plaintext TCP pairs (sockmap): on, after %llu bytes per "
             "connection, writes under %llu bytes on average",
             (unsigned long long)eng->sm_after, (unsigned long long)eng->sm_bulk);
}

int dp_engine_new(const struct dp_engine_opts *opts, struct dp_engine **out, struct err *e)
{
    struct dp_engine *eng = xcalloc(1, sizeof(*eng));
    if (opts)
        eng->o = *opts;
    if (eng->o.workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        eng->o.workers = n > 0 ? (int)n : 1;
    }
    if (eng->o.workers > MAX_WORKERS)
        eng->o.workers = MAX_WORKERS;
    if (!eng->o.buffer_size)
        eng->o.buffer_size = 32 * 1024;
    if (!eng->o.drain_timeout_ms)
        eng->o.drain_timeout_ms = 30000;
    if (!eng->o.handshake_timeout_ms)
        eng->o.handshake_timeout_ms = 10000;
    pthread_mutex_init(&eng->mu, NULL);
    eng->stats = dp_stats_new();
    sockmap_open(eng);
    eng->start_ms = mono_ms();
    for (int i = 0; i < eng->o.workers; i++) {
        struct worker *w = &eng->w[i];
        w->e = eng;
        w->id = i;
        w->rnd = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        w->wake_ev.kind = EV_WAKE;
        timer_init(&w->t_engine_drain, T_ENGINE_DRAIN, w);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake_ev};
        if (w->epfd < 0 || w->evfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) != 0 ||
            pthread_create(&w->th, NULL, worker_main, w) != 0) {
            err_set(e, "worker %d: %s", i, strerror(errno));
            if (w->epfd >= 0)
                close(w->epfd);
            if (w->evfd >= 0)
                close(w->evfd);
            dp_engine_free(eng);
            return -1;
        }
        eng->nw++;
    }
    *out = eng;
    return 0;
}

/* TCP_DEFER_ACCEPT on the sockets of listeners whose clients always speak
 * first: TLS without inspection (every connection starts with a
 * ClientHello). The kernel then hands over a connection with its ClientHello
 * already queued: no wake-up, epoll registration and recv for EAGAIN before
 * it arrives. Off for every other listener (plaintext, PERMISSIVE,
 * use_original_dst), where the server may speak first. */
static void defer_accept(struct snap *s)
{
    for (size_t i = 0; i < s->n_ls; i++) {
        struct clistener *l = &s->ls[i];
        if (!l->ls)
            continue;
        int on = l->m->tls && !l->m->inspect && !l->m->use_original_dst;
        if (on == l->ls->defer)
            continue;
        int secs = on; /* kernel: SYN-ACK retransmissions' worth of waiting */
        if (setsockopt(l->ls->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) == 0)
            l->ls->defer = on;
    }
}

int dp_engine_apply(struct dp_engine *eng, struct dp_config *cfg, struct err *e)
{
    struct snap *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->e = eng;
    s->m = cfg;
    struct lsock **nls = xcalloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*nls));
    size_t n_nls = 0;
    int rc = -1;

    pthread_mutex_lock(&eng->mu);
    int draining = eng->draining;
    pthread_mutex_unlock(&eng->mu);
    if (draining) {
        err_set(e, "the proxy is draining");
        goto out;
    }
    s->cs = xcalloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof(*s->cs));
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->clusters[i].name, cfg->clusters[j].name) == 0) {
                err_set(e, "duplicate cluster %s", cfg->clusters[i].name);
                goto out;
            }
        s->n_cs++;
        if (compile_cluster(eng, s, &s->cs[i], &cfg->clusters[i], e) != 0)
            goto out;
    }
    s->ls = xcalloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*s->ls));
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct dp_listener *m = &cfg->listeners[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->name, cfg->listeners[j].name) == 0) {
                err_set(e, "duplicate listener %s", m->name);
                goto out;
            }
        /* Reuse the bound socket of a listener at the same configured address,
         * whatever its name: a renamed listener keeps accepting without a
         * gap, and its old socket cannot make the new bind fail. */
        char *key =
            xasprintf("%s|%u", m->address.address ? m->address.address : "", m->address.port_value);
        struct lsock *ls = NULL;
        pthread_mutex_lock(&eng->mu);
        for (size_t j = 0; j < eng->n_lsocks && !ls; j++) {
            int taken = 0;
            for (size_t k = 0; k < n_nls && !taken; k++)
                taken = nls[k] == eng->lsocks[j];
            if (!taken && (strcmp(eng->lsocks[j]->model_addr, key) == 0 ||
                           strcmp(eng->lsocks[j]->bound_addr, key) == 0)) {
                ls = eng->lsocks[j];
                atomic_fetch_add(&ls->refs, 1);
            }
        }
        pthread_mutex_unlock(&eng->mu);
        free(key);
        int usable = !m->use_original_dst || dp_tproxy_family_usable(m->address.address);
        if (!usable)
            log_warn(COMP, "listener %s: no IPv6 on this host, not listening", m->name);
        if (m->no_bind || !usable) {
            /* bind_to_port false: reached through a use_original_dst
             * listener only (tproxy.h); a socket found above stays unused. */
            lsock_unref(ls);
            ls = NULL;
        } else {
            if (!ls && !(ls = bind_listener(m, e)))
                goto out;
            nls[n_nls++] = ls;
        }
        s->n_ls++;
        if (compile_listener(eng, s, &s->ls[i], m, ls, e) != 0)
            goto out;
    }

    pthread_mutex_lock(&eng->mu);
    struct snap *old = eng->cur;
    struct lsock **old_ls = eng->lsocks;
    size_t n_old = eng->n_lsocks;
    int listeners_changed = 0;
    for (size_t i = 0; old && i < old->n_ls && !listeners_changed; i++) {
        struct clistener *nl = snap_find_listener(s, old->ls[i].m->name);
        listeners_changed = !nl || strcmp(nl->fingerprint, old->ls[i].fingerprint) != 0;
    }
    eng->cur = s;
    eng->lsocks = nls;
    eng->n_lsocks = n_nls;
    eng->gen++;
    if (listeners_changed)
        eng->listener_epoch++;
    pthread_mutex_unlock(&eng->mu);
    defer_accept(s);
    wake_all(eng);
    log_info(COMP, "applied configuration version %s: %zu listeners, %zu clusters",
             cfg->version_info, cfg->n_listeners, cfg->n_clusters);
    snap_unref(old);
    for (size_t i = 0; i < n_old; i++)
        lsock_unref(old_ls[i]);
    free(old_ls);
    /* Compiling builds and frees JSON trees; give the pages back (glibc). */
    malloc_trim(0);
    return 0;
out:
    for (size_t i = 0; i < n_nls; i++)
        lsock_unref(nls[i]);
    free(nls);
    log_warn(COMP, "configuration version %s rejected: %s", cfg->version_info,
             e ? e->msg : "error");
    snap_unref(s);
    return rc;
}

int dp_engine_listener_port(struct dp_engine *eng, const char *name)
{
    int port = -1;
    pthread_mutex_lock(&eng->mu);
    /* eng->lsocks holds the sockets of eng->cur's listeners (none once draining). */
    for (size_t i = 0; eng->cur && eng->n_lsocks && i < eng->cur->n_ls; i++)
        if (strcmp(eng->cur->ls[i].m->name, name) == 0 && eng->cur->ls[i].ls)
            port = eng->cur->ls[i].ls->port;
    pthread_mutex_unlock(&eng->mu);
    return port;
}

long dp_engine_active_connections(struct dp_engine *eng)
{
    return atomic_load(&eng->conns_active);
}

long dp_engine_drain(struct dp_engine *eng, uint32_t deadline_ms)
{
    int64_t deadline = mono_ms() + deadline_ms;
    pthread_mutex_lock(&eng->mu);
    struct lsock **old = eng->lsocks;
    size_t n_old = eng->n_lsocks;
    eng->lsocks = NULL;
    eng->n_lsocks = 0;
    eng->draining = 1;
    eng->drain_deadline = deadline;
    eng->gen++;
    pthread_mutex_unlock(&eng->mu);
    wake_all(eng);
    for (size_t i = 0; i < n_old; i++)
        lsock_unref(old[i]);
    free(old);
    /* Workers close what is left at the deadline; wait a little past it. */
    while (atomic_load(&eng->conns_active) > 0 && mono_ms() < deadline + 2000)
        usleep(5000);
    return atomic_load(&eng->drain_forced);
}

void dp_engine_free(struct dp_engine *eng)
{
    if (!eng)
        return;
    atomic_store(&eng->stop, 1);
    wake_all(eng);
    for (int i = 0; i < eng->nw; i++) {
        pthread_join(eng->w[i].th, NULL);
        close(eng->w[i].epfd);
        close(eng->w[i].evfd);
    }
    snap_unref(eng->cur);
    for (size_t i = 0; i < eng->n_lsocks; i++)
        lsock_unref(eng->lsocks[i]);
    free(eng->lsocks);
    dp_stats_free(eng->stats);
    dp_sockmap_free(eng->sm);
    pthread_mutex_destroy(&eng->mu);
    free(eng);
}

/* --- buffers ---------------------------------------------------------------------------------- */

static char *pool_get(struct worker *w)
{
    if (w->n_pool)
        return w->pool[--w->n_pool];
    return xmalloc(w->e->o.buffer_size);
}

static void pool_put(struct worker *w, char *p)
{
    if (w->n_pool < POOL_MAX)
        w->pool[w->n_pool++] = p;
    else
        free(p);
}

/* After a pass over buffer b: an empty one goes back to the pool; a full
 * one whose data sits at the end moves it to the front to make room. */
static void pbuf_tidy(struct worker *w, struct pbuf *b, size_t cap)
{
    if (b->len == 0) {
        b->off = 0;
        if (b->data) {
            pool_put(w, b->data);
            b->data = NULL;
        }
    } else if (b->off > 0 && b->off + b->len == cap) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
}

/* --- connection I/O --------------------------------------------------------------------------- */

#define IO_AGAIN (-EAGAIN)

/* Returns bytes read, 0 on EOF, IO_AGAIN, or another negative errno-ish code. */
static ssize_t side_read(struct side *s, char *p, size_t n)
{
    s->rd_wants_write = 0;
    if (!s->ssl) {
        ssize_t r = recv(s->fd, p, n, 0);
        if (r > 0 && (size_t)r < n && !s->et_eof)
            s->can_read = 0; /* a short read drained the socket */
        if (r >= 0)
            return r;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            s->can_read = 0;
            return IO_AGAIN;
        }
        return -errno;
    }
    size_t got = 0;
    int r = SSL_read_ex(s->ssl, p, n, &got);
    if (r == 1) {
        /* Socket empty and nothing decrypted left: wait for epoll. */
        if (s->drained && !SSL_has_pending(s->ssl))
            s->can_read = 0;
        return (ssize_t)got;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->can_read = 0;
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->rd_wants_write = 1;
        s->can_read = 0;
        return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return -EPROTO;
    }
}

static ssize_t side_write(struct side *s, const char *p, size_t n)
{
    s->wr_wants_read = 0;
    if (!s->ssl) {
        ssize_t r = send(s->fd, p, n, MSG_NOSIGNAL);
        if (r >= 0)
            return r;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? IO_AGAIN : -errno;
    }
    size_t put = 0;
    int r = SSL_write_ex(s->ssl, p, n, &put);
    if (r == 1)
        return (ssize_t)put;
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_WRITE:
        return IO_AGAIN;
    case SSL_ERROR_WANT_READ:
        s->wr_wants_read = 1;
        return IO_AGAIN;
    default:
        ERR_clear_error();
        return -EPIPE;
    }
}

static void side_shutdown(struct side *s)
{
    if (s->ssl) {
        /* close_notify, then the TCP half-close; the peer may still send. */
        SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
    shutdown(s->fd, SHUT_WR);
}

/* Sets a side's epoll interest. epoll reports HUP and ERR whatever the
 * interest, so a hung-up side that we do not want to hear from right now (its
 * reader is back-pressured, say) is taken out of the epoll set until we do;
 * otherwise the loop would spin on it. */
#define ET_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

static void side_set_events(struct conn *c, struct side *s, uint32_t events)
{
    if (s->fd < 0)
        return;
    if (s->et) {
        /* An edge-triggered side never spins: interest in a subset of what
         * it has (or in nothing) needs no change. */
        if (!(events & ~(uint32_t)(EPOLLIN | EPOLLOUT)) && !(s->hup && events == 0)) {
            if (!s->registered) {
                struct epoll_event ev = {.events = ET_EVENTS, .data.ptr = &s->ev};
                s->registered = epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, s->fd, &ev) == 0;
                s->events = ET_EVENTS;
            }
            return;
        }
        s->et = 0;
    }
    if (s->hup && events == 0) {
        if (s->registered)
            epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        s->registered = 0;
        s->events = 0;
        return;
    }
    if (s->registered && s->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = &s->ev};
    epoll_ctl(c->w->epfd, s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev);
    s->registered = 1;
    s->events = events;
}

static int side_open(struct conn *c, struct side *s, int fd, uint32_t events)
{
    s->fd = fd;
    s->events = events;
    s->hup = 0;
    s->can_read = 0;
    s->et = (events & EPOLLET) != 0;
    s->et_eof = 0;
    struct epoll_event ev = {.events = events, .data.ptr = &s->ev};
    int r = epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev);
    s->registered = r == 0;
    return r;
}

static void side_close(struct side *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    s->events = 0;
}

/* --- connection lifecycle --------------------------------------------------------------------- */

enum close_reason { CLOSE_DONE, CLOSE_LOCAL, CLOSE_REMOTE };

static void up_close(struct conn *c, enum close_reason why)
{
    struct side *u = &c->s[1];
    if (u->fd < 0)
        return;
    if (c->host) {
        DP_DEC(cx_st(c)->upstream_cx_active);
        DP_DEC(c->host->hs->cx_active);
        if (c->up_established) {
            DP_INC(cx_st(c)->upstream_cx_destroy);
            if (why == CLOSE_LOCAL)
                DP_INC(cx_st(c)->upstream_cx_destroy_local);
            else if (why == CLOSE_REMOTE)
                DP_INC(cx_st(c)->upstream_cx_destroy_remote);
        }
    }
    side_close(u);
    c->host = NULL;
    c->up_established = 0;
}

static void http_conn_closed(struct conn *c);
static int http_connect_failed(struct conn *c, const char *why);
static void http_start(struct conn *c);
static void http_pump(struct conn *c);
static struct hstate *http_state_new(struct conn *c);
struct pconn;
static void http_pool_event(struct pconn *p);
static void http_pool_flush(struct worker *w, struct snap *keep);
static void http_pool_reap(struct worker *w);
static void http_park(struct conn *c);
static int http_unpark(struct conn *c, struct ccluster *cl, struct chost *want);
static void http_timeout(struct conn *c);
static void http_drain(struct conn *c);
static uint32_t http_idle_limit(struct conn *c);
static int http_idle_expired(struct conn *c);
static void http_state_free(struct hstate *h);

static void kfwd_close(struct conn *c);

static void conn_close(struct conn *c, enum close_reason why)
{
    if (c->dead)
        return;
    struct worker *w = c->w;
    c->dead = 1;
    if (why == CLOSE_DONE)
        why = c->first_eof == 2 ? CLOSE_REMOTE : CLOSE_LOCAL;
    if (c->hs)
        http_park(c);
    if (c->kmapped)
        kfwd_close(c);
    up_close(c, why);
    side_close(&c->s[0]);
    DP_DEC(c->l->st->downstream_cx_active);
    DP_INC(c->l->st->downstream_cx_destroy);
    atomic_fetch_sub(&w->e->conns_active, 1);
    timer_stop(&w->heap, &c->t_conn);
    timer_stop(&w->heap, &c->t_idle);
    timer_stop(&w->heap, &c->t_drain);
    timer_stop(&w->heap, &c->t_rq);
    http_conn_closed(c);
    for (int i = 0; i < 2; i++)
        if (c->b[i].data) {
            pool_put(w, c->b[i].data);
            c->b[i].data = NULL;
        }
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    c->next = w->dead;
    w->dead = c;
}

static void conn_free(struct conn *c)
{
    http_state_free(c->hs);
    snap_unref(c->snap);
    free(c);
}

static void start_connect(struct conn *c);
static void pump(struct conn *c);
static void http_rq_host(struct conn *c, struct chost *hst);

/* Outlier detection: counts consecutive local-origin (connect) failures of a
 * host and ejects it when the threshold is reached, unless max_ejection_percent
 * of the cluster is already out (one host may always be ejected, as Envoy). */
static void host_result(struct conn *c, struct chost *h, int ok)
{
    struct ccluster *cl = c->cl;
    if (!cl->od)
        return;
    if (ok) {
        atomic_store(&h->hs->consecutive_local_origin_failure, 0);
        return;
    }
    unsigned n = atomic_fetch_add(&h->hs->consecutive_local_origin_failure, 1) + 1;
    if (n < cl->od_consecutive || atomic_load(&h->hs->ejected))
        return;
    size_t ejected = 0;
    for (size_t i = 0; i < cl->n_hosts; i++)
        ejected += atomic_load(&cl->hosts[i].hs->ejected) != 0;
    DP_INC(h->st->ejections_total);
    if (ejected > 0 && (ejected + 1) * 100 > (size_t)cl->od_max_pct * cl->n_hosts)
        return;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&h->hs->ejected, &zero, 1))
        return;
    atomic_store(&h->hs->ejected_ms, c->w->now);
    atomic_fetch_add(&h->hs->num_ejections, 1);
    atomic_store(&h->hs->consecutive_local_origin_failure, 0);
    DP_INC(h->st->ejections_enforced_total);
    DP_INC(h->st->ejections_enforced_local_origin_failure);
    DP_ADD(h->st->ejections_active, 1);
    DP_DEC(h->st->membership_healthy);
    log_info(COMP, "cluster %s: host %s ejected after %u consecutive connect failures", cl->m->name,
             h->addr, n);
}

static int host_available(struct ccluster *cl, struct chost *h, int64_t now)
{
    if (!atomic_load(&h->hs->ejected))
        return 1;
    int64_t mult = atomic_load(&h->hs->num_ejections);
    int64_t dur = (int64_t)cl->od_base_ms * (mult ? mult : 1);
    int64_t max = cl->od_max_ms > cl->od_base_ms ? cl->od_max_ms : cl->od_base_ms;
    if (dur > max)
        dur = max;
    if (now - atomic_load(&h->hs->ejected_ms) < dur)
        return 0;
    int one = 1;
    if (atomic_compare_exchange_strong(&h->hs->ejected, &one, 0)) {
        DP_DEC(h->st->ejections_active);
        DP_ADD(h->st->membership_healthy, 1);
    }
    return 1;
}

static struct chost *pick_host(struct conn *c)
{
    struct ccluster *cl = c->cl;
    struct worker *w = c->w;
    if (!cl->n_hosts)
        return NULL;
    if (cl->m->lb_policy == DP_LB_ROUND_ROBIN) {
        for (size_t t = 0; t < cl->n_sched; t++) {
            uint64_t i = atomic_fetch_add_explicit(&cl->rr, 1, memory_order_relaxed);
            struct chost *h = &cl->hosts[cl->sched[i % cl->n_sched]];
            if (host_available(cl, h, w->now))
                return h;
        }
    } else {
        /* LEAST_REQUEST: power of two choices on active connections / weight;
         * RANDOM: one choice. Up to 2n draws to find available hosts. */
        struct chost *best = NULL;
        int want = cl->m->lb_policy == DP_LB_LEAST_REQUEST ? 2 : 1, got = 0;
        for (size_t t = 0; t < 2 * cl->n_hosts + 2 && got < want; t++) {
            struct chost *h = &cl->hosts[xorshift(&w->rnd) % cl->n_hosts];
            if (!host_available(cl, h, w->now))
                continue;
            got++;
            if (!best || (double)DP_GET(h->hs->cx_active) / h->weight <
                             (double)DP_GET(best->hs->cx_active) / best->weight)
                best = h;
        }
        if (best)
            return best;
    }
    /* Every host is ejected: panic mode, balance across all (as Envoy below
     * its healthy panic threshold). */
    return &cl->hosts[xorshift(&w->rnd) % cl->n_hosts];
}

static void connect_failed(struct conn *c, int timeout)
{
    struct chost *h = c->host;
    if (timeout)
        DP_INC(h->st->upstream_cx_connect_timeout);
    else
        DP_INC(h->st->upstream_cx_connect_fail);
    DP_INC(h->hs->cx_connect_fail);
    timer_stop(&c->w->heap, &c->t_conn);
    up_close(c, CLOSE_DONE);
    host_result(c, h, 0);
    if (c->attempts < c->l->max_attempts) {
        start_connect(c);
        return;
    }
    if (c->hs && http_connect_failed(c, "connection failure"))
        return;
    DP_INC(h->st->upstream_cx_connect_attempts_exceeded);
    conn_close(c, CLOSE_LOCAL);
}

static void up_ready(struct conn *c)
{
    c->state = C_PROXY;
    /* A new plaintext upstream has sent nothing yet (if it speaks first,
     * epoll says so once it is registered for reading): no recv for EAGAIN. */
    c->s[0].can_read = 1;
    /* An edge-triggered upstream may have reported data with its connect. */
    c->s[1].can_read = c->s[1].ssl != NULL || (c->s[1].et && c->s[1].can_read);
    timer_stop(&c->w->heap, &c->t_conn);
    c->last_io = c->w->now;
    timer_start(&c->w->heap, &c->t_idle, c->w->now + c->l->idle_ms);
    pump(c);
}

/* ORIGINAL_DST: the connection's own original destination, if known. */
static struct chost *tproxy_host(struct conn *c)
{
    if (!c->odst_len)
        return NULL;
    struct chost *h = &c->odst_host;
    memcpy(&h->sa, &c->odst, sizeof(h->sa));
    h->salen = c->odst_len;
    h->weight = 1;
    dp_tproxy_format(&c->odst, h->addr, sizeof(h->addr));
    h->hs = c->cl->odst_hs;
    h->st = c->cl->st;
    return h;
}

static void start_connect(struct conn *c)
{
    struct worker *w = c->w;
    struct chost *h = c->want_host ? c->want_host : c->cl->odst_hs ? tproxy_host(c) : pick_host(c);
    c->want_host = NULL; /* a retry balances again */
    if (!h) {
        DP_INC(c->cl->st->upstream_cx_none_healthy);
        if (c->hs && http_connect_failed(c, NULL))
            return;
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    c->attempts++;
    int fd = socket(h->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_warn(COMP, "socket: %s", strerror(errno));
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const char *src = c->cl->m->upstream_bind_address;
    if (src && (strchr(src, ':') != NULL) == (h->sa.ss_family == AF_INET6)) {
        int rc = dp_tproxy_bind_source(fd, h->sa.ss_family, src);
        if (rc != 0)
            log_warn(COMP, "cluster %s: bind to %s: %s", c->cl->m->name, src, strerror(-rc));
    }
    c->host = h;
    c->state = C_CONNECTING;
    if (c->hs)
        http_rq_host(c, h);
    DP_INC(h->st->upstream_cx_total);
    DP_ADD(h->st->upstream_cx_active, 1);
    DP_INC(h->hs->cx_total);
    DP_ADD(h->hs->cx_active, 1);
    /* A plaintext upstream of tcp_proxy is edge-triggered: one epoll_ctl
     * for its whole life (the connect's EPOLLOUT, then data and EOF). */
    uint32_t first = !c->hs && !c->cl->ctx ? ET_EVENTS : EPOLLOUT;
    if (side_open(c, &c->s[1], fd, first) != 0) {
        close(fd);
        c->s[1].fd = -1;
        DP_DEC(h->st->upstream_cx_active);
        DP_DEC(h->hs->cx_active);
        c->host = NULL;
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    timer_start(&w->heap, &c->t_conn, w->now + c->cl->connect_timeout_ms);
    if (connect(fd, (struct sockaddr *)&h->sa, h->salen) != 0 && errno != EINPROGRESS)
        connect_failed(c, 0);
}

/* Drives an SSL handshake; returns 1 done, 0 in progress, -1 failed.
 * Writes are held during each step (dp_tls_hold): a step that ends waiting
 * for the peer sends its flight at once; what the completing step wrote
 * waits for the first application write (tls.h). */
static int handshake(struct conn *c, struct side *s)
{
    ERR_clear_error();
    dp_tls_hold(s->ssl, 1);
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        dp_tls_hold(s->ssl, 0);
        /* A TLS 1.2 server's last flight (Finished) is what its client waits
         * for; TLS 1.3 leaves only the NewSessionTicket, which may wait. */
        if (s == &c->s[0] && SSL_version(s->ssl) != TLS1_3_VERSION && dp_tls_release(s->ssl) < 0)
            return -1;
        return 1;
    }
    int err = SSL_get_error(s->ssl, r);
    int rel = dp_tls_release(s->ssl); /* the flight, or an alert */
    if (rel < 0)
        err = SSL_ERROR_SYSCALL;
    if (err == SSL_ERROR_WANT_READ) {
        side_set_events(c, s, rel > 0 ? EPOLLIN | EPOLLOUT : EPOLLIN);
        return 0;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        side_set_events(c, s, EPOLLOUT);
        return 0;
    }
    char why[512];
    dp_tls_errors(why, sizeof(why));
    log_debug(COMP, "TLS handshake failed: %s", why);
    return -1;
}

/* Whether r lets the downstream peer of c through (network RBAC per
 * connection, HTTP RBAC per request). */
static int rbac_check(const struct dp_rbac *r, struct conn *c)
{
    int matched = 0;
    for (size_t i = 0; i < r->n_policies && !matched; i++) {
        const struct dp_rbac_policy *p = &r->policies[i];
        for (size_t j = 0; j < p->n_principals && !matched; j++) {
            if (dp_tls_peer_principal_matches(c->s[0].ssl, &p->principals[j]))
                matched = 1;
        }
    }
    return r->action == DP_RBAC_ALLOW ? matched : !matched;
}

static int rbac_allows(struct conn *c)
{
    return rbac_check(c->l->m->rbac, c);
}

static void down_handshake(struct conn *c)
{
    struct side *d = &c->s[0];
    int r = handshake(c, d);
    if (r == 0)
        return;
    struct dp_listener_stats *st = c->l->st;
    if (r < 0) {
        DP_INC(st->ssl_connection_error);
        if (d->v.san_failed)
            DP_INC(st->ssl_fail_verify_san);
        else if (d->v.chain_failed)
            DP_INC(st->ssl_fail_verify_error);
        else if (c->l->m->tls->require_client_certificate && !SSL_get0_peer_certificate(d->ssl))
            DP_INC(st->ssl_fail_verify_no_cert);
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    DP_INC(st->ssl_handshake);
    if (SSL_session_reused(d->ssl))
        DP_INC(st->ssl_session_reused);
    if (!SSL_get0_peer_certificate(d->ssl))
        DP_INC(st->ssl_no_certificate);
    timer_stop(&c->w->heap, &c->t_conn);
    /* Still registered for EPOLLIN, which the pump wants back once the
     * upstream is up: the request usually came with the client's Finished,
     * so nothing wakes us meanwhile; if something does, on_side turns the
     * interest off until then (two epoll_ctl saved per connection). */
    if (c->l->m->rbac) {
        if (!rbac_allows(c)) {
            char who[256];
            dp_tls_peer_first_uri(d->ssl, who, sizeof(who));
            DP_INC(c->l->rst->denied);
            log_debug(COMP, "listener %s: RBAC denied %s", c->l->m->name, who[0] ? who : "(none)");
            conn_close(c, CLOSE_LOCAL);
            return;
        }
        DP_INC(c->l->rst->allowed);
    }
    if (c->l->routes) {
        http_start(c);
        return;
    }
    start_connect(c);
}

/* The upstream TLS handshake is part of connecting, as in Envoy: a failure
 * counts as a connect failure (outlier detection, retries), and
 * connect_timeout covers TCP and TLS together. */
static void up_handshake(struct conn *c)
{
    struct side *u = &c->s[1];
    int r = handshake(c, u);
    if (r == 0)
        return;
    struct dp_cluster_stats *st = cx_st(c);
    if (r < 0) {
        DP_INC(st->ssl_connection_error);
        if (u->v.san_failed)
            DP_INC(st->ssl_fail_verify_san);
        else if (u->v.chain_failed)
            DP_INC(st->ssl_fail_verify_error);
        connect_failed(c, 0);
        return;
    }
    DP_INC(st->ssl_handshake);
    if (SSL_session_reused(u->ssl))
        DP_INC(st->ssl_session_reused);
    c->up_established = 1;
    host_result(c, c->host, 1);
    up_ready(c);
    /* Our Finished went out with the first request bytes, if the pump had
     * any; otherwise (the server speaks first) it must go now. */
    if (!c->dead && u->ssl) {
        int rel = dp_tls_release(u->ssl);
        if (rel < 0)
            conn_close(c, CLOSE_REMOTE);
        else if (rel > 0)
            side_set_events(c, u, u->events | EPOLLOUT);
    }
}

static void connected(struct conn *c, uint32_t events)
{
    struct side *u = &c->s[1];
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    /* A failed connect reports ERR/HUP; a plain EPOLLOUT is a success and
     * needs no SO_ERROR query. */
    if ((events & (EPOLLERR | EPOLLHUP)) &&
        getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr) {
        log_debug(COMP, "cluster %s: connect to %s: %s", c->cl->m->name, c->host->addr,
                  strerror(soerr));
        connect_failed(c, 0);
        return;
    }
    if (!c->cl->ctx) {
        c->up_established = 1;
        host_result(c, c->host, 1);
        up_ready(c);
        return;
    }
    memset(&u->v, 0, sizeof(u->v)); /* a retry starts afresh */
    /* The server cannot answer a ClientHello not sent yet: the BIO waits for
     * epoll instead of a recv for EAGAIN right after sending it. */
    u->drained = 1;
    u->ssl = SSL_new(c->cl->ctx);
    if (!u->ssl) {
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    if (dp_tls_set_socket(u->ssl, u->fd, &u->drained) != 0) {
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    SSL_set_connect_state(u->ssl);
    const struct dp_upstream_tls_context *t = c->cl->m->tls;
    if (t->sni)
        SSL_set_tlsext_host_name(u->ssl, t->sni);
    if (c->cl->alpn_len)
        SSL_set_alpn_protos(u->ssl, c->cl->alpn, c->cl->alpn_len);
    u->v.sans = t->common_tls_context.match_subject_alt_names;
    u->v.n_sans = t->common_tls_context.n_match_subject_alt_names;
    if (c->cl->keep_session) {
        u->v.on_session = cluster_new_session;
        u->v.owner = c->cl;
        pthread_mutex_lock(&c->cl->sess_mu);
        if (c->cl->sess)
            SSL_set_session(u->ssl, c->cl->sess);
        pthread_mutex_unlock(&c->cl->sess_mu);
    }
    dp_tls_set_verify(u->ssl, &u->v);
    c->state = C_UP_HS;
    up_handshake(c);
}

/* --- kernel forwarding ------------------------------------------------------------------------
 *
 * A plaintext tcp_proxy pair that has moved sm_after bytes in user space and
 * whose buffers are empty is handed to the kernel (sockmap.h): bytes then go
 * socket to socket without waking the worker. The worker keeps only
 * EPOLLRDHUP interest (plus the implicit HUP/ERR) and a timer:
 *  - EOF from one side: once the other socket has accepted every byte the
 *    kernel took from the first (polled every millisecond), the worker
 *    shuts the other socket's write side down, as the pump would; the other
 *    direction keeps flowing in the kernel. Both ways done: close.
 *  - A reset or an error: close, as the pump does on a failed recv/send.
 *  - The timer, every second at most (10 ms while bytes move): adds the
 *    kernel's byte counts to the stats, counts activity for the idle
 *    timeout, and watches the kernel's queue towards each socket.
 *  - Credit: the kernel has no back-pressure of its own on this path (it
 *    takes bytes from the sender whether or not the peer can send them
 *    on), so the program takes at most KF_CREDIT bytes more than the peer
 *    has accepted, and the timer raises that limit as the peer accepts
 *    them. A peer that falls that far behind pauses the pair in the
 *    program (new bytes stay on their socket, charged to its receive
 *    buffer: the sender's window closes), and the pair goes back to user
 *    space for good: stop (new bytes stay on their socket), drain (wait until
 *    each socket has accepted all the kernel took for it, so nothing the
 *    worker writes can overtake those bytes), then the ordinary pump with
 *    its bounded buffers. */

#define KF_TICK_MS      1000       /* idle pair: stats and idle timeout */
#define KF_BUSY_TICK_MS 5          /* pair that moved bytes: also the credit */
#define KF_CREDIT       (1u << 20) /* bytes the kernel may queue for a peer */

/* Adds the kernel's new byte counts to the stats; returns 1 if any moved. */
static int kfwd_flush(struct conn *c)
{
    struct dp_sockmap *sm = c->w->e->sm;
    int moved = 0;
    for (int d = 0; d < 2; d++) {
        int paused = 0;
        uint64_t t = dp_sockmap_taken(sm, c->kcookie[d], &paused);
        if (paused)
            c->kpaused |= 1 << d;
        if (t <= c->kcounted[d])
            continue;
        uint64_t n = t - c->kcounted[d];
        c->kcounted[d] = t;
        moved = 1;
        if (d == 0) {
            DP_ADD(c->l->tst->downstream_cx_rx_bytes_total, n);
            DP_ADD(cx_st(c)->upstream_cx_tx_bytes_total, n);
        } else {
            DP_ADD(cx_st(c)->upstream_cx_rx_bytes_total, n);
            DP_ADD(c->l->tst->downstream_cx_tx_bytes_total, n);
        }
    }
    return moved;
}

/* The pair closes while forwarded or draining: last counts, then the maps
 * forget it (closing the sockets takes them out of the socket maps). */
static void kfwd_close(struct conn *c)
{
    kfwd_flush(c);
    dp_sockmap_pair_forget(c->w->e->sm, c->kcookie);
    c->kmapped = 0;
}

/* Step 2: 1 once every byte the kernel took has been accepted by the other
 * socket (or that socket can no longer take any). */
static int kfwd_drained(struct conn *c)
{
    int done = 1;
    uint64_t sum = 0;
    for (int d = 0; d < 2; d++) {
        uint64_t w;
        if (dp_sockmap_written(c->s[1 - d].fd, &w) != 0)
            continue; /* closed or failed: the pump will see it */
        sum += w;
        if (w - c->kbase[1 - d] < c->kcounted[d])
            done = 0;
    }
    if (sum != c->kwritten) {
        c->kwritten = sum;
        c->last_io = c->w->now;
    }
    return done;
}

static void kfwd_check(struct conn *c)
{
    kfwd_flush(c);
    if (!kfwd_drained(c)) {
        timer_start(&c->w->heap, &c->t_idle, c->w->now + 1);
        return;
    }
    c->kfwd = KF_DONE;
    dp_sockmap_pair_forget(c->w->e->sm, c->kcookie);
    c->kmapped = 0;
    c->s[0].can_read = c->s[1].can_read = 1;
    timer_start(&c->w->heap, &c->t_idle, c->last_io + c->l->idle_ms);
    pump(c);
}

static void kfwd_stop(struct conn *c);

/* EOF of a forwarded pair (see above): propagates each side's EOF once the
 * other socket has taken everything before it; closes when both ways are
 * done. Returns 0 when the pair is closed or nothing is pending, 1 while a
 * half-close waits for the kernel's queue. */
static int kfwd_eof(struct conn *c)
{
    int pending = 0;
    for (int d = 0; d < 2; d++) {
        struct side *src = &c->s[d], *dst = &c->s[1 - d];
        if (!src->rd_eof || dst->wr_shut)
            continue;
        uint64_t w;
        if (dp_sockmap_written(dst->fd, &w) != 0) {
            /* The other side was reset: nothing more can reach it. */
            conn_close(c, d == 0 ? CLOSE_REMOTE : CLOSE_LOCAL);
            return 0;
        }
        if (w - c->kbase[1 - d] < c->kcounted[d]) {
            pending = 1;
            continue;
        }
        shutdown(dst->fd, SHUT_WR);
        dst->wr_shut = 1;
    }
    if (c->s[0].rd_eof && c->s[1].rd_eof && c->s[0].wr_shut && c->s[1].wr_shut) {
        conn_close(c, CLOSE_DONE);
        return 0;
    }
    return pending;
}

/* An EOF, HUP or error event on side s of a forwarded pair. */
static void kfwd_event(struct conn *c, struct side *s, uint32_t events)
{
    int d = s == &c->s[1];
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if ((events & EPOLLERR) && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
        soerr) {
        conn_close(c, d == 1 ? CLOSE_REMOTE : CLOSE_LOCAL);
        return;
    }
    /* The FIN came after the last segment: once dp_sockmap_sync returns,
     * the program has seen every byte of this side and the count is final. */
    dp_sockmap_sync(s->fd);
    kfwd_flush(c);
    if (c->kpaused) {
        /* Bytes wait on a socket (credit): user space reads them, and the
         * EOF after them. */
        kfwd_stop(c);
        return;
    }
    if (!s->rd_eof) {
        s->rd_eof = 1;
        if (!c->first_eof)
            c->first_eof = 1 + d;
    }
    /* Nothing more to hear from this side; HUP would repeat forever. */
    s->hup = 1;
    side_set_events(c, s, 0);
    if (kfwd_eof(c))
        timer_start(&c->w->heap, &c->t_idle, c->w->now + 1);
}

/* Step 1, when a peer falls behind. */
static void kfwd_stop(struct conn *c)
{
    const int fd[2] = {c->s[0].fd, c->s[1].fd};
    dp_sockmap_pair_stop(c->w->e->sm, fd, c->kcookie);
    c->kfwd = KF_DRAIN;
    c->kwritten = 0;
    for (int i = 0; i < 2; i++)
        side_set_events(c, &c->s[i], 0);
    kfwd_check(c);
}

/* Called by the pump when the buffers are empty; 1 if the kernel took over. */
static int kfwd_start(struct conn *c)
{
    struct dp_engine *eng = c->w->e;
    const int fd[2] = {c->s[0].fd, c->s[1].fd};
    /* What each socket has accepted so far (all the pump wrote): the drain
     * compares what it accepts later with what the kernel took. */
    if (dp_sockmap_written(fd[0], &c->kbase[0]) != 0 ||
        dp_sockmap_written(fd[1], &c->kbase[1]) != 0) {
        c->kfwd = KF_DONE;
        return 0;
    }
    int partial = 0;
    c->kcredit[0] = c->kcredit[1] = KF_CREDIT;
    c->kpaused = 0;
    int rc = dp_sockmap_pair_add(eng->sm, fd, KF_CREDIT, c->kcookie, &partial);
    c->kcounted[0] = c->kcounted[1] = 0;
    if (rc != 0 && !partial) {
        /* A socket that just got its FIN or reset cannot be added
         * (EOPNOTSUPP); full maps: ENOMEM/E2BIG. Stay in user space. */
        log_debug(COMP, "listener %s: sockmap: %s", c->l->m->name, strerror(-rc));
        c->kfwd = KF_DONE;
        return 0;
    }
    DP_INC(c->l->tst->sockmap_cx_total);
    c->kmapped = 1;
    if (rc != 0) {
        kfwd_stop(c);
        return 1;
    }
    c->kfwd = KF_ON;
    for (int i = 0; i < 2; i++)
        side_set_events(c, &c->s[i], EPOLLRDHUP);
    /* Segments that arrived before the program was attached wait in the
     * receive queue until the next one arrives, which may never happen (a
     * sender blocked by a full window). A recv hands them to the program
     * (tcp_bpf) and normally finds nothing for itself. */
    for (int i = 0; i < 2; i++) {
        struct pbuf *b = &c->b[i];
        if (!b->data)
            b->data = pool_get(c->w);
        ssize_t n = recv(c->s[i].fd, b->data, eng->o.buffer_size, MSG_DONTWAIT);
        if (n > 0) {
            /* Bytes the program left on the socket: they go after what it
             * took, once the drain is over. */
            b->off = 0;
            b->len = (uint32_t)n;
            if (i == 0)
                DP_ADD(c->l->tst->downstream_cx_rx_bytes_total, (uint64_t)n);
            else
                DP_ADD(cx_st(c)->upstream_cx_rx_bytes_total, (uint64_t)n);
        }
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            kfwd_stop(c); /* data, EOF or an error: the pump takes it from here */
            return 1;
        }
        pbuf_tidy(c->w, b, eng->o.buffer_size);
    }
    timer_start(&c->w->heap, &c->t_idle, c->w->now + KF_BUSY_TICK_MS);
    return 1;
}

/* Raises each direction's credit to what its peer has accepted plus
 * KF_CREDIT. */
static void kfwd_credit(struct conn *c)
{
    for (int d = 0; d < 2; d++) {
        uint64_t w;
        if (dp_sockmap_written(c->s[1 - d].fd, &w) != 0)
            continue;
        uint64_t credit = w - c->kbase[1 - d] + KF_CREDIT;
        if (credit > c->kcredit[d] &&
            dp_sockmap_set_credit(c->w->e->sm, c->kcookie[d], credit) == 0)
            c->kcredit[d] = credit;
    }
}

/* The idle timer of a forwarded or draining pair. */
static void kfwd_tick(struct conn *c)
{
    struct worker *w = c->w;
    if (c->kfwd == KF_DRAIN) {
        if (w->now - c->last_io >= c->l->idle_ms) {
            DP_INC(c->l->tst->idle_timeout);
            conn_close(c, CLOSE_LOCAL);
            return;
        }
        kfwd_check(c);
        return;
    }
    int64_t next = KF_TICK_MS;
    int moved = kfwd_flush(c);
    if (c->s[0].rd_eof || c->s[1].rd_eof) {
        if (moved)
            c->last_io = w->now;
        int pending = kfwd_eof(c);
        if (c->dead)
            return;
        if (pending) {
            if (w->now - c->last_io >= c->l->idle_ms) {
                DP_INC(c->l->tst->idle_timeout);
                conn_close(c, CLOSE_LOCAL);
            } else {
                timer_start(&w->heap, &c->t_idle, w->now + 1);
            }
            return;
        }
    }
    if (c->kpaused) {
        log_debug(COMP, "listener %s: sockmap: slow peer, back to user space", c->l->m->name);
        if ((c->kpaused & 1) && !c->paused_reading) {
            /* The upstream is slow: we stop reading the downstream, as the
             * pump would with a full buffer (it counts the resume). */
            c->paused_reading = 1;
            DP_INC(c->l->tst->downstream_flow_control_paused_reading_total);
        }
        kfwd_stop(c);
        return;
    }
    if (moved) {
        c->last_io = w->now;
        kfwd_credit(c);
        next = KF_BUSY_TICK_MS;
    }
    /* A peer more than half a credit behind may pause the pair any time:
     * keep looking often, so that user space takes over soon after. */
    for (int d = 0; d < 2; d++)
        if (c->kcredit[d] - c->kcounted[d] < KF_CREDIT / 2)
            next = KF_BUSY_TICK_MS;
    int64_t due = c->last_io + c->l->idle_ms;
    if (due <= w->now) {
        DP_INC(c->l->tst->idle_timeout);
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    timer_start(&w->heap, &c->t_idle, due < w->now + next ? due : w->now + next);
}

/* A pair may be handed to the kernel: plaintext tcp_proxy both ways (no HTTP
 * filter, no TLS), nothing buffered, no EOF or error seen, moved enough in
 * small messages (sm_bulk), and
 * both sockets read dry by the last recv (can_read clear). The last point
 * matters: the kernel hands the program whole queued segments
 * (tcp_read_skb), including one a recv has only partly consumed, whose head
 * would then be sent twice. Segments that arrive after a recv came back
 * short are whole. */
static int kfwd_eligible(const struct conn *c)
{
    const struct side *d = &c->s[0], *u = &c->s[1];
    return c->kfwd == KF_NONE && c->w->e->sm && !c->hs && c->state == C_PROXY && !d->ssl &&
           !u->ssl && c->b[0].len == 0 && c->b[1].len == 0 && !d->rd_eof && !u->rd_eof &&
           !d->wr_shut && !u->wr_shut && !d->hup && !u->hup && !c->in_again && !c->draining &&
           d->fd >= 0 && u->fd >= 0 && !d->can_read && !u->can_read &&
           c->moved >= c->w->e->sm_after &&
           (!c->w->e->sm_bulk || c->moved < c->w->e->sm_bulk * c->nwrites || c->nwrites == 0);
}

/* Moves bytes both ways until nothing moves, then sets epoll interest. */
static int http_tunnel(const struct conn *c);

static void pump(struct conn *c)
{
    if (c->kfwd == KF_ON || c->kfwd == KF_DRAIN)
        return; /* the kernel moves the bytes */
    if (c->hs && !http_tunnel(c)) {
        http_pump(c);
        return;
    }
    struct worker *w = c->w;
    uint32_t cap = w->e->o.buffer_size;
    int iter;
    for (iter = 0; iter < PUMP_ROUNDS; iter++) {
        int progress = 0;
        for (int d = 0; d < 2; d++) {
            struct side *src = &c->s[d], *dst = &c->s[1 - d];
            struct pbuf *b = &c->b[d];
            if (!src->rd_eof && b->off + b->len < cap &&
                (src->can_read || (src->ssl && SSL_has_pending(src->ssl)))) {
                if (!b->data)
                    b->data = pool_get(w);
                ssize_t n = side_read(src, b->data + b->off + b->len, cap - b->off - b->len);
                if (n > 0) {
                    b->len += (uint32_t)n;
                    progress = 1;
                    if (d == 0)
                        DP_ADD(c->l->tst->downstream_cx_rx_bytes_total, (uint64_t)n);
                    else
                        DP_ADD(cx_st(c)->upstream_cx_rx_bytes_total, (uint64_t)n);
                } else if (n == 0) {
                    src->rd_eof = 1;
                    if (!c->first_eof)
                        c->first_eof = 1 + d;
                    progress = 1;
                } else if (n != IO_AGAIN) {
                    /* The reason is from the upstream's point of view. */
                    conn_close(c, d == 1 ? CLOSE_REMOTE : CLOSE_LOCAL);
                    return;
                }
            }
            if (b->len > 0) {
                ssize_t n = side_write(dst, b->data + b->off, b->len);
                if (n > 0) {
                    b->off += (uint32_t)n;
                    b->len -= (uint32_t)n;
                    c->moved += (uint64_t)n;
                    c->nwrites++;
                    progress = 1;
                    if (d == 0)
                        DP_ADD(cx_st(c)->upstream_cx_tx_bytes_total, (uint64_t)n);
                    else
                        DP_ADD(c->l->tst->downstream_cx_tx_bytes_total, (uint64_t)n);
                } else if (n != IO_AGAIN) {
                    conn_close(c, d == 0 ? CLOSE_REMOTE : CLOSE_LOCAL);
                    return;
                }
            }
            pbuf_tidy(w, b, cap);
            if (b->len == 0) {
                if (src->rd_eof && !dst->wr_shut) {
                    /* Both ways done: the close just below sends the FIN of
                     * a plaintext side, no shutdown call needed (TLS still
                     * sends its close_notify). */
                    if (dst->ssl || !dst->rd_eof || !src->wr_shut)
                        side_shutdown(dst);
                    dst->wr_shut = 1;
                    progress = 1;
                }
            }
        }
        if (c->s[0].rd_eof && c->s[1].rd_eof && c->s[0].wr_shut && c->s[1].wr_shut) {
            conn_close(c, CLOSE_DONE);
            return;
        }
        if (!progress)
            break;
        c->last_io = w->now;
    }
    /* Out of rounds with data still moving: let other connections run, then
     * come back even if epoll has nothing to say (OpenSSL may be holding
     * decrypted bytes that no socket event will announce). */
    if (iter == PUMP_ROUNDS && !c->in_again) {
        c->in_again = 1;
        c->next_again = w->again;
        w->again = c;
    }
    if (kfwd_eligible(c) && kfwd_start(c))
        return;
    /* Interest: read a side while its buffer has room (back-pressure when
     * full), write a side while data waits for it; TLS may invert either. */
    int paused = 0;
    for (int i = 0; i < 2; i++) {
        struct side *s = &c->s[i];
        uint32_t ev = 0;
        int want_read = !s->rd_eof && c->b[i].off + c->b[i].len < cap;
        int want_write = c->b[1 - i].len > 0;
        if (!s->rd_eof && !want_read && i == 0)
            paused = 1;
        if (want_read)
            ev |= s->rd_wants_write ? EPOLLOUT : EPOLLIN;
        if (want_write)
            ev |= s->wr_wants_read ? EPOLLIN : EPOLLOUT;
        side_set_events(c, s, ev);
    }
    if (paused != c->paused_reading) {
        c->paused_reading = paused;
        if (paused)
            DP_INC(c->l->tst->downstream_flow_control_paused_reading_total);
        else
            DP_INC(c->l->tst->downstream_flow_control_resumed_reading_total);
    }
}

/* --- HTTP connection manager -------------------------------------------------------------------
 *
 * The I/O side of an HttpConnectionManager listener; the protocol (parsing,
 * routing, local replies) is in http.c. A downstream connection carries one
 * exchange at a time: the request head is parsed and routed, the request is
 * streamed to the route's cluster over the connection's upstream connection
 * (kept alive and reused while the next request goes to the same cluster),
 * the response is streamed back, and only then is the next (pipelined)
 * request parsed, so responses keep their order. b[0]/b[1] are the same
 * bounded buffers as tcp_proxy's: only bytes the codec has parsed
 * (parsed[d]) are forwarded, so memory per connection stays bounded and a
 * full buffer back-pressures the sender. An upgrade answered 101 turns the
 * connection into a tcp_proxy-like tunnel (the ordinary pump). */

enum hphase { H_HEAD, H_BODY, H_WAIT, H_CLOSING };

struct hstate {
    struct dp_http_codec *codec;
    enum hphase phase;
    uint32_t parsed[2]; /* bytes at the front of b[d] parsed: forwardable (or to drop) */
    int active;         /* counted in downstream_rq_active */
    int routed;         /* the request goes upstream (else a local reply) */
    int discard;        /* request bytes are dropped (local reply) */
    int rq_done, rs_done, rs_error;
    int status; /* final status sent downstream */
    int close_after, keep_alive;
    int tunnel, in_pump;
    uint64_t rs_sent; /* response bytes written downstream in this exchange */
    struct ccluster *rcl;
    /* The cluster stats the request is counted under (upstream_rq_*): the
     * route's cluster's, or for a flattened split the real cluster of the
     * first host picked for it; NULL until then. */
    struct dp_cluster_stats *rst;
    const struct dp_http_route *route;
    uint32_t retries;
    int exchanges; /* finished on this connection */
    int up_idle;   /* the upstream connection is idle and reusable */
};

static int http_tunnel(const struct conn *c)
{
    return c->hs->tunnel;
}

static int http_compile_listener(struct dp_engine *eng, struct snap *s, struct clistener *l,
                                 struct err *e)
{
    const struct dp_http_conn_manager *m = l->m->hcm;
    if (dp_http_routes_new(m, &l->routes, e) != 0)
        return err_set(e, "listener %s: %s", l->m->name, e ? e->msg : "bad route");
    size_t n = dp_http_routes_count(l->routes);
    l->rcl = xcalloc(n ? n : 1, sizeof(*l->rcl));
    for (size_t i = 0; i < n; i++) {
        const char *name = dp_http_routes_get(l->routes, i)->cluster;
        for (size_t j = 0; name && j < s->n_cs; j++)
            if (strcmp(s->cs[j].m->name, name) == 0)
                l->rcl[i] = &s->cs[j];
    }
    l->hst = dp_stats_acquire(eng->stats, DP_STAT_HTTP, m->stat_prefix ? m->stat_prefix : "");
    if (m->rbac)
        l->hrst = dp_stats_acquire(eng->stats, DP_STAT_RBAC, m->rbac->stat_prefix);
    if (m->idle_timeout_ms)
        l->idle_ms = m->idle_timeout_ms;
    return 0;
}

static struct hstate *http_state_new(struct conn *c)
{
    struct hstate *h = xcalloc(1, sizeof(*h));
    h->codec = dp_http_codec_new(c->w->e->o.buffer_size - 1);
    struct dp_http_stats *st = c->l->hst;
    DP_INC(st->downstream_cx_total);
    DP_ADD(st->downstream_cx_active, 1);
    return h;
}

/* Counts the routed request under st (once; upstream_rq_total and _active). */
static void http_rq_count(struct hstate *h, struct dp_cluster_stats *st)
{
    if (h->rst)
        return;
    h->rst = st;
    DP_INC(st->upstream_rq_total);
    DP_ADD(st->upstream_rq_active, 1);
}

/* start_connect picked host hst: a request routed to a split is counted
 * under its real cluster, as is the HTTP/1 connection. */
static void http_rq_host(struct conn *c, struct chost *hst)
{
    struct hstate *h = c->hs;
    if (!h->rcl)
        return;
    http_rq_count(h, hst->st);
    DP_INC(hst->st->upstream_cx_http1_total);
}

/* Counts the exchange's outcome once (status 0: reset, no status counted). */
static void http_exchange_stats(struct conn *c)
{
    struct hstate *h = c->hs;
    if (!h->active)
        return;
    h->active = 0;
    struct dp_http_stats *st = c->l->hst;
    int ok = h->status >= 100 && h->status < 600;
    DP_DEC(st->downstream_rq_active);
    if (ok) {
        DP_INC(st->downstream_rq_xx[h->status / 100 - 1]);
        DP_INC(st->downstream_rq_completed);
    }
    if (h->rcl) {
        http_rq_count(h, h->rcl->st); /* no host was picked */
        struct dp_cluster_stats *cs = h->rst;
        DP_DEC(cs->upstream_rq_active);
        if (ok) {
            DP_INC(cs->upstream_rq_xx[h->status / 100 - 1]);
            dp_stats_count_code(cs, h->status);
            DP_INC(cs->upstream_rq_completed);
        }
        h->rcl = NULL;
        h->rst = NULL;
    }
}

static void http_conn_closed(struct conn *c)
{
    struct hstate *h = c->hs;
    if (!h)
        return;
    http_exchange_stats(c);
    struct dp_http_stats *st = c->l->hst;
    DP_DEC(st->downstream_cx_active);
    DP_INC(st->downstream_cx_destroy);
    if (h->tunnel)
        DP_DEC(st->downstream_cx_upgrades_active);
    /* The state itself is freed with the connection (conn_free): callers
     * up the stack may still look at it after a close. */
}

static void http_state_free(struct hstate *h)
{
    if (!h)
        return;
    dp_http_codec_free(h->codec);
    free(h);
}

/* --- upstream connection pool --------------------------------------------------------------
 *
 * An idle keep-alive upstream connection left by a downstream connection
 * (it closed, or its next request goes to another cluster) is parked in its
 * worker's pool instead of being closed, and the next request of any
 * downstream connection of that worker for the same cluster (same
 * snapshot) takes it: no connect, no TLS handshake between proxies. The
 * pool is per worker, so it needs no lock. At most POOL_IDLE_MAX idle
 * connections per worker, each for at most POOL_IDLE_MS; one that the
 * upstream closes, or that sends application data while idle, is closed.
 * A parked connection keeps a reference to its snapshot (its cluster and
 * host live there); a new snapshot flushes the older ones' connections. */

/* Whether an idle upstream connection still looks usable: nothing to read
 * (a FIN or stray bytes mean the upstream is gone or confused) other than
 * a TLS record without data (a late session ticket). Catches the closes
 * epoll has reported but the loop has not handled yet. */
static int idle_alive(int fd, SSL *ssl)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (r == 0 || !ssl)
        return 0;
    ERR_clear_error();
    int n = SSL_read(ssl, &c, 1);
    int alive = n <= 0 && SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ;
    ERR_clear_error();
    return alive;
}

#define POOL_IDLE_MAX 64
#define POOL_IDLE_MS  60000

struct pconn {
    struct ev ev;
    struct worker *w;
    struct pconn *prev, *next;
    int fd, dead;
    SSL *ssl;
    struct dp_tls_verify v;
    int drained; /* the socket BIO's flag while parked (dp_tls_set_socket) */
    struct snap *snap;
    struct ccluster *cl;
    struct chost *host;
    int64_t since;
};

static void pool_unlink(struct pconn *p)
{
    struct worker *w = p->w;
    if (p->prev)
        p->prev->next = p->next;
    else
        w->idle = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    w->n_idle--;
}

/* Closes a parked connection; freed after the epoll batch (http_pool_reap). */
static void pool_close(struct pconn *p, enum close_reason why)
{
    struct worker *w = p->w;
    pool_unlink(p);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    if (p->ssl)
        SSL_free(p->ssl);
    close(p->fd);
    DP_DEC(p->host->st->upstream_cx_active);
    DP_DEC(p->host->hs->cx_active);
    DP_INC(p->host->st->upstream_cx_destroy);
    if (why == CLOSE_REMOTE)
        DP_INC(p->host->st->upstream_cx_destroy_remote);
    else
        DP_INC(p->host->st->upstream_cx_destroy_local);
    p->dead = 1;
    p->next = w->dead_idle;
    w->dead_idle = p;
}

static void http_pool_reap(struct worker *w)
{
    while (w->dead_idle) {
        struct pconn *p = w->dead_idle;
        w->dead_idle = p->next;
        snap_unref(p->snap);
        free(p);
    }
}

/* Closes the idle connections not of snapshot keep (NULL: all), and those
 * idle for too long. */
static void http_pool_flush(struct worker *w, struct snap *keep)
{
    for (struct pconn *p = w->idle, *n; p; p = n) {
        n = p->next;
        if (!keep || p->snap != keep || w->now - p->since > POOL_IDLE_MS)
            pool_close(p, CLOSE_LOCAL);
    }
}

/* The upstream closed, or sent something, while idle. A TLS record that
 * carries no data (a late session ticket) leaves it idle. */
static void http_pool_event(struct pconn *p)
{
    if (p->dead)
        return;
    char c;
    if (p->ssl) {
        ERR_clear_error();
        int r = SSL_read(p->ssl, &c, 1);
        if (r <= 0 && SSL_get_error(p->ssl, r) == SSL_ERROR_WANT_READ)
            return;
        ERR_clear_error();
        pool_close(p, r == 0 ? CLOSE_REMOTE : CLOSE_LOCAL);
        return;
    }
    ssize_t r = recv(p->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    pool_close(p, r == 0 ? CLOSE_REMOTE : CLOSE_LOCAL);
}

/* Moves c's idle upstream connection to the pool, if it can be reused. */
static void http_park(struct conn *c)
{
    struct hstate *h = c->hs;
    struct worker *w = c->w;
    struct side *u = &c->s[1];
    if (!h->up_idle || h->tunnel || c->state != C_PROXY || u->fd < 0 || u->rd_eof || u->wr_shut ||
        !c->host || !c->up_established || c->b[1].len)
        return;
    /* An ORIGINAL_DST host lives in the connection: not shareable. */
    if (c->host == &c->odst_host)
        return;
    h->up_idle = 0;
    http_pool_flush(w, w->snap);
    if (w->n_idle >= POOL_IDLE_MAX)
        pool_close(w->idle, CLOSE_LOCAL); /* the oldest is at the head */
    struct pconn *p = xcalloc(1, sizeof(*p));
    p->ev.kind = EV_POOL;
    p->w = w;
    p->fd = u->fd;
    p->ssl = u->ssl;
    p->v = u->v;
    /* The SSL points into the side it leaves (verify data, the BIO's drained
     * flag): point it at the pool entry. */
    if (p->ssl && dp_tls_set_socket(p->ssl, p->fd, &p->drained) != 0) {
        free(p);
        return;
    }
    if (p->ssl)
        dp_tls_set_verify(p->ssl, &p->v);
    p->snap = c->snap;
    snap_ref(p->snap);
    p->cl = c->cl;
    p->host = c->host;
    p->since = w->now;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &p->ev};
    if (epoll_ctl(w->epfd, u->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev) != 0) {
        /* Not watchable: give it back, the caller closes it. */
        if (p->ssl) {
            dp_tls_set_verify(p->ssl, &u->v);
            if (dp_tls_set_socket(p->ssl, p->fd, &u->drained) != 0)
                log_warn(COMP, "TLS socket BIO: out of memory");
        }
        snap_unref(p->snap);
        free(p);
        return;
    }
    /* Appended at the tail: the head is the oldest. */
    struct pconn **tail = &w->idle, *prev = NULL;
    while (*tail) {
        prev = *tail;
        tail = &(*tail)->next;
    }
    p->prev = prev;
    *tail = p;
    w->n_idle++;
    /* The connection left c: nothing of it is closed or counted there. */
    u->fd = -1;
    u->ssl = NULL;
    u->registered = 0;
    u->events = 0;
    c->host = NULL;
    c->up_established = 0;
}

/* Gives c an idle connection to cl (to host want, when not NULL) from the
 * pool (newest first); 1 if so. */
static int http_unpark(struct conn *c, struct ccluster *cl, struct chost *want)
{
    struct worker *w = c->w;
    struct pconn *p = NULL;
    for (;;) {
        p = NULL;
        for (struct pconn *q = w->idle; q; q = q->next)
            if (q->cl == cl && q->snap == c->snap && w->now - q->since <= POOL_IDLE_MS &&
                (!want || q->host == want))
                p = q;
        if (!p)
            return 0;
        if (idle_alive(p->fd, p->ssl))
            break;
        pool_close(p, CLOSE_REMOTE);
    }
    struct side *u = &c->s[1];
    struct epoll_event ev = {.events = 0, .data.ptr = &u->ev};
    /* The SSL's BIO flag and verify data move to c's side. */
    if ((p->ssl && dp_tls_set_socket(p->ssl, p->fd, &u->drained) != 0) ||
        epoll_ctl(w->epfd, EPOLL_CTL_MOD, p->fd, &ev) != 0) {
        if (p->ssl)
            dp_tls_set_socket(p->ssl, p->fd, &p->drained); /* best effort */
        pool_close(p, CLOSE_LOCAL);
        return 0;
    }
    pool_unlink(p);
    u->fd = p->fd;
    u->ssl = p->ssl;
    u->v = p->v;
    if (u->ssl)
        dp_tls_set_verify(u->ssl, &u->v);
    u->registered = 1;
    u->events = 0;
    u->hup = 0;
    u->rd_eof = u->wr_shut = 0;
    u->can_read = 1;
    u->rd_wants_write = u->wr_wants_read = 0;
    c->host = p->host;
    c->up_established = 1;
    c->state = C_PROXY;
    /* Freed after the batch: an event of this batch may still name it. */
    p->dead = 1;
    p->next = w->dead_idle;
    w->dead_idle = p;
    return 1;
}

/* The connection speaks HTTP from now on: after the accept, the TLS
 * handshake and network RBAC, or the PERMISSIVE inspector's choice of the
 * mTLS chain. (The inspector's plaintext and TLS chains are tcp_proxy.) */
static void http_start(struct conn *c)
{
    struct worker *w = c->w;
    c->hs = http_state_new(c);
    c->state = C_PROXY;
    c->s[0].can_read = 1;
    c->last_io = w->now;
    timer_start(&w->heap, &c->t_idle, w->now + c->l->idle_ms);
    http_pump(c);
}

/* Puts an Envoy-like local reply in b[1]; the request's remaining bytes are
 * dropped. An upstream connection in the middle of this exchange is closed.
 * The caller checks c->dead. */
static void http_local_reply(struct conn *c, int status, const char *body, int close)
{
    struct hstate *h = c->hs;
    struct worker *w = c->w;
    struct pbuf *b = &c->b[1];
    if (h->routed && c->s[1].fd >= 0) {
        timer_stop(&w->heap, &c->t_conn);
        up_close(c, CLOSE_LOCAL);
    }
    c->state = C_PROXY;
    timer_stop(&w->heap, &c->t_rq);
    if (b->len || h->rs_sent) {
        /* A response has begun: all we can do is reset. */
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    if (!b->data)
        b->data = pool_get(w);
    b->off = 0;
    /* Say so when the connection will close: asked, or the client's
     * request (its head is parsed by now) does not keep it alive. */
    if (h->phase != H_HEAD && !dp_http_codec_request_keep_alive(h->codec))
        close = 1;
    b->len = (uint32_t)dp_http_local_reply(b->data, w->e->o.buffer_size, status, body, close);
    h->parsed[1] = b->len;
    h->status = status;
    h->rs_done = 1;
    /* Counted now, before the client can have read the reply. */
    http_exchange_stats(c);
    h->routed = 0;
    h->discard = 1;
    if (close)
        h->close_after = 1;
}

static int retry_on_connect(const char *on)
{
    return on && (strstr(on, "connect-failure") || strstr(on, "reset") ||
                  strstr(on, "gateway-error") || strstr(on, "5xx"));
}

/* An upstream connection for the request could not be made (why NULL: no
 * host). Retries per the route's retry policy (nothing was sent, so it is
 * safe), else answers 503 as Envoy. Returns 1 (handled). */
static int http_connect_failed(struct conn *c, const char *why)
{
    struct hstate *h = c->hs;
    const struct dp_http_route *r = h->route;
    if (h->tunnel)
        return 0; /* HTTP/2 passthrough: closed as tcp_proxy would */
    if (why && r && r->retry_on && h->retries < r->num_retries && retry_on_connect(r->retry_on)) {
        h->retries++;
        DP_INC((h->rst ? h->rst : c->cl->st)->upstream_rq_retry);
        c->attempts = 0;
        start_connect(c);
        return 1;
    }
    timer_stop(&c->w->heap, &c->t_conn);
    h->routed = 0; /* the socket is already closed */
    http_local_reply(c, 503,
                     why ? "upstream connect error or disconnect/reset before headers. reset "
                           "reason: connection failure"
                         : "no healthy upstream",
                     0);
    if (!c->dead && !h->in_pump)
        http_pump(c);
    return 1;
}

static void http_timeout(struct conn *c)
{
    struct hstate *h = c->hs;
    if (!h || c->dead || h->rs_done)
        return;
    if (h->rcl) {
        http_rq_count(h, h->rcl->st);
        DP_INC(h->rst->upstream_rq_timeout);
    }
    http_local_reply(c, 504, "upstream request timeout", 0);
    if (!c->dead)
        http_pump(c);
}

static int has_header(const struct dp_http_request *rq, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < rq->n_headers; i++)
        if (rq->headers[i].name_len == n && strncasecmp(rq->headers[i].name, name, n) == 0)
            return 1;
    return 0;
}

/* Envoy's defaults for a sidecar HCM: x-request-id (a random UUID, kept
 * when the client sent one, so both proxies and the application see the
 * same id) and x-forwarded-proto (http or https, kept when present). They
 * are appended to the head in b[0] when it has room (it is skipped
 * otherwise); rq's pointers stay valid since they all lie before it. */
static void http_add_headers(struct conn *c, const struct dp_http_request *rq)
{
    struct hstate *h = c->hs;
    struct pbuf *b = &c->b[0];
    uint32_t cap = c->w->e->o.buffer_size;
    size_t n;
    if (!has_header(rq, "x-request-id")) {
        uint64_t a = xorshift(&c->w->rnd), r = xorshift(&c->w->rnd);
        char id[40];
        /* UUID version 4, variant 10. */
        snprintf(id, sizeof(id), "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
                 (unsigned)(0x8000 | ((r >> 48) & 0x3fff)),
                 (unsigned long long)(r & 0xffffffffffffull));
        n = dp_http_codec_add_header(h->codec, b->data + b->off, b->len, cap - b->off,
                                     "x-request-id", id);
        b->len += (uint32_t)n;
        h->parsed[0] += (uint32_t)n;
    }
    if (!has_header(rq, "x-forwarded-proto")) {
        n = dp_http_codec_add_header(h->codec, b->data + b->off, b->len, cap - b->off,
                                     "x-forwarded-proto", rq->tls ? "https" : "http");
        b->len += (uint32_t)n;
        h->parsed[0] += (uint32_t)n;
    }
}

/* A request head is complete: strip headers, pick the route, and connect
 * (or reuse the upstream connection) or answer locally. */
static void http_route(struct conn *c)
{
    struct hstate *h = c->hs;
    struct pbuf *b = &c->b[0];
    struct worker *w = c->w;
    if (w->snap && w->snap != c->snap && !c->draining) {
        /* A newer configuration with the same listener (endpoints,
         * clusters or secrets changed): requests use it from now on, as
         * Envoy routes each request with the current configuration. The
         * upstream connection belongs to the old one and goes. */
        struct clistener *nl = snap_find_listener(w->snap, c->l->m->name);
        if (nl && nl->routes && strcmp(nl->fingerprint, c->l->fingerprint) == 0) {
            if (c->s[1].fd >= 0)
                up_close(c, CLOSE_LOCAL);
            h->up_idle = 0;
            snap_ref(w->snap);
            snap_unref(c->snap);
            c->snap = w->snap;
            c->l = nl;
            c->cl = NULL;
        }
    }
    struct clistener *l = c->l;
    const struct dp_http_route_config *rc = &l->m->hcm->route_config;
    char *msg = b->data + b->off;
    if (rc->n_request_headers_to_remove) {
        size_t rm = dp_http_codec_strip(h->codec, msg, b->len, rc->request_headers_to_remove,
                                        rc->n_request_headers_to_remove);
        b->len -= (uint32_t)rm;
        h->parsed[0] -= (uint32_t)rm;
    }
    struct dp_http_header hdrs[DP_HTTP_MAX_HEADERS];
    struct dp_http_request rq;
    dp_http_codec_request(h->codec, msg, hdrs, &rq);
    rq.tls = c->s[0].ssl != NULL;
    http_add_headers(c, &rq);
    if (h->exchanges == 0)
        DP_INC(l->hst->downstream_cx_http1_total);
    DP_INC(l->hst->downstream_rq_total);
    DP_INC(l->hst->downstream_rq_http1_total);
    DP_ADD(l->hst->downstream_rq_active, 1);
    h->active = 1;
    h->retries = 0;
    const struct dp_rbac *rbac = l->m->hcm->rbac;
    if (rbac) {
        /* envoy.filters.http.rbac runs before the router. */
        if (!rbac_check(rbac, c)) {
            DP_INC(l->hrst->denied);
            http_local_reply(c, 403, "RBAC: access denied", 0);
            return;
        }
        DP_INC(l->hrst->allowed);
    }
    int idx = dp_http_route_select(l->routes, &rq);
    if (idx < 0) {
        DP_INC(l->hst->no_route);
        http_local_reply(c, 404, NULL, 0);
        return;
    }
    h->route = dp_http_routes_get(l->routes, (size_t)idx);
    struct ccluster *cl = l->rcl[idx];
    if (!cl) {
        DP_INC(l->hst->no_cluster);
        http_local_reply(
            c, h->route->cluster_not_found_status ? h->route->cluster_not_found_status : 503, NULL,
            0);
        return;
    }
    DP_INC(l->hst->rq_total);
    h->routed = 1;
    h->rcl = cl;
    h->rst = NULL;
    if (!cl->m->synthetic)
        http_rq_count(h, cl->st);
    /* Every request is balanced (and a split's weights apply per request):
     * the balancer picks the host first, then a connection to that host is
     * reused (this one, or one from the pool) or opened. */
    struct chost *want = NULL;
    if (!cl->odst_hs) {
        struct ccluster *prev = c->cl;
        c->cl = cl;
        want = pick_host(c);
        c->cl = prev;
    }
    int alive = c->s[1].fd >= 0 && c->state == C_PROXY && !c->s[1].rd_eof && c->b[1].len == 0 &&
                idle_alive(c->s[1].fd, c->s[1].ssl);
    if (alive && c->cl == cl && (!want || c->host == want)) {
        http_rq_count(h, cx_st(c));
        h->up_idle = 0;
        return; /* keep-alive: the upstream connection is reused */
    }
    if (c->s[1].fd >= 0) {
        if (alive)
            http_park(c);
        up_close(c, alive ? CLOSE_LOCAL : CLOSE_REMOTE);
    }
    h->up_idle = 0;
    c->s[1].rd_eof = c->s[1].wr_shut = 0;
    c->cl = cl;
    c->attempts = 0;
    if (http_unpark(c, cl, want)) {
        http_rq_count(h, cx_st(c));
        return;
    }
    c->want_host = want;
    start_connect(c); /* counts upstream_cx_http1_total (http_rq_host) */
}

/* The exchange is over (response flushed): next request, or close. */
static void http_finish(struct conn *c)
{
    struct hstate *h = c->hs;
    struct worker *w = c->w;
    int up_keep = h->routed && !h->rs_error && dp_http_codec_response_keep_alive(h->codec) &&
                  h->rq_done && h->parsed[0] == 0;
    int status = h->status;
    if (h->routed && dp_http_codec_response_until_close(h->codec))
        h->close_after = 1;
    timer_stop(&w->heap, &c->t_rq);
    http_exchange_stats(c);
    if (status == 101 && h->routed) {
        /* Upgrade accepted: from now on a raw tunnel. */
        h->tunnel = 1;
        h->parsed[0] = h->parsed[1] = 0;
        DP_INC(c->l->hst->downstream_cx_upgrades_total);
        DP_ADD(c->l->hst->downstream_cx_upgrades_active, 1);
        pump(c);
        return;
    }
    if (c->s[1].fd >= 0 && ((h->routed && !up_keep) || c->s[1].rd_eof))
        up_close(c, c->s[1].rd_eof ? CLOSE_REMOTE : CLOSE_LOCAL);
    if (c->s[1].fd >= 0 && h->routed && up_keep)
        h->up_idle = 1; /* may be parked in the worker's pool */
    if (h->parsed[0] > 0) {
        /* The rest of a request the upstream answered without reading. */
        c->b[0].off += h->parsed[0];
        c->b[0].len -= h->parsed[0];
        h->parsed[0] = 0;
    }
    /* A draining connection (its listener changed or went) closes after
     * the exchange, as Envoy's drain does for HTTP/1. */
    if (!h->rq_done || h->close_after || !h->keep_alive || c->draining ||
        (c->s[0].rd_eof && c->b[0].len == 0)) {
        /* Close after the reply: FIN now, then read (and drop) until the
         * client closes, so a reset does not destroy the reply. */
        struct side *d = &c->s[0];
        if (!d->wr_shut) {
            side_shutdown(d);
            d->wr_shut = 1;
        }
        /* No request follows on this connection: its idle upstream connection
         * goes back to the pool now, not when the client gets round to
         * closing (a client that closes and connects again at once would
         * otherwise race its own lingering connection for it). */
        if (h->up_idle)
            http_park(c);
        h->phase = H_CLOSING;
        if (d->rd_eof)
            conn_close(c, CLOSE_LOCAL);
        return;
    }
    dp_http_codec_next(h->codec);
    h->exchanges++;
    h->phase = H_HEAD;
    h->routed = h->discard = h->rq_done = h->rs_done = h->rs_error = 0;
    h->status = 0;
    h->rs_sent = 0;
    h->route = NULL;
}

/* Parses what it can of b[0]; returns 1 if something happened. */
/* HTTP/2 with prior knowledge (h2c, what gRPC clients send between
 * proxies here): the engine does not speak HTTP/2, so the connection is
 * tunnelled, as tcp_proxy would, to the cluster of the route a bare
 * "POST /" selects. Returns 1 if the connection was taken over (or must
 * wait for the rest of the preface: *wait). */
static const char H2_PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static int http_h2_passthrough(struct conn *c, int *wait)
{
    struct hstate *h = c->hs;
    struct pbuf *b = &c->b[0];
    size_t want = sizeof(H2_PREFACE) - 1;
    size_t n = b->len < want ? b->len : want;
    *wait = 0;
    if (h->exchanges || h->parsed[0] || memcmp(b->data + b->off, H2_PREFACE, n) != 0)
        return 0;
    if (n < want) {
        *wait = 1;
        return 1;
    }
    struct clistener *l = c->l;
    struct dp_http_request rq = {
        .method = "POST", .path = "/", .path_len = 1, .tls = c->s[0].ssl != NULL};
    int idx = dp_http_route_select(l->routes, &rq);
    struct ccluster *cl = idx < 0 ? NULL : l->rcl[idx];
    DP_INC(l->hst->downstream_cx_http2_total);
    if (!cl || (l->m->hcm->rbac && !rbac_check(l->m->hcm->rbac, c))) {
        if (idx < 0)
            DP_INC(l->hst->no_route);
        else
            DP_INC(l->hst->no_cluster);
        conn_close(c, CLOSE_LOCAL);
        return 1;
    }
    log_debug(COMP, "listener %s: HTTP/2 prior knowledge, tunnelled to %s", l->m->name,
              cl->m->name);
    h->tunnel = 1;
    h->parsed[0] = h->parsed[1] = 0;
    DP_ADD(l->hst->downstream_cx_upgrades_active, 1);
    DP_INC(l->hst->downstream_cx_upgrades_total);
    c->cl = cl;
    c->attempts = 0;
    start_connect(c);
    return 1;
}

static int http_parse_request(struct conn *c)
{
    struct hstate *h = c->hs;
    struct pbuf *b = &c->b[0];
    int progress = 0;
    int wait;
    if (h->phase == H_HEAD && b->len > 0 && http_h2_passthrough(c, &wait))
        return !wait;
    while (!c->dead && (h->phase == H_HEAD || h->phase == H_BODY) && b->len > h->parsed[0]) {
        size_t used;
        enum dp_http_ev ev = dp_http_codec_request_feed(h->codec, b->data + b->off + h->parsed[0],
                                                        b->len - h->parsed[0], &used);
        h->parsed[0] += (uint32_t)used;
        progress = 1;
        if (ev == DP_HTTP_HEAD) {
            h->phase = H_BODY;
            http_route(c);
        } else if (ev == DP_HTTP_DONE) {
            h->rq_done = 1;
            h->keep_alive = dp_http_codec_request_keep_alive(h->codec);
            h->phase = H_WAIT;
            if (h->routed && h->route) {
                uint32_t t = h->route->timeout_ms ? h->route->timeout_ms : 15000;
                if (t != UINT32_MAX)
                    timer_start(&c->w->heap, &c->t_rq, c->w->now + t);
            }
        } else if (ev == DP_HTTP_ERROR) {
            DP_INC(c->l->hst->downstream_cx_protocol_error);
            int st = dp_http_codec_error(h->codec);
            if (st == 431)
                DP_INC(c->l->hst->downstream_rq_too_large);
            if (!h->active) {
                DP_INC(c->l->hst->downstream_rq_total);
                DP_ADD(c->l->hst->downstream_rq_active, 1);
                h->active = 1;
            }
            h->routed = h->routed && c->s[1].fd >= 0;
            http_local_reply(c, st, st == 431 ? "Request Header Fields Too Large" : "Bad Request",
                             1);
            if (c->dead)
                return 1;
            /* Nothing more is parsed; what the client still sends is dropped. */
            h->rq_done = 0;
            h->phase = H_WAIT;
            b->off = 0;
            b->len = 0;
            h->parsed[0] = 0;
        } else {
            break;
        }
    }
    return progress;
}

/* Parses what it can of b[1] (eof: the upstream closed). */
static int http_parse_response(struct conn *c, int eof)
{
    struct hstate *h = c->hs;
    struct pbuf *b = &c->b[1];
    if (!h->routed || h->rs_done || (b->len <= h->parsed[1] && !eof))
        return 0;
    size_t used;
    enum dp_http_ev ev = dp_http_codec_response_feed(h->codec, b->data + b->off + h->parsed[1],
                                                     b->len - h->parsed[1], &used);
    h->parsed[1] += (uint32_t)used;
    if (ev == DP_HTTP_DONE) {
        h->rs_done = 1;
        h->status = dp_http_codec_status(h->codec);
        http_exchange_stats(c); /* before the client can have read it all */
        timer_stop(&c->w->heap, &c->t_rq);
        if (b->len > h->parsed[1] && h->status != 101) {
            /* Bytes after the response: the upstream is confused; drop them. */
            b->len = h->parsed[1];
            h->rs_error = 1;
        }
    } else if (ev == DP_HTTP_ERROR) {
        if (h->rs_sent == 0 && h->parsed[1] == 0) {
            b->len = 0;
            http_local_reply(c, 503,
                             "upstream connect error or disconnect/reset before headers. reset "
                             "reason: connection termination",
                             0);
        } else {
            conn_close(c, CLOSE_REMOTE);
        }
    }
    return 1;
}

/* A stream (a request head begun, or an exchange under way) may sit idle
 * for stream_idle_timeout (default 5 min, Envoy's), the connection between
 * requests for the connection idle timeout (default 1 h). */
static int http_in_stream(struct conn *c)
{
    struct hstate *h = c->hs;
    /* In H_HEAD nothing of the next request has left b[0] yet. */
    return !h->tunnel && (h->active || (h->phase == H_HEAD && c->b[0].len > 0));
}

static uint32_t http_idle_limit(struct conn *c)
{
    uint32_t st = c->l->m->hcm->stream_idle_timeout_ms;
    st = st ? st : 300000;
    if (c->hs && http_in_stream(c) && st != UINT32_MAX && st < c->l->idle_ms)
        return st;
    return c->l->idle_ms;
}

/* The idle timer fired. A stream without a response yet gets Envoy's 408
 * "stream timeout" and the connection closes after it; returns 1 then. */
static int http_idle_expired(struct conn *c)
{
    struct hstate *h = c->hs;
    if (!http_in_stream(c) || h->rs_sent || c->b[1].len)
        return 0;
    DP_INC(c->l->hst->downstream_rq_idle_timeout);
    if (!h->active) {
        DP_INC(c->l->hst->downstream_rq_total);
        DP_ADD(c->l->hst->downstream_rq_active, 1);
        h->active = 1;
    }
    http_local_reply(c, 408, "stream timeout", 1);
    if (c->dead)
        return 1;
    h->rq_done = 0;
    h->phase = H_WAIT;
    c->b[0].off = c->b[0].len = 0;
    h->parsed[0] = 0;
    c->last_io = c->w->now;
    http_pump(c);
    return 1;
}

/* The proxy drains: an HTTP connection between requests closes now, one
 * in an exchange after it (http_finish), as Envoy's HTTP/1 drain. */
static void http_drain(struct conn *c)
{
    struct hstate *h = c->hs;
    c->draining = 1;
    if (!h->tunnel && !h->active && h->phase == H_HEAD && c->b[0].len == 0 && c->b[1].len == 0 &&
        c->state == C_PROXY)
        conn_close(c, CLOSE_LOCAL);
}

static void http_interest(struct conn *c)
{
    struct hstate *h = c->hs;
    uint32_t cap = c->w->e->o.buffer_size;
    struct side *d = &c->s[0], *u = &c->s[1];
    if (c->state != C_PROXY) {
        /* Connecting: the downstream waits (its hang-up still shows). */
        side_set_events(c, d, 0);
        return;
    }
    uint32_t ev = 0;
    if (!d->rd_eof && c->b[0].off + c->b[0].len < cap)
        ev |= d->rd_wants_write ? EPOLLOUT : EPOLLIN;
    if (h->parsed[1] > 0)
        ev |= d->wr_wants_read ? EPOLLIN : EPOLLOUT;
    side_set_events(c, d, ev);
    if (u->fd >= 0) {
        ev = 0;
        if (!u->rd_eof && c->b[1].off + c->b[1].len < cap && !h->rs_done)
            ev |= u->rd_wants_write ? EPOLLOUT : EPOLLIN;
        if (h->routed && h->parsed[0] > 0)
            ev |= u->wr_wants_read ? EPOLLIN : EPOLLOUT;
        side_set_events(c, u, ev);
    }
}

static void http_pump(struct conn *c)
{
    struct worker *w = c->w;
    struct hstate *h = c->hs;
    uint32_t cap = w->e->o.buffer_size;
    struct side *d = &c->s[0], *u = &c->s[1];
    struct pbuf *b0 = &c->b[0], *b1 = &c->b[1];
    h->in_pump = 1;
    int iter;
    for (iter = 0; iter < PUMP_ROUNDS && !c->dead && !h->tunnel; iter++) {
        int progress = 0;
        /* Downstream → b[0]. */
        if (!d->rd_eof && b0->off + b0->len < cap &&
            (d->can_read || (d->ssl && SSL_has_pending(d->ssl)))) {
            if (!b0->data)
                b0->data = pool_get(w);
            ssize_t n = side_read(d, b0->data + b0->off + b0->len, cap - b0->off - b0->len);
            if (n > 0) {
                b0->len += (uint32_t)n;
                DP_ADD(c->l->hst->downstream_cx_rx_bytes_total, (uint64_t)n);
                progress = 1;
            } else if (n == 0) {
                d->rd_eof = 1;
                progress = 1;
            } else if (n != IO_AGAIN) {
                conn_close(c, CLOSE_LOCAL);
                break;
            }
        }
        if (h->phase == H_CLOSING) {
            b0->off = b0->len = 0; /* dropped */
            if (d->rd_eof) {
                conn_close(c, CLOSE_LOCAL);
                break;
            }
        }
        progress |= http_parse_request(c);
        if (c->dead)
            break;
        if (h->phase == H_HEAD && d->rd_eof && b0->len == h->parsed[0]) {
            /* The client left between requests (or in a head). */
            conn_close(c, CLOSE_LOCAL);
            break;
        }
        /* Parsed request bytes → upstream (or dropped). */
        if (h->parsed[0] > 0 && h->discard) {
            b0->off += h->parsed[0];
            b0->len -= h->parsed[0];
            h->parsed[0] = 0;
            progress = 1;
        } else if (h->parsed[0] > 0 && h->routed && c->state == C_PROXY && u->fd >= 0) {
            ssize_t n = side_write(u, b0->data + b0->off, h->parsed[0]);
            if (n > 0) {
                b0->off += (uint32_t)n;
                b0->len -= (uint32_t)n;
                h->parsed[0] -= (uint32_t)n;
                DP_ADD(cx_st(c)->upstream_cx_tx_bytes_total, (uint64_t)n);
                progress = 1;
            } else if (n != IO_AGAIN) {
                u->rd_eof = 1; /* the upstream is gone: see the response side */
                http_parse_response(c, 1);
                if (c->dead)
                    break;
                progress = 1;
            }
        }
        /* Upstream → b[1]. */
        if (c->state == C_PROXY && u->fd >= 0 && !u->rd_eof && !h->rs_done &&
            b1->off + b1->len < cap && (u->can_read || (u->ssl && SSL_has_pending(u->ssl)))) {
            if (!b1->data)
                b1->data = pool_get(w);
            ssize_t n = side_read(u, b1->data + b1->off + b1->len, cap - b1->off - b1->len);
            if (n > 0) {
                if (!h->routed) {
                    /* Bytes from an idle upstream connection: not HTTP we asked for. */
                    up_close(c, CLOSE_REMOTE);
                } else {
                    b1->len += (uint32_t)n;
                    DP_ADD(cx_st(c)->upstream_cx_rx_bytes_total, (uint64_t)n);
                }
                progress = 1;
            } else if (n == 0 || n != IO_AGAIN) {
                u->rd_eof = 1;
                progress = 1;
                if (!h->routed)
                    up_close(c, CLOSE_REMOTE); /* an idle keep-alive connection closed */
                else
                    http_parse_response(c, 1);
                if (c->dead)
                    break;
            }
        }
        progress |= http_parse_response(c, 0);
        if (c->dead)
            break;
        /* Parsed response bytes (or a local reply) → downstream. */
        if (h->parsed[1] > 0) {
            ssize_t n = side_write(d, b1->data + b1->off, h->parsed[1]);
            if (n > 0) {
                b1->off += (uint32_t)n;
                b1->len -= (uint32_t)n;
                h->parsed[1] -= (uint32_t)n;
                h->rs_sent += (uint64_t)n;
                DP_ADD(c->l->hst->downstream_cx_tx_bytes_total, (uint64_t)n);
                progress = 1;
            } else if (n != IO_AGAIN) {
                conn_close(c, CLOSE_LOCAL);
                break;
            }
        }
        pbuf_tidy(w, b1, cap);
        pbuf_tidy(w, b0, cap);
        /* The exchange is over once the response is flushed and, for a local
         * reply, the request is drained (or the connection is to close). */
        if (h->rs_done && h->phase != H_CLOSING && b1->len == 0 &&
            (h->routed || h->rq_done || h->close_after || h->phase == H_WAIT)) {
            http_finish(c);
            progress = 1;
            if (c->dead || h->tunnel)
                break;
        }
        if (!progress)
            break;
        c->last_io = w->now;
    }
    if (c->dead)
        return;
    h->in_pump = 0;
    if (h->tunnel) {
        /* pump() took over, or will once the upstream is connected. */
        if (c->state != C_PROXY)
            side_set_events(c, d, 0);
        return;
    }
    if (iter == PUMP_ROUNDS && !c->in_again) {
        c->in_again = 1;
        c->next_again = w->again;
        w->again = c;
    }
    /* The idle timer is re-armed lazily; bring it forward for a stream. */
    int64_t due = c->last_io + http_idle_limit(c);
    if (c->t_idle.idx == SIZE_MAX || c->t_idle.at > due)
        timer_start(&w->heap, &c->t_idle, due);
    http_interest(c);
}

/* --- PERMISSIVE: the tls_inspector's choice of filter chain (dp/sniff.h) --------------------- */

/* The downstream TLS handshake of a TLS listener (at accept, or when the
 * PERMISSIVE inspector takes the mTLS chain). */
static void down_tls_begin(struct conn *c)
{
    struct clistener *l = c->l;
    struct side *d = &c->s[0];
    d->ssl = SSL_new(l->ctx);
    if (!d->ssl || dp_tls_set_socket(d->ssl, d->fd, &d->drained) != 0) {
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    SSL_set_accept_state(d->ssl);
    const struct dp_common_tls_context *t = &l->m->tls->common_tls_context;
    d->v.sans = t->match_subject_alt_names;
    d->v.n_sans = t->n_match_subject_alt_names;
    d->v.alpn = l->alpn_len ? l->alpn : NULL;
    d->v.alpn_len = l->alpn_len;
    dp_tls_set_verify(d->ssl, &d->v);
    c->state = C_DOWN_HS;
    down_handshake(c);
}

/* Peeks at what the client sent (nothing is consumed: the chain taken
 * reads it all) and takes the chain Kuma's PERMISSIVE listener would: mTLS
 * for a ClientHello offering ALPN kuma, else the plaintext or TLS chain,
 * proxied as it is to that chain's cluster, without RBAC. */
static void sniff_step(struct conn *c, uint32_t events)
{
    static _Thread_local unsigned char buf[DP_SNIFF_MAX];
    struct side *d = &c->s[0];
    ssize_t n = recv(d->fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        n = -2;
    if (n == -1) {
        conn_close(c, CLOSE_REMOTE);
        return;
    }
    int eof = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 || n == 0;
    if (n == 0) {
        conn_close(c, CLOSE_REMOTE); /* closed before saying anything */
        return;
    }
    enum dp_sniff k = dp_sniff_classify(buf, n > 0 ? (size_t)n : 0, eof && n > 0);
    if (k == DP_SNIFF_MORE)
        return; /* edge-triggered: the next bytes wake us (or the deadline) */
    if (k == DP_SNIFF_TLS_KUMA) {
        down_tls_begin(c);
        return;
    }
    if (k == DP_SNIFF_RAW && c->l->m->raw_http) {
        /* PERMISSIVE plaintext HTTP: the listener's HCM, without TLS. */
        timer_stop(&c->w->heap, &c->t_conn);
        side_set_events(c, d, 0);
        http_start(c);
        return;
    }
    const struct dp_tcp_proxy *tp =
        k == DP_SNIFF_RAW ? c->l->m->raw_tcp_proxy : c->l->m->tls_tcp_proxy;
    c->cl = NULL;
    for (size_t i = 0; tp && tp->cluster && i < c->snap->n_cs; i++)
        if (strcmp(c->snap->cs[i].m->name, tp->cluster) == 0)
            c->cl = &c->snap->cs[i];
    log_debug(COMP, "listener %s: %s connection, %s", c->l->m->name,
              k == DP_SNIFF_RAW ? "plaintext" : "non-mesh TLS",
              c->cl ? c->cl->m->name : "no filter chain");
    if (!c->cl) {
        DP_INC(c->l->tst->downstream_cx_no_route);
        conn_close(c, CLOSE_LOCAL);
        return;
    }
    timer_stop(&c->w->heap, &c->t_conn);
    side_set_events(c, d, 0);
    start_connect(c);
}

static void sniff_start(struct conn *c)
{
    struct worker *w = c->w;
    c->state = C_SNIFF;
    /* Edge-triggered while peeking: unread bytes must not wake us again. */
    side_set_events(c, &c->s[0], EPOLLIN | EPOLLRDHUP | EPOLLET);
    timer_start(&w->heap, &c->t_conn, w->now + w->e->o.handshake_timeout_ms);
    sniff_step(c, 0);
}

static void on_side(struct side *s, uint32_t events)
{
    struct conn *c = s->c;
    if (c->dead)
        return;
    int is_up = s == &c->s[1];
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        s->drained = 0; /* the TLS BIO may recv again */
        if (s->et && c->kfwd != KF_ON && c->kfwd != KF_DRAIN) {
            s->can_read = 1; /* an edge is not repeated: remember it */
            if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                s->et_eof = 1;
        }
    }
    switch (c->state) {
    case C_SNIFF:
        if (!is_up)
            sniff_step(c, events);
        break;
    case C_DOWN_HS:
        if (!is_up)
            down_handshake(c);
        break;
    case C_CONNECTING:
        if (is_up)
            connected(c, events);
        else if (events & (EPOLLERR | EPOLLHUP))
            conn_close(c, CLOSE_REMOTE);
        else
            side_set_events(c, s, 0); /* read it once the upstream is up */
        break;
    case C_UP_HS:
        if (is_up)
            up_handshake(c);
        else if (events & (EPOLLERR | EPOLLHUP))
            conn_close(c, CLOSE_REMOTE);
        else
            side_set_events(c, s, 0);
        break;
    case C_PROXY:
        if (c->kfwd == KF_ON || c->kfwd == KF_DRAIN) {
            /* Only EOF, HUP or an error count: an EPOLLIN or EPOLLOUT here
             * is left from the batch in which the kernel took over. */
            if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                break;
            if (c->kfwd == KF_ON) {
                kfwd_event(c, s, events);
            } else if (events & (EPOLLHUP | EPOLLERR)) {
                s->hup = 1;
                side_set_events(c, s, 0); /* out of the set until the pump wants it */
            }
            break;
        }
        /* TLS may need the socket writable to read (rd_wants_write), so any
         * event on a TLS side may unblock its reads. */
        if (s->ssl || (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
            s->can_read = 1;
        if (s->ssl && (events & EPOLLOUT) && dp_tls_release(s->ssl) < 0) {
            conn_close(c, is_up ? CLOSE_REMOTE : CLOSE_LOCAL);
            break;
        }
        /* Data may still wait in a hung-up socket: read it before closing. */
        if (events & (EPOLLHUP | EPOLLERR))
            s->hup = 1;
        pump(c);
        break;
    }
}

/* A connection accepted on a use_original_dst listener l: the listener of
 * the snapshot matching its original destination (exact address before
 * wildcard), or l itself (passthrough). NULL = close it: a connection that
 * reached the redirect port without being redirected (its original
 * destination is the proxy's own socket) would loop back into the proxy. */
static struct clistener *tproxy_route(struct worker *w, struct clistener *l, int fd,
                                      struct sockaddr_storage *odst, socklen_t *odst_len)
{
    int rc = dp_tproxy_original_dst(fd, odst, odst_len);
    if (rc != 0 || dp_tproxy_is_local(fd, odst)) {
        DP_INC(l->st->downstream_cx_total);
        DP_INC(l->st->downstream_cx_destroy);
        DP_INC(l->tst->downstream_cx_no_route);
        log_debug(COMP, "listener %s: connection without an original destination closed (%s)",
                  l->m->name, rc ? strerror(-rc) : "not redirected");
        *odst_len = 0;
        return NULL;
    }
    struct clistener *best = NULL;
    int best_score = 0;
    for (size_t i = 0; w->snap && i < w->snap->n_ls; i++) {
        struct clistener *x = &w->snap->ls[i];
        int score = dp_tproxy_match(x->m, odst);
        /* Among listeners of the same score the first wins; the redirect
         * listeners themselves only catch what nothing else claims. */
        if (score > best_score && !x->m->use_original_dst) {
            best = x;
            best_score = score;
        }
    }
    if (!best && dp_tproxy_match(l->m, odst)) {
        /* Redirected to the redirect port itself: going there again loops. */
        DP_INC(l->st->downstream_cx_total);
        DP_INC(l->st->downstream_cx_destroy);
        DP_INC(l->tst->downstream_cx_no_route);
        *odst_len = 0;
        return NULL;
    }
    return best ? best : l;
}

static void on_accept(struct wreg *r)
{
    struct worker *w = r->w;
    struct clistener *l = r->cl;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(r->ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment rather than spin. */
                log_warn(COMP, "listener %s: accept: %s; pausing 100 ms", r->cl->m->name,
                         strerror(errno));
                epoll_ctl(w->epfd, EPOLL_CTL_DEL, r->ls->fd, NULL);
                r->paused = 1;
                timer_start(&w->heap, &r->resume, w->now + 100);
            }
            return;
        }
        struct sockaddr_storage odst; /* TCP_NODELAY: inherited from the listener */
        socklen_t odst_len = 0;
        struct clistener *tl = r->cl;
        if (tl->m->use_original_dst && !(tl = tproxy_route(w, tl, fd, &odst, &odst_len))) {
            close(fd);
            continue;
        }
        l = tl;
        struct conn *c = xcalloc(1, sizeof(*c));
        c->w = w;
        c->snap = w->snap;
        snap_ref(c->snap);
        c->l = l;
        c->cl = l->cluster;
        if (odst_len) {
            c->odst = odst;
            c->odst_len = odst_len;
        }
        for (int k = 0; k < 2; k++) {
            c->s[k].ev.kind = EV_SIDE;
            c->s[k].c = c;
            c->s[k].fd = -1;
        }
        timer_init(&c->t_conn, T_CONNECT, c);
        timer_init(&c->t_idle, T_IDLE, c);
        timer_init(&c->t_drain, T_DRAIN, c);
        timer_init(&c->t_rq, T_HTTP_RQ, c);
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->n_conns++;
        atomic_fetch_add(&w->e->conns_active, 1);
        atomic_fetch_add(&w->e->total_conns, 1);
        DP_INC(l->st->downstream_cx_total);
        DP_ADD(l->st->downstream_cx_active, 1);
        DP_INC(l->tst->downstream_cx_total);
        /* A TLS listener reads the ClientHello first: register for it now
         * rather than with no events and an EPOLL_CTL_MOD at the first
         * WANT_READ. */
        uint32_t first = l->ctx && !l->m->inspect && c->cl ? EPOLLIN : 0;
        if (!l->ctx && !l->routes && c->cl) {
            /* Plaintext tcp_proxy: nothing to read before the upstream is
             * up, so the side joins the epoll set then, once, edge-triggered
             * (side_set_events); a client that goes away meanwhile is seen
             * at the first read. */
            c->s[0].fd = fd;
            c->s[0].et = 1;
        } else if (side_open(c, &c->s[0], fd, first) != 0) {
            close(fd);
            c->s[0].fd = -1;
            conn_close(c, CLOSE_LOCAL);
            continue;
        }
        if (!l->routes && !c->cl) {
            DP_INC(l->tst->downstream_cx_no_route);
            conn_close(c, CLOSE_LOCAL);
            continue;
        }
        if (l->ctx && l->m->inspect) {
            sniff_start(c); /* PERMISSIVE: choose the filter chain first */
            continue;
        }
        if (l->ctx) {
            timer_start(&w->heap, &c->t_conn, w->now + w->e->o.handshake_timeout_ms);
            down_tls_begin(c);
        } else if (l->routes) {
            http_start(c);
        } else {
            start_connect(c);
        }
    }
}

static void on_timer(struct worker *w, struct timer *t)
{
    switch (t->kind) {
    case T_CONNECT: {
        struct conn *c = t->owner;
        if (c->state == C_CONNECTING) {
            connect_failed(c, 1);
        } else if (c->state == C_UP_HS) {
            DP_INC(cx_st(c)->ssl_connection_error);
            connect_failed(c, 1);
        } else {
            /* A downstream TLS handshake that did not finish in time. */
            DP_INC(c->l->st->ssl_connection_error);
            conn_close(c, CLOSE_LOCAL);
        }
        break;
    }
    case T_IDLE: {
        struct conn *c = t->owner;
        if (c->kfwd == KF_ON || c->kfwd == KF_DRAIN) {
            kfwd_tick(c);
            break;
        }
        int64_t due = c->last_io + (c->hs ? http_idle_limit(c) : c->l->idle_ms);
        if (due > w->now) {
            timer_start(&w->heap, t, due);
        } else if (!c->hs || !http_idle_expired(c)) {
            DP_INC(c->l->tst->idle_timeout);
            conn_close(c, CLOSE_LOCAL);
        }
        break;
    }
    case T_HTTP_RQ:
        http_timeout(t->owner);
        break;
    case T_DRAIN:
    case T_ENGINE_DRAIN:
        if (t->kind == T_DRAIN) {
            conn_close(t->owner, CLOSE_LOCAL);
        } else {
            while (w->conns) {
                atomic_fetch_add(&w->e->drain_forced, 1);
                conn_close(w->conns, CLOSE_LOCAL);
            }
        }
        break;
    case T_ACCEPT_RESUME: {
        struct wreg *r = t->owner;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &r->ev};
        if (r->paused && epoll_ctl(w->epfd, EPOLL_CTL_ADD, r->ls->fd, &ev) == 0)
            r->paused = 0;
        break;
    }
    }
}

/* Picks up a new snapshot and listener set, if any. */
static void worker_sync(struct worker *w)
{
    struct dp_engine *eng = w->e;
    pthread_mutex_lock(&eng->mu);
    if (w->gen == eng->gen) {
        pthread_mutex_unlock(&eng->mu);
        return;
    }
    w->gen = eng->gen;
    struct snap *ns = eng->cur;
    if (ns)
        snap_ref(ns);
    size_t n = eng->n_lsocks;
    struct lsock **ls = xcalloc(n ? n : 1, sizeof(*ls));
    for (size_t i = 0; i < n; i++) {
        ls[i] = eng->lsocks[i];
        atomic_fetch_add(&ls[i]->refs, 1);
    }
    int draining = eng->draining;
    int64_t drain_deadline = eng->drain_deadline;
    uint64_t listener_epoch = eng->listener_epoch;
    pthread_mutex_unlock(&eng->mu);

    /* Unregister listeners that are gone. */
    size_t kept = 0;
    for (size_t i = 0; i < w->n_regs; i++) {
        struct wreg *r = w->regs[i];
        int found = 0;
        for (size_t j = 0; j < n && !found; j++)
            found = ls[j] == r->ls;
        if (found) {
            w->regs[kept++] = r;
            continue;
        }
        if (!r->paused)
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, r->ls->fd, NULL);
        timer_stop(&w->heap, &r->resume);
        lsock_unref(r->ls);
        /* Later events of this epoll batch may still name r. */
        r->removed = 1;
        r->ls = NULL;
        r->next_dead = w->dead_regs;
        w->dead_regs = r;
    }
    w->n_regs = kept;
    /* Register new ones. */
    for (size_t j = 0; j < n; j++) {
        int found = 0;
        for (size_t i = 0; i < w->n_regs && !found; i++)
            found = w->regs[i]->ls == ls[j];
        if (found) {
            lsock_unref(ls[j]);
            continue;
        }
        struct wreg *r = xcalloc(1, sizeof(*r));
        r->ev.kind = EV_LISTENER;
        r->ls = ls[j];
        r->w = w;
        timer_init(&r->resume, T_ACCEPT_RESUME, r);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &r->ev};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, r->ls->fd, &ev) != 0) {
            log_warn(COMP, "worker %d: epoll_ctl(listener %s): %s", w->id, r->ls->name,
                     strerror(errno));
            r->paused = 1;
            timer_start(&w->heap, &r->resume, w->now + 100);
        }
        w->regs = xrealloc(w->regs, (w->n_regs + 1) * sizeof(*w->regs));
        w->regs[w->n_regs++] = r;
    }
    free(ls);
    for (size_t i = 0; i < w->n_regs; i++)
        for (size_t j = 0; ns && j < ns->n_ls; j++)
            if (ns->ls[j].ls == w->regs[i]->ls)
                w->regs[i]->cl = &ns->ls[j];
    snap_unref(w->snap);
    w->snap = ns;
    /* Idle upstream connections of older snapshots go. */
    http_pool_flush(w, ns);

    /* Drain connections whose listener was removed or changed. */
    for (struct conn *c = w->listener_epoch != listener_epoch ? w->conns : NULL; c; c = c->next) {
        if (c->draining)
            continue;
        struct clistener *nl = snap_find_listener(ns, c->l->m->name);
        if (!nl || strcmp(nl->fingerprint, c->l->fingerprint) != 0) {
            c->draining = 1;
            timer_start(&w->heap, &c->t_drain, w->now + eng->o.drain_timeout_ms);
        }
    }
    w->listener_epoch = listener_epoch;
    if (draining && !w->drain_seen) {
        w->drain_seen = 1;
        timer_start(&w->heap, &w->t_engine_drain, drain_deadline);
        for (struct conn *c = w->conns, *next; c; c = next) {
            next = c->next;
            if (c->hs)
                http_drain(c);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct dp_engine *eng = w->e;
    struct epoll_event evs[256];
    w->now = mono_ms();
    while (!atomic_load(&eng->stop)) {
        int timeout = -1;
        if (w->again) {
            timeout = 0;
        } else if (w->heap.n) {
            int64_t d = w->heap.v[0]->at - w->now;
            timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
        }
        int n = epoll_wait(w->epfd, evs, 256, timeout);
        w->now = mono_ms();
        for (int i = 0; i < n; i++) {
            struct ev *ev = evs[i].data.ptr;
            switch (ev->kind) {
            case EV_WAKE: {
                uint64_t v;
                ssize_t r = read(w->evfd, &v, sizeof(v));
                (void)r;
                worker_sync(w);
                break;
            }
            case EV_LISTENER: {
                struct wreg *r = (struct wreg *)ev;
                if (r->cl && !r->removed)
                    on_accept(r);
                break;
            }
            case EV_SIDE:
                on_side((struct side *)ev, evs[i].events);
                break;
            case EV_POOL:
                http_pool_event((struct pconn *)ev);
                break;
            }
        }
        while (w->heap.n && w->heap.v[0]->at <= w->now) {
            struct timer *t = w->heap.v[0];
            timer_stop(&w->heap, t);
            on_timer(w, t);
        }
        /* Before dead connections are freed: the list may name some. */
        struct conn *again = w->again;
        w->again = NULL;
        while (again) {
            struct conn *c = again;
            again = c->next_again;
            c->in_again = 0;
            if (!c->dead)
                pump(c);
        }
        while (w->dead) {
            struct conn *c = w->dead;
            w->dead = c->next;
            conn_free(c);
        }
        while (w->dead_regs) {
            struct wreg *r = w->dead_regs;
            w->dead_regs = r->next_dead;
            free(r);
        }
        http_pool_reap(w);
    }
    while (w->conns)
        conn_close(w->conns, CLOSE_LOCAL);
    while (w->dead) {
        struct conn *c = w->dead;
        w->dead = c->next;
        conn_free(c);
    }
    http_pool_flush(w, NULL);
    http_pool_reap(w);
    for (size_t i = 0; i < w->n_regs; i++) {
        lsock_unref(w->regs[i]->ls);
        free(w->regs[i]);
    }
    free(w->regs);
    while (w->dead_regs) {
        struct wreg *r = w->dead_regs;
        w->dead_regs = r->next_dead;
        free(r);
    }
    free(w->heap.v);
    snap_unref(w->snap);
    while (w->n_pool)
        free(w->pool[--w->n_pool]);
    OPENSSL_thread_stop();
    return NULL;
}

/* --- admin views ------------------------------------------------------------------------------ */

static struct snap *cur_snap(struct dp_engine *eng)
{
    pthread_mutex_lock(&eng->mu);
    struct snap *s = eng->cur;
    if (s)
        snap_ref(s);
    pthread_mutex_unlock(&eng->mu);
    return s;
}

int dp_engine_state(struct dp_engine *eng)
{
    pthread_mutex_lock(&eng->mu);
    int st = eng->draining ? 1 : eng->cur ? 0 : 2;
    pthread_mutex_unlock(&eng->mu);
    return st;
}

void dp_engine_render_stats(struct dp_engine *eng, const struct dp_stats_query *q, struct buf *out)
{
    struct dp_server_info si = {
        .state = dp_engine_state(eng),
        .concurrency = eng->nw,
        .uptime_s = (mono_ms() - eng->start_ms) / 1000,
        .total_connections = (uint64_t)atomic_load(&eng->conns_active),
    };
    dp_stats_render(eng->stats, &si, q, out);
}

void dp_engine_render_clusters(struct dp_engine *eng, struct buf *out)
{
    struct snap *s = cur_snap(eng);
    static const char *const prio[] = {"default_priority", "high_priority"};
    for (size_t i = 0; s && i < s->n_cs; i++) {
        const struct ccluster *c = &s->cs[i];
        if (c->m->synthetic)
            continue; /* a flattened split: its hosts are its real clusters' */
        const char *n = c->m->name;
        buf_printf(out, "%s::observability_name::%s\n", n,
                   c->m->alt_stat_name && *c->m->alt_stat_name ? c->m->alt_stat_name : n);
        for (int p = 0; p < 2; p++)
            buf_printf(out,
                       "%s::%s::max_connections::1024\n%s::%s::max_pending_requests::1024\n"
                       "%s::%s::max_requests::1024\n%s::%s::max_retries::3\n",
                       n, prio[p], n, prio[p], n, prio[p], n, prio[p]);
        buf_printf(out, "%s::added_via_api::true\n", n);
        for (size_t j = 0; j < c->n_hosts; j++) {
            const struct chost *h = &c->hosts[j];
            const char *a = h->addr;
            buf_printf(out, "%s::%s::cx_active::%lld\n", n, a, (long long)DP_GET(h->hs->cx_active));
            buf_printf(out, "%s::%s::cx_connect_fail::%llu\n", n, a,
                       (unsigned long long)DP_GET(h->hs->cx_connect_fail));
            buf_printf(out, "%s::%s::cx_total::%llu\n", n, a,
                       (unsigned long long)DP_GET(h->hs->cx_total));
            buf_printf(out,
                       "%s::%s::rq_active::0\n%s::%s::rq_error::0\n%s::%s::rq_success::0\n"
                       "%s::%s::rq_timeout::0\n%s::%s::rq_total::0\n%s::%s::hostname::\n",
                       n, a, n, a, n, a, n, a, n, a, n, a);
            buf_printf(out, "%s::%s::health_flags::%s\n", n, a,
                       atomic_load(&h->hs->ejected) ? "/failed_outlier_check" : "healthy");
            buf_printf(out,
                       "%s::%s::weight::%u\n%s::%s::region::\n%s::%s::zone::\n"
                       "%s::%s::sub_zone::\n%s::%s::canary::false\n%s::%s::priority::0\n"
                       "%s::%s::success_rate::-1\n%s::%s::local_origin_success_rate::-1\n",
                       n, a, h->weight, n, a, n, a, n, a, n, a, n, a, n, a, n, a);
        }
    }
    if (s)
        snap_unref(s);
}

char *dp_engine_config_dump(struct dp_engine *eng)
{
    struct snap *s = cur_snap(eng);
    /* Built on request: kept per snapshot it cost ~2 MB at 1,000 clusters. */
    char *out = s ? dp_config_dump_json(s->m) : xstrdup("{\"configs\":[]}");
    if (s)
        snap_unref(s);
    return out;
}
