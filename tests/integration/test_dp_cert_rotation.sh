#!/usr/bin/env bash
# Workload certificate renewal under load: the mesh's dpCert lifetime is 6 s,
# so kuma-cp re-issues every proxy's certificate every ~5 s (80 %); the
# proxies swap their SDS secrets while requests keep flowing over mTLS, and
# not one fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls '{"rotation":{"expiration":"6s"}}'
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
start_backend default
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"

regens() { get /meshes/default/dataplanes/$1/_overview | jq -r '.dataplaneInsight.mTLS.certificateRegenerations // 0'; }
r0=$(regens backend)
sds0=$(dp_config backend | jq -r '.configs[] | select(."@type"|test("Secrets")) | .dynamicActiveSecrets[0].versionInfo')
"$DPTOOL" load 127.0.0.2 27001 --until-file "$T/stop" --size 4000 --concurrency 4 \
    >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
PIDS+=($BG)
rotated() { [ "$(regens backend)" -ge $((r0 + 2)) ] && [ "$(regens web)" -ge $((r0 + 2)) ]; }
wait_for "two renewals of both certificates" 200 rotated
sleep 1 # requests over the last renewal
touch "$T/stop"
wait "$BG"
out=$(cat "$T/bg.out")
echo "$out"
assert_contains "$out" "fail=0" "failed requests during renewal ($(head -3 "$T/bg.err"))"
ok=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' <<<"$out")
[ "$ok" -ge 100 ] || fail "only $ok requests"
sds1=$(dp_config backend | jq -r '.configs[] | select(."@type"|test("Secrets")) | .dynamicActiveSecrets[0].versionInfo')
[ "$sds0" != "$sds1" ] || fail "the proxy's secrets did not change ($sds0)"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
