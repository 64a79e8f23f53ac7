/*
 * args — pflag-compatible flag parsing (see args.h).
 */
#include "ctl/args.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const struct flag_def *find_long(const struct flag_def *const *t, size_t nt,
                                        const char *name, size_t len)
{
    for (size_t i = 0; i < nt; i++)
        for (const struct flag_def *d = t[i]; d && d->name; d++)
            if (strlen(d->name) == len && strncmp(d->name, name, len) == 0)
                return d;
    return NULL;
}

static const struct flag_def *find_short(const struct flag_def *const *t, size_t nt, char c)
{
    for (size_t i = 0; i < nt; i++)
        for (const struct flag_def *d = t[i]; d && d->name; d++)
            if (d->shorthand && d->shorthand == c)
                return d;
    return NULL;
}

static struct flag_val *slot(struct args *a, const struct flag_def *d)
{
    for (size_t i = 0; i < a->nflags; i++)
        if (a->flags[i].def == d)
            return &a->flags[i];
    a->flags = xrealloc(a->flags, (a->nflags + 1) * sizeof(*a->flags));
    struct flag_val *v = &a->flags[a->nflags++];
    memset(v, 0, sizeof(*v));
    v->def = d;
    return v;
}

/* The flag as pflag names it in "invalid argument" messages. */
static char *flag_title(const struct flag_def *d)
{
    if (d->shorthand)
        return xasprintf("-%c, --%s", d->shorthand, d->name);
    return xasprintf("--%s", d->name);
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_int(const char *s, long long *out)
{
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

long long args_parse_duration_ms(const char *s)
{
    /* Go's time.ParseDuration, restricted to non-negative values. */
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3},  {"ms", 1},
                 {"s", 1000},  {"m", 60000}, {"h", 3600000}};
    double total = 0;
    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0)
        return 0;
    if (*s == '+')
        s++;
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.')
            return -1;
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        size_t best = 0, bestlen = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && l > bestlen) {
                best = i;
                bestlen = l;
            }
        }
        if (!bestlen)
            return -1;
        total += v * units[best].ms;
        s += bestlen;
    }
    if (total > 9.2e15)
        return -1;
    return (long long)total;
}

/* Splits s as one CSV record (pflag reads StringSlice and StringToString
 * values this way): commas split elements, double quotes protect commas. */
static size_t split_csv(const char *s, char ***out)
{
    size_t i = 0, len = strlen(s), n = 0;
    *out = NULL;
    while (i <= len) {
        struct buf el;
        buf_init(&el, 0);
        if (s[i] == '"') {
            i++;
            while (i < len) {
                if (s[i] == '"' && s[i + 1] == '"') {
                    buf_append(&el, "\"", 1);
                    i += 2;
                } else if (s[i] == '"') {
                    i++;
                    break;
                } else {
                    buf_append(&el, &s[i++], 1);
                }
            }
        }
        while (i < len && s[i] != ',')
            buf_append(&el, &s[i++], 1);
        *out = xrealloc(*out, (n + 1) * sizeof(char *));
        (*out)[n++] = xstrdup(buf_str(&el));
        buf_free(&el);
        i++;
    }
    return n;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int args_split_map(const char *s, char ***keys, char ***vals, size_t *n)
{
    size_t len = strlen(s), neq = 0;
    if (len == 0)
        return 0;
    for (const char *p = s; *p; p++)
        neq += *p == '=';
    char **els = NULL;
    size_t nel;
    if (neq == 1) {
        /* pflag: a value with a single "=" is one pair, commas included
         * ("kuma.io/service=web,web-api"); surrounding quotes are trimmed. */
        size_t b = 0, e = len;
        while (b < e && s[b] == '"')
            b++;
        while (e > b && s[e - 1] == '"')
            e--;
        els = xcalloc(1, sizeof(char *));
        els[0] = xstrndup(s + b, e - b);
        nel = 1;
    } else {
        nel = split_csv(s, &els);
    }
    for (size_t i = 0; i < nel; i++) {
        if (!strchr(els[i], '=')) {
            free_strv(els, nel);
            return -1;
        }
    }
    for (size_t i = 0; i < nel; i++) {
        const char *eq = strchr(els[i], '=');
        *keys = xrealloc(*keys, (*n + 1) * sizeof(char *));
        *vals = xrealloc(*vals, (*n + 1) * sizeof(char *));
        (*keys)[*n] = xstrndup(els[i], (size_t)(eq - els[i]));
        (*vals)[*n] = xstrdup(eq + 1);
        (*n)++;
    }
    free_strv(els, nel);
    return 0;
}

/* Stores a value for d; returns 0 or -1 with *errmsg. */
static int set_value(struct args *a, const struct flag_def *d, const char *val, char **errmsg)
{
    struct flag_val *v = slot(a, d);
    char *title = NULL;
    int b;
    long long n;

    switch (d->kind) {
    case FLAG_BOOL:
        if (parse_bool(val, &b) < 0) {
            title = flag_title(d);
            *errmsg = xasprintf("invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: "
                                "parsing \"%s\": invalid syntax",
                                val, title, val);
            goto fail;
        }
        v->str = b ? "true" : "false";
        break;
    case FLAG_INT:
        if (parse_int(val, &n) < 0) {
            title = flag_title(d);
            *errmsg = xasprintf("invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: "
                                "parsing \"%s\": invalid syntax",
                                val, title, val);
            goto fail;
        }
        v->str = val;
        break;
    case FLAG_DURATION:
        if (args_parse_duration_ms(val) < 0) {
            title = flag_title(d);
            *errmsg = xasprintf("invalid argument \"%s\" for \"%s\" flag: time: invalid "
                                "duration \"%s\"",
                                val, title, val);
            goto fail;
        }
        v->str = val;
        break;
    case FLAG_MAP:
        if (args_split_map(val, &v->keys, &v->vals, &v->npairs) < 0) {
            title = flag_title(d);
            const char *bad = val;
            *errmsg = xasprintf("invalid argument \"%s\" for \"%s\" flag: %s must be formatted "
                                "as key=value",
                                val, title, bad);
            goto fail;
        }
        v->str = val;
        break;
    case FLAG_STRING_ARRAY:
        v->keys = xrealloc(v->keys, (v->npairs + 1) * sizeof(char *));
        v->vals = xrealloc(v->vals, (v->npairs + 1) * sizeof(char *));
        v->keys[v->npairs] = xstrdup("");
        v->vals[v->npairs++] = xstrdup(val);
        v->str = val;
        break;
    case FLAG_STRING_SLICE: {
        /* Every occurrence appends its comma-separated elements; they are
         * kept in vals (keys hold "" so args_free stays uniform). */
        char **els = NULL;
        size_t nel = *val ? split_csv(val, &els) : 0;
        for (size_t i = 0; i < nel; i++) {
            v->keys = xrealloc(v->keys, (v->npairs + 1) * sizeof(char *));
            v->vals = xrealloc(v->vals, (v->npairs + 1) * sizeof(char *));
            v->keys[v->npairs] = xstrdup("");
            v->vals[v->npairs++] = els[i];
        }
        free(els);
        v->str = val;
        break;
    }
    case FLAG_STRING:
        v->str = val;
        break;
    }
    v->set = 1;
    return 0;
fail:
    free(title);
    return -1;
}

int args_parse(const struct flag_def *const *tables, size_t nt, int argc, char **argv,
               struct args *out, char **errmsg)
{
    memset(out, 0, sizeof(*out));
    out->tables = tables;
    out->ntables = nt;
    *errmsg = NULL;
    int only_pos = 0;

    for (int i = 0; i < argc; i++) {
        char *w = argv[i];
        if (only_pos || w[0] != '-' || w[1] == '\0') {
            out->pos = xrealloc(out->pos, (out->npos + 1) * sizeof(char *));
            out->pos[out->npos++] = w;
            continue;
        }
        if (strcmp(w, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (w[1] == '-') {
            const char *name = w + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 4 && strncmp(name, "help", 4) == 0) {
                out->help = 1;
                continue;
            }
            const struct flag_def *d = find_long(tables, nt, name, len);
            if (!d) {
                *errmsg = xasprintf("unknown flag: --%.*s", (int)len, name);
                goto fail;
            }
            const char *val;
            if (eq)
                val = eq + 1;
            else if (d->kind == FLAG_BOOL)
                val = "true";
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                *errmsg = xasprintf("flag needs an argument: --%s", d->name);
                goto fail;
            }
            if (set_value(out, d, val, errmsg) < 0)
                goto fail;
            continue;
        }
        /* Shorthands: "-abc" is a, b, c when they are booleans; a value flag
         * takes the rest of the word ("-mfoo", "-m=foo") or the next word. */
        for (const char *p = w + 1; *p; p++) {
            if (*p == 'h') {
                out->help = 1;
                continue;
            }
            const struct flag_def *d = find_short(tables, nt, *p);
            if (!d) {
                *errmsg = xasprintf("unknown shorthand flag: '%c' in %s", *p, w);
                goto fail;
            }
            const char *val;
            if (p[1] == '=') {
                val = p + 2;
            } else if (d->kind == FLAG_BOOL) {
                val = "true";
                if (set_value(out, d, val, errmsg) < 0)
                    goto fail;
                continue;
            } else if (p[1]) {
                val = p + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                *errmsg = xasprintf("flag needs an argument: '%c' in %s", *p, w);
                goto fail;
            }
            if (set_value(out, d, val, errmsg) < 0)
                goto fail;
            break;
        }
    }
    return 0;
fail:
    args_free(out);
    return -1;
}

void args_free(struct args *a)
{
    for (size_t i = 0; i < a->nflags; i++) {
        for (size_t j = 0; j < a->flags[i].npairs; j++) {
            free(a->flags[i].keys[j]);
            free(a->flags[i].vals[j]);
        }
        free(a->flags[i].keys);
        free(a->flags[i].vals);
    }
    free(a->flags);
    free(a->pos);
    memset(a, 0, sizeof(*a));
}

const struct flag_val *args_get(const struct args *a, const char *name)
{
    for (size_t i = 0; i < a->nflags; i++)
        if (strcmp(a->flags[i].def->name, name) == 0)
            return &a->flags[i];
    return NULL;
}

int args_is_set(const struct args *a, const char *name)
{
    const struct flag_val *v = args_get(a, name);
    return v && v->set;
}

static const char *default_of(const struct args *a, const char *name)
{
    for (size_t i = 0; i < a->ntables; i++)
        for (const struct flag_def *d = a->tables[i]; d && d->name; d++)
            if (strcmp(d->name, name) == 0)
                return d->defval;
    return NULL;
}

const char *args_str(const struct args *a, const char *name)
{
    const struct flag_val *v = args_get(a, name);
    if (v && v->set)
        return v->str;
    const char *d = default_of(a, name);
    return d ? d : "";
}

int args_bool(const struct args *a, const char *name)
{
    int b = 0;
    return parse_bool(args_str(a, name), &b) == 0 && b;
}

long long args_int(const struct args *a, const char *name)
{
    long long n = 0;
    return parse_int(args_str(a, name), &n) == 0 ? n : 0;
}

long long args_duration_ms(const struct args *a, const char *name)
{
    return args_parse_duration_ms(args_str(a, name));
}

int args_check_required(const struct args *a, char **errmsg)
{
    /* cobra lists the missing flags sorted by name. */
    const char *missing[32];
    size_t n = 0;
    for (size_t i = 0; i < a->ntables; i++)
        for (const struct flag_def *d = a->tables[i]; d && d->name; d++)
            if (d->required && !args_is_set(a, d->name) && n < 32)
                missing[n++] = d->name;
    if (!n)
        return 0;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(missing[j - 1], missing[j]) > 0; j--) {
            const char *t = missing[j];
            missing[j] = missing[j - 1];
            missing[j - 1] = t;
        }
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "required flag(s) ");
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s\"%s\"", i ? ", " : "", missing[i]);
    buf_printf(&b, " not set");
    *errmsg = xstrdup(buf_str(&b));
    buf_free(&b);
    return -1;
}
