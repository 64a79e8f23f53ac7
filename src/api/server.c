/*
 * api/server — HTTP plumbing on libmicrohttpd: request bodies with a cap,
 * JSON responses, Kuma's error envelope, and the route table. The resource
 * handlers live in resources.c.
 */
#include "api/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "api/internal.h"
#include "core/log.h"

struct api_server {
    struct MHD_Daemon *d;
    int tls;                  /* the HTTPS listener */
    char *tls_cert, *tls_key; /* PEM, kept while the daemon runs; the key is wiped */
    struct api_deps deps;
    const volatile int *ready; /* diagnostics only */
};

struct conn_state {
    struct buf body;
    int too_large;
};

/* --- responses --- */

enum MHD_Result api_reply(struct api_req *rq, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_INDENT(1) | JSON_ENCODE_ANY);
    json_decref(body);
    if (!text)
        text = xstrdup("{}");
    size_t len = strlen(text);
    /* Keep the trailing newline Kuma's encoder writes. */
    text = xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result r = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

enum MHD_Result api_reply_error(struct api_req *rq, unsigned status, const char *title,
                                const char *detail, const struct verr *ve)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("/std-errors"));
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "title", json_string(title));
    json_object_set_new(o, "detail", json_string(detail));
    if (ve && ve->n) {
        json_t *params = json_array(), *causes = json_array();
        for (size_t i = 0; i < ve->n; i++) {
            json_array_append_new(params, json_pack("{s:s, s:s}", "field", ve->v[i].field, "reason",
                                                    ve->v[i].message));
            json_array_append_new(causes, json_pack("{s:s, s:s}", "field", ve->v[i].field,
                                                    "message", ve->v[i].message));
        }
        json_object_set_new(o, "invalid_parameters", params);
        json_object_set_new(o, "details", json_string(detail));
        json_object_set_new(o, "causes", causes);
    } else {
        json_object_set_new(o, "details", json_string(detail));
    }
    if (status >= 500)
        log_error("api", "%s %s: %u %s: %s", rq->method, rq->path, status, title, detail);
    return api_reply(rq, status, o);
}

enum MHD_Result api_reply_param_error(struct api_req *rq, unsigned status, const char *title,
                                      const char *detail, const char *field, const char *reason)
{
    struct verr ve = {0};
    verr_add(&ve, field, "%s", reason);
    enum MHD_Result r = api_reply_error(rq, status, title, detail, &ve);
    verr_free(&ve);
    return r;
}

const char *api_query(struct api_req *rq, const char *key)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_iter {
    api_query_fn *fn;
    void *arg;
};

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct query_iter *it = cls;
    (void)kind;
    it->fn(it->arg, key, value ? value : "");
    return MHD_YES;
}

void api_query_each(struct api_req *rq, api_query_fn *fn, void *arg)
{
    struct query_iter it = {fn, arg};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, query_cb, &it);
}

const char *api_header(struct api_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

/* --- request handling --- */

/* Splits the path into at most API_MAX_SEGMENTS non-empty segments. Returns
 * -1 if there are more. */
static int split_path(char *path, char **seg, int *nseg)
{
    *nseg = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (*nseg == API_MAX_SEGMENTS)
            return -1;
        seg[(*nseg)++] = t;
    }
    return 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct api_server *s = cls;
    struct conn_state *cs = *con_cls;
    (void)version;

    if (!cs) {
        cs = xcalloc(1, sizeof(*cs));
        buf_init(&cs->body, API_MAX_BODY);
        *con_cls = cs;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cs->too_large && buf_append(&cs->body, upload_data, *upload_data_size) < 0) {
            cs->too_large = 1;
            buf_free(&cs->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct api_req rq = {
        .conn = conn, .method = method, .path = url, .deps = &s->deps, .tls = s->tls};
    rq.body = cs->body.data ? cs->body.data : "";
    rq.body_len = cs->body.len;
    if (cs->too_large) {
        char detail[128];
        snprintf(detail, sizeof(detail), "request body is larger than %u bytes", API_MAX_BODY);
        return api_reply_error(&rq, 413, "Could not process a resource", detail, NULL);
    }
    char *copy = xstrdup(url);
    char *seg[API_MAX_SEGMENTS];
    int nseg = 0;
    enum MHD_Result r;
    if (split_path(copy, seg, &nseg) < 0)
        r = api_reply_error(&rq, 404, "Not Found", "Not found", NULL);
    /* --- identity: who is calling, and may they (auth.c) --- */
    else if (api_auth_authenticate(&rq, &r) == 0 && api_auth_authorize(&rq, seg, nseg, &r) == 0)
        r = api_route(&rq, seg, nseg);
    /* --- end identity --- */
    free(copy);
    api_user_free(&rq.user);
    return r;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *cs = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (cs) {
        buf_free(&cs->body);
        free(cs);
        *con_cls = NULL;
    }
}

/* URL unescaping that never yields a NUL byte: "%00" becomes 0x7f, which no
 * name may contain, so "/meshes/a%00b" cannot turn into "/meshes/a". */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '%' && r[1] && r[2] && strchr("0123456789abcdefABCDEF", r[1]) &&
            strchr("0123456789abcdefABCDEF", r[2])) {
            char hex[3] = {r[1], r[2], 0};
            char v = (char)strtol(hex, NULL, 16);
            *w++ = v ? v : 0x7f;
            r += 2;
        } else if (*r == '+') {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char *msg = xvasprintf(fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn("http", "%s", msg);
    free(msg);
}

static int start_daemon(struct api_server *s, MHD_AccessHandlerCallback cb, const char *iface,
                        int port, int *bound_port, struct err *e)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, iface, &sa.sin_addr) != 1)
        return err_set(e, "invalid interface address \"%s\"", iface);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    /* HTTPS (GnuTLS inside libmicrohttpd): the certificate and key are
     * handed over in memory; the options list ends early without them. */
    if (s->tls)
        flags |= MHD_USE_TLS;
    s->d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, cb, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)API_THREADS, MHD_OPTION_NOTIFY_COMPLETED, request_done, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, s, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        1u, s->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_END);
    if (!s->d)
        return err_set(e, "could not listen on %s:%d (address in use%s?)", iface, port,
                       s->tls ? " or an unusable certificate" : "");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : port;
    return 0;
}

int api_server_start(const struct api_deps *deps, const char *iface, int port,
                     struct api_server **out, int *bound_port, struct err *e)
{
    struct api_server *s = xcalloc(1, sizeof(*s));
    s->deps = *deps;
    if (start_daemon(s, handle, iface, port, bound_port, e) < 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* Frees a server that is not (or no longer) running. */
static void server_free(struct api_server *s)
{
    free(s->tls_cert);
    if (s->tls_key) {
        OPENSSL_cleanse(s->tls_key, strlen(s->tls_key));
        free(s->tls_key);
    }
    free(s);
}

int api_server_start_tls(const struct api_deps *deps, const char *iface, int port,
                         const char *cert_pem, const char *key_pem, struct api_server **out,
                         int *bound_port, struct err *e)
{
    if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
        return err_set(e, "this libmicrohttpd was built without TLS support");
    struct api_server *s = xcalloc(1, sizeof(*s));
    s->deps = *deps;
    s->tls = 1;
    s->tls_cert = xstrdup(cert_pem);
    s->tls_key = xstrdup(key_pem);
    if (start_daemon(s, handle, iface, port, bound_port, e) < 0) {
        server_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    server_free(s);
}

static enum MHD_Result diag_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    struct api_server *s = cls;
    (void)version;
    (void)upload_data;
    if (!*con_cls) {
        *con_cls = xcalloc(1, sizeof(struct conn_state));
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    unsigned status = 404;
    const char *text = "404 page not found\n";
    if (strcmp(method, "GET") == 0 && strcmp(url, "/healthy") == 0) {
        status = 200;
        text = "";
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/ready") == 0) {
        status = *s->ready ? 200 : 503;
        text = "";
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

int diagnostics_server_start(const char *iface, int port, const volatile int *ready,
                             struct api_server **out, int *bound_port, struct err *e)
{
    struct api_server *s = xcalloc(1, sizeof(*s));
    s->ready = ready;
    if (start_daemon(s, diag_handle, iface, port, bound_port, e) < 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}
