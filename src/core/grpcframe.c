/*
 * grpcframe — gRPC message framing; the contract is in grpcframe.h.
 *
 * The buffer of a message grows with what arrives (doubling, capped at the
 * announced length), so a hostile prefix announcing a huge length costs
 * nothing until the bytes come; a message that arrives whole in one chunk
 * is handed out without a copy.
 */
#include "core/grpcframe.h"

#include <stdlib.h>
#include <string.h>

void grpcf_deframer_init(struct grpcf_deframer *d, size_t max)
{
    memset(d, 0, sizeof(*d));
    d->max = max;
}

void grpcf_deframer_free(struct grpcf_deframer *d)
{
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = d->hlen = d->need = 0;
}

int grpcf_deframer_partial(const struct grpcf_deframer *d)
{
    return d->hlen > 0;
}

void grpcf_prefix(uint8_t out[GRPCF_PREFIX], uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* A complete prefix is in d->hdr: checks it and sets d->need. */
static int parse_prefix(struct grpcf_deframer *d, struct err *e)
{
    if (d->hdr[0] == 1)
        return err_set(e, "gRPC: a compressed message, but no compression was negotiated");
    if (d->hdr[0] != 0)
        return err_set(e, "gRPC: bad message flag 0x%02x", d->hdr[0]);
    uint32_t n = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 | (uint32_t)d->hdr[3] << 8 |
                 (uint32_t)d->hdr[4];
    if (n > d->max)
        return err_set(e, "gRPC: a message of %u bytes exceeds the limit of %zu", n, d->max);
    d->need = n;
    d->len = 0;
    return 0;
}

static int deliver(struct grpcf_deframer *d, const uint8_t *msg, size_t len, grpcf_msg_fn fn,
                   void *ctx, struct err *e)
{
    d->hlen = 0;
    d->need = 0;
    d->len = 0;
    return fn(ctx, msg, len, e);
}

int grpcf_deframer_feed(struct grpcf_deframer *d, const uint8_t *p, size_t n, grpcf_msg_fn fn,
                        void *ctx, struct err *e)
{
    if (d->failed)
        return err_set(e, "gRPC: the message stream already failed");
    while (n > 0) {
        if (d->hlen < GRPCF_PREFIX) {
            size_t k = GRPCF_PREFIX - d->hlen;
            if (k > n)
                k = n;
            memcpy(d->hdr + d->hlen, p, k);
            d->hlen += k;
            p += k;
            n -= k;
            if (d->hlen < GRPCF_PREFIX)
                break;
            if (parse_prefix(d, e) < 0)
                goto fail;
            if (d->need <= n) { /* whole in this chunk: no copy */
                size_t m = d->need;
                const uint8_t *msg = p;
                p += m;
                n -= m;
                if (deliver(d, msg, m, fn, ctx, e) != 0)
                    goto fail;
                continue;
            }
            if (n == 0)
                break;
        }
        size_t k = d->need - d->len;
        if (k > n)
            k = n;
        if (d->len + k > d->cap) {
            size_t cap = d->cap ? d->cap : 4096;
            while (cap < d->len + k)
                cap *= 2;
            if (cap > d->need)
                cap = d->need;
            d->buf = xrealloc(d->buf, cap);
            d->cap = cap;
        }
        memcpy(d->buf + d->len, p, k);
        d->len += k;
        p += k;
        n -= k;
        if (d->len == d->need) {
            int rc = deliver(d, d->buf, d->len, fn, ctx, e);
            /* Big buffers are not kept between messages. */
            if (d->cap > 65536) {
                free(d->buf);
                d->buf = NULL;
                d->cap = 0;
            }
            if (rc != 0)
                goto fail;
        }
    }
    return 0;
fail:
    d->failed = 1;
    return -1;
}
