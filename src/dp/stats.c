/*
 * stats — registry of refcounted stat blocks and the two renderings (see
 * stats.h). The registry is a hash table under one mutex; it is touched only
 * when a configuration is applied and when the admin endpoint renders, never
 * on the data path.
 */
#include "dp/stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024

struct entry {
    struct entry *next;
    enum dp_stat_kind kind;
    long refs;
    char *name;
    union {
        struct dp_cluster_stats cluster;
        struct dp_listener_stats listener;
        struct dp_tcp_stats tcp;
        struct dp_rbac_stats rbac;
        struct dp_host_stats host;
        struct dp_http_stats http;
    } u;
};

struct dp_stats {
    pthread_mutex_t mu;
    struct entry *buckets[NBUCKETS];
};

struct field {
    const char *name;
    size_t off;
    int gauge;
};

#define C(T, f, n)                                                                                 \
    {                                                                                              \
        n, offsetof(struct T, f), 0                                                                \
    }
#define G(T, f, n)                                                                                 \
    {                                                                                              \
        n, offsetof(struct T, f), 1                                                                \
    }

static const struct field cluster_fields[] = {
    C(dp_cluster_stats, upstream_cx_total, "upstream_cx_total"),
    G(dp_cluster_stats, upstream_cx_active, "upstream_cx_active"),
    C(dp_cluster_stats, upstream_cx_connect_fail, "upstream_cx_connect_fail"),
    C(dp_cluster_stats, upstream_cx_connect_timeout, "upstream_cx_connect_timeout"),
    C(dp_cluster_stats, upstream_cx_connect_attempts_exceeded,
      "upstream_cx_connect_attempts_exceeded"),
    C(dp_cluster_stats, upstream_cx_rx_bytes_total, "upstream_cx_rx_bytes_total"),
    C(dp_cluster_stats, upstream_cx_tx_bytes_total, "upstream_cx_tx_bytes_total"),
    C(dp_cluster_stats, upstream_cx_destroy, "upstream_cx_destroy"),
    C(dp_cluster_stats, upstream_cx_destroy_local, "upstream_cx_destroy_local"),
    C(dp_cluster_stats, upstream_cx_destroy_remote, "upstream_cx_destroy_remote"),
    C(dp_cluster_stats, upstream_cx_none_healthy, "upstream_cx_none_healthy"),
    C(dp_cluster_stats, ejections_enforced_total, "outlier_detection.ejections_enforced_total"),
    C(dp_cluster_stats, ejections_total, "outlier_detection.ejections_total"),
    C(dp_cluster_stats, ejections_enforced_local_origin_failure,
      "outlier_detection.ejections_enforced_consecutive_local_origin_failure"),
    G(dp_cluster_stats, ejections_active, "outlier_detection.ejections_active"),
    G(dp_cluster_stats, membership_total, "membership_total"),
    G(dp_cluster_stats, membership_healthy, "membership_healthy"),
    C(dp_cluster_stats, ssl_handshake, "ssl.handshake"),
    C(dp_cluster_stats, ssl_session_reused, "ssl.session_reused"),
    C(dp_cluster_stats, ssl_connection_error, "ssl.connection_error"),
    C(dp_cluster_stats, ssl_fail_verify_san, "ssl.fail_verify_san"),
    C(dp_cluster_stats, ssl_fail_verify_error, "ssl.fail_verify_error"),
    C(dp_cluster_stats, upstream_cx_http1_total, "upstream_cx_http1_total"),
    C(dp_cluster_stats, upstream_rq_total, "upstream_rq_total"),
    C(dp_cluster_stats, upstream_rq_completed, "upstream_rq_completed"),
    C(dp_cluster_stats, upstream_rq_timeout, "upstream_rq_timeout"),
    C(dp_cluster_stats, upstream_rq_retry, "upstream_rq_retry"),
    G(dp_cluster_stats, upstream_rq_active, "upstream_rq_active"),
    {NULL, 0, 0},
};

static const struct field http_fields[] = {
    C(dp_http_stats, downstream_cx_total, "downstream_cx_total"),
    C(dp_http_stats, downstream_cx_http1_total, "downstream_cx_http1_total"),
    C(dp_http_stats, downstream_cx_http2_total, "downstream_cx_http2_total"),
    C(dp_http_stats, downstream_cx_protocol_error, "downstream_cx_protocol_error"),
    C(dp_http_stats, downstream_cx_upgrades_total, "downstream_cx_upgrades_total"),
    C(dp_http_stats, downstream_cx_destroy, "downstream_cx_destroy"),
    C(dp_http_stats, downstream_rq_total, "downstream_rq_total"),
    C(dp_http_stats, downstream_rq_http1_total, "downstream_rq_http1_total"),
    C(dp_http_stats, downstream_rq_completed, "downstream_rq_completed"),
    C(dp_http_stats, downstream_rq_timeout, "downstream_rq_timeout"),
    C(dp_http_stats, downstream_rq_too_large, "downstream_rq_too_large"),
    C(dp_http_stats, downstream_rq_idle_timeout, "downstream_rq_idle_timeout"),
    C(dp_http_stats, no_route, "no_route"),
    C(dp_http_stats, no_cluster, "no_cluster"),
    C(dp_http_stats, rq_total, "rq_total"),
    C(dp_http_stats, rq_direct_response, "rq_direct_response"),
    C(dp_http_stats, downstream_cx_rx_bytes_total, "downstream_cx_rx_bytes_total"),
    C(dp_http_stats, downstream_cx_tx_bytes_total, "downstream_cx_tx_bytes_total"),
    G(dp_http_stats, downstream_cx_active, "downstream_cx_active"),
    G(dp_http_stats, downstream_rq_active, "downstream_rq_active"),
    G(dp_http_stats, downstream_cx_upgrades_active, "downstream_cx_upgrades_active"),
    {NULL, 0, 0},
};

static const struct field listener_fields[] = {
    C(dp_listener_stats, downstream_cx_total, "downstream_cx_total"),
    G(dp_listener_stats, downstream_cx_active, "downstream_cx_active"),
    C(dp_listener_stats, downstream_cx_destroy, "downstream_cx_destroy"),
    C(dp_listener_stats, ssl_handshake, "ssl.handshake"),
    C(dp_listener_stats, ssl_session_reused, "ssl.session_reused"),
    C(dp_listener_stats, ssl_connection_error, "ssl.connection_error"),
    C(dp_listener_stats, ssl_fail_verify_san, "ssl.fail_verify_san"),
    C(dp_listener_stats, ssl_fail_verify_error, "ssl.fail_verify_error"),
    C(dp_listener_stats, ssl_fail_verify_no_cert, "ssl.fail_verify_no_cert"),
    C(dp_listener_stats, ssl_no_certificate, "ssl.no_certificate"),
    {NULL, 0, 0},
};

static const struct field tcp_fields[] = {
    C(dp_tcp_stats, downstream_cx_total, "downstream_cx_total"),
    C(dp_tcp_stats, downstream_cx_no_route, "downstream_cx_no_route"),
    C(dp_tcp_stats, downstream_cx_rx_bytes_total, "downstream_cx_rx_bytes_total"),
    C(dp_tcp_stats, downstream_cx_tx_bytes_total, "downstream_cx_tx_bytes_total"),
    C(dp_tcp_stats, idle_timeout, "idle_timeout"),
    C(dp_tcp_stats, downstream_flow_control_paused_reading_total,
      "downstream_flow_control_paused_reading_total"),
    C(dp_tcp_stats, downstream_flow_control_resumed_reading_total,
      "downstream_flow_control_resumed_reading_total"),
    {NULL, 0, 0},
};

static const struct field rbac_fields[] = {
    C(dp_rbac_stats, allowed, "rbac.allowed"),
    C(dp_rbac_stats, denied, "rbac.denied"),
    {NULL, 0, 0},
};

static unsigned hash(enum dp_stat_kind kind, const char *s)
{
    unsigned h = 2166136261u ^ (unsigned)kind;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

static void entry_free(struct entry *e)
{
    if (e->kind == DP_STAT_CLUSTER)
        free(atomic_load(&e->u.cluster.upstream_rq_code));
    free(e->name);
    free(e);
}

void dp_stats_count_code(struct dp_cluster_stats *cs, int status)
{
    if (status < 100 || status > 599)
        return;
    dp_counter *codes = atomic_load_explicit(&cs->upstream_rq_code, memory_order_acquire);
    if (!codes) {
        /* First response on this cluster: workers may race; one array wins. */
        dp_counter *fresh = xcalloc(500, sizeof(*fresh));
        dp_counter *seen = NULL;
        if (atomic_compare_exchange_strong_explicit(&cs->upstream_rq_code, &seen, fresh,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            codes = fresh;
        } else {
            free(fresh);
            codes = seen;
        }
    }
    DP_INC(codes[status - 100]);
}

struct dp_stats *dp_stats_new(void)
{
    struct dp_stats *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void dp_stats_free(struct dp_stats *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct entry *e = s->buckets[i], *n; e; e = n) {
            n = e->next;
            entry_free(e);
        }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* An entry holds only its own kind's block, not the whole union (a cluster
 * block is ~300 bytes, a listener's 80), and a proxy has a few of each per
 * outbound. */
static size_t entry_size(enum dp_stat_kind kind)
{
    size_t n = sizeof(struct dp_cluster_stats);
    switch (kind) {
    case DP_STAT_CLUSTER:
        break;
    case DP_STAT_LISTENER:
        n = sizeof(struct dp_listener_stats);
        break;
    case DP_STAT_TCP:
        n = sizeof(struct dp_tcp_stats);
        break;
    case DP_STAT_RBAC:
        n = sizeof(struct dp_rbac_stats);
        break;
    case DP_STAT_HOST:
        n = sizeof(struct dp_host_stats);
        break;
    case DP_STAT_HTTP:
        n = sizeof(struct dp_http_stats);
        break;
    }
    return offsetof(struct entry, u) + n;
}

void *dp_stats_acquire(struct dp_stats *s, enum dp_stat_kind kind, const char *name)
{
    unsigned h = hash(kind, name);
    pthread_mutex_lock(&s->mu);
    struct entry *e = s->buckets[h];
    while (e && (e->kind != kind || strcmp(e->name, name) != 0))
        e = e->next;
    if (!e) {
        e = xcalloc(1, entry_size(kind));
        e->kind = kind;
        e->name = xstrdup(name);
        e->next = s->buckets[h];
        s->buckets[h] = e;
    }
    e->refs++;
    pthread_mutex_unlock(&s->mu);
    return &e->u;
}

void dp_stats_release(struct dp_stats *s, void *block)
{
    if (!block)
        return;
    struct entry *e = (struct entry *)((char *)block - offsetof(struct entry, u));
    pthread_mutex_lock(&s->mu);
    if (--e->refs == 0) {
        struct entry **pp = &s->buckets[hash(e->kind, e->name)];
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
        entry_free(e);
    }
    pthread_mutex_unlock(&s->mu);
}

struct dp_host_stats *dp_stats_find_host(struct dp_stats *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    struct entry *e = s->buckets[hash(DP_STAT_HOST, name)];
    while (e && (e->kind != DP_STAT_HOST || strcmp(e->name, name) != 0))
        e = e->next;
    pthread_mutex_unlock(&s->mu);
    return e ? &e->u.host : NULL;
}

/* --- rendering ------------------------------------------------------------------------------- */

/* One rendered sample: the full Envoy name, its Prometheus name and tags. */
struct sample {
    char *name;
    char *prom; /* envoy_... */
    char *tags; /* 'envoy_cluster_name="x"' or "" */
    int gauge;
    long long value;
};

struct samples {
    struct sample *v;
    size_t n, cap;
};

static void sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            *s = '_';
}

static void add(struct samples *ss, const char *root, const char *tagname, const char *tagval,
                const char *stat, int gauge, long long value)
{
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 256;
        ss->v = xrealloc(ss->v, ss->cap * sizeof(*ss->v));
    }
    struct sample *x = &ss->v[ss->n++];
    if (tagval) {
        x->name = xasprintf("%s.%s.%s", root, tagval, stat);
        /* Envoy's default extraction: the tag value is removed from the name. */
        x->prom = xasprintf("envoy_%s_%s", root, stat);
        x->tags = xasprintf("%s=\"%s\"", tagname, tagval);
    } else {
        x->name = xasprintf("%s%s%s", root, *root ? "." : "", stat);
        x->prom = xasprintf("envoy_%s", x->name);
        x->tags = xstrdup("");
    }
    sanitize(x->prom);
    x->gauge = gauge;
    x->value = value;
}

/* A response-code stat: "<root>.<tagval>.<stat>" in text, and in Prometheus
 * Envoy's extraction of the class ("upstream_rq_2xx" → upstream_rq_xx with
 * envoy_response_code_class="2") or of the code ("upstream_rq_200" →
 * upstream_rq with envoy_response_code="200"), before the owner's tag. */
static void add_code(struct samples *ss, const char *root, const char *tagname, const char *tagval,
                     const char *base, int code_class, int code, long long value)
{
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 256;
        ss->v = xrealloc(ss->v, ss->cap * sizeof(*ss->v));
    }
    struct sample *x = &ss->v[ss->n++];
    if (code_class) {
        x->name = xasprintf("%s.%s.%s_%dxx", root, tagval, base, code_class);
        x->prom = xasprintf("envoy_%s_%s_xx", root, base);
        x->tags =
            xasprintf("envoy_response_code_class=\"%d\",%s=\"%s\"", code_class, tagname, tagval);
    } else {
        x->name = xasprintf("%s.%s.%s_%d", root, tagval, base, code);
        x->prom = xasprintf("envoy_%s_%s", root, base);
        x->tags = xasprintf("envoy_response_code=\"%d\",%s=\"%s\"", code, tagname, tagval);
    }
    sanitize(x->prom);
    x->gauge = 0;
    x->value = value;
}

static void add_fields(struct samples *ss, const char *root, const char *tagname,
                       const char *tagval, const struct field *f, const void *block)
{
    for (; f->name; f++) {
        const char *p = (const char *)block + f->off;
        long long v = f->gauge ? (long long)DP_GET(*(const dp_gauge *)p)
                               : (long long)DP_GET(*(const dp_counter *)p);
        add(ss, root, tagname, tagval, f->name, f->gauge, v);
    }
}

static void collect(struct dp_stats *s, const struct dp_server_info *si, struct samples *ss)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct entry *e = s->buckets[i]; e; e = e->next) {
            switch (e->kind) {
            case DP_STAT_CLUSTER:
                add_fields(ss, "cluster", "envoy_cluster_name", e->name, cluster_fields,
                           &e->u.cluster);
                for (int k = 0; k < 5; k++)
                    add_code(ss, "cluster", "envoy_cluster_name", e->name, "upstream_rq", k + 1, 0,
                             (long long)DP_GET(e->u.cluster.upstream_rq_xx[k]));
                dp_counter *codes =
                    atomic_load_explicit(&e->u.cluster.upstream_rq_code, memory_order_acquire);
                for (int k = 0; codes && k < 500; k++) {
                    long long v = (long long)DP_GET(codes[k]);
                    if (v)
                        add_code(ss, "cluster", "envoy_cluster_name", e->name, "upstream_rq", 0,
                                 k + 100, v);
                }
                break;
            case DP_STAT_HTTP:
                add_fields(ss, "http", "envoy_http_conn_manager_prefix", e->name, http_fields,
                           &e->u.http);
                for (int k = 0; k < 5; k++)
                    add_code(ss, "http", "envoy_http_conn_manager_prefix", e->name, "downstream_rq",
                             k + 1, 0, (long long)DP_GET(e->u.http.downstream_rq_xx[k]));
                break;
            case DP_STAT_LISTENER:
                add_fields(ss, "listener", "envoy_listener_address", e->name, listener_fields,
                           &e->u.listener);
                break;
            case DP_STAT_TCP:
                add_fields(ss, "tcp", "envoy_tcp_prefix", e->name, tcp_fields, &e->u.tcp);
                break;
            case DP_STAT_RBAC: {
                /* The HTTP RBAC filter's "http.<prefix>.rbac.*": Envoy's
                 * envoy_http_conn_manager_prefix tag applies. */
                size_t nl = strlen(e->name);
                if (nl > 6 && strncmp(e->name, "http.", 5) == 0 && e->name[nl - 1] == '.') {
                    char *prefix = xasprintf("%.*s", (int)(nl - 6), e->name + 5);
                    add_fields(ss, "http", "envoy_http_conn_manager_prefix", prefix, rbac_fields,
                               &e->u.rbac);
                    free(prefix);
                    break;
                }
                /* "<stat_prefix>rbac.denied": the prefix carries its own dot (Kuma
                 * sends "inbound_10.0.0.1_80."); no default tag applies. */
                for (const struct field *f = rbac_fields; f->name; f++) {
                    char *stat = xasprintf("%s%s", e->name, f->name);
                    add(ss, "", NULL, NULL, stat, 0,
                        (long long)DP_GET(
                            *(const dp_counter *)((const char *)&e->u.rbac + f->off)));
                    free(stat);
                }
                break;
            }
            case DP_STAT_HOST:
                break;
            }
        }
    pthread_mutex_unlock(&s->mu);
    add(ss, "server", NULL, NULL, "live", 1, si->state != 1);
    add(ss, "server", NULL, NULL, "state", 1, si->state);
    add(ss, "server", NULL, NULL, "concurrency", 1, si->concurrency);
    add(ss, "server", NULL, NULL, "uptime", 1, si->uptime_s);
    add(ss, "server", NULL, NULL, "total_connections", 1, (long long)si->total_connections);
}

static void free_samples(struct samples *ss)
{
    for (size_t i = 0; i < ss->n; i++) {
        free(ss->v[i].name);
        free(ss->v[i].prom);
        free(ss->v[i].tags);
    }
    free(ss->v);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct sample *)a)->name, ((const struct sample *)b)->name);
}

static int cmp_prom(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    if (x->gauge != y->gauge)
        return x->gauge - y->gauge; /* counters first, then gauges, as Envoy */
    int c = strcmp(x->prom, y->prom);
    return c ? c : strcmp(x->tags, y->tags);
}

/* Drops the samples the query leaves out. */
static void apply_query(struct samples *ss, const struct dp_stats_query *q)
{
    if (!q || (!q->used_only && !q->filter))
        return;
    size_t kept = 0;
    for (size_t i = 0; i < ss->n; i++) {
        struct sample *x = &ss->v[i];
        int keep = (!q->used_only || x->value != 0) &&
                   (!q->filter || regexec(q->filter, x->name, 0, NULL, 0) == 0);
        if (keep) {
            ss->v[kept++] = *x;
        } else {
            free(x->name);
            free(x->prom);
            free(x->tags);
        }
    }
    ss->n = kept;
}

static void render_text(struct samples *ss, struct buf *out)
{
    qsort(ss->v, ss->n, sizeof(*ss->v), cmp_name);
    for (size_t i = 0; i < ss->n; i++)
        buf_printf(out, "%s: %lld\n", ss->v[i].name, ss->v[i].value);
}

static void render_json(struct samples *ss, struct buf *out)
{
    /* Stat names are built from configuration names: escape what JSON needs. */
    qsort(ss->v, ss->n, sizeof(*ss->v), cmp_name);
    buf_printf(out, "{\"stats\":[");
    for (size_t i = 0; i < ss->n; i++) {
        buf_printf(out, "%s{\"name\":\"", i ? "," : "");
        for (const char *p = ss->v[i].name; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_printf(out, "\\%c", *p);
            else if ((unsigned char)*p < 0x20)
                buf_printf(out, "\\u%04x", (unsigned char)*p);
            else
                buf_append(out, p, 1);
        }
        buf_printf(out, "\",\"value\":%lld}", ss->v[i].value);
    }
    buf_printf(out, "]}\n");
}

static void render_prometheus(struct samples *ss, struct buf *out)
{
    qsort(ss->v, ss->n, sizeof(*ss->v), cmp_prom);
    for (size_t i = 0; i < ss->n; i++) {
        const struct sample *x = &ss->v[i];
        if (i == 0 || strcmp(x->prom, ss->v[i - 1].prom) != 0 || x->gauge != ss->v[i - 1].gauge)
            buf_printf(out, "# TYPE %s %s\n", x->prom, x->gauge ? "gauge" : "counter");
        buf_printf(out, "%s{%s} %lld\n", x->prom, x->tags, x->value);
    }
}

void dp_stats_render(struct dp_stats *s, const struct dp_server_info *si,
                     const struct dp_stats_query *q, struct buf *out)
{
    struct samples ss = {0};
    collect(s, si, &ss);
    apply_query(&ss, q);
    switch (q ? q->format : DP_STATS_TEXT) {
    case DP_STATS_TEXT:
        render_text(&ss, out);
        break;
    case DP_STATS_PROMETHEUS:
        render_prometheus(&ss, out);
        break;
    case DP_STATS_JSON:
        render_json(&ss, out);
        break;
    }
    free_samples(&ss);
}
