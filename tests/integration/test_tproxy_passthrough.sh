#!/usr/bin/env bash
# Transparent proxying end to end, in network namespaces this test builds
# (tproxy_lib.sh): `kumactl install transparent-proxy` in the workload's
# namespace, kuma-dp running there as a dedicated user with a transparent
# Dataplane. A root client that knows nothing of the mesh then reaches
#  - a mesh service through its outbound (outbound:198.18.50.1:80, bound to
#    no port, found by the connection's original destination),
#  - an outside HTTP server (IPv4 and IPv6) through outbound:passthrough:*,
#    counted under cluster.outbound_passthrough_ipv4.* as in Kuma,
#  - and inbound traffic from another namespace goes through
#    inbound:passthrough:ipv4 → inbound:198.18.1.2:7002 → localhost:7002, or,
#    to a port no inbound declares, through inbound:passthrough:ipv4/ipv6.
# The mesh closes passthrough (networking.outbound.passthrough: false): the
# outside request fails within seconds while the mesh service still answers,
# without restarting the proxy; reopened, it works again. A connection sent
# straight to the redirect port is closed (no loop). `kumactl uninstall
# transparent-proxy` leaves iptables-save and ip6tables-save as they were,
# including a rule of someone else's in the same chains.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"
. "$(dirname "$0")/tproxy_lib.sh"

tp_user
tp_topology
chmod 755 "$T" "$HOME"

start_cp KUMA_STORE_TYPE=memory
mesh_put default

# The mesh service: an echo server behind its own (non-transparent) kuma-dp.
tp_serve "$NS_S" echo 198.18.2.2 7001
tp_start_dp echo "$NS_S" "$(dp_yaml 198.18.2.2 17001 echo 7001)"

# The outside world: an HTTP server with a known page.
mkdir -p "$T/www"
echo outside-ok >"$T/www/index.html"
chmod -R a+rX "$T/www"
nsenter --net="/run/netns/$NS_E" busybox httpd -f -p 8080 -h "$T/www" &
PIDS+=($!)

# A second application of the workload's, on a port no inbound declares (both
# families): reached through inbound:passthrough:ipv4/ipv6.
nsenter --net="/run/netns/$NS_W" busybox httpd -f -p 8081 -h "$T/www" &
PIDS+=($!)

# The workload's own application (for the inbound direction), on localhost
# only: from outside it is reachable through the proxy or not at all.
tp_serve "$NS_W" web 127.0.0.1 7002

# Redirection in the workload's namespace, with a rule of someone else's in
# the nat table that uninstall must leave alone.
nsx "$NS_W" iptables -t nat -A OUTPUT -p tcp -d 198.19.255.1 -j RETURN || fail "sentinel rule"
nsx "$NS_W" ip6tables -t nat -A OUTPUT -p tcp -d 2001:2:0:ff::1 -j RETURN || fail "sentinel rule v6"
before=$(tp_saved "$NS_W")
dry=$(nsx "$NS_W" "$BIN/kumactl" install transparent-proxy --kuma-dp-user "$TP_USER" --dry-run)
assert_contains "$dry" "-A KUMA_MESH_OUTBOUND -m owner --uid-owner $TP_UID -j RETURN" "dry run rules"
assert_contains "$dry" "### IPv6 ###" "dry run IPv6 part"
assert_eq "$(tp_saved "$NS_W")" "$before" "--dry-run changed iptables"
out=$(nsx "$NS_W" "$BIN/kumactl" install transparent-proxy --kuma-dp-user "$TP_USER" 2>&1) ||
    fail "install: $out"
assert_contains "$out" "transparent proxy setup completed successfully"
saved=$(nsx "$NS_W" iptables-save -t nat)
assert_contains "$saved" "-A KUMA_MESH_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15001"
assert_contains "$saved" "-A KUMA_MESH_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15006"
assert_contains "$(nsx "$NS_W" ip6tables-save -t nat)" "REDIRECT --to-ports 15001" "IPv6 rules"
again=$(nsx "$NS_W" "$BIN/kumactl" install transparent-proxy --kuma-dp-user "$TP_USER" 2>&1) &&
    fail "a second install succeeded: $again"
assert_contains "$again" "already installed"

tp_start_dp wl "$NS_W" "$(
    cat <<'EOF'
type: Dataplane
mesh: "{{ mesh }}"
name: "{{ name }}"
networking:
  address: 198.18.1.2
  inbound:
  - port: 7002
    tags:
      kuma.io/service: web
  outbound:
  - port: 80
    address: 198.18.50.1
    tags:
      kuma.io/service: echo
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
    ipFamilyMode: DualStack
EOF
)" user

outside() { nsx "$NS_W" curl -s --max-time 3 "$@"; }
outside_ok() { [ "$(outside http://198.18.3.2:8080/)" = outside-ok ]; }
outside_refused() { ! outside -o /dev/null http://198.18.3.2:8080/; }
mesh_ok() {
    load_ns 198.18.50.1 80 --count 20 --timeout-ms 3000
    [ "$LOAD_OK" = 20 ]
}
load_ns() { # like dp_lib's load, from the workload's namespace
    LOAD_OUT=$(nsx "$NS_W" "$DPTOOL" load "$@" 2>"$T/load.err")
    LOAD_OK=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' <<<"$LOAD_OUT")
}

# The proxy answers for the mesh service's address, which exists nowhere.
wait_for "mesh service through the redirected outbound" 100 mesh_ok
assert_eq "$(tp_stat wl cluster.echo.upstream_cx_total)" 20 "connections to the mesh service"
# Outside traffic goes through the passthrough, counted under Kuma's names.
wait_for "outside server through the passthrough" 50 outside_ok
assert_eq "$(outside http://198.18.3.2:8080/)" outside-ok
assert_eq "$(tp_stat wl cluster.outbound_passthrough_ipv4.upstream_cx_total)" 2 "passthrough count"
rx=$(tp_stat wl cluster.outbound_passthrough_ipv4.upstream_cx_rx_bytes_total)
[ "${rx:-0}" -gt 0 ] || fail "passthrough rx bytes: ${rx:-none}"
assert_eq "$(tp_stat wl cluster.outbound_passthrough_ipv4.upstream_cx_active)" 0 "active passthrough"
# IPv6 to the outside as well.
assert_eq "$(outside 'http://[2001:2:0:3::2]:8080/')" outside-ok "IPv6 passthrough"
assert_eq "$(tp_stat wl cluster.outbound_passthrough_ipv6.upstream_cx_total)" 1 "IPv6 passthrough count"

# Inbound: another namespace calls the workload's port; iptables sends it to
# 15006, the proxy finds inbound:198.18.1.2:7002 and calls the app
# (127.0.0.1:7002, Kuma's default without serviceAddress) from 127.0.0.6.
LOAD_OUT=$(nsx "$NS_S" "$DPTOOL" load 198.18.1.2 7002 --count 5 2>"$T/load.err")
assert_contains "$LOAD_OUT" "ok=5 fail=0" "inbound through the proxy ($(head -3 "$T/load.err"))"
assert_eq "$(tp_stat wl cluster.localhost_7002.upstream_cx_total)" 5 "inbound connections"

# A port no inbound declares: inbound passthrough to the original
# destination, from 127.0.0.6 / ::6 (which the rules leave alone).
assert_eq "$(nsx "$NS_S" curl -s --max-time 3 http://198.18.1.2:8081/)" outside-ok "inbound passthrough"
assert_eq "$(tp_stat wl cluster.inbound_passthrough_ipv4.upstream_cx_total)" 1 "inbound passthrough count"
assert_eq "$(nsx "$NS_S" curl -s --max-time 3 'http://[2001:2:0:1::2]:8081/')" outside-ok "inbound passthrough IPv6"
assert_eq "$(tp_stat wl cluster.inbound_passthrough_ipv6.upstream_cx_total)" 1 "inbound passthrough IPv6 count"

# A connection straight to the redirect port is closed, the proxy stays up.
load_ns 127.0.0.1 15001 --count 1 --timeout-ms 2000
assert_eq "$LOAD_OK" 0 "direct connection to the redirect port"
tp_dp_ready wl || fail "proxy down after a direct connection to its redirect port"

# The mesh closes passthrough: refused within seconds, no restart; the mesh
# service still works.
pid_before=$(nsx "$NS_W" pgrep -u "$TP_UID" -x kuma-dp)
api PUT /meshes/default '{"type":"Mesh","name":"default","networking":{"outbound":{"passthrough":false}}}'
[ "$HTTP_STATUS" = 200 ] || fail "passthrough off: $HTTP_STATUS $BODY"
t0=$(date +%s%N)
wait_for "outside refused after passthrough off" 100 outside_refused
echo "passthrough off took effect in $((($(date +%s%N) - t0) / 1000000)) ms"
outside_refused || fail "outside reachable with passthrough off"
nr=$(tp_stat wl tcp.outbound_passthrough_ipv4.downstream_cx_no_route)
[ "${nr:-0}" -ge 1 ] || fail "refused passthrough connections not counted: ${nr:-none}"
mesh_ok || fail "mesh service with passthrough off: $LOAD_OUT $(head -3 "$T/load.err")"
# Passthrough on again.
api PUT /meshes/default '{"type":"Mesh","name":"default","networking":{"outbound":{"passthrough":true}}}'
[ "$HTTP_STATUS" = 200 ] || fail "passthrough on: $HTTP_STATUS $BODY"
wait_for "outside reachable after passthrough on" 100 outside_ok
assert_eq "$(nsx "$NS_W" pgrep -u "$TP_UID" -x kuma-dp)" "$pid_before" "the proxy was restarted"
assert_not_contains "$(cat "$T/dp-wl.log")" "NACK"

# Uninstall: exactly what was there before.
out=$(nsx "$NS_W" "$BIN/kumactl" uninstall transparent-proxy 2>&1) || fail "uninstall: $out"
assert_contains "$out" "transparent proxy cleanup completed successfully"
after=$(tp_saved "$NS_W")
[ "$after" = "$before" ] || fail "iptables differ after uninstall: $(diff <(echo "$before") <(echo "$after"))"
assert_contains "$after" "-A OUTPUT -d 198.19.255.1/32 -p tcp -j RETURN" "someone else's rule"
# Without redirection the outside server is reached directly (no proxy count).
n0=$(tp_stat wl cluster.outbound_passthrough_ipv4.upstream_cx_total)
outside_ok || fail "outside server after uninstall"
assert_eq "$(tp_stat wl cluster.outbound_passthrough_ipv4.upstream_cx_total)" "$n0" "passthrough after uninstall"
echo ok
