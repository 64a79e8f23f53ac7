#!/usr/bin/env bash
# Installs what the project needs from Debian's packages and builds it.
#   scripts/setup.sh          build dependencies + build (kuma-cp, kumactl)
#   scripts/setup.sh --test   also the test tools, and the ASan+UBSan build
# Idempotent: packages already present are not reinstalled; make rebuilds
# only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

build_pkgs=(build-essential pkg-config libyaml-dev libjansson-dev libsqlite3-dev
            libssl-dev libmicrohttpd-dev libcurl4-openssl-dev ca-certificates
            libnghttp2-dev protobuf-c-compiler libprotobuf-c-dev libhttp-parser-dev
            lld)
test_pkgs=(clang libclang-rt-14-dev clang-format curl jq sqlite3 openssl procps iproute2
           iptables busybox nginx)
# xDS tests run Node.js clients; keep a Node that is already there (Debian's
# npm conflicts with other Node packagings).
command -v node >/dev/null 2>&1 || test_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || test_pkgs+=(npm)

pkgs=("${build_pkgs[@]}")
[ "$want_test" = 1 ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
else
    echo "==> packages: all present"
fi

jobs=$(nproc 2>/dev/null || echo 2)
echo "==> building (build/)"
make -j"$jobs" all
if [ "$want_test" = 1 ]; then
    echo "==> installing the xDS test clients (tests/xds, npm)"
    (cd tests/xds && npm ci --no-audit --no-fund --loglevel=error)
    echo "==> building the ASan+UBSan test build (build-asan/)"
    make -j"$jobs" SANITIZE=1 WERROR=1 all build-asan/unit-tests
fi
echo "==> build done"
