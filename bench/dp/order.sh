#!/usr/bin/env bash
# Regenerates src/cmd/kuma-dp.order, the link order of kuma-dp's code
# (Makefile: lld --symbol-ordering-file). It lists every function a running
# proxy executed in these scenarios, so the release link places them
# together and the rest of the statically linked libraries (libcrypto
# above all) is never faulted in. See docs/BENCHMARKS.md, issue 5 "Memory".
#
#   ip netns exec NS bash bench/dp/order.sh     (after `make all`; needs valgrind)
#
# kuma-dp runs under callgrind in the scenarios below: mTLS and plaintext
# traffic (TCP and HTTP), keep-alive, the admin endpoint through kuma-cp,
# and bench/dp/rss.sh's proxy with 100 outbounds. A function missing from the
# list still works; it only costs resident pages where it lies. The order
# only changes where code is placed, never what it does.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/build}
OUT=${OUT:-$ROOT/src/cmd/kuma-dp.order}
command -v valgrind >/dev/null || {
    echo "valgrind missing (apt-get install valgrind)" >&2
    exit 1
}
W=$(mktemp -d /tmp/dp-order-XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bin" "$W/cg"
for f in kuma-cp kumactl dptool; do ln -s "$BIN/$f" "$W/bin/$f"; done
# Dumps every 20M basic blocks, so a proxy a scenario kills still leaves
# its profile behind.
cat >"$W/bin/kuma-dp" <<EOF
#!/bin/sh
exec valgrind -q --tool=callgrind --dump-every-bb=20000000 --callgrind-out-file=$W/cg/cg.%p "$BIN/kuma-dp" "\$@"
EOF
chmod +x "$W/bin/kuma-dp"

SCENARIOS=${SCENARIOS:-test_dp_mesh_traffic.sh test_dp_http_routing.sh test_dp_http_rbac.sh test_dp_http_h2c.sh test_dp_rbac_tags.sh test_dp_split.sh test_dp_keepalive.sh test_dp_admin.sh test_dp_admin_hostile.sh test_dp_cert_rotation.sh test_dp_permissive.sh}
# shellcheck disable=SC2086
(cd "$ROOT/tests/integration" && BIN="$W/bin" IT_TIMEOUT=600 bash run.sh $SCENARIOS) |
    grep -E '^(ok|FAIL|integration)'
BIN="$W/bin" ARENAS=default bash "$ROOT/bench/dp/rss.sh" 100 | grep '^kuma-dp'

# Function names of every dump: "fn=(id) name" defines a name once per file.
cat "$W"/cg/cg.* 2>/dev/null |
    sed -n 's/^c\{0,1\}fn=([0-9]*) \(.*\)$/\1/p' |
    sed "s/'[0-9]*$//" | grep -v -e '^0x' -e '^(below main)' | LC_ALL=C sort -u >"$W/order"
n=$(wc -l <"$W/order")
[ "$n" -gt 1000 ] || {
    echo "only $n functions profiled: not writing $OUT" >&2
    exit 1
}
cp "$W/order" "$OUT"
echo "$OUT: $n functions"
