#!/usr/bin/env bash
# HTTP/2 services (kuma.io/protocol: http2): kuma-cp sends HTTP connection
# managers; kuma-dp speaks HTTP/1.1 only, so a connection that opens with
# the HTTP/2 preface (prior knowledge, as gRPC clients do) is tunnelled to
# the default route's cluster, through both proxies with mesh mTLS. curl
# --http2-prior-knowledge against nginx's h2c listener proves HTTP/2 end
# to end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dp_lib.sh"
command -v nginx >/dev/null || fail "nginx missing (scripts/setup.sh --test)"

start_cp KUMA_STORE_TYPE=memory
mesh_put default mtls
api PUT /meshes/default/traffic-permissions/allow-all '{"type":"TrafficPermission","mesh":"default","name":"allow-all","sources":[{"match":{"kuma.io/service":"*"}}],"destinations":[{"match":{"kuma.io/service":"*"}}]}'
mkdir -p "$T/nginx"
head -c 300000 /dev/urandom >"$T/nginx/big"
cat >"$T/nginx/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    server {
        listen 127.0.0.3:7001 http2;
        location = /big { alias $T/nginx/big; }
        location / { return 200 "h2 \$server_protocol \$request_uri\n"; }
    }
}
CONF
nginx -c "$T/nginx/nginx.conf" -p "$T/nginx" >"$T/nginx/out.log" 2>&1 &
PIDS+=($!)
start_dp backend default "$(dp_yaml 127.0.0.3 17001 backend 7001 "" "kuma.io/protocol=http2")"
start_dp web default "$(dp_yaml 127.0.0.2 17002 web 7002 "27001:backend")"
hcm() { local c; c=$(dp_config web); [[ $c == *envoy.filters.network.http_connection_manager* ]]; }
wait_for "the HTTP outbound listener" 100 hcm
h2() { curl -s -m 3 --http2-prior-knowledge "http://127.0.0.2:27001/$1"; }
ready() { [ "$(h2 ready)" = "h2 HTTP/2.0 /ready" ]; }
wait_for "HTTP/2 through both proxies" 100 ready
for i in $(seq 5); do
    assert_eq "$(h2 "x$i?q=$i")" "h2 HTTP/2.0 /x$i?q=$i" "HTTP/2 request $i"
done
# A response larger than the proxies' buffers, byte-exact.
assert_eq "$(curl -s -m 5 --http2-prior-knowledge http://127.0.0.2:27001/big | sha256sum)" \
    "$(sha256sum <"$T/nginx/big")" "HTTP/2 large response"
[ "$(dp_stat web http.backend.downstream_cx_http2_total)" -ge 6 ] || fail "downstream_cx_http2_total"
in_stat=$(curl -s "http://127.0.0.1:$(dp_admin backend)/stats" | sed -n 's/^\(http\..*\.downstream_cx_http2_total\): .*/\1/p' | head -1)
[ "$(dp_stat backend "$in_stat")" -ge 6 ] || fail "inbound downstream_cx_http2_total"
kill -0 "$(dp_pid web)" && kill -0 "$(dp_pid backend)" || fail "a proxy died"
assert_not_contains "$(cat "$T"/dp-*.log)" "NACK"
echo ok
