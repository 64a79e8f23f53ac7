#!/usr/bin/env bash
# PERMISSIVE mTLS (mesh mtls.backends[].mode): the inbound accepts mesh mTLS
# and plaintext from clients outside the mesh; outbound traffic still
# originates mTLS, and permissions still apply to mesh callers. Switched
# live to STRICT, plaintext is refused while mesh traffic keeps flowing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

mesh_mode() { # MODE
    api PUT /meshes/default "{\"type\":\"Mesh\",\"name\":\"default\",\"mtls\":{\"enabledBackend\":\"ca-1\",\"backends\":[{\"name\":\"ca-1\",\"type\":\"builtin\",\"mode\":\"$1\"}]}}"
    case "$HTTP_STATUS" in 200 | 201) ;; *) fail "PUT mesh ($1): $HTTP_STATUS $BODY" ;; esac
}

start_cp KUMA_STORE_TYPE=memory
mesh_mode PERMISSIVE
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
[ "$HTTP_STATUS" = 201 ] || fail "permission: $HTTP_STATUS $BODY"
start_backend default
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"

mesh_ok() { probe_ok 127.0.0.2 27001; }
mesh_blocked() { probe_fails 127.0.0.2 27001; }
plain_ok() { probe_ok 127.0.0.3 17001; }
plain_refused() { probe_fails 127.0.0.3 17001; }

# PERMISSIVE: mesh traffic over mTLS, and a plaintext client straight to the inbound.
wait_for "mesh traffic" 100 mesh_ok
plain_ok || fail "plaintext refused in PERMISSIVE"
load 127.0.0.3 17001 --count 50 --size 4096 --concurrency 4
assert_eq "$LOAD_FAIL" 0 "plaintext requests failed ($(head -3 "$T/load.err"))"
load 127.0.0.2 27001 --count 50 --size 4096 --concurrency 4
assert_eq "$LOAD_FAIL" 0 "mesh requests failed"
# The mesh path really was mTLS (TLS handshakes and RBAC on the inbound).
hs=$(dp_stat backend listener.127.0.0.3_17001.ssl.handshake)
[ "${hs:-0}" -ge 50 ] || fail "inbound TLS handshakes: ${hs:-none}"
[ "$(dp_stat backend inbound_127.0.0.3_17001.rbac.allowed)" -ge 50 ] || fail "RBAC not applied to mesh traffic"
assert_contains "$(dp_config backend)" '"raw_buffer"' "plaintext chain in the config"

# Permissions still apply to mesh callers; plaintext callers have no identity to check.
api DELETE /meshes/default/traffic-permissions/allow-all
wait_for "mesh traffic denied without a permission" 100 mesh_blocked
plain_ok || fail "plaintext refused after the permission went (PERMISSIVE)"
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
wait_for "mesh traffic allowed again" 100 mesh_ok

# STRICT: plaintext refused, mesh traffic still flows, no restart.
pid=$(dp_pid backend)
mesh_mode STRICT
wait_for "plaintext refused in STRICT" 100 plain_refused
load 127.0.0.2 27001 --count 30 --size 1000
assert_eq "$LOAD_FAIL" 0 "mesh requests failed in STRICT"
# And back.
mesh_mode PERMISSIVE
wait_for "plaintext accepted again" 100 plain_ok
assert_eq "$(dp_pid backend)" "$pid" "backend proxy pid"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
