/*
 * token — Kuma's JWTs: dataplane tokens (pkg/tokens/builtin/issuer) and user
 * tokens (pkg/plugins/authn/api-server/tokens/issuer), both issued and checked
 * as pkg/core/tokens does:
 *
 *   header  {"alg":"RS256","kid":"<serial of the signing key>","typ":"JWT"}
 *   claims  dataplane: {"Name","Mesh","Tags":{tag:[values]},"Type",
 *                       "exp","nbf","iat","jti"}
 *           user:      {"Name","Groups":[...],"exp","nbf","iat","jti"}
 *   nbf = iat - 5 minutes, exp = iat + validFor, jti = a random UUID.
 *
 * Signing keys are RSA-2048 private keys in PEM ("RSA PRIVATE KEY"), stored by
 * the caller as Secret `dataplane-token-signing-key-<mesh>-<serial>` (per mesh)
 * or GlobalSecret `user-token-signing-key-<serial>`; serial 1 is the default.
 *
 * JWS is written here over OpenSSL EVP and jansson rather than with libjwt:
 * Debian 12's libjwt 1.10 takes the key before it has parsed the header, so a
 * `kid` lookup needs a second, unverified parse, and it cannot pin RS256
 * before trusting anything. The verifier here accepts only RS256, checks the
 * signature before reading any claim it returns, and bounds every input.
 *
 * Messages follow Kuma (golang-jwt v4 wrapped in "could not parse token: ").
 * Every function is thread-safe; nothing is logged; keys never enter errors.
 */
#ifndef CA_TOKEN_H
#define CA_TOKEN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

/* Largest token accepted by the verifiers. */
#define TOKEN_MAX_LEN     (16 * 1024)
#define TOKEN_DEFAULT_KID 1

/* A new RSA-2048 signing key as PEM (PKCS#1 "RSA PRIVATE KEY"). */
int token_signing_key_generate(char **pem, struct err *e);
/* The public half of a signing key as PEM ("PUBLIC KEY"), for
 * `kumactl generate public-key` and for verifiers that hold only public keys. */
int token_public_key_pem(const char *signing_key_pem, char **pem, struct err *e);

/* Secret names: "dataplane-token-signing-key-<mesh>-<serial>" (serial 0 gives
 * the 1.3.x name without the suffix), "user-token-signing-key-<serial>",
 * "dataplane-token-revocations-<mesh>", "user-token-revocations". Caller frees. */
char *token_dp_signing_key_name(const char *mesh, int serial);
char *token_user_signing_key_name(int serial);
char *token_dp_revocations_name(const char *mesh);
#define TOKEN_USER_REVOCATIONS_NAME "user-token-revocations"

/* Kuma's revocation list: Secret data holding "id1,id2" (one trailing newline
 * ignored). True when jti is listed. data may be NULL. */
int token_is_revoked(const char *data, size_t len, const char *jti);

/*
 * Looks up signing key `kid` of `mesh` ("" for user tokens). Returns 0 with a
 * malloc'd PEM in *pem (a private key, or a public key), TOKEN_KEY_NOT_FOUND,
 * or -1 with e filled.
 */
#define TOKEN_KEY_NOT_FOUND 1
typedef int token_key_lookup_fn(void *ud, const char *mesh, int kid, char **pem, struct err *e);

/* Go's time.ParseDuration, for `validFor` ("24h", "90m", "1h30m", "1.5h").
 * Errors as Go's: `time: invalid duration "x"`, `time: unknown unit "d" in
 * duration "1d"`, `time: missing unit in duration "1"`. */
int token_parse_go_duration(const char *s, int64_t *ns, struct err *e);

/* ---- dataplane tokens -------------------------------------------------------- */

struct token_dp_claims {
    char *name; /* "" when the token is not bound to a name */
    char *mesh;
    json_t *tags; /* normalized {tag: [values]}; never NULL after success */
    char *type;   /* "" | "dataplane" | "ingress" | "egress" */
    char *jti;
    int64_t iat, nbf, exp; /* seconds since the epoch; 0 when absent */
    int kid;
};
void token_dp_claims_free(struct token_dp_claims *c);

/*
 * Issues a dataplane token signed with signing_key_pem (serial kid). name,
 * mesh and type may be NULL (""), tags may be NULL ({}); tags are normalized
 * (values sorted, deduplicated). valid_for_ns must be > 0.
 */
int token_dataplane_issue(const char *signing_key_pem, int kid, const char *name, const char *mesh,
                          const json_t *tags, const char *type, int64_t valid_for_ns, char **jwt,
                          struct err *e);
/* Same with an explicit issue time (ns since the epoch), for tests and tools. */
int token_dataplane_issue_at(const char *signing_key_pem, int kid, const char *name,
                             const char *mesh, const json_t *tags, const char *type,
                             int64_t valid_for_ns, int64_t now_ns_, char **jwt, struct err *e);

/*
 * Verifies a dataplane token presented by dataplane `expected_name` of mesh
 * `expected_mesh`: the key comes from lookup(expected_mesh, kid); then the
 * signature, exp/iat/nbf (no leeway), and Kuma's binding rules: a non-empty
 * Name/Mesh in the token must equal the expected one
 * (`proxy name from requestor: <n> is different than in token: <t>`, same for
 * mesh). expected_name NULL skips the name check. On success *out is filled
 * (free with token_dp_claims_free); revocation is the caller's check
 * (token_is_revoked on claims.jti).
 */
int token_dataplane_verify(const char *jwt, token_key_lookup_fn *lookup, void *ud,
                           const char *expected_mesh, const char *expected_name,
                           struct token_dp_claims *out, struct err *e);
int token_dataplane_verify_at(const char *jwt, token_key_lookup_fn *lookup, void *ud,
                              const char *expected_mesh, const char *expected_name, int64_t now_ns_,
                              struct token_dp_claims *out, struct err *e);

/* Kuma's tag binding (pkg/xds/auth/universal): every tag in the token must be
 * on the dataplane, with only allowed values. Both objects are {tag:[values]}.
 * Errors: `dataplane has no tag "<t>" required by the token`, `dataplane
 * contains tag "<t>" with value "<v>" which is not allowed with this token.
 * Allowed values in token are ["a" "b"]`. */
int token_dataplane_check_tags(const json_t *token_tags, const json_t *dp_tags, struct err *e);

/* ---- user tokens --------------------------------------------------------------- */

#define TOKEN_ADMIN_USER  "mesh-system:admin"
#define TOKEN_ADMIN_GROUP "mesh-system:admin"

struct token_user_claims {
    char *name;
    char **groups;
    size_t ngroups;
    char *jti;
    int64_t iat, nbf, exp;
    int kid;
};
void token_user_claims_free(struct token_user_claims *c);

int token_user_issue(const char *signing_key_pem, int kid, const char *name,
                     const char *const *groups, size_t ngroups, int64_t valid_for_ns, char **jwt,
                     struct err *e);
int token_user_issue_at(const char *signing_key_pem, int kid, const char *name,
                        const char *const *groups, size_t ngroups, int64_t valid_for_ns,
                        int64_t now_ns_, char **jwt, struct err *e);
/* The admin token kuma-cp bootstraps: name and group "mesh-system:admin". */
int token_admin_issue(const char *signing_key_pem, int kid, int64_t valid_for_ns, char **jwt,
                      struct err *e);
/* Verifies a user token against global keys (lookup is called with mesh ""). */
int token_user_verify(const char *jwt, token_key_lookup_fn *lookup, void *ud,
                      struct token_user_claims *out, struct err *e);
int token_user_verify_at(const char *jwt, token_key_lookup_fn *lookup, void *ud, int64_t now_ns_,
                         struct token_user_claims *out, struct err *e);

#endif
