#!/usr/bin/env bash
# The xDS fleet benchmark end to end at a small size (bench/xds/run.sh with the
# C fleet, bench/xds/fleet.c): every phase completes against a real kuma-cp,
# every response is ACKed, no stream fails, the endpoint change reaches exactly
# the callers of the moved service, and run.sh reports kuma-cp's figures.
# Once with a reconnect storm (one TLS connection per proxy), once with mTLS
# over shared connections, and once against a CA that did not sign kuma-cp's
# certificate: the fleet must say so and fail, not hang or pass.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$BIN/bench-xds-fleet" ] || fail "$BIN/bench-xds-fleet missing (make all)"

# run_bench <label> <env...>: runs the benchmark, leaves its output in $OUT.
run_bench() {
    local label=$1
    shift
    OUT=$(env "$@" BIN="$BIN" FLEET=c IDLE_S=2 TIMEOUT_S=60 bash "$ROOT/bench/xds/run.sh" 2>&1) ||
        fail "$label: run.sh failed: $(echo "$OUT" | tail -n 20)"
    RESULT=$(echo "$OUT" | sed -n 's/^RESULT //p')
    [ -n "$RESULT" ] || fail "$label: no RESULT line: $(echo "$OUT" | tail -n 20)"
}
field() { echo "$RESULT" | jq -r ".$1"; }
# callers <n> <services>: proxies with an outbound to svc-0 (outbound k of
# proxy i is svc-((i + 7k) mod services), k = 1..5, as in the fleets).
callers() {
    local n=$1 s=$2 i k c=0
    for ((i = 0; i < n; i++)); do
        for ((k = 1; k <= 5; k++)); do
            if (((i + 7 * k) % s == 0)); then
                c=$((c + 1))
                break
            fi
        done
    done
    echo "$c"
}

# 100 proxies: the policy change pushes them as one batch on several threads.
run_bench plaintext N=100 STORM=reconnect
assert_eq "$(field n)" "100" "plaintext: proxies"
assert_eq "$(field channels)" "100" "plaintext: one channel per proxy by default"
assert_eq "$(field stream_errors)" "0" "plaintext: no stream failed"
assert_eq "$(field connection_errors)" "0" "plaintext: no connection failed"
assert_eq "$(field bad_responses)" "0" "plaintext: every response decoded"
# 100 proxies x 3 types twice (cold, storm) + CDS and LDS after the policy +
# EDS to the callers of svc-0 + LDS to dp-0 itself (its inbound moved).
callers=$(callers 100 10)
assert_eq "$(field churn_callers)" "$callers" "plaintext: callers of svc-0 among 100 proxies"
assert_eq "$(field churn_received)" "$callers" "plaintext: only the callers got a new EDS"
assert_eq "$(field responses)" "$((100 * 3 * 2 + 100 * 2 + callers + 1))" "plaintext: responses"
assert_eq "$(field acks)" "$(field responses)" "plaintext: every response ACKed"
assert_eq "$(field storm)" "reconnect" "plaintext: storm remade the connections"
for k in cold_ms policy_p99_ms storm_ms; do
    [ "$(echo "$RESULT" | jq ".$k > 0")" = true ] || fail "plaintext: $k not positive: $RESULT"
done
assert_contains "$OUT" "cold_server_cpu_ms " "plaintext: kuma-cp's cold CPU"
# kuma-cp's own view of the cold start (its insights: first stream accepted
# to last response sent) is there, positive, and within the fleet's view.
cp_view=$(field cold_cp_first_stream_to_last_response_ms)
[ "$(echo "$RESULT" | jq '.cold_cp_first_stream_to_last_response_ms > 0 and
    .cold_cp_first_stream_to_last_response_ms <= .cold_ms')" = true ] ||
    fail "plaintext: kuma-cp's cold view $cp_view not in (0, cold_ms]: $RESULT"
assert_contains "$OUT" "cold_cp_view_first_stream_to_last_response_ms $cp_view" \
    "plaintext: run.sh labels kuma-cp's view"
assert_contains "$OUT" "peak_rss_mb " "plaintext: kuma-cp's peak RSS"
assert_contains "$OUT" "idle_rss_mb " "plaintext: kuma-cp's idle RSS"

run_bench mtls N=30 MTLS=1 CHANNELS=5
assert_eq "$(field channels)" "5" "mtls: channels"
assert_eq "$(field stream_errors)" "0" "mtls: no stream failed"
assert_eq "$(field bad_responses)" "0" "mtls: every response decoded"
# SDS as well: 4 types per stream, twice; CDS and LDS after the policy; EDS
# to the callers of svc-0 (30 proxies, 3 services); LDS to dp-0.
callers=$(callers 30 3)
assert_eq "$(field churn_callers)" "$callers" "mtls: callers of svc-0 among 30 proxies"
assert_eq "$(field churn_received)" "$callers" "mtls: only the callers got a new EDS"
assert_eq "$(field responses)" "$((30 * 4 * 2 + 30 * 2 + callers + 1))" "mtls: responses"
assert_eq "$(field acks)" "$(field responses)" "mtls: every response ACKed"

# The wrong CA: every TLS handshake fails verification; the fleet reports it
# and exits non-zero once TIMEOUT_S is over.
OUT=$(env N=5 BIN="$BIN" FLEET=c IDLE_S=2 TIMEOUT_S=3 CP_TLS_CA=/etc/ssl/certs/ca-certificates.crt \
    bash "$ROOT/bench/xds/run.sh" 2>&1) && fail "wrong CA: run.sh succeeded: $OUT"
assert_contains "$OUT" "TLS handshake" "wrong CA: the failing step"
assert_contains "$OUT" "certificate verify failed" "wrong CA: the reason"
assert_contains "$OUT" "timed out after 3 s waiting for every proxy to ACK every type" \
    "wrong CA: gave up after TIMEOUT_S"
assert_contains "$OUT" "connection errors 5" "wrong CA: every connection counted"
echo "ok"
