#!/usr/bin/env bash
# The real xDS client of @grpc/grpc-js-xds resolves xds:///echo through
# kuma-cp and follows an endpoint change (tests/xds/grpc_xds.js), through a
# relay that adds TLS and the dataplane token (tests/xds/relay.js).
. "$(dirname "$0")/lib.sh"
need_xds_node

start_cp KUMA_STORE_TYPE=memory

xds_node grpc_xds.js || fail "grpc_xds.js failed"
assert_contains "$(cat "$CP_LOG")" "default.client-1 connected" "the proxyless client connected"
assert_contains "$(cat "$CP_LOG")" "proxyless gRPC" "detected as proxyless"

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
