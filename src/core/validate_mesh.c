/*
 * validate_mesh — the Mesh rules: the static validator (mesh_validator.go:
 * mtls, logging, tracing, metrics, constraints, zone egress, in that order)
 * and the manager-level checks on create/update (CA backend types, builtin
 * backend names, provided backend cert/key presence, CA change while mTLS is
 * on). Field paths and messages are Kuma 2.14's, including its quirks
 * ("mtls.dpcert..." in lower case, "config" for the logging/tracing conf).
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/resource.h"
#include "core/validate.h"
#include "core/validate_internal.h"
#include "core/verr.h"

/* Names seen so far in a backends list (Go's usedNames map). */
struct names {
    const char **v;
    size_t n;
};

static int names_has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return 1;
    return 0;
}

static void names_add(struct names *s, const char *name, size_t cap)
{
    if (s->n < cap)
        s->v[s->n++] = name;
}

static void validate_mtls(struct verr *ve, struct vpath *p, const json_t *mtls)
{
    const json_t *backends = vj_arr(ve, p, mtls, "backends");
    size_t n = json_array_size(backends);
    if (n > 1)
        vadd_at(ve, p, "backends", "cannot have more than 1 backends");
    struct names used = {xcalloc(n ? n : 1, sizeof(char *)), 0};
    size_t mb = vp_field(p, "backends");
    for (size_t i = 0; i < n; i++) {
        const json_t *b = vj_elem_obj(ve, p, backends, i);
        if (!b)
            continue;
        size_t mi = vp_index(p, i);
        const char *name = vj_str(ve, p, b, "name");
        if (!name)
            name = "";
        if (names_has(&used, name))
            vadd_at(ve, p, "name", "\"%s\" name is already used for another backend", name);
        names_add(&used, name, n);
        vp_reset(p, mi);
    }
    vp_reset(p, mb);
    const char *enabled = vj_str(ve, p, mtls, "enabledBackend");
    if (enabled && *enabled && !names_has(&used, enabled))
        vadd_at(ve, p, "enabledBackend", "has to be set to one of the backends in the mesh");
    for (size_t i = 0; i < n; i++) {
        const json_t *b = json_array_get(backends, i);
        if (!json_is_object(b))
            continue;
        vp_field(p, "backends");
        vp_index(p, i);
        const json_t *dp = vj_obj(ve, p, b, "dpCert");
        const json_t *rot = NULL;
        const char *exp = NULL;
        if (dp) {
            size_t md = vp_field(p, "dpCert");
            rot = vj_obj(ve, p, dp, "rotation");
            if (rot) {
                vp_field(p, "rotation");
                exp = vj_str(ve, p, rot, "expiration");
            }
            vp_reset(p, md);
        }
        vp_reset(p, mb);
        int64_t ns;
        if (dp && kuma_duration_parse(exp ? exp : "", &ns) != 0)
            vadd_at(ve, p, "dpcert.rotation.expiration", "has to be a valid format");
    }
    free(used.v);
}

/* Reads a backend's conf for the logging/tracing checks, whose paths say
 * "config". Returns the object, or NULL (reported when of the wrong type). */
static const json_t *backend_config(struct verr *ve, struct vpath *p, const json_t *b)
{
    const json_t *conf = json_object_get(b, "conf");
    if (conf && !json_is_null(conf) && !json_is_object(conf)) {
        vadd_at(ve, p, "config", "could not parse config: %s", VMSG_OBJECT);
        return NULL;
    }
    return json_is_object(conf) ? conf : NULL;
}

static void validate_logging_backend(struct verr *ve, struct vpath *p, const json_t *b,
                                     const char *name)
{
    if (!*name)
        vadd_at(ve, p, "name", "cannot be empty");
    const char *type = vj_str(ve, p, b, "type");
    if (type && strcmp(type, "file") == 0) {
        const json_t *conf = backend_config(ve, p, b);
        size_t m = vp_field(p, "config");
        const char *path = vj_str(ve, p, conf, "path");
        if (!path || !*path)
            vadd_at(ve, p, "path", "cannot be empty");
        vp_reset(p, m);
    } else if (type && strcmp(type, "tcp") == 0) {
        const json_t *conf = backend_config(ve, p, b);
        size_t m = vp_field(p, "config");
        const char *addr = vj_str(ve, p, conf, "address");
        if (!addr || !*addr) {
            vadd_at(ve, p, "address", "cannot be empty");
        } else {
            char host[256], port[64];
            if (split_host_port(addr, host, sizeof(host), port, sizeof(port)) != 0 || !*host ||
                !*port)
                vadd_at(ve, p, "address", "has to be in format of HOST:PORT");
        }
        vp_reset(p, m);
    } else {
        vadd_at(ve, p, "type", "unknown backend type. Available backends: \"tcp\", \"file\"");
    }
}

typedef void backend_fn(struct verr *ve, struct vpath *p, const json_t *b, const char *name);

/* The shared shape of logging and tracing: named backends (unique names),
 * each checked by check, and a defaultBackend that names one of them. */
static void validate_backends(struct verr *ve, struct vpath *p, const json_t *parent,
                              backend_fn *check, const char *default_msg)
{
    const json_t *backends = vj_arr(ve, p, parent, "backends");
    size_t n = json_array_size(backends);
    struct names used = {xcalloc(n ? n : 1, sizeof(char *)), 0};
    size_t mb = vp_field(p, "backends");
    for (size_t i = 0; i < n; i++) {
        const json_t *b = vj_elem_obj(ve, p, backends, i);
        if (!b)
            continue;
        size_t mi = vp_index(p, i);
        const char *name = vj_str(ve, p, b, "name");
        if (!name)
            name = "";
        check(ve, p, b, name);
        if (names_has(&used, name))
            vadd_at(ve, p, "name", "\"%s\" name is already used for another backend", name);
        names_add(&used, name, n);
        vp_reset(p, mi);
    }
    vp_reset(p, mb);
    const char *def = vj_str(ve, p, parent, "defaultBackend");
    if (def && *def && !names_has(&used, def))
        vadd_at(ve, p, "defaultBackend", "%s", default_msg);
    free(used.v);
}

static void validate_zipkin(struct verr *ve, struct vpath *p, const json_t *conf)
{
    const char *api = vj_str(ve, p, conf, "apiVersion");
    if (api && *api && strcmp(api, "httpJsonV1") != 0 && strcmp(api, "httpJson") != 0 &&
        strcmp(api, "httpProto") != 0)
        vadd_at(ve, p, "apiVersion",
                "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto");
    const char *url = vj_str(ve, p, conf, "url");
    if (!url || !*url) {
        vadd_at(ve, p, "url", "cannot be empty");
        return;
    }
    char port[32];
    if (parse_request_uri(url, port, sizeof(port)) != 0)
        vadd_at(ve, p, "url", "invalid URL");
    else if (!*port)
        vadd_at(ve, p, "url", "port has to be explicitly specified");
}

static void validate_datadog(struct verr *ve, struct vpath *p, const json_t *conf)
{
    const char *addr = vj_str(ve, p, conf, "address");
    if (!addr || !*addr)
        vadd_at(ve, p, "address", "cannot be empty");
    long long port = 0;
    vj_int(ve, p, conf, "port", &port);
    size_t m = vp_field(p, "port");
    v_port(ve, p, port);
    vp_reset(p, m);
}

static void validate_tracing_backend(struct verr *ve, struct vpath *p, const json_t *b,
                                     const char *name)
{
    if (!*name)
        vadd_at(ve, p, "name", "cannot be empty");
    double sampling = 0;
    if (vj_num(ve, p, b, "sampling", &sampling) && (sampling < 0.0 || sampling > 100.0))
        vadd_at(ve, p, "sampling", "has to be in [0.0 - 100.0] range");
    const char *type = vj_str(ve, p, b, "type");
    if (type && (strcmp(type, "zipkin") == 0 || strcmp(type, "datadog") == 0)) {
        const json_t *conf = backend_config(ve, p, b);
        if (!conf && vj_present(b, "conf"))
            return; /* wrong type, already reported */
        size_t m = vp_field(p, "config");
        if (strcmp(type, "zipkin") == 0)
            validate_zipkin(ve, p, conf);
        else
            validate_datadog(ve, p, conf);
        vp_reset(p, m);
    } else {
        vadd_at(ve, p, "type", "unknown backend type. Available backends: \"zipkin\", \"datadog\"");
    }
}

/* tls.mode as an enum number: activeMTLSBackend=0, providedTLS=1, disabled=2,
 * -1 for an unknown value (reported). */
static int prom_tls_mode(struct verr *ve, struct vpath *p, const json_t *tls)
{
    const json_t *mode = json_object_get(tls, "mode");
    if (!mode || json_is_null(mode))
        return 0;
    static const char *const names[] = {"activeMTLSBackend", "providedTLS", "disabled"};
    if (json_is_string(mode)) {
        for (int i = 0; i < 3; i++)
            if (strcmp(json_string_value(mode), names[i]) == 0)
                return i;
    } else if (json_is_integer(mode) && json_integer_value(mode) >= 0 &&
               json_integer_value(mode) <= 2) {
        return (int)json_integer_value(mode);
    }
    size_t m = vp_field(p, "tls");
    vadd_at(ve, p, "mode",
            "has invalid value. Allowed values: activeMTLSBackend, providedTLS, disabled");
    vp_reset(p, m);
    return -1;
}

/* validatePrometheusConfig; p is at "...conf". Also used for a Dataplane's
 * metrics override. */
void v_prometheus_conf(struct verr *ve, struct vpath *p, const json_t *conf)
{
    int skip = 0;
    int has_skip = vj_bool(ve, p, conf, "skipMTLS", &skip);
    const json_t *tls = vj_obj(ve, p, conf, "tls");
    long long port;
    vj_int(ve, p, conf, "port", &port);
    vj_str(ve, p, conf, "path");
    vj_tags(ve, p, conf, "tags");
    if (tls) {
        int mode = prom_tls_mode(ve, p, tls);
        if (has_skip && mode >= 0 && !((!skip && mode == 0) || (skip && mode == 2))) {
            vadd(ve, p, "skipMTLS and tls configuration cannot be defined together");
            return;
        }
    }
    const json_t *envoy = vj_obj(ve, p, conf, "envoy");
    if (envoy) {
        size_t m = vp_field(p, "envoy");
        const char *re = vj_str(ve, p, envoy, "filterRegex");
        if (re && *re) {
            regex_t rx;
            int rc = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char msg[256];
                regerror(rc, &rx, msg, sizeof(msg));
                vadd_at(ve, p, "filterRegex", "provided regexp isn't correct: %s", msg);
                vp_reset(p, m);
                return;
            }
            regfree(&rx);
        }
        vp_reset(p, m);
    }
    const json_t *agg = vj_arr(ve, p, conf, "aggregate");
    size_t n = json_array_size(agg);
    struct names used = {xcalloc(n ? n : 1, sizeof(char *)), 0};
    size_t ma = vp_field(p, "aggregate");
    for (size_t i = 0; i < n; i++) {
        const json_t *a = vj_elem_obj(ve, p, agg, i);
        if (!a)
            continue;
        size_t mi = vp_index(p, i);
        const char *name = a ? vj_str(ve, p, a, "name") : NULL;
        if (!name)
            name = "";
        if (names_has(&used, name))
            vadd_at(ve, p, "name", "duplicate entry: %s, values have to be unique", name);
        else
            names_add(&used, name, n);
        vp_reset(p, mi);
    }
    vp_reset(p, ma);
    free(used.v);
}

static void validate_metrics(struct verr *ve, struct vpath *p, const json_t *metrics)
{
    const json_t *backends = vj_arr(ve, p, metrics, "backends");
    size_t n = json_array_size(backends);
    struct names used = {xcalloc(n ? n : 1, sizeof(char *)), 0};
    size_t mb = vp_field(p, "backends");
    for (size_t i = 0; i < n; i++) {
        const json_t *b = vj_elem_obj(ve, p, backends, i);
        if (!b)
            continue;
        size_t mi = vp_index(p, i);
        const char *name = b ? vj_str(ve, p, b, "name") : NULL;
        if (!name)
            name = "";
        if (names_has(&used, name))
            vadd_at(ve, p, "name", "\"%s\" name is already used for another backend", name);
        const char *type = b ? vj_str(ve, p, b, "type") : NULL;
        if (!type || strcmp(type, "prometheus") != 0) {
            vadd_at(ve, p, "type", "unknown backend type. Available backends: \"prometheus\"");
        } else {
            const json_t *conf = vj_obj(ve, p, b, "conf");
            size_t mc = vp_field(p, "conf");
            v_prometheus_conf(ve, p, conf);
            vp_reset(p, mc);
        }
        names_add(&used, name, n);
        vp_reset(p, mi);
    }
    vp_reset(p, mb);
    const char *enabled = vj_str(ve, p, metrics, "enabledBackend");
    if (enabled && *enabled && !names_has(&used, enabled))
        vadd_at(ve, p, "enabledBackend", "has to be set to one of the backends in the mesh");
    free(used.v);
}

static void validate_rules(struct verr *ve, struct vpath *p, const json_t *dpp, const char *key)
{
    const json_t *rules = vj_arr(ve, p, dpp, key);
    size_t m = vp_field(p, key);
    for (size_t i = 0; i < json_array_size(rules); i++) {
        const json_t *r = vj_elem_obj(ve, p, rules, i);
        size_t mi = vp_index(p, i);
        const json_t *tags = r ? vj_tags(ve, p, r, "tags") : NULL;
        size_t mt = vp_field(p, "tags");
        struct tag_opts o = {.require_one = 1};
        v_selector(ve, p, tags, &o);
        vp_reset(p, mt);
        vp_reset(p, mi);
    }
    vp_reset(p, m);
}

static void validate_constraints(struct verr *ve, struct vpath *p, const json_t *c)
{
    const json_t *dpp = vj_obj(ve, p, c, "dataplaneProxy");
    if (!dpp)
        return;
    size_t m = vp_field(p, "dataplaneProxy");
    validate_rules(ve, p, dpp, "requirements");
    validate_rules(ve, p, dpp, "restrictions");
    vp_reset(p, m);
}

void validate_mesh(const struct resource *r, struct verr *ve)
{
    const json_t *spec = r ? r->spec : NULL;
    struct vpath p;
    vp_init(&p, "");
    const json_t *mtls = vj_obj(ve, &p, spec, "mtls");
    const json_t *logging = vj_obj(ve, &p, spec, "logging");
    const json_t *tracing = vj_obj(ve, &p, spec, "tracing");
    const json_t *metrics = vj_obj(ve, &p, spec, "metrics");
    const json_t *constraints = vj_obj(ve, &p, spec, "constraints");
    const json_t *routing = vj_obj(ve, &p, spec, "routing");
    size_t m;
    if (mtls) {
        m = vp_field(&p, "mtls");
        validate_mtls(ve, &p, mtls);
        vp_reset(&p, m);
    }
    if (logging) {
        m = vp_field(&p, "logging");
        validate_backends(ve, &p, logging, validate_logging_backend,
                          "has to be set to one of the logging backend in mesh");
        vp_reset(&p, m);
    }
    if (tracing) {
        m = vp_field(&p, "tracing");
        validate_backends(ve, &p, tracing, validate_tracing_backend,
                          "has to be set to one of the tracing backend in mesh");
        vp_reset(&p, m);
    }
    if (metrics) {
        m = vp_field(&p, "metrics");
        validate_metrics(ve, &p, metrics);
        vp_reset(&p, m);
    }
    if (constraints) {
        m = vp_field(&p, "constraints");
        validate_constraints(ve, &p, constraints);
        vp_reset(&p, m);
    }
    if (routing) {
        m = vp_field(&p, "routing");
        int zone_egress = 0;
        vj_bool(ve, &p, routing, "zoneEgress", &zone_egress);
        vp_reset(&p, m);
        if (zone_egress && !*vj_peek_str(mtls, "enabledBackend"))
            verr_add(ve, "mtls", "has to be set when zoneEgress enabled");
    }
    vj_arr(ve, &p, spec, "skipCreatingInitialPolicies");
    vp_free(&p);
}

/* ---- manager-level checks ---- */

/* datasource.Validate; p at the data source. */
static void validate_datasource(struct verr *ve, struct vpath *p, const json_t *ds)
{
    if (!json_is_object(ds)) {
        vadd(ve, p, "data source has to be chosen. Available sources: secret, file, inline");
        return;
    }
    if (vj_present(ds, "secret")) {
        const char *s = vj_str(ve, p, ds, "secret");
        if (s && !*s)
            vadd_at(ve, p, "secret", "cannot be empty");
    } else if (vj_present(ds, "inline")) {
        const char *s = vj_str(ve, p, ds, "inline");
        if (s && !*s)
            vadd_at(ve, p, "inline", "cannot be empty");
    } else if (vj_present(ds, "file")) {
        const char *s = vj_str(ve, p, ds, "file");
        if (s && !*s)
            vadd_at(ve, p, "file", "cannot be empty");
    } else if (vj_present(ds, "inlineString")) {
        vj_str(ve, p, ds, "inlineString");
    } else {
        vadd(ve, p, "data source has to be chosen. Available sources: secret, file, inline");
    }
}

/* Builtin ValidateBackend; p at "mtls.backends[i].conf". Its own violations
 * are rooted at "mtls.backends.name" and Kuma prefixes them with the conf
 * path, hence "mtls.backends[i].conf.mtls.backends.name". */
static void validate_builtin(struct verr *ve, struct vpath *p, const char *mesh, const json_t *conf,
                             const char *name)
{
    if (conf && !json_is_object(conf)) {
        vadd(ve, p, "could not convert backend config: %s", VMSG_OBJECT);
    } else if (conf) {
        const json_t *ca = vj_obj(ve, p, conf, "caCert");
        if (ca) {
            size_t m = vp_field(p, "caCert");
            long long bits;
            vj_int(ve, p, ca, "RSAbits", &bits);
            vj_str(ve, p, ca, "expiration");
            vp_reset(p, m);
        }
    }
    char *full = xasprintf("%s.ca-builtin-cert-%s", mesh ? mesh : "", name);
    int lower = 1;
    for (const char *c = full; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            lower = 0;
    if (strlen(full) > 255)
        vadd_at(ve, p, "mtls.backends.name", "Backend name is too long. Max length: 255");
    if (!dns_name_ok(full) || !lower)
        vadd_at(ve, p, "mtls.backends.name", "\"%s\" name must be valid dns name", name);
    free(full);
}

/* Provided ValidateBackend (cert/key presence and data sources only). */
static void validate_provided(struct verr *ve, struct vpath *p, const json_t *conf)
{
    if (conf && !json_is_object(conf)) {
        vadd(ve, p, "could not convert backend config: %s", VMSG_OBJECT);
        return;
    }
    static const char *const keys[] = {"cert", "key"};
    for (int i = 0; i < 2; i++) {
        const json_t *ds = conf ? json_object_get(conf, keys[i]) : NULL;
        size_t m = vp_field(p, keys[i]);
        if (!ds || json_is_null(ds))
            vadd(ve, p, "has to be defined");
        else
            validate_datasource(ve, p, ds);
        vp_reset(p, m);
    }
}

static void validate_mtls_backends(const struct resource *r, struct verr *ve)
{
    const json_t *mtls = vj_peek_obj(r->spec, "mtls");
    const json_t *backends = mtls ? json_object_get(mtls, "backends") : NULL;
    if (!json_is_array(backends))
        return;
    const json_t *skip = json_object_get(mtls, "skipValidation");
    int skip_validation = json_is_true(skip);
    struct vpath p;
    vp_init(&p, "mtls.backends");
    for (size_t i = 0; i < json_array_size(backends); i++) {
        const json_t *b = json_array_get(backends, i);
        const char *type = vj_peek_str(b, "type");
        size_t mi = vp_index(&p, i);
        int builtin = strcmp(type, "builtin") == 0, provided = strcmp(type, "provided") == 0;
        if (!builtin && !provided) {
            vadd_at(ve, &p, "type", "could not find installed plugin for this type");
            break;
        }
        if (!skip_validation) {
            const json_t *conf = json_object_get(b, "conf");
            if (json_is_null(conf))
                conf = NULL;
            size_t mc = vp_field(&p, "conf");
            if (builtin)
                validate_builtin(ve, &p, r->name, conf, vj_peek_str(b, "name"));
            else
                validate_provided(ve, &p, conf);
            vp_reset(&p, mc);
        }
        vp_reset(&p, mi);
    }
    vp_free(&p);
}

void validate_mesh_create(const struct resource *r, struct verr *ve)
{
    if (!r)
        return;
    if (r->name && strlen(r->name) > 63)
        verr_add(ve, "name", "cannot be longer than 63 characters");
    validate_mtls_backends(r, ve);
}

void validate_mesh_update(const struct resource *old, const struct resource *r, struct verr *ve)
{
    if (!r)
        return;
    const char *was = old ? vj_peek_str(vj_peek_obj(old->spec, "mtls"), "enabledBackend") : "";
    const char *now = vj_peek_str(vj_peek_obj(r->spec, "mtls"), "enabledBackend");
    if (*was && *now && strcmp(was, now) != 0)
        verr_add(ve, "mtls.enabledBackend",
                 "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then "
                 "change the CA");
    validate_mtls_backends(r, ve);
}
