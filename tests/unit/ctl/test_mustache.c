/* Tests for ctl/mustache: what kumactl apply -v renders. */
#include "ctl/mustache.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"

static char *render(const char *tmpl, int n, ...)
{
    char *keys[16], *vals[16];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        keys[i] = va_arg(ap, char *);
        vals[i] = va_arg(ap, char *);
    }
    va_end(ap);
    json_t *ctx = mustache_context(keys, vals, (size_t)n);
    char *out = NULL, *msg = NULL;
    if (mustache_render(tmpl, strlen(tmpl), ctx, 1 << 20, &out, &msg) < 0)
        TEST_FAIL_("render failed: %s", msg);
    json_decref(ctx);
    return out;
}

static char *render_err(const char *tmpl)
{
    json_t *ctx = json_object();
    char *out = NULL, *msg = NULL;
    if (mustache_render(tmpl, strlen(tmpl), ctx, 1 << 20, &out, &msg) == 0)
        TEST_FAIL_("render of %s should fail", tmpl);
    json_decref(ctx);
    return msg;
}

#define EXPECT(got, want)                                                                          \
    do {                                                                                           \
        char *g_ = (got);                                                                          \
        ASSERT_STR_EQ(g_, want);                                                                   \
        free(g_);                                                                                  \
    } while (0)

TEST(mustache_variables_and_dotted_names)
{
    EXPECT(render("name: {{name}}\naddr: {{ addr }}", 2, "name", "dp-1", "addr", "1.2.3.4"),
           "name: dp-1\naddr: 1.2.3.4");
    EXPECT(render("port: {{dp.port}}/{{dp.host.ip}}", 2, "dp.port", "80", "dp.host.ip", "10.0.0.1"),
           "port: 80/10.0.0.1");
    /* Missing names render as nothing. */
    EXPECT(render("a{{missing}}b{{dp.none}}c", 1, "dp.port", "1"), "abc");
    /* Later values win. */
    EXPECT(render("{{x}}", 2, "x", "1", "x", "2"), "2");
}

TEST(mustache_escapes_html_unless_raw)
{
    EXPECT(render("{{v}}|{{{v}}}|{{& v}}", 1, "v", "a&b<c>\"d'"),
           "a&amp;b&lt;c&gt;&#34;d&#39;|a&b<c>\"d'|a&b<c>\"d'");
}

TEST(mustache_sections_inverted_and_comments)
{
    EXPECT(render("{{#tls}}tls: {{tls}}{{/tls}}{{^tls}}plain{{/tls}}", 1, "tls", "on"), "tls: on");
    EXPECT(render("{{#tls}}tls{{/tls}}{{^tls}}plain{{/tls}}", 0), "plain");
    EXPECT(render("{{#dp}}{{port}}-{{name}}{{/dp}}", 2, "dp.port", "80", "name", "top"), "80-top");
    EXPECT(render("{{#a}}{{#a}}x{{/a}}{{/a}}", 1, "a", "1"), "x");
    EXPECT(render("a{{! a comment }}b{{> partial}}c", 0), "abc");
}

TEST(mustache_rejects_broken_templates)
{
    char *m;
    m = render_err("name: {{name");
    ASSERT_STR_EQ(m, "unmatched open tag");
    free(m);
    m = render_err("{{/x}}");
    ASSERT_STR_EQ(m, "unmatched close tag \"x\"");
    free(m);
    m = render_err("{{#x}}open");
    ASSERT_STR_CONTAINS(m, "no closing tag");
    free(m);
    m = render_err("{{=<% %>=}}");
    ASSERT_STR_CONTAINS(m, "not supported");
    free(m);
}

TEST(mustache_output_is_bounded)
{
    char *keys[] = {"v"}, *vals[] = {"0123456789"};
    json_t *ctx = mustache_context(keys, vals, 1);
    char *out = NULL, *msg = NULL;
    ASSERT(mustache_render("{{v}}{{v}}", 10, ctx, 15, &out, &msg) < 0);
    ASSERT_STR_CONTAINS(msg, "too large");
    free(msg);
    json_decref(ctx);
}
