#!/usr/bin/env bash
# Runs every integration scenario (tests/integration/test_*.sh, or those named
# on the command line), each with a time limit, and ends with
# "integration: N passed, N failed".
set -u
cd "$(dirname "$0")"
export BIN=${BIN:-$(cd ../.. && pwd)/build}
passed=0 failed=0 failed_names=()
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(test_*.sh)
for t in "${tests[@]}"; do
    start=$(date +%s)
    if out=$(timeout "${IT_TIMEOUT:-300}" bash "$t" 2>&1); then
        passed=$((passed + 1))
        echo "ok   ${t%.sh} ($(($(date +%s) - start))s)"
    else
        failed=$((failed + 1))
        failed_names+=("$t")
        echo "FAIL ${t%.sh} ($(($(date +%s) - start))s)"
        echo "$out" | tail -n 40 | sed 's/^/    /'
    fi
done
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
