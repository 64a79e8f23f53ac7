#!/usr/bin/env bash
# Dataplane and user tokens: POST /tokens/dataplane and /tokens/user and
# kumactl generate dataplane-token / user-token. The JWTs are Kuma's: RS256,
# kid = serial of the signing key, claims Name, Mesh, Tags, Type, exp, nbf,
# iat, jti; the signature checks out with the mesh's signing key. Errors are
# Kuma's: missing mesh, bad validFor, bad type, no signing key.
. "$(dirname "$0")/lib.sh"

start_cp
api PUT /meshes/demo '{"type":"Mesh","name":"demo"}'
assert_eq "$HTTP_STATUS" 201

# REST.
api POST /tokens/dataplane '{"name":"dp-1","mesh":"demo","tags":{"kuma.io/service":["web","api","web"]},"type":"dataplane","validFor":"24h"}'
assert_eq "$HTTP_STATUS" 200 "dataplane token: $BODY"
tok=$BODY
assert_eq "$(jwt_part "$tok" 0 | jq -c .)" '{"alg":"RS256","kid":"1","typ":"JWT"}'
claims=$(jwt_part "$tok" 1)
assert_eq "$(jq -r .Name <<<"$claims")" dp-1
assert_eq "$(jq -r .Mesh <<<"$claims")" demo
assert_eq "$(jq -c .Tags <<<"$claims")" '{"kuma.io/service":["api","web"]}'
assert_eq "$(jq -r .Type <<<"$claims")" dataplane
now=$(date +%s)
exp=$(jq -r .exp <<<"$claims") iat=$(jq -r .iat <<<"$claims") nbf=$(jq -r .nbf <<<"$claims")
assert_eq "$((exp - iat))" 86400 "exp = iat + validFor"
assert_eq "$((iat - nbf))" 300 "nbf = iat - 5m"
[ $((iat - now)) -le 5 ] && [ $((now - iat)) -le 5 ] || fail "iat $iat is not now ($now)"
[[ "$(jq -r .jti <<<"$claims")" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
    fail "jti is not a UUID"
# The signature, with the public half of dataplane-token-signing-key-demo-1.
secret_data demo dataplane-token-signing-key-demo-1 >"$T/sk.pem"
openssl pkey -in "$T/sk.pem" -pubout -out "$T/pk.pem" 2>/dev/null || fail "signing key is not a key"
printf '%s' "${tok%.*}" >"$T/signed"
sig=$(cut -d. -f3 <<<"$tok" | tr '_-' '/+')
while [ $((${#sig} % 4)) -ne 0 ]; do sig="$sig="; done
base64 -d <<<"$sig" >"$T/sig"
openssl dgst -sha256 -verify "$T/pk.pem" -signature "$T/sig" "$T/signed" >/dev/null ||
    fail "token signature does not verify with the mesh's signing key"
# Another mesh's key does not verify it.
secret_data default dataplane-token-signing-key-default-1 | openssl pkey -pubout -out "$T/pk2.pem" 2>/dev/null
if openssl dgst -sha256 -verify "$T/pk2.pem" -signature "$T/sig" "$T/signed" >/dev/null 2>&1; then
    fail "token verifies with another mesh's key"
fi

# validFor omitted: 10 years, as Kuma.
api POST /tokens/dataplane '{"mesh":"demo"}'
assert_eq "$HTTP_STATUS" 200
claims=$(jwt_part "$BODY" 1)
assert_eq "$(($(jq -r .exp <<<"$claims") - $(jq -r .iat <<<"$claims")))" $((3650 * 86400))
assert_eq "$(jq -r .Name <<<"$claims")" ""

# Errors.
api POST /tokens/dataplane '{"name":"dp-1","validFor":"1d","type":"gateway"}'
assert_eq "$HTTP_STATUS" 400
assert_eq "$(jq -r .title <<<"$BODY")" "Invalid request"
assert_eq "$(jq -r .detail <<<"$BODY")" "Resource is not valid"
assert_eq "$(jq -c '[.invalid_parameters[] | [.field, .reason]]' <<<"$BODY")" \
    '[["mesh","cannot be empty"],["validFor","is invalid: time: unknown unit \"d\" in duration \"1d\""],["type","gateway is not a valid proxy type"]]'
api POST /tokens/dataplane 'not json'
assert_eq "$HTTP_STATUS" 400 "unreadable body"
api POST /tokens/dataplane '{"mesh":"nomesh","validFor":"1h"}'
assert_eq "$HTTP_STATUS" 404 "mesh without a signing key"
assert_eq "$(jq -r .title <<<"$BODY")" "Signing Key not found"
assert_eq "$(jq -r .detail <<<"$BODY")" \
    'there is no signing key with serial number 1. Secret of name "dataplane-token-signing-key-nomesh-1" in mesh "nomesh" is not found. If signing key was rotated, regenerate the token'
api GET /tokens/dataplane
assert_eq "$HTTP_STATUS" 405

# A rotated key: the newest serial signs.
api PUT /meshes/demo/secrets/dataplane-token-signing-key-demo-2 \
    "$(jq -n --arg d "$(kumactl generate signing-key)" '{type:"Secret",mesh:"demo",name:"dataplane-token-signing-key-demo-2",data:$d}')"
assert_eq "$HTTP_STATUS" 201 "second signing key: $BODY"
api POST /tokens/dataplane '{"name":"dp-1","mesh":"demo","validFor":"1h"}'
assert_eq "$(jwt_part "$BODY" 0 | jq -r .kid)" 2 "kid after rotation"

# kumactl, online.
use_cp
tok=$(kumactl generate dataplane-token --name dp-2 --mesh demo --tag kuma.io/service=web,web-api --tag env=prod --valid-for 90m) ||
    fail "kumactl generate dataplane-token"
claims=$(jwt_part "$tok" 1)
assert_eq "$(jq -c .Tags <<<"$claims")" '{"env":["prod"],"kuma.io/service":["web","web-api"]}'
assert_eq "$(jq -r .Mesh <<<"$claims")" demo
assert_eq "$(($(jq -r .exp <<<"$claims") - $(jq -r .iat <<<"$claims")))" 5400
out=$(kumactl generate dataplane-token --mesh demo 2>&1) && fail "valid-for is required"
assert_contains "$out" 'Error: required flag(s) "name", "valid-for" not set'
out=$(kumactl generate dataplane-token --name x --mesh demo --valid-for 1h --kid 1 2>&1) && fail "--kid online"
assert_eq "$out" "Error: --kid cannot be used when --signing-key-path is used"
out=$(kumactl generate dataplane-token --name x --mesh demo --valid-for 1h --signing-key-path "$T/sk.pem" 2>&1) &&
    fail "offline without --kid"
assert_eq "$out" "Error: --kid is required when --signing-key-path is used"
out=$(kumactl generate dataplane-token --name x --mesh demo --valid-for 1h --proxy-type sidecar 2>&1) && fail "bad type"
assert_eq "$out" "Error: failed to generate a dataplane token: Invalid request (Resource is not valid);type=sidecar is not a valid proxy type "
# kumactl, offline with the key file: same claims, kid as given.
tok=$(kumactl generate dataplane-token --name dp-3 --mesh demo --valid-for 1h --signing-key-path "$T/sk.pem" --kid 1) ||
    fail "offline token"
assert_eq "$(jwt_part "$tok" 0 | jq -r .kid)" 1
assert_eq "$(jwt_part "$tok" 1 | jq -r .Name)" dp-3

# User tokens.
api POST /tokens/user '{"name":"john","groups":["team-a"],"validFor":"1h"}'
assert_eq "$HTTP_STATUS" 200 "user token: $BODY"
claims=$(jwt_part "$BODY" 1)
assert_eq "$(jq -c '[.Name, .Groups]' <<<"$claims")" '["john",["team-a"]]'
api POST /tokens/user '{"name":"john"}'
assert_eq "$HTTP_STATUS" 400
assert_eq "$(jq -c '.invalid_parameters' <<<"$BODY")" '[{"field":"validFor","reason":"cannot be empty or nil"}]'
tok=$(kumactl generate user-token --name jane --group g1 --group g2,g3 --valid-for 1h) || fail "kumactl user-token"
assert_eq "$(jwt_part "$tok" 1 | jq -c .Groups)" '["g1","g2","g3"]'

# Tokens are not logged.
assert_not_contains "$(cat "$CP_LOG")" "${tok%%.*}." "a token in the log"
echo "ok"
