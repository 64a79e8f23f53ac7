#!/usr/bin/env bash
# TLS garbage and half-open connections on every listener of real proxies:
# the mTLS inbound closes garbage at once and half-open connections at the
# handshake deadline (counted in /stats); the plaintext outbound and the
# admin endpoint close garbage too or pass it on; the proxies stay up and
# keep serving.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
start_backend default
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"

# Half-open connections first (they take the handshake deadline, 10 s).
for i in 1 2 3; do
    "$DPTOOL" garbage 127.0.0.3 17001 --half-open 14000 >"$T/half-$i.out" &
    HALF+=($!)
done
e0=$(dp_stat backend listener.127.0.0.3_17001.ssl.connection_error)
for i in 1 2 3 4 5; do
    "$DPTOOL" garbage 127.0.0.3 17001 >/dev/null || fail "inbound kept a garbage connection"
    "$DPTOOL" garbage 127.0.0.2 17002 >/dev/null || fail "web's inbound kept a garbage connection"
done
[ "$(dp_stat backend listener.127.0.0.3_17001.ssl.connection_error)" -ge $((${e0:-0} + 5)) ] ||
    fail "TLS errors not counted"
# Admin endpoint: an HTTP parser error closes the connection.
"$DPTOOL" garbage 127.0.0.1 "$(dp_admin web)" >/dev/null || fail "admin kept a garbage connection"
# The plaintext outbound forwards bytes over mTLS (the echo sends them back);
# the connection ends when the client stops.
"$DPTOOL" load 127.0.0.2 27001 --count 5 --size 4096 >/dev/null
# Meanwhile everything keeps working.
load 127.0.0.2 27001 --count 50 --size 1000
assert_eq "$LOAD_FAIL" 0 "traffic with half-open connections around"
for p in "${HALF[@]}"; do wait "$p" || fail "a half-open connection was not closed"; done
dp_ready backend && dp_ready web || fail "a proxy is not ready"
load 127.0.0.2 27001 --count 20 --size 1000
assert_eq "$LOAD_FAIL" 0 "traffic after the garbage"
echo ok
