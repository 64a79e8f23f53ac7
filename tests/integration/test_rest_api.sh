#!/usr/bin/env bash
# Kuma's REST API shapes: index, descriptors, list pagination and filters,
# 201/200 on create/update, 404s, the error envelope, concurrent updates.
. "$(dirname "$0")/lib.sh"

start_cp
api GET /; out=$BODY
assert_eq "$HTTP_STATUS" 200
assert_eq "$(jq -r '.product' <<<"$out")" Kuma
[ -n "$(jq -r '.clusterId' <<<"$out")" ] || fail "no clusterId"
api GET /_resources; out=$BODY
assert_eq "$(jq -r '.resources[] | select(.name=="TrafficRoute") | .path' <<<"$out")" traffic-routes
assert_eq "$(jq -r '.resources[] | select(.name=="Mesh") | .scope' <<<"$out")" Global
assert_eq "$(jq -r '.resources[] | select(.name=="MeshTimeout") | .policy.isTargetRef' <<<"$out")" true
api GET /config; out=$BODY
assert_eq "$(jq -r '.store.type' <<<"$out")" sqlite

# Create, update, versions and times.
m='{"type":"Mesh","name":"m1","routing":{"localityAwareLoadBalancing":true}}'
api PUT /meshes/m1 "$m"; out=$BODY
assert_eq "$HTTP_STATUS" 201 "create"
assert_eq "$out" "{}"
api GET /meshes/m1; c1=$BODY
api PUT /meshes/m1 '{"type":"Mesh","name":"m1"}'; out=$BODY
assert_eq "$HTTP_STATUS" 200 "update"
api GET /meshes/m1; c2=$BODY
assert_eq "$(jq -r '.creationTime' <<<"$c2")" "$(jq -r '.creationTime' <<<"$c1")" "creationTime kept"
assert_eq "$(jq -r '.routing' <<<"$c2")" null "update replaces the spec"
assert_eq "$(jq -r '.kri' <<<"$c2")" "kri_m____m1_"
# YAML bodies are accepted too.
api PUT /meshes/m2 $'type: Mesh\nname: m2\nmetrics:\n  enabledBackend: p\n  backends:\n  - name: p\n    type: prometheus\n'; out=$BODY
assert_eq "$HTTP_STATUS" 201 "YAML body"
api GET /meshes/m2; out=$BODY
assert_eq "$(jq -c '.metrics.backends[0].conf' <<<"$out")" \
    '{"port":5670,"path":"/metrics","tags":{"kuma.io/service":"dataplane-metrics"},"tls":{}}' \
    "prometheus defaults"

# 404s with the error envelope.
api GET /meshes/none; out=$BODY
assert_eq "$HTTP_STATUS" 404
assert_eq "$(jq -r '.type' <<<"$out")" /std-errors
assert_eq "$(jq -r '.status' <<<"$out")" 404
assert_eq "$(jq -r '.title' <<<"$out")" "Could not retrieve a resource"
assert_eq "$(jq -r '.detail' <<<"$out")" "Not found"
api DELETE /meshes/default/traffic-routes/none
assert_eq "$HTTP_STATUS" 404

# URL/body mismatches.
api PUT /meshes/m3 '{"type":"Mesh","name":"other"}'; out=$BODY
assert_eq "$HTTP_STATUS" 400
assert_eq "$(jq -r '.invalid_parameters[0].field' <<<"$out")" name
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" "name from the URL has to be the same as in body"
assert_eq "$(jq -r '.causes[0].message' <<<"$out")" "name from the URL has to be the same as in body"
assert_eq "$(jq -r '.details' <<<"$out")" "Resource is not valid"
api PUT /meshes/default/traffic-routes/x '{"type":"TrafficRoute","mesh":"m1","name":"x"}'; out=$BODY
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" "mesh from the URL has to be the same as in body"
api PUT /meshes/default/traffic-routes/x '{"type":"TrafficLog","mesh":"default","name":"x"}'; out=$BODY
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" "type from the URL has to be the same as in body"

# Pagination.
for i in 1 2 3 4 5; do
    api PUT "/meshes/default/traffic-logs/log-$i" "{\"type\":\"TrafficLog\",\"mesh\":\"default\",\"name\":\"log-$i\",\"sources\":[{\"match\":{\"kuma.io/service\":\"*\"}}],\"destinations\":[{\"match\":{\"kuma.io/service\":\"*\"}}]}"
    assert_eq "$HTTP_STATUS" 201 "traffic log $i"
done
api GET '/meshes/default/traffic-logs?size=2'; out=$BODY
assert_eq "$(jq -r '.total' <<<"$out")" 5
assert_eq "$(jq -r '[.items[].name] | join(",")' <<<"$out")" "log-1,log-2"
next=$(jq -r '.next' <<<"$out")
assert_contains "$next" "offset=2"
out=$(curl -s "$next")
assert_eq "$(jq -r '[.items[].name] | join(",")' <<<"$out")" "log-3,log-4"
api GET '/meshes/default/traffic-logs?size=2&offset=4'; out=$BODY
assert_eq "$(jq -r '.next' <<<"$out")" null
api GET '/meshes/default/traffic-logs?name=g-3'; out=$BODY
assert_eq "$(jq -r '[.items[].name] | join(",")' <<<"$out")" "log-3" "name filter"
api GET '/meshes/default/traffic-logs?size=2000'; out=$BODY
assert_eq "$HTTP_STATUS" 400
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" "invalid page size of 2000. Maximum page size is 1000"
api GET '/meshes/default/traffic-logs?size=0'; out=$BODY
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" "must be greater than 0"
api GET '/meshes/default/traffic-logs?size=x'; out=$BODY
assert_eq "$(jq -r '.invalid_parameters[0].reason' <<<"$out")" "invalid format"
api GET '/meshes/default/traffic-logs?offset=-1'
assert_eq "$HTTP_STATUS" 400 "negative offset"

# Dataplanes: tag filter.
for n in web-1 web-2 api-1; do
    svc=${n%-*}
    api PUT "/meshes/default/dataplanes/$n" "{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":\"$n\",\"networking\":{\"address\":\"127.0.0.1\",\"inbound\":[{\"port\":8080,\"servicePort\":80,\"tags\":{\"kuma.io/service\":\"$svc\",\"version\":\"v1\"}}]}}"
    assert_eq "$HTTP_STATUS" 201 "dataplane $n"
done
api GET '/meshes/default/dataplanes?tag=kuma.io/service:web'; out=$BODY
assert_eq "$(jq -r '[.items[].name] | join(",")' <<<"$out")" "web-1,web-2" "tag filter"
api GET '/meshes/default/dataplanes?tag=kuma.io/service:web&tag=version:v2'; out=$BODY
assert_eq "$(jq -r '.total' <<<"$out")" 0 "two tag filters"

# Concurrent updates of one resource: every answer is 200 or 409, none lost.
codes="$T/codes"
writers=()
for i in $(seq 1 20); do
    curl -s -o /dev/null -w '%{http_code}\n' -X PUT "$CP_URL/meshes/default/traffic-logs/log-1" \
        --data-binary "{\"type\":\"TrafficLog\",\"mesh\":\"default\",\"name\":\"log-1\",\"sources\":[{\"match\":{\"kuma.io/service\":\"c$i\"}}],\"destinations\":[{\"match\":{\"kuma.io/service\":\"*\"}}]}" >>"$codes" &
    writers+=($!)
done
wait "${writers[@]}"
bad=$(grep -cvE '^(200|409)$' "$codes")
assert_eq "$bad" 0 "concurrent updates answered only 200 or 409: $(sort "$codes" | uniq -c | tr '\n' ' ')"
grep -q '^200$' "$codes" || fail "no concurrent update succeeded"

# Unknown routes.
api GET /nothing-here
assert_eq "$HTTP_STATUS" 404
api POST /meshes
assert_eq "$HTTP_STATUS" 405

# `next` keeps the filters.
api GET '/meshes/default/traffic-logs?size=1&name=log'
next=$(jq -r '.next' <<<"$BODY")
assert_contains "$next" "name=log"
out=$(curl -s "$next")
assert_eq "$(jq -r '[.items[].name] | join(",")' <<<"$out")" "log-2" "second page of a filtered list"
