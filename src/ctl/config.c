/*
 * ctl/config — kumactl's configuration file (see config.h).
 */
#include "ctl/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/codec.h"

void ctl_cp_free(struct ctl_cp *cp)
{
    if (!cp)
        return;
    free(cp->name);
    free(cp->url);
    free(cp->ca_cert_file);
    free(cp->client_cert_file);
    free(cp->client_key_file);
    for (size_t i = 0; i < cp->nheaders; i++) {
        free(cp->headers[i].key);
        free(cp->headers[i].value);
    }
    free(cp->headers);
    free(cp->auth_type);
    json_decref(cp->auth_conf);
    memset(cp, 0, sizeof(*cp));
}

static void context_free(struct ctl_context *x)
{
    free(x->name);
    free(x->control_plane);
    free(x->default_mesh);
}

void ctl_config_free(struct ctl_config *c)
{
    for (size_t i = 0; i < c->ncps; i++)
        ctl_cp_free(&c->cps[i]);
    free(c->cps);
    for (size_t i = 0; i < c->ncontexts; i++)
        context_free(&c->contexts[i]);
    free(c->contexts);
    free(c->current_context);
    memset(c, 0, sizeof(*c));
}

void ctl_config_default(struct ctl_config *c)
{
    memset(c, 0, sizeof(*c));
    struct ctl_cp *cp = xcalloc(1, sizeof(*cp));
    cp->name = xstrdup("local");
    cp->url = xstrdup("http://localhost:5681");
    cp->auth_conf = json_object();
    ctl_config_add_cp(c, cp, 0);
    free(cp);
    ctl_config_add_context(c, "local", "local", 0);
    c->current_context = xstrdup("local");
}

/* Looks a key up under its camelCase or snake_case spelling. */
static json_t *field(const json_t *o, const char *camel, const char *snake)
{
    json_t *v = json_object_get(o, camel);
    return v ? v : json_object_get(o, snake);
}

static int str_field(const json_t *o, const char *camel, const char *snake, char **out,
                     const char *where, struct err *e)
{
    json_t *v = field(o, camel, snake);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(e, "%s%s: expected a string", where, camel);
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int parse_cp(const json_t *o, struct ctl_cp *cp, size_t idx, struct err *e)
{
    char where[64];
    snprintf(where, sizeof(where), "controlPlanes[%zu].", idx);
    memset(cp, 0, sizeof(*cp));
    cp->auth_conf = json_object();
    if (!json_is_object(o))
        return err_set(e, "controlPlanes[%zu]: expected an object", idx);
    if (str_field(o, "name", "name", &cp->name, where, e) < 0)
        return -1;
    json_t *coords = field(o, "coordinates", "coordinates");
    json_t *api = coords ? field(coords, "apiServer", "api_server") : NULL;
    if (!json_is_object(api))
        return 0;
    if (str_field(api, "url", "url", &cp->url, where, e) < 0 ||
        str_field(api, "caCertFile", "ca_cert_file", &cp->ca_cert_file, where, e) < 0 ||
        str_field(api, "clientCertFile", "client_cert_file", &cp->client_cert_file, where, e) < 0 ||
        str_field(api, "clientKeyFile", "client_key_file", &cp->client_key_file, where, e) < 0 ||
        str_field(api, "authType", "auth_type", &cp->auth_type, where, e) < 0)
        return -1;
    json_t *sv = field(api, "skipVerify", "skip_verify");
    cp->skip_verify = json_is_true(sv);
    json_t *hs = field(api, "addHeaders", "add_headers");
    if (json_is_array(hs)) {
        size_t i;
        json_t *h;
        json_array_foreach(hs, i, h)
        {
            const char *k = json_string_value(json_object_get(h, "key"));
            const char *v = json_string_value(json_object_get(h, "value"));
            if (!k)
                continue;
            cp->headers = xrealloc(cp->headers, (cp->nheaders + 1) * sizeof(*cp->headers));
            cp->headers[cp->nheaders].key = xstrdup(k);
            cp->headers[cp->nheaders].value = xstrdup(v ? v : "");
            cp->nheaders++;
        }
    }
    json_t *ac = field(api, "authConf", "auth_conf");
    if (json_is_object(ac)) {
        const char *k;
        json_t *v;
        json_object_foreach(ac, k, v) if (json_is_string(v)) json_object_set(cp->auth_conf, k, v);
    }
    return 0;
}

int ctl_config_parse(const char *text, size_t len, struct ctl_config *c, struct err *e)
{
    json_t *docs = NULL;
    memset(c, 0, sizeof(*c));
    if (codec_parse(text, len, &docs, e) < 0)
        return -1;
    if (json_array_size(docs) == 0) {
        json_decref(docs);
        return 0;
    }
    json_t *root = json_array_get(docs, 0);
    int rc = -1;
    if (json_is_null(root)) {
        rc = 0;
        goto out;
    }
    if (!json_is_object(root)) {
        err_set(e, "expected a mapping at the top level");
        goto out;
    }
    json_t *cps = field(root, "controlPlanes", "control_planes");
    if (cps && !json_is_array(cps) && !json_is_null(cps)) {
        err_set(e, "controlPlanes: expected a list");
        goto out;
    }
    size_t i;
    json_t *x;
    json_array_foreach(cps, i, x)
    {
        struct ctl_cp cp;
        if (parse_cp(x, &cp, i, e) < 0) {
            ctl_cp_free(&cp);
            goto out;
        }
        c->cps = xrealloc(c->cps, (c->ncps + 1) * sizeof(*c->cps));
        c->cps[c->ncps++] = cp;
    }
    json_t *ctxs = field(root, "contexts", "contexts");
    if (ctxs && !json_is_array(ctxs) && !json_is_null(ctxs)) {
        err_set(e, "contexts: expected a list");
        goto out;
    }
    json_array_foreach(ctxs, i, x)
    {
        struct ctl_context cx = {0};
        char where[64];
        snprintf(where, sizeof(where), "contexts[%zu].", i);
        if (!json_is_object(x)) {
            err_set(e, "contexts[%zu]: expected an object", i);
            goto out;
        }
        if (str_field(x, "name", "name", &cx.name, where, e) < 0 ||
            str_field(x, "controlPlane", "control_plane", &cx.control_plane, where, e) < 0) {
            context_free(&cx);
            goto out;
        }
        json_t *defs = field(x, "defaults", "defaults");
        if (json_is_object(defs) &&
            str_field(defs, "mesh", "mesh", &cx.default_mesh, where, e) < 0) {
            context_free(&cx);
            goto out;
        }
        c->contexts = xrealloc(c->contexts, (c->ncontexts + 1) * sizeof(*c->contexts));
        c->contexts[c->ncontexts++] = cx;
    }
    if (str_field(root, "currentContext", "current_context", &c->current_context, "", e) < 0)
        goto out;
    rc = 0;
out:
    json_decref(docs);
    if (rc < 0)
        ctl_config_free(c);
    return rc;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v)
        json_object_set_new(o, k, json_string(v));
}

char *ctl_config_to_yaml(const struct ctl_config *c)
{
    json_t *root = json_object();
    if (c->ncontexts) {
        json_t *arr = json_array();
        for (size_t i = 0; i < c->ncontexts; i++) {
            json_t *o = json_object();
            set_str(o, "name", c->contexts[i].name);
            set_str(o, "controlPlane", c->contexts[i].control_plane);
            if (c->contexts[i].default_mesh && *c->contexts[i].default_mesh) {
                json_t *d = json_object();
                set_str(d, "mesh", c->contexts[i].default_mesh);
                json_object_set_new(o, "defaults", d);
            }
            json_array_append_new(arr, o);
        }
        json_object_set_new(root, "contexts", arr);
    }
    if (c->ncps) {
        json_t *arr = json_array();
        for (size_t i = 0; i < c->ncps; i++) {
            const struct ctl_cp *cp = &c->cps[i];
            json_t *o = json_object(), *api = json_object();
            set_str(o, "name", cp->name);
            set_str(api, "url", cp->url);
            set_str(api, "caCertFile", cp->ca_cert_file);
            set_str(api, "clientCertFile", cp->client_cert_file);
            set_str(api, "clientKeyFile", cp->client_key_file);
            if (cp->skip_verify)
                json_object_set_new(api, "skipVerify", json_true());
            if (cp->nheaders) {
                json_t *hs = json_array();
                for (size_t j = 0; j < cp->nheaders; j++) {
                    json_t *h = json_object();
                    set_str(h, "key", cp->headers[j].key);
                    set_str(h, "value", cp->headers[j].value);
                    json_array_append_new(hs, h);
                }
                json_object_set_new(api, "addHeaders", hs);
            }
            set_str(api, "authType", cp->auth_type);
            if (cp->auth_conf && json_object_size(cp->auth_conf))
                json_object_set(api, "authConf", cp->auth_conf);
            json_t *coords = json_object();
            json_object_set_new(coords, "apiServer", api);
            json_object_set_new(o, "coordinates", coords);
            json_array_append_new(arr, o);
        }
        json_object_set_new(root, "controlPlanes", arr);
    }
    set_str(root, "currentContext", c->current_context);
    char *y = json_object_size(root) ? codec_yaml_dump(root, 1) : xstrdup("{}\n");
    json_decref(root);
    return y;
}

char *ctl_config_default_path(void)
{
    const char *home = getenv("HOME");
    return xasprintf("%s/.kumactl/config", home ? home : "");
}

int ctl_config_load(const char *file, struct ctl_config *c, struct err *e)
{
    char *path = file && *file ? xstrdup(file) : ctl_config_default_path();
    int rc = -1;
    struct stat st;

    if (stat(path, &st) < 0) {
        if (file && *file) {
            err_set(e, "Failed to access configuration file \"%s\"", path);
            goto out;
        }
        ctl_config_default(c);
        rc = 0;
        goto out;
    }
    struct err re;
    size_t len;
    char *text = read_file(path, CTL_CONFIG_MAX_BYTES, &len, &re);
    if (!text) {
        err_set(e, "Failed to read configuration from file \"%s\": %s", path, re.msg);
        goto out;
    }
    if (ctl_config_parse(text, len, c, &re) < 0)
        err_set(e, "Failed to parse configuration from file \"%s\": %s", path, re.msg);
    else
        rc = 0;
    free(text);
out:
    free(path);
    return rc;
}

int ctl_config_save(const char *file, const struct ctl_config *c, struct err *e)
{
    char *path = file && *file ? xstrdup(file) : ctl_config_default_path();
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = -1;
    if (slash && slash != dir) {
        *slash = '\0';
        /* Create each missing component, as os.MkdirAll does. */
        for (char *p = dir + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                err_set(e, "Failed to create a directory \"%s\": %s", dir, strerror(errno));
                goto out;
            }
            *p = '/';
        }
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            err_set(e, "Failed to create a directory \"%s\": %s", dir, strerror(errno));
            goto out;
        }
    }
    char *y = ctl_config_to_yaml(c);
    struct err we;
    if (!y) {
        err_set(e, "Failed to format configuration");
        goto out;
    }
    if (write_file_atomic(path, y, strlen(y), 0600, &we) < 0)
        err_set(e, "Failed to write configuration into file \"%s\": %s", path, we.msg);
    else
        rc = 0;
    free(y);
out:
    free(dir);
    free(path);
    return rc;
}

static ssize_t find_cp(const struct ctl_config *c, const char *name)
{
    for (size_t i = 0; i < c->ncps; i++)
        if (c->cps[i].name && strcmp(c->cps[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

static ssize_t find_context(const struct ctl_config *c, const char *name)
{
    for (size_t i = 0; i < c->ncontexts; i++)
        if (c->contexts[i].name && strcmp(c->contexts[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

const struct ctl_cp *ctl_config_find_cp(const struct ctl_config *c, const char *name)
{
    ssize_t i = name ? find_cp(c, name) : -1;
    return i < 0 ? NULL : &c->cps[i];
}

const struct ctl_context *ctl_config_current(const struct ctl_config *c)
{
    if (!c->current_context || !*c->current_context)
        return NULL;
    ssize_t i = find_context(c, c->current_context);
    return i < 0 ? NULL : &c->contexts[i];
}

int ctl_config_add_cp(struct ctl_config *c, struct ctl_cp *cp, int overwrite)
{
    ssize_t i = find_cp(c, cp->name);
    if (i >= 0) {
        if (!overwrite) {
            ctl_cp_free(cp);
            return -1;
        }
        ctl_cp_free(&c->cps[i]);
        c->cps[i] = *cp;
        return 0;
    }
    c->cps = xrealloc(c->cps, (c->ncps + 1) * sizeof(*c->cps));
    c->cps[c->ncps++] = *cp;
    return 0;
}

int ctl_config_add_context(struct ctl_config *c, const char *name, const char *cp, int overwrite)
{
    struct ctl_context cx = {.name = xstrdup(name), .control_plane = xstrdup(cp)};
    ssize_t i = find_context(c, name);
    if (i >= 0) {
        if (!overwrite) {
            context_free(&cx);
            return -1;
        }
        context_free(&c->contexts[i]);
        c->contexts[i] = cx;
        return 0;
    }
    c->contexts = xrealloc(c->contexts, (c->ncontexts + 1) * sizeof(*c->contexts));
    c->contexts[c->ncontexts++] = cx;
    return 0;
}

static void remove_context(struct ctl_config *c, size_t i)
{
    char *name = xstrdup(c->contexts[i].name ? c->contexts[i].name : "");
    context_free(&c->contexts[i]);
    memmove(&c->contexts[i], &c->contexts[i + 1], (c->ncontexts - i - 1) * sizeof(*c->contexts));
    c->ncontexts--;
    if (c->current_context && strcmp(c->current_context, name) == 0) {
        free(c->current_context);
        c->current_context = xstrdup(c->ncontexts ? c->contexts[0].name : "");
    }
    free(name);
}

int ctl_config_remove_cp(struct ctl_config *c, const char *name)
{
    ssize_t i = find_cp(c, name);
    if (i < 0)
        return -1;
    for (size_t j = 0; j < c->ncontexts;) {
        if (c->contexts[j].control_plane && strcmp(c->contexts[j].control_plane, name) == 0)
            remove_context(c, j);
        else
            j++;
    }
    ctl_cp_free(&c->cps[i]);
    memmove(&c->cps[i], &c->cps[i + 1], (c->ncps - (size_t)i - 1) * sizeof(*c->cps));
    c->ncps--;
    return 0;
}

int ctl_config_switch(struct ctl_config *c, const char *name)
{
    ssize_t i = find_context(c, name);
    if (i < 0)
        return -1;
    free(c->current_context);
    c->current_context = xstrdup(c->contexts[i].name);
    return 0;
}
