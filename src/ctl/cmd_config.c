/*
 * ctl/cmd_config — `kumactl config control-planes add|list|switch|remove`,
 * `kumactl config view` and `kumactl version`, with Kuma's messages.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ctl/ctl.h"
#include "ctl/table.h"

static int save(struct ctl *c)
{
    struct err e;
    if (ctl_config_save(c->config_file, &c->cfg, &e) < 0)
        return ctl_fail(c, "%s", e.msg);
    return 0;
}

/* url.ParseRequestURI: an absolute URI (scheme:...) or an absolute path. */
static int valid_request_uri(const char *s)
{
    if (s[0] == '/')
        return 1;
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return 0;
    for (const char *p = s; p < colon; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (p > s && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'));
        if (!ok)
            return 0;
    }
    return 1;
}

/* config.ValidateCpCoordinates: GET / must answer as a Kuma control plane. */
static int check_cp(struct ctl *c, const struct ctl_cp *cp)
{
    struct ctl_cp probe = *cp;
    struct ctl_http_response r;
    char *msg = NULL;
    probe.skip_verify = 1; /* Kuma checks reachability without verifying TLS */
    if (ctl_http_do(&probe, "GET", "/", NULL, c->timeout_ms, &r, &msg) < 0) {
        ctl_fail(c, "could not connect to the Control Plane API Server: %s", msg);
        free(msg);
        return -1;
    }
    int rc = 0;
    json_error_t je;
    json_t *j = NULL;
    if (r.status != 200) {
        rc = ctl_fail(c, "Control Plane API Server is not responding");
        goto out;
    }
    j = json_loadb(r.body, r.len, 0, &je);
    if (!json_is_object(j)) {
        rc = ctl_fail(c,
                      "could not unmarshal body from the Control Plane API Server. Provided "
                      "address is not valid Kuma Control Plane API Server: %s",
                      j ? "expected a JSON object" : je.text);
        goto out;
    }
    const char *product = json_string_value(json_object_get(j, "product"));
    if (!product)
        product = json_string_value(json_object_get(j, "tagline"));
    if (!product || strcmp(product, KUMA_PRODUCT) != 0)
        rc = ctl_fail(c,
                      "this CLI is for %s but the control plane you're connected to is %s. "
                      "Please use the CLI for your control plane",
                      KUMA_PRODUCT, product ? product : "");
out:
    json_decref(j);
    ctl_http_response_free(&r);
    return rc;
}

int ctl_cmd_cp_add(struct ctl *c)
{
    const struct args *a = c->args;
    const char *name = args_str(a, "name"), *address = args_str(a, "address");
    const char *cert = args_str(a, "client-cert-file"), *key = args_str(a, "client-key-file");
    const char *auth_type = args_str(a, "auth-type");
    const struct flag_val *headers = args_get(a, "headers"), *auth = args_get(a, "auth-conf");

    if (!valid_request_uri(address))
        return ctl_fail(c, "API Server URL is invalid: parse \"%s\": invalid URI for request",
                        address);
    if ((*cert && !*key) || (!*cert && *key))
        return ctl_fail(c, "Both --client-cert-file and --client-key-file needs to be specified");
    if (*auth_type) {
        if (strcmp(auth_type, "tokens") != 0)
            return ctl_fail(c, "authentication plugin of type \"%s\" is not found", auth_type);
        int has_token = 0;
        for (size_t i = 0; auth && i < auth->npairs; i++)
            if (strcmp(auth->keys[i], "token") == 0 && *auth->vals[i])
                has_token = 1;
        if (!has_token)
            return ctl_fail(c, "--auth-conf is not valid: provide token=YOUR_TOKEN");
    }

    struct ctl_cp *cp = xcalloc(1, sizeof(*cp));
    cp->name = xstrdup(name);
    cp->url = xstrdup(address);
    cp->ca_cert_file = *args_str(a, "ca-cert-file") ? xstrdup(args_str(a, "ca-cert-file")) : NULL;
    cp->client_cert_file = *cert ? xstrdup(cert) : NULL;
    cp->client_key_file = *key ? xstrdup(key) : NULL;
    cp->skip_verify = args_bool(a, "skip-verify");
    cp->auth_type = *auth_type ? xstrdup(auth_type) : NULL;
    cp->auth_conf = json_object();
    for (size_t i = 0; auth && i < auth->npairs; i++)
        json_object_set_new(cp->auth_conf, auth->keys[i], json_string(auth->vals[i]));
    /* Headers are stored sorted by key (later values win), as Kuma does. */
    json_t *hm = json_object();
    for (size_t i = 0; headers && i < headers->npairs; i++)
        json_object_set_new(hm, headers->keys[i], json_string(headers->vals[i]));
    const char *hk;
    json_t *hv;
    size_t nh = json_object_size(hm), k = 0;
    cp->headers = nh ? xcalloc(nh, sizeof(*cp->headers)) : NULL;
    json_object_foreach(hm, hk, hv)
    {
        cp->headers[k].key = xstrdup(hk);
        cp->headers[k].value = xstrdup(json_string_value(hv));
        k++;
    }
    cp->nheaders = nh;
    json_decref(hm);
    for (size_t i = 1; i < nh; i++)
        for (size_t j = i; j > 0 && strcmp(cp->headers[j - 1].key, cp->headers[j].key) > 0; j--) {
            struct ctl_header t = cp->headers[j];
            cp->headers[j] = cp->headers[j - 1];
            cp->headers[j - 1] = t;
        }

    if (!args_bool(a, "skip-check") && check_cp(c, cp) < 0) {
        ctl_cp_free(cp);
        free(cp);
        return -1;
    }
    if (ctl_config_add_cp(&c->cfg, cp, args_bool(a, "overwrite")) < 0) {
        free(cp);
        return ctl_fail(c,
                        "Control Plane with name \"%s\" already exists. Use --overwrite to "
                        "replace an existing one.",
                        name);
    }
    free(cp);
    if (ctl_config_add_context(&c->cfg, name, name, args_bool(a, "overwrite")) < 0)
        return ctl_fail(c, "Context with name \"%s\" already exists", name);
    free(c->cfg.current_context);
    c->cfg.current_context = xstrdup(name);
    if (save(c) < 0)
        return -1;
    fprintf(c->out, "added Control Plane \"%s\"\n", name);
    fprintf(c->out, "switched active Control Plane to \"%s\"\n", name);
    return 0;
}

int ctl_cmd_cp_list(struct ctl *c)
{
    static const char *const headers[] = {"ACTIVE", "NAME", "ADDRESS"};
    const struct ctl_context *cur = ctl_config_current(&c->cfg);
    struct table tb;
    table_init(&tb, 3);
    table_add(&tb, headers);
    for (size_t i = 0; i < c->cfg.ncps; i++) {
        const struct ctl_cp *cp = &c->cfg.cps[i];
        int active =
            cur && cur->control_plane && cp->name && strcmp(cur->control_plane, cp->name) == 0;
        const char *row[] = {active ? "*" : "", cp->name, cp->url};
        table_add(&tb, row);
    }
    table_print(&tb, c->out);
    table_free(&tb);
    return 0;
}

int ctl_cmd_cp_switch(struct ctl *c)
{
    const char *name = args_str(c->args, "name");
    if (ctl_config_switch(&c->cfg, name) < 0)
        return ctl_fail(c, "there is no Control Plane with name \"%s\"", name);
    if (save(c) < 0)
        return -1;
    fprintf(c->out, "switched active Control Plane to \"%s\"\n", name);
    return 0;
}

int ctl_cmd_cp_remove(struct ctl *c)
{
    const char *name = args_str(c->args, "name");
    if (ctl_config_remove_cp(&c->cfg, name) < 0)
        return ctl_fail(c, "there is no Control Plane with name \"%s\"", name);
    if (save(c) < 0)
        return -1;
    fprintf(c->out, "removed Control Plane \"%s\"\n", name);
    const struct ctl_context *cur = ctl_config_current(&c->cfg);
    if (cur)
        fprintf(c->out, "switched active Control Plane to \"%s\"\n",
                cur->control_plane ? cur->control_plane : "");
    else
        fprintf(c->out, "there is no active Control Plane left. Use `kumactl config "
                        "control-planes add` to add a Control Plane and make it active\n");
    return 0;
}

int ctl_cmd_config_view(struct ctl *c)
{
    char *y = ctl_config_to_yaml(&c->cfg);
    if (!y)
        return ctl_fail(c, "Cannot format configuration");
    fprintf(c->out, "%s\n", y); /* cmd.Println adds a newline to the YAML's own */
    free(y);
    return 0;
}

int ctl_cmd_version(struct ctl *c)
{
    if (args_bool(c->args, "detailed")) {
        fprintf(c->out, "Product:    %s\n", KUMA_PRODUCT);
        fprintf(c->out, "Version:    %s\n", KUMA_VERSION);
        fprintf(c->out, "Git Tag:    unknown\n");
        fprintf(c->out, "Git Commit: unknown\n");
        fprintf(c->out, "Build Date: unknown\n");
    } else {
        fprintf(c->out, "Client: %s %s\n", KUMA_PRODUCT, KUMA_VERSION);
    }
    struct ctl_http_response r;
    if (ctl_request(c, "GET", "/", NULL, "", &r) < 0) {
        fprintf(c->err, "Unable to connect to control plane: %s\n", c->errmsg);
        free(c->errmsg);
        c->errmsg = NULL;
        return 0;
    }
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *tagline = json_string_value(json_object_get(j, "tagline"));
    const char *product = json_string_value(json_object_get(j, "product"));
    const char *version = json_string_value(json_object_get(j, "version"));
    if (r.status == 200 && json_is_object(j))
        fprintf(c->out, "Server: %s %s\n",
                tagline   ? tagline
                : product ? product
                          : "",
                version ? version : "");
    else
        fprintf(c->err, "Unable to connect to control plane: unexpected status code %ld\n",
                r.status);
    json_decref(j);
    ctl_http_response_free(&r);
    return 0;
}
