#!/usr/bin/env bash
# xDS over ADS with a raw client and Envoy's real protos (tests/xds/ads_raw.js):
# registration from node metadata, LDS/CDS/EDS with Kuma's names, byte-exact
# round trip, ACK, NACK without a resend loop, push on change, mesh isolation,
# deregistration after the stream ends.
. "$(dirname "$0")/lib.sh"
need_xds_node

start_cp KUMA_STORE_TYPE=memory KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY=500ms \
    KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none
assert_contains "$(cat "$CP_WORKDIR/listeners")" "dp-server " "listeners file names the DP server"

xds_node ads_raw.js || fail "ads_raw.js failed"

log=$(cat "$CP_LOG")
assert_contains "$log" "default.web-1: dataplane registered from node metadata"
assert_contains "$log" "rejected (NACK): test: listener rejected on purpose"
assert_contains "$log" "default.web-1: dataplane deregistered"
nacks=$(grep -c "rejected (NACK)" "$CP_LOG")
assert_eq "$nacks" "1" "one NACK logged, no retry loop"

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
