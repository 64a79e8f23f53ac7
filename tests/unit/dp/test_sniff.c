/*
 * kuma-dp's tls_inspector (dp/sniff.c) on real ClientHellos made by
 * OpenSSL: ALPN kuma, other ALPN, none; every prefix; plaintext; garbage.
 */
#include <openssl/ssl.h>
#include <string.h>

#include "core/util.h"
#include "dp/sniff.h"
#include "test.h"

/* The first flight of an OpenSSL client offering alpn (wire format or NULL). */
static size_t client_hello(const unsigned char *alpn, unsigned alpn_len, unsigned char *out,
                           size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "backend{mesh=default}");
    if (alpn)
        SSL_set_alpn_protos(ssl, alpn, alpn_len);
    ASSERT(SSL_do_handshake(ssl) <= 0);
    int n = BIO_read(wb, out, (int)cap);
    ASSERT(n > 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return (size_t)n;
}

TEST(dp_sniff_client_hellos)
{
    unsigned char buf[DP_SNIFF_MAX];
    static const unsigned char kuma[] = "\x04kuma";
    static const unsigned char h2[] = "\x02h2\x08http/1.1";
    static const unsigned char both[] = "\x02h2\x04kuma";
    size_t n = client_hello(kuma, 5, buf, sizeof(buf));
    ASSERT_INT_EQ(dp_sniff_classify(buf, n, 0), DP_SNIFF_TLS_KUMA);
    /* Every strict prefix asks for more, or decides TLS at EOF. */
    for (size_t k = 1; k < n; k++) {
        ASSERT_INT_EQ(dp_sniff_classify(buf, k, 0), DP_SNIFF_MORE);
        enum dp_sniff at_eof = dp_sniff_classify(buf, k, 1);
        ASSERT(at_eof == DP_SNIFF_TLS || at_eof == DP_SNIFF_RAW);
    }
    /* Bytes after the record (a second flight) change nothing. */
    memset(buf + n, 0x17, 64);
    ASSERT_INT_EQ(dp_sniff_classify(buf, n + 64, 0), DP_SNIFF_TLS_KUMA);
    n = client_hello(both, 8, buf, sizeof(buf));
    ASSERT_INT_EQ(dp_sniff_classify(buf, n, 0), DP_SNIFF_TLS_KUMA);
    n = client_hello(h2, 12, buf, sizeof(buf));
    ASSERT_INT_EQ(dp_sniff_classify(buf, n, 0), DP_SNIFF_TLS);
    n = client_hello(NULL, 0, buf, sizeof(buf));
    ASSERT_INT_EQ(dp_sniff_classify(buf, n, 0), DP_SNIFF_TLS);
}

TEST(dp_sniff_plaintext_and_garbage)
{
    ASSERT_INT_EQ(dp_sniff_classify((const unsigned char *)"GET / HTTP/1.1\r\n", 16, 0),
                  DP_SNIFF_RAW);
    ASSERT_INT_EQ(dp_sniff_classify((const unsigned char *)"x", 1, 0), DP_SNIFF_RAW);
    ASSERT_INT_EQ(dp_sniff_classify(NULL, 0, 0), DP_SNIFF_MORE);
    ASSERT_INT_EQ(dp_sniff_classify(NULL, 0, 1), DP_SNIFF_RAW);
    /* 0x16 but not a TLS version: plaintext. */
    ASSERT_INT_EQ(dp_sniff_classify((const unsigned char *)"\x16\x09\x01", 3, 0), DP_SNIFF_RAW);
    /* A handshake record that is not a ClientHello, or lies about lengths. */
    static const unsigned char notch[] = {0x16, 3, 1, 0, 4, 2, 0, 0, 0};
    ASSERT_INT_EQ(dp_sniff_classify(notch, sizeof(notch), 0), DP_SNIFF_TLS);
    static const unsigned char liar[] = {0x16, 3, 1, 0, 8, 1, 0xff, 0xff, 0xff, 3, 3, 0, 0};
    ASSERT_INT_EQ(dp_sniff_classify(liar, sizeof(liar), 1), DP_SNIFF_TLS);
    static const unsigned char huge[] = {0x16, 3, 1, 0xff, 0xff};
    ASSERT_INT_EQ(dp_sniff_classify(huge, sizeof(huge), 0), DP_SNIFF_TLS);
}
