#!/usr/bin/env bash
# Builds the proxy engine's unit tests with ThreadSanitizer and runs them.
#   bash tests/dp/run_tsan.sh [filter]      (default filter: dp)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/tsan
mkdir -p "$out"
# shellcheck disable=SC2046
# The xDS client and mapping need the generated protos and gRPC: left out.
cc -std=gnu11 -g -O1 -fsanitize=thread -Isrc -Itests/unit -o "$out/dp-unit-tests" \
    $(ls src/dp/*.c | grep -v '/xds_') src/core/*.c tests/unit/main.c \
    $(ls tests/unit/dp/*.c | grep -v '/test_xds_') \
    $(pkg-config --cflags --libs jansson yaml-0.1 sqlite3 openssl libmicrohttpd libcurl) -lhttp_parser -lpthread -lm
TSAN_OPTIONS="suppressions=$PWD/tests/dp/tsan.supp" "$out/dp-unit-tests" "${1:-dp}"
