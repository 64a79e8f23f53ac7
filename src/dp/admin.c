/*
 * admin — libmicrohttpd handlers for the admin paths (see admin.h). Status
 * codes and bodies follow Envoy: /ready answers 200 "LIVE" or 503 with the
 * server state's name.
 */
#include "dp/admin.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

struct dp_admin {
    struct MHD_Daemon *d;
    struct dp_engine *eng;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static char *take(struct buf *b)
{
    char *s = xstrdup(buf_str(b));
    buf_free(b);
    return s;
}

/* The dump without its EndpointsConfigDump (takes and returns ownership). */
static char *without_eds(char *dump)
{
    json_t *j = json_loads(dump, 0, NULL);
    json_t *configs = json_object_get(j, "configs");
    for (size_t i = json_array_size(configs); i-- > 0;) {
        const char *t = json_string_value(json_object_get(json_array_get(configs, i), "@type"));
        if (t && strcmp(t, "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump") == 0)
            json_array_remove(configs, i);
    }
    char *out = j ? json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!out)
        return dump;
    free(dump);
    return out;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct dp_admin *a = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "text/plain", xstrdup("method not allowed\n"));
    struct buf b;
    buf_init(&b, 0);
    if (strcmp(url, "/ready") == 0) {
        static const char *const names[] = {"LIVE", "DRAINING", "PRE_INITIALIZING"};
        int st = dp_engine_state(a->eng);
        return reply(conn, st == 0 ? 200 : 503, "text/plain; charset=UTF-8",
                     xasprintf("%s\n", names[st]));
    }
    if (strcmp(url, "/stats") == 0 || strcmp(url, "/stats/prometheus") == 0) {
        /* Envoy's query parameters: format=json|prometheus, usedonly, filter=<regex>. */
        struct dp_stats_query q = {.format = DP_STATS_TEXT};
        const char *fmt = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
        if (strcmp(url, "/stats/prometheus") == 0 || (fmt && strcmp(fmt, "prometheus") == 0))
            q.format = DP_STATS_PROMETHEUS;
        else if (fmt && strcmp(fmt, "json") == 0)
            q.format = DP_STATS_JSON;
        else if (fmt && strcmp(fmt, "text") != 0)
            return reply(conn, 400, "text/plain",
                         xasprintf("usage: format=text|json|prometheus\n"));
        const char *v;
        size_t vlen;
        q.used_only = MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "usedonly",
                                                    strlen("usedonly"), &v, &vlen) == MHD_YES;
        const char *filter = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "filter");
        regex_t re;
        if (filter && *filter) {
            /* Bounded: a long or invalid pattern is refused, not compiled. */
            if (strlen(filter) > 512 || regcomp(&re, filter, REG_EXTENDED | REG_NOSUB) != 0)
                return reply(conn, 400, "text/plain", xstrdup("Invalid regex\n"));
            q.filter = &re;
        }
        dp_engine_render_stats(a->eng, &q, &b);
        if (q.filter)
            regfree(&re);
        return reply(conn, 200,
                     q.format == DP_STATS_JSON ? "application/json" : "text/plain; charset=UTF-8",
                     take(&b));
    }
    if (strcmp(url, "/clusters") == 0) {
        dp_engine_render_clusters(a->eng, &b);
        return reply(conn, 200, "text/plain; charset=UTF-8", take(&b));
    }
    if (strcmp(url, "/config_dump") == 0) {
        /* Envoy leaves EDS out unless asked with include_eds (kuma-cp's
         * /meshes/{m}/dataplanes/{n}/xds?include_eds=true passes it on). */
        char *dump = dp_engine_config_dump(a->eng);
        if (!MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "include_eds"))
            dump = without_eds(dump);
        return reply(conn, 200, "application/json", dump);
    }
    return reply(conn, 404, "text/plain", xstrdup("invalid path\n"));
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char *s = xvasprintf(fmt, ap);
    log_warn("dp-admin", "%s", s);
    free(s);
}

int dp_admin_start(struct dp_engine *eng, int port, struct dp_admin **out, struct err *e)
{
    if (port < 0 || port > 65535)
        return err_set(e, "admin port %d out of range", port);
    struct dp_admin *a = xcalloc(1, sizeof(*a));
    a->eng = eng;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, handle, a, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT, 64u,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024, MHD_OPTION_END);
    if (!a->d) {
        free(a);
        return err_set(e, "admin: cannot listen on 127.0.0.1:%d", port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : port;
    *out = a;
    return 0;
}

int dp_admin_port(const struct dp_admin *a)
{
    return a->port;
}

void dp_admin_stop(struct dp_admin *a)
{
    if (!a)
        return;
    MHD_stop_daemon(a->d);
    free(a);
}
