/* defaults — Kuma's default policies for a new mesh (see defaults.h). */
#include "mesh/defaults.h"

#include <string.h>

#include "core/codec.h"
#include "core/log.h"

struct default_policy {
    const char *prefix;
    const struct res_type *type;
    int routing; /* only with create_mesh_routing_resources */
    const char *spec_yaml;
};

static const struct default_policy policies[] = {
    {"mesh-gateways-timeout-all", &TYPE_MESH_TIMEOUT, 0,
     "targetRef: {kind: Mesh, proxyTypes: [Gateway]}\n"
     "from:\n"
     "- targetRef: {kind: Mesh}\n"
     "  default: {idleTimeout: 5m, http: {streamIdleTimeout: 5s, requestHeadersTimeout: 500ms}}\n"
     "to:\n"
     "- targetRef: {kind: Mesh}\n"
     "  default: {idleTimeout: 1h, http: {streamIdleTimeout: 5s}}\n"},
    {"mesh-timeout-all", &TYPE_MESH_TIMEOUT, 0,
     "targetRef: {kind: Mesh, proxyTypes: [Sidecar]}\n"
     "from:\n"
     "- targetRef: {kind: Mesh}\n"
     "  default: {connectionTimeout: 10s, idleTimeout: 2h, http: {requestTimeout: 0s, "
     "streamIdleTimeout: 1h, maxStreamDuration: 0s}}\n"
     "to:\n"
     "- targetRef: {kind: Mesh}\n"
     "  default: {connectionTimeout: 5s, idleTimeout: 1h, http: {requestTimeout: 15s, "
     "streamIdleTimeout: 30m}}\n"},
    {"mesh-circuit-breaker-all", &TYPE_MESH_CIRCUIT_BREAKER, 0,
     "targetRef: {kind: Mesh}\n"
     "to:\n"
     "- targetRef: {kind: Mesh}\n"
     "  default: {connectionLimits: {maxConnections: 1024, maxPendingRequests: 1024, "
     "maxRequests: 1024, maxRetries: 3}}\n"},
    {"mesh-retry-all", &TYPE_MESH_RETRY, 0,
     "targetRef: {kind: Mesh}\n"
     "to:\n"
     "- targetRef: {kind: Mesh}\n"
     "  default:\n"
     "    tcp: {maxConnectAttempt: 5}\n"
     "    http: {numRetries: 5, perTryTimeout: 16s, backOff: {baseInterval: 25ms, "
     "maxInterval: 250ms}}\n"
     "    grpc: {numRetries: 5, perTryTimeout: 16s, backOff: {baseInterval: 25ms, "
     "maxInterval: 250ms}}\n"},
    {"allow-all", &TYPE_TRAFFIC_PERMISSION, 1,
     "sources: [{match: {kuma.io/service: '*'}}]\n"
     "destinations: [{match: {kuma.io/service: '*'}}]\n"},
    {"route-all", &TYPE_TRAFFIC_ROUTE, 1,
     "sources: [{match: {kuma.io/service: '*'}}]\n"
     "destinations: [{match: {kuma.io/service: '*'}}]\n"
     "conf: {destination: {kuma.io/service: '*'}, loadBalancer: {roundRobin: {}}}\n"},
};

static int skipped(const json_t *skip, const char *type_name)
{
    size_t i;
    json_t *v;
    json_array_foreach(skip, i, v)
    {
        const char *s = json_string_value(v);
        if (s && (strcmp(s, "*") == 0 || strcmp(s, type_name) == 0))
            return 1;
    }
    return 0;
}

void defaults_mesh_resources(const struct resource *mesh, int routing_resources,
                             struct resource_list *out)
{
    json_t *skip = json_object_get(mesh->spec, "skipCreatingInitialPolicies");
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
        const struct default_policy *p = &policies[i];
        if (p->routing && !routing_resources)
            continue;
        if (skipped(skip, p->type->name))
            continue;
        json_t *spec;
        struct err e;
        if (codec_parse_one(p->spec_yaml, strlen(p->spec_yaml), &spec, &e) < 0) {
            log_error("defaults", "built-in default %s does not parse: %s", p->prefix, e.msg);
            continue;
        }
        char *name = xasprintf("%s-%s", p->prefix, mesh->name);
        struct resource *r = resource_new(p->type, mesh->name, name);
        free(name);
        json_decref(r->spec);
        r->spec = spec;
        resource_list_push(out, r);
    }
}
