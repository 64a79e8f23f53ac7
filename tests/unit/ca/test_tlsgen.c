/*
 * Tests for tlsgen.c: kumactl's tls-certificate errors and layout, and the
 * control plane's own certificate, checked with the openssl CLI.
 */
#include "helpers.h"

#include "ca/tlsgen.h"
#include "ca/workload.h"

#define NS 1000000000LL

CA_TEST(tlsgen_errors_in_kumas_order)
{
    const char *hosts[] = {"localhost"};
    char *c = NULL, *k = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_generate_tls_cert("x", hosts, 1, "", &c, &k, &e), -1);
    ASSERT_STR_EQ(e.msg, "invalid certificate type \"x\"");
    /* The type is checked before the hostnames. */
    ASSERT_INT_EQ(ca_generate_tls_cert("", NULL, 0, "", &c, &k, &e), -1);
    ASSERT_STR_EQ(e.msg, "invalid certificate type \"\"");
    ASSERT_INT_EQ(ca_generate_tls_cert(NULL, NULL, 0, "", &c, &k, &e), -1);
    ASSERT_STR_EQ(e.msg, "invalid certificate type \"\"");
    ASSERT_INT_EQ(ca_generate_tls_cert("server", NULL, 0, "", &c, &k, &e), -1);
    ASSERT_STR_EQ(e.msg, "at least one hostname must be given");
    ASSERT_INT_EQ(ca_generate_tls_cert("client", hosts, 1, "dsa", &c, &k, &e), -1);
    ASSERT_STR_EQ(e.msg, "invalid key type \"dsa\"");
    const char *bad[] = {"bad host"};
    ASSERT_INT_EQ(ca_generate_tls_cert("server", bad, 1, "ecdsa", &c, &k, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not generate certificate: invalid hostname \"bad host\"");
    ASSERT(!c && !k);
}

CA_TEST(tlsgen_server_rsa_default)
{
    const char *hosts[] = {"localhost", "127.0.0.1", "cp.example.com", "::1"};
    char *c = NULL, *k = NULL;
    struct err e;
    int64_t before = now_ns();
    ASSERT_INT_EQ(ca_generate_tls_cert("server", hosts, 4, "", &c, &k, &e), 0);
    ASSERT(str_has_prefix(k, "-----BEGIN RSA PRIVATE KEY-----"));
    char *t = x509_text(c);
    ASSERT_STR_CONTAINS(t, "Subject: \n");
    ASSERT_STR_CONTAINS(t, "Public-Key: (2048 bit)");
    ASSERT_STR_CONTAINS(t, "X509v3 Key Usage: critical\n                Digital Signature, Key "
                           "Encipherment, Certificate Sign\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Extended Key Usage: \n                TLS Web Server "
                           "Authentication\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Basic Constraints: critical\n                CA:TRUE\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Subject Key Identifier:");
    ASSERT_STR_CONTAINS(t, "X509v3 Subject Alternative Name: critical\n                "
                           "DNS:localhost, IP Address:127.0.0.1, DNS:cp.example.com, IP "
                           "Address:0:0:0:0:0:0:0:1\n");
    int64_t nb, na;
    ASSERT_INT_EQ(ca_cert_validity(c, &nb, &na, &e), 0);
    ASSERT(nb <= before - 299 * NS && nb >= before - 301 * NS);
    ASSERT_INT_EQ(na - nb, 10LL * 365 * 86400 * NS);
    /* Its own trust anchor, valid for the names it carries. */
    char *p = tmp_write("srv.pem", c);
    int st;
    char *o = sh(&st, "openssl verify -CAfile '%s' -verify_hostname cp.example.com '%s'", p, p);
    ASSERT_INT_EQ(st, 0);
    free(o);
    o = sh(&st, "openssl verify -CAfile '%s' -verify_ip 127.0.0.1 -purpose sslserver '%s'", p, p);
    ASSERT_INT_EQ(st, 0);
    free(o);
    o = sh(&st, "openssl verify -CAfile '%s' -verify_hostname other.example.com '%s'", p, p);
    ASSERT(st != 0);
    free(o);
    free(p);
    free(t);
    free(c), free(k);
}

CA_TEST(tlsgen_client_ecdsa)
{
    const char *hosts[] = {"dataplane-1"};
    char *c = NULL, *k = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_generate_tls_cert("client", hosts, 1, "ecdsa", &c, &k, &e), 0);
    ASSERT(str_has_prefix(k, "-----BEGIN EC PRIVATE KEY-----"));
    char *t = x509_text(c);
    ASSERT_STR_CONTAINS(t, "TLS Web Client Authentication\n");
    ASSERT(!strstr(t, "TLS Web Server Authentication"));
    ASSERT_STR_CONTAINS(t, "Signature Algorithm: ecdsa-with-SHA256");
    ASSERT_STR_CONTAINS(t, "DNS:dataplane-1\n");
    char *p = tmp_write("cli.pem", c);
    int st;
    char *o = sh(&st, "openssl verify -CAfile '%s' -purpose sslclient '%s'", p, p);
    ASSERT_INT_EQ(st, 0);
    free(o);
    free(p);
    free(t);
    free(c), free(k);
}

CA_TEST(tlsgen_control_plane_cert)
{
    char *c = NULL, *k = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_generate_cp_cert("cp-host", CA_KEY_DEFAULT, &c, &k, &e), 0);
    ASSERT(str_has_prefix(k, "-----BEGIN EC PRIVATE KEY-----"));
    char *t = x509_text(c);
    ASSERT_STR_CONTAINS(t, "DNS:cp-host, DNS:localhost");
    ASSERT_STR_CONTAINS(t, "IP Address:127.0.0.1");
    ASSERT_STR_CONTAINS(t, "TLS Web Server Authentication");
    char *p = tmp_write("cp.pem", c);
    int st;
    char *o =
        sh(&st, "openssl verify -CAfile '%s' -verify_hostname localhost -purpose sslserver '%s'", p,
           p);
    ASSERT_INT_EQ(st, 0);
    free(o);
    free(p);
    free(t);
    free(c), free(k);
    /* The machine's own name by default. */
    ASSERT_INT_EQ(ca_generate_cp_cert(NULL, CA_KEY_ECDSA_P256, &c, &k, &e), 0);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    t = x509_text(c);
    char *want = xasprintf("DNS:%s, DNS:localhost", host);
    ASSERT_STR_CONTAINS(t, want);
    free(want);
    free(t);
    free(c), free(k);
}
