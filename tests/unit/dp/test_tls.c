/*
 * Proxy engine, mTLS: two engines (outbound "web" → inbound "backend") with
 * certificates minted here, chain and SAN verification, RBAC, rotation under
 * load, and hostile input (garbage, half-open connections).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/engine.h"
#include "dp/tls.h"
#include "dp_helpers.h"
#include "test.h"

#define ID_SECRET "identity_cert:secret:default"
#define CA_SECRET "mesh_ca:secret:default"

static struct dp_engine *engine(uint32_t handshake_ms)
{
    signal(SIGPIPE, SIG_IGN);
    struct dp_engine_opts o = {.workers = 2, .handshake_timeout_ms = handshake_ms};
    struct dp_engine *eng = NULL;
    struct err e = {{0}};
    if (dp_engine_new(&o, &eng, &e) != 0)
        TEST_FAIL_("dp_engine_new: %s", e.msg);
    return eng;
}

static void apply(struct dp_engine *eng, struct dp_config *c)
{
    struct err e = {{0}};
    if (dp_engine_apply(eng, c, &e) != 0)
        TEST_FAIL_("dp_engine_apply: %s", e.msg);
}

static void add_secrets(struct dp_config *c, const char *cert, const char *key, const char *ca)
{
    struct dp_secret *s = dp_config_add_secret(c, ID_SECRET);
    s->certificate_chain = xstrdup(cert);
    s->private_key = xstrdup(key);
    s = dp_config_add_secret(c, CA_SECRET);
    s->trusted_ca = xstrdup(ca);
}

/* The inbound side: mTLS listener with SAN prefix spiffe://default/ and RBAC
 * allowing spiffe://default/web, forwarding to the local app on app_port. */
static struct dp_config *inbound_cfg(const char *version, const char *cert, const char *key,
                                     const char *ca, int app_port)
{
    struct dp_config *c = dp_config_new(version);
    add_secrets(c, cert, key, ca);
    char cluster[64];
    snprintf(cluster, sizeof(cluster), "localhost:%d", app_port);
    struct dp_listener *l = dp_config_add_listener(c, "inbound:127.0.0.1:0", "127.0.0.1", 0);
    l->traffic_direction = DP_DIR_INBOUND;
    l->tls = xcalloc(1, sizeof(*l->tls));
    l->tls->require_client_certificate = 1;
    l->tls->common_tls_context.tls_certificate_sds_secret = xstrdup(ID_SECRET);
    l->tls->common_tls_context.validation_context_sds_secret = xstrdup(CA_SECRET);
    dp_tls_add_san(&l->tls->common_tls_context, DP_MATCH_PREFIX, "spiffe://default/");
    dp_tls_add_alpn(&l->tls->common_tls_context, "kuma");
    l->rbac = xcalloc(1, sizeof(*l->rbac));
    l->rbac->stat_prefix = xstrdup("inbound_127.0.0.1_0.");
    l->rbac->action = DP_RBAC_ALLOW;
    struct dp_rbac_policy *p = dp_rbac_add_policy(l->rbac, "allow-web");
    dp_rbac_policy_add_principal(p, DP_MATCH_EXACT, "spiffe://default/web");
    l->tcp_proxy.stat_prefix = dp_alt_stat_name(cluster);
    l->tcp_proxy.cluster = xstrdup(cluster);
    struct dp_cluster *cl = dp_config_add_cluster(c, cluster);
    dp_cla_add_endpoint(&cl->load_assignment, "127.0.0.1", (uint32_t)app_port, 1);
    return c;
}

/* The outbound side: plaintext listener → EDS cluster "backend" over mTLS
 * expecting spiffe://default/backend. */
static struct dp_config *outbound_cfg(const char *version, const char *cert, const char *key,
                                      const char *ca, int inbound_port)
{
    struct dp_config *c = dp_config_new(version);
    add_secrets(c, cert, key, ca);
    struct dp_listener *l = dp_config_add_listener(c, "outbound:127.0.0.1:0", "127.0.0.1", 0);
    l->traffic_direction = DP_DIR_OUTBOUND;
    l->tcp_proxy.stat_prefix = xstrdup("backend");
    l->tcp_proxy.cluster = xstrdup("backend");
    struct dp_cluster *cl = dp_config_add_cluster(c, "backend");
    cl->type = DP_CLUSTER_EDS;
    cl->tls = xcalloc(1, sizeof(*cl->tls));
    cl->tls->sni = xstrdup("backend{mesh=default}");
    cl->tls->common_tls_context.tls_certificate_sds_secret = xstrdup(ID_SECRET);
    cl->tls->common_tls_context.validation_context_sds_secret = xstrdup(CA_SECRET);
    dp_tls_add_san(&cl->tls->common_tls_context, DP_MATCH_EXACT, "spiffe://default/backend");
    dp_tls_add_alpn(&cl->tls->common_tls_context, "kuma");
    struct dp_cluster_load_assignment *a = dp_config_add_assignment(c, "backend");
    dp_cla_add_endpoint(a, "127.0.0.1", (uint32_t)inbound_port, 1);
    return c;
}

struct mesh {
    struct test_ca ca;
    struct backend *app;
    struct dp_engine *in, *out;
    int in_port, out_port;
    char *in_cert, *in_key, *out_cert, *out_key;
};

static void mesh_up_app(struct mesh *m, enum backend_mode mode, const char *id,
                        const char *server_uri, const char *client_uri, uint32_t handshake_ms)
{
    test_ca_init(&m->ca, "default");
    m->app = backend_start(mode, id);
    test_ca_leaf(&m->ca, server_uri, &m->in_cert, &m->in_key);
    test_ca_leaf(&m->ca, client_uri, &m->out_cert, &m->out_key);
    m->in = engine(handshake_ms);
    apply(m->in, inbound_cfg("1", m->in_cert, m->in_key, m->ca.pem, backend_port(m->app)));
    m->in_port = dp_engine_listener_port(m->in, "inbound:127.0.0.1:0");
    m->out = engine(handshake_ms);
    apply(m->out, outbound_cfg("1", m->out_cert, m->out_key, m->ca.pem, m->in_port));
    m->out_port = dp_engine_listener_port(m->out, "outbound:127.0.0.1:0");
    ASSERT(m->in_port > 0 && m->out_port > 0);
}

static void mesh_up(struct mesh *m, const char *server_uri, const char *client_uri,
                    uint32_t handshake_ms)
{
    mesh_up_app(m, BACKEND_ECHO, NULL, server_uri, client_uri, handshake_ms);
}

static void mesh_down(struct mesh *m)
{
    dp_engine_free(m->out);
    dp_engine_free(m->in);
    backend_stop(m->app);
    free(m->in_cert);
    free(m->in_key);
    free(m->out_cert);
    free(m->out_key);
    test_ca_free(&m->ca);
}

static int echo_ok(int port, size_t n, uint64_t seed)
{
    char *out = xmalloc(n), *in = xmalloc(n + 1);
    fill_random(out, n, seed);
    int fd = client_connect(port);
    int ok = fd >= 0 && exchange(fd, out, n, in, n + 1) == n && memcmp(out, in, n) == 0;
    if (fd >= 0)
        close(fd);
    free(out);
    free(in);
    return ok;
}

/* 1 if the peer closes the connection (EOF or reset) within the socket's
 * receive timeout; bytes before that (a TLS alert) are skipped. */
static int closed_by_peer(int fd)
{
    char b[256];
    for (;;) {
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
        if (r < 0)
            return 0;
    }
}

static char *listener_stat(struct mesh *m, const char *stat)
{
    return xasprintf("listener.127.0.0.1_%d.%s", m->in_port, stat);
}

TEST(dp_mtls_two_engines_byte_exact)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    ASSERT(echo_ok(m.out_port, 4u << 20, 1));
    ASSERT(echo_ok(m.out_port, 100, 2));
    char *s = listener_stat(&m, "ssl.handshake");
    ASSERT_INT_EQ(stat_wait(m.in, s, 2), 2);
    free(s);
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.ssl.handshake"), 2);
    ASSERT_INT_EQ(stat_get(m.in, "inbound_127.0.0.1_0.rbac.allowed"), 2);
    ASSERT_INT_EQ(stat_get(m.in, "inbound_127.0.0.1_0.rbac.denied"), 0);
    /* The second connection resumed the first one's TLS session (and RBAC
     * still saw the client's identity). */
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.ssl.session_reused"), 1);
    s = listener_stat(&m, "ssl.session_reused");
    ASSERT_INT_EQ(stat_get(m.in, s), 1);
    free(s);
    mesh_down(&m);
}

/* kuma-dp's fast EC switch (legacy EC code for peer certificates, see
 * dp/tls.h) keeps every mTLS check: identities, chains, SANs, resumption. The
 * keys are made first: EC key generation no longer works afterwards. */
TEST(dp_mtls_fast_ec_keys_same_checks)
{
    struct mesh m = {0};
    test_ca_init(&m.ca, "default");
    m.app = backend_start(BACKEND_ECHO, NULL);
    test_ca_leaf(&m.ca, "spiffe://default/backend", &m.in_cert, &m.in_key);
    test_ca_leaf(&m.ca, "spiffe://default/web", &m.out_cert, &m.out_key);
    struct test_ca other;
    test_ca_init(&other, "other-mesh");
    char *fcert, *fkey, *scert, *skey;
    test_ca_leaf(&other, "spiffe://default/web", &fcert, &fkey);
    test_ca_leaf(&m.ca, "spiffe://other-mesh/web", &scert, &skey);

    ASSERT_INT_EQ(dp_tls_enable_fast_ec_keys(), 1);
    ASSERT_INT_EQ(dp_tls_enable_fast_ec_keys(), 1); /* idempotent */
    EVP_PKEY *k = EVP_EC_gen("P-256");              /* the documented trade-off */
    ASSERT(k == NULL);
    ERR_clear_error();

    m.in = engine(0);
    apply(m.in, inbound_cfg("1", m.in_cert, m.in_key, m.ca.pem, backend_port(m.app)));
    m.in_port = dp_engine_listener_port(m.in, "inbound:127.0.0.1:0");
    m.out = engine(0);
    apply(m.out, outbound_cfg("1", m.out_cert, m.out_key, m.ca.pem, m.in_port));
    m.out_port = dp_engine_listener_port(m.out, "outbound:127.0.0.1:0");
    ASSERT(m.in_port > 0 && m.out_port > 0);
    ASSERT(echo_ok(m.out_port, 1u << 20, 3));
    ASSERT(echo_ok(m.out_port, 100, 4));
    char *st = listener_stat(&m, "ssl.handshake");
    ASSERT_INT_EQ(stat_wait(m.in, st, 2), 2);
    free(st);
    ASSERT_INT_EQ(stat_get(m.in, "inbound_127.0.0.1_0.rbac.allowed"), 2);
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.ssl.session_reused"), 1);
    /* Wrong CA, then the right CA with another mesh's identity. */
    ASSERT(tls_client(m.in_port, fcert, fkey, NULL, "kuma") == NULL);
    st = listener_stat(&m, "ssl.fail_verify_error");
    ASSERT_INT_EQ(stat_wait(m.in, st, 1), 1);
    free(st);
    ASSERT(tls_client(m.in_port, scert, skey, NULL, "kuma") == NULL);
    st = listener_stat(&m, "ssl.fail_verify_san");
    ASSERT_INT_EQ(stat_wait(m.in, st, 1), 1);
    free(st);
    ASSERT_INT_EQ(backend_accepted(m.app), 2);
    free(fcert);
    free(fkey);
    free(scert);
    free(skey);
    test_ca_free(&other);
    mesh_down(&m);
}

/* Runs both handshakes over a nonblocking socket pair in this thread. The
 * drained flags (dp_tls_set_socket) are cleared before every step, as the
 * proxy does when epoll reports the socket readable. */
static int pair_handshake(SSL *c, SSL *s, int *cdrained, int *sdrained)
{
    int cd = 0, sd = 0;
    for (int i = 0; i < 200 && (!cd || !sd); i++) {
        *cdrained = *sdrained = 0;
        if (!cd) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cd = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                return -1;
        }
        if (!sd) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sd = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                return -1;
        }
    }
    return cd && sd ? 0 : -1;
}

/* dp_tls_set_socket's contract (tls.h): *drained turns 1 when a read finds
 * the socket empty (short read or EAGAIN), and stays 0 while a full read
 * leaves data queued; bytes arrive intact either way. */
TEST(dp_tls_socket_bio_reports_drained)
{
    struct test_ca ca;
    test_ca_init(&ca, "default");
    char *cert, *key;
    test_ca_leaf(&ca, "spiffe://default/backend", &cert, &key);
    struct dp_secret id = {.name = "id", .certificate_chain = cert, .private_key = key};
    struct dp_secret trust = {.name = "ca", .trusted_ca = ca.pem};
    struct err e;
    SSL_CTX *sctx = dp_tls_server_ctx(&id, NULL, 0, &e);
    SSL_CTX *cctx = dp_tls_client_ctx(NULL, &trust, &e);
    ASSERT(sctx && cctx);
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    int sdrained = 0, cdrained = 0;
    ASSERT_INT_EQ(dp_tls_set_socket(s, sv[0], &sdrained), 0);
    ASSERT_INT_EQ(dp_tls_set_socket(c, sv[1], &cdrained), 0);
    ASSERT_INT_EQ(SSL_get_fd(s), sv[0]);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    ASSERT_INT_EQ(pair_handshake(c, s, &cdrained, &sdrained), 0);

    /* One small record: the read comes back short, the socket is empty. */
    size_t n;
    ASSERT(SSL_write_ex(c, "hello", 5, &n) == 1 && n == 5);
    char buf[1024];
    sdrained = 0;
    ASSERT(SSL_read_ex(s, buf, sizeof(buf), &n) == 1);
    ASSERT_INT_EQ(n, 5);
    ASSERT(memcmp(buf, "hello", 5) == 0);
    ASSERT_INT_EQ(sdrained, 1);

    /* 48 KiB queued: the first read fills OpenSSL's buffer and data is left. */
    static char big[48 * 1024], got[48 * 1024];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    /* Partial-write mode: a record at a time. */
    for (size_t off = 0; off < sizeof(big); off += n)
        ASSERT(SSL_write_ex(c, big + off, sizeof(big) - off, &n) == 1);
    sdrained = 0;
    ASSERT(SSL_read_ex(s, got, 1000, &n) == 1);
    ASSERT_INT_EQ(n, 1000);
    ASSERT_INT_EQ(sdrained, 0);
    ASSERT(SSL_has_pending(s));
    /* Read the rest until OpenSSL wants more: then the socket was empty. */
    size_t have = n;
    for (;;) {
        sdrained = 0;
        if (SSL_read_ex(s, got + have, sizeof(got) - have, &n) != 1) {
            ASSERT_INT_EQ(SSL_get_error(s, 0), SSL_ERROR_WANT_READ);
            ASSERT_INT_EQ(sdrained, 1);
            break;
        }
        have += n;
        if (have == sizeof(got))
            break;
    }
    ASSERT_INT_EQ(have, sizeof(big));
    ASSERT(memcmp(got, big, sizeof(big)) == 0);

    /* While drained, the BIO does not recv: data sent meanwhile waits until
     * the caller clears the flag (epoll said readable). */
    ASSERT_INT_EQ(sdrained, 1);
    ASSERT(SSL_write_ex(c, "late", 4, &n) == 1);
    ASSERT(SSL_read_ex(s, buf, sizeof(buf), &n) != 1);
    ASSERT_INT_EQ(SSL_get_error(s, 0), SSL_ERROR_WANT_READ);
    sdrained = 0;
    ASSERT(SSL_read_ex(s, buf, sizeof(buf), &n) == 1);
    ASSERT(n == 4 && memcmp(buf, "late", 4) == 0);

    /* Held writes stay in the BIO (the peer's socket is empty), then go out
     * ahead of the next write, in order. */
    dp_tls_hold(c, 1);
    ASSERT(SSL_write_ex(c, "one", 3, &n) == 1);
    ASSERT(recv(sv[0], buf, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN);
    dp_tls_hold(c, 0);
    ASSERT(SSL_write_ex(c, "two", 3, &n) == 1);
    char two[8];
    size_t have2 = 0;
    sdrained = 0;
    while (have2 < 6 && SSL_read_ex(s, two + have2, sizeof(two) - have2, &n) == 1)
        have2 += n;
    ASSERT(have2 == 6 && memcmp(two, "onetwo", 6) == 0);
    /* dp_tls_release sends what is held without another write. */
    dp_tls_hold(c, 1);
    ASSERT(SSL_write_ex(c, "three", 5, &n) == 1);
    ASSERT_INT_EQ(dp_tls_release(c), 0);
    ASSERT_INT_EQ(dp_tls_release(c), 0); /* nothing left: a no-op */
    sdrained = 0;
    ASSERT(SSL_read_ex(s, buf, sizeof(buf), &n) == 1);
    ASSERT(n == 5 && memcmp(buf, "three", 5) == 0);

    /* The write side: send() on a closed peer is an error, not SIGPIPE. */
    close(sv[1]);
    ASSERT(SSL_write_ex(s, "x", 1, &n) != 1);
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    close(sv[0]);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    free(cert);
    free(key);
    test_ca_free(&ca);
}

/* The verified-chain cache (tls.c): a leaf seen again under the same server
 * context skips the chain verification but never the per-connection SAN
 * check, and a leaf from another CA is never taken from it. */
TEST(dp_tls_verified_leaf_cache_keeps_san_and_ca_checks)
{
    struct test_ca ca, other;
    test_ca_init(&ca, "default");
    test_ca_init(&other, "other-mesh");
    char *scert, *skey, *ccert, *ckey, *fcert, *fkey;
    test_ca_leaf(&ca, "spiffe://default/backend", &scert, &skey);
    test_ca_leaf(&ca, "spiffe://default/web", &ccert, &ckey);
    test_ca_leaf(&other, "spiffe://default/web", &fcert, &fkey);
    struct dp_secret sid = {.name = "s", .certificate_chain = scert, .private_key = skey};
    struct dp_secret cid = {.name = "c", .certificate_chain = ccert, .private_key = ckey};
    struct dp_secret fid = {.name = "f", .certificate_chain = fcert, .private_key = fkey};
    struct dp_secret trust = {.name = "ca", .trusted_ca = ca.pem};
    struct err e;
    SSL_CTX *sctx = dp_tls_server_ctx(&sid, &trust, 1, &e);
    SSL_CTX *cctx = dp_tls_client_ctx(&cid, &trust, &e);
    SSL_CTX *fctx = dp_tls_client_ctx(&fid, NULL, &e);
    ASSERT(sctx && cctx && fctx);
    struct dp_string_matcher web = {DP_MATCH_EXACT, "spiffe://default/web"};
    struct dp_string_matcher db = {DP_MATCH_EXACT, "spiffe://default/db"};
    /* web, web (from the cache), then a matcher the cached leaf fails, then
     * the same name from another CA. */
    const struct {
        SSL_CTX *client;
        struct dp_string_matcher *want;
        int ok, san_failed, chain_failed;
    } steps[] = {{cctx, &web, 1, 0, 0}, {cctx, &web, 1, 0, 0}, {cctx, &db, 0, 1, 0},
                 {cctx, &web, 1, 0, 0}, {fctx, &web, 0, 0, 1}, {fctx, &web, 0, 0, 1}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int sv[2];
        ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
        SSL *s = SSL_new(sctx), *c = SSL_new(steps[i].client);
        int d0 = 0, d1 = 0;
        ASSERT_INT_EQ(dp_tls_set_socket(s, sv[0], &d0), 0);
        ASSERT_INT_EQ(dp_tls_set_socket(c, sv[1], &d1), 0);
        struct dp_tls_verify v = {.sans = steps[i].want, .n_sans = 1};
        dp_tls_set_verify(s, &v);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        int r = pair_handshake(c, s, &d1, &d0);
        ASSERT_INT_EQ(r == 0, steps[i].ok);
        ASSERT_INT_EQ(v.san_failed, steps[i].san_failed);
        ASSERT_INT_EQ(v.chain_failed, steps[i].chain_failed);
        if (steps[i].ok) {
            ASSERT_INT_EQ(SSL_get_verify_result(s), X509_V_OK);
            ASSERT(SSL_get0_peer_certificate(s) != NULL);
        }
        ERR_clear_error();
        SSL_free(s);
        SSL_free(c);
        close(sv[0]);
        close(sv[1]);
    }
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    SSL_CTX_free(fctx);
    free(scert);
    free(skey);
    free(ccert);
    free(ckey);
    free(fcert);
    free(fkey);
    test_ca_free(&ca);
    test_ca_free(&other);
}

TEST(dp_mtls_half_close_through_two_proxies)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    /* The app answers only after our EOF went through both proxies. */
    backend_stop(m.app);
    m.app = backend_start(BACKEND_REPLY_AFTER_EOF, NULL);
    apply(m.in, inbound_cfg("2", m.in_cert, m.in_key, m.ca.pem, backend_port(m.app)));
    int fd = client_connect(m.out_port);
    ASSERT(fd >= 0);
    ASSERT(write_full(fd, "hello", 5) == 0);
    shutdown(fd, SHUT_WR);
    char buf[16];
    ASSERT_INT_EQ(read_full(fd, buf, sizeof(buf)), 5);
    ASSERT(memcmp(buf, "hello", 5) == 0);
    close(fd);
    mesh_down(&m);
}

TEST(dp_mtls_alpn_kuma_negotiated)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    SSL *ssl = tls_client(m.in_port, m.out_cert, m.out_key, m.ca.pem, "kuma");
    ASSERT(ssl != NULL);
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    ASSERT_INT_EQ(len, 4);
    ASSERT(memcmp(p, "kuma", 4) == 0);
    ASSERT(SSL_write(ssl, "abc", 3) == 3);
    char buf[3];
    ASSERT_INT_EQ(SSL_read(ssl, buf, 3), 3);
    ASSERT(memcmp(buf, "abc", 3) == 0);
    tls_client_free(ssl);
    mesh_down(&m);
}

TEST(dp_mtls_foreign_ca_refused_at_handshake)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    struct test_ca other;
    test_ca_init(&other, "other-mesh");
    char *cert, *key;
    /* Right name, wrong CA: the chain does not verify. */
    test_ca_leaf(&other, "spiffe://default/web", &cert, &key);
    ASSERT(tls_client(m.in_port, cert, key, NULL, "kuma") == NULL);
    char *s = listener_stat(&m, "ssl.fail_verify_error");
    ASSERT_INT_EQ(stat_wait(m.in, s, 1), 1);
    free(s);
    s = listener_stat(&m, "ssl.connection_error");
    ASSERT_INT_EQ(stat_get(m.in, s), 1);
    free(s);
    ASSERT_INT_EQ(backend_accepted(m.app), 0);
    /* No client certificate at all. */
    ASSERT(tls_client(m.in_port, NULL, NULL, NULL, "kuma") == NULL);
    s = listener_stat(&m, "ssl.fail_verify_no_cert");
    ASSERT_INT_EQ(stat_wait(m.in, s, 1), 1);
    free(s);
    free(cert);
    free(key);
    test_ca_free(&other);
    mesh_down(&m);
}

TEST(dp_mtls_other_mesh_identity_refused_by_san)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    char *cert, *key;
    /* Same CA, but an identity of another mesh. */
    test_ca_leaf(&m.ca, "spiffe://other-mesh/web", &cert, &key);
    ASSERT(tls_client(m.in_port, cert, key, NULL, "kuma") == NULL);
    char *s = listener_stat(&m, "ssl.fail_verify_san");
    ASSERT_INT_EQ(stat_wait(m.in, s, 1), 1);
    free(s);
    ASSERT_INT_EQ(backend_accepted(m.app), 0);
    free(cert);
    free(key);
    mesh_down(&m);
}

TEST(dp_rbac_denies_unlisted_principal)
{
    struct mesh m;
    /* The outbound proxy's identity is valid in the mesh but not allowed. */
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/intruder", 0);
    char *s = client_read_all(m.out_port);
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(m.in, "inbound_127.0.0.1_0.rbac.denied", 1), 1);
    ASSERT_INT_EQ(stat_get(m.in, "inbound_127.0.0.1_0.rbac.allowed"), 0);
    ASSERT_INT_EQ(backend_accepted(m.app), 0);
    mesh_down(&m);
}

TEST(dp_rbac_deny_action_and_any)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    /* DENY web: web is refused; then ALLOW any: web passes. */
    struct dp_config *c = inbound_cfg("2", m.in_cert, m.in_key, m.ca.pem, backend_port(m.app));
    struct dp_rbac *r = c->listeners[0].rbac;
    r->action = DP_RBAC_DENY;
    apply(m.in, c);
    char *s = client_read_all(m.out_port);
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(m.in, "inbound_127.0.0.1_0.rbac.denied", 1), 1);
    c = inbound_cfg("3", m.in_cert, m.in_key, m.ca.pem, backend_port(m.app));
    dp_rbac_policy_add_any(&c->listeners[0].rbac->policies[0]);
    free(c->listeners[0].rbac->policies[0].principals[0].principal_name.value);
    c->listeners[0].rbac->policies[0].principals[0].principal_name.value =
        xstrdup("spiffe://default/nobody");
    apply(m.in, c);
    ASSERT(echo_ok(m.out_port, 1000, 3));
    /* An ALLOW policy set with no policies denies everything (Kuma's default
     * when mTLS is on and no permission selects the inbound). */
    c = inbound_cfg("4", m.in_cert, m.in_key, m.ca.pem, backend_port(m.app));
    struct dp_rbac *rr = c->listeners[0].rbac;
    for (size_t i = 0; i < rr->n_policies; i++) {
        for (size_t j = 0; j < rr->policies[i].n_principals; j++)
            free(rr->policies[i].principals[j].principal_name.value);
        free(rr->policies[i].principals);
        free(rr->policies[i].name);
    }
    rr->n_policies = 0;
    apply(m.in, c);
    s = client_read_all(m.out_port);
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(m.in, "inbound_127.0.0.1_0.rbac.denied", 2), 2);
    mesh_down(&m);
}

TEST(dp_outbound_verifies_server_identity)
{
    struct mesh m;
    /* The server presents a valid mesh identity, but not the expected one. */
    mesh_up(&m, "spiffe://default/impostor", "spiffe://default/web", 0);
    char *s = client_read_all(m.out_port);
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(m.out, "cluster.backend.ssl.fail_verify_san", 1), 1);
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.ssl.connection_error"), 1);
    /* A failed upstream handshake is a failed connect (retries, outliers). */
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.upstream_cx_connect_fail"), 1);
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.upstream_cx_connect_attempts_exceeded"), 1);
    ASSERT_INT_EQ(backend_accepted(m.app), 0);
    mesh_down(&m);
}

struct load {
    int port;
    atomic_int stop;
    atomic_long ok, failed;
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    uint64_t seed = 1;
    while (!atomic_load(&l->stop)) {
        if (echo_ok(l->port, 2048, seed++))
            atomic_fetch_add(&l->ok, 1);
        else
            atomic_fetch_add(&l->failed, 1);
    }
    return NULL;
}

TEST(dp_cert_rotation_under_load_no_failures)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    /* Long-lived connections established before any rotation. */
    int lived[4];
    for (int i = 0; i < 4; i++) {
        lived[i] = client_connect(m.out_port);
        ASSERT(lived[i] >= 0);
        char b[4];
        ASSERT(write_full(lived[i], "ping", 4) == 0);
        ASSERT_INT_EQ(read_full(lived[i], b, 4), 4);
    }
    struct load ld = {.port = m.out_port};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, load_main, &ld);
    /* Rotate the leaves three times, then the CA: first publish a bundle
     * with both CAs everywhere, then leaves of the new CA, then drop the old. */
    struct test_ca ca2;
    test_ca_init(&ca2, "default-2");
    char *bundle = xasprintf("%s%s", m.ca.pem, ca2.pem);
    char v[16];
    for (int round = 0; round < 6; round++) {
        usleep(150000);
        struct test_ca *issuer = round < 3 ? &m.ca : &ca2;
        const char *trust = round < 2 ? m.ca.pem : round < 5 ? bundle : ca2.pem;
        char *ic, *ik, *oc, *ok;
        test_ca_leaf(issuer, "spiffe://default/backend", &ic, &ik);
        test_ca_leaf(issuer, "spiffe://default/web", &oc, &ok);
        snprintf(v, sizeof(v), "r%d", round);
        /* Round 2 widens trust before any leaf of the new CA appears. */
        apply(m.in, inbound_cfg(v, ic, ik, trust, backend_port(m.app)));
        apply(m.out, outbound_cfg(v, oc, ok, trust, m.in_port));
        free(ic);
        free(ik);
        free(oc);
        free(ok);
    }
    usleep(200000);
    atomic_store(&ld.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "rotation: %ld ok, %ld failed\n", atomic_load(&ld.ok), atomic_load(&ld.failed));
    if (atomic_load(&ld.failed)) {
        struct buf sb;
        buf_init(&sb, 0);
        dp_engine_render_stats(m.in, NULL, &sb);
        fprintf(stderr, "IN:\n%s", buf_str(&sb));
        buf_free(&sb);
        buf_init(&sb, 0);
        dp_engine_render_stats(m.out, NULL, &sb);
        fprintf(stderr, "OUT:\n%s", buf_str(&sb));
        buf_free(&sb);
    }
    ASSERT_INT_EQ(atomic_load(&ld.failed), 0);
    ASSERT(atomic_load(&ld.ok) > 20);
    /* Connections from before every rotation still carry data. */
    for (int i = 0; i < 4; i++) {
        char b[4];
        ASSERT(write_full(lived[i], "pong", 4) == 0);
        ASSERT_INT_EQ(read_full(lived[i], b, 4), 4);
        ASSERT(memcmp(b, "pong", 4) == 0);
        close(lived[i]);
    }
    /* New handshakes use the new material only: a client of the old CA fails. */
    ASSERT(tls_client(m.in_port, m.out_cert, m.out_key, NULL, "kuma") == NULL);
    free(bundle);
    test_ca_free(&ca2);
    mesh_down(&m);
}

TEST(dp_tls_garbage_and_half_open_leave_engine_unharmed)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 300);
    int idle[20], junk[20];
    char noise[4096];
    for (int i = 0; i < 20; i++) {
        idle[i] = client_connect(m.in_port); /* connect and say nothing */
        ASSERT(idle[i] >= 0);
        junk[i] = client_connect(m.in_port);
        ASSERT(junk[i] >= 0);
        if (i % 2)
            write_full(junk[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
        else {
            fill_random(noise, sizeof(noise), (uint64_t)i + 1);
            noise[0] = 0x16; /* looks like a handshake record, is not */
            write_full(junk[i], noise, sizeof(noise));
        }
    }
    /* A half-finished ClientHello: a record header promising more. */
    int partial = client_connect(m.in_port);
    write_full(partial, "\x16\x03\x01\x02\x00\x01", 6);
    /* Real traffic is unaffected meanwhile. */
    ASSERT(echo_ok(m.out_port, 100000, 5));
    /* Garbage is answered (at most) with an alert, then closed. */
    for (int i = 0; i < 20; i++) {
        ASSERT(closed_by_peer(junk[i]));
        close(junk[i]);
    }
    /* Half-open connections are closed at the handshake deadline. */
    for (int i = 0; i < 20; i++) {
        ASSERT(closed_by_peer(idle[i]));
        close(idle[i]);
    }
    ASSERT(closed_by_peer(partial));
    close(partial);
    char *s = listener_stat(&m, "ssl.connection_error");
    ASSERT(stat_wait(m.in, s, 41) >= 41);
    free(s);
    for (int i = 0; i < 100 && dp_engine_active_connections(m.in) > 0; i++)
        usleep(10000);
    ASSERT_INT_EQ(dp_engine_active_connections(m.in), 0);
    ASSERT(echo_ok(m.out_port, 100000, 6));
    ASSERT_INT_EQ(backend_accepted(m.app), 2);
    mesh_down(&m);
}

TEST(dp_apply_rejects_bad_certificate)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    struct dp_config *c =
        inbound_cfg("bad", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
                    m.in_key, m.ca.pem, backend_port(m.app));
    struct err e = {{0}};
    ASSERT(dp_engine_apply(m.in, c, &e) != 0);
    ASSERT_STR_CONTAINS(e.msg, "certificate_chain");
    /* A key that does not belong to the certificate. */
    c = inbound_cfg("bad2", m.in_cert, m.out_key, m.ca.pem, backend_port(m.app));
    ASSERT(dp_engine_apply(m.in, c, &e) != 0);
    ASSERT_STR_CONTAINS(e.msg, "private_key");
    ASSERT(echo_ok(m.out_port, 1000, 9));
    mesh_down(&m);
}

/* A one-shot TLS server that records what the client offered. */
struct sni_server {
    int fd, port;
    SSL_CTX *ctx;
    pthread_t th;
    char sni[128], alpn[32];
};

static int select_kuma(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    struct sni_server *s = arg;
    if (inlen > 0 && in[0] < sizeof(s->alpn) && in[0] + 1u <= inlen)
        snprintf(s->alpn, sizeof(s->alpn), "%.*s", in[0], (const char *)in + 1);
    *out = in + 1;
    *outlen = in[0];
    return SSL_TLSEXT_ERR_OK;
}

static void *sni_server_main(void *arg)
{
    struct sni_server *s = arg;
    int fd = accept(s->fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        snprintf(s->sni, sizeof(s->sni), "%s", name ? name : "");
        SSL_write(ssl, "ok", 2);
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

TEST(dp_outbound_sends_sni_and_alpn_kuma)
{
    signal(SIGPIPE, SIG_IGN);
    struct test_ca ca;
    test_ca_init(&ca, "default");
    char *sc, *sk, *cc, *ck;
    test_ca_leaf(&ca, "spiffe://default/backend", &sc, &sk);
    test_ca_leaf(&ca, "spiffe://default/web", &cc, &ck);
    struct sni_server s = {0};
    s.ctx = SSL_CTX_new(TLS_server_method());
    BIO *b = BIO_new_mem_buf(sc, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    SSL_CTX_use_certificate(s.ctx, x);
    X509_free(x);
    BIO_free(b);
    b = BIO_new_mem_buf(sk, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    SSL_CTX_use_PrivateKey(s.ctx, k);
    EVP_PKEY_free(k);
    BIO_free(b);
    SSL_CTX_set_alpn_select_cb(s.ctx, select_kuma, &s);
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    ASSERT(bind(s.fd, (struct sockaddr *)&sa, len) == 0 && listen(s.fd, 4) == 0);
    getsockname(s.fd, (struct sockaddr *)&sa, &len);
    s.port = ntohs(sa.sin_port);
    pthread_create(&s.th, NULL, sni_server_main, &s);

    struct dp_engine *out = engine(0);
    apply(out, outbound_cfg("1", cc, ck, ca.pem, s.port));
    char *got = client_read_all(dp_engine_listener_port(out, "outbound:127.0.0.1:0"));
    ASSERT_STR_EQ(got, "ok");
    free(got);
    pthread_join(s.th, NULL);
    ASSERT_STR_EQ(s.sni, "backend{mesh=default}");
    ASSERT_STR_EQ(s.alpn, "kuma");
    dp_engine_free(out);
    close(s.fd);
    SSL_CTX_free(s.ctx);
    free(sc);
    free(sk);
    free(cc);
    free(ck);
    test_ca_free(&ca);
}

TEST(dp_outbound_tls_failure_retries_next_endpoint_and_ejects)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    /* A second inbound presenting the wrong identity. */
    char *ic, *ik;
    test_ca_leaf(&m.ca, "spiffe://default/impostor", &ic, &ik);
    struct dp_engine *bad = engine(0);
    apply(bad, inbound_cfg("1", ic, ik, m.ca.pem, backend_port(m.app)));
    int bad_port = dp_engine_listener_port(bad, "inbound:127.0.0.1:0");
    struct dp_config *c = outbound_cfg("2", m.out_cert, m.out_key, m.ca.pem, bad_port);
    dp_cla_add_endpoint(&c->endpoints[0], "127.0.0.1", (uint32_t)m.in_port, 1);
    c->listeners[0].tcp_proxy.max_connect_attempts = 2;
    c->clusters[0].outlier_detection = xcalloc(1, sizeof(struct dp_outlier_detection));
    c->clusters[0].outlier_detection->consecutive_local_origin_failure = 2;
    c->clusters[0].outlier_detection->max_ejection_percent = 50;
    apply(m.out, c);
    for (int i = 0; i < 8; i++)
        ASSERT(echo_ok(m.out_port, 1000, (uint64_t)i + 20));
    /* Two verification failures, retried on the good endpoint; then the
     * impostor is ejected and gets no more attempts. */
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.ssl.fail_verify_san"), 2);
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.upstream_cx_connect_fail"), 2);
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.outlier_detection.ejections_active"), 1);
    dp_engine_free(bad);
    free(ic);
    free(ik);
    mesh_down(&m);
}

/* Rebuilds the inbound's RBAC with one compound principal. */
static struct dp_config *inbound_with(struct mesh *m, const char *version,
                                      struct dp_rbac_principal **root, enum dp_rbac_set set)
{
    struct dp_config *c =
        inbound_cfg(version, m->in_cert, m->in_key, m->ca.pem, backend_port(m->app));
    struct dp_rbac_policy *p = &c->listeners[0].rbac->policies[0];
    free(p->principals[0].principal_name.value);
    free(p->principals);
    p->principals = NULL;
    p->n_principals = 0;
    *root = dp_rbac_policy_add_set(p, set);
    return c;
}

static void leaf(struct dp_rbac_principal *set, const char *uri)
{
    struct dp_rbac_principal *l = dp_rbac_set_add(set);
    l->principal_name.kind = DP_MATCH_EXACT;
    l->principal_name.value = xstrdup(uri);
}

TEST(dp_rbac_and_or_not_principals)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    struct dp_rbac_principal *r;
    /* AND(web, kuma://version/v1): web's certificate has no version SAN. */
    struct dp_config *c = inbound_with(&m, "2", &r, DP_RBAC_AND);
    leaf(r, "spiffe://default/web");
    leaf(r, "kuma://version/v1");
    apply(m.in, c);
    char *s = client_read_all(m.out_port);
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(m.in, "inbound_127.0.0.1_0.rbac.denied", 1), 1);
    /* OR(other, web) lets web in. */
    c = inbound_with(&m, "3", &r, DP_RBAC_OR);
    leaf(r, "spiffe://default/other");
    leaf(r, "spiffe://default/web");
    apply(m.in, c);
    ASSERT(echo_ok(m.out_port, 1000, 5));
    /* AND(web, NOT(other)) too; NOT(web) keeps it out. */
    c = inbound_with(&m, "4", &r, DP_RBAC_AND);
    leaf(r, "spiffe://default/web");
    struct dp_rbac_principal *n = dp_rbac_set_add(r);
    n->set = DP_RBAC_NOT;
    leaf(n, "spiffe://default/other");
    apply(m.in, c);
    ASSERT(echo_ok(m.out_port, 1000, 6));
    c = inbound_with(&m, "5", &r, DP_RBAC_NOT);
    leaf(r, "spiffe://default/web");
    apply(m.in, c);
    s = client_read_all(m.out_port);
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(m.in, "inbound_127.0.0.1_0.rbac.denied", 2), 2);
    ASSERT_INT_EQ(stat_get(m.in, "inbound_127.0.0.1_0.rbac.allowed"), 2);
    mesh_down(&m);
}

/* PERMISSIVE: one inbound takes mesh mTLS (ALPN kuma, RBAC), plaintext and
 * TLS it does not terminate (passed to the application as it is); without
 * a plaintext chain, plaintext is closed. */
TEST(dp_permissive_inbound)
{
    struct mesh m;
    mesh_up(&m, "spiffe://default/backend", "spiffe://default/web", 0);
    struct dp_config *c = inbound_cfg("2", m.in_cert, m.in_key, m.ca.pem, backend_port(m.app));
    struct dp_listener *l = &c->listeners[0];
    l->inspect = 1;
    l->raw_tcp_proxy = xcalloc(1, sizeof(*l->raw_tcp_proxy));
    l->raw_tcp_proxy->cluster = xstrdup(l->tcp_proxy.cluster);
    l->tls_tcp_proxy = xcalloc(1, sizeof(*l->tls_tcp_proxy));
    l->tls_tcp_proxy->cluster = xstrdup(l->tcp_proxy.cluster);
    apply(m.in, c);
    /* Mesh traffic: mTLS and RBAC as before. */
    ASSERT(echo_ok(m.out_port, 70000, 11));
    ASSERT_INT_EQ(stat_wait(m.in, "inbound_127.0.0.1_0.rbac.allowed", 1), 1);
    char *s = listener_stat(&m, "ssl.handshake");
    ASSERT_INT_EQ(stat_get(m.in, s), 1);
    /* Plaintext straight to the inbound reaches the application. */
    ASSERT(echo_ok(m.in_port, 70000, 12));
    ASSERT(echo_ok(m.in_port, 1, 13));
    /* TLS without ALPN kuma is not terminated: the (plaintext) application
     * gets the ClientHello, so the handshake fails, but it got there. */
    long before = backend_accepted(m.app);
    SSL *ssl = tls_client(m.in_port, m.out_cert, m.out_key, m.ca.pem, "h2");
    ASSERT(ssl == NULL);
    ASSERT(backend_accepted(m.app) > before);
    ASSERT_INT_EQ(stat_get(m.in, s), 1); /* no handshake on the proxy */
    ASSERT_INT_EQ(stat_get(m.in, "inbound_127.0.0.1_0.rbac.allowed"), 1);

    /* No plaintext chain: plaintext is closed, mesh traffic still flows. */
    c = inbound_cfg("3", m.in_cert, m.in_key, m.ca.pem, backend_port(m.app));
    c->listeners[0].inspect = 1;
    apply(m.in, c);
    before = backend_accepted(m.app);
    ASSERT(!echo_ok(m.in_port, 100, 15));
    char *nr = xasprintf("tcp.localhost_%d.downstream_cx_no_route", backend_port(m.app));
    ASSERT_INT_EQ(stat_wait(m.in, nr, 1), 1);
    free(nr);
    ASSERT(echo_ok(m.out_port, 1000, 14));
    ASSERT_INT_EQ(backend_accepted(m.app), before + 1);
    free(s);
    mesh_down(&m);
}

/* A server that speaks first, through both proxies: the client's Finished,
 * held for the first request bytes (tls.h, dp_tls_hold), must go out
 * without any, and the server's NewSessionTicket, held for its first
 * response bytes, arrives with the greeting (the second connection
 * resumes). The TLS listener accepts a connection only once its client has
 * sent something (TCP_DEFER_ACCEPT); the plaintext one at once. */
TEST(dp_mtls_server_speaks_first_and_deferred_accept)
{
    struct mesh m;
    mesh_up_app(&m, BACKEND_ID, "greeting-from-server", "spiffe://default/backend",
                "spiffe://default/web", 0);
    for (int i = 0; i < 2; i++) {
        char *got = client_read_all(m.out_port);
        ASSERT_STR_EQ(got, "greeting-from-server");
        free(got);
    }
    ASSERT_INT_EQ(stat_get(m.out, "cluster.backend.ssl.session_reused"), 1);
    char *total = listener_stat(&m, "downstream_cx_total");
    ASSERT_INT_EQ(stat_wait(m.in, total, 2), 2);

    /* Silent client on the TLS listener: not accepted yet. */
    int fd = client_connect(m.in_port);
    ASSERT(fd >= 0);
    usleep(300 * 1000);
    ASSERT_INT_EQ(stat_get(m.in, total), 2);
    /* Its first bytes (not a ClientHello) get it accepted, then closed. */
    ASSERT_INT_EQ(write_full(fd, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    ASSERT_INT_EQ(stat_wait(m.in, total, 3), 3);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ASSERT(closed_by_peer(fd));
    close(fd);

    /* A silent client on the plaintext (outbound) listener is accepted. */
    char *out_total = xasprintf("listener.127.0.0.1_%d.downstream_cx_total", m.out_port);
    long long before = stat_get(m.out, out_total);
    fd = client_connect(m.out_port);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(stat_wait(m.out, out_total, before + 1), before + 1);
    close(fd);
    free(out_total);
    free(total);
    mesh_down(&m);
}
