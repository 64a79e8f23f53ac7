/*
 * token — JWS compact RS256 tokens shaped as Kuma's (see token.h).
 *
 * Verification order: size, three segments, header (alg pinned to RS256, kid
 * as a decimal string), claims JSON shape, key lookup by (mesh, kid),
 * signature, then exp/iat/nbf. golang-jwt v4 checks the time claims before
 * the signature; checking the signature first means nothing from an
 * unauthenticated token is ever interpreted, at the price of reporting
 * "verification error" rather than "expired" for a forged expired token.
 */
#include "ca/token.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/pki.h"
#include "ca/workload.h"

#define NS_PER_S   1000000000LL
#define NBF_SKEW_S (5 * 60)

/* ---- keys and names ---------------------------------------------------------- */

int token_signing_key_generate(char **pem, struct err *e)
{
    EVP_PKEY *k = ca__keygen(CA_KEY_RSA, 2048, e);
    if (!k)
        return -1;
    char *p = ca__key_to_pem(k, e);
    EVP_PKEY_free(k);
    if (!p)
        return -1;
    *pem = p;
    return 0;
}

int token_public_key_pem(const char *signing_key_pem, char **pem, struct err *e)
{
    EVP_PKEY *k = ca__any_key_from_pem(signing_key_pem, e);
    if (!k)
        return -1;
    BIO *b = BIO_new(BIO_s_mem());
    int rc = -1;
    if (b && PEM_write_bio_PUBKEY(b, k)) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        *pem = xstrndup(p, n > 0 ? (size_t)n : 0);
        rc = 0;
    } else {
        ca__ossl_err(e, "failed to encode a public key");
    }
    BIO_free(b);
    EVP_PKEY_free(k);
    return rc;
}

char *token_dp_signing_key_name(const char *mesh, int serial)
{
    if (serial == 0)
        return xasprintf("dataplane-token-signing-key-%s", mesh);
    return xasprintf("dataplane-token-signing-key-%s-%d", mesh, serial);
}

char *token_user_signing_key_name(int serial)
{
    return xasprintf("user-token-signing-key-%d", serial);
}

char *token_dp_revocations_name(const char *mesh)
{
    return xasprintf("dataplane-token-revocations-%s", mesh);
}

int token_is_revoked(const char *data, size_t len, const char *jti)
{
    if (!data || !jti || len == 0)
        return 0;
    if (data[len - 1] == '\n')
        len--;
    size_t jl = strlen(jti);
    const char *p = data, *end = data + len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if ((size_t)(stop - p) == jl && memcmp(p, jti, jl) == 0)
            return 1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

/* ---- Go's time.ParseDuration --------------------------------------------------- */

int token_parse_go_duration(const char *orig, int64_t *ns, struct err *e)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {{"ns", 1ULL},           {"us", 1000ULL},      {"\xc2\xb5s", 1000ULL}, /* U+00B5 */
                 {"\xce\xbcs", 1000ULL},                                               /* U+03BC */
                 {"ms", 1000000ULL},     {"s", 1000000000ULL}, {"m", 60000000000ULL},
                 {"h", 3600000000000ULL}};
    const uint64_t limit = 1ULL << 63;
    const char *s = orig ? orig : "";
    uint64_t d = 0;
    int neg = 0;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (!*s)
        goto invalid;
    while (*s) {
        uint64_t v = 0, f = 0;
        double scale = 1.0;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            goto invalid;
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (limit - 1) / 10)
                goto invalid;
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > limit)
                goto invalid;
        }
        int pre = s != start, post = 0;
        if (*s == '.') {
            s++;
            const char *fs = s;
            int overflow = 0;
            for (; *s >= '0' && *s <= '9'; s++) {
                if (overflow)
                    continue;
                if (f > (limit - 1) / 10) {
                    overflow = 1;
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(*s - '0');
                if (y > limit) {
                    overflow = 1;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = s != fs;
        }
        if (!pre && !post)
            goto invalid;
        size_t ul = 0;
        while (s[ul] && s[ul] != '.' && !(s[ul] >= '0' && s[ul] <= '9'))
            ul++;
        if (ul == 0)
            return err_set(e, "time: missing unit in duration \"%s\"", orig ? orig : "");
        uint64_t unit = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].name) == ul && memcmp(units[i].name, s, ul) == 0)
                unit = units[i].ns;
        if (!unit)
            return err_set(e, "time: unknown unit \"%.*s\" in duration \"%s\"", (int)ul, s,
                           orig ? orig : "");
        s += ul;
        if (v > limit / unit)
            goto invalid;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > limit)
                goto invalid;
        }
        d += v;
        if (d > limit)
            goto invalid;
    }
    if (neg) {
        *ns = d == limit ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > limit - 1)
        goto invalid;
    *ns = (int64_t)d;
    return 0;
invalid:
    return err_set(e, "time: invalid duration \"%s\"", orig ? orig : "");
}

/* ---- JWS ----------------------------------------------------------------------- */

/* A random RFC 4122 version-4 UUID, as Kuma's core.NewUUID. */
static void uuid_v4(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        /* The DRBG failing is not recoverable for a token issuer. */
        fputs("token: RAND_bytes failed\n", stderr);
        abort();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* Loads an RSA private key for signing. */
static EVP_PKEY *signing_key(const char *pem, struct err *e)
{
    struct err pe;
    EVP_PKEY *k = ca__key_from_pem(pem, &pe);
    if (!k) {
        err_set(e, "could not parse the signing key");
        return NULL;
    }
    if (!EVP_PKEY_is_a(k, "RSA")) {
        EVP_PKEY_free(k);
        err_set(e, "the signing key is not an RSA key");
        return NULL;
    }
    return k;
}

/* Signs claims (a JSON object) with header {"alg","kid","typ"}; *jwt is new. */
static int jws_sign(const char *key_pem, int kid, const json_t *claims, char **jwt, struct err *e)
{
    EVP_PKEY *key = signing_key(key_pem, e);
    if (!key)
        return -1;
    char kidbuf[16];
    snprintf(kidbuf, sizeof(kidbuf), "%d", kid);
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "kid", kidbuf, "typ", "JWT");
    char *hj = json_dumps(hdr, JSON_COMPACT);
    char *cj = json_dumps(claims, JSON_COMPACT);
    char *h64 = ca__b64url_encode((const unsigned char *)hj, strlen(hj));
    char *c64 = ca__b64url_encode((const unsigned char *)cj, strlen(cj));
    char *signing_input = xasprintf("%s.%s", h64, c64);
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int rc = -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)signing_input,
                       strlen(signing_input)) != 1) {
        ca__ossl_err(e, "could not sign a token");
        goto out;
    }
    sig = xmalloc(siglen);
    if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)signing_input,
                       strlen(signing_input)) != 1) {
        ca__ossl_err(e, "could not sign a token");
        goto out;
    }
    char *s64 = ca__b64url_encode(sig, siglen);
    *jwt = xasprintf("%s.%s", signing_input, s64);
    free(s64);
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(sig);
    free(signing_input);
    free(h64);
    free(c64);
    free(hj);
    free(cj);
    json_decref(hdr);
    EVP_PKEY_free(key);
    return rc;
}

/* Go's Duration.String() for whole seconds. */
static void go_dur(int64_t s, char *out, size_t n)
{
    if (s < 0)
        s = 0;
    int64_t h = s / 3600, m = s % 3600 / 60, sec = s % 60;
    if (h)
        snprintf(out, n, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)sec);
    else if (m)
        snprintf(out, n, "%lldm%llds", (long long)m, (long long)sec);
    else
        snprintf(out, n, "%llds", (long long)sec);
}

/* Which key a lookup reports missing: per mesh or global. */
static int key_not_found(struct err *e, const char *mesh, int kid)
{
    if (mesh && *mesh) {
        char *name = token_dp_signing_key_name(mesh, kid);
        err_set(e,
                "there is no signing key with serial number %d. Secret of name \"%s\" in mesh "
                "\"%s\" is not found. If signing key was rotated, regenerate the token",
                kid, name, mesh);
        free(name);
    } else {
        char *name = token_user_signing_key_name(kid);
        err_set(e,
                "there is no signing key with serial number %d. GlobalSecret of name \"%s\" is "
                "not found. If signing key was rotated, regenerate the token",
                kid, name);
        free(name);
    }
    return -1;
}

/* golang-jwt v4's registry of algorithm names. */
static int go_known_alg(const char *a)
{
    static const char *const algs[] = {"none",  "HS256", "HS384", "HS512", "RS256",
                                       "RS384", "RS512", "PS256", "PS384", "PS512",
                                       "ES256", "ES384", "ES512", "EdDSA"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(a, algs[i]) == 0)
            return 1;
    return 0;
}

/* Reads an optional NumericDate claim (integer or fractional seconds). */
static int numeric_date(const json_t *claims, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d > -9.2e18 && d < 9.2e18))
        return -1;
    *out = (int64_t)d;
    return 0;
}

/*
 * Parses and verifies a token; on success *claims_out is the claims object
 * (new reference) and *kid_out the key serial. Messages as Kuma's.
 */
static int jws_verify(const char *jwt_in, const char *mesh, token_key_lookup_fn *lookup, void *ud,
                      int64_t now_s, json_t **claims_out, int *kid_out, struct err *e)
{
    json_t *hdr = NULL, *claims = NULL;
    unsigned char *hraw = NULL, *craw = NULL, *sig = NULL;
    char *keypem = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    int rc = -1;

    if (!jwt_in)
        jwt_in = "";
    size_t n = strnlen(jwt_in, TOKEN_MAX_LEN + 1);
    if (n > TOKEN_MAX_LEN)
        return err_set(e, "could not parse token: token is larger than %d bytes", TOKEN_MAX_LEN);
    /* Tokens are often read from files: surrounding whitespace is not part of them. */
    const char *jwt = jwt_in;
    while (n && isspace((unsigned char)*jwt))
        jwt++, n--;
    while (n && isspace((unsigned char)jwt[n - 1]))
        n--;
    const char *d1 = memchr(jwt, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - jwt)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - jwt))) {
        err_set(e, "could not parse token: token contains an invalid number of segments");
        goto out;
    }
    size_t hl = (size_t)(d1 - jwt), cl = (size_t)(d2 - d1 - 1), sl = n - (size_t)(d2 + 1 - jwt);
    size_t rawlen = 0;
    hraw = ca__b64url_decode(jwt, hl, &rawlen);
    json_error_t je;
    if (!hraw || !(hdr = json_loadb((const char *)hraw, rawlen, JSON_REJECT_DUPLICATES, &je)) ||
        !json_is_object(hdr)) {
        err_set(e, "could not parse token: malformed token header");
        goto out;
    }
    const json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg) || json_string_length(alg) == 0) {
        err_set(e, "could not parse token: signing method (alg) is unspecified.");
        goto out;
    }
    const char *a = json_string_value(alg);
    if (strcmp(a, "RS256") != 0) {
        if (strcmp(a, "HS256") == 0)
            err_set(e, "could not parse token: HS256 tokens signed with legacy signing keys are "
                       "not supported; regenerate the token");
        else if (go_known_alg(a))
            err_set(e, "could not parse token: unknown token alg. Allowed algs are HS256 and "
                       "RS256");
        else
            err_set(e, "could not parse token: signing method (alg) is unavailable.");
        goto out;
    }
    int kid = 0; /* no kid: Kuma's fallback, the 1.3.x key without a serial */
    const json_t *kidv = json_object_get(hdr, "kid");
    if (kidv) {
        if (!json_is_string(kidv)) {
            err_set(e, "could not parse token: kid header is invalid. Expected string.");
            goto out;
        }
        const char *ks = json_string_value(kidv);
        const char *p = ks;
        long long v = 0;
        if (*p == '+')
            p++;
        int ok = *p != '\0';
        for (; *p && ok; p++) {
            if (*p < '0' || *p > '9')
                ok = 0;
            else if ((v = v * 10 + (*p - '0')) > INT_MAX) {
                err_set(
                    e, "could not parse token: strconv.Atoi: parsing \"%.32s\": value out of range",
                    ks);
                goto out;
            }
        }
        if (!ok) {
            err_set(e, "could not parse token: strconv.Atoi: parsing \"%.32s\": invalid syntax",
                    ks);
            goto out;
        }
        kid = (int)v;
    }
    craw = ca__b64url_decode(d1 + 1, cl, &rawlen);
    if (!craw || !(claims = json_loadb((const char *)craw, rawlen, JSON_REJECT_DUPLICATES, &je)) ||
        !json_is_object(claims)) {
        err_set(e, "could not parse token: malformed token claims");
        goto out;
    }

    struct err le = {{0}};
    int lr = lookup ? lookup(ud, mesh ? mesh : "", kid, &keypem, &le) : TOKEN_KEY_NOT_FOUND;
    if (lr == TOKEN_KEY_NOT_FOUND) {
        key_not_found(e, mesh, kid);
        goto out;
    }
    if (lr != 0) {
        err_set(e, "could not parse token: %s", le.msg);
        goto out;
    }
    struct err pe;
    key = ca__any_key_from_pem(keypem, &pe);
    if (!key || !EVP_PKEY_is_a(key, "RSA")) {
        err_set(e, "could not parse token: the signing key is not a valid RSA key");
        goto out;
    }
    size_t siglen = 0;
    sig = ca__b64url_decode(d2 + 1, sl, &siglen);
    if (!sig) {
        err_set(e, "could not parse token: malformed token signature");
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1) {
        ca__ossl_err(e, "could not parse token");
        goto out;
    }
    if (EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(d2 - jwt)) != 1) {
        ERR_clear_error();
        err_set(e, "could not parse token: crypto/rsa: verification error");
        goto out;
    }

    int64_t exp, iat, nbf;
    if (numeric_date(claims, "exp", &exp) || numeric_date(claims, "iat", &iat) ||
        numeric_date(claims, "nbf", &nbf)) {
        err_set(e, "could not parse token: malformed token claims");
        goto out;
    }
    /* golang-jwt v4 RegisteredClaims.Valid: the last failing check wins. */
    const char *why = NULL;
    char expired[96];
    if (json_object_get(claims, "exp") && now_s >= exp) {
        char d[48];
        go_dur(now_s - exp, d, sizeof(d));
        snprintf(expired, sizeof(expired), "token is expired by %s", d);
        why = expired;
    }
    if (json_object_get(claims, "iat") && now_s < iat)
        why = "token used before issued";
    if (json_object_get(claims, "nbf") && now_s < nbf)
        why = "token is not valid yet";
    if (why) {
        err_set(e, "could not parse token: %s", why);
        goto out;
    }
    *claims_out = claims;
    claims = NULL;
    *kid_out = kid;
    rc = 0;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    free(keypem);
    free(sig);
    free(hraw);
    free(craw);
    json_decref(hdr);
    json_decref(claims);
    return rc;
}

/* A string claim: "" when absent or null; -1 when of another type. */
static int str_claim(const json_t *claims, const char *name, char **out)
{
    const json_t *v = json_object_get(claims, name);
    if (!v || json_is_null(v)) {
        *out = xstrdup("");
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    *out = xstrndup(json_string_value(v), json_string_length(v));
    return 0;
}

/* Adds the registered claims Kuma sets: exp, nbf, iat, jti. */
static void registered_claims(json_t *c, int64_t now_s, int64_t valid_for_ns)
{
    char jti[37];
    uuid_v4(jti);
    json_object_set_new(c, "exp", json_integer(now_s + valid_for_ns / NS_PER_S));
    json_object_set_new(c, "nbf", json_integer(now_s - NBF_SKEW_S));
    json_object_set_new(c, "iat", json_integer(now_s));
    json_object_set_new(c, "jti", json_string(jti));
}

/* ---- dataplane tokens ---------------------------------------------------------- */

void token_dp_claims_free(struct token_dp_claims *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->mesh);
    free(c->type);
    free(c->jti);
    json_decref(c->tags);
    memset(c, 0, sizeof(*c));
}

int token_dataplane_issue_at(const char *key_pem, int kid, const char *name, const char *mesh,
                             const json_t *tags, const char *type, int64_t valid_for_ns,
                             int64_t now, char **jwt, struct err *e)
{
    if (valid_for_ns <= 0)
        return err_set(e, "validFor has to be greater than 0");
    if (kid < 0)
        return err_set(e, "invalid signing key serial number %d", kid);
    json_t *norm = NULL;
    if (ca_tags_normalize(tags, &norm, e) != 0)
        return -1;
    json_t *c = json_object();
    json_object_set_new(c, "Name", json_string(name ? name : ""));
    json_object_set_new(c, "Mesh", json_string(mesh ? mesh : ""));
    json_object_set_new(c, "Tags", norm);
    json_object_set_new(c, "Type", json_string(type ? type : ""));
    registered_claims(c, now / NS_PER_S, valid_for_ns);
    int rc = jws_sign(key_pem, kid, c, jwt, e);
    json_decref(c);
    return rc;
}

int token_dataplane_issue(const char *key_pem, int kid, const char *name, const char *mesh,
                          const json_t *tags, const char *type, int64_t valid_for_ns, char **jwt,
                          struct err *e)
{
    return token_dataplane_issue_at(key_pem, kid, name, mesh, tags, type, valid_for_ns, now_ns(),
                                    jwt, e);
}

int token_dataplane_verify_at(const char *jwt, token_key_lookup_fn *lookup, void *ud,
                              const char *expected_mesh, const char *expected_name, int64_t now,
                              struct token_dp_claims *out, struct err *e)
{
    json_t *claims = NULL;
    struct token_dp_claims c = {0};
    int kid = 0;
    if (!expected_mesh || !*expected_mesh)
        return err_set(e, "could not parse token: no mesh to take the signing key from");
    if (jws_verify(jwt, expected_mesh, lookup, ud, now / NS_PER_S, &claims, &kid, e) != 0)
        return -1;
    int rc = -1;
    const json_t *tags = json_object_get(claims, "Tags");
    if (str_claim(claims, "Name", &c.name) || str_claim(claims, "Mesh", &c.mesh) ||
        str_claim(claims, "Type", &c.type) || str_claim(claims, "jti", &c.jti) ||
        ca_tags_normalize(tags, &c.tags, NULL) != 0) {
        err_set(e, "could not parse token: malformed token claims");
        goto out;
    }
    (void)numeric_date(claims, "iat", &c.iat);
    (void)numeric_date(claims, "nbf", &c.nbf);
    (void)numeric_date(claims, "exp", &c.exp);
    c.kid = kid;
    if (expected_name && *c.name && strcmp(expected_name, c.name) != 0) {
        err_set(e, "proxy name from requestor: %s is different than in token: %s", expected_name,
                c.name);
        goto out;
    }
    if (*c.mesh && strcmp(expected_mesh, c.mesh) != 0) {
        err_set(e, "proxy mesh from requestor: %s is different than in token: %s", expected_mesh,
                c.mesh);
        goto out;
    }
    *out = c;
    memset(&c, 0, sizeof(c));
    rc = 0;
out:
    token_dp_claims_free(&c);
    json_decref(claims);
    return rc;
}

int token_dataplane_verify(const char *jwt, token_key_lookup_fn *lookup, void *ud,
                           const char *expected_mesh, const char *expected_name,
                           struct token_dp_claims *out, struct err *e)
{
    return token_dataplane_verify_at(jwt, lookup, ud, expected_mesh, expected_name, now_ns(), out,
                                     e);
}

/* Go's %q of a []string: ["a" "b"]. */
static void quoted_list(struct buf *b, const json_t *arr)
{
    size_t i;
    json_t *v;
    buf_append(b, "[", 1);
    json_array_foreach(arr, i, v)
    {
        buf_printf(b, "%s\"%s\"", i ? " " : "", json_string_value(v));
    }
    buf_append(b, "]", 1);
}

int token_dataplane_check_tags(const json_t *token_tags, const json_t *dp_tags, struct err *e)
{
    const char *k;
    json_t *allowed;
    if (!json_is_object(token_tags))
        return 0;
    json_object_foreach((json_t *)token_tags, k, allowed)
    {
        const json_t *have = json_is_object(dp_tags) ? json_object_get(dp_tags, k) : NULL;
        if (!json_is_array(have))
            return err_set(e, "dataplane has no tag \"%s\" required by the token", k);
        size_t i, j;
        json_t *v, *a;
        json_array_foreach(have, i, v)
        {
            int ok = 0;
            json_array_foreach(allowed, j, a)
            {
                ok |= json_equal(a, v);
            }
            if (!ok) {
                struct buf b;
                buf_init(&b, 0);
                quoted_list(&b, allowed);
                err_set(e,
                        "dataplane contains tag \"%s\" with value \"%s\" which is not allowed "
                        "with this token. Allowed values in token are %s",
                        k, json_string_value(v), buf_str(&b));
                buf_free(&b);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- user tokens ------------------------------------------------------------------ */

void token_user_claims_free(struct token_user_claims *c)
{
    if (!c)
        return;
    free(c->name);
    for (size_t i = 0; i < c->ngroups; i++)
        free(c->groups[i]);
    free(c->groups);
    free(c->jti);
    memset(c, 0, sizeof(*c));
}

int token_user_issue_at(const char *key_pem, int kid, const char *name, const char *const *groups,
                        size_t ngroups, int64_t valid_for_ns, int64_t now, char **jwt,
                        struct err *e)
{
    if (valid_for_ns <= 0)
        return err_set(e, "validFor has to be greater than 0");
    if (!name || !*name)
        return err_set(e, "name has to be defined");
    json_t *c = json_object();
    json_object_set_new(c, "Name", json_string(name));
    json_t *g = json_array();
    for (size_t i = 0; i < ngroups; i++)
        json_array_append_new(g, json_string(groups[i]));
    json_object_set_new(c, "Groups", g);
    registered_claims(c, now / NS_PER_S, valid_for_ns);
    int rc = jws_sign(key_pem, kid, c, jwt, e);
    json_decref(c);
    return rc;
}

int token_user_issue(const char *key_pem, int kid, const char *name, const char *const *groups,
                     size_t ngroups, int64_t valid_for_ns, char **jwt, struct err *e)
{
    return token_user_issue_at(key_pem, kid, name, groups, ngroups, valid_for_ns, now_ns(), jwt, e);
}

int token_admin_issue(const char *key_pem, int kid, int64_t valid_for_ns, char **jwt, struct err *e)
{
    const char *groups[] = {TOKEN_ADMIN_GROUP};
    return token_user_issue(key_pem, kid, TOKEN_ADMIN_USER, groups, 1, valid_for_ns, jwt, e);
}

int token_user_verify_at(const char *jwt, token_key_lookup_fn *lookup, void *ud, int64_t now,
                         struct token_user_claims *out, struct err *e)
{
    json_t *claims = NULL;
    struct token_user_claims c = {0};
    int kid = 0;
    if (jws_verify(jwt, "", lookup, ud, now / NS_PER_S, &claims, &kid, e) != 0)
        return -1;
    int rc = -1;
    const json_t *groups = json_object_get(claims, "Groups");
    if (str_claim(claims, "Name", &c.name) || str_claim(claims, "jti", &c.jti) ||
        (groups && !json_is_null(groups) && !json_is_array(groups)) ||
        json_array_size(groups) > 256) {
        err_set(e, "could not parse token: malformed token claims");
        goto out;
    }
    c.groups = xcalloc(json_array_size(groups) + 1, sizeof(char *));
    size_t i;
    json_t *v;
    json_array_foreach(groups, i, v)
    {
        if (!json_is_string(v)) {
            err_set(e, "could not parse token: malformed token claims");
            goto out;
        }
        c.groups[c.ngroups++] = xstrdup(json_string_value(v));
    }
    (void)numeric_date(claims, "iat", &c.iat);
    (void)numeric_date(claims, "nbf", &c.nbf);
    (void)numeric_date(claims, "exp", &c.exp);
    c.kid = kid;
    *out = c;
    memset(&c, 0, sizeof(c));
    rc = 0;
out:
    token_user_claims_free(&c);
    json_decref(claims);
    return rc;
}

int token_user_verify(const char *jwt, token_key_lookup_fn *lookup, void *ud,
                      struct token_user_claims *out, struct err *e)
{
    return token_user_verify_at(jwt, lookup, ud, now_ns(), out, e);
}
