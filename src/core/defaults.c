/*
 * defaults — Kuma's defaulting before validation (mesh_defaulter.go): each
 * Prometheus metrics backend of a Mesh gets its port, path, tags and TLS mode
 * filled in, so the stored spec shows the effective values. Values of the
 * wrong JSON type are left alone for the validator to report.
 */
#include <string.h>

#include "core/resource.h"
#include "core/validate.h"

static int tls_mode_is(const json_t *tls, const char *name, json_int_t num)
{
    const json_t *mode = json_is_object(tls) ? json_object_get(tls, "mode") : NULL;
    if (json_is_string(mode))
        return strcmp(json_string_value(mode), name) == 0;
    if (json_is_integer(mode))
        return json_integer_value(mode) == num;
    return num == 0 && (!mode || json_is_null(mode)); /* the zero value */
}

static void default_prometheus(json_t *backend)
{
    json_t *conf = json_object_get(backend, "conf");
    if (!conf || json_is_null(conf)) {
        conf = json_object();
        json_object_set_new(backend, "conf", conf);
    }
    if (!json_is_object(conf))
        return;
    json_t *skip = json_object_get(conf, "skipMTLS");
    json_t *tls = json_object_get(conf, "tls");
    int has_skip = skip && !json_is_null(skip);
    int has_tls = tls && !json_is_null(tls);
    if (!has_tls) {
        json_t *t = json_object();
        if (has_skip && json_is_true(skip))
            json_object_set_new(t, "mode", json_string("disabled"));
        /* activeMTLSBackend is the zero value and is omitted, as jsonpb does. */
        json_object_set_new(conf, "tls", t);
    } else if (json_is_object(tls) && tls_mode_is(tls, "providedTLS", 1) && has_skip) {
        json_object_del(conf, "skipMTLS");
    }
    json_t *port = json_object_get(conf, "port");
    if (!port || json_is_null(port) || (json_is_integer(port) && json_integer_value(port) == 0))
        json_object_set_new(conf, "port", json_integer(5670));
    json_t *path = json_object_get(conf, "path");
    if (!path || json_is_null(path) || (json_is_string(path) && !*json_string_value(path)))
        json_object_set_new(conf, "path", json_string("/metrics"));
    json_t *tags = json_object_get(conf, "tags");
    if (!tags || json_is_null(tags) || (json_is_object(tags) && json_object_size(tags) == 0)) {
        json_t *t = json_object();
        json_object_set_new(t, "kuma.io/service", json_string("dataplane-metrics"));
        json_object_set_new(conf, "tags", t);
    }
    /* Re-insert the known fields in the proto's field order, as Kuma's jsonpb
     * output lists them; unknown keys keep their place after them. */
    static const char *const order[] = {"port",      "path",  "tags", "skipMTLS",
                                        "aggregate", "envoy", "tls",  NULL};
    json_t *sorted = json_object();
    for (size_t i = 0; order[i]; i++) {
        json_t *v = json_object_get(conf, order[i]);
        if (v)
            json_object_set(sorted, order[i], v);
    }
    json_object_update_missing(sorted, conf);
    json_object_set_new(backend, "conf", sorted);
}

void resource_default(struct resource *r)
{
    if (!r || r->type != &TYPE_MESH || !json_is_object(r->spec))
        return;
    json_t *metrics = json_object_get(r->spec, "metrics");
    json_t *backends = json_is_object(metrics) ? json_object_get(metrics, "backends") : NULL;
    if (!json_is_array(backends))
        return;
    size_t i;
    json_t *b;
    json_array_foreach(backends, i, b)
    {
        json_t *type = json_is_object(b) ? json_object_get(b, "type") : NULL;
        if (json_is_string(type) && strcmp(json_string_value(type), "prometheus") == 0)
            default_prometheus(b);
    }
}
