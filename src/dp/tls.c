/*
 * tls — SSL_CTX construction from PEM secrets, the verify callback with the
 * URI SAN check, ALPN selection and peer-identity helpers (see tls.h).
 */
#include "dp/tls.h"

#include "core/tlsfast.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static int ex_idx = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

/* Peer certificates on OpenSSL 3.0: the legacy EC key methods of
 * core/tlsfast.h decode a peer's P-256 certificate ~6x faster (about a third
 * of an mTLS handshake's CPU on each side). kuma-dp generates no EC keys (its
 * keys come from the control plane), so it may turn them on;
 * DP_TLS_NO_LEGACY_EC=1 turns them off for A/B measurements, or if a future
 * OpenSSL misbehaves. */
int dp_tls_enable_fast_ec_keys(void)
{
    return (tls_fast_pkeys_enable(TLS_FAST_EC, "DP_TLS_NO_LEGACY_EC") & TLS_FAST_EC) != 0;
}

/*
 * Verified-chain cache, one per SSL_CTX (so per trust store and snapshot).
 * A mesh peer presents the same leaf on every connection, and checking its
 * CA signature again is one of the two ECDSA verifications of each side's
 * handshake (~1/5 of its instructions). A leaf that arrives alone and
 * byte-identical (X509_cmp: SHA-1 of the DER and the whole TBS) to one that
 * verified under this context is taken as verified while every certificate
 * of its chain is within notAfter. The URI SAN check still runs per
 * connection, and libssl still verifies the peer's CertificateVerify
 * signature, i.e. possession of the key, on every handshake.
 */
#define VCACHE_MAX 64

struct vcache {
    pthread_mutex_t mu;
    X509 *leaf[VCACHE_MAX];
    STACK_OF(X509) * chain[VCACHE_MAX];
    size_t n, next;
};

static int vcache_idx = -1;

static void vcache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct vcache *vc = ptr;
    if (!vc)
        return;
    for (size_t i = 0; i < vc->n; i++) {
        X509_free(vc->leaf[i]);
        sk_X509_pop_free(vc->chain[i], X509_free);
    }
    pthread_mutex_destroy(&vc->mu);
    free(vc);
}

static void ex_init(void)
{
    ex_idx = SSL_get_ex_new_index(0, "dp_tls_verify", NULL, NULL, NULL);
    vcache_idx = SSL_CTX_get_ex_new_index(0, "dp_tls_vcache", NULL, NULL, vcache_free);
}

void dp_tls_errors(char *out, size_t outlen)
{
    size_t used = 0;
    unsigned long code;
    out[0] = 0;
    while ((code = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(code, one, sizeof(one));
        int n = snprintf(out + used, outlen - used, "%s%s", used ? "; " : "", one);
        if (n < 0 || (size_t)n >= outlen - used)
            break;
        used += (size_t)n;
    }
    ERR_clear_error();
}

int dp_string_match(const struct dp_string_matcher *m, const char *s)
{
    size_t ls = strlen(s), lv = strlen(m->value);
    switch (m->kind) {
    case DP_MATCH_EXACT:
        return strcmp(s, m->value) == 0;
    case DP_MATCH_PREFIX:
        return ls >= lv && memcmp(s, m->value, lv) == 0;
    case DP_MATCH_SUFFIX:
        return ls >= lv && memcmp(s + ls - lv, m->value, lv) == 0;
    }
    return 0;
}

/* Calls fn on each URI SAN of cert until it returns nonzero; returns that. */
static int each_uri(X509 *cert, int (*fn)(const char *uri, const void *arg), const void *arg,
                    char *first, size_t firstlen)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int r = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !r; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *s = gn->d.uniformResourceIdentifier;
        char uri[512];
        if (s->length <= 0 || (size_t)s->length >= sizeof(uri))
            continue;
        memcpy(uri, s->data, (size_t)s->length);
        uri[s->length] = 0;
        if (memchr(uri, 0, (size_t)s->length))
            continue; /* embedded NUL: never matches */
        if (first) {
            snprintf(first, firstlen, "%s", uri);
            r = 1;
        } else {
            r = fn(uri, arg);
        }
    }
    GENERAL_NAMES_free(names);
    return r;
}

static int match_any(const char *uri, const void *arg)
{
    const struct dp_tls_verify *v = arg;
    for (size_t i = 0; i < v->n_sans; i++)
        if (dp_string_match(&v->sans[i], uri))
            return 1;
    return 0;
}

static int match_one(const char *uri, const void *arg)
{
    return dp_string_match(arg, uri);
}

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct dp_tls_verify *v = ssl ? SSL_get_ex_data(ssl, ex_idx) : NULL;
    if (!v)
        return ok;
    if (!ok) {
        if (!v->chain_failed) {
            v->chain_failed = 1;
            v->verify_error = X509_STORE_CTX_get_error(xs);
        }
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(xs) != 0 || v->n_sans == 0)
        return 1;
    if (!each_uri(X509_STORE_CTX_get_current_cert(xs), match_any, v, NULL, 0)) {
        v->san_failed = 1;
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

static int chain_current(STACK_OF(X509) * chain)
{
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (X509_cmp_current_time(X509_get0_notAfter(sk_X509_value(chain, i))) <= 0)
            return 0;
    return 1;
}

/* Replaces X509_verify_cert for the proxy's contexts: the cache above, else
 * the full verification (with verify_cb), whose success is remembered. */
static int cert_verify_cb(X509_STORE_CTX *xs, void *arg)
{
    struct vcache *vc = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    STACK_OF(X509) *peer = X509_STORE_CTX_get0_untrusted(xs);
    int cacheable = vc && leaf && peer && sk_X509_num(peer) == 1;
    if (cacheable) {
        STACK_OF(X509) *hit = NULL;
        pthread_mutex_lock(&vc->mu);
        for (size_t i = 0; i < vc->n && !hit; i++)
            if (X509_cmp(vc->leaf[i], leaf) == 0)
                hit = X509_chain_up_ref(vc->chain[i]);
        pthread_mutex_unlock(&vc->mu);
        if (hit && chain_current(hit)) {
            X509_STORE_CTX_set0_verified_chain(xs, hit);
            SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
            struct dp_tls_verify *v = ssl ? SSL_get_ex_data(ssl, ex_idx) : NULL;
            if (v && v->n_sans && !each_uri(leaf, match_any, v, NULL, 0)) {
                v->san_failed = 1;
                X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
                return 0;
            }
            return 1;
        }
        sk_X509_pop_free(hit, X509_free); /* expired since: verify afresh */
    }
    int ok = X509_verify_cert(xs) > 0;
    STACK_OF(X509) *chain = ok && cacheable ? X509_STORE_CTX_get1_chain(xs) : NULL;
    if (!chain)
        return ok;
    pthread_mutex_lock(&vc->mu);
    int known = 0;
    for (size_t i = 0; i < vc->n && !known; i++)
        known = X509_cmp(vc->leaf[i], leaf) == 0; /* another worker was first */
    if (!known && X509_up_ref(leaf)) {
        size_t i;
        if (vc->n < VCACHE_MAX) {
            i = vc->n++;
        } else { /* full: replace the oldest */
            i = vc->next;
            vc->next = (vc->next + 1) % VCACHE_MAX;
            X509_free(vc->leaf[i]);
            sk_X509_pop_free(vc->chain[i], X509_free);
        }
        vc->leaf[i] = leaf;
        vc->chain[i] = chain;
        chain = NULL;
    }
    pthread_mutex_unlock(&vc->mu);
    sk_X509_pop_free(chain, X509_free);
    return ok;
}

/* Installs the cache on a context that verifies its peers. */
static int vcache_attach(SSL_CTX *ctx)
{
    struct vcache *vc = calloc(1, sizeof(*vc));
    if (!vc)
        return -1;
    pthread_mutex_init(&vc->mu, NULL);
    if (SSL_CTX_set_ex_data(ctx, vcache_idx, vc) != 1) {
        pthread_mutex_destroy(&vc->mu);
        free(vc);
        return -1;
    }
    SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, vc);
    return 0;
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned inlen, void *arg)
{
    struct dp_tls_verify *v = SSL_get_ex_data(ssl, ex_idx);
    if (!v || !v->alpn || !v->alpn_len)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, v->alpn, v->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct dp_tls_verify *v = SSL_get_ex_data(ssl, ex_idx);
    if (!v || !v->on_session || v->chain_failed || v->san_failed)
        return 0;
    v->on_session(v->owner, sess);
    return 1; /* the callee owns the reference now */
}

static SSL_CTX *ctx_common(const SSL_METHOD *m, const struct dp_secret *identity,
                           const struct dp_secret *ca, struct err *e)
{
    pthread_once(&ex_once, ex_init);
    SSL_CTX *ctx = SSL_CTX_new(m);
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    char why[512];
    if (!ctx) {
        dp_tls_errors(why, sizeof(why));
        err_set(e, "SSL_CTX_new: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* AES-128-GCM first, as Envoy (BoringSSL) prefers it with AES-NI. */
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                  "TLS_CHACHA20_POLY1305_SHA256");
    /* Envoy's default key-exchange order; the client sends one key share,
     * for X25519 (P-256 measured the same per handshake here). */
    SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    /* Partial writes and moving buffers: the proxy writes from a ring it may
     * refill; released buffers keep idle TLS connections small. No automatic
     * chain: present exactly certificate_chain, as Envoy does, instead of
     * libssl building (and verifying, one ECDSA verification) our own chain
     * from the trust store on every handshake. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    /* Read whole flights and records with one recv instead of a header and
     * a body read per record (the proxy checks SSL_has_pending). */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (identity) {
        if (!identity->certificate_chain || !identity->private_key) {
            err_set(e, "secret %s: no tls_certificate", identity->name);
            goto fail;
        }
        bio = BIO_new_mem_buf(identity->certificate_chain, -1);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
            dp_tls_errors(why, sizeof(why));
            err_set(e, "secret %s: bad certificate_chain: %s", identity->name, why);
            goto fail;
        }
        X509_free(x);
        x = NULL;
        X509 *extra;
        while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
            if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
                X509_free(extra);
                err_set(e, "secret %s: bad chain certificate", identity->name);
                goto fail;
            }
        ERR_clear_error(); /* the end of the PEM stream leaves an error */
        BIO_free(bio);
        bio = BIO_new_mem_buf(identity->private_key, -1);
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
            dp_tls_errors(why, sizeof(why));
            err_set(e, "secret %s: bad private_key: %s", identity->name, why);
            goto fail;
        }
        EVP_PKEY_free(key);
        key = NULL;
        BIO_free(bio);
        bio = NULL;
    }
    if (ca) {
        if (!ca->trusted_ca) {
            err_set(e, "secret %s: no validation_context", ca->name);
            goto fail;
        }
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        bio = BIO_new_mem_buf(ca->trusted_ca, -1);
        int n = 0;
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            if (X509_STORE_add_cert(store, x) == 1)
                n++;
            X509_free(x);
            x = NULL;
        }
        ERR_clear_error();
        BIO_free(bio);
        bio = NULL;
        if (n == 0) {
            err_set(e, "secret %s: no certificate in trusted_ca", ca->name);
            goto fail;
        }
    }
    return ctx;
fail:
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *dp_tls_server_ctx(const struct dp_secret *identity, const struct dp_secret *ca,
                           int require_client_cert, struct err *e)
{
    if (!identity) {
        err_set(e, "a server TLS context needs a tls_certificate");
        return NULL;
    }
    SSL_CTX *ctx = ctx_common(TLS_server_method(), identity, ca, e);
    if (!ctx)
        return NULL;
    int mode = SSL_VERIFY_NONE;
    if (ca)
        mode = SSL_VERIFY_PEER | (require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ctx, mode, verify_cb);
    if (ca && vcache_attach(ctx) != 0) {
        SSL_CTX_free(ctx);
        err_set(e, "out of memory");
        return NULL;
    }
    /* Resumption (proxies keep one session per cluster, as Envoy's upstream
     * contexts do). Stateful tickets: a bounded in-memory cache per context.
     * Measured on OpenSSL 3.0, stateless tickets cost ~1.7x more CPU per
     * connection (EVP fetches for the ticket cipher and MAC on every
     * handshake). One ticket per handshake; TLS 1.3 tickets are single-use. */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 256);
    SSL_CTX_set_timeout(ctx, 300);
    /* Required for resumption when client certificates are verified. */
    static const unsigned char sid_ctx[] = "kuma-dp";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
    return ctx;
}

SSL_CTX *dp_tls_client_ctx(const struct dp_secret *identity, const struct dp_secret *ca,
                           struct err *e)
{
    SSL_CTX *ctx = ctx_common(TLS_client_method(), identity, ca, e);
    if (!ctx)
        return NULL;
    SSL_CTX_set_verify(ctx, ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, verify_cb);
    if (ca && vcache_attach(ctx) != 0) {
        SSL_CTX_free(ctx);
        err_set(e, "out of memory");
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    return ctx;
}

/* The proxy's socket BIO: OpenSSL's socket BIO plus a "drained" report, so
 * that after a short read the proxy waits for epoll instead of spending a
 * recv on EAGAIN (as it does on plaintext sockets), and a hold: while held,
 * writes (and flushes) are kept in `held` and go out later with the next
 * write, in one sendmsg (see dp_tls_hold). */
struct sock_bio {
    int fd;
    int hold;
    int *drained;
    unsigned char *held;
    size_t held_len, held_cap;
};

/* Sends held bytes, then `len` bytes of `in`, in one sendmsg; returns the
 * bytes of `in` sent (0 if only held bytes went), or -1 with errno. */
static ssize_t send_held(struct sock_bio *sb, const char *in, size_t len)
{
    struct iovec iov[2] = {{sb->held, sb->held_len}, {(void *)in, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    ssize_t r = sendmsg(sb->fd, &mh, MSG_NOSIGNAL);
    if (r < 0)
        return -1;
    size_t sent = (size_t)r;
    if (sent < sb->held_len) {
        memmove(sb->held, sb->held + sent, sb->held_len - sent);
        sb->held_len -= sent;
        return 0;
    }
    sent -= sb->held_len;
    sb->held_len = 0;
    return (ssize_t)sent;
}

static BIO_METHOD *sock_meth;
static int sock_type; /* its BIO type, to recognise our BIO under an SSL */
static pthread_once_t sock_once = PTHREAD_ONCE_INIT;

static int sock_bio_read(BIO *b, char *out, int len)
{
    struct sock_bio *sb = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (*sb->drained) {
        /* Empty at the last recv and not reported readable since (the
         * caller clears the flag on epoll's EPOLLIN): EAGAIN without asking.
         * Typical: the handshake reading the peer's answer right after
         * sending its own flight. Level-triggered epoll reports data that
         * arrived meanwhile. */
        BIO_set_retry_read(b);
        return -1;
    }
    ssize_t r = recv(sb->fd, out, (size_t)len, 0);
    if (r < len)
        *sb->drained = 1; /* short, EOF or error: nothing more queued now */
    if (r >= 0)
        return (int)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_read(b);
    return -1;
}

static int sock_bio_write(BIO *b, const char *in, int len)
{
    struct sock_bio *sb = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (sb->hold && len > 0) {
        if (sb->held_len + (size_t)len > sb->held_cap) {
            size_t cap = (sb->held_len + (size_t)len) * 2;
            unsigned char *p = realloc(sb->held, cap);
            if (!p)
                return -1;
            sb->held = p;
            sb->held_cap = cap;
        }
        memcpy(sb->held + sb->held_len, in, (size_t)len);
        sb->held_len += (size_t)len;
        return len;
    }
    ssize_t r;
    if (sb->held_len) {
        r = send_held(sb, in, (size_t)len);
        if (r == 0) { /* only (part of) the held bytes went: retry this write */
            BIO_set_retry_write(b);
            return -1;
        }
    } else {
        r = send(sb->fd, in, (size_t)len, MSG_NOSIGNAL);
    }
    if (r >= 0)
        return (int)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(b);
    return -1;
}

static long sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    struct sock_bio *sb = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        if (!sb || sb->hold || !sb->held_len)
            return 1;
        BIO_clear_retry_flags(b);
        if (send_held(sb, NULL, 0) < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (!sb->held_len)
            return 1;
        BIO_set_retry_write(b);
        return 0;
    case BIO_C_GET_FD:
        if (!sb)
            return -1;
        if (ptr)
            *(int *)ptr = sb->fd;
        return sb->fd;
    default:
        return 0;
    }
}

static int sock_bio_destroy(BIO *b)
{
    struct sock_bio *sb = BIO_get_data(b);
    if (sb)
        free(sb->held);
    free(sb);
    BIO_set_data(b, NULL);
    return 1;
}

static void sock_meth_init(void)
{
    int type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
    BIO_METHOD *m = BIO_meth_new(type, "kuma-dp socket");
    if (m && BIO_meth_set_read(m, sock_bio_read) && BIO_meth_set_write(m, sock_bio_write) &&
        BIO_meth_set_ctrl(m, sock_bio_ctrl) && BIO_meth_set_destroy(m, sock_bio_destroy)) {
        sock_meth = m;
        sock_type = type;
        return;
    }
    BIO_meth_free(m);
}

int dp_tls_set_socket(SSL *ssl, int fd, int *drained)
{
    pthread_once(&sock_once, sock_meth_init);
    struct sock_bio *sb = sock_meth ? calloc(1, sizeof(*sb)) : NULL;
    BIO *b = sb ? BIO_new(sock_meth) : NULL;
    if (!b) {
        free(sb);
        ERR_clear_error();
        return -1;
    }
    sb->fd = fd;
    sb->drained = drained;
    BIO_set_data(b, sb);
    BIO_set_init(b, 1);
    SSL_set_bio(ssl, b, b); /* one reference, read and write */
    return 0;
}

static struct sock_bio *sock_of(SSL *ssl)
{
    BIO *b = SSL_get_wbio(ssl); /* ours, also under libssl's handshake buffer */
    return b && sock_type && BIO_method_type(b) == sock_type ? BIO_get_data(b) : NULL;
}

void dp_tls_hold(SSL *ssl, int on)
{
    struct sock_bio *sb = sock_of(ssl);
    if (sb)
        sb->hold = on;
}

int dp_tls_release(SSL *ssl)
{
    struct sock_bio *sb = sock_of(ssl);
    if (!sb || !sb->held_len)
        return 0;
    sb->hold = 0;
    if (send_held(sb, NULL, 0) < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return -1;
    return sb->held_len ? 1 : 0;
}

void dp_tls_set_verify(SSL *ssl, struct dp_tls_verify *v)
{
    pthread_once(&ex_once, ex_init);
    SSL_set_ex_data(ssl, ex_idx, v);
}

unsigned dp_tls_alpn_wire(char *const *protos, size_t n, unsigned char *out, unsigned cap)
{
    unsigned len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(protos[i]);
        if (l == 0 || l > 255 || len + 1 + l > cap)
            return 0;
        out[len++] = (unsigned char)l;
        memcpy(out + len, protos[i], l);
        len += (unsigned)l;
    }
    return len;
}

int dp_tls_peer_uri_matches(SSL *ssl, const struct dp_string_matcher *m)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    return peer ? each_uri(peer, match_one, m, NULL, 0) : 0;
}

static int principal_matches(SSL *ssl, const struct dp_rbac_principal *pr, int depth)
{
    if (depth > DP_RBAC_MAX_DEPTH)
        return 0;
    switch (pr->set) {
    case DP_RBAC_LEAF:
        return pr->any || (ssl && dp_tls_peer_uri_matches(ssl, &pr->principal_name));
    case DP_RBAC_AND:
        for (size_t i = 0; i < pr->n_ids; i++)
            if (!principal_matches(ssl, &pr->ids[i], depth + 1))
                return 0;
        return 1; /* Envoy: an empty and_ids matches */
    case DP_RBAC_OR:
        for (size_t i = 0; i < pr->n_ids; i++)
            if (principal_matches(ssl, &pr->ids[i], depth + 1))
                return 1;
        return 0;
    case DP_RBAC_NOT:
        return pr->n_ids == 1 && !principal_matches(ssl, &pr->ids[0], depth + 1);
    }
    return 0;
}

int dp_tls_peer_principal_matches(SSL *ssl, const struct dp_rbac_principal *pr)
{
    return principal_matches(ssl, pr, 0);
}

void dp_tls_peer_first_uri(SSL *ssl, char *out, size_t outlen)
{
    out[0] = 0;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer)
        each_uri(peer, NULL, NULL, out, outlen);
}
