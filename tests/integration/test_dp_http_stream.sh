#!/usr/bin/env bash
# HTTP awareness, streams: through two proxies with mesh mTLS (web's
# outbound HttpConnectionManager → backend's inbound one), keep-alive (one
# client connection, many requests, one upstream connection reused),
# pipelined requests sent in one write and answered in order, chunked
# request and response bodies larger than the proxy's buffers, an Upgrade
# switched to a raw tunnel, and a malformed request answered 400 and closed
# while the proxy keeps serving the next client.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
"$DPTOOL" http-server 127.0.0.3 7001 --id b1 >"$T/wl-b1.log" 2>&1 &
PIDS+=($!)
wait_for "http workload" 50 grep -q listening "$T/wl-b1.log"
start_dp backend default "$(dp_yaml 127.0.0.3 17001 backend 7001 "" "kuma.io/protocol=http")"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
hcm() { local c; c=$(dp_config web); [[ $c == *envoy.filters.network.http_connection_manager* ]]; }
wait_for "the HTTP outbound listener" 100 hcm
ready() { [ "$(curl -s -m 2 http://127.0.0.2:27001/ready)" = "b1 GET /ready" ]; }
wait_for "the route" 100 ready

stat() { dp_stat "$1" "$2"; }
inbound_prefix=$(curl -s "http://127.0.0.1:$(dp_admin backend)/stats" | sed -n 's/^http\.\(.*\)\.downstream_cx_total: .*/\1/p' | head -1)
[ -n "$inbound_prefix" ] || fail "no http.* stats on the backend's proxy"

# Keep-alive: curl sends 5 requests over one connection; web's proxy uses
# one upstream (mTLS) connection for all of them (the one its pool kept from
# the requests above, so at most one new proxy-to-proxy connection).
cx0=$(stat web http.backend.downstream_cx_total)
rq0=$(stat web http.backend.downstream_rq_total)
incx0=$(stat backend "http.$inbound_prefix.downstream_cx_total")
out=$(curl -s -m 10 -w '[%{num_connects}]' http://127.0.0.2:27001/k1 http://127.0.0.2:27001/k2 \
    http://127.0.0.2:27001/k3 http://127.0.0.2:27001/k4 http://127.0.0.2:27001/k5 | tr -d '\n')
assert_eq "$out" "b1 GET /k1[1]b1 GET /k2[0]b1 GET /k3[0]b1 GET /k4[0]b1 GET /k5[0]" "keep-alive replies"
assert_eq "$(($(stat web http.backend.downstream_cx_total) - cx0))" 1 "client connections"
assert_eq "$(($(stat web http.backend.downstream_rq_total) - rq0))" 5 "requests"
[ "$(($(stat backend "http.$inbound_prefix.downstream_cx_total") - incx0))" -le 1 ] ||
    fail "more than one proxy-to-proxy connection for 5 keep-alive requests"
# Separate clients, one after the other: the worker's pool hands the same
# upstream connection to each (no new proxy-to-proxy TLS handshake).
incx0=$(stat backend "http.$inbound_prefix.downstream_cx_total")
hs0=$(stat web cluster.backend.ssl.handshake)
for i in $(seq 10); do
    assert_eq "$(curl -s -m 5 "http://127.0.0.2:27001/c$i")" "b1 GET /c$i" "client $i"
done
[ "$(($(stat backend "http.$inbound_prefix.downstream_cx_total") - incx0))" -le 2 ] ||
    fail "10 clients made $(($(stat backend "http.$inbound_prefix.downstream_cx_total") - incx0)) proxy-to-proxy connections"
[ "$(($(stat web cluster.backend.ssl.handshake) - hs0))" -le 2 ] || fail "TLS handshakes not saved"

# Pipelining: three requests in one write, answered in order, then closed.
req='GET /p1 HTTP/1.1\r\nHost: backend\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: backend\r\nContent-Length: 5\r\n\r\nhelloGET /p3 HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n'
out=$(printf "$req" | "$DPTOOL" http-raw 127.0.0.2 27001) || fail "pipelined: no close ($out)"
bodies=$(grep -a '^b1 ' <<<"$out" | tr -d '\r' | tr '\n' '|')
assert_eq "$bodies" "b1 GET /p1|b1 POST /p2|b1 GET /p3|" "pipelined replies in order"
assert_contains "$out" "hello" "pipelined POST body"
assert_eq "$(grep -ao 'HTTP/1.1 200' <<<"$out" | wc -l)" 3 "three responses"

# Chunked request body (larger than the 32 KiB buffers) echoed back in a
# chunked response; and a large Content-Length body.
head -c 300000 /dev/urandom | base64 -w0 >"$T/big"
want=$(printf 'b1 POST /chunked\n%s' "$(cat "$T/big")" | sha256sum)
got=$(curl -s -m 20 -H 'Transfer-Encoding: chunked' --data-binary @"$T/big" http://127.0.0.2:27001/chunked | sha256sum)
assert_eq "$got" "$want" "chunked body echoed"
te=$(curl -s -m 20 -D - -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @"$T/big" http://127.0.0.2:27001/chunked | tr -d '\r' | grep -i '^transfer-encoding')
assert_eq "$te" "transfer-encoding: chunked" "chunked response"
want=$(printf 'b1 POST /cl\n%s' "$(cat "$T/big")" | sha256sum)
got=$(curl -s -m 20 --data-binary @"$T/big" http://127.0.0.2:27001/cl | sha256sum)
assert_eq "$got" "$want" "content-length body echoed"

# Upgrade: 101 through both proxies, then raw bytes both ways.
out=$(printf 'GET /ws HTTP/1.1\r\nHost: backend\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nRAW-BYTES-1' |
    "$DPTOOL" http-raw 127.0.0.2 27001 --wait-ms 1500)
assert_contains "$out" "HTTP/1.1 101 Switching Protocols" "upgrade"
assert_contains "$out" "RAW-BYTES-1" "tunnelled bytes"
[ "$(stat web http.backend.downstream_cx_upgrades_total)" -ge 1 ] || fail "downstream_cx_upgrades_total"

# A malformed request: 400, closed; the proxy still serves the next client.
pe0=$(stat web http.backend.downstream_cx_protocol_error)
out=$(printf 'GET /x HTTP/1.1\r\nHost: backend\r\nBroken header line\r\n\r\n' | "$DPTOOL" http-raw 127.0.0.2 27001) ||
    fail "malformed: the proxy did not close ($out)"
assert_contains "$out" "HTTP/1.1 400 Bad Request" "malformed request"
assert_contains "$out" "connection: close"
out=$(head -c 4096 /dev/urandom | "$DPTOOL" http-raw 127.0.0.2 27001) || fail "garbage: no close"
assert_contains "$out" "HTTP/1.1 400" "garbage"
assert_eq "$(($(stat web http.backend.downstream_cx_protocol_error) - pe0))" 2 "protocol errors"
assert_eq "$(curl -s -m 5 http://127.0.0.2:27001/after)" "b1 GET /after" "served after bad clients"
# An oversized head: 431.
long=$(head -c 40000 /dev/zero | tr '\0' a)
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "x-long: $long" http://127.0.0.2:27001/long)
assert_eq "$code" 431 "head larger than the buffer"
assert_eq "$(curl -s -m 5 http://127.0.0.2:27001/after2)" "b1 GET /after2" "served after a large head"

kill -0 "$(dp_pid web)" && kill -0 "$(dp_pid backend)" || fail "a proxy died"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
