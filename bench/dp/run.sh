#!/usr/bin/env bash
# Proxy benchmark: kuma-dp's engine vs HAProxy (mode tcp) and nginx (stream)
# on loopback, plaintext TCP and mTLS, with wrk as the load generator and
# nginx as the backend. Each proxy is pinned to CPU 0 and runs one worker;
# wrk and the backend share CPU 1. Rounds alternate the targets (A B A B).
#
#   bench/dp/run.sh [seconds-per-run] [rounds]     (after `make`)
#
# Target dp-user is dp with kernel forwarding off (DP_SOCKMAP=0). The
# "# whole CPU" lines give the CPU per request of the proxies, the client,
# the backend and the kernel's worker threads (which carry kernel
# forwarding), from /proc/*/schedstat, and of all CPUs (/proc/stat, which
# includes anything else running on the machine).
#
# Prints one TSV line per run:
#   scenario target round req_s p50_us p99_us transfer_MBps proxy_cpu_s requests errors
# and, as "#" lines: requests (connections, for newconn) per CPU-second of each
# proxy process; with STRACE=1 the proxies' system calls per request; with
# SEGS=1 the TCP segments per request. ONLY=<regex> limits the runs to
# matching "scenario target" pairs. At the end: peak RSS, dp_bench rss/idle and
# tls_bench (handshake CPU per side, fast EC switch on and off).
# BASE=<dir> adds the targets dp-base (plaintext), dp-mtls-base (the resumed
# mTLS pair) and dp-mtls-full-base (the full-handshake pair), each run from
# <dir>/dp_bench (an older build) beside the current one: a same-run A/B.
# BACKEND_CPU=0: the backend on CPU 0 with the proxies, wrk alone on CPU 1.
# DP_BENCH_LINK=dynamic: dp_bench/tls_bench on the shared libraries (see below).
# Fixed loopback ports: run it in its own network namespace.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-4}
# BACKEND_CPU=0 puts the backend on the proxies' CPU, leaving CPU 1 to wrk
# alone (the issue's throughput setup); the default shares CPU 1 with wrk.
BACKEND_CPU=${BACKEND_CPU:-1}
ROUNDS=${2:-2}
B=build
W=$(mktemp -d /tmp/dpbench.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

# dp_bench and tls_bench link as the release kuma-dp does (Makefile: static
# libraries, lld, src/cmd/kuma-dp.order). DP_BENCH_LINK=dynamic links them
# against the shared libraries instead, as before that change (for an A/B).
if [ "${DP_BENCH_LINK:-}" = dynamic ]; then
    make -s $B/libdp.a $B/libcore.a
    for t in dp_bench tls_bench; do
        cc -O2 -g -std=gnu11 -Isrc -o $B/$t bench/dp/$t.c $B/libdp.a $B/libcore.a \
            $(pkg-config --libs jansson openssl libmicrohttpd yaml-0.1 sqlite3 libcurl) -lhttp_parser -lpthread -lm
    done
else
    rm -f $B/dp_bench $B/tls_bench
    make -s $B/dp_bench $B/tls_bench
fi

# --- certificates: ECDSA P-256 CA and two leaves with SPIFFE URI SANs ---
openssl ecparam -name prime256v1 -genkey -noout -out "$W/ca.key" 2>/dev/null
openssl req -x509 -new -key "$W/ca.key" -subj "/O=Kuma/OU=Mesh/CN=default" -days 2 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -out "$W/ca.pem" 2>/dev/null
for who in web backend; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$W/$who.key.ec" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$W/$who.key.ec" -out "$W/$who.key"
    openssl req -new -key "$W/$who.key" -subj "/" -out "$W/$who.csr" 2>/dev/null
    printf "subjectAltName=URI:spiffe://default/%s,DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment,keyAgreement\n" "$who" "$who" >"$W/$who.ext"
    openssl x509 -req -in "$W/$who.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
        -days 1 -extfile "$W/$who.ext" -out "$W/$who.pem" 2>/dev/null
    cat "$W/$who.pem" "$W/$who.key" >"$W/$who.both"
done

# --- backend: nginx, 1 KiB and 1 MiB responses ---
head -c 1024 /dev/zero | tr '\0' 'x' >"$W/1k"
head -c 1048576 /dev/urandom >"$W/1m"
mkdir -p "$W/www" && cp "$W/1k" "$W/www/1k" && cp "$W/1m" "$W/www/1m"
STREAM_MOD=""
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] && STREAM_MOD="load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
cat >"$W/nginx.conf" <<EOF
$STREAM_MOD
worker_processes 1;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:18080 backlog=4096; root $W/www; }
}
EOF
taskset -c "$BACKEND_CPU" nginx -c "$W/nginx.conf" -p "$W" &
PIDS+=($!)
PID_backend=$!

# --- proxies ---
cat >"$W/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend tcp
    bind 127.0.0.1:18082
    default_backend app
backend app
    server s 127.0.0.1:18080
frontend mtls_out
    bind 127.0.0.1:18092
    default_backend mesh
backend mesh
    server s 127.0.0.1:18093 ssl crt $W/web.both ca-file $W/ca.pem verify required sni str(backend) alpn kuma
frontend mtls_out_full
    bind 127.0.0.1:18096
    default_backend mesh_full
backend mesh_full
    server s 127.0.0.1:18093 ssl crt $W/web.both ca-file $W/ca.pem verify required sni str(backend) alpn kuma no-ssl-reuse
frontend mtls_in
    bind 127.0.0.1:18093 ssl crt $W/backend.both ca-file $W/ca.pem verify required
    default_backend app
EOF
if [ -n "$STREAM_MOD" ]; then
    cat >"$W/nginx-proxy.conf" <<EOF
$STREAM_MOD
worker_processes 1;
daemon off;
pid $W/nginx-proxy.pid;
error_log $W/nginx-proxy.err;
events { worker_connections 20000; }
stream { server { listen 127.0.0.1:18084 backlog=4096; proxy_pass 127.0.0.1:18080; } }
EOF
fi

start() { # name cmd... → sets PID_<name>
    taskset -c 0 "${@:2}" 2>>"$W/$1.log" &
    local pid=$!
    PIDS+=($pid)
    eval "PID_$1=$pid"
}
start dp $B/dp_bench tcp 18081 18080 1
# A/B: the same engine with kernel forwarding of plaintext pairs off.
DP_SOCKMAP=0 start dpu $B/dp_bench tcp 18083 18080 1
start dpout $B/dp_bench mtls-out 18091 18095 1 "$W"
start dpin $B/dp_bench mtls-in 18095 18080 1 "$W"
DP_BENCH_NO_RESUME=1 start dpout2 $B/dp_bench mtls-out 18097 18095 1 "$W"
# A/B: the same full-handshake pair with OpenSSL 3.0's provider decoders for
# EC keys (kuma-dp's fast EC switch off, see src/dp/tls.c).
DP_TLS_NO_LEGACY_EC=1 DP_BENCH_NO_RESUME=1 start dpout3 $B/dp_bench mtls-out 18098 18099 1 "$W"
DP_TLS_NO_LEGACY_EC=1 start dpin3 $B/dp_bench mtls-in 18099 18080 1 "$W"
if [ -n "${BASE:-}" ]; then
    DP_BENCH_NO_RESUME=1 start dpout4 "$BASE/dp_bench" mtls-out 18100 18101 1 "$W"
    start dpin4 "$BASE/dp_bench" mtls-in 18101 18080 1 "$W"
    start dpb "$BASE/dp_bench" tcp 18102 18080 1
    start dpoutb "$BASE/dp_bench" mtls-out 18103 18104 1 "$W"
    start dpinb "$BASE/dp_bench" mtls-in 18104 18080 1 "$W"
fi
start haproxy haproxy -f "$W/haproxy.cfg"
[ -n "$STREAM_MOD" ] && start nginxp nginx -c "$W/nginx-proxy.conf" -p "$W"
sleep 1

cpu_of() { # total utime+stime in seconds of the given pids (and their threads)
    local t=0 p u s
    for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
        [ "$p" = 0 ] && continue
        read -r u s < <(cut -d' ' -f14,15 "/proc/$p/stat" | tr ' ' '\t')
        t=$((t + u + s))
    done
    echo "$t"
}

# Whole-CPU accounting uses each thread's run time from /proc/*/schedstat
# (nanoseconds, exact), not the tick-sampled utime/stime: the kernel worker
# threads that carry sockmap's forwarding run for microseconds at a time.
sched_ns() { # run time of the given pids, their threads and child processes
    local p
    for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
        [ "$p" = 0 ] && continue
        cat /proc/"$p"/task/*/schedstat 2>/dev/null || true
    done | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

kthreads_snap() { # "pid ns" of each kernel worker and softirq thread (sockmap's
    # forwarding runs in kworkers; softirq work done in a process's context
    # is charged to that process)
    local f p c
    for f in /proc/[0-9]*/comm; do
        read -r c <"$f" 2>/dev/null || continue
        case "$c" in kworker* | ksoftirqd*) ;; *) continue ;; esac
        p=${f#/proc/}
        p=${p%/comm}
        read -r c _ <"/proc/$p/schedstat" 2>/dev/null && echo "$p $c"
    done
    true
}

kthreads_delta() { # before-file after-file → ns used in between by the threads
    # alive at the end (those that exited meanwhile are missed: rare)
    awk 'NR == FNR { b[$1] = $2; next } { t += $2 - ($1 in b ? b[$1] : 0) } END { printf "%.0f\n", t }' "$1" "$2"
}

machine_cpu() { # busy ticks of every CPU (user nice system irq softirq steal)
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

us() { # wrk duration ("123.45us", "1.2ms", "2s") → microseconds
    awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v+0}
        else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000}
        else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000} else print "NA" }'
}

# STRACE=1: count the proxies' system calls during each run (strace -c -f)
# and print them per request; strace slows the proxy, so read only the counts.
start_strace() {
    local a="" p
    for p in "$@"; do a="$a -p $p"; done
    strace -c -f -o "$W/strace.out" $a 2>/dev/null &
    ST_PID=$!
    sleep 0.5
}
stop_strace() { # scenario target wrk-output
    kill -INT "$ST_PID" 2>/dev/null || true
    wait "$ST_PID" 2>/dev/null || true
    ST_PID=""
    local reqs
    reqs=$(awk '/requests in/{print $1}' <<<"$3")
    awk -v s="$1" -v t="$2" -v r="$reqs" '
        $NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { n[$NF] = $4; tot += $4 }
        END { if (!r) exit; line = sprintf("# syscalls/request %s %s: total %.2f", s, t, tot / r);
              for (k in n) if (n[k] / r >= 0.01) line = line sprintf(" %s=%.2f", k, n[k] / r);
              print line }' "$W/strace.out"
}

# SEGS=1: TCP segments sent per request, whole network namespace (client,
# proxies, backend): 2 per request direct, 4 through one proxy hop without
# extra ACKs. Run the benchmark in its own namespace.
tcp_segs() {
    nstat -az TcpOutSegs TcpExtTCPPureAcks TcpExtDelayedACKs 2>/dev/null |
        awk '$1=="TcpOutSegs"{a=$2} $1=="TcpExtTCPPureAcks"{b=$2} $1=="TcpExtDelayedACKs"{c=$2} END{print a, b, c}'
}

run() { # scenario target port pids conns path extra-header
    local scen=$1 target=$2 port=$3 pids=$4 conns=$5 path=$6 hdr=${7:-}
    # ONLY=<regex> limits the runs to matching "scenario target" pairs.
    [[ -n "${ONLY:-}" && ! "$scen $target" =~ $ONLY ]] && return 0
    local before after out
    declare -gA BEFORE_EACH
    for p in $pids; do BEFORE_EACH[$p]=$(cpu_of "$p"); done
    before=$(cpu_of $pids)
    local mc0 be0 px0
    kthreads_snap >"$W/kt0"
    mc0=$(machine_cpu)
    be0=$(sched_ns "$PID_backend")
    px0=$(sched_ns $pids)
    ST_PID=""
    local segs0=""
    [ -n "${SEGS:-}" ] && segs0=$(tcp_segs)
    [ -n "${STRACE:-}" ] && [ "$pids" != 0 ] && start_strace $pids
    if [ -n "$hdr" ]; then
        out=$(taskset -c 1 /usr/bin/time -f "WRKCPU %U %S" wrk -t1 -c"$conns" -d"${DUR}s" --latency -H "$hdr" "http://127.0.0.1:$port$path" 2>&1)
    else
        out=$(taskset -c 1 /usr/bin/time -f "WRKCPU %U %S" wrk -t1 -c"$conns" -d"${DUR}s" --latency "http://127.0.0.1:$port$path" 2>&1)
    fi
    after=$(cpu_of $pids)
    # Whole CPU per request: the proxies, the client (wrk), the backend and
    # the kernel's worker threads, each from its own accounting (so other
    # jobs on the machine do not count), and every CPU's busy time (/proc/stat,
    # which does include them).
    local kt mc1 be1 px1
    kthreads_snap >"$W/kt1"
    kt=$(kthreads_delta "$W/kt0" "$W/kt1")
    mc1=$(machine_cpu)
    be1=$(sched_ns "$PID_backend")
    px1=$(sched_ns $pids)
    awk -v s="$scen" -v t="$target" -v p0="$px0" -v p1="$px1" -v k="$kt" \
        -v m0="$mc0" -v m1="$mc1" -v b0="$be0" -v b1="$be1" -v tick="$(getconf CLK_TCK)" \
        -v w="$(awk '/^WRKCPU/{print $2 + $3}' <<<"$out")" -v r="$(awk '/requests in/{print $1}' <<<"$out")" \
        'BEGIN { if (!r) exit; f = 1e-3 / r;
            p = (p1 - p0) * f; k = k * f; b = (b1 - b0) * f; c = w * 1e6 / r;
            printf "# whole CPU us/request %s %s: proxies %.1f, client %.1f, backend %.1f, kernel workers %.1f, sum %.1f; machine %.1f\n",
                s, t, p, c, b, k, p + c + b + k, (m1 - m0) * 1e6 / tick / r }'
    out=$(grep -v '^WRKCPU' <<<"$out")
    [ -n "${ST_PID:-}" ] && stop_strace "$scen" "$target" "$out"
    if [ -n "$segs0" ]; then
        awk -v s="$scen" -v t="$target" -v a="$segs0" -v b="$(tcp_segs)" \
            -v r="$(awk '/requests in/{print $1}' <<<"$out")" \
            'BEGIN{ split(a, x); split(b, y); printf "# TCP segments/request %s %s: out %.2f, pure ACKs received %.2f, delayed ACKs %.2f\n", s, t, (y[1]-x[1])/r, (y[2]-x[2])/r, (y[3]-x[3])/r }'
    fi
    local rps p50 p99 xfer reqs errs tick
    tick=$(getconf CLK_TCK)
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    p50=$(us "$(awk '$1=="50%"{print $2}' <<<"$out")")
    p99=$(us "$(awk '$1=="99%"{print $2}' <<<"$out")")
    xfer=$(awk '/Transfer\/sec/{v=$2; if (v~/GB/){sub(/GB/,"",v);v*=1024} else if (v~/MB/){sub(/MB/,"",v)} else if (v~/KB/){sub(/KB/,"",v);v/=1024}; print v}' <<<"$out")
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    errs=$(awk '/Socket errors|Non-2xx/{printf "%s ", $0}' <<<"$out" | tr -s ' ' | tr ' ' '_')
    local cpu="NA"
    [ "$pids" != "0" ] && cpu=$(awk -v a="$before" -v b="$after" -v t="$tick" 'BEGIN{printf "%.2f", (b-a)/t}')
    # Several processes (the two mTLS proxies): also each one's share.
    if [ "$(wc -w <<<"$pids")" -gt 1 ]; then
        local parts="" p
        for p in $pids; do
            parts="$parts+$(awk -v a="${BEFORE_EACH[$p]}" -v b="$(cpu_of "$p")" -v t="$tick" 'BEGIN{printf "%.2f", (b-a)/t}')"
        done
        cpu="$cpu(${parts#+})"
    fi
    # Requests (new connections, for the newconn runs) per CPU-second of each
    # proxy process and of all of them together: the per-core rate.
    if [ "$pids" != 0 ] && [ -n "$reqs" ]; then
        awk -v s="$scen" -v t="$target" -v r="$reqs" -v c="$cpu" 'BEGIN{
            split(c, a, /[(+)]/); line = sprintf("# per CPU-second %s %s: all proxies %.0f", s, t, r / a[1]);
            for (i = 2; i in a && a[i] != ""; i++) line = line sprintf(", process %d: %.0f", i - 1, r / a[i]);
            print line }'
    fi
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$scen" "$target" "$ROUND" "$rps" "$p50" "$p99" "$xfer" "$cpu" "$reqs" "${errs:-none}"
}

printf "scenario\ttarget\tround\treq_s\tp50_us\tp99_us\ttransfer_MBps\tproxy_cpu_s\trequests\terrors\n"
TCP_TARGETS="direct:18080:0 dp:18081:PID_dp dp-user:18083:PID_dpu haproxy:18082:PID_haproxy"
[ -n "$STREAM_MOD" ] && TCP_TARGETS="$TCP_TARGETS nginx:18084:PID_nginxp"
MTLS_TARGETS="dp-mtls:18091:PID_dpout,PID_dpin haproxy-mtls:18092:PID_haproxy"
FULL_TARGETS="dp-mtls-full:18097:PID_dpout2,PID_dpin dp-mtls-full-provider-ec:18098:PID_dpout3,PID_dpin3 haproxy-mtls-full:18096:PID_haproxy"
if [ -n "${BASE:-}" ]; then
    FULL_TARGETS="dp-mtls-full-base:18100:PID_dpout4,PID_dpin4 $FULL_TARGETS"
    TCP_TARGETS="dp-base:18102:PID_dpb $TCP_TARGETS"
    MTLS_TARGETS="dp-mtls-base:18103:PID_dpoutb,PID_dpinb $MTLS_TARGETS"
fi
for ROUND in $(seq 1 "$ROUNDS"); do
    for spec in $TCP_TARGETS $MTLS_TARGETS; do
        IFS=: read -r target port pidvars <<<"$spec"
        pids=0
        if [ "$pidvars" != 0 ]; then
            pids=""
            for v in ${pidvars//,/ }; do pids="$pids ${!v}"; done
        fi
        run keepalive-1k-c16 "$target" "$port" "$pids" 16 /1k
        run latency-1k-c1 "$target" "$port" "$pids" 1 /1k
        run newconn-1k-c16 "$target" "$port" "$pids" 16 /1k "Connection: close"
        run bulk-1m-c4 "$target" "$port" "$pids" 4 /1m
    done
    # Full handshakes on the mesh hop (no session resumption).
    for spec in $FULL_TARGETS; do
        IFS=: read -r target port pidvars <<<"$spec"
        pids=""
        for v in ${pidvars//,/ }; do pids="$pids ${!v}"; done
        run newconn-1k-c16 "$target" "$port" "$pids" 16 /1k "Connection: close"
    done
done
# Latency with every process on one CPU (no cross-CPU wake-ups).
for p in "${PIDS[@]}"; do taskset -a -p -c 1 "$p" >/dev/null 2>&1 || true; done
for p in "${PIDS[@]}"; do for q in $(pgrep -P "$p" || true); do taskset -a -p -c 1 "$q" >/dev/null 2>&1 || true; done; done
for ROUND in $(seq 1 "$ROUNDS"); do
    for spec in $TCP_TARGETS $MTLS_TARGETS; do
        IFS=: read -r target port pidvars <<<"$spec"
        pids=0
        if [ "$pidvars" != 0 ]; then
            pids=""
            for v in ${pidvars//,/ }; do pids="$pids ${!v}"; done
        fi
        run latency-1k-c1-onecpu "$target" "$port" "$pids" 1 /1k
    done
done
for p in ${PID_dp:-} ${PID_dpout:-} ${PID_dpin:-}; do
    echo "# VmHWM of dp_bench pid $p: $(awk '/VmHWM/{print $2, $3}' /proc/$p/status)"
done
echo "# dp_bench rss: $($B/dp_bench rss 100)"
echo "# dp_bench rss: $($B/dp_bench rss 1000)"
echo "# dp_bench idle: $(ulimit -n 20000 2>/dev/null; $B/dp_bench idle 4000 2>/dev/null)"
# Handshake CPU per side without sockets (thread CPU clock; see tls_bench.c),
# with and without the fast EC switch.
for m in full resume; do
    echo "# tls_bench: $(taskset -c 0 $B/tls_bench "$W" 2000 $m)"
    echo "# tls_bench: $(DP_TLS_NO_LEGACY_EC=1 taskset -c 0 $B/tls_bench "$W" 2000 $m)"
done
