#!/usr/bin/env bash
# kuma-dp end to end, within an mTLS mesh: client → web's outbound listener →
# mTLS → backend's inbound listener (RBAC) → echo workload. Replies are
# byte-exact (small and 256 KiB payloads); both proxies count the TLS
# handshakes and RBAC decisions in /stats; kuma-cp records the ACKs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
[ "$HTTP_STATUS" = 201 ] || [ "$HTTP_STATUS" = 200 ] || fail "permission: $HTTP_STATUS $BODY"

start_backend default
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"

load 127.0.0.2 27001 --count 100 --size 1000
assert_eq "$LOAD_FAIL" 0 "failed small requests ($(head -3 "$T/load.err"))"
assert_eq "$LOAD_OK" 100 "small requests"
load 127.0.0.2 27001 --count 20 --size 262144 --concurrency 4
assert_eq "$LOAD_FAIL" 0 "failed large requests ($(head -3 "$T/load.err"))"
assert_eq "$LOAD_OK" 20 "large requests"

# The path really was mTLS with RBAC on the inbound side.
hs=$(dp_stat backend listener.127.0.0.3_17001.ssl.handshake)
[ "${hs:-0}" -ge 120 ] || fail "inbound TLS handshakes: ${hs:-none}"
assert_eq "$(dp_stat backend inbound_127.0.0.3_17001.rbac.allowed)" 120 "RBAC allowed"
up=$(dp_stat web cluster.backend.ssl.handshake)
[ "${up:-0}" -ge 1 ] || fail "outbound TLS handshakes: ${up:-none}"
assert_eq "$(dp_stat web cluster.backend.upstream_cx_total)" 120 "upstream connections"

# kuma-cp saw the proxies ACK every type and none rejected.
ov=$(get /meshes/default/dataplanes/web/_overview)
for t in cds eds lds sds; do
    [ "$(jq -r ".dataplaneInsight.subscriptions[-1].status.$t.responsesAcknowledged" <<<"$ov")" -ge 1 ] ||
        fail "$t not acknowledged: $ov"
    assert_eq "$(jq -r ".dataplaneInsight.subscriptions[-1].status.$t.responsesRejected // 0" <<<"$ov")" 0 "$t rejected"
done
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
