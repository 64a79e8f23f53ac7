#!/usr/bin/env bash
# The API over HTTPS (KUMA_API_SERVER_HTTPS_PORT) with kuma-cp's own
# certificate, generated once into <workDir>/kuma-cp.crt and .key (mode 0600)
# and kept across restarts: curl and kumactl trust it with the certificate as
# CA file and refuse the connection without it.
. "$(dirname "$0")/lib.sh"

start_cp
assert_eq "$(stat -c %a "$CP_CA_FILE")" 600
assert_eq "$(stat -c %a "$CP_WORKDIR/kuma-cp.key")" 600
txt=$(openssl x509 -in "$CP_CA_FILE" -noout -text)
assert_contains "$txt" "DNS:localhost"
assert_contains "$txt" "IP Address:127.0.0.1"
assert_contains "$txt" "DNS:$(hostname)"
assert_contains "$txt" "TLS Web Server Authentication"

out=$(curl -sS --cacert "$CP_CA_FILE" "$CP_HTTPS_URL/") || fail "HTTPS with the CA file: $out"
assert_eq "$(jq -r .product <<<"$out")" Kuma
out=$(curl -sS --cacert "$CP_CA_FILE" "${CP_HTTPS_URL/localhost/127.0.0.1}/meshes") || fail "HTTPS by IP"
assert_eq "$(jq -r '.items[0].name' <<<"$out")" default
# Without the CA file: certificate verification fails (curl exit 60).
curl -sS -o /dev/null "$CP_HTTPS_URL/" 2>"$T/err"
assert_eq "$?" 60 "curl without the CA file"
assert_contains "$(cat "$T/err")" "SSL certificate problem"
# Plain HTTP to the HTTPS port gets no API answer.
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${CP_HTTPS_URL##*:}/")
[ "$st" != 200 ] || fail "plain HTTP answered on the HTTPS port"
# Pagination links follow the scheme.
next=$(curl -sS --cacert "$CP_CA_FILE" "$CP_HTTPS_URL/meshes?size=1" | jq -r .next)
api PUT /meshes/m2 '{"type":"Mesh","name":"m2"}'
next=$(curl -sS --cacert "$CP_CA_FILE" "$CP_HTTPS_URL/meshes?size=1" | jq -r .next)
assert_contains "$next" "https://"

# kumactl with --ca-cert-file.
kumactl config control-planes add --name tls --address "$CP_HTTPS_URL" --ca-cert-file "$CP_CA_FILE" \
    --overwrite >/dev/null || fail "kumactl add over HTTPS"
out=$(kumactl get meshes) || fail "kumactl get meshes over HTTPS: $out"
assert_contains "$out" "m2"
# Without it (the reachability check of `add` skips verification, as Kuma's).
kumactl config control-planes add --name notls --address "$CP_HTTPS_URL" --overwrite >/dev/null ||
    fail "kumactl add without a CA file"
out=$(kumactl get meshes 2>&1) && fail "kumactl trusted an unknown certificate"
assert_contains "$out" "certificate"

# Kept across restarts; the admin token is served over HTTPS too.
cert=$(cat "$CP_CA_FILE")
stop_cp
start_cp
assert_eq "$(cat "$CP_CA_FILE")" "$cert" "certificate regenerated on restart"
curl -sS --cacert "$CP_CA_FILE" -o /dev/null "$CP_HTTPS_URL/" || fail "HTTPS after restart"

# A configured certificate (kumactl generate tls-certificate) replaces it.
stop_cp
kumactl generate tls-certificate --type server --hostname localhost,127.0.0.1 --key-type ecdsa \
    --cert-file "$T/api.crt" --key-file "$T/api.key" >/dev/null || fail "generate tls-certificate"
start_cp KUMA_API_SERVER_HTTPS_TLS_CERT_FILE="$T/api.crt" KUMA_API_SERVER_HTTPS_TLS_KEY_FILE="$T/api.key"
assert_eq "$(get /config | jq -r .apiServer.https.tlsCertFile)" "$T/api.crt"
# (curl over OpenSSL refuses certificates with an empty issuer name, which
# Kuma's generated certificates have; openssl s_client shows what is served.)
served=$(openssl s_client -connect "127.0.0.1:${CP_HTTPS_URL##*:}" -servername localhost </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint)
assert_eq "$served" "$(openssl x509 -in "$T/api.crt" -noout -fingerprint)" "configured certificate served"

# HTTPS can be switched off.
stop_cp
start_cp KUMA_API_SERVER_HTTPS_ENABLED=false
assert_eq "$(awk '$1=="api-https"{print $2}' "$CP_WORKDIR/listeners")" 0
echo "ok"
