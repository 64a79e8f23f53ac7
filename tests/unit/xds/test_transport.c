/*
 * The ADS server's transport (src/xds/transport.c) on a real loopback
 * socket: a connection that never sends the HTTP/2 preface is closed after
 * the setup timeout while one that did stays open; the timer stops once no
 * connection is being set up; a second server on the same port fails to
 * bind (no SO_REUSEPORT); a client that stops reading holds the sender back
 * at the queue limit, then gets every message intact and the status; over
 * TLS, the suite chosen and the server's SETTINGS. The gRPC paths are covered end
 * to end by tests/integration/test_xds_transport_hostile.sh.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca/tlsgen.h"
#include "core/grpcframe.h"
#include "core/util.h"
#include "test.h"
#include "xds/transport.h"

static void no_open(void *ctx, struct xds_stream *s)
{
    xds_stream_unref(s);
}
static void no_msg(void *ctx, struct xds_stream *s, const uint8_t *d, size_t n)
{
}
static void no_close(void *ctx, struct xds_stream *s)
{
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ASSERT(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    return fd;
}

/* Reads what the server sends until it closes or timeout_ms passes: 1 if it
 * closed the connection, 0 if still open. */
static int closed_within(int fd, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            return 0;
        char buf[512];
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r <= 0)
            return 1;
    }
}

TEST(xds_transport_setup_timeout)
{
    struct xds_transport_opts o = {.address = "127.0.0.1", .port = 0, .setup_timeout_ms = 300};
    struct xds_transport_cb cb = {no_open, no_msg, no_close};
    struct xds_transport *t = NULL;
    int port = 0;
    struct err e = {{0}};
    ASSERT_INT_EQ(xds_transport_start(&o, &cb, NULL, &t, &port, &e), 0);
    ASSERT(port > 0);

    int silent = dial(port);
    int speaker = dial(port);
    /* The client preface and an empty SETTINGS frame. */
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    ASSERT_INT_EQ(send(speaker, preface, sizeof(preface) - 1, 0), (long)sizeof(preface) - 1);

    int64_t t0 = mono_ms();
    ASSERT_INT_EQ(closed_within(silent, 5000), 1);
    int64_t took = mono_ms() - t0;
    ASSERT(took >= 250 && took < 2000);
    /* The one that spoke HTTP/2 outlives the timeout several times over. */
    ASSERT_INT_EQ(closed_within(speaker, 1000), 0);

    /* A second server on the same port must fail, not share it. */
    struct xds_transport *t2 = NULL;
    int port2 = 0;
    struct xds_transport_opts o2 = {.address = "127.0.0.1", .port = port};
    ASSERT_INT_EQ(xds_transport_start(&o2, &cb, NULL, &t2, &port2, &e), -1);
    ASSERT_STR_CONTAINS(e.msg, "could not bind the DP server to 127.0.0.1:");

    close(silent);
    close(speaker);
    xds_transport_shutdown(t);
    xds_transport_free(t);
}

/* Garbage instead of the client preface: the connection is closed at once,
 * and the server still accepts the next one. */
TEST(xds_transport_bad_preface)
{
    struct xds_transport_opts o = {.address = "127.0.0.1", .port = 0};
    struct xds_transport_cb cb = {no_open, no_msg, no_close};
    struct xds_transport *t = NULL;
    int port = 0;
    struct err e = {{0}};
    ASSERT_INT_EQ(xds_transport_start(&o, &cb, NULL, &t, &port, &e), 0);
    for (int i = 0; i < 3; i++) {
        int fd = dial(port);
        static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        ASSERT_INT_EQ(send(fd, req, sizeof(req) - 1, 0), (long)sizeof(req) - 1);
        ASSERT_INT_EQ(closed_within(fd, 3000), 1);
        close(fd);
    }
    xds_transport_shutdown(t);
    xds_transport_free(t);
}

/* ---- a small blocking HTTP/2 gRPC client (nghttp2), for what follows ---- */

struct h2c {
    int fd;
    nghttp2_session *h2;
    int32_t sid;
    struct grpcf_deframer df;
    size_t n_msgs, bytes;
    int bad; /* a message with unexpected content */
    char status[16], message[256];
    int closed;
};

static ssize_t h2c_send(nghttp2_session *h2, const uint8_t *d, size_t n, int flags, void *ud)
{
    struct h2c *c = ud;
    ssize_t w = send(c->fd, d, n, MSG_NOSIGNAL);
    return w < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : w;
}

static ssize_t h2c_body(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    return NGHTTP2_ERR_DEFERRED; /* the request stream stays open, empty */
}

/* Each message is MSG_LEN bytes of (index + position) & 0xff. */
#define MSG_LEN (1u << 20)
static int h2c_msg(void *ctx, const uint8_t *m, size_t n, struct err *e)
{
    struct h2c *c = ctx;
    if (n != MSG_LEN)
        c->bad = 1;
    for (size_t i = 0; i < n && !c->bad; i += 4093)
        if (m[i] != (uint8_t)(c->n_msgs + i))
            c->bad = 1;
    c->n_msgs++;
    c->bytes += n;
    return 0;
}

static int h2c_data(nghttp2_session *h2, uint8_t flags, int32_t sid, const uint8_t *d, size_t n,
                    void *ud)
{
    struct h2c *c = ud;
    struct err e = {{0}};
    if (grpcf_deframer_feed(&c->df, d, n, h2c_msg, c, &e) < 0)
        c->bad = 1;
    return 0;
}

static int h2c_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                      const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct h2c *c = ud;
    if (nl == 11 && memcmp(name, "grpc-status", 11) == 0)
        snprintf(c->status, sizeof(c->status), "%.*s", (int)vl, (const char *)value);
    if (nl == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(c->message, sizeof(c->message), "%.*s", (int)vl, (const char *)value);
    return 0;
}

static int h2c_close(nghttp2_session *h2, int32_t sid, uint32_t code, void *ud)
{
    ((struct h2c *)ud)->closed = 1;
    return 0;
}

static int dial6(int port)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    inet_pton(AF_INET6, "::1", &a.sin6_addr);
    ASSERT(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    return fd;
}

/* Opens an ADS call on fd (a connected socket), with an authorization
 * header when token is not NULL. */
static void h2c_open_fd(struct h2c *c, int fd, const char *token)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    grpcf_deframer_init(&c->df, 2 * MSG_LEN);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, h2c_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2c_data);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2c_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_close);
    ASSERT_INT_EQ(nghttp2_session_client_new(&c->h2, cb, c), 0);
    nghttp2_session_callbacks_del(cb);
    /* Windows large enough that the socket, not flow control, fills up. */
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 64 << 20}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 1);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 64 << 20);
    nghttp2_nv hdrs[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)XDS_ADS_METHOD, 5, strlen(XDS_ADS_METHOD), 0},
        {(uint8_t *)":authority", (uint8_t *)"cp", 10, 2, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
        {(uint8_t *)"authorization", (uint8_t *)token, 13, token ? strlen(token) : 0, 0},
    };
    nghttp2_data_provider body = {.read_callback = h2c_body};
    c->sid = nghttp2_submit_request(c->h2, NULL, hdrs, token ? 7 : 6, &body, c);
    ASSERT(c->sid > 0);
    ASSERT_INT_EQ(nghttp2_session_send(c->h2), 0);
}

static void h2c_open(struct h2c *c, int port)
{
    h2c_open_fd(c, dial(port), NULL);
}

/* Reads and processes what arrives until the stream closes or timeout_ms. */
static void h2c_run(struct h2c *c, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    uint8_t buf[65536];
    while (!c->closed && mono_ms() < end) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r <= 0)
            break;
        ASSERT(nghttp2_session_mem_recv(c->h2, buf, (size_t)r) == r);
        ASSERT_INT_EQ(nghttp2_session_send(c->h2), 0);
    }
}

static void h2c_free(struct h2c *c)
{
    nghttp2_session_del(c->h2);
    grpcf_deframer_free(&c->df);
    close(c->fd);
}

static struct xds_stream *_Atomic opened;
static void keep_open(void *ctx, struct xds_stream *s)
{
    atomic_store(&opened, s); /* the callee's reference, dropped by the test */
}

/* A client that does not read: the transport stops pulling from the stream's
 * queue once the socket is full, so sends fail at max_queue instead of
 * buffering; once the client reads, every accepted message arrives intact
 * and in order, then the status with its percent-encoded message. */
TEST(xds_transport_back_pressure)
{
    struct xds_transport_opts o = {.address = "127.0.0.1", .port = 0, .max_queue = 4};
    struct xds_transport_cb cb = {keep_open, no_msg, no_close};
    struct xds_transport *t = NULL;
    int port = 0;
    struct err e = {{0}};
    atomic_store(&opened, NULL);
    ASSERT_INT_EQ(xds_transport_start(&o, &cb, NULL, &t, &port, &e), 0);
    struct h2c c;
    h2c_open(&c, port);
    int64_t end = mono_ms() + 5000;
    while (!atomic_load(&opened) && mono_ms() < end) {
        h2c_run(&c, 50);
    }
    struct xds_stream *s = atomic_load(&opened);
    ASSERT(s != NULL);

    /* The client reads nothing now. 1 MiB messages: the socket buffers and
     * nghttp2's frame take a few, the queue 4 more, then sends fail. */
    size_t sent = 0;
    for (; sent < 200; sent++) {
        uint8_t *m = xmalloc(MSG_LEN);
        for (size_t i = 0; i < MSG_LEN; i++)
            m[i] = (uint8_t)(sent + i);
        if (xds_stream_send_owned(s, m, MSG_LEN) < 0) {
            usleep(200 * 1000); /* the loop may still drain into the socket */
            uint8_t *m2 = xmalloc(MSG_LEN);
            for (size_t i = 0; i < MSG_LEN; i++)
                m2[i] = (uint8_t)(sent + i);
            if (xds_stream_send_owned(s, m2, MSG_LEN) < 0)
                break;
        }
    }
    ASSERT(sent >= 4);
    ASSERT(sent < 100); /* bounded: not 200 MiB buffered */
    xds_stream_finish(s, GRPCF_STATUS_RESOURCE_EXHAUSTED, "bye 100% \xc3\xbc");

    h2c_run(&c, 20000);
    ASSERT_INT_EQ(c.bad, 0);
    ASSERT_INT_EQ(c.n_msgs, sent);
    ASSERT_STR_EQ(c.status, "8");
    ASSERT_STR_EQ(c.message, "bye 100%25 %C3%BC");
    ASSERT_INT_EQ(c.closed, 1);

    h2c_free(&c);
    xds_stream_unref(s);
    xds_transport_shutdown(t);
    xds_transport_free(t);
}

static char seen_peer[64], seen_auth[64];
static void record_open(void *ctx, struct xds_stream *s)
{
    snprintf(seen_peer, sizeof(seen_peer), "%s", xds_stream_peer(s));
    const char *a = xds_stream_authorization(s);
    snprintf(seen_auth, sizeof(seen_auth), "%s", a ? a : "(none)");
    atomic_store(&opened, s);
}

/* The peer string as gRPC writes it, for IPv4 and IPv6, and the
 * authorization metadata (the dataplane token, as sent). */
TEST(xds_transport_peer_and_token)
{
    static const struct {
        const char *addr;
        int v6;
        const char *token;
        const char *peer_prefix;
    } cases[] = {
        {"127.0.0.1", 0, "eyJhbGciOiJSUzI1NiJ9.x.y", "ipv4:127.0.0.1:"},
        {"::1", 1, NULL, "ipv6:[::1]:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xds_transport_opts o = {.address = cases[i].addr, .port = 0};
        struct xds_transport_cb cb = {record_open, no_msg, no_close};
        struct xds_transport *t = NULL;
        int port = 0;
        struct err e = {{0}};
        atomic_store(&opened, NULL);
        ASSERT_INT_EQ(xds_transport_start(&o, &cb, NULL, &t, &port, &e), 0);
        int fd = cases[i].v6 ? dial6(port) : dial(port);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        ASSERT(getsockname(fd, (struct sockaddr *)&ss, &sl) == 0);
        int cport = ntohs(cases[i].v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                      : ((struct sockaddr_in *)&ss)->sin_port);
        struct h2c c;
        h2c_open_fd(&c, fd, cases[i].token);
        int64_t end = mono_ms() + 5000;
        while (!atomic_load(&opened) && mono_ms() < end)
            h2c_run(&c, 50);
        struct xds_stream *s = atomic_load(&opened);
        ASSERT(s != NULL);
        char want[80];
        snprintf(want, sizeof(want), "%s%d", cases[i].peer_prefix, cport);
        ASSERT_STR_EQ(seen_peer, want);
        ASSERT_STR_EQ(seen_auth, cases[i].token ? cases[i].token : "(none)");
        ASSERT(xds_stream_id(s) > 0);
        h2c_free(&c);
        xds_stream_unref(s);
        xds_transport_shutdown(t);
        xds_transport_free(t);
    }
}

/* ---- TLS --------------------------------------------------------------------------------------
 */

/* A TLS client on a blocking socket: handshake with `suites` offered (NULL =
 * OpenSSL's default), then the client preface and an empty SETTINGS in one
 * record. Returns the SSL (the caller frees it and closes *fd). */
static SSL *tls_dial(int port, const char *cert_pem, const char *suites, int *fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ASSERT(ctx != NULL);
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    ASSERT(ca != NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
    X509_free(ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    if (suites)
        ASSERT(SSL_CTX_set_ciphersuites(ctx, suites) == 1);
    *fd = dial(port);
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL keeps a reference */
    SSL_set_fd(ssl, *fd);
    ASSERT_INT_EQ(SSL_connect(ssl), 1);
    ASSERT_INT_EQ(SSL_get_verify_result(ssl), X509_V_OK);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    size_t w = 0;
    ASSERT(SSL_write_ex(ssl, preface, sizeof(preface) - 1, &w) == 1);
    return ssl;
}

/* Reads HTTP/2 frames until both a SETTINGS and a SETTINGS ACK from the
 * server arrived (1) or 3 s passed (0). */
static int tls_settings_and_ack(SSL *ssl, int fd)
{
    uint8_t buf[4096];
    size_t have = 0;
    int settings = 0, ack = 0;
    int64_t end = mono_ms() + 3000;
    while (!(settings && ack) && mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (!SSL_has_pending(ssl) && poll(&p, 1, 200) <= 0)
            continue;
        size_t got = 0;
        if (SSL_read_ex(ssl, buf + have, sizeof(buf) - have, &got) != 1)
            return 0;
        have += got;
        size_t off = 0;
        while (have - off >= 9) {
            size_t len = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
            if (have - off < 9 + len)
                break;
            if (buf[off + 3] == 4 && (buf[off + 4] & 1))
                ack = 1;
            else if (buf[off + 3] == 4)
                settings = 1;
            off += 9 + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    return settings && ack;
}

/* The DP server's TLS: kuma-cp's own kind of certificate (ECDSA P-256),
 * AES-128-GCM chosen for a client offering OpenSSL's default order
 * (AES-256 first), AES-256-GCM still served to a client offering only it,
 * ALPN h2, and the server's SETTINGS and SETTINGS ACK arriving after a
 * preface written right behind the handshake (read-ahead drained). */
TEST(xds_transport_tls_suites)
{
    char *cert = NULL, *key = NULL;
    struct err e = {{0}};
    ASSERT_INT_EQ(ca_generate_cp_cert("test", CA_KEY_DEFAULT, &cert, &key, &e), 0);
    struct xds_transport_opts o = {
        .address = "127.0.0.1", .port = 0, .tls_cert_pem = cert, .tls_key_pem = key};
    struct xds_transport_cb cb = {no_open, no_msg, no_close};
    struct xds_transport *t = NULL;
    int port = 0;
    ASSERT_INT_EQ(xds_transport_start(&o, &cb, NULL, &t, &port, &e), 0);

    int fd;
    SSL *ssl = tls_dial(port, cert, NULL, &fd);
    ASSERT_STR_EQ(SSL_get_cipher_name(ssl), "TLS_AES_128_GCM_SHA256");
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    ASSERT(alen == 2 && memcmp(alpn, "h2", 2) == 0);
    ASSERT_INT_EQ(tls_settings_and_ack(ssl, fd), 1);
    SSL_free(ssl);
    close(fd);

    ssl = tls_dial(port, cert, "TLS_AES_256_GCM_SHA384", &fd);
    ASSERT_STR_EQ(SSL_get_cipher_name(ssl), "TLS_AES_256_GCM_SHA384");
    ASSERT_INT_EQ(tls_settings_and_ack(ssl, fd), 1);
    SSL_free(ssl);
    close(fd);

    xds_transport_shutdown(t);
    xds_transport_free(t);
    free(cert);
    free(key);
}
