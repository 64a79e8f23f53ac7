/*
 * Tests for ca.c: Kuma's duration grammar, the builtin CA (checked with the
 * openssl CLI), DataSources, and provided-CA validation with Kuma's messages
 * over certificates made by the openssl CLI.
 */
#include "helpers.h"

#include <jansson.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/workload.h"
#include "core/verr.h"

#define NS 1000000000LL

/* ---- helpers --------------------------------------------------------------- */

/* A self-signed certificate from the openssl CLI with the given extension
 * lines (may be "" for none) and key algorithm ("ec" or "rsa"). */
static void mk_cert(const char *ext_lines, const char *alg, char **cert, char **key)
{
    char *cnf_body = xasprintf("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = test\n"
                               "[ext]\n%s\n",
                               *ext_lines ? ext_lines : "subjectKeyIdentifier = none");
    char *cnf = tmp_write("mk.cnf", cnf_body);
    char *dir = xasprintf("%s", test_tmpdir());
    int st = 0;
    char *out = sh(&st,
                   "openssl req -x509 -config '%s' -extensions ext -newkey %s -nodes "
                   "-keyout '%s/mk.key' -out '%s/mk.crt' -days 1",
                   cnf, strcmp(alg, "ec") == 0 ? "ec -pkeyopt ec_paramgen_curve:P-256" : "rsa:2048",
                   dir, dir);
    if (st != 0)
        TEST_FAIL_("openssl req: %s", out);
    struct err e;
    size_t n;
    char *kp = xasprintf("%s/mk.key", dir), *cp = xasprintf("%s/mk.crt", dir);
    *key = read_file(kp, 1 << 20, &n, &e);
    *cert = read_file(cp, 1 << 20, &n, &e);
    ASSERT(*key && *cert);
    free(kp);
    free(cp);
    free(out);
    free(dir);
    free(cnf);
    free(cnf_body);
}

static char *validate(const char *cert, const char *key)
{
    struct verr ve = {0};
    ca_provided_validate(cert, key, &ve);
    char *s = verr_join(&ve);
    verr_free(&ve);
    return s;
}

static void builtin(const char *mesh, const char *conf_json, enum ca_key_type kt, char **cert,
                    char **key)
{
    json_t *conf = conf_json ? json_loads(conf_json, 0, NULL) : NULL;
    struct err e;
    if (ca_builtin_generate(mesh, conf, kt, cert, key, &e) != 0)
        TEST_FAIL_("ca_builtin_generate: %s", e.msg);
    json_decref(conf);
}

/* ---- durations --------------------------------------------------------------- */

CA_TEST(ca_duration_units)
{
    struct {
        const char *s;
        int64_t ns;
    } ok[] = {{"0", 0},
              {"7ms", 7000000LL},
              {"6s", 6 * NS},
              {"5m", 300 * NS},
              {"4h", 4 * 3600 * NS},
              {"3d", 3 * 86400 * NS},
              {"2w", 14 * 86400 * NS},
              {"10y", 3650 * 86400 * NS}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        struct err e;
        ASSERT_INT_EQ(ca_parse_duration(ok[i].s, &v, &e), 0);
        ASSERT_INT_EQ(v, ok[i].ns);
    }
}

CA_TEST(ca_duration_errors)
{
    const char *bad[] = {"", "1", "1x", "-1s", "1.5h", "h", "1 h", "1hh", "0s0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 42;
        struct err e;
        ASSERT_INT_EQ(ca_parse_duration(bad[i], &v, &e), -1);
        ASSERT_INT_EQ(v, 42);
        char *want = xasprintf("not a valid duration string: \"%s\"", bad[i]);
        ASSERT_STR_EQ(e.msg, want);
        free(want);
    }
    struct err e;
    int64_t v;
    ASSERT_INT_EQ(ca_parse_duration("99999999999999999999y", &v, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "too large");
    ASSERT_INT_EQ(ca_parse_duration("290y", &v, &e), 0); /* still fits in int64 ns */
    ASSERT_INT_EQ(ca_parse_duration("300y", &v, &e), -1);
}

CA_TEST(ca_names_and_key_types)
{
    char *c = ca_builtin_cert_secret_name("default", "ca-1");
    char *k = ca_builtin_key_secret_name("default", "ca-1");
    ASSERT_STR_EQ(c, "default.ca-builtin-cert-ca-1");
    ASSERT_STR_EQ(k, "default.ca-builtin-key-ca-1");
    free(c);
    free(k);
    enum ca_key_type t = CA_KEY_DEFAULT;
    ASSERT_INT_EQ(ca_key_type_parse("rsa", &t), 0);
    ASSERT_INT_EQ(t, CA_KEY_RSA);
    ASSERT_INT_EQ(ca_key_type_parse("ecdsa", &t), 0);
    ASSERT_INT_EQ(t, CA_KEY_ECDSA_P256);
    ASSERT_INT_EQ(ca_key_type_parse("dsa", &t), -1);
    ASSERT_INT_EQ(ca_key_type_parse(NULL, &t), -1);
}

/* ---- builtin CA ---------------------------------------------------------------- */

CA_TEST(ca_builtin_default_is_kumas_root)
{
    char *cert = NULL, *key = NULL;
    int64_t before = now_ns();
    builtin("mesh-1", NULL, CA_KEY_DEFAULT, &cert, &key);
    int64_t after = now_ns();

    ASSERT(str_has_prefix(key, "-----BEGIN RSA PRIVATE KEY-----"));
    char *t = x509_text(cert);
    ASSERT_STR_CONTAINS(t, "Version: 3 (0x2)");
    ASSERT_STR_CONTAINS(t, "Serial Number: 0 (0x0)");
    ASSERT_STR_CONTAINS(t, "Issuer: O = Kuma, OU = Mesh, CN = mesh-1\n");
    ASSERT_STR_CONTAINS(t, "Subject: O = Kuma, OU = Mesh, CN = mesh-1\n");
    ASSERT_STR_CONTAINS(t, "Public-Key: (2048 bit)");
    ASSERT_STR_CONTAINS(t, "Signature Algorithm: sha256WithRSAEncryption");
    ASSERT_STR_CONTAINS(t,
                        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Basic Constraints: critical\n                CA:TRUE\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Subject Key Identifier:");
    ASSERT_STR_CONTAINS(t,
                        "X509v3 Subject Alternative Name: \n                URI:spiffe://mesh-1\n");
    ASSERT(!strstr(t, "Authority Key Identifier"));
    ASSERT(!strstr(t, "Extended Key Usage"));
    /* Go's order: KeyUsage, BasicConstraints, SubjectKeyId, SAN. */
    ASSERT(strstr(t, "Key Usage") < strstr(t, "Basic Constraints"));
    ASSERT(strstr(t, "Basic Constraints") < strstr(t, "Subject Key Identifier"));
    ASSERT(strstr(t, "Subject Key Identifier") < strstr(t, "Subject Alternative Name"));

    int64_t nb, na;
    struct err e;
    ASSERT_INT_EQ(ca_cert_validity(cert, &nb, &na, &e), 0);
    ASSERT(nb >= before / NS * NS - 11 * NS && nb <= after - 9 * NS);
    int64_t ten_years = 10LL * 365 * 86400 * NS;
    ASSERT(na - nb >= ten_years + 9 * NS && na - nb <= ten_years + 12 * NS);

    /* Names are PrintableString, as Go writes them. */
    char *path = tmp_write("root.pem", cert);
    int st;
    char *asn = sh(&st, "openssl asn1parse -in '%s' | grep -c 'PRINTABLESTRING'", path);
    ASSERT_INT_EQ(atoi(asn), 6); /* issuer and subject, 3 each */

    /* Self-signed and usable as a trust anchor; the key matches the certificate. */
    ASSERT_INT_EQ(ossl_verify(cert, cert, NULL), 0);
    char *kp = tmp_write("root.key", key);
    char *m = sh(&st,
                 "bash -c \"cmp <(openssl x509 -noout -pubkey -in '%s') <(openssl pkey -pubout -in "
                 "'%s') && echo same\"",
                 path, kp);
    ASSERT_STR_CONTAINS(m, "same");
    free(m);
    free(kp);
    free(asn);
    free(path);
    free(t);
    free(cert);
    free(key);
}

CA_TEST(ca_builtin_conf_expiration_and_bits)
{
    char *cert = NULL, *key = NULL;
    builtin("m", "{\"caCert\": {\"RSAbits\": 1024, \"expiration\": \"1d\"}}", CA_KEY_DEFAULT, &cert,
            &key);
    char *t = x509_text(cert);
    ASSERT_STR_CONTAINS(t, "Public-Key: (1024 bit)");
    int64_t nb, na;
    struct err e;
    ASSERT_INT_EQ(ca_cert_validity(cert, &nb, &na, &e), 0);
    ASSERT(na - nb >= 86400 * NS + 9 * NS && na - nb <= 86400 * NS + 12 * NS);
    free(t);
    free(cert);
    free(key);
    /* RSAbits as a numeric string (protobuf JSON allows it) and 0 meaning the default. */
    builtin("m", "{\"caCert\": {\"RSAbits\": \"0\"}}", CA_KEY_DEFAULT, &cert, &key);
    t = x509_text(cert);
    ASSERT_STR_CONTAINS(t, "Public-Key: (2048 bit)");
    free(t);
    free(cert);
    free(key);
}

CA_TEST(ca_builtin_ecdsa_extension)
{
    char *cert = NULL, *key = NULL;
    builtin("ecmesh", "{\"caCert\": {\"keyType\": \"ecdsa\"}}", CA_KEY_DEFAULT, &cert, &key);
    ASSERT(str_has_prefix(key, "-----BEGIN EC PRIVATE KEY-----"));
    char *t = x509_text(cert);
    ASSERT_STR_CONTAINS(t, "ASN1 OID: prime256v1");
    ASSERT_STR_CONTAINS(t, "Signature Algorithm: ecdsa-with-SHA256");
    ASSERT_STR_CONTAINS(t, "URI:spiffe://ecmesh");
    free(t);
    free(cert);
    free(key);
    /* The parameter overrides the conf. */
    builtin("ecmesh", "{\"caCert\": {\"keyType\": \"rsa\"}}", CA_KEY_ECDSA_P256, &cert, &key);
    ASSERT(str_has_prefix(key, "-----BEGIN EC PRIVATE KEY-----"));
    free(cert);
    free(key);
}

CA_TEST(ca_builtin_rejects_bad_input)
{
    char *cert = NULL, *key = NULL;
    struct err e;
    json_t *conf = json_loads("{\"caCert\": {\"expiration\": \"10 years\"}}", 0, NULL);
    ASSERT_INT_EQ(ca_builtin_generate("m", conf, CA_KEY_DEFAULT, &cert, &key, &e), -1);
    ASSERT_STR_EQ(e.msg, "not a valid duration string: \"10 years\"");
    ASSERT(!cert && !key);
    json_decref(conf);
    ASSERT_INT_EQ(ca_builtin_generate("bad/mesh", NULL, CA_KEY_DEFAULT, &cert, &key, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "SPIFFE trust domain");
    ASSERT_INT_EQ(ca_builtin_generate("", NULL, CA_KEY_DEFAULT, &cert, &key, &e), -1);
    ASSERT_INT_EQ(ca_builtin_generate(NULL, NULL, CA_KEY_DEFAULT, &cert, &key, &e), -1);
    conf = json_loads("[1]", 0, NULL);
    ASSERT_INT_EQ(ca_builtin_generate("m", conf, CA_KEY_DEFAULT, &cert, &key, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "could not convert backend config");
    json_decref(conf);
    conf = json_loads("{\"caCert\": {\"RSAbits\": 100000}}", 0, NULL);
    ASSERT_INT_EQ(ca_builtin_generate("m", conf, CA_KEY_DEFAULT, &cert, &key, &e), -1);
    ASSERT_STR_EQ(e.msg, "caCert.RSAbits: must be between 1024 and 8192");
    json_decref(conf);
    ASSERT(!cert && !key);
}

CA_TEST(ca_builtin_validate_conf_violations)
{
    json_t *conf = json_loads("{\"caCert\": {\"RSAbits\": 12, \"expiration\": \"x\", "
                              "\"keyType\": \"dsa\"}}",
                              0, NULL);
    struct verr ve = {0};
    ca_builtin_validate_conf(conf, &ve);
    char *s = verr_join(&ve);
    ASSERT_STR_EQ(s, "caCert.RSAbits: must be between 1024 and 8192; caCert.expiration: not a "
                     "valid duration string: \"x\"; caCert.keyType: must be one of: rsa, ecdsa");
    free(s);
    verr_free(&ve);
    json_decref(conf);
    ca_builtin_validate_conf(NULL, &ve);
    ASSERT(verr_empty(&ve));
    conf = json_loads("{\"caCert\": {\"RSAbits\": 4096, \"expiration\": \"5y\"}}", 0, NULL);
    ca_builtin_validate_conf(conf, &ve);
    ASSERT(verr_empty(&ve));
    json_decref(conf);
}

/* ---- provided CA: validation ----------------------------------------------------- */

CA_TEST(ca_provided_accepts_builtin_and_openssl_cas)
{
    char *cert, *key;
    builtin("m", NULL, CA_KEY_ECDSA_P256, &cert, &key);
    char *s = validate(cert, key);
    ASSERT_STR_EQ(s, "");
    free(s);
    free(cert);
    free(key);
    mk_cert("basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign", "rsa",
            &cert, &key);
    s = validate(cert, key);
    ASSERT_STR_EQ(s, "");
    free(s);
    free(cert);
    free(key);
}

CA_TEST(ca_provided_empty_and_garbage)
{
    char *s = validate(NULL, NULL);
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: failed to find any PEM data in "
                     "certificate input");
    free(s);
    s = validate("CERT", "KEY");
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: failed to find any PEM data in "
                     "certificate input");
    free(s);
    s = validate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "KEY");
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: failed to find any PEM data in key "
                     "input");
    free(s);
    /* Base64 that is not a certificate. */
    char *cert, *key;
    builtin("m", NULL, CA_KEY_ECDSA_P256, &cert, &key);
    s = validate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key);
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: x509: malformed certificate");
    free(s);
    s = validate(cert, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: failed to parse private key");
    free(s);
    free(cert);
    free(key);
}

CA_TEST(ca_provided_switched_and_mismatched)
{
    char *c1, *k1, *c2, *k2, *c3, *k3;
    builtin("a", NULL, CA_KEY_ECDSA_P256, &c1, &k1);
    builtin("b", NULL, CA_KEY_ECDSA_P256, &c2, &k2);
    builtin("c", "{\"caCert\": {\"RSAbits\": 1024}}", CA_KEY_RSA, &c3, &k3);
    char *s = validate(c1, k2);
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: private key does not match public key");
    free(s);
    s = validate(c1, k3);
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: private key type does not match public "
                     "key type");
    free(s);
    s = validate(k1, c1);
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: failed to find certificate PEM data in "
                     "certificate input, but did find a private key; PEM inputs may have been "
                     "switched");
    free(s);
    s = validate(c1, c1);
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: found a certificate rather than a key "
                     "in the PEM for the private key");
    free(s);
    char *two = xasprintf("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n%s", k1);
    s = validate(two, k1);
    ASSERT_STR_EQ(s, "cert: not a valid TLS key pair: tls: failed to find \"CERTIFICATE\" PEM "
                     "block in certificate input after skipping PEM blocks of the following "
                     "types: [FOO EC PRIVATE KEY]");
    free(s);
    free(two);
    free(c1), free(k1), free(c2), free(k2), free(c3), free(k3);
}

CA_TEST(ca_provided_not_a_ca)
{
    char *cert, *key;
    mk_cert("", "ec", &cert, &key);
    char *t = x509_text(cert);
    ASSERT(!strstr(t, "X509v3"));
    free(t);
    char *s = validate(cert, key);
    ASSERT_STR_EQ(s, "cert[0]: basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. "
                     "Basic Constraints); cert[0]: key usage extension 'keyCertSign' must be set "
                     "(see X509-SVID: 4.3. Key Usage)");
    free(s);
    free(cert);
    free(key);
}

CA_TEST(ca_provided_missing_keycertsign)
{
    char *cert, *key;
    mk_cert("basicConstraints = critical,CA:TRUE\nsubjectKeyIdentifier = none", "ec", &cert, &key);
    char *s = validate(cert, key);
    ASSERT_STR_EQ(s, "cert[0]: key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. "
                     "Key Usage)");
    free(s);
    free(cert);
    free(key);
}

CA_TEST(ca_provided_key_agreement)
{
    char *cert, *key;
    mk_cert("basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign,"
            "keyAgreement",
            "ec", &cert, &key);
    char *s = validate(cert, key);
    ASSERT_STR_EQ(s, "cert[0]: key usage extension 'keyAgreement' must NOT be set (see X509-SVID: "
                     "Appendix A. X.509 Field Reference)");
    free(s);
    free(cert);
    free(key);
}

CA_TEST(ca_provided_multiple_violations)
{
    char *cert, *key;
    mk_cert("basicConstraints = CA:FALSE\nkeyUsage = digitalSignature,keyAgreement,"
            "keyEncipherment",
            "rsa", &cert, &key);
    char *s = validate(cert, key);
    ASSERT_STR_EQ(s, "cert[0]: basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. "
                     "Basic Constraints); cert[0]: key usage extension 'keyCertSign' must be set "
                     "(see X509-SVID: 4.3. Key Usage); cert[0]: key usage extension "
                     "'keyAgreement' must NOT be set (see X509-SVID: Appendix A. X.509 Field "
                     "Reference)");
    free(s);
    free(cert);
    free(key);
}

CA_TEST(ca_provided_checks_every_cert_of_a_chain)
{
    char *cert, *key, *leaf, *lkey;
    builtin("m", NULL, CA_KEY_ECDSA_P256, &cert, &key);
    json_t *tags = json_pack("{s:s}", "kuma.io/service", "web");
    struct err e;
    ASSERT_INT_EQ(ca_issue_workload_cert(cert, key, "m", tags, 0, CA_KEY_DEFAULT, &leaf, &lkey, &e),
                  0);
    char *chain = xasprintf("%s%s", cert, leaf);
    char *s = validate(chain, key);
    ASSERT_STR_EQ(s, "cert[1]: basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. "
                     "Basic Constraints); cert[1]: key usage extension 'keyCertSign' must be set "
                     "(see X509-SVID: 4.3. Key Usage); cert[1]: key usage extension "
                     "'keyAgreement' must NOT be set (see X509-SVID: Appendix A. X.509 Field "
                     "Reference)");
    free(s);
    free(chain);
    json_decref(tags);
    free(cert), free(key), free(leaf), free(lkey);
}

CA_TEST(ca_provided_oversized_input)
{
    size_t n = CA_PEM_MAX + 10;
    char *big = xmalloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    char *s = validate(big, "x");
    ASSERT_STR_CONTAINS(s, "cert: not a valid TLS key pair: input larger than");
    free(s);
    free(big);
}

/* ---- DataSources and the provided backend ------------------------------------------ */

struct secrets {
    const char *names[4];
    const char *values[4];
    int fail;
};

static int fetch(void *ud, const char *mesh, const char *name, char **data, size_t *len,
                 struct err *e)
{
    struct secrets *s = ud;
    if (s->fail)
        return err_set(e, "database is locked");
    if (strcmp(mesh, "default") != 0)
        return CA_NOT_FOUND;
    for (int i = 0; i < 4 && s->names[i]; i++)
        if (strcmp(s->names[i], name) == 0) {
            *data = xstrdup(s->values[i]);
            *len = strlen(s->values[i]);
            return 0;
        }
    return CA_NOT_FOUND;
}

static char *ds_violations(const char *json)
{
    json_t *ds = json_loads(json, 0, NULL);
    ASSERT(ds);
    struct verr ve = {0};
    ca_datasource_validate(ds, &ve);
    char *s = verr_join(&ve);
    verr_free(&ve);
    json_decref(ds);
    return s;
}

CA_TEST(ca_datasource_validate_messages)
{
    char *s = ds_violations("{}");
    ASSERT_STR_EQ(s, ": data source has to be chosen. Available sources: secret, file, inline");
    free(s);
    s = ds_violations("{\"secret\": \"\"}");
    ASSERT_STR_EQ(s, "secret: cannot be empty");
    free(s);
    s = ds_violations("{\"inline\": \"\"}");
    ASSERT_STR_EQ(s, "inline: cannot be empty");
    free(s);
    s = ds_violations("{\"file\": \"\"}");
    ASSERT_STR_EQ(s, "file: cannot be empty");
    free(s);
    s = ds_violations("{\"secret\": \"a\", \"file\": \"b\"}");
    ASSERT_STR_CONTAINS(s, "could not convert backend config: only one of");
    free(s);
    s = ds_violations("{\"inline\": \"!!!\"}");
    ASSERT_STR_CONTAINS(s, "illegal base64 data");
    free(s);
    s = ds_violations("{\"secret\": \"ok\"}");
    ASSERT_STR_EQ(s, "");
    free(s);
}

CA_TEST(ca_datasource_load_kinds)
{
    struct secrets sec = {{"s1"}, {"from-secret"}, 0};
    struct err e;
    char *d = NULL;
    size_t n = 0;
    json_t *ds = json_pack("{s:s}", "inline", "aGVsbG8="); /* "hello" */
    ASSERT_INT_EQ(ca_datasource_load(ds, "default", fetch, &sec, &d, &n, &e), 0);
    ASSERT_STR_EQ(d, "hello");
    ASSERT_INT_EQ(n, 5);
    free(d);
    json_decref(ds);
    ds = json_pack("{s:s}", "inlineString", "text");
    ASSERT_INT_EQ(ca_datasource_load(ds, "default", fetch, &sec, &d, &n, &e), 0);
    ASSERT_STR_EQ(d, "text");
    free(d);
    json_decref(ds);
    ds = json_pack("{s:s}", "secret", "s1");
    ASSERT_INT_EQ(ca_datasource_load(ds, "default", fetch, &sec, &d, &n, &e), 0);
    ASSERT_STR_EQ(d, "from-secret");
    free(d);
    json_decref(ds);
    ds = json_pack("{s:s}", "secret", "nope");
    ASSERT_INT_EQ(ca_datasource_load(ds, "default", fetch, &sec, &d, &n, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not load data: Resource not found: type=\"Secret\" name=\"nope\" "
                         "mesh=\"default\"");
    sec.fail = 1;
    ASSERT_INT_EQ(ca_datasource_load(ds, "default", fetch, &sec, &d, &n, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not load data: database is locked");
    json_decref(ds);
    char *path = tmp_write("ds.txt", "file-data");
    ds = json_pack("{s:s}", "file", path);
    ASSERT_INT_EQ(ca_datasource_load(ds, "default", fetch, &sec, &d, &n, &e), 0);
    ASSERT_STR_EQ(d, "file-data");
    free(d);
    json_decref(ds);
    free(path);
    ds = json_pack("{s:s}", "file", "/nonexistent/ca.pem");
    ASSERT_INT_EQ(ca_datasource_load(ds, "default", fetch, &sec, &d, &n, &e), -1);
    ASSERT_STR_EQ(e.msg,
                  "could not load data: open /nonexistent/ca.pem: no such file or directory");
    json_decref(ds);
}

static char *backend_violations(const char *conf_json, struct secrets *sec)
{
    json_t *conf = conf_json ? json_loads(conf_json, 0, NULL) : NULL;
    struct verr ve = {0}, all = {0};
    ca_provided_validate_backend("default", conf, fetch, sec, &ve);
    verr_add_prefixed(&all, "mtls.backends[0].conf", &ve);
    char *s = verr_join(&all);
    verr_free(&ve);
    verr_free(&all);
    json_decref(conf);
    return s;
}

CA_TEST(ca_provided_backend_rules)
{
    struct secrets sec = {{0}, {0}, 0};
    char *s = backend_violations(NULL, &sec);
    ASSERT_STR_EQ(s, "mtls.backends[0].conf.cert: has to be defined; mtls.backends[0].conf.key: "
                     "has to be defined");
    free(s);
    s = backend_violations("{\"cert\": {\"secret\": \"\"}, \"key\": {}}", &sec);
    ASSERT_STR_EQ(s,
                  "mtls.backends[0].conf.cert.secret: cannot be empty; mtls.backends[0].conf.key: "
                  "data source has to be chosen. Available sources: secret, file, inline");
    free(s);
    s = backend_violations("{\"cert\": {\"secret\": \"c\"}, \"key\": {\"secret\": \"k\"}}", &sec);
    ASSERT_STR_EQ(s,
                  "mtls.backends[0].conf.cert: could not load data: Resource not found: "
                  "type=\"Secret\" name=\"k\" mesh=\"default\"; mtls.backends[0].conf.key: could "
                  "not load data: Resource not found: type=\"Secret\" name=\"k\" mesh=\"default\"");
    free(s);

    char *cert, *key;
    builtin("m", NULL, CA_KEY_ECDSA_P256, &cert, &key);
    sec.names[0] = "c", sec.values[0] = cert;
    sec.names[1] = "k", sec.values[1] = key;
    s = backend_violations("{\"cert\": {\"secret\": \"c\"}, \"key\": {\"secret\": \"k\"}}", &sec);
    ASSERT_STR_EQ(s, "");
    free(s);
    /* Swapped: Kuma's key-pair error lands on cert. */
    s = backend_violations("{\"cert\": {\"secret\": \"k\"}, \"key\": {\"secret\": \"c\"}}", &sec);
    ASSERT_STR_CONTAINS(s, "mtls.backends[0].conf.cert: not a valid TLS key pair: tls: failed to "
                           "find certificate PEM data");
    free(s);
    s = backend_violations("{\"cert\": \"c\"}", &sec);
    ASSERT_STR_CONTAINS(s, "mtls.backends[0].conf: could not convert backend config");
    free(s);

    char *loaded_c = NULL, *loaded_k = NULL;
    struct err e;
    json_t *conf =
        json_pack("{s:{s:s}, s:{s:s}}", "cert", "inlineString", cert, "key", "secret", "k");
    ASSERT_INT_EQ(ca_provided_load("default", conf, fetch, &sec, &loaded_c, &loaded_k, &e), 0);
    ASSERT_STR_EQ(loaded_c, cert);
    ASSERT_STR_EQ(loaded_k, key);
    free(loaded_c);
    free(loaded_k);
    json_decref(conf);
    free(cert);
    free(key);
}
