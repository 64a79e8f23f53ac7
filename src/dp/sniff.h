/*
 * sniff — what Envoy's tls_inspector decides for a PERMISSIVE listener,
 * from the first bytes a client sends (read with MSG_PEEK, so nothing is
 * consumed): plaintext, TLS, or TLS whose ClientHello offers the ALPN
 * protocol "kuma" (Kuma's mTLS between proxies).
 *
 * Only the first TLS record is parsed (a ClientHello up to 16 KiB, which
 * covers every client we know: ours is ~300 bytes); a ClientHello spread
 * over several records counts as TLS without "kuma". Pure function, no
 * allocation, any input is safe (fuzzed: tests/fuzz/fuzz_sniff.c).
 */
#ifndef DP_SNIFF_H
#define DP_SNIFF_H

#include <stddef.h>

/* Bytes worth peeking: a record header and the largest TLS record. */
#define DP_SNIFF_MAX (5 + 16384)

enum dp_sniff {
    DP_SNIFF_MORE,     /* not enough bytes yet */
    DP_SNIFF_RAW,      /* not TLS: transport_protocol raw_buffer */
    DP_SNIFF_TLS,      /* TLS without ALPN kuma */
    DP_SNIFF_TLS_KUMA, /* TLS offering ALPN kuma */
};

/* Classifies the n bytes at p; eof = the peer sent nothing more (then a
 * partial ClientHello is decided as it stands). */
enum dp_sniff dp_sniff_classify(const unsigned char *p, size_t n, int eof);

#endif
