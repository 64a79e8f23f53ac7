#!/usr/bin/env bash
# Provided CA: two meshes given the same certificate and key (made here with
# openssl req, loaded inline and from a Secret) are accepted and trust each
# other's leaves; CAs that are not CAs, lack keyCertSign or do not match their
# key are refused with Kuma's messages at Kuma's field paths.
. "$(dirname "$0")/lib.sh"

start_cp
cd "$T" || fail "no temp dir"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
    -subj "/O=Example/CN=shared-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || fail "openssl req (CA)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout leafca.key -out notca.crt -days 30 \
    -subj "/CN=not-a-ca" -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign" 2>/dev/null || fail "openssl req (not CA)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout nosign.key -out nosign.crt -days 30 \
    -subj "/CN=no-cert-sign" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature" 2>/dev/null || fail "openssl req (no keyCertSign)"
openssl genrsa -out other.key 2048 2>/dev/null

# provided_mesh NAME CERT_DS KEY_DS: a mesh with mTLS from a provided CA.
provided_mesh() {
    jq -n --arg n "$1" --argjson c "$2" --argjson k "$3" \
        '{type:"Mesh",name:$n,mtls:{enabledBackend:"ca-1",backends:[{name:"ca-1",type:"provided",conf:{cert:$c,key:$k}}]}}'
}
inline() { jq -n --rawfile f "$1" '{inlineString:$f}'; }

# Mesh a: inline PEM.
api PUT /meshes/a "$(provided_mesh a "$(inline ca.crt)" "$(inline ca.key)")"
assert_eq "$HTTP_STATUS" 201 "mesh a with a provided CA: $BODY"

# Mesh b: the same CA from Secrets (base64 data), created before mTLS is on.
api PUT /meshes/b '{"type":"Mesh","name":"b"}'
assert_eq "$HTTP_STATUS" 201
api PUT /meshes/b/secrets/ca-cert "$(jq -n --arg d "$(base64 -w0 ca.crt)" '{type:"Secret",mesh:"b",name:"ca-cert",data:$d}')"
assert_eq "$HTTP_STATUS" 201 "secret ca-cert: $BODY"
api PUT /meshes/b/secrets/ca-key "$(jq -n --arg d "$(base64 -w0 ca.key)" '{type:"Secret",mesh:"b",name:"ca-key",data:$d}')"
assert_eq "$HTTP_STATUS" 201
api PUT /meshes/b "$(provided_mesh b '{"secret":"ca-cert"}' '{"secret":"ca-key"}')"
assert_eq "$HTTP_STATUS" 200 "mesh b with the same CA from secrets: $BODY"

# Both meshes trust a leaf of the shared CA (the provided CA is not copied or
# re-issued: it is the trust anchor of both).
openssl req -new -newkey rsa:2048 -nodes -keyout leaf.key -subj "/CN=web" -out leaf.csr 2>/dev/null
openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out leaf.crt 2>/dev/null
openssl verify -CAfile ca.crt leaf.crt >/dev/null || fail "leaf does not verify against the shared CA"
got=$(get /meshes/a | jq -r '.mtls.backends[0].conf.cert.inlineString')
assert_eq "$got" "$(cat ca.crt)" "mesh a keeps the provided certificate"

# A missing Secret: the datasource error on both cert and key.
api PUT /meshes/c "$(provided_mesh c '{"secret":"nope"}' '{"secret":"nope"}')"
assert_eq "$HTTP_STATUS" 400 "missing secret"
params=$(jq -c '[.invalid_parameters[].field]' <<<"$BODY")
assert_contains "$params" '"mtls.backends[0].conf.cert"'
assert_contains "$params" '"mtls.backends[0].conf.key"'
assert_contains "$BODY" 'could not load data: Resource not found: type=\"Secret\" name=\"nope\" mesh=\"c\"'

# Nothing given: "has to be defined".
api PUT /meshes/c '{"type":"Mesh","name":"c","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"provided"}]}}'
assert_eq "$HTTP_STATUS" 400
assert_eq "$(jq -r '[.invalid_parameters[] | .field + ": " + .reason] | join("; ")' <<<"$BODY")" \
    "mtls.backends[0].conf.cert: has to be defined; mtls.backends[0].conf.key: has to be defined"

# Not a CA.
api PUT /meshes/c "$(provided_mesh c "$(inline notca.crt)" "$(inline leafca.key)")"
assert_eq "$HTTP_STATUS" 400 "not a CA"
assert_eq "$(jq -r '.invalid_parameters[0].field' <<<"$BODY")" "mtls.backends[0].conf.cert[0]"
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$BODY")" \
    "basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic Constraints)"
assert_eq "$(jq -r '.title' <<<"$BODY")" "Failed to create a resource"

# No keyCertSign.
api PUT /meshes/c "$(provided_mesh c "$(inline nosign.crt)" "$(inline nosign.key)")"
assert_eq "$HTTP_STATUS" 400 "no keyCertSign"
assert_contains "$(jq -c '.invalid_parameters' <<<"$BODY")" \
    '{"field":"mtls.backends[0].conf.cert[0]","reason":"key usage extension '"'"'keyCertSign'"'"' must be set (see X509-SVID: 4.3. Key Usage)"}'

# A key that is not the certificate's.
api PUT /meshes/c "$(provided_mesh c "$(inline ca.crt)" "$(inline other.key)")"
assert_eq "$HTTP_STATUS" 400 "mismatched key"
assert_eq "$(jq -r '.invalid_parameters[0].field' <<<"$BODY")" "mtls.backends[0].conf.cert"
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$BODY")" \
    "not a valid TLS key pair: tls: private key does not match public key"

# None of the refused meshes exists.
api GET /meshes/c
assert_eq "$HTTP_STATUS" 404
assert_not_contains "$(cat "$CP_LOG")" "PRIVATE KEY" "a private key in the log"
echo "ok"
