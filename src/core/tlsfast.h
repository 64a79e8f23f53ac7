/*
 * tlsfast — OpenSSL 3.0's legacy public-key code for certificate keys,
 * shared by kuma-dp (src/dp/tls.c), the xDS fleet benchmark and the
 * handshake micro-benchmark (bench/xds).
 *
 * OpenSSL 3.0 decodes the public key of every certificate it parses (a
 * peer's certificate, on every handshake) through the provider decoder
 * machinery, which builds a fresh decoder chain each time (3.2 caches
 * them): ~85 µs of a P-256 leaf's ~100 µs parse. It still takes its old,
 * direct decoder (the key type's ASN.1 method, ~15 µs) when an ENGINE
 * provides the key type's EVP_PKEY_METHOD. tls_fast_pkeys_enable registers
 * a small ENGINE whose methods are plain copies of OpenSSL's built-in ones:
 * those keys then decode, sign and verify through libcrypto's own legacy
 * code (same arithmetic, no per-operation provider fetches). X25519 and the
 * TLS ciphers stay on the providers (a legacy X25519 method measured no
 * faster in bench/xds/hs_bench.c, and libssl's server side refuses it).
 *
 * Process-wide and irreversible. Legacy EC contexts take no provider
 * parameters, so afterwards EVP_EC_gen() and EVP_PKEY_Q_keygen("EC") fail
 * (libssl's own P-256 key shares still work): only a process that
 * generates no EC keys may turn EC on (kuma-dp, the fleet; not kuma-cp,
 * whose CAs generate keys).
 */
#ifndef CORE_TLSFAST_H
#define CORE_TLSFAST_H

enum { TLS_FAST_EC = 1, TLS_FAST_RSA = 2 };

/* Turns the legacy methods on for the key types in `types` (TLS_FAST_*),
 * unless the environment variable off_env (may be NULL) is set to
 * something other than "" or "0". Only the first call acts (later ones
 * report its outcome); call before starting threads. Returns the types that
 * are on (0: unavailable or turned off). */
int tls_fast_pkeys_enable(int types, const char *off_env);

#endif
