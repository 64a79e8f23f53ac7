#!/usr/bin/env bash
# ADS keepalive: kuma-cp frozen (SIGSTOP: its kernel still ACKs TCP, so only
# HTTP/2 PINGs can tell) is noticed by the proxies within keepalive time +
# timeout; traffic keeps flowing on the last configuration meanwhile; once
# kuma-cp runs again the proxies reconnect and a change made afterwards (a
# new endpoint) reaches them. Keepalive shortened for the test with
# KUMA_DP_XDS_KEEPALIVE_TIME=5s / _TIMEOUT=2s (defaults 15 s / 15 s).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

export KUMA_DP_XDS_KEEPALIVE_TIME=5s KUMA_DP_XDS_KEEPALIVE_TIMEOUT=2s
start_cp KUMA_STORE_TYPE=memory
mesh_put default
start_workload backend 127.0.0.3 7001 --id b1
start_dp backend default "$(dp_yaml 127.0.0.3 17001 backend 7001)"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
load 127.0.0.2 27001 --count 20 --size 100 --id
assert_eq "$LOAD_FAIL" 0 "traffic before the freeze"

# A bad value is refused at start.
out=$(KUMA_DP_XDS_KEEPALIVE_TIME=1s "$BIN/kuma-dp" run --cp-address "https://$CP_XDS_ADDR" \
    --dataplane-file "$T/dp-web.yaml" --dataplane-var name=x --dataplane-var mesh=default \
    --admin-port 0 2>&1) && fail "keepalive of 1s accepted"
assert_contains "$out" "KUMA_DP_XDS_KEEPALIVE_TIME: invalid duration 1s"

# Idle for longer than a keepalive period first: PINGs are ACKed, nothing drops.
sleep "${KEEPALIVE_IDLE:-6}"
assert_not_contains "$(cat "$T/dp-web.log")" "ADS stream" "stream dropped while kuma-cp answered PINGs"

kill -STOP "$CP_PID"
echo "frozen at $(date -u +%H:%M:%S.%N)"
frozen=$(date +%s)
lost() { grep -q "ADS stream to .* ended" "$T/dp-web.log"; }
wait_for "web notices the frozen control plane" 150 lost
took=$(($(date +%s) - frozen))
[ "$took" -le 10 ] || fail "noticed after ${took}s (keepalive 5s + 2s)"
grep "ADS stream to .* ended" "$T/dp-web.log" | head -1
# Traffic keeps flowing on the last configuration.
load 127.0.0.2 27001 --count 20 --size 100 --id
assert_eq "$LOAD_FAIL" 0 "traffic while kuma-cp is frozen"

kill -CONT "$CP_PID"
reconnected() {
    [ "$(get /meshes/default/dataplanes/web/_overview | jq -r '.dataplaneInsight.subscriptions[-1].status.total.responsesSent // "0"')" != 0 ] &&
        [ "$(grep -c "connected (stream" "$CP_LOG")" -ge 3 ]
}
wait_for "web reconnects" 300 reconnected
# A change made now reaches web: a second backend endpoint.
start_workload backend2 127.0.0.4 7001 --id b2
start_dp backend-2 default "$(dp_yaml 127.0.0.4 17001 backend 7001)"
two() { [ "$(dp_stat web cluster.backend.membership_total)" = 2 ]; }
wait_for "web sees the new endpoint" 150 two
load 127.0.0.2 27001 --count 40 --size 100 --id
assert_eq "$LOAD_FAIL" 0 "traffic after the reconnect"
[ "$(id_count b2)" -ge 1 ] || fail "the new endpoint got no request: $LOAD_OUT"
echo ok
