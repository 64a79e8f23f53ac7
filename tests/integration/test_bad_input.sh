#!/usr/bin/env bash
# Hostile and malformed input gets a clear 4xx, kuma-cp keeps serving, and
# nothing already stored changes.
. "$(dirname "$0")/lib.sh"

start_cp
good='{"type":"TrafficRoute","mesh":"default","name":"keep","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}],"conf":{"destination":{"kuma.io/service":"a"}}}'
api PUT /meshes/default/traffic-routes/keep "$good"
assert_eq "$HTTP_STATUS" 201
snapshot() { get '/traffic-routes?size=1000' | jq -S '.items'; get /meshes | jq -S '.items'; }
before=$(snapshot)

check() { # name expected-status path body [needle]
    local name=$1 want=$2 path=$3 body=$4 needle=${5:-}
    local out
    api PUT "$path" "$body"; out=$BODY
    assert_eq "$HTTP_STATUS" "$want" "$name"
    assert_eq "$(jq -r '.type' <<<"$out")" /std-errors "$name: error envelope"
    [ -z "$needle" ] || assert_contains "$out" "$needle" "$name"
}

R=/meshes/default/traffic-routes/keep
check "malformed JSON" 400 $R '{"type":"TrafficRoute",' "invalid TrafficRoute object"
check "malformed YAML" 400 $R $'type: TrafficRoute\n  name: [x' "line"
check "wrong type for name" 400 $R '{"type":"TrafficRoute","mesh":"default","name":5}' "name: must be a string"
check "wrong type for labels" 400 $R '{"type":"TrafficRoute","mesh":"default","name":"keep","labels":[1]}' "labels"
check "array body" 400 $R '[1,2,3]' "must be an object"
check "unknown type" 400 $R '{"type":"NoSuchType","mesh":"default","name":"keep"}' 'unknown type \"NoSuchType\"'
check "empty body" 400 $R '' ""
check "huge number" 400 /meshes/default/traffic-routes/huge \
    '{"type":"TrafficRoute","mesh":"default","name":"huge","sources":99999999999999999999999999999}' ""
deep=$(printf '{"a":%.0s' $(seq 200))1$(printf '}%.0s' $(seq 200))
check "deep nesting" 400 $R "$deep" "nested too deeply"
printf '{"type":"TrafficRoute","mesh":"default","name":"keep","x":"\xff\xfe"}' >"$T/utf8.json"
check "invalid UTF-8" 400 $R "@$T/utf8.json" ""
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$T/big.json"
api PUT $R "@$T/big.json"; out=$BODY
assert_eq "$HTTP_STATUS" 413 "oversized body"
# Names that try to escape the path or carry NULs and odd characters.
api GET '/meshes/default/traffic-routes/..%2F..%2Fmeshes'
assert_eq "$HTTP_STATUS" 404 "encoded traversal"
api GET '/meshes/default%00/traffic-routes'
assert_eq "$HTTP_STATUS" 404 "NUL in mesh"
api PUT '/meshes/default/traffic-routes/bad%20name' '{"type":"TrafficRoute","mesh":"default","name":"bad name"}'; out=$BODY
assert_eq "$HTTP_STATUS" 400 "invalid name"
assert_eq "$(jq -r '.invalid_parameters[0].field' <<<"$out")" name
api PUT "/meshes/$(printf 'x%.0s' $(seq 64))" "{\"type\":\"Mesh\",\"name\":\"$(printf 'x%.0s' $(seq 64))\"}"; out=$BODY
assert_eq "$HTTP_STATUS" 400 "mesh name too long"
assert_contains "$out" "cannot be longer than 63 characters"
# Invalid spec: Kuma's field paths and messages.
api PUT /meshes/bad '{"type":"Mesh","name":"bad","mtls":{"enabledBackend":"nope"}}'; out=$BODY
assert_eq "$HTTP_STATUS" 400 "invalid mesh spec"
assert_eq "$(jq -r '.invalid_parameters[0].field' <<<"$out")" mtls.enabledBackend
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" "has to be set to one of the backends in the mesh"
assert_eq "$(jq -r '.title' <<<"$out")" "Could not process a resource"

# Still serving, and nothing changed.
after=$(snapshot)
assert_eq "$after" "$before" "stored state changed by bad input"
kill -0 "$CP_PID" || fail "kuma-cp died"
api GET /
assert_eq "$HTTP_STATUS" 200
