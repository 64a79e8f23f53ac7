/*
 * admin — the admin endpoint's server loop and its handlers (see admin.h).
 *
 * One thread, one epoll set: the listening socket, an eventfd that stops the
 * loop, and every connection. A connection is in one of two phases: reading
 * (EPOLLIN; bytes go to the HTTP codec until a request is complete) or
 * responding (EPOLLOUT; the rendered response is written, then the next
 * pipelined request is parsed from what is already buffered). Level-triggered
 * throughout: the admin endpoint serves a scrape every few seconds, so
 * clarity beats saving epoll_ctl calls.
 *
 * Status codes and bodies follow Envoy: /ready answers 200 "LIVE" or 503 with
 * the server state's name.
 */
#define _GNU_SOURCE
#include "dp/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "dp/admin_query.h"
#include "dp/http.h"

struct conn {
    int fd;
    struct dp_http_codec *codec;
    /* Input: the current request's head from its first byte (the codec keeps
     * offsets into it), then whatever follows; DP_ADMIN_MAX_HEAD bytes. */
    char *in;
    size_t in_len, fed; /* bytes held; of which the codec has consumed */
    int head_done, head_method, http10;
    size_t body; /* request body bytes so far (discarded) */
    char *path;  /* the current request's target, NUL-terminated */
    char method[16];
    /* The response being written: head, then body. */
    char *rs_head, *rs_body;
    size_t rs_head_len, rs_body_len, rs_sent;
    int responding, close_after;
    int lingering;    /* response sent, write side shut: reading to EOF before close */
    int64_t deadline; /* monotonic ms */
    uint32_t events;  /* current epoll interest */
    struct conn *prev, *next;
};

struct dp_admin {
    struct dp_engine *eng;
    int port, lfd, ep, stopfd;
    _Atomic int timeout_ms; /* set by tests while the thread runs */
    int nconns;
    int listening;        /* the listener is armed in the epoll set */
    int64_t accept_retry; /* after EMFILE/ENFILE: when to arm it again; 0 = not waiting */
    struct conn *conns;
    pthread_t th;
};

/* --- handlers ------------------------------------------------------------------------------- */

struct reply {
    int status;
    const char *ctype;
    char *body; /* owned */
    size_t len;
};

static void set(struct reply *r, int status, const char *ctype, char *body)
{
    r->status = status;
    r->ctype = ctype;
    r->body = body;
    r->len = strlen(body);
}

/* Moves a rendered buffer into the reply (no copy: bodies can be megabytes). */
static void set_buf(struct reply *r, int status, const char *ctype, struct buf *b)
{
    r->status = status;
    r->ctype = ctype;
    r->body = (char *)buf_str(b);
    r->len = b->len;
}

/* The dump without its EndpointsConfigDump (takes and returns ownership). */
static char *without_eds(char *dump)
{
    json_t *j = json_loads(dump, 0, NULL);
    json_t *configs = json_object_get(j, "configs");
    for (size_t i = json_array_size(configs); i-- > 0;) {
        const char *t = json_string_value(json_object_get(json_array_get(configs, i), "@type"));
        if (t && strcmp(t, "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump") == 0)
            json_array_remove(configs, i);
    }
    char *out = j ? json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!out)
        return dump;
    free(dump);
    return out;
}

static void handle_stats(struct dp_admin *a, const char *path, const char *query, struct reply *r)
{
    /* Envoy's query parameters: format=json|prometheus, usedonly, filter=<regex>. */
    struct dp_stats_query q = {.format = DP_STATS_TEXT};
    char *fmt = dp_admin_query_arg(query, "format");
    char *used = dp_admin_query_arg(query, "usedonly");
    char *filter = dp_admin_query_arg(query, "filter");
    regex_t re;
    if (strcmp(path, "/stats/prometheus") == 0 || (fmt && strcmp(fmt, "prometheus") == 0))
        q.format = DP_STATS_PROMETHEUS;
    else if (fmt && strcmp(fmt, "json") == 0)
        q.format = DP_STATS_JSON;
    else if (fmt && *fmt && strcmp(fmt, "text") != 0) {
        set(r, 400, "text/plain", xstrdup("usage: format=text|json|prometheus\n"));
        goto out;
    }
    q.used_only = used != NULL;
    if (filter && *filter) {
        /* Bounded: a long or invalid pattern is refused, not compiled. */
        if (strlen(filter) > 512 || regcomp(&re, filter, REG_EXTENDED | REG_NOSUB) != 0) {
            set(r, 400, "text/plain", xstrdup("Invalid regex\n"));
            goto out;
        }
        q.filter = &re;
    }
    struct buf b;
    buf_init(&b, 0);
    dp_engine_render_stats(a->eng, &q, &b);
    if (q.filter)
        regfree(&re);
    set_buf(r, 200, q.format == DP_STATS_JSON ? "application/json" : "text/plain; charset=UTF-8",
            &b);
out:
    free(fmt);
    free(used);
    free(filter);
}

/* Renders the response to one request. target is the request target as
 * received (path and query); it is modified. */
static void handle(struct dp_admin *a, const char *method, char *target, struct reply *r)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        set(r, 405, "text/plain", xstrdup("method not allowed\n"));
        return;
    }
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    dp_admin_unescape(target, 0);
    if (strcmp(target, "/ready") == 0) {
        static const char *const names[] = {"LIVE", "DRAINING", "PRE_INITIALIZING"};
        int st = dp_engine_state(a->eng);
        set(r, st == 0 ? 200 : 503, "text/plain; charset=UTF-8", xasprintf("%s\n", names[st]));
    } else if (strcmp(target, "/stats") == 0 || strcmp(target, "/stats/prometheus") == 0) {
        handle_stats(a, target, query, r);
    } else if (strcmp(target, "/clusters") == 0) {
        struct buf b;
        buf_init(&b, 0);
        dp_engine_render_clusters(a->eng, &b);
        set_buf(r, 200, "text/plain; charset=UTF-8", &b);
    } else if (strcmp(target, "/config_dump") == 0) {
        /* Envoy leaves EDS out unless asked with include_eds (kuma-cp's
         * /meshes/{m}/dataplanes/{n}/xds?include_eds=true passes it on). */
        char *dump = dp_engine_config_dump(a->eng);
        char *eds = dp_admin_query_arg(query, "include_eds");
        if (!eds)
            dump = without_eds(dump);
        free(eds);
        set(r, 200, "application/json", dump);
    } else {
        set(r, 404, "text/plain", xstrdup("invalid path\n"));
    }
}

/* --- connections ---------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void watch(struct dp_admin *a, struct conn *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void arm_listener(struct dp_admin *a, int on)
{
    if (a->listening == on)
        return;
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = &a->lfd};
    epoll_ctl(a->ep, EPOLL_CTL_MOD, a->lfd, &ev);
    a->listening = on;
}

static void conn_close(struct dp_admin *a, struct conn *c)
{
    epoll_ctl(a->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    dp_http_codec_free(c->codec);
    free(c->in);
    free(c->path);
    free(c->rs_head);
    free(c->rs_body);
    free(c);
    a->nconns--;
    if (!a->accept_retry)
        arm_listener(a, 1);
}

/* Queues a response (taking r's body) and switches the connection to writing. */
static void respond(struct dp_admin *a, struct conn *c, struct reply *r, int close_after)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    c->close_after = close_after;
    c->rs_head = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Date: %s\r\n%s\r\n",
                           r->status, reason(r->status), r->ctype, r->len, date,
                           close_after ? "Connection: close\r\n"
                           : c->http10 ? "Connection: keep-alive\r\n"
                                       : "");
    c->rs_head_len = strlen(c->rs_head);
    if (c->head_method) {
        free(r->body); /* HEAD: the length of the body, not the body */
        r->body = NULL;
        r->len = 0;
    }
    c->rs_body = r->body;
    c->rs_body_len = r->len;
    c->rs_sent = 0;
    c->responding = 1;
    c->deadline = mono_ms() + a->timeout_ms;
    watch(a, c, EPOLLOUT);
}

/* A request the server refuses before it is complete: answer and close. */
static void refuse(struct dp_admin *a, struct conn *c, int status, const char *msg)
{
    struct reply r;
    set(&r, status, "text/plain", xstrdup(msg));
    respond(a, c, &r, 1);
}

/* Drops the bytes the codec consumed, keeping a head in progress in place. */
static void drop_consumed(struct conn *c)
{
    if (!c->head_done)
        return;
    memmove(c->in, c->in + c->fed, c->in_len - c->fed);
    c->in_len -= c->fed;
    c->fed = 0;
}

/* Parses what is buffered until a request is complete (and answered), more
 * bytes are needed, or the request is refused. */
static void parse(struct dp_admin *a, struct conn *c)
{
    while (!c->responding && c->fed < c->in_len) {
        size_t used = 0;
        enum dp_http_ev ev =
            dp_http_codec_request_feed(c->codec, c->in + c->fed, c->in_len - c->fed, &used);
        c->fed += used;
        if (ev == DP_HTTP_ERROR) {
            int st = dp_http_codec_error(c->codec);
            refuse(a, c, st,
                   st == 431 ? "request header fields too large (the limit is 16384 bytes)\n"
                             : "bad request: malformed HTTP/1.1\n");
            return;
        }
        if (ev == DP_HTTP_HEAD) {
            struct dp_http_header hdrs[DP_HTTP_MAX_HEADERS];
            struct dp_http_request rq;
            dp_http_codec_request(c->codec, c->in, hdrs, &rq);
            free(c->path);
            c->path = xstrndup(rq.path, rq.path_len);
            snprintf(c->method, sizeof(c->method), "%s", rq.method);
            c->head_method = strcmp(rq.method, "HEAD") == 0;
            /* The request line's version: an HTTP/1.0 client that asked for
             * keep-alive is told it got it. */
            const char *eol = memchr(c->in, '\n', dp_http_codec_head_len(c->codec));
            size_t ll = eol ? (size_t)(eol - c->in) : 0;
            if (ll > 0 && c->in[ll - 1] == '\r')
                ll--;
            c->http10 = ll >= 8 && memcmp(c->in + ll - 8, "HTTP/1.0", 8) == 0;
            c->head_done = 1;
            c->body = 0;
            drop_consumed(c);
            continue;
        }
        if (c->head_done) {
            c->body += used;
            if (c->body > DP_ADMIN_MAX_BODY) {
                refuse(a, c, 413, "request body too large (the admin paths take none)\n");
                return;
            }
        }
        drop_consumed(c);
        if (ev == DP_HTTP_DONE) {
            int keep = dp_http_codec_request_keep_alive(c->codec) &&
                       !dp_http_codec_request_upgrade(c->codec);
            struct reply r;
            handle(a, c->method, c->path, &r);
            respond(a, c, &r, !keep);
            dp_http_codec_next(c->codec);
            c->head_done = c->head_method = 0;
            return;
        }
    }
    if (!c->responding && c->in_len == DP_ADMIN_MAX_HEAD)
        /* Not reachable while the codec enforces the same bound; kept so a
         * full buffer can never stall the connection. */
        refuse(a, c, 431, "request header fields too large (the limit is 16384 bytes)\n");
}

static void on_readable(struct dp_admin *a, struct conn *c)
{
    if (c->lingering) {
        char scratch[4096];
        ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(a, c);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, DP_ADMIN_MAX_HEAD - c->in_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(a, c);
        return;
    }
    if (n < 0)
        return;
    c->in_len += (size_t)n;
    parse(a, c);
}

static void on_writable(struct dp_admin *a, struct conn *c)
{
    for (;;) {
        struct iovec iov[2];
        int k = 0;
        if (c->rs_sent < c->rs_head_len)
            iov[k++] = (struct iovec){c->rs_head + c->rs_sent, c->rs_head_len - c->rs_sent};
        size_t bsent = c->rs_sent > c->rs_head_len ? c->rs_sent - c->rs_head_len : 0;
        if (bsent < c->rs_body_len)
            iov[k++] = (struct iovec){c->rs_body + bsent, c->rs_body_len - bsent};
        if (k == 0)
            break;
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            conn_close(a, c);
            return;
        }
        c->rs_sent += (size_t)n;
        c->deadline = mono_ms() + a->timeout_ms; /* progress */
    }
    free(c->rs_head);
    free(c->rs_body);
    c->rs_head = c->rs_body = NULL;
    c->responding = 0;
    if (c->close_after) {
        /* Lingering close: a refused client may still be sending (the rest of
         * an oversized head or body); closing with unread input would reset
         * the connection and could destroy the answer before the client reads
         * it. Shut the write side and discard input until EOF, for a short
         * while at most. */
        shutdown(c->fd, SHUT_WR);
        c->lingering = 1;
        c->deadline = mono_ms() + (a->timeout_ms < 2000 ? a->timeout_ms : 2000);
        watch(a, c, EPOLLIN);
        return;
    }
    /* The next request (keep-alive) has until the deadline to arrive whole. */
    c->deadline = mono_ms() + a->timeout_ms;
    watch(a, c, EPOLLIN);
    parse(a, c);
}

static void on_accept(struct dp_admin *a)
{
    while (a->nconns < DP_ADMIN_MAX_CONNS) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: leave the client in the backlog and try
                 * again shortly instead of spinning on a readable listener. */
                log_warn("dp-admin", "accept: %s", strerror(errno));
                arm_listener(a, 0);
                a->accept_retry = mono_ms() + 100;
            }
            return;
        }
        struct conn *c = xcalloc(1, sizeof(*c));
        c->fd = fd;
        c->codec = dp_http_codec_new(DP_ADMIN_MAX_HEAD);
        c->in = xmalloc(DP_ADMIN_MAX_HEAD);
        c->deadline = mono_ms() + a->timeout_ms;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            dp_http_codec_free(c->codec);
            free(c->in);
            free(c);
            close(fd);
            continue;
        }
        c->next = a->conns;
        if (a->conns)
            a->conns->prev = c;
        a->conns = c;
        a->nconns++;
    }
    /* Full: further clients wait in the listen backlog until one closes. */
    arm_listener(a, 0);
}

/* Closes connections past their deadline; returns the ms until the next one
 * (-1: none). A request that had begun arriving is answered 408 first. */
static int expire(struct dp_admin *a)
{
    int64_t now = mono_ms(), next = -1;
    for (struct conn *c = a->conns, *nx; c; c = nx) {
        nx = c->next;
        if (c->deadline <= now) {
            if (!c->responding && !c->lingering && (c->in_len > 0 || c->head_done)) {
                /* A request had begun: answer 408, then the lingering close
                 * (the client may still be trickling bytes, which must not
                 * turn the answer into a reset). The answer has a deadline
                 * of its own. */
                refuse(a, c, 408, "request not received whole within the timeout\n");
            } else {
                conn_close(a, c);
                continue;
            }
        }
        if (next < 0 || c->deadline - now < next)
            next = c->deadline - now;
    }
    if (a->accept_retry) {
        if (a->accept_retry <= now) {
            a->accept_retry = 0;
            if (a->nconns < DP_ADMIN_MAX_CONNS)
                arm_listener(a, 1);
        } else if (next < 0 || a->accept_retry - now < next) {
            next = a->accept_retry - now;
        }
    }
    return (int)next;
}

static void *admin_main(void *arg)
{
    struct dp_admin *a = arg;
    struct epoll_event evs[32];
    for (;;) {
        int timeout = expire(a);
        int n = epoll_wait(a->ep, evs, 32, timeout);
        if (n < 0 && errno != EINTR) {
            log_warn("dp-admin", "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &a->stopfd)
                return NULL;
            if (p == &a->lfd) {
                on_accept(a);
                continue;
            }
            struct conn *c = p;
            /* A connection closed earlier in this batch cannot appear later
             * in it: each fd has one entry, and a closed one is not reused
             * before the next epoll_wait. */
            if (c->responding)
                on_writable(a, c);
            else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(a, c);
        }
    }
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------------------------ */

int dp_admin_start(struct dp_engine *eng, int port, struct dp_admin **out, struct err *e)
{
    if (port < 0 || port > 65535)
        return err_set(e, "admin port %d out of range", port);
    struct dp_admin *a = xcalloc(1, sizeof(*a));
    a->eng = eng;
    a->timeout_ms = DP_ADMIN_TIMEOUT_MS;
    a->lfd = a->ep = a->stopfd = -1;
    int rc = -1;
    a->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->lfd < 0) {
        err_set(e, "admin: socket: %s", strerror(errno));
        goto out;
    }
    int one = 1;
    setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(a->lfd, 128) != 0) {
        err_set(e, "admin: cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
        goto out;
    }
    socklen_t sl = sizeof(sa);
    getsockname(a->lfd, (struct sockaddr *)&sa, &sl);
    a->port = ntohs(sa.sin_port);
    a->ep = epoll_create1(EPOLL_CLOEXEC);
    a->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->ep < 0 || a->stopfd < 0) {
        err_set(e, "admin: epoll/eventfd: %s", strerror(errno));
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &a->lfd};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &a->stopfd};
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->lfd, &ev) != 0 ||
        epoll_ctl(a->ep, EPOLL_CTL_ADD, a->stopfd, &sev) != 0) {
        err_set(e, "admin: epoll_ctl: %s", strerror(errno));
        goto out;
    }
    a->listening = 1;
    /* The loop renders bodies with the engine's views, glibc's regex and
     * jansson: 256 KiB of stack is plenty (only touched pages count). */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int perr = pthread_create(&a->th, &attr, admin_main, a);
    pthread_attr_destroy(&attr);
    if (perr != 0) {
        err_set(e, "admin: thread: %s", strerror(perr));
        goto out;
    }
    rc = 0;
    *out = a;
out:
    if (rc != 0) {
        if (a->lfd >= 0)
            close(a->lfd);
        if (a->ep >= 0)
            close(a->ep);
        if (a->stopfd >= 0)
            close(a->stopfd);
        free(a);
    }
    return rc;
}

int dp_admin_port(const struct dp_admin *a)
{
    return a->port;
}

void dp_admin__set_timeout_ms(struct dp_admin *a, int ms)
{
    a->timeout_ms = ms;
}

void dp_admin_stop(struct dp_admin *a)
{
    if (!a)
        return;
    uint64_t one = 1;
    ssize_t ignored = write(a->stopfd, &one, sizeof(one));
    (void)ignored;
    pthread_join(a->th, NULL);
    while (a->conns)
        conn_close(a, a->conns);
    close(a->lfd);
    close(a->ep);
    close(a->stopfd);
    free(a);
}
