/*
 * config — kuma-cp's configuration: built-in defaults, then a YAML file
 * (`kuma-cp run -c FILE`, Kuma's key names), then KUMA_* environment
 * variables, each overriding the one before, as Kuma does.
 */
#ifndef CORE_CONFIG_H
#define CORE_CONFIG_H

#include <jansson.h>

#include "core/util.h"

struct listener_config {
    char *interface; /* address to bind */
    int port;        /* 0 = an ephemeral port picked by the kernel */
    int enabled;
};

struct cp_config {
    char *work_dir; /* KUMA_GENERAL_WORK_DIR */
    /* KUMA_GENERAL_TLS_CERT_FILE / _KEY_FILE: kuma-cp's own certificate (API
     * HTTPS, DP server); default <work dir>/kuma-cp.crt and .key, generated
     * once and kept. The certificate is its own CA: proxies trust it with
     * --ca-cert-file <work dir>/kuma-cp.crt. */
    char *tls_cert_file;
    char *tls_key_file;
    struct listener_config api_http;  /* KUMA_API_SERVER_HTTP_* */
    struct listener_config api_https; /* KUMA_API_SERVER_HTTPS_* */
    int api_read_only;                /* KUMA_API_SERVER_READ_ONLY */
    /* KUMA_API_SERVER_HTTPS_TLS_CERT_FILE / _KEY_FILE: the HTTPS listener's
     * certificate; empty = kuma-cp's own (tls_cert_file / tls_key_file). */
    char *api_https_cert_file;
    char *api_https_key_file;
    char *api_authn_type;             /* KUMA_API_SERVER_AUTHN_TYPE: tokens */
    int api_authn_localhost_is_admin; /* KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN */
    int api_authn_bootstrap_admin;    /* KUMA_API_SERVER_AUTHN_TOKENS_BOOTSTRAP_ADMIN_TOKEN */
    struct listener_config dp_server; /* KUMA_DP_SERVER_PORT */
    /* dpServer.authn.dpProxy.type (KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE):
     * "dpToken" (default) or "none". */
    char *dp_authn_type;
    /* xdsServer.dataplaneDeregistrationDelay
     * (KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY), a Go duration. */
    char *dp_deregistration_delay;
    struct listener_config mads;        /* KUMA_MONITORING_ASSIGNMENT_SERVER_PORT */
    struct listener_config diagnostics; /* KUMA_DIAGNOSTICS_SERVER_PORT */
    char *store_type;                   /* KUMA_STORE_TYPE: sqlite | memory */
    char *sqlite_path;                  /* KUMA_STORE_SQLITE_PATH */
    int store_unsafe_delete;            /* KUMA_STORE_UNSAFE_DELETE */
    int skip_mesh_creation;             /* KUMA_DEFAULTS_SKIP_MESH_CREATION */
    int create_mesh_routing_resources;  /* KUMA_DEFAULTS_CREATE_MESH_ROUTING_RESOURCES */
    char *log_level;                    /* KUMA_LOG_LEVEL (also --log-level) */
    char *environment;                  /* KUMA_ENVIRONMENT: universal */
    char *mode;                         /* KUMA_MODE: zone */
};

/* Fills c with defaults, then the file (if path is not NULL), then the
 * environment. Returns -1 with e naming the bad key or variable. */
int config_load(struct cp_config *c, const char *path, struct err *e);
void config_free(struct cp_config *c);

/* The effective configuration in Kuma's shape, for GET /config. */
json_t *config_to_json(const struct cp_config *c);

#endif
