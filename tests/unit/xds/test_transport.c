/*
 * The ADS server's transport (src/xds/transport.c) on a real loopback
 * socket: a connection that never sends the HTTP/2 preface is closed after
 * the setup timeout while one that did stays open; the timer stops once no
 * connection is being set up; a second server on the same port fails to
 * bind (no SO_REUSEPORT). The gRPC paths are covered end to end by
 * tests/integration/test_xds_transport_hostile.sh.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
