#!/usr/bin/env bash
# Permissions changed live through real proxies, no restart: an mTLS mesh
# starts with no permission (deny), a TrafficPermission opens the path, its
# deletion closes it, a MeshTrafficPermission Allow opens it again and a Deny
# closes it. The proxies keep their process ids; the RBAC counters follow.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
start_backend default
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
pid=$(dp_pid backend)

passes() { probe_ok 127.0.0.2 27001; }
blocked() { probe_fails 127.0.0.2 27001; }

# No permission: deny.
blocked || fail "traffic passed without a permission"
[ "$(dp_stat backend inbound_127.0.0.3_17001.rbac.denied)" -ge 1 ] || fail "deny not counted"

api PUT /meshes/default/traffic-permissions/web-to-backend '{"type":"TrafficPermission","mesh":"default","name":"web-to-backend","sources":[{"match":{"kuma.io/service":"web"}}],"destinations":[{"match":{"kuma.io/service":"backend"}}]}'
[ "$HTTP_STATUS" = 201 ] || fail "TrafficPermission: $HTTP_STATUS $BODY"
wait_for "TrafficPermission applied" 100 passes
load 127.0.0.2 27001 --count 50 --size 1000
assert_eq "$LOAD_FAIL" 0 "requests failed while allowed"

api DELETE /meshes/default/traffic-permissions/web-to-backend
[ "$HTTP_STATUS" = 200 ] || fail "DELETE: $HTTP_STATUS $BODY"
wait_for "TrafficPermission removed" 100 blocked

api PUT /meshes/default/meshtrafficpermissions/mtp '{"type":"MeshTrafficPermission","mesh":"default","name":"mtp","spec":{"targetRef":{"kind":"MeshService","name":"backend"},"from":[{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}}'
[ "$HTTP_STATUS" = 201 ] || fail "MeshTrafficPermission: $HTTP_STATUS $BODY"
wait_for "MeshTrafficPermission Allow" 100 passes
api PUT /meshes/default/meshtrafficpermissions/mtp '{"type":"MeshTrafficPermission","mesh":"default","name":"mtp","spec":{"targetRef":{"kind":"MeshService","name":"backend"},"from":[{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Deny"}}]}}'
[ "$HTTP_STATUS" = 200 ] || fail "MeshTrafficPermission update: $HTTP_STATUS $BODY"
wait_for "MeshTrafficPermission Deny" 100 blocked

assert_eq "$(dp_pid backend)" "$pid" "backend proxy pid"
kill -0 "$pid" || fail "backend proxy died"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
