/*
 * http: route selection (virtual hosts, path and header matchers), the
 * http-parser glue (request boundaries fed byte by byte, pipelining,
 * chunked bodies, errors, header stripping, responses) and local replies.
 */
#include <stdlib.h>
#include <string.h>

#include "dp/http.h"
#include "test.h"

/* Two virtual hosts: "api.example.com" (+ "*.api.example.com") and "*". */
static struct dp_http_conn_manager *sample_hcm(void)
{
    struct dp_http_conn_manager *m = calloc(1, sizeof(*m));
    m->stat_prefix = strdup("backend");
    struct dp_http_vhost *api = dp_http_add_vhost(&m->route_config, "api");
    dp_http_vhost_add_domain(api, "api.example.com");
    dp_http_vhost_add_domain(api, "*.api.example.com");
    dp_http_add_route(api, DP_HTTP_PATH_PREFIX, "/", "api");
    struct dp_http_vhost *vh = dp_http_add_vhost(&m->route_config, "any");
    dp_http_vhost_add_domain(vh, "*");
    dp_http_add_route(vh, DP_HTTP_PATH_EXACT, "/exact", "exact");
    dp_http_add_route(vh, DP_HTTP_PATH_REGEX, "/items/[0-9]+", "regex");
    dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/v1", "v1");
    dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/v2", "v2");
    struct dp_http_route *r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "by-header");
    dp_http_route_add_header(r, "X-Version", DP_HTTP_MATCH_EXACT, "v2");
    dp_http_route_add_header(r, "x-debug", DP_HTTP_MATCH_PRESENT, NULL)->invert = 1;
    r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "by-method");
    dp_http_route_add_header(r, ":method", DP_HTTP_MATCH_EXACT, "DELETE");
    r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "by-regex-header");
    dp_http_route_add_header(r, "x-user", DP_HTTP_MATCH_REGEX, "user-[a-z]+");
    r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "not-prefix");
    dp_http_route_add_header(r, "x-team", DP_HTTP_MATCH_PREFIX, "blue")->invert = 1;
    dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "default");
    return m;
}

struct route_case {
    const char *method, *path, *host;
    const char *h1, *v1, *h2, *v2;
    const char *want; /* cluster, NULL = no route */
};

static const char *pick(const struct dp_http_routes *t, const struct route_case *c)
{
    struct dp_http_header hs[2];
    size_t n = 0;
    if (c->h1)
        hs[n++] = (struct dp_http_header){c->h1, strlen(c->h1), c->v1, strlen(c->v1)};
    if (c->h2)
        hs[n++] = (struct dp_http_header){c->h2, strlen(c->h2), c->v2, strlen(c->v2)};
    struct dp_http_request rq = {
        .method = c->method,
        .path = c->path,
        .path_len = strlen(c->path),
        .authority = c->host,
        .authority_len = c->host ? strlen(c->host) : 0,
        .headers = hs,
        .n_headers = n,
    };
    int idx = dp_http_route_select(t, &rq);
    return idx < 0 ? NULL : dp_http_routes_get(t, (size_t)idx)->cluster;
}

TEST(http_route_select)
{
    struct dp_http_conn_manager *m = sample_hcm();
    struct dp_http_routes *t = NULL;
    struct err e = {{0}};
    ASSERT_INT_EQ(dp_http_routes_new(m, &t, &e), 0);
    static const struct route_case cases[] = {
        {"GET", "/anything", "api.example.com", 0, 0, 0, 0, "api"},
        {"GET", "/anything", "API.Example.com", 0, 0, 0, 0, "api"},
        {"GET", "/anything", "eu.api.example.com", 0, 0, 0, 0, "api"},
        /* The port counts (Envoy's default): only "*" matches. */
        {"GET", "/anything", "api.example.com:8080", 0, 0, 0, 0, "default"},
        {"GET", "/exact", "backend", 0, 0, 0, 0, "exact"},
        {"GET", "/exact?q=1", "backend", 0, 0, 0, 0, "exact"},
        {"GET", "/exact/more", "backend", 0, 0, 0, 0, "default"},
        {"GET", "/items/42", NULL, 0, 0, 0, 0, "regex"},
        {"GET", "/items/42?x=y", NULL, 0, 0, 0, 0, "regex"},
        {"GET", "/items/4x", NULL, 0, 0, 0, 0, "default"},
        {"GET", "/v1", "backend", 0, 0, 0, 0, "v1"},
        {"GET", "/v1/users", "backend", 0, 0, 0, 0, "v1"},
        {"POST", "/v2/x", "backend", 0, 0, 0, 0, "v2"},
        {"GET", "/V2/x", "backend", 0, 0, 0, 0, "default"}, /* paths are case-sensitive */
        {"GET", "/other", "backend", "x-version", "v2", 0, 0, "by-header"},
        {"GET", "/other", "backend", "X-VERSION", "v2", 0, 0, "by-header"},
        {"GET", "/other", "backend", "x-version", "v2", "x-debug", "1", "default"},
        {"GET", "/other", "backend", "x-version", "v3", 0, 0, "default"},
        {"DELETE", "/other", "backend", 0, 0, 0, 0, "by-method"},
        {"GET", "/other", "backend", "x-user", "user-bob", 0, 0, "by-regex-header"},
        {"GET", "/other", "backend", "x-user", "user-bob2", 0, 0, "default"},
        {"GET", "/other", "backend", "x-team", "red", 0, 0, "not-prefix"},
        {"GET", "/other", "backend", "x-team", "blue-2", 0, 0, "default"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = pick(t, &cases[i]);
        if (!got || strcmp(got, cases[i].want) != 0)
            TEST_FAIL_("case %zu (%s %s host %s): got %s, want %s", i, cases[i].method,
                       cases[i].path, cases[i].host ? cases[i].host : "-", got ? got : "(none)",
                       cases[i].want);
    }
    dp_http_routes_free(t);
    dp_http_conn_manager_free(m);
}

/* No virtual host for the authority: no route (404). A bad regex is refused. */
TEST(http_route_none_and_bad_regex)
{
    struct dp_http_conn_manager *m = calloc(1, sizeof(*m));
    struct dp_http_vhost *vh = dp_http_add_vhost(&m->route_config, "only");
    dp_http_vhost_add_domain(vh, "only.example.com");
    dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "c");
    struct dp_http_routes *t = NULL;
    struct err e = {{0}};
    ASSERT_INT_EQ(dp_http_routes_new(m, &t, &e), 0);
    struct route_case c = {"GET", "/", "other.example.com", 0, 0, 0, 0, NULL};
    ASSERT(pick(t, &c) == NULL);
    c.host = NULL;
    ASSERT(pick(t, &c) == NULL);
    c.host = "only.example.com";
    ASSERT_STR_EQ(pick(t, &c), "c");
    dp_http_routes_free(t);
    dp_http_add_route(vh, DP_HTTP_PATH_REGEX, "/(unclosed", "c");
    ASSERT(dp_http_routes_new(m, &t, &e) != 0);
    ASSERT_STR_CONTAINS(e.msg, "/(unclosed");
    dp_http_conn_manager_free(m);
}

/* Feeds a whole stream through the request side, step bytes at a time, the
 * way the engine does (stop on events, resume after), and records events. */
struct rq_trace {
    char ev[64];
    size_t n;
    char paths[8][64];
    size_t np;
};

static void feed_requests(const char *stream, size_t len, size_t step, struct rq_trace *tr)
{
    struct dp_http_codec *h = dp_http_codec_new(4096);
    size_t start = 0, parsed = 0; /* message start, bytes parsed */
    memset(tr, 0, sizeof(*tr));
    size_t avail = 0;
    while (parsed < len || avail < len) {
        if (avail < len)
            avail = avail + step > len ? len : avail + step;
        int progressed = 0;
        while (parsed < avail) {
            size_t used;
            enum dp_http_ev ev =
                dp_http_codec_request_feed(h, stream + parsed, avail - parsed, &used);
            parsed += used;
            if (ev == DP_HTTP_HEAD) {
                struct dp_http_header hs[DP_HTTP_MAX_HEADERS];
                struct dp_http_request rq;
                dp_http_codec_request(h, stream + start, hs, &rq);
                snprintf(tr->paths[tr->np++ % 8], 64, "%s %.*s", rq.method, (int)rq.path_len,
                         rq.path);
                tr->ev[tr->n++] = 'H';
            } else if (ev == DP_HTTP_DONE) {
                tr->ev[tr->n++] = 'D';
                dp_http_codec_next(h);
                start = parsed;
            } else if (ev == DP_HTTP_ERROR) {
                tr->ev[tr->n++] = 'E';
                dp_http_codec_free(h);
                return;
            } else {
                break;
            }
            progressed = 1;
        }
        if (!progressed && avail == len)
            break;
    }
    dp_http_codec_free(h);
}

TEST(http_codec_requests_any_split)
{
    static const char stream[] =
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        "PUT /c?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
        "GET /d HTTP/1.0\r\n\r\n";
    for (size_t step = 1; step <= sizeof(stream); step++) {
        struct rq_trace tr;
        feed_requests(stream, sizeof(stream) - 1, step, &tr);
        if (strcmp(tr.ev, "HDHDHDHD") != 0)
            TEST_FAIL_("step %zu: events %s", step, tr.ev);
        ASSERT_STR_EQ(tr.paths[0], "GET /a");
        ASSERT_STR_EQ(tr.paths[1], "POST /b");
        ASSERT_STR_EQ(tr.paths[2], "PUT /c?q=1");
        ASSERT_STR_EQ(tr.paths[3], "GET /d");
    }
}

TEST(http_codec_errors)
{
    static const struct {
        const char *in;
        const char *events;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", "E", 400},
        {"GET / HTTP/1.1\r\nBroken header\r\n\r\n", "E", 400},
        {"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "E", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x01\x02", "HDE", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HE", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "E", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rq_trace tr;
        feed_requests(cases[i].in, strlen(cases[i].in), 1000, &tr);
        if (strcmp(tr.ev, cases[i].events) != 0)
            TEST_FAIL_("case %zu: events %s, want %s", i, tr.ev, cases[i].events);
    }
    /* A head larger than max_head: 431, even before it ends. */
    struct dp_http_codec *h = dp_http_codec_new(64);
    char big[200];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    size_t used;
    ASSERT_INT_EQ(dp_http_codec_request_feed(h, big, sizeof(big), &used), DP_HTTP_ERROR);
    ASSERT_INT_EQ(dp_http_codec_error(h), 431);
    dp_http_codec_free(h);
    /* Too many headers: 431. */
    h = dp_http_codec_new(1 << 20);
    char *many = malloc(64 * 1024);
    size_t n = (size_t)sprintf(many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < DP_HTTP_MAX_HEADERS + 1; i++)
        n += (size_t)sprintf(many + n, "h%d: v\r\n", i);
    n += (size_t)sprintf(many + n, "\r\n");
    ASSERT_INT_EQ(dp_http_codec_request_feed(h, many, n, &used), DP_HTTP_ERROR);
    ASSERT_INT_EQ(dp_http_codec_error(h), 431);
    free(many);
    dp_http_codec_free(h);
}

TEST(http_codec_strip_and_flags)
{
    char msg[] = "GET /x HTTP/1.1\r\nHost: a\r\nX-Kuma-Tags: &a=b&\r\nKeep: 1\r\n"
                 "x-kuma-tags: again\r\n\r\nBODY";
    struct dp_http_codec *h = dp_http_codec_new(4096);
    size_t used, len = strlen(msg);
    ASSERT_INT_EQ(dp_http_codec_request_feed(h, msg, len, &used), DP_HTTP_HEAD);
    char *names[] = {"x-kuma-tags"};
    size_t removed = dp_http_codec_strip(h, msg, len, names, 1);
    ASSERT_INT_EQ(removed, strlen("X-Kuma-Tags: &a=b&\r\n") + strlen("x-kuma-tags: again\r\n"));
    msg[len - removed] = 0;
    ASSERT_STR_EQ(msg, "GET /x HTTP/1.1\r\nHost: a\r\nKeep: 1\r\n\r\nBODY");
    ASSERT_INT_EQ(dp_http_codec_head_len(h),
                  strlen("GET /x HTTP/1.1\r\nHost: a\r\nKeep: 1\r\n\r\n"));
    struct dp_http_header hs[DP_HTTP_MAX_HEADERS];
    struct dp_http_request rq;
    dp_http_codec_request(h, msg, hs, &rq);
    ASSERT_INT_EQ(rq.n_headers, 2);
    ASSERT_INT_EQ(rq.authority_len, 1);
    ASSERT(strncmp(hs[1].name, "Keep", 4) == 0 && strncmp(hs[1].value, "1", 1) == 0);
    dp_http_codec_free(h);

    /* Keep-alive and upgrade flags. */
    static const struct {
        const char *in;
        int keep, upgrade;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 1, 0},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0, 0},
        {"GET / HTTP/1.0\r\n\r\n", 0, 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, 0},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h = dp_http_codec_new(4096);
        const char *p = cases[i].in;
        size_t left = strlen(p);
        enum dp_http_ev ev;
        do {
            ev = dp_http_codec_request_feed(h, p, left, &used);
            p += used;
            left -= used;
        } while (ev == DP_HTTP_HEAD);
        ASSERT_INT_EQ(ev, DP_HTTP_DONE);
        ASSERT_INT_EQ(dp_http_codec_request_keep_alive(h), cases[i].keep);
        ASSERT_INT_EQ(dp_http_codec_request_upgrade(h), cases[i].upgrade);
        dp_http_codec_free(h);
    }
}

/* Response side: status, bodies by length, chunks or EOF, HEAD, 100. */
TEST(http_codec_responses)
{
    static const struct {
        const char *method_line; /* the request that precedes */
        const char *rs;
        int eof; /* then the upstream closes */
        int want_ev, status, keep;
        size_t trailing; /* bytes after the response, not consumed */
    } cases[] = {
        {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA", 0, DP_HTTP_DONE, 200, 1, 5},
        {"GET", "HTTP/1.1 404 NF\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 0,
         DP_HTTP_DONE, 404, 1, 0},
        {"GET", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil eof", 1, DP_HTTP_DONE, 200, 0,
         0},
        {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 0, DP_HTTP_DONE, 200, 1, 0},
        {"GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 0,
         DP_HTTP_DONE, 201, 1, 0},
        {"GET", "HTTP/1.1 204 No Content\r\n\r\n", 0, DP_HTTP_DONE, 204, 1, 0},
        {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 1, DP_HTTP_ERROR, 200, 1, 0},
        {"GET", "NOT HTTP\r\n\r\n", 0, DP_HTTP_ERROR, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dp_http_codec *h = dp_http_codec_new(4096);
        char rq[64];
        size_t used;
        int n = snprintf(rq, sizeof(rq), "%s / HTTP/1.1\r\n\r\n", cases[i].method_line);
        ASSERT_INT_EQ(dp_http_codec_request_feed(h, rq, (size_t)n, &used), DP_HTTP_HEAD);
        const char *p = cases[i].rs;
        size_t len = strlen(p);
        enum dp_http_ev ev = dp_http_codec_response_feed(h, p, len, &used);
        if (ev == DP_HTTP_MORE && cases[i].eof)
            ev = dp_http_codec_response_feed(h, NULL, 0, &used);
        if ((int)ev != cases[i].want_ev)
            TEST_FAIL_("case %zu: event %d, want %d", i, ev, cases[i].want_ev);
        if (ev == DP_HTTP_DONE) {
            ASSERT_INT_EQ(dp_http_codec_status(h), cases[i].status);
            ASSERT_INT_EQ(dp_http_codec_response_keep_alive(h), cases[i].keep);
            /* Only the body that runs to the connection's end needs it closed. */
            ASSERT_INT_EQ(dp_http_codec_response_until_close(h), cases[i].eof && !cases[i].keep);
            if (!cases[i].eof)
                ASSERT_INT_EQ(len - used, cases[i].trailing);
        }
        dp_http_codec_free(h);
    }
}

TEST(http_local_reply)
{
    char out[512];
    size_t n = dp_http_local_reply(out, sizeof(out), 503, "no healthy upstream", 0);
    ASSERT_STR_EQ(out, "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\n"
                       "content-type: text/plain\r\nserver: envoy\r\n\r\nno healthy upstream");
    ASSERT_INT_EQ(n, strlen(out));
    n = dp_http_local_reply(out, sizeof(out), 400, "Bad Request", 1);
    ASSERT_STR_CONTAINS(out, "connection: close\r\n\r\nBad Request");
    ASSERT_INT_EQ(dp_http_local_reply(out, 20, 404, NULL, 0), 0); /* does not fit */
}

/* Headers appended before the blank line (CRLF or bare LF), the bytes after
 * the head moved up, nothing added without room. */
TEST(http_codec_add_header)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY",
         "GET / HTTP/1.1\r\nHost: a\r\nx-a: 1\r\n\r\nBODY"},
        {"GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nx-a: 1\r\n\r\n"},
        {"GET / HTTP/1.1\nHost: a\n\nB", "GET / HTTP/1.1\nHost: a\nx-a: 1\r\n\nB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256] = {0};
        size_t len = strlen(cases[i].in), used;
        memcpy(buf, cases[i].in, len);
        struct dp_http_codec *h = dp_http_codec_new(4096);
        ASSERT_INT_EQ(dp_http_codec_request_feed(h, buf, len, &used), DP_HTTP_HEAD);
        size_t head = dp_http_codec_head_len(h);
        size_t n = dp_http_codec_add_header(h, buf, len, sizeof(buf), "x-a", "1");
        ASSERT_INT_EQ(n, 8);
        ASSERT_STR_EQ(buf, cases[i].want);
        ASSERT_INT_EQ(dp_http_codec_head_len(h), head + 8);
        /* The parser resumes on the moved blank line: the request completes. */
        ASSERT_INT_EQ(dp_http_codec_request_feed(h, buf + used + n, len + n - used - n, &used),
                      DP_HTTP_DONE);
        dp_http_codec_free(h);
    }
    char tight[40] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t used;
    struct dp_http_codec *h = dp_http_codec_new(4096);
    ASSERT_INT_EQ(dp_http_codec_request_feed(h, tight, strlen(tight), &used), DP_HTTP_HEAD);
    ASSERT_INT_EQ(
        dp_http_codec_add_header(h, tight, strlen(tight), sizeof(tight), "x-long", "0123456789"),
        0);
    ASSERT_STR_EQ(tight, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    dp_http_codec_free(h);
}

/* RouteMatch.query_parameters: present, exact, regex, on the raw query. */
TEST(http_route_query_parameters)
{
    struct dp_http_conn_manager *m = calloc(1, sizeof(*m));
    struct dp_http_vhost *vh = dp_http_add_vhost(&m->route_config, "any");
    dp_http_vhost_add_domain(vh, "*");
    struct dp_http_route *r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "exact");
    dp_http_route_add_query(r, "v", DP_HTTP_MATCH_EXACT, "2");
    r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "regex");
    dp_http_route_add_query(r, "user", DP_HTTP_MATCH_REGEX, "u-[0-9]+");
    r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "present");
    dp_http_route_add_query(r, "debug", DP_HTTP_MATCH_PRESENT, NULL);
    dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "default");
    struct dp_http_routes *t = NULL;
    struct err e = {{0}};
    ASSERT_INT_EQ(dp_http_routes_new(m, &t, &e), 0);
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/a?v=2", "exact"},       {"/a?x=1&v=2", "exact"},      {"/a?v=22", "default"},
        {"/a?v=1&v=2", "default"}, /* the first value counts */
        {"/a?user=u-42", "regex"}, {"/a?user=u-42x", "default"}, {"/a?debug", "present"},
        {"/a?debug=", "present"},  {"/a?debugger=1", "default"}, {"/a", "default"},
        {"/a?v=2#frag", "exact"},  {"/v=2", "default"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct route_case c = {"GET", cases[i].path, "h", 0, 0, 0, 0, cases[i].want};
        const char *got = pick(t, &c);
        if (!got || strcmp(got, cases[i].want) != 0)
            TEST_FAIL_("%s: got %s, want %s", cases[i].path, got ? got : "(none)", cases[i].want);
    }
    dp_http_routes_free(t);
    dp_http_conn_manager_free(m);
}
