/*
 * ca/admin — the Envoy admin CA (see admin.h).
 */
#include "ca/admin.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
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

int ca_admin_issue(const char *ca_cert_pem, const char *ca_key_pem, int server,
                   const char *const *hosts, size_t nhosts, char **cert_pem, char **key_pem,
                   struct err *e)
{
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *cakey = NULL, *key = NULL;
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
    if (!(key = ca__keygen(CA_KEY_ECDSA_P256, 0, e)))
        goto out;
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3) || !ca__set_pubkey(x, key) ||
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
    if (ca__export_pems(x, key, cert_pem, key_pem, e))
        goto out;
    rc = 0;
out:
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    return rc;
}
