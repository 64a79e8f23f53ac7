/*
 * Test helpers for the proxy engine (see dp_helpers.h).
 */
#include "dp_helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "test.h"

/* --- backends ------------------------------------------------------------------------------- */

#define MAX_BCONNS 512

struct backend {
    enum backend_mode mode;
    char id[64];
    int fd, port;
    pthread_t th;
    atomic_int stop, resumed;
    atomic_long accepted;
    atomic_uint_fast64_t received, hash;
    pthread_mutex_t mu;
    pthread_t conns[MAX_BCONNS];
    int cfds[MAX_BCONNS];
    atomic_int *done[MAX_BCONNS];
    int n_conns;
};

struct bconn {
    struct backend *b;
    int fd;
    atomic_int *done;
};

static void *bconn_main(void *arg)
{
    struct bconn *bc = arg;
    struct backend *b = bc->b;
    int fd = bc->fd;
    atomic_int *done = bc->done;
    free(bc);
    char buf[65536];
    switch (b->mode) {
    case BACKEND_ECHO:
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                break;
            if (write_full(fd, buf, (size_t)n) != 0)
                break;
        }
        shutdown(fd, SHUT_WR);
        break;
    case BACKEND_ID:
        write_full(fd, b->id, strlen(b->id));
        shutdown(fd, SHUT_WR);
        break;
    case BACKEND_REPLY_AFTER_EOF: {
        struct buf got;
        buf_init(&got, 1 << 20);
        ssize_t n;
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
            if (buf_append(&got, buf, (size_t)n) != 0)
                break;
        if (n == 0 && got.len)
            write_full(fd, got.data, got.len);
        shutdown(fd, SHUT_WR);
        buf_free(&got);
        break;
    }
    case BACKEND_BLAST: {
        while (recv(fd, buf, sizeof(buf), 0) > 0)
            ;
        char *blast = xmalloc(BLAST_BYTES);
        fill_random(blast, BLAST_BYTES, 7);
        write_full(fd, blast, BLAST_BYTES);
        free(blast);
        shutdown(fd, SHUT_WR);
        break;
    }
    case BACKEND_PAUSE: {
        while (!atomic_load(&b->resumed) && !atomic_load(&b->stop))
            usleep(1000);
        uint64_t h = 1469598103934665603ull;
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                break;
            h = fnv64(buf, (size_t)n, h);
            atomic_fetch_add(&b->received, (uint64_t)n);
            atomic_store(&b->hash, h);
        }
        break;
    }
    }
    atomic_store(done, 1);
    return NULL;
}

static void *backend_main(void *arg)
{
    struct backend *b = arg;
    for (;;) {
        int fd = accept(b->fd, NULL, NULL);
        if (fd < 0) {
            if (atomic_load(&b->stop))
                break;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        if (atomic_load(&b->stop)) {
            close(fd);
            break;
        }
        atomic_fetch_add(&b->accepted, 1);
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        pthread_mutex_lock(&b->mu);
        if (b->n_conns == MAX_BCONNS) {
            /* Reap finished threads to make room; live ones stay. */
            int kept = 0;
            for (int i = 0; i < b->n_conns; i++) {
                if (atomic_load(b->done[i])) {
                    pthread_join(b->conns[i], NULL);
                    close(b->cfds[i]);
                    free(b->done[i]);
                    continue;
                }
                b->conns[kept] = b->conns[i];
                b->cfds[kept] = b->cfds[i];
                b->done[kept++] = b->done[i];
            }
            b->n_conns = kept;
            if (kept == MAX_BCONNS)
                TEST_FAIL_("backend: more than %d live connections", MAX_BCONNS);
        }
        struct bconn *bc = xcalloc(1, sizeof(*bc));
        bc->b = b;
        bc->fd = fd;
        bc->done = xcalloc(1, sizeof(*bc->done));
        b->done[b->n_conns] = bc->done;
        b->cfds[b->n_conns] = fd;
        pthread_create(&b->conns[b->n_conns++], NULL, bconn_main, bc);
        pthread_mutex_unlock(&b->mu);
    }
    return NULL;
}

static int listen_loopback(int *port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, backlog) != 0)
        TEST_FAIL_("listen: %s", strerror(errno));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

struct backend *backend_start(enum backend_mode mode, const char *id)
{
    struct backend *b = xcalloc(1, sizeof(*b));
    b->mode = mode;
    snprintf(b->id, sizeof(b->id), "%s", id ? id : "");
    pthread_mutex_init(&b->mu, NULL);
    b->fd = listen_loopback(&b->port, 512);
    pthread_create(&b->th, NULL, backend_main, b);
    return b;
}

int backend_port(const struct backend *b)
{
    return b->port;
}

void backend_resume(struct backend *b)
{
    atomic_store(&b->resumed, 1);
}

uint64_t backend_received(struct backend *b)
{
    return atomic_load(&b->received);
}

uint64_t backend_hash(struct backend *b)
{
    return atomic_load(&b->hash);
}

long backend_accepted(struct backend *b)
{
    return atomic_load(&b->accepted);
}

void backend_stop(struct backend *b)
{
    atomic_store(&b->stop, 1);
    shutdown(b->fd, SHUT_RDWR);
    pthread_join(b->th, NULL);
    close(b->fd);
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n_conns; i++)
        shutdown(b->cfds[i], SHUT_RDWR);
    for (int i = 0; i < b->n_conns; i++) {
        pthread_join(b->conns[i], NULL);
        close(b->cfds[i]);
        free(b->done[i]);
    }
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int closed_port(void)
{
    int port;
    int fd = listen_loopback(&port, 1);
    close(fd);
    return port;
}

int blackhole_start(int fds[3])
{
    int port;
    fds[0] = listen_loopback(&port, 0);
    /* Fill the accept queue (backlog 0 holds one connection) so further SYNs
     * are dropped and connects hang. */
    for (int i = 1; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fds[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(50000);
    return port;
}

void blackhole_stop(int fds[3])
{
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

/* --- clients -------------------------------------------------------------------------------- */

int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

size_t read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (char *)p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

int write_full(int fd, const void *p, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = send(fd, (const char *)p + put, n - put, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

struct writer {
    int fd;
    const void *p;
    size_t n;
    int rc;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    w->rc = write_full(w->fd, w->p, w->n);
    shutdown(w->fd, SHUT_WR);
    return NULL;
}

size_t exchange(int fd, const void *out, size_t n, void *in, size_t cap)
{
    struct writer w = {fd, out, n, 0};
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    size_t got = read_full(fd, in, cap);
    pthread_join(th, NULL);
    return w.rc == 0 ? got : 0;
}

char *client_read_all(int port)
{
    int fd = client_connect(port);
    if (fd < 0)
        return xstrdup("(connect failed)");
    char buf[4096];
    size_t n = read_full(fd, buf, sizeof(buf) - 1);
    buf[n] = 0;
    close(fd);
    return xstrdup(buf);
}

uint64_t fnv64(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

void fill_random(void *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s[i] = (unsigned char)(x >> 24);
    }
}

long long stat_get(struct dp_engine *eng, const char *name)
{
    struct buf b;
    buf_init(&b, 0);
    dp_engine_render_stats(eng, NULL, &b);
    const char *s = buf_str(&b);
    size_t ln = strlen(name);
    long long v = -1;
    for (const char *p = s; p && *p;) {
        if (strncmp(p, name, ln) == 0 && p[ln] == ':' && p[ln + 1] == ' ') {
            v = atoll(p + ln + 2);
            break;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    buf_free(&b);
    return v;
}

long long stat_wait(struct dp_engine *eng, const char *name, long long want)
{
    long long v = -1;
    for (int i = 0; i < 300; i++) {
        v = stat_get(eng, name);
        if (v >= want)
            break;
        usleep(10000);
    }
    return v;
}

/* --- certificates --------------------------------------------------------------------------- */

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k)
        TEST_FAIL_("EVP_EC_gen failed");
    return k;
}

static char *pem_cert(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = xstrndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static char *pem_key(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = xstrndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static void add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        TEST_FAIL_("extension %d=%s", nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}

static long serial = 1;

void test_ca_init(struct test_ca *ca, const char *cn)
{
    ca->key = ec_key();
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Kuma", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, ca->key);
    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x, x, NID_subject_key_identifier, "hash");
    X509_sign(x, ca->key, EVP_sha256());
    ca->cert = x;
    ca->pem = pem_cert(x);
}

void test_ca_free(struct test_ca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->pem);
}

void test_ca_leaf(struct test_ca *ca, const char *uri, char **cert_pem, char **key_pem)
{
    EVP_PKEY *k = ec_key();
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
    X509_set_pubkey(x, k);
    char *san = xasprintf("URI:%s", uri);
    add_ext(ca->cert, x, NID_subject_alt_name, san);
    free(san);
    add_ext(ca->cert, x, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(ca->cert, x, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyAgreement");
    add_ext(ca->cert, x, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(ca->cert, x, NID_authority_key_identifier, "keyid:always");
    X509_sign(x, ca->key, EVP_sha256());
    *cert_pem = pem_cert(x);
    *key_pem = pem_key(k);
    X509_free(x);
    EVP_PKEY_free(k);
}

SSL *tls_client(int port, const char *cert_pem, const char *key_pem, const char *ca_pem,
                const char *alpn)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (cert_pem) {
        BIO *b = BIO_new_mem_buf(cert_pem, -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        SSL_CTX_use_certificate(ctx, x);
        X509_free(x);
        BIO_free(b);
        b = BIO_new_mem_buf(key_pem, -1);
        EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        SSL_CTX_use_PrivateKey(ctx, k);
        EVP_PKEY_free(k);
        BIO_free(b);
    }
    if (ca_pem) {
        BIO *b = BIO_new_mem_buf(ca_pem, -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x);
        X509_free(x);
        BIO_free(b);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (alpn) {
        unsigned char wire[64];
        size_t l = strlen(alpn);
        wire[0] = (unsigned char)l;
        memcpy(wire + 1, alpn, l);
        SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)l + 1);
    }
    int fd = client_connect(port);
    SSL *ssl = NULL;
    if (fd >= 0) {
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        /* In TLS 1.3 the server checks the client certificate after the
         * client's handshake completes; a read shows whether it was kept. */
        if (SSL_connect(ssl) != 1) {
            SSL_free(ssl);
            close(fd);
            ssl = NULL;
        } else {
            char c;
            struct timeval tv = {0, 300000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            int r = SSL_read(ssl, &c, 1);
            int err = SSL_get_error(ssl, r);
            if (r <= 0 &&
                !(err == SSL_ERROR_WANT_READ ||
                  (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)))) {
                SSL_free(ssl);
                close(fd);
                ssl = NULL;
            }
            tv.tv_sec = 5;
            tv.tv_usec = 0;
            if (ssl)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return ssl;
}

void tls_client_free(SSL *ssl)
{
    if (!ssl)
        return;
    int fd = SSL_get_fd(ssl);
    SSL_free(ssl);
    close(fd);
}

char *http_get(int port, const char *path)
{
    int fd = client_connect(port);
    if (fd < 0)
        return xstrdup("");
    char *req = xasprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    write_full(fd, req, strlen(req));
    free(req);
    struct buf b;
    buf_init(&b, 0);
    char chunk[8192];
    ssize_t n;
    while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0)
        buf_append(&b, chunk, (size_t)n);
    close(fd);
    char *s = xstrdup(buf_str(&b));
    buf_free(&b);
    return s;
}
