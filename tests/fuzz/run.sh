#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan+UBSan) and runs each for
# the given number of seconds (default 30) from its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
make -s fuzz
for h in build-fuzz/fuzz_*; do
    name=$(basename "$h")
    corpus=tests/fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    echo "fuzzing $name for ${secs}s"
    "$h" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=0 "$work" 2>"$work.log" || { tail -n 60 "$work.log"; exit 1; }
    grep -E '^#[0-9]+.*DONE' "$work.log" | tail -n 1 || true
    rm -rf "$work" "$work.log"
done
