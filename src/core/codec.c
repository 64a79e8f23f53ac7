/*
 * codec — YAML/JSON text to jansson values and back, on libyaml's event API.
 *
 * The event API (not libyaml's document loader) lets us enforce limits while
 * parsing: nesting depth, node count (which also bounds alias expansion, the
 * "billion laughs" attack), and integers outside int64. Plain scalars are
 * resolved the way Go's yaml.v2 does (YAML 1.1: yes/no/on/off are booleans),
 * because Kuma reads YAML through it; quoted scalars are always strings.
 */
#include "core/codec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct anchor {
    char *name;
    json_t *value;
    size_t nodes;
};

struct parse_ctx {
    yaml_parser_t parser;
    size_t nodes;
    struct anchor *anchors;
    size_t nanchors;
    struct err *e;
};

static const char *const true_words[] = {"y",  "Y",  "yes",  "Yes",  "YES",  "on",
                                         "On", "ON", "true", "True", "TRUE", NULL};
static const char *const false_words[] = {"n",   "N",   "no",    "No",    "NO",    "off",
                                          "Off", "OFF", "false", "False", "FALSE", NULL};

static int in_words(const char *s, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return 1;
    return 0;
}

/* Copies s without '_' (YAML 1.1 digit separators) into out; 0 if too long. */
static int strip_underscores(const char *s, char *out, size_t outlen)
{
    size_t j = 0;
    for (; *s; s++) {
        if (*s == '_')
            continue;
        if (j + 1 >= outlen)
            return 0;
        out[j++] = *s;
    }
    out[j] = '\0';
    return 1;
}

static int looks_int(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (!strchr("0123456789abcdefABCDEF_", *p))
                return 0;
        return 1;
    }
    for (; *p; p++)
        if (!strchr("0123456789_", *p))
            return 0;
    return 1;
}

static int looks_float(const char *s)
{
    const char *p = s;
    int digits = 0, dot = 0;
    if (*p == '+' || *p == '-')
        p++;
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.' && !dot)
            dot = 1;
        else if (*p != '_')
            return 0;
    }
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (*p < '0' || *p > '9')
                return 0;
    }
    return 1;
}

/* Resolves a plain scalar. Returns NULL for "keep as string". */
static json_t *resolve_plain(const char *s)
{
    char tmp[128];

    if (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return json_null();
    if (in_words(s, true_words))
        return json_true();
    if (in_words(s, false_words))
        return json_false();
    if (looks_int(s) && strip_underscores(s, tmp, sizeof(tmp))) {
        errno = 0;
        char *end;
        long long v = strtoll(tmp, &end, 0);
        if (!*end && errno == 0)
            return json_integer(v);
        /* Too large for int64: fall through and try as a real. */
    }
    if (looks_float(s) && strip_underscores(s, tmp, sizeof(tmp))) {
        errno = 0;
        char *end;
        double d = strtod(tmp, &end);
        if (!*end && errno == 0 && isfinite(d))
            return json_real(d);
    }
    return NULL;
}

/* yaml.v2 resolves plain scalars shaped like dates ("2006-1-2", optionally
 * followed by a time) as timestamps, so its encoder quotes such strings. */
static int looks_timestamp(const char *s)
{
    int n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    if (n != 4 || s[n] != '-')
        return 0;
    for (int part = 0; part < 2; part++) {
        s += n + 1;
        n = 0;
        while (s[n] >= '0' && s[n] <= '9')
            n++;
        if (n < 1 || n > 2)
            return 0;
        if (part == 0 && s[n] != '-')
            return 0;
    }
    return s[n] == '\0' || s[n] == 'T' || s[n] == 't' || s[n] == ' ';
}

/* Whether a string would read back as something else if written unquoted. */
int codec_scalar_is_ambiguous(const char *s)
{
    if (looks_timestamp(s))
        return 1;
    json_t *v = resolve_plain(s);
    if (v) {
        json_decref(v);
        return 1;
    }
    return 0;
}

static int perr(struct parse_ctx *c, const char *what, size_t line, size_t col)
{
    return err_set(c->e, "line %zu, column %zu: %s", line + 1, col + 1, what);
}

static int parse_node(struct parse_ctx *c, yaml_event_t *ev, int depth, json_t **out);

static int next_event(struct parse_ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        const char *prob = c->parser.problem ? c->parser.problem : "invalid document";
        yaml_mark_t m = c->parser.problem_mark;
        if (c->parser.context)
            return err_set(c->e, "line %zu, column %zu: %s %s", m.line + 1, m.column + 1,
                           c->parser.context, prob);
        return err_set(c->e, "line %zu, column %zu: %s", m.line + 1, m.column + 1, prob);
    }
    return 0;
}

static size_t count_nodes(const json_t *v)
{
    size_t n = 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) n += count_nodes(x);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) n += count_nodes(x);
    }
    return n;
}

static void remember_anchor(struct parse_ctx *c, const yaml_char_t *anchor, json_t *v)
{
    if (!anchor)
        return;
    c->anchors = xrealloc(c->anchors, (c->nanchors + 1) * sizeof(*c->anchors));
    c->anchors[c->nanchors].name = xstrdup((const char *)anchor);
    c->anchors[c->nanchors].value = json_incref(v);
    c->anchors[c->nanchors].nodes = count_nodes(v);
    c->nanchors++;
}

static int parse_mapping(struct parse_ctx *c, yaml_event_t *start, int depth, json_t **out)
{
    json_t *obj = json_object();
    yaml_char_t *anchor = start->data.mapping_start.anchor;
    char *anchor_copy = anchor ? xstrdup((const char *)anchor) : NULL;
    int rc = 0;

    for (;;) {
        yaml_event_t kev;
        if ((rc = next_event(c, &kev)) < 0)
            break;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            rc =
                perr(c, "mapping keys must be scalars", kev.start_mark.line, kev.start_mark.column);
            yaml_event_delete(&kev);
            break;
        }
        char *key = xstrndup((const char *)kev.data.scalar.value, kev.data.scalar.length);
        size_t kline = kev.start_mark.line, kcol = kev.start_mark.column;
        size_t klen = kev.data.scalar.length;
        yaml_event_delete(&kev);
        if (strlen(key) != klen) {
            free(key);
            rc = perr(c, "mapping key contains a NUL character", kline, kcol);
            break;
        }
        if (strcmp(key, "<<") == 0) {
            /* Merge keys: merge the mapping (or list of mappings) into this one. */
            yaml_event_t vev;
            json_t *val = NULL;
            free(key);
            if ((rc = next_event(c, &vev)) < 0)
                break;
            rc = parse_node(c, &vev, depth + 1, &val);
            if (rc < 0)
                break;
            json_t *items = json_is_array(val) ? json_incref(val) : json_pack("[O]", val);
            size_t i;
            json_t *m;
            json_array_foreach(items, i, m)
            {
                if (!json_is_object(m)) {
                    rc = perr(c, "merge value must be a mapping", kline, kcol);
                    break;
                }
                json_object_update_missing(obj, m);
            }
            json_decref(items);
            json_decref(val);
            if (rc < 0)
                break;
            continue;
        }
        if (json_object_get(obj, key)) {
            char *msg = xasprintf("mapping key \"%s\" already defined", key);
            rc = perr(c, msg, kline, kcol);
            free(msg);
            free(key);
            break;
        }
        yaml_event_t vev;
        json_t *val = NULL;
        if ((rc = next_event(c, &vev)) < 0) {
            free(key);
            break;
        }
        rc = parse_node(c, &vev, depth + 1, &val);
        if (rc < 0) {
            free(key);
            break;
        }
        json_object_set_new(obj, key, val);
        free(key);
    }
    if (rc < 0) {
        json_decref(obj);
        free(anchor_copy);
        return rc;
    }
    remember_anchor(c, (const yaml_char_t *)anchor_copy, obj);
    free(anchor_copy);
    *out = obj;
    return 0;
}

static int parse_sequence(struct parse_ctx *c, yaml_event_t *start, int depth, json_t **out)
{
    json_t *arr = json_array();
    yaml_char_t *anchor = start->data.sequence_start.anchor;
    char *anchor_copy = anchor ? xstrdup((const char *)anchor) : NULL;
    int rc = 0;

    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(c, &ev)) < 0)
            break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        json_t *val = NULL;
        if ((rc = parse_node(c, &ev, depth + 1, &val)) < 0)
            break;
        json_array_append_new(arr, val);
    }
    if (rc < 0) {
        json_decref(arr);
        free(anchor_copy);
        return rc;
    }
    remember_anchor(c, (const yaml_char_t *)anchor_copy, arr);
    free(anchor_copy);
    *out = arr;
    return 0;
}

/* Takes ownership of ev (deletes it). */
static int parse_node(struct parse_ctx *c, yaml_event_t *ev, int depth, json_t **out)
{
    int rc = 0;
    if (depth > CODEC_MAX_DEPTH) {
        rc = perr(c, "document is nested too deeply", ev->start_mark.line, ev->start_mark.column);
        yaml_event_delete(ev);
        return rc;
    }
    if (++c->nodes > CODEC_MAX_NODES) {
        rc = perr(c, "document has too many nodes", ev->start_mark.line, ev->start_mark.column);
        yaml_event_delete(ev);
        return rc;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *s = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        json_t *v = NULL;
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag)
            v = resolve_plain(s);
        else if (ev->data.scalar.tag &&
                 strcmp((const char *)ev->data.scalar.tag, "tag:yaml.org,2002:null") == 0)
            v = json_null();
        if (!v)
            v = json_stringn(s, len);
        if (!v) {
            rc = perr(c, "invalid UTF-8 in string", ev->start_mark.line, ev->start_mark.column);
            break;
        }
        remember_anchor(c, ev->data.scalar.anchor, v);
        *out = v;
        break;
    }
    case YAML_MAPPING_START_EVENT:
        rc = parse_mapping(c, ev, depth, out);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = parse_sequence(c, ev, depth, out);
        break;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        struct anchor *a = NULL;
        for (size_t i = c->nanchors; i > 0; i--)
            if (strcmp(c->anchors[i - 1].name, name) == 0) {
                a = &c->anchors[i - 1];
                break;
            }
        if (!a) {
            rc = perr(c, "unknown anchor", ev->start_mark.line, ev->start_mark.column);
            break;
        }
        c->nodes += a->nodes;
        if (c->nodes > CODEC_MAX_NODES) {
            rc = perr(c, "document has too many nodes", ev->start_mark.line, ev->start_mark.column);
            break;
        }
        *out = json_deep_copy(a->value);
        break;
    }
    default:
        rc = perr(c, "unexpected YAML event", ev->start_mark.line, ev->start_mark.column);
        break;
    }
    yaml_event_delete(ev);
    return rc;
}

static void ctx_free(struct parse_ctx *c)
{
    for (size_t i = 0; i < c->nanchors; i++) {
        free(c->anchors[i].name);
        json_decref(c->anchors[i].value);
    }
    free(c->anchors);
    c->anchors = NULL;
    c->nanchors = 0;
    yaml_parser_delete(&c->parser);
}

int codec_parse(const char *buf, size_t len, json_t **docs, struct err *e)
{
    struct parse_ctx c = {.e = e};
    json_t *arr = json_array();
    int rc = 0, done = 0;

    if (!yaml_parser_initialize(&c.parser)) {
        json_decref(arr);
        return err_set(e, "could not initialise the YAML parser");
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)buf, len);
    while (!done && rc == 0) {
        yaml_event_t ev;
        if ((rc = next_event(&c, &ev)) < 0)
            break;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            yaml_event_delete(&ev);
            break;
        case YAML_DOCUMENT_START_EVENT: {
            yaml_event_delete(&ev);
            yaml_event_t root;
            if ((rc = next_event(&c, &root)) < 0)
                break;
            json_t *v = NULL;
            if ((rc = parse_node(&c, &root, 0, &v)) < 0)
                break;
            yaml_event_t end;
            if ((rc = next_event(&c, &end)) < 0) {
                json_decref(v);
                break;
            }
            yaml_event_delete(&end);
            if (json_is_null(v))
                json_decref(v); /* an empty document */
            else
                json_array_append_new(arr, v);
            break;
        }
        default:
            yaml_event_delete(&ev);
            break;
        }
    }
    ctx_free(&c);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *docs = arr;
    return 0;
}

int codec_parse_one(const char *buf, size_t len, json_t **doc, struct err *e)
{
    json_t *docs;
    if (codec_parse(buf, len, &docs, e) < 0)
        return -1;
    if (json_array_size(docs) != 1) {
        size_t n = json_array_size(docs);
        json_decref(docs);
        return n == 0 ? err_set(e, "empty document")
                      : err_set(e, "expected one document, found %zu", n);
    }
    *doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return 0;
}

/* --- emitting --- */

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    return yaml_emitter_emit(em, ev) ? 0 : -1;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t len, int quote)
{
    yaml_event_t ev;
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, !quote, 1,
                                 quote ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
    return emit(em, &ev);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int emit_value(yaml_emitter_t *em, const json_t *v, int sort)
{
    yaml_event_t ev;
    char num[64];

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (json_object_size(v) == 0)
            yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_MAPPING_STYLE);
        if (emit(em, &ev) < 0)
            return -1;
        size_t n = json_object_size(v), i = 0;
        const char **keys = xcalloc(n, sizeof(*keys));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        if (sort)
            qsort(keys, n, sizeof(*keys), cmp_str);
        for (i = 0; i < n; i++) {
            if (emit_scalar(em, keys[i], strlen(keys[i]), codec_scalar_is_ambiguous(keys[i])) < 0 ||
                emit_value(em, json_object_get(v, keys[i]), sort) < 0) {
                free(keys);
                return -1;
            }
        }
        free(keys);
        yaml_mapping_end_event_initialize(&ev);
        return emit(em, &ev);
    }
    case JSON_ARRAY: {
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                             json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE
                                                                : YAML_FLOW_SEQUENCE_STYLE);
        if (emit(em, &ev) < 0)
            return -1;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (emit_value(em, x, sort) < 0) return -1;
        yaml_sequence_end_event_initialize(&ev);
        return emit(em, &ev);
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        return emit_scalar(em, s, len, len == 0 || codec_scalar_is_ambiguous(s));
    }
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, num, strlen(num), 0);
    case JSON_REAL: {
        double d = json_real_value(v);
        /* Integral reals keep a ".0" so they read back as reals; others use
         * the shortest form that reads back the same. */
        if (d == floor(d) && fabs(d) < 1e15) {
            snprintf(num, sizeof(num), "%.1f", d);
        } else {
            snprintf(num, sizeof(num), "%.17g", d);
            for (int prec = 1; prec <= 17; prec++) {
                char t[64];
                snprintf(t, sizeof(t), "%.*g", prec, d);
                if (strtod(t, NULL) == d) {
                    snprintf(num, sizeof(num), "%s", t);
                    break;
                }
            }
            if (!strpbrk(num, ".eEn"))
                strcat(num, ".0");
        }
        return emit_scalar(em, num, strlen(num), 0);
    }
    case JSON_TRUE:
        return emit_scalar(em, "true", 4, 0);
    case JSON_FALSE:
        return emit_scalar(em, "false", 5, 0);
    case JSON_NULL:
        return emit_scalar(em, "null", 4, 0);
    }
    return -1;
}

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    struct buf *b = data;
    return buf_append(b, buffer, size) == 0;
}

char *codec_yaml_dump(const json_t *v, int sort_keys)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    struct buf b;
    int rc = 0;

    buf_init(&b, 0);
    if (!yaml_emitter_initialize(&em))
        return NULL;
    yaml_emitter_set_output(&em, write_handler, &b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    rc |= emit(&em, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    rc |= emit(&em, &ev);
    rc |= emit_value(&em, v, sort_keys);
    yaml_document_end_event_initialize(&ev, 1);
    rc |= emit(&em, &ev);
    yaml_stream_end_event_initialize(&ev);
    rc |= emit(&em, &ev);
    yaml_emitter_delete(&em);
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    buf_str(&b);
    return b.data;
}

char *codec_json_dump(const json_t *v, int pretty)
{
    return json_dumps(v, JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
}
