#!/usr/bin/env bash
# TrafficRoute split 80/20 between two versions of a service, through real
# proxies: the weighted clusters kuma-cp generates (subsets by `version`) are
# honoured within tolerance, and a change of the split is followed live.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
start_workload v1 127.0.0.3 7001 --id v1
start_workload v2 127.0.0.5 7005 --id v2
start_dp backend-v1 default "$(dp_yaml 127.0.0.3 17001 backend 7001 "" "version=v1")"
start_dp backend-v2 default "$(dp_yaml 127.0.0.5 17005 backend 7005 "" "version=v2")"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
wait_for "two backend endpoints" 100 test "$(dp_stat web cluster.backend.membership_total)" = 2

split() { # W1 W2
    api PUT /meshes/default/traffic-routes/split "{\"type\":\"TrafficRoute\",\"mesh\":\"default\",\"name\":\"split\",\"sources\":[{\"match\":{\"kuma.io/service\":\"web\"}}],\"destinations\":[{\"match\":{\"kuma.io/service\":\"backend\"}}],\"conf\":{\"split\":[{\"weight\":$1,\"destination\":{\"kuma.io/service\":\"backend\",\"version\":\"v1\"}},{\"weight\":$2,\"destination\":{\"kuma.io/service\":\"backend\",\"version\":\"v2\"}}]}}"
    case "$HTTP_STATUS" in 200 | 201) ;; *) fail "TrafficRoute: $HTTP_STATUS $BODY" ;; esac
}
split 80 20
weighted() { [ "$(dp_split_stat_names web outbound:127.0.0.2:27001 | wc -l)" = 2 ]; }
wait_for "the weighted listener" 100 weighted
# The real clusters of the split (Envoy counts a split under the cluster it
# picked): the 80 one is v1's subset, the 20 one v2's.
names=$(dp_split_stat_names web outbound:127.0.0.2:27001)
c1=$(awk '$1==80{print $2}' <<<"$names") c2=$(awk '$1==20{print $2}' <<<"$names")
[ -n "$c1" ] && [ -n "$c2" ] && [ "$c1" != "$c2" ] || fail "split clusters: $names"
load 127.0.0.2 27001 --count 200 --size 100 --id
assert_eq "$LOAD_FAIL" 0 "failed requests"
v1=$(id_count v1) v2=$(id_count v2)
echo "80/20 split: v1=$v1 v2=$v2"
[ "${v1:-0}" -ge 150 ] && [ "${v1:-0}" -le 170 ] || fail "v1 got ${v1:-0} of 200, want 160±10"
[ "${v2:-0}" -ge 30 ] && [ "${v2:-0}" -le 50 ] || fail "v2 got ${v2:-0} of 200, want 40±10"
# Each connection is counted under the real cluster it went to, and the
# flattened cluster shows nowhere.
stats=$(curl -s "http://127.0.0.1:$(dp_admin web)/stats")
cx1=$(awk -v n="cluster.$c1.upstream_cx_total:" '$1==n{print $2}' <<<"$stats")
cx2=$(awk -v n="cluster.$c2.upstream_cx_total:" '$1==n{print $2}' <<<"$stats")
echo "upstream_cx_total: $c1=$cx1 $c2=$cx2"
[ "${cx1:-0}" -ge "$v1" ] || fail "cluster.$c1.upstream_cx_total=${cx1:-none}, want >= $v1"
[ "${cx2:-0}" -ge "$v2" ] || fail "cluster.$c2.upstream_cx_total=${cx2:-none}, want >= $v2"
tx1=$(awk -v n="cluster.$c1.upstream_cx_tx_bytes_total:" '$1==n{print $2}' <<<"$stats")
[ "${tx1:-0}" -ge $((v1 * 100)) ] || fail "cluster.$c1.upstream_cx_tx_bytes_total=${tx1:-none}"
assert_not_contains "$stats" "weighted"
assert_not_contains "$(curl -s "http://127.0.0.1:$(dp_admin web)/stats/prometheus")" "weighted"
assert_not_contains "$(curl -s "http://127.0.0.1:$(dp_admin web)/clusters")" "weighted"
assert_not_contains "$(dp_config web)" ":weighted"

# A live change of the split (kuma-cp sends a single remaining destination
# without the subset's metadata_match, so 0/100 is not tested here).
split 20 80
flipped() { load 127.0.0.2 27001 --count 20 --size 10 --id; [ "$(id_count v2)" = 16 ]; }
wait_for "the 20/80 split" 100 flipped
load 127.0.0.2 27001 --count 200 --size 100 --id
assert_eq "$LOAD_FAIL" 0 "failed requests after the change"
v1=$(id_count v1) v2=$(id_count v2)
echo "20/80 split: v1=$v1 v2=$v2"
[ "${v2:-0}" -ge 150 ] && [ "${v2:-0}" -le 170 ] || fail "v2 got ${v2:-0} of 200, want 160±10"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
