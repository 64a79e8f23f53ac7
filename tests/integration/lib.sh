# Shared helpers for integration scenarios. Source it first:
#   . "$(dirname "$0")/lib.sh"
# Every scenario runs real binaries from $BIN on ephemeral loopback ports,
# in its own temp dir and HOME, and stops everything it started on exit.
set -uo pipefail

BIN=${BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/it-${TEST_NAME}-XXXXXX")
export HOME="$T/home"
mkdir -p "$HOME"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "$T"; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -n "${CP_LOG:-}" ] && [ -f "$CP_LOG" ]; then
        echo "--- last lines of kuma-cp log ---" >&2
        tail -n 30 "$CP_LOG" >&2
    fi
    exit 1
}

assert_eq() { # actual expected [message]
    [ "$1" == "$2" ] || fail "${3:-values differ}: got '$1', expected '$2'"
}

assert_contains() { # haystack needle [message]
    case "$1" in *"$2"*) ;; *) fail "${3:-missing text}: '$2' not in: $1" ;; esac
}

assert_not_contains() {
    case "$1" in *"$2"*) fail "${3:-unexpected text}: '$2' found in: $1" ;; *) ;; esac
}

# need_xds_node: the Node xDS clients of tests/xds (XDS_TESTS) with their
# node_modules installed, or the scenario fails saying how to install them.
need_xds_node() {
    XDS_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../xds" && pwd)
    [ -d "$XDS_TESTS/node_modules/@grpc/grpc-js-xds" ] ||
        fail "tests/xds/node_modules missing: run scripts/setup.sh --test (npm ci in tests/xds)"
}

# xds_node SCRIPT [VAR=value ...]: runs tests/xds/SCRIPT against the running
# kuma-cp (XDS_CA, XDS_ADDR, CP_URL, T set; extra variables as given).
xds_node() {
    local script=$1
    shift
    env T="$T" XDS_CA="$CP_WORKDIR/kuma-cp.crt" XDS_ADDR="$CP_XDS_ADDR" CP_URL="$CP_URL" "$@" \
        node "$XDS_TESTS/$script"
}

# start_cp [VAR=value ...]: starts kuma-cp with its own work dir (CP_WORKDIR,
# reused if already set, so a restart keeps the store) on ephemeral ports and
# waits until /ready answers. Sets CP_PID, CP_URL, CP_DIAG_URL, CP_XDS_ADDR, CP_LOG.
start_cp() {
    CP_WORKDIR=${CP_WORKDIR:-$T/cp}
    CP_LOG="$T/kuma-cp.log"
    rm -f "$CP_WORKDIR/listeners" 2>/dev/null
    env KUMA_GENERAL_WORK_DIR="$CP_WORKDIR" \
        KUMA_API_SERVER_HTTP_INTERFACE=127.0.0.1 KUMA_API_SERVER_HTTP_PORT=0 \
        KUMA_DIAGNOSTICS_SERVER_PORT=0 \
        KUMA_DP_SERVER_PORT=0 KUMA_MONITORING_ASSIGNMENT_SERVER_PORT=0 \
        KUMA_API_SERVER_HTTPS_PORT=0 \
        "$@" "$BIN/kuma-cp" run >>"$CP_LOG" 2>&1 &
    CP_PID=$!
    PIDS+=("$CP_PID")
    local i
    for i in $(seq 100); do
        if [ -s "$CP_WORKDIR/listeners" ]; then break; fi
        kill -0 "$CP_PID" 2>/dev/null || fail "kuma-cp exited during start"
        sleep 0.1
    done
    [ -s "$CP_WORKDIR/listeners" ] || fail "kuma-cp did not write its listeners file"
    local api diag
    api=$(awk '$1=="api-http"{print $2}' "$CP_WORKDIR/listeners")
    diag=$(awk '$1=="diagnostics"{print $2}' "$CP_WORKDIR/listeners")
    CP_URL="http://127.0.0.1:$api"
    CP_DIAG_URL="http://127.0.0.1:$diag"
    # xDS: the DP server (ADS) port, as host:port for gRPC clients.
    CP_XDS_ADDR="127.0.0.1:$(awk '$1=="dp-server"{print $2}' "$CP_WORKDIR/listeners")"
    # identity: the HTTPS API (kuma-cp's own certificate is its CA file) and
    # the admin user token kuma-cp bootstraps at first start.
    CP_HTTPS_URL="https://localhost:$(awk '$1=="api-https"{print $2}' "$CP_WORKDIR/listeners")"
    CP_CA_FILE="$CP_WORKDIR/kuma-cp.crt"
    CP_ADMIN_TOKEN=$(cat "$CP_WORKDIR/admin-token" 2>/dev/null)
    for i in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$CP_DIAG_URL/ready")" = 200 ] && return 0
        sleep 0.1
    done
    fail "kuma-cp did not become ready"
}

# stop_cp [SIGNAL]: stops the running kuma-cp (default SIGTERM) and waits.
stop_cp() {
    local sig=${1:-TERM}
    kill -"$sig" "$CP_PID" 2>/dev/null
    wait "$CP_PID" 2>/dev/null
    CP_EXIT=$?
}

# api METHOD PATH [BODY]: calls the REST API; sets BODY and HTTP_STATUS.
# BODY starting with @ names a file. Call it directly, not in $(...), or the
# variables are lost with the subshell; use `get PATH` to print a body.
api() {
    local method=$1 path=$2 body=${3:-}
    local out="$T/api.out"
    if [ -n "$body" ]; then
        if [ "${body:0:1}" = "@" ]; then
            HTTP_STATUS=$(curl -s -o "$out" -w '%{http_code}' -X "$method" \
                -H 'Content-Type: application/json' --data-binary "$body" "$CP_URL$path")
        else
            HTTP_STATUS=$(curl -s -o "$out" -w '%{http_code}' -X "$method" \
                -H 'Content-Type: application/json' --data-binary @- "$CP_URL$path" <<<"$body")
        fi
    else
        HTTP_STATUS=$(curl -s -o "$out" -w '%{http_code}' -X "$method" "$CP_URL$path")
    fi
    BODY=$(cat "$out")
}

# get PATH: prints the body of GET PATH.
get() {
    curl -s "$CP_URL$1"
}

# kumactl ARGS...: the CLI against this test's control plane.
kumactl() {
    "$BIN/kumactl" "$@"
}

# use_cp: points kumactl's config at the started control plane.
use_cp() {
    "$BIN/kumactl" config control-planes add --name it --address "$CP_URL" --overwrite >/dev/null ||
        fail "kumactl could not add the control plane"
}

# --- identity ---
# The "remote" client of the API-auth scenarios: a second loopback address.
# kuma-cp treats only 127.0.0.1 and ::1 as localhost, so requests sent from
# 127.0.0.2 (curl --interface) are what a client on another machine sends.
REMOTE_SRC=127.0.0.2

# api_remote METHOD PATH [BODY] [TOKEN]: like api, from $REMOTE_SRC, with an
# optional bearer token.
api_remote() {
    local method=$1 path=$2 body=${3:-} token=${4:-}
    local out="$T/api.out"
    local args=(-s -o "$out" -w '%{http_code}' --interface "$REMOTE_SRC" -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary @-)
    HTTP_STATUS=$(curl "${args[@]}" "$CP_URL$path" <<<"$body")
    BODY=$(cat "$out")
}

# jwt_part TOKEN N: the decoded JSON of part N (0 header, 1 claims) of a JWT.
jwt_part() {
    local p
    p=$(cut -d. -f$(($2 + 1)) <<<"$1" | tr '_-' '/+')
    while [ $((${#p} % 4)) -ne 0 ]; do p="$p="; done
    base64 -d <<<"$p"
}

# secret_data MESH|"" NAME: the decoded data of a Secret (or GlobalSecret).
secret_data() {
    if [ -n "$1" ]; then
        get "/meshes/$1/secrets/$2" | jq -r .data | base64 -d
    else
        get "/globalsecrets/$2" | jq -r .data | base64 -d
    fi
}
