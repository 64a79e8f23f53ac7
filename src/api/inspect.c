/*
 * api/inspect — see inspect.h. DataplaneOverview follows Kuma's JSON:
 * {type: "DataplaneOverview", mesh, name, creationTime, modificationTime,
 *  dataplane: {<spec>}, dataplaneInsight: {subscriptions: [...], mTLS: {...}}}
 * with one subscription (this instance's latest stream): id,
 * controlPlaneInstanceId, connectTime, disconnectTime, status {lastUpdateTime,
 * total {responsesSent, responsesAcknowledged, responsesRejected}, cds, eds,
 * lds, rds, sds}. Counters are strings, as protobuf's JSON mapping writes
 * uint64.
 */
#include "api/inspect.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "core/types.h"
#include "core/util.h"
#include "xds/pbjson.h"
#include "xds/server.h"
#include "xds/snapshot.h"

static _Atomic(struct xds_server *) g_xds;

void api_inspect_set_xds(struct xds_server *x)
{
    atomic_store(&g_xds, x);
}

size_t api_inspect_online(const char *mesh)
{
    struct xds_server *x = atomic_load(&g_xds);
    if (!x)
        return 0;
    struct xds_dataplane_insight *v;
    size_t n = xds_server_insights(x, mesh, &v), online = 0;
    for (size_t i = 0; i < n; i++)
        online += v[i].online != 0;
    xds_insights_free(v, n);
    return online;
}

static json_t *ts_json(int64_t ns)
{
    char buf[64];
    time_format_rfc3339(ns, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *u64s(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    return json_string(buf);
}

static json_t *insight_json(const struct xds_dataplane_insight *in, const char *instance)
{
    json_t *status = json_object();
    uint64_t sent = 0, acks = 0, nacks = 0;
    int64_t last = 0;
    static const char *const keys[XDS_TYPE_N] = {"cds", "eds", "lds", "rds", "sds"};
    for (int t = 0; t < XDS_TYPE_N; t++) {
        const struct xds_type_insight *ti = &in->types[t];
        sent += ti->responses_sent;
        acks += ti->acks;
        nacks += ti->nacks;
        if (ti->last_sent_ns > last)
            last = ti->last_sent_ns;
        if (!ti->responses_sent)
            continue;
        json_t *o = json_pack("{s:o, s:o, s:o}", "responsesSent", u64s(ti->responses_sent),
                              "responsesAcknowledged", u64s(ti->acks), "responsesRejected",
                              u64s(ti->nacks));
        if (ti->sent_version[0])
            json_object_set_new(o, "lastSentVersion", json_string(ti->sent_version));
        if (ti->acked_version[0])
            json_object_set_new(o, "lastAckedVersion", json_string(ti->acked_version));
        if (ti->last_nack_error)
            json_object_set_new(o, "lastRejectError", json_string(ti->last_nack_error));
        json_object_set_new(status, keys[t], o);
    }
    json_object_set_new(status, "total",
                        json_pack("{s:o, s:o, s:o}", "responsesSent", u64s(sent),
                                  "responsesAcknowledged", u64s(acks), "responsesRejected",
                                  u64s(nacks)));
    if (last)
        json_object_set_new(status, "lastUpdateTime", ts_json(last));
    char id[32];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)in->stream_id);
    json_t *sub = json_pack("{s:s, s:s, s:o, s:o}", "id", id, "controlPlaneInstanceId",
                            instance ? instance : "", "connectTime", ts_json(in->connect_time_ns),
                            "status", status);
    if (!in->online && in->disconnect_time_ns)
        json_object_set_new(sub, "disconnectTime", ts_json(in->disconnect_time_ns));
    json_t *o = json_pack("{s:[o]}", "subscriptions", sub);
    if (in->cert_generation_ns) {
        json_object_set_new(o, "mTLS",
                            json_pack("{s:o, s:o, s:o, s:s, s:[s]}", "certificateExpirationTime",
                                      ts_json(in->cert_expiration_ns),
                                      "lastCertificateRegeneration",
                                      ts_json(in->cert_generation_ns), "certificateRegenerations",
                                      u64s(in->cert_regenerations), "issuedBackend",
                                      in->cert_backend ? in->cert_backend : "", "supportedBackends",
                                      in->cert_backend ? in->cert_backend : ""));
    }
    return o;
}

static json_t *overview(struct xds_server *x, const struct resource *dp)
{
    json_t *o = resource_to_json(dp, RES_FORM_UNIVERSAL);
    /* {type, mesh, name, creationTime, modificationTime, ...spec} → overview */
    json_t *spec = json_object();
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, v)
    {
        if (strcmp(k, "type") && strcmp(k, "mesh") && strcmp(k, "name") &&
            strcmp(k, "creationTime") && strcmp(k, "modificationTime") && strcmp(k, "labels") &&
            strcmp(k, "kri")) {
            json_object_set(spec, k, v);
            json_object_del(o, k);
        }
    }
    json_object_set_new(o, "type", json_string("DataplaneOverview"));
    json_object_set_new(o, "dataplane", spec);
    struct xds_dataplane_insight in;
    if (x && xds_server_insight(x, dp->mesh, dp->name, &in) == 0) {
        json_object_set_new(o, "dataplaneInsight", insight_json(&in, NULL));
        xds_dataplane_insight_clear(&in);
    } else {
        json_object_set_new(o, "dataplaneInsight", json_pack("{s:[]}", "subscriptions"));
    }
    return o;
}

static enum MHD_Result list_overviews(struct api_req *rq, const char *mesh)
{
    struct store *st = manager_store(rq->deps->mgr);
    struct xds_server *x = atomic_load(&g_xds);
    struct store_filter f = {.mesh = mesh};
    const char *sz = api_query(rq, "size"), *off = api_query(rq, "offset");
    if (sz)
        f.size = (size_t)strtoul(sz, NULL, 10);
    if (off)
        f.offset = (size_t)strtoul(off, NULL, 10);
    if (!f.size || f.size > 1000)
        f.size = f.size > 1000 ? 1000 : 100;
    f.name_substr = api_query(rq, "name");
    struct resource_list l = {0};
    struct err e;
    if (store_list(st, &TYPE_DATAPLANE, &f, &l, &e) < 0)
        return api_reply_error(rq, 500, "Could not retrieve resources", "Internal Server Error",
                               NULL);
    json_t *items = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(items, overview(x, l.items[i]));
    json_t *o = json_pack("{s:I, s:o, s:n}", "total", (json_int_t)l.total, "items", items, "next");
    resource_list_free(&l);
    return api_reply(rq, 200, o);
}

static enum MHD_Result one_overview(struct api_req *rq, const char *mesh, const char *name)
{
    struct resource *r = NULL;
    struct err e;
    int rc = store_get(manager_store(rq->deps->mgr), &TYPE_DATAPLANE, mesh, name, &r, &e);
    if (rc == STORE_ENOTFOUND)
        return api_reply_error(rq, 404, "Could not retrieve a resource", "Not found", NULL);
    if (rc < 0)
        return api_reply_error(rq, 500, "Could not retrieve a resource", "Internal Server Error",
                               NULL);
    json_t *o = overview(atomic_load(&g_xds), r);
    resource_free(r);
    return api_reply(rq, 200, o);
}

/* The configuration the control plane generates for the dataplane, as an
 * Envoy-style JSON dump: the live one when it is connected here (with its
 * identity secret, key bytes shown as a length only), else generated now
 * from the store without identity. */
static enum MHD_Result get_config(struct api_req *rq, const char *mesh, const char *name)
{
    struct xds_server *x = atomic_load(&g_xds);
    struct xds_proxy_config *cfg = x ? xds_server_proxy_config(x, mesh, name) : NULL;
    if (!cfg) {
        struct xds_mesh_snapshot *snap = NULL;
        struct err e;
        int rc = xds_snapshot_load(manager_store(rq->deps->mgr), mesh, &snap, &e);
        if (rc == 0) {
            const struct xds_dataplane *dp = xds_snapshot_dataplane(snap, name);
            if (dp)
                cfg = xds_generate(snap, dp, NULL);
        }
        xds_snapshot_unref(snap);
        if (!cfg)
            return api_reply_error(rq, 404, "Could not retrieve a resource", "Not found", NULL);
    }
    json_t *j = xds_proxy_config_to_json(cfg);
    xds_proxy_config_unref(cfg);
    json_t *o = json_pack("{s:s, s:s, s:o}", "mesh", mesh, "name", name, "xds", j);
    return api_reply(rq, 200, o);
}

/* ---- the proxy's admin, fetched over the network ------------------------ */

#define ADMIN_CONNECT_TIMEOUT_MS 3000 /* Kuma's envoy admin client */
#define ADMIN_TIMEOUT_MS         5000
#define ADMIN_MAX_BODY           (32u << 20)
#define ADMIN_DEFAULT_PORT       9901

static void curl_global_init_void(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static pthread_mutex_t admin_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *admin_ca, *admin_cert, *admin_key;

void api_inspect_set_admin_tls(const char *ca_pem, const char *client_cert_pem,
                               const char *client_key_pem)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_global_init_void);
    pthread_mutex_lock(&admin_mu);
    admin_ca = ca_pem;
    admin_cert = client_cert_pem;
    admin_key = client_key_pem;
    pthread_mutex_unlock(&admin_mu);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    return buf_append(b, p, size * n) < 0 ? 0 : size * n;
}

struct admin_type {
    const char *type, *path, *ctype;
    const char *params[4]; /* query parameters passed on */
};

static const struct admin_type admin_types[] = {
    {"xds", "/config_dump", "application/json", {"include_eds", NULL}},
    {"stats", "/stats", "text/plain", {"format", "usedonly", "filter", NULL}},
    {"clusters", "/clusters", "text/plain", {"format", NULL}},
};

struct admin_query {
    const struct admin_type *t;
    CURL *c;
    struct buf *q;
};

static void add_param(void *arg, const char *key, const char *value)
{
    struct admin_query *aq = arg;
    for (int i = 0; aq->t->params[i]; i++) {
        if (strcmp(key, aq->t->params[i]) != 0)
            continue;
        char *k = curl_easy_escape(aq->c, key, 0);
        char *v = value ? curl_easy_escape(aq->c, value, 0) : NULL;
        buf_printf(aq->q, "%s%s%s%s", aq->q->len ? "&" : "?", k ? k : "", v ? "=" : "", v ? v : "");
        curl_free(k);
        curl_free(v);
    }
}

/* Kuma's error envelope for a failed admin operation, with the reason. */
static enum MHD_Result admin_failed(struct api_req *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result admin_failed(struct api_req *rq, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *detail = xvasprintf(fmt, ap);
    va_end(ap);
    enum MHD_Result r =
        api_reply_error(rq, status, "Could not execute admin operation", detail, NULL);
    free(detail);
    return r;
}

/*
 * GET /meshes/{mesh}/dataplanes/{name}/{xds|stats|clusters}: Kuma's
 * inspectDataplaneAdmin. The dataplane's admin address is
 * networking.address : networking.admin.port (9901 when unset); on
 * 127.0.0.1 it is asked over plain HTTP, elsewhere over TLS through the
 * proxy's kuma:envoy:admin listener with kuma-cp's client certificate, the
 * server certificate verified against the envoy admin CA and the address.
 */
static enum MHD_Result admin_proxy(struct api_req *rq, const char *mesh, const char *name,
                                   const char *type)
{
    const struct admin_type *t = NULL;
    for (size_t i = 0; i < sizeof(admin_types) / sizeof(admin_types[0]); i++)
        if (strcmp(type, admin_types[i].type) == 0)
            t = &admin_types[i];
    if (!t) {
        char *d = xasprintf("invalid admin type: %s", type);
        enum MHD_Result r = api_reply_error(rq, 404, "Could not execute admin operation", d, NULL);
        free(d);
        return r;
    }
    struct resource *dp = NULL;
    struct err e;
    int rc = store_get(manager_store(rq->deps->mgr), &TYPE_DATAPLANE, mesh, name, &dp, &e);
    if (rc == STORE_ENOTFOUND)
        return api_reply_error(rq, 404, "Could not get dataplane resource", "Not found", NULL);
    if (rc < 0)
        return api_reply_error(rq, 500, "Could not get dataplane resource", "Internal Server Error",
                               NULL);
    json_t *net = json_object_get(dp->spec, "networking");
    const char *addr = json_string_value(json_object_get(net, "address"));
    /* Where the proxy's admin really is: the port kuma-dp reported to this
     * instance (it may differ from the spec with --admin-port), else
     * networking.admin.port, else 9901. */
    json_int_t port = json_integer_value(json_object_get(json_object_get(net, "admin"), "port"));
    struct xds_server *xs = atomic_load(&g_xds);
    struct xds_dataplane_insight ins;
    if (xs && xds_server_insight(xs, mesh, name, &ins) == 0) {
        if (ins.admin_port)
            port = ins.admin_port;
        xds_dataplane_insight_clear(&ins);
    }
    if (port <= 0 || port > 65535)
        port = ADMIN_DEFAULT_PORT;
    /* A dataplane on loopback has no TLS admin listener (its admin is bound
     * there already): plain HTTP to 127.0.0.1, as Kuma's client does. */
    int plain = addr && (strcmp(addr, "127.0.0.1") == 0 || strcmp(addr, "::1") == 0);
    char host[300];
    if (plain)
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (addr && strchr(addr, ':'))
        snprintf(host, sizeof(host), "[%s]", addr);
    else
        snprintf(host, sizeof(host), "%s", addr ? addr : "");
    enum MHD_Result res;

    pthread_mutex_lock(&admin_mu);
    const char *ca = admin_ca, *cert = admin_cert, *key = admin_key;
    pthread_mutex_unlock(&admin_mu);
    if (!addr || !*addr) {
        res = admin_failed(rq, 500, "dataplane %s has no networking.address", name);
        goto out;
    }
    if (!plain && (!ca || !cert || !key)) {
        res = admin_failed(rq, 500, "the envoy admin CA is not available");
        goto out;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        res = admin_failed(rq, 500, "could not create an HTTP client");
        goto out;
    }
    struct buf q, body;
    buf_init(&q, 4096);
    buf_init(&body, ADMIN_MAX_BODY);
    struct admin_query aq = {t, c, &q};
    api_query_each(rq, add_param, &aq);
    char *url = xasprintf("%s://%s:%d%s%s", plain ? "http" : "https", host, (int)port, t->path,
                          buf_str(&q));
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ADMIN_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ADMIN_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (!plain) {
        struct curl_blob cab = {(void *)ca, strlen(ca), CURL_BLOB_COPY};
        struct curl_blob certb = {(void *)cert, strlen(cert), CURL_BLOB_COPY};
        struct curl_blob keyb = {(void *)key, strlen(key), CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &cab);
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &certb);
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &keyb);
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        struct xds_server *x = atomic_load(&g_xds);
        struct xds_dataplane_insight in;
        int offline = 0;
        if (x && xds_server_insight(x, mesh, name, &in) == 0) {
            offline = !in.online;
            xds_dataplane_insight_clear(&in);
        } else if (x) {
            offline = 1;
        }
        res = admin_failed(rq, cc == CURLE_OPERATION_TIMEDOUT ? 504 : 502,
                           "unable to send GET to %s of dataplane %s.%s (%s): %s%s", t->path + 1,
                           mesh, name, url, errbuf[0] ? errbuf : curl_easy_strerror(cc),
                           offline ? " (the dataplane is offline)" : "");
    } else if (status != 200) {
        res = admin_failed(rq, 502, "envoy response [%ld] [%.512s]", status, buf_str(&body));
    } else {
        size_t len = body.len;
        char *text = xmalloc(len ? len : 1);
        if (len)
            memcpy(text, body.data, len);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", t->ctype);
        res = MHD_queue_response(rq->conn, 200, resp);
        MHD_destroy_response(resp);
    }
    curl_easy_cleanup(c);
    free(url);
    buf_free(&q);
    buf_free(&body);
out:
    resource_free(dp);
    return res;
}

/* The server's unescaping turns '+' into ' ' (form encoding), so the legacy
 * "dataplanes+insights" segment arrives either way. */
static int is_dp_insights(const char *seg)
{
    return strcmp(seg, "dataplanes+insights") == 0 || strcmp(seg, "dataplanes insights") == 0;
}

int api_inspect_route(struct api_req *rq, char **seg, int nseg, enum MHD_Result *res)
{
    if (strcmp(rq->method, "GET") != 0)
        return 0;
    /* /dataplanes/_overview, /dataplanes+insights */
    if (nseg == 2 && strcmp(seg[0], "dataplanes") == 0 && strcmp(seg[1], "_overview") == 0) {
        *res = list_overviews(rq, NULL);
        return 1;
    }
    if (nseg == 1 && is_dp_insights(seg[0])) {
        *res = list_overviews(rq, NULL);
        return 1;
    }
    if (nseg < 3 || strcmp(seg[0], "meshes") != 0)
        return 0;
    const char *mesh = seg[1];
    if (is_dp_insights(seg[2]) && nseg <= 4) {
        *res = nseg == 3 ? list_overviews(rq, mesh) : one_overview(rq, mesh, seg[3]);
        return 1;
    }
    if (strcmp(seg[2], "dataplanes") != 0)
        return 0;
    if (nseg == 4 && strcmp(seg[3], "_overview") == 0) {
        *res = list_overviews(rq, mesh);
        return 1;
    }
    if (nseg == 5 && strcmp(seg[4], "_overview") == 0) {
        *res = one_overview(rq, mesh, seg[3]);
        return 1;
    }
    if (nseg == 5 && strcmp(seg[4], "_config") == 0) {
        *res = get_config(rq, mesh, seg[3]);
        return 1;
    }
    if (nseg == 5 && seg[4][0] != '_') {
        *res = admin_proxy(rq, mesh, seg[3], seg[4]);
        return 1;
    }
    return 0;
}
