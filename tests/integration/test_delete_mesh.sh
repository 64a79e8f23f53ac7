#!/usr/bin/env bash
# Deleting a mesh deletes everything in it; a mesh with dataplanes is kept
# with Kuma's message; resources naming a missing mesh are refused.
. "$(dirname "$0")/lib.sh"

start_cp
api PUT /meshes/doomed '{"type":"Mesh","name":"doomed"}'
assert_eq "$HTTP_STATUS" 201
api PUT /meshes/doomed/traffic-permissions/tp1 \
    '{"type":"TrafficPermission","mesh":"doomed","name":"tp1","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}' >/dev/null
assert_eq "$HTTP_STATUS" 201
api PUT /meshes/default/traffic-permissions/tp1 \
    '{"type":"TrafficPermission","mesh":"default","name":"tp1","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}' >/dev/null
assert_eq "$HTTP_STATUS" 201

# A dataplane keeps the mesh alive.
dp='{"type":"Dataplane","mesh":"doomed","name":"dp-1","networking":{"address":"127.0.0.1","inbound":[{"port":8080,"servicePort":80,"tags":{"kuma.io/service":"web"}}]}}'
api PUT /meshes/doomed/dataplanes/dp-1 "$dp"
assert_eq "$HTTP_STATUS" 201
api DELETE /meshes/doomed; out=$BODY
assert_eq "$HTTP_STATUS" 400 "delete with dataplanes"
assert_eq "$(jq -r '.title' <<<"$out")" "Could not delete a resource"
assert_eq "$(jq -r '.invalid_parameters[0].field' <<<"$out")" mesh
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" \
    "unable to delete mesh, there are still some dataplanes attached"
api GET /meshes/doomed/traffic-permissions/tp1
assert_eq "$HTTP_STATUS" 200 "refused delete left the policy"

api DELETE /meshes/doomed/dataplanes/dp-1
assert_eq "$HTTP_STATUS" 200
api DELETE /meshes/doomed; out=$BODY
assert_eq "$HTTP_STATUS" 200 "delete mesh"
assert_eq "$out" "{}"
api GET /meshes/doomed
assert_eq "$HTTP_STATUS" 404
api GET /traffic-permissions; out=$BODY
assert_eq "$(jq -r '[.items[] | .mesh + "/" + .name] | join(",")' <<<"$out")" "default/tp1" \
    "only the other mesh's policy is left"
api GET /meshtimeouts; out=$BODY
assert_not_contains "$out" '"doomed"' "default policies of the mesh are gone"

# Missing mesh: 404 Failed to retrieve Mesh, on reads and writes.
api PUT /meshes/nope/traffic-permissions/x '{"type":"TrafficPermission","mesh":"nope","name":"x"}'; out=$BODY
assert_eq "$HTTP_STATUS" 404
assert_eq "$(jq -r '.title' <<<"$out")" "Failed to retrieve Mesh"
assert_eq "$(jq -r '.detail' <<<"$out")" "Not found"
api GET /meshes/nope/traffic-permissions
assert_eq "$HTTP_STATUS" 404
api DELETE /meshes/nope
assert_eq "$HTTP_STATUS" 404
