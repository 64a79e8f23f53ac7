#!/usr/bin/env bash
# xDS fleet benchmark: starts the release kuma-cp (build/kuma-cp) with a
# memory store and authn none, runs a simulated fleet of N proxies against
# it, and reports the fleet's figures plus kuma-cp's peak RSS and idle CPU.
#   N=10000 bash bench/xds/run.sh      (MTLS=1 for an mTLS mesh, PERF=cold|policy
#   to profile kuma-cp during that phase; CP_TLS_CERT/CP_TLS_KEY/CP_TLS_CA: the
#   DP server's certificate chain, key and the CA the fleet trusts, instead of
#   the one kuma-cp generates; CP_PREFIX: a command to run kuma-cp under)
# FLEET=c (default) runs build/bench-xds-fleet (bench/xds/fleet.c, `make
# bench-xds-fleet`: gRPC by hand over libnghttp2 + OpenSSL + epoll, THREADS
# event loops; one TLS connection per proxy unless CHANNELS is set),
# FLEET=node runs bench/xds/fleet.js (50 connections, Node's gRPC). Both take
# the same environment (N, SERVICES, OUTBOUNDS, CHANNELS, MTLS, IDLE_S) and
# print the same phase markers and RESULT line. One TLS connection's CPU on
# each side alone (kuma-cp's DP-server context against the fleet's client):
# `make bench-xds-hs` (bench/xds/hs_bench.c).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$PWD/build}
N=${N:-1000}
W=$(mktemp -d /tmp/bench-xds-XXXXXX)
cleanup() {
    [ -z "${CP:-}" ] || { kill "$CP" 2>/dev/null; wait "$CP" 2>/dev/null || true; }
    [ -z "${CP_LOG:-}" ] || cp "$W/cp.log" "$CP_LOG" || true
    { grep -E "snapshot in|new proxies served" "$W/cp.log" || true; } | tail -4 >&2
    rm -rf "$W"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
KUMA_GENERAL_WORK_DIR=$W KUMA_STORE_TYPE=memory KUMA_API_SERVER_HTTP_INTERFACE=127.0.0.1 \
    KUMA_API_SERVER_HTTP_PORT=0 KUMA_API_SERVER_HTTPS_PORT=0 KUMA_DIAGNOSTICS_SERVER_PORT=0 \
    KUMA_DP_SERVER_PORT=0 KUMA_MONITORING_ASSIGNMENT_SERVER_PORT=0 \
    KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none KUMA_LOG_LEVEL=${LOG_LEVEL:-warn} \
    env ${GEN_THREADS:+KUMA_XDS_SERVER_GENERATION_THREADS=$GEN_THREADS} \
    ${CP_TLS_CERT:+KUMA_GENERAL_TLS_CERT_FILE=$CP_TLS_CERT KUMA_GENERAL_TLS_KEY_FILE=$CP_TLS_KEY} \
    ${CP_TUNABLES:+GLIBC_TUNABLES=$CP_TUNABLES} ${CP_PREFIX:-} "$BIN/kuma-cp" run >"$W/cp.log" 2>&1 &
CP=$!
for _ in $(seq 100); do [ -s "$W/listeners" ] && break; sleep 0.1; done
sleep 0.5
API="http://127.0.0.1:$(awk '$1=="api-http"{print $2}' "$W/listeners")"
XDS="127.0.0.1:$(awk '$1=="dp-server"{print $2}' "$W/listeners")"
ticks() { awk '{print $14+$15}' "/proc/$CP/stat"; }
HZ=$(getconf CLK_TCK)
# PERF=cold|policy: perf record -g of kuma-cp during that phase, into
# $PERF_OUT (default /tmp/xds-<phase>.perf.data).
perf_start() {
    [ "${PERF:-}" = "$1" ] || return 0
    perf record -F ${PERF_FREQ:-1999} ${PERF_CALLGRAPH:--g} -p "$CP" -o "${PERF_OUT:-/tmp/xds-$1.perf.data}" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 2 # perf attaches to every thread before it samples
}
perf_stop() {
    [ -n "${PERF_PID:-}" ] || return 0
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=
}
case "${FLEET:-c}" in
c)
    [ -x "$BIN/bench-xds-fleet" ] || { echo "$BIN/bench-xds-fleet missing: make bench-xds-fleet" >&2; exit 1; }
    FLEET_CMD=("$BIN/bench-xds-fleet") ;;
node) FLEET_CMD=(node --max-old-space-size=4096 bench/xds/fleet.js) ;;
*) echo "FLEET: c or node" >&2; exit 1 ;;
esac
# FLEET_PREFIX: a command to run the fleet under (e.g. "perf record -g -o f.data").
# shellcheck disable=SC2086
N=$N XDS_ADDR=$XDS CP_URL=$API XDS_CA="${CP_TLS_CA:-$W/kuma-cp.crt}" ${FLEET_PREFIX:-} "${FLEET_CMD[@]}" | while read -r line; do
    case "$line" in
    COLD_BEGIN) echo "$(ticks)" >"$W/cold0"; perf_start cold ;;
    COLD_END) echo "$(ticks)" >"$W/cold1"; perf_stop ;;
    POLICY_BEGIN) echo "$(ticks)" >"$W/pol0"; perf_start policy ;;
    POLICY_END) echo "$(ticks)" >"$W/pol1"; perf_stop ;;
    IDLE_BEGIN) sleep 1; echo "$(ticks) $(date +%s.%N)" >"$W/idle0" ;;
    RESULT*) echo "$line"; echo "${line#RESULT }" >"$W/result" ;;
    IDLE_END)
        echo "$(ticks) $(date +%s.%N)" >"$W/idle1"
        awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$CP/status" >"$W/idle_rss" ;;
    *) echo "$line" ;;
    esac
done
read -r t0 s0 <"$W/idle0"
read -r t1 s1 <"$W/idle1"
# The cold start seen from both ends (FLEET=c): the fleet's, from the phase's
# start (connections included) to the last proxy's last ACK, and kuma-cp's
# own, from its DataplaneInsights: first stream accepted to last response sent.
if [ -s "$W/result" ] && jq -e '.cold_cp_first_stream_to_last_response_ms' "$W/result" >/dev/null 2>&1; then
    echo "cold_fleet_view_ms $(jq -r '.cold_ms' "$W/result")"
    echo "cold_cp_view_first_stream_to_last_response_ms $(jq -r '.cold_cp_first_stream_to_last_response_ms' "$W/result")"
fi
echo "cold_server_cpu_ms $(( ($(cat "$W/cold1") - $(cat "$W/cold0")) * 1000 / HZ ))"
echo "policy_server_cpu_ms $(( ($(cat "$W/pol1") - $(cat "$W/pol0")) * 1000 / HZ ))"
echo "idle_cpu_percent $(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v x="$s0" -v y="$s1" 'BEGIN{printf "%.2f", 100*(b-a)/hz/(y-x)}')"
echo "peak_rss_mb $(awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$CP/status")"
echo "idle_rss_mb $(cat "$W/idle_rss")"
echo "threads $(awk '/Threads/{print $2}' "/proc/$CP/status")"
