#!/usr/bin/env bash
# The subset protos in src/proto (kuma-cp's encoder and kuma-dp's decoder)
# match Envoy's real protos field by field: numbers, types, cardinality and
# oneofs (tests/xds/subset_protos.js).
. "$(dirname "$0")/lib.sh"
XDS_TESTS="$(cd "$(dirname "$0")/../xds" && pwd)"
[ -d "$XDS_TESTS/node_modules/@grpc/grpc-js-xds" ] ||
    fail "tests/xds/node_modules missing: run scripts/setup.sh --test (npm ci in tests/xds)"
out=$(node "$XDS_TESTS/subset_protos.js" 2>&1) || fail "subset protos differ from Envoy's: $out"
echo "$out"
echo ok
