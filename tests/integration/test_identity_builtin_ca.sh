#!/usr/bin/env bash
# Builtin CA per mesh: Kuma's Secrets <mesh>.ca-builtin-{cert,key}-<backend>,
# subject O=Kuma, OU=Mesh, CN=<mesh>, URI SAN spiffe://<mesh>, CA:TRUE,
# keyCertSign/cRLSign, validity from caCert.expiration; RSA-2048 by default and
# ECDSA P-256 with caCert.keyType (this project's extension). One CA per mesh,
# never regenerated (update, restart), deleted with its mesh.
. "$(dirname "$0")/lib.sh"

start_cp
mesh() { # NAME BACKEND CONF
    printf '{"type":"Mesh","name":"%s","mtls":{"enabledBackend":"%s","backends":[{"name":"%s","type":"builtin","conf":%s}]}}' \
        "$1" "$2" "$2" "$3"
}

api PUT /meshes/rsa "$(mesh rsa ca-1 '{"caCert":{"expiration":"2y"}}')"
assert_eq "$HTTP_STATUS" 201 "create mesh rsa: $BODY"
api PUT /meshes/ec "$(mesh ec ca-1 '{"caCert":{"keyType":"ecdsa"}}')"
assert_eq "$HTTP_STATUS" 201 "create mesh ec: $BODY"

# The Secrets, as Kuma names them.
names=$(get /meshes/rsa/secrets | jq -r '.items[].name' | sort | tr '\n' ' ')
assert_contains "$names" "rsa.ca-builtin-cert-ca-1 rsa.ca-builtin-key-ca-1"
secret_data rsa rsa.ca-builtin-cert-ca-1 >"$T/rsa.crt"
secret_data rsa rsa.ca-builtin-key-ca-1 >"$T/rsa.key"
secret_data ec ec.ca-builtin-cert-ca-1 >"$T/ec.crt"
secret_data ec ec.ca-builtin-key-ca-1 >"$T/ec.key"

txt=$(openssl x509 -in "$T/rsa.crt" -noout -text) || fail "rsa CA is not a certificate"
assert_contains "$txt" "Subject: O = Kuma, OU = Mesh, CN = rsa"
assert_contains "$txt" "Issuer: O = Kuma, OU = Mesh, CN = rsa"
assert_contains "$txt" "URI:spiffe://rsa"
assert_contains "$txt" "CA:TRUE"
assert_contains "$txt" "Certificate Sign, CRL Sign"
assert_contains "$txt" "Public-Key: (2048 bit)"
assert_contains "$txt" "rsaEncryption"
# NotAfter = now + 2y (y = 365 days).
na=$(date -d "$(openssl x509 -in "$T/rsa.crt" -noout -enddate | cut -d= -f2)" +%s)
want=$(($(date +%s) + 2 * 365 * 86400))
[ $((na - want)) -le 60 ] && [ $((want - na)) -le 60 ] || fail "rsa CA NotAfter $na, expected about $want"
openssl verify -CAfile "$T/rsa.crt" "$T/rsa.crt" >/dev/null || fail "rsa CA does not verify as its own root"
# The key belongs to the certificate.
[ "$(openssl x509 -in "$T/rsa.crt" -noout -pubkey)" = "$(openssl pkey -in "$T/rsa.key" -pubout)" ] ||
    fail "rsa CA key does not match its certificate"

txt=$(openssl x509 -in "$T/ec.crt" -noout -text)
assert_contains "$txt" "Subject: O = Kuma, OU = Mesh, CN = ec"
assert_contains "$txt" "URI:spiffe://ec"
assert_contains "$txt" "id-ecPublicKey"
assert_contains "$txt" "prime256v1"
# Default validity: 10 * 365 days.
na=$(date -d "$(openssl x509 -in "$T/ec.crt" -noout -enddate | cut -d= -f2)" +%s)
want=$(($(date +%s) + 3650 * 86400))
[ $((na - want)) -le 60 ] && [ $((want - na)) -le 60 ] || fail "ec CA NotAfter $na, expected about $want"

# Two meshes, two CAs: a leaf signed by rsa's CA verifies against rsa only.
[ "$(cat "$T/rsa.crt")" != "$(cat "$T/ec.crt")" ] || fail "two meshes share a CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leaf.key" \
    -subj "/CN=web" -out "$T/leaf.csr" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA "$T/rsa.crt" -CAkey "$T/rsa.key" -CAcreateserial \
    -days 1 -out "$T/leaf.crt" 2>/dev/null || fail "could not sign a leaf with the rsa CA"
openssl verify -CAfile "$T/rsa.crt" "$T/leaf.crt" >/dev/null || fail "leaf of rsa does not verify against rsa"
if openssl verify -CAfile "$T/ec.crt" "$T/leaf.crt" >/dev/null 2>&1; then
    fail "leaf of mesh rsa verifies against mesh ec's CA"
fi

# Never regenerated: not on update, not on restart.
api PUT /meshes/rsa "$(mesh rsa ca-1 '{"caCert":{"expiration":"5y"}}')"
assert_eq "$HTTP_STATUS" 200 "update: $BODY"
assert_eq "$(secret_data rsa rsa.ca-builtin-cert-ca-1)" "$(cat "$T/rsa.crt")" "CA regenerated on update"
stop_cp
start_cp
assert_eq "$(secret_data rsa rsa.ca-builtin-cert-ca-1)" "$(cat "$T/rsa.crt")" "CA regenerated on restart"
assert_eq "$(secret_data ec ec.ca-builtin-key-ca-1)" "$(cat "$T/ec.key")" "CA key regenerated on restart"

# Deleted with its mesh.
api DELETE /meshes/rsa
assert_eq "$HTTP_STATUS" 200
api PUT /meshes/rsa '{"type":"Mesh","name":"rsa"}'
assert_eq "$HTTP_STATUS" 201
api GET /meshes/rsa/secrets/rsa.ca-builtin-cert-ca-1
assert_eq "$HTTP_STATUS" 404 "CA secret outlived its mesh"

# Key material never reaches the log.
keyline=$(sed -n 2p "$T/ec.key")
assert_not_contains "$(cat "$CP_LOG")" "$keyline" "CA key in the log"
assert_not_contains "$(cat "$CP_LOG")" "PRIVATE KEY" "a private key in the log"
echo "ok"
