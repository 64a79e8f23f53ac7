#!/usr/bin/env bash
# kuma-dp run: flag validation, the admin endpoint on an ephemeral port, and
# SIGTERM drain. Uses the built binary: BIN=<dir with kuma-dp> (default build).
#
#   bash tests/dp/test_kuma_dp_cli.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build}
DP=$BIN/kuma-dp
T=$(mktemp -d)
trap 'rm -rf "$T"; [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_error() { # message-substring args...
    local want=$1; shift
    if "$DP" run "$@" >"$T/out" 2>&1; then fail "kuma-dp run $* succeeded"; fi
    grep -qF -- "$want" "$T/out" || fail "kuma-dp run $*: want \"$want\", got: $(cat "$T/out")"
}

expect_error "--name must be non-empty" --mesh default
expect_error "--mesh must be non-empty" --name web
expect_error "url must start with http:// or https://" --name web --mesh default --cp-address localhost:5678
expect_error "--dataplane-var needs --dataplane or --dataplane-file" --name web --mesh default --dataplane-var a=b
expect_error "cannot read" --dataplane-file "$T/missing.yaml"
expect_error "cannot be used together" --dataplane-token x --dataplane-token-file "$T/tok" --name a --mesh b
expect_error "invalid port" --name web --mesh default --admin-port 70000
expect_error "invalid duration" --name web --mesh default --drain-time 3x
expect_error "unknown flag: --bogus" --bogus 1
echo "token" >"$T/tok"
printf 'type: Dataplane\nmesh: default\nname: {{ name }}\n' >"$T/dp.yaml"

# A valid invocation runs with an empty configuration until kuma-cp answers (none here).
"$DP" run --dataplane-file "$T/dp.yaml" --dataplane-var name=web --dataplane-token-file "$T/tok" \
    --cp-address http://127.0.0.1:5678 --admin-port 0 --drain-time 1s >"$T/stdout" 2>"$T/stderr" &
PID=$!
for _ in $(seq 50); do grep -q "admin port:" "$T/stdout" 2>/dev/null && break; sleep 0.1; done
PORT=$(awk '/admin port:/{print $3}' "$T/stdout")
[ -n "$PORT" ] || fail "no admin port reported: $(cat "$T/stderr")"
grep -q "connecting to http://127.0.0.1:5678 as default.web" "$T/stderr" || fail "no xDS connect log"
code=$(curl -s -o "$T/ready" -w '%{http_code}' "http://127.0.0.1:$PORT/ready")
[ "$code" = 503 ] || fail "/ready: $code"
grep -qx "PRE_INITIALIZING" "$T/ready" || fail "/ready body: $(cat "$T/ready")"
curl -s "http://127.0.0.1:$PORT/stats" | grep -qx "server.state: 2" || fail "/stats"
curl -s "http://127.0.0.1:$PORT/stats/prometheus" | grep -q "^envoy_server_live{} 1$" || fail "/stats/prometheus"

# SIGTERM: drain and exit 0, well within the drain time plus a margin.
start=$(date +%s%N)
kill -TERM "$PID"
wait "$PID" || fail "exit status $?"
PID=
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 3000 ] || fail "took $ms ms to stop"
grep -q "received SIGTERM" "$T/stderr" || fail "no SIGTERM log"
echo "ok   kuma-dp cli ($ms ms to stop)"
