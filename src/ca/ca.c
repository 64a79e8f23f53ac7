/*
 * ca — builtin CA generation, provided CA validation, DataSources and Kuma's
 * duration grammar. The certificate layout follows Kuma's
 * pkg/plugins/ca/builtin/ca.go; the provided-CA checks and their messages
 * follow pkg/plugins/ca/provided/{manager.go,ca_cert_validator.go}, which in
 * turn report Go's tls.X509KeyPair errors verbatim, so those are reproduced
 * here too (see provided_keypair()).
 */
#define _GNU_SOURCE
#include "ca/ca.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/pki.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S  1000000000LL

int ca_key_type_parse(const char *s, enum ca_key_type *out)
{
    if (s && strcmp(s, "rsa") == 0)
        *out = CA_KEY_RSA;
    else if (s && strcmp(s, "ecdsa") == 0)
        *out = CA_KEY_ECDSA_P256;
    else
        return -1;
    return 0;
}

int ca_parse_duration(const char *s, int64_t *ns, struct err *e)
{
    if (!s)
        return err_set(e, "not a valid duration string: \"\"");
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    const char *p = s;
    int64_t n = 0;
    int overflow = 0;
    while (*p >= '0' && *p <= '9') {
        if (n > (INT64_MAX - 9) / 10)
            overflow = 1;
        else
            n = n * 10 + (*p - '0');
        p++;
    }
    int64_t ms_per_unit;
    if (p == s)
        goto bad;
    if (strcmp(p, "y") == 0)
        ms_per_unit = 365LL * 24 * 3600 * 1000;
    else if (strcmp(p, "w") == 0)
        ms_per_unit = 7LL * 24 * 3600 * 1000;
    else if (strcmp(p, "d") == 0)
        ms_per_unit = 24LL * 3600 * 1000;
    else if (strcmp(p, "h") == 0)
        ms_per_unit = 3600LL * 1000;
    else if (strcmp(p, "m") == 0)
        ms_per_unit = 60LL * 1000;
    else if (strcmp(p, "s") == 0)
        ms_per_unit = 1000;
    else if (strcmp(p, "ms") == 0)
        ms_per_unit = 1;
    else
        goto bad;
    if (overflow || n > INT64_MAX / NS_PER_MS / ms_per_unit)
        return err_set(e, "duration \"%s\" is too large", s);
    *ns = n * ms_per_unit * NS_PER_MS;
    return 0;
bad:
    return err_set(e, "not a valid duration string: \"%s\"", s);
}

/* ---- builtin CA ------------------------------------------------------------ */

char *ca_builtin_cert_secret_name(const char *mesh, const char *backend)
{
    return xasprintf("%s.ca-builtin-cert-%s", mesh, backend);
}

char *ca_builtin_key_secret_name(const char *mesh, const char *backend)
{
    return xasprintf("%s.ca-builtin-key-%s", mesh, backend);
}

/* The parsed `conf` of a builtin backend. */
struct builtin_conf {
    long rsa_bits;         /* 0 = default */
    int64_t expiration_ns; /* 0 = default */
    enum ca_key_type key_type;
};

/* Reads conf into c; on a bad field adds a violation (ve) or fills e. */
static int builtin_conf_read(const json_t *conf, struct builtin_conf *c, struct verr *ve,
                             struct err *e)
{
    memset(c, 0, sizeof(*c));
    if (!conf || json_is_null(conf))
        return 0;
    if (!json_is_object(conf)) {
        if (ve)
            verr_add(ve, "", "could not convert backend config: expected an object");
        return err_set(e, "could not convert backend config: expected an object");
    }
    const json_t *cc = json_object_get(conf, "caCert");
    if (!cc || json_is_null(cc))
        return 0;
    if (!json_is_object(cc)) {
        if (ve)
            verr_add(ve, "caCert", "must be an object");
        return err_set(e, "caCert: must be an object");
    }
    int rc = 0;
    const json_t *bits = json_object_get(cc, "RSAbits");
    if (bits && !json_is_null(bits)) {
        long v = -1;
        if (json_is_integer(bits)) {
            json_int_t i = json_integer_value(bits);
            v = (i >= 0 && i <= 1000000) ? (long)i : -1;
        } else if (json_is_string(bits)) {
            const char *s = json_string_value(bits);
            char *end = NULL;
            errno = 0;
            v = strtol(s, &end, 10);
            if (errno || !*s || *end || v < 0)
                v = -1;
        }
        if (v != 0 && (v < 1024 || v > 8192)) {
            if (ve)
                verr_add(ve, "caCert.RSAbits", "must be between 1024 and 8192");
            rc = err_set(e, "caCert.RSAbits: must be between 1024 and 8192");
        } else {
            c->rsa_bits = v;
        }
    }
    const json_t *exp = json_object_get(cc, "expiration");
    if (exp && !json_is_null(exp)) {
        struct err pe;
        if (!json_is_string(exp)) {
            if (ve)
                verr_add(ve, "caCert.expiration", "must be a string");
            rc = err_set(e, "caCert.expiration: must be a string");
        } else if (json_string_length(exp) > 0 &&
                   ca_parse_duration(json_string_value(exp), &c->expiration_ns, &pe) != 0) {
            if (ve)
                verr_add(ve, "caCert.expiration", "%s", pe.msg);
            rc = err_set(e, "%s", pe.msg);
        } else if (json_string_length(exp) > 0 && c->expiration_ns <= 0) {
            if (ve)
                verr_add(ve, "caCert.expiration", "must be greater than 0");
            rc = err_set(e, "caCert.expiration: must be greater than 0");
        }
    }
    const json_t *kt = json_object_get(cc, "keyType");
    if (kt && !json_is_null(kt)) {
        if (!json_is_string(kt) || ca_key_type_parse(json_string_value(kt), &c->key_type) != 0) {
            if (ve)
                verr_add(ve, "caCert.keyType", "must be one of: rsa, ecdsa");
            rc = err_set(e, "caCert.keyType: must be one of: rsa, ecdsa");
        }
    }
    return rc;
}

void ca_builtin_validate_conf(const json_t *conf, struct verr *ve)
{
    struct builtin_conf c;
    (void)builtin_conf_read(conf, &c, ve, NULL);
}

int ca_builtin_generate(const char *mesh, const json_t *conf, enum ca_key_type key_type,
                        char **cert_pem, char **key_pem, struct err *e)
{
    struct builtin_conf c;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    char *uri = NULL;
    int rc = -1;

    if (!ca__valid_trust_domain(mesh))
        return err_set(e, "invalid mesh name \"%s\": not usable as a SPIFFE trust domain",
                       mesh ? mesh : "");
    if (builtin_conf_read(conf, &c, NULL, e) != 0)
        return -1;
    if (key_type == CA_KEY_DEFAULT)
        key_type = c.key_type != CA_KEY_DEFAULT ? c.key_type : CA_KEY_RSA;

    key = ca__keygen(key_type, (int)c.rsa_bits, e);
    if (!key)
        goto out;
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3)) {
        ca__ossl_err(e, "out of memory");
        goto out;
    }
    /* Kuma's root CA has serial 0. */
    if (!ASN1_INTEGER_set(X509_get_serialNumber(x), 0)) {
        ca__ossl_err(e, "out of memory");
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (ca__name_add(name, NID_organizationName, "Kuma", e) ||
        ca__name_add(name, NID_organizationalUnitName, "Mesh", e) ||
        ca__name_add(name, NID_commonName, mesh, e))
        goto out;
    if (!X509_set_issuer_name(x, name)) {
        ca__ossl_err(e, "out of memory");
        goto out;
    }
    int64_t now = now_ns() / NS_PER_S;
    int64_t life = c.expiration_ns ? c.expiration_ns / NS_PER_S : 10LL * 365 * 24 * 3600;
    if (ca__set_validity(x, now - 10, now + life, e))
        goto out;
    if (!X509_set_pubkey(x, key)) {
        ca__ossl_err(e, "out of memory");
        goto out;
    }
    uri = xasprintf("spiffe://%s", mesh);
    struct ca__san san = {CA__SAN_URI, uri};
    if (ca__add_key_usage(x, CA__KU_KEY_CERT_SIGN | CA__KU_CRL_SIGN, e) ||
        ca__add_basic_constraints(x, 1, e) || ca__add_subject_key_id(x, e) ||
        ca__add_san(x, &san, 1, 0, e) || ca__sign(x, key, e))
        goto out;
    if (ca__export_pems(x, key, cert_pem, key_pem, e))
        goto out;
    rc = 0;
out:
    free(uri);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- DataSource ------------------------------------------------------------ */

/* The single source key of a DataSource object, or NULL (with a conversion
 * error in e) when the shape is wrong. An empty object yields "" (no source). */
static const char *ds_kind(const json_t *ds, struct err *e)
{
    static const char *const kinds[] = {"secret", "inline", "inlineString", "file"};
    const char *found = "";
    if (!json_is_object(ds)) {
        err_set(e, "expected an object");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const json_t *v = json_object_get(ds, kinds[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_string(v)) {
            err_set(e, "%s: expected a string", kinds[i]);
            return NULL;
        }
        if (*found) {
            err_set(e, "only one of secret, inline, inlineString, file may be set");
            return NULL;
        }
        found = kinds[i];
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ds, k, v)
    {
        int known = 0;
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            known |= strcmp(k, kinds[i]) == 0;
        if (!known) {
            err_set(e, "unknown field \"%s\"", k);
            return NULL;
        }
    }
    if (strcmp(found, "inline") == 0) {
        const json_t *v2 = json_object_get(ds, "inline");
        size_t n = 0;
        unsigned char *d = ca__b64_decode_any(json_string_value(v2), json_string_length(v2), &n);
        if (!d) {
            err_set(e, "inline: illegal base64 data");
            return NULL;
        }
        free(d);
    }
    return found;
}

void ca_datasource_validate(const json_t *ds, struct verr *ve)
{
    struct err e;
    const char *kind = ds ? ds_kind(ds, &e) : "";
    if (!kind) {
        verr_add(ve, "", "could not convert backend config: %s", e.msg);
        return;
    }
    if (!*kind) {
        verr_add(ve, "", "data source has to be chosen. Available sources: secret, file, inline");
        return;
    }
    const json_t *v = json_object_get(ds, kind);
    if (strcmp(kind, "inlineString") != 0 && json_string_length(v) == 0)
        verr_add(ve, kind, "cannot be empty");
}

/* Reads a whole file of at most CA_PEM_MAX bytes; errors read like Go's os.ReadFile. */
static int read_bounded_file(const char *path, char **data, size_t *len, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s", strerror(errno));
        msg[0] = (char)tolower((unsigned char)msg[0]);
        return err_set(e, "open %s: %s", path, msg);
    }
    struct buf b;
    buf_init(&b, CA_PEM_MAX);
    char chunk[8192];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "%s", strerror(errno));
            msg[0] = (char)tolower((unsigned char)msg[0]);
            rc = err_set(e, "read %s: %s", path, msg);
            break;
        }
        if (n == 0)
            break;
        if (buf_append(&b, chunk, (size_t)n) != 0) {
            rc = err_set(e, "read %s: file larger than %d bytes", path, CA_PEM_MAX);
            break;
        }
    }
    close(fd);
    if (rc) {
        buf_free(&b);
        return rc;
    }
    *len = b.len;
    *data = xmalloc(b.len + 1);
    if (b.len)
        memcpy(*data, b.data, b.len);
    (*data)[b.len] = '\0';
    buf_free(&b);
    return 0;
}

int ca_datasource_load(const json_t *ds, const char *mesh, ca_secret_fetch_fn *fetch, void *ud,
                       char **data, size_t *len, struct err *e)
{
    struct err ce;
    const char *kind = ds ? ds_kind(ds, &ce) : "";
    if (!kind)
        return err_set(e, "could not convert backend config: %s", ce.msg);
    if (!*kind)
        return err_set(e, "unsupported type of the DataSource");
    const json_t *v = json_object_get(ds, kind);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);

    if (strcmp(kind, "secret") == 0) {
        if (!fetch)
            return err_set(e, "could not load data: no secret source");
        struct err fe = {{0}};
        char *d = NULL;
        size_t dl = 0;
        int rc = fetch(ud, mesh ? mesh : "", s, &d, &dl, &fe);
        if (rc == CA_NOT_FOUND)
            return err_set(
                e,
                "could not load data: Resource not found: type=\"Secret\" name=\"%s\" mesh=\"%s\"",
                s, mesh ? mesh : "");
        if (rc != 0)
            return err_set(e, "could not load data: %s", fe.msg);
        if (dl > CA_PEM_MAX) {
            free(d);
            return err_set(e, "could not load data: secret \"%s\" is larger than %d bytes", s,
                           CA_PEM_MAX);
        }
        *data = d;
        *len = dl;
        return 0;
    }
    if (strcmp(kind, "inline") == 0) {
        size_t dl = 0;
        unsigned char *d = ca__b64_decode_any(s, n, &dl);
        if (!d)
            return err_set(e, "could not convert backend config: inline: illegal base64 data");
        *data = (char *)d;
        *len = dl;
        return 0;
    }
    if (strcmp(kind, "inlineString") == 0) {
        if (n > CA_PEM_MAX)
            return err_set(e, "could not load data: inlineString is larger than %d bytes",
                           CA_PEM_MAX);
        *data = xstrndup(s, n);
        *len = n;
        return 0;
    }
    struct err fe;
    if (read_bounded_file(s, data, len, &fe) != 0)
        return err_set(e, "could not load data: %s", fe.msg);
    return 0;
}

/* ---- provided CA ----------------------------------------------------------- */

/* The PEM blocks of a text: names and DER bytes, in order. */
struct pem_blocks {
    char **names;
    unsigned char **der;
    long *len;
    size_t n;
};

static void pem_blocks_free(struct pem_blocks *b)
{
    for (size_t i = 0; i < b->n; i++) {
        OPENSSL_free(b->names[i]);
        OPENSSL_free(b->der[i]);
    }
    free(b->names);
    free(b->der);
    free(b->len);
    memset(b, 0, sizeof(*b));
}

/* Splits text into PEM blocks the way Go's pem.Decode walks it (text between
 * blocks is skipped). Stops at the first block OpenSSL cannot decode. */
static void pem_blocks_read(const char *text, struct pem_blocks *out)
{
    memset(out, 0, sizeof(*out));
    if (!text)
        return;
    size_t n = strnlen(text, CA_PEM_MAX + 1);
    if (n > CA_PEM_MAX)
        return;
    BIO *b = BIO_new_mem_buf(text, (int)n);
    if (!b)
        return;
    for (size_t cap = 0; out->n < 64;) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long len = 0;
        if (!PEM_read_bio(b, &name, &header, &der, &len))
            break;
        OPENSSL_free(header);
        if (out->n == cap) {
            cap = cap ? cap * 2 : 4;
            out->names = xrealloc(out->names, cap * sizeof(*out->names));
            out->der = xrealloc(out->der, cap * sizeof(*out->der));
            out->len = xrealloc(out->len, cap * sizeof(*out->len));
        }
        out->names[out->n] = name;
        out->der[out->n] = der;
        out->len[out->n] = len;
        out->n++;
    }
    ERR_clear_error();
    BIO_free(b);
}

/* Go's fmt %v of a []string: "[a b c]". */
static void go_list(char *dst, size_t cap, char *const *items, size_t n)
{
    size_t o = (size_t)snprintf(dst, cap, "[");
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(dst + o, cap - o, "%s%s", i ? " " : "", items[i]);
    if (o < cap)
        snprintf(dst + o, cap - o, "]");
}

/*
 * Reproduces Go's tls.X509KeyPair: collects the CERTIFICATE blocks of
 * cert_pem (returned in certs), finds the key block, parses both and checks
 * that they match. Returns 0, or -1 with Go's error text in e.
 */
static int provided_keypair(const char *cert_pem, const char *key_pem, struct pem_blocks *certs,
                            struct err *e)
{
    struct pem_blocks cb, kb;
    char *skipped[64];
    size_t nskipped = 0;
    int rc = -1;
    X509 *leaf = NULL;
    EVP_PKEY *priv = NULL;

    memset(certs, 0, sizeof(*certs));
    pem_blocks_read(cert_pem, &cb);
    pem_blocks_read(key_pem, &kb);

    certs->names = xcalloc(cb.n + 1, sizeof(char *));
    certs->der = xcalloc(cb.n + 1, sizeof(unsigned char *));
    certs->len = xcalloc(cb.n + 1, sizeof(long));
    for (size_t i = 0; i < cb.n; i++) {
        if (strcmp(cb.names[i], "CERTIFICATE") == 0) {
            certs->names[certs->n] = cb.names[i];
            certs->der[certs->n] = cb.der[i];
            certs->len[certs->n] = cb.len[i];
            certs->n++;
            cb.names[i] = NULL;
            cb.der[i] = NULL;
        } else {
            skipped[nskipped++] = cb.names[i];
        }
    }
    if (certs->n == 0) {
        char list[512];
        if (nskipped == 0)
            err_set(e, "tls: failed to find any PEM data in certificate input");
        else if (nskipped == 1 && str_has_suffix(skipped[0], "PRIVATE KEY"))
            err_set(e, "tls: failed to find certificate PEM data in certificate input, but did "
                       "find a private key; PEM inputs may have been switched");
        else {
            go_list(list, sizeof(list), skipped, nskipped);
            err_set(e,
                    "tls: failed to find \"CERTIFICATE\" PEM block in certificate input "
                    "after skipping PEM blocks of the following types: %s",
                    list);
        }
        goto out;
    }

    long key_idx = -1;
    nskipped = 0;
    for (size_t i = 0; i < kb.n; i++) {
        if (strcmp(kb.names[i], "PRIVATE KEY") == 0 ||
            str_has_suffix(kb.names[i], " PRIVATE KEY")) {
            key_idx = (long)i;
            break;
        }
        skipped[nskipped++] = kb.names[i];
    }
    if (key_idx < 0) {
        char list[512];
        if (nskipped == 0)
            err_set(e, "tls: failed to find any PEM data in key input");
        else if (nskipped == 1 && strcmp(skipped[0], "CERTIFICATE") == 0)
            err_set(e, "tls: found a certificate rather than a key in the PEM for the private key");
        else {
            go_list(list, sizeof(list), skipped, nskipped);
            err_set(e,
                    "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key "
                    "input after skipping PEM blocks of the following types: %s",
                    list);
        }
        goto out;
    }

    const unsigned char *p = certs->der[0];
    leaf = d2i_X509(NULL, &p, certs->len[0]);
    if (!leaf || p != certs->der[0] + certs->len[0]) {
        err_set(e, "x509: malformed certificate");
        goto out;
    }
    p = kb.der[key_idx];
    priv = d2i_AutoPrivateKey(NULL, &p, kb.len[key_idx]);
    if (!priv) {
        err_set(e, "tls: failed to parse private key");
        goto out;
    }
    EVP_PKEY *pub = X509_get0_pubkey(leaf);
    if (!pub ||
        !(EVP_PKEY_is_a(pub, "RSA") || EVP_PKEY_is_a(pub, "EC") || EVP_PKEY_is_a(pub, "ED25519"))) {
        err_set(e, "tls: unknown public key algorithm");
        goto out;
    }
    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_get_base_id(priv)) {
        err_set(e, "tls: private key type does not match public key type");
        goto out;
    }
    if (EVP_PKEY_eq(pub, priv) != 1) {
        err_set(e, "tls: private key does not match public key");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_free(leaf);
    EVP_PKEY_free(priv);
    pem_blocks_free(&cb);
    pem_blocks_free(&kb);
    if (rc)
        pem_blocks_free(certs);
    return rc;
}

void ca_provided_validate(const char *cert_pem, const char *key_pem, struct verr *ve)
{
    struct pem_blocks certs;
    struct err e;
    if ((cert_pem && strnlen(cert_pem, CA_PEM_MAX + 1) > CA_PEM_MAX) ||
        (key_pem && strnlen(key_pem, CA_PEM_MAX + 1) > CA_PEM_MAX)) {
        verr_add(ve, "cert", "not a valid TLS key pair: input larger than %d bytes", CA_PEM_MAX);
        return;
    }
    if (provided_keypair(cert_pem, key_pem, &certs, &e) != 0) {
        verr_add(ve, "cert", "not a valid TLS key pair: %s", e.msg);
        return;
    }
    for (size_t i = 0; i < certs.n; i++) {
        char *path = path_index("cert", i);
        const unsigned char *p = certs.der[i];
        X509 *x = d2i_X509(NULL, &p, certs.len[i]);
        if (!x) {
            ERR_clear_error();
            verr_add(ve, path, "not a valid x509 certificate: x509: malformed certificate");
            free(path);
            break;
        }
        uint32_t flags = X509_get_extension_flags(x);
        uint32_t ku = (flags & EXFLAG_KUSAGE) ? X509_get_key_usage(x) : 0;
        if (!(flags & EXFLAG_CA))
            verr_add(ve, path,
                     "basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. "
                     "Basic Constraints)");
        if (!(ku & KU_KEY_CERT_SIGN))
            verr_add(ve, path,
                     "key usage extension 'keyCertSign' must be set (see X509-SVID: "
                     "4.3. Key Usage)");
        if (ku & KU_KEY_AGREEMENT)
            verr_add(ve, path,
                     "key usage extension 'keyAgreement' must NOT be set (see "
                     "X509-SVID: Appendix A. X.509 Field Reference)");
        X509_free(x);
        free(path);
    }
    ERR_clear_error();
    pem_blocks_free(&certs);
}

int ca_provided_load(const char *mesh, const json_t *conf, ca_secret_fetch_fn *fetch, void *ud,
                     char **cert_pem, char **key_pem, struct err *e)
{
    const json_t *cds = json_is_object(conf) ? json_object_get(conf, "cert") : NULL;
    const json_t *kds = json_is_object(conf) ? json_object_get(conf, "key") : NULL;
    char *cert = NULL, *key = NULL;
    size_t cl = 0, kl = 0;
    if (!cds || !kds)
        return err_set(e, "provided CA needs both cert and key");
    /* Kuma loads the key first. */
    if (ca_datasource_load(kds, mesh, fetch, ud, &key, &kl, e) != 0)
        return -1;
    if (ca_datasource_load(cds, mesh, fetch, ud, &cert, &cl, e) != 0) {
        free(key);
        return -1;
    }
    *cert_pem = cert;
    *key_pem = key;
    return 0;
}

void ca_provided_validate_backend(const char *mesh, const json_t *conf, ca_secret_fetch_fn *fetch,
                                  void *ud, struct verr *ve)
{
    struct err ce;
    if (conf && !json_is_null(conf) && !json_is_object(conf)) {
        verr_add(ve, "", "could not convert backend config: expected an object");
        return;
    }
    const json_t *cds = conf ? json_object_get(conf, "cert") : NULL;
    const json_t *kds = conf ? json_object_get(conf, "key") : NULL;
    if (cds && json_is_null(cds))
        cds = NULL;
    if (kds && json_is_null(kds))
        kds = NULL;
    /* Shape errors are conversion errors in Kuma (util_proto.ToTyped). */
    if ((cds && !ds_kind(cds, &ce)) || (kds && !ds_kind(kds, &ce))) {
        verr_add(ve, "", "could not convert backend config: %s", ce.msg);
        return;
    }

    struct verr local = {0};
    if (!cds)
        verr_add(&local, "cert", "has to be defined");
    else {
        struct verr d = {0};
        ca_datasource_validate(cds, &d);
        verr_add_prefixed(&local, "cert", &d);
        verr_free(&d);
    }
    if (!kds)
        verr_add(&local, "key", "has to be defined");
    else {
        struct verr d = {0};
        ca_datasource_validate(kds, &d);
        verr_add_prefixed(&local, "key", &d);
        verr_free(&d);
    }
    if (verr_empty(&local)) {
        char *cert = NULL, *key = NULL;
        struct err le;
        if (ca_provided_load(mesh, conf, fetch, ud, &cert, &key, &le) != 0) {
            verr_add(&local, "cert", "%s", le.msg);
            verr_add(&local, "key", "%s", le.msg);
        } else {
            ca_provided_validate(cert, key, &local);
        }
        free(cert);
        free(key);
    }
    verr_add_prefixed(ve, "", &local);
    verr_free(&local);
}
