/*
 * kuma-cp — the control plane: flags, configuration and wiring only.
 *
 *   kuma-cp run [-c FILE] [--log-level LEVEL]
 *   kuma-cp version
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "api/server.h"
#include "ca/admin.h"
#include "ca/tlsgen.h"
#include "ca/token.h"
#include "core/config.h"
#include "core/log.h"
#include "mesh/events.h"
#include "mesh/identity.h"
#include "mesh/manager.h"
#include "store/store.h"
#include "api/inspect.h"
#include "xds/server.h"

#define KUMA_CP_VERSION "2.14.3"

static void usage(FILE *f)
{
    fprintf(f, "Universal Control Plane for Envoy-based Service Mesh\n\n"
               "Usage:\n"
               "  kuma-cp [command]\n\n"
               "Available Commands:\n"
               "  run         Launch Control Plane\n"
               "  version     Print version\n\n"
               "Flags for run:\n"
               "  -c, --config-file string   configuration file\n"
               "      --log-level string     log level: one of debug|info|warn|error (default "
               "\"info\")\n");
}

static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, mode) < 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static char *random_uuid(void)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)rand();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                     b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                     b[13], b[14], b[15]);
}

/* The cluster id survives restarts with the durable store. */
static char *load_cluster_id(const struct cp_config *cfg)
{
    if (strcmp(cfg->store_type, "memory") == 0)
        return random_uuid();
    char *path = xasprintf("%s/cluster-id", cfg->work_dir);
    struct err e;
    size_t len;
    char *id = read_file(path, 128, &len, NULL);
    if (id && len >= 36) {
        id[36] = '\0';
        free(path);
        return id;
    }
    free(id);
    id = random_uuid();
    if (write_file_atomic(path, id, strlen(id), 0600, &e) < 0)
        log_warn("kuma-cp", "could not persist the cluster id: %s", e.msg);
    free(path);
    return id;
}

/* kuma-cp's own certificate: generated once into the work dir unless the
 * configuration names one, and kept across restarts. */
static int ensure_cp_cert(const struct cp_config *cfg, struct err *e)
{
    if (access(cfg->tls_cert_file, R_OK) == 0 && access(cfg->tls_key_file, R_OK) == 0)
        return 0;
    if (access(cfg->tls_cert_file, F_OK) == 0 || access(cfg->tls_key_file, F_OK) == 0)
        return err_set(e, "%s or %s exists but cannot be read", cfg->tls_cert_file,
                       cfg->tls_key_file);
    char *cert = NULL, *key = NULL;
    if (ca_generate_cp_cert(NULL, CA_KEY_DEFAULT, &cert, &key, e) < 0)
        return -1;
    int rc = write_file_atomic(cfg->tls_key_file, key, strlen(key), 0600, e);
    if (rc == 0)
        rc = write_file_atomic(cfg->tls_cert_file, cert, strlen(cert), 0600, e);
    if (rc == 0)
        log_info("kuma-cp",
                 "generated the control plane certificate %s (give it to proxies "
                 "with --ca-cert-file)",
                 cfg->tls_cert_file);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    free(cert);
    return rc;
}

/* --- identity: the admin user token --- */

struct cp_admin_pki {
    char *ca_cert, *ca_key;         /* GlobalSecret envoy-admin-ca */
    char *client_cert, *client_key; /* kuma-cp's, issued at start */
};

#define ADMIN_TOKEN_SECRET   "admin-user-token"
#define ADMIN_TOKEN_VALID_NS ((int64_t)10 * 365 * 24 * 3600 * 1000000000LL)

/* Fetches GlobalSecret name, creating it with make() when it is missing.
 * Another writer may win the creation; the stored value is what is
 * returned either way. */
static int global_secret_once(struct store *st, const char *name,
                              int (*make)(const char *arg, char **out, struct err *e),
                              const char *arg, char **data, size_t *len, int *created,
                              struct err *e)
{
    *created = 0;
    int rc = identity_secret_fetch(st, "", name, data, len, e);
    if (rc != CA_NOT_FOUND)
        return rc;
    char *value = NULL;
    if (make(arg, &value, e) < 0)
        return -1;
    struct changes ch = {0};
    rc = identity_put_secret_once(st, "", name, value, strlen(value), &ch, e);
    changes_free(&ch);
    OPENSSL_cleanse(value, strlen(value));
    free(value);
    if (rc < 0)
        return -1;
    *created = rc == 0;
    rc = identity_secret_fetch(st, "", name, data, len, e);
    return rc == CA_NOT_FOUND ? err_set(e, "GlobalSecret %s vanished after it was created", name)
                              : rc;
}

static int make_signing_key(const char *arg, char **out, struct err *e)
{
    (void)arg;
    return token_signing_key_generate(out, e);
}

static int make_admin_token(const char *key_pem, char **out, struct err *e)
{
    return token_admin_issue(key_pem, TOKEN_DEFAULT_KID, ADMIN_TOKEN_VALID_NS, out, e);
}

/*
 * Kuma's start-up for API authentication (pkg/plugins/authn/api-server/
 * tokens): GlobalSecret user-token-signing-key-1, and with
 * bootstrapAdminToken GlobalSecret admin-user-token, an admin user token
 * valid for 10 years, both created once and kept. The token is also written
 * to <workDir>/admin-token, readable by its owner only, so an operator on
 * the machine can configure kumactl without a request to the API.
 */
static int ensure_admin_token(struct store *st, const struct cp_config *cfg, struct err *e)
{
    char *key = NULL, *token = NULL;
    size_t klen = 0, tlen = 0;
    int created = 0, rc = -1;
    char *key_name = token_user_signing_key_name(TOKEN_DEFAULT_KID);
    if (global_secret_once(st, key_name, make_signing_key, NULL, &key, &klen, &created, e) < 0)
        goto out;
    if (created)
        log_info("tokens", "created the user token signing key (GlobalSecret %s)", key_name);
    if (!cfg->api_authn_bootstrap_admin) {
        rc = 0;
        goto out;
    }
    if (global_secret_once(st, ADMIN_TOKEN_SECRET, make_admin_token, key, &token, &tlen, &created,
                           e) < 0)
        goto out;
    char *path = xasprintf("%s/admin-token", cfg->work_dir);
    size_t flen = 0;
    char *on_disk = read_file(path, TOKEN_MAX_LEN + 1, &flen, NULL);
    rc = 0;
    if (!on_disk || flen != tlen || memcmp(on_disk, token, tlen) != 0)
        rc = write_file_atomic(path, token, tlen, 0600, e);
    if (on_disk) {
        OPENSSL_cleanse(on_disk, flen);
        free(on_disk);
    }
    if (rc == 0)
        log_info("tokens",
                 "bootstrap of Admin User Token is enabled. To extract admin credentials read %s "
                 "(owner only) or execute 'curl http://localhost:%d/%s/%s | jq -r .data | base64 "
                 "-d' on this machine. You configure kumactl with them 'kumactl config "
                 "control-planes add --auth-type=tokens --auth-conf token=YOUR_TOKEN'. To disable "
                 "bootstrap of Admin User Token set "
                 "KUMA_API_SERVER_AUTHN_TOKENS_BOOTSTRAP_ADMIN_TOKEN to false.",
                 path, cfg->api_http.port, TYPE_GLOBAL_SECRET.plural, ADMIN_TOKEN_SECRET);
    free(path);
out:
    if (key)
        OPENSSL_cleanse(key, klen);
    if (token)
        OPENSSL_cleanse(token, tlen);
    free(key);
    free(token);
    free(key_name);
    return rc;
}

/* --- envoy admin: the admin CA and kuma-cp's client certificate --- */

static int make_admin_ca(const char *arg, char **out, struct err *e)
{
    (void)arg;
    char *cert = NULL, *key = NULL;
    if (ca_admin_generate(&cert, &key, e) < 0)
        return -1;
    *out = ca_admin_secret_value(cert, key);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    free(cert);
    return 0;
}

/* Kuma's EnsureEnvoyAdminCaExists: GlobalSecret envoy-admin-ca, created
 * once and kept; then kuma-cp's client certificate (SAN kuma-cp) issued from
 * it for this run. The proxies' admin listeners require that certificate. */
static int ensure_admin_ca(struct store *st, struct cp_admin_pki *pki, struct err *e)
{
    char *data = NULL;
    size_t len = 0;
    int created = 0;
    if (global_secret_once(st, CA_ADMIN_SECRET, make_admin_ca, NULL, &data, &len, &created, e) < 0)
        return -1;
    if (created)
        log_info("kuma-cp", "created the envoy admin CA (GlobalSecret %s)", CA_ADMIN_SECRET);
    int rc = ca_admin_split(data, len, &pki->ca_cert, &pki->ca_key, e);
    OPENSSL_cleanse(data, len);
    free(data);
    if (rc < 0)
        return -1;
    const char *san = CA_ADMIN_CLIENT_SAN;
    return ca_admin_issue(pki->ca_cert, pki->ca_key, 0, &san, 1, &pki->client_cert,
                          &pki->client_key, e);
}

static void admin_pki_free(struct cp_admin_pki *pki)
{
    if (pki->ca_key)
        OPENSSL_cleanse(pki->ca_key, strlen(pki->ca_key));
    if (pki->client_key)
        OPENSSL_cleanse(pki->client_key, strlen(pki->client_key));
    free(pki->ca_cert);
    free(pki->ca_key);
    free(pki->client_cert);
    free(pki->client_key);
}

/* Starts the HTTPS API listener with the configured (or kuma-cp's own)
 * certificate. */
static int start_https(const struct api_deps *deps, const struct cp_config *cfg,
                       struct api_server **out, int *port, struct err *e)
{
    size_t clen = 0, klen = 0;
    char *cert = read_file(cfg->api_https_cert_file, 256 * 1024, &clen, e);
    if (!cert)
        return -1;
    char *key = read_file(cfg->api_https_key_file, 256 * 1024, &klen, e);
    if (!key) {
        free(cert);
        return -1;
    }
    int rc = api_server_start_tls(deps, cfg->api_https.interface, cfg->api_https.port, cert, key,
                                  out, port, e);
    OPENSSL_cleanse(key, klen);
    free(key);
    free(cert);
    return rc;
}

/* --- end identity --- */

static int run(int argc, char **argv)
{
    const char *config_file = NULL, *log_level = NULL;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config-file") == 0) && i + 1 < argc)
            config_file = argv[++i];
        else if (str_has_prefix(argv[i], "--config-file="))
            config_file = argv[i] + strlen("--config-file=");
        else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc)
            log_level = argv[++i];
        else if (str_has_prefix(argv[i], "--log-level="))
            log_level = argv[i] + strlen("--log-level=");
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "Error: unknown flag: %s\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }

    struct cp_config cfg;
    struct err e;
    if (config_load(&cfg, config_file, &e) < 0) {
        fprintf(stderr, "Error: could not load the configuration: %s\n", e.msg);
        return 1;
    }
    int lvl = log_parse_level(log_level ? log_level : cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "Error: invalid log level \"%s\"\n", log_level ? log_level : cfg.log_level);
        config_free(&cfg);
        return 1;
    }
    log_set_level((enum log_level)lvl);

    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    umask(077);
    if (mkdir_p(cfg.work_dir, 0700) < 0) {
        log_error("kuma-cp", "could not create the work directory %s: %s", cfg.work_dir,
                  strerror(errno));
        config_free(&cfg);
        return 1;
    }

    if (ensure_cp_cert(&cfg, &e) < 0) {
        log_error("kuma-cp", "could not set up the control plane certificate: %s", e.msg);
        config_free(&cfg);
        return 1;
    }

    int rc = 1;
    struct store *st = NULL;
    struct event_bus *bus = NULL;
    struct manager *mgr = NULL;
    struct api_server *api = NULL, *diag = NULL, *api_tls = NULL;
    struct xds_server *xds = NULL; /* xDS */
    char *xds_tls_cert = NULL, *xds_tls_key = NULL;
    char *cluster_id = NULL;
    struct cp_admin_pki admin_pki = {0};
    static volatile int ready;
    enum store_kind kind = STORE_KIND_SQLITE;
    store_kind_parse(cfg.store_type, &kind); /* config_load accepted only known kinds */
    if (store_open(kind, cfg.sqlite_path, &st, &e) < 0) {
        log_error("kuma-cp", "could not open the store: %s", e.msg);
        goto out;
    }
    log_info("kuma-cp", "store: %s%s%s", cfg.store_type, kind == STORE_KIND_SQLITE ? " at " : "",
             kind == STORE_KIND_SQLITE ? cfg.sqlite_path : "");

    bus = event_bus_new();
    struct manager_config mc = {.create_mesh_routing_resources = cfg.create_mesh_routing_resources,
                                .unsafe_delete = cfg.store_unsafe_delete};
    mgr = manager_new(st, bus, &mc);

    if (cfg.skip_mesh_creation) {
        log_info("defaults", "skipping default Mesh creation because "
                             "KUMA_DEFAULTS_SKIP_MESH_CREATION is set to true");
    } else {
        struct mgr_result mr = {0};
        if (manager_ensure_default_mesh(mgr, &mr) != MGR_OK) {
            log_error("defaults", "could not create the default mesh: %s", mr.msg);
            mgr_result_free(&mr);
            goto out;
        }
        mgr_result_free(&mr);
    }

    if (ensure_admin_token(st, &cfg, &e) < 0) {
        log_error("tokens", "could not set up API authentication: %s", e.msg);
        goto out;
    }

    if (ensure_admin_ca(st, &admin_pki, &e) < 0) {
        log_error("kuma-cp", "could not set up the envoy admin CA: %s", e.msg);
        goto out;
    }
    api_inspect_set_admin_tls(admin_pki.ca_cert, admin_pki.client_cert, admin_pki.client_key);

    char hostname[256] = "localhost";
    gethostname(hostname, sizeof(hostname) - 1);
    char instance_id[300];
    snprintf(instance_id, sizeof(instance_id), "%s-%04x", hostname, (unsigned)getpid() & 0xffff);
    cluster_id = load_cluster_id(&cfg);

    struct api_deps deps = {.mgr = mgr,
                            .cfg = &cfg,
                            .hostname = hostname,
                            .instance_id = instance_id,
                            .cluster_id = cluster_id};
    int api_port = 0, diag_port = 0;
    if (cfg.api_http.enabled) {
        if (api_server_start(&deps, cfg.api_http.interface, cfg.api_http.port, &api, &api_port,
                             &e) < 0) {
            log_error("api", "could not start the API server: %s", e.msg);
            goto out;
        }
        log_info("api", "API server listening on %s:%d", cfg.api_http.interface, api_port);
    }
    int api_tls_port = 0;
    if (cfg.api_https.enabled) {
        if (start_https(&deps, &cfg, &api_tls, &api_tls_port, &e) < 0) {
            log_error("api", "could not start the HTTPS API server: %s", e.msg);
            goto out;
        }
        log_info("api", "API server listening on %s:%d (HTTPS, certificate %s)",
                 cfg.api_https.interface, api_tls_port, cfg.api_https_cert_file);
    }
    if (diagnostics_server_start(cfg.diagnostics.interface, cfg.diagnostics.port, &ready, &diag,
                                 &diag_port, &e) < 0) {
        log_error("diagnostics", "could not start the diagnostics server: %s", e.msg);
        goto out;
    }
    log_info("diagnostics", "diagnostics server listening on %s:%d", cfg.diagnostics.interface,
             diag_port);

    /* --- xDS: the ADS server on the DP-server port --- */
    int xds_port = 0;
    if (cfg.dp_server.enabled) {
        struct xds_server_config xc;
        if (xds_server_config_init(&xc, &e) < 0) {
            log_error("xds", "%s", e.msg);
            goto out;
        }
        xc.address = cfg.dp_server.interface;
        xc.port = cfg.dp_server.port;
        xc.instance_id = instance_id;
        if (xds_parse_duration_ms(cfg.dp_deregistration_delay, &xc.deregistration_delay_ms) < 0) {
            log_error("xds", "xdsServer.dataplaneDeregistrationDelay: invalid duration \"%s\"",
                      cfg.dp_deregistration_delay);
            goto out;
        }
        /* TLS with kuma-cp's own certificate; proxies trust it with
         * --ca-cert-file <workDir>/kuma-cp.crt. */
        size_t tls_len;
        xds_tls_cert = read_file(cfg.tls_cert_file, 256 * 1024, &tls_len, &e);
        if (xds_tls_cert)
            xds_tls_key = read_file(cfg.tls_key_file, 256 * 1024, &tls_len, &e);
        if (!xds_tls_cert || !xds_tls_key) {
            log_error("xds", "could not read kuma-cp's TLS certificate: %s", e.msg);
            goto out;
        }
        xc.tls_cert_pem = xds_tls_cert;
        xc.admin_ca_cert_pem = admin_pki.ca_cert;
        xc.admin_ca_key_pem = admin_pki.ca_key;
        xc.tls_key_pem = xds_tls_key;
        if (strcmp(cfg.dp_authn_type, "dpToken") == 0) {
            xc.authenticate = xds_auth_dp_token;
            xc.auth_ctx = manager_store(mgr);
        } else if (strcmp(cfg.dp_authn_type, "none") != 0) {
            log_error("xds",
                      "dpServer.authn.dpProxy.type: unknown type \"%s\" "
                      "(dpToken or none)",
                      cfg.dp_authn_type);
            goto out;
        }
        if (xds_server_start(mgr, bus, &xc, &xds, &xds_port, &e) < 0) {
            log_error("xds", "could not start the DP server: %s", e.msg);
            goto out;
        }
        api_inspect_set_xds(xds);
        log_info("xds", "DP server (ADS over TLS, authn %s) listening on %s:%d", cfg.dp_authn_type,
                 cfg.dp_server.interface, xds_port);
    }
    /* --- end xDS --- */

    /* Tell scripts and tests which ports were bound (they may ask for port 0). */
    char *ports_path = xasprintf("%s/listeners", cfg.work_dir);
    char *ports = xasprintf("api-http %d\napi-https %d\ndiagnostics %d\ndp-server %d\n", api_port,
                            api_tls_port, diag_port, xds_port);
    if (write_file_atomic(ports_path, ports, strlen(ports), 0600, &e) < 0)
        log_warn("kuma-cp", "%s", e.msg);
    free(ports_path);
    free(ports);

    ready = 1;
    log_info("kuma-cp", "kuma-cp %s started (pid %d)", KUMA_CP_VERSION, (int)getpid());

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("kuma-cp", "received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ready = 0;
    rc = 0;
out:
    api_server_stop(api);
    api_server_stop(api_tls);
    api_server_stop(diag);
    if (bus)
        event_bus_close(bus);
    api_inspect_set_xds(NULL);
    xds_server_stop(xds); /* after event_bus_close: its event thread waits on the bus */
    if (xds_tls_key)
        explicit_bzero(xds_tls_key, strlen(xds_tls_key));
    free(xds_tls_key);
    free(xds_tls_cert);
    manager_free(mgr);
    event_bus_free(bus);
    store_close(st);
    free(cluster_id);
    api_inspect_set_admin_tls(NULL, NULL, NULL);
    admin_pki_free(&admin_pki);
    config_free(&cfg);
    if (rc == 0)
        log_info("kuma-cp", "stopped");
    return rc;
}

/* glibc gives each thread that allocates its own arena, up to 8 per core.
 * kuma-cp's gRPC threads, generation threads and mesh thread then each keep
 * free space of their own, and with one TLS connection per proxy that was
 * ~10 KB per connection of peak RSS (docs/BENCHMARKS.md). One arena per core
 * (2 to 8) measured no CPU cost. MALLOC_ARENA_MAX or GLIBC_TUNABLES set by
 * the operator win. */
static void malloc_tune(void)
{
    if (getenv("MALLOC_ARENA_MAX") || getenv("GLIBC_TUNABLES"))
        return;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, ncpu < 2 ? 2 : ncpu > 8 ? 8 : (int)ncpu);
}

int main(int argc, char **argv)
{
    malloc_tune();
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (strcmp(argv[1], "run") == 0)
        return run(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("kuma-cp version %s\n", KUMA_CP_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "Error: unknown command \"%s\" for \"kuma-cp\"\n", argv[1]);
    usage(stderr);
    return 1;
}
