/*
 * ctl/cmd_inspect — `kumactl inspect dataplanes [-m mesh]`: GET
 * /meshes/{mesh}/dataplanes+insights and Kuma's table
 * (app/kumactl/cmd/inspect/inspect_dataplanes.go): MESH NAME TAGS STATUS
 * LAST CONNECTED AGO LAST UPDATED AGO TOTAL UPDATES TOTAL ERRORS CERT
 * REGENERATED AGO CERT EXPIRATION CERT REGENERATIONS CERT BACKEND SUPPORTED
 * CERT BACKENDS KUMA-DP VERSION ENVOY VERSION DEPENDENCIES VERSIONS NOTES.
 * Unknown values print "-", never-seen times "never".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ctl/ctl.h"
#include "ctl/print.h"
#include "ctl/table.h"

#define NCOLS 18 /* 17 columns + 1 */

static const char *sget(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void ago(const char *ts, const struct ctl_time *now, char *out, size_t n)
{
    struct ctl_time t;
    if (!ts || !*ts || ctl_time_parse(ts, &t) < 0) {
        snprintf(out, n, "never");
        return;
    }
    ctl_format_age(&t, now, out, n);
}

/* "k1=v1 k2=v2" of every inbound's tags, sorted and unique. */
static void tags_of(const json_t *dp, char *out, size_t n)
{
    json_t *all = json_object();
    size_t i;
    json_t *in;
    json_array_foreach(json_object_get(json_object_get(dp, "networking"), "inbound"), i, in)
    {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(in, "tags"), k, v)
        {
            if (json_is_string(v)) {
                char *kv = xasprintf("%s=%s", k, json_string_value(v));
                json_object_set_new(all, kv, json_true());
                free(kv);
            }
        }
    }
    const char **keys = xcalloc(json_object_size(all) + 1, sizeof(*keys));
    size_t nk = 0;
    const char *k;
    json_t *v;
    json_object_foreach(all, k, v) keys[nk++] = k;
    for (size_t a = 1; a < nk; a++)
        for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
            const char *t = keys[b];
            keys[b] = keys[b - 1];
            keys[b - 1] = t;
        }
    out[0] = '\0';
    size_t len = 0;
    for (size_t j = 0; j < nk && len < n; j++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", j ? " " : "", keys[j]);
    free(keys);
    json_decref(all);
}

int ctl_cmd_inspect_dataplanes(struct ctl *c)
{
    struct ctl_http_response r;
    json_t *list = NULL;
    int result = -1;
    char *esc = ctl_escape(ctl_mesh(c));
    char *path = xasprintf("/meshes/%s/dataplanes+insights", esc);
    free(esc);
    if (ctl_request(c, "GET", path, NULL, "", &r) < 0) {
        free(path);
        return -1;
    }
    free(path);
    if (r.status != 200) {
        ctl_fail(c, "(%ld): %s", r.status, r.body);
        goto out;
    }
    json_error_t je;
    list = json_loadb(r.body, r.len, 0, &je);
    if (!list) {
        ctl_fail(c, "invalid response from the control plane: %s", je.text);
        goto out;
    }
    const char *fmt = args_str(c->args, "output");
    if (fmt && (strcmp(fmt, "json") == 0 || strcmp(fmt, "yaml") == 0)) {
        ctl_print_json(list, c->out);
        result = 0;
        goto out;
    }
    static const char *const headers[NCOLS] = {"MESH",
                                               "NAME",
                                               "TAGS",
                                               "STATUS",
                                               "LAST CONNECTED AGO",
                                               "LAST UPDATED AGO",
                                               "TOTAL UPDATES",
                                               "TOTAL ERRORS",
                                               "CERT REGENERATED AGO",
                                               "CERT EXPIRATION",
                                               "CERT REGENERATIONS",
                                               "CERT BACKEND",
                                               "SUPPORTED CERT BACKENDS",
                                               "KUMA-DP VERSION",
                                               "ENVOY VERSION",
                                               "DEPENDENCIES VERSIONS",
                                               "NOTES"};
    struct table tb;
    table_init(&tb, NCOLS - 1);
    table_add(&tb, headers);
    struct ctl_time now = ctl_time_now();
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        const json_t *ins = json_object_get(it, "dataplaneInsight");
        const json_t *subs = json_object_get(ins, "subscriptions");
        const json_t *sub = json_array_get(subs, json_array_size(subs) - 1);
        const json_t *total = json_object_get(json_object_get(sub, "status"), "total");
        const json_t *mtls = json_object_get(ins, "mTLS");
        char tags[512], conn[32], upd[32], certago[32], exp[64];
        tags_of(json_object_get(it, "dataplane"), tags, sizeof(tags));
        int online = sub && *sget(sub, "connectTime") && !*sget(sub, "disconnectTime");
        ago(sub ? sget(sub, "connectTime") : NULL, &now, conn, sizeof(conn));
        ago(sub ? sget(json_object_get(sub, "status"), "lastUpdateTime") : NULL, &now, upd,
            sizeof(upd));
        ago(mtls ? sget(mtls, "lastCertificateRegeneration") : NULL, &now, certago,
            sizeof(certago));
        snprintf(exp, sizeof(exp), "%s", mtls ? sget(mtls, "certificateExpirationTime") : "-");
        if (!*exp)
            snprintf(exp, sizeof(exp), "-");
        const char *row[NCOLS - 1] = {
            sget(it, "mesh"),
            sget(it, "name"),
            tags,
            online ? "Online" : "Offline",
            conn,
            upd,
            total ? sget(total, "responsesSent") : "0",
            total ? sget(total, "responsesRejected") : "0",
            certago,
            exp,
            mtls ? sget(mtls, "certificateRegenerations") : "0",
            mtls ? sget(mtls, "issuedBackend") : "-",
            mtls ? json_string_value(json_array_get(json_object_get(mtls, "supportedBackends"), 0))
                 : "-",
            "-",
            "-",
            "-",
            "-"};
        for (int k = 0; k < NCOLS - 1; k++)
            if (!row[k] || !*row[k])
                row[k] = k == 6 || k == 7 || k == 10 ? "0" : "-";
        table_add(&tb, row);
    }
    table_print(&tb, c->out);
    table_free(&tb);
    result = 0;
out:
    json_decref(list);
    ctl_http_response_free(&r);
    return result;
}

/*
 * kumactl inspect dataplane NAME --type=config-dump|stats|clusters|config
 * [--include-eds] [-m MESH] (Kuma's app/kumactl/cmd/inspect/
 * inspect_dataplane.go): prints what kuma-cp fetched from the proxy's admin
 * (GET /meshes/{mesh}/dataplanes/{name}/{xds|stats|clusters}) or the
 * configuration kuma-cp generates for it (_config). Kuma's default type,
 * "policies", is not served by this control plane yet.
 */
int ctl_cmd_inspect_dataplane(struct ctl *c)
{
    const char *name = c->args->pos[0];
    const char *type = args_str(c->args, "type");
    int include_eds = args_bool(c->args, "include-eds");
    const char *sub;
    if (include_eds && strcmp(type, "config-dump") != 0)
        return ctl_fail(c, "flag '--include-eds' can be used only when '--type=config-dump'");
    if (strcmp(type, "config-dump") == 0)
        sub = include_eds ? "xds?include_eds=true" : "xds";
    else if (strcmp(type, "stats") == 0)
        sub = "stats";
    else if (strcmp(type, "clusters") == 0)
        sub = "clusters";
    else if (strcmp(type, "config") == 0)
        sub = "_config";
    else if (strcmp(type, "policies") == 0)
        return ctl_fail(c, "inspection type \"policies\" is not supported by this control plane "
                           "yet; use --type config-dump|stats|clusters|config");
    else
        return ctl_fail(c, "invalid inspection type");
    char *em = ctl_escape(ctl_mesh(c)), *en = ctl_escape(name);
    char *path = xasprintf("/meshes/%s/dataplanes/%s/%s", em, en, sub);
    free(em);
    free(en);
    struct ctl_http_response r;
    int rc = ctl_request(c, "GET", path, NULL, "", &r);
    free(path);
    if (rc < 0)
        return -1;
    if (r.status != 200) {
        /* Kuma's error envelope: print its title and detail. */
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        const char *title = json_string_value(json_object_get(j, "title"));
        const char *detail = json_string_value(json_object_get(j, "detail"));
        if (title)
            ctl_fail(c, "%s: %s", title, detail ? detail : "");
        else
            ctl_fail(c, "(%ld): %s", r.status, r.body);
        json_decref(j);
        ctl_http_response_free(&r);
        return -1;
    }
    fwrite(r.body, 1, r.len, c->out);
    ctl_http_response_free(&r);
    return 0;
}
