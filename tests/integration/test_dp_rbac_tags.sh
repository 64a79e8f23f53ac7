#!/usr/bin/env bash
# Permissions on several tags, live: principals AND the SPIFFE id with
# kuma://<tag>/<value> names, matched against the URI SANs of the caller's
# workload certificate. Two callers of one service, web v1 and web v2:
#   - TrafficPermission source {kuma.io/service: web, version: v1}: v1 in, v2 out;
#   - MeshTrafficPermission from MeshSubset {kuma.io/service: web, version: v2}:
#     v2 in, v1 out;
#   - MeshTrafficPermission Allow MeshService web, Deny MeshSubset {version: v2}
#     (an Allow minus a Deny, and_ids with not_id): v1 in, v2 out.
# No proxy restarts and no NACK.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
start_backend default
start_dp web-v1 default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend" "version=v1")"
start_dp web-v2 default "$(dp_yaml 127.0.0.4 17004 web 7004 "27001:backend" "version=v2")"
pid=$(dp_pid backend)

v1_in() { probe_ok 127.0.0.2 27001; }
v1_out() { probe_fails 127.0.0.2 27001; }
v2_in() { probe_ok 127.0.0.4 27001; }
v2_out() { probe_fails 127.0.0.4 27001; }

api PUT /meshes/default/traffic-permissions/web-v1 '{"type":"TrafficPermission","mesh":"default","name":"web-v1","sources":[{"match":{"kuma.io/service":"web","version":"v1"}}],"destinations":[{"match":{"kuma.io/service":"backend"}}]}'
[ "$HTTP_STATUS" = 201 ] || fail "TrafficPermission: $HTTP_STATUS $BODY"
wait_for "web v1 allowed" 100 v1_in
v2_out || fail "web v2 passed a permission for v1"
cfg=$(dp_config backend)
assert_contains "$cfg" "kuma://version/v1" "principal in the backend's RBAC"
load 127.0.0.2 27001 --count 30 --size 1000
assert_eq "$LOAD_FAIL" 0 "v1 requests failed"
denied=$(dp_stat backend inbound_127.0.0.3_17001.rbac.denied)
[ "${denied:-0}" -ge 1 ] || fail "deny of v2 not counted"

api PUT /meshes/default/meshtrafficpermissions/mtp '{"type":"MeshTrafficPermission","mesh":"default","name":"mtp","spec":{"targetRef":{"kind":"MeshService","name":"backend"},"from":[{"targetRef":{"kind":"MeshSubset","tags":{"kuma.io/service":"web","version":"v2"}},"default":{"action":"Allow"}}]}}'
[ "$HTTP_STATUS" = 201 ] || fail "MeshTrafficPermission: $HTTP_STATUS $BODY"
wait_for "web v2 allowed by MeshSubset" 100 v2_in
v1_out || fail "web v1 passed a MeshSubset for v2"

api PUT /meshes/default/meshtrafficpermissions/mtp '{"type":"MeshTrafficPermission","mesh":"default","name":"mtp","spec":{"targetRef":{"kind":"MeshService","name":"backend"},"from":[{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}},{"targetRef":{"kind":"MeshSubset","tags":{"kuma.io/service":"web","version":"v2"}},"default":{"action":"Deny"}}]}}'
[ "$HTTP_STATUS" = 200 ] || fail "MeshTrafficPermission update: $HTTP_STATUS $BODY"
wait_for "web v2 denied by the carve-out" 100 v2_out
v1_in || fail "web v1 refused by an Allow minus a Deny for v2"

assert_eq "$(dp_pid backend)" "$pid" "backend proxy pid"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
