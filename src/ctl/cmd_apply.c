/*
 * ctl/cmd_apply — `kumactl apply -f FILE|DIR|URL|- [-v k=v] [--dry-run]`.
 *
 * As Kuma's kumactl: the input is split into "---" documents; each is
 * rendered with the -v variables (only when some are given), parsed, and its
 * meta validated; every problem is reported on stderr as
 * "resource[i]: ..." and the command then fails with "failed to validate
 * some resources" without sending anything. Otherwise each resource is
 * fetched to decide create or update, PUT in universal JSON, and reported as
 * `resource type="Mesh" mesh="" name="x" Created|Updated`. --dry-run prints
 * the resources as YAML instead.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/codec.h"
#include "core/resource.h"
#include "core/util.h"
#include "core/validate.h"
#include "core/verr.h"
#include "ctl/ctl.h"
#include "ctl/mustache.h"

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static char *trimmed(const char *s, size_t n)
{
    while (n && is_space(*s)) {
        s++;
        n--;
    }
    while (n && is_space(s[n - 1]))
        n--;
    return xstrndup(s, n);
}

size_t ctl_split_yaml(const char *text, char ***docs)
{
    /* Kuma: TrimSpace, then split on the regexp (?:^|\s*\n)---\s* and drop
     * empty pieces. A separator is "---" at the start or right after a
     * newline; the whitespace around it goes with it. */
    size_t n = 0, len = strlen(text);
    const char *s = text, *end = text + len;
    while (s < end && is_space(*s))
        s++;
    while (end > s && is_space(end[-1]))
        end--;
    *docs = NULL;
    const char *start = s, *p = s;
    while (p <= end) {
        int sep = 0;
        const char *sep_end = p;
        if (p + 3 <= end && memcmp(p, "---", 3) == 0 && (p == s || p[-1] == '\n')) {
            sep = 1;
            sep_end = p + 3;
            while (sep_end < end && is_space(*sep_end))
                sep_end++;
        }
        if (sep || p == end) {
            char *d = trimmed(start, (size_t)(p - start));
            if (*d) {
                *docs = xrealloc(*docs, (n + 1) * sizeof(char *));
                (*docs)[n++] = d;
            } else {
                free(d);
            }
            if (p == end)
                break;
            start = p = sep_end;
            continue;
        }
        p++;
    }
    return n;
}

static int read_stream(struct ctl *c, FILE *f, char **text, size_t *len)
{
    struct buf b;
    char chunk[65536];
    size_t n;
    buf_init(&b, CTL_APPLY_MAX_BYTES);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf_append(&b, chunk, n) < 0) {
            buf_free(&b);
            return ctl_fail(c, "error while reading provided file: input larger than %u bytes",
                            CTL_APPLY_MAX_BYTES);
        }
    }
    if (ferror(f)) {
        buf_free(&b);
        return ctl_fail(c, "error while reading provided file: %s", strerror(errno));
    }
    buf_str(&b);
    *text = b.data;
    *len = b.len;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int supported_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".yaml") == 0 || strcasecmp(dot, ".yml") == 0 ||
                   strcasecmp(dot, ".json") == 0);
}

static int read_dir(struct ctl *c, const char *dir, char **text, size_t *len)
{
    DIR *d = opendir(dir);
    if (!d)
        return ctl_fail(c, "error reading directory: open %s: %s", dir, strerror(errno));
    char **files = NULL;
    size_t nf = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        char *path = xasprintf("%s%s%s", dir, str_has_suffix(dir, "/") ? "" : "/", de->d_name);
        struct stat st;
        if (stat(path, &st) < 0 || S_ISDIR(st.st_mode) || !supported_ext(de->d_name)) {
            free(path);
            continue;
        }
        files = xrealloc(files, (nf + 1) * sizeof(char *));
        files[nf++] = path;
    }
    closedir(d);
    qsort(files, nf, sizeof(char *), cmp_str);
    struct buf b;
    int rc = 0;
    buf_init(&b, CTL_APPLY_MAX_BYTES);
    for (size_t i = 0; i < nf && rc == 0; i++) {
        struct err e;
        size_t fl;
        char *content = read_file(files[i], CTL_APPLY_MAX_BYTES, &fl, &e);
        if (!content) {
            rc = ctl_fail(c, "error reading file %s: %s", files[i], e.msg);
            break;
        }
        if ((b.len > 0 && buf_append(&b, "\n---\n", 5) < 0) || buf_append(&b, content, fl) < 0)
            rc = ctl_fail(c, "error while reading provided file: input larger than %u bytes",
                          CTL_APPLY_MAX_BYTES);
        free(content);
    }
    for (size_t i = 0; i < nf; i++)
        free(files[i]);
    free(files);
    if (rc < 0) {
        buf_free(&b);
        return -1;
    }
    buf_str(&b);
    *text = b.data;
    *len = b.len;
    return 0;
}

int ctl_read_input(struct ctl *c, const char *file, char **text, size_t *len)
{
    if (strcmp(file, "-") == 0)
        return read_stream(c, c->in, text, len);
    if (str_has_prefix(file, "http://") || str_has_prefix(file, "https://")) {
        struct ctl_http_response r;
        char *msg = NULL;
        if (ctl_http_do(NULL, "GET", file, NULL, 10000, &r, &msg) < 0) {
            ctl_fail(c, "error with GET http request: %s", msg);
            free(msg);
            return -1;
        }
        if (r.status != 200) {
            ctl_http_response_free(&r);
            return ctl_fail(c, "error while retrieving URL");
        }
        if (r.len > CTL_APPLY_MAX_BYTES) {
            ctl_http_response_free(&r);
            return ctl_fail(c, "error while reading provided file: input larger than %u bytes",
                            CTL_APPLY_MAX_BYTES);
        }
        *text = r.body;
        *len = r.len;
        return 0;
    }
    struct stat st;
    if (stat(file, &st) < 0)
        return ctl_fail(c, "error while reading provided file: stat %s: %s", file,
                        errno == ENOENT ? "no such file or directory" : strerror(errno));
    if (S_ISDIR(st.st_mode))
        return read_dir(c, file, text, len);
    struct err e;
    *text = read_file(file, CTL_APPLY_MAX_BYTES, len, &e);
    if (!*text)
        return ctl_fail(c, "error while reading provided file: %s", e.msg);
    return 0;
}

/* Go's %q for the strings kumactl quotes. */
static char *go_quote(const char *s)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append(&b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf_printf(&b, "\\%c", ch);
        else if (ch == '\n')
            buf_printf(&b, "\\n");
        else if (ch == '\t')
            buf_printf(&b, "\\t");
        else if (ch == '\r')
            buf_printf(&b, "\\r");
        else if (ch < 0x20 || ch == 0x7f)
            buf_printf(&b, "\\x%02x", ch);
        else
            buf_append(&b, s, 1);
    }
    buf_append(&b, "\"", 1);
    char *r = xstrdup(buf_str(&b));
    buf_free(&b);
    return r;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "value";
    }
}

/* Parses one rendered document into a resource; prints Kuma's message on
 * c->err and returns -1 when it cannot. */
static int parse_doc(struct ctl *c, size_t idx, const char *text, struct resource **out)
{
    struct err e;
    json_t *doc = NULL;
    char *q = NULL;
    if (codec_parse_one(text, strlen(text), &doc, &e) < 0) {
        char *inner = xasprintf("error converting YAML to JSON: yaml: %s", e.msg);
        q = go_quote(inner);
        fprintf(c->err, "resource[%zu]: failed to parse resource: invalid meta type: %s\n", idx, q);
        free(inner);
        free(q);
        return -1;
    }
    if (!json_is_object(doc)) {
        char *inner = xasprintf("error unmarshaling JSON: json: cannot unmarshal %s into Go "
                                "value of type v1alpha1.ResourceMeta",
                                json_kind(doc));
        q = go_quote(inner);
        fprintf(c->err, "resource[%zu]: failed to parse resource: invalid meta type: %s\n", idx, q);
        free(inner);
        free(q);
        json_decref(doc);
        return -1;
    }
    int k8s = json_object_get(doc, "apiVersion") || json_object_get(doc, "kind");
    const char *type = json_string_value(json_object_get(doc, k8s ? "kind" : "type"));
    if (!type || !types_by_name(type)) {
        q = go_quote(type ? type : "");
        fprintf(c->err, "resource[%zu]: failed to parse resource: invalid resource type %s\n", idx,
                q);
        free(q);
        json_decref(doc);
        return -1;
    }
    if (resource_from_json(doc, out, &e) < 0) {
        fprintf(c->err, "resource[%zu]: failed to parse resource: %s\n", idx, e.msg);
        json_decref(doc);
        return -1;
    }
    /* On Kubernetes a policy without a kuma.io/mesh label is in "default". */
    if (k8s && (*out)->type->scope == RES_SCOPE_MESH && !*(*out)->mesh) {
        free((*out)->mesh);
        (*out)->mesh = xstrdup("default");
    }
    json_decref(doc);
    return 0;
}

static int check_meta(struct ctl *c, size_t idx, const struct resource *r)
{
    struct verr ve = {0};
    validate_meta(r, &ve);
    if (verr_empty(&ve) && r->type->scope == RES_SCOPE_MESH && !*r->mesh)
        verr_add(&ve, "mesh", "cannot be empty");
    if (verr_empty(&ve))
        return 0;
    char *s = verr_join(&ve);
    fprintf(c->err, "resource[%zu]: failed to read meta: %s\n", idx, s);
    free(s);
    verr_free(&ve);
    return -1;
}

/* The universal JSON kumactl PUTs: meta (type, mesh, name, labels) and spec;
 * read-only fields are left to the server. */
static char *put_body(const struct resource *r)
{
    json_t *o = resource_to_json(r, RES_FORM_UNIVERSAL);
    json_object_del(o, "creationTime");
    json_object_del(o, "modificationTime");
    json_object_del(o, "kri");
    char *s = codec_json_dump(o, 0);
    json_decref(o);
    return s;
}

/* The error text of a failed call, as kumactl's remote store words it. */
static char *call_error(const struct ctl_http_response *r, int put)
{
    struct ctl_api_error ae;
    if (r->status >= 400 && ctl_api_error_parse(r->body, r->len, &ae) == 0) {
        char *s = ctl_api_error_string(&ae);
        ctl_api_error_free(&ae);
        return s;
    }
    if (put && r->status == 405)
        return xstrdup(r->body);
    return xasprintf("(%ld): %s", r->status, r->body);
}

static void print_warnings(struct ctl *c, const struct ctl_http_response *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(j, "warnings"), i, w) if (json_is_string(w))
        fprintf(c->err, "Warning: %s\n", json_string_value(w));
    json_decref(j);
}

static int upsert(struct ctl *c, const struct resource *res)
{
    char *qt = go_quote(res->type->name), *qm = go_quote(res->mesh), *qn = go_quote(res->name);
    char *who = xasprintf("resource type=%s mesh=%s name=%s", qt, qm, qn);
    char *prefix = xasprintf("%s: failed server side: ", who);
    char *path = ctl_resource_path(res->type, res->mesh, res->name);
    struct ctl_http_response r;
    int result = -1, update;

    if (ctl_request(c, "GET", path, NULL, prefix, &r) < 0)
        goto out;
    if (r.status == 404) {
        update = 0;
    } else if (r.status == 200) {
        update = 1;
    } else {
        char *m = call_error(&r, 0);
        ctl_fail(c, "%s%s", prefix, m);
        free(m);
        ctl_http_response_free(&r);
        goto out;
    }
    ctl_http_response_free(&r);

    char *body = put_body(res);
    int rc = ctl_request(c, "PUT", path, body, prefix, &r);
    free(body);
    if (rc < 0)
        goto out;
    if (r.status != 200 && r.status != 201) {
        char *m = call_error(&r, 1);
        ctl_fail(c, "%s%s", prefix, m);
        free(m);
        ctl_http_response_free(&r);
        goto out;
    }
    fprintf(c->out, "%s %s\n", who, update ? "Updated" : "Created");
    print_warnings(c, &r);
    ctl_http_response_free(&r);
    result = 0;
out:
    free(path);
    free(prefix);
    free(who);
    free(qt);
    free(qm);
    free(qn);
    return result;
}

static void print_dry_run(struct ctl *c, const struct resource *r, int first)
{
    json_t *o = resource_to_json(r, RES_FORM_UNIVERSAL);
    /* What kumactl prints for a resource that was never stored. */
    json_object_set_new(o, "creationTime", json_string("0001-01-01T00:00:00Z"));
    json_object_set_new(o, "modificationTime", json_string("0001-01-01T00:00:00Z"));
    json_object_del(o, "kri");
    if (r->type->scope == RES_SCOPE_MESH && !*r->mesh)
        json_object_del(o, "mesh");
    if (!first)
        fputs("---\n", c->out);
    ctl_print_resource_yaml(r->type, o, c->out);
    json_decref(o);
}

int ctl_cmd_apply(struct ctl *c)
{
    char *text = NULL, **docs = NULL;
    size_t len = 0, ndocs = 0, nres = 0;
    struct resource **res = NULL;
    json_t *vars = NULL;
    int result = -1, bad = 0;
    const struct flag_val *fv = args_get(c->args, "var");
    int dry = args_bool(c->args, "dry-run");

    ctl_check_compat(c);
    if (ctl_read_input(c, args_str(c->args, "file"), &text, &len) < 0)
        goto out;
    if (len == 0) {
        ctl_fail(c, "no resource(s) passed to apply");
        goto out;
    }
    if (memchr(text, '\0', len)) {
        ctl_fail(c, "error while reading provided file: input contains NUL bytes");
        goto out;
    }
    ndocs = ctl_split_yaml(text, &docs);
    if (fv && fv->npairs)
        vars = mustache_context(fv->keys, fv->vals, fv->npairs);
    res = xcalloc(ndocs ? ndocs : 1, sizeof(*res));
    for (size_t i = 0; i < ndocs; i++) {
        char *rendered = NULL, *msg = NULL;
        const char *doc = docs[i];
        if (vars) {
            if (mustache_render(docs[i], strlen(docs[i]), vars, CTL_APPLY_MAX_BYTES, &rendered,
                                &msg) < 0) {
                fprintf(c->err, "resource[%zu]: failed to parse resource: %s\n", i, msg);
                free(msg);
                bad = 1;
                continue;
            }
            doc = rendered;
        }
        struct resource *r = NULL;
        if (parse_doc(c, i, doc, &r) < 0 || check_meta(c, i, r) < 0) {
            resource_free(r);
            bad = 1;
        } else {
            res[nres++] = r;
        }
        free(rendered);
    }
    if (bad) {
        ctl_fail(c, "failed to validate some resources");
        goto out;
    }
    for (size_t i = 0; i < nres; i++) {
        if (dry)
            print_dry_run(c, res[i], i == 0);
        else if (upsert(c, res[i]) < 0)
            goto out;
    }
    result = 0;
out:
    for (size_t i = 0; i < nres; i++)
        resource_free(res[i]);
    free(res);
    for (size_t i = 0; i < ndocs; i++)
        free(docs[i]);
    free(docs);
    json_decref(vars);
    free(text);
    return result;
}
