/*
 * dptool — workloads and clients for kuma-dp's end-to-end scenarios
 * (tests/integration/test_dp_*.sh). Loopback only, no TLS (the proxies do
 * that), a thread per connection (tests open tens of them).
 *
 *   dptool serve ADDR PORT [--id ID] [--flood]
 *       Echo server. With --id, every connection first receives "ID\n".
 *       With --flood, it writes endlessly and reads nothing. Prints
 *       "listening" once bound.
 *   dptool load ADDR PORT [--count N] [--until-file F] [--size B]
 *                         [--concurrency C] [--id] [--timeout-ms T]
 *       Requests: connect, send B random bytes, half-close, read to EOF,
 *       check the reply is byte-exact (after "ID\n" with --id). Runs N
 *       requests, or until file F exists. Prints "ok=N fail=N" and, with
 *       --id, "id <ID> <count>" lines; failures are described on stderr.
 *   dptool hold ADDR PORT N MS
 *       Opens N connections, reads nothing for MS milliseconds (slow
 *       consumers), prints how many were accepted.
 *   dptool http-server ADDR PORT --id ID
 *       HTTP/1.1 server (Node's http-parser): keep-alive, pipelining,
 *       chunked request bodies. Each response has the header
 *       "x-served-by: ID" and the body "ID METHOD TARGET\n" followed by the
 *       request body, echoed; a chunked request gets a chunked response.
 *       A request header x-kuma-tags is reported as "x-kuma-tags: V\n"
 *       after the first line. A target containing /status/NNN is answered
 *       with status NNN; one containing /headers gets every request header
 *       ("name: value" lines) after the first line. An Upgrade request
 *       is answered 101, then the connection echoes raw bytes.
 *   dptool http-raw ADDR PORT [--wait-ms MS]
 *       Sends stdin in one write, then prints what comes back until the
 *       peer closes (or MS of silence, default 3000).
 *   dptool garbage ADDR PORT [--half-open MS]
 *       Sends 4 KiB of random bytes (or, with --half-open, nothing), then
 *       waits up to 15 s (or MS) for the peer to close. Exit 0 when it closed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <http_parser.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *g_id;
static int g_flood;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    if (g_id) {
        char line[256];
        int n = snprintf(line, sizeof(line), "%s\n", g_id);
        if (write_all(fd, line, (size_t)n) < 0)
            goto out;
    }
    if (g_flood) {
        memset(buf, 'x', sizeof(buf));
        while (write_all(fd, buf, sizeof(buf)) == 0)
            ;
        goto out;
    }
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (write_all(fd, buf, (size_t)r) < 0)
            break;
    }
    shutdown(fd, SHUT_WR);
out:
    close(fd);
    return NULL;
}

/* --- http-server ------------------------------------------------------------------------- */

struct hconn {
    int fd, failed;
    char url[4096];
    size_t url_len;
    char *body;
    size_t blen, bcap;
    char field[64];
    size_t flen;
    int field_xkt, in_value;
    char xkt[256];
    size_t xkt_len;
    char all[8192]; /* every header as "name: value\n" (for /headers) */
    size_t all_len;
};

static void all_add(struct hconn *h, const char *p, size_t n)
{
    if (h->all_len + n < sizeof(h->all)) {
        memcpy(h->all + h->all_len, p, n);
        h->all_len += n;
    }
}

static int h_begin(http_parser *p)
{
    struct hconn *h = p->data;
    h->url_len = h->blen = h->flen = h->xkt_len = h->all_len = 0;
    h->field_xkt = h->in_value = 0;
    return 0;
}
static int h_url(http_parser *p, const char *at, size_t n)
{
    struct hconn *h = p->data;
    if (h->url_len + n < sizeof(h->url)) {
        memcpy(h->url + h->url_len, at, n);
        h->url_len += n;
    }
    return 0;
}
static int h_field(http_parser *p, const char *at, size_t n)
{
    struct hconn *h = p->data;
    if (h->in_value) {
        h->flen = 0;
        h->in_value = 0;
        all_add(h, "\n", 1);
    }
    all_add(h, at, n);
    for (size_t i = 0; i < n && h->flen + 1 < sizeof(h->field); i++)
        h->field[h->flen++] = (char)tolower((unsigned char)at[i]);
    h->field[h->flen] = 0;
    return 0;
}
static int h_value(http_parser *p, const char *at, size_t n)
{
    struct hconn *h = p->data;
    if (!h->in_value)
        all_add(h, ": ", 2);
    all_add(h, at, n);
    h->in_value = 1;
    if (strcmp(h->field, "x-kuma-tags") == 0 && h->xkt_len + n < sizeof(h->xkt)) {
        memcpy(h->xkt + h->xkt_len, at, n);
        h->xkt_len += n;
        h->field_xkt = 1;
    }
    return 0;
}
static int h_body(http_parser *p, const char *at, size_t n)
{
    struct hconn *h = p->data;
    if (h->blen + n > h->bcap) {
        h->bcap = (h->blen + n) * 2;
        h->body = realloc(h->body, h->bcap);
    }
    memcpy(h->body + h->blen, at, n);
    h->blen += n;
    return 0;
}
static int h_complete(http_parser *p)
{
    struct hconn *h = p->data;
    if (p->upgrade)
        return 0; /* answered 101 by the reader */
    int status = 200;
    h->url[h->url_len] = 0;
    const char *st = strstr(h->url, "/status/");
    if (st)
        status = atoi(st + 8);
    if (status < 200 || status > 599)
        status = 200;
    char head[16384];
    int hl = snprintf(head, sizeof(head), "%s %s %.*s\n", g_id ? g_id : "-",
                      http_method_str((enum http_method)p->method), (int)h->url_len, h->url);
    if (h->field_xkt)
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "x-kuma-tags: %.*s\n", (int)h->xkt_len,
                       h->xkt);
    if (strstr(h->url, "/headers") && hl < (int)sizeof(head))
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "%.*s\n", (int)h->all_len, h->all);
    if (hl >= (int)sizeof(head))
        hl = (int)sizeof(head) - 1; /* truncated */
    int chunked = (p->flags & F_CHUNKED) != 0;
    int keep = http_should_keep_alive(p);
    char rs[512];
    int rl;
    if (chunked)
        rl = snprintf(rs, sizeof(rs),
                      "HTTP/1.1 %d X\r\nx-served-by: %s\r\ntransfer-encoding: chunked\r\n%s\r\n",
                      status, g_id ? g_id : "-", keep ? "" : "connection: close\r\n");
    else
        rl = snprintf(rs, sizeof(rs),
                      "HTTP/1.1 %d X\r\nx-served-by: %s\r\ncontent-length: %zu\r\n%s\r\n", status,
                      g_id ? g_id : "-", (size_t)hl + h->blen, keep ? "" : "connection: close\r\n");
    int bad = write_all(h->fd, rs, (size_t)rl) < 0;
    if (chunked) {
        char sz[32];
        int n = snprintf(sz, sizeof(sz), "%x\r\n", hl);
        bad |= write_all(h->fd, sz, (size_t)n) < 0 || write_all(h->fd, head, (size_t)hl) < 0 ||
               write_all(h->fd, "\r\n", 2) < 0;
        if (h->blen) {
            n = snprintf(sz, sizeof(sz), "%zx\r\n", h->blen);
            bad |= write_all(h->fd, sz, (size_t)n) < 0 || write_all(h->fd, h->body, h->blen) < 0 ||
                   write_all(h->fd, "\r\n", 2) < 0;
        }
        bad |= write_all(h->fd, "0\r\n\r\n", 5) < 0;
    } else {
        bad |= write_all(h->fd, head, (size_t)hl) < 0 ||
               (h->blen && write_all(h->fd, h->body, h->blen) < 0);
    }
    if (bad || !keep)
        h->failed = 1;
    return 0;
}

static const http_parser_settings H_SETTINGS = {
    .on_message_begin = h_begin,
    .on_url = h_url,
    .on_header_field = h_field,
    .on_header_value = h_value,
    .on_body = h_body,
    .on_message_complete = h_complete,
};

static void *http_conn(void *arg)
{
    struct hconn h = {.fd = (int)(intptr_t)arg};
    /* Heads and bodies go in separate writes: no Nagle delay between them. */
    int one = 1;
    setsockopt(h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &h;
    char buf[16384];
    for (;;) {
        ssize_t r = recv(h.fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t used = http_parser_execute(&p, &H_SETTINGS, buf, (size_t)r);
        if (p.upgrade) {
            const char *sw = "HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\n"
                             "connection: upgrade\r\n\r\n";
            if (write_all(h.fd, sw, strlen(sw)) < 0 ||
                (used < (size_t)r && write_all(h.fd, buf + used, (size_t)r - used) < 0))
                break;
            for (;;) {
                r = recv(h.fd, buf, sizeof(buf), 0);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0 || write_all(h.fd, buf, (size_t)r) < 0)
                    break;
            }
            break;
        }
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK) {
            const char *bad = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: "
                              "close\r\n\r\n";
            write_all(h.fd, bad, strlen(bad));
            break;
        }
        if (h.failed)
            break;
    }
    shutdown(h.fd, SHUT_WR);
    close(h.fd);
    free(h.body);
    return NULL;
}

static int listen_on(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0) {
        perror("bind/listen");
        return -1;
    }
    return fd;
}

static int g_http;

static int cmd_serve(const char *addr, int port)
{
    int lfd = listen_on(addr, port);
    if (lfd < 0)
        return 1;
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            perror("accept");
            return 1;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, g_http ? http_conn : serve_conn, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}

static int connect_to(const char *addr, int port, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- load ---- */

#define MAX_IDS 16
static struct {
    const char *addr, *until;
    int port, size, with_id, timeout_ms;
    long count;
    atomic_long next, ok, fail;
    pthread_mutex_t mu;
    char ids[MAX_IDS][64];
    long id_n[MAX_IDS];
} L;

static void record_id(const char *id, size_t n)
{
    pthread_mutex_lock(&L.mu);
    int i;
    for (i = 0; i < MAX_IDS && L.ids[i][0]; i++)
        if (strlen(L.ids[i]) == n && memcmp(L.ids[i], id, n) == 0)
            break;
    if (i < MAX_IDS) {
        if (!L.ids[i][0])
            snprintf(L.ids[i], sizeof(L.ids[i]), "%.*s", (int)n, id);
        L.id_n[i]++;
    }
    pthread_mutex_unlock(&L.mu);
}

struct sender {
    int fd;
    const char *p;
    size_t n;
};
static void *send_thread(void *arg)
{
    struct sender *s = arg;
    write_all(s->fd, s->p, s->n);
    shutdown(s->fd, SHUT_WR);
    return NULL;
}

static int one_request(unsigned int *seed, char *out, char *in, size_t cap, char *why, size_t wl)
{
    for (int i = 0; i < L.size; i++)
        out[i] = (char)(rand_r(seed) & 0xff);
    int fd = connect_to(L.addr, L.port, L.timeout_ms);
    if (fd < 0) {
        snprintf(why, wl, "connect: %s", strerror(errno));
        return -1;
    }
    struct sender s = {fd, out, (size_t)L.size};
    pthread_t t;
    pthread_create(&t, NULL, send_thread, &s);
    size_t got = 0;
    int err = 0;
    for (;;) {
        if (got == cap) {
            err = EMSGSIZE;
            break;
        }
        ssize_t r = recv(fd, in + got, cap - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = errno;
            break;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    pthread_join(t, NULL);
    close(fd);
    if (err) {
        snprintf(why, wl, "read after %zu bytes: %s", got, strerror(err));
        return -1;
    }
    size_t off = 0;
    if (L.with_id) {
        char *nl = memchr(in, '\n', got < 64 ? got : 64);
        if (!nl) {
            snprintf(why, wl, "no id line (%zu bytes)", got);
            return -1;
        }
        off = (size_t)(nl - in) + 1;
    }
    if (got - off != (size_t)L.size || memcmp(in + off, out, (size_t)L.size) != 0) {
        snprintf(why, wl, "reply differs: %zu bytes, expected %d", got - off, L.size);
        return -1;
    }
    if (L.with_id)
        record_id(in, off - 1);
    return 0;
}

static void *load_thread(void *arg)
{
    unsigned int seed = (unsigned int)(uintptr_t)arg * 7919u + (unsigned int)time(NULL);
    size_t cap = (size_t)L.size + 256;
    char *out = malloc((size_t)L.size + 1), *in = malloc(cap);
    char why[256];
    for (;;) {
        if (L.until) {
            struct stat st;
            if (stat(L.until, &st) == 0)
                break;
        } else if (atomic_fetch_add(&L.next, 1) >= L.count) {
            break;
        }
        if (one_request(&seed, out, in, cap, why, sizeof(why)) == 0) {
            atomic_fetch_add(&L.ok, 1);
        } else {
            atomic_fetch_add(&L.fail, 1);
            fprintf(stderr, "request failed: %s\n", why);
        }
    }
    free(out);
    free(in);
    return NULL;
}

static int cmd_load(void)
{
    int conc = 4;
    pthread_mutex_init(&L.mu, NULL);
    const char *c = getenv("DPTOOL_CONCURRENCY");
    if (c)
        conc = atoi(c);
    if (conc < 1 || conc > 64)
        conc = 4;
    pthread_t t[64];
    for (int i = 0; i < conc; i++)
        pthread_create(&t[i], NULL, load_thread, (void *)(intptr_t)i);
    for (int i = 0; i < conc; i++)
        pthread_join(t[i], NULL);
    printf("ok=%ld fail=%ld\n", atomic_load(&L.ok), atomic_load(&L.fail));
    for (int i = 0; i < MAX_IDS && L.ids[i][0]; i++)
        printf("id %s %ld\n", L.ids[i], L.id_n[i]);
    return 0;
}

/* Waits for the peer to close: 0 when it did within ms. */
static int wait_closed(int fd, int ms)
{
    int64_t end = now_ms() + ms;
    char buf[4096];
    for (;;) {
        int left = (int)(end - now_ms());
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, left);
        if (r <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return 0;
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 4) {
        fprintf(stderr, "usage: see tests/tools/dptool.c\n");
        return 2;
    }
    const char *cmd = argv[1], *addr = argv[2];
    int port = atoi(argv[3]);
    if (strcmp(cmd, "serve") == 0) {
        for (int i = 4; i < argc; i++) {
            if (strcmp(argv[i], "--id") == 0 && i + 1 < argc)
                g_id = argv[++i];
            else if (strcmp(argv[i], "--flood") == 0)
                g_flood = 1;
        }
        return cmd_serve(addr, port);
    }
    if (strcmp(cmd, "http-server") == 0) {
        for (int i = 4; i < argc; i++)
            if (strcmp(argv[i], "--id") == 0 && i + 1 < argc)
                g_id = argv[++i];
        g_http = 1;
        return cmd_serve(addr, port);
    }
    if (strcmp(cmd, "http-raw") == 0) {
        int wait_ms = 3000;
        if (argc >= 6 && strcmp(argv[4], "--wait-ms") == 0)
            wait_ms = atoi(argv[5]);
        static char in[1 << 20];
        size_t n = fread(in, 1, sizeof(in), stdin);
        int fd = connect_to(addr, port, 5000);
        if (fd < 0) {
            perror("connect");
            return 1;
        }
        if (write_all(fd, in, n) < 0) {
            perror("send");
            return 1;
        }
        char buf[16384];
        for (;;) {
            struct pollfd pf = {fd, POLLIN, 0};
            if (poll(&pf, 1, wait_ms) <= 0) {
                fprintf(stderr, "http-raw: no close after %d ms\n", wait_ms);
                return 3;
            }
            ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            fwrite(buf, 1, (size_t)r, stdout);
        }
        close(fd);
        return 0;
    }
    if (strcmp(cmd, "load") == 0) {
        L.addr = addr;
        L.port = port;
        L.count = 100;
        L.size = 1000;
        L.timeout_ms = 5000;
        for (int i = 4; i < argc; i++) {
            if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                L.count = atol(argv[++i]);
            else if (strcmp(argv[i], "--until-file") == 0 && i + 1 < argc)
                L.until = argv[++i];
            else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
                L.size = atoi(argv[++i]);
            else if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc)
                setenv("DPTOOL_CONCURRENCY", argv[++i], 1);
            else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
                L.timeout_ms = atoi(argv[++i]);
            else if (strcmp(argv[i], "--id") == 0)
                L.with_id = 1;
        }
        if (L.size < 1)
            L.size = 1;
        return cmd_load();
    }
    if (strcmp(cmd, "hold") == 0 && argc >= 6) {
        int n = atoi(argv[4]), ms = atoi(argv[5]), ok = 0;
        int *fds = calloc((size_t)n + 1, sizeof(int));
        for (int i = 0; i < n; i++) {
            fds[i] = connect_to(addr, port, 5000);
            if (fds[i] >= 0) {
                int small = 4096;
                setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
                ok++;
            }
        }
        printf("held=%d\n", ok);
        fflush(stdout);
        usleep((useconds_t)ms * 1000);
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        free(fds);
        return 0;
    }
    if (strcmp(cmd, "garbage") == 0) {
        int half_ms = -1;
        if (argc >= 6 && strcmp(argv[4], "--half-open") == 0)
            half_ms = atoi(argv[5]);
        int fd = connect_to(addr, port, 5000);
        if (fd < 0) {
            perror("connect");
            return 1;
        }
        if (half_ms < 0) {
            char junk[4096];
            unsigned int seed = (unsigned int)time(NULL);
            for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char)(rand_r(&seed) & 0xff);
            write_all(fd, junk, sizeof(junk));
        }
        int rc = wait_closed(fd, half_ms < 0 ? 15000 : half_ms);
        close(fd);
        printf(rc == 0 ? "closed\n" : "still open\n");
        return rc == 0 ? 0 : 1;
    }
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
