/* Tests for codec: YAML/JSON parsing rules, limits and YAML output. */
#include "core/codec.h"

#include "test.h"

static json_t *parse1(const char *s)
{
    json_t *doc = NULL;
    struct err e;
    if (codec_parse_one(s, strlen(s), &doc, &e) < 0)
        TEST_FAIL_("parse failed: %s", e.msg);
    return doc;
}

static void parse_fails(const char *s, const char *msg)
{
    json_t *docs = NULL;
    struct err e = {{0}};
    if (codec_parse(s, strlen(s), &docs, &e) == 0)
        TEST_FAIL_("parse of %s should fail", s);
    ASSERT_STR_CONTAINS(e.msg, msg);
}

TEST(codec_scalars_resolve_like_yaml_v2)
{
    json_t *d = parse1("a: 5670\nb: '5670'\nc: true\nd: yes\ne: ~\nf: 1.5\ng: hello\nh: \"on\"\n"
                       "i: 0x1f\nj: 1_000\nk: 99999999999999999999\nl: .inf\n");
    ASSERT(json_is_integer(json_object_get(d, "a")));
    ASSERT_INT_EQ(json_integer_value(json_object_get(d, "a")), 5670);
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "b")), "5670");
    ASSERT(json_is_true(json_object_get(d, "c")));
    ASSERT(json_is_true(json_object_get(d, "d")));
    ASSERT(json_is_null(json_object_get(d, "e")));
    ASSERT(json_is_real(json_object_get(d, "f")));
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "g")), "hello");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "h")), "on");
    ASSERT_INT_EQ(json_integer_value(json_object_get(d, "i")), 31);
    ASSERT_INT_EQ(json_integer_value(json_object_get(d, "j")), 1000);
    ASSERT(json_is_real(json_object_get(d, "k")));
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "l")), ".inf");
    json_decref(d);
}

TEST(codec_json_input)
{
    json_t *d = parse1("{\"type\": \"Mesh\", \"name\": \"m1\", \"x\": [1, 2.5, null, false]}");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "type")), "Mesh");
    ASSERT_INT_EQ(json_array_size(json_object_get(d, "x")), 4);
    json_decref(d);
}

TEST(codec_multi_documents_skip_empty)
{
    const char *s = "---\ntype: Mesh\nname: a\n---\n---\ntype: Mesh\nname: b\n";
    json_t *docs;
    struct err e;
    ASSERT_INT_EQ(codec_parse(s, strlen(s), &docs, &e), 0);
    ASSERT_INT_EQ(json_array_size(docs), 2);
    json_decref(docs);
}

TEST(codec_errors_say_where)
{
    parse_fails("a: b\n  c: d\n", "line 2");
    parse_fails("a: [1, 2\n", "line");
    parse_fails("a: 1\na: 2\n", "mapping key \"a\" already defined");
    parse_fails("? [a]\n: b\n", "mapping keys must be scalars");
    parse_fails("a: *nope\n", "unknown anchor");
}

TEST(codec_rejects_invalid_utf8)
{
    parse_fails("a: \xff\xfe\n", "");
}

TEST(codec_depth_limit)
{
    char buf[1000];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        buf[n++] = '[';
    for (int i = 0; i < 100; i++)
        buf[n++] = ']';
    buf[n] = 0;
    parse_fails(buf, "nested too deeply");
}

TEST(codec_alias_bomb_is_bounded)
{
    const char *bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
                       "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                       "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                       "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
    parse_fails(bomb, "too many nodes");
}

TEST(codec_yaml_dump_sorted_and_quoted)
{
    json_t *v = json_pack("{s:s, s:s, s:i, s:s, s:[s,s], s:{}, s:s}", "name", "x", "b", "true",
                          "port", 5670, "a", "123", "list", "p", "q", "empty", "type", "Mesh");
    char *y = codec_yaml_dump(v, 1);
    ASSERT_STR_EQ(y, "a: \"123\"\nb: \"true\"\nempty: {}\nlist:\n- p\n- q\nname: x\nport: 5670\n"
                     "type: Mesh\n");
    /* And it reads back to the same value. */
    json_t *back = parse1(y);
    ASSERT(json_equal(v, back));
    free(y);
    json_decref(v);
    json_decref(back);
}
