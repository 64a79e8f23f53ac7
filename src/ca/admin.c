/*
 * ca/admin — the Envoy admin CA (see admin.h).
 */
#include "ca/admin.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/pki.h"

#define NS_PER_S  1000000000LL
#define TEN_YEARS (10LL * 365 * 24 * 3600)
#define MAX_HOSTS 16

int ca_admin_generate(char **cert_pem, char **key_pem, struct err *e)
{
    EVP_PKEY *key = ca__keygen(CA_KEY_ECDSA_P256, 0, e);
    X509 *x = NULL;
    int rc = -1;
    if (!key)
        return -1;
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key)) {
        ca__ossl_err(e, "could not generate the envoy admin CA");
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (ca__name_add(name, NID_organizationName, "Kuma", e) ||
        ca__name_add(name, NID_organizationalUnitName, "Mesh", e) ||
        ca__name_add(name, NID_commonName, "Envoy Admin CA", e))
        goto out;
    if (!X509_set_issuer_name(x, name)) {
        ca__ossl_err(e, "out of memory");
        goto out;
    }
    int64_t now = now_ns() / NS_PER_S;
    if (ca__set_serial_random(x, 0, e) || ca__set_validity(x, now - 300, now + TEN_YEARS, e) ||
        ca__add_key_usage(x, CA__KU_KEY_CERT_SIGN | CA__KU_CRL_SIGN | CA__KU_DIGITAL_SIGNATURE,
                          e) ||
        ca__add_basic_constraints(x, 1, e) || ca__add_subject_key_id(x, e) || ca__sign(x, key, e))
        goto out;
    if (ca__export_pems(x, key, cert_pem, key_pem, e))
        goto out;
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

char *ca_admin_secret_value(const char *cert_pem, const char *key_pem)
{
    return xasprintf("%s%s", cert_pem, key_pem);
}

int ca_admin_split(const char *data, size_t len, char **cert_pem, char **key_pem, struct err *e)
{
    if (!data || len == 0 || len > CA_PEM_MAX)
        return err_set(e, "GlobalSecret %s is empty or too large", CA_ADMIN_SECRET);
    char *text = xstrndup(data, len);
    struct err ie;
    X509 *x = ca__cert_from_pem(text, &ie);
    EVP_PKEY *k = x ? ca__key_from_pem(text, &ie) : NULL;
    int rc = -1;
    if (!x || !k) {
        err_set(e, "GlobalSecret %s does not hold a certificate and a key: %s", CA_ADMIN_SECRET,
                ie.msg);
        goto out;
    }
    if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        err_set(e, "GlobalSecret %s: the key does not match the certificate", CA_ADMIN_SECRET);
        goto out;
    }
    if (ca__export_pems(x, k, cert_pem, key_pem, e))
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(text, len);
    free(text);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The CA as parsed last time. A control plane issues one admin certificate
 * per dataplane from the same CA, and parsing its PEM key with OpenSSL 3's
 * decoders cost as much as the rest of the issue together (docs/xds.md,
 * "Cost of a connection"): keep the parsed pair and hand out references
 * while the PEM strings stay the same. */
static pthread_mutex_t ca_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static char *ca_cache_cert_pem, *ca_cache_key_pem;
static X509 *ca_cache_cert;
static EVP_PKEY *ca_cache_key;

static int ca_parsed(const char *cert_pem, const char *key_pem, X509 **ca, EVP_PKEY **key,
                     struct err *e)
{
    int rc = 0;
    pthread_mutex_lock(&ca_cache_mu);
    if (!cert_pem || !key_pem) {
        rc = err_set(e, "the envoy admin CA is missing");
        goto out;
    }
    if (ca_cache_cert && strcmp(ca_cache_cert_pem, cert_pem) == 0 &&
        strcmp(ca_cache_key_pem, key_pem) == 0) {
        X509_up_ref(ca_cache_cert);
        EVP_PKEY_up_ref(ca_cache_key);
        *ca = ca_cache_cert;
        *key = ca_cache_key;
        goto out;
    }
    X509 *c = ca__cert_from_pem(cert_pem, e);
    EVP_PKEY *k = c ? ca__key_from_pem(key_pem, e) : NULL;
    if (!k) {
        X509_free(c);
        rc = -1;
        goto out;
    }
    X509_free(ca_cache_cert);
    EVP_PKEY_free(ca_cache_key);
    free(ca_cache_cert_pem);
    free(ca_cache_key_pem);
    ca_cache_cert_pem = xstrdup(cert_pem);
    ca_cache_key_pem = xstrdup(key_pem);
    ca_cache_cert = c;
    ca_cache_key = k;
    X509_up_ref(c);
    EVP_PKEY_up_ref(k);
    *ca = c;
    *key = k;
out:
    pthread_mutex_unlock(&ca_cache_mu);
    return rc;
}

/*
 * The leaf's P-256 key pair, without an EVP_PKEY. A control plane issues one
 * admin certificate per dataplane, and with OpenSSL 3 the EVP route cost
 * more in its machinery than in the arithmetic: EVP_PKEY_Q_keygen (a key
 * manager fetch and a parameter round trip per key) and above all the key's
 * PEM through the encoder framework (PEM_write_bio_PrivateKey_traditional
 * builds an encoder chain per call), together over half of an issue
 * (docs/BENCHMARKS.md). The pair is generated as OpenSSL's own EC key
 * generation does it (ec_generate_key: a scalar uniform in [1, n-1] from the
 * private DRBG, the point = scalar * G through EC_POINT_mul, which is
 * constant-time for the generator), on one P-256 group shared read-only by
 * every thread, and the key is written in the same form as before: the
 * "EC PRIVATE KEY" PEM of RFC 5915's ECPrivateKey with the named curve and
 * the public key, which is what OpenSSL's traditional encoder writes for a
 * P-256 key (a test compares the two byte for byte).
 */
static EC_GROUP *p256;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void p256_init(void)
{
    p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

#define P256_LEN       32
#define P256_POINT_LEN (1 + 2 * P256_LEN)

static int p256_keypair(unsigned char priv[P256_LEN], unsigned char point[P256_POINT_LEN],
                        struct err *e)
{
    pthread_once(&p256_once, p256_init);
    if (!p256)
        return ca__ossl_err(e, "no P-256 group");
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *k = BN_secure_new();
    EC_POINT *q = EC_POINT_new(p256);
    int rc = -1;
    if (!ctx || !k || !q)
        goto out;
    do
        if (!BN_priv_rand_range(k, EC_GROUP_get0_order(p256)))
            goto out;
    while (BN_is_zero(k));
    if (!EC_POINT_mul(p256, q, k, NULL, NULL, ctx) ||
        EC_POINT_point2oct(p256, q, POINT_CONVERSION_UNCOMPRESSED, point, P256_POINT_LEN, ctx) !=
            P256_POINT_LEN ||
        BN_bn2binpad(k, priv, P256_LEN) != P256_LEN)
        goto out;
    rc = 0;
out:
    EC_POINT_free(q);
    BN_clear_free(k);
    BN_CTX_free(ctx);
    if (rc < 0) {
        OPENSSL_cleanse(priv, P256_LEN);
        return ca__ossl_err(e, "failed to generate a private key");
    }
    return 0;
}

/* ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING (32),
 * [0] parameters: namedCurve prime256v1, [1] publicKey BIT STRING (65) }:
 * a fixed 121-byte DER whose only variable parts are the two keys. */
static const unsigned char ec_der_head[] = {0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20};
static const unsigned char ec_der_mid[] = {0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                           0x03, 0x01, 0x07, 0xa1, 0x44, 0x03, 0x42, 0x00};
#define EC_DER_LEN (sizeof(ec_der_head) + P256_LEN + sizeof(ec_der_mid) + P256_POINT_LEN)

char *ca__admin_p256_key_pem(const unsigned char priv[32], const unsigned char point[65])
{
    static const char head[] = "-----BEGIN EC PRIVATE KEY-----\n",
                      tail[] = "-----END EC PRIVATE KEY-----\n";
    unsigned char der[EC_DER_LEN];
    size_t n = 0;
    memcpy(der + n, ec_der_head, sizeof(ec_der_head));
    n += sizeof(ec_der_head);
    memcpy(der + n, priv, P256_LEN);
    n += P256_LEN;
    memcpy(der + n, ec_der_mid, sizeof(ec_der_mid));
    n += sizeof(ec_der_mid);
    memcpy(der + n, point, P256_POINT_LEN);
    /* 48 bytes of DER per 64-character line, each line with its newline. */
    size_t lines = (EC_DER_LEN + 47) / 48;
    char *out = xmalloc(sizeof(head) + lines * 65 + sizeof(tail));
    size_t o = sizeof(head) - 1;
    memcpy(out, head, o);
    for (size_t i = 0; i < EC_DER_LEN; i += 48) {
        size_t k = EC_DER_LEN - i < 48 ? EC_DER_LEN - i : 48;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, der + i, (int)k);
        out[o++] = '\n';
    }
    memcpy(out + o, tail, sizeof(tail));
    OPENSSL_cleanse(der, sizeof(der));
    return out;
}

/* The certificate's subjectPublicKeyInfo from the point (id-ecPublicKey,
 * prime256v1), as ca__set_pubkey writes it for a P-256 EVP_PKEY. */
static int set_p256_pubkey(X509 *x, const unsigned char point[P256_POINT_LEN])
{
    unsigned char *bits = OPENSSL_malloc(P256_POINT_LEN);
    if (!bits)
        return 0;
    memcpy(bits, point, P256_POINT_LEN);
    if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), bits,
                                P256_POINT_LEN)) {
        OPENSSL_free(bits);
        return 0;
    }
    return 1;
}

/* ---- the leaf certificate --------------------------------------------------------------- */

/* What one leaf is made of, for both encoders below (so that a test can
 * compare them on the same inputs). */
struct leaf_in {
    int server;
    const char *const *hosts;
    size_t nhosts;
    const struct ca__san *sans;
    const BIGNUM *serial;
    int64_t now; /* seconds */
    const unsigned char *point;
};

/* The serial number as ca__set_serial_random(x, 0) draws it: [1, 2^128 - 1]. */
static BIGNUM *leaf_serial(void)
{
    BIGNUM *bn = BN_new(), *range = BN_new();
    int ok = bn && range && BN_set_bit(range, 128) && BN_sub_word(range, 1) &&
             BN_rand_range(bn, range) && BN_add_word(bn, 1);
    BN_free(range);
    if (!ok) {
        BN_free(bn);
        return NULL;
    }
    return bn;
}

/* The leaf through OpenSSL's X509 builder, signed: the general path (any CA
 * key), and the reference the DER template is tested against. */
static X509 *leaf_x509(X509 *ca, EVP_PKEY *cakey, const struct leaf_in *in, struct err *e)
{
    X509 *x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3) || !set_p256_pubkey(x, in->point) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
        !BN_to_ASN1_INTEGER(in->serial, X509_get_serialNumber(x))) {
        ca__ossl_err(e, "could not issue an admin certificate");
        X509_free(x);
        return NULL;
    }
    if (ca__name_add(X509_get_subject_name(x), NID_commonName, in->hosts[0], e) ||
        ca__set_validity(x, in->now - 300, in->now + TEN_YEARS, e) ||
        ca__add_key_usage(x, CA__KU_DIGITAL_SIGNATURE | CA__KU_KEY_ENCIPHERMENT, e) ||
        ca__add_ext_key_usage(x, in->server, !in->server, e) ||
        ca__add_basic_constraints(x, 0, e) || ca__add_subject_key_id(x, e) ||
        ca__add_authority_key_id(x, ca, e) || ca__add_san(x, in->sans, in->nhosts, 0, e) ||
        ca__sign(x, cakey, e)) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/*
 * The same leaf as DER written from a template. Every admin certificate has
 * the same shape (v3, ecdsa-with-SHA256 by the admin CA, CN and SANs from the
 * hosts, a P-256 key, the same six extensions in the same order), and
 * OpenSSL's X509 builder spent as long assembling and encoding it as the key
 * and the signature took together. The bytes are those leaf_x509 produces
 * for the same inputs (tests/unit/ca/test_admin.c compares them): DER has
 * one encoding per value, and what could vary is fixed here as OpenSSL
 * writes it (UTCTime up to 2049, the KeyUsage bit string without trailing
 * zero bits, basicConstraints CA:FALSE as an empty sequence, critical flags
 * on keyUsage and basicConstraints only, the AKID with the CA's key id only).
 */
struct der {
    unsigned char *p;
    size_t n, cap;
    int overflow;
};

static void der_put(struct der *d, const void *v, size_t n)
{
    if (d->overflow || n > d->cap - d->n) {
        d->overflow = 1;
        return;
    }
    memcpy(d->p + d->n, v, n);
    d->n += n;
}

static void der_hdr(struct der *d, unsigned char tag, size_t len)
{
    unsigned char h[4] = {tag};
    size_t k = 1;
    if (len < 128) {
        h[k++] = (unsigned char)len;
    } else if (len < 256) {
        h[k++] = 0x81;
        h[k++] = (unsigned char)len;
    } else if (len < 65536) {
        h[k++] = 0x82;
        h[k++] = (unsigned char)(len >> 8);
        h[k++] = (unsigned char)len;
    } else {
        d->overflow = 1;
        return;
    }
    der_put(d, h, k);
}

static void der_tlv(struct der *d, unsigned char tag, const void *v, size_t n)
{
    der_hdr(d, tag, n);
    der_put(d, v, n);
}

/* One extension: SEQUENCE { OID 2.5.29.<id>, [critical TRUE], OCTET STRING value }. */
static void der_ext(struct der *d, unsigned char id, int critical, const struct der *value)
{
    unsigned char buf[1024];
    struct der e = {buf, 0, sizeof(buf), value->overflow};
    const unsigned char oid[] = {0x06, 0x03, 0x55, 0x1d, id};
    der_put(&e, oid, sizeof(oid));
    if (critical)
        der_put(&e, "\x01\x01\xff", 3);
    der_tlv(&e, 0x04, value->p, value->n);
    der_tlv(d, 0x30, e.p, e.n);
    d->overflow |= e.overflow;
}

/* ASN1_TIME_set's choice: UTCTime for 1950-2049, GeneralizedTime otherwise. */
static void der_time(struct der *d, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char s[96];
    if (!gmtime_r(&tt, &tm)) {
        d->overflow = 1;
        return;
    }
    int year = tm.tm_year + 1900;
    if (year >= 1950 && year < 2050) {
        snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        der_tlv(d, 0x17, s, 13);
    } else if (year >= 0 && year <= 9999) {
        snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        der_tlv(d, 0x18, s, 15);
    } else {
        d->overflow = 1;
    }
}

static const unsigned char ecdsa_sha256_alg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                                 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

/* Whether leaf_tbs_der applies to this CA: an ECDSA P-256 key (so the
 * signature algorithm is ecdsa-with-SHA256, as ca__digest_for picks) and a
 * subject that cannot equal a leaf's one-entry CN (where ca__add_authority_key_id
 * would leave the AKID out). Anything else takes leaf_x509. */
static int template_fits(X509 *ca, EVP_PKEY *cakey)
{
    return EVP_PKEY_get_base_id(cakey) == EVP_PKEY_EC && EVP_PKEY_get_bits(cakey) == 256 &&
           X509_NAME_entry_count(X509_get_subject_name(ca)) != 1;
}

/* The TBSCertificate into d (d->overflow set when it does not fit, or an
 * input is out of the template's range). */
static void leaf_tbs_der(X509 *ca, const struct leaf_in *in, struct der *d)
{
    unsigned char b1[1024], b2[1024], b3[2048];
    struct der t = {b3, 0, sizeof(b3), 0};
    der_put(&t, "\xa0\x03\x02\x01\x02", 5); /* [0] version v3 */
    /* serialNumber: positive, minimal, a 0x00 first when the top bit is set. */
    unsigned char sn[20];
    int snl = BN_num_bytes(in->serial);
    if (snl < 1 || snl > 17 || BN_bn2bin(in->serial, sn + 1) != snl) {
        d->overflow = 1;
        return;
    }
    sn[0] = 0;
    int pad = (sn[1] & 0x80) != 0;
    der_tlv(&t, 0x02, sn + 1 - pad, (size_t)(snl + pad));
    der_put(&t, ecdsa_sha256_alg, sizeof(ecdsa_sha256_alg));
    /* issuer: the CA's subject as it encodes it. */
    unsigned char *iss = NULL;
    int il = i2d_X509_NAME(X509_get_subject_name(ca), &iss);
    if (il <= 0) {
        d->overflow = 1;
        return;
    }
    der_put(&t, iss, (size_t)il);
    OPENSSL_free(iss);
    /* validity */
    struct der v = {b1, 0, sizeof(b1), 0};
    der_time(&v, in->now - 300);
    der_time(&v, in->now + TEN_YEARS);
    der_tlv(&t, 0x30, v.p, v.n);
    t.overflow |= v.overflow;
    /* subject: SEQUENCE { SET { SEQUENCE { OID commonName, string } } } */
    const char *cn = in->hosts[0];
    size_t cnl = strlen(cn);
    struct der a = {b1, 0, sizeof(b1), 0}, r = {b2, 0, sizeof(b2), 0};
    der_put(&a, "\x06\x03\x55\x04\x03", 5);
    der_tlv(&a, ca__go_printable(cn) ? 0x13 : 0x0c, cn, cnl);
    der_tlv(&r, 0x30, a.p, a.n);
    a.n = 0;
    der_tlv(&a, 0x31, r.p, r.n);
    der_tlv(&t, 0x30, a.p, a.n);
    t.overflow |= a.overflow | r.overflow;
    /* subjectPublicKeyInfo: id-ecPublicKey, prime256v1, the point */
    static const unsigned char spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
    der_put(&t, spki, sizeof(spki));
    der_put(&t, in->point, P256_POINT_LEN);
    /* extensions, in leaf_x509's order */
    struct der x = {b1, 0, sizeof(b1), 0}, val = {b2, 0, sizeof(b2), 0};
    der_put(&val, "\x03\x02\x05\xa0", 4); /* digitalSignature, keyEncipherment */
    der_ext(&x, 0x0f, 1, &val);
    val.n = 0;
    der_put(&val,
            in->server ? "\x30\x0a\x06\x08\x2b\x06\x01\x05\x05\x07\x03\x01"
                       : "\x30\x0a\x06\x08\x2b\x06\x01\x05\x05\x07\x03\x02",
            12);
    der_ext(&x, 0x25, 0, &val);
    val.n = 0;
    der_put(&val, "\x30\x00", 2); /* CA:FALSE */
    der_ext(&x, 0x13, 1, &val);
    unsigned char md[32];
    unsigned int mdl = 0;
    if (!EVP_Digest(in->point, P256_POINT_LEN, md, &mdl, EVP_sha256(), NULL)) {
        d->overflow = 1;
        return;
    }
    val.n = 0;
    der_tlv(&val, 0x04, md, 20);
    der_ext(&x, 0x0e, 0, &val);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
    if (ski && ski->length > 0) {
        struct der k = {b3 + sizeof(b3) / 2, 0, sizeof(b3) / 2, 0};
        der_tlv(&k, 0x80, ski->data, (size_t)ski->length);
        val.n = 0;
        der_tlv(&val, 0x30, k.p, k.n);
        val.overflow |= k.overflow;
        der_ext(&x, 0x23, 0, &val);
    }
    struct der g = {b3 + sizeof(b3) / 2, 0, sizeof(b3) / 2, 0};
    for (size_t i = 0; i < in->nhosts; i++) {
        if (in->sans[i].kind == CA__SAN_IP) {
            unsigned char ip[16];
            if (inet_pton(AF_INET, in->sans[i].value, ip) == 1)
                der_tlv(&g, 0x87, ip, 4);
            else if (inet_pton(AF_INET6, in->sans[i].value, ip) == 1)
                der_tlv(&g, 0x87, ip, 16);
            else
                g.overflow = 1;
        } else {
            der_tlv(&g, 0x82, in->sans[i].value, strlen(in->sans[i].value));
        }
    }
    val.n = 0;
    der_tlv(&val, 0x30, g.p, g.n);
    val.overflow |= g.overflow;
    der_ext(&x, 0x11, 0, &val);
    x.overflow |= val.overflow;
    /* [3] { SEQUENCE of extensions }: x lives in b1, wrap through b2. */
    struct der w = {b2, 0, sizeof(b2), 0};
    der_tlv(&w, 0x30, x.p, x.n);
    der_tlv(&t, 0xa3, w.p, w.n);
    t.overflow |= x.overflow | w.overflow;
    if (t.overflow) {
        d->overflow = 1;
        return;
    }
    der_tlv(d, 0x30, t.p, t.n);
}

/* Certificate ::= SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature }
 * as PEM, signed with the CA's key. NULL with e set on failure. */
static char *leaf_sign_pem(EVP_PKEY *cakey, const struct der *tbs, struct err *e)
{
    unsigned char sig[80], cert[2600];
    size_t sigl = sizeof(sig);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    int ok = mc && EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, cakey) == 1 &&
             EVP_DigestSign(mc, sig + 1, &sigl, tbs->p, tbs->n) == 1;
    EVP_MD_CTX_free(mc);
    if (!ok) {
        ca__ossl_err(e, "failed to sign the certificate");
        return NULL;
    }
    sig[0] = 0; /* BIT STRING: no unused bits */
    unsigned char body[2560];
    struct der b = {body, 0, sizeof(body), 0}, c = {cert, 0, sizeof(cert), 0};
    der_put(&b, tbs->p, tbs->n);
    der_put(&b, ecdsa_sha256_alg, sizeof(ecdsa_sha256_alg));
    der_tlv(&b, 0x03, sig, sigl + 1);
    der_tlv(&c, 0x30, b.p, b.n);
    if (b.overflow || c.overflow) {
        err_set(e, "an admin certificate does not fit the template");
        return NULL;
    }
    static const char head[] = "-----BEGIN CERTIFICATE-----\n",
                      tail[] = "-----END CERTIFICATE-----\n";
    size_t lines = (c.n + 47) / 48;
    char *out = xmalloc(sizeof(head) + lines * 65 + sizeof(tail));
    size_t o = sizeof(head) - 1;
    memcpy(out, head, o);
    for (size_t i = 0; i < c.n; i += 48) {
        size_t k = c.n - i < 48 ? c.n - i : 48;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, c.p + i, (int)k);
        out[o++] = '\n';
    }
    memcpy(out + o, tail, sizeof(tail));
    return out;
}

int ca__admin_tbs_pair(const char *ca_cert_pem, const char *ca_key_pem, int server,
                       const char *const *hosts, size_t nhosts, unsigned char **ref,
                       size_t *ref_len, unsigned char **tmpl, size_t *tmpl_len, struct err *e)
{
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *cakey = NULL;
    BIGNUM *serial = NULL;
    unsigned char priv[P256_LEN], point[P256_POINT_LEN], buf[2048];
    struct ca__san sans[MAX_HOSTS];
    int rc = -1;
    if (nhosts == 0 || nhosts > MAX_HOSTS)
        return err_set(e, "1 to %d hosts", MAX_HOSTS);
    for (size_t i = 0; i < nhosts; i++) {
        sans[i].kind = is_ip(hosts[i]) ? CA__SAN_IP : CA__SAN_DNS;
        sans[i].value = hosts[i];
    }
    if (ca_parsed(ca_cert_pem, ca_key_pem, &ca, &cakey, e) < 0 || p256_keypair(priv, point, e) < 0)
        goto out;
    if (!(serial = leaf_serial())) {
        ca__ossl_err(e, "failed to generate a serial number");
        goto out;
    }
    struct leaf_in in = {server, hosts, nhosts, sans, serial, now_ns() / NS_PER_S, point};
    if (!(x = leaf_x509(ca, cakey, &in, e)))
        goto out;
    unsigned char *p = NULL;
    int n = i2d_re_X509_tbs(x, &p);
    if (n <= 0) {
        ca__ossl_err(e, "i2d_re_X509_tbs");
        goto out;
    }
    struct der d = {buf, 0, sizeof(buf), 0};
    leaf_tbs_der(ca, &in, &d);
    if (d.overflow) {
        OPENSSL_free(p);
        err_set(e, "the template does not fit");
        goto out;
    }
    *ref = xmalloc((size_t)n);
    memcpy(*ref, p, (size_t)n);
    *ref_len = (size_t)n;
    OPENSSL_free(p);
    *tmpl = xmalloc(d.n);
    memcpy(*tmpl, d.p, d.n);
    *tmpl_len = d.n;
    rc = 0;
out:
    OPENSSL_cleanse(priv, sizeof(priv));
    BN_free(serial);
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(cakey);
    return rc;
}

int ca_admin_issue(const char *ca_cert_pem, const char *ca_key_pem, int server,
                   const char *const *hosts, size_t nhosts, char **cert_pem, char **key_pem,
                   struct err *e)
{
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *cakey = NULL;
    BIGNUM *serial = NULL;
    unsigned char priv[P256_LEN], point[P256_POINT_LEN], buf[2048];
    struct ca__san sans[MAX_HOSTS];
    char *c = NULL;
    int rc = -1;
    if (nhosts == 0 || nhosts > MAX_HOSTS)
        return err_set(e, "an admin certificate needs 1 to %d host names", MAX_HOSTS);
    for (size_t i = 0; i < nhosts; i++) {
        if (!hosts[i] || !*hosts[i] || strlen(hosts[i]) > 253)
            return err_set(e, "invalid admin certificate host name");
        sans[i].kind = is_ip(hosts[i]) ? CA__SAN_IP : CA__SAN_DNS;
        sans[i].value = hosts[i];
    }
    if (ca_parsed(ca_cert_pem, ca_key_pem, &ca, &cakey, e) < 0)
        goto out;
    if (p256_keypair(priv, point, e) < 0)
        goto out;
    if (!(serial = leaf_serial())) {
        ca__ossl_err(e, "failed to generate a serial number");
        goto out;
    }
    struct leaf_in in = {server, hosts, nhosts, sans, serial, now_ns() / NS_PER_S, point};
    struct der d = {buf, 0, sizeof(buf), 0};
    int tmpl = template_fits(ca, cakey);
    if (tmpl)
        leaf_tbs_der(ca, &in, &d);
    if (tmpl && !d.overflow) {
        if (!(c = leaf_sign_pem(cakey, &d, e)))
            goto out;
    } else {
        if (!(x = leaf_x509(ca, cakey, &in, e)) || !(c = ca__cert_to_pem(x, e)))
            goto out;
    }
    *cert_pem = c;
    *key_pem = ca__admin_p256_key_pem(priv, point);
    rc = 0;
out:
    OPENSSL_cleanse(priv, sizeof(priv));
    BN_free(serial);
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(cakey);
    return rc;
}
