#!/usr/bin/env bash
# Slow consumers through real proxies: a workload floods 20 connections whose
# clients read nothing. Both proxies stop reading (flow control) instead of
# buffering: their RSS stays bounded, and other traffic still flows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
# default) and shows in RSS; keep it small so RSS measures live memory.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
start_workload flood 127.0.0.3 7001 --flood
start_workload echo 127.0.0.5 7005
start_dp flood default "$(dp_yaml 127.0.0.3 17001 flood 7001)"
start_dp echo default "$(dp_yaml 127.0.0.5 17005 echo 7005)"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:flood 27002:echo")"
load 127.0.0.2 27002 --count 20 --size 1000 # warm up
assert_eq "$LOAD_FAIL" 0 "warm-up"
w0=$(dp_rss_kb web) f0=$(dp_rss_kb flood)

"$DPTOOL" hold 127.0.0.2 27001 20 6000 >"$T/hold.out" &
HOLD=$!
PIDS+=($HOLD)
rx() { dp_stat web cluster.flood.upstream_cx_rx_bytes_total; }
flowing() { [ "$(rx)" -ge 1000000 ] 2>/dev/null; }
wait_for "the flood reaches web" 50 flowing
# Back-pressure: web stops reading from upstream once its buffers are full,
# so the bytes it takes from the flood stall while the clients read nothing.
stalled() { local a b; a=$(rx); sleep 0.5; b=$(rx); [ $((b - a)) -lt 65536 ]; }
wait_for "web stops reading the flood" 50 stalled
w1=$(dp_rss_kb web) f1=$(dp_rss_kb flood)
echo "RSS KiB web $w0 -> $w1, flood proxy $f0 -> $f1"
# Bounded: 20 connections × 2 × 32 KiB of buffers plus TLS state is ~2 MiB;
# allow 24 MiB for allocator and sanitizer overhead. Unbounded buffering of
# a flood at loopback speed would take hundreds of MiB in these seconds.
[ $((w1 - w0)) -lt 24576 ] || fail "web proxy grew by $((w1 - w0)) KiB"
[ $((f1 - f0)) -lt 24576 ] || fail "flood proxy grew by $((f1 - f0)) KiB"
load 127.0.0.2 27002 --count 20 --size 1000
assert_eq "$LOAD_FAIL" 0 "other traffic during the flood"
wait "$HOLD"
assert_contains "$(cat "$T/hold.out")" "held=20"
echo ok
