/*
 * grpc_rss — what linking and starting the gRPC C core costs in memory, apart
 * from kuma-dp: prints VmRSS (anonymous and file-backed) of a trivial program
 * with an OpenSSL context, then, when built with -DWITH_GRPC, after
 * grpc_init() and a TLS channel that tries to connect. Built and run by
 * bench/dp/rss.sh both ways.
 */
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef WITH_GRPC
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#endif

static void rss(const char *what)
{
    FILE *f = fopen("/proc/self/status", "r");
    char l[256];
    long r = 0, a = 0, fl = 0, t = 0;
    while (f && fgets(l, sizeof(l), f)) {
        if (!strncmp(l, "VmRSS:", 6))
            r = atol(l + 6);
        if (!strncmp(l, "RssAnon:", 8))
            a = atol(l + 8);
        if (!strncmp(l, "RssFile:", 8))
            fl = atol(l + 8);
        if (!strncmp(l, "Threads:", 8))
            t = atol(l + 8);
    }
    if (f)
        fclose(f);
    printf("%s: VmRSS=%ld KB RssAnon=%ld KB RssFile=%ld KB threads=%ld\n", what, r, a, fl, t);
}

int main(void)
{
    SSL_CTX *c = SSL_CTX_new(TLS_method());
#ifdef WITH_GRPC
    rss("gRPC linked, OpenSSL context");
    grpc_init();
    grpc_channel_credentials *cr = grpc_ssl_credentials_create(NULL, NULL, NULL, NULL);
    grpc_channel *ch = grpc_channel_create("127.0.0.1:1", cr, NULL);
    grpc_channel_check_connectivity_state(ch, 1);
    sleep(1);
    rss("gRPC linked, after grpc_init and a TLS channel");
    grpc_channel_destroy(ch);
    grpc_channel_credentials_release(cr);
    grpc_shutdown();
#else
    rss("no gRPC, OpenSSL context");
#endif
    SSL_CTX_free(c);
    return 0;
}
