/*
 * ca — the mesh certificate authorities: Kuma's `builtin` CA (a self-signed
 * root per mesh and backend, kept in two Secrets) and its `provided` CA (a
 * user's own CA, read through a DataSource and validated with Kuma's
 * messages). Workload certificates are in ca/workload.h, kumactl's and the
 * control plane's TLS certificates in ca/tlsgen.h, tokens in ca/token.h.
 *
 * The module does not touch the store: where a Secret must be read, the
 * caller passes a fetch callback. Every function is pure computation over
 * its arguments and safe to call from any thread. Key material is never
 * logged and never copied into error messages.
 *
 * Errors: fallible functions return 0 or -1 and fill `struct err`; out-params
 * are written only on success and are owned (free()) by the caller.
 * Validators append Kuma's violations to a `struct verr` instead.
 */
#ifndef CA_CA_H
#define CA_CA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "core/verr.h"

/* Largest PEM text (certificate chain or key) this module reads. */
#define CA_PEM_MAX (256 * 1024)

/* Key algorithm of a generated key. CA_KEY_DEFAULT means "the function's
 * default", which each function documents. */
enum ca_key_type {
    CA_KEY_DEFAULT = 0,
    CA_KEY_RSA = 1,        /* RSA, 2048 bits unless a size is given */
    CA_KEY_ECDSA_P256 = 2, /* ECDSA over NIST P-256 */
};

/* Parses "rsa" / "ecdsa" (kumactl's --key-type words); -1 if unknown. */
int ca_key_type_parse(const char *s, enum ca_key_type *out);

/* Kuma's duration grammar for CA and certificate lifetimes (`caCert.expiration`,
 * `dpCert.rotation.expiration`): "0" or ^(\d+)(y|w|d|h|m|s|ms)$ with y = 365
 * days. Fails with `not a valid duration string: "<s>"` (Kuma's text) or on
 * overflow. */
int ca_parse_duration(const char *s, int64_t *ns, struct err *e);

/* ---- builtin CA ---------------------------------------------------------- */

/* Secret names of a builtin backend, "<mesh>.ca-builtin-cert-<backend>" and
 * "<mesh>.ca-builtin-key-<backend>". Caller frees. */
char *ca_builtin_cert_secret_name(const char *mesh, const char *backend);
char *ca_builtin_key_secret_name(const char *mesh, const char *backend);

/*
 * Checks a builtin backend's `conf` (may be NULL). Fields, relative to conf:
 *   caCert.RSAbits    number (or numeric string) in [1024, 8192]
 *   caCert.expiration Kuma duration (see ca_parse_duration)
 *   caCert.keyType    "rsa" | "ecdsa" — this project's extension, not Kuma's
 * Unknown keys are left to the generic mesh validator. Adds violations to ve.
 */
void ca_builtin_validate_conf(const json_t *conf, struct verr *ve);

/*
 * Generates the root certificate and key of a builtin CA for `mesh`, as Kuma's
 * pkg/plugins/ca/builtin/ca.go does: subject O=Kuma, OU=Mesh, CN=<mesh>; URI SAN
 * spiffe://<mesh>; serial 0; NotBefore now-10s; NotAfter now+caCert.expiration
 * (default 10*365 days); KeyUsage keyCertSign|cRLSign (critical); CA:TRUE
 * (critical); SubjectKeyId; self-signed.
 * Key: key_type if not CA_KEY_DEFAULT, else conf's caCert.keyType, else RSA
 * with caCert.RSAbits bits (2048 when absent or 0).
 * On success *cert_pem and *key_pem are new PEM strings.
 */
int ca_builtin_generate(const char *mesh, const json_t *conf, enum ca_key_type key_type,
                        char **cert_pem, char **key_pem, struct err *e);

/* ---- DataSource ---------------------------------------------------------- */

/* Outcome of a fetch callback that found nothing. */
#define CA_NOT_FOUND 1

/*
 * Fetches the bytes of Secret `name` in `mesh`. Returns 0 and a malloc'd
 * buffer (*data, *len; NUL-terminated for convenience), CA_NOT_FOUND when the
 * Secret does not exist, or -1 with e filled on any other failure.
 */
typedef int ca_secret_fetch_fn(void *ud, const char *mesh, const char *name, char **data,
                               size_t *len, struct err *e);

/*
 * Kuma's datasource.Validate over a DataSource object {secret | inline |
 * inlineString | file}. Violations are relative to the DataSource itself:
 * "" `data source has to be chosen. Available sources: secret, file, inline`,
 * "secret"/"inline"/"file" `cannot be empty`.
 */
void ca_datasource_validate(const json_t *ds, struct verr *ve);

/*
 * Loads a DataSource: `secret` through fetch (mesh-scoped), `inline` as
 * base64, `inlineString` verbatim, `file` from disk (at most CA_PEM_MAX
 * bytes). Errors read like Kuma's ("could not load data: ..."). On success
 * *data (NUL-terminated) and *len are set.
 */
int ca_datasource_load(const json_t *ds, const char *mesh, ca_secret_fetch_fn *fetch, void *ud,
                       char **data, size_t *len, struct err *e);

/* ---- provided CA --------------------------------------------------------- */

/*
 * Kuma's ValidateCaCert over a certificate (chain) and key in PEM. Adds to ve,
 * with fields "cert" and "cert[i]":
 *   cert:    not a valid TLS key pair: <Go tls.X509KeyPair's error text>
 *   cert[i]: not a valid x509 certificate: <err>
 *   cert[i]: basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic Constraints)
 *   cert[i]: key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. Key Usage)
 *   cert[i]: key usage extension 'keyAgreement' must NOT be set (see X509-SVID: Appendix A. X.509
 * Field Reference) NULL inputs count as empty. Inputs over CA_PEM_MAX are refused as invalid.
 */
void ca_provided_validate(const char *cert_pem, const char *key_pem, struct verr *ve);

/*
 * Kuma's provided ValidateBackend over a backend's `conf` (may be NULL):
 * "cert"/"key" `has to be defined`, DataSource violations under "cert."/"key.",
 * a load error on both "cert" and "key", then ca_provided_validate. The caller
 * prefixes the result with "mtls.backends[i].conf".
 */
void ca_provided_validate_backend(const char *mesh, const json_t *conf, ca_secret_fetch_fn *fetch,
                                  void *ud, struct verr *ve);

/* Loads a provided backend's certificate and key (cert and key DataSources of
 * conf). Both strings are the caller's on success. */
int ca_provided_load(const char *mesh, const json_t *conf, ca_secret_fetch_fn *fetch, void *ud,
                     char **cert_pem, char **key_pem, struct err *e);

#endif
