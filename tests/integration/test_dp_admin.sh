#!/usr/bin/env bash
# kuma-cp reaches a proxy's admin through the proxy's TLS admin listener
# kuma:envoy:admin (on the Dataplane's address at its admin port): GET
# /meshes/{mesh}/dataplanes/{name}/{stats,clusters,xds} and `kumactl inspect
# dataplane --type` return what the proxy's admin returns. The listener only
# lets in clients with a certificate from the envoy admin CA (GlobalSecret
# envoy-admin-ca); unknown dataplanes, bad types and an offline proxy get
# Kuma's error envelope, fast.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
start_workload web 127.0.0.2 7002
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002)"
port=$(dp_admin web)

# The CA is a GlobalSecret, created at start.
api GET /global-secrets/envoy-admin-ca
assert_eq "$HTTP_STATUS" 200 "envoy-admin-ca: $BODY"
jq -r .data <<<"$BODY" | base64 -d >"$T/admin-ca.pem"
openssl x509 -in "$T/admin-ca.pem" -noout -subject | grep -q "Envoy Admin CA" || fail "admin CA subject"

# kuma-cp generated the admin listener on the dataplane's address.
wait_for "admin listener" 100 bash -c "curl -s http://127.0.0.1:$port/config_dump | grep -q '\"kuma:envoy:admin\"'"
cfg=$(dp_config web)
ln=$(jq -c '[.. | objects | select(.name? == "kuma:envoy:admin" and has("address"))][0].address' <<<"$cfg")
assert_contains "$ln" '"127.0.0.2"' "admin listener address"
assert_contains "$ln" "$port" "admin listener port"

# Through kuma-cp: stats, clusters, config dump, the same as the proxy's own.
api GET /meshes/default/dataplanes/web/stats
assert_eq "$HTTP_STATUS" 200 "stats: $BODY"
assert_contains "$BODY" "listener.127.0.0.2_17002.downstream_cx_total:"
assert_contains "$BODY" "server.live: 1"
# The request itself went through the TLS admin listener.
hs=$(dp_stat web listener.127.0.0.2_${port}.ssl.handshake)
[ "${hs:-0}" -ge 1 ] || fail "no TLS handshake on the admin listener: ${hs:-none}"
api GET '/meshes/default/dataplanes/web/stats?format=json&filter=server'
assert_eq "$HTTP_STATUS" 200 "stats json: $BODY"
assert_eq "$(jq -r '.stats | map(select(.name=="server.live")) | .[0].value' <<<"$BODY")" 1 "json stats"
assert_eq "$(jq -r '.stats | map(select(.name | startswith("server.") | not)) | length' <<<"$BODY")" 0 "filter passed on"
api GET /meshes/default/dataplanes/web/clusters
assert_eq "$HTTP_STATUS" 200 "clusters: $BODY"
assert_contains "$BODY" "localhost:7002::observability_name::localhost_7002"
assert_contains "$BODY" "kuma:envoy:admin::"
api GET /meshes/default/dataplanes/web/xds
assert_eq "$HTTP_STATUS" 200 "xds: $BODY"
assert_eq "$(jq -r '[.. | objects | select(.name? == "inbound:127.0.0.2:17002")] | length > 0' <<<"$BODY")" true "config dump"
assert_contains "$BODY" '"[redacted]"'
assert_not_contains "$BODY" "EndpointsConfigDump" "EDS without include_eds"
api GET '/meshes/default/dataplanes/web/xds?include_eds=true'
assert_eq "$HTTP_STATUS" 200 "xds include_eds: $BODY"
assert_contains "$BODY" "EndpointsConfigDump"

# kumactl.
use_cp
out=$(kumactl inspect dataplane web --type stats) || fail "kumactl stats: $out"
assert_contains "$out" "server.live: 1"
out=$(kumactl inspect dataplane web --type clusters) || fail "kumactl clusters: $out"
assert_contains "$out" "localhost:7002::"
out=$(kumactl inspect dataplane web --type config-dump) || fail "kumactl config-dump: $out"
jq -e '.configs' <<<"$out" >/dev/null || fail "config-dump is not JSON: $out"
out=$(kumactl inspect dataplane web --type config-dump --include-eds) || fail "kumactl --include-eds: $out"
assert_contains "$out" "EndpointsConfigDump"
out=$(kumactl inspect dataplane web --type stats --include-eds 2>&1) && fail "--include-eds with stats accepted"
assert_contains "$out" "flag '--include-eds' can be used only when '--type=config-dump'"

# A dataplane on 127.0.0.1 has no TLS admin listener: kuma-cp asks its admin
# over plain HTTP there, as Kuma does.
start_workload local 127.0.0.1 7005
start_dp local default "$(dp_yaml 127.0.0.1 17005 local 7005)"
assert_eq "$(jq '[.. | objects | select(.name? == "kuma:envoy:admin" and has("address"))] | length' <<<"$(dp_config local)")" 0 "admin listener on loopback"
api GET /meshes/default/dataplanes/local/stats
assert_eq "$HTTP_STATUS" 200 "stats of a loopback dataplane: $BODY"
assert_contains "$BODY" "listener.127.0.0.1_17005.downstream_cx_total:"

# Errors: unknown dataplane, unknown type.
api GET /meshes/default/dataplanes/nope/stats
assert_eq "$HTTP_STATUS" 404 "unknown dataplane"
assert_eq "$(jq -r .title <<<"$BODY")" "Could not get dataplane resource"
api GET /meshes/default/dataplanes/web/quit
assert_eq "$HTTP_STATUS" 404 "bad type"
assert_eq "$(jq -r .detail <<<"$BODY")" "invalid admin type: quit"

# The listener wants a client certificate from the admin CA: none, a
# self-signed one, and a plaintext client are all refused; one minted from
# the CA (as kuma-cp's is) gets in.
url="https://127.0.0.2:$port/stats"
curl -s --max-time 5 --cacert "$T/admin-ca.pem" -o /dev/null "$url" && fail "no client certificate accepted"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=kuma-cp \
    -keyout "$T/rogue.key" -out "$T/rogue.crt" 2>/dev/null
curl -s --max-time 5 --cacert "$T/admin-ca.pem" --cert "$T/rogue.crt" --key "$T/rogue.key" -o /dev/null "$url" &&
    fail "self-signed client certificate accepted"
curl -s --max-time 5 -o /dev/null "http://127.0.0.2:$port/stats" && fail "plaintext admin request answered"
awk '/BEGIN EC PRIVATE KEY|BEGIN PRIVATE KEY/,/END/' "$T/admin-ca.pem" >"$T/ca.key"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kuma-cp \
    -keyout "$T/ok.key" -out "$T/ok.csr" 2>/dev/null
openssl x509 -req -in "$T/ok.csr" -CA "$T/admin-ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 1 \
    -out "$T/ok.crt" 2>/dev/null || fail "could not mint a client certificate"
out=$(curl -s --max-time 5 --cacert "$T/admin-ca.pem" --cert "$T/ok.crt" --key "$T/ok.key" "$url") ||
    fail "CA-issued client certificate refused"
assert_contains "$out" "server.live: 1"
# The server certificate names the dataplane's address (curl verified it).

# Offline: the proxy stops; kuma-cp answers with the envelope within its timeouts.
kill -TERM "$(dp_pid web)"
wait "$(dp_pid web)" 2>/dev/null
start=$(date +%s%N)
api GET /meshes/default/dataplanes/web/stats
ms=$((($(date +%s%N) - start) / 1000000))
assert_eq "$HTTP_STATUS" 502 "offline: $BODY"
assert_eq "$(jq -r .title <<<"$BODY")" "Could not execute admin operation"
assert_contains "$(jq -r .detail <<<"$BODY")" "the dataplane is offline"
[ "$ms" -lt 6000 ] || fail "offline answer took ${ms} ms"
echo ok
