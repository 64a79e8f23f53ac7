# Helpers for the kuma-dp end-to-end scenarios (test_dp_*.sh): real kuma-cp,
# real kuma-dp proxies connected over ADS (TLS + dataplane token), and
# dptool workloads on 127.0.0.x loopback addresses. Source after lib.sh.
DPTOOL="$BIN/dptool"
[ -x "$DPTOOL" ] || fail "$DPTOOL missing: make all builds it"

# mesh_put NAME [mtls]: creates or updates a mesh (builtin CA when mtls).
# The backend's dpCert JSON may be given as $3.
mesh_put() {
    local name=$1 mtls=${2:-} dpcert=${3:-}
    if [ "$mtls" = mtls ]; then
        local extra=
        [ -n "$dpcert" ] && extra=",\"dpCert\":$dpcert"
        api PUT "/meshes/$name" "{\"type\":\"Mesh\",\"name\":\"$name\",\"mtls\":{\"enabledBackend\":\"ca-1\",\"backends\":[{\"name\":\"ca-1\",\"type\":\"builtin\"$extra}]}}"
    else
        api PUT "/meshes/$name" "{\"type\":\"Mesh\",\"name\":\"$name\"}"
    fi
    case "$HTTP_STATUS" in 200 | 201) ;; *) fail "PUT mesh $name: $HTTP_STATUS $BODY" ;; esac
}

# start_workload NAME ADDR PORT [dptool serve flags]: an echo server.
start_workload() {
    local name=$1 addr=$2 port=$3
    shift 3
    "$DPTOOL" serve "$addr" "$port" "$@" >"$T/wl-$name.log" 2>&1 &
    PIDS+=($!)
    eval "WL_PID_${name//-/_}=$!"
    local i
    for i in $(seq 50); do
        grep -q listening "$T/wl-$name.log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "workload $name did not start: $(cat "$T/wl-$name.log")"
}

# dp_token NAME MESH: a dataplane token for NAME in $T/token-NAME (asked of
# kuma-cp once).
dp_token() {
    local name=$1 mesh=$2
    [ -s "$T/token-$name" ] && return 0
    api POST /tokens/dataplane "{\"name\":\"$name\",\"mesh\":\"$mesh\",\"validFor\":\"24h\"}"
    [ "$HTTP_STATUS" = 200 ] || fail "token for $name: $HTTP_STATUS $BODY"
    printf '%s' "$BODY" >"$T/token-$name"
}

# dp_await_admin NAME PID: waits for the "admin port:" line kuma-dp NAME
# (process PID, output in $T/dp-NAME.out) prints; sets DP_ADMIN_<name>.
dp_await_admin() {
    local name=$1 pid=$2 i port=
    for i in $(seq 100); do
        port=$(awk '/admin port:/{print $3}' "$T/dp-$name.out" 2>/dev/null)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || fail "kuma-dp $name exited: $(cat "$T/dp-$name.log")"
        sleep 0.1
    done
    [ -n "$port" ] || fail "kuma-dp $name: no admin port"
    eval "DP_ADMIN_${name//-/_}=$port"
}

# start_dp NAME MESH YAML: writes the Dataplane template, gets a token,
# starts kuma-dp and waits for /ready. Sets DP_ADMIN_<name> and DP_PID_<name>
# (dashes in names become underscores).
start_dp() {
    local name=$1 mesh=$2 yaml=$3
    local var=${name//-/_}
    printf '%s\n' "$yaml" >"$T/dp-$name.yaml"
    dp_token "$name" "$mesh"
    "$BIN/kuma-dp" run --cp-address "https://$CP_XDS_ADDR" --ca-cert-file "$CP_CA_FILE" \
        --dataplane-file "$T/dp-$name.yaml" --dataplane-var "name=$name" --dataplane-var "mesh=$mesh" \
        --dataplane-token-file "$T/token-$name" --admin-port 0 --drain-time 2s --concurrency 2 \
        >"$T/dp-$name.out" 2>"$T/dp-$name.log" &
    local pid=$!
    PIDS+=($pid)
    eval "DP_PID_$var=$pid"
    dp_await_admin "$name" "$pid"
    wait_for "kuma-dp $name ready" 100 dp_ready "$name"
}

# start_backend MESH: the usual callee of the scenarios, a workload
# "backend" on 127.0.0.3:7001 behind kuma-dp "backend" (inbound 17001).
start_backend() {
    start_workload backend 127.0.0.3 7001
    start_dp backend "$1" "$(dp_yaml 127.0.0.3 17001 backend 7001)"
}

dp_admin() { # NAME: the admin port
    local var="DP_ADMIN_${1//-/_}"
    echo "${!var}"
}
dp_pid() {
    local var="DP_PID_${1//-/_}"
    echo "${!var}"
}
dp_ready() { [ "$(curl -s "http://127.0.0.1:$(dp_admin "$1")/ready")" = LIVE ]; }
# dp_stat NAME STAT: a counter from the proxy's /stats (empty if absent).
dp_stat() {
    curl -s "http://127.0.0.1:$(dp_admin "$1")/stats" | awk -v n="$2:" '$1==n{print $2}'
}
dp_config() { curl -s "http://127.0.0.1:$(dp_admin "$1")/config_dump"; }
# dp_route_stat_names NAME LISTENER PREFIX: the stat name of each cluster the
# route matching path prefix PREFIX sends to (weighted_clusters or cluster),
# from the proxy's /config_dump.
dp_route_stat_names() {
    dp_config "$1" | jq -r --arg l "$2" --arg p "$3" '
        (.configs[1].dynamicActiveClusters | map(.cluster | {(.name): (.altStatName // .name)})
            | add) as $stat
        | .configs[0].dynamicListeners[] | select(.name == $l) | .activeState.listener
        | .filterChains[]?.filters[]?.typedConfig.routeConfig?.virtualHosts[]?.routes[]?
        | select(.match.prefix == $p) | .route
        | ((.weightedClusters?.clusters[]?.name), (.cluster? // empty)) | $stat[.] // .'
}
# dp_split_stat_names NAME LISTENER: "<weight> <stat name>" per cluster of the
# weighted_clusters kuma-cp sent for the listener (tcp_proxy, or every route
# of its HTTP connection manager), from the proxy's /config_dump; the stat
# name is the cluster's altStatName (else its name), as Envoy counts.
dp_split_stat_names() {
    dp_config "$1" | jq -r --arg l "$2" '
        (.configs[1].dynamicActiveClusters | map(.cluster | {(.name): (.altStatName // .name)})
            | add) as $stat
        | .configs[0].dynamicListeners[] | select(.name == $l) | .activeState.listener
        | .filterChains[]?.filters[]?.typedConfig
        | (.weightedClusters?, (.routeConfig?.virtualHosts[]?.routes[]?.route?.weightedClusters?))
        | select(. != null) | .clusters[] | "\(.weight) \($stat[.name] // .name)"'
}
# dp_rss_kb NAME: resident set size of the proxy process.
dp_rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$(dp_pid "$1")/status"; }

# wait_for DESC TENTHS CMD...: retries CMD every 0.1 s up to TENTHS times.
wait_for() {
    local desc=$1 n=$2 i
    shift 2
    for i in $(seq "$n"); do
        "$@" && return 0
        sleep 0.1
    done
    fail "timed out waiting for: $desc"
}

# load ADDR PORT ARGS...: runs dptool load; sets LOAD_OUT, LOAD_OK, LOAD_FAIL.
load() {
    LOAD_OUT=$("$DPTOOL" load "$@" 2>"$T/load.err")
    LOAD_OK=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' <<<"$LOAD_OUT")
    LOAD_FAIL=$(sed -n 's/.*fail=\([0-9]*\)$/\1/p' <<<"$LOAD_OUT")
}
# probe_ok / probe_fails ADDR PORT: one small request (3 s timeout) through
# ADDR:PORT that got an answer / that did not.
probe_ok() {
    load "$1" "$2" --count 1 --size 64 --concurrency 1 --timeout-ms 3000
    [ "$LOAD_OK" = 1 ]
}
probe_fails() {
    load "$1" "$2" --count 1 --size 64 --concurrency 1 --timeout-ms 3000
    [ "$LOAD_FAIL" = 1 ]
}
# id_count ID: requests answered by workload ID in the last load --id.
id_count() { awk -v id="$1" '$1=="id" && $2==id{print $3}' <<<"$LOAD_OUT"; }

# A sidecar Dataplane: inbound on ADDR:PORT for SERVICE (workload at
# 127.0.0.1:SPORT... given as WLADDR:WLPORT), optional outbounds "port:svc ...".
dp_yaml() { # ADDR INPORT SERVICE WLPORT [OUTBOUNDS] [EXTRA_TAGS]
    local addr=$1 inport=$2 svc=$3 wlport=$4 outs=${5:-} tags=${6:-}
    printf 'type: Dataplane\nmesh: "{{ mesh }}"\nname: "{{ name }}"\nnetworking:\n  address: %s\n  inbound:\n  - port: %s\n    servicePort: %s\n    serviceAddress: %s\n    tags:\n      kuma.io/service: %s\n' \
        "$addr" "$inport" "$wlport" "$addr" "$svc"
    local t
    for t in $tags; do printf '      %s: %s\n' "${t%%=*}" "${t#*=}"; done
    if [ -n "$outs" ]; then
        printf '  outbound:\n'
        local o
        for o in $outs; do printf '  - port: %s\n    address: %s\n    tags:\n      kuma.io/service: %s\n' "${o%%:*}" "$addr" "${o#*:}"; done
    fi
}

