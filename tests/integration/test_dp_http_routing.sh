#!/usr/bin/env bash
# HTTP awareness, routing: services tagged kuma.io/protocol: http get
# kuma-cp's HttpConnectionManager on both sides (kuma-dp accepts it, no
# NACK), with mesh mTLS between the proxies. A legacy TrafficRoute routes
# /v1 to version v1 and /v2 to version v2 (two backends with `version`
# tags), a header match sends x-version: v2 to v2, anything else goes to the
# default destination (v1); an inbound strips x-kuma-tags as Kuma's does; the
# per-request counters move under Envoy's names (a split's under the real
# clusters kuma-cp sent, also for a MeshHTTPRoute split), in /stats and
# /stats/prometheus.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_http_workload() { # NAME ADDR PORT ID
    "$DPTOOL" http-server "$2" "$3" --id "$4" >"$T/wl-$1.log" 2>&1 &
    PIDS+=($!)
    wait_for "http workload $1" 50 grep -q listening "$T/wl-$1.log"
}

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
start_http_workload v1 127.0.0.3 7001 v1
start_http_workload v2 127.0.0.5 7005 v2
start_dp backend-v1 default "$(dp_yaml 127.0.0.3 17001 backend 7001 "" "version=v1 kuma.io/protocol=http")"
start_dp backend-v2 default "$(dp_yaml 127.0.0.5 17005 backend 7005 "" "version=v2 kuma.io/protocol=http")"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
wait_for "two backend endpoints" 100 test "$(dp_stat web cluster.backend.membership_total)" = 2

api PUT /meshes/default/traffic-routes/by-path '{"type":"TrafficRoute","mesh":"default","name":"by-path","sources":[{"match":{"kuma.io/service":"web"}}],"destinations":[{"match":{"kuma.io/service":"backend"}}],"conf":{"http":[{"match":{"path":{"prefix":"/v1"}},"destination":{"kuma.io/service":"backend","version":"v1"}},{"match":{"path":{"prefix":"/v2"}},"destination":{"kuma.io/service":"backend","version":"v2"}},{"match":{"headers":{"x-version":{"exact":"v2"}}},"destination":{"kuma.io/service":"backend","version":"v2"}}],"destination":{"kuma.io/service":"backend","version":"v1"}}}'
case "$HTTP_STATUS" in 200 | 201) ;; *) fail "TrafficRoute: $HTTP_STATUS $BODY" ;; esac

# The outbound is an HTTP connection manager once the route arrives.
hcm() { local c; c=$(dp_config web); [[ $c == *envoy.filters.network.http_connection_manager* ]]; }
wait_for "the HTTP outbound listener" 100 hcm
routed() { [ "$(curl -s -m 2 http://127.0.0.2:27001/v2/x)" = "v2 GET /v2/x" ]; }
wait_for "the path routes" 100 routed
# The real clusters kuma-cp sent for the /v1 and /v2 routes (subsets v1, v2).
c1=$(dp_route_stat_names web outbound:127.0.0.2:27001 /v1)
c2=$(dp_route_stat_names web outbound:127.0.0.2:27001 /v2)
[ -n "$c1" ] && [ -n "$c2" ] && [ "$c1" != "$c2" ] || fail "route clusters: /v1 '$c1' /v2 '$c2'"

# Routing by path, many times (both backends, both directions).
for i in $(seq 10); do
    assert_eq "$(curl -s -m 5 "http://127.0.0.2:27001/v1/a?i=$i")" "v1 GET /v1/a?i=$i" "route /v1"
    assert_eq "$(curl -s -m 5 "http://127.0.0.2:27001/v2/b?i=$i")" "v2 GET /v2/b?i=$i" "route /v2"
done
# Header routing, and the default destination.
assert_eq "$(curl -s -m 5 -H 'x-version: v2' http://127.0.0.2:27001/other)" "v2 GET /other" "header route"
assert_eq "$(curl -s -m 5 http://127.0.0.2:27001/other)" "v1 GET /other" "default route"
# A POST body goes through (Content-Length both ways).
assert_eq "$(curl -s -m 5 -d 'hello=world' http://127.0.0.2:27001/v2/post)" $'v2 POST /v2/post\nhello=world' "POST body"
# The inbound strips x-kuma-tags (Kuma's route configuration for inbounds).
out=$(curl -s -m 5 -H 'x-kuma-tags: &kuma.io/service=spoofed&' -H 'x-after: 1' http://127.0.0.2:27001/v1/tags)
assert_eq "$out" "v1 GET /v1/tags" "x-kuma-tags stripped by the inbound"
# Envoy's request headers: x-request-id (a UUID, or the client's, kept
# across both proxies) and x-forwarded-proto (the client's scheme).
out=$(curl -s -m 5 http://127.0.0.2:27001/v1/headers)
grep -Eq '^x-request-id: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$out" ||
    fail "no x-request-id UUID: $out"
assert_eq "$(grep -c '^x-request-id:' <<<"$out")" 1 "one x-request-id"
assert_eq "$(grep '^x-forwarded-proto:' <<<"$out")" "x-forwarded-proto: http" "x-forwarded-proto"
out=$(curl -s -m 5 -H 'x-request-id: client-id-1' http://127.0.0.2:27001/v2/headers)
assert_eq "$(grep '^x-request-id:' <<<"$out")" "x-request-id: client-id-1" "client's x-request-id kept"
# Status codes come back as they are, and are counted per class and code
# (503s while the routes were warming up may already be counted).
s5xx0=$(dp_stat web http.backend.downstream_rq_5xx)
c2503=$(dp_stat web "cluster.$c2.upstream_rq_503")
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.2:27001/v2/status/503)
assert_eq "$code" 503 "upstream status"

# Per-request counters under Envoy's names: the outbound's HCM and the
# real clusters of the routes on web; the inbound's HCM and local cluster
# on the backends.
stats=$(curl -s "http://127.0.0.1:$(dp_admin web)/stats")
rq_total=$(awk '$1 ~ /^http\.backend\.downstream_rq_total:$/{print $2}' <<<"$stats")
[ "${rq_total:-0}" -ge 25 ] || fail "http.backend.downstream_rq_total=${rq_total:-none}: $(grep '^http\.' <<<"$stats")"
r2xx=$(awk '$1 ~ /^http\.backend\.downstream_rq_2xx:$/{print $2}' <<<"$stats")
r5xx=$(awk '$1 ~ /^http\.backend\.downstream_rq_5xx:$/{print $2}' <<<"$stats")
assert_eq "$((r5xx - ${s5xx0:-0}))" 1 "downstream_rq_5xx"
[ "${r2xx:-0}" -ge 24 ] || fail "downstream_rq_2xx=${r2xx:-none}"
# Requests are counted under the real clusters kuma-cp sent for each route
# (the v1 and v2 subsets), as Envoy counts a split under the cluster it
# picked; the flattened clusters show nowhere.
cstat() { awk -v n="cluster.$1.$2:" '$1==n{print $2}' <<<"$stats"; }
echo "route clusters: /v1 $c1 2xx=$(cstat "$c1" upstream_rq_2xx), /v2 $c2 2xx=$(cstat "$c2" upstream_rq_2xx) 503=$(cstat "$c2" upstream_rq_503)"
assert_eq "$(($(cstat "$c2" upstream_rq_503) - ${c2503:-0}))" 1 "cluster.$c2.upstream_rq_503"
[ "$(cstat "$c1" upstream_rq_2xx)" -ge 13 ] || fail "cluster.$c1.upstream_rq_2xx=$(cstat "$c1" upstream_rq_2xx)"
[ "$(cstat "$c2" upstream_rq_2xx)" -ge 13 ] || fail "cluster.$c2.upstream_rq_2xx=$(cstat "$c2" upstream_rq_2xx)"
[ "$(cstat "$c2" upstream_rq_completed)" -ge 14 ] || fail "cluster.$c2.upstream_rq_completed=$(cstat "$c2" upstream_rq_completed)"
[ "$(cstat "$c2" upstream_rq_active)" = 0 ] || fail "cluster.$c2.upstream_rq_active=$(cstat "$c2" upstream_rq_active)"
[ "$(cstat "$c2" upstream_cx_total)" -ge 1 ] || fail "cluster.$c2.upstream_cx_total=$(cstat "$c2" upstream_cx_total)"
[ "$(cstat "$c2" upstream_cx_rx_bytes_total)" -gt 0 ] || fail "cluster.$c2.upstream_cx_rx_bytes_total=$(cstat "$c2" upstream_cx_rx_bytes_total)"
assert_not_contains "$stats" "weighted"
assert_not_contains "$(curl -s "http://127.0.0.1:$(dp_admin web)/clusters")" "weighted"
assert_not_contains "$(dp_config web)" "_weighted"
v1in=$(dp_stat backend-v1 cluster.localhost_7001.upstream_rq_2xx)
v2in=$(dp_stat backend-v2 cluster.localhost_7005.upstream_rq_2xx)
[ "${v1in:-0}" -ge 12 ] || fail "backend-v1 inbound upstream_rq_2xx=${v1in:-none}"
[ "${v2in:-0}" -ge 11 ] || fail "backend-v2 inbound upstream_rq_2xx=${v2in:-none}"
prom=$(curl -s "http://127.0.0.1:$(dp_admin web)/stats/prometheus")
assert_contains "$prom" 'envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="backend"}'
assert_contains "$prom" '# TYPE envoy_cluster_upstream_rq counter'
grep -Eq '^envoy_cluster_upstream_rq\{envoy_response_code="503",envoy_cluster_name="'"$c2"'"\} [1-9][0-9]*$' <<<"$prom" ||
    fail "no envoy_cluster_upstream_rq{503} of $c2: $(grep upstream_rq <<<"$prom")"
assert_not_contains "$prom" "weighted"


# A MeshHTTPRoute splitting /split 25/75 between the MeshServiceSubsets v1
# and v2: each request is counted under the real cluster kuma-cp sent for
# the subset that served it (names and weights from /config_dump; Kuma's
# PathPrefix /split is an exact /split route and a /split/ prefix route).
api DELETE /meshes/default/traffic-routes/by-path
api PUT /meshes/default/meshhttproutes/split '{"type":"MeshHTTPRoute","mesh":"default","name":"split","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"MeshService","name":"backend"},"rules":[{"matches":[{"path":{"type":"PathPrefix","value":"/split"}}],"default":{"backendRefs":[{"kind":"MeshServiceSubset","name":"backend","tags":{"version":"v1"},"weight":25},{"kind":"MeshServiceSubset","name":"backend","tags":{"version":"v2"},"weight":75}]}}]}]}}'
case "$HTTP_STATUS" in 200 | 201) ;; *) fail "MeshHTTPRoute: $HTTP_STATUS $BODY" ;; esac
split_names() {
    dp_config web | jq -r '
        (.configs[1].dynamicActiveClusters | map(.cluster | {(.name): (.altStatName // .name)})
            | add) as $stat
        | .configs[0].dynamicListeners[] | select(.name == "outbound:127.0.0.2:27001")
        | .activeState.listener.filterChains[]?.filters[]?.typedConfig.routeConfig?
        | .virtualHosts[]?.routes[]? | select(.match.path == "/split")
        | .route.weightedClusters?.clusters[]? | "\(.weight) \($stat[.name] // .name)"'
}
split_ready() { [ "$(split_names | wc -l)" = 2 ]; }
wait_for "the MeshHTTPRoute split" 100 split_ready
names=$(split_names)
m1=$(awk '$1==25{print $2}' <<<"$names") m2=$(awk '$1==75{print $2}' <<<"$names")
[ -n "$m1" ] && [ -n "$m2" ] && [ "$m1" != "$m2" ] || fail "MeshHTTPRoute split clusters: $names"
stats=$(curl -s "http://127.0.0.1:$(dp_admin web)/stats")
b1=$(cstat "$m1" upstream_rq_2xx) b2=$(cstat "$m2" upstream_rq_2xx)
# Concurrent clients, so the split opens upstream connections to both
# subsets (sequential ones would mostly reuse one pooled connection).
out=$(curl -s -m 10 --parallel --parallel-immediate --parallel-max 10 \
    $(for i in $(seq 40); do echo "http://127.0.0.2:27001/split/$i"; done))
n1=$(grep -c '^v1 GET /split/' <<<"$out" || true)
n2=$(grep -c '^v2 GET /split/' <<<"$out" || true)
echo "MeshHTTPRoute 25/75 split: v1=$n1 v2=$n2"
# (Not asserted: the share. The worker's pool of idle upstream connections
# hands over any idle connection of the split, so requests tend to stay on
# the subsets of the connections already open.)
assert_eq "$((n1 + n2))" 40 "split requests served"
stats=$(curl -s "http://127.0.0.1:$(dp_admin web)/stats")
assert_eq "$(($(cstat "$m1" upstream_rq_2xx) - ${b1:-0}))" "$n1" "cluster.$m1.upstream_rq_2xx (v1)"
assert_eq "$(($(cstat "$m2" upstream_rq_2xx) - ${b2:-0}))" "$n2" "cluster.$m2.upstream_rq_2xx (v2)"
assert_not_contains "$stats" "weighted"

assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
