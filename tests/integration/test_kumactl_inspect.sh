#!/usr/bin/env bash
# kumactl inspect meshes: per-mesh counts from GET /mesh-insights, and the
# version command against the same control plane.
. "$(dirname "$0")/lib.sh"
start_cp
use_cp

printf 'type: Mesh\nname: team-a\n' | kumactl apply -f - >/dev/null || fail "apply mesh"
for i in 1 2 3; do
    printf 'type: TrafficPermission\nmesh: team-a\nname: tp-%s\nsources: [{match: {kuma.io/service: "*"}}]\ndestinations: [{match: {kuma.io/service: "*"}}]\n' "$i"
    echo ---
done | kumactl apply -f - >/dev/null || fail "apply permissions"

out=$(kumactl inspect meshes) || fail "inspect meshes"
assert_contains "$out" "MESH      DATAPLANES   TRAFFIC PERMISSIONS   TRAFFIC ROUTES"
row=$(grep '^team-a ' <<<"$out") || fail "no row for team-a: $out"
read -r -a cols <<<"$row"
assert_eq "${cols[1]}" "0/0" "dataplanes online/total"
assert_eq "${cols[2]}" "3" "traffic permissions"

out=$(kumactl inspect meshes -o json)
assert_eq "$(jq -r '.items[] | select(.name=="team-a") | .type' <<<"$out")" MeshInsight

out=$(kumactl version)
assert_contains "$out" "Client: Kuma "
assert_contains "$out" "Server: Kuma "
echo ok
