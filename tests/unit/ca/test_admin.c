/*
 * Tests for ca/admin.c: the envoy admin CA, its GlobalSecret value and the
 * certificates it issues, checked with the openssl CLI.
 */
#include "helpers.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca/admin.h"

CA_TEST(admin_ca_issues_verifiable_server_and_client_certs)
{
    char *ca = NULL, *cakey = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_admin_generate(&ca, &cakey, &e), 0);
    char *text = x509_text(ca);
    ASSERT_STR_CONTAINS(text, "O = Kuma, OU = Mesh, CN = Envoy Admin CA");
    ASSERT_STR_CONTAINS(text, "CA:TRUE");
    free(text);

    /* The GlobalSecret value splits back into the same pair. */
    char *value = ca_admin_secret_value(ca, cakey);
    char *c2 = NULL, *k2 = NULL;
    ASSERT_INT_EQ(ca_admin_split(value, strlen(value), &c2, &k2, &e), 0);
    ASSERT_STR_EQ(c2, ca);
    free(c2);
    free(k2);
    ASSERT_INT_EQ(ca_admin_split("garbage", 7, &c2, &k2, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "envoy-admin-ca");
    ASSERT_INT_EQ(ca_admin_split(ca, strlen(ca), &c2, &k2, &e), -1); /* no key */

    const char *host = "10.0.0.7", *client = CA_ADMIN_CLIENT_SAN;
    char *sc = NULL, *sk = NULL, *cc = NULL, *ck = NULL;
    ASSERT_INT_EQ(ca_admin_issue(ca, cakey, 1, &host, 1, &sc, &sk, &e), 0);
    ASSERT_INT_EQ(ca_admin_issue(ca, cakey, 0, &client, 1, &cc, &ck, &e), 0);
    char *cap = tmp_write("admin-ca.pem", ca), *sp = tmp_write("admin-srv.pem", sc),
         *cp = tmp_write("admin-cli.pem", cc);
    int st;
    char *out = sh(&st, "openssl verify -CAfile %s -purpose sslserver %s", cap, sp);
    ASSERT_INT_EQ(st, 0);
    free(out);
    out = sh(&st, "openssl verify -CAfile %s -purpose sslclient %s", cap, cp);
    ASSERT_INT_EQ(st, 0);
    free(out);
    /* A server certificate is not a client one. */
    out = sh(&st, "openssl verify -CAfile %s -purpose sslclient %s", cap, sp);
    ASSERT(st != 0);
    free(out);
    text = x509_text(sc);
    ASSERT_STR_CONTAINS(text, "IP Address:10.0.0.7");
    free(text);
    text = x509_text(cc);
    ASSERT_STR_CONTAINS(text, "DNS:kuma-cp");
    free(text);
    ASSERT_INT_EQ(ca_admin_issue(ca, cakey, 1, NULL, 0, &sc, &sk, &e), -1);
    free(cap);
    free(sp);
    free(cp);
    free(value);
    free(sc);
    free(sk);
    free(cc);
    free(ck);
    free(ca);
    free(cakey);
}

/* ca_admin_issue keeps the last CA it parsed: a certificate must still come
 * from the CA passed in, when the CA changes and when it changes back. Its
 * public key is written from the key's point (not X509_set_pubkey): it must
 * be the public half of the key returned with it. */
CA_TEST(admin_issue_follows_the_ca_passed_in)
{
    char *ca[2] = {NULL, NULL}, *key[2] = {NULL, NULL}, *cap[2];
    struct err e;
    for (int i = 0; i < 2; i++) {
        ASSERT_INT_EQ(ca_admin_generate(&ca[i], &key[i], &e), 0);
        cap[i] = tmp_write(i ? "admin-ca-b.pem" : "admin-ca-a.pem", ca[i]);
    }
    const char *host = "10.0.0.9";
    const int order[4] = {0, 1, 1, 0};
    for (int n = 0; n < 4; n++) {
        int i = order[n];
        char *c = NULL, *k = NULL;
        ASSERT_INT_EQ(ca_admin_issue(ca[i], key[i], 1, &host, 1, &c, &k, &e), 0);
        char *p = tmp_write("admin-leaf.pem", c);
        int st;
        char *out = sh(&st, "openssl verify -CAfile %s %s", cap[i], p);
        ASSERT_INT_EQ(st, 0);
        free(out);
        out = sh(&st, "openssl verify -CAfile %s %s", cap[1 - i], p);
        ASSERT(st != 0);
        free(out);
        /* The certificate carries the public half of the key it came with. */
        char *kp = tmp_write("admin-leaf.key", k);
        char *pub_cert = sh(&st, "openssl x509 -noout -pubkey -in %s", p);
        ASSERT_INT_EQ(st, 0);
        char *pub_key = sh(&st, "openssl pkey -pubout -in %s", kp);
        ASSERT_INT_EQ(st, 0);
        ASSERT_STR_CONTAINS(pub_cert, "BEGIN PUBLIC KEY");
        ASSERT_STR_EQ(pub_cert, pub_key);
        free(pub_cert);
        free(pub_key);
        free(kp);
        char *text = x509_text(c);
        ASSERT_STR_CONTAINS(text, "id-ecPublicKey");
        ASSERT_STR_CONTAINS(text, "P-256");
        free(text);
        free(p);
        free(c);
        free(k);
    }
    /* A CA whose key does not parse is an error, not the cached one. */
    char *c = NULL, *k = NULL;
    ASSERT_INT_EQ(ca_admin_issue(ca[0], "garbage", 1, &host, 1, &c, &k, &e), -1);
    ASSERT_INT_EQ(ca_admin_issue(ca[0], NULL, 1, &host, 1, &c, &k, &e), -1);
    for (int i = 0; i < 2; i++) {
        free(ca[i]);
        free(key[i]);
        free(cap[i]);
    }
}

/* OpenSSL's own traditional PEM of an EC key (what ca_admin_issue wrote
 * before it encoded the key itself). */
static char *openssl_key_pem(const char *pem)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    BIO_free(in);
    if (!k)
        return NULL;
    BIO *out = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (PEM_write_bio_PrivateKey_traditional(out, k, NULL, NULL, 0, NULL, NULL)) {
        char *p = NULL;
        long n = BIO_get_mem_data(out, &p);
        s = xstrndup(p, (size_t)n);
    }
    BIO_free(out);
    EVP_PKEY_free(k);
    return s;
}

/* The leaf's key is written by hand (ca__admin_p256_key_pem): it must be
 * byte for byte what OpenSSL writes for the same key, parse back as the
 * private half of the certificate's public key, and stay so for scalars
 * with leading zero bytes (fixed 32-byte field) and the largest scalar. */
CA_TEST(admin_leaf_key_pem_is_openssls_and_matches_the_cert)
{
    char *ca = NULL, *cakey = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_admin_generate(&ca, &cakey, &e), 0);
    const char *host = "10.1.2.3";
    for (int n = 0; n < 20; n++) {
        char *c = NULL, *k = NULL;
        ASSERT_INT_EQ(ca_admin_issue(ca, cakey, 1, &host, 1, &c, &k, &e), 0);
        ASSERT_STR_CONTAINS(k, "-----BEGIN EC PRIVATE KEY-----\n");
        char *ref = openssl_key_pem(k);
        ASSERT(ref != NULL);
        ASSERT_STR_EQ(k, ref);
        BIO *bc = BIO_new_mem_buf(c, -1), *bk = BIO_new_mem_buf(k, -1);
        X509 *x = PEM_read_bio_X509(bc, NULL, NULL, NULL);
        EVP_PKEY *pk = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
        ASSERT(x != NULL && pk != NULL);
        ASSERT_INT_EQ(X509_check_private_key(x, pk), 1);
        X509_free(x);
        EVP_PKEY_free(pk);
        BIO_free(bc);
        BIO_free(bk);
        free(ref);
        free(c);
        free(k);
    }

    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *d = BN_new(), *nm1 = BN_dup(EC_GROUP_get0_order(g));
    BN_sub_word(nm1, 1);
    const char *scalars[] = {"1", "FF", "0100000000000000000000000000000000000000000000000000"};
    for (int i = 0; i < 4; i++) {
        if (i < 3)
            BN_hex2bn(&d, scalars[i]);
        else
            BN_copy(d, nm1); /* n - 1 */
        EC_POINT *q = EC_POINT_new(g);
        unsigned char priv[32], point[65];
        ASSERT_INT_EQ(EC_POINT_mul(g, q, d, NULL, NULL, NULL), 1);
        ASSERT_INT_EQ((int)EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, point, 65, NULL),
                      65);
        ASSERT_INT_EQ(BN_bn2binpad(d, priv, 32), 32);
        char *k = ca__admin_p256_key_pem(priv, point);
        char *ref = openssl_key_pem(k);
        ASSERT(ref != NULL);
        ASSERT_STR_EQ(k, ref);
        free(ref);
        free(k);
        EC_POINT_free(q);
    }
    BN_free(d);
    BN_free(nm1);
    EC_GROUP_free(g);
    free(ca);
    free(cakey);
}

/* ca_admin_issue writes the leaf from a DER template: for the same key,
 * serial and time its TBSCertificate must be byte for byte what OpenSSL's
 * X509 builder makes, for every kind of host (IPv4, IPv6, DNS names short
 * and long enough for long-form lengths, names that are not PrintableString,
 * several SANs) and for server and client certificates. Serials vary per
 * call (some with the top bit set: a leading zero byte). */
CA_TEST(admin_leaf_template_is_byte_identical_to_openssls)
{
    char *ca = NULL, *cakey = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_admin_generate(&ca, &cakey, &e), 0);
    char long_name[254];
    memset(long_name, 'a', 253);
    long_name[253] = 0;
    for (int i = 60; i < 253; i += 61)
        long_name[i] = '.';
    const char *one[][3] = {
        {"10.0.0.7", NULL, NULL},
        {"fd00::1:2", NULL, NULL},
        {"kuma-cp", NULL, NULL},
        {"svc_1.example", NULL, NULL}, /* '_' is not PrintableString */
        {"host.with*star&amp", NULL, NULL},
        {long_name, NULL, NULL},
        {"web.mesh", "10.1.2.3", "::1"},
    };
    for (size_t c = 0; c < sizeof(one) / sizeof(one[0]); c++) {
        size_t nh = one[c][2] ? 3 : 1;
        for (int server = 0; server < 2; server++) {
            for (int rep = 0; rep < 8; rep++) {
                unsigned char *ref = NULL, *tmpl = NULL;
                size_t rl = 0, tl = 0;
                ASSERT_INT_EQ(
                    ca__admin_tbs_pair(ca, cakey, server, one[c], nh, &ref, &rl, &tmpl, &tl, &e),
                    0);
                ASSERT_INT_EQ((int)tl, (int)rl);
                ASSERT(memcmp(ref, tmpl, rl) == 0);
                free(ref);
                free(tmpl);
            }
        }
    }
    /* And a whole certificate from the template verifies under the CA, with
     * the key it came with. */
    const char *host = long_name;
    char *c = NULL, *k = NULL;
    ASSERT_INT_EQ(ca_admin_issue(ca, cakey, 1, &host, 1, &c, &k, &e), 0);
    char *cap = tmp_write("admin-ca-t.pem", ca), *lp = tmp_write("admin-leaf-t.pem", c);
    int st;
    char *out = sh(&st, "openssl verify -CAfile %s -purpose sslserver %s", cap, lp);
    ASSERT_INT_EQ(st, 0);
    free(out);
    BIO *bc = BIO_new_mem_buf(c, -1), *bk = BIO_new_mem_buf(k, -1);
    X509 *x = PEM_read_bio_X509(bc, NULL, NULL, NULL);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
    ASSERT(x != NULL && pk != NULL);
    ASSERT_INT_EQ(X509_check_private_key(x, pk), 1);
    /* OpenSSL re-encodes it to the same PEM (nothing non-canonical). */
    BIO *o = BIO_new(BIO_s_mem());
    ASSERT_INT_EQ(PEM_write_bio_X509(o, x), 1);
    char *pp = NULL;
    long pn = BIO_get_mem_data(o, &pp);
    ASSERT_INT_EQ((int)pn, (int)strlen(c));
    ASSERT(memcmp(pp, c, (size_t)pn) == 0);
    BIO_free(o);
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(bc);
    BIO_free(bk);
    free(cap);
    free(lp);
    free(c);
    free(k);
    free(ca);
    free(cakey);
}

/* A CA the template does not fit (an RSA key, as a GlobalSecret may hold)
 * still issues through OpenSSL's builder, verifiable under that CA. */
CA_TEST(admin_issue_under_an_rsa_ca)
{
    char *kp = xasprintf("%s/rsa-ca.key", test_tmpdir()),
         *cp = xasprintf("%s/rsa-ca.pem", test_tmpdir());
    int st;
    char *out = sh(&st,
                   "openssl req -x509 -newkey rsa:2048 -nodes -subj '/O=Kuma/CN=RSA Admin CA' "
                   "-keyout %s -out %s -days 2 2>&1",
                   kp, cp);
    ASSERT_INT_EQ(st, 0);
    free(out);
    size_t n;
    struct err e;
    char *ca = read_file(cp, 1 << 20, &n, &e), *key = read_file(kp, 1 << 20, &n, &e);
    ASSERT(ca != NULL && key != NULL);
    const char *host = "10.9.8.7";
    char *c = NULL, *k = NULL;
    ASSERT_INT_EQ(ca_admin_issue(ca, key, 1, &host, 1, &c, &k, &e), 0);
    char *lp = tmp_write("rsa-leaf.pem", c);
    out = sh(&st, "openssl verify -CAfile %s -purpose sslserver %s", cp, lp);
    ASSERT_INT_EQ(st, 0);
    free(out);
    char *text = x509_text(c);
    ASSERT_STR_CONTAINS(text, "sha256WithRSAEncryption");
    ASSERT_STR_CONTAINS(text, "IP Address:10.9.8.7");
    free(text);
    free(lp);
    free(c);
    free(k);
    free(ca);
    free(key);
    free(kp);
    free(cp);
}
