/*
 * Admin endpoint and model: Envoy's output formats for /ready, /stats,
 * /stats/prometheus, /clusters and /config_dump, over real HTTP.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/admin.h"
#include "dp/engine.h"
#include "dp/model.h"
#include "dp_helpers.h"
#include "test.h"

struct fixture {
    struct backend *app;
    struct dp_engine *eng;
    struct dp_admin *adm;
    int admin_port, listen_port, app_port;
};

static void up(struct fixture *f, int with_config)
{
    signal(SIGPIPE, SIG_IGN);
    f->app = backend_start(BACKEND_ID, "A");
    f->app_port = backend_port(f->app);
    struct dp_engine_opts o = {.workers = 1};
    struct err e = {{0}};
    ASSERT(dp_engine_new(&o, &f->eng, &e) == 0);
    ASSERT(dp_admin_start(f->eng, 0, &f->adm, &e) == 0);
    f->admin_port = dp_admin_port(f->adm);
    ASSERT(f->admin_port > 0);
    if (!with_config)
        return;
    /* Kuma's inbound shape: listener inbound:<ip>:<port> → cluster localhost:<port>. */
    struct dp_config *c = dp_config_new("v1");
    struct dp_listener *l = dp_config_add_listener(c, "inbound:127.0.0.1:0", "127.0.0.1", 0);
    l->traffic_direction = DP_DIR_INBOUND;
    char *cluster = xasprintf("localhost:%d", f->app_port);
    l->tcp_proxy.cluster = xstrdup(cluster);
    l->tcp_proxy.stat_prefix = dp_alt_stat_name(cluster);
    struct dp_cluster *cl = dp_config_add_cluster(c, cluster);
    dp_cla_add_endpoint(&cl->load_assignment, "127.0.0.1", (uint32_t)f->app_port, 1);
    free(cluster);
    ASSERT(dp_engine_apply(f->eng, c, &e) == 0);
    f->listen_port = dp_engine_listener_port(f->eng, "inbound:127.0.0.1:0");
}

static void down(struct fixture *f)
{
    dp_admin_stop(f->adm);
    dp_engine_free(f->eng);
    backend_stop(f->app);
}

static const char *body(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    return p ? p + 4 : "";
}

TEST(dp_admin_ready_states)
{
    struct fixture f;
    up(&f, 0);
    char *r = http_get(f.admin_port, "/ready");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 503");
    ASSERT_STR_EQ(body(r), "PRE_INITIALIZING\n");
    free(r);
    down(&f);
    up(&f, 1);
    r = http_get(f.admin_port, "/ready");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 200");
    ASSERT_STR_EQ(body(r), "LIVE\n");
    free(r);
    dp_engine_drain(f.eng, 10);
    r = http_get(f.admin_port, "/ready");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 503");
    ASSERT_STR_EQ(body(r), "DRAINING\n");
    free(r);
    r = http_get(f.admin_port, "/nope");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 404");
    free(r);
    down(&f);
}

TEST(dp_admin_stats_text_and_prometheus)
{
    struct fixture f;
    up(&f, 1);
    char *s = client_read_all(f.listen_port);
    ASSERT_STR_EQ(s, "A");
    free(s);
    char name[128];
    snprintf(name, sizeof(name), "cluster.localhost_%d.upstream_cx_destroy", f.app_port);
    ASSERT_INT_EQ(stat_wait(f.eng, name, 1), 1);

    char *r = http_get(f.admin_port, "/stats");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 200");
    char *want = xasprintf("\ncluster.localhost_%d.upstream_cx_total: 1\n", f.app_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    want = xasprintf("\ncluster.localhost_%d.upstream_cx_active: 0\n", f.app_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    want = xasprintf("\ncluster.localhost_%d.upstream_cx_rx_bytes_total: 1\n", f.app_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    want = xasprintf("\nlistener.127.0.0.1_%d.downstream_cx_total: 1\n", f.listen_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    ASSERT_STR_CONTAINS(r, "\nserver.live: 1\n");
    /* Sorted by name, one "name: value" per line. */
    const char *b = body(r);
    char prev[256] = "";
    for (const char *p = b; *p;) {
        const char *nl = strchr(p, '\n');
        ASSERT(nl != NULL);
        char line[256];
        snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
        ASSERT(strstr(line, ": ") != NULL);
        ASSERT(strcmp(prev, line) < 0);
        snprintf(prev, sizeof(prev), "%s", line);
        p = nl + 1;
    }
    free(r);

    r = http_get(f.admin_port, "/stats/prometheus");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 200");
    ASSERT_STR_CONTAINS(r, "# TYPE envoy_cluster_upstream_cx_total counter\n");
    want = xasprintf("envoy_cluster_upstream_cx_total{envoy_cluster_name=\"localhost_%d\"} 1\n",
                     f.app_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    ASSERT_STR_CONTAINS(r, "# TYPE envoy_cluster_upstream_cx_active gauge\n");
    want =
        xasprintf("envoy_listener_downstream_cx_total{envoy_listener_address=\"127.0.0.1_%d\"} 1\n",
                  f.listen_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    want = xasprintf("envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"localhost_%d\"} 1\n",
                     f.app_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    ASSERT_STR_CONTAINS(r, "envoy_server_live{} 1\n");
    free(r);
    down(&f);
}

TEST(dp_admin_clusters_format)
{
    struct fixture f;
    up(&f, 1);
    char *s = client_read_all(f.listen_port);
    free(s);
    char name[128];
    snprintf(name, sizeof(name), "cluster.localhost_%d.upstream_cx_destroy", f.app_port);
    stat_wait(f.eng, name, 1);
    char *r = http_get(f.admin_port, "/clusters");
    const char *b = body(r);
    char *c = xasprintf("localhost:%d", f.app_port);
    char *want = xasprintf("%s::observability_name::localhost_%d\n", c, f.app_port);
    ASSERT(strncmp(b, want, strlen(want)) == 0);
    free(want);
    const char *lines[] = {"::default_priority::max_connections::1024\n",
                           "::added_via_api::true\n"};
    for (size_t i = 0; i < 2; i++) {
        want = xasprintf("%s%s", c, lines[i]);
        ASSERT_STR_CONTAINS(b, want);
        free(want);
    }
    const char *host[] = {"cx_total::1",           "cx_active::0", "cx_connect_fail::0",
                          "health_flags::healthy", "weight::1",    "priority::0",
                          "success_rate::-1"};
    for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) {
        want = xasprintf("%s::127.0.0.1:%d::%s\n", c, f.app_port, host[i]);
        ASSERT_STR_CONTAINS(b, want);
        free(want);
    }
    free(c);
    free(r);
    down(&f);
}

TEST(dp_admin_config_dump_json)
{
    struct fixture f;
    up(&f, 1);
    char *r = http_get(f.admin_port, "/config_dump");
    ASSERT_STR_CONTAINS(r, "application/json");
    json_error_t je;
    json_t *j = json_loads(body(r), 0, &je);
    ASSERT(j != NULL);
    json_t *configs = json_object_get(j, "configs");
    /* EDS only with include_eds, as Envoy. */
    ASSERT_INT_EQ(json_array_size(configs), 3);
    char *r2 = http_get(f.admin_port, "/config_dump?include_eds=true");
    ASSERT_STR_CONTAINS(r2, "envoy.admin.v3.EndpointsConfigDump");
    free(r2);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(configs, 0), "@type")),
                  "type.googleapis.com/envoy.admin.v3.ListenersConfigDump");
    json_t *lst =
        json_array_get(json_object_get(json_array_get(configs, 0), "dynamicListeners"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(lst, "name")), "inbound:127.0.0.1:0");
    json_t *cl = json_object_get(
        json_array_get(json_object_get(json_array_get(configs, 1), "dynamicActiveClusters"), 0),
        "cluster");
    char *alt = xasprintf("localhost_%d", f.app_port);
    ASSERT_STR_EQ(json_string_value(json_object_get(cl, "altStatName")), alt);
    free(alt);
    ASSERT_STR_EQ(json_string_value(json_object_get(cl, "connectTimeout")), "5.000s");
    json_decref(j);
    free(r);
    down(&f);
}

TEST(dp_model_alt_stat_name_and_secret_redaction)
{
    char *s = dp_alt_stat_name("outbound:passthrough:ipv4");
    ASSERT_STR_EQ(s, "outbound_passthrough_ipv4");
    free(s);
    struct dp_config *c = dp_config_new("7");
    struct dp_secret *sec = dp_config_add_secret(c, "identity_cert:secret:default");
    sec->certificate_chain = xstrdup("CERT");
    sec->private_key = xstrdup("TOP-SECRET-KEY");
    struct dp_cluster *cl = dp_config_add_cluster(c, "backend");
    cl->type = DP_CLUSTER_EDS;
    struct dp_cluster_load_assignment *a = dp_config_add_assignment(c, "backend");
    dp_cla_add_endpoint(a, "10.0.0.1", 80, 0);
    ASSERT(dp_config_cluster_endpoints(c, cl) == a);
    ASSERT(dp_config_find_cluster(c, "backend") == cl);
    ASSERT(dp_config_find_cluster(c, "nope") == NULL);
    char *dump = dp_config_dump_json(c);
    ASSERT(strstr(dump, "TOP-SECRET-KEY") == NULL);
    ASSERT_STR_CONTAINS(dump, "[redacted]");
    ASSERT_STR_CONTAINS(dump, "\"altStatName\": \"backend\"");
    free(dump);
    dp_config_free(c);
    dp_config_free(NULL);
}

TEST(dp_admin_stats_query_parameters)
{
    struct fixture f;
    up(&f, 1);
    char *s = client_read_all(f.listen_port);
    free(s);
    char name[128];
    snprintf(name, sizeof(name), "cluster.localhost_%d.upstream_cx_destroy", f.app_port);
    stat_wait(f.eng, name, 1);

    /* filter: a regular expression on the full name (here "^cluster\..*_total$"). */
    char *r = http_get(f.admin_port, "/stats?filter=%5Ecluster%5C..*_total%24");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 200");
    const char *b = body(r);
    ASSERT_STR_CONTAINS(b, "upstream_cx_total: 1\n");
    ASSERT(strstr(b, "listener.") == NULL);
    ASSERT(strstr(b, "upstream_cx_active") == NULL);
    free(r);

    /* usedonly: nothing that is still zero. */
    r = http_get(f.admin_port, "/stats?usedonly");
    b = body(r);
    ASSERT_STR_CONTAINS(b, "upstream_cx_total: 1\n");
    ASSERT(strstr(b, ": 0\n") == NULL);
    free(r);

    /* format=prometheus on /stats (what Kuma's metrics hijacker asks for). */
    r = http_get(f.admin_port, "/stats?format=prometheus&usedonly");
    char *want = xasprintf(
        "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"localhost_%d\"} 1\n", f.app_port);
    ASSERT_STR_CONTAINS(r, want);
    free(want);
    ASSERT(strstr(body(r), "} 0\n") == NULL);
    free(r);

    /* format=json parses, and holds the same values. */
    r = http_get(f.admin_port, "/stats?format=json");
    ASSERT_STR_CONTAINS(r, "application/json");
    json_error_t je;
    json_t *j = json_loads(body(r), 0, &je);
    ASSERT(j != NULL);
    json_t *arr = json_object_get(j, "stats");
    ASSERT(json_array_size(arr) > 10);
    char *cx = xasprintf("cluster.localhost_%d.upstream_cx_total", f.app_port);
    int found = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(e, "name")), cx) == 0) {
            ASSERT_INT_EQ(json_integer_value(json_object_get(e, "value")), 1);
            found = 1;
        }
    }
    ASSERT(found);
    free(cx);
    json_decref(j);
    free(r);

    /* Bad input is refused with 400, not served or crashed on. */
    r = http_get(f.admin_port, "/stats?filter=%28unclosed");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 400");
    ASSERT_STR_EQ(body(r), "Invalid regex\n");
    free(r);
    r = http_get(f.admin_port, "/stats?format=xml");
    ASSERT_STR_CONTAINS(r, "HTTP/1.1 400");
    free(r);
    down(&f);
}
