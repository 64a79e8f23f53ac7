#!/usr/bin/env bash
# Workload-certificate issuance benchmark, pinned to one core, with the openssl
# CLI and `openssl speed` as peers. Usage: bench/ca/run.sh [path/to/bench-ca] [N] [M]
# Prints a Markdown-ready block; docs/BENCHMARKS.md quotes one run.
set -euo pipefail
BIN=${1:-build/bench-ca}
N=${2:-10000}
M=${3:-200}
CPU=${CPU:-1}
PIN=(taskset -c "$CPU")
command -v taskset >/dev/null || PIN=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "## machine"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPU; pinned to CPU $CPU"
echo "os: $(. /etc/os-release; echo "$PRETTY_NAME"), $(openssl version)"
echo
echo "## this library: ${PIN[*]} $BIN $N $M"
"${PIN[@]}" "$BIN" "$N" "$M"
echo
echo "## peer 1: openssl CLI, one process pair per certificate (keygen+CSR, then sign)"
cd "$tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
    -subj "/O=Kuma/OU=Mesh/CN=default" -days 3650 2>/dev/null
printf 'subjectAltName=critical,URI:spiffe://default/backend\nkeyUsage=critical,digitalSignature,keyEncipherment,keyAgreement\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n' > ext.cnf
K=${CLI_N:-200}
start=$(date +%s.%N)
for i in $(seq "$K"); do
    "${PIN[@]}" openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout l.key -subj "/" -out l.csr 2>/dev/null
    "${PIN[@]}" openssl x509 -req -in l.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days 1 -extfile ext.cnf -out l.crt 2>/dev/null
done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v k="$K" 'BEGIN { t=e-s; printf "openssl CLI ECDSA P-256 leaf: n=%d wall=%.3f s  per-cert=%.2f ms  (10k extrapolated: %.0f s)\n", k, t, t/k*1000, t/k*10000 }'
echo
echo "## peer 2: openssl speed (raw primitives, one core)"
"${PIN[@]}" openssl speed -seconds 2 ecdsap256 rsa2048 2>/dev/null | grep -E '^(ecdsa|rsa|  *sign|  *[0-9])' | grep -vE '^ *$' || true
