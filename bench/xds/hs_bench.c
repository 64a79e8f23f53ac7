/*
 * hs_bench — CPU of one TLS connection setup of the xDS cold start on each
 * side: kuma-cp's DP-server context (xds_transport_tls_ctx, as the
 * transport builds it) against the fleet's client context (fleet_tls.c:
 * kuma-cp's certificate verified for 127.0.0.1, ALPN h2, the legacy key
 * methods of core/tlsfast.h as the fleet and kuma-dp have them), with
 * kuma-cp's own certificate as kuma-cp generates it (ca_generate_cp_cert,
 * ECDSA P-256) unless HS_CERT/HS_KEY name PEM files.
 *
 * The server is a child process (as kuma-cp: no legacy key methods), the
 * client the parent; they talk over loopback TCP, one connection after the
 * other, blocking: connect/accept, the handshake, the first bytes each way
 * (the HTTP/2 preface and SETTINGS), close. Each side measures its own
 * process CPU (user + system) over a round, so the figures hold on a busy
 * machine; the kernel's loopback work lands on whichever side runs it.
 *
 *   hs_bench [connections per round] [rounds]
 *
 * Prints µs of CPU per connection for each side per round, then the
 * medians. Knobs for A/B runs:
 *   HS_LEGACY=0                          the client without the legacy methods
 *   HS_SERVER_GROUPS, HS_CLIENT_GROUPS   key-exchange group lists
 *   HS_SERVER_SUITES, HS_CLIENT_SUITES   TLS 1.3 cipher suites
 *   HS_CLIENT_SIGALGS                    signature algorithms the client offers
 *   HS_SERVER_/HS_CLIENT_ + READ_AHEAD, AUTO_CHAIN, COMPAT = 0|1
 *       read-ahead, the chain built from the trust store, TLS 1.3
 *       middlebox compatibility (the ChangeCipherSpec records)
 */
#define _GNU_SOURCE /* accept4 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ca/tlsgen.h"
#include "core/tlsfast.h"
#include "core/util.h"
#include "fleet_tls.h"
#include "xds/transport.h"

static void die(const char *what)
{
    char buf[256] = "";
    unsigned long x = ERR_get_error();
    if (x)
        ERR_error_string_n(x, buf, sizeof(buf));
    fprintf(stderr, "hs_bench: %s %s\n", what, buf);
    exit(1);
}

static char *slurp(const char *path)
{
    struct err e;
    char *s = read_file(path, 1 << 20, NULL, &e);
    if (!s) {
        fprintf(stderr, "hs_bench: %s\n", e.msg);
        exit(1);
    }
    return s;
}

/* ClientHellos the server received: 2 per handshake means a
 * HelloRetryRequest (the client's key share was not the server's choice). */
static int hellos;

static void count_hellos(int write_p, int version, int content_type, const void *buf, size_t len,
                         SSL *ssl, void *arg)
{
    (void)version, (void)ssl, (void)arg;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        ((const unsigned char *)buf)[0] == SSL3_MT_CLIENT_HELLO)
        hellos++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void set_env_list(SSL_CTX *ctx, const char *env, int (*set)(SSL_CTX *, const char *))
{
    const char *v = getenv(env);
    if (v && *v && set(ctx, v) != 1)
        die(env);
}

/* <prefix>READ_AHEAD, AUTO_CHAIN, COMPAT = 0|1: override one setting of
 * the side's context. */
static void knobs(SSL_CTX *ctx, const char *prefix)
{
    char name[64];
    const char *v;
    snprintf(name, sizeof(name), "%sREAD_AHEAD", prefix);
    if ((v = getenv(name)) && *v)
        SSL_CTX_set_read_ahead(ctx, atoi(v));
    snprintf(name, sizeof(name), "%sAUTO_CHAIN", prefix);
    if ((v = getenv(name)) && *v) {
        if (atoi(v))
            SSL_CTX_clear_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
        else
            SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    }
    /* Measurement only (what verification costs): VERIFY=0. */
    snprintf(name, sizeof(name), "%sVERIFY", prefix);
    if ((v = getenv(name)) && *v && !atoi(v))
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    snprintf(name, sizeof(name), "%sCOMPAT", prefix);
    if ((v = getenv(name)) && *v) {
        if (atoi(v))
            SSL_CTX_set_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
        else
            SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
    }
}

static int set_groups(SSL_CTX *c, const char *v)
{
    return (int)SSL_CTX_set1_groups_list(c, v);
}

static int set_sigalgs(SSL_CTX *c, const char *v)
{
    return (int)SSL_CTX_set1_sigalgs_list(c, v);
}

static double proc_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The server (child): n connections per round, its CPU per round on out. */
static void serve(int lfd, SSL_CTX *sctx, int n, int rounds, int out)
{
    for (int r = 0; r < rounds; r++) {
        double t0 = proc_cpu_us();
        for (int i = 0; i < n; i++) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                die("accept");
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            SSL *s = SSL_new(sctx);
            SSL_set_fd(s, fd);
            if (r == 0 && i < 4)
                SSL_set_msg_callback(s, count_hellos);
            char buf[128];
            size_t got;
            if (SSL_accept(s) != 1 || !SSL_read_ex(s, buf, sizeof(buf), &got) ||
                !SSL_write_ex(s, "settings", 8, &got))
                die("server: handshake failed:");
            SSL_free(s);
            close(fd);
        }
        double cpu = proc_cpu_us() - t0;
        if (write(out, &cpu, sizeof(cpu)) != sizeof(cpu))
            die("pipe");
    }
    if (write(out, &hellos, sizeof(hellos)) != sizeof(hellos))
        die("pipe");
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 1 || rounds < 1 || rounds > 99) {
        fprintf(stderr, "usage: hs_bench [connections >= 1] [rounds 1..99]\n");
        return 2;
    }
    char *cert = NULL, *key = NULL;
    struct err e;
    if (getenv("HS_CERT") && getenv("HS_KEY")) {
        cert = slurp(getenv("HS_CERT"));
        key = slurp(getenv("HS_KEY"));
    } else if (ca_generate_cp_cert("hs-bench", CA_KEY_DEFAULT, &cert, &key, &e) < 0) {
        fprintf(stderr, "hs_bench: %s\n", e.msg);
        return 1;
    }
    SSL_CTX *sctx = xds_transport_tls_ctx(cert, key, &e);
    if (!sctx) {
        fprintf(stderr, "hs_bench: %s\n", e.msg);
        return 1;
    }
    set_env_list(sctx, "HS_SERVER_GROUPS", set_groups);
    set_env_list(sctx, "HS_SERVER_SUITES", SSL_CTX_set_ciphersuites);
    knobs(sctx, "HS_SERVER_");
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
        die("listen");
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(pfd[0]);
        /* HS_SERVER_LEGACY=<TLS_FAST_* mask>: the server with legacy key
         * methods too (its context rebuilt, so its own key is legacy). */
        const char *slg = getenv("HS_SERVER_LEGACY");
        if (slg && atoi(slg)) {
            tls_fast_pkeys_enable(atoi(slg), NULL);
            SSL_CTX_free(sctx);
            if (!(sctx = xds_transport_tls_ctx(cert, key, &e)))
                die(e.msg);
            set_env_list(sctx, "HS_SERVER_GROUPS", set_groups);
            set_env_list(sctx, "HS_SERVER_SUITES", SSL_CTX_set_ciphersuites);
            knobs(sctx, "HS_SERVER_");
        }
        serve(lfd, sctx, n, rounds, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    close(lfd);
    /* The client, as the fleet: the legacy key methods once kuma-cp's key
     * exists (they stop EC key generation). */
    const char *legacy = getenv("HS_LEGACY");
    int fast = 0;
    if (!legacy || strcmp(legacy, "0") != 0)
        fast = tls_fast_pkeys_enable(legacy ? atoi(legacy) : TLS_FAST_EC | TLS_FAST_RSA, NULL);
    char ca_path[] = "/tmp/hs-bench-ca-XXXXXX";
    int fd = mkstemp(ca_path);
    if (fd < 0 || write(fd, cert, strlen(cert)) != (ssize_t)strlen(cert))
        die("cannot write the CA file");
    close(fd);
    char why[512];
    SSL_CTX *cctx = fleet_tls_client_ctx(ca_path, "127.0.0.1", why, sizeof(why));
    unlink(ca_path);
    if (!cctx) {
        fprintf(stderr, "hs_bench: %s\n", why);
        return 1;
    }
    set_env_list(cctx, "HS_CLIENT_GROUPS", set_groups);
    knobs(cctx, "HS_CLIENT_");
    set_env_list(cctx, "HS_CLIENT_SUITES", SSL_CTX_set_ciphersuites);
    set_env_list(cctx, "HS_CLIENT_SIGALGS", set_sigalgs);

    double srv_r[99], cli_r[99];
    char version[32] = "", cipher[64] = "", group[32] = "";
    for (int r = 0; r < rounds; r++) {
        double t0 = proc_cpu_us();
        for (int i = 0; i < n; i++) {
            int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            int one = 1;
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("connect");
            SSL *c = SSL_new(cctx);
            SSL_set_fd(c, cfd);
            char buf[128];
            size_t got;
            if (SSL_connect(c) != 1)
                die("client: handshake failed:");
            if (SSL_get_verify_result(c) != X509_V_OK && !getenv("HS_CLIENT_VERIFY"))
                die("kuma-cp's certificate did not verify");
            const unsigned char *alpn;
            unsigned alen;
            SSL_get0_alpn_selected(c, &alpn, &alen);
            if (alen != 2 || memcmp(alpn, "h2", 2) != 0)
                die("no ALPN h2");
            if (!SSL_write_ex(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, &got) ||
                !SSL_read_ex(c, buf, sizeof(buf), &got))
                die("client: first bytes:");
            if (r == 0 && i == 0) {
                snprintf(version, sizeof(version), "%s", SSL_get_version(c));
                snprintf(cipher, sizeof(cipher), "%s", SSL_get_cipher_name(c));
                int nid = SSL_get_negotiated_group(c);
                snprintf(group, sizeof(group), "%s",
                         nid ? OBJ_nid2sn(nid & ~TLSEXT_nid_unknown) : "?");
            }
            SSL_free(c);
            close(cfd);
        }
        cli_r[r] = (proc_cpu_us() - t0) / n;
        double scpu;
        if (read(pfd[0], &scpu, sizeof(scpu)) != sizeof(scpu))
            die("the server died");
        srv_r[r] = scpu / n;
        printf("round %d: server_us=%.1f client_us=%.1f\n", r + 1, srv_r[r], cli_r[r]);
        fflush(stdout);
    }
    if (read(pfd[0], &hellos, sizeof(hellos)) != sizeof(hellos))
        die("the server died");
    waitpid(child, NULL, 0);
    qsort(srv_r, (size_t)rounds, sizeof(double), cmp_double);
    qsort(cli_r, (size_t)rounds, sizeof(double), cmp_double);
    printf(
        "client_legacy=%d %s %s %s connections=%d rounds=%d median server_us=%.1f client_us=%.1f "
        "pair_us=%.1f client_hellos_per_handshake=%.1f\n",
        fast, version, cipher, group, n, rounds, srv_r[rounds / 2], cli_r[rounds / 2],
        srv_r[rounds / 2] + cli_r[rounds / 2], hellos / 4.0);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    free(cert);
    free(key);
    return 0;
}
