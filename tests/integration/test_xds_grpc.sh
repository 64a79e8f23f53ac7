#!/usr/bin/env bash
# The real xDS client of @grpc/grpc-js-xds resolves xds:///echo through
# kuma-cp and follows an endpoint change (tests/xds/grpc_xds.js), through a
# relay that adds TLS and the dataplane token (tests/xds/relay.js).
. "$(dirname "$0")/lib.sh"
XDS_TESTS=$(cd "$(dirname "$0")/../xds" && pwd)
[ -d "$XDS_TESTS/node_modules/@grpc/grpc-js-xds" ] ||
    fail "tests/xds/node_modules missing: run scripts/setup.sh --test (npm ci in tests/xds)"

start_cp KUMA_STORE_TYPE=memory

XDS_CA="$CP_WORKDIR/kuma-cp.crt" XDS_ADDR="$CP_XDS_ADDR" CP_URL="$CP_URL" node "$XDS_TESTS/grpc_xds.js" || fail "grpc_xds.js failed"
assert_contains "$(cat "$CP_LOG")" "default.client-1 connected" "the proxyless client connected"
assert_contains "$(cat "$CP_LOG")" "proxyless gRPC" "detected as proxyless"

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
