/*
 * ctl — shared state of kumactl's commands: configuration, the active
 * control plane, requests and error recording (see ctl.h).
 */
#include "ctl/ctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"

void ctl_init(struct ctl *c, FILE *out, FILE *err, FILE *in)
{
    memset(c, 0, sizeof(*c));
    c->out = out;
    c->err = err;
    c->in = in;
    c->timeout_ms = 60000; /* --api-timeout default: 1m */
    c->now = ctl_time_now();
}

void ctl_free(struct ctl *c)
{
    ctl_config_free(&c->cfg);
    free(c->errmsg);
    c->errmsg = NULL;
}

int ctl_fail(struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    free(c->errmsg);
    c->errmsg = m;
    return -1;
}

int ctl_prepare(struct ctl *c)
{
    struct err e;
    ctl_config_free(&c->cfg);
    if (c->no_config) {
        ctl_config_default(&c->cfg);
        return 0;
    }
    char *path =
        c->config_file && *c->config_file ? xstrdup(c->config_file) : ctl_config_default_path();
    struct stat st;
    int first_time = stat(path, &st) < 0;
    free(path);
    if (first_time) {
        struct ctl_config def;
        ctl_config_default(&def);
        int rc = ctl_config_save(c->config_file, &def, &e);
        ctl_config_free(&def);
        if (rc < 0)
            return ctl_fail(c, "%s", e.msg);
    }
    if (ctl_config_load(c->config_file, &c->cfg, &e) < 0)
        return ctl_fail(c, "%s", e.msg);
    return 0;
}

const char *ctl_mesh(const struct ctl *c)
{
    const char *m = c->args ? args_str(c->args, "mesh") : "";
    return m && *m ? m : "default";
}

int ctl_current_cp(struct ctl *c, const struct ctl_cp **cp)
{
    if (!c->cfg.current_context || !*c->cfg.current_context)
        return ctl_fail(c, "active Control Plane is not set. Use `kumactl config control-planes "
                           "add` to add a Control Plane and make it active");
    const struct ctl_context *cx = ctl_config_current(&c->cfg);
    const struct ctl_cp *p = cx ? ctl_config_find_cp(&c->cfg, cx->control_plane) : NULL;
    if (!p)
        return ctl_fail(c, "apparently, configuration is broken. Use `kumactl config "
                           "control-planes add` to add a Control Plane and make it active");
    if (p->auth_type && *p->auth_type && strcmp(p->auth_type, "tokens") != 0)
        return ctl_fail(c, "authentication plugin of type \"%s\" not found", p->auth_type);
    *cp = p;
    return 0;
}

int ctl_request(struct ctl *c, const char *method, const char *path, const char *body,
                const char *prefix, struct ctl_http_response *resp)
{
    const struct ctl_cp *cp;
    char *msg = NULL;
    if (ctl_current_cp(c, &cp) < 0)
        return -1;
    if (ctl_http_do(cp, method, path, body, c->timeout_ms, resp, &msg) < 0) {
        ctl_fail(c, "%s%s", prefix ? prefix : "", msg);
        free(msg);
        return -1;
    }
    return 0;
}

char *ctl_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf b;
    buf_init(&b, 0);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            buf_append(&b, s, 1);
        } else {
            char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            buf_append(&b, enc, 3);
        }
    }
    char *r = xstrdup(buf_str(&b));
    buf_free(&b);
    return r;
}

char *ctl_resource_path(const struct res_type *t, const char *mesh, const char *name)
{
    char *m = ctl_escape(mesh ? mesh : ""), *n = name ? ctl_escape(name) : NULL, *p;
    if (t->scope == RES_SCOPE_MESH) {
        if (strcmp(t->plural, "meshes") == 0)
            p = n ? xasprintf("/meshes/%s", n) : xstrdup("/meshes");
        else
            p = n ? xasprintf("/meshes/%s/%s/%s", m, t->plural, n)
                  : xasprintf("/meshes/%s/%s", m, t->plural);
    } else {
        p = n ? xasprintf("/%s/%s", t->plural, n) : xasprintf("/%s", t->plural);
    }
    free(m);
    free(n);
    return p;
}

void ctl_check_compat(struct ctl *c)
{
    struct ctl_http_response r;
    char *saved = c->errmsg;
    c->errmsg = NULL;
    if (ctl_request(c, "GET", "/", NULL, "", &r) < 0) {
        fprintf(c->err,
                "WARNING: Failed to retrieve server version, can't check compatibility: Unable "
                "to retrieve server version: %s\n",
                c->errmsg);
        free(c->errmsg);
        c->errmsg = saved;
        return;
    }
    c->errmsg = saved;
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *version = json_string_value(json_object_get(j, "version"));
    const char *product = json_string_value(json_object_get(j, "product"));
    if (!product)
        product = json_string_value(json_object_get(j, "tagline"));
    if (r.status != 200 || !json_is_object(j)) {
        fprintf(c->err,
                "WARNING: Failed to retrieve server version, can't check compatibility: Unable "
                "to retrieve server version: unexpected status code %ld\n",
                r.status);
    } else if (!version || !product || strcmp(version, KUMA_VERSION) != 0 ||
               strcmp(product, KUMA_PRODUCT) != 0) {
        /* Kuma prints the server's product and version in this order. */
        fprintf(c->err,
                "WARNING: You are using kumactl version %s for %s, but the server returned "
                "version: %s for %s\n",
                KUMA_VERSION, KUMA_PRODUCT, product ? product : "", version ? version : "");
    }
    json_decref(j);
    ctl_http_response_free(&r);
}
