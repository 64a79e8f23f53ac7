#!/usr/bin/env bash
# Installs what is needed, builds, and starts kuma-cp on its embedded SQLite
# store (work dir ~/.kuma by default) with mesh "default" and the API on :5681.
# Extra arguments go to `kuma-cp run` (for example -c kuma-cp.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> starting kuma-cp (API http://localhost:5681, stop with Ctrl-C)"
exec build/kuma-cp run "$@"
