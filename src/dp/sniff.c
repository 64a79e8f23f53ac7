/*
 * sniff — see sniff.h. Layout (RFC 8446 4.1.2, RFC 7301): record header
 * {type 0x16, version 3.x, length}, handshake {type 1, length (3)},
 * ClientHello {version (2), random (32), session_id <1>, cipher_suites <2>,
 * compression_methods <1>, extensions <2> {type (2), data <2>}}, ALPN
 * extension 16: protocol_name_list <2> of names <1>.
 */
#include "dp/sniff.h"

#include <string.h>

struct rd {
    const unsigned char *p;
    size_t n;
};

static int take(struct rd *r, size_t k, const unsigned char **out)
{
    if (r->n < k)
        return -1;
    if (out)
        *out = r->p;
    r->p += k;
    r->n -= k;
    return 0;
}

static int u8(struct rd *r, size_t *v)
{
    const unsigned char *b;
    if (take(r, 1, &b) < 0)
        return -1;
    *v = b[0];
    return 0;
}

static int u16(struct rd *r, size_t *v)
{
    const unsigned char *b;
    if (take(r, 2, &b) < 0)
        return -1;
    *v = (size_t)b[0] << 8 | b[1];
    return 0;
}

/* A length-prefixed block (prefix of 1 or 2 bytes) as a sub-reader. */
static int block(struct rd *r, int prefix, struct rd *out)
{
    size_t len;
    if ((prefix == 1 ? u8(r, &len) : u16(r, &len)) < 0)
        return -1;
    out->n = len;
    return take(r, len, &out->p);
}

static int alpn_has_kuma(struct rd ext)
{
    struct rd list;
    if (block(&ext, 2, &list) < 0)
        return 0;
    while (list.n > 0) {
        struct rd name;
        if (block(&list, 1, &name) < 0)
            return 0;
        if (name.n == 4 && memcmp(name.p, "kuma", 4) == 0)
            return 1;
    }
    return 0;
}

enum dp_sniff dp_sniff_classify(const unsigned char *p, size_t n, int eof)
{
    if (n == 0)
        return eof ? DP_SNIFF_RAW : DP_SNIFF_MORE;
    if (p[0] != 0x16)
        return DP_SNIFF_RAW;
    if (n < 3)
        return eof ? DP_SNIFF_RAW : DP_SNIFF_MORE;
    if (p[1] != 3)
        return DP_SNIFF_RAW; /* not an SSL 3 / TLS record */
    if (n < 5)
        return eof ? DP_SNIFF_TLS : DP_SNIFF_MORE;
    size_t len = (size_t)p[3] << 8 | p[4];
    if (len > DP_SNIFF_MAX - 5)
        return DP_SNIFF_TLS;
    if (n < 5 + len && !eof)
        return DP_SNIFF_MORE;
    struct rd r = {p + 5, n - 5 < len ? n - 5 : len};
    size_t type, v;
    const unsigned char *hl;
    if (u8(&r, &type) < 0 || type != 1 || take(&r, 3, &hl) < 0)
        return DP_SNIFF_TLS;
    size_t hlen = (size_t)hl[0] << 16 | (size_t)hl[1] << 8 | hl[2];
    if (hlen < r.n)
        r.n = hlen;
    struct rd skip, exts;
    if (take(&r, 2 + 32, NULL) < 0 || block(&r, 1, &skip) < 0 || block(&r, 2, &skip) < 0 ||
        block(&r, 1, &skip) < 0 || block(&r, 2, &exts) < 0)
        return DP_SNIFF_TLS;
    while (exts.n > 0) {
        struct rd data;
        if (u16(&exts, &v) < 0 || block(&exts, 2, &data) < 0)
            break;
        if (v == 16)
            return alpn_has_kuma(data) ? DP_SNIFF_TLS_KUMA : DP_SNIFF_TLS;
    }
    return DP_SNIFF_TLS;
}
