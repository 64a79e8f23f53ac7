#!/usr/bin/env bash
# kumactl apply / get / delete against a running control plane: multi-document
# YAML with variables, create then update, tables, YAML and JSON output,
# pagination, a missing resource, and deletes with Kuma's messages.
. "$(dirname "$0")/lib.sh"
start_cp
use_cp

cat >"$T/res.yaml" <<'Y'
type: Mesh
name: {{mesh}}
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
routing:
  zoneEgress: true
---
type: TrafficPermission
mesh: {{mesh}}
name: allow-{{svc.name}}
sources:
- match:
    kuma.io/service: '*'
destinations:
- match:
    kuma.io/service: {{svc.name}}
Y

out=$(kumactl apply -f "$T/res.yaml" -v mesh=payments -v svc.name=web 2>"$T/err") ||
    fail "apply failed: $out $(cat "$T/err")"
assert_eq "$out" $'resource type="Mesh" mesh="" name="payments" Created\nresource type="TrafficPermission" mesh="payments" name="allow-web" Created'
assert_not_contains "$(cat "$T/err")" "WARNING" "versions match, no warning expected"

out=$(kumactl apply -f - -v mesh=payments -v svc.name=web <"$T/res.yaml") || fail "re-apply from stdin"
assert_eq "$out" $'resource type="Mesh" mesh="" name="payments" Updated\nresource type="TrafficPermission" mesh="payments" name="allow-web" Updated'

out=$(kumactl apply -f "$T/res.yaml" -v mesh=dry -v svc.name=x --dry-run) || fail "dry run"
assert_contains "$out" "name: dry"
assert_contains "$out" "kuma.io/service: x"
out=$(kumactl get meshes)
assert_not_contains "$out" "dry" "--dry-run must not create anything"

out=$(kumactl get meshes)
assert_contains "$out" "NAME       mTLS           LOCALITY   ZONEEGRESS   AGE"
assert_contains "$out" "payments   builtin/ca-1   off        on"

out=$(kumactl get meshes --size 1)
assert_contains "$out" "Rerun command with --offset=1 argument to retrieve more resources"
out=$(kumactl get meshes --size 1 --offset 1)
assert_contains "$out" "payments"
assert_not_contains "$out" "Rerun command"

out=$(kumactl get mesh payments -o yaml)
assert_contains "$out" "name: payments"
assert_contains "$out" "enabledBackend: ca-1"
assert_eq "$(head -1 <<<"$out" | cut -d: -f1)" "creationTime" "meta first, sorted"

out=$(kumactl get traffic-permissions -m payments)
assert_contains "$out" "MESH       NAME        AGE"
assert_contains "$out" "payments   allow-web"

out=$(kumactl get traffic-permission allow-web -m payments -o json)
assert_eq "$(jq -r .name <<<"$out")" allow-web
assert_eq "$(jq -r 'keys_unsorted[0]' <<<"$out")" type

out=$(kumactl get meshes -o json)
assert_eq "$(jq -r .next <<<"$out")" null
assert_eq "$(jq -r '.items | length' <<<"$out")" "$(jq -r .total <<<"$out")"

out=$(kumactl get mesh nope 2>&1)
assert_eq "$?" 1
assert_eq "$out" "Error: No resources found"
out=$(kumactl get traffic-permission nope -m payments 2>&1)
assert_eq "$?" 1
assert_eq "$out" "Error: No resources found in payments mesh"

out=$(kumactl delete traffic-permission allow-web -m payments)
assert_eq "$out" 'deleted TrafficPermission "allow-web"'
out=$(kumactl delete traffic-permission allow-web -m payments 2>&1)
assert_eq "$?" 1
assert_eq "$out" 'Error: there is no TrafficPermission with name "allow-web"'
out=$(kumactl delete mesh payments)
assert_eq "$out" 'deleted Mesh "payments"'
assert_not_contains "$(kumactl get meshes)" "payments"
echo ok
