#!/usr/bin/env bash
# kuma-cp reads a YAML config file (-c) and KUMA_* variables, the environment
# winning; bad values stop start-up with a message naming them.
. "$(dirname "$0")/lib.sh"

cat >"$T/cp.yaml" <<YAML
general:
  workDir: $T/from-file
store:
  type: memory
defaults:
  skipMeshCreation: true
apiServer:
  http:
    port: 1
YAML

# Run with the file: env overrides port and work dir, file sets the rest.
mkdir -p "$T/w"
env KUMA_GENERAL_WORK_DIR="$T/w" KUMA_API_SERVER_HTTP_INTERFACE=127.0.0.1 \
    KUMA_API_SERVER_HTTP_PORT=0 KUMA_DIAGNOSTICS_SERVER_PORT=0 \
    "$BIN/kuma-cp" run -c "$T/cp.yaml" >"$T/w.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 100); do [ -s "$T/w/listeners" ] && break; sleep 0.1; done
[ -s "$T/w/listeners" ] || fail "kuma-cp with -c did not start: $(cat "$T/w.log")"
CP_URL="http://127.0.0.1:$(awk '$1=="api-http"{print $2}' "$T/w/listeners")"
api GET /config; cfg=$BODY
assert_eq "$(jq -r '.store.type' <<<"$cfg")" memory "store.type from file"
assert_eq "$(jq -r '.defaults.skipMeshCreation' <<<"$cfg")" true "skipMeshCreation from file"
assert_eq "$(jq -r '.general.workDir' <<<"$cfg")" "$T/w" "env beats file"
assert_eq "$(jq -r '.total' <<<"$(get /meshes)")" 0 "no default mesh"
[ ! -e "$T/w/kuma.db" ] || fail "memory store must not create a database file"

# Bad values are refused at start.
out=$(KUMA_GENERAL_WORK_DIR="$T/bad" KUMA_API_SERVER_HTTP_PORT=70000 "$BIN/kuma-cp" run 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "port 70000 accepted"
assert_contains "$out" "KUMA_API_SERVER_HTTP_PORT"
out=$(KUMA_GENERAL_WORK_DIR="$T/bad" KUMA_STORE_TYPE=etcd "$BIN/kuma-cp" run 2>&1)
[ $? -ne 0 ] || fail "unknown store accepted"
assert_contains "$out" "KUMA_STORE_TYPE"
printf 'apiServer: {http: {port: "abc"}}\n' >"$T/bad.yaml"
out=$(KUMA_GENERAL_WORK_DIR="$T/bad" "$BIN/kuma-cp" run -c "$T/bad.yaml" 2>&1)
[ $? -ne 0 ] || fail "bad config file accepted"
assert_contains "$out" "apiServer.http.port"

# The SQLite store lives in the work dir, readable by its owner only.
CP_WORKDIR="$T/sq"
start_cp
[ -f "$T/sq/kuma.db" ] || fail "no kuma.db in the work dir"
assert_eq "$(stat -c %a "$T/sq/kuma.db")" 600 "database file mode"
assert_eq "$(stat -c %a "$T/sq")" 700 "work dir mode"
