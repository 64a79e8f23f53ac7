#!/usr/bin/env bash
# kuma-dp's ADS transport (gRPC over nghttp2 + OpenSSL, docs/dp-xds.md
# "Transport") against a real kuma-cp: kuma-cp's certificate verified for a
# host name (DNS SAN) as for an IP; a bad token ends the stream with kuma-cp's
# gRPC status 16 and message; a CA that did not sign kuma-cp's certificate
# fails the handshake with the verification error; a CA file without a
# certificate stops kuma-dp at start; kuma-cp's GOAWAY at shutdown ends the
# stream and the proxy reconnects to the restarted kuma-cp; no libgrpc.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

if ldd "$BIN/kuma-dp" | grep -q libgrpc; then fail "kuma-dp links libgrpc"; fi

start_cp # the default store: a restart keeps the token signing keys
mesh_put default
XDS_PORT=${CP_XDS_ADDR#*:}
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002)"

# bg_dp NAME ARGS...: a kuma-dp for the Dataplane "NAME" in the background,
# its log in $T/NAME.log.
bg_dp() {
    local n=$1
    shift
    "$BIN/kuma-dp" run --dataplane-file "$T/${DPFILE:-dp-web.yaml}" --dataplane-var "name=$n" \
        --dataplane-var mesh=default --admin-port 0 "$@" >/dev/null 2>"$T/$n.log" &
    BG=$!
    PIDS+=($BG)
}
logged() { grep -q "$2" "$T/$1.log"; }
stop_bg() { kill -TERM "$BG" && wait "$BG"; }

# By host name: the DNS SAN "localhost" of kuma-cp's certificate.
dp_token byname default
dp_yaml 127.0.0.4 17004 byname 7004 >"$T/dp-byname.yaml"
DPFILE=dp-byname.yaml bg_dp byname --cp-address "https://localhost:$XDS_PORT" --ca-cert-file "$CP_CA_FILE" \
    --dataplane-token-file "$T/token-byname"
wait_for "configuration over https://localhost" 150 logged byname "first configuration from the control plane applied"
stop_bg || fail "kuma-dp byname did not stop cleanly"
assert_not_contains "$(cat "$T/byname.log")" "ADS stream" "stream error while connected by name"

# A token kuma-cp refuses: its grpc-status and grpc-message, then backoff.
printf 'not-a-token' >"$T/bad.token"
bg_dp badtoken --cp-address "https://$CP_XDS_ADDR" --ca-cert-file "$CP_CA_FILE" \
    --dataplane-token-file "$T/bad.token"
wait_for "the refusal" 100 logged badtoken "ended: status 16: authentication failed"
wait_for "a retry" 50 logged badtoken "reconnecting to $CP_XDS_ADDR"
stop_bg

# Another CA: the handshake fails with the verification error.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other \
    -keyout "$T/other.key" -out "$T/other.crt" -days 1 2>/dev/null || fail "openssl"
bg_dp wrongca --cp-address "https://$CP_XDS_ADDR" --ca-cert-file "$T/other.crt" \
    --dataplane-token-file "$T/bad.token"
wait_for "the verification failure" 100 logged wrongca "status 14: TLS handshake with $CP_XDS_ADDR: certificate verify failed"
stop_bg

# A CA file without a certificate: refused at start.
printf 'not a certificate\n' >"$T/none.crt"
out=$("$BIN/kuma-dp" run --cp-address "https://$CP_XDS_ADDR" --ca-cert-file "$T/none.crt" \
    --dataplane-file "$T/dp-web.yaml" --dataplane-var name=x --dataplane-var mesh=default \
    --admin-port 0 2>&1) && fail "a CA file without a certificate accepted"
assert_contains "$out" "the CA bundle (--ca-cert-file) holds no PEM certificate"

# kuma-cp shuts down: GOAWAY ends the stream; the proxy keeps serving and
# reconnects to the restarted kuma-cp.
stop_cp TERM
wait_for "web sees the GOAWAY" 100 logged dp-web "ended: status 14: kuma-cp sent GOAWAY"
dp_ready web || fail "web not ready without a control plane"
start_cp KUMA_DP_SERVER_PORT="$XDS_PORT"
online() { [ "$(get /meshes/default/dataplanes/web/_overview | jq -r '.dataplaneInsight.subscriptions[-1].disconnectTime // "none"')" = none ] &&
    [ "$(get /meshes/default/dataplanes/web/_overview | jq -r '.dataplaneInsight.subscriptions | length')" -ge 1 ]; }
wait_for "web reconnects" 150 online
n_streams=$(grep -c "ADS stream to" "$T/dp-web.log")
sleep 2
# Connected again: no stream ended since.
assert_eq "$(grep -c "ADS stream to" "$T/dp-web.log")" "$n_streams" "streams ended after the reconnect"
echo ok
