/*
 * api/auth — who is calling the REST API, and what they may do.
 *
 * Authentication runs before routing, in Kuma's order
 * (pkg/api-server/authn/localhost.go, then
 * pkg/plugins/authn/api-server/tokens/authenticator.go):
 *
 *   1. localhost: when apiServer.authn.localhostIsAdmin (the default) and
 *      the request is a *direct* loopback call, the caller is the admin
 *      (mesh-system:admin). Direct loopback means all of:
 *        - the TCP peer is exactly 127.0.0.1 or ::1 (or ::ffff:127.0.0.1):
 *          other 127/8 addresses such as 127.0.0.2 are not "localhost";
 *        - no Forwarded, X-Forwarded-For or X-Real-IP header (a reverse
 *          proxy on the same host is not the admin);
 *        - the Host header names localhost or a loopback address;
 *        - Sec-Fetch-Site is not "cross-site" and an Origin, if present, is
 *          an http(s) loopback origin equal to Host (browsers on the same
 *          machine acting for another site are not the admin).
 *   2. user token: otherwise an "Authorization: Bearer <jwt>" header is
 *      verified with token_user_verify against GlobalSecret
 *      user-token-signing-key-<kid> and checked against GlobalSecret
 *      user-token-revocations. A token that fails is answered 401 at once
 *      ("Invalid authentication data" / "Unauthenticated"); the reason is
 *      logged, never the token.
 *   3. anyone else is mesh-system:anonymous (group mesh-system:unauthenticated).
 *
 * Authorization (api_auth_authorize) then allows a request when the user is
 * an admin (user or group mesh-system:admin), or when it is a read (GET,
 * HEAD, OPTIONS) of anything but Secrets and GlobalSecrets. Everything else
 * is 403 "Access Denied" with Kuma's reason text. The token endpoints
 * (tokens.c) apply the same rule after validating the request, as Kuma does. Kuma itself lets any
 * user write non-secret resources; requiring the admin for every write is this project's rule
 * (docs/differences.md).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api/internal.h"
#include "ca/ca.h"
#include "ca/token.h"
#include "core/log.h"
#include "core/resource.h"
#include "mesh/identity.h"

#define ADMIN_NAME          TOKEN_ADMIN_USER
#define ADMIN_GROUP         TOKEN_ADMIN_GROUP
#define ANONYMOUS_NAME      "mesh-system:anonymous"
#define UNAUTHN_GROUP       "mesh-system:unauthenticated"
#define AUTHENTICATED_GROUP "mesh-system:authenticated"

void api_user_free(struct api_user *u)
{
    free(u->name);
    free(u->display);
    memset(u, 0, sizeof(*u));
}

static void set_user(struct api_user *u, const char *name, const char *display, int admin)
{
    api_user_free(u);
    u->name = xstrdup(name);
    u->display = xstrdup(display);
    u->admin = admin;
}

/* --- localhost --- */

static int peer_is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK; /* exactly 127.0.0.1 */
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        static const unsigned char mapped[16] = {0, 0, 0,    0,    0,   0, 0, 0,
                                                 0, 0, 0xff, 0xff, 127, 0, 0, 1};
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               memcmp(&in6->sin6_addr, mapped, sizeof(mapped)) == 0;
    }
    return 0;
}

/* Go's isLoopbackLiteral: "localhost" (any case, trailing dot allowed) or
 * an IP literal in 127/8 or ::1. */
static int loopback_literal(const char *host, size_t n)
{
    char h[64];
    if (n && host[n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof(h))
        return 0;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0)
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* The host part of "host", "host:port", "[v6]" or "[v6]:port". */
static int host_is_loopback(const char *hostport)
{
    if (!hostport)
        return 0;
    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        return end && (end[1] == '\0' || end[1] == ':') &&
               loopback_literal(hostport + 1, (size_t)(end - hostport - 1));
    }
    const char *colon = strchr(hostport, ':');
    if (colon && strchr(colon + 1, ':')) /* a bare IPv6 literal */
        return loopback_literal(hostport, strlen(hostport));
    return loopback_literal(hostport, colon ? (size_t)(colon - hostport) : strlen(hostport));
}

/* Kuma's isSameOriginLoopback: no Origin, or an http(s) loopback origin
 * whose host[:port] equals Host (case-insensitively). */
static int origin_ok(const char *origin, const char *host)
{
    if (!origin || !*origin)
        return 1;
    const char *rest;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    else
        return 0;
    size_t n = strcspn(rest, "/?#");
    if (n == 0 || n >= 300)
        return 0;
    char h[300];
    memcpy(h, rest, n);
    h[n] = '\0';
    return host_is_loopback(h) && host && strcasecmp(h, host) == 0;
}

static int direct_loopback(struct api_req *rq)
{
    if (!peer_is_loopback(rq->conn))
        return 0;
    if (api_header(rq, "Forwarded") || api_header(rq, "X-Forwarded-For") ||
        api_header(rq, "X-Real-IP"))
        return 0;
    const char *host = api_header(rq, "Host");
    if (!host_is_loopback(host))
        return 0;
    const char *site = api_header(rq, "Sec-Fetch-Site");
    if (site && strcmp(site, "cross-site") == 0)
        return 0;
    return origin_ok(api_header(rq, "Origin"), host);
}

/* --- user tokens --- */

static int user_key_lookup(void *ud, const char *mesh, int kid, char **pem, struct err *e)
{
    (void)mesh;
    char *name = token_user_signing_key_name(kid);
    char *data = NULL;
    size_t len = 0;
    int rc = identity_secret_fetch(ud, "", name, &data, &len, e);
    free(name);
    if (rc == CA_NOT_FOUND)
        return TOKEN_KEY_NOT_FOUND;
    if (rc < 0)
        return -1;
    *pem = data;
    return 0;
}

/* Verifies a user token; on success fills u. */
static int verify_user_token(struct api_req *rq, const char *jwt, struct api_user *u, struct err *e)
{
    struct store *st = manager_store(rq->deps->mgr);
    struct token_user_claims c = {0};
    if (token_user_verify(jwt, user_key_lookup, st, &c, e) < 0)
        return -1;
    char *revoked = NULL;
    size_t rlen = 0;
    int rc = identity_secret_fetch(st, "", TOKEN_USER_REVOCATIONS_NAME, &revoked, &rlen, e);
    if (rc < 0) {
        token_user_claims_free(&c);
        return -1;
    }
    if (rc == 0 && token_is_revoked(revoked, rlen, c.jti)) {
        free(revoked);
        token_user_claims_free(&c);
        return err_set(e, "token is revoked");
    }
    free(revoked);
    int admin = strcmp(c.name, ADMIN_NAME) == 0;
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s/", c.name);
    for (size_t i = 0; i < c.ngroups; i++) {
        buf_printf(&b, "%s,", c.groups[i]);
        if (strcmp(c.groups[i], ADMIN_GROUP) == 0)
            admin = 1;
    }
    buf_printf(&b, "%s", AUTHENTICATED_GROUP);
    set_user(u, c.name, buf_str(&b), admin);
    buf_free(&b);
    token_user_claims_free(&c);
    return 0;
}

int api_auth_authenticate(struct api_req *rq, enum MHD_Result *r)
{
    const struct cp_config *cfg = rq->deps->cfg;
    if (cfg && cfg->api_authn_localhost_is_admin && direct_loopback(rq)) {
        set_user(&rq->user, ADMIN_NAME, ADMIN_NAME "/" ADMIN_GROUP, 1);
        return 0;
    }
    set_user(&rq->user, ANONYMOUS_NAME, ANONYMOUS_NAME "/" UNAUTHN_GROUP, 0);
    const char *authz = api_header(rq, "Authorization");
    if (!authz || !str_has_prefix(authz, "Bearer "))
        return 0;
    struct err e = {{0}};
    if (verify_user_token(rq, authz + strlen("Bearer "), &rq->user, &e) < 0) {
        log_info("api", "authentication rejected: %s", e.msg);
        *r = api_reply_error(rq, 401, "Invalid authentication data", "Unauthenticated", NULL);
        return -1;
    }
    return 0;
}

/* --- authorization --- */

static int is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
           strcmp(method, "OPTIONS") == 0;
}

/* The resource type a path addresses, or NULL. */
static const struct res_type *path_type(char **seg, int nseg)
{
    if (nseg == 0)
        return NULL;
    if (strcmp(seg[0], "meshes") == 0)
        return nseg >= 3 ? types_by_plural(seg[2]) : &TYPE_MESH;
    if (strcmp(seg[0], "global-secrets") == 0)
        return &TYPE_GLOBAL_SECRET;
    return types_by_plural(seg[0]);
}

static enum MHD_Result deny(struct api_req *rq, const char *what)
{
    char *reason = xasprintf("user \"%s\" cannot access %s", rq->user.display, what);
    enum MHD_Result r = api_reply_error(rq, 403, "Access Denied", reason, NULL);
    free(reason);
    return r;
}

int api_auth_authorize(struct api_req *rq, char **seg, int nseg, enum MHD_Result *r)
{
    if (rq->user.admin)
        return 0;
    /* The token endpoints validate the request first and check the caller
     * themselves, in Kuma's order (tokens.c). */
    if (nseg >= 1 && strcmp(seg[0], "tokens") == 0)
        return 0;
    const struct res_type *t = path_type(seg, nseg);
    int secret = t == &TYPE_SECRET || t == &TYPE_GLOBAL_SECRET;
    if (is_read(rq->method) && !secret)
        return 0;
    char *what = t ? xasprintf("the resource of type \"%s\"", t->name)
                   : xasprintf("%s %s", rq->method, rq->path);
    *r = deny(rq, what);
    free(what);
    return -1;
}
