/*
 * Tests for workload.c: tag sets, SAN order, the exact certificate layout
 * (checked with `openssl x509 -text`), chains verified with `openssl verify`
 * across meshes, rotation, and a signer shared by threads.
 */
#include "helpers.h"

#include <jansson.h>
#include <pthread.h>

#include "ca/ca.h"
#include "ca/workload.h"

#define NS 1000000000LL

static void builtin(const char *mesh, enum ca_key_type kt, char **cert, char **key)
{
    struct err e;
    if (ca_builtin_generate(mesh, NULL, kt, cert, key, &e) != 0)
        TEST_FAIL_("ca_builtin_generate: %s", e.msg);
}

static void issue(const char *cert, const char *key, const char *mesh, const char *tags_json,
                  int64_t life, enum ca_key_type kt, char **lc, char **lk)
{
    json_t *tags = json_loads(tags_json, 0, NULL);
    ASSERT(tags);
    struct err e;
    if (ca_issue_workload_cert(cert, key, mesh, tags, life, kt, lc, lk, &e) != 0)
        TEST_FAIL_("ca_issue_workload_cert: %s", e.msg);
    json_decref(tags);
}

static char *dumps(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT);
}

CA_TEST(workload_tags_normalize)
{
    json_t *in = json_loads("{\"version\": [\"v2\", \"v1\", \"v2\"], \"kuma.io/service\": \"web\","
                            " \"a\": []}",
                            0, NULL);
    json_t *out = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_tags_normalize(in, &out, &e), 0);
    char *s = dumps(out);
    ASSERT_STR_EQ(s, "{\"kuma.io/service\":[\"web\"],\"version\":[\"v1\",\"v2\"]}");
    free(s);
    json_decref(out);
    json_decref(in);

    const char *bad[] = {"[1]", "{\"a\": 1}", "{\"a\": [\"\"]}", "{\"\": \"x\"}",
                         "{\"a\": [[\"x\"]]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in = json_loads(bad[i], 0, NULL);
        out = NULL;
        ASSERT_INT_EQ(ca_tags_normalize(in, &out, &e), -1);
        ASSERT(out == NULL);
        json_decref(in);
    }
    /* Bounds. */
    in = json_object();
    for (int i = 0; i <= CA_TAGS_MAX_KEYS; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        json_object_set_new(in, k, json_string("v"));
    }
    ASSERT_INT_EQ(ca_tags_normalize(in, &out, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "more than");
    json_decref(in);
    ASSERT_INT_EQ(ca_tags_normalize(NULL, &out, &e), 0);
    ASSERT_INT_EQ(json_object_size(out), 0);
    json_decref(out);
}

CA_TEST(workload_dataplane_tags_and_identity)
{
    json_t *spec = json_loads(
        "{\"networking\": {\"address\": \"10.0.0.1\", \"inbound\": ["
        "{\"port\": 1, \"tags\": {\"kuma.io/service\": \"web\", \"version\": \"v1\"}},"
        "{\"port\": 2, \"tags\": {\"kuma.io/service\": \"web-api\", \"version\": \"v1\"}}],"
        " \"gateway\": {\"tags\": {\"zone\": \"z1\"}}}}",
        0, NULL);
    json_t *tags = ca_dataplane_tags(spec);
    char *s = dumps(tags);
    ASSERT_STR_EQ(
        s, "{\"kuma.io/service\":[\"web\",\"web-api\"],\"version\":[\"v1\"],\"zone\":[\"z1\"]}");
    free(s);
    json_decref(tags);

    json_t *id = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_dataplane_identity_tags("dp-1", spec, NULL, &id, &e), 0);
    ASSERT_INT_EQ(json_array_size(json_object_get(id, "kuma.io/service")), 2);
    json_decref(id);
    json_decref(spec);

    /* No service tag: the kuma.io/workload label, else Kuma's error. */
    spec = json_loads("{\"networking\": {\"inbound\": [{\"port\": 1}]}}", 0, NULL);
    json_t *labels = json_pack("{s:s}", "kuma.io/workload", "payments");
    ASSERT_INT_EQ(ca_dataplane_identity_tags("dp-1", spec, labels, &id, &e), 0);
    s = dumps(id);
    ASSERT_STR_EQ(s, "{\"kuma.io/service\":[\"payments\"]}");
    free(s);
    json_decref(id);
    id = NULL;
    ASSERT_INT_EQ(ca_dataplane_identity_tags("dp-1", spec, NULL, &id, &e), -1);
    ASSERT_STR_EQ(e.msg, "dataplane \"dp-1\" has no kuma.io/service tag and no kuma.io/workload "
                         "label, cannot derive mTLS identity");
    ASSERT(id == NULL);
    json_decref(labels);
    json_decref(spec);
    /* Garbage specs give an empty tag set, never a crash. */
    json_t *garbage = json_loads("{\"networking\": {\"inbound\": [1, {\"tags\": [\"x\"]}], "
                                 "\"gateway\": 3}}",
                                 0, NULL);
    tags = ca_dataplane_tags(garbage);
    ASSERT_INT_EQ(json_object_size(tags), 0);
    json_decref(tags);
    json_decref(garbage);
    tags = ca_dataplane_tags(NULL);
    ASSERT_INT_EQ(json_object_size(tags), 0);
    json_decref(tags);
}

CA_TEST(workload_san_order)
{
    json_t *tags = json_loads("{\"version\": [\"v1\"], \"kuma.io/service\": [\"web\", \"backend\"],"
                              " \"kuma.io/zone\": \"z\"}",
                              0, NULL);
    json_t *uris = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_workload_uris("mesh-1", tags, &uris, &e), 0);
    char *s = dumps(uris);
    ASSERT_STR_EQ(s, "[\"spiffe://mesh-1/backend\",\"spiffe://mesh-1/web\","
                     "\"kuma://kuma.io/service/backend\",\"kuma://kuma.io/service/web\","
                     "\"kuma://kuma.io/zone/z\",\"kuma://version/v1\"]");
    free(s);
    json_decref(uris);
    json_decref(tags);
    /* Bytes a URI cannot hold are percent-encoded. */
    tags = json_loads("{\"kuma.io/service\": \"a b%\"}", 0, NULL);
    ASSERT_INT_EQ(ca_workload_uris("m", tags, &uris, &e), 0);
    s = dumps(uris);
    ASSERT_STR_EQ(s, "[\"spiffe://m/a%20b%25\",\"kuma://kuma.io/service/a%20b%25\"]");
    free(s);
    json_decref(uris);
    ASSERT_INT_EQ(ca_workload_uris("bad mesh", tags, &uris, &e), -1);
    json_decref(tags);
    tags = json_object();
    ASSERT_INT_EQ(ca_workload_uris("m", tags, &uris, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "no tags");
    json_decref(tags);
}

CA_TEST(workload_cert_layout)
{
    char *ca, *cak, *c, *k;
    builtin("mesh-1", CA_KEY_RSA, &ca, &cak);
    int64_t before = now_ns();
    issue(ca, cak, "mesh-1",
          "{\"kuma.io/service\": [\"web\"], \"version\": \"v1\", \"kuma.io/protocol\": \"http\"}",
          0, CA_KEY_DEFAULT, &c, &k);
    int64_t after = now_ns();
    ASSERT(str_has_prefix(k, "-----BEGIN EC PRIVATE KEY-----"));
    char *t = x509_text(c);
    ASSERT_STR_CONTAINS(t, "Version: 3 (0x2)");
    ASSERT_STR_CONTAINS(t, "Issuer: O = Kuma, OU = Mesh, CN = mesh-1\n");
    ASSERT_STR_CONTAINS(t, "Subject: \n");
    ASSERT_STR_CONTAINS(t, "Signature Algorithm: sha256WithRSAEncryption");
    ASSERT_STR_CONTAINS(t, "ASN1 OID: prime256v1");
    ASSERT_STR_CONTAINS(t, "X509v3 Key Usage: critical\n                Digital Signature, Key "
                           "Encipherment, Key Agreement\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Extended Key Usage: \n                TLS Web Server "
                           "Authentication, TLS Web Client Authentication\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Basic Constraints: critical\n                CA:FALSE\n");
    ASSERT_STR_CONTAINS(t, "X509v3 Subject Alternative Name: critical\n                "
                           "URI:spiffe://mesh-1/web, URI:kuma://kuma.io/protocol/http, "
                           "URI:kuma://kuma.io/service/web, URI:kuma://version/v1\n");
    ASSERT(!strstr(t, "Subject Key Identifier"));
    /* AuthorityKeyId is the CA's SubjectKeyId. */
    char *cat = x509_text(ca);
    const char *ski = strstr(cat, "X509v3 Subject Key Identifier: \n");
    ASSERT(ski);
    ski += strlen("X509v3 Subject Key Identifier: \n");
    while (*ski == ' ')
        ski++;
    char skid[128];
    size_t l = strcspn(ski, "\n");
    ASSERT(l < sizeof(skid));
    memcpy(skid, ski, l);
    skid[l] = '\0';
    ASSERT_STR_CONTAINS(t, "X509v3 Authority Key Identifier: \n");
    ASSERT_STR_CONTAINS(t, skid);
    /* Go's extension order. */
    ASSERT(strstr(t, "X509v3 Key Usage") < strstr(t, "Extended Key Usage"));
    ASSERT(strstr(t, "Extended Key Usage") < strstr(t, "Basic Constraints"));
    ASSERT(strstr(t, "Basic Constraints") < strstr(t, "Authority Key Identifier"));
    ASSERT(strstr(t, "Authority Key Identifier") < strstr(t, "Subject Alternative Name"));

    int64_t nb, na;
    struct err e;
    ASSERT_INT_EQ(ca_cert_validity(c, &nb, &na, &e), 0);
    ASSERT(nb >= before / NS * NS - 10 * NS && nb <= after - 9 * NS);
    ASSERT(na - nb == 24 * 3600 * NS + 10 * NS);

    /* The serial is random, non-zero, at most 128 bits. */
    char *p = tmp_write("leaf.pem", c);
    int st;
    char *serial = sh(&st, "openssl x509 -noout -serial -in '%s'", p);
    ASSERT(str_has_prefix(serial, "serial="));
    ASSERT(strlen(serial) - strlen("serial=") - 1 <= 32);
    ASSERT(strcmp(serial, "serial=00\n") != 0);
    /* The key is the certificate's. */
    char *kp = tmp_write("leaf.key", k);
    char *m = sh(&st,
                 "bash -c \"cmp <(openssl x509 -noout -pubkey -in '%s') <(openssl pkey "
                 "-pubout -in '%s') && echo same\"",
                 p, kp);
    ASSERT_STR_CONTAINS(m, "same");
    free(m);
    free(kp);
    free(serial);
    free(p);
    free(cat);
    free(t);
    free(ca), free(cak), free(c), free(k);
}

CA_TEST(workload_serials_differ)
{
    char *ca, *cak;
    builtin("m", CA_KEY_ECDSA_P256, &ca, &cak);
    struct ca_signer *s = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_signer_new(ca, cak, &s, &e), 0);
    json_t *tags = json_pack("{s:s}", "kuma.io/service", "web");
    char *c1, *k1, *c2, *k2;
    ASSERT_INT_EQ(ca_signer_issue(s, "m", tags, 0, CA_KEY_DEFAULT, &c1, &k1, &e), 0);
    ASSERT_INT_EQ(ca_signer_issue(s, "m", tags, 0, CA_KEY_DEFAULT, &c2, &k2, &e), 0);
    ASSERT(strcmp(c1, c2) != 0);
    ASSERT(strcmp(k1, k2) != 0);
    char *p1 = tmp_write("a.pem", c1), *p2 = tmp_write("b.pem", c2);
    int st;
    char *s1 = sh(&st, "openssl x509 -noout -serial -in '%s'", p1);
    char *s2 = sh(&st, "openssl x509 -noout -serial -in '%s'", p2);
    ASSERT(strcmp(s1, s2) != 0);
    ASSERT_STR_EQ(ca_signer_cert_pem(s), ca);
    free(s1), free(s2), free(p1), free(p2);
    free(c1), free(k1), free(c2), free(k2);
    json_decref(tags);
    ca_signer_free(s);
    ca_signer_free(NULL);
    free(ca), free(cak);
}

CA_TEST(workload_verifies_against_its_ca_only)
{
    char *caa, *caak, *cab, *cabk, *la, *lak, *lb, *lbk;
    builtin("mesh-a", CA_KEY_ECDSA_P256, &caa, &caak);
    builtin("mesh-b", CA_KEY_ECDSA_P256, &cab, &cabk);
    issue(caa, caak, "mesh-a", "{\"kuma.io/service\": \"web\"}", 0, CA_KEY_DEFAULT, &la, &lak);
    issue(cab, cabk, "mesh-b", "{\"kuma.io/service\": \"web\"}", 0, CA_KEY_DEFAULT, &lb, &lbk);
    char *out = NULL;
    ASSERT_INT_EQ(ossl_verify(caa, la, &out), 0);
    ASSERT_STR_CONTAINS(out, ": OK");
    free(out);
    ASSERT_INT_EQ(ossl_verify(cab, lb, NULL), 0);
    ASSERT(ossl_verify(cab, la, &out) != 0);
    ASSERT_STR_CONTAINS(out, "unable to get local issuer certificate");
    free(out);
    ASSERT(ossl_verify(caa, lb, NULL) != 0);
    /* Both roots in one bundle (cross-mesh trust) accept both leaves. */
    char *bundle = xasprintf("%s%s", caa, cab);
    ASSERT_INT_EQ(ossl_verify(bundle, la, NULL), 0);
    ASSERT_INT_EQ(ossl_verify(bundle, lb, NULL), 0);
    free(bundle);
    free(caa), free(caak), free(cab), free(cabk), free(la), free(lak), free(lb), free(lbk);
}

CA_TEST(workload_shared_provided_ca_cross_verifies)
{
    /* A user's own CA (openssl CLI) used as the provided CA of two meshes. */
    char *cnf = tmp_write("ca.cnf", "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"
                                    "O = Example\nCN = shared root\n[ext]\nbasicConstraints = "
                                    "critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
                                    "subjectKeyIdentifier = hash\n");
    int st;
    char *o = sh(&st,
                 "cd '%s' && openssl req -x509 -config '%s' -extensions ext -newkey rsa:2048 "
                 "-nodes -keyout ca.key -out ca.crt -days 30",
                 test_tmpdir(), cnf);
    ASSERT_INT_EQ(st, 0);
    free(o);
    char *cp = xasprintf("%s/ca.crt", test_tmpdir()), *kp = xasprintf("%s/ca.key", test_tmpdir());
    struct err e;
    size_t n;
    char *ca = read_file(cp, 1 << 20, &n, &e), *cak = read_file(kp, 1 << 20, &n, &e);
    struct verr ve = {0};
    ca_provided_validate(ca, cak, &ve);
    ASSERT(verr_empty(&ve));
    char *la, *lak, *lb, *lbk;
    issue(ca, cak, "team-a", "{\"kuma.io/service\": \"web\"}", 0, CA_KEY_DEFAULT, &la, &lak);
    issue(ca, cak, "team-b", "{\"kuma.io/service\": \"db\"}", 0, CA_KEY_RSA, &lb, &lbk);
    ASSERT_INT_EQ(ossl_verify(ca, la, NULL), 0);
    ASSERT_INT_EQ(ossl_verify(ca, lb, NULL), 0);
    char *t = x509_text(lb);
    ASSERT_STR_CONTAINS(t, "Issuer: O = Example, CN = shared root\n");
    ASSERT_STR_CONTAINS(t, "URI:spiffe://team-b/db");
    ASSERT_STR_CONTAINS(t, "Public-Key: (2048 bit)");
    ASSERT(str_has_prefix(lbk, "-----BEGIN RSA PRIVATE KEY-----"));
    free(t);
    free(la), free(lak), free(lb), free(lbk), free(ca), free(cak), free(cp), free(kp), free(cnf);
}

CA_TEST(workload_lifetime_and_ecdsa_ca)
{
    char *ca, *cak, *c, *k;
    builtin("m", CA_KEY_ECDSA_P256, &ca, &cak);
    issue(ca, cak, "m", "{\"kuma.io/service\": \"web\"}", 3600 * NS, CA_KEY_DEFAULT, &c, &k);
    int64_t nb, na;
    struct err e;
    ASSERT_INT_EQ(ca_cert_validity(c, &nb, &na, &e), 0);
    ASSERT_INT_EQ(na - nb, 3600 * NS + 10 * NS);
    char *t = x509_text(c);
    ASSERT_STR_CONTAINS(t, "Signature Algorithm: ecdsa-with-SHA256");
    free(t);
    ASSERT_INT_EQ(ossl_verify(ca, c, NULL), 0);
    free(ca), free(cak), free(c), free(k);
}

CA_TEST(workload_signer_rejects_bad_ca)
{
    char *a, *ak, *b, *bk;
    builtin("a", CA_KEY_ECDSA_P256, &a, &ak);
    builtin("b", CA_KEY_ECDSA_P256, &b, &bk);
    struct ca_signer *s = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_signer_new(a, bk, &s, &e), -1);
    ASSERT_STR_EQ(e.msg, "failed to load CA key pair: private key does not match public key");
    ASSERT(s == NULL);
    ASSERT_INT_EQ(ca_signer_new("garbage", ak, &s, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "failed to load CA key pair");
    ASSERT_INT_EQ(ca_signer_new(a, "garbage", &s, &e), -1);
    ASSERT_INT_EQ(ca_signer_new(NULL, NULL, &s, &e), -1);
    char *c = NULL, *k = NULL;
    json_t *tags = json_pack("{s:s}", "kuma.io/service", "web");
    ASSERT_INT_EQ(ca_issue_workload_cert(a, bk, "a", tags, 0, CA_KEY_DEFAULT, &c, &k, &e), -1);
    ASSERT(!c && !k);
    json_decref(tags);
    free(a), free(ak), free(b), free(bk);
}

CA_TEST(workload_rotation_at_80_percent)
{
    int64_t issued = 1000 * NS, life = 24 * 3600 * NS, after = issued + life;
    ASSERT(!ca_cert_needs_rotation(issued, after, issued));
    ASSERT(!ca_cert_needs_rotation(issued, after, issued + life / 5 * 4));
    ASSERT(ca_cert_needs_rotation(issued, after, issued + life / 5 * 4 + 1));
    ASSERT(!ca_cert_needs_rotation(issued, after, issued + life * 79 / 100));
    ASSERT(ca_cert_needs_rotation(issued, after, issued + life * 81 / 100));
    ASSERT(ca_cert_needs_rotation(issued, after, after + NS));
}

struct thread_arg {
    const struct ca_signer *s;
    const char *ca;
    int failures;
    char *last;
};

static void *issue_many(void *p)
{
    struct thread_arg *a = p;
    json_t *tags = json_pack("{s:s}", "kuma.io/service", "web");
    for (int i = 0; i < 25; i++) {
        char *c = NULL, *k = NULL;
        struct err e;
        if (ca_signer_issue(a->s, "m", tags, 0, CA_KEY_DEFAULT, &c, &k, &e) != 0) {
            a->failures++;
            continue;
        }
        free(a->last);
        a->last = c;
        free(k);
    }
    json_decref(tags);
    return NULL;
}

CA_TEST(workload_signer_shared_by_threads)
{
    char *ca, *cak;
    builtin("m", CA_KEY_ECDSA_P256, &ca, &cak);
    struct ca_signer *s = NULL;
    struct err e;
    ASSERT_INT_EQ(ca_signer_new(ca, cak, &s, &e), 0);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){s, ca, 0, NULL};
        ASSERT_INT_EQ(pthread_create(&th[i], NULL, issue_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_INT_EQ(args[i].failures, 0);
        ASSERT_INT_EQ(ossl_verify(ca, args[i].last, NULL), 0);
        free(args[i].last);
    }
    ca_signer_free(s);
    free(ca), free(cak);
}
