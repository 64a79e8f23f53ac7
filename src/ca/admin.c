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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

int ca_admin_issue(const char *ca_cert_pem, const char *ca_key_pem, int server,
                   const char *const *hosts, size_t nhosts, char **cert_pem, char **key_pem,
                   struct err *e)
{
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *cakey = NULL;
    unsigned char priv[P256_LEN], point[P256_POINT_LEN];
    struct ca__san sans[MAX_HOSTS];
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
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3) || !set_p256_pubkey(x, point) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca))) {
        ca__ossl_err(e, "could not issue an admin certificate");
        goto out;
    }
    int64_t now = now_ns() / NS_PER_S;
    if (ca__name_add(X509_get_subject_name(x), NID_commonName, hosts[0], e) ||
        ca__set_serial_random(x, 0, e) || ca__set_validity(x, now - 300, now + TEN_YEARS, e) ||
        ca__add_key_usage(x, CA__KU_DIGITAL_SIGNATURE | CA__KU_KEY_ENCIPHERMENT, e) ||
        ca__add_ext_key_usage(x, server, !server, e) || ca__add_basic_constraints(x, 0, e) ||
        ca__add_subject_key_id(x, e) || ca__add_authority_key_id(x, ca, e) ||
        ca__add_san(x, sans, nhosts, 0, e) || ca__sign(x, cakey, e))
        goto out;
    char *c = ca__cert_to_pem(x, e);
    if (!c)
        goto out;
    *cert_pem = c;
    *key_pem = ca__admin_p256_key_pem(priv, point);
    rc = 0;
out:
    OPENSSL_cleanse(priv, sizeof(priv));
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(cakey);
    return rc;
}
