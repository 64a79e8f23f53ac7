/*
 * validate_common — paths, typed JSON access, tag/selector rules, character
 * sets, durations and address checks shared by every validator. The checks
 * re-implement (by hand, small and bounded) the Go functions Kuma calls:
 * regexps from validators.go, time.ParseDuration, net.ParseIP,
 * net.SplitHostPort, url.ParseRequestURI and govalidator.IsDNSName, because
 * the messages users see depend on exactly what those accept.
 */
#define _GNU_SOURCE
#include "core/validate_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- paths ---- */

static void vp_append(struct vpath *p, const char *s, size_t n)
{
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 64;
        while (cap < p->len + n + 1)
            cap *= 2;
        p->s = xrealloc(p->s, cap);
        p->cap = cap;
    }
    memcpy(p->s + p->len, s, n);
    p->len += n;
    p->s[p->len] = '\0';
}

void vp_init(struct vpath *p, const char *root)
{
    p->s = NULL;
    p->len = p->cap = 0;
    vp_append(p, root ? root : "", root ? strlen(root) : 0);
}

void vp_free(struct vpath *p)
{
    free(p->s);
    p->s = NULL;
    p->len = p->cap = 0;
}

size_t vp_field(struct vpath *p, const char *name)
{
    size_t mark = p->len;
    if (p->len && *name)
        vp_append(p, ".", 1);
    vp_append(p, name, strlen(name));
    return mark;
}

size_t vp_index(struct vpath *p, size_t i)
{
    size_t mark = p->len;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "[%zu]", i);
    vp_append(p, buf, (size_t)n);
    return mark;
}

size_t vp_key(struct vpath *p, const char *key)
{
    size_t mark = p->len;
    char *k = path_key("", key);
    vp_append(p, k, strlen(k));
    free(k);
    return mark;
}

void vp_reset(struct vpath *p, size_t mark)
{
    if (mark <= p->len) {
        p->len = mark;
        p->s[mark] = '\0';
    }
}

void vadd(struct verr *ve, const struct vpath *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    verr_add(ve, p->s, "%s", msg);
    free(msg);
}

void vadd_at(struct verr *ve, struct vpath *p, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    size_t m = vp_field(p, field);
    verr_add(ve, p->s, "%s", msg);
    vp_reset(p, m);
    free(msg);
}

/* ---- typed JSON ---- */

static const json_t *lookup(const json_t *parent, const char *key)
{
    if (!parent || !json_is_object(parent))
        return NULL;
    const json_t *v = json_object_get(parent, key);
    if (!v || json_is_null(v))
        return NULL;
    return v;
}

int vj_present(const json_t *parent, const char *key)
{
    return lookup(parent, key) != NULL;
}

const json_t *vj_peek_obj(const json_t *parent, const char *key)
{
    const json_t *v = lookup(parent, key);
    return json_is_object(v) ? v : NULL;
}

const char *vj_peek_str(const json_t *parent, const char *key)
{
    const json_t *v = lookup(parent, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static void type_err(struct verr *ve, struct vpath *p, const char *key, const char *msg)
{
    size_t m = vp_field(p, key);
    vadd(ve, p, "%s", msg);
    vp_reset(p, m);
}

const json_t *vj_obj(struct verr *ve, struct vpath *p, const json_t *parent, const char *key)
{
    const json_t *v = lookup(parent, key);
    if (v && !json_is_object(v)) {
        type_err(ve, p, key, VMSG_OBJECT);
        return NULL;
    }
    return v;
}

const json_t *vj_arr(struct verr *ve, struct vpath *p, const json_t *parent, const char *key)
{
    const json_t *v = lookup(parent, key);
    if (v && !json_is_array(v)) {
        type_err(ve, p, key, VMSG_ARRAY);
        return NULL;
    }
    return v;
}

const char *vj_str(struct verr *ve, struct vpath *p, const json_t *parent, const char *key)
{
    const json_t *v = lookup(parent, key);
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        type_err(ve, p, key, VMSG_STRING);
        return NULL;
    }
    return json_string_value(v);
}

int vj_bool(struct verr *ve, struct vpath *p, const json_t *parent, const char *key, int *out)
{
    const json_t *v = lookup(parent, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        type_err(ve, p, key, VMSG_BOOL);
        return 0;
    }
    *out = json_is_true(v);
    return 1;
}

int vj_num(struct verr *ve, struct vpath *p, const json_t *parent, const char *key, double *out)
{
    const json_t *v = lookup(parent, key);
    if (!v)
        return 0;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        if (isfinite(*out))
            return 1;
    } else if (json_is_string(v)) {
        /* jsonpb accepts numbers as strings too. */
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        if (*s && !*end && isfinite(d)) {
            *out = d;
            return 1;
        }
    }
    type_err(ve, p, key, VMSG_NUMBER);
    return 0;
}

int vj_int(struct verr *ve, struct vpath *p, const json_t *parent, const char *key, long long *out)
{
    const json_t *v = lookup(parent, key);
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (isfinite(d) && d == floor(d) && d > -9.0e18 && d < 9.0e18) {
            *out = (long long)d;
            return 1;
        }
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        long long n = strtoll(s, &end, 10);
        if (*s && !*end && (isdigit((unsigned char)s[0]) || s[0] == '-')) {
            *out = n;
            return 1;
        }
    }
    type_err(ve, p, key, VMSG_INTEGER);
    return 0;
}

const json_t *vj_tags(struct verr *ve, struct vpath *p, const json_t *parent, const char *key)
{
    const json_t *t = vj_obj(ve, p, parent, key);
    if (!t)
        return NULL;
    const char *k;
    json_t *val;
    size_t m = vp_field(p, key);
    json_object_foreach((json_t *)t, k, val)
    {
        if (!json_is_string(val)) {
            size_t m2 = vp_key(p, k);
            vadd(ve, p, VMSG_STRING);
            vp_reset(p, m2);
        }
    }
    vp_reset(p, m);
    return t;
}

const char *tags_get(const json_t *tags, const char *k)
{
    const json_t *v = tags ? json_object_get(tags, k) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

size_t tags_len(const json_t *tags)
{
    return json_is_object(tags) ? json_object_size(tags) : 0;
}

/* ---- character sets ---- */

static int charset(const char *s, const char *extra)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) && !strchr(extra, c))
            return 0;
    }
    return 1;
}

int tag_name_ok(const char *s)
{
    return charset(s, ".-_:/");
}

int tag_value_ok(const char *s)
{
    return charset(s, ".-_:");
}

int selector_value_ok(const char *s)
{
    return strcmp(s, "*") == 0 || charset(s, ".-_:/");
}

/* One DNS label [a-z0-9]([-a-z0-9]*[a-z0-9])? from s[0..n). */
static int dns_label_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i < n - 1))
            return 0;
    }
    return 1;
}

int domain_ok(const char *s)
{
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!dns_label_ok(p, n))
            return 0;
        if (!dot)
            return 1;
        p = dot + 1;
    }
}

int rfc1123_subdomain_ok(const char *s)
{
    return domain_ok(s);
}

/* ---- tags and selectors ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keys of an object in Go's sort.Strings order; caller frees the array. */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    *n = tags_len(obj);
    const char **keys = xcalloc(*n ? *n : 1, sizeof(*keys));
    size_t i = 0;
    const char *k;
    json_t *v;
    if (*n)
        json_object_foreach((json_t *)obj, k, v) keys[i++] = k;
    qsort(keys, *n, sizeof(*keys), cmp_str);
    return keys;
}

const char PROTOCOLS_HINT[] = "Allowed values: grpc, http, http2, kafka, tcp";

int protocol_known(const char *s)
{
    static const char *const known[] = {"grpc", "http", "http2", "kafka", "tcp", NULL};
    for (size_t i = 0; known[i]; i++)
        if (strcmp(s, known[i]) == 0)
            return 1;
    return 0;
}

/* validateTagKeyValues with the per-value charset check supplied. */
static void tag_key_values(struct verr *ve, struct vpath *p, const json_t *tags,
                           const struct tag_opts *o, int selector)
{
    static const struct tag_opts none;
    if (!o)
        o = &none;
    size_t n;
    const char **keys = sorted_keys(tags, &n);
    if (o->require_one && n == 0)
        vadd(ve, p, "must have at least one tag");
    /* ExtraTagsValidators run before the per-key loop. */
    if (o->only_service) {
        if (n != 1 || !tags_get(tags, "kuma.io/service"))
            vadd(ve, p, "must consist of exactly one tag \"kuma.io/service\"");
    }
    if (o->check_protocol) {
        const char *v = tags_get(tags, "kuma.io/protocol");
        if (v && !protocol_known(v)) {
            size_t m = vp_key(p, "kuma.io/protocol");
            vadd(ve, p, "tag \"kuma.io/protocol\" has an invalid value \"%s\". %s", v,
                 PROTOCOLS_HINT);
            vp_reset(p, m);
        }
    }
    if (o->protocol_tcp_only) {
        const char *v = tags_get(tags, "kuma.io/protocol");
        if (v && strcmp(v, "tcp") != 0) {
            size_t m = vp_key(p, "kuma.io/protocol");
            vadd(ve, p, "other values than tcp are not allowed, provided value \"%s\"", v);
            vp_reset(p, m);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *key = keys[i];
        if (!*key)
            vadd(ve, p, "tag name must be non-empty");
        size_t m = vp_key(p, key);
        if (!tag_name_ok(key))
            vadd(ve, p,
                 "tag name must consist of alphanumeric characters, dots, dashes, "
                 "slashes and underscores");
        if (o->only_service && strcmp(key, "kuma.io/service") != 0)
            vadd(ve, p, "tag \"%s\" is not allowed", key);
        if (o->forbidden_keys)
            for (size_t j = 0; o->forbidden_keys[j]; j++)
                if (strcmp(key, o->forbidden_keys[j]) == 0)
                    vadd(ve, p, "tag name must not be \"%s\"", key);
        const char *value = tags_get(tags, key);
        if (value) {
            if (!*value)
                vadd(ve, p, "tag value must be non-empty");
            if (selector && !selector_value_ok(value))
                vadd(ve, p,
                     "tag value must consist of alphanumeric characters, dots, dashes, "
                     "slashes and underscores or be \"*\"");
            if (!selector && !tag_value_ok(value))
                vadd(ve, p,
                     "tag value must consist of alphanumeric characters, dots, dashes "
                     "and underscores");
        }
        vp_reset(p, m);
    }
    if (o->require_service && !(tags && json_object_get(tags, "kuma.io/service")))
        vadd(ve, p, "mandatory tag \"kuma.io/service\" is missing");
    free(keys);
}

void v_selector(struct verr *ve, struct vpath *p, const json_t *tags, const struct tag_opts *o)
{
    tag_key_values(ve, p, tags, o, 1);
}

void v_tags(struct verr *ve, struct vpath *p, const json_t *tags, const struct tag_opts *o)
{
    tag_key_values(ve, p, tags, o, 0);
}

void v_selectors(struct verr *ve, struct vpath *p, const json_t *parent, const char *key,
                 int require_one_selector, int at_most_one, const struct tag_opts *o)
{
    const json_t *arr = vj_arr(ve, p, parent, key);
    size_t m = vp_field(p, key);
    if (require_one_selector && json_array_size(arr) == 0)
        vadd(ve, p, "must have at least one element");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *sel = json_array_get(arr, i);
        size_t mi = vp_index(p, i);
        const json_t *match = NULL;
        if (!json_is_object(sel)) {
            if (!json_is_null(sel))
                vadd(ve, p, VMSG_OBJECT);
        } else {
            match = vj_tags(ve, p, sel, "match");
        }
        size_t mm = vp_field(p, "match");
        v_selector(ve, p, match, o);
        vp_reset(p, mm);
        if (i > 0 && at_most_one)
            vadd(ve, p, "there can be at most one selector");
        vp_reset(p, mi);
    }
    vp_reset(p, m);
}

/* ---- durations ---- */

int kuma_duration_parse(const char *s, int64_t *ns)
{
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    const char *q = s;
    unsigned long long n = 0;
    if (!isdigit((unsigned char)*q))
        return -1;
    while (isdigit((unsigned char)*q)) {
        if (n > 1000000000000ULL)
            return -1;
        n = n * 10 + (unsigned)(*q++ - '0');
    }
    static const struct {
        const char *u;
        int64_t mult;
    } units[] = {{"y", 365LL * 24 * 3600 * 1000000000LL},
                 {"w", 7LL * 24 * 3600 * 1000000000LL},
                 {"d", 24LL * 3600 * 1000000000LL},
                 {"h", 3600LL * 1000000000LL},
                 {"m", 60LL * 1000000000LL},
                 {"s", 1000000000LL},
                 {"ms", 1000000LL}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(q, units[i].u) == 0) {
            *ns =
                (int64_t)((double)n * (double)units[i].mult > 9.2e18 ? INT64_MAX
                                                                     : (int64_t)n * units[i].mult);
            return 0;
        }
    return -1;
}

int go_duration_parse(const char *s, int64_t *ns)
{
    static const struct {
        const char *u;
        double mult;
    } units[] = {{"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                 {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
    const char *q = s;
    int neg = 0;
    if (*q == '-' || *q == '+')
        neg = *q++ == '-';
    if (strcmp(q, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (!*q)
        return -1;
    double total = 0;
    while (*q) {
        if (!(isdigit((unsigned char)*q) || *q == '.'))
            return -1;
        char *end;
        const char *numstart = q;
        int digits = 0;
        while (isdigit((unsigned char)*q) || *q == '.') {
            if (isdigit((unsigned char)*q))
                digits++;
            q++;
        }
        if (!digits || memchr(numstart, '.', (size_t)(q - numstart)) !=
                           memrchr(numstart, '.', (size_t)(q - numstart)))
            return -1;
        double v = strtod(numstart, &end);
        const char *ustart = q;
        while (*q && !(isdigit((unsigned char)*q) || *q == '.'))
            q++;
        size_t ulen = (size_t)(q - ustart);
        if (!ulen)
            return -1; /* missing unit */
        double mult = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].u) == ulen && memcmp(units[i].u, ustart, ulen) == 0)
                mult = units[i].mult;
        if (mult == 0)
            return -1;
        total += v * mult;
        if (total > 9.223372036854775807e18)
            return -1; /* overflow, as Go reports */
    }
    *ns = (int64_t)(neg ? -total : total);
    return 0;
}

int vj_duration(struct verr *ve, struct vpath *p, const json_t *parent, const char *key,
                int64_t *ns)
{
    const json_t *v = lookup(parent, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || go_duration_parse(json_string_value(v), ns) != 0) {
        type_err(ve, p, key, VMSG_DURATION);
        return 0;
    }
    return 1;
}

/* ---- addresses ---- */

int ip_ok(const char *s)
{
    unsigned char buf[16];
    if (strchr(s, ':'))
        return inet_pton(AF_INET6, s, buf) == 1;
    return inet_pton(AF_INET, s, buf) == 1;
}

int ip_is_unspecified(const char *s)
{
    unsigned char buf[16];
    static const unsigned char zero[16];
    if (strchr(s, ':'))
        return inet_pton(AF_INET6, s, buf) == 1 && memcmp(buf, zero, 16) == 0;
    return inet_pton(AF_INET, s, buf) == 1 && memcmp(buf, zero, 4) == 0;
}

/* govalidator's rxDNSName label: [a-zA-Z0-9_][a-zA-Z0-9_-]{0,62}. */
static int dns_label_loose(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || (c == '-' && i > 0)))
            return 0;
    }
    return 1;
}

int dns_name_ok(const char *s)
{
    size_t len = strlen(s), nodots = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '.')
            nodots++;
    if (len == 0 || nodots > 255 || ip_ok(s))
        return 0;
    /* An optional trailing "." or "_". */
    size_t end = len;
    if (s[end - 1] == '.' || s[end - 1] == '_') {
        /* "_" may also belong to the last label; try both readings. */
        char *copy = xstrndup(s, end - 1);
        int ok = end > 1 && dns_name_ok(copy);
        free(copy);
        if (ok)
            return 1;
        if (s[end - 1] == '.')
            return 0;
    }
    const char *p = s;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(s + end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(s + end - p);
        if (!dns_label_loose(p, n))
            return 0;
        if (!dot)
            return 1;
        p = dot + 1;
    }
}

static int copy_out(const char *s, size_t n, char *out, size_t outlen)
{
    if (n + 1 > outlen)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int split_host_port(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return -1; /* missing port in address */
    const char *h, *hend;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return -1;
        if (close + 1 != colon)
            return -1;
        h = s + 1;
        hend = close;
        if (memchr(h, '[', (size_t)(hend - h)) || strchr(colon, ']') || strchr(colon, '['))
            return -1;
    } else {
        h = s;
        hend = colon;
        if (memchr(h, ':', (size_t)(hend - h)))
            return -1; /* too many colons */
        if (memchr(h, '[', (size_t)(hend - h)) || memchr(h, ']', (size_t)(hend - h)))
            return -1;
    }
    if (strchr(colon + 1, '[') || strchr(colon + 1, ']'))
        return -1;
    if (copy_out(h, (size_t)(hend - h), host, hostlen) ||
        copy_out(colon + 1, strlen(colon + 1), port, portlen))
        return -1;
    return 0;
}

static int host_char_ok(unsigned char c)
{
    return isalnum(c) || strchr("-_.~!$&'()*+,;=:[]<>\"%", c) != NULL;
}

static int escapes_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return 0;
        }
    return 1;
}

int parse_request_uri(const char *s, char *port, size_t portlen)
{
    if (portlen)
        port[0] = '\0';
    if (!*s)
        return -1;
    for (const char *q = s; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            return -1;
    if (strcmp(s, "*") == 0)
        return 0;
    /* Scheme. */
    const char *rest = s;
    int has_scheme = 0;
    for (const char *q = s; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (isalpha(c))
            continue;
        if (isdigit(c) || c == '+' || c == '-' || c == '.') {
            if (q == s)
                break;
            continue;
        }
        if (c == ':') {
            if (q == s)
                return -1; /* missing protocol scheme */
            has_scheme = 1;
            rest = q + 1;
        }
        break;
    }
    /* Drop the query. */
    size_t restlen = strcspn(rest, "?");
    if (restlen == 0 || rest[0] != '/')
        return has_scheme ? 0 : -1;
    if (has_scheme && restlen >= 2 && rest[1] == '/') {
        const char *auth = rest + 2;
        size_t alen = strcspn(auth, "/?");
        const char *at = NULL;
        for (size_t i = 0; i < alen; i++)
            if (auth[i] == '@')
                at = auth + i;
        const char *host = at ? at + 1 : auth;
        size_t hlen = (size_t)(auth + alen - host);
        const char *pstart = NULL;
        if (hlen && host[0] == '[') {
            const char *close = memchr(host, ']', hlen);
            if (!close)
                return -1;
            if (close + 1 < host + hlen) {
                if (close[1] != ':')
                    return -1;
                pstart = close + 2;
            }
        } else {
            const char *colon = NULL;
            for (size_t i = 0; i < hlen; i++)
                if (host[i] == ':')
                    colon = host + i;
            if (colon)
                pstart = colon + 1;
        }
        for (size_t i = 0; i < hlen; i++)
            if ((unsigned char)host[i] < 0x80 && !host_char_ok((unsigned char)host[i]))
                return -1;
        if (!escapes_ok(host, hlen))
            return -1;
        if (pstart) {
            size_t plen = (size_t)(host + hlen - pstart);
            for (size_t i = 0; i < plen; i++)
                if (!isdigit((unsigned char)pstart[i]))
                    return -1; /* invalid port after host */
            if (portlen && plen < portlen) {
                memcpy(port, pstart, plen);
                port[plen] = '\0';
            }
        }
        rest = auth + alen;
        restlen = strcspn(rest, "?");
    }
    if (!escapes_ok(rest, restlen))
        return -1;
    return 0;
}

void v_port(struct verr *ve, struct vpath *p, long long port)
{
    if (port <= 0 || port > 65535)
        vadd(ve, p, "port must be in the range [1, 65535]");
}

const json_t *vj_elem_obj(struct verr *ve, struct vpath *p, const json_t *arr, size_t i)
{
    const json_t *e = json_array_get(arr, i);
    if (json_is_object(e))
        return e;
    if (!json_is_null(e)) {
        size_t m = vp_index(p, i);
        vadd(ve, p, VMSG_OBJECT);
        vp_reset(p, m);
    }
    return NULL;
}
