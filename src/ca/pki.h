/*
 * pki — internal helpers shared by the files of the ca module (not part of
 * its API; the `ca__` prefix marks them). They wrap OpenSSL 3's EVP and X509
 * calls so that every certificate this module writes is laid out the way Go's
 * crypto/x509 (which Kuma uses) lays it out: extension order KeyUsage, ExtKeyUsage,
 * BasicConstraints, SubjectKeyId, AuthorityKeyId, SubjectAltName; KeyUsage and
 * BasicConstraints critical; SAN critical only when the subject is empty.
 *
 * Every function that can fail fills a struct err (OpenSSL's queued error text
 * appended) and returns NULL or -1. None of them logs; none prints key
 * material.
 */
#ifndef CA_PKI_H
#define CA_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "core/util.h"

/* Key usage bits, numbered as in RFC 5280 4.2.1.3. */
#define CA__KU_DIGITAL_SIGNATURE (1u << 0)
#define CA__KU_KEY_ENCIPHERMENT  (1u << 2)
#define CA__KU_KEY_AGREEMENT     (1u << 4)
#define CA__KU_KEY_CERT_SIGN     (1u << 5)
#define CA__KU_CRL_SIGN          (1u << 6)

/* Fills e with "<what>: <OpenSSL error text>" and clears OpenSSL's error queue. */
int ca__ossl_err(struct err *e, const char *what);

/* A mesh name usable as a SPIFFE trust domain: letters, digits, '.', '-', '_'. */
int ca__valid_trust_domain(const char *s);
/* Go's isPrintable (crypto/x509/pkix): whether a name is written as a
 * PrintableString (its alphabet plus '*' and '&') or else a UTF8String. */
int ca__go_printable(const char *s);

/* A new private key: RSA with rsa_bits (2048 when 0) or ECDSA P-256. */
EVP_PKEY *ca__keygen(enum ca_key_type t, int rsa_bits, struct err *e);

/* X509_set_pubkey, without OpenSSL 3's encode/decode round trip for P-256
 * keys (other keys take X509_set_pubkey). 1 on success. */
int ca__set_pubkey(X509 *x, EVP_PKEY *key);

/* PEM text of a private key in the "traditional" form Go's Kuma writes:
 * "RSA PRIVATE KEY" (PKCS#1) or "EC PRIVATE KEY" (SEC 1); other key types as
 * PKCS#8 "PRIVATE KEY". Caller frees. */
char *ca__key_to_pem(EVP_PKEY *k, struct err *e);
/* PEM text of a certificate; caller frees. */
char *ca__cert_to_pem(X509 *x, struct err *e);
/* Both PEMs of an issued certificate and its key (ca__cert_to_pem,
 * ca__key_to_pem): 0 with *cert_pem and *key_pem set (caller frees), or -1
 * with e filled and the out-parameters untouched. */
int ca__export_pems(X509 *x, EVP_PKEY *k, char **cert_pem, char **key_pem, struct err *e);
/* The first CERTIFICATE block of pem (at most CA_PEM_MAX bytes). */
X509 *ca__cert_from_pem(const char *pem, struct err *e);
/* The first private key block of pem (PKCS#1, SEC 1 or unencrypted PKCS#8). */
EVP_PKEY *ca__key_from_pem(const char *pem, struct err *e);
/* A private key, or else a public key ("PUBLIC KEY" / "RSA PUBLIC KEY"). */
EVP_PKEY *ca__any_key_from_pem(const char *pem, struct err *e);

/* The digest Go picks to sign with key k: SHA-256 for RSA and P-256, SHA-384
 * for P-384, SHA-512 for P-521, none (NULL) for Ed25519. */
const EVP_MD *ca__digest_for(EVP_PKEY *k);

/* A random serial in [1, 2^128-1] (Kuma's workload rule) or, with
 * include_zero, in [0, 2^128-1] (Kuma's pkg/tls rule). */
int ca__set_serial_random(X509 *x, int include_zero, struct err *e);

/* Appends an attribute to a name as a PrintableString when every character
 * allows it, otherwise a UTF8String (Go's choice). */
int ca__name_add(X509_NAME *n, int nid, const char *value, struct err *e);
/* Validity window from seconds since the epoch. */
int ca__set_validity(X509 *x, int64_t not_before_s, int64_t not_after_s, struct err *e);

int ca__add_key_usage(X509 *x, unsigned bits, struct err *e);
int ca__add_ext_key_usage(X509 *x, int server_auth, int client_auth, struct err *e);
int ca__add_basic_constraints(X509 *x, int is_ca, struct err *e);
/* SubjectKeyId = leftmost 160 bits of SHA-256 over the subjectPublicKey bits
 * (RFC 7093 method 1, what Go 1.25+ generates for CA certificates). */
int ca__add_subject_key_id(X509 *x, struct err *e);
/* AuthorityKeyId(keyid) = issuer's SubjectKeyId, added only when the issuer
 * has one and its subject differs from x's (Go's rule). */
int ca__add_authority_key_id(X509 *x, X509 *issuer, struct err *e);

/* One SubjectAltName entry. */
enum ca__san_kind { CA__SAN_URI, CA__SAN_DNS, CA__SAN_IP };
struct ca__san {
    enum ca__san_kind kind;
    const char *value; /* URI, DNS name, or IP text (v4 or v6) */
};
int ca__add_san(X509 *x, const struct ca__san *sans, size_t n, int critical, struct err *e);

/* Signs x with key (digest from ca__digest_for). */
int ca__sign(X509 *x, EVP_PKEY *key, struct err *e);

/* Seconds since the epoch of an ASN1_TIME. */
int ca__asn1_time_to_s(const ASN1_TIME *t, int64_t *out);

/* Strict base64url (RFC 4648 §5, no padding) as JWS uses it. */
char *ca__b64url_encode(const unsigned char *p, size_t n);
/* Returns NULL on any byte outside the alphabet, on padding, or a bad length. */
unsigned char *ca__b64url_decode(const char *s, size_t n, size_t *outlen);
/* Lenient standard base64 as protobuf JSON reads bytes: both alphabets,
 * padding optional. NULL on bad input. The result is NUL-terminated. */
unsigned char *ca__b64_decode_any(const char *s, size_t n, size_t *outlen);

#endif
