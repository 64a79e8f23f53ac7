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
    return 0;
}
