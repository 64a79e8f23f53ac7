/*
 * pki — OpenSSL 3 helpers shared by the ca module: key generation and PEM
 * I/O, name and extension building in Go's crypto/x509 layout, signing, and
 * the base64 variants tokens and DataSources need. See pki.h for contracts.
 */
#include "ca/pki.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ca__valid_trust_domain(const char *s)
{
    if (!s || !*s || strlen(s) > 255)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int ca__ossl_err(struct err *e, const char *what)
{
    unsigned long code = ERR_peek_last_error();
    char buf[256] = "";
    if (code)
        ERR_error_string_n(code, buf, sizeof(buf));
    ERR_clear_error();
    if (buf[0])
        return err_set(e, "%s: %s", what, buf);
    return err_set(e, "%s", what);
}

EVP_PKEY *ca__keygen(enum ca_key_type t, int rsa_bits, struct err *e)
{
    EVP_PKEY *k = NULL;
    if (t == CA_KEY_ECDSA_P256)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(rsa_bits > 0 ? rsa_bits : 2048));
    if (!k)
        ca__ossl_err(e, "failed to generate a private key");
    return k;
}

/* Copies a memory BIO's contents into a new NUL-terminated string. */
static char *bio_to_string(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n < 0)
        n = 0;
    char *s = xmalloc((size_t)n + 1);
    if (n > 0)
        memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

char *ca__key_to_pem(EVP_PKEY *k, struct err *e)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (!b) {
        ca__ossl_err(e, "failed to encode a private key");
        return NULL;
    }
    int ok;
    if (EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "EC"))
        ok = PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL);
    else
        ok = PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    if (ok)
        out = bio_to_string(b);
    else
        ca__ossl_err(e, "failed to encode a private key");
    /* Wipe the BIO's copy of the key before its buffer goes back to the heap. */
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (p && n > 0)
        OPENSSL_cleanse(p, (size_t)n);
    BIO_free(b);
    return out;
}

char *ca__cert_to_pem(X509 *x, struct err *e)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (b && PEM_write_bio_X509(b, x))
        out = bio_to_string(b);
    else
        ca__ossl_err(e, "failed to encode a certificate");
    BIO_free(b);
    return out;
}

int ca__export_pems(X509 *x, EVP_PKEY *k, char **cert_pem, char **key_pem, struct err *e)
{
    char *c = ca__cert_to_pem(x, e);
    if (!c)
        return -1;
    char *kp = ca__key_to_pem(k, e);
    if (!kp) {
        free(c);
        return -1;
    }
    *cert_pem = c;
    *key_pem = kp;
    return 0;
}

/* A read-only BIO over a bounded PEM string. */
static BIO *pem_bio(const char *pem, struct err *e)
{
    if (!pem) {
        err_set(e, "no PEM data");
        return NULL;
    }
    size_t n = strnlen(pem, CA_PEM_MAX + 1);
    if (n > CA_PEM_MAX) {
        err_set(e, "PEM data larger than %d bytes", CA_PEM_MAX);
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    if (!b)
        ca__ossl_err(e, "out of memory");
    return b;
}

X509 *ca__cert_from_pem(const char *pem, struct err *e)
{
    BIO *b = pem_bio(pem, e);
    if (!b)
        return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!x)
        ca__ossl_err(e, "failed to parse a certificate");
    return x;
}

/* A passphrase callback that refuses: encrypted keys are not supported and
 * OpenSSL must never prompt on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

EVP_PKEY *ca__key_from_pem(const char *pem, struct err *e)
{
    BIO *b = pem_bio(pem, e);
    if (!b)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    BIO_free(b);
    if (!k)
        ca__ossl_err(e, "failed to parse a private key");
    return k;
}

EVP_PKEY *ca__any_key_from_pem(const char *pem, struct err *e)
{
    BIO *b = pem_bio(pem, e);
    if (!b)
        return NULL;
    /* Selection 0 accepts a private key, a SubjectPublicKeyInfo "PUBLIC KEY"
     * and a PKCS#1 "RSA PUBLIC KEY", which Kuma's signing-key accessor reads. */
    EVP_PKEY *k = NULL;
    OSSL_DECODER_CTX *d = OSSL_DECODER_CTX_new_for_pkey(&k, "PEM", NULL, NULL, 0, NULL, NULL);
    if (!d || !OSSL_DECODER_from_bio(d, b)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    OSSL_DECODER_CTX_free(d);
    BIO_free(b);
    if (!k)
        ca__ossl_err(e, "failed to parse a key");
    return k;
}

const EVP_MD *ca__digest_for(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(k, "EC")) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits > 384)
            return EVP_sha512();
        if (bits > 256)
            return EVP_sha384();
    }
    return EVP_sha256();
}

int ca__set_serial_random(X509 *x, int include_zero, struct err *e)
{
    BIGNUM *bn = BN_new(), *range = BN_new();
    int rc = -1;
    if (!bn || !range)
        goto out;
    /* range = 2^128 - 1: [0, range) then +1 gives [1, 2^128-1] (Kuma's issuer);
     * with include_zero, range = 2^128 gives [0, 2^128) (Kuma's pkg/tls). */
    if (!BN_set_bit(range, 128))
        goto out;
    if (!include_zero && !BN_sub_word(range, 1))
        goto out;
    if (!BN_rand_range(bn, range))
        goto out;
    if (!include_zero && !BN_add_word(bn, 1))
        goto out;
    if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto out;
    rc = 0;
out:
    if (rc)
        ca__ossl_err(e, "failed to generate a serial number");
    BN_free(bn);
    BN_free(range);
    return rc;
}

/* Go's isPrintable (crypto/x509/pkix): PrintableString's alphabet plus '*'
 * and '&', which Go tolerates for compatibility. */
int ca__go_printable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (strchr(" '()+,-./:=?*&", c))
            continue;
        return 0;
    }
    return 1;
}

int ca__name_add(X509_NAME *n, int nid, const char *value, struct err *e)
{
    int type = ca__go_printable(value) ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;
    if (!X509_NAME_add_entry_by_NID(n, nid, type, (const unsigned char *)value, -1, -1, 0))
        return ca__ossl_err(e, "failed to build a certificate name");
    return 0;
}

int ca__set_validity(X509 *x, int64_t nb, int64_t na, struct err *e)
{
    if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na))
        return ca__ossl_err(e, "failed to set the validity period");
    return 0;
}

int ca__add_key_usage(X509 *x, unsigned bits, struct err *e)
{
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    int rc = -1;
    if (!bs)
        goto out;
    for (int i = 0; i < 9; i++)
        if ((bits & (1u << i)) && !ASN1_BIT_STRING_set_bit(bs, i, 1))
            goto out;
    if (X509_add1_ext_i2d(x, NID_key_usage, bs, 1, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    ASN1_BIT_STRING_free(bs);
    return rc ? ca__ossl_err(e, "failed to add key usage") : 0;
}

int ca__add_ext_key_usage(X509 *x, int server_auth, int client_auth, struct err *e)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    int rc = -1;
    if (!eku)
        goto out;
    /* OBJ_nid2obj returns static objects; freeing them later is a no-op. */
    if (server_auth && !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)))
        goto out;
    if (client_auth && !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)))
        goto out;
    if (X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return rc ? ca__ossl_err(e, "failed to add extended key usage") : 0;
}

int ca__add_basic_constraints(X509 *x, int is_ca, struct err *e)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    int rc = -1;
    if (!bc)
        goto out;
    bc->ca = is_ca ? 0xFF : 0;
    if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    BASIC_CONSTRAINTS_free(bc);
    return rc ? ca__ossl_err(e, "failed to add basic constraints") : 0;
}

int ca__add_subject_key_id(X509 *x, struct err *e)
{
    const ASN1_BIT_STRING *pk = X509_get0_pubkey_bitstr(x);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASN1_OCTET_STRING *os = NULL;
    int rc = -1;
    if (!pk || !EVP_Digest(pk->data, (size_t)pk->length, md, &mdlen, EVP_sha256(), NULL))
        goto out;
    os = ASN1_OCTET_STRING_new();
    if (!os || !ASN1_OCTET_STRING_set(os, md, 20))
        goto out;
    if (X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    ASN1_OCTET_STRING_free(os);
    return rc ? ca__ossl_err(e, "failed to add the subject key id") : 0;
}

int ca__add_authority_key_id(X509 *x, X509 *issuer, struct err *e)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    if (!ski || ski->length == 0)
        return 0;
    if (X509_NAME_cmp(X509_get_subject_name(issuer), X509_get_subject_name(x)) == 0)
        return 0;
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    int rc = -1;
    if (!akid)
        goto out;
    akid->keyid = ASN1_OCTET_STRING_dup(ski);
    if (!akid->keyid)
        goto out;
    if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    AUTHORITY_KEYID_free(akid);
    return rc ? ca__ossl_err(e, "failed to add the authority key id") : 0;
}

/* One GENERAL_NAME for a SAN entry, or NULL (e filled). */
static GENERAL_NAME *san_entry(const struct ca__san *s, struct err *e)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (!g) {
        ca__ossl_err(e, "out of memory");
        return NULL;
    }
    if (s->kind == CA__SAN_IP) {
        unsigned char addr[16];
        int len = 0;
        if (inet_pton(AF_INET, s->value, addr) == 1)
            len = 4;
        else if (inet_pton(AF_INET6, s->value, addr) == 1)
            len = 16;
        ASN1_OCTET_STRING *os = len ? ASN1_OCTET_STRING_new() : NULL;
        if (!os || !ASN1_OCTET_STRING_set(os, addr, len)) {
            ASN1_OCTET_STRING_free(os);
            GENERAL_NAME_free(g);
            err_set(e, "invalid IP address \"%s\"", s->value);
            return NULL;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, os);
        return g;
    }
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (!ia5 || !ASN1_STRING_set(ia5, s->value, -1)) {
        ASN1_IA5STRING_free(ia5);
        GENERAL_NAME_free(g);
        ca__ossl_err(e, "out of memory");
        return NULL;
    }
    GENERAL_NAME_set0_value(g, s->kind == CA__SAN_URI ? GEN_URI : GEN_DNS, ia5);
    return g;
}

int ca__add_san(X509 *x, const struct ca__san *sans, size_t n, int critical, struct err *e)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = -1;
    if (!gens) {
        ca__ossl_err(e, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        GENERAL_NAME *g = san_entry(&sans[i], e);
        if (!g)
            goto out;
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            ca__ossl_err(e, "out of memory");
            goto out;
        }
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) != 1) {
        ca__ossl_err(e, "failed to add subject alternative names");
        goto out;
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

int ca__sign(X509 *x, EVP_PKEY *key, struct err *e)
{
    if (X509_sign(x, key, ca__digest_for(key)) <= 0)
        return ca__ossl_err(e, "failed to sign the certificate");
    return 0;
}

int ca__asn1_time_to_s(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* ---- base64 ---------------------------------------------------------------- */

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *ca__b64url_encode(const unsigned char *p, size_t n)
{
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alpha[v >> 18 & 63];
        out[o++] = b64url_alpha[v >> 12 & 63];
        out[o++] = b64url_alpha[v >> 6 & 63];
        out[o++] = b64url_alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url_alpha[v >> 18 & 63];
        out[o++] = b64url_alpha[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url_alpha[v >> 18 & 63];
        out[o++] = b64url_alpha[v >> 12 & 63];
        out[o++] = b64url_alpha[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

/* Value of a base64 character in either alphabet (url-only or std-only when
 * asked), or -1. */
static int b64_val(unsigned char c, int url, int std)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (url && c == '-')
        return 62;
    if (url && c == '_')
        return 63;
    if (std && c == '+')
        return 62;
    if (std && c == '/')
        return 63;
    return -1;
}

/* Decodes n unpadded characters; strict about the unused trailing bits so
 * that every input has exactly one encoding. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *outlen, int url, int std)
{
    if (n % 4 == 1)
        return NULL;
    unsigned char *out = xmalloc(n / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i], url, std);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* non-zero padding bits */
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

unsigned char *ca__b64url_decode(const char *s, size_t n, size_t *outlen)
{
    return b64_decode(s, n, outlen, 1, 0);
}

unsigned char *ca__b64_decode_any(const char *s, size_t n, size_t *outlen)
{
    /* Padding is optional but, when present, must complete the last quantum. */
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && (n + pad) % 4 != 0)
        return NULL;
    int url = 0, std = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' || s[i] == '_')
            url = 1;
        if (s[i] == '+' || s[i] == '/')
            std = 1;
    }
    if (url && std)
        return NULL;
    return b64_decode(s, n, outlen, !std, !url);
}

/* The certificate's subjectPublicKeyInfo straight from the P-256 key's
 * point. X509_set_pubkey gets there by encoding the key through OpenSSL 3's
 * encoders and decoding the result back, which was 18 % of kuma-cp's
 * cold-start CPU with one admin certificate per proxy (and costs the same in
 * every workload certificate). Any other key takes X509_set_pubkey. */
int ca__set_pubkey(X509 *x, EVP_PKEY *key)
{
    unsigned char point[65];
    size_t len = 0;
    char group[32];
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        NULL) ||
        strcmp(group, "prime256v1") != 0 ||
        !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof(point), &len) ||
        len != sizeof(point))
        return X509_set_pubkey(x, key);
    unsigned char *bits = OPENSSL_malloc(len);
    if (!bits)
        return 0;
    memcpy(bits, point, len);
    if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), bits, (int)len)) {
        OPENSSL_free(bits);
        return 0;
    }
    return 1;
}
