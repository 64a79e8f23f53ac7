# Helpers for the transparent-proxy scenarios (test_tproxy*.sh): network
# namespaces joined by veth pairs through a router namespace, a dedicated
# user for kuma-dp, and kuma-dp / workloads started inside namespaces.
# Source after lib.sh and dp_lib.sh. Needs root (ip netns, iptables): a test
# that cannot build its namespaces FAILS, it never skips.
#
# Addresses are in the benchmark ranges 198.18.0.0/15 and 2001:2::/48:
#   this test's own namespace  198.18.0.1   2001:2:0:0::1   (kuma-cp)
#   router  (tp-r-$$)          198.18.N.254 2001:2:0:N::fe  (N = 0,1,2,3)
#   wl      (tp-w-$$)          198.18.1.2   2001:2:0:1::2   (workload + transparent kuma-dp)
#   svc     (tp-s-$$)          198.18.2.2   2001:2:0:2::2   (mesh service + its kuma-dp)
#   ext     (tp-e-$$)          198.18.3.2   2001:2:0:3::2   (outside HTTP server)

TP_USER=kuma-dp-test
TP_USER_CREATED=0
NS_R="tp-r-$$" NS_W="tp-w-$$" NS_S="tp-s-$$" NS_E="tp-e-$$"
TP_VETH0="tp$$x0"
TP_NETNS=()

tp_cleanup() {
    cleanup # lib.sh: stops every started process, removes $T
    local ns
    for ns in "${TP_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    ip link del "$TP_VETH0" 2>/dev/null
    if [ "$TP_USER_CREATED" = 1 ]; then userdel "$TP_USER" 2>/dev/null; fi
}
trap tp_cleanup EXIT
# run.sh's timeout sends SIGTERM: exit through the EXIT trap so that the
# namespaces, the user and the proxies never outlive the test.
trap 'exit 143' TERM INT

[ "$(id -u)" = 0 ] || fail "transparent-proxy scenarios need root (ip netns, iptables)"
for tool in ip iptables iptables-save iptables-restore setpriv busybox curl; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup.sh installs it)"
done

nsx() { # NS CMD...: runs CMD in namespace NS
    local ns=$1
    shift
    nsenter --net="/run/netns/$ns" "$@"
}

# tp_user: the dedicated kuma-dp user (created if missing, removed at exit).
tp_user() {
    if ! id -u "$TP_USER" >/dev/null 2>&1; then
        useradd -r -M -N -s /usr/sbin/nologin "$TP_USER" || fail "useradd $TP_USER"
        TP_USER_CREATED=1
    fi
    TP_UID=$(id -u "$TP_USER")
}

# tp_topology: the namespaces, links, addresses and routes above.
tp_topology() {
    local ns n
    for ns in "$NS_R" "$NS_W" "$NS_S" "$NS_E"; do
        ip netns add "$ns" || fail "cannot create network namespace $ns"
        TP_NETNS+=("$ns")
        nsx "$ns" ip link set lo up || fail "lo up in $ns"
    done
    nsx "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
        fail "router forwarding"
    # This namespace (kuma-cp) <-> router.
    ip link add "$TP_VETH0" type veth peer name r0 netns "$NS_R" || fail "veth to the router"
    ip addr add 198.18.0.1/24 dev "$TP_VETH0"
    ip -6 addr add 2001:2:0:0::1/64 dev "$TP_VETH0" nodad 2>/dev/null
    ip link set "$TP_VETH0" up
    nsx "$NS_R" ip addr add 198.18.0.254/24 dev r0
    nsx "$NS_R" ip -6 addr add 2001:2:0:0::fe/64 dev r0 nodad
    nsx "$NS_R" ip link set r0 up
    ip route add 198.18.0.0/15 via 198.18.0.254 2>/dev/null || ip route replace 198.18.0.0/15 via 198.18.0.254 ||
        fail "route to the test network"
    # Router <-> each namespace.
    for n in 1 2 3; do
        ns=$([ $n = 1 ] && echo "$NS_W" || ([ $n = 2 ] && echo "$NS_S" || echo "$NS_E"))
        nsx "$NS_R" ip link add "r$n" type veth peer name eth0 netns "$ns" || fail "veth to $ns"
        nsx "$NS_R" ip addr add "198.18.$n.254/24" dev "r$n"
        nsx "$NS_R" ip -6 addr add "2001:2:0:$n::fe/64" dev "r$n" nodad
        nsx "$NS_R" ip link set "r$n" up
        nsx "$ns" ip addr add "198.18.$n.2/24" dev eth0
        nsx "$ns" ip -6 addr add "2001:2:0:$n::2/64" dev eth0 nodad
        nsx "$ns" ip link set eth0 up
        nsx "$ns" ip route add default via "198.18.$n.254" || fail "default route in $ns"
        nsx "$ns" ip -6 route add default via "2001:2:0:$n::fe" || fail "IPv6 default route in $ns"
    done
    nsx "$NS_R" ping -c1 -W2 198.18.0.1 >/dev/null 2>&1 || true
}

# tp_start_dp NAME NS YAML [as-user]: kuma-dp in namespace NS, as the
# dedicated user when the 4th argument is "user". Sets DP_ADMIN_<name>.
tp_start_dp() {
    local name=$1 ns=$2 yaml=$3 who=${4:-root}
    local var=${name//-/_}
    printf '%s\n' "$yaml" >"$T/dp-$name.yaml"
    dp_token "$name" default
    chmod 644 "$T/dp-$name.yaml" "$T/token-$name"
    local run=()
    [ "$who" = user ] && run=(setpriv --reuid="$TP_UID" --regid=65534 --clear-groups)
    # kuma-cp's work dir is private: the proxy user gets a readable copy.
    install -m 644 "$CP_CA_FILE" "$T/cp-ca.crt"
    # nsenter directly (not the nsx function) so that $! is the proxy itself.
    nsenter --net="/run/netns/$ns" "${run[@]}" "$BIN/kuma-dp" run --cp-address "https://198.18.0.1:${CP_XDS_ADDR##*:}" \
        --ca-cert-file "$T/cp-ca.crt" --dataplane-file "$T/dp-$name.yaml" \
        --dataplane-var "name=$name" --dataplane-var mesh=default \
        --dataplane-token-file "$T/token-$name" --admin-port 0 --drain-time 1s --concurrency 2 \
        >"$T/dp-$name.out" 2>"$T/dp-$name.log" &
    local pid=$!
    PIDS+=($pid)
    dp_await_admin "$name" "$pid"
    eval "DP_NS_$var=$ns"
    wait_for "kuma-dp $name ready" 150 tp_dp_ready "$name"
}

tp_dp_ns() {
    local var="DP_NS_${1//-/_}"
    echo "${!var}"
}
tp_dp_ready() { [ "$(nsx "$(tp_dp_ns "$1")" curl -s "http://127.0.0.1:$(dp_admin "$1")/ready")" = LIVE ]; }
# tp_stat NAME STAT: a counter from the proxy's /stats (empty if absent).
tp_stat() {
    nsx "$(tp_dp_ns "$1")" curl -s "http://127.0.0.1:$(dp_admin "$1")/stats" |
        awk -v n="$2:" '$1==n{print $2}'
}

# tp_serve NS NAME ADDR PORT: a dptool echo server inside NS.
tp_serve() {
    local ns=$1 name=$2 addr=$3 port=$4
    nsenter --net="/run/netns/$ns" "$DPTOOL" serve "$addr" "$port" >"$T/wl-$name.log" 2>&1 &
    PIDS+=($!)
    wait_for "workload $name" 50 grep -q listening "$T/wl-$name.log"
}

# tp_saved NS: iptables-save and ip6tables-save of NS, without comments and
# counters, for before/after comparisons.
tp_saved() {
    {
        nsx "$1" iptables-save
        nsx "$1" ip6tables-save 2>/dev/null
    } | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
}
