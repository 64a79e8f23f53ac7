#!/usr/bin/env bash
# Builds the proxy engine's unit tests with ThreadSanitizer and runs them.
#   bash tests/dp/run_tsan.sh [filter]      (default filter: dp)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/tsan
mkdir -p "$out"
# shellcheck disable=SC2046
cc -std=gnu11 -g -O1 -fsanitize=thread -Isrc -Itests/unit -o "$out/dp-unit-tests" \
    src/dp/*.c src/core/*.c tests/unit/main.c tests/unit/dp/*.c \
    $(pkg-config --cflags --libs jansson yaml-0.1 sqlite3 openssl libmicrohttpd libcurl) -lpthread -lm
TSAN_OPTIONS="suppressions=$PWD/tests/dp/tsan.supp" "$out/dp-unit-tests" "${1:-dp}"
