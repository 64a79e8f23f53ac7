/*
 * tls_bench — CPU cost of one mTLS handshake on each side, with the proxy's
 * own TLS contexts (dp_tls_server_ctx / dp_tls_client_ctx) and the same
 * verification as the mesh hop (chain + URI SAN on both sides), without
 * sockets: the two SSL objects talk through a BIO pair in one thread, and
 * each side's SSL calls are timed with the thread CPU clock. Repeatable on a
 * busy machine, unlike wall-clock rates.
 *
 *   tls_bench <certdir> [handshakes] [full|resume|keepalive]
 *
 * certdir is what bench/dp/run.sh makes (ca.pem, web.pem/key, backend.pem/key).
 * Prints µs of CPU per handshake for the server (terminating) side and the
 * client side, the handshakes per CPU-second of each, and the cost of parsing
 * the client's leaf certificate (d2i_X509) alone. keepalive also times 20,000
 * exchanges of 1 KiB each way on the first connection.
 *
 * A/B knobs: TLS_BENCH_GROUPS=<list> sets the key-exchange groups of both
 * sides, TLS_BENCH_TICKETS=<n> the server's tickets per handshake. Each side's
 * SSL_do_handshake runs in its own function (server_step, client_step), so
 * callgrind's --toggle-collect can count one side alone.
 */
#define _GNU_SOURCE
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "dp/tls.h"

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static char *slurp(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    struct err e;
    char *s = read_file(path, 1 << 20, NULL, &e);
    if (!s) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    free(path);
    return s;
}

static SSL_SESSION *kept;

static void keep_session(void *owner, SSL_SESSION *sess)
{
    (void)owner;
    SSL_SESSION_free(kept);
    kept = sess;
}

/* One step of a side: 1 done, 0 wants more, -1 failed. Separate functions
 * per side so that `valgrind --tool=callgrind --toggle-collect=server_step`
 * counts one side's handshake instructions only. */
static inline __attribute__((always_inline)) int step(SSL *s, double *acc)
{
    double t0 = cpu_us();
    int r = SSL_do_handshake(s);
    *acc += cpu_us() - t0;
    if (r == 1)
        return 1;
    int e = SSL_get_error(s, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static unsigned long server_steps, client_steps; /* also keeps the two apart */

__attribute__((noinline)) static int server_step(SSL *s, double *acc)
{
    server_steps++;
    return step(s, acc);
}

__attribute__((noinline)) static int client_step(SSL *s, double *acc)
{
    client_steps++;
    return step(s, acc);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tls_bench <certdir> [handshakes] [full|resume|keepalive]\n");
        return 2;
    }
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    int resume = argc > 3 && strcmp(argv[3], "resume") == 0;
    int keepalive = argc > 3 && strcmp(argv[3], "keepalive") == 0 ? 20000 : 0;
    double ka_srv = 0, ka_cli = 0;
    /* As kuma-dp does; DP_TLS_NO_LEGACY_EC=1 measures without it. */
    int fast_ec = dp_tls_enable_fast_ec_keys();
    struct dp_secret sid = {.name = "server",
                            .certificate_chain = slurp(dir, "backend.pem"),
                            .private_key = slurp(dir, "backend.key")};
    struct dp_secret cid = {.name = "client",
                            .certificate_chain = slurp(dir, "web.pem"),
                            .private_key = slurp(dir, "web.key")};
    struct dp_secret ca = {.name = "ca", .trusted_ca = slurp(dir, "ca.pem")};
    struct err e;
    SSL_CTX *sctx = dp_tls_server_ctx(&sid, &ca, 1, &e);
    SSL_CTX *cctx = sctx ? dp_tls_client_ctx(&cid, &ca, &e) : NULL;
    if (!cctx) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    /* TLS_BENCH_GROUPS=<list>: another key-exchange order on both sides (A/B). */
    const char *groups = getenv("TLS_BENCH_GROUPS");
    if (groups &&
        (!SSL_CTX_set1_groups_list(sctx, groups) || !SSL_CTX_set1_groups_list(cctx, groups))) {
        fprintf(stderr, "bad TLS_BENCH_GROUPS %s\n", groups);
        return 1;
    }
    const char *tickets = getenv("TLS_BENCH_TICKETS"); /* A/B: tickets per handshake */
    if (tickets)
        SSL_CTX_set_num_tickets(sctx, (size_t)atoi(tickets));
    struct dp_string_matcher in_san = {DP_MATCH_PREFIX, "spiffe://default/"};
    struct dp_string_matcher out_san = {DP_MATCH_EXACT, "spiffe://default/backend"};
    static const unsigned char alpn[] = "\x04kuma";
    double srv = 0, cli = 0;
    int reused = 0;
    for (int i = 0; i < n; i++) {
        SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
        BIO *bs, *bc;
        BIO_new_bio_pair(&bs, 64 * 1024, &bc, 64 * 1024);
        SSL_set_bio(s, bs, bs);
        SSL_set_bio(c, bc, bc);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        struct dp_tls_verify sv = {.sans = &in_san, .n_sans = 1, .alpn = alpn, .alpn_len = 5};
        struct dp_tls_verify cv = {.sans = &out_san, .n_sans = 1};
        if (resume) {
            cv.on_session = keep_session;
            if (kept)
                SSL_set_session(c, kept);
        }
        dp_tls_set_verify(s, &sv);
        dp_tls_set_verify(c, &cv);
        SSL_set_tlsext_host_name(c, "backend{mesh=default}");
        SSL_set_alpn_protos(c, alpn, 5);
        int cd = 0, sd = 0, rounds = 0;
        while ((!cd || !sd) && rounds++ < 20) {
            if (!cd && (cd = client_step(c, &cli)) < 0)
                break;
            if (!sd && (sd = server_step(s, &srv)) < 0)
                break;
        }
        if (cd != 1 || sd != 1) {
            char why[512];
            dp_tls_errors(why, sizeof(why));
            fprintf(stderr, "handshake %d failed: %s\n", i, why);
            return 1;
        }
        /* One request each way, as the proxy's first bytes: the client also
         * reads the session ticket here. */
        char buf[64];
        size_t got;
        double t0 = cpu_us();
        SSL_write_ex(c, "GET", 3, &got);
        cli += cpu_us() - t0;
        t0 = cpu_us();
        SSL_read_ex(s, buf, sizeof(buf), &got);
        SSL_write_ex(s, "200", 3, &got);
        srv += cpu_us() - t0;
        t0 = cpu_us();
        SSL_read_ex(c, buf, sizeof(buf), &got);
        cli += cpu_us() - t0;
        reused += SSL_session_reused(s);
        /* keepalive: 1 KiB each way per exchange on the first connection,
         * timed per side (the record layer's cost per request). */
        for (int k = 0; i == 0 && k < keepalive; k++) {
            static char req[1024], resp[1024], in[2048];
            t0 = cpu_us();
            SSL_write_ex(c, req, sizeof(req), &got);
            ka_cli += cpu_us() - t0;
            t0 = cpu_us();
            SSL_read_ex(s, in, sizeof(in), &got);
            SSL_write_ex(s, resp, sizeof(resp), &got);
            ka_srv += cpu_us() - t0;
            t0 = cpu_us();
            SSL_read_ex(c, in, sizeof(in), &got);
            ka_cli += cpu_us() - t0;
            if (got != sizeof(resp)) {
                fprintf(stderr, "keep-alive exchange %d: %zu bytes\n", k, got);
                return 1;
            }
        }
        /* close_notify both ways, as the proxy's half-close sends it: a
         * session freed without it is dropped from the server's cache. */
        t0 = cpu_us();
        SSL_shutdown(c);
        cli += cpu_us() - t0;
        t0 = cpu_us();
        SSL_shutdown(s);
        SSL_free(s);
        srv += cpu_us() - t0;
        t0 = cpu_us();
        SSL_free(c);
        cli += cpu_us() - t0;
    }
    /* The client leaf's parse alone (what libssl does with the Certificate
     * message): OpenSSL 3.0 builds a key decoder for every certificate. */
    BIO *b = BIO_new_mem_buf(cid.certificate_chain, -1);
    X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    unsigned char *der = NULL;
    int dlen = i2d_X509(leaf, &der);
    X509_free(leaf);
    int np = 2000;
    double t0 = cpu_us();
    for (int i = 0; i < np; i++) {
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, dlen);
        X509_free(x);
    }
    double parse = (cpu_us() - t0) / np;
    OPENSSL_free(der);
    printf("fast_ec=%d mode=%s handshakes=%d reused=%d server_us=%.1f client_us=%.1f "
           "server_per_cpu_s=%.0f client_per_cpu_s=%.0f pair_per_cpu_s=%.0f "
           "d2i_X509_leaf_us=%.1f\n",
           fast_ec, resume ? "resume" : "full", n, reused, srv / n, cli / n, n / (srv / 1e6),
           n / (cli / 1e6), n / ((srv + cli) / 1e6), parse);
    if (keepalive)
        printf("keepalive exchanges=%d (1 KiB each way) server_us=%.2f client_us=%.2f\n", keepalive,
               ka_srv / keepalive, ka_cli / keepalive);
    SSL_SESSION_free(kept);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
