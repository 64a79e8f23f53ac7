/*
 * server — see server.h for the threads; docs/xds.md for the protocol rules.
 *
 * Invariants (mesh thread):
 *  - a proxy (mesh, name) exists while it has streams, a pending
 *    deregistration, or an insight worth keeping; its config is generated
 *    only while it has streams;
 *  - a mesh's snapshot is kept only while some proxy of the mesh is
 *    connected; a change to a mesh nobody watches just drops the snapshot;
 *  - per stream and type, a response is sent when the type is subscribed and
 *    either the proxy's version differs from the one last sent on that
 *    stream, or the subscription itself changed (first request, new resource
 *    names). An ACK or NACK never triggers a resend by itself, so a NACKed
 *    config is not retried in a loop: the next change produces the next one.
 */
#include "xds/server.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/codec.h"
#include "core/log.h"
#include "ca/admin.h"
#include "ca/token.h"
#include "ca/workload.h"
#include "core/types.h"
#include "mesh/identity.h"
#include "xds/crossmesh.h"
#include "xds/hmap.h"
#include "xds/model.h"
#include "xds/pb.h"
#include "xds/snapshot.h"
#include "xds/transport.h"

#define LOG                 "xds"
#define MAX_QUEUED_REQUESTS 64 /* per stream, waiting for the mesh thread */

/* ---- inbox ------------------------------------------------------------- */

enum item_kind { IT_OPEN, IT_MSG, IT_CLOSE, IT_EVENT };

struct item {
    enum item_kind kind;
    struct xds_stream *ts; /* holds a reference */
    uint8_t *data;
    size_t len;
    struct event ev;
    struct item *next;
};

/* ---- state owned by the mesh thread ------------------------------------ */

struct type_state {
    int subscribed;
    uint64_t names_hash;
    char sent_version[17];
    char nonce[24];
};

struct proxy;

struct insight_entry {
    struct xds_dataplane_insight in;
    struct xds_proxy_config *cfg; /* latest generated config (a reference) */
};

struct xstream {
    struct xds_stream *ts;
    uint64_t id;
    atomic_int queued; /* requests waiting in the inbox (CQ thread increments) */
    struct proxy *proxy;
    int failed;
    uint64_t nonce_seq;
    int64_t connect_ns;
    struct type_state types[XDS_TYPE_N];
    struct xstream *next; /* the proxy's list */
};

struct proxy {
    char *mesh, *name;
    struct xstream *streams;
    size_t n_streams;
    int proxyless;
    int registered;      /* created from node metadata by this instance */
    int64_t dereg_at_ms; /* monotonic, 0 = none pending */
    struct xds_proxy_config *cfg;
    struct mstate *ms; /* its mesh */
    size_t ms_index;   /* position in ms->proxies */
    /* mTLS identity: the workload certificate issued for this proxy, what it
     * was issued for (CA, tags, lifetime: a change re-issues it) and when it
     * must be rotated (80% of its lifetime). */
    char *cert_pem, *key_pem;
    uint64_t cert_for;
    int64_t cert_issued_ns, cert_expires_ns;
    int64_t cert_rotate_ms; /* monotonic, 0 = no certificate */
    int64_t cert_fail_ms;   /* last failed issue (retried at the next change) */
    /* Envoy admin: the port kuma-dp reported (node metadata
     * dataplane.admin.port, 0 = none) and the admin listener's server
     * certificate, issued for admin_cert_for (the dataplane's address). */
    uint32_t admin_port;
    char *admin_cert_pem, *admin_key_pem, *admin_cert_for;
    struct insight_entry *ins; /* its insight (created on first use; ins_mu) */
    int pending;               /* queued for generation at the end of the loop */
};

struct mstate {
    char *name;
    struct xds_mesh_snapshot *snap;
    int loaded; /* snap reflects the store (NULL snap + loaded = mesh absent) */
    int dirty;
    int dps_dirty;          /* dataplanes (or everything) changed, not only policies/secrets */
    struct proxy **proxies; /* every proxy of the mesh */
    size_t n_proxies, cap_proxies;
    size_t connected; /* proxies with at least one stream */
};

struct xds_server {
    struct manager *mgr;
    struct event_bus *bus;
    struct event_sub *sub;
    struct xds_server_config cfg;
    char *instance_id;
    struct xds_transport *transport;

    pthread_mutex_t mu; /* inbox */
    pthread_cond_t cv;
    struct item *head, *tail;
    int stop;

    pthread_t mesh_thread, pump_thread;
    int mesh_started, pump_started;
    atomic_int stopping;

    /* mesh thread only */
    struct hmap proxies; /* "<mesh>\n<name>" -> struct proxy * */
    struct hmap meshes;  /* name -> struct mstate * */
    size_t n_timers;     /* proxies with a deregistration or rotation pending */
    int resync;
    struct proxy **pending; /* new streams' proxies, generated in one batch */
    size_t n_pending, cap_pending;
    int gen_threads; /* threads a batch of generations may use */

    pthread_mutex_t ins_mu; /* insights */
    struct hmap ins;        /* "<mesh>\n<name>" -> struct insight_entry * */

    atomic_uint_fast64_t st_snapshots, st_generations, st_responses, st_certs;
};

/* ---- config ------------------------------------------------------------ */

int xds_parse_duration_ms(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    double total = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0)
            return -1;
        p = end;
        double mult;
        if (strncmp(p, "ms", 2) == 0) {
            mult = 1;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            mult = 0.001;
            p += 2;
        } else if (strncmp(p, "ns", 2) == 0) {
            mult = 0.000001;
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60000;
            p++;
        } else if (*p == 'h') {
            mult = 3600000;
            p++;
        } else {
            return -1;
        }
        total += v * mult;
    }
    *ms = (int64_t)total;
    return 0;
}

int xds_server_config_init(struct xds_server_config *c, struct err *e)
{
    memset(c, 0, sizeof(*c));
    c->address = "0.0.0.0";
    c->port = 5678;
    c->deregistration_delay_ms = XDS_DEFAULT_DEREGISTRATION_DELAY_MS;
    const char *v = getenv("KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY");
    if (v && *v && xds_parse_duration_ms(v, &c->deregistration_delay_ms) < 0)
        return err_set(e, "KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY: invalid duration \"%s\"",
                       v);
    return 0;
}

/* ---- inbox ------------------------------------------------------------- */

static void push_item(struct xds_server *s, struct item *it)
{
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void cb_open(void *ctx, struct xds_stream *ts)
{
    struct xds_server *s = ctx;
    struct xstream *x = xcalloc(1, sizeof(*x));
    x->ts = ts; /* the reference on_open gave us */
    x->id = xds_stream_id(ts);
    x->connect_ns = now_ns();
    atomic_init(&x->queued, 0);
    xds_stream_set_user(ts, x);
    struct item *it = xcalloc(1, sizeof(*it));
    it->kind = IT_OPEN;
    xds_stream_ref(ts);
    it->ts = ts;
    push_item(s, it);
}

static void cb_message(void *ctx, struct xds_stream *ts, const uint8_t *data, size_t len)
{
    struct xds_server *s = ctx;
    struct xstream *x = xds_stream_user(ts);
    if (atomic_fetch_add(&x->queued, 1) >= MAX_QUEUED_REQUESTS) {
        atomic_fetch_sub(&x->queued, 1);
        xds_stream_finish(ts, GRPCF_STATUS_RESOURCE_EXHAUSTED, "too many pending requests");
        return;
    }
    struct item *it = xcalloc(1, sizeof(*it));
    it->kind = IT_MSG;
    it->data = xmalloc(len ? len : 1);
    memcpy(it->data, data, len);
    it->len = len;
    xds_stream_ref(ts);
    it->ts = ts;
    push_item(s, it);
}

static void cb_close(void *ctx, struct xds_stream *ts)
{
    struct xds_server *s = ctx;
    struct item *it = xcalloc(1, sizeof(*it));
    it->kind = IT_CLOSE;
    xds_stream_ref(ts);
    it->ts = ts;
    push_item(s, it);
}

static void *pump_main(void *arg)
{
    struct xds_server *s = arg;
    for (;;) {
        struct event ev;
        int rc = event_next(s->sub, &ev, -1);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        struct item *it = xcalloc(1, sizeof(*it));
        it->kind = IT_EVENT;
        it->ev = ev;
        push_item(s, it);
    }
    return NULL;
}

/* ---- insights ---------------------------------------------------------- */

static char *pkey(const char *mesh, const char *name)
{
    return xasprintf("%s\n%s", mesh, name);
}

static struct xds_dataplane_insight *insight_get(struct xds_server *s, const char *mesh,
                                                 const char *name, int create)
{
    char *k = pkey(mesh, name);
    struct insight_entry *e = hmap_get(&s->ins, k);
    if (!e && create) {
        e = xcalloc(1, sizeof(*e));
        e->in.mesh = xstrdup(mesh);
        e->in.name = xstrdup(name);
        hmap_put(&s->ins, k, e);
    }
    free(k);
    return e ? &e->in : NULL;
}

/* p's insight entry (ins_mu held). */
static struct insight_entry *proxy_insight_entry(struct xds_server *s, struct proxy *p)
{
    if (!p->ins) {
        insight_get(s, p->mesh, p->name, 1);
        char *k = pkey(p->mesh, p->name);
        p->ins = hmap_get(&s->ins, k);
        free(k);
    }
    return p->ins;
}

static struct xds_dataplane_insight *proxy_insight(struct xds_server *s, struct proxy *p)
{
    return &proxy_insight_entry(s, p)->in;
}

static void insight_remove(struct xds_server *s, const char *mesh, const char *name)
{
    char *k = pkey(mesh, name);
    pthread_mutex_lock(&s->ins_mu);
    struct insight_entry *e = hmap_del(&s->ins, k);
    if (e) {
        xds_dataplane_insight_clear(&e->in);
        xds_proxy_config_unref(e->cfg);
        free(e);
    }
    pthread_mutex_unlock(&s->ins_mu);
    free(k);
}

static void copy_insight(struct xds_dataplane_insight *dst, const struct xds_dataplane_insight *src)
{
    *dst = *src;
    dst->mesh = xstrdup(src->mesh);
    dst->name = xstrdup(src->name);
    dst->peer = src->peer ? xstrdup(src->peer) : NULL;
    dst->cert_backend = src->cert_backend ? xstrdup(src->cert_backend) : NULL;
    for (int t = 0; t < XDS_TYPE_N; t++)
        dst->types[t].last_nack_error =
            src->types[t].last_nack_error ? xstrdup(src->types[t].last_nack_error) : NULL;
}

void xds_dataplane_insight_clear(struct xds_dataplane_insight *in)
{
    if (!in)
        return;
    free(in->mesh);
    free(in->name);
    free(in->peer);
    free(in->cert_backend);
    for (int t = 0; t < XDS_TYPE_N; t++)
        free(in->types[t].last_nack_error);
    memset(in, 0, sizeof(*in));
}

void xds_insights_free(struct xds_dataplane_insight *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        xds_dataplane_insight_clear(&v[i]);
    free(v);
}

int xds_server_insight(struct xds_server *s, const char *mesh, const char *name,
                       struct xds_dataplane_insight *out)
{
    int rc = -1;
    pthread_mutex_lock(&s->ins_mu);
    struct xds_dataplane_insight *in = insight_get(s, mesh, name, 0);
    if (in) {
        copy_insight(out, in);
        rc = 0;
    }
    pthread_mutex_unlock(&s->ins_mu);
    return rc;
}

static int cmp_insight(const void *a, const void *b)
{
    const struct xds_dataplane_insight *x = a, *y = b;
    int c = strcmp(x->mesh, y->mesh);
    return c ? c : strcmp(x->name, y->name);
}

size_t xds_server_insights(struct xds_server *s, const char *mesh,
                           struct xds_dataplane_insight **out)
{
    pthread_mutex_lock(&s->ins_mu);
    struct xds_dataplane_insight *v = xcalloc(s->ins.n ? s->ins.n : 1, sizeof(*v));
    size_t n = 0;
    void *val;
    for (size_t i = 0; hmap_next(&s->ins, &i, NULL, &val);) {
        struct insight_entry *e = val;
        if (!mesh || strcmp(e->in.mesh, mesh) == 0)
            copy_insight(&v[n++], &e->in);
    }
    pthread_mutex_unlock(&s->ins_mu);
    qsort(v, n, sizeof(*v), cmp_insight);
    *out = v;
    return n;
}

struct xds_proxy_config *xds_server_proxy_config(struct xds_server *s, const char *mesh,
                                                 const char *name)
{
    char *k = pkey(mesh, name);
    pthread_mutex_lock(&s->ins_mu);
    struct insight_entry *e = hmap_get(&s->ins, k);
    struct xds_proxy_config *c = e && e->in.online ? xds_proxy_config_ref(e->cfg) : NULL;
    pthread_mutex_unlock(&s->ins_mu);
    free(k);
    return c;
}

void xds_server_get_stats(struct xds_server *s, struct xds_server_stats *out)
{
    out->snapshots_built = atomic_load(&s->st_snapshots);
    out->generations = atomic_load(&s->st_generations);
    out->responses_sent = atomic_load(&s->st_responses);
    out->certs_issued = atomic_load(&s->st_certs);
}

/* ---- meshes and proxies (mesh thread) ---------------------------------- */

static struct mstate *mesh_get(struct xds_server *s, const char *name, int create)
{
    struct mstate *m = hmap_get(&s->meshes, name);
    if (m || !create)
        return m;
    m = xcalloc(1, sizeof(*m));
    m->name = xstrdup(name);
    hmap_put(&s->meshes, name, m);
    return m;
}

static struct proxy *proxy_get(struct xds_server *s, const char *mesh, const char *name, int create)
{
    char *k = pkey(mesh, name);
    struct proxy *p = hmap_get(&s->proxies, k);
    if (!p && create) {
        p = xcalloc(1, sizeof(*p));
        p->mesh = xstrdup(mesh);
        p->name = xstrdup(name);
        hmap_put(&s->proxies, k, p);
        struct mstate *m = mesh_get(s, mesh, 1);
        if (m->n_proxies == m->cap_proxies) {
            m->cap_proxies = m->cap_proxies ? m->cap_proxies * 2 : 16;
            m->proxies = xrealloc(m->proxies, m->cap_proxies * sizeof(*m->proxies));
        }
        p->ms = m;
        p->ms_index = m->n_proxies;
        m->proxies[m->n_proxies++] = p;
    }
    free(k);
    return p;
}

static int proxy_has_timer(const struct proxy *p)
{
    return p->dereg_at_ms != 0 || p->cert_rotate_ms != 0;
}

static void proxy_cert_clear(struct proxy *p)
{
    if (p->key_pem)
        OPENSSL_cleanse(p->key_pem, strlen(p->key_pem));
    free(p->key_pem);
    free(p->cert_pem);
    p->key_pem = p->cert_pem = NULL;
    p->cert_for = 0;
    p->cert_rotate_ms = 0;
}

static void proxy_admin_clear(struct proxy *p)
{
    if (p->admin_key_pem)
        OPENSSL_cleanse(p->admin_key_pem, strlen(p->admin_key_pem));
    free(p->admin_key_pem);
    free(p->admin_cert_pem);
    free(p->admin_cert_for);
    p->admin_key_pem = p->admin_cert_pem = p->admin_cert_for = NULL;
}

static void proxy_remove(struct xds_server *s, struct proxy *p)
{
    char *k = pkey(p->mesh, p->name);
    hmap_del(&s->proxies, k);
    free(k);
    struct mstate *m = p->ms;
    m->proxies[p->ms_index] = m->proxies[--m->n_proxies];
    m->proxies[p->ms_index]->ms_index = p->ms_index;
    if (proxy_has_timer(p))
        s->n_timers--;
    for (size_t i = 0; p->pending && i < s->n_pending; i++) {
        if (s->pending[i] == p) {
            s->pending[i] = s->pending[--s->n_pending];
            break;
        }
    }
    xds_proxy_config_unref(p->cfg);
    proxy_cert_clear(p);
    proxy_admin_clear(p);
    free(p->mesh);
    free(p->name);
    free(p);
}

static size_t mesh_connected(struct xds_server *s, const char *mesh)
{
    struct mstate *m = mesh_get(s, mesh, 0);
    return m ? m->connected : 0;
}

/* Keeps s->n_timers in step around a change of p's timers. */
#define TIMERS_BEFORE(p) int had_timer_ = proxy_has_timer(p)
#define TIMERS_AFTER(s, p)                                                                         \
    do {                                                                                           \
        int has_ = proxy_has_timer(p);                                                             \
        if (has_ && !had_timer_)                                                                   \
            (s)->n_timers++;                                                                       \
        else if (!has_ && had_timer_)                                                              \
            (s)->n_timers--;                                                                       \
    } while (0)

/* Loads the mesh's snapshot from the store if it is not current. */
static void mesh_load(struct xds_server *s, struct mstate *m)
{
    if (m->loaded && !m->dirty)
        return;
    struct xds_mesh_snapshot *prev = m->snap;
    m->snap = NULL;
    struct err e;
    /* Only policies or secrets changed: keep the parsed dataplanes and
     * endpoint assignments, re-read the rest. */
    int rc = prev && m->loaded && !m->dps_dirty
                 ? xds_snapshot_reload(manager_store(s->mgr), m->name, prev, &m->snap, &e)
                 : xds_snapshot_load(manager_store(s->mgr), m->name, &m->snap, &e);
    xds_snapshot_unref(prev);
    m->dps_dirty = 0;
    if (rc == STORE_ENOTFOUND) {
        m->snap = NULL;
    } else if (rc < 0) {
        log_error(LOG, "could not load mesh %s: %s", m->name, e.msg);
        m->snap = NULL;
        m->loaded = 0;
        m->dps_dirty = 1;
        return; /* stays dirty: retried at the next change */
    }
    atomic_fetch_add(&s->st_snapshots, 1);
    m->loaded = 1;
    m->dirty = 0;
}

/* ---- responses ---------------------------------------------------------- */

static void send_type(struct xds_server *s, struct xstream *x, enum xds_type t)
{
    struct proxy *p = x->proxy;
    if (!p || !p->cfg || x->failed)
        return;
    const struct xds_resource_set *set = &p->cfg->sets[t];
    struct type_state *st = &x->types[t];
    Envoy__Service__Discovery__V3__DiscoveryResponse resp =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    Envoy__Config__Core__V3__ControlPlane cp = ENVOY__CONFIG__CORE__V3__CONTROL_PLANE__INIT;
    cp.identifier = s->instance_id;
    char nonce[24];
    snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)++x->nonce_seq);
    resp.version_info = (char *)set->version;
    resp.type_url = (char *)xds_type_url(t);
    resp.nonce = nonce;
    resp.control_plane = &cp;
    Google__Protobuf__Any *anys = xcalloc(set->n ? set->n : 1, sizeof(*anys));
    Google__Protobuf__Any **ptrs = xcalloc(set->n ? set->n : 1, sizeof(*ptrs));
    for (size_t i = 0; i < set->n; i++) {
        Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
        a.type_url = (char *)xds_type_url(t);
        a.value.data = set->v[i].data;
        a.value.len = set->v[i].len;
        anys[i] = a;
        ptrs[i] = &anys[i];
    }
    resp.n_resources = set->n;
    resp.resources = ptrs;
    size_t len;
    uint8_t *buf = pb_pack(&resp.base, &len);
    free(anys);
    free(ptrs);
    if (xds_stream_send_owned(x->ts, buf, len) < 0) {
        log_warn(LOG, "%s.%s: stream %llu cannot take more responses; closing it", p->mesh, p->name,
                 (unsigned long long)x->id);
        xds_stream_finish(x->ts, GRPCF_STATUS_RESOURCE_EXHAUSTED, "send queue full");
        x->failed = 1;
        return;
    }
    memcpy(st->sent_version, set->version, sizeof(st->sent_version));
    memcpy(st->nonce, nonce, sizeof(st->nonce));
    atomic_fetch_add(&s->st_responses, 1);
    log_debug(LOG, "%s.%s: sent %s version %s (%zu resources, nonce %s)", p->mesh, p->name,
              xds_type_short(t), set->version, set->n, nonce);

    pthread_mutex_lock(&s->ins_mu);
    struct xds_dataplane_insight *in = proxy_insight(s, p);
    memcpy(in->types[t].sent_version, set->version, sizeof(in->types[t].sent_version));
    in->types[t].last_sent_ns = now_ns();
    in->types[t].responses_sent++;
    pthread_mutex_unlock(&s->ins_mu);
}

/* Sends every subscribed type whose version changed. */
static void push_stream(struct xds_server *s, struct xstream *x)
{
    if (!x->proxy || !x->proxy->cfg)
        return;
    for (int t = 0; t < XDS_TYPE_N; t++)
        if (x->types[t].subscribed &&
            strcmp(x->types[t].sent_version, x->proxy->cfg->sets[t].version) != 0)
            send_type(s, x, (enum xds_type)t);
}

/* What a workload certificate is issued for: a change of the CA (switch of
 * backend or of its certificate), of the identity tags or of the lifetime
 * re-issues it. */
static uint64_t cert_for(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp)
{
    char *tags = json_dumps(dp->identity_tags, JSON_SORT_KEYS | JSON_COMPACT);
    uint64_t h = xds_hash_u64(XDS_HASH_INIT, snap->ca_hash);
    h = xds_hash_str(h, tags);
    h = xds_hash_u64(h, (uint64_t)snap->cert_lifetime_ns);
    free(tags);
    return h;
}

/* One certificate to issue: filled on the mesh thread (cert_check), issued
 * on any thread (cert_issue: only the snapshot's signer and the dataplane's
 * identity tags, both read-only), applied on the mesh thread (cert_apply). */
struct cert_job {
    struct proxy *p;
    const struct xds_mesh_snapshot *snap;
    const struct xds_dataplane *dp;
    uint64_t want;
    const char *why;
    char *cert, *key;
    int64_t issued, not_after;
    int rc;
    struct err e;
};

/* Does p need a (new) workload certificate? The mesh has mTLS and p has
 * none, or one issued for other inputs, or one past 80% of its lifetime
 * (Kuma's ExpiringSoon). Clears it when the mesh has no mTLS. */
static int cert_check(struct xds_server *s, struct proxy *p, const struct xds_mesh_snapshot *snap,
                      const struct xds_dataplane *dp, struct cert_job *j)
{
    TIMERS_BEFORE(p);
    if (!snap->mtls || !snap->signer || !dp->identity_tags) {
        if (snap->mtls && !dp->identity_tags && p->cert_pem == NULL)
            log_warn(LOG, "%s.%s: no identity certificate: %s", p->mesh, p->name,
                     dp->identity_error ? dp->identity_error : "no CA");
        if (!snap->mtls)
            proxy_cert_clear(p);
        TIMERS_AFTER(s, p);
        return 0;
    }
    uint64_t want = cert_for(snap, dp);
    if (p->cert_pem && p->cert_for == want && mono_ms() < p->cert_rotate_ms)
        return 0;
    memset(j, 0, sizeof(*j));
    j->p = p;
    j->snap = snap;
    j->dp = dp;
    j->want = want;
    j->why = !p->cert_pem          ? "issued"
             : p->cert_for != want ? "re-issued (inputs changed)"
                                   : "rotated";
    return 1;
}

/* Whether a new certificate's notAfter is "second of issue + lifetime"
 * (ca_signer_issue's rule), so it need not be parsed back: 0 not known yet,
 * 1 checked on a real certificate, -1 it is not (always parse). Parsing a
 * certificate back decodes its public key through OpenSSL 3's decoders and
 * was a fifth of the CPU of an mTLS cold start (docs/BENCHMARKS.md). */
static atomic_int not_after_rule = 0;

/* One ECDSA P-256 key and certificate per issue, with the snapshot's signer
 * (parsed once per mesh snapshot). Thread-safe. */
static void cert_issue(struct cert_job *j)
{
    int64_t nb;
    int64_t life =
        j->snap->cert_lifetime_ns > 0 ? j->snap->cert_lifetime_ns : CA_WORKLOAD_DEFAULT_LIFETIME_NS;
    j->issued = now_ns();
    int64_t s0 = j->issued / 1000000000LL;
    j->rc = ca_signer_issue(j->snap->signer, j->snap->mesh, j->dp->identity_tags,
                            j->snap->cert_lifetime_ns, CA_KEY_DEFAULT, &j->cert, &j->key, &j->e);
    if (j->rc < 0)
        return;
    /* The certificate's times have a resolution of one second: when the
     * issue stayed within one second, that second is the one it used. */
    int same_second = now_ns() / 1000000000LL == s0;
    int64_t guess = (s0 + life / 1000000000LL) * 1000000000LL;
    int rule = atomic_load(&not_after_rule);
    if (same_second && rule == 1) {
        j->not_after = guess;
        return;
    }
    j->rc = ca_cert_validity(j->cert, &nb, &j->not_after, &j->e);
    if (j->rc == 0 && same_second && rule == 0) {
        int ok = j->not_after == guess;
        int expected = 0;
        if (atomic_compare_exchange_strong(&not_after_rule, &expected, ok ? 1 : -1) && !ok)
            log_warn(LOG, "workload certificates' notAfter is not issue time + lifetime; "
                          "parsing every certificate");
    }
}

static void cert_apply(struct xds_server *s, struct cert_job *j)
{
    struct proxy *p = j->p;
    const struct xds_mesh_snapshot *snap = j->snap;
    int64_t now_m = mono_ms();
    TIMERS_BEFORE(p);
    if (j->rc < 0) {
        log_error(LOG, "%s.%s: could not issue the workload certificate: %s", p->mesh, p->name,
                  j->e.msg);
        free(j->cert);
        if (j->key)
            OPENSSL_cleanse(j->key, strlen(j->key));
        free(j->key);
        p->cert_fail_ms = now_m;
        TIMERS_AFTER(s, p);
        return;
    }
    proxy_cert_clear(p);
    p->cert_pem = j->cert;
    p->key_pem = j->key;
    p->cert_for = j->want;
    p->cert_issued_ns = j->issued;
    p->cert_expires_ns = j->not_after;
    /* Kuma's ExpiringSoon: at 4/5 of the lifetime counted from issuance. */
    int64_t life_ms = (j->not_after - j->issued) / 1000000;
    p->cert_rotate_ms = now_m + (life_ms > 0 ? life_ms / 5 * 4 : 1000);
    atomic_fetch_add(&s->st_certs, 1);
    log_info(LOG, "%s.%s: workload certificate %s by %s backend %s", p->mesh, p->name, j->why,
             snap->mtls_backend_type, snap->mtls_backend);
    pthread_mutex_lock(&s->ins_mu);
    struct xds_dataplane_insight *in = proxy_insight(s, p);
    free(in->cert_backend);
    in->cert_backend = xstrdup(snap->mtls_backend);
    in->cert_expiration_ns = j->not_after;
    in->cert_generation_ns = j->issued;
    in->cert_regenerations++;
    pthread_mutex_unlock(&s->ins_mu);
    TIMERS_AFTER(s, p);
}

/* Issues p's workload certificate when it needs one (see cert_check). */
static void proxy_ensure_cert(struct xds_server *s, struct proxy *p,
                              const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp)
{
    struct cert_job j;
    if (!cert_check(s, p, snap, dp, &j))
        return;
    cert_issue(&j);
    cert_apply(s, &j);
}

/* Issues many certificates on up to `threads` threads (the caller's
 * included): key generation dominates an mTLS mesh's cold start. */
struct cert_batch {
    struct cert_job *v;
    size_t n;
    atomic_size_t next;
};

static void *cert_worker(void *arg)
{
    struct cert_batch *b = arg;
    size_t i;
    while ((i = atomic_fetch_add(&b->next, 1)) < b->n)
        cert_issue(&b->v[i]);
    return NULL;
}

static void certs_issue(struct cert_job *v, size_t n, int threads)
{
    struct cert_batch b = {.v = v, .n = n};
    atomic_init(&b.next, 0);
    pthread_t tid[XDS_GEN_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < threads && n >= 8 && t < XDS_GEN_MAX_THREADS; t++)
        if (pthread_create(&tid[started], NULL, cert_worker, &b) == 0)
            started++;
    cert_worker(&b);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
}

/* The admin listener's server certificate (Kuma's EnvoyAdminMTLSCerts):
 * issued from the envoy admin CA for the dataplane's address, once per
 * address. Failures are logged and leave the proxy without the listener.
 * Like workload certificates, a job is filled on the mesh thread
 * (admin_check), issued on any thread (admin_issue: ca_admin_issue is pure
 * computation) and applied on the mesh thread (admin_apply). */
struct admin_job {
    struct proxy *p;
    char *host; /* the dataplane's address (a copy: the job outlives no snapshot) */
    char *cert, *key;
    int rc;
    struct err e;
};

static int admin_check(struct xds_server *s, struct proxy *p, const struct xds_dataplane *dp,
                       struct admin_job *j)
{
    if (!s->cfg.admin_ca_cert_pem || !s->cfg.admin_ca_key_pem || p->proxyless || !dp->address)
        return 0;
    if (p->admin_cert_for && strcmp(p->admin_cert_for, dp->address) == 0)
        return 0;
    memset(j, 0, sizeof(*j));
    j->p = p;
    j->host = xstrdup(dp->address);
    return 1;
}

static void admin_issue(struct xds_server *s, struct admin_job *j)
{
    const char *host = j->host;
    j->rc = ca_admin_issue(s->cfg.admin_ca_cert_pem, s->cfg.admin_ca_key_pem, 1, &host, 1, &j->cert,
                           &j->key, &j->e);
}

static void admin_apply(struct proxy *p, struct admin_job *j)
{
    proxy_admin_clear(p);
    if (j->rc < 0) {
        log_warn(LOG, "%s.%s: no admin listener certificate: %s", p->mesh, p->name, j->e.msg);
        free(j->host);
    } else {
        p->admin_cert_pem = j->cert;
        p->admin_key_pem = j->key;
        p->admin_cert_for = j->host;
    }
    j->host = j->cert = j->key = NULL;
}

static void proxy_ensure_admin_cert(struct xds_server *s, struct proxy *p,
                                    const struct xds_dataplane *dp)
{
    struct admin_job j;
    if (!admin_check(s, p, dp, &j))
        return;
    admin_issue(s, &j);
    admin_apply(p, &j);
}

/* Issues many admin certificates on up to gen_threads threads (the caller's
 * included). In a cold start every proxy needs one, and issued one by one
 * on the mesh thread they held back the whole batch's generation and push:
 * 10,000 of them were 0.44 s of serial work before the first response of a
 * batch could go out (docs/BENCHMARKS.md). */
struct admin_batch {
    struct xds_server *s;
    struct admin_job *v;
    size_t n;
    atomic_size_t next;
};

static void *admin_worker(void *arg)
{
    struct admin_batch *b = arg;
    size_t i;
    while ((i = atomic_fetch_add(&b->next, 1)) < b->n)
        admin_issue(b->s, &b->v[i]);
    return NULL;
}

static void admins_issue(struct xds_server *s, struct admin_job *v, size_t n)
{
    struct admin_batch b = {.s = s, .v = v, .n = n};
    atomic_init(&b.next, 0);
    pthread_t tid[XDS_GEN_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < s->gen_threads && n >= 16 && t < XDS_GEN_MAX_THREADS; t++)
        if (pthread_create(&tid[started], NULL, admin_worker, &b) == 0)
            started++;
    admin_worker(&b);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
}

/* Prepares p's generation: loads its mesh's snapshot, issues or rotates its
 * certificate, and fills job when its inputs changed since the config it
 * has. Returns 1 when a job was filled (mesh thread). */
static int proxy_prepare(struct xds_server *s, struct proxy *p, struct xds_gen_job *job)
{
    if (!p->n_streams)
        return 0;
    struct mstate *m = p->ms;
    mesh_load(s, m);
    if (!m->snap)
        return 0; /* mesh gone: keep serving the last config */
    const struct xds_dataplane *dp = xds_snapshot_dataplane(m->snap, p->name);
    if (!dp)
        return 0; /* not registered yet, or deleted */
    proxy_ensure_cert(s, p, m->snap, dp);
    proxy_ensure_admin_cert(s, p, dp);
    struct xds_gen_opts o = {.proxyless = p->proxyless,
                             .identity_cert_pem = p->cert_pem,
                             .identity_key_pem = p->key_pem,
                             .admin_port = p->admin_port,
                             .admin_cert_pem = p->admin_cert_pem,
                             .admin_key_pem = p->admin_key_pem,
                             .admin_ca_pem = p->admin_cert_pem ? s->cfg.admin_ca_cert_pem : NULL};
    if (p->cfg && p->cfg->input_hash == xds_gen_input_hash(m->snap, dp, &o))
        return 0;
    job->dp = dp;
    job->o = o;
    job->out = NULL;
    return 1;
}

/* Installs a generated config (mesh thread). */
static void proxy_install(struct xds_server *s, struct proxy *p, struct xds_proxy_config *cfg)
{
    atomic_fetch_add(&s->st_generations, 1);
    xds_proxy_config_unref(p->cfg);
    p->cfg = cfg;
    pthread_mutex_lock(&s->ins_mu);
    struct insight_entry *e = proxy_insight_entry(s, p);
    xds_proxy_config_unref(e->cfg);
    e->cfg = xds_proxy_config_ref(cfg);
    pthread_mutex_unlock(&s->ins_mu);
}

static void proxy_push(struct xds_server *s, struct proxy *p)
{
    for (struct xstream *x = p->streams; x; x = x->next)
        push_stream(s, x);
}

/* Regenerates p if its inputs changed and pushes what changed. */
static void proxy_update(struct xds_server *s, struct proxy *p)
{
    struct xds_gen_job job;
    if (proxy_prepare(s, p, &job))
        proxy_install(s, p, xds_generate(p->ms->snap, job.dp, &job.o));
    proxy_push(s, p);
}

/* Pushes many proxies on up to gen_threads threads (the caller's included),
 * each proxy (all its streams) on one thread. Pushing is mostly gRPC's work
 * on the calling thread (HTTP/2 framing, TLS records, the socket write): on
 * the mesh thread alone it took three times as long as generating the batch
 * (docs/BENCHMARKS.md). Safe because the mesh thread does nothing else until
 * the batch is pushed: a stream's state is touched only by the thread that
 * pushes its proxy, configs are installed before, insights are under ins_mu,
 * and stream sends and logging are thread-safe. */
struct push_batch {
    struct xds_server *s;
    struct proxy **v;
    size_t n;
    atomic_size_t next;
};

static void *push_worker(void *arg)
{
    struct push_batch *b = arg;
    size_t i;
    while ((i = atomic_fetch_add(&b->next, 1)) < b->n)
        proxy_push(b->s, b->v[i]);
    return NULL;
}

static void proxies_push(struct xds_server *s, struct proxy **v, size_t n)
{
    struct push_batch b = {.s = s, .v = v, .n = n};
    atomic_init(&b.next, 0);
    pthread_t tid[XDS_GEN_MAX_THREADS];
    int started = 0;
    /* Small batches (a stream's own requests) stay on the mesh thread. */
    for (int t = 1; t < s->gen_threads && n >= 64 && t < XDS_GEN_MAX_THREADS; t++)
        if (pthread_create(&tid[started], NULL, push_worker, &b) == 0)
            started++;
    push_worker(&b);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
}

/* The same for many proxies of one mesh: the generations run as one batch
 * on up to gen_threads threads (the mesh thread included), which only read
 * the snapshot; installing stays on the mesh thread, pushing runs on the same
 * threads again (proxies_push). */
/* Where a batch's time went on the mesh thread (ms): certs includes loading
 * the mesh's snapshot when the batch is the first to need it. */
struct update_times {
    int64_t certs, admin, gen, push;
};

static void proxies_update(struct xds_server *s, struct proxy **v, size_t n,
                           struct update_times *tm)
{
    int64_t t0 = mono_ms();
    /* Certificates first, as one parallel batch (proxy_prepare then finds
     * them current). */
    struct cert_job *cj = xcalloc(n ? n : 1, sizeof(*cj));
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        struct proxy *p = v[i];
        if (!p->n_streams)
            continue;
        mesh_load(s, p->ms);
        const struct xds_dataplane *dp =
            p->ms->snap ? xds_snapshot_dataplane(p->ms->snap, p->name) : NULL;
        if (dp && cert_check(s, p, p->ms->snap, dp, &cj[nc]))
            xds_snapshot_ref(p->ms->snap), nc++; /* the job reads it until applied */
    }
    if (nc) {
        /* One thread: with two, OpenSSL 3's locks in key generation raised
         * kuma-cp's CPU for 10,000 certificates from 5.9 to 8.6 s without a
         * faster cold start (docs/BENCHMARKS.md). */
        certs_issue(cj, nc, 1);
        for (size_t i = 0; i < nc; i++) {
            cert_apply(s, &cj[i]);
            xds_snapshot_unref((struct xds_mesh_snapshot *)cj[i].snap);
        }
    }
    free(cj);
    int64_t t1 = mono_ms();
    /* Admin certificates next, as one parallel batch too. */
    struct admin_job *aj = xcalloc(n ? n : 1, sizeof(*aj));
    size_t na = 0;
    for (size_t i = 0; i < n; i++) {
        struct proxy *p = v[i];
        const struct xds_dataplane *dp =
            p->n_streams && p->ms->snap ? xds_snapshot_dataplane(p->ms->snap, p->name) : NULL;
        if (dp && admin_check(s, p, dp, &aj[na]))
            na++;
    }
    if (na) {
        admins_issue(s, aj, na);
        for (size_t i = 0; i < na; i++)
            admin_apply(aj[i].p, &aj[i]);
    }
    free(aj);
    int64_t t2 = mono_ms();
    struct xds_gen_job *jobs = xcalloc(n ? n : 1, sizeof(*jobs));
    struct proxy **who = xcalloc(n ? n : 1, sizeof(*who));
    size_t nj = 0;
    struct xds_mesh_snapshot *snap = NULL;
    for (size_t i = 0; i < n; i++) {
        struct proxy *p = v[i];
        if (snap && p->ms->snap != snap) {
            /* Another mesh: finish this batch first. */
            xds_generate_batch(snap, jobs, nj, s->gen_threads);
            for (size_t j = 0; j < nj; j++)
                proxy_install(s, who[j], jobs[j].out);
            nj = 0;
            xds_snapshot_unref(snap);
            snap = NULL;
        }
        if (proxy_prepare(s, p, &jobs[nj])) {
            if (!snap)
                snap = xds_snapshot_ref(p->ms->snap);
            who[nj++] = p;
        }
    }
    if (nj)
        xds_generate_batch(snap, jobs, nj, s->gen_threads);
    for (size_t j = 0; j < nj; j++)
        proxy_install(s, who[j], jobs[j].out);
    xds_snapshot_unref(snap);
    int64_t t3 = mono_ms();
    proxies_push(s, v, n);
    free(jobs);
    free(who);
    if (tm)
        *tm = (struct update_times){t1 - t0, t2 - t1, t3 - t2, mono_ms() - t3};
}

/* ---- registration ------------------------------------------------------ */

static const char *node_metadata_string(const Envoy__Config__Core__V3__Node *node, const char *key)
{
    if (!node->metadata)
        return NULL;
    for (size_t i = 0; i < node->metadata->n_fields; i++) {
        Google__Protobuf__Struct__FieldsEntry *f = node->metadata->fields[i];
        if (f->key && strcmp(f->key, key) == 0 && f->value &&
            f->value->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
            return f->value->string_value;
    }
    return NULL;
}

/* Creates or updates the Dataplane sent in node metadata `dataplane.resource`
 * (Kuma's DataplaneLifecycle), through the manager's validation. */
static int register_dataplane(struct xds_server *s, const char *mesh, const char *name,
                              const char *text, struct err *e)
{
    json_t *doc = NULL;
    struct resource *r = NULL;
    int rc = -1;
    if (codec_parse_one(text, strlen(text), &doc, e) < 0)
        goto out;
    if (resource_from_json(doc, &r, e) < 0)
        goto out;
    if (r->type != &TYPE_DATAPLANE) {
        err_set(e, "dataplane.resource: expected a Dataplane, got %s", r->type->name);
        goto out;
    }
    if (!*r->mesh) {
        free(r->mesh);
        r->mesh = xstrdup(mesh);
    }
    if (strcmp(r->mesh, mesh) != 0 || strcmp(r->name, name) != 0) {
        err_set(e, "proxyId %s.%s does not match proxy resource %s.%s", mesh, name, r->mesh,
                r->name);
        goto out;
    }
    struct mgr_result res = {0};
    int created = 0;
    int mrc = manager_put(s->mgr, r, &created, &res);
    if (mrc != MGR_OK) {
        if (mrc == MGR_EINVALID) {
            char *j = verr_join(&res.ve);
            err_set(e, "could not register proxy passed in kuma-dp run: %s", j);
            free(j);
        } else {
            err_set(e, "could not register proxy passed in kuma-dp run: %s",
                    res.msg[0] ? res.msg : "failed");
        }
        mgr_result_free(&res);
        goto out;
    }
    mgr_result_free(&res);
    log_info(LOG, "%s.%s: dataplane %s from node metadata", mesh, name,
             created ? "registered" : "updated");
    rc = 0;
out:
    json_decref(doc);
    resource_free(r);
    return rc;
}

/* The tag set ({tag:[values]}) of the dataplane a stream speaks for: from
 * the resource it registers with, else from the store; {} when unknown. */
static json_t *dataplane_tags(struct xds_server *s, const char *mesh, const char *name,
                              const char *text)
{
    json_t *tags = NULL;
    struct err e;
    if (text && *text) {
        json_t *doc = NULL;
        struct resource *r = NULL;
        if (codec_parse_one(text, strlen(text), &doc, &e) == 0 &&
            resource_from_json(doc, &r, &e) == 0)
            tags = ca_dataplane_tags(r->spec);
        resource_free(r);
        json_decref(doc);
    } else {
        struct resource *r = NULL;
        if (store_get(manager_store(s->mgr), &TYPE_DATAPLANE, mesh, name, &r, &e) == 0)
            tags = ca_dataplane_tags(r->spec);
        resource_free(r);
    }
    return tags ? tags : json_object();
}

/* ---- dataplane tokens --------------------------------------------------- */

static int token_key_lookup(void *ud, const char *mesh, int kid, char **pem, struct err *e)
{
    char *name = token_dp_signing_key_name(mesh, kid);
    size_t len;
    int rc = identity_secret_fetch(ud, mesh, name, pem, &len, e);
    free(name);
    if (rc == CA_NOT_FOUND)
        return TOKEN_KEY_NOT_FOUND;
    return rc;
}

int xds_auth_dp_token(void *ctx, const char *mesh, const char *name, const char *token,
                      const json_t *dp_tags, struct err *e)
{
    struct store *st = ctx;
    if (!token || !*token)
        return err_set(e, "dataplane token is missing: send it as gRPC metadata "
                          "\"authorization\" (kuma-dp --dataplane-token-file)");
    struct token_dp_claims c = {0};
    if (token_dataplane_verify(token, token_key_lookup, st, mesh, name, &c, e) < 0)
        return -1;
    int rc = 0;
    char *rname = token_dp_revocations_name(mesh);
    char *data = NULL;
    size_t len = 0;
    struct err re;
    int frc = identity_secret_fetch(st, mesh, rname, &data, &len, &re);
    if (frc < 0) {
        rc = err_set(e, "could not read the revocation list: %s", re.msg);
    } else if (frc == 0 && token_is_revoked(data, len, c.jti)) {
        rc = err_set(e, "token is revoked");
    } else if (token_dataplane_check_tags(c.tags, dp_tags, e) < 0) {
        rc = -1;
    } else if (c.type && *c.type && strcmp(c.type, "dataplane") != 0) {
        rc = err_set(e, "token is of proxy type \"%s\", not a dataplane token", c.type);
    }
    free(data);
    free(rname);
    token_dp_claims_free(&c);
    return rc;
}

/* ---- requests ---------------------------------------------------------- */

static void fail_stream(struct xstream *x, enum grpcf_status code, const char *msg)
{
    log_warn(LOG, "stream %llu closed: %s", (unsigned long long)x->id, msg);
    x->failed = 1;
    xds_stream_finish(x->ts, code, msg);
}

/* The first request of a stream: who is it. */
static int stream_hello(struct xds_server *s, struct xstream *x,
                        const Envoy__Service__Discovery__V3__DiscoveryRequest *req)
{
    struct err e;
    char *mesh = NULL, *name = NULL;
    if (!req->node) {
        fail_stream(x, GRPCF_STATUS_INVALID_ARGUMENT, "Envoy node must not be nil");
        return -1;
    }
    if (xds_parse_proxy_id(req->node->id, &mesh, &name, &e) < 0) {
        fail_stream(x, GRPCF_STATUS_INVALID_ARGUMENT, e.msg);
        return -1;
    }
    const char *text = node_metadata_string(req->node, "dataplane.resource");
    if (s->cfg.authenticate) {
        json_t *tags = dataplane_tags(s, mesh, name, text);
        int rc = s->cfg.authenticate(s->cfg.auth_ctx, mesh, name, xds_stream_authorization(x->ts),
                                     tags, &e);
        json_decref(tags);
        if (rc < 0) {
            char *msg = xasprintf("authentication failed: %s", e.msg);
            fail_stream(x, GRPCF_STATUS_UNAUTHENTICATED, msg);
            free(msg);
            free(mesh);
            free(name);
            return -1;
        }
    }
    int registered = 0;
    if (text && *text) {
        if (register_dataplane(s, mesh, name, text, &e) < 0) {
            fail_stream(x, GRPCF_STATUS_INVALID_ARGUMENT, e.msg);
            free(mesh);
            free(name);
            return -1;
        }
        registered = 1;
    }
    struct proxy *p = proxy_get(s, mesh, name, 1);
    p->registered |= registered;
    TIMERS_BEFORE(p);
    p->dereg_at_ms = 0;
    TIMERS_AFTER(s, p);
    if (p->n_streams == 0)
        p->ms->connected++;
    const char *ua = req->node->user_agent_name;
    p->proxyless = ua && strncmp(ua, "gRPC", 4) == 0;
    const char *aport = node_metadata_string(req->node, "dataplane.admin.port");
    char *aend = NULL;
    unsigned long ap = aport ? strtoul(aport, &aend, 10) : 0;
    p->admin_port = aport && *aport && aend && !*aend && ap <= 65535 ? (uint32_t)ap : 0;
    x->proxy = p;
    x->next = p->streams;
    p->streams = x;
    p->n_streams++;
    log_info(LOG, "%s.%s connected (stream %llu from %s, %s)", mesh, name,
             (unsigned long long)x->id, xds_stream_peer(x->ts),
             p->proxyless ? "proxyless gRPC" : (ua && *ua ? ua : "envoy"));

    pthread_mutex_lock(&s->ins_mu);
    struct xds_dataplane_insight *in = insight_get(s, mesh, name, 1);
    in->online = 1;
    in->connect_time_ns = x->connect_ns;
    in->disconnect_time_ns = 0;
    in->stream_id = x->id;
    free(in->peer);
    in->peer = xstrdup(xds_stream_peer(x->ts));
    in->proxyless = p->proxyless;
    in->admin_port = p->admin_port;
    pthread_mutex_unlock(&s->ins_mu);

    free(mesh);
    free(name);
    /* A registration is seen again as a change event; generating now gives a
     * reconnecting proxy its config at once. */
    struct mstate *m = mesh_get(s, p->mesh, 1);
    if (registered)
        m->dirty = m->dps_dirty = 1;
    /* Generated with the other new streams at the end of this round. */
    if (!p->pending) {
        p->pending = 1;
        if (s->n_pending == s->cap_pending) {
            s->cap_pending = s->cap_pending ? s->cap_pending * 2 : 64;
            s->pending = xrealloc(s->pending, s->cap_pending * sizeof(*s->pending));
        }
        s->pending[s->n_pending++] = p;
    }
    return 0;
}

static uint64_t names_hash(const Envoy__Service__Discovery__V3__DiscoveryRequest *req)
{
    uint64_t h = xds_hash_u64(XDS_HASH_INIT, req->n_resource_names);
    for (size_t i = 0; i < req->n_resource_names; i++)
        h = xds_hash_str(h, req->resource_names[i]);
    return h;
}

static void handle_request(struct xds_server *s, struct xstream *x, const uint8_t *data, size_t len)
{
    if (x->failed)
        return;
    Envoy__Service__Discovery__V3__DiscoveryRequest *req =
        envoy__service__discovery__v3__discovery_request__unpack(NULL, len, data);
    if (!req) {
        fail_stream(x, GRPCF_STATUS_INVALID_ARGUMENT, "could not decode the DiscoveryRequest");
        return;
    }
    if (!x->proxy && stream_hello(s, x, req) < 0)
        goto out;
    struct proxy *p = x->proxy;
    int t = xds_type_from_url(req->type_url);
    if (t < 0) {
        log_debug(LOG, "%s.%s: ignoring request for unknown type %s", p->mesh, p->name,
                  req->type_url);
        goto out;
    }
    struct type_state *st = &x->types[t];
    int force = 0;
    if (req->response_nonce && *req->response_nonce) {
        if (strcmp(req->response_nonce, st->nonce) != 0) {
            log_debug(LOG, "%s.%s: %s request with stale nonce %s ignored", p->mesh, p->name,
                      xds_type_short(t), req->response_nonce);
            goto out;
        }
        int64_t now = now_ns();
        pthread_mutex_lock(&s->ins_mu);
        struct xds_type_insight *ti = &insight_get(s, p->mesh, p->name, 1)->types[t];
        if (req->error_detail) {
            const char *msg = req->error_detail->message ? req->error_detail->message : "";
            snprintf(ti->nacked_version, sizeof(ti->nacked_version), "%s", st->sent_version);
            ti->last_nack_ns = now;
            ti->nacks++;
            free(ti->last_nack_error);
            ti->last_nack_error = xstrdup(msg);
            pthread_mutex_unlock(&s->ins_mu);
            log_warn(LOG, "%s.%s: %s version %s rejected (NACK): %s", p->mesh, p->name,
                     xds_type_short(t), st->sent_version, msg);
        } else {
            snprintf(ti->acked_version, sizeof(ti->acked_version), "%s",
                     req->version_info ? req->version_info : "");
            ti->last_ack_ns = now;
            ti->acks++;
            pthread_mutex_unlock(&s->ins_mu);
            log_debug(LOG, "%s.%s: %s version %s ACKed", p->mesh, p->name, xds_type_short(t),
                      req->version_info);
        }
    }
    uint64_t nh = names_hash(req);
    if (!st->subscribed || st->names_hash != nh)
        force = 1;
    st->subscribed = 1;
    st->names_hash = nh;
    if (force && p->cfg)
        send_type(s, x, (enum xds_type)t);
    else
        push_stream(s, x);
out:
    envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
}

static void handle_close(struct xds_server *s, struct xstream *x)
{
    struct proxy *p = x->proxy;
    if (p) {
        for (struct xstream **pp = &p->streams; *pp; pp = &(*pp)->next) {
            if (*pp == x) {
                *pp = x->next;
                break;
            }
        }
        p->n_streams--;
        log_info(LOG, "%s.%s disconnected (stream %llu)", p->mesh, p->name,
                 (unsigned long long)x->id);
        if (p->n_streams == 0) {
            p->ms->connected--;
            /* The certificate is kept: a reconnect (storm) reuses it while
             * it is valid instead of generating keys on the connect path. */
            TIMERS_BEFORE(p);
            pthread_mutex_lock(&s->ins_mu);
            struct xds_dataplane_insight *in = insight_get(s, p->mesh, p->name, 1);
            in->online = 0;
            in->disconnect_time_ns = now_ns();
            pthread_mutex_unlock(&s->ins_mu);
            xds_proxy_config_unref(p->cfg);
            p->cfg = NULL;
            if (p->registered && !atomic_load(&s->stopping)) {
                p->dereg_at_ms = mono_ms() + s->cfg.deregistration_delay_ms;
                log_info(LOG, "%s.%s: deregistering in %lld ms unless it reconnects", p->mesh,
                         p->name, (long long)s->cfg.deregistration_delay_ms);
            }
            TIMERS_AFTER(s, p);
            struct mstate *m = mesh_get(s, p->mesh, 0);
            if (m && mesh_connected(s, p->mesh) == 0) {
                /* Nobody of this mesh is connected: do not keep its snapshot. */
                xds_snapshot_unref(m->snap);
                m->snap = NULL;
                m->loaded = 0;
            }
        }
    }
    xds_stream_unref(x->ts);
    free(x);
}

/* Runs the timers that are due: deregistrations, and certificate rotations
 * (a rotation regenerates the proxy, which re-issues at 80% of the
 * lifetime). Only walks the proxies when some timer exists. */
static void run_timers(struct xds_server *s, int64_t now)
{
    if (!s->n_timers)
        return;
    struct proxy **due = NULL;
    size_t n = 0, cap = 0;
    void *v;
    for (size_t i = 0; hmap_next(&s->proxies, &i, NULL, &v);) {
        struct proxy *p = v;
        if ((p->dereg_at_ms && p->dereg_at_ms <= now && !p->n_streams) ||
            (p->cert_rotate_ms && p->cert_rotate_ms <= now && p->n_streams)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                due = xrealloc(due, cap * sizeof(*due));
            }
            due[n++] = p;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct proxy *p = due[i];
        if (p->cert_rotate_ms && p->cert_rotate_ms <= now && p->n_streams) {
            proxy_update(s, p);
            continue;
        }
        TIMERS_BEFORE(p);
        p->dereg_at_ms = 0;
        p->registered = 0;
        TIMERS_AFTER(s, p);
        struct mgr_result res = {0};
        int rc = manager_delete(s->mgr, &TYPE_DATAPLANE, p->mesh, p->name, &res);
        if (rc == MGR_OK)
            log_info(LOG, "%s.%s: dataplane deregistered", p->mesh, p->name);
        else if (rc != MGR_ENOTFOUND)
            log_error(LOG, "%s.%s: could not deregister the dataplane: %s", p->mesh, p->name,
                      res.msg);
        mgr_result_free(&res);
    }
    free(due);
}

static int64_t next_deadline(struct xds_server *s)
{
    if (!s->n_timers)
        return 0;
    int64_t d = 0;
    void *v;
    for (size_t i = 0; hmap_next(&s->proxies, &i, NULL, &v);) {
        struct proxy *p = v;
        if (p->dereg_at_ms && (!d || p->dereg_at_ms < d))
            d = p->dereg_at_ms;
        if (p->cert_rotate_ms && p->n_streams && (!d || p->cert_rotate_ms < d))
            d = p->cert_rotate_ms;
    }
    return d;
}

static void handle_event(struct xds_server *s, const struct event *ev)
{
    if (ev->kind == EVENT_RESYNC) {
        s->resync = 1;
        return;
    }
    /* Cross-mesh gateways carry every mesh's CA (snapshot all_ca_pem): a
     * Mesh or Secret change anywhere rebuilds their meshes too. */
    if (ev->type == &TYPE_MESH || ev->type == &TYPE_SECRET) {
        void *v;
        for (size_t i = 0; hmap_next(&s->meshes, &i, NULL, &v);) {
            struct mstate *m = v;
            if (m->snap && m->snap->all_ca_pem)
                m->dirty = 1;
        }
    }
    /* Cross-mesh outbounds (crossmesh.h): a mesh whose dataplanes call
     * another mesh's cross-mesh gateways is rebuilt when anything of that
     * mesh changes (its gateway dataplanes, MeshGateways, CA, the Mesh
     * itself); only its proxies with such outbounds get new output. */
    {
        const char *src = ev->type == &TYPE_MESH ? ev->name : ev->mesh;
        if (src && *src &&
            (ev->type == &TYPE_MESH || ev->type == &TYPE_DATAPLANE || ev->type == &TYPE_SECRET ||
             ev->type == &TYPE_MESH_GATEWAY)) {
            void *v;
            for (size_t i = 0; hmap_next(&s->meshes, &i, NULL, &v);) {
                struct mstate *m = v;
                if (xds_crossmesh_depends_on(m->snap, src))
                    m->dirty = 1;
            }
        }
    }
    /* Meshes, dataplanes, the policies the generator reads, and Secrets (a
     * mesh's CA lives in them) shape the output. */
    if (xds_is_policy_type(ev->type) || ev->type == &TYPE_SECRET) {
        struct mstate *m = mesh_get(s, ev->mesh, 0);
        if (m)
            m->dirty = 1;
    } else if (ev->type == &TYPE_MESH) {
        struct mstate *m = mesh_get(s, ev->name, 0);
        if (m)
            m->dirty = m->dps_dirty = 1;
    } else if (ev->type == &TYPE_DATAPLANE) {
        struct mstate *m = mesh_get(s, ev->mesh, 0);
        if (m)
            m->dirty = m->dps_dirty = 1;
        if (ev->op == CHANGE_DELETE) {
            struct proxy *p = proxy_get(s, ev->mesh, ev->name, 0);
            if (p && !p->n_streams) {
                /* Deleted and gone: forget it, insight included (as Kuma's
                 * DataplaneInsight goes with its Dataplane). */
                insight_remove(s, p->mesh, p->name);
                proxy_remove(s, p);
            }
        }
    }
}

static int cmp_proxy_mesh(const void *a, const void *b)
{
    const struct proxy *x = *(struct proxy *const *)a, *y = *(struct proxy *const *)b;
    return x->ms < y->ms ? -1 : x->ms > y->ms;
}

/* Rebuilds the dirty meshes that have connected proxies and pushes. */
static void apply_changes(struct xds_server *s)
{
    void *v;
    if (s->resync) {
        s->resync = 0;
        for (size_t i = 0; hmap_next(&s->meshes, &i, NULL, &v);)
            ((struct mstate *)v)->dirty = ((struct mstate *)v)->dps_dirty = 1;
    }
    for (size_t i = 0; hmap_next(&s->meshes, &i, NULL, &v);) {
        struct mstate *m = v;
        if (!m->dirty)
            continue;
        if (m->connected == 0) {
            xds_snapshot_unref(m->snap);
            m->snap = NULL;
            m->loaded = 0;
            m->dirty = 0;
            continue;
        }
        int64_t t0 = mono_ms();
        uint64_t g0 = atomic_load(&s->st_generations), r0 = atomic_load(&s->st_responses);
        mesh_load(s, m);
        int64_t t1 = mono_ms();
        proxies_update(s, m->proxies, m->n_proxies, NULL);
        log_info(LOG,
                 "mesh %s: snapshot in %lld ms, %llu proxies regenerated, %llu responses "
                 "queued in %lld ms",
                 m->name, (long long)(t1 - t0),
                 (unsigned long long)(atomic_load(&s->st_generations) - g0),
                 (unsigned long long)(atomic_load(&s->st_responses) - r0),
                 (long long)(mono_ms() - t1));
    }
}

/* Generates the proxies of the streams opened in this round, in one batch
 * (a connection storm becomes a few batches rather than one generation per
 * wake-up). */
static void flush_pending(struct xds_server *s)
{
    if (!s->n_pending)
        return;
    for (size_t i = 0; i < s->n_pending; i++) {
        s->pending[i]->pending = 0;
        mesh_load(s, s->pending[i]->ms);
    }
    /* Group by mesh so each batch has one snapshot. */
    qsort(s->pending, s->n_pending, sizeof(*s->pending), cmp_proxy_mesh);
    struct update_times tm;
    proxies_update(s, s->pending, s->n_pending, &tm);
    log_info(LOG,
             "%zu new proxies served in %lld ms (snapshot and workload certificates %lld ms, admin "
             "certificates %lld ms, generation %lld ms, responses queued in %lld ms)",
             s->n_pending, (long long)(tm.certs + tm.admin + tm.gen + tm.push), (long long)tm.certs,
             (long long)tm.admin, (long long)tm.gen, (long long)tm.push);
    s->n_pending = 0;
}

static void *mesh_main(void *arg)
{
    struct xds_server *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (!s->head) {
            int64_t d = next_deadline(s);
            if (d) {
                int64_t wait = d - mono_ms();
                if (wait > 0) {
                    struct timespec ts;
                    clock_gettime(CLOCK_MONOTONIC, &ts);
                    ts.tv_sec += wait / 1000;
                    ts.tv_nsec += (wait % 1000) * 1000000L;
                    if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                    }
                    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
                }
            } else {
                pthread_cond_wait(&s->cv, &s->mu);
            }
        }
        struct item *list = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);

        while (list) {
            struct item *it = list;
            list = it->next;
            struct xstream *x = it->ts ? xds_stream_user(it->ts) : NULL;
            switch (it->kind) {
            case IT_OPEN:
                log_debug(LOG, "stream %llu opened by %s", (unsigned long long)x->id,
                          xds_stream_peer(it->ts));
                break;
            case IT_MSG:
                atomic_fetch_sub(&x->queued, 1);
                handle_request(s, x, it->data, it->len);
                break;
            case IT_CLOSE:
                handle_close(s, x);
                break;
            case IT_EVENT:
                handle_event(s, &it->ev);
                event_clear(&it->ev);
                break;
            }
            if (it->ts)
                xds_stream_unref(it->ts);
            free(it->data);
            free(it);
        }
        apply_changes(s);
        flush_pending(s);
        run_timers(s, mono_ms());
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------ */

int xds_server_start(struct manager *mgr, struct event_bus *bus, const struct xds_server_config *c,
                     struct xds_server **out, int *bound_port, struct err *e)
{
    struct xds_server *s = xcalloc(1, sizeof(*s));
    s->mgr = mgr;
    s->bus = bus;
    s->cfg = *c;
    s->instance_id = xstrdup(c->instance_id ? c->instance_id : "kuma-cp");
    /* Generation threads: KUMA_XDS_SERVER_GENERATION_THREADS (1..8), default
     * 2 when the machine has 2 cores (docs/BENCHMARKS.md: 1 and 2 measure
     * the same within noise on 2 vCPUs shared with the fleet). */
    s->gen_threads = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
    const char *gt = getenv("KUMA_XDS_SERVER_GENERATION_THREADS");
    if (gt && atoi(gt) >= 1 && atoi(gt) <= XDS_GEN_MAX_THREADS)
        s->gen_threads = atoi(gt);
    s->cfg.instance_id = s->instance_id;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->ins_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&s->stopping, 0);

    /* Bind first: a port in use must fail before any thread exists. */
    struct xds_transport_opts o = {.address = c->address,
                                   .port = c->port,
                                   .tls_cert_pem = c->tls_cert_pem,
                                   .tls_key_pem = c->tls_key_pem};
    struct xds_transport_cb cb = {cb_open, cb_message, cb_close};
    if (xds_transport_start(&o, &cb, s, &s->transport, bound_port, e) < 0) {
        xds_server_stop(s);
        return -1;
    }
    /* Streams opened before the mesh thread runs just wait in the inbox. */
    s->sub = event_subscribe(bus); /* RESYNC comes first */
    if (pthread_create(&s->mesh_thread, NULL, mesh_main, s) != 0) {
        err_set(e, "could not start the xDS mesh thread");
        goto fail;
    }
    s->mesh_started = 1;
    if (pthread_create(&s->pump_thread, NULL, pump_main, s) != 0) {
        err_set(e, "could not start the xDS event thread");
        goto fail;
    }
    s->pump_started = 1;
    *out = s;
    return 0;
fail:
    xds_server_stop(s);
    return -1;
}

void xds_server_stop(struct xds_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, 1);
    /* Cancels every stream; their close items reach the mesh thread. */
    xds_transport_shutdown(s->transport);
    if (s->pump_started)
        pthread_join(s->pump_thread, NULL);
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->mesh_started)
        pthread_join(s->mesh_thread, NULL);
    /* Items the mesh thread did not get to. */
    while (s->head) {
        struct item *it = s->head;
        s->head = it->next;
        if (it->kind == IT_CLOSE) {
            struct xstream *x = xds_stream_user(it->ts);
            handle_close(s, x);
        }
        if (it->kind == IT_EVENT)
            event_clear(&it->ev);
        if (it->ts)
            xds_stream_unref(it->ts);
        free(it->data);
        free(it);
    }
    xds_transport_free(s->transport);
    if (s->sub)
        event_unsubscribe(s->sub);
    void *v;
    for (size_t i = 0; hmap_next(&s->proxies, &i, NULL, &v);) {
        struct proxy *p = v;
        xds_proxy_config_unref(p->cfg);
        proxy_cert_clear(p);
        proxy_admin_clear(p);
        free(p->mesh);
        free(p->name);
        free(p);
    }
    hmap_free(&s->proxies);
    for (size_t i = 0; hmap_next(&s->meshes, &i, NULL, &v);) {
        struct mstate *m = v;
        xds_snapshot_unref(m->snap);
        free(m->proxies);
        free(m->name);
        free(m);
    }
    hmap_free(&s->meshes);
    for (size_t i = 0; hmap_next(&s->ins, &i, NULL, &v);) {
        struct insight_entry *e = v;
        xds_dataplane_insight_clear(&e->in);
        xds_proxy_config_unref(e->cfg);
        free(e);
    }
    hmap_free(&s->ins);
    free(s->pending);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->ins_mu);
    pthread_cond_destroy(&s->cv);
    free(s->instance_id);
    free(s);
}
