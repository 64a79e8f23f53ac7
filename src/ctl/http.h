/*
 * ctl/http — kumactl's client for the control plane's REST API, over
 * libcurl. One request at a time, blocking, with the control plane's TLS
 * settings, extra headers and token authentication from the configuration.
 * Responses are read into a buffer capped at CTL_HTTP_MAX_BODY; a larger
 * body fails the request instead of growing memory without bound.
 *
 * Errors follow Go's net/http wording where kumactl users see them:
 * `Get "http://host:5681/meshes": dial tcp host:5681: connect: connection
 * refused`. API error bodies (Kuma's envelope with `title`, `detail`,
 * `invalid_parameters`, and the deprecated `details`/`causes`) are parsed
 * into struct ctl_api_error so commands can print them as kumactl does.
 */
#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "ctl/config.h"

#define CTL_HTTP_MAX_BODY (64u << 20)

struct ctl_http_response {
    long status; /* 0 when no response arrived */
    char *body;  /* NUL-terminated, may be "" */
    size_t len;
};

/*
 * Sends method path (joined to cp's URL) with an optional JSON body.
 * Returns 0 when a response arrived (any status), or -1 with a Go-style
 * transport error in *errmsg (newly allocated). timeout_ms 0 = none.
 */
int ctl_http_do(const struct ctl_cp *cp, const char *method, const char *path, const char *body,
                long timeout_ms, struct ctl_http_response *resp, char **errmsg);
void ctl_http_response_free(struct ctl_http_response *r);

/* Kuma's REST error (pkg/core/rest/errors/types.Error). */
struct ctl_api_error {
    char *title, *detail, *details;
    long status;
    struct ctl_api_param {
        char *field, *reason;
    } * params, *causes; /* invalid_parameters; deprecated causes (field, message) */
    size_t nparams, ncauses;
};

/* Parses body as an error envelope; returns 0 only when it is JSON with a
 * non-empty title (as kumactl's remote store decides). */
int ctl_api_error_parse(const char *body, size_t len, struct ctl_api_error *out);
void ctl_api_error_free(struct ctl_api_error *e);
/* types.Error.Error(): "Title (Detail);field=reason ;field=reason "; caller frees. */
char *ctl_api_error_string(const struct ctl_api_error *e);
/* kumactl's top-level rendering (errors.FormatErrorWrapper):
 * "Title (Detail)\n* field: reason..."; caller frees. */
char *ctl_api_error_format(const struct ctl_api_error *e);

#endif
