#!/usr/bin/env bash
# `kumactl install transparent-proxy` refuses cleanly: without root, without
# iptables, with bad flags or an unknown user; --dry-run prints Kuma's
# chains and changes nothing; --verbose uses the long option names. Runs in
# a network namespace of its own (never the host's iptables).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root (ip netns, unshare)"
NS="tp-i-$$"
ip netns add "$NS" || fail "cannot create network namespace $NS"
trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
trap 'exit 143' TERM INT
nsx() { nsenter --net="/run/netns/$NS" "$@"; }
nsx ip link set lo up
KC="$BIN/kumactl"

# expect_error WANT ARGS...: kumactl fails (exit 1) and prints WANT.
expect_error() {
    local want=$1 out
    shift
    out=$("$@" 2>&1) && fail "succeeded: $* → $out"
    assert_contains "$out" "$want" "$*"
}

before=$(nsx iptables-save | grep -v '^#')

# Not root: refused before anything is touched; --dry-run only warns.
expect_error "Error: you need to have root privileges to run this command" \
    nsx setpriv --reuid=65534 --regid=65534 --clear-groups "$KC" install transparent-proxy --no-config --kuma-dp-user 0
out=$(nsx setpriv --reuid=65534 --regid=65534 --clear-groups "$KC" install transparent-proxy --no-config \
    --kuma-dp-user 0 --dry-run --ip-family-mode ipv4 2>&1) || fail "dry run as non-root: $out"
assert_contains "$out" "# [WARNING] [dry-run]: running this command as a non-root user may lead to unpredictable results"
expect_error "Error: you need to have root privileges to run this command" \
    nsx setpriv --reuid=65534 --regid=65534 --clear-groups "$KC" uninstall transparent-proxy --no-config

# No iptables: /usr/sbin (and /sbin, its symlink on Debian) hidden in a
# mount namespace of its own. In a chroot (the fresh-machine check) the root
# cannot be made private, so there the hiding bind mount is undone at once.
mkdir -p "$T/empty"
without_sbin() { # CMD...
    if nsx unshare -m true 2>/dev/null; then
        nsx unshare -m sh -c "mount --bind '$T/empty' /usr/sbin && exec \"\$@\"" sh "$@"
    else
        nsx unshare -m --propagation unchanged sh -c \
            "mount --bind '$T/empty' /usr/sbin || exit 99; \"\$@\"; rc=\$?; umount /usr/sbin; exit \$rc" \
            sh "$@"
    fi
}
expect_error "iptables-restore and iptables-save are needed to install the transparent proxy" \
    without_sbin "$KC" install transparent-proxy --kuma-dp-user 0
expect_error "iptables-restore and iptables-save are needed to uninstall the transparent proxy" \
    without_sbin "$KC" uninstall transparent-proxy

# Bad flags and users.
expect_error 'invalid argument "ipv6" for "--ip-family-mode" flag: must be one of: dualstack, ipv4' \
    nsx "$KC" install transparent-proxy --kuma-dp-user 0 --ip-family-mode ipv6
expect_error 'invalid argument "70000" for "--redirect-outbound-port" flag' \
    nsx "$KC" install transparent-proxy --kuma-dp-user 0 --redirect-outbound-port 70000
expect_error '"x" is not a valid port' \
    nsx "$KC" install transparent-proxy --kuma-dp-user 0 --exclude-inbound-ports 22,x
expect_error "unknown protocol sctp, only 'tcp' or 'udp' allowed" \
    nsx "$KC" install transparent-proxy --kuma-dp-user 0 --exclude-outbound-ports-for-uids sctp:22:1000
expect_error "ports must be a value, a list, a range (a-b) or *" \
    nsx "$KC" install transparent-proxy --kuma-dp-user 0 --exclude-outbound-ports-for-uids tcp:9-1:1000
expect_error "uids must be a value or a range (a-b)" \
    nsx "$KC" install transparent-proxy --kuma-dp-user 0 --exclude-outbound-ports-for-uids tcp:22:bob
expect_error "too many parts (want [protocol:][ports:]uids)" \
    nsx "$KC" install transparent-proxy --kuma-dp-user 0 --exclude-outbound-ports-for-uids tcp:22:1000:5
expect_error "failed to find user 'no-such-user-$$'" \
    nsx "$KC" install transparent-proxy --kuma-dp-user "no-such-user-$$"
expect_error "unknown flag: --no-such-flag" nsx "$KC" install transparent-proxy --no-such-flag
assert_eq "$(nsx iptables-save | grep -v '^#')" "$before" "a refused install changed iptables"

# --dry-run: Kuma's chains, the uid exclusions, nothing applied.
out=$(nsx "$KC" install transparent-proxy --kuma-dp-user 0 --dry-run --ip-family-mode ipv4 \
    --redirect-outbound-port 16001 --exclude-outbound-ports 25 \
    --exclude-outbound-ports-for-uids 53,3000-5000:106-108 2>&1) || fail "dry run: $out"
for line in "-N KUMA_MESH_INBOUND" "-N KUMA_MESH_OUTBOUND" "-N KUMA_MESH_INBOUND_REDIRECT" \
    "-N KUMA_MESH_OUTBOUND_REDIRECT" \
    "-A KUMA_MESH_OUTBOUND -p tcp --dport 25 -j RETURN" \
    "-p tcp -m multiport --dports 53,3000:5000 -m owner --uid-owner 106-108" \
    "-p udp -m multiport --dports 53,3000:5000 -m owner --uid-owner 106-108" \
    "-A KUMA_MESH_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 16001" \
    "-A KUMA_MESH_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15006"; do
    assert_contains "$out" "$line" "dry run"
done
assert_not_contains "$out" "### IPv6 ###" "ipv4 mode"
assert_eq "$(nsx iptables-save | grep -v '^#')" "$before" "--dry-run changed iptables"
out=$(nsx "$KC" install transparent-proxy --kuma-dp-user 0 --dry-run --verbose --ip-family-mode ipv4)
assert_contains "$out" "--append KUMA_MESH_OUTBOUND_REDIRECT --protocol tcp --jump REDIRECT --to-ports 15001"

# Uninstall with nothing installed says so and succeeds.
out=$(nsx "$KC" uninstall transparent-proxy 2>&1) || fail "uninstall: $out"
assert_contains "$out" "transparent proxy is not installed"
echo ok
