/*
 * libFuzzer harness for kuma-dp's gRPC deframer (core/grpcframe.c), which
 * takes the ADS response stream's DATA: arbitrary bytes, cut into chunks of
 * sizes taken from the input itself, must produce exactly the messages a
 * one-shot feed produces (same count, lengths and bytes) or the same error,
 * never a read past the input or a message above the limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/grpcframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 4096

struct sink {
    size_t n;     /* messages */
    uint64_t sum; /* bytes, hashed */
    size_t total; /* message bytes */
    int fail_at;  /* callback failure after this many messages (-1 never) */
};

static int on_msg(void *ctx, const uint8_t *m, size_t len, struct err *e)
{
    struct sink *s = ctx;
    if (len > LIMIT)
        abort();
    for (size_t i = 0; i < len; i++)
        s->sum = s->sum * 131 + m[i] + 1;
    s->sum = s->sum * 31 + len;
    s->total += len;
    s->n++;
    if (s->fail_at >= 0 && s->n == (size_t)s->fail_at)
        return err_set(e, "stop");
    return 0;
}

static int run(const uint8_t *p, size_t n, const uint8_t *cuts, size_t ncuts, struct sink *s)
{
    struct grpcf_deframer d;
    struct err e = {{0}};
    grpcf_deframer_init(&d, LIMIT);
    int rc = 0;
    size_t off = 0, ci = 0;
    while (off < n && rc == 0) {
        size_t k = ncuts ? (size_t)cuts[ci++ % ncuts] + 1 : n;
        if (k > n - off)
            k = n - off;
        /* An exact-size copy so ASan sees any read past the chunk. */
        uint8_t *chunk = malloc(k);
        memcpy(chunk, p + off, k);
        rc = grpcf_deframer_feed(&d, chunk, k, on_msg, s, &e);
        free(chunk);
        off += k;
    }
    if (rc == 0 && grpcf_deframer_feed(&d, p, 0, on_msg, s, &e) != 0)
        abort(); /* an empty feed is a no-op */
    if (rc != 0 && !e.msg[0])
        abort(); /* every error says why */
    grpcf_deframer_free(&d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* First byte: how many chunk sizes follow; the rest is the stream. */
    size_t ncuts = data[0] % 16;
    if (ncuts + 1 > size)
        ncuts = size - 1;
    const uint8_t *cuts = data + 1, *p = data + 1 + ncuts;
    size_t n = size - 1 - ncuts;
    int fail_at = data[1] % 4 == 0 ? (int)(data[1] / 4 % 4) + 1 : -1;
    struct sink whole = {.fail_at = fail_at}, parts = {.fail_at = fail_at};
    int a = run(p, n, NULL, 0, &whole);
    int b = run(p, n, cuts, ncuts, &parts);
    if (a != b || whole.n != parts.n || whole.sum != parts.sum || whole.total != parts.total)
        abort(); /* chunking must not change what comes out */
    if (whole.total + whole.n * GRPCF_PREFIX > n)
        abort(); /* no message bytes from nowhere */
    return 0;
}
