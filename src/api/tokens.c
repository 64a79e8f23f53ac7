/*
 * api/tokens — Kuma's token endpoints:
 *
 *   POST /tokens/dataplane {name, mesh, tags:{k:[v]}, type, workload, validFor}
 *        (pkg/tokens/builtin/server/webservice.go)
 *   POST /tokens/user      {name, groups:[..], validFor}
 *        (pkg/plugins/authn/api-server/tokens/ws/server)
 *
 * Both answer the JWT as text/plain. A request is validated first (400
 * "Invalid request" with invalid_parameters), then the caller must be an
 * admin (403 "Access Denied"), then the token is signed with the newest
 * signing key: Secret dataplane-token-signing-key-<mesh>-<n> of the mesh, or
 * GlobalSecret user-token-signing-key-<n> (404 "Signing Key not found" when
 * there is none). Keys are read from the store per request and wiped after
 * use; neither keys nor tokens are logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/internal.h"
#include "ca/token.h"
#include "core/log.h"
#include "core/resource.h"
#include "store/store.h"

/* 10 years: what Kuma issues when validFor is empty (kumahq/kuma#4001). */
#define DEFAULT_VALID_FOR_NS ((int64_t)10 * 365 * 24 * 3600 * 1000000000LL)

static enum MHD_Result reply_text(struct api_req *rq, unsigned status, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    enum MHD_Result r = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Kuma answers an unreadable body with a bare 400. */
static enum MHD_Result bad_body(struct api_req *rq)
{
    return reply_text(rq, 400, "");
}

static enum MHD_Result access_denied(struct api_req *rq, const char *reason)
{
    return api_reply_error(rq, 403, "Access Denied", reason, NULL);
}

/* A string member or NULL; -1 when present but not a string. */
static int opt_str(const json_t *o, const char *k, const char **out)
{
    const json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

/* validFor: "" -> dflt; otherwise Go's time.ParseDuration. */
static void parse_valid_for(const char *s, int64_t dflt, int64_t *ns, struct verr *ve)
{
    struct err e;
    *ns = dflt;
    if (!s || !*s)
        return;
    if (token_parse_go_duration(s, ns, &e) < 0)
        verr_add(ve, "validFor", "is invalid: %s", e.msg);
    else if (*ns <= 0)
        verr_add(ve, "validFor", "must be greater than 0");
}

/* Serial number of a signing key name (prefix + "-<n>", or the bare prefix
 * for the 1.3.x key = serial 0); -1 when the name is not a key's. */
static long key_serial(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0)
        return -1;
    if (name[pl] == '\0')
        return 0;
    if (name[pl] != '-' || !name[pl + 1])
        return -1;
    char *end;
    errno = 0;
    long v = strtol(name + pl + 1, &end, 10);
    return errno || *end || v < 0 || v > 1000000 ? -1 : v;
}

/* The newest signing key of mesh ("" = global) whose names start with
 * prefix. Returns 0 with *pem and *kid, 1 when there is none, -1 on error. */
static int latest_key(struct store *st, const char *mesh, const char *prefix, char **pem, int *kid,
                      struct err *e)
{
    const struct res_type *t = *mesh ? &TYPE_SECRET : &TYPE_GLOBAL_SECRET;
    struct store_filter f = {.mesh = *mesh ? mesh : NULL, .name_substr = prefix};
    struct resource_list l = {0};
    if (store_list(st, t, &f, &l, e) < 0)
        return -1;
    const struct resource *best = NULL;
    long best_serial = -1;
    for (size_t i = 0; i < l.n; i++) {
        long s = key_serial(l.items[i]->name, prefix);
        if (s > best_serial) {
            best_serial = s;
            best = l.items[i];
        }
    }
    int rc = 1;
    if (best) {
        const char *b64 = json_string_value(json_object_get(best->spec, "data"));
        size_t n = 0;
        unsigned char *bytes = b64 ? base64_decode(b64, strlen(b64), &n) : NULL;
        if (!bytes) {
            rc = err_set(e, "signing key %s holds no valid base64 data", best->name);
        } else {
            *pem = (char *)bytes;
            *kid = (int)best_serial;
            rc = 0;
        }
    }
    resource_list_free(&l);
    return rc;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static enum MHD_Result key_not_found(struct api_req *rq, const char *name, const char *mesh)
{
    char *detail =
        *mesh ? xasprintf("there is no signing key with serial number %d. Secret of name \"%s\" "
                          "in mesh \"%s\" is not found. If signing key was rotated, regenerate "
                          "the token",
                          TOKEN_DEFAULT_KID, name, mesh)
              : xasprintf("there is no signing key with serial number %d. GlobalSecret of name "
                          "\"%s\" is not found. If signing key was rotated, regenerate the token",
                          TOKEN_DEFAULT_KID, name);
    enum MHD_Result r = api_reply_error(rq, 404, "Signing Key not found", detail, NULL);
    free(detail);
    return r;
}

/* {tag: [values]} with string values only; -1 otherwise. */
static int check_tags(const json_t *tags)
{
    if (!tags || json_is_null(tags))
        return 0;
    if (!json_is_object(tags))
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tags, k, v)
    {
        if (json_is_null(v))
            continue;
        if (!json_is_array(v))
            return -1;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (!json_is_string(x))
                return -1;
        }
    }
    return 0;
}

static enum MHD_Result dataplane_token(struct api_req *rq)
{
    json_t *req = json_loadb(rq->body, rq->body_len, 0, NULL);
    const char *name, *mesh, *type, *workload, *valid_for;
    if (!json_is_object(req) || opt_str(req, "name", &name) < 0 ||
        opt_str(req, "mesh", &mesh) < 0 || opt_str(req, "type", &type) < 0 ||
        opt_str(req, "workload", &workload) < 0 || opt_str(req, "validFor", &valid_for) < 0 ||
        check_tags(json_object_get(req, "tags")) < 0) {
        json_decref(req);
        return bad_body(rq);
    }
    (void)workload; /* accepted as Kuma does; this project's tokens do not carry it yet */
    struct verr ve = {0};
    if (!mesh || !*mesh)
        verr_add(&ve, "mesh", "cannot be empty");
    int64_t valid_ns = 0;
    parse_valid_for(valid_for, DEFAULT_VALID_FOR_NS, &valid_ns, &ve);
    if (type && *type && strcmp(type, "dataplane") != 0 && strcmp(type, "ingress") != 0 &&
        strcmp(type, "egress") != 0)
        verr_add(&ve, "type", "%s is not a valid proxy type", type);
    enum MHD_Result r;
    if (ve.n) {
        r = api_reply_error(rq, 400, "Invalid request", "Resource is not valid", &ve);
        goto out;
    }
    if (!rq->user.admin) {
        char *reason =
            xasprintf("user \"%s\" cannot access generate dataplane token", rq->user.display);
        r = access_denied(rq, reason);
        free(reason);
        goto out;
    }
    char *prefix = xasprintf("dataplane-token-signing-key-%s", mesh);
    char *pem = NULL, *jwt = NULL;
    int kid = 0;
    struct err e;
    int rc = latest_key(manager_store(rq->deps->mgr), mesh, prefix, &pem, &kid, &e);
    if (rc == 1) {
        char *keyname = token_dp_signing_key_name(mesh, TOKEN_DEFAULT_KID);
        r = key_not_found(rq, keyname, mesh);
        free(keyname);
    } else if (rc < 0 || token_dataplane_issue(pem, kid, name, mesh, json_object_get(req, "tags"),
                                               type, valid_ns, &jwt, &e) < 0) {
        log_error("api", "could not issue a dataplane token for mesh %s: %s", mesh, e.msg);
        r = api_reply_error(rq, 500, "Could not issue a token", "Internal Server Error", NULL);
    } else {
        r = reply_text(rq, 200, jwt);
    }
    wipe_free(pem);
    wipe_free(jwt);
    free(prefix);
out:
    verr_free(&ve);
    json_decref(req);
    return r;
}

static enum MHD_Result user_token(struct api_req *rq)
{
    json_t *req = json_loadb(rq->body, rq->body_len, 0, NULL);
    const char *name, *valid_for;
    const json_t *groups = json_object_get(req, "groups");
    int bad = !json_is_object(req) || opt_str(req, "name", &name) < 0 ||
              opt_str(req, "validFor", &valid_for) < 0 ||
              (groups && !json_is_null(groups) && !json_is_array(groups));
    size_t ng = json_is_array(groups) ? json_array_size(groups) : 0;
    for (size_t i = 0; !bad && i < ng; i++)
        bad = !json_is_string(json_array_get(groups, i));
    if (bad) {
        json_decref(req);
        return bad_body(rq);
    }
    struct verr ve = {0};
    if (!name || !*name)
        verr_add(&ve, "name", "cannot be empty");
    int64_t valid_ns = 0;
    if (!valid_for || !*valid_for)
        verr_add(&ve, "validFor", "cannot be empty or nil");
    else
        parse_valid_for(valid_for, 0, &valid_ns, &ve);
    enum MHD_Result r;
    const char **gv = NULL;
    if (ve.n) {
        r = api_reply_error(rq, 400, "Invalid request", "Resource is not valid", &ve);
        goto out;
    }
    if (!rq->user.admin) {
        r = access_denied(rq, "action not allowed");
        goto out;
    }
    gv = xcalloc(ng + 1, sizeof(*gv));
    for (size_t i = 0; i < ng; i++)
        gv[i] = json_string_value(json_array_get(groups, i));
    char *pem = NULL, *jwt = NULL;
    int kid = 0;
    struct err e;
    int rc = latest_key(manager_store(rq->deps->mgr), "", "user-token-signing-key", &pem, &kid, &e);
    if (rc == 1) {
        char *keyname = token_user_signing_key_name(TOKEN_DEFAULT_KID);
        r = key_not_found(rq, keyname, "");
        free(keyname);
    } else if (rc < 0 || token_user_issue(pem, kid, name, gv, ng, valid_ns, &jwt, &e) < 0) {
        log_error("api", "could not issue a user token: %s", e.msg);
        r = api_reply_error(rq, 500, "Could not issue a token", "Internal Server Error", NULL);
    } else {
        r = reply_text(rq, 200, jwt);
    }
    wipe_free(pem);
    wipe_free(jwt);
out:
    free(gv);
    verr_free(&ve);
    json_decref(req);
    return r;
}

enum MHD_Result api_tokens_route(struct api_req *rq, char **seg, int nseg)
{
    int dp = nseg == 2 && strcmp(seg[1], "dataplane") == 0;
    int user = nseg == 2 && strcmp(seg[1], "user") == 0;
    if (!dp && !user)
        return api_reply_error(rq, 404, "Not Found", "Not found", NULL);
    if (strcmp(rq->method, "POST") != 0)
        return api_reply_error(rq, 405, "Method Not Allowed", "Method Not Allowed", NULL);
    return dp ? dataplane_token(rq) : user_token(rq);
}
