/*
 * ctl/cmd_get — `kumactl get <plural>`, `kumactl get <singular> NAME`,
 * `kumactl delete TYPE NAME` and `kumactl inspect meshes`: one REST call
 * each, then the printers of ctl/print. Error texts follow kumactl's remote
 * store: an API error envelope replaces the whole message with
 * "Title (Detail)\n* field: reason" (errors.FormatErrorWrapper); other
 * failures are wrapped ("failed to list Mesh: ...").
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ctl/ctl.h"

/* Fails with the formatted API error if the response carries one. */
static int api_error(struct ctl *c, const struct ctl_http_response *r)
{
    struct ctl_api_error ae;
    if (r->status < 400 || ctl_api_error_parse(r->body, r->len, &ae) < 0)
        return 0;
    char *m = ctl_api_error_format(&ae);
    ctl_fail(c, "%s", m);
    free(m);
    ctl_api_error_free(&ae);
    return -1;
}

static int parse_body(struct ctl *c, const struct ctl_http_response *r, const char *prefix,
                      json_t **out)
{
    json_error_t je;
    *out = json_loadb(r->body, r->len, 0, &je);
    if (!*out)
        return ctl_fail(c, "%sinvalid response from the control plane: %s", prefix, je.text);
    return 0;
}

static int output_format(struct ctl *c, enum ctl_format *f)
{
    const char *s = args_str(c->args, "output");
    int v = ctl_format_parse(s);
    if (v < 0)
        return ctl_fail(c, "unknown output format \"%s\"", s);
    *f = (enum ctl_format)v;
    return 0;
}

int ctl_cmd_get_list(struct ctl *c)
{
    const struct res_type *t = c->type;
    struct ctl_http_response r;
    struct buf q;
    char *prefix = xasprintf("failed to list %s: ", t->name);
    char *base = ctl_resource_path(t, ctl_mesh(c), NULL);
    json_t *list = NULL;
    int result = -1;

    /* url.Values.Encode() sorts the keys: offset, then size. */
    buf_init(&q, 0);
    buf_printf(&q, "%s", base);
    const char *offset = args_str(c->args, "offset");
    long long size = args_int(c->args, "size");
    char sep = '?';
    if (*offset) {
        char *o = ctl_escape(offset);
        buf_printf(&q, "%coffset=%s", sep, o);
        free(o);
        sep = '&';
    }
    if (size != 0)
        buf_printf(&q, "%csize=%lld", sep, size);

    if (ctl_request(c, "GET", buf_str(&q), NULL, prefix, &r) < 0)
        goto out;
    if (api_error(c, &r) < 0)
        goto out_resp;
    if (r.status != 200) {
        ctl_fail(c, "%s(%ld): %s", prefix, r.status, r.body);
        goto out_resp;
    }
    if (parse_body(c, &r, prefix, &list) < 0)
        goto out_resp;
    enum ctl_format f = CTL_FMT_TABLE;
    if (output_format(c, &f) < 0)
        goto out_resp;
    char *msg = NULL;
    if (ctl_print_list(t, list, f, &c->now, c->out, &msg) < 0) {
        ctl_fail(c, "%s%s", prefix, msg);
        free(msg);
        goto out_resp;
    }
    result = 0;
out_resp:
    ctl_http_response_free(&r);
out:
    json_decref(list);
    buf_free(&q);
    free(base);
    free(prefix);
    return result;
}

int ctl_cmd_get_one(struct ctl *c)
{
    const struct res_type *t = c->type;
    const char *name = c->args->pos[0];
    const char *mesh = t->scope == RES_SCOPE_MESH ? ctl_mesh(c) : "";
    struct ctl_http_response r;
    json_t *item = NULL;
    int result = -1;
    char *prefix = t->scope == RES_SCOPE_MESH
                       ? xasprintf("failed to get %s in mesh %s: ", name, mesh)
                       : xasprintf("failed to get %s: ", name);
    char *path = ctl_resource_path(t, mesh, name);

    if (ctl_request(c, "GET", path, NULL, prefix, &r) < 0)
        goto out;
    if (r.status == 404) {
        if (t->scope == RES_SCOPE_MESH)
            ctl_fail(c, "No resources found in %s mesh", mesh);
        else
            ctl_fail(c, "No resources found");
        goto out_resp;
    }
    if (api_error(c, &r) < 0)
        goto out_resp;
    if (r.status != 200) {
        ctl_fail(c, "%s(%ld): %s", prefix, r.status, r.body);
        goto out_resp;
    }
    if (parse_body(c, &r, prefix, &item) < 0)
        goto out_resp;
    enum ctl_format f = CTL_FMT_TABLE;
    if (output_format(c, &f) < 0)
        goto out_resp;
    char *msg = NULL;
    if (ctl_print_one(t, item, f, &c->now, c->out, &msg) < 0) {
        ctl_fail(c, "%s%s", prefix, msg);
        free(msg);
        goto out_resp;
    }
    result = 0;
out_resp:
    ctl_http_response_free(&r);
out:
    json_decref(item);
    free(path);
    free(prefix);
    return result;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ctl_cmd_delete(struct ctl *c)
{
    const char *arg = c->args->pos[0], *name = c->args->pos[1];
    size_t n;
    const struct res_type *const *all = types_all(&n);
    const struct res_type *t = NULL;

    ctl_check_compat(c);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i]->kumactl_arg, arg) == 0)
            t = all[i];
    if (!t) {
        const char **names = xcalloc(n, sizeof(char *));
        struct buf b;
        for (size_t i = 0; i < n; i++)
            names[i] = all[i]->kumactl_arg;
        qsort(names, n, sizeof(char *), cmp_str);
        buf_init(&b, 0);
        for (size_t i = 0; i < n; i++)
            buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
        ctl_fail(c, "unknown TYPE: %s. Allowed values: %s", arg, buf_str(&b));
        buf_free(&b);
        free(names);
        return -1;
    }
    if (t->read_only)
        return ctl_fail(c, "TYPE: %s is readOnly, can't use it for write action", arg);

    const char *mesh = t->scope == RES_SCOPE_MESH ? ctl_mesh(c) : "";
    char *path = ctl_resource_path(t, mesh, name);
    char *prefix = xasprintf("failed to delete %s with the name \"%s\": ", t->name, name);
    struct ctl_http_response r;
    struct ctl_api_error ae;
    int result = -1;

    if (ctl_request(c, "DELETE", path, NULL, prefix, &r) < 0)
        goto out;
    if (r.status >= 400 && ctl_api_error_parse(r.body, r.len, &ae) == 0) {
        if (r.status == 404) {
            ctl_fail(c, "there is no %s with name \"%s\"", t->name, name);
        } else {
            char *m = ctl_api_error_format(&ae);
            ctl_fail(c, "%s", m);
            free(m);
        }
        ctl_api_error_free(&ae);
        goto out_resp;
    }
    if (r.status != 200) {
        if (r.status == 405)
            ctl_fail(c, "%s%s", prefix, r.body);
        else
            ctl_fail(c, "%s(%ld): %s", prefix, r.status, r.body);
        goto out_resp;
    }
    fprintf(c->out, "deleted %s \"%s\"\n", t->name, name);
    result = 0;
out_resp:
    ctl_http_response_free(&r);
out:
    free(prefix);
    free(path);
    return result;
}

int ctl_cmd_inspect_meshes(struct ctl *c)
{
    struct ctl_http_response r;
    json_t *list = NULL;
    int result = -1;

    if (ctl_request(c, "GET", "/mesh-insights", NULL, "", &r) < 0)
        return -1;
    if (api_error(c, &r) < 0)
        goto out;
    if (r.status != 200) {
        ctl_fail(c, "(%ld): %s", r.status, r.body);
        goto out;
    }
    if (parse_body(c, &r, "", &list) < 0)
        goto out;
    enum ctl_format f = CTL_FMT_TABLE;
    if (output_format(c, &f) < 0)
        goto out;
    char *msg = NULL;
    if (ctl_print_mesh_insights(list, f, c->out, &msg) < 0) {
        ctl_fail(c, "%s", msg);
        free(msg);
        goto out;
    }
    result = 0;
out:
    json_decref(list);
    ctl_http_response_free(&r);
    return result;
}
