#!/usr/bin/env bash
# PERMISSIVE mTLS with an HTTP service: kuma-cp sends the inbound's HTTP
# connection manager on both the mTLS chain and the plaintext chain. kuma-dp
# accepts it (no NACK): mesh callers come over mTLS through web's outbound,
# and a plaintext HTTP client outside the mesh is served by the same routes
# on the same inbound port; both are counted per request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
api PUT /meshes/default '{"type":"Mesh","name":"default","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin","mode":"PERMISSIVE"}]}}'
case "$HTTP_STATUS" in 200 | 201) ;; *) fail "PUT mesh: $HTTP_STATUS $BODY" ;; esac
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
"$DPTOOL" http-server 127.0.0.3 7001 --id b1 >"$T/wl-b1.log" 2>&1 &
PIDS+=($!)
wait_for "http workload" 50 grep -q listening "$T/wl-b1.log"
start_dp backend default "$(dp_yaml 127.0.0.3 17001 backend 7001 "" "kuma.io/protocol=http")"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"

mesh_ok() { [ "$(curl -s -m 2 http://127.0.0.2:27001/mesh)" = "b1 GET /mesh" ]; }
wait_for "mesh HTTP through mTLS" 100 mesh_ok
assert_contains "$(dp_config backend)" '"raw_buffer"' "plaintext chain in the config"
# Plaintext HTTP straight to the inbound (outside the mesh), keep-alive.
out=$(curl -s -m 5 http://127.0.0.3:17001/p1 http://127.0.0.3:17001/p2 | tr -d '\n')
assert_eq "$out" "b1 GET /p1b1 GET /p2" "plaintext HTTP on the PERMISSIVE inbound"
for i in $(seq 5); do
    assert_eq "$(curl -s -m 5 "http://127.0.0.2:27001/m$i")" "b1 GET /m$i" "mesh request $i"
done
prefix=$(curl -s "http://127.0.0.1:$(dp_admin backend)/stats" | sed -n 's/^http\.\(.*\)\.downstream_rq_total: .*/\1/p' | head -1)
[ -n "$prefix" ] || fail "no http.* stats on the backend"
[ "$(dp_stat backend "http.$prefix.downstream_rq_2xx")" -ge 8 ] || fail "inbound downstream_rq_2xx"
hs=$(dp_stat backend listener.127.0.0.3_17001.ssl.handshake)
[ "${hs:-0}" -ge 1 ] || fail "mesh traffic was not mTLS"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
