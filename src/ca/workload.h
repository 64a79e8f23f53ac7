/*
 * workload — the identity certificates of data-plane proxies, laid out as
 * Kuma's pkg/core/ca/issuer/issuer.go lays them out: empty subject, random
 * serial in [1, 2^128-1], URI SANs spiffe://<mesh>/<service> (one per distinct
 * kuma.io/service) followed by kuma://<tag>/<value> for every tag key and
 * value (keys sorted, then values), NotBefore now-10s, NotAfter now+lifetime
 * (24h default), KeyUsage digitalSignature|keyEncipherment|keyAgreement
 * (critical), ExtKeyUsage serverAuth+clientAuth, CA:FALSE (critical),
 * AuthorityKeyId from the CA's SubjectKeyId, SAN critical (empty subject).
 *
 * One difference by design: the leaf key is ECDSA P-256 unless RSA is asked
 * for (Kuma always generates RSA-2048, ~600x slower; see docs/identity.md).
 *
 * Tags are JSON objects mapping a tag name to an array of values (a plain
 * string value is accepted as a one-element array); ca_tags_normalize gives
 * the canonical form (sorted keys, sorted unique values) used everywhere.
 */
#ifndef CA_WORKLOAD_H
#define CA_WORKLOAD_H

#include <jansson.h>
#include <stdint.h>

#include "ca/ca.h"

/* Kuma's defaults (pkg/core/ca/issuer). */
#define CA_WORKLOAD_DEFAULT_LIFETIME_NS (24LL * 3600 * 1000000000LL)
#define CA_CLOCK_SKEW_S                 10

/* Bounds on tag sets, so one dataplane cannot make a huge certificate. */
#define CA_TAGS_MAX_KEYS   64
#define CA_TAGS_MAX_VALUES 64  /* per key */
#define CA_TAG_MAX_LEN     253 /* bytes of a key or a value */

/*
 * Canonical tag set: an object whose keys are sorted, each mapping to a
 * sorted array of unique non-empty strings. Input values may be strings or
 * arrays of strings. Fails on other shapes, empty keys or values, and on the
 * CA_TAGS_* bounds. On success *out is a new reference.
 */
int ca_tags_normalize(const json_t *in, json_t **out, struct err *e);

/* Kuma's Dataplane.TagSet(): every inbound's tags and the gateway's tags of a
 * Dataplane spec ({networking: {inbound: [{tags}], gateway: {tags}}}), merged
 * and normalized. Never NULL (an empty object when there are none). */
json_t *ca_dataplane_tags(const json_t *dataplane_spec);

/*
 * The tags a dataplane's identity comes from (pkg/xds/secrets/identity_tags.go):
 * its tag set if that has a kuma.io/service; otherwise {kuma.io/service:
 * [<label kuma.io/workload>]}; with neither, fails with
 * `dataplane "<name>" has no kuma.io/service tag and no kuma.io/workload label,
 * cannot derive mTLS identity`. labels may be NULL.
 */
int ca_dataplane_identity_tags(const char *name, const json_t *dataplane_spec, const json_t *labels,
                               json_t **out, struct err *e);

/* The SAN URIs a workload certificate for these tags carries, in order, as a
 * new JSON array of strings (for tests, inspection and the xDS generator's
 * SAN matchers). Fails like ca_tags_normalize, or on an invalid mesh. */
int ca_workload_uris(const char *mesh, const json_t *tags, json_t **out, struct err *e);

/*
 * A parsed CA (certificate + key), reusable for many issues: parse once per
 * mesh CA, then issue without touching PEM again. Immutable after creation,
 * so one signer may be used from several threads at once.
 */
struct ca_signer;

/* Parses and checks a CA pair (the key must match the certificate). The
 * certificate may be a chain; the first one signs. */
int ca_signer_new(const char *ca_cert_pem, const char *ca_key_pem, struct ca_signer **out,
                  struct err *e);
void ca_signer_free(struct ca_signer *s);
/* The CA certificate (first of the chain) as PEM, owned by the signer. */
const char *ca_signer_cert_pem(const struct ca_signer *s);

/*
 * Issues a workload certificate for `mesh` and `tags` (see the file comment).
 * lifetime_ns <= 0 means 24h. key_type CA_KEY_DEFAULT means ECDSA P-256;
 * CA_KEY_RSA gives RSA-2048 (Kuma's choice). On success *cert_pem and
 * *key_pem are new PEM strings (key as "EC PRIVATE KEY" or "RSA PRIVATE KEY").
 */
int ca_signer_issue(const struct ca_signer *s, const char *mesh, const json_t *tags,
                    int64_t lifetime_ns, enum ca_key_type key_type, char **cert_pem, char **key_pem,
                    struct err *e);

/* ca_signer_new + ca_signer_issue + ca_signer_free, for one-off issues. */
int ca_issue_workload_cert(const char *ca_cert_pem, const char *ca_key_pem, const char *mesh,
                           const json_t *tags, int64_t lifetime_ns, enum ca_key_type key_type,
                           char **cert_pem, char **key_pem, struct err *e);

/* The validity window of a PEM certificate, in ns since the epoch. */
int ca_cert_validity(const char *cert_pem, int64_t *not_before_ns, int64_t *not_after_ns,
                     struct err *e);

/*
 * Kuma's ExpiringSoon (pkg/xds/secrets): true once now is past
 * issued_at + (not_after - issued_at)/5*4, i.e. at 80% of the lifetime
 * counted from when the certificate was generated. All in ns since the epoch.
 */
int ca_cert_needs_rotation(int64_t issued_at_ns, int64_t not_after_ns, int64_t now_ns);

#endif
