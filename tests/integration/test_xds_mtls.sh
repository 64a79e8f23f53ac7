#!/usr/bin/env bash
# DP server with dataplane tokens over TLS, and mTLS meshes (tests/xds/mtls.js):
# token refusals, TLS contexts and SDS secrets, leaf certificates checked
# with openssl against their own and another mesh's CA, RBAC from
# permissions with push to the affected proxy only, mesh isolation (SDS
# included), CA switch, insight endpoints; then kumactl inspect.
. "$(dirname "$0")/lib.sh"
need_xds_node

start_cp KUMA_STORE_TYPE=memory
xds_node mtls.js || fail "mtls.js failed"

log=$(cat "$CP_LOG")
assert_contains "$log" "authentication failed"
assert_contains "$log" "default.web-1: workload certificate issued by builtin backend ca-1"
assert_contains "$log" "default.web-1: workload certificate issued by builtin backend ca-2"
assert_not_contains "$log" "PRIVATE KEY"

# kumactl inspect: the proxies are gone now (the test closed them), but the
# table and the mesh counts are there.
kumactl config control-planes add --name cp --address "$CP_URL" >/dev/null || fail "kumactl config"
out=$(kumactl inspect dataplanes) || fail "kumactl inspect dataplanes: $out"
assert_contains "$out" "MESH      NAME"
assert_contains "$(echo "$out" | head -1)" "LAST CONNECTED AGO   LAST UPDATED AGO   TOTAL UPDATES   TOTAL ERRORS   CERT REGENERATED AGO   CERT EXPIRATION"
assert_contains "$(echo "$out" | grep backend-1)" "kuma.io/service=backend"
assert_contains "$(echo "$out" | grep web-1)" "Offline"
out=$(kumactl inspect meshes) || fail "kumactl inspect meshes: $out"
assert_contains "$(echo "$out" | grep '^default')" "0/2"

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
