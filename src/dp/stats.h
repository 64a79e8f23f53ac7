/*
 * stats — the proxy's counters and gauges under Envoy's names, and their text
 * (/stats) and Prometheus (/stats/prometheus) renderings.
 *
 * Stats outlive configuration snapshots, as Envoy's do: a cluster that stays
 * in the configuration across a swap keeps its counters. A registry maps a
 * (kind, name) pair to a refcounted block of atomic counters; every compiled
 * snapshot holds a reference to each block it uses, and a block leaves the
 * registry when the last snapshot using it is gone (so memory stays bounded
 * under configuration churn). Workers update counters with relaxed atomics;
 * the admin thread reads them under the registry lock (values may be a few
 * increments apart from each other, as in Envoy).
 *
 * Host blocks (one per cluster endpoint) also hold the shared outlier state,
 * for the same reason: an ejection must survive a configuration swap.
 */
#ifndef DP_STATS_H
#define DP_STATS_H

#include <regex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

typedef atomic_uint_fast64_t dp_counter;
typedef atomic_int_fast64_t dp_gauge;

/* Envoy's cluster.<alt_stat_name>.* subset. */
struct dp_cluster_stats {
    dp_counter upstream_cx_total, upstream_cx_connect_fail, upstream_cx_connect_timeout,
        upstream_cx_connect_attempts_exceeded, upstream_cx_rx_bytes_total,
        upstream_cx_tx_bytes_total, upstream_cx_destroy, upstream_cx_destroy_local,
        upstream_cx_destroy_remote, upstream_cx_none_healthy, ejections_enforced_total,
        ejections_total, ejections_enforced_local_origin_failure, ssl_handshake, ssl_session_reused,
        ssl_connection_error, ssl_fail_verify_san, ssl_fail_verify_error;
    dp_gauge upstream_cx_active, ejections_active, membership_total, membership_healthy;
    /* HTTP (router): per-request counters. */
    dp_counter upstream_cx_http1_total, upstream_rq_total, upstream_rq_completed,
        upstream_rq_timeout, upstream_rq_retry, upstream_rq_pending_failure_eject;
    dp_gauge upstream_rq_active;
    dp_counter upstream_rq_xx[5]; /* upstream_rq_1xx .. _5xx */
    /* upstream_rq_<code>, 100..599, shown once used: 500 counters (4 KB),
     * allocated by the cluster's first HTTP response (dp_stats_count_code),
     * so the many TCP-only clusters of a proxy do not carry them. */
    _Atomic(dp_counter *) upstream_rq_code;
};

/* http.<stat_prefix>.* (HTTP connection manager) */
struct dp_http_stats {
    dp_counter downstream_cx_total, downstream_cx_http1_total, downstream_cx_http2_total,
        downstream_cx_protocol_error, downstream_cx_upgrades_total, downstream_cx_destroy,
        downstream_rq_total, downstream_rq_http1_total, downstream_rq_completed,
        downstream_rq_timeout, downstream_rq_too_large, downstream_rq_idle_timeout, no_route,
        no_cluster, rq_total, rq_direct_response, downstream_cx_rx_bytes_total,
        downstream_cx_tx_bytes_total;
    dp_gauge downstream_cx_active, downstream_rq_active, downstream_cx_upgrades_active;
    dp_counter downstream_rq_xx[5]; /* downstream_rq_1xx .. _5xx */
};

/* Envoy's listener.<address>.* subset plus the TLS counters. */
struct dp_listener_stats {
    dp_counter downstream_cx_total, downstream_cx_destroy, ssl_handshake, ssl_session_reused,
        ssl_connection_error, ssl_fail_verify_san, ssl_fail_verify_error, ssl_fail_verify_no_cert,
        ssl_no_certificate;
    dp_gauge downstream_cx_active;
};

/* tcp.<stat_prefix>.* (tcp_proxy) */
struct dp_tcp_stats {
    dp_counter downstream_cx_total, downstream_cx_no_route, downstream_cx_rx_bytes_total,
        downstream_cx_tx_bytes_total, idle_timeout, downstream_flow_control_paused_reading_total,
        downstream_flow_control_resumed_reading_total;
};

/* <stat_prefix>rbac.* (network RBAC filter) */
struct dp_rbac_stats {
    dp_counter allowed, denied;
};

/* Per-endpoint counters (the /clusters host lines) and outlier state. */
struct dp_host_stats {
    dp_counter cx_total, cx_connect_fail;
    dp_gauge cx_active;
    /* Outlier state, shared by all workers and snapshots. */
    atomic_uint consecutive_local_origin_failure;
    atomic_uint num_ejections;
    atomic_int ejected;             /* 1 while ejected */
    atomic_int_fast64_t ejected_ms; /* mono_ms() when ejected; 0 = never */
};

enum dp_stat_kind {
    DP_STAT_CLUSTER,
    DP_STAT_LISTENER,
    DP_STAT_TCP,
    DP_STAT_RBAC,
    DP_STAT_HOST,
    DP_STAT_HTTP
};

struct dp_stats;

struct dp_stats *dp_stats_new(void);
/* Frees the registry; every block must have been released. */
void dp_stats_free(struct dp_stats *s);

/* Returns the block for (kind, name), creating it zeroed; adds a reference.
 * The pointer is stable until the matching dp_stats_release(). */
void *dp_stats_acquire(struct dp_stats *s, enum dp_stat_kind kind, const char *name);
void dp_stats_release(struct dp_stats *s, void *block);

/* Counts an upstream response of status 100..599 in cs's upstream_rq_<code>
 * (any thread; others are ignored). */
void dp_stats_count_code(struct dp_cluster_stats *cs, int status);

/* Process-wide server.* values shown by the renderers. */
struct dp_server_info {
    int state; /* Envoy's server.state: 0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING */
    int concurrency;
    int64_t uptime_s;
    uint64_t total_connections;
};

enum dp_stats_format { DP_STATS_TEXT, DP_STATS_PROMETHEUS, DP_STATS_JSON };

/* What /stats renders (Envoy's query parameters): the format, `usedonly`
 * (here: stats with a nonzero value) and `filter` (a regular expression the
 * full stat name must match; POSIX ERE, close to the RE2 subset Envoy users
 * write). */
struct dp_stats_query {
    enum dp_stats_format format;
    int used_only;
    const regex_t *filter; /* NULL = all */
};

/* Renders the stats:
 *  - text: Envoy's /stats, "name: value" lines sorted by name;
 *  - prometheus: Envoy's /stats/prometheus, "# TYPE envoy_<stat> counter|gauge" then one sample
 *    per tag set, with Envoy's default tag extraction (envoy_cluster_name,
 *    envoy_listener_address, envoy_tcp_prefix, envoy_http_conn_manager_prefix,
 *    envoy_response_code_class for *_rq_Nxx, envoy_response_code for upstream_rq_<code>);
 *  - json: {"stats":[{"name":..,"value":..}]}.
 * q NULL = text, everything. */
void dp_stats_render(struct dp_stats *s, const struct dp_server_info *si,
                     const struct dp_stats_query *q, struct buf *out);

/* Calls fn for every host block of the cluster whose alt stat name is given.
 * Used by /clusters. The host block name is "<cluster>::<ip>:<port>". */
struct dp_host_stats *dp_stats_find_host(struct dp_stats *s, const char *name);

/* Relaxed-atomic helpers for the hot path. */
#define DP_INC(c)    atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)
#define DP_ADD(c, n) atomic_fetch_add_explicit(&(c), (n), memory_order_relaxed)
#define DP_DEC(g)    atomic_fetch_sub_explicit(&(g), 1, memory_order_relaxed)
#define DP_GET(c)    atomic_load_explicit(&(c), memory_order_relaxed)

#endif
