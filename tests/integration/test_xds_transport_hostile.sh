#!/usr/bin/env bash
# kuma-cp's DP server transport (src/xds/transport.c, nghttp2 + OpenSSL)
# under hostile input (tests/xds/hostile.js): garbage instead of a TLS
# ClientHello, ALPN without h2, HTTP/1.1, an unknown gRPC method, an
# oversized or compressed message, a bad message flag and a PING flood each
# get a clear refusal, and kuma-cp keeps serving a real ADS client. A second
# kuma-cp on the same DP port fails to bind (no SO_REUSEPORT). kuma-cp does
# not link libgrpc.
. "$(dirname "$0")/lib.sh"
need_xds_node

if ldd "$BIN/kuma-cp" | grep -q libgrpc; then fail "kuma-cp links libgrpc"; fi

start_cp KUMA_STORE_TYPE=memory KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none
xds_node hostile.js || fail "hostile.js failed"
kill -0 "$CP_PID" || fail "kuma-cp died"

log=$(cat "$CP_LOG")
assert_contains "$log" "TLS handshake with ipv4:127.0.0.1:"
assert_contains "$log" "refusing a call from ipv4:127.0.0.1:"
assert_contains "$log" "too many pings, sending GOAWAY"
assert_contains "$log" "default.web-1 connected"

# A second control plane on the same DP port must fail, not share it.
port=${CP_XDS_ADDR##*:}
out=$(env KUMA_GENERAL_WORK_DIR="$T/cp2" KUMA_STORE_TYPE=memory KUMA_API_SERVER_HTTP_PORT=0 \
    KUMA_API_SERVER_HTTP_INTERFACE=127.0.0.1 KUMA_API_SERVER_HTTPS_PORT=0 KUMA_DIAGNOSTICS_SERVER_PORT=0 \
    KUMA_MONITORING_ASSIGNMENT_SERVER_PORT=0 KUMA_DP_SERVER_PORT="$port" \
    timeout 20 "$BIN/kuma-cp" run 2>&1) && fail "a second kuma-cp bound the DP port"
assert_contains "$out" "could not bind the DP server to 0.0.0.0:$port"

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
