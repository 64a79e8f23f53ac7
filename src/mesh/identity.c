/*
 * identity — CA backends, root CAs and token signing keys of a mesh (see
 * identity.h). Key material goes only into the store, base64 in a Secret's
 * `data`, never into logs.
 */
#include "mesh/identity.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca/ca.h"
#include "ca/token.h"
#include "core/log.h"

int identity_secret_fetch(void *ud, const char *mesh, const char *name, char **data, size_t *len,
                          struct err *e)
{
    struct store *st = ud;
    struct resource *r = NULL;
    int rc = store_get(st, *mesh ? &TYPE_SECRET : &TYPE_GLOBAL_SECRET, mesh, name, &r, e);
    if (rc == STORE_ENOTFOUND)
        return CA_NOT_FOUND;
    if (rc < 0)
        return -1;
    const char *b64 = json_string_value(json_object_get(r->spec, "data"));
    size_t n = 0;
    unsigned char *bytes = b64 ? base64_decode(b64, strlen(b64), &n) : NULL;
    resource_free(r);
    if (!bytes)
        return err_set(e, "secret %s holds no valid base64 data", name);
    *data = (char *)bytes;
    *len = n;
    return 0;
}

static const json_t *mtls_backends(const struct resource *mesh, int *skip_validation)
{
    const json_t *mtls = json_object_get(mesh->spec, "mtls");
    if (skip_validation)
        *skip_validation = json_is_true(json_object_get(mtls, "skipValidation"));
    const json_t *b = json_object_get(mtls, "backends");
    return json_is_array(b) ? b : NULL;
}

static const json_t *backend_conf(const json_t *b)
{
    const json_t *conf = json_object_get(b, "conf");
    return json_is_object(conf) ? conf : NULL;
}

void identity_validate_backends(struct store *st, const struct resource *mesh, struct verr *ve)
{
    int skip = 0;
    const json_t *backends = mtls_backends(mesh, &skip);
    if (skip)
        return;
    size_t i;
    json_t *b;
    json_array_foreach(backends, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        struct verr sub = {0};
        if (type && strcmp(type, "builtin") == 0)
            ca_builtin_validate_conf(backend_conf(b), &sub);
        else if (type && strcmp(type, "provided") == 0)
            ca_provided_validate_backend(mesh->name, backend_conf(b), identity_secret_fetch, st,
                                         &sub);
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "mtls.backends[%zu].conf", i);
        verr_add_prefixed(ve, prefix, &sub);
        verr_free(&sub);
    }
}

int identity_put_secret_once(struct store *st, const char *mesh, const char *name, const void *data,
                             size_t len, struct changes *ch, struct err *e)
{
    const struct res_type *t = *mesh ? &TYPE_SECRET : &TYPE_GLOBAL_SECRET;
    struct resource *old = NULL;
    int rc = store_get(st, t, mesh, name, &old, e);
    if (rc == STORE_OK) {
        resource_free(old);
        return 1;
    }
    if (rc != STORE_ENOTFOUND)
        return rc;
    struct resource *r = resource_new(t, mesh, name);
    char *b64 = base64_encode(data, len);
    json_object_set_new(r->spec, "data", json_string(b64));
    free(b64);
    rc = store_create(st, r, ch, e);
    resource_free(r);
    if (rc == STORE_EEXIST) /* another writer made it first: that one stays */
        return 1;
    return rc < 0 ? rc : 0;
}

int identity_ensure_cas(struct store *st, const struct resource *mesh, struct changes *ch,
                        struct err *e)
{
    const json_t *backends = mtls_backends(mesh, NULL);
    size_t i;
    json_t *b;
    json_array_foreach(backends, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        const char *name = json_string_value(json_object_get(b, "name"));
        if (!type || strcmp(type, "builtin") != 0 || !name)
            continue;
        char *cert_name = ca_builtin_cert_secret_name(mesh->name, name);
        char *key_name = ca_builtin_key_secret_name(mesh->name, name);
        struct resource *existing = NULL;
        int rc = store_get(st, &TYPE_SECRET, mesh->name, cert_name, &existing, e);
        resource_free(existing);
        if (rc == STORE_ENOTFOUND) {
            char *cert = NULL, *key = NULL;
            rc = ca_builtin_generate(mesh->name, backend_conf(b), CA_KEY_DEFAULT, &cert, &key, e);
            if (rc == 0) {
                /* The key first: a certificate without its key is useless. */
                rc = identity_put_secret_once(st, mesh->name, key_name, key, strlen(key), ch, e);
                if (rc >= 0)
                    rc = identity_put_secret_once(st, mesh->name, cert_name, cert, strlen(cert), ch,
                                                  e);
                if (rc >= 0) {
                    log_info("ca", "created the root CA of mesh %s, backend %s", mesh->name, name);
                    rc = 0;
                }
            }
            if (key)
                OPENSSL_cleanse(key, strlen(key));
            free(cert);
            free(key);
        }
        free(cert_name);
        free(key_name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int identity_ensure_signing_key(struct store *st, const char *mesh, struct changes *ch,
                                struct err *e)
{
    char *name = token_dp_signing_key_name(mesh, 1);
    struct resource *existing = NULL;
    int rc = store_get(st, &TYPE_SECRET, mesh, name, &existing, e);
    resource_free(existing);
    if (rc == STORE_ENOTFOUND) {
        char *pem = NULL;
        rc = token_signing_key_generate(&pem, e);
        if (rc == 0) {
            rc = identity_put_secret_once(st, mesh, name, pem, strlen(pem), ch, e);
            OPENSSL_cleanse(pem, strlen(pem));
            free(pem);
            rc = rc < 0 ? rc : 0;
        }
    }
    free(name);
    return rc;
}
