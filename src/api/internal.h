/*
 * api/internal — what the API's handlers share: the request, JSON replies,
 * Kuma's error envelope and query helpers. Not used outside src/api.
 */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>

#include "api/server.h"
#include "core/verr.h"

#define API_MAX_SEGMENTS 8

/* The caller of a request (auth.c). display is Kuma's User.String():
 * "<name>/<group>,<group>". */
struct api_user {
    char *name;
    char *display;
    int admin;
};

struct api_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;
    const struct api_deps *deps;
    struct api_user user; /* set by api_auth_authenticate */
    int tls;              /* served on the HTTPS listener */
};

/* Sends body (stolen) as JSON with the status. */
enum MHD_Result api_reply(struct api_req *rq, unsigned status, json_t *body);
/* Kuma's error envelope; ve may be NULL. */
enum MHD_Result api_reply_error(struct api_req *rq, unsigned status, const char *title,
                                const char *detail, const struct verr *ve);
/* The envelope with one invalid parameter. */
enum MHD_Result api_reply_param_error(struct api_req *rq, unsigned status, const char *title,
                                      const char *detail, const char *field, const char *reason);

const char *api_query(struct api_req *rq, const char *key);
typedef void api_query_fn(void *arg, const char *key, const char *value);
void api_query_each(struct api_req *rq, api_query_fn *fn, void *arg);
const char *api_header(struct api_req *rq, const char *name);

/* xDS inspection routes (inspect.c): returns 1 with *res set when the path
 * is one of them, 0 to let the resource routes handle it. */
int api_inspect_route(struct api_req *rq, char **seg, int nseg, enum MHD_Result *res);
/* --- auth.c: authentication and authorization (see the file's comment) --- */

/* Sets rq->user: the admin for direct loopback calls (localhostIsAdmin),
 * the user of a valid "Authorization: Bearer" user token, else anonymous.
 * Returns -1 after replying 401 when a bearer token does not verify. */
int api_auth_authenticate(struct api_req *rq, enum MHD_Result *r);
/* Admins may do anything; others may only read, and not Secrets or
 * GlobalSecrets. Returns -1 after replying 403 "Access Denied". */
int api_auth_authorize(struct api_req *rq, char **seg, int nseg, enum MHD_Result *r);
void api_user_free(struct api_user *u);

/* --- tokens.c: POST /tokens/dataplane and /tokens/user --- */
enum MHD_Result api_tokens_route(struct api_req *rq, char **seg, int nseg);

/* Routes a request by its path segments (resources.c). */
enum MHD_Result api_route(struct api_req *rq, char **seg, int nseg);

#endif
