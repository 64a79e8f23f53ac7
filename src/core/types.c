/*
 * types — the static table of resource types. Names, paths and display names
 * follow Kuma's generated descriptors (pkg/core/resources/apis/<group>/zz_generated
 * .resources.go) so REST paths, kumactl arguments and /_resources match.
 */
#include "core/types.h"

#include <string.h>

#include "core/validate.h"

#define MESH_T(id, nm, pl, sd, pd, sn, ka, kla, pol, tr, fn)                                       \
    const struct res_type id = {.name = nm,                                                        \
                                .plural = pl,                                                      \
                                .singular_display = sd,                                            \
                                .plural_display = pd,                                              \
                                .short_name = sn,                                                  \
                                .kumactl_arg = ka,                                                 \
                                .kumactl_list_arg = kla,                                           \
                                .scope = RES_SCOPE_MESH,                                           \
                                .is_policy = pol,                                                  \
                                .is_target_ref = tr,                                               \
                                .include_in_federation = 1,                                        \
                                .validate = fn}

const struct res_type TYPE_MESH = {.name = "Mesh",
                                   .plural = "meshes",
                                   .singular_display = "Mesh",
                                   .plural_display = "Meshes",
                                   .short_name = "m",
                                   .kumactl_arg = "mesh",
                                   .kumactl_list_arg = "meshes",
                                   .scope = RES_SCOPE_GLOBAL,
                                   .include_in_federation = 1,
                                   .validate = validate_mesh};

const struct res_type TYPE_GLOBAL_SECRET = {
    .name = "GlobalSecret",
    .plural = "globalsecrets", /* WsPath; kumactl still says global-secrets */
    .singular_display = "Global Secret",
    .plural_display = "Global Secrets",
    .short_name = "gs",
    .kumactl_arg = "global-secret",
    .kumactl_list_arg = "global-secrets",
    .scope = RES_SCOPE_GLOBAL,
    .include_in_federation = 1,
    .validate = validate_secret};

/* Dataplanes are zone-local: not included in federation. */
const struct res_type TYPE_DATAPLANE = {.name = "Dataplane",
                                        .plural = "dataplanes",
                                        .singular_display = "Dataplane",
                                        .plural_display = "Dataplanes",
                                        .short_name = "dp",
                                        .kumactl_arg = "dataplane",
                                        .kumactl_list_arg = "dataplanes",
                                        .scope = RES_SCOPE_MESH,
                                        .include_in_federation = 0,
                                        .validate = validate_dataplane};
MESH_T(TYPE_EXTERNAL_SERVICE, "ExternalService", "external-services", "External Service",
       "External Services", "es", "external-service", "external-services", 0, 0,
       validate_external_service);
MESH_T(TYPE_SECRET, "Secret", "secrets", "Secret", "Secrets", "s", "secret", "secrets", 0, 0,
       validate_secret);
MESH_T(TYPE_TRAFFIC_PERMISSION, "TrafficPermission", "traffic-permissions", "Traffic Permission",
       "Traffic Permissions", "tp", "traffic-permission", "traffic-permissions", 1, 0,
       validate_traffic_permission);
MESH_T(TYPE_TRAFFIC_ROUTE, "TrafficRoute", "traffic-routes", "Traffic Route", "Traffic Routes",
       "tr", "traffic-route", "traffic-routes", 1, 0, validate_traffic_route);
MESH_T(TYPE_TRAFFIC_LOG, "TrafficLog", "traffic-logs", "Traffic Log", "Traffic Logs", "tl",
       "traffic-log", "traffic-logs", 1, 0, validate_traffic_log);
MESH_T(TYPE_TRAFFIC_TRACE, "TrafficTrace", "traffic-traces", "Traffic Trace", "Traffic Traces",
       "tt", "traffic-trace", "traffic-traces", 1, 0, validate_traffic_trace);
MESH_T(TYPE_HEALTH_CHECK, "HealthCheck", "health-checks", "Health Check", "Health Checks", "hc",
       "healthcheck", "healthchecks", 1, 0, validate_health_check);
MESH_T(TYPE_CIRCUIT_BREAKER, "CircuitBreaker", "circuit-breakers", "Circuit Breaker",
       "Circuit Breakers", "cb", "circuit-breaker", "circuit-breakers", 1, 0,
       validate_circuit_breaker);
MESH_T(TYPE_RETRY, "Retry", "retries", "Retry", "Retries", "r", "retry", "retries", 1, 0,
       validate_retry);
MESH_T(TYPE_TIMEOUT, "Timeout", "timeouts", "Timeout", "Timeouts", "t", "timeout", "timeouts", 1, 0,
       validate_timeout);
MESH_T(TYPE_FAULT_INJECTION, "FaultInjection", "fault-injections", "Fault Injection",
       "Fault Injections", "fi", "fault-injection", "fault-injections", 1, 0,
       validate_fault_injection);
MESH_T(TYPE_RATE_LIMIT, "RateLimit", "rate-limits", "Rate Limit", "Rate Limits", "rl", "rate-limit",
       "rate-limits", 1, 0, validate_rate_limit);
/* MeshGateway is not a policy (no "policy" block in /_resources). */
MESH_T(TYPE_MESH_GATEWAY, "MeshGateway", "meshgateways", "Mesh Gateway", "Mesh Gateways", "mgw",
       "meshgateway", "meshgateways", 0, 0, validate_mesh_gateway);
MESH_T(TYPE_MESH_TRAFFIC_PERMISSION, "MeshTrafficPermission", "meshtrafficpermissions",
       "Mesh Traffic Permission", "Mesh Traffic Permissions", "mtp", "meshtrafficpermission",
       "meshtrafficpermissions", 1, 1, validate_target_ref_policy);
MESH_T(TYPE_MESH_TIMEOUT, "MeshTimeout", "meshtimeouts", "Mesh Timeout", "Mesh Timeouts", "mt",
       "meshtimeout", "meshtimeouts", 1, 1, validate_target_ref_policy);
MESH_T(TYPE_MESH_RETRY, "MeshRetry", "meshretries", "Mesh Retry", "Mesh Retries", "mr", "meshretry",
       "meshretries", 1, 1, validate_target_ref_policy);
MESH_T(TYPE_MESH_CIRCUIT_BREAKER, "MeshCircuitBreaker", "meshcircuitbreakers",
       "Mesh Circuit Breaker", "Mesh Circuit Breakers", "mcb", "meshcircuitbreaker",
       "meshcircuitbreakers", 1, 1, validate_target_ref_policy);
MESH_T(TYPE_MESH_HTTP_ROUTE, "MeshHTTPRoute", "meshhttproutes", "Mesh HTTP Route",
       "Mesh HTTP Routes", "mhttpr", "meshhttproute", "meshhttproutes", 1, 1,
       validate_mesh_http_route);
MESH_T(TYPE_MESH_TCP_ROUTE, "MeshTCPRoute", "meshtcproutes", "Mesh TCP Route", "Mesh TCP Routes",
       "mtcpr", "meshtcproute", "meshtcproutes", 1, 1, validate_mesh_tcp_route);

static const struct res_type *const all_types[] = {
    &TYPE_MESH,
    &TYPE_DATAPLANE,
    &TYPE_EXTERNAL_SERVICE,
    &TYPE_SECRET,
    &TYPE_GLOBAL_SECRET,
    &TYPE_TRAFFIC_PERMISSION,
    &TYPE_TRAFFIC_ROUTE,
    &TYPE_TRAFFIC_LOG,
    &TYPE_TRAFFIC_TRACE,
    &TYPE_HEALTH_CHECK,
    &TYPE_CIRCUIT_BREAKER,
    &TYPE_RETRY,
    &TYPE_TIMEOUT,
    &TYPE_FAULT_INJECTION,
    &TYPE_RATE_LIMIT,
    &TYPE_MESH_GATEWAY,
    &TYPE_MESH_TRAFFIC_PERMISSION,
    &TYPE_MESH_TIMEOUT,
    &TYPE_MESH_RETRY,
    &TYPE_MESH_CIRCUIT_BREAKER,
    &TYPE_MESH_HTTP_ROUTE,
    &TYPE_MESH_TCP_ROUTE,
};

const struct res_type *const *types_all(size_t *n)
{
    *n = sizeof(all_types) / sizeof(all_types[0]);
    return all_types;
}

const struct res_type *types_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(all_types) / sizeof(all_types[0]); i++)
        if (strcmp(all_types[i]->name, name) == 0)
            return all_types[i];
    return NULL;
}

const struct res_type *types_by_plural(const char *plural)
{
    /* Kuma has served GlobalSecrets under both spellings. */
    if (strcmp(plural, "global-secrets") == 0)
        return &TYPE_GLOBAL_SECRET;
    for (size_t i = 0; i < sizeof(all_types) / sizeof(all_types[0]); i++)
        if (strcmp(all_types[i]->plural, plural) == 0)
            return all_types[i];
    return NULL;
}

const struct res_type *types_by_kumactl_arg(const char *arg)
{
    for (size_t i = 0; i < sizeof(all_types) / sizeof(all_types[0]); i++)
        if (strcmp(all_types[i]->kumactl_arg, arg) == 0 ||
            strcmp(all_types[i]->kumactl_list_arg, arg) == 0)
            return all_types[i];
    return NULL;
}
