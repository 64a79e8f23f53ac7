/*
 * Tests for token.c: dataplane and user tokens shaped as Kuma's, verified by
 * us and independently by `openssl dgst`, and every way a token can be bad.
 */
#include "helpers.h"

#include <jansson.h>

#include "ca/pki.h"
#include "ca/token.h"

#define NS   1000000000LL
#define HOUR (3600 * NS)

/* One signing key per test binary run: RSA key generation is slow under ASan. */
static char *key_a, *key_b;

static void keys(void)
{
    struct err e;
    if (!key_a && token_signing_key_generate(&key_a, &e) != 0)
        TEST_FAIL_("keygen: %s", e.msg);
    if (!key_b && token_signing_key_generate(&key_b, &e) != 0)
        TEST_FAIL_("keygen: %s", e.msg);
}

/* Key store for lookups: mesh "default" kid 1 -> key_a, mesh "other" kid 1 -> key_b,
 * global kid 1 -> key_a; mesh "broken" fails. */
struct lookup_log {
    char mesh[64];
    int kid;
    int calls;
    const char *override;
};

static int lookup(void *ud, const char *mesh, int kid, char **pem, struct err *e)
{
    struct lookup_log *l = ud;
    if (l) {
        snprintf(l->mesh, sizeof(l->mesh), "%s", mesh);
        l->kid = kid;
        l->calls++;
        if (l->override) {
            *pem = xstrdup(l->override);
            return 0;
        }
    }
    if (strcmp(mesh, "broken") == 0)
        return err_set(e, "store unavailable");
    if (kid != 1)
        return TOKEN_KEY_NOT_FOUND;
    if (strcmp(mesh, "default") == 0 || strcmp(mesh, "") == 0)
        *pem = xstrdup(key_a);
    else if (strcmp(mesh, "other") == 0)
        *pem = xstrdup(key_b);
    else
        return TOKEN_KEY_NOT_FOUND;
    return 0;
}

static char *issue_dp(const char *name, const char *mesh, const char *tags_json, int64_t valid,
                      int64_t at)
{
    keys();
    json_t *tags = tags_json ? json_loads(tags_json, 0, NULL) : NULL;
    char *jwt = NULL;
    struct err e;
    if (token_dataplane_issue_at(key_a, 1, name, mesh, tags, "dataplane", valid, at, &jwt, &e) != 0)
        TEST_FAIL_("issue: %s", e.msg);
    json_decref(tags);
    return jwt;
}

/* The decoded JSON text of segment i (0 header, 1 claims). */
static char *segment(const char *jwt, int i)
{
    const char *p = jwt;
    for (int k = 0; k < i; k++)
        p = strchr(p, '.') + 1;
    size_t n = strcspn(p, "."), outlen = 0;
    unsigned char *raw = ca__b64url_decode(p, n, &outlen);
    ASSERT(raw);
    return (char *)raw;
}

static int verify_dp(const char *jwt, const char *mesh, const char *name, struct err *e)
{
    struct token_dp_claims c;
    int rc = token_dataplane_verify(jwt, lookup, NULL, mesh, name, &c, e);
    if (rc == 0)
        token_dp_claims_free(&c);
    return rc;
}

/* A token with header and claims given as JSON text, signed with key (NULL: sig "x"). */
static char *forge(const char *header, const char *claims, const char *key)
{
    char *h = ca__b64url_encode((const unsigned char *)header, strlen(header));
    char *c = ca__b64url_encode((const unsigned char *)claims, strlen(claims));
    char *input = xasprintf("%s.%s", h, c);
    char *out;
    if (key) {
        char *kp = tmp_write("forge.key", key), *ip = tmp_write("forge.in", input);
        int st;
        char *sig =
            sh(&st, "openssl dgst -sha256 -sign '%s' '%s' | basenc --base64url -w0 | tr -d '='", kp,
               ip);
        ASSERT_INT_EQ(st, 0);
        out = xasprintf("%s.%s", input, sig);
        free(sig), free(kp), free(ip);
    } else {
        out = xasprintf("%s.", input);
    }
    free(h), free(c), free(input);
    return out;
}

CA_TEST(token_signing_key_and_names)
{
    keys();
    ASSERT(str_has_prefix(key_a, "-----BEGIN RSA PRIVATE KEY-----"));
    char *p = tmp_write("sk.pem", key_a);
    int st;
    char *o = sh(&st, "openssl pkey -in '%s' -noout -text | head -1", p);
    ASSERT_STR_CONTAINS(o, "2048 bit");
    free(o), free(p);
    char *n = token_dp_signing_key_name("default", 1);
    ASSERT_STR_EQ(n, "dataplane-token-signing-key-default-1");
    free(n);
    n = token_dp_signing_key_name("default", 0);
    ASSERT_STR_EQ(n, "dataplane-token-signing-key-default");
    free(n);
    n = token_user_signing_key_name(1);
    ASSERT_STR_EQ(n, "user-token-signing-key-1");
    free(n);
    n = token_dp_revocations_name("m");
    ASSERT_STR_EQ(n, "dataplane-token-revocations-m");
    free(n);
}

CA_TEST(token_dataplane_valid_and_shaped_as_kumas)
{
    int64_t now = now_ns();
    char *jwt = issue_dp("dp-1", "default", "{\"kuma.io/service\": [\"web\", \"api\", \"web\"]}",
                         24 * HOUR, now);
    char *h = segment(jwt, 0);
    ASSERT_STR_EQ(h, "{\"alg\":\"RS256\",\"kid\":\"1\",\"typ\":\"JWT\"}");
    char *c = segment(jwt, 1);
    int64_t iat = now / NS;
    char *want = xasprintf("{\"Name\":\"dp-1\",\"Mesh\":\"default\",\"Tags\":{\"kuma.io/service\":"
                           "[\"api\",\"web\"]},\"Type\":\"dataplane\",\"exp\":%lld,\"nbf\":%lld,"
                           "\"iat\":%lld,\"jti\":\"",
                           (long long)(iat + 86400), (long long)(iat - 300), (long long)iat);
    ASSERT(str_has_prefix(c, want));
    free(want);

    struct lookup_log log = {0};
    struct token_dp_claims cl;
    struct err e;
    ASSERT_INT_EQ(token_dataplane_verify(jwt, lookup, &log, "default", "dp-1", &cl, &e), 0);
    ASSERT_STR_EQ(log.mesh, "default");
    ASSERT_INT_EQ(log.kid, 1);
    ASSERT_STR_EQ(cl.name, "dp-1");
    ASSERT_STR_EQ(cl.mesh, "default");
    ASSERT_STR_EQ(cl.type, "dataplane");
    ASSERT_INT_EQ(cl.kid, 1);
    ASSERT_INT_EQ(cl.iat, iat);
    ASSERT_INT_EQ(cl.exp - cl.iat, 86400);
    ASSERT_INT_EQ(cl.iat - cl.nbf, 300);
    ASSERT_INT_EQ(strlen(cl.jti), 36);
    ASSERT(cl.jti[14] == '4'); /* UUID version 4 */
    char *tags = json_dumps(cl.tags, JSON_COMPACT);
    ASSERT_STR_EQ(tags, "{\"kuma.io/service\":[\"api\",\"web\"]}");
    free(tags);
    token_dp_claims_free(&cl);

    /* An independent check of the RS256 signature with the openssl CLI. */
    char *pub = NULL;
    ASSERT_INT_EQ(token_public_key_pem(key_a, &pub, &e), 0);
    ASSERT(str_has_prefix(pub, "-----BEGIN PUBLIC KEY-----"));
    const char *dot2 = strrchr(jwt, '.');
    char *input = xstrndup(jwt, (size_t)(dot2 - jwt));
    size_t siglen;
    unsigned char *sig = ca__b64url_decode(dot2 + 1, strlen(dot2 + 1), &siglen);
    char *ip = tmp_write("in.txt", input), *pp = tmp_write("pub.pem", pub);
    char *sp = xasprintf("%s/sig.bin", test_tmpdir());
    FILE *f = fopen(sp, "wb");
    fwrite(sig, 1, siglen, f);
    fclose(f);
    int st;
    char *o = sh(&st, "openssl dgst -sha256 -verify '%s' -signature '%s' '%s'", pp, sp, ip);
    ASSERT_INT_EQ(st, 0);
    ASSERT_STR_CONTAINS(o, "Verified OK");
    free(o), free(ip), free(pp), free(sp), free(sig), free(input), free(pub);
    free(h), free(c), free(jwt);
}

CA_TEST(token_dataplane_public_key_lookup_and_whitespace)
{
    keys();
    char *pub = NULL;
    struct err e;
    ASSERT_INT_EQ(token_public_key_pem(key_a, &pub, &e), 0);
    char *jwt = issue_dp("", "default", NULL, HOUR, now_ns());
    char *padded = xasprintf("  %s\n", jwt);
    struct lookup_log log = {.override = pub};
    struct token_dp_claims cl;
    ASSERT_INT_EQ(token_dataplane_verify(padded, lookup, &log, "default", "any-name", &cl, &e), 0);
    ASSERT_STR_EQ(cl.name, "");
    ASSERT_INT_EQ(json_object_size(cl.tags), 0);
    token_dp_claims_free(&cl);
    free(padded), free(jwt), free(pub);
}

CA_TEST(token_dataplane_wrong_mesh)
{
    keys();
    struct err e;
    /* Same key in both meshes: the mesh claim decides. */
    char *jwt = issue_dp("dp-1", "other", NULL, HOUR, now_ns());
    ASSERT_INT_EQ(verify_dp(jwt, "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "proxy mesh from requestor: default is different than in token: other");
    /* Mesh "other" has its own key: the signature does not verify. */
    ASSERT_INT_EQ(verify_dp(jwt, "other", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: crypto/rsa: verification error");
    /* A mesh without keys. */
    ASSERT_INT_EQ(verify_dp(jwt, "nokeys", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "there is no signing key with serial number 1. Secret of name "
                         "\"dataplane-token-signing-key-nokeys-1\" in mesh \"nokeys\" is not "
                         "found. If signing key was rotated, regenerate the token");
    ASSERT_INT_EQ(verify_dp(jwt, "broken", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: store unavailable");
    ASSERT_INT_EQ(verify_dp(jwt, "", "dp-1", &e), -1);
    free(jwt);
}

CA_TEST(token_dataplane_wrong_name)
{
    struct err e;
    char *jwt = issue_dp("dp-1", "default", NULL, HOUR, now_ns());
    ASSERT_INT_EQ(verify_dp(jwt, "default", "dp-2", &e), -1);
    ASSERT_STR_EQ(e.msg, "proxy name from requestor: dp-2 is different than in token: dp-1");
    ASSERT_INT_EQ(verify_dp(jwt, "default", NULL, &e), 0);
    free(jwt);
}

CA_TEST(token_dataplane_expired)
{
    struct err e;
    int64_t t1 = now_ns() / NS * NS - 2 * HOUR;
    char *jwt = issue_dp("dp-1", "default", NULL, HOUR, t1);
    ASSERT_INT_EQ(token_dataplane_verify_at(jwt, lookup, NULL, "default", "dp-1", t1 + 2 * HOUR,
                                            &(struct token_dp_claims){0}, &e),
                  -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: token is expired by 1h0m0s");
    /* And with the wall clock. */
    ASSERT_INT_EQ(verify_dp(jwt, "default", "dp-1", &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "could not parse token: token is expired by 1h0m");
    /* Exactly at exp is already expired (golang-jwt: now must be before exp). */
    int64_t t0 = 1700000000 * NS;
    char *j2 = issue_dp("dp-1", "default", NULL, 90 * NS, t0);
    struct token_dp_claims cl;
    ASSERT_INT_EQ(
        token_dataplane_verify_at(j2, lookup, NULL, "default", "dp-1", t0 + 89 * NS, &cl, &e), 0);
    token_dp_claims_free(&cl);
    ASSERT_INT_EQ(
        token_dataplane_verify_at(j2, lookup, NULL, "default", "dp-1", t0 + 90 * NS, &cl, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: token is expired by 0s");
    ASSERT_INT_EQ(
        token_dataplane_verify_at(j2, lookup, NULL, "default", "dp-1", t0 + 215 * NS, &cl, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: token is expired by 2m5s");
    free(j2), free(jwt);
}

CA_TEST(token_dataplane_not_yet_valid)
{
    struct err e;
    char *jwt = issue_dp("dp-1", "default", NULL, HOUR, now_ns() + HOUR);
    ASSERT_INT_EQ(verify_dp(jwt, "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: token is not valid yet");
    free(jwt);
    /* nbf is 5 minutes before iat: a token issued 2 minutes ahead still passes nbf but
     * not iat. */
    int64_t t0 = 1700000000 * NS;
    jwt = issue_dp("dp-1", "default", NULL, HOUR, t0);
    struct token_dp_claims cl;
    ASSERT_INT_EQ(
        token_dataplane_verify_at(jwt, lookup, NULL, "default", "dp-1", t0 - 120 * NS, &cl, &e),
        -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: token used before issued");
    free(jwt);
}

CA_TEST(token_dataplane_tampered_payload)
{
    struct err e;
    char *jwt = issue_dp("dp-1", "default", NULL, HOUR, now_ns());
    char *claims = segment(jwt, 1);
    char *h = xstrndup(jwt, strcspn(jwt, "."));
    /* Same claims but another name, original signature. */
    char *evil = xstrdup(claims);
    memcpy(strstr(evil, "dp-1"), "dp-9", 4);
    char *c64 = ca__b64url_encode((const unsigned char *)evil, strlen(evil));
    char *forged = xasprintf("%s.%s%s", h, c64, strrchr(jwt, '.'));
    ASSERT_INT_EQ(verify_dp(forged, "default", "dp-9", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: crypto/rsa: verification error");
    free(forged), free(c64), free(evil), free(h), free(claims), free(jwt);
}

CA_TEST(token_dataplane_tampered_signature)
{
    struct err e;
    char *jwt = issue_dp("dp-1", "default", NULL, HOUR, now_ns());
    char *bad = xstrdup(jwt);
    char *sig = strrchr(bad, '.') + 10;
    *sig = *sig == 'A' ? 'B' : 'A';
    ASSERT_INT_EQ(verify_dp(bad, "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: crypto/rsa: verification error");
    /* Truncated and missing signatures. */
    bad[strlen(bad) - 4] = '\0';
    ASSERT_INT_EQ(verify_dp(bad, "default", "dp-1", &e), -1);
    *(strrchr(bad, '.') + 1) = '\0';
    ASSERT_INT_EQ(verify_dp(bad, "default", "dp-1", &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "could not parse token:");
    free(bad), free(jwt);
}

CA_TEST(token_dataplane_alg_none_and_others)
{
    struct err e;
    char *orig = issue_dp("dp-1", "default", NULL, HOUR, now_ns());
    char *claims = segment(orig, 1);
    free(orig);
    struct {
        const char *header, *msg;
    } cases[] = {
        {"{\"alg\":\"none\",\"kid\":\"1\",\"typ\":\"JWT\"}",
         "could not parse token: unknown token alg. Allowed algs are HS256 and RS256"},
        {"{\"alg\":\"ES256\",\"kid\":\"1\"}",
         "could not parse token: unknown token alg. Allowed algs are HS256 and RS256"},
        {"{\"alg\":\"HS256\",\"kid\":\"1\"}",
         "could not parse token: HS256 tokens signed with legacy signing keys are not supported; "
         "regenerate the token"},
        {"{\"alg\":\"XX1\",\"kid\":\"1\"}",
         "could not parse token: signing method (alg) is unavailable."},
        {"{\"kid\":\"1\"}", "could not parse token: signing method (alg) is unspecified."},
        {"{\"alg\":\"RS256\",\"kid\":1}",
         "could not parse token: kid header is invalid. Expected string."},
        {"{\"alg\":\"RS256\",\"kid\":\"one\"}",
         "could not parse token: strconv.Atoi: parsing \"one\": invalid syntax"},
        {"{\"alg\":\"RS256\",\"kid\":\"99999999999\"}",
         "could not parse token: strconv.Atoi: parsing \"99999999999\": value out of range"},
        {"[1]", "could not parse token: malformed token header"},
        {"{\"alg\":\"RS256\",\"alg\":\"none\"}", "could not parse token: malformed token header"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = forge(cases[i].header, claims, NULL);
        ASSERT_INT_EQ(verify_dp(tok, "default", "dp-1", &e), -1);
        ASSERT_STR_EQ(e.msg, cases[i].msg);
        free(tok);
    }
    /* An RS256 header with an empty signature. */
    char *tok = forge("{\"alg\":\"RS256\",\"kid\":\"1\"}", claims, NULL);
    ASSERT_INT_EQ(verify_dp(tok, "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: crypto/rsa: verification error");
    free(tok);
    free(claims);
}

CA_TEST(token_dataplane_forged_with_openssl_is_accepted_without_kid)
{
    /* A token made outside this module (openssl CLI) with no kid: Kuma falls back to serial 0
     * (the 1.3.x key name), so the lookup sees kid 0. */
    keys();
    char *claims = xasprintf("{\"Name\":\"dp-1\",\"Mesh\":\"default\",\"Tags\":null,\"Type\":\"\","
                             "\"exp\":%lld}",
                             (long long)(now_ns() / NS + 60));
    char *tok = forge("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims, key_a);
    struct lookup_log log = {.override = key_a};
    struct token_dp_claims cl;
    struct err e;
    ASSERT_INT_EQ(token_dataplane_verify(tok, lookup, &log, "default", "dp-1", &cl, &e), 0);
    ASSERT_INT_EQ(log.kid, 0);
    ASSERT_INT_EQ(cl.kid, 0);
    ASSERT_INT_EQ(json_object_size(cl.tags), 0);
    token_dp_claims_free(&cl);
    /* Without the override, kid 0 is not found, with the legacy name. */
    ASSERT_INT_EQ(verify_dp(tok, "default", "dp-1", &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "Secret of name \"dataplane-token-signing-key-default\" in mesh");
    free(tok), free(claims);
    /* Claims of the wrong types are refused after the signature checks out. */
    tok = forge("{\"alg\":\"RS256\",\"kid\":\"1\"}", "{\"Name\":5}", key_a);
    ASSERT_INT_EQ(verify_dp(tok, "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: malformed token claims");
    free(tok);
    tok = forge("{\"alg\":\"RS256\",\"kid\":\"1\"}", "{\"exp\":\"soon\"}", key_a);
    ASSERT_INT_EQ(verify_dp(tok, "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: malformed token claims");
    free(tok);
}

CA_TEST(token_dataplane_wrong_key)
{
    keys();
    struct err e;
    char *jwt = issue_dp("dp-1", "default", NULL, HOUR, now_ns());
    struct lookup_log log = {.override = key_b};
    struct token_dp_claims cl;
    ASSERT_INT_EQ(token_dataplane_verify(jwt, lookup, &log, "default", "dp-1", &cl, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: crypto/rsa: verification error");
    log.override = "not a key";
    ASSERT_INT_EQ(token_dataplane_verify(jwt, lookup, &log, "default", "dp-1", &cl, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: the signing key is not a valid RSA key");
    /* An EC key is not an RSA key. */
    char *ec = NULL, *ecert = NULL;
    ASSERT_INT_EQ(ca_builtin_generate("m", NULL, CA_KEY_ECDSA_P256, &ecert, &ec, &e), 0);
    log.override = ec;
    ASSERT_INT_EQ(token_dataplane_verify(jwt, lookup, &log, "default", "dp-1", &cl, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: the signing key is not a valid RSA key");
    char *out = NULL;
    ASSERT_INT_EQ(token_dataplane_issue(ec, 1, "n", "m", NULL, NULL, HOUR, &out, &e), -1);
    ASSERT_STR_EQ(e.msg, "the signing key is not an RSA key");
    ASSERT_INT_EQ(token_dataplane_issue("junk", 1, "n", "m", NULL, NULL, HOUR, &out, &e), -1);
    ASSERT_INT_EQ(token_dataplane_issue(key_a, 1, "n", "m", NULL, NULL, 0, &out, &e), -1);
    ASSERT_STR_EQ(e.msg, "validFor has to be greater than 0");
    ASSERT(out == NULL);
    free(ec), free(ecert), free(jwt);
}

CA_TEST(token_dataplane_garbage_input)
{
    struct err e;
    const char *garbage[] = {"",
                             "abc",
                             "a.b",
                             "a.b.c.d",
                             "!!!.@@@.###",
                             "...",
                             ".a.b",
                             "eyJhbGciOiJSUzI1NiJ9.!!.abc",
                             "\xff\xfe.\x01.\x02"};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        ASSERT_INT_EQ(verify_dp(garbage[i], "default", "dp-1", &e), -1);
        ASSERT(str_has_prefix(e.msg, "could not parse token: "));
    }
    ASSERT_INT_EQ(verify_dp("abc", "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: token contains an invalid number of segments");
    ASSERT_INT_EQ(verify_dp(NULL, "default", "dp-1", &e), -1);
    /* Padding is not base64url. */
    char *jwt = issue_dp("dp-1", "default", NULL, HOUR, now_ns());
    char *pad = xstrdup(jwt);
    size_t hl = strcspn(pad, ".");
    char *padded = xasprintf("%.*s=%s", (int)hl, pad, pad + hl);
    ASSERT_INT_EQ(verify_dp(padded, "default", "dp-1", &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: malformed token header");
    free(padded), free(pad), free(jwt);
}

CA_TEST(token_dataplane_oversized_input)
{
    struct err e;
    size_t n = TOKEN_MAX_LEN + 100;
    char *big = xmalloc(n + 1);
    memset(big, 'A', n);
    big[10] = '.';
    big[20] = '.';
    big[n] = '\0';
    struct lookup_log log = {0};
    struct token_dp_claims cl;
    ASSERT_INT_EQ(token_dataplane_verify(big, lookup, &log, "default", "dp-1", &cl, &e), -1);
    ASSERT_STR_EQ(e.msg, "could not parse token: token is larger than 16384 bytes");
    ASSERT_INT_EQ(log.calls, 0);
    free(big);
    /* Oversized tag sets are refused at issue time. */
    keys();
    json_t *tags = json_object();
    json_t *vals = json_array();
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        json_array_append_new(vals, json_string(v));
    }
    json_object_set_new(tags, "version", vals);
    char *out = NULL;
    ASSERT_INT_EQ(token_dataplane_issue(key_a, 1, "n", "default", tags, NULL, HOUR, &out, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "more than");
    json_decref(tags);
}

CA_TEST(token_dataplane_tag_binding)
{
    json_t *tok = json_loads("{\"kuma.io/service\": [\"web\", \"web-api\"]}", 0, NULL);
    json_t *dp = json_loads("{\"kuma.io/service\": [\"web\"], \"version\": [\"v1\"]}", 0, NULL);
    struct err e;
    ASSERT_INT_EQ(token_dataplane_check_tags(tok, dp, &e), 0);
    json_decref(dp);
    dp = json_loads("{\"kuma.io/service\": [\"web\", \"admin\"]}", 0, NULL);
    ASSERT_INT_EQ(token_dataplane_check_tags(tok, dp, &e), -1);
    ASSERT_STR_EQ(e.msg, "dataplane contains tag \"kuma.io/service\" with value \"admin\" which is "
                         "not allowed with this token. Allowed values in token are [\"web\" "
                         "\"web-api\"]");
    json_decref(dp);
    dp = json_loads("{\"version\": [\"v1\"]}", 0, NULL);
    ASSERT_INT_EQ(token_dataplane_check_tags(tok, dp, &e), -1);
    ASSERT_STR_EQ(e.msg, "dataplane has no tag \"kuma.io/service\" required by the token");
    json_decref(dp);
    json_decref(tok);
}

CA_TEST(token_revocations)
{
    const char *list = "a-1,b-2,c-3\n";
    ASSERT(token_is_revoked(list, strlen(list), "a-1"));
    ASSERT(token_is_revoked(list, strlen(list), "c-3"));
    ASSERT(!token_is_revoked(list, strlen(list), "b"));
    ASSERT(!token_is_revoked(list, strlen(list), "c-3\n"));
    ASSERT(!token_is_revoked(NULL, 0, "a-1"));
    ASSERT(token_is_revoked("x", 1, "x"));
}

CA_TEST(token_user_admin)
{
    keys();
    char *jwt = NULL;
    struct err e;
    ASSERT_INT_EQ(token_admin_issue(key_a, 1, 24 * HOUR, &jwt, &e), 0);
    char *c = segment(jwt, 1);
    ASSERT(str_has_prefix(c, "{\"Name\":\"mesh-system:admin\",\"Groups\":[\"mesh-system:admin\"],"
                             "\"exp\":"));
    struct lookup_log log = {0};
    struct token_user_claims u;
    ASSERT_INT_EQ(token_user_verify(jwt, lookup, &log, &u, &e), 0);
    ASSERT_STR_EQ(log.mesh, "");
    ASSERT_STR_EQ(u.name, "mesh-system:admin");
    ASSERT_INT_EQ(u.ngroups, 1);
    ASSERT_STR_EQ(u.groups[0], "mesh-system:admin");
    ASSERT_INT_EQ(u.exp - u.iat, 86400);
    token_user_claims_free(&u);
    free(c), free(jwt);

    const char *groups[] = {"team-a", "team-b"};
    ASSERT_INT_EQ(token_user_issue(key_a, 2, "alice", groups, 2, HOUR, &jwt, &e), 0);
    ASSERT_INT_EQ(token_user_verify(jwt, lookup, NULL, &u, &e), -1);
    ASSERT_STR_EQ(e.msg, "there is no signing key with serial number 2. GlobalSecret of name "
                         "\"user-token-signing-key-2\" is not found. If signing key was rotated, "
                         "regenerate the token");
    free(jwt);
    ASSERT_INT_EQ(
        token_user_issue_at(key_a, 1, "alice", groups, 2, HOUR, now_ns() - 2 * HOUR, &jwt, &e), 0);
    ASSERT_INT_EQ(token_user_verify(jwt, lookup, NULL, &u, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "token is expired by");
    free(jwt);
    ASSERT_INT_EQ(token_user_issue(key_a, 1, "", NULL, 0, HOUR, &jwt, &e), -1);
    /* A dataplane token is no user token: its mesh keys differ, and here its claims do. */
    char *dpj = issue_dp("dp-1", "default", NULL, HOUR, now_ns());
    ASSERT_INT_EQ(token_user_verify(dpj, lookup, NULL, &u, &e), 0);
    ASSERT_STR_EQ(u.name, "dp-1");
    ASSERT_INT_EQ(u.ngroups, 0);
    token_user_claims_free(&u);
    free(dpj);
}

CA_TEST(token_go_durations)
{
    struct {
        const char *s;
        int64_t ns;
    } ok[] = {{"24h", 24 * HOUR},
              {"1h30m", 90 * 60 * NS},
              {"1.5h", 90 * 60 * NS},
              {"90s", 90 * NS},
              {"0", 0},
              {"-1h", -HOUR},
              {"100ms", 100000000LL},
              {".5s", NS / 2},
              {"1h0m0.5s", HOUR + NS / 2},
              {"2562047h", 2562047 * HOUR}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -7;
        struct err e;
        if (token_parse_go_duration(ok[i].s, &v, &e) != 0)
            TEST_FAIL_("%s: %s", ok[i].s, e.msg);
        ASSERT_INT_EQ(v, ok[i].ns);
    }
    struct {
        const char *s, *msg;
    } bad[] = {{"", "time: invalid duration \"\""},
               {"1d", "time: unknown unit \"d\" in duration \"1d\""},
               {"1", "time: missing unit in duration \"1\""},
               {"h", "time: invalid duration \"h\""},
               {".h", "time: invalid duration \".h\""},
               {"9999999999999999999h", "time: invalid duration \"9999999999999999999h\""},
               {"3000000h", "time: invalid duration \"3000000h\""}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v;
        struct err e;
        ASSERT_INT_EQ(token_parse_go_duration(bad[i].s, &v, &e), -1);
        ASSERT_STR_EQ(e.msg, bad[i].msg);
    }
}
