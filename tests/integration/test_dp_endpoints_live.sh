#!/usr/bin/env bash
# Endpoints added and removed while traffic flows through real proxies: a
# second backend proxy joins (EDS push, it starts serving), then leaves
# (SIGTERM drain, deregistration, EDS push) — and no request fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY=0s
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
start_workload b1 127.0.0.3 7001 --id b1
start_workload b2 127.0.0.5 7005 --id b2
start_dp backend-1 default "$(dp_yaml 127.0.0.3 17001 backend 7001)"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"

"$DPTOOL" load 127.0.0.2 27001 --until-file "$T/stop" --size 2000 --concurrency 4 --id \
    >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
PIDS+=($BG)
served() { [ "$(dp_stat "$1" "$2")" -ge "$3" ] 2>/dev/null; }
wait_for "traffic to backend-1" 50 served backend-1 listener.127.0.0.3_17001.downstream_cx_total 20

start_dp backend-2 default "$(dp_yaml 127.0.0.5 17005 backend 7005)"
wait_for "web sees two endpoints" 100 test "$(dp_stat web cluster.backend.membership_total)" = 2
wait_for "traffic to backend-2" 100 served backend-2 listener.127.0.0.5_17005.downstream_cx_total 20

kill -TERM "$(dp_pid backend-2)"
wait "$(dp_pid backend-2)" || fail "backend-2 exit status $?"
wait_for "web sees one endpoint" 100 test "$(dp_stat web cluster.backend.membership_total)" = 1
n=$(dp_stat web cluster.backend.upstream_cx_total)
wait_for "traffic after the removal" 50 served web cluster.backend.upstream_cx_total $((n + 50))

touch "$T/stop"
wait "$BG"
out=$(cat "$T/bg.out")
echo "$out"
ok=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' <<<"$out")
assert_contains "$out" "fail=0" "failed requests ($(head -3 "$T/bg.err"))"
[ "$ok" -ge 100 ] || fail "only $ok requests"
assert_contains "$out" "id b2 " "backend-2 never served"
echo ok
