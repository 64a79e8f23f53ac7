#!/usr/bin/env bash
# kuma-cp's DP server sizes each connection's TLS buffers from its
# certificate (src/xds/transport.c): the ring OpenSSL writes into holds a
# record and, as a margin, the server flight. Here the DP server presents a
# leaf and two intermediates, RSA-4096, the leaf naming 200 hosts: a flight
# of over 9 KB, more than the 8 KB minimum. 20 proxies, one TLS connection
# each, go through every phase of the fleet benchmark: cold start, policy
# change, endpoint change and a reconnect storm that redoes every handshake.
# Every response must decode and be ACKed.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$BIN/bench-xds-fleet" ] || fail "$BIN/bench-xds-fleet missing (make all)"
command -v openssl >/dev/null || fail "openssl missing"

D=$T/chain
mkdir -p "$D"
# ca -> int1 -> int2 -> leaf (SAN 127.0.0.1, localhost), all RSA-4096.
ossl() { openssl "$@" >/dev/null 2>&1 || fail "openssl $1 failed"; }
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$D/ca.ext"
# The leaf also names 200 more hosts, so the flight outgrows 8 KB.
sans="IP:127.0.0.1,DNS:localhost"
for i in $(seq 200); do sans="$sans,DNS:host-$i.chain-test.example"; done
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$sans" >"$D/leaf.ext"
ossl req -x509 -newkey rsa:4096 -nodes -keyout "$D/ca.key" -out "$D/ca.crt" -days 2 \
    -subj "/CN=chain test root" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
prev=ca
for name in int1 int2 leaf; do
    ossl req -newkey rsa:4096 -nodes -keyout "$D/$name.key" -out "$D/$name.csr" -subj "/CN=chain test $name"
    ext=ca.ext
    [ "$name" = leaf ] && ext=leaf.ext
    ossl x509 -req -in "$D/$name.csr" -CA "$D/$prev.crt" -CAkey "$D/$prev.key" -CAcreateserial \
        -days 2 -extfile "$D/$ext" -out "$D/$name.crt"
    prev=$name
done
cat "$D/leaf.crt" "$D/int2.crt" "$D/int1.crt" >"$D/chain.crt"
der=0
for c in leaf int2 int1; do der=$((der + $(openssl x509 -in "$D/$c.crt" -outform DER | wc -c))); done
[ "$der" -gt 9000 ] || fail "the chain is only $der bytes (DER)"

OUT=$(env CP_TLS_CERT="$D/chain.crt" CP_TLS_KEY="$D/leaf.key" CP_TLS_CA="$D/ca.crt" \
    N=20 STORM=reconnect BIN="$BIN" FLEET=c IDLE_S=2 TIMEOUT_S=60 \
    bash "$ROOT/bench/xds/run.sh" 2>&1) || fail "run.sh failed: $(echo "$OUT" | tail -n 20)"
RESULT=$(echo "$OUT" | sed -n 's/^RESULT //p')
[ -n "$RESULT" ] || fail "no RESULT line: $(echo "$OUT" | tail -n 20)"
field() { echo "$RESULT" | jq -r ".$1"; }
assert_eq "$(field channels)" "20" "one TLS connection per proxy"
assert_eq "$(field stream_errors)" "0" "no stream failed"
assert_eq "$(field bad_responses)" "0" "every response decoded"
assert_eq "$(field storm)" "reconnect" "the storm redid every handshake"
[ "$(field responses)" -ge 140 ] || fail "too few responses: $RESULT"
assert_eq "$(field acks)" "$(field responses)" "every response ACKed"
echo "ok"
