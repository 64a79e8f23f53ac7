/*
 * tlsgen — self-signed TLS certificates as Kuma's pkg/tls/cert.go makes them:
 * for `kumactl generate tls-certificate` and for the certificate kuma-cp
 * generates for itself when none is configured (pkg/core/bootstrap/autoconfig.go).
 *
 * Layout (NewSelfSignedCert): empty subject; random serial in [0, 2^128);
 * NotBefore now-5min, NotAfter NotBefore+10*365 days; CA:TRUE (critical) —
 * the certificate is its own trust anchor, so a client can use it as a CA
 * file; KeyUsage keyEncipherment|digitalSignature|keyCertSign (critical);
 * ExtKeyUsage serverAuth or clientAuth; SubjectKeyId; SAN (critical, as the
 * subject is empty) with each host as an IP address when it parses as one,
 * else as a DNS name.
 */
#ifndef CA_TLSGEN_H
#define CA_TLSGEN_H

#include <stddef.h>

#include "ca/ca.h"

/*
 * kumactl generate tls-certificate: cert_type "server" | "client", one or
 * more hostnames, key_type "" (RSA-2048, Kuma's default) | "rsa" | "ecdsa".
 * Errors, checked in Kuma's order: `invalid certificate type "<t>"`,
 * `at least one hostname must be given`, `invalid key type "<k>"`; a
 * generation failure reads `could not generate certificate: <why>`.
 */
int ca_generate_tls_cert(const char *cert_type, const char *const *hostnames, size_t nhostnames,
                         const char *key_type, char **cert_pem, char **key_pem, struct err *e);

/*
 * kuma-cp's own certificate when KUMA_GENERAL_TLS_CERT_FILE is unset: a
 * self-signed server certificate for [hostname, "localhost", every address
 * of every interface (127.0.0.1 and ::1 included)], as Kuma's autoconfigure.
 * hostname NULL means gethostname(). key_type CA_KEY_DEFAULT means ECDSA
 * P-256 (Kuma uses RSA-2048; see docs/identity.md). Unlike Kuma's, its
 * subject is CN=kuma-control-plane: curl/libcurl over OpenSSL refuse an
 * empty issuer name. The caller saves the pair
 * as <workDir>/kuma-cp.crt and kuma-cp.key (mode 0600), as Kuma does.
 */
int ca_generate_cp_cert(const char *hostname, enum ca_key_type key_type, char **cert_pem,
                        char **key_pem, struct err *e);

#endif
