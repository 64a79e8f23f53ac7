#!/usr/bin/env bash
# Secrets (mesh-scoped) and GlobalSecrets over REST and kumactl with base64
# data; kumactl get prints Kuma's tables; the data never reaches the log.
. "$(dirname "$0")/lib.sh"

start_cp
use_cp
val='s3cr3t-value-do-not-log'
b64=$(printf '%s' "$val" | base64 -w0)
api PUT /meshes/default/secrets/db-pass "$(jq -cn --arg d "$b64" '{type:"Secret",mesh:"default",name:"db-pass",data:$d}')"
assert_eq "$HTTP_STATUS" 201 "create secret: $BODY"
assert_eq "$(secret_data default db-pass)" "$val"
api GET /meshes/default/secrets/db-pass
assert_eq "$(jq -c '[.type, .mesh, .name, .data]' <<<"$BODY")" "[\"Secret\",\"default\",\"db-pass\",\"$b64\"]"

# Invalid data is refused.
api PUT /meshes/default/secrets/bad '{"type":"Secret","mesh":"default","name":"bad","data":"not base64!"}'
assert_eq "$HTTP_STATUS" 400 "bad base64"
api PUT /meshes/default/secrets/empty '{"type":"Secret","mesh":"default","name":"empty"}'
assert_eq "$HTTP_STATUS" 400 "no data"

# kumactl apply / get / delete.
printf 'type: GlobalSecret\nname: g1\ndata: %s\n' "$b64" | kumactl apply -f - >/dev/null || fail "apply GlobalSecret"
assert_eq "$(secret_data "" g1)" "$val"
printf 'type: Secret\nmesh: default\nname: s2\ndata: %s\n' "$b64" | kumactl apply -f - >/dev/null || fail "apply Secret"
out=$(kumactl get secrets)
assert_eq "$(head -1 <<<"$out" | tr -s ' ')" "MESH NAME AGE"
assert_contains "$out" "db-pass"
assert_contains "$out" "dataplane-token-signing-key-default-1"
out=$(kumactl get global-secrets)
assert_eq "$(head -1 <<<"$out" | tr -s ' ')" "NAME AGE"
assert_contains "$out" "g1"
assert_contains "$out" "admin-user-token"
out=$(kumactl get secret s2 -o yaml)
assert_contains "$out" "data: $b64"
kumactl delete secret s2 >/dev/null || fail "delete secret"
api GET /meshes/default/secrets/s2
assert_eq "$HTTP_STATUS" 404

# The store file and the work dir are the owner's only.
assert_eq "$(stat -c %a "$CP_WORKDIR")" 700
assert_eq "$(stat -c %a "$CP_WORKDIR/kuma.db")" 600
log=$(cat "$CP_LOG")
assert_not_contains "$log" "$val" "secret value in the log"
assert_not_contains "$log" "$b64" "secret data in the log"
assert_not_contains "$log" "$CP_ADMIN_TOKEN" "admin token in the log"
echo "ok"
