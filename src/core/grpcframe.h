/*
 * grpcframe — gRPC's length-prefixed message framing (the body of an
 * HTTP/2 gRPC stream), shared by kuma-dp's ADS client (dp/xds_client.c) and
 * kuma-cp's ADS server transport.
 *
 * Every message is a 5-byte prefix — a compressed flag (0 or 1) and a
 * big-endian 32-bit length — then that many bytes. The client never
 * negotiates compression, so a message with the flag set is refused, as is
 * one longer than the deframer's limit or a flag other than 0/1. The
 * deframer takes the stream's DATA in chunks of any size (a prefix or a
 * message may span any number of chunks) and hands out whole messages.
 * After an error it is unusable (the stream is over); free it.
 */
#ifndef CORE_GRPCFRAME_H
#define CORE_GRPCFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define GRPCF_PREFIX 5

/* gRPC status codes (the grpc-status trailer), as the gRPC spec numbers them. */
enum grpcf_status {
    GRPCF_STATUS_OK = 0,
    GRPCF_STATUS_CANCELLED = 1,
    GRPCF_STATUS_UNKNOWN = 2,
    GRPCF_STATUS_INVALID_ARGUMENT = 3,
    GRPCF_STATUS_NOT_FOUND = 5,
    GRPCF_STATUS_PERMISSION_DENIED = 7,
    GRPCF_STATUS_RESOURCE_EXHAUSTED = 8,
    GRPCF_STATUS_UNIMPLEMENTED = 12,
    GRPCF_STATUS_INTERNAL = 13,
    GRPCF_STATUS_UNAVAILABLE = 14,
    GRPCF_STATUS_UNAUTHENTICATED = 16,
};

struct grpcf_deframer {
    size_t max; /* largest message accepted (bytes) */
    uint8_t hdr[GRPCF_PREFIX];
    size_t hlen;     /* prefix bytes held */
    size_t need;     /* length of the message being gathered */
    uint8_t *buf;    /* its bytes so far */
    size_t len, cap; /* held, allocated */
    int failed;
};

/* Called for each whole message; a non-zero return (with e set) stops
 * the feed and is returned by it. */
typedef int (*grpcf_msg_fn)(void *ctx, const uint8_t *msg, size_t len, struct err *e);

void grpcf_deframer_init(struct grpcf_deframer *d, size_t max);
/* Feeds n bytes: 0, or -1 with e set (bad flag, compressed, too large, or
 * what fn returned). */
int grpcf_deframer_feed(struct grpcf_deframer *d, const uint8_t *p, size_t n, grpcf_msg_fn fn,
                        void *ctx, struct err *e);
/* Whether a message is partly received (a stream that ends so is truncated). */
int grpcf_deframer_partial(const struct grpcf_deframer *d);
void grpcf_deframer_free(struct grpcf_deframer *d);

/* Writes the 5-byte prefix of an uncompressed message of len bytes. */
void grpcf_prefix(uint8_t out[GRPCF_PREFIX], uint32_t len);

#endif
