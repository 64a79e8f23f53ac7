/*
 * libFuzzer harness for kuma-dp's HTTP request path: the http-parser glue
 * (dp_http_codec_*) and routing, driven the way the engine drives them.
 * Input: byte 0 = feed step (1..256), byte 1 = where the stream splits into
 * the client's bytes (first part) and the upstream's response bytes (rest,
 * proportionally); the rest is the stream. Every request head is routed
 * against a fixed route table (all matcher kinds), has x-kuma-tags stripped
 * and x-request-id appended, and its view checked to lie inside the buffer. Any crash, leak or
 * sanitizer report is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dp_http_conn_manager *g_m;
static struct dp_http_routes *g_r;

static void setup(void)
{
    g_m = calloc(1, sizeof(*g_m));
    struct dp_http_vhost *api = dp_http_add_vhost(&g_m->route_config, "api");
    dp_http_vhost_add_domain(api, "api.example.com");
    dp_http_vhost_add_domain(api, "*.example.com");
    dp_http_vhost_add_domain(api, "api.*");
    dp_http_add_route(api, DP_HTTP_PATH_EXACT, "/exact", "a");
    struct dp_http_vhost *vh = dp_http_add_vhost(&g_m->route_config, "any");
    dp_http_vhost_add_domain(vh, "*");
    dp_http_add_route(vh, DP_HTTP_PATH_REGEX, "/items/[0-9]+(/.*)?", "b");
    struct dp_http_route *r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "c");
    dp_http_route_add_header(r, "x-v", DP_HTTP_MATCH_SUFFIX, "2");
    dp_http_route_add_header(r, ":authority", DP_HTTP_MATCH_CONTAINS, "ex");
    r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "d");
    dp_http_route_add_header(r, "x-user", DP_HTTP_MATCH_REGEX, "u-[a-z]*")->ignore_case = 1;
    dp_http_route_add_header(r, ":method", DP_HTTP_MATCH_EXACT, "POST")->invert = 1;
    r = dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/q", "q");
    dp_http_route_add_query(r, "v", DP_HTTP_MATCH_REGEX, "[0-9]+");
    dp_http_route_add_query(r, "debug", DP_HTTP_MATCH_PRESENT, NULL);
    dp_http_add_route(vh, DP_HTTP_PATH_PREFIX, "/", "e");
    struct err e;
    if (dp_http_routes_new(g_m, &g_r, &e) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_r)
        setup();
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] + 1;
    size_t split = 2 + (size - 2) * data[1] / 255;
    /* A private, writable copy: stripping rewrites it. */
    size_t n = split - 2;
    /* Room for the headers the proxy appends to each head. */
    size_t room = n + 64 * 8;
    char *buf = malloc(room);
    memcpy(buf, data + 2, n);
    const char *rs = (const char *)data + split;
    size_t rs_len = size - split;
    struct dp_http_codec *h = dp_http_codec_new(4096);
    char *names[] = {"x-kuma-tags"};
    size_t start = 0, parsed = 0, avail = 0;
    int done = 0;
    while (!done) {
        int progressed = 0;
        if (avail < n) {
            avail = avail + step > n ? n : avail + step;
            progressed = 1;
        }
        while (parsed < avail) {
            size_t used;
            enum dp_http_ev ev = dp_http_codec_request_feed(h, buf + parsed, avail - parsed, &used);
            if (used > avail - parsed)
                abort();
            parsed += used;
            progressed = 1;
            if (ev == DP_HTTP_HEAD) {
                size_t rm = dp_http_codec_strip(h, buf + start, n - start, names, 1);
                if (rm > n - start || rm > parsed - start + 1)
                    abort();
                n -= rm;
                parsed -= rm;
                avail = avail > rm ? avail - rm : 0;
                if (avail < parsed)
                    avail = parsed;
                size_t add = dp_http_codec_add_header(h, buf + start, n - start, room - start,
                                                      "x-request-id", "0000-fuzz");
                if (add && add != strlen("x-request-id: 0000-fuzz\r\n"))
                    abort();
                n += add;
                parsed += add;
                avail += add;
                struct dp_http_header hs[DP_HTTP_MAX_HEADERS];
                struct dp_http_request rq;
                dp_http_codec_request(h, buf + start, hs, &rq);
                const char *lo = buf + start, *hi = buf + n;
                if (rq.path_len && (rq.path < lo || rq.path + rq.path_len > hi))
                    abort();
                for (size_t i = 0; i < rq.n_headers; i++)
                    if ((hs[i].name_len && (hs[i].name < lo || hs[i].name + hs[i].name_len > hi)) ||
                        (hs[i].value_len &&
                         (hs[i].value < lo || hs[i].value + hs[i].value_len > hi)))
                        abort();
                (void)dp_http_route_select(g_r, &rq);
            } else if (ev == DP_HTTP_DONE) {
                size_t u2;
                enum dp_http_ev rev = dp_http_codec_response_feed(h, rs, rs_len, &u2);
                if (u2 > rs_len)
                    abort();
                if (rev == DP_HTTP_MORE)
                    (void)dp_http_codec_response_feed(h, NULL, 0, &u2);
                (void)dp_http_codec_status(h);
                (void)dp_http_codec_response_keep_alive(h);
                (void)dp_http_codec_request_keep_alive(h);
                dp_http_codec_next(h);
                start = parsed;
            } else if (ev == DP_HTTP_ERROR) {
                int st = dp_http_codec_error(h);
                if (st != 400 && st != 431)
                    abort();
                done = 1;
                break;
            } else {
                break;
            }
        }
        if (!progressed)
            done = 1;
    }
    dp_http_codec_free(h);
    free(buf);
    return 0;
}
