#!/usr/bin/env bash
# HTTP through kuma-dp: wrk against dptool's HTTP server directly, then
# through two proxies with mesh mTLS (web's outbound HCM → backend's inbound
# HCM), keep-alive clients. Run inside a network namespace (fixed 127.0.0.x
# addresses), e.g.:
#   ip netns add b; ip netns exec b ip link set lo up
#   ip netns exec b env BIN=$PWD/build bash bench/http/run.sh [SECONDS] [CONNECTIONS]
. "$(dirname "$0")/../../tests/integration/lib.sh"
. "$(dirname "$0")/../../tests/integration/dp_lib.sh"
secs=${1:-5} conns=${2:-16}
command -v wrk >/dev/null || fail "wrk missing"
start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
"$DPTOOL" http-server 127.0.0.3 7001 --id b1 >"$T/wl.log" 2>&1 &
PIDS+=($!)
wait_for "http workload" 50 grep -q listening "$T/wl.log"
start_dp backend default "$(dp_yaml 127.0.0.3 17001 backend 7001 "" "kuma.io/protocol=http")"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
ready() { [ "$(curl -s -m 2 http://127.0.0.2:27001/ready)" = "b1 GET /ready" ]; }
wait_for "the route" 100 ready
run() { wrk -t2 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec|Latency|Non-2xx|Socket errors/'; }
echo "== direct (dptool http-server), $conns connections"
run http://127.0.0.3:7001/x
echo "== through web's and backend's kuma-dp (mTLS between them), $conns connections"
run http://127.0.0.2:27001/x
hs=$(dp_stat web cluster.backend.ssl.handshake)
rq=$(dp_stat web http.backend.downstream_rq_total)
echo "proxy-to-proxy TLS handshakes: $hs for $rq requests"
echo "kuma-dp RSS: web $(dp_rss_kb web) KiB, backend $(dp_rss_kb backend) KiB"
