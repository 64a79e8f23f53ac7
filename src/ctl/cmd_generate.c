/*
 * ctl/cmd_generate — `kumactl generate ...` (app/kumactl/cmd/generate):
 *
 *   dataplane-token  POST /tokens/dataplane, or offline with
 *                    --signing-key-path and --kid (token_dataplane_issue)
 *   user-token       POST /tokens/user, or offline likewise
 *   tls-certificate  a self-signed key pair written to files (ca_generate_tls_cert)
 *   signing-key      a new RSA signing key, base64 of its PEM
 *   public-key       the public half of --signing-key-path, PEM
 *
 * Messages follow Kuma's. Key material goes only to the files or standard
 * output the user named, never to an error message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ca/tlsgen.h"
#include "ca/token.h"
#include "ctl/ctl.h"

/* Go's os.PathError text: "open <path>: permission denied". */
static char *go_open_error(const char *path, int err)
{
    char *why = xstrdup(strerror(err));
    if (why[0] >= 'A' && why[0] <= 'Z')
        why[0] = (char)(why[0] - 'A' + 'a');
    char *msg = xasprintf("open %s: %s", path, why);
    free(why);
    return msg;
}

/* os.WriteFile: create with mode (umask applies) or truncate an existing
 * file, which keeps its mode. Returns 0 or -1 with *msg. */
static int write_file(const char *path, const char *data, int mode, char **msg)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        *msg = go_open_error(path, errno);
        return -1;
    }
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            *msg = xasprintf("write %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0) {
        *msg = xasprintf("close %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Reads a signing key file for the offline paths. */
static char *read_key_file(struct ctl *c, const char *path)
{
    struct err e;
    size_t len = 0;
    char *pem = read_file(path, 256 * 1024, &len, &e);
    if (!pem)
        ctl_fail(c, "could not read file %s: %s", path, e.msg);
    return pem;
}

/* --kid: a decimal serial. */
static int parse_kid(struct ctl *c, const char *s, int *kid)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000)
        return ctl_fail(c, "--kid must be a number, got \"%s\"", s);
    *kid = (int)v;
    return 0;
}

/* The inputs of an offline token (--signing-key-path): --kid, --valid-for and
 * the key itself. Returns the key PEM (wipe_free it) or NULL after reporting. */
static char *offline_signing_inputs(struct ctl *c, const char *key_path, const char *kid_s,
                                    const char *valid_for, int *kid, int64_t *ns)
{
    if (!*kid_s) {
        ctl_fail(c, "--kid is required when --signing-key-path is used");
        return NULL;
    }
    if (parse_kid(c, kid_s, kid) < 0)
        return NULL;
    struct err e;
    if (token_parse_go_duration(valid_for, ns, &e) < 0 || *ns <= 0) {
        ctl_fail(c, "invalid --valid-for \"%s\"", valid_for);
        return NULL;
    }
    return read_key_file(c, key_path);
}

/* Prints an offline token, or the error that kept it from being made. */
static int print_token(struct ctl *c, int rc, char *jwt, const struct err *e)
{
    if (rc < 0)
        return ctl_fail(c, "%s", e->msg);
    fputs(jwt, c->out);
    wipe_free(jwt);
    return 0;
}

/* Posts a token request and prints the token; prefix names the operation
 * ("failed to generate a dataplane token"). */
static int request_token(struct ctl *c, const char *path, json_t *body, const char *prefix)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct ctl_http_response r;
    char *pfx = xasprintf("%s: ", prefix);
    int rc = ctl_request(c, "POST", path, text, pfx, &r);
    free(pfx);
    free(text);
    if (rc < 0)
        return -1;
    if (r.status != 200) {
        struct ctl_api_error ae;
        if (ctl_api_error_parse(r.body, r.len, &ae) == 0) {
            char *msg = ctl_api_error_string(&ae);
            ctl_fail(c, "%s: %s", prefix, msg);
            free(msg);
            ctl_api_error_free(&ae);
        } else {
            ctl_fail(c, "%s: (%ld): %s", prefix, r.status, r.body);
        }
        ctl_http_response_free(&r);
        return -1;
    }
    fwrite(r.body, 1, r.len, c->out);
    OPENSSL_cleanse(r.body, r.len);
    ctl_http_response_free(&r);
    return 0;
}

/* --tag k=v1,v2 (repeatable) as {k: [v1, v2]}. */
static json_t *tags_from_flag(const struct ctl *c)
{
    json_t *tags = json_object();
    const struct flag_val *fv = args_get(c->args, "tag");
    for (size_t i = 0; fv && i < fv->npairs; i++) {
        /* strings.Split on ",": empty elements are kept. */
        json_t *vals = json_array();
        const char *p = fv->vals[i];
        for (;;) {
            const char *comma = strchr(p, ',');
            json_array_append_new(vals, json_stringn(p, comma ? (size_t)(comma - p) : strlen(p)));
            if (!comma)
                break;
            p = comma + 1;
        }
        json_object_set_new(tags, fv->keys[i], vals); /* a later --tag k=... wins, as in a Go map */
    }
    return tags;
}

int ctl_cmd_generate_dataplane_token(struct ctl *c)
{
    const char *name = args_str(c->args, "name");
    const char *type = args_is_set(c->args, "proxy-type") ? args_str(c->args, "proxy-type")
                                                          : args_str(c->args, "type");
    const char *valid_for = args_str(c->args, "valid-for");
    const char *key_path = args_str(c->args, "signing-key-path");
    const char *kid_s = args_str(c->args, "kid");
    if (args_is_set(c->args, "type"))
        fprintf(c->err, "Flag --type has been deprecated, please use --proxy-type instead\n");

    if (*key_path) {
        int kid;
        int64_t ns;
        char *pem = offline_signing_inputs(c, key_path, kid_s, valid_for, &kid, &ns);
        if (!pem)
            return -1;
        json_t *tags = tags_from_flag(c);
        char *jwt = NULL;
        struct err e;
        int rc = token_dataplane_issue(pem, kid, name, ctl_mesh(c), tags, type, ns, &jwt, &e);
        json_decref(tags);
        wipe_free(pem);
        return print_token(c, rc, jwt, &e);
    }
    if (*kid_s)
        return ctl_fail(c, "--kid cannot be used when --signing-key-path is used");
    ctl_check_compat(c);
    json_t *body = json_pack("{s:s, s:s, s:o, s:s, s:s}", "name", name, "mesh", ctl_mesh(c), "tags",
                             tags_from_flag(c), "type", type, "validFor", valid_for);
    return request_token(c, "/tokens/dataplane", body, "failed to generate a dataplane token");
}

int ctl_cmd_generate_user_token(struct ctl *c)
{
    const char *name = args_str(c->args, "name");
    const char *valid_for = args_str(c->args, "valid-for");
    const char *key_path = args_str(c->args, "signing-key-path");
    const char *kid_s = args_str(c->args, "kid");
    const struct flag_val *groups = args_get(c->args, "group");
    size_t ng = groups ? groups->npairs : 0;

    if (*key_path) {
        int kid;
        int64_t ns;
        char *pem = offline_signing_inputs(c, key_path, kid_s, valid_for, &kid, &ns);
        if (!pem)
            return -1;
        char *jwt = NULL;
        struct err e;
        int rc = token_user_issue(
            pem, kid, name, (const char *const *)(groups ? groups->vals : NULL), ng, ns, &jwt, &e);
        wipe_free(pem);
        return print_token(c, rc, jwt, &e);
    }
    if (*kid_s)
        return ctl_fail(c, "--kid cannot be used when --signing-key-path is used");
    ctl_check_compat(c);
    json_t *g = json_array();
    for (size_t i = 0; i < ng; i++)
        json_array_append_new(g, json_string(groups->vals[i]));
    json_t *body = json_pack("{s:s, s:o, s:s}", "name", name, "groups", g, "validFor", valid_for);
    return request_token(c, "/tokens/user", body, "failed to generate a user token");
}

int ctl_cmd_generate_tls_certificate(struct ctl *c)
{
    const char *type = args_str(c->args, "type");
    const char *key_type = args_str(c->args, "key-type");
    const char *key_file = args_str(c->args, "key-file");
    const char *cert_file = args_str(c->args, "cert-file");
    const struct flag_val *hv = args_get(c->args, "hostname");
    size_t nh = hv ? hv->npairs : 0;
    char *cert = NULL, *key = NULL, *msg = NULL;
    struct err e;

    if (ca_generate_tls_cert(type, (const char *const *)(hv ? hv->vals : NULL), nh, key_type, &cert,
                             &key, &e) < 0)
        return ctl_fail(c, "%s", e.msg);
    int rc = -1;
    if (strcmp(key_file, "-") == 0)
        fputs(key, c->out);
    else if (write_file(key_file, key, 0400, &msg) < 0) {
        ctl_fail(c, "could not write the key file: %s", msg);
        goto out;
    }
    if (strcmp(cert_file, "-") == 0)
        fputs(cert, c->out);
    else if (write_file(cert_file, cert, 0644, &msg) < 0) {
        ctl_fail(c, "could not write the cert file: %s", msg);
        goto out;
    }
    if (strcmp(cert_file, "-") != 0 && strcmp(key_file, "-") != 0) {
        fprintf(c->out, "Private key saved in %s\n", key_file);
        fprintf(c->out, "Certificate saved in %s\n", cert_file);
    }
    rc = 0;
out:
    free(msg);
    free(cert);
    wipe_free(key);
    return rc;
}

int ctl_cmd_generate_signing_key(struct ctl *c)
{
    char *pem = NULL;
    struct err e;
    if (token_signing_key_generate(&pem, &e) < 0)
        return ctl_fail(c, "could not generate signing key: %s", e.msg);
    char *b64 = base64_encode(pem, strlen(pem));
    fputs(b64, c->out);
    wipe_free(b64);
    wipe_free(pem);
    return 0;
}

int ctl_cmd_generate_public_key(struct ctl *c)
{
    char *pem = read_key_file(c, args_str(c->args, "signing-key-path"));
    if (!pem)
        return -1;
    char *pub = NULL;
    struct err e;
    int rc = token_public_key_pem(pem, &pub, &e);
    wipe_free(pem);
    if (rc < 0)
        return ctl_fail(c, "could not extract public key: %s", e.msg);
    fputs(pub, c->out);
    free(pub);
    return 0;
}
