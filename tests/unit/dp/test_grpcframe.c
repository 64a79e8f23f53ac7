/*
 * kuma-dp's gRPC deframer (core/grpcframe.c): messages split anywhere
 * across DATA chunks come out whole and in order; empty messages; the
 * compressed flag, other flags and oversized lengths are refused with a
 * clear error; a callback error stops the feed.
 */
#include <stdint.h>
#include <string.h>

#include "core/grpcframe.h"
#include "test.h"

struct got {
    int n;
    char msgs[8][64];
    size_t lens[8];
};

static int collect(void *ctx, const uint8_t *m, size_t len, struct err *e)
{
    struct got *g = ctx;
    if (g->n >= 8 || len >= 64)
        return err_set(e, "unexpected message of %zu bytes", len);
    memcpy(g->msgs[g->n], m, len);
    g->msgs[g->n][len] = 0;
    g->lens[g->n++] = len;
    return 0;
}

/* Frames "hello", "", "world!" into one stream. */
static size_t three(uint8_t *out)
{
    size_t n = 0;
    const char *m[3] = {"hello", "", "world!"};
    for (int i = 0; i < 3; i++) {
        grpcf_prefix(out + n, (uint32_t)strlen(m[i]));
        n += GRPCF_PREFIX;
        memcpy(out + n, m[i], strlen(m[i]));
        n += strlen(m[i]);
    }
    return n;
}

TEST(dp_grpcframe_any_chunking)
{
    uint8_t s[64];
    size_t n = three(s);
    ASSERT_INT_EQ(n, 3 * 5 + 11);
    ASSERT_INT_EQ(s[4], 5);
    /* Every chunk size from 1 byte to the whole stream. */
    for (size_t k = 1; k <= n; k++) {
        struct grpcf_deframer d;
        struct got g = {0};
        struct err e = {{0}};
        grpcf_deframer_init(&d, 1024);
        for (size_t off = 0; off < n; off += k) {
            size_t c = n - off < k ? n - off : k;
            ASSERT_INT_EQ(grpcf_deframer_feed(&d, s + off, c, collect, &g, &e), 0);
            ASSERT_INT_EQ(grpcf_deframer_partial(&d),
                          off + c < n && off + c != 10 && off + c != 15);
        }
        ASSERT_INT_EQ(g.n, 3);
        ASSERT_STR_EQ(g.msgs[0], "hello");
        ASSERT_INT_EQ(g.lens[1], 0);
        ASSERT_STR_EQ(g.msgs[2], "world!");
        ASSERT_INT_EQ(grpcf_deframer_partial(&d), 0);
        grpcf_deframer_free(&d);
    }
}

TEST(dp_grpcframe_refusals)
{
    struct grpcf_deframer d;
    struct got g = {0};
    struct err e = {{0}};
    uint8_t compressed[] = {1, 0, 0, 0, 1, 'x'};
    grpcf_deframer_init(&d, 1024);
    ASSERT_INT_EQ(grpcf_deframer_feed(&d, compressed, sizeof(compressed), collect, &g, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "compressed message, but no compression was negotiated");
    /* Unusable afterwards. */
    ASSERT_INT_EQ(grpcf_deframer_feed(&d, compressed, 0, collect, &g, &e), -1);
    grpcf_deframer_free(&d);

    uint8_t flag[] = {0x80, 0, 0, 0, 0};
    grpcf_deframer_init(&d, 1024);
    ASSERT_INT_EQ(grpcf_deframer_feed(&d, flag, sizeof(flag), collect, &g, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "bad message flag 0x80");
    grpcf_deframer_free(&d);

    /* The limit is checked on the prefix, before any body arrives. */
    uint8_t big[5];
    grpcf_prefix(big, 1025);
    grpcf_deframer_init(&d, 1024);
    ASSERT_INT_EQ(grpcf_deframer_feed(&d, big, 3, collect, &g, &e), 0);
    ASSERT_INT_EQ(grpcf_deframer_feed(&d, big + 3, 2, collect, &g, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "message of 1025 bytes exceeds the limit of 1024");
    grpcf_deframer_free(&d);
    ASSERT_INT_EQ(g.n, 0);

    /* A callback error stops the feed and is returned. */
    uint8_t s[64];
    size_t n = three(s);
    struct got full = {.n = 8};
    grpcf_deframer_init(&d, 1024);
    ASSERT_INT_EQ(grpcf_deframer_feed(&d, s, n, collect, &full, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "unexpected message");
    grpcf_deframer_free(&d);
}
