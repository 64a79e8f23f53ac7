/*
 * kuma-dp — the data-plane proxy's command line: flags, validation and
 * wiring, nothing else.
 *
 * `kuma-dp run` parses and validates Kuma's flags, starts the proxy engine
 * and the admin endpoint, and connects to kuma-cp over ADS (src/dp/
 * xds_client.c), which fills the configuration. It never reads proxy
 * configuration from files.
 * SIGTERM/SIGINT drain: leave kuma-cp, keep accepting for a short grace while
 * peers drop this endpoint, then stop accepting, let connections finish within
 * --drain-time, exit.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "dp/admin.h"
#include "dp/engine.h"
#include "dp/tls.h"
/* --- xDS client wiring (branch dpxds) --- */
#include <jansson.h>

#include "core/codec.h"
#include "ctl/mustache.h"
#include "dp/xds_client.h"
/* --- end xDS client wiring --- */

#define MAX_VARS 64

struct run_opts {
    const char *cp_address, *name, *mesh, *proxy_type, *dataplane, *dataplane_file,
        *dataplane_token, *dataplane_token_file, *ca_cert_file, *log_level;
    const char *vars[MAX_VARS];
    int n_vars;
    long admin_port;
    long concurrency;
    long drain_ms;
};

static void usage(FILE *f)
{
    fputs("Usage:\n"
          "  kuma-dp run [flags]\n"
          "  kuma-dp version\n\n"
          "Flags of run:\n"
          "      --cp-address string            URL of the Control Plane Dataplane Server "
          "(default \"https://localhost:5678\")\n"
          "      --name string                  Name of the Dataplane\n"
          "      --mesh string                  Mesh that Dataplane belongs to\n"
          "      --proxy-type string            type of the Dataplane (\"dataplane\", "
          "\"ingress\", \"egress\") (default \"dataplane\")\n"
          "      --dataplane string             Dataplane template to apply (YAML or JSON)\n"
          "  -d, --dataplane-file string        Path to Dataplane template to apply (YAML or "
          "JSON)\n"
          "  -v, --dataplane-var key=value      Variables to replace Dataplane template\n"
          "      --dataplane-token string       Dataplane Token\n"
          "      --dataplane-token-file string  Path to a file with dataplane token\n"
          "      --ca-cert-file string          Path to CA cert by which connection to the "
          "Control Plane will be verified if HTTPS is used\n"
          "      --admin-port int               Port of the proxy's admin endpoint on "
          "127.0.0.1 (default 9901; 0 = ephemeral)\n"
          "      --concurrency int              Number of worker threads (default: number of "
          "CPUs)\n"
          "      --drain-time duration          drain time for connections on shutdown "
          "(default 30s)\n"
          "      --log-level string             off|error|warn|info|debug (default info)\n",
          f);
}

/* Parses Go-style durations used by Kuma's flags: "30s", "500ms", "1m", "1m30s". */
static int parse_duration_ms(const char *s, long *out)
{
    long total = 0;
    if (!*s)
        return -1;
    while (*s) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v < 0)
            return -1;
        double mult;
        if (strncmp(end, "ms", 2) == 0) {
            mult = 1;
            end += 2;
        } else if (*end == 's') {
            mult = 1000;
            end++;
        } else if (*end == 'm') {
            mult = 60000;
            end++;
        } else if (*end == 'h') {
            mult = 3600000;
            end++;
        } else {
            return -1;
        }
        total += (long)(v * mult);
        if (total > 24L * 3600 * 1000)
            return -1;
        s = end;
    }
    *out = total;
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int readable(const char *flag, const char *path)
{
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "Error: %s: cannot read %s: %s\n", flag, path, strerror(errno));
        return 0;
    }
    return 1;
}

static int validate(struct run_opts *o)
{
    if (strncmp(o->cp_address, "https://", 8) != 0 && strncmp(o->cp_address, "http://", 7) != 0) {
        fprintf(stderr, "Error: --cp-address: url must start with http:// or https:// (got %s)\n",
                o->cp_address);
        return -1;
    }
    if (strcmp(o->proxy_type, "dataplane") && strcmp(o->proxy_type, "ingress") &&
        strcmp(o->proxy_type, "egress")) {
        fprintf(stderr,
                "Error: --proxy-type: should be one of \"dataplane\", \"ingress\", \"egress\"\n");
        return -1;
    }
    if (o->dataplane && o->dataplane_file) {
        fprintf(stderr, "Error: --dataplane and --dataplane-file cannot be used together\n");
        return -1;
    }
    if (o->dataplane_token && o->dataplane_token_file) {
        fprintf(stderr,
                "Error: --dataplane-token and --dataplane-token-file cannot be used together\n");
        return -1;
    }
    if (o->n_vars && !o->dataplane && !o->dataplane_file) {
        fprintf(stderr, "Error: --dataplane-var needs --dataplane or --dataplane-file\n");
        return -1;
    }
    for (int i = 0; i < o->n_vars; i++) {
        const char *eq = strchr(o->vars[i], '=');
        if (!eq || eq == o->vars[i]) {
            fprintf(stderr, "Error: --dataplane-var: %s must be formatted as key=value\n",
                    o->vars[i]);
            return -1;
        }
    }
    if (!o->dataplane && !o->dataplane_file && strcmp(o->proxy_type, "dataplane") == 0) {
        if (!o->name || !*o->name) {
            fprintf(stderr, "Error: --name must be non-empty (or give a Dataplane template)\n");
            return -1;
        }
        if (!o->mesh || !*o->mesh) {
            fprintf(stderr, "Error: --mesh must be non-empty (or give a Dataplane template)\n");
            return -1;
        }
    }
    if (o->dataplane_file && !readable("--dataplane-file", o->dataplane_file))
        return -1;
    if (o->dataplane_token_file && !readable("--dataplane-token-file", o->dataplane_token_file))
        return -1;
    if (o->ca_cert_file && !readable("--ca-cert-file", o->ca_cert_file))
        return -1;
    if (strncmp(o->cp_address, "https://", 8) != 0 && o->ca_cert_file) {
        fprintf(stderr, "Error: --ca-cert-file is only used with an https:// --cp-address\n");
        return -1;
    }
    return 0;
}

/* --- xDS client wiring (branch dpxds) ------------------------------------------------------
 * The Dataplane template is rendered with --dataplane-var (Kuma's mustache
 * rendering, shared with kumactl apply -v), parsed for its name, mesh and
 * networking.admin.port, and sent as node metadata `dataplane.resource`. */

struct xds_setup {
    char *resource; /* rendered Dataplane text, or NULL */
    char *mesh, *name;
    char *token, *ca_pem;
    char *target; /* host:port */
    long admin_port;
};

static void xds_setup_free(struct xds_setup *x)
{
    free(x->resource);
    free(x->mesh);
    free(x->name);
    free(x->token);
    free(x->ca_pem);
    free(x->target);
}

static int xds_setup(const struct run_opts *o, struct xds_setup *x)
{
    struct err e = {{0}};
    memset(x, 0, sizeof(*x));
    x->admin_port = -1;
    char *tmpl = NULL;
    size_t len = 0;
    if (o->dataplane_file) {
        tmpl = read_file(o->dataplane_file, 1 << 20, &len, &e);
        if (!tmpl) {
            fprintf(stderr, "Error: --dataplane-file: %s\n", e.msg);
            return -1;
        }
    } else if (o->dataplane) {
        tmpl = xstrdup(o->dataplane);
        len = strlen(tmpl);
    }
    if (tmpl) {
        char *keys[MAX_VARS], *vals[MAX_VARS];
        for (int i = 0; i < o->n_vars; i++) {
            const char *eq = strchr(o->vars[i], '=');
            keys[i] = xstrndup(o->vars[i], (size_t)(eq - o->vars[i]));
            vals[i] = xstrdup(eq + 1);
        }
        json_t *ctx = mustache_context(keys, vals, (size_t)o->n_vars);
        for (int i = 0; i < o->n_vars; i++) {
            free(keys[i]);
            free(vals[i]);
        }
        char *msg = NULL;
        int rc = mustache_render(tmpl, len, ctx, 1 << 20, &x->resource, &msg);
        json_decref(ctx);
        free(tmpl);
        if (rc != 0) {
            fprintf(stderr, "Error: Dataplane template: %s\n", msg ? msg : "cannot render");
            free(msg);
            return -1;
        }
        json_t *doc = NULL;
        if (codec_parse_one(x->resource, strlen(x->resource), &doc, &e) != 0) {
            fprintf(stderr, "Error: Dataplane template: %s\n", e.msg);
            return -1;
        }
        const char *n = json_string_value(json_object_get(doc, "name"));
        const char *m = json_string_value(json_object_get(doc, "mesh"));
        json_t *port =
            json_object_get(json_object_get(json_object_get(doc, "networking"), "admin"), "port");
        if (n && *n)
            x->name = xstrdup(n);
        if (m && *m)
            x->mesh = xstrdup(m);
        if (json_is_integer(port) && json_integer_value(port) >= 0 &&
            json_integer_value(port) <= 65535)
            x->admin_port = (long)json_integer_value(port);
        json_decref(doc);
    }
    /* The flags name the proxy when given; else the Dataplane does. */
    if (o->name && *o->name) {
        free(x->name);
        x->name = xstrdup(o->name);
    }
    if (o->mesh && *o->mesh) {
        free(x->mesh);
        x->mesh = xstrdup(o->mesh);
    }
    if (!x->name || !x->mesh) {
        fprintf(stderr, "Error: the Dataplane needs a name and a mesh (--name, --mesh or the "
                        "template)\n");
        return -1;
    }
    if (o->dataplane_token_file) {
        x->token = read_file(o->dataplane_token_file, 64 * 1024, &len, &e);
        if (!x->token) {
            fprintf(stderr, "Error: --dataplane-token-file: %s\n", e.msg);
            return -1;
        }
        while (len > 0 &&
               (x->token[len - 1] == '\n' || x->token[len - 1] == '\r' || x->token[len - 1] == ' '))
            x->token[--len] = 0;
    } else if (o->dataplane_token) {
        x->token = xstrdup(o->dataplane_token);
    }
    if (o->ca_cert_file) {
        x->ca_pem = read_file(o->ca_cert_file, 1 << 20, &len, &e);
        if (!x->ca_pem) {
            fprintf(stderr, "Error: --ca-cert-file: %s\n", e.msg);
            return -1;
        }
    }
    const char *hp = strstr(o->cp_address, "://") + 3;
    size_t hl = strcspn(hp, "/");
    x->target = xstrndup(hp, hl);
    if (!strchr(x->target, ':') || x->target[strlen(x->target) - 1] == ']') {
        char *t = xasprintf("%s:5678", x->target);
        free(x->target);
        x->target = t;
    }
    return 0;
}

static int xds_apply(void *ctx, struct dp_config *cfg, struct err *e)
{
    return dp_engine_apply(ctx, cfg, e);
}
/* --- end xDS client wiring --- */

static int cmd_run(int argc, char **argv)
{
    struct run_opts o = {
        .cp_address = getenv("KUMA_CONTROL_PLANE_URL"),
        .name = getenv("KUMA_DATAPLANE_NAME"),
        .mesh = getenv("KUMA_DATAPLANE_MESH"),
        .proxy_type = "dataplane",
        .dataplane_token_file = getenv("KUMA_DATAPLANE_RUNTIME_TOKEN_PATH"),
        .ca_cert_file = getenv("KUMA_CONTROL_PLANE_CA_CERT_FILE"),
        .log_level = "info",
        .admin_port = -1, /* unset: the Dataplane's networking.admin.port, else 9901 */
        .drain_ms = 30000,
    };
    if (!o.cp_address)
        o.cp_address = "https://localhost:5678";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char flag[64];
        const char *eq = strchr(a, '=');
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof(flag)) {
            snprintf(flag, sizeof(flag), "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else if (a[0] == '-') {
            snprintf(flag, sizeof(flag), "%s", a);
            if (i + 1 >= argc) {
                fprintf(stderr, "Error: flag needs an argument: %s\n", a);
                return 1;
            }
            val = argv[++i];
        } else {
            fprintf(stderr, "Error: unknown command \"%s\" for \"kuma-dp run\"\n", a);
            return 1;
        }
        const char **dst = NULL;
        if (!strcmp(flag, "--cp-address"))
            dst = &o.cp_address;
        else if (!strcmp(flag, "--name"))
            dst = &o.name;
        else if (!strcmp(flag, "--mesh"))
            dst = &o.mesh;
        else if (!strcmp(flag, "--proxy-type"))
            dst = &o.proxy_type;
        else if (!strcmp(flag, "--dataplane"))
            dst = &o.dataplane;
        else if (!strcmp(flag, "--dataplane-file") || !strcmp(flag, "-d"))
            dst = &o.dataplane_file;
        else if (!strcmp(flag, "--dataplane-token"))
            dst = &o.dataplane_token;
        else if (!strcmp(flag, "--dataplane-token-file"))
            dst = &o.dataplane_token_file;
        else if (!strcmp(flag, "--ca-cert-file"))
            dst = &o.ca_cert_file;
        else if (!strcmp(flag, "--log-level"))
            dst = &o.log_level;
        if (dst) {
            *dst = val;
        } else if (!strcmp(flag, "--dataplane-var") || !strcmp(flag, "-v")) {
            if (o.n_vars == MAX_VARS) {
                fprintf(stderr, "Error: too many --dataplane-var (max %d)\n", MAX_VARS);
                return 1;
            }
            o.vars[o.n_vars++] = val;
        } else if (!strcmp(flag, "--admin-port")) {
            if (parse_long(val, 0, 65535, &o.admin_port) != 0) {
                fprintf(stderr, "Error: --admin-port: invalid port %s\n", val);
                return 1;
            }
        } else if (!strcmp(flag, "--concurrency")) {
            if (parse_long(val, 0, 64, &o.concurrency) != 0) {
                fprintf(stderr, "Error: --concurrency: must be 0..64, got %s\n", val);
                return 1;
            }
        } else if (!strcmp(flag, "--drain-time")) {
            if (parse_duration_ms(val, &o.drain_ms) != 0) {
                fprintf(stderr, "Error: --drain-time: invalid duration %s\n", val);
                return 1;
            }
        } else {
            fprintf(stderr, "Error: unknown flag: %s\n", flag);
            return 1;
        }
    }
    if (strcmp(o.log_level, "off") != 0) {
        int lvl = log_parse_level(o.log_level);
        if (lvl < 0) {
            fprintf(stderr, "Error: --log-level: unknown level %s\n", o.log_level);
            return 1;
        }
        log_set_level((enum log_level)lvl);
    } else {
        log_set_level(LOG_ERROR);
    }
    if (validate(&o) != 0)
        return 1;

    /* Signals are taken by sigwait() in this thread; block them before any
     * thread starts so none of them receives one. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* --- xDS client wiring (branch dpxds) --- */
    struct xds_setup xs;
    if (xds_setup(&o, &xs) != 0) {
        xds_setup_free(&xs);
        return 1;
    }
    if (o.admin_port < 0)
        o.admin_port = xs.admin_port >= 0 ? xs.admin_port : 9901;
    /* --- end xDS client wiring --- */

    struct err e = {{0}};
    struct dp_engine *eng = NULL;
    struct dp_admin *adm = NULL;
    /* kuma-dp generates no keys (the control plane issues them), so it can
     * take OpenSSL 3.0's faster EC certificate parsing (dp/tls.h). */
    dp_tls_enable_fast_ec_keys();
    struct dp_engine_opts eo = {.workers = (int)o.concurrency,
                                .drain_timeout_ms = (uint32_t)(o.drain_ms ? o.drain_ms : 1)};
    if (dp_engine_new(&eo, &eng, &e) != 0) {
        fprintf(stderr, "Error: could not start the proxy engine: %s\n", e.msg);
        xds_setup_free(&xs);
        return 1;
    }
    if (dp_admin_start(eng, (int)o.admin_port, &adm, &e) != 0) {
        fprintf(stderr, "Error: %s\n", e.msg);
        dp_engine_free(eng);
        xds_setup_free(&xs);
        return 1;
    }
    log_info("kuma-dp", "admin endpoint listening on 127.0.0.1:%d", dp_admin_port(adm));
    /* --- xDS client wiring (branch dpxds) --- */
    struct dp_xds_client *xc = NULL;
    struct dp_xds_client_opts xo = {
        .target = xs.target,
        .ca_cert_pem = strncmp(o.cp_address, "https://", 8) == 0 ? xs.ca_pem : NULL,
        .token = xs.token,
        .mesh = xs.mesh,
        .name = xs.name,
        .dataplane_resource = xs.resource,
        .admin_port = dp_admin_port(adm),
        .apply = xds_apply,
        .ctx = eng,
    };
    /* ADS keepalive (docs/dp-xds.md "Keepalive"): this project's variables,
     * Go durations; PINGs no closer than kuma-cp accepts (5 s). */
    static const struct {
        const char *env;
        long min_ms;
    } ka[2] = {{"KUMA_DP_XDS_KEEPALIVE_TIME", 5000}, {"KUMA_DP_XDS_KEEPALIVE_TIMEOUT", 1000}};
    uint32_t *ka_dst[2] = {&xo.keepalive_time_ms, &xo.keepalive_timeout_ms};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(ka[i].env);
        long ms;
        if (!v || !*v)
            continue;
        if (parse_duration_ms(v, &ms) != 0 || ms < ka[i].min_ms || ms > 3600000) {
            fprintf(stderr, "Error: %s: invalid duration %s (from %lds to 1h)\n", ka[i].env, v,
                    ka[i].min_ms / 1000);
            dp_admin_stop(adm);
            dp_engine_free(eng);
            xds_setup_free(&xs);
            return 1;
        }
        *ka_dst[i] = (uint32_t)ms;
    }
    if (strncmp(o.cp_address, "https://", 8) == 0 && !xs.ca_pem)
        log_warn("kuma-dp", "no --ca-cert-file: kuma-cp's certificate is verified against the "
                            "system's trust store");
    if (dp_xds_client_start(&xo, &xc, &e) != 0) {
        fprintf(stderr, "Error: %s\n", e.msg);
        dp_admin_stop(adm);
        dp_engine_free(eng);
        xds_setup_free(&xs);
        return 1;
    }
    log_info("kuma-dp", "connecting to %s as %s.%s", o.cp_address, xs.mesh, xs.name);
    /* --- end xDS client wiring --- */
    /* A line a supervisor or a test can parse for the ephemeral port. */
    printf("admin port: %d\n", dp_admin_port(adm));
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    log_info("kuma-dp", "received %s: draining for up to %ld ms",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", o.drain_ms);
    dp_xds_client_stop(xc); /* xDS (dpxds): no configuration change during the drain */
    xds_setup_free(&xs);
    /* Closing the ADS stream is how kuma-cp learns this proxy is leaving; it
     * then takes the endpoint out of its peers' EDS. Keep accepting for a
     * short grace (a quarter of the drain time, at most 2 s) so connections
     * peers open meanwhile are served instead of reset, then stop accepting
     * and let the open ones finish. */
    long grace_ms = o.drain_ms / 4 < 2000 ? o.drain_ms / 4 : 2000;
    struct timespec grace = {grace_ms / 1000, (grace_ms % 1000) * 1000000L};
    while (nanosleep(&grace, &grace) < 0 && errno == EINTR)
        ;
    long forced = dp_engine_drain(eng, (uint32_t)(o.drain_ms - grace_ms));
    if (forced)
        log_warn("kuma-dp", "%ld connections were still open at the drain deadline", forced);
    dp_admin_stop(adm);
    dp_engine_free(eng);
    log_info("kuma-dp", "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "version")) {
        puts("kuma-dp: proxy engine with ADS client");
        return 0;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "Error: unknown command \"%s\" for \"kuma-dp\"\n", argv[1]);
    usage(stderr);
    return 1;
}
