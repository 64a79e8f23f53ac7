/*
 * ctl/mustache — Mustache rendering for kumactl apply (see mustache.h).
 */
#include "ctl/mustache.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define MUSTACHE_MAX_DEPTH 32

json_t *mustache_context(char *const *keys, char *const *vals, size_t n)
{
    json_t *root = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *cur = root;
        const char *k = keys[i];
        const char *dot;
        while ((dot = strchr(k, '.')) != NULL) {
            char *part = xstrndup(k, (size_t)(dot - k));
            json_t *next = json_object_get(cur, part);
            if (!json_is_object(next)) {
                next = json_object();
                json_object_set_new(cur, part, next);
            }
            free(part);
            cur = next;
            k = dot + 1;
        }
        json_object_set_new(cur, k, json_string(vals[i]));
    }
    return root;
}

struct render {
    struct buf out;
    const json_t *stack[MUSTACHE_MAX_DEPTH + 1];
    int depth;
    char *err;
};

static const json_t *lookup_in(const json_t *ctx, const char *name, size_t len)
{
    const char *dot = memchr(name, '.', len);
    size_t first = dot ? (size_t)(dot - name) : len;
    char *k = xstrndup(name, first);
    const json_t *v = json_is_object(ctx) ? json_object_get(ctx, k) : NULL;
    free(k);
    if (!v || !dot)
        return v;
    return lookup_in(v, dot + 1, len - first - 1);
}

static const json_t *lookup(const struct render *r, const char *name, size_t len)
{
    if (len == 1 && name[0] == '.')
        return r->stack[r->depth];
    const char *dot = memchr(name, '.', len);
    size_t first = dot ? (size_t)(dot - name) : len;
    for (int i = r->depth; i >= 0; i--) {
        char *k = xstrndup(name, first);
        const json_t *v = json_is_object(r->stack[i]) ? json_object_get(r->stack[i], k) : NULL;
        free(k);
        if (v)
            return dot ? lookup_in(v, dot + 1, len - first - 1) : v;
    }
    return NULL;
}

static int truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    return 1;
}

static int put(struct render *r, const char *s, size_t n)
{
    if (buf_append(&r->out, s, n) < 0) {
        r->err = xstrdup("rendered template is too large");
        return -1;
    }
    return 0;
}

static int put_value(struct render *r, const json_t *v, int escape)
{
    if (!v || !json_is_string(v))
        return 0; /* missing names (and non-strings) render as nothing */
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!escape)
        return put(r, s, n);
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '"':
            rep = "&#34;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '\0':
            rep = "\xEF\xBF\xBD";
            break;
        default:
            break;
        }
        if (rep ? put(r, rep, strlen(rep)) : put(r, &s[i], 1))
            return -1;
    }
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\n' ||
                  (*s)[*n - 1] == '\r'))
        (*n)--;
}

/* A parsed tag starting at t (which points at "{{"). */
struct tag {
    char kind; /* 0 variable, '{' raw, '&' raw, '#', '^', '/', '!', '>', '=' */
    const char *name;
    size_t nlen;
    const char *end; /* first byte after the tag */
};

static int parse_tag(const char *t, const char *lim, struct tag *tg)
{
    const char *p = t + 2;
    const char *close;
    memset(tg, 0, sizeof(*tg));
    if (p < lim && *p == '{') {
        tg->kind = '{';
        p++;
        close = NULL;
        for (const char *q = p; q + 2 < lim; q++)
            if (q[0] == '}' && q[1] == '}' && q[2] == '}') {
                close = q;
                break;
            }
        if (!close)
            return -1;
        tg->end = close + 3;
    } else {
        close = NULL;
        for (const char *q = p; q + 1 < lim; q++)
            if (q[0] == '}' && q[1] == '}') {
                close = q;
                break;
            }
        if (!close)
            return -1;
        tg->end = close + 2;
        if (p < close && strchr("&#^/!>=", *p)) {
            tg->kind = *p;
            p++;
        }
    }
    tg->name = p;
    tg->nlen = (size_t)(close - p);
    trim(&tg->name, &tg->nlen);
    return 0;
}

static int render_range(struct render *r, const char *s, const char *lim);

/* Finds the {{/name}} matching a section opened just before s. */
static const char *find_close(const char *s, const char *lim, const char *name, size_t nlen,
                              const char **after)
{
    int nest = 0;
    while (s < lim) {
        const char *t = NULL;
        for (const char *q = s; q + 1 < lim; q++)
            if (q[0] == '{' && q[1] == '{') {
                t = q;
                break;
            }
        if (!t)
            return NULL;
        struct tag tg;
        if (parse_tag(t, lim, &tg) < 0)
            return NULL;
        if ((tg.kind == '#' || tg.kind == '^') && tg.nlen == nlen &&
            memcmp(tg.name, name, nlen) == 0)
            nest++;
        if (tg.kind == '/' && tg.nlen == nlen && memcmp(tg.name, name, nlen) == 0) {
            if (nest == 0) {
                *after = tg.end;
                return t;
            }
            nest--;
        }
        s = tg.end;
    }
    return NULL;
}

static int render_range(struct render *r, const char *s, const char *lim)
{
    while (s < lim) {
        const char *t = NULL;
        for (const char *q = s; q + 1 < lim; q++)
            if (q[0] == '{' && q[1] == '{') {
                t = q;
                break;
            }
        if (!t)
            return put(r, s, (size_t)(lim - s));
        if (put(r, s, (size_t)(t - s)) < 0)
            return -1;
        struct tag tg;
        if (parse_tag(t, lim, &tg) < 0) {
            r->err = xstrdup("unmatched open tag");
            return -1;
        }
        switch (tg.kind) {
        case '!':
        case '>':
            break;
        case '=':
            r->err = xstrdup("changing delimiters is not supported");
            return -1;
        case '/':
            r->err = xasprintf("unmatched close tag \"%.*s\"", (int)tg.nlen, tg.name);
            return -1;
        case '#':
        case '^': {
            const char *after, *inner_end = find_close(tg.end, lim, tg.name, tg.nlen, &after);
            if (!inner_end) {
                r->err = xasprintf("section \"%.*s\" has no closing tag", (int)tg.nlen, tg.name);
                return -1;
            }
            const json_t *v = lookup(r, tg.name, tg.nlen);
            int show = tg.kind == '#' ? truthy(v) : !truthy(v);
            if (show) {
                if (r->depth >= MUSTACHE_MAX_DEPTH) {
                    r->err = xstrdup("sections nested too deeply");
                    return -1;
                }
                int pushed = tg.kind == '#' && v;
                if (pushed)
                    r->stack[++r->depth] = v;
                int rc = render_range(r, tg.end, inner_end);
                if (pushed)
                    r->depth--;
                if (rc < 0)
                    return -1;
            }
            s = after;
            continue;
        }
        default:
            if (put_value(r, lookup(r, tg.name, tg.nlen), tg.kind == 0) < 0)
                return -1;
            break;
        }
        s = tg.end;
    }
    return 0;
}

int mustache_render(const char *tmpl, size_t len, const json_t *ctx, size_t max_out, char **out,
                    char **errmsg)
{
    struct render r;
    memset(&r, 0, sizeof(r));
    buf_init(&r.out, max_out);
    r.stack[0] = ctx;
    *out = NULL;
    *errmsg = NULL;
    if (render_range(&r, tmpl, tmpl + len) < 0) {
        *errmsg = r.err;
        buf_free(&r.out);
        return -1;
    }
    *out = xstrdup(buf_str(&r.out));
    buf_free(&r.out);
    return 0;
}
