#!/usr/bin/env bash
# A real kuma-dp's admin endpoint (127.0.0.1, its own HTTP server since
# libmicrohttpd left kuma-dp) against hostile and broken local clients:
# an oversized head (431), an oversized body (413), garbage (400), a
# slowloris client (408 at the 10 s deadline, not later), 100 clients at once
# (all served), keep-alive with pipelining; the proxy keeps serving
# throughout. kuma-dp does not link libmicrohttpd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

if ldd "$BIN/kuma-dp" | grep -q microhttpd; then
    fail "kuma-dp links libmicrohttpd: $(ldd "$BIN/kuma-dp" | grep microhttpd)"
fi

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
start_workload web 127.0.0.2 7002
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002)"
port=$(dp_admin web)
url="http://127.0.0.1:$port"

# raw REQUEST-FILE [SECONDS]: sends the file's bytes on one connection and
# prints everything the server answers until it closes (or SECONDS pass).
raw() {
    local in=$1 t=${2:-5}
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    cat "$in" >&"$fd" 2>/dev/null
    timeout "$t" cat <&"$fd"
    exec {fd}>&-
}

# Slowloris, in the background while the rest runs: one header byte a
# second never completes a head; the server answers 408 and closes at its
# 10 s deadline (the client would have gone on for 30 s).
(
    trap '' PIPE
    exec {s}<>"/dev/tcp/127.0.0.1/$port"
    start=$(date +%s%N)
    printf 'GET /ready HTTP/1.1\r\nX-Slow: ' >&"$s"
    for _ in $(seq 30); do
        printf 'a' >&"$s" 2>/dev/null || break
        read -r -t 1 -u "$s" line && break
    done
    rest=$(timeout 5 cat <&"$s")
    ms=$((($(date +%s%N) - start) / 1000000))
    printf '%s\n%s\n' "$ms" "$line$rest" >"$T/slow.out"
) &
slow=$!

# Oversized head: 431, with the limit in the body.
{
    printf 'GET /stats HTTP/1.1\r\nHost: a\r\nX-Pad: '
    head -c 20000 /dev/zero | tr '\0' a
    printf '\r\n\r\n'
} >"$T/big-head"
out=$(raw "$T/big-head")
assert_contains "$out" "HTTP/1.1 431 Request Header Fields Too Large" "oversized head"
assert_contains "$out" "the limit is 16384 bytes" "431 body"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' b)" "$url/ready")
assert_eq "$code" 431 "curl with a 20 KB header"

# Oversized body: 413.
{
    printf 'GET /ready HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n'
    head -c 100000 /dev/zero
} >"$T/big-body"
out=$(raw "$T/big-body")
assert_contains "$out" "HTTP/1.1 413 Content Too Large" "oversized body"

# Garbage: 400 and the connection closed.
head -c 300 /dev/urandom >"$T/garbage"
printf '\r\n\r\n' >>"$T/garbage"
out=$(raw "$T/garbage")
assert_contains "$out" "HTTP/1.1 400 Bad Request" "garbage"
printf 'GET /ready HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n' >"$T/neg"
assert_contains "$(raw "$T/neg")" "HTTP/1.1 400 Bad Request" "negative length"

# Methods: only GET and HEAD.
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$url/ready")
assert_eq "$code" 405 "POST"
assert_eq "$(cat "$T/body")" "method not allowed" "405 body"
hdrs=$(curl -s -I "$url/ready")
assert_contains "$hdrs" "HTTP/1.1 200 OK" "HEAD status"
assert_contains "$hdrs" "Content-Length: 5" "HEAD length (LIVE\\n)"

# Keep-alive and pipelining: three requests in one write, answered in order.
printf 'GET /ready HTTP/1.1\r\nHost: a\r\n\r\nGET /clusters HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$T/pipe"
out=$(raw "$T/pipe")
assert_eq "$(grep -c '^HTTP/1.1 ' <<<"$out")" 3 "pipelined answers"
assert_eq "$(grep '^HTTP/1.1 ' <<<"$out" | cut -d' ' -f2 | tr -d '\r' | paste -sd,)" "200,200,404" "order"
assert_contains "$out" "localhost:7002::observability_name::localhost_7002" "clusters in the pipeline"
# curl reuses one connection for several URLs.
out=$(curl -sv "$url/ready" "$url/ready" 2>&1)
assert_contains "$out" "Re-using existing connection" "keep-alive"

# 100 clients at once: every one served.
for i in $(seq 100); do
    curl -s -o "$T/par-$i" -w '%{http_code}\n' --max-time 20 "$url/stats?filter=server%5C.live" >"$T/par-$i.code" &
done
wait_codes=0
for i in $(seq 100); do
    for _ in $(seq 200); do [ -s "$T/par-$i.code" ] && break; sleep 0.1; done
    [ "$(cat "$T/par-$i.code" 2>/dev/null)" = 200 ] && grep -qx 'server.live: 1' "$T/par-$i" &&
        wait_codes=$((wait_codes + 1))
done
assert_eq "$wait_codes" 100 "parallel clients served"

# The slow client was cut at the deadline with a 408.
wait "$slow"
ms=$(head -1 "$T/slow.out")
assert_contains "$(cat "$T/slow.out")" "HTTP/1.1 408 Request Timeout" "slowloris"
[ "$ms" -ge 9000 ] && [ "$ms" -lt 14000 ] || fail "slow client closed after ${ms} ms (deadline 10 s)"

# Still alive and serving, and the traffic path unaffected.
kill -0 "$(dp_pid web)" || fail "kuma-dp died"
assert_eq "$(curl -s "$url/ready")" LIVE "ready after the abuse"
echo ok
