#!/usr/bin/env bash
# Memory of a real kuma-dp (xDS over HTTP/2, mTLS mesh) with N outbound
# services: one kuma-dp "web" with N outbounds, each to a service that one
# Dataplane resource (no running proxy) provides, so the proxy holds N
# clusters + N outbound listeners + its inbound, mesh certificates included.
# Prints VmRSS/VmHWM and the anonymous vs file-backed split (shared library
# pages count in RSS but are shared by every process mapping them), Pss (each
# shared page divided by the number of processes mapping it), threads, the
# mappings that hold the most resident pages, and the same with
# MALLOC_ARENA_MAX=2.
#
#   bench/dp/rss.sh [N ...]        (after `make all`; default: 100 1000)
#   SMAPS=1 bench/dp/rss.sh 100    also lists every mapping with resident pages
#   ARENAS=default ...             skips the MALLOC_ARENA_MAX=2 run
#   TRAFFIC=0 ...                  skips the traffic phase
#
# After the idle figures, the first outbound (svc-0) gets a real kuma-dp and
# workload, and mTLS traffic runs through the measured proxy (2,000 new
# connections, each a request of 1 KiB echoed back; then 20 MiB in bulk); the
# figures are taken again, so code and buffers that only traffic touches
# are counted too.
#
# Runs real kuma-cp/kuma-dp on fixed 127.0.0.x addresses: run it in its own
# network namespace (`ip netns exec NS bash bench/dp/rss.sh`).
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build}
. "$(dirname "$0")/../../tests/integration/lib.sh"
. "$(dirname "$0")/../../tests/integration/dp_lib.sh"
COUNTS=("$@")
[ ${#COUNTS[@]} -eq 0 ] && COUNTS=(100 1000)

# gRPC's own cost, in a trivial program with and without it (needs
# libgrpc-dev, which no binary of this project uses any more).
if ! pkg-config --exists grpc; then
    echo "# gRPC comparison skipped: apt-get install libgrpc-dev to run it"
else cc -O2 -o "$T/grpc_rss0" "$(dirname "$0")/grpc_rss.c" -lssl -lcrypto &&
    cc -O2 -DWITH_GRPC -o "$T/grpc_rss1" "$(dirname "$0")/grpc_rss.c" $(pkg-config --cflags --libs grpc) -lssl -lcrypto &&
    "$T/grpc_rss0" && GRPC_VERBOSITY=NONE "$T/grpc_rss1" 2>/dev/null
fi

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'

mem() { # PID → "rss_kb hwm_kb anon_kb file_kb threads pss_kb"
    local pss
    pss=$(awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup")
    awk -v pss="$pss" '/^VmRSS/{r=$2} /^VmHWM/{h=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} /^Threads/{t=$2}
         END{print r, h, a, f, t, pss}' "/proc/$1/status"
}

# Resident KB per mapping name (files by base name; anonymous memory as
# [heap], [stack], [anon]), largest first; $2 = how many lines.
mappings() {
    awk '/^[0-9a-f]+-[0-9a-f]+ /{f=$6; if (f == "") f="[anon]"} /^Rss:/{r[f]+=$2}
         END{for (k in r) if (r[k] > 0) print r[k], k}' "/proc/$1/smaps" | sort -rn | head -"$2" |
        awk '{n=split($2, p, "/"); printf "#   %6d KB %s\n", $1, p[n]}'
}

# svc-0 is a real proxy in front of an echo workload (the traffic phase).
traffic=${TRAFFIC:-1}
if [ "$traffic" = 1 ]; then
    start_workload svc0 127.1.0.1 8081
    start_dp svc-0 default "$(dp_yaml 127.1.0.1 8080 svc-0 8081)"
fi
made=$traffic
for n in "${COUNTS[@]}"; do
    # Services svc-<i>, one Dataplane resource each (127.1.x.y:8080).
    for i in $(seq "$made" $((n - 1))); do
        a="127.1.$((i / 250)).$((i % 250 + 1))"
        api PUT "/meshes/default/dataplanes/svc-$i" "{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":\"svc-$i\",\"networking\":{\"address\":\"$a\",\"inbound\":[{\"port\":8080,\"servicePort\":8081,\"tags\":{\"kuma.io/service\":\"svc-$i\"}}]}}"
        case "$HTTP_STATUS" in 200 | 201) ;; *) fail "dataplane svc-$i: $HTTP_STATUS $BODY" ;; esac
    done
    made=$n
    outs=""
    for i in $(seq 0 $((n - 1))); do outs="$outs $((20000 + i)):svc-$i"; done
    for arena in ${ARENAS:-default 2}; do
        name="web-$n-$arena"
        if [ "$arena" = default ]; then
            start_dp "$name" default "$(dp_yaml 127.0.0.2 17002 web 7002 "$outs")"
        else
            MALLOC_ARENA_MAX=$arena start_dp "$name" default "$(dp_yaml 127.0.0.2 17002 web 7002 "$outs")"
        fi
        # Wait until every cluster is there, then let it settle.
        for _ in $(seq 100); do
            c=$(curl -s "http://127.0.0.1:$(dp_admin "$name")/clusters" | grep -c '::observability_name::')
            [ "$c" -ge "$n" ] && break
            sleep 0.2
        done
        sleep 2
        read -r rss hwm anon file thr pss < <(mem "$(dp_pid "$name")")
        printf "kuma-dp outbounds=%d clusters=%s MALLOC_ARENA_MAX=%s VmRSS=%d KB VmHWM=%d KB RssAnon=%d KB RssFile=%d KB Pss=%d KB threads=%d\n" \
            "$n" "$c" "$arena" "$rss" "$hwm" "$anon" "$file" "$pss" "$thr"
        if [ "$arena" = default ]; then
            # Where the resident pages are: shared libraries, the binary, heap, stacks.
            mappings "$(dp_pid "$name")" "$([ -n "${SMAPS:-}" ] && echo 1000 || echo 10)"
            # The gRPC client's share: libgrpc and what only it pulls in.
            awk '/^[0-9a-f]+-[0-9a-f]+ /{f=$6} /^Rss:/{if (f ~ /libgrpc|libgpr|libabsl|libupb|libre2|libcares|libaddress_sorting|libstdc\+\+|libgcc_s|libprotobuf-c/) g+=$2}
                 END{printf "#   %6d KB gRPC client libraries (grpc, gpr, abseil, upb, re2, c-ares, address_sorting, protobuf-c, libstdc++, libgcc_s)\n", g}' \
                "/proc/$(dp_pid "$name")/smaps"
        fi
        if [ "$traffic" = 1 ] && [ "$arena" = default ]; then
            load 127.0.0.2 20000 --count 2000 --size 1024 --concurrency 4 --timeout-ms 5000
            [ "${LOAD_OK:-0}" = 2000 ] || fail "traffic through $name: $LOAD_OUT $(cat "$T/load.err")"
            load 127.0.0.2 20000 --count 20 --size $((1024 * 1024)) --concurrency 2 --timeout-ms 10000
            [ "${LOAD_OK:-0}" = 20 ] || fail "bulk traffic through $name: $LOAD_OUT"
            sleep 1
            read -r rss hwm anon file thr pss < <(mem "$(dp_pid "$name")")
            printf "kuma-dp outbounds=%d after mTLS traffic (2000 connections + 20 MiB): VmRSS=%d KB VmHWM=%d KB RssAnon=%d KB RssFile=%d KB Pss=%d KB threads=%d\n" \
                "$n" "$rss" "$hwm" "$anon" "$file" "$pss" "$thr"
            mappings "$(dp_pid "$name")" 6
        fi
        kill -TERM "$(dp_pid "$name")"
        wait "$(dp_pid "$name")" 2>/dev/null
    done
done
