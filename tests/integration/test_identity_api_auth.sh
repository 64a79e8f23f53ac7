#!/usr/bin/env bash
# API authentication and authorization. The non-local client is 127.0.0.2
# (curl --interface against the API on 127.0.0.1): kuma-cp treats only the
# peer addresses 127.0.0.1 and ::1 as localhost. From there every write, every
# Secret/GlobalSecret read and every token request needs the admin user token
# kuma-cp created at first start (<workDir>/admin-token, mode 0600, and
# GlobalSecret admin-user-token); a bad token is 401, a non-admin one 403.
. "$(dirname "$0")/lib.sh"

start_cp
[ -n "$CP_ADMIN_TOKEN" ] || fail "no admin token in the work dir"
assert_eq "$(stat -c %a "$CP_WORKDIR/admin-token")" 600 "admin-token file mode"
assert_eq "$(secret_data "" admin-user-token)" "$CP_ADMIN_TOKEN" "admin-user-token GlobalSecret"
claims=$(jwt_part "$CP_ADMIN_TOKEN" 1)
assert_eq "$(jq -c '[.Name, .Groups]' <<<"$claims")" '["mesh-system:admin",["mesh-system:admin"]]'
api GET /globalsecrets/user-token-signing-key-1
assert_eq "$HTTP_STATUS" 200 "user-token-signing-key-1"

mesh='{"type":"Mesh","name":"m1"}'
anon='mesh-system:anonymous/mesh-system:unauthenticated'

# Anonymous, non-local: reads of ordinary resources are allowed...
api_remote GET /meshes
assert_eq "$HTTP_STATUS" 200 "remote read"
api_remote GET /meshes/default
assert_eq "$HTTP_STATUS" 200
# ...writes are not.
api_remote PUT /meshes/m1 "$mesh"
assert_eq "$HTTP_STATUS" 403 "remote write without a token"
assert_eq "$(jq -r .title <<<"$BODY")" "Access Denied"
assert_eq "$(jq -r .detail <<<"$BODY")" "user \"$anon\" cannot access the resource of type \"Mesh\""
api_remote DELETE /meshes/default
assert_eq "$HTTP_STATUS" 403 "remote delete without a token"
api GET /meshes/default
assert_eq "$HTTP_STATUS" 200 "the mesh survived"
# ...and neither are secrets, listed or single, mesh-scoped or global.
for p in /meshes/default/secrets /meshes/default/secrets/dataplane-token-signing-key-default-1 \
    /secrets /globalsecrets /globalsecrets/admin-user-token /global-secrets/admin-user-token; do
    api_remote GET "$p"
    assert_eq "$HTTP_STATUS" 403 "remote secret read $p"
    assert_not_contains "$BODY" "PRIVATE KEY"
    assert_not_contains "$BODY" "$CP_ADMIN_TOKEN"
done
assert_eq "$(jq -r .detail <<<"$BODY")" "user \"$anon\" cannot access the resource of type \"GlobalSecret\""
api_remote POST /tokens/dataplane '{"mesh":"default","validFor":"1h"}'
assert_eq "$HTTP_STATUS" 403 "remote dataplane token without a token"
assert_eq "$(jq -r .detail <<<"$BODY")" "user \"$anon\" cannot access generate dataplane token"

# Garbage, forged and wrongly signed tokens: 401.
for bad in garbage "a.b.c" "${CP_ADMIN_TOKEN%?}x" "$(cut -d. -f1,2 <<<"$CP_ADMIN_TOKEN")."; do
    api_remote PUT /meshes/m1 "$mesh" "$bad"
    assert_eq "$HTTP_STATUS" 401 "bad token '$bad'"
    assert_eq "$(jq -c '[.title, .detail]' <<<"$BODY")" '["Invalid authentication data","Unauthenticated"]'
done
# A token signed by a key the CP does not know (same claims, other key).
openssl genrsa -traditional -out "$T/rogue.pem" 2048 2>/dev/null
rogue=$(kumactl generate user-token --name mesh-system:admin --group mesh-system:admin --valid-for 1h \
    --signing-key-path "$T/rogue.pem" --kid 1) || fail "rogue token"
api_remote PUT /meshes/m1 "$mesh" "$rogue"
assert_eq "$HTTP_STATUS" 401 "token signed by an unknown key"
# A token with a kid the CP has no key for.
rogue=$(kumactl generate user-token --name mesh-system:admin --group mesh-system:admin --valid-for 1h \
    --signing-key-path "$T/rogue.pem" --kid 7)
api_remote GET /meshes "" "$rogue"
assert_eq "$HTTP_STATUS" 401 "unknown kid, even for a read"
assert_not_contains "$(cat "$CP_LOG")" "$rogue" "a token in the log"
assert_contains "$(cat "$CP_LOG")" "authentication rejected"

# A valid user token that is not the admin's: authenticated, but 403.
api POST /tokens/user '{"name":"john","groups":["team-a"],"validFor":"1h"}'
assert_eq "$HTTP_STATUS" 200
john=$BODY
api_remote PUT /meshes/m1 "$mesh" "$john"
assert_eq "$HTTP_STATUS" 403 "non-admin user write"
assert_eq "$(jq -r .detail <<<"$BODY")" \
    'user "john/team-a,mesh-system:authenticated" cannot access the resource of type "Mesh"'
api_remote GET /meshes/default/secrets "" "$john"
assert_eq "$HTTP_STATUS" 403 "non-admin secret read"
api_remote GET /meshes "" "$john"
assert_eq "$HTTP_STATUS" 200 "non-admin read"
api_remote POST /tokens/user '{"name":"x","validFor":"1h"}' "$john"
assert_eq "$HTTP_STATUS" 403
assert_eq "$(jq -r .detail <<<"$BODY")" "action not allowed"
# A user in the admin group is an admin.
api POST /tokens/user '{"name":"ops","groups":["mesh-system:admin"],"validFor":"1h"}'
ops=$BODY
api_remote PUT /meshes/ops "$(jq -cn '{type:"Mesh",name:"ops"}')" "$ops"
assert_eq "$HTTP_STATUS" 201 "admin-group user write: $BODY"
# An expired token: 401.
exp=$(kumactl generate user-token --name mesh-system:admin --group mesh-system:admin --valid-for 1s \
    --signing-key-path <(secret_data "" user-token-signing-key-1) --kid 1)
sleep 2
api_remote GET /meshes "" "$exp"
assert_eq "$HTTP_STATUS" 401 "expired token"
# A revoked token: 401.
jti=$(jwt_part "$ops" 1 | jq -r .jti)
api PUT /globalsecrets/user-token-revocations "$(jq -cn --arg d "$(printf '%s' "$jti" | base64 -w0)" '{type:"GlobalSecret",name:"user-token-revocations",data:$d}')"
assert_eq "$HTTP_STATUS" 201
api_remote GET /meshes "" "$ops"
assert_eq "$HTTP_STATUS" 401 "revoked token"

# The admin token: everything.
api_remote PUT /meshes/m1 "$mesh" "$CP_ADMIN_TOKEN"
assert_eq "$HTTP_STATUS" 201 "admin write: $BODY"
api_remote GET /meshes/default/secrets/dataplane-token-signing-key-default-1 "" "$CP_ADMIN_TOKEN"
assert_eq "$HTTP_STATUS" 200 "admin secret read"
api_remote POST /tokens/dataplane '{"mesh":"m1","validFor":"1h"}' "$CP_ADMIN_TOKEN"
assert_eq "$HTTP_STATUS" 200 "admin dataplane token"
api_remote DELETE /meshes/m1 "" "$CP_ADMIN_TOKEN"
assert_eq "$HTTP_STATUS" 200 "admin delete"

# Localhost is admin without a token, but not when the request looks proxied
# or comes from a browser on behalf of another site.
api PUT /meshes/m2 '{"type":"Mesh","name":"m2"}'
assert_eq "$HTTP_STATUS" 201 "localhost write"
api GET /meshes/default/secrets
assert_eq "$HTTP_STATUS" 200 "localhost secret read"
for h in "X-Forwarded-For: 203.0.113.7" "X-Real-IP: 203.0.113.7" "Forwarded: for=203.0.113.7" \
    "Host: api.example.com" "Origin: https://evil.example" "Sec-Fetch-Site: cross-site"; do
    st=$(curl -s -o /dev/null -w '%{http_code}' -H "$h" "$CP_URL/meshes/default/secrets")
    assert_eq "$st" 403 "localhost with '$h'"
done
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: $CP_URL" "$CP_URL/meshes/default/secrets")
assert_eq "$st" 200 "same-origin localhost"

# kumactl cannot pick its source address, so its token is checked with
# localhostIsAdmin off: then even localhost needs the admin token.
stop_cp
start_cp KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN=false
api PUT /meshes/m3 '{"type":"Mesh","name":"m3"}'
assert_eq "$HTTP_STATUS" 403 "localhost is not admin when localhostIsAdmin=false"
assert_eq "$(get /config | jq -r .apiServer.authn.localhostIsAdmin)" false
assert_eq "$(cat "$CP_WORKDIR/admin-token")" "$CP_ADMIN_TOKEN" "admin token kept across restarts"
kumactl config control-planes add --name anon --address "$CP_URL" --overwrite >/dev/null
out=$(printf 'type: Mesh\nname: m3\n' | kumactl apply -f - 2>&1) && fail "anonymous kumactl apply"
assert_contains "$out" "Access Denied"
kumactl config control-planes add --name adm --address "$CP_URL" --auth-type tokens \
    --auth-conf "token=$CP_ADMIN_TOKEN" --overwrite >/dev/null || fail "kumactl add with a token"
out=$(printf 'type: Mesh\nname: m3\n' | kumactl apply -f - 2>&1) || fail "kumactl apply with the admin token: $out"
assert_contains "$out" 'resource type="Mesh" mesh="" name="m3" Created'
kumactl get secrets -m default >/dev/null || fail "kumactl get secrets with the admin token"
echo "ok"
