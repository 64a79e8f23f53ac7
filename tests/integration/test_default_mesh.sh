#!/usr/bin/env bash
# kuma-cp starts on its embedded store, creates mesh "default" with Kuma's
# default policies, answers /ready and /healthy, and stops cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"

start_cp
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$CP_DIAG_URL/healthy")" 200 "/healthy"

api GET /meshes; out=$BODY
assert_eq "$HTTP_STATUS" 200
assert_eq "$(jq -r '.total' <<<"$out")" 1 "one mesh"
assert_eq "$(jq -r '.items[0].name' <<<"$out")" default
assert_eq "$(jq -r '.next' <<<"$out")" null

for p in meshtimeouts/mesh-gateways-timeout-all-default meshtimeouts/mesh-timeout-all-default \
    meshcircuitbreakers/mesh-circuit-breaker-all-default meshretries/mesh-retry-all-default; do
    api GET "/meshes/default/$p"
    assert_eq "$HTTP_STATUS" 200 "default policy $p"
done
api GET /meshes/default/meshtimeouts/mesh-timeout-all-default; out=$BODY
assert_eq "$(jq -r '.spec.to[0].default.http.requestTimeout' <<<"$out")" 15s
assert_eq "$(jq -r '.spec.targetRef.proxyTypes[0]' <<<"$out")" Sidecar
# Routing resources are off by default.
api GET /meshes/default/traffic-permissions/allow-all-default
assert_eq "$HTTP_STATUS" 404 "allow-all without the routing flag"

# A default the user deleted is not recreated on restart.
api DELETE /meshes/default/meshretries/mesh-retry-all-default
assert_eq "$HTTP_STATUS" 200
stop_cp TERM
assert_eq "$CP_EXIT" 0 "graceful stop exit code"
grep -q "stopped" "$CP_LOG" || fail "no stop message in the log"
start_cp
api GET /meshes/default/meshretries/mesh-retry-all-default
assert_eq "$HTTP_STATUS" 404 "deleted default stays deleted"
stop_cp

# With the flags: no default mesh; routing resources for new meshes.
CP_WORKDIR="$T/cp2"
start_cp KUMA_DEFAULTS_SKIP_MESH_CREATION=true KUMA_DEFAULTS_CREATE_MESH_ROUTING_RESOURCES=true
api GET /meshes; out=$BODY
assert_eq "$(jq -r '.total' <<<"$out")" 0 "no mesh with skip flag"
grep -q "skipping default Mesh creation because KUMA_DEFAULTS_SKIP_MESH_CREATION is set to true" "$CP_LOG" ||
    fail "skip message missing"
api PUT /meshes/m1 '{"type":"Mesh","name":"m1"}'
assert_eq "$HTTP_STATUS" 201
api GET /meshes/m1/traffic-permissions/allow-all-m1
assert_eq "$HTTP_STATUS" 200 "allow-all with the routing flag"
api GET /meshes/m1/traffic-routes/route-all-m1
assert_eq "$HTTP_STATUS" 200 "route-all with the routing flag"
# skipCreatingInitialPolicies
api PUT /meshes/m2 '{"type":"Mesh","name":"m2","skipCreatingInitialPolicies":["MeshRetry","TrafficRoute"]}'
assert_eq "$HTTP_STATUS" 201
api GET /meshes/m2/meshretries/mesh-retry-all-m2
assert_eq "$HTTP_STATUS" 404 "skipped MeshRetry"
api GET /meshes/m2/traffic-routes/route-all-m2
assert_eq "$HTTP_STATUS" 404 "skipped TrafficRoute"
api GET /meshes/m2/meshtimeouts/mesh-timeout-all-m2
assert_eq "$HTTP_STATUS" 200 "MeshTimeout not skipped"
api PUT /meshes/m3 '{"type":"Mesh","name":"m3","skipCreatingInitialPolicies":["*"]}'
api GET /meshes/m3/meshtimeouts; out=$BODY
assert_eq "$(jq -r '.total' <<<"$out")" 0 "* skips all"
