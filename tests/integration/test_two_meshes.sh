#!/usr/bin/env bash
# Two meshes from one multi-document file via kumactl: policies land in their
# own mesh, the same policy name lives in both, and the Kubernetes form works.
. "$(dirname "$0")/lib.sh"

start_cp KUMA_DEFAULTS_SKIP_MESH_CREATION=true
use_cp

cat >"$T/meshes.yaml" <<'YAML'
type: Mesh
name: team-a
---
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata:
  name: team-b
spec:
  networking:
    outbound:
      passthrough: false
---
type: TrafficPermission
mesh: team-a
name: web-to-backend
sources:
- match:
    kuma.io/service: web
destinations:
- match:
    kuma.io/service: backend
---
type: TrafficPermission
mesh: team-b
name: web-to-backend
sources:
- match:
    kuma.io/service: '*'
destinations:
- match:
    kuma.io/service: backend
---
apiVersion: kuma.io/v1alpha1
kind: TrafficRoute
mesh: team-b
metadata:
  name: split
spec:
  sources:
  - match:
      kuma.io/service: web
  destinations:
  - match:
      kuma.io/service: backend
  conf:
    split:
    - weight: 90
      destination:
        kuma.io/service: backend
        version: v1
    - weight: 10
      destination:
        kuma.io/service: backend
        version: v2
YAML
kumactl apply -f "$T/meshes.yaml" || fail "kumactl apply failed"

out=$(kumactl get meshes -o json)
assert_eq "$(jq -r '[.items[].name] | sort | join(",")' <<<"$out")" "team-a,team-b"
api GET /meshes/team-b; out=$BODY
assert_eq "$(jq -r '.networking.outbound.passthrough' <<<"$out")" false "k8s-form mesh spec stored"

api GET /meshes/team-a/traffic-permissions/web-to-backend; a=$BODY
assert_eq "$HTTP_STATUS" 200
api GET /meshes/team-b/traffic-permissions/web-to-backend; b=$BODY
assert_eq "$HTTP_STATUS" 200
assert_eq "$(jq -r '.sources[0].match["kuma.io/service"]' <<<"$a")" web "team-a's own policy"
assert_eq "$(jq -r '.sources[0].match["kuma.io/service"]' <<<"$b")" '*' "team-b's own policy"
assert_eq "$(jq -r '.mesh' <<<"$b")" team-b

api GET /meshes/team-b/traffic-routes/split; r=$BODY
assert_eq "$HTTP_STATUS" 200 "k8s-form route with top-level mesh"
assert_eq "$(jq -r '.conf.split[1].weight' <<<"$r")" 10
api GET /meshes/team-a/traffic-routes/split
assert_eq "$HTTP_STATUS" 404 "route only in team-b"

# Listing across meshes, and per mesh.
api GET /traffic-permissions; all=$BODY
assert_eq "$(jq -r '.total' <<<"$all")" 2
assert_eq "$(jq -r '[.items[].mesh] | join(",")' <<<"$all")" "team-a,team-b"
assert_eq "$(jq -r '.total' <<<"$(get /meshes/team-a/traffic-permissions)")" 1

# kumactl tables show each mesh's own resources.
out=$(kumactl get traffic-permissions -m team-a)
assert_contains "$out" "team-a"
assert_not_contains "$out" "team-b"

# Kubernetes form round trip: GET ?format=kubernetes, apply it back unchanged.
api GET '/meshes/team-b/traffic-routes/split?format=kubernetes'; printf '%s' "$BODY" >"$T/k8s.json"
assert_eq "$HTTP_STATUS" 200
assert_eq "$(jq -r '.kind' "$T/k8s.json")" TrafficRoute
assert_eq "$(jq -r '.mesh' "$T/k8s.json")" team-b
assert_eq "$(jq -r '.metadata.name' "$T/k8s.json")" split
before=$(get /meshes/team-b/traffic-routes/split | jq -S 'del(.modificationTime)')
kumactl apply -f "$T/k8s.json" || fail "re-applying the kubernetes form failed"
after=$(get /meshes/team-b/traffic-routes/split | jq -S 'del(.modificationTime)')
assert_eq "$after" "$before" "kubernetes round trip keeps the resource"
api GET '/meshes/team-b?format=kubernetes'; m=$BODY
assert_eq "$(jq -r '.spec.networking.outbound.passthrough' <<<"$m")" false
assert_eq "$(jq -r '.apiVersion' <<<"$m")" kuma.io/v1alpha1
