/*
 * workload — tag sets and workload certificate issuance (see workload.h).
 * The hot path is ca_signer_issue: one key generation, one certificate built
 * with direct X509 calls (no text config parsing), one signature, two PEM
 * encodings. The CA is parsed once into a ca_signer.
 */
#include "ca/workload.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "ca/pki.h"

#define NS_PER_S    1000000000LL
#define SERVICE_TAG "kuma.io/service"

/* ---- tags ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds value to the set under key in acc (an object of objects used as sets). */
static int tag_add(json_t *acc, const char *key, const json_t *v, struct err *e)
{
    if (!json_is_string(v))
        return err_set(e, "tag \"%s\": values must be strings", key);
    const char *s = json_string_value(v);
    if (!*s)
        return err_set(e, "tag \"%s\": empty value", key);
    if (strlen(s) > CA_TAG_MAX_LEN)
        return err_set(e, "tag \"%s\": value longer than %d bytes", key, CA_TAG_MAX_LEN);
    json_t *set = json_object_get(acc, key);
    if (!set) {
        if (json_object_size(acc) >= CA_TAGS_MAX_KEYS)
            return err_set(e, "more than %d tags", CA_TAGS_MAX_KEYS);
        set = json_object();
        json_object_set_new(acc, key, set);
    }
    if (!json_object_get(set, s)) {
        if (json_object_size(set) >= CA_TAGS_MAX_VALUES)
            return err_set(e, "tag \"%s\": more than %d values", key, CA_TAGS_MAX_VALUES);
        json_object_set_new(set, s, json_true());
    }
    return 0;
}

/* Turns an accumulator (object of sets) into the canonical sorted form. */
static json_t *tags_from_acc(const json_t *acc)
{
    size_t nk = json_object_size(acc), i = 0;
    const char **keys = xcalloc(nk + 1, sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)acc, k, v) keys[i++] = k;
    qsort(keys, nk, sizeof(char *), cmp_str);
    json_t *out = json_object();
    for (i = 0; i < nk; i++) {
        const json_t *set = json_object_get(acc, keys[i]);
        size_t nv = json_object_size(set), j = 0;
        const char **vals = xcalloc(nv + 1, sizeof(char *));
        const char *vk;
        json_t *vv;
        json_object_foreach((json_t *)set, vk, vv) vals[j++] = vk;
        qsort(vals, nv, sizeof(char *), cmp_str);
        json_t *arr = json_array();
        for (j = 0; j < nv; j++)
            json_array_append_new(arr, json_string(vals[j]));
        json_object_set_new(out, keys[i], arr);
        free(vals);
    }
    free(keys);
    return out;
}

int ca_tags_normalize(const json_t *in, json_t **out, struct err *e)
{
    if (in && json_is_null(in))
        in = NULL;
    if (in && !json_is_object(in))
        return err_set(e, "tags must be an object");
    json_t *acc = json_object();
    const char *k;
    json_t *v;
    int rc = 0;
    if (in) {
        json_object_foreach((json_t *)in, k, v)
        {
            if (!*k || strlen(k) > CA_TAG_MAX_LEN) {
                rc = err_set(e, "invalid tag name \"%.64s\"", k);
                break;
            }
            if (json_is_array(v)) {
                size_t i;
                json_t *item;
                json_array_foreach(v, i, item)
                {
                    if ((rc = tag_add(acc, k, item, e)) != 0)
                        break;
                }
                if (rc)
                    break;
            } else if ((rc = tag_add(acc, k, v, e)) != 0) {
                break;
            }
        }
    }
    if (rc == 0)
        *out = tags_from_acc(acc);
    json_decref(acc);
    return rc;
}

/* Merges an object of string tags into acc; ignores what is not a string. */
static void merge_tags(json_t *acc, const json_t *tags)
{
    const char *k;
    json_t *v;
    if (!json_is_object(tags))
        return;
    json_object_foreach((json_t *)tags, k, v)
    {
        struct err ignored;
        if (*k && json_is_string(v))
            (void)tag_add(acc, k, v, &ignored);
    }
}

json_t *ca_dataplane_tags(const json_t *spec)
{
    json_t *acc = json_object();
    const json_t *net = json_is_object(spec) ? json_object_get(spec, "networking") : NULL;
    if (json_is_object(net)) {
        const json_t *inbound = json_object_get(net, "inbound");
        size_t i;
        json_t *in;
        if (json_is_array(inbound))
            json_array_foreach(inbound, i, in)
            {
                if (json_is_object(in))
                    merge_tags(acc, json_object_get(in, "tags"));
            }
        const json_t *gw = json_object_get(net, "gateway");
        if (json_is_object(gw))
            merge_tags(acc, json_object_get(gw, "tags"));
    }
    json_t *out = tags_from_acc(acc);
    json_decref(acc);
    return out;
}

int ca_dataplane_identity_tags(const char *name, const json_t *spec, const json_t *labels,
                               json_t **out, struct err *e)
{
    json_t *tags = ca_dataplane_tags(spec);
    if (json_array_size(json_object_get(tags, SERVICE_TAG)) > 0) {
        *out = tags;
        return 0;
    }
    json_decref(tags);
    const json_t *w = json_is_object(labels) ? json_object_get(labels, "kuma.io/workload") : NULL;
    if (!json_is_string(w) || json_string_length(w) == 0)
        return err_set(e,
                       "dataplane \"%s\" has no kuma.io/service tag and no kuma.io/workload "
                       "label, cannot derive mTLS identity",
                       name ? name : "");
    if (json_string_length(w) > CA_TAG_MAX_LEN)
        return err_set(e, "dataplane \"%s\": kuma.io/workload label longer than %d bytes",
                       name ? name : "", CA_TAG_MAX_LEN);
    json_t *t = json_object();
    json_t *arr = json_array();
    json_array_append_new(arr, json_string(json_string_value(w)));
    json_object_set_new(t, SERVICE_TAG, arr);
    *out = t;
    return 0;
}

/* Appends s to b with the bytes a URI path may not hold as-is percent-encoded
 * (unreserved and sub-delims, ':', '@' and '/' pass, as Go's URL.String()). */
static void uri_append(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~!$&'()*+,;=:@/", c)) {
            buf_append(b, s, 1);
        } else {
            char pct[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, pct, 3);
        }
    }
}

/* Builds the URI list for normalized tags; returns a new array of strings. */
static int uris_from_tags(const char *mesh, const json_t *norm, json_t **out, struct err *e)
{
    if (!ca__valid_trust_domain(mesh))
        return err_set(e, "invalid mesh name \"%s\": not usable as a SPIFFE trust domain",
                       mesh ? mesh : "");
    json_t *uris = json_array();
    struct buf b;
    buf_init(&b, 0);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(norm, SERVICE_TAG), i, v)
    {
        b.len = 0;
        buf_printf(&b, "spiffe://%s/", mesh);
        uri_append(&b, json_string_value(v));
        json_array_append_new(uris, json_string(buf_str(&b)));
    }
    const char *k;
    json_t *vals;
    json_object_foreach((json_t *)norm, k, vals)
    {
        json_array_foreach(vals, i, v)
        {
            b.len = 0;
            buf_printf(&b, "kuma://");
            uri_append(&b, k);
            buf_append(&b, "/", 1);
            uri_append(&b, json_string_value(v));
            json_array_append_new(uris, json_string(buf_str(&b)));
        }
    }
    buf_free(&b);
    if (json_array_size(uris) == 0) {
        json_decref(uris);
        return err_set(e, "no tags: a workload certificate needs at least one identity");
    }
    *out = uris;
    return 0;
}

int ca_workload_uris(const char *mesh, const json_t *tags, json_t **out, struct err *e)
{
    json_t *norm = NULL;
    if (ca_tags_normalize(tags, &norm, e) != 0)
        return -1;
    int rc = uris_from_tags(mesh, norm, out, e);
    json_decref(norm);
    return rc;
}

/* ---- signer ---------------------------------------------------------------- */

struct ca_signer {
    X509 *cert;
    EVP_PKEY *key;
    char *cert_pem;
};

void ca_signer_free(struct ca_signer *s)
{
    if (!s)
        return;
    X509_free(s->cert);
    EVP_PKEY_free(s->key);
    free(s->cert_pem);
    free(s);
}

int ca_signer_new(const char *ca_cert_pem, const char *ca_key_pem, struct ca_signer **out,
                  struct err *e)
{
    struct ca_signer *s = xcalloc(1, sizeof(*s));
    struct err pe;
    s->cert = ca__cert_from_pem(ca_cert_pem, &pe);
    if (!s->cert) {
        err_set(e, "failed to load CA key pair: %s", pe.msg);
        goto fail;
    }
    s->key = ca__key_from_pem(ca_key_pem, &pe);
    if (!s->key) {
        err_set(e, "failed to load CA key pair: %s", pe.msg);
        goto fail;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(s->cert), s->key) != 1) {
        ERR_clear_error();
        err_set(e, "failed to load CA key pair: private key does not match public key");
        goto fail;
    }
    s->cert_pem = ca__cert_to_pem(s->cert, e);
    if (!s->cert_pem)
        goto fail;
    *out = s;
    return 0;
fail:
    ca_signer_free(s);
    return -1;
}

const char *ca_signer_cert_pem(const struct ca_signer *s)
{
    return s->cert_pem;
}

int ca_signer_issue(const struct ca_signer *s, const char *mesh, const json_t *tags,
                    int64_t lifetime_ns, enum ca_key_type key_type, char **cert_pem, char **key_pem,
                    struct err *e)
{
    json_t *norm = NULL, *uris = NULL;
    struct ca__san *sans = NULL;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    int rc = -1;

    if (ca_tags_normalize(tags, &norm, e) != 0)
        goto out;
    if (uris_from_tags(mesh, norm, &uris, e) != 0)
        goto out;
    if (lifetime_ns <= 0)
        lifetime_ns = CA_WORKLOAD_DEFAULT_LIFETIME_NS;

    key = ca__keygen(key_type == CA_KEY_RSA ? CA_KEY_RSA : CA_KEY_ECDSA_P256, 2048, e);
    if (!key)
        goto out;
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3) ||
        !X509_set_issuer_name(x, X509_get_subject_name(s->cert)) || !ca__set_pubkey(x, key)) {
        ca__ossl_err(e, "failed to generate X509 certificate");
        goto out;
    }
    if (ca__set_serial_random(x, 0, e))
        goto out;
    int64_t now = now_ns() / NS_PER_S;
    if (ca__set_validity(x, now - CA_CLOCK_SKEW_S, now + lifetime_ns / NS_PER_S, e))
        goto out;

    size_t n = json_array_size(uris);
    sans = xcalloc(n, sizeof(*sans));
    for (size_t i = 0; i < n; i++) {
        sans[i].kind = CA__SAN_URI;
        sans[i].value = json_string_value(json_array_get(uris, i));
    }
    /* Subject is deliberately empty, so the SAN extension is critical. */
    if (ca__add_key_usage(
            x, CA__KU_DIGITAL_SIGNATURE | CA__KU_KEY_ENCIPHERMENT | CA__KU_KEY_AGREEMENT, e) ||
        ca__add_ext_key_usage(x, 1, 1, e) || ca__add_basic_constraints(x, 0, e) ||
        ca__add_authority_key_id(x, s->cert, e) || ca__add_san(x, sans, n, 1, e) ||
        ca__sign(x, s->key, e))
        goto out;
    if (ca__export_pems(x, key, cert_pem, key_pem, e))
        goto out;
    rc = 0;
out:
    free(sans);
    X509_free(x);
    EVP_PKEY_free(key);
    json_decref(uris);
    json_decref(norm);
    return rc;
}

int ca_issue_workload_cert(const char *ca_cert_pem, const char *ca_key_pem, const char *mesh,
                           const json_t *tags, int64_t lifetime_ns, enum ca_key_type key_type,
                           char **cert_pem, char **key_pem, struct err *e)
{
    struct ca_signer *s = NULL;
    if (ca_signer_new(ca_cert_pem, ca_key_pem, &s, e) != 0)
        return -1;
    int rc = ca_signer_issue(s, mesh, tags, lifetime_ns, key_type, cert_pem, key_pem, e);
    ca_signer_free(s);
    return rc;
}

int ca_cert_validity(const char *cert_pem, int64_t *not_before_ns, int64_t *not_after_ns,
                     struct err *e)
{
    X509 *x = ca__cert_from_pem(cert_pem, e);
    if (!x)
        return -1;
    int64_t nb, na;
    int rc = 0;
    if (ca__asn1_time_to_s(X509_get0_notBefore(x), &nb) ||
        ca__asn1_time_to_s(X509_get0_notAfter(x), &na))
        rc = err_set(e, "certificate has an unreadable validity period");
    X509_free(x);
    if (rc)
        return rc;
    *not_before_ns = nb * NS_PER_S;
    *not_after_ns = na * NS_PER_S;
    return 0;
}

int ca_cert_needs_rotation(int64_t issued_at_ns, int64_t not_after_ns, int64_t now_ns_)
{
    int64_t lifetime = not_after_ns - issued_at_ns;
    return now_ns_ > issued_at_ns + lifetime / 5 * 4;
}
