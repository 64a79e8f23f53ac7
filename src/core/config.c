/*
 * config — defaults, YAML file and KUMA_* environment (see config.h).
 * Every value is checked as it is read: a bad port or boolean names the key
 * or the variable and stops start-up, rather than running with a surprise.
 */
#include "core/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"

enum kind { K_STR, K_INT_PORT, K_BOOL };

struct option {
    const char *path; /* dotted YAML path */
    const char *env;
    enum kind kind;
    size_t offset;
};

#define OFF(f) offsetof(struct cp_config, f)

static const struct option options[] = {
    {"general.workDir", "KUMA_GENERAL_WORK_DIR", K_STR, OFF(work_dir)},
    {"general.tlsCertFile", "KUMA_GENERAL_TLS_CERT_FILE", K_STR, OFF(tls_cert_file)},
    {"general.tlsKeyFile", "KUMA_GENERAL_TLS_KEY_FILE", K_STR, OFF(tls_key_file)},
    {"apiServer.http.port", "KUMA_API_SERVER_HTTP_PORT", K_INT_PORT, OFF(api_http.port)},
    {"apiServer.http.interface", "KUMA_API_SERVER_HTTP_INTERFACE", K_STR, OFF(api_http.interface)},
    {"apiServer.http.enabled", "KUMA_API_SERVER_HTTP_ENABLED", K_BOOL, OFF(api_http.enabled)},
    {"apiServer.https.port", "KUMA_API_SERVER_HTTPS_PORT", K_INT_PORT, OFF(api_https.port)},
    {"apiServer.https.interface", "KUMA_API_SERVER_HTTPS_INTERFACE", K_STR,
     OFF(api_https.interface)},
    {"apiServer.https.enabled", "KUMA_API_SERVER_HTTPS_ENABLED", K_BOOL, OFF(api_https.enabled)},
    {"apiServer.readOnly", "KUMA_API_SERVER_READ_ONLY", K_BOOL, OFF(api_read_only)},
    {"apiServer.https.tlsCertFile", "KUMA_API_SERVER_HTTPS_TLS_CERT_FILE", K_STR,
     OFF(api_https_cert_file)},
    {"apiServer.https.tlsKeyFile", "KUMA_API_SERVER_HTTPS_TLS_KEY_FILE", K_STR,
     OFF(api_https_key_file)},
    {"apiServer.authn.type", "KUMA_API_SERVER_AUTHN_TYPE", K_STR, OFF(api_authn_type)},
    {"apiServer.authn.localhostIsAdmin", "KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN", K_BOOL,
     OFF(api_authn_localhost_is_admin)},
    {"apiServer.authn.tokens.bootstrapAdminToken",
     "KUMA_API_SERVER_AUTHN_TOKENS_BOOTSTRAP_ADMIN_TOKEN", K_BOOL, OFF(api_authn_bootstrap_admin)},
    {"dpServer.port", "KUMA_DP_SERVER_PORT", K_INT_PORT, OFF(dp_server.port)},
    {"dpServer.authn.dpProxy.type", "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE", K_STR,
     OFF(dp_authn_type)},
    {"xdsServer.dataplaneDeregistrationDelay", "KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY",
     K_STR, OFF(dp_deregistration_delay)},
    {"monitoringAssignmentServer.port", "KUMA_MONITORING_ASSIGNMENT_SERVER_PORT", K_INT_PORT,
     OFF(mads.port)},
    {"diagnostics.serverPort", "KUMA_DIAGNOSTICS_SERVER_PORT", K_INT_PORT, OFF(diagnostics.port)},
    {"store.type", "KUMA_STORE_TYPE", K_STR, OFF(store_type)},
    {"store.sqlite.path", "KUMA_STORE_SQLITE_PATH", K_STR, OFF(sqlite_path)},
    {"store.unsafeDelete", "KUMA_STORE_UNSAFE_DELETE", K_BOOL, OFF(store_unsafe_delete)},
    {"defaults.skipMeshCreation", "KUMA_DEFAULTS_SKIP_MESH_CREATION", K_BOOL,
     OFF(skip_mesh_creation)},
    {"defaults.createMeshRoutingResources", "KUMA_DEFAULTS_CREATE_MESH_ROUTING_RESOURCES", K_BOOL,
     OFF(create_mesh_routing_resources)},
    {"logLevel", "KUMA_LOG_LEVEL", K_STR, OFF(log_level)},
    {"environment", "KUMA_ENVIRONMENT", K_STR, OFF(environment)},
    {"mode", "KUMA_MODE", K_STR, OFF(mode)},
};

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

static int parse_port(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* Applies a textual value (from the environment) to an option. */
static int apply_text(struct cp_config *c, const struct option *o, const char *v, struct err *e)
{
    void *field = (char *)c + o->offset;
    switch (o->kind) {
    case K_STR:
        set_str(field, v);
        return 0;
    case K_INT_PORT:
        if (parse_port(v, field) < 0)
            return err_set(e, "%s: invalid port \"%s\" (expected 0-65535)", o->env, v);
        return 0;
    case K_BOOL:
        if (parse_bool(v, field) < 0)
            return err_set(e, "%s: invalid boolean \"%s\" (expected true or false)", o->env, v);
        return 0;
    }
    return 0;
}

static json_t *lookup(json_t *root, const char *path)
{
    char *p = xstrdup(path), *save = NULL;
    json_t *cur = root;
    for (char *tok = strtok_r(p, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
    free(p);
    return cur;
}

static int apply_json(struct cp_config *c, const struct option *o, json_t *v, struct err *e)
{
    void *field = (char *)c + o->offset;
    switch (o->kind) {
    case K_STR:
        if (!json_is_string(v))
            return err_set(e, "%s: must be a string", o->path);
        set_str(field, json_string_value(v));
        return 0;
    case K_INT_PORT:
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535)
            return err_set(e, "%s: must be a port number (0-65535)", o->path);
        *(int *)field = (int)json_integer_value(v);
        return 0;
    case K_BOOL:
        if (!json_is_boolean(v))
            return err_set(e, "%s: must be true or false", o->path);
        *(int *)field = json_is_true(v);
        return 0;
    }
    return 0;
}

int config_load(struct cp_config *c, const char *path, struct err *e)
{
    memset(c, 0, sizeof(*c));
    const char *home = getenv("HOME");
    c->work_dir = xasprintf("%s/.kuma", home && *home ? home : "/root");
    c->api_http = (struct listener_config){xstrdup("0.0.0.0"), 5681, 1};
    c->api_https = (struct listener_config){xstrdup("0.0.0.0"), 5682, 1};
    c->dp_server = (struct listener_config){xstrdup("0.0.0.0"), 5678, 1};
    c->dp_authn_type = xstrdup("dpToken");
    c->dp_deregistration_delay = xstrdup("10s");
    c->mads = (struct listener_config){xstrdup("0.0.0.0"), 5676, 1};
    c->diagnostics = (struct listener_config){xstrdup("0.0.0.0"), 5680, 1};
    c->tls_cert_file = xstrdup("");
    c->tls_key_file = xstrdup("");
    c->api_https_cert_file = xstrdup("");
    c->api_https_key_file = xstrdup("");
    c->api_authn_type = xstrdup("tokens");
    c->api_authn_localhost_is_admin = 1;
    c->api_authn_bootstrap_admin = 1;
    c->store_type = xstrdup("sqlite");
    c->sqlite_path = xstrdup("");
    c->log_level = xstrdup("info");
    c->environment = xstrdup("universal");
    c->mode = xstrdup("zone");

    if (path) {
        size_t len;
        char *text = read_file(path, 4 << 20, &len, e);
        if (!text)
            return -1;
        json_t *doc = NULL;
        struct err pe;
        int rc = codec_parse_one(text, len, &doc, &pe);
        free(text);
        if (rc < 0)
            return err_set(e, "%s: %s", path, pe.msg);
        for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
            json_t *v = lookup(doc, options[i].path);
            if (v && !json_is_null(v) && apply_json(c, &options[i], v, e) < 0) {
                char msg[sizeof(e->msg)];
                snprintf(msg, sizeof(msg), "%s", e->msg);
                json_decref(doc);
                return err_set(e, "%s: %s", path, msg);
            }
        }
        json_decref(doc);
    }
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        const char *v = getenv(options[i].env);
        if (v && apply_text(c, &options[i], v, e) < 0)
            return -1;
    }
    if (strcmp(c->store_type, "sqlite") != 0 && strcmp(c->store_type, "memory") != 0)
        return err_set(e, "KUMA_STORE_TYPE: unsupported store type \"%s\" (sqlite or memory)",
                       c->store_type);
    if (!*c->tls_cert_file != !*c->tls_key_file)
        return err_set(e, "KUMA_GENERAL_TLS_CERT_FILE and KUMA_GENERAL_TLS_KEY_FILE must be set "
                          "together");
    if (!*c->tls_cert_file) {
        free(c->tls_cert_file);
        c->tls_cert_file = xasprintf("%s/kuma-cp.crt", c->work_dir);
        free(c->tls_key_file);
        c->tls_key_file = xasprintf("%s/kuma-cp.key", c->work_dir);
    }
    if (strcmp(c->api_authn_type, "tokens") != 0)
        return err_set(e,
                       "KUMA_API_SERVER_AUTHN_TYPE: unsupported authentication type \"%s\" "
                       "(tokens)",
                       c->api_authn_type);
    if (!*c->api_https_cert_file != !*c->api_https_key_file)
        return err_set(e,
                       "KUMA_API_SERVER_HTTPS_TLS_CERT_FILE and KUMA_API_SERVER_HTTPS_TLS_KEY_FILE "
                       "must be set together");
    if (!*c->api_https_cert_file) {
        set_str(&c->api_https_cert_file, c->tls_cert_file);
        set_str(&c->api_https_key_file, c->tls_key_file);
    }
    if (!*c->sqlite_path) {
        free(c->sqlite_path);
        c->sqlite_path = xasprintf("%s/kuma.db", c->work_dir);
    }
    return 0;
}

void config_free(struct cp_config *c)
{
    free(c->work_dir);
    free(c->tls_cert_file);
    free(c->tls_key_file);
    free(c->api_https_cert_file);
    free(c->api_https_key_file);
    free(c->api_authn_type);
    free(c->api_http.interface);
    free(c->api_https.interface);
    free(c->dp_server.interface);
    free(c->dp_authn_type);
    free(c->dp_deregistration_delay);
    free(c->mads.interface);
    free(c->diagnostics.interface);
    free(c->store_type);
    free(c->sqlite_path);
    free(c->log_level);
    free(c->environment);
    free(c->mode);
    memset(c, 0, sizeof(*c));
}

json_t *config_to_json(const struct cp_config *c)
{
    json_t *o =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:{s:b, s:s, s:i}, s:{s:b, s:s, s:i}, s:b}, "
                  "s:{s:i}, s:{s:i}, "
                  "s:{s:i}, s:{s:s, s:{s:s}, s:b}, s:{s:b, s:b}}",
                  "environment", c->environment, "mode", c->mode, "general", "workDir", c->work_dir,
                  "tlsCertFile", c->tls_cert_file, "tlsKeyFile", c->tls_key_file, "apiServer",
                  "http", "enabled", c->api_http.enabled, "interface", c->api_http.interface,
                  "port", c->api_http.port, "https", "enabled", c->api_https.enabled, "interface",
                  c->api_https.interface, "port", c->api_https.port, "readOnly", c->api_read_only,
                  "dpServer", "port", c->dp_server.port, "monitoringAssignmentServer", "port",
                  c->mads.port, "diagnostics", "serverPort", c->diagnostics.port, "store", "type",
                  c->store_type, "sqlite", "path", c->sqlite_path, "unsafeDelete",
                  c->store_unsafe_delete, "defaults", "skipMeshCreation", c->skip_mesh_creation,
                  "createMeshRoutingResources", c->create_mesh_routing_resources);
    json_t *api = json_object_get(o, "apiServer");
    json_t *https = json_object_get(api, "https");
    json_object_set_new(https, "tlsCertFile", json_string(c->api_https_cert_file));
    json_object_set_new(https, "tlsKeyFile", json_string(c->api_https_key_file));
    json_object_set_new(api, "authn",
                        json_pack("{s:s, s:b, s:{s:b}}", "type", c->api_authn_type,
                                  "localhostIsAdmin", c->api_authn_localhost_is_admin, "tokens",
                                  "bootstrapAdminToken", c->api_authn_bootstrap_admin));
    return o;
}
