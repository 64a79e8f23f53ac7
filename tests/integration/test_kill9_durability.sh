#!/usr/bin/env bash
# Every write kuma-cp acknowledged survives kill -9: a stream of applies is
# cut by SIGKILL, kuma-cp restarts on the same SQLite file, and every
# acknowledged resource is there with the acknowledged content.
. "$(dirname "$0")/lib.sh"

start_cp
acked="$T/acked"
: >"$acked"
(
    for i in $(seq 1 2000); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$CP_URL/meshes/default/traffic-routes/r-$i" \
            --data-binary "{\"type\":\"TrafficRoute\",\"mesh\":\"default\",\"name\":\"r-$i\",\"sources\":[{\"match\":{\"kuma.io/service\":\"s$i\"}}],\"destinations\":[{\"match\":{\"kuma.io/service\":\"*\"}}],\"conf\":{\"destination\":{\"kuma.io/service\":\"d$i\"}}}")
        [ "$code" = 201 ] && echo "$i" >>"$acked"
        [ "$code" = 000 ] && break
    done
) &
writer=$!
# Let the stream run, then cut it mid-flight.
for _ in $(seq 100); do
    [ "$(wc -l <"$acked")" -ge 150 ] && break
    sleep 0.05
done
kill -KILL "$CP_PID"
wait "$writer" 2>/dev/null
wait "$CP_PID" 2>/dev/null
n=$(wc -l <"$acked")
[ "$n" -ge 50 ] || fail "only $n writes acknowledged before the kill"
echo "acknowledged before kill -9: $n"

start_cp
listed=$(get '/meshes/default/traffic-routes?size=1000' | jq -r '.items[].name' | sort)
missing=0
while read -r i; do
    grep -qx "r-$i" <<<"$listed" || { echo "missing r-$i"; missing=$((missing + 1)); }
done <"$acked"
assert_eq "$missing" 0 "acknowledged writes lost"
# Content survives too, not just the name.
last=$(tail -n 1 "$acked")
api GET "/meshes/default/traffic-routes/r-$last"; out=$BODY
assert_eq "$(jq -r '.conf.destination["kuma.io/service"]' <<<"$out")" "d$last"
