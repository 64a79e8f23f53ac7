/*
 * http — route tables, route selection, the http-parser glue and local
 * replies (contract in http.h).
 *
 * Invariants: a codec parses at most one request and one response at a time
 * (both parsers pause on message completion); head fields are stored as
 * offsets from the current message's first byte, never as pointers, so the
 * caller may move its buffer between reads.
 */
#include "dp/http.h"

#include <http_parser.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- routing ------------------------------------------------------------------------------- */

struct cmatch {
    const struct dp_http_header_matcher *m;
    regex_t re;
    int has_re;
};

struct croute {
    const struct dp_http_route *m;
    regex_t path_re;
    int has_path_re;
    struct cmatch *h;
    size_t n_h;
    struct cmatch *q; /* query parameters */
    size_t n_q;
};

struct cvhost {
    const struct dp_http_vhost *m;
    size_t first; /* index of its first route */
};

struct dp_http_routes {
    struct cvhost *vh;
    size_t n_vh;
    struct croute *r;
    size_t n_r;
};

/* RE2's full match as POSIX ERE: anchored, the pattern grouped. */
static int compile_re(regex_t *re, const char *pattern, int icase, struct err *e)
{
    char *p = xasprintf("^(%s)$", pattern);
    int rc = regcomp(re, p, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
    free(p);
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof(msg));
        return err_set(e, "regex %s: %s", pattern, msg);
    }
    return 0;
}

void dp_http_routes_free(struct dp_http_routes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_r; i++) {
        if (r->r[i].has_path_re)
            regfree(&r->r[i].path_re);
        for (size_t j = 0; j < r->r[i].n_h; j++)
            if (r->r[i].h[j].has_re)
                regfree(&r->r[i].h[j].re);
        free(r->r[i].h);
        for (size_t j = 0; j < r->r[i].n_q; j++)
            if (r->r[i].q[j].has_re)
                regfree(&r->r[i].q[j].re);
        free(r->r[i].q);
    }
    free(r->r);
    free(r->vh);
    free(r);
}

int dp_http_routes_new(const struct dp_http_conn_manager *m, struct dp_http_routes **out,
                       struct err *e)
{
    const struct dp_http_route_config *rc = &m->route_config;
    struct dp_http_routes *r = xcalloc(1, sizeof(*r));
    size_t total = 0;
    for (size_t i = 0; i < rc->n_vhosts; i++)
        total += rc->vhosts[i].n_routes;
    r->vh = xcalloc(rc->n_vhosts ? rc->n_vhosts : 1, sizeof(*r->vh));
    r->r = xcalloc(total ? total : 1, sizeof(*r->r));
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        const struct dp_http_vhost *vh = &rc->vhosts[i];
        r->vh[r->n_vh].m = vh;
        r->vh[r->n_vh++].first = r->n_r;
        for (size_t j = 0; j < vh->n_routes; j++) {
            const struct dp_http_route *rt = &vh->routes[j];
            struct croute *cr = &r->r[r->n_r++];
            cr->m = rt;
            if (rt->match.path_kind == DP_HTTP_PATH_REGEX) {
                if (compile_re(&cr->path_re, rt->match.path, 0, e) != 0)
                    goto fail;
                cr->has_path_re = 1;
            }
            cr->q = xcalloc(rt->match.n_query ? rt->match.n_query : 1, sizeof(*cr->q));
            for (size_t k = 0; k < rt->match.n_query; k++) {
                const struct dp_http_header_matcher *qm = &rt->match.query[k];
                cr->q[k].m = qm;
                cr->n_q++;
                if (qm->kind == DP_HTTP_MATCH_REGEX) {
                    if (compile_re(&cr->q[k].re, qm->value ? qm->value : "", qm->ignore_case, e) !=
                        0)
                        goto fail;
                    cr->q[k].has_re = 1;
                }
            }
            cr->h = xcalloc(rt->match.n_headers ? rt->match.n_headers : 1, sizeof(*cr->h));
            for (size_t k = 0; k < rt->match.n_headers; k++) {
                const struct dp_http_header_matcher *hm = &rt->match.headers[k];
                cr->h[k].m = hm;
                cr->n_h++;
                if (hm->kind == DP_HTTP_MATCH_REGEX) {
                    if (compile_re(&cr->h[k].re, hm->value ? hm->value : "", hm->ignore_case, e) !=
                        0)
                        goto fail;
                    cr->h[k].has_re = 1;
                }
            }
        }
    }
    *out = r;
    return 0;
fail:
    dp_http_routes_free(r);
    return -1;
}

size_t dp_http_routes_count(const struct dp_http_routes *r)
{
    return r ? r->n_r : 0;
}

const struct dp_http_route *dp_http_routes_get(const struct dp_http_routes *r, size_t idx)
{
    return idx < r->n_r ? r->r[idx].m : NULL;
}

/* Domain match quality: 4 exact, 3 suffix wildcard, 2 prefix wildcard, 1 "*",
 * 0 none; *len is the wildcard's literal length (longest wins). */
static int domain_match(const char *d, const char *host, size_t hl, size_t *len)
{
    size_t dl = strlen(d);
    *len = dl;
    if (dl == 1 && d[0] == '*')
        return 1;
    if (dl == hl && strncasecmp(d, host, hl) == 0)
        return 4;
    if (dl > 1 && d[0] == '*' && hl >= dl && strncasecmp(d + 1, host + hl - (dl - 1), dl - 1) == 0)
        return 3;
    if (dl > 1 && d[dl - 1] == '*' && hl >= dl && strncasecmp(d, host, dl - 1) == 0)
        return 2;
    return 0;
}

static const struct cvhost *select_vhost(const struct dp_http_routes *r, const char *host,
                                         size_t hl)
{
    const struct cvhost *best = NULL;
    int bq = 0;
    size_t blen = 0;
    for (size_t i = 0; i < r->n_vh; i++)
        for (size_t j = 0; j < r->vh[i].m->n_domains; j++) {
            size_t len;
            int q = domain_match(r->vh[i].m->domains[j], host, hl, &len);
            if (q > bq || (q == bq && q > 0 && q < 4 && len > blen)) {
                best = &r->vh[i];
                bq = q;
                blen = len;
            }
        }
    return best;
}

static int str_match(enum dp_http_match_kind k, const char *want, const char *v, size_t vl,
                     int icase)
{
    size_t wl = strlen(want);
    int (*cmp)(const char *, const char *, size_t) = icase ? strncasecmp : strncmp;
    switch (k) {
    case DP_HTTP_MATCH_EXACT:
        return wl == vl && cmp(want, v, vl) == 0;
    case DP_HTTP_MATCH_PREFIX:
        return vl >= wl && cmp(want, v, wl) == 0;
    case DP_HTTP_MATCH_SUFFIX:
        return vl >= wl && cmp(want, v + vl - wl, wl) == 0;
    case DP_HTTP_MATCH_CONTAINS:
        for (size_t i = 0; i + wl <= vl; i++)
            if (cmp(want, v + i, wl) == 0)
                return 1;
        return 0;
    default:
        return 0;
    }
}

/* regexec wants a NUL-terminated string: header values are short (the head
 * fits the connection buffer), copy them. */
static int re_match(const regex_t *re, const char *v, size_t vl)
{
    char stack[512];
    char *s = vl < sizeof(stack) ? stack : xmalloc(vl + 1);
    memcpy(s, v, vl);
    s[vl] = 0;
    int ok = regexec(re, s, 0, NULL, 0) == 0;
    if (s != stack)
        free(s);
    return ok;
}

static int header_value(const struct dp_http_request *rq, const char *name, const char **v,
                        size_t *vl)
{
    if (name[0] == ':') {
        if (strcmp(name, ":method") == 0) {
            *v = rq->method;
            *vl = strlen(rq->method);
            return 1;
        }
        if (strcmp(name, ":path") == 0) {
            *v = rq->path;
            *vl = rq->path_len;
            return 1;
        }
        if (strcmp(name, ":authority") == 0) {
            *v = rq->authority;
            *vl = rq->authority_len;
            return rq->authority != NULL;
        }
        if (strcmp(name, ":scheme") == 0) {
            *v = rq->tls ? "https" : "http";
            *vl = strlen(*v);
            return 1;
        }
        return 0;
    }
    size_t nl = strlen(name);
    for (size_t i = 0; i < rq->n_headers; i++)
        if (rq->headers[i].name_len == nl && strncasecmp(rq->headers[i].name, name, nl) == 0) {
            *v = rq->headers[i].value;
            *vl = rq->headers[i].value_len;
            return 1;
        }
    return 0;
}

/* The first value of query parameter name in the request target (raw, not
 * percent-decoded); 1 if present ("a" and "a=" have the value ""). */
static int query_value(const struct dp_http_request *rq, const char *name, const char **v,
                       size_t *vl)
{
    const char *q = memchr(rq->path, '?', rq->path_len);
    if (!q)
        return 0;
    const char *end = rq->path + rq->path_len, *hash = memchr(q, '#', (size_t)(end - q));
    if (hash)
        end = hash;
    size_t nl = strlen(name);
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        if ((size_t)(ne - p) == nl && memcmp(p, name, nl) == 0) {
            *v = eq ? eq + 1 : pe;
            *vl = eq ? (size_t)(pe - eq - 1) : 0;
            return 1;
        }
        p = pe + 1;
    }
    return 0;
}

static int route_matches(const struct croute *cr, const struct dp_http_request *rq)
{
    const struct dp_http_route_match *m = &cr->m->match;
    /* Exact and regex paths ignore the query string; a prefix sees it all, as Envoy. */
    size_t pl = rq->path_len;
    const char *q = memchr(rq->path, '?', rq->path_len);
    if (m->path_kind != DP_HTTP_PATH_PREFIX && q)
        pl = (size_t)(q - rq->path);
    switch (m->path_kind) {
    case DP_HTTP_PATH_PREFIX:
        if (!str_match(DP_HTTP_MATCH_PREFIX, m->path, rq->path, rq->path_len, 0))
            return 0;
        break;
    case DP_HTTP_PATH_EXACT:
        if (!str_match(DP_HTTP_MATCH_EXACT, m->path, rq->path, pl, 0))
            return 0;
        break;
    case DP_HTTP_PATH_REGEX:
        if (!re_match(&cr->path_re, rq->path, pl))
            return 0;
        break;
    }
    for (size_t i = 0; i < cr->n_h; i++) {
        const struct dp_http_header_matcher *hm = cr->h[i].m;
        const char *v = NULL;
        size_t vl = 0;
        int present = header_value(rq, hm->name, &v, &vl);
        int ok;
        if (hm->kind == DP_HTTP_MATCH_PRESENT)
            ok = present;
        else if (!present)
            ok = 0;
        else if (hm->kind == DP_HTTP_MATCH_REGEX)
            ok = re_match(&cr->h[i].re, v, vl);
        else
            ok = str_match(hm->kind, hm->value ? hm->value : "", v, vl, hm->ignore_case);
        /* An absent header fails even an inverted value matcher, as Envoy. */
        if (hm->invert && (present || hm->kind == DP_HTTP_MATCH_PRESENT))
            ok = !ok;
        if (!ok)
            return 0;
    }
    for (size_t i = 0; i < cr->n_q; i++) {
        const struct dp_http_header_matcher *qm = cr->q[i].m;
        const char *v = NULL;
        size_t vl = 0;
        if (!query_value(rq, qm->name, &v, &vl))
            return 0;
        if (qm->kind == DP_HTTP_MATCH_PRESENT)
            continue;
        int ok = qm->kind == DP_HTTP_MATCH_REGEX
                     ? re_match(&cr->q[i].re, v, vl)
                     : str_match(qm->kind, qm->value ? qm->value : "", v, vl, qm->ignore_case);
        if (!ok)
            return 0;
    }
    return 1;
}

int dp_http_route_select(const struct dp_http_routes *r, const struct dp_http_request *rq)
{
    if (!r || !r->n_vh)
        return -1;
    const char *host = rq->authority ? rq->authority : "";
    size_t hl = rq->authority ? rq->authority_len : 0;
    /* The port is part of the authority, as Envoy matches by default
     * (ignore_port_in_host_matching false). */
    const struct cvhost *vh = select_vhost(r, host, hl);
    if (!vh)
        return -1;
    for (size_t i = 0; i < vh->m->n_routes; i++)
        if (route_matches(&r->r[vh->first + i], rq))
            return (int)(vh->first + i);
    return -1;
}

/* --- codec --------------------------------------------------------------------------------- */

struct span {
    uint32_t off, len;
};

struct dp_http_codec {
    http_parser rq, rs;
    uint32_t max_head;
    /* Request side. */
    uint64_t pos;     /* request bytes consumed since the current message began */
    uint64_t base;    /* value of pos at the start of the current feed */
    const char *feed; /* start of the current feed */
    int ev;           /* event raised by a callback */
    int head_done, rq_done, too_large, too_many;
    uint32_t head_len;
    struct span url;
    struct span hname[DP_HTTP_MAX_HEADERS], hval[DP_HTTP_MAX_HEADERS];
    size_t n_h;
    int in_value;
    /* Response side. */
    int rs_done, status, rq_head_method;
    int rs_eof; /* the body runs until the upstream closes */
};

static struct dp_http_codec *codec_of(http_parser *p)
{
    return p->data;
}

static uint32_t at_off(struct dp_http_codec *h, const char *at)
{
    return (uint32_t)(h->base + (uint64_t)(at - h->feed));
}

static int on_rq_begin(http_parser *p)
{
    struct dp_http_codec *h = codec_of(p);
    h->head_done = h->rq_done = 0;
    h->n_h = 0;
    h->in_value = 0;
    h->url.off = h->url.len = 0;
    return 0;
}

static void extend(struct span *s, uint32_t off, size_t len)
{
    if (s->len == 0)
        s->off = off;
    s->len = (uint32_t)(off + len - s->off);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct dp_http_codec *h = codec_of(p);
    extend(&h->url, at_off(h, at), len);
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t len)
{
    struct dp_http_codec *h = codec_of(p);
    if (h->in_value || h->n_h == 0) {
        if (h->n_h == DP_HTTP_MAX_HEADERS) {
            h->too_many = 1;
            return 1;
        }
        h->n_h++;
        h->hname[h->n_h - 1] = (struct span){0, 0};
        h->hval[h->n_h - 1] = (struct span){0, 0};
        h->in_value = 0;
    }
    extend(&h->hname[h->n_h - 1], at_off(h, at), len);
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t len)
{
    struct dp_http_codec *h = codec_of(p);
    if (h->n_h == 0)
        return 1;
    h->in_value = 1;
    extend(&h->hval[h->n_h - 1], at_off(h, at), len);
    return 0;
}

static int on_rq_headers(http_parser *p)
{
    struct dp_http_codec *h = codec_of(p);
    h->head_done = 1;
    h->ev = DP_HTTP_HEAD;
    http_parser_pause(p, 1);
    return 0;
}

static int on_rq_complete(http_parser *p)
{
    struct dp_http_codec *h = codec_of(p);
    h->rq_done = 1;
    h->ev = DP_HTTP_DONE;
    http_parser_pause(p, 1);
    return 0;
}

static int on_rs_headers(http_parser *p)
{
    struct dp_http_codec *h = codec_of(p);
    h->status = p->status_code;
    /* No length and not chunked: the body ends with the connection, so the
     * client can only tell where it ends if its connection closes too. */
    int st = p->status_code;
    h->rs_eof = !h->rq_head_method && !(st >= 100 && st < 200) && st != 204 && st != 304 &&
                !(p->flags & F_CHUNKED) && p->content_length == ULLONG_MAX;
    /* A response to HEAD, and 1xx/204/304, have no body. */
    return h->rq_head_method ? 1 : 0;
}

static int on_rs_complete(http_parser *p)
{
    struct dp_http_codec *h = codec_of(p);
    h->rs_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings RQ_SETTINGS = {
    .on_message_begin = on_rq_begin,
    .on_url = on_url,
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_headers_complete = on_rq_headers,
    .on_message_complete = on_rq_complete,
};

static const http_parser_settings RS_SETTINGS = {
    .on_headers_complete = on_rs_headers,
    .on_message_complete = on_rs_complete,
};

struct dp_http_codec *dp_http_codec_new(uint32_t max_head)
{
    struct dp_http_codec *h = xcalloc(1, sizeof(*h));
    h->max_head = max_head;
    dp_http_codec_next(h);
    return h;
}

void dp_http_codec_free(struct dp_http_codec *h)
{
    free(h);
}

void dp_http_codec_next(struct dp_http_codec *h)
{
    http_parser_init(&h->rq, HTTP_REQUEST);
    http_parser_init(&h->rs, HTTP_RESPONSE);
    h->rq.data = h->rs.data = h;
    h->pos = 0;
    h->head_done = h->rq_done = h->rs_done = 0;
    h->status = 0;
    h->rs_eof = 0;
    h->n_h = 0;
    h->in_value = 0;
}

enum dp_http_ev dp_http_codec_request_feed(struct dp_http_codec *h, const char *p, size_t n,
                                           size_t *used)
{
    *used = 0;
    if (h->rq_done)
        return DP_HTTP_DONE;
    if (n == 0)
        return DP_HTTP_MORE;
    h->ev = DP_HTTP_MORE;
    h->base = h->pos;
    h->feed = p;
    size_t r = http_parser_execute(&h->rq, &RQ_SETTINGS, p, n);
    h->pos += r;
    *used = r;
    enum http_errno en = HTTP_PARSER_ERRNO(&h->rq);
    if (en == HPE_PAUSED) {
        http_parser_pause(&h->rq, 0);
        if (h->ev == DP_HTTP_HEAD) {
            /* The parser stops on the head's last LF, not yet consumed. */
            h->head_len = (uint32_t)(h->pos + 1);
            if (h->head_len > h->max_head) {
                h->too_large = 1;
                return DP_HTTP_ERROR;
            }
            h->rq_head_method = h->rq.method == HTTP_HEAD;
        }
        return (enum dp_http_ev)h->ev;
    }
    if (en != HPE_OK) {
        h->too_large = en == HPE_HEADER_OVERFLOW || h->too_many;
        return DP_HTTP_ERROR;
    }
    if (!h->head_done && h->pos >= h->max_head) {
        h->too_large = 1;
        return DP_HTTP_ERROR;
    }
    return DP_HTTP_MORE;
}

void dp_http_codec_request(const struct dp_http_codec *h, const char *msg,
                           struct dp_http_header *hdrs, struct dp_http_request *out)
{
    memset(out, 0, sizeof(*out));
    out->method = http_method_str((enum http_method)h->rq.method);
    out->path = msg + h->url.off;
    out->path_len = h->url.len;
    for (size_t i = 0; i < h->n_h; i++) {
        hdrs[i].name = msg + h->hname[i].off;
        hdrs[i].name_len = h->hname[i].len;
        hdrs[i].value = msg + h->hval[i].off;
        hdrs[i].value_len = h->hval[i].len;
        if (!out->authority && hdrs[i].name_len == 4 && strncasecmp(hdrs[i].name, "host", 4) == 0) {
            out->authority = hdrs[i].value;
            out->authority_len = hdrs[i].value_len;
        }
    }
    out->headers = hdrs;
    out->n_headers = h->n_h;
}

size_t dp_http_codec_head_len(const struct dp_http_codec *h)
{
    return h->head_len;
}

size_t dp_http_codec_strip(struct dp_http_codec *h, char *msg, size_t avail, char *const *names,
                           size_t n_names)
{
    size_t removed = 0;
    /* Walk the headers backwards so earlier offsets stay valid. */
    for (size_t i = h->n_h; i-- > 0;) {
        int drop = 0;
        for (size_t k = 0; k < n_names && !drop; k++)
            drop = strlen(names[k]) == h->hname[i].len &&
                   strncasecmp(names[k], msg + h->hname[i].off, h->hname[i].len) == 0;
        if (!drop)
            continue;
        /* The line runs from the name to the next name, or to the blank line. */
        size_t start = h->hname[i].off;
        size_t end;
        if (i + 1 < h->n_h) {
            end = h->hname[i + 1].off;
        } else {
            end = h->head_len - removed;
            end -= (end >= 2 && msg[end - 2] == '\r') ? 2 : 1;
        }
        if (end <= start || end > avail - removed)
            continue;
        memmove(msg + start, msg + end, avail - removed - end);
        size_t k = end - start;
        removed += k;
        for (size_t j = i + 1; j < h->n_h; j++) {
            h->hname[j].off -= (uint32_t)k;
            h->hval[j].off -= (uint32_t)k;
        }
        memmove(&h->hname[i], &h->hname[i + 1], (h->n_h - i - 1) * sizeof(h->hname[0]));
        memmove(&h->hval[i], &h->hval[i + 1], (h->n_h - i - 1) * sizeof(h->hval[0]));
        h->n_h--;
    }
    h->head_len -= (uint32_t)removed;
    return removed;
}

size_t dp_http_codec_add_header(struct dp_http_codec *h, char *msg, size_t avail, size_t cap,
                                const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), n = nl + 2 + vl + 2;
    size_t end = h->head_len;
    if (end < 2 || end > avail || avail + n > cap)
        return 0;
    /* Before the blank line ("\r\n", or a bare "\n"). */
    size_t pos = end - (msg[end - 2] == '\r' ? 2 : 1);
    memmove(msg + pos + n, msg + pos, avail - pos);
    memcpy(msg + pos, name, nl);
    memcpy(msg + pos + nl, ": ", 2);
    memcpy(msg + pos + nl + 2, value, vl);
    memcpy(msg + pos + nl + 2 + vl, "\r\n", 2);
    h->head_len += (uint32_t)n;
    return n;
}

int dp_http_codec_request_keep_alive(const struct dp_http_codec *h)
{
    return http_should_keep_alive(&h->rq);
}

int dp_http_codec_request_upgrade(const struct dp_http_codec *h)
{
    return h->rq.upgrade;
}

enum dp_http_ev dp_http_codec_response_feed(struct dp_http_codec *h, const char *p, size_t n,
                                            size_t *used)
{
    *used = 0;
    for (;;) {
        if (h->rs_done)
            return DP_HTTP_DONE;
        size_t r = http_parser_execute(&h->rs, &RS_SETTINGS, n ? p : NULL, n);
        *used += r;
        enum http_errno en = HTTP_PARSER_ERRNO(&h->rs);
        if (en == HPE_PAUSED) {
            http_parser_pause(&h->rs, 0);
            if (h->status >= 100 && h->status < 200 && h->status != 101) {
                /* An interim response (100 Continue): the final one follows. */
                h->rs_done = 0;
                h->status = 0;
                if (r >= n) /* also EOF (n == 0, p == NULL) */
                    return DP_HTTP_MORE;
                p += r;
                n -= r;
                continue;
            }
            return DP_HTTP_DONE;
        }
        if (en != HPE_OK)
            return DP_HTTP_ERROR;
        if (n == 0 && !h->rs_done)
            return DP_HTTP_ERROR; /* EOF in the middle of a response */
        return h->rs_done ? DP_HTTP_DONE : DP_HTTP_MORE;
    }
}

int dp_http_codec_status(const struct dp_http_codec *h)
{
    return h->status;
}

int dp_http_codec_response_keep_alive(const struct dp_http_codec *h)
{
    return http_should_keep_alive(&h->rs);
}

int dp_http_codec_response_until_close(const struct dp_http_codec *h)
{
    return h->rs_eof;
}

int dp_http_codec_error(const struct dp_http_codec *h)
{
    return h->too_large ? 431 : 400;
}

/* --- local replies ------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

size_t dp_http_local_reply(char *out, size_t cap, int status, const char *body, int close)
{
    size_t bl = body ? strlen(body) : 0;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
                     "server: envoy\r\n%s\r\n%s",
                     status, reason(status), bl, close ? "connection: close\r\n" : "",
                     body ? body : "");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}
