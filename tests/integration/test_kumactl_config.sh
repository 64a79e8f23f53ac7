#!/usr/bin/env bash
# kumactl's configuration: the default file on first use, adding the running
# control plane (checked over GET /), listing, switching, removing, and the
# --config-file / --no-config flags.
. "$(dirname "$0")/lib.sh"
start_cp

# First use writes Kuma's default configuration.
out=$(kumactl config view) || fail "config view failed"
assert_contains "$out" "url: http://localhost:5681" "default control plane"
[ -f "$HOME/.kumactl/config" ] || fail "first use did not create ~/.kumactl/config"
assert_eq "$(stat -c %a "$HOME/.kumactl/config")" 600 "config file mode"

out=$(kumactl config control-planes add --name it --address "$CP_URL") || fail "add failed: $out"
assert_eq "$out" $'added Control Plane "it"\nswitched active Control Plane to "it"'

out=$(kumactl config control-planes add --name it --address "$CP_URL" 2>&1)
assert_eq "$?" 1 "adding twice must fail"
assert_eq "$out" 'Error: Control Plane with name "it" already exists. Use --overwrite to replace an existing one.'

out=$(kumactl config control-planes add --name down --address http://127.0.0.1:1 2>&1)
assert_eq "$?" 1 "an unreachable control plane must be refused"
assert_contains "$out" "Error: could not connect to the Control Plane API Server"
kumactl config control-planes add --name down --address http://127.0.0.1:1 --skip-check >/dev/null ||
    fail "--skip-check must not contact the control plane"

out=$(kumactl config control-planes list)
assert_contains "$out" "ACTIVE   NAME    ADDRESS"
assert_contains "$out" "*        down    http://127.0.0.1:1"

out=$(kumactl config control-planes switch --name it)
assert_eq "$out" 'switched active Control Plane to "it"'
kumactl get meshes >/dev/null || fail "get meshes through the switched control plane"

out=$(kumactl config control-planes switch --name nope 2>&1)
assert_eq "$?" 1
assert_eq "$out" 'Error: there is no Control Plane with name "nope"'

out=$(kumactl config control-planes remove --name it)
assert_eq "$out" $'removed Control Plane "it"\nswitched active Control Plane to "local"'

out=$(kumactl config control-planes add 2>&1)
assert_eq "$?" 1
assert_eq "$out" 'Error: required flag(s) "address", "name" not set'

# --config-file: a fresh path gets the defaults, then is used for edits.
cfg="$T/other-config"
kumactl --config-file "$cfg" config control-planes add --name it --address "$CP_URL" >/dev/null ||
    fail "add with --config-file"
assert_contains "$(cat "$cfg")" "currentContext: it"
assert_not_contains "$(cat "$HOME/.kumactl/config")" "$CP_URL"
kumactl --config-file "$cfg" get meshes >/dev/null || fail "get with --config-file"

# --no-config: defaults in memory, nothing written.
rm -rf "$HOME/.kumactl"
kumactl --no-config config view >/dev/null || fail "config view --no-config"
[ ! -e "$HOME/.kumactl" ] || fail "--no-config must not create ~/.kumactl"
echo ok
