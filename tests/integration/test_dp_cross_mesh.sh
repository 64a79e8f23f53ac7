#!/usr/bin/env bash
# Mesh isolation through real proxies: a workload of mesh "mb" cannot reach
# mesh "ma"'s service, and certificates minted by the test from each mesh's
# CA (fetched over REST, leaf signed with the openssl CLI) are refused by
# ma's inbound — another mesh's CA fails the chain, ma's CA with an mb SPIFFE
# ID fails the SAN check — and counted in /stats. A leaf of ma's CA with an
# ma identity goes through (the control that shows the check can pass).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"

start_cp KUMA_STORE_TYPE=memory
for m in ma mb; do
    mesh_put $m mtls
    api PUT /meshes/$m/traffic-permissions/allow-all "{\"type\":\"TrafficPermission\",\"mesh\":\"$m\",\"name\":\"allow-all\",\"sources\":[{\"match\":{\"kuma.io/service\":\"*\"}}],\"destinations\":[{\"match\":{\"kuma.io/service\":\"*\"}}]}"
done
start_backend ma
start_dp web-b mb "$(dp_yaml 127.0.0.4 17004 web 7004 "27001:backend")"

# mb has no "backend": its outbound has no endpoints and closes every connection.
load 127.0.0.4 27001 --count 10 --size 100 --timeout-ms 3000
assert_eq "$LOAD_OK" 0 "requests from mesh mb that reached mesh ma"
assert_eq "$LOAD_FAIL" 10 "refused requests"
[ "$(dp_stat web-b cluster.backend.upstream_cx_none_healthy)" -ge 10 ] || fail "none_healthy not counted"
# And the proxy of mb holds no secret of ma.
assert_not_contains "$(dp_config web-b)" "mesh_ca:secret:ma"

# The CAs, as an operator with the admin token fetches them.
for m in ma mb; do
    for k in cert key; do
        curl -s -H "Authorization: Bearer $CP_ADMIN_TOKEN" "$CP_URL/meshes/$m/secrets/$m.ca-builtin-$k-ca-1" |
            jq -r .data | base64 -d >"$T/$m-ca.$k"
        grep -q BEGIN "$T/$m-ca.$k" || fail "CA $k of $m not fetched"
    done
done
leaf() { # NAME CA_MESH SAN
    openssl ecparam -name prime256v1 -genkey -noout -out "$T/$1.key" 2>/dev/null
    openssl req -new -key "$T/$1.key" -subj "/O=test" -out "$T/$1.csr" 2>/dev/null
    printf 'subjectAltName=URI:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$T/$1.ext"
    openssl x509 -req -in "$T/$1.csr" -CA "$T/$2-ca.cert" -CAkey "$T/$2-ca.key" -CAcreateserial \
        -days 1 -extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null || fail "signing $1"
}
present() { # NAME: echo through backend's inbound with this leaf; prints the reply
    echo "hello-$1" | timeout 10 openssl s_client -connect 127.0.0.3:17001 -cert "$T/$1.crt" \
        -key "$T/$1.key" -CAfile "$T/ma-ca.cert" -alpn kuma -quiet -ign_eof 2>/dev/null
}
leaf other-ca mb spiffe://mb/x
leaf wrong-san ma spiffe://mb/x
leaf good ma spiffe://ma/web

v0=$(dp_stat backend listener.127.0.0.3_17001.ssl.fail_verify_error)
s0=$(dp_stat backend listener.127.0.0.3_17001.ssl.fail_verify_san)
assert_not_contains "$(present other-ca)" "hello-other-ca" "mesh mb's CA accepted"
assert_not_contains "$(present wrong-san)" "hello-wrong-san" "an mb SPIFFE ID accepted"
assert_contains "$(present good)" "hello-good" "a valid ma identity refused"
[ "$(dp_stat backend listener.127.0.0.3_17001.ssl.fail_verify_error)" -gt "${v0:-0}" ] ||
    fail "chain failure not counted"
[ "$(dp_stat backend listener.127.0.0.3_17001.ssl.fail_verify_san)" -gt "${s0:-0}" ] ||
    fail "SAN failure not counted"
# The proxy is unharmed.
dp_ready backend || fail "backend proxy not ready any more"
echo ok
