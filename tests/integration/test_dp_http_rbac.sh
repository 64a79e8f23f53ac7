#!/usr/bin/env bash
# Permissions on an HTTP inbound, per request: kuma-cp puts a
# MeshTrafficPermission (and a mesh's deny-all) in the inbound HCM as the
# envoy.filters.http.rbac filter; kuma-dp enforces it on every request with
# the mTLS peer identity: 403 "RBAC: access denied" while denied, 200 once
# web is allowed, 403 for a caller the permission does not name, counted
# under http.<prefix>.rbac.*.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
"$DPTOOL" http-server 127.0.0.3 7001 --id b1 >"$T/wl-b1.log" 2>&1 &
PIDS+=($!)
wait_for "http workload" 50 grep -q listening "$T/wl-b1.log"
start_dp backend default "$(dp_yaml 127.0.0.3 17001 backend 7001 "" "kuma.io/protocol=http")"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
start_dp other default "$(dp_yaml 127.0.0.4 17004 other 7004 "27004:backend")"

code() { curl -s -m 3 -o "$T/body" -w '%{http_code}' "http://$1/x"; }
# No permission: the HTTP RBAC filter denies every request.
denied() { [ "$(code 127.0.0.2:27001)" = 403 ]; }
wait_for "deny-all as HTTP RBAC" 100 denied
assert_eq "$(cat "$T/body")" "RBAC: access denied" "403 body"
assert_contains "$(dp_config backend)" 'envoy.filters.http.rbac' "HTTP RBAC in the inbound"

api PUT /meshes/default/meshtrafficpermissions/mtp '{"type":"MeshTrafficPermission","mesh":"default","name":"mtp","spec":{"targetRef":{"kind":"MeshService","name":"backend"},"from":[{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}}'
[ "$HTTP_STATUS" = 201 ] || fail "MeshTrafficPermission: $HTTP_STATUS $BODY"
allowed() { [ "$(code 127.0.0.2:27001)" = 200 ]; }
wait_for "web allowed" 100 allowed
assert_eq "$(cat "$T/body")" "b1 GET /x" "allowed body"
# Keep-alive: every request on the same connection is checked and passes.
out=$(curl -s -m 5 http://127.0.0.2:27001/a http://127.0.0.2:27001/b | tr -d '\n')
assert_eq "$out" "b1 GET /ab1 GET /b" "keep-alive requests"
# A caller the permission does not name is still denied.
assert_eq "$(code 127.0.0.4:27004)" 403 "other service"
prefix=$(curl -s "http://127.0.0.1:$(dp_admin backend)/stats" | sed -n 's/^http\.\(.*\)\.rbac\.allowed: .*/\1/p' | head -1)
[ -n "$prefix" ] || fail "no http.*.rbac stats"
[ "$(dp_stat backend "http.$prefix.rbac.allowed")" -ge 3 ] || fail "rbac.allowed"
[ "$(dp_stat backend "http.$prefix.rbac.denied")" -ge 2 ] || fail "rbac.denied"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
