/*
 * ca/admin — the Envoy admin CA (Kuma's pkg/envoy/admin/tls): one CA per
 * control plane, kept in GlobalSecret `envoy-admin-ca` (certificate PEM
 * followed by key PEM, as Kuma stores it). It issues
 *   - a server certificate per dataplane for its TLS admin listener
 *     `kuma:envoy:admin` (SAN = the dataplane's networking.address), and
 *   - kuma-cp's client certificate (SAN DNS `kuma-cp`), which the admin
 *     listener requires, so only a control plane holding the CA's key can
 *     read a proxy's admin endpoints from the network.
 * Keys are ECDSA P-256 (Kuma: RSA-2048; see docs/differences.md). Pure
 * computation, any thread; never logs key material.
 */
#ifndef CA_ADMIN_H
#define CA_ADMIN_H

#include "core/util.h"

#define CA_ADMIN_SECRET     "envoy-admin-ca"
#define CA_ADMIN_CLIENT_SAN "kuma-cp"

/* A new CA: subject O=Kuma, OU=Mesh, CN=Envoy Admin CA; 10 years; CA:TRUE;
 * keyCertSign|cRLSign. *cert_pem and *key_pem are the caller's. */
int ca_admin_generate(char **cert_pem, char **key_pem, struct err *e);

/* The GlobalSecret's value for a CA: cert PEM then key PEM. Caller frees. */
char *ca_admin_secret_value(const char *cert_pem, const char *key_pem);

/* Splits a GlobalSecret value (first CERTIFICATE block, first private key
 * block) into two PEM strings; -1 with e when either is missing or does not
 * parse. */
int ca_admin_split(const char *data, size_t len, char **cert_pem, char **key_pem, struct err *e);

/* A leaf signed by the CA: server (EKU serverAuth) or client (clientAuth),
 * SANs from hosts (an IP literal becomes an IP SAN, anything else a DNS
 * name), CN = the first host, 10 years (Kuma's util_tls default). */
int ca_admin_issue(const char *ca_cert_pem, const char *ca_key_pem, int server,
                   const char *const *hosts, size_t nhosts, char **cert_pem, char **key_pem,
                   struct err *e);

/* Internal, shared with the tests: the PEM ("EC PRIVATE KEY", RFC 5915
 * ECPrivateKey with the named curve and the public key, base64 in lines of
 * 64 characters) of a P-256 key from its 32-byte scalar and 65-byte
 * uncompressed point: what ca_admin_issue returns as the leaf's key, the
 * same bytes OpenSSL's traditional PEM encoder writes. Caller frees. */
char *ca__admin_p256_key_pem(const unsigned char priv[32], const unsigned char point[65]);

/* Internal, for the tests: one leaf's TBSCertificate both through OpenSSL's
 * X509 builder (*ref) and through ca_admin_issue's DER template (*tmpl), from
 * the same key, serial and time. Both are the caller's (free). */
int ca__admin_tbs_pair(const char *ca_cert_pem, const char *ca_key_pem, int server,
                       const char *const *hosts, size_t nhosts, unsigned char **ref,
                       size_t *ref_len, unsigned char **tmpl, size_t *tmpl_len, struct err *e);

#endif
