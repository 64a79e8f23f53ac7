#!/usr/bin/env bash
# Cross-mesh gateways from the client side (tests/xds/crossmesh.js): a
# dataplane of one mesh declares an outbound tagged kuma.io/mesh naming
# another mesh's cross-mesh MeshGateway and gets the cluster as Kuma names
# it, the gateway's endpoints, mTLS with the gateway mesh's CA over SDS;
# changes in the gateway mesh are pushed; nothing else of another mesh
# reaches any proxy.
. "$(dirname "$0")/lib.sh"
need_xds_node

start_cp KUMA_STORE_TYPE=memory KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none
use_cp

# Kuma's cluster name, computed independently: sha256 over the sorted tags
# (key then value), first 8 bytes in hex, then _<mesh>.
hex=$(printf '%s' 'kuma.io/meshgwmeshkuma.io/serviceedge' | sha256sum | cut -c1-16)
xds_node crossmesh.js CROSS_CLUSTER="edge-${hex}_gwmesh" >"$T/crossmesh.out" 2>&1 ||
    fail "crossmesh.js failed: $(cat "$T/crossmesh.out")"
assert_contains "$(cat "$T/crossmesh.out")" "crossmesh.js: ok"

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
