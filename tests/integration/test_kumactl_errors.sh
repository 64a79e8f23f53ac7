#!/usr/bin/env bash
# kumactl's errors and exit codes: documents rejected before anything is
# sent, bad flags and arguments, API errors, and an unreachable control plane.
. "$(dirname "$0")/lib.sh"
start_cp
use_cp

cat >"$T/bad.yaml" <<'Y'
type: Mesh
name: fine
---
"unterminated
---
type: Foo
name: bam
---
type: Dataplane
name: no-mesh
Y
out=$(kumactl apply -f "$T/bad.yaml" 2>&1)
assert_eq "$?" 1
assert_contains "$out" 'resource[1]: failed to parse resource: invalid meta type: "error converting YAML to JSON: yaml:'
assert_contains "$out" 'resource[2]: failed to parse resource: invalid resource type "Foo"'
assert_contains "$out" 'resource[3]: failed to read meta: mesh: cannot be empty'
assert_contains "$out" 'Error: failed to validate some resources'
assert_not_contains "$(kumactl get meshes)" "fine" "nothing may be applied when a document is bad"

out=$(kumactl apply 2>&1)
assert_eq "$?" 1
assert_eq "$out" 'Error: required flag(s) "file" not set'
out=$(kumactl apply -f "$T/missing.yaml" 2>&1)
assert_eq "$?" 1
assert_contains "$out" "Error: error while reading provided file: stat $T/missing.yaml: no such file or directory"
: >"$T/empty.yaml"
out=$(kumactl apply -f "$T/empty.yaml" 2>&1)
assert_eq "$out" "Error: no resource(s) passed to apply"

out=$(kumactl get meshes --bogus 2>&1)
assert_eq "$?" 1
assert_contains "$out" "Error: unknown flag: --bogus"
out=$(kumactl get mesh 2>&1)
assert_eq "$?" 1
assert_contains "$out" "Error: accepts 1 arg(s), received 0"
out=$(kumactl get meshes -o xml 2>&1)
assert_eq "$?" 1
assert_eq "$out" 'Error: unknown output format "xml"'
out=$(kumactl delete nonsense x 2>&1)
assert_eq "$?" 1
assert_contains "$out" "Error: unknown TYPE: nonsense. Allowed values: circuit-breaker, dataplane,"

# An API error envelope is rendered as "Title (Detail)" plus its parameters.
out=$(kumactl get meshes --offset notanumber 2>&1)
assert_eq "$?" 1
assert_contains "$out" "Error: "
assert_contains "$out" "("

kumactl --config-file "$T/down" config control-planes add --name down --address http://127.0.0.1:1 --skip-check >/dev/null
out=$(kumactl --config-file "$T/down" get meshes 2>&1)
assert_eq "$?" 1
assert_eq "$out" 'Error: failed to list Mesh: Get "http://127.0.0.1:1/meshes": dial tcp 127.0.0.1:1: connect: connection refused'

out=$(kumactl help get)
assert_contains "$out" "Show Kuma resources."
out=$(kumactl get --help)
assert_contains "$out" "Available Commands:"
echo ok
