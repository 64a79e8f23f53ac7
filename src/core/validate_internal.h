/*
 * validate_internal — helpers shared by the validators (validate_*.c), not a
 * public API.
 *
 * Paths: a struct vpath is a growable path string ("mtls.backends[0].name")
 * built the way Kuma's PathBuilder builds it. Push a segment with
 * vp_field/vp_index/vp_key, which return a mark; vp_reset(p, mark) pops back.
 *
 * Typed JSON access: the spec is untrusted JSON. Every getter (vj_*) takes the
 * parent object and a key, treats a missing key or JSON null as "not set",
 * and when the value has the wrong JSON type it records one violation at the
 * field's path ("must be an object", "must be a string", ...) and returns
 * "not set". Validators therefore never crash on hostile input, and each
 * field must be read once per validation to avoid duplicate messages.
 *
 * Character sets, durations, IPs and host names follow the Go code Kuma uses
 * (regexps in validators.go, time.ParseDuration, net.ParseIP, govalidator).
 */
#ifndef CORE_VALIDATE_INTERNAL_H
#define CORE_VALIDATE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/verr.h"

/* Messages for JSON values of the wrong type (not from Kuma: jsonpb would
 * refuse the document before validating it). */
#define VMSG_OBJECT   "must be an object"
#define VMSG_ARRAY    "must be an array"
#define VMSG_STRING   "must be a string"
#define VMSG_BOOL     "must be a boolean"
#define VMSG_NUMBER   "must be a number"
#define VMSG_INTEGER  "must be a non-negative integer"
#define VMSG_DURATION "must be a valid duration"

struct vpath {
    char *s;
    size_t len, cap;
};

void vp_init(struct vpath *p, const char *root);
void vp_free(struct vpath *p);
/* Appends ".name" ("name" at the root); returns the mark to reset to. */
size_t vp_field(struct vpath *p, const char *name);
/* Appends "[i]". */
size_t vp_index(struct vpath *p, size_t i);
/* Appends "[\"key\"]" with Go %q escaping. */
size_t vp_key(struct vpath *p, const char *key);
void vp_reset(struct vpath *p, size_t mark);

/* A violation at the current path. */
void vadd(struct verr *ve, const struct vpath *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A violation at the current path plus a relative field ("a.b" allowed). */
void vadd_at(struct verr *ve, struct vpath *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Typed getters; see the file comment. */
const json_t *vj_obj(struct verr *ve, struct vpath *p, const json_t *parent, const char *key);
const json_t *vj_arr(struct verr *ve, struct vpath *p, const json_t *parent, const char *key);
/* Element i of arr when it is an object; reports a violation at [i] if it is
 * something else (null counts as absent). */
const json_t *vj_elem_obj(struct verr *ve, struct vpath *p, const json_t *arr, size_t i);
/* A string; NULL when not set or of the wrong type. */
const char *vj_str(struct verr *ve, struct vpath *p, const json_t *parent, const char *key);
/* 1 and *out when set to a boolean, else 0. */
int vj_bool(struct verr *ve, struct vpath *p, const json_t *parent, const char *key, int *out);
/* 1 and *out when set to a number (integer or real), else 0. */
int vj_num(struct verr *ve, struct vpath *p, const json_t *parent, const char *key, double *out);
/* 1 and *out when set to an integer (an integral real or a decimal string,
 * as jsonpb accepts, also count), else 0. Negative values are returned as
 * they are; callers range-check. */
int vj_int(struct verr *ve, struct vpath *p, const json_t *parent, const char *key, long long *out);
/* 1 when the key exists with a non-null value. */
int vj_present(const json_t *parent, const char *key);
/* Non-reporting lookups for a second read of a field: NULL/"" when absent or
 * of the wrong type. */
const json_t *vj_peek_obj(const json_t *parent, const char *key);
const char *vj_peek_str(const json_t *parent, const char *key);

/*
 * A map<string,string> (tags, selectors, labels): checks it is an object
 * whose values are strings (reporting each non-string at path["k"]) and
 * returns it, or NULL when not set. A wrong type for the whole map is
 * reported at the map's path.
 */
const json_t *vj_tags(struct verr *ve, struct vpath *p, const json_t *parent, const char *key);
/* The string value of tags[k], or NULL (absent or not a string). */
const char *tags_get(const json_t *tags, const char *k);
/* Number of entries; 0 for NULL. */
size_t tags_len(const json_t *tags);

/* Options of Kuma's tag validation (ValidateTagsOpts). */
struct tag_opts {
    int require_one;                   /* "must have at least one tag" */
    int require_service;               /* mandatory tag "kuma.io/service" is missing */
    int only_service;                  /* OnlyServiceTagAllowed extras */
    const char *const *forbidden_keys; /* NULL-terminated: tag name must not be %q */
    /* Inbound protocol check: tag "kuma.io/protocol" has an invalid value. */
    int check_protocol;
    /* Gateway: other values than tcp are not allowed. */
    int protocol_tcp_only;
};

/* ValidateSelector: selector value charset (letters, digits, . - _ : / or
 * "*"). tags may be NULL (empty). Violations at p / p["k"]. */
void v_selector(struct verr *ve, struct vpath *p, const json_t *tags, const struct tag_opts *o);
/* ValidateTags: tag value charset (letters, digits, . - _ :). */
void v_tags(struct verr *ve, struct vpath *p, const json_t *tags, const struct tag_opts *o);

/* ValidateSelectors over an array of {match: {...}} at the key of parent. */
void v_selectors(struct verr *ve, struct vpath *p, const json_t *parent, const char *key,
                 int require_one_selector, int at_most_one, const struct tag_opts *o);

/* Character-set checks (exact Kuma regexps). */
int tag_name_ok(const char *s);       /* ^[a-zA-Z0-9.\-_:/]*$ */
int tag_value_ok(const char *s);      /* ^[a-zA-Z0-9.\-_:]*$ */
int selector_value_ok(const char *s); /* ^([a-zA-Z0-9.\-_:/]*|\*)$ */
/* RFC 1123 subdomain as Kuma's identifierRegexp. */
int rfc1123_subdomain_ok(const char *s);
/* ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ (DomainRegexp). */
int domain_ok(const char *s);

/* Kuma's mesh ParseDuration: ^(\d+)(y|w|d|h|m|s|ms)$ or "0". */
int kuma_duration_parse(const char *s, int64_t *ns);
/* Go's time.ParseDuration ("1h30m", "-1.5s", "0"); 0 on success. */
int go_duration_parse(const char *s, int64_t *ns);

/* Reads a duration field (a Go-style string); reports wrong types and
 * unparsable strings. Returns 1 and *ns when set and valid. */
int vj_duration(struct verr *ve, struct vpath *p, const json_t *parent, const char *key,
                int64_t *ns);

/* net.ParseIP. */
int ip_ok(const char *s);
int ip_is_unspecified(const char *s);
/* govalidator.IsDNSName. */
int dns_name_ok(const char *s);
/* net.SplitHostPort; host/port are copied into the buffers. 0 on success. */
int split_host_port(const char *s, char *host, size_t hostlen, char *port, size_t portlen);
/* url.ParseRequestURI; 0 when it parses. port receives URL.Port() (may be ""). */
int parse_request_uri(const char *s, char *port, size_t portlen);

/* "port must be in the range [1, 65535]" when port is 0 or > 65535. */
void v_port(struct verr *ve, struct vpath *p, long long port);

/* Kuma's validatePrometheusConfig with p at the conf; conf may be NULL.
 * Shared by the Mesh and the Dataplane metrics override. */
void v_prometheus_conf(struct verr *ve, struct vpath *p, const json_t *conf);

/* Options of Kuma's ValidateTargetRef. */
struct tr_opts {
    const char *const *kinds; /* NULL-terminated supported kinds */
    int gateway_listener_tags;
    int inbound;
};

/* ValidateTargetRef with p at the targetRef; ref may be NULL (kind unset). */
void v_target_ref(struct verr *ve, struct vpath *p, const json_t *ref, const struct tr_opts *o);

/* The protocol names Kuma accepts for kuma.io/protocol. */
int protocol_known(const char *s);
extern const char PROTOCOLS_HINT[];

#endif
