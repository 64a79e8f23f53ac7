#!/usr/bin/env bash
# kuma-cp killed (SIGKILL) and restarted while traffic flows through real
# proxies: no request fails (the proxies keep their last configuration), the
# proxies reconnect on their own (backoff), and a change made after the
# restart (a new backend endpoint) reaches them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp # persistent store: the restarted kuma-cp keeps meshes and CA
XDS_PORT=${CP_XDS_ADDR##*:}
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
served() { [ "$(dp_stat web cluster.backend.upstream_cx_total)" -ge "$1" ] 2>/dev/null; }
wait_for "traffic" 50 served 20

stop_cp KILL
lost() { grep -q "ADS stream to .* ended" "$T/dp-web.log"; }
wait_for "web notices the control plane is gone" 100 lost
n=$(dp_stat web cluster.backend.upstream_cx_total)
wait_for "traffic without a control plane" 50 served $((n + 50))

start_cp KUMA_DP_SERVER_PORT="$XDS_PORT"
online() { [ "$(get /meshes/default/dataplanes/web/_overview | jq -r '.dataplaneInsight.subscriptions[-1].disconnectTime // "none"')" = none ] &&
    [ "$(get /meshes/default/dataplanes/web/_overview | jq -r '.dataplaneInsight.subscriptions | length')" -ge 1 ]; }
wait_for "web reconnects" 150 online

# A change after the restart reaches the proxies.
start_dp backend-2 default "$(dp_yaml 127.0.0.5 17005 backend 7005)"
wait_for "web sees the new endpoint" 100 test "$(dp_stat web cluster.backend.membership_total)" = 2
n=$(dp_stat web cluster.backend.upstream_cx_total)
wait_for "traffic after the restart" 50 served $((n + 50))

touch "$T/stop"
wait "$BG"
out=$(cat "$T/bg.out")
echo "$out"
assert_contains "$out" "fail=0" "failed requests ($(head -3 "$T/bg.err"))"
assert_contains "$(cat "$T/dp-web.log")" "reconnecting to"
echo ok
