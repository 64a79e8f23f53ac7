#!/usr/bin/env bash
# MeshHTTPRoute / MeshTCPRoute end to end: kumactl apply (valid and invalid),
# kumactl get, the REST API, and their effect on a sidecar's ADS responses
# decoded with Envoy's real protos (tests/xds/routes.js): precedence over a
# TrafficRoute, Kuma's route order and names, filters, weighted subsets,
# weighted TCP, a push on change, the TrafficRoute back after deletion; a
# builtin gateway with HTTP, HTTPS (certificate from a Secret, over SDS) and
# TCP listeners routed by Mesh*Routes targeting its MeshGateway.
. "$(dirname "$0")/lib.sh"
need_xds_node

start_cp KUMA_STORE_TYPE=memory KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none
use_cp

# An invalid route is refused with Kuma's path and message.
cat >"$T/bad.yaml" <<'EOF'
type: MeshHTTPRoute
mesh: default
name: bad
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: api}
    rules:
    - matches: [{path: {type: PathPrefix, value: v2/}}]
      default: {}
EOF
out=$(kumactl apply -f "$T/bad.yaml" 2>&1) && fail "invalid MeshHTTPRoute accepted: $out"
assert_contains "$out" "spec.to[0].rules[0].matches[0].path.value=does not need a trailing slash"
assert_contains "$out" "spec.to[0].rules[0].matches[0].path.value=must be an absolute path"
api PUT /meshes/default/meshtcproutes/bad \
    '{"type":"MeshTCPRoute","mesh":"default","name":"bad","spec":{"to":[{"targetRef":{"kind":"MeshService","name":"db"},"rules":[{"default":{}}]}]}}'
assert_eq "$HTTP_STATUS" "400" "invalid MeshTCPRoute over REST"
assert_contains "$BODY" '"field": "spec.to[0].rules[0].default.backendRefs"'
assert_contains "$BODY" '"message": "must be defined"'

cat >"$T/routes.yaml" <<'EOF'
type: MeshHTTPRoute
mesh: default
name: api-route
spec:
  targetRef: {kind: MeshSubset, tags: {team: edge}}
  to:
  - targetRef: {kind: MeshService, name: api}
    rules:
    - matches:
      - path: {type: PathPrefix, value: /v2}
        method: GET
        headers: [{name: x-canary, value: "yes"}]
        queryParams: [{type: Exact, name: debug, value: "1"}]
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-a, value: "b,c"}], remove: [x-f]}
        - type: ResponseHeaderModifier
          responseHeaderModifier: {add: [{name: x-r, value: s}]}
        - type: URLRewrite
          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v3}}
        - type: RequestMirror
          requestMirror:
            backendRef: {kind: MeshServiceSubset, name: api, tags: {version: v1}}
            percentage: 25
        backendRefs:
        - {kind: MeshServiceSubset, name: api, tags: {version: v2}, weight: 90}
        - {kind: MeshServiceSubset, name: api, tags: {version: v1}, weight: 10}
    - matches: [{path: {type: Exact, value: /old}}]
      default:
        filters:
        - type: RequestRedirect
          requestRedirect: {scheme: https, hostname: example.com, port: 8443, statusCode: 302}
---
type: MeshTCPRoute
mesh: default
name: db-split
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: db}
    rules:
    - default:
        backendRefs:
        - {kind: MeshServiceSubset, name: db, tags: {version: v1}, weight: 80}
        - {kind: MeshServiceSubset, name: db, tags: {version: v2}, weight: 20}
EOF

# The gateway's HTTPS certificate (a Secret holding certificate and key).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=shop.example.com -keyout "$T/gw.key" -out "$T/gw.crt" 2>/dev/null ||
    fail "openssl req"
cat "$T/gw.crt" "$T/gw.key" >"$T/gw.pem"

step="$T/step"
: >"$step"
XDS_CA="$CP_WORKDIR/kuma-cp.crt" XDS_ADDR="$CP_XDS_ADDR" CP_URL="$CP_URL" ROUTES_STEP_FILE="$step" \
    GW_CERT_PEM="$T/gw.pem" \
    node "$XDS_TESTS/routes.js" >"$T/routes.out" 2>&1 &
node_pid=$!
PIDS+=("$node_pid")

# Answer the script's steps.
done_apply=0 done_reweight=0
for _ in $(seq 400); do
    kill -0 "$node_pid" 2>/dev/null || break
    s=$(cat "$step")
    if [ "$s" = apply ] && [ $done_apply = 0 ]; then
        kumactl apply -f "$T/routes.yaml" >/dev/null || fail "kumactl apply routes"
        done_apply=1
    elif [ "$s" = reweight ] && [ $done_reweight = 0 ]; then
        sed -e 's/weight: 80/weight: 50/' -e 's/weight: 20/weight: 50/' "$T/routes.yaml" >"$T/routes2.yaml"
        kumactl apply -f "$T/routes2.yaml" >/dev/null || fail "kumactl apply reweight"
        done_reweight=1
    fi
    sleep 0.05
done
wait "$node_pid" || fail "routes.js failed: $(cat "$T/routes.out")"
assert_contains "$(cat "$T/routes.out")" "routes.js: ok"
assert_eq "$done_apply$done_reweight" "11" "both steps answered"

# kumactl get: the types resolve by their Kuma names (the routes were
# deleted by the script; apply one again to list it).
kumactl apply -f "$T/routes.yaml" >/dev/null || fail "kumactl apply again"
out=$(kumactl get meshhttproutes)
assert_contains "$out" "api-route"
out=$(kumactl get meshtcproute db-split -o json)
assert_contains "$out" '"type": "MeshTCPRoute"'
assert_contains "$(get /_resources)" '"path": "meshhttproutes"'

stop_cp
assert_eq "$CP_EXIT" "0" "kuma-cp exit status"
echo "ok"
