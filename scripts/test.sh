#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite:
# unit tests and integration tests under ASan+UBSan, then a short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
echo "==> formatting (clang-format, .clang-format)"
if ! clang-format --dry-run --Werror $(git ls-files '*.c' '*.h') 2>/tmp/format.$$; then
    head -n 20 /tmp/format.$$
    echo "formatting differs: run 'make format'"
    status=1
fi
rm -f /tmp/format.$$

echo "==> unit tests (ASan+UBSan)"
build-asan/unit-tests || status=1

echo "==> integration tests (ASan+UBSan binaries)"
BIN="$PWD/build-asan" bash tests/integration/run.sh || status=1

echo "==> kuma-dp command line (ASan+UBSan binary)"
BIN="$PWD/build-asan" bash tests/dp/test_kuma_dp_cli.sh || status=1

# The release build is what ./scripts/run.sh ships (kuma-dp linked statically
# with its order file): a few end-to-end scenarios on those binaries too.
echo "==> release binaries: mesh traffic, admin, kernel forwarding, HTTP, inspect, fleet"
BIN="$PWD/build" bash tests/integration/run.sh test_dp_mesh_traffic.sh test_dp_admin.sh \
    test_dp_sockmap.sh test_dp_http_routing.sh test_kumactl_inspect.sh test_xds_fleet_bench.sh ||
    status=1
BIN="$PWD/build" bash tests/dp/test_kuma_dp_cli.sh || status=1

echo "==> fuzzing (short run)"
bash tests/fuzz/run.sh "${FUZZ_SECONDS:-30}" || status=1

if [ "$status" -ne 0 ]; then
    echo "==> test suite FAILED"
    exit 1
fi
echo "==> test suite passed"
