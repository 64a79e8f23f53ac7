/*
 * fleet_tls — the fleet's TLS client context (bench/xds/fleet.c), shared
 * with the handshake micro-benchmark (bench/xds/hs_bench.c) so that both
 * measure the same client: TLS 1.2+, ALPN h2, kuma-cp's certificate
 * verified against ca_file for verify_name (an IP address or a DNS name),
 * no session resumption.
 */
#ifndef BENCH_XDS_FLEET_TLS_H
#define BENCH_XDS_FLEET_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* NULL with why set (why_len bytes). */
SSL_CTX *fleet_tls_client_ctx(const char *ca_file, const char *verify_name, char *why,
                              size_t why_len);

#endif
