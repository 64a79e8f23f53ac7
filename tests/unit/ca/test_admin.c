/*
 * Tests for ca/admin.c: the envoy admin CA, its GlobalSecret value and the
 * certificates it issues, checked with the openssl CLI.
 */
#include "helpers.h"

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
