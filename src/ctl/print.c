/*
 * ctl/print — tables, YAML and JSON output (see print.h).
 */
#include "ctl/print.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/codec.h"
#include "core/util.h"
#include "ctl/table.h"

/* --- time --- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

struct ctl_time ctl_time_zero(void)
{
    struct ctl_time t = {days_from_civil(1, 1, 1) * 86400, 0};
    return t;
}

struct ctl_time ctl_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct ctl_time t = {(int64_t)ts.tv_sec, (int32_t)ts.tv_nsec};
    return t;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int ctl_time_parse(const char *s, struct ctl_time *t)
{
    int y, mo, d, h, mi, se;
    if (!s || strlen(s) < 20)
        return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    const char *p = s + 19;
    int32_t ns = 0;
    if (*p == '.') {
        int n = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (n < 9) {
                ns = ns * 10 + (*p - '0');
                n++;
            }
            p++;
        }
        if (n == 0)
            return -1;
        while (n++ < 9)
            ns *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om))
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    t->sec = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
    t->nsec = ns;
    return 0;
}

void ctl_format_age(const struct ctl_time *then, const struct ctl_time *now, char *out,
                    size_t outlen)
{
    /* Go's time.Sub saturates at ±(2^63-1) ns; compute in long double to
     * find out whether it would, then work in whole nanoseconds. */
    long double dns = ((long double)now->sec - (long double)then->sec) * 1e9L +
                      ((long double)now->nsec - (long double)then->nsec);
    const long double maxns = 9223372036854775807.0L;
    if (dns > maxns)
        dns = maxns;
    if (dns < -maxns)
        dns = -maxns;
    double secs = (double)(dns / 1e9L);
    long long seconds = (long long)secs; /* int(d.Seconds()) truncates */
    if (seconds < -1) {
        snprintf(out, outlen, "never");
    } else if (seconds < 0) {
        snprintf(out, outlen, "0s");
    } else if (seconds < 60) {
        snprintf(out, outlen, "%llds", seconds);
    } else if ((long long)(secs / 60) < 60) {
        snprintf(out, outlen, "%lldm", (long long)(secs / 60));
    } else {
        long long hours = (long long)(secs / 3600);
        if (hours < 24)
            snprintf(out, outlen, "%lldh", hours);
        else if (hours < 24 * 365)
            snprintf(out, outlen, "%lldd", hours / 24);
        else
            snprintf(out, outlen, "%lldy", (long long)(secs / 3600 / 24 / 365));
    }
}

static void age_of(const json_t *item, const struct ctl_time *now, char *out, size_t n)
{
    struct ctl_time t;
    if (ctl_time_parse(json_string_value(json_object_get(item, "modificationTime")), &t) < 0)
        t = ctl_time_zero();
    ctl_format_age(&t, now, out, n);
}

int ctl_format_parse(const char *s)
{
    if (!s || strcmp(s, "table") == 0)
        return CTL_FMT_TABLE;
    if (strcmp(s, "yaml") == 0)
        return CTL_FMT_YAML;
    if (strcmp(s, "json") == 0)
        return CTL_FMT_JSON;
    return -1;
}

/* --- JSON in Go's style --- */

static void json_str(const char *s, size_t len, FILE *out)
{
    static const char hex[] = "0123456789abcdef";
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '<':
        case '>':
        case '&':
            fprintf(out, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            break;
        default:
            if (c < 0x20) {
                fprintf(out, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            } else if (c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
                       ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
                fprintf(out, "\\u202%c", (unsigned char)s[i + 2] == 0xA8 ? '8' : '9');
                i += 2;
            } else {
                fputc(c, out);
            }
        }
    }
    fputc('"', out);
}

static void indent(int depth, FILE *out)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

static void json_value(const json_t *v, int depth, FILE *out)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (json_object_size(v) == 0) {
            fputs("{}", out);
            return;
        }
        fputs("{\n", out);
        size_t i = 0, n = json_object_size(v);
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            indent(depth + 1, out);
            json_str(k, strlen(k), out);
            fputs(": ", out);
            json_value(x, depth + 1, out);
            fputs(++i < n ? ",\n" : "\n", out);
        }
        indent(depth, out);
        fputc('}', out);
        return;
    }
    case JSON_ARRAY: {
        if (json_array_size(v) == 0) {
            fputs("[]", out);
            return;
        }
        fputs("[\n", out);
        size_t i, n = json_array_size(v);
        json_t *x;
        json_array_foreach(v, i, x)
        {
            indent(depth + 1, out);
            json_value(x, depth + 1, out);
            fputs(i + 1 < n ? ",\n" : "\n", out);
        }
        indent(depth, out);
        fputc(']', out);
        return;
    }
    case JSON_STRING:
        json_str(json_string_value(v), json_string_length(v), out);
        return;
    case JSON_INTEGER:
        fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    case JSON_REAL: {
        double d = json_real_value(v);
        char num[64] = "0";
        if (d == floor(d) && fabs(d) < 1e21) {
            snprintf(num, sizeof(num), "%.0f", d);
        } else {
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(num, sizeof(num), "%.*g", prec, d);
                if (strtod(num, NULL) == d)
                    break;
            }
        }
        fputs(num, out);
        return;
    }
    case JSON_TRUE:
        fputs("true", out);
        return;
    case JSON_FALSE:
        fputs("false", out);
        return;
    case JSON_NULL:
        fputs("null", out);
        return;
    }
}

void ctl_print_json(const json_t *v, FILE *out)
{
    json_value(v, 0, out);
    fputc('\n', out);
}

/* --- resource shapes --- */

static const char *const meta_keys[] = {
    "type", "mesh", "name", "creationTime", "modificationTime", "labels", "kri"};
#define NMETA (sizeof(meta_keys) / sizeof(meta_keys[0]))

static int is_meta_key(const char *k)
{
    for (size_t i = 0; i < NMETA; i++)
        if (strcmp(k, meta_keys[i]) == 0)
            return 1;
    return 0;
}

json_t *ctl_order_meta_first(const json_t *item)
{
    json_t *o = json_object();
    if (!json_is_object(item))
        return o;
    for (size_t i = 0; i < NMETA; i++) {
        json_t *v = json_object_get(item, meta_keys[i]);
        if (v)
            json_object_set(o, meta_keys[i], v);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)item, k, v) if (!is_meta_key(k)) json_object_set(o, k, v);
    return o;
}

static void yaml_out(const json_t *v, FILE *out)
{
    char *y = codec_yaml_dump(v, 1);
    if (y) {
        fputs(y, out);
        free(y);
    }
}

void ctl_print_resource_yaml(const struct res_type *t, const json_t *item, FILE *out)
{
    /* New-style policies nest their spec under `spec` and print as one
     * sorted object; the others print meta, then the flattened spec. */
    if (!json_is_object(item) || (t && t->is_target_ref)) {
        yaml_out(item, out);
        return;
    }
    json_t *meta = json_object(), *spec = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)item, k, v) json_object_set(is_meta_key(k) ? meta : spec, k, v);
    yaml_out(meta, out);
    if (json_object_size(spec))
        yaml_out(spec, out);
    json_decref(meta);
    json_decref(spec);
}

char *ctl_next_offset(const json_t *list)
{
    const char *next = json_string_value(json_object_get(list, "next"));
    if (!next)
        return NULL;
    const char *q = strchr(next, '?');
    while (q && *q) {
        q++;
        if (strncmp(q, "offset=", 7) == 0) {
            const char *v = q + 7;
            size_t n = strcspn(v, "&#");
            /* Percent-decode; offsets are plain numbers or opaque tokens. */
            char *s = xmalloc(n + 1);
            size_t j = 0;
            for (size_t i = 0; i < n; i++) {
                if (v[i] == '%' && i + 2 < n && isxdigit((unsigned char)v[i + 1]) &&
                    isxdigit((unsigned char)v[i + 2])) {
                    char hx[3] = {v[i + 1], v[i + 2], 0};
                    s[j++] = (char)strtol(hx, NULL, 16);
                    i += 2;
                } else {
                    s[j++] = v[i] == '+' ? ' ' : v[i];
                }
            }
            s[j] = '\0';
            if (!*s) {
                free(s);
                return NULL;
            }
            return s;
        }
        q = strchr(q, '&');
    }
    return NULL;
}

static const char *str_of(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* --- tags (Kuma's MultiValueTagSet.String()) --- */

struct tagset {
    json_t *m; /* key -> object used as a set of values */
};

static void tagset_add_map(struct tagset *ts, const json_t *tags)
{
    const char *k;
    json_t *v;
    if (!json_is_object(tags))
        return;
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!json_is_string(v))
            continue;
        json_t *set = json_object_get(ts->m, k);
        if (!set) {
            set = json_object();
            json_object_set_new(ts->m, k, set);
        }
        json_object_set_new(set, json_string_value(v), json_true());
    }
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char **sorted_keys(const json_t *o, size_t *n)
{
    *n = json_object_size(o);
    char **keys = xcalloc(*n ? *n : 1, sizeof(char *));
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) keys[i++] = (char *)k;
    qsort(keys, *n, sizeof(char *), cmp_cstr);
    return keys;
}

static char *tagset_string(const struct tagset *ts)
{
    struct buf b;
    size_t nk;
    buf_init(&b, 0);
    char **keys = sorted_keys(ts->m, &nk);
    for (size_t i = 0; i < nk; i++) {
        size_t nv;
        char **vals = sorted_keys(json_object_get(ts->m, keys[i]), &nv);
        buf_printf(&b, "%s%s=", i ? " " : "", keys[i]);
        for (size_t j = 0; j < nv; j++)
            buf_printf(&b, "%s%s", j ? "," : "", vals[j]);
        free(vals);
    }
    free(keys);
    char *s = xstrdup(buf_str(&b));
    buf_free(&b);
    return s;
}

static char *dataplane_tags(const json_t *dp)
{
    struct tagset ts = {json_object()};
    json_t *net = json_object_get(dp, "networking");
    size_t i;
    json_t *in;
    json_array_foreach(json_object_get(net, "inbound"), i, in)
        tagset_add_map(&ts, json_object_get(in, "tags"));
    tagset_add_map(&ts, json_object_get(json_object_get(net, "gateway"), "tags"));
    char *s = tagset_string(&ts);
    json_decref(ts.m);
    return s;
}

/* --- tables --- */

enum layout {
    LAYOUT_MESH,
    LAYOUT_DATAPLANE,
    LAYOUT_EXTERNAL_SERVICE,
    LAYOUT_MESH_SCOPED,
    LAYOUT_GLOBAL
};

static enum layout layout_of(const struct res_type *t)
{
    if (strcmp(t->name, "Mesh") == 0)
        return LAYOUT_MESH;
    if (strcmp(t->name, "Dataplane") == 0)
        return LAYOUT_DATAPLANE;
    if (strcmp(t->name, "ExternalService") == 0)
        return LAYOUT_EXTERNAL_SERVICE;
    return t->scope == RES_SCOPE_MESH ? LAYOUT_MESH_SCOPED : LAYOUT_GLOBAL;
}

static void table_for(enum layout l, struct table *tb)
{
    static const char *const mesh_h[] = {"NAME", "mTLS", "LOCALITY", "ZONEEGRESS", "AGE"};
    static const char *const dp_h[] = {"MESH", "NAME", "TAGS", "ADDRESS", "AGE"};
    static const char *const scoped_h[] = {"MESH", "NAME", "AGE"};
    static const char *const global_h[] = {"NAME", "AGE"};
    switch (l) {
    case LAYOUT_MESH:
        table_init(tb, 5);
        table_add(tb, mesh_h);
        break;
    case LAYOUT_DATAPLANE:
    case LAYOUT_EXTERNAL_SERVICE:
        table_init(tb, 5);
        table_add(tb, dp_h);
        break;
    case LAYOUT_MESH_SCOPED:
        table_init(tb, 3);
        table_add(tb, scoped_h);
        break;
    case LAYOUT_GLOBAL:
        table_init(tb, 2);
        table_add(tb, global_h);
        break;
    }
}

static const char *on_off(const json_t *v)
{
    return json_is_true(v) ? "on" : "off";
}

static void add_row(enum layout l, struct table *tb, const json_t *item, const struct ctl_time *now)
{
    char age[32];
    age_of(item, now, age, sizeof(age));
    switch (l) {
    case LAYOUT_MESH: {
        json_t *mtls = json_object_get(item, "mtls");
        const char *enabled = str_of(mtls, "enabledBackend");
        char *mt = xstrdup("off");
        if (*enabled) {
            const char *type = "";
            size_t i;
            json_t *be;
            json_array_foreach(json_object_get(mtls, "backends"), i, be)
            {
                if (strcmp(str_of(be, "name"), enabled) == 0) {
                    type = str_of(be, "type");
                    break;
                }
            }
            free(mt);
            mt = xasprintf("%s/%s", type, enabled);
        }
        json_t *routing = json_object_get(item, "routing");
        const char *row[] = {str_of(item, "name"), mt,
                             on_off(json_object_get(routing, "localityAwareLoadBalancing")),
                             on_off(json_object_get(routing, "zoneEgress")), age};
        table_add(tb, row);
        free(mt);
        break;
    }
    case LAYOUT_DATAPLANE: {
        json_t *net = json_object_get(item, "networking");
        const char *addr = str_of(net, "advertisedAddress");
        if (!*addr)
            addr = str_of(net, "address");
        char *tags = dataplane_tags(item);
        const char *row[] = {str_of(item, "mesh"), str_of(item, "name"), tags, addr, age};
        table_add(tb, row);
        free(tags);
        break;
    }
    case LAYOUT_EXTERNAL_SERVICE: {
        struct tagset ts = {json_object()};
        tagset_add_map(&ts, json_object_get(item, "tags"));
        char *tags = tagset_string(&ts);
        json_decref(ts.m);
        const char *row[] = {str_of(item, "mesh"), str_of(item, "name"), tags,
                             str_of(json_object_get(item, "networking"), "address"), age};
        table_add(tb, row);
        free(tags);
        break;
    }
    case LAYOUT_MESH_SCOPED: {
        const char *row[] = {str_of(item, "mesh"), str_of(item, "name"), age};
        table_add(tb, row);
        break;
    }
    case LAYOUT_GLOBAL: {
        const char *row[] = {str_of(item, "name"), age};
        table_add(tb, row);
        break;
    }
    }
}

static int list_items(const json_t *list, json_t **items, char **errmsg)
{
    *items = json_object_get(list, "items");
    if (!json_is_object(list) || (*items && !json_is_array(*items) && !json_is_null(*items))) {
        *errmsg = xstrdup("invalid response from the control plane: expected a list");
        return -1;
    }
    return 0;
}

/* {total, items, next:null} as kumactl rebuilds a list before printing. */
static json_t *rebuilt_list(const json_t *list, json_t *items)
{
    json_t *o = json_object(), *arr = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) json_array_append_new(arr, ctl_order_meta_first(it));
    json_t *total = json_object_get(list, "total");
    json_object_set_new(o, "total",
                        json_is_integer(total) ? json_incref(total)
                                               : json_integer((json_int_t)json_array_size(items)));
    json_object_set_new(o, "items", arr);
    json_object_set_new(o, "next", json_null());
    return o;
}

int ctl_print_list(const struct res_type *t, const json_t *list, enum ctl_format f,
                   const struct ctl_time *now, FILE *out, char **errmsg)
{
    json_t *items;
    if (list_items(list, &items, errmsg) < 0)
        return -1;
    if (f == CTL_FMT_TABLE) {
        struct table tb;
        enum layout l = layout_of(t);
        table_for(l, &tb);
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) if (json_is_object(it)) add_row(l, &tb, it, now);
        table_print(&tb, out);
        table_free(&tb);
        char *off = ctl_next_offset(list);
        if (off) {
            fprintf(out, "\nRerun command with --offset=%s argument to retrieve more resources\n",
                    off);
            free(off);
        }
        return 0;
    }
    json_t *o = rebuilt_list(list, items);
    if (f == CTL_FMT_JSON)
        ctl_print_json(o, out);
    else
        yaml_out(o, out);
    json_decref(o);
    return 0;
}

int ctl_print_one(const struct res_type *t, const json_t *item, enum ctl_format f,
                  const struct ctl_time *now, FILE *out, char **errmsg)
{
    if (!json_is_object(item)) {
        *errmsg = xstrdup("invalid response from the control plane: expected an object");
        return -1;
    }
    if (f == CTL_FMT_TABLE) {
        struct table tb;
        enum layout l = layout_of(t);
        table_for(l, &tb);
        add_row(l, &tb, item, now);
        table_print(&tb, out);
        table_free(&tb);
        return 0;
    }
    json_t *o = ctl_order_meta_first(item);
    if (f == CTL_FMT_JSON)
        ctl_print_json(o, out);
    else
        ctl_print_resource_yaml(t, o, out);
    json_decref(o);
    return 0;
}

static long long total_of(const json_t *o)
{
    json_t *v = json_object_get(o, "total");
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    return 0;
}

int ctl_print_mesh_insights(const json_t *list, enum ctl_format f, FILE *out, char **errmsg)
{
    static const char *const headers[] = {"MESH",
                                          "DATAPLANES",
                                          "TRAFFIC PERMISSIONS",
                                          "TRAFFIC ROUTES",
                                          "CIRCUIT BREAKERS",
                                          "HEALTH CHECKS",
                                          "FAULT INJECTIONS",
                                          "EXTERNAL SERVICES",
                                          "TRAFFIC TRACES",
                                          "TRAFFIC LOGS",
                                          "PROXY TEMPLATES",
                                          "RATE LIMITS"};
    static const char *const policy_types[] = {
        "TrafficPermission", "TrafficRoute", "CircuitBreaker", "HealthCheck",   "FaultInjection",
        "ExternalService",   "TrafficTrace", "TrafficLog",     "ProxyTemplate", "RateLimit"};
    json_t *items;
    if (list_items(list, &items, errmsg) < 0)
        return -1;
    if (f != CTL_FMT_TABLE) {
        json_t *o = rebuilt_list(list, items);
        if (f == CTL_FMT_JSON)
            ctl_print_json(o, out);
        else
            yaml_out(o, out);
        json_decref(o);
        return 0;
    }
    struct table tb;
    table_init(&tb, 12);
    table_add(&tb, headers);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (!json_is_object(it))
            continue;
        char cells[12][32];
        const char *row[12];
        json_t *dps = json_object_get(it, "dataplanes");
        json_t *online = json_object_get(dps, "online");
        snprintf(cells[1], sizeof(cells[1]), "%lld/%lld",
                 json_is_integer(online) ? (long long)json_integer_value(online) : 0LL,
                 total_of(dps));
        json_t *pol = json_object_get(it, "policies");
        for (size_t p = 0; p < 10; p++)
            snprintf(cells[p + 2], sizeof(cells[p + 2]), "%lld",
                     total_of(json_object_get(pol, policy_types[p])));
        row[0] = str_of(it, "name");
        for (size_t c = 1; c < 12; c++)
            row[c] = cells[c];
        table_add(&tb, row);
    }
    table_print(&tb, out);
    table_free(&tb);
    return 0;
}
