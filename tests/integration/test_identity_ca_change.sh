#!/usr/bin/env bash
# Changing the CA of a mesh: refused while mTLS is enabled (Kuma's message at
# mtls.enabledBackend); disable, change, enable works, and the new backend
# gets its own root CA while the old one stays.
. "$(dirname "$0")/lib.sh"

start_cp
m() { # ENABLED BACKEND-LIST
    jq -cn --arg e "$1" --argjson b "$2" '{type:"Mesh",name:"m",mtls:({backends:$b} + (if $e == "" then {} else {enabledBackend:$e} end))}'
}
one() { jq -cn --arg n "$1" '[{name:$n,type:"builtin"}]'; }

api PUT /meshes/m "$(m ca-1 "$(one ca-1)")"
assert_eq "$HTTP_STATUS" 201 "create: $BODY"
ca1=$(secret_data m m.ca-builtin-cert-ca-1)
[ -n "$ca1" ] || fail "no CA for ca-1"

# Enabled ca-1 -> enabled ca-2: refused.
api PUT /meshes/m "$(m ca-2 "$(one ca-2)")"
assert_eq "$HTTP_STATUS" 400 "CA change while mTLS is enabled"
assert_eq "$(jq -r '.title' <<<"$BODY")" "Failed to update a resource"
assert_eq "$(jq -r '.invalid_parameters[0].field' <<<"$BODY")" "mtls.enabledBackend"
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$BODY")" \
    "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA"
assert_eq "$(get /meshes/m | jq -r .mtls.enabledBackend)" ca-1 "refused update changed the mesh"

# The same through kumactl apply.
use_cp
out=$(printf 'type: Mesh\nname: m\nmtls:\n  enabledBackend: ca-2\n  backends:\n  - name: ca-2\n    type: builtin\n' |
    kumactl apply -f - 2>&1) && fail "kumactl apply changed the CA"
assert_contains "$out" "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA"

# Disable (backends kept), change, enable.
api PUT /meshes/m "$(m "" "$(one ca-1)")"
assert_eq "$HTTP_STATUS" 200 "disable mTLS: $BODY"
api PUT /meshes/m "$(m "" "$(one ca-2)")"
assert_eq "$HTTP_STATUS" 200 "change the backend: $BODY"
api PUT /meshes/m "$(m ca-2 "$(one ca-2)")"
assert_eq "$HTTP_STATUS" 200 "enable with the new CA: $BODY"
assert_eq "$(get /meshes/m | jq -r .mtls.enabledBackend)" ca-2
ca2=$(secret_data m m.ca-builtin-cert-ca-2)
[ -n "$ca2" ] && [ "$ca2" != "$ca1" ] || fail "backend ca-2 has no CA of its own"
assert_eq "$(secret_data m m.ca-builtin-cert-ca-1)" "$ca1" "the old CA was replaced"
assert_contains "$(openssl x509 -noout -subject <<<"$ca2")" "CN = m"

# Enabling mTLS from "off" with any backend is not a change.
api PUT /meshes/n '{"type":"Mesh","name":"n"}'
api PUT /meshes/n "$(m ca-1 "$(one ca-1)" | jq -c '.name="n"')"
assert_eq "$HTTP_STATUS" 200 "enable mTLS on a mesh without it: $BODY"
echo "ok"
