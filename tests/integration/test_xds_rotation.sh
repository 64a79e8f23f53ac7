#!/usr/bin/env bash
# Workload certificate rotation (tests/xds/rotation.js): a 10 s leaf is
# rotated by kuma-cp's timer at ~8 s and pushed over SDS on the same stream;
# a tag change re-issues it at once.
. "$(dirname "$0")/lib.sh"
need_xds_node

start_cp KUMA_STORE_TYPE=memory KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none
xds_node rotation.js || fail "rotation.js failed"

log=$(cat "$CP_LOG")
assert_contains "$log" "default.web-1: workload certificate issued by builtin backend ca-1"
assert_contains "$log" "default.web-1: workload certificate rotated by builtin backend ca-1"
assert_contains "$log" "default.web-1: workload certificate re-issued (inputs changed) by builtin backend ca-1"
assert_not_contains "$log" "PRIVATE KEY"

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
