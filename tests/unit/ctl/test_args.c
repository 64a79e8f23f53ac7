/* Tests for ctl/args: pflag-compatible parsing and messages. */
#include "ctl/args.h"

#include <stdarg.h>
#include <stdlib.h>

#include "../test.h"

static const struct flag_def flags[] = {
    {"name", 0, FLAG_STRING, "", "", 1},
    {"address", 0, FLAG_STRING, "", "", 1},
    {"mesh", 'm', FLAG_STRING, "default", "", 0},
    {"dry-run", 0, FLAG_BOOL, "false", "", 0},
    {"size", 0, FLAG_INT, "0", "", 0},
    {"var", 'v', FLAG_MAP, NULL, "", 0},
    {"api-timeout", 0, FLAG_DURATION, "1m0s", "", 0},
    {"detailed", 'a', FLAG_BOOL, "false", "", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static int parse(struct args *a, char **msg, int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    static const struct flag_def *const t[1] = {flags};
    return args_parse(t, 1, argc, argv, a, msg);
}

static char *parse_err(int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    static const struct flag_def *const t[1] = {flags};
    struct args a;
    char *msg = NULL;
    if (args_parse(t, 1, argc, argv, &a, &msg) == 0)
        TEST_FAIL_("parse should fail");
    return msg;
}

TEST(args_long_short_and_equals_forms)
{
    struct args a;
    char *msg = NULL;
    ASSERT(parse(&a, &msg, 7, "--name", "x", "--address=http://h:1", "-mfoo", "pos1", "--dry-run",
                 "pos2") == 0);
    ASSERT_STR_EQ(args_str(&a, "name"), "x");
    ASSERT_STR_EQ(args_str(&a, "address"), "http://h:1");
    ASSERT_STR_EQ(args_str(&a, "mesh"), "foo");
    ASSERT(args_bool(&a, "dry-run"));
    ASSERT_INT_EQ(a.npos, 2);
    ASSERT_STR_EQ(a.pos[0], "pos1");
    ASSERT_STR_EQ(a.pos[1], "pos2");
    args_free(&a);

    ASSERT(parse(&a, &msg, 4, "-m=bar", "--dry-run=false", "--", "--name") == 0);
    ASSERT_STR_EQ(args_str(&a, "mesh"), "bar");
    ASSERT(!args_bool(&a, "dry-run"));
    ASSERT_INT_EQ(a.npos, 1);
    ASSERT_STR_EQ(a.pos[0], "--name");
    ASSERT(!args_is_set(&a, "name"));
    args_free(&a);
}

TEST(args_defaults_and_value_taking_the_next_word)
{
    struct args a;
    char *msg = NULL;
    /* pflag takes the next word as the value even when it starts with "-". */
    ASSERT(parse(&a, &msg, 2, "-m", "-") == 0);
    ASSERT_STR_EQ(args_str(&a, "mesh"), "-");
    args_free(&a);
    ASSERT(parse(&a, &msg, 0) == 0);
    ASSERT_STR_EQ(args_str(&a, "mesh"), "default");
    ASSERT_INT_EQ(args_int(&a, "size"), 0);
    ASSERT_INT_EQ(args_duration_ms(&a, "api-timeout"), 60000);
    ASSERT_STR_EQ(args_str(&a, "unknown"), "");
    args_free(&a);
}

TEST(args_bool_shorthand_and_help)
{
    struct args a;
    char *msg = NULL;
    ASSERT(parse(&a, &msg, 1, "-a") == 0);
    ASSERT(args_bool(&a, "detailed"));
    ASSERT(!a.help);
    args_free(&a);
    ASSERT(parse(&a, &msg, 1, "-h") == 0);
    ASSERT(a.help);
    args_free(&a);
    ASSERT(parse(&a, &msg, 1, "--help") == 0);
    ASSERT(a.help);
    args_free(&a);
}

TEST(args_errors_use_pflag_wording)
{
    char *m;
    m = parse_err(1, "--nope");
    ASSERT_STR_EQ(m, "unknown flag: --nope");
    free(m);
    m = parse_err(1, "-x");
    ASSERT_STR_EQ(m, "unknown shorthand flag: 'x' in -x");
    free(m);
    m = parse_err(1, "--name");
    ASSERT_STR_EQ(m, "flag needs an argument: --name");
    free(m);
    m = parse_err(1, "-m");
    ASSERT_STR_EQ(m, "flag needs an argument: 'm' in -m");
    free(m);
    m = parse_err(2, "--size", "ten");
    ASSERT_STR_EQ(m, "invalid argument \"ten\" for \"--size\" flag: strconv.ParseInt: parsing "
                     "\"ten\": invalid syntax");
    free(m);
    m = parse_err(1, "--dry-run=maybe");
    ASSERT_STR_EQ(m, "invalid argument \"maybe\" for \"--dry-run\" flag: strconv.ParseBool: "
                     "parsing \"maybe\": invalid syntax");
    free(m);
    m = parse_err(2, "-v", "novalue");
    ASSERT_STR_EQ(m, "invalid argument \"novalue\" for \"-v, --var\" flag: novalue must be "
                     "formatted as key=value");
    free(m);
    m = parse_err(2, "--api-timeout", "soon");
    ASSERT_STR_EQ(m, "invalid argument \"soon\" for \"--api-timeout\" flag: time: invalid "
                     "duration \"soon\"");
    free(m);
}

TEST(args_maps_split_on_commas_and_repeat)
{
    struct args a;
    char *msg = NULL;
    ASSERT(parse(&a, &msg, 4, "-v", "a=1,b.c=x=y", "--var", "\"q=1,2\",e=") == 0);
    const struct flag_val *v = args_get(&a, "var");
    ASSERT(v != NULL);
    ASSERT_INT_EQ(v->npairs, 4);
    ASSERT_STR_EQ(v->keys[0], "a");
    ASSERT_STR_EQ(v->vals[0], "1");
    ASSERT_STR_EQ(v->keys[1], "b.c");
    ASSERT_STR_EQ(v->vals[1], "x=y");
    ASSERT_STR_EQ(v->keys[2], "q");
    ASSERT_STR_EQ(v->vals[2], "1,2");
    ASSERT_STR_EQ(v->keys[3], "e");
    ASSERT_STR_EQ(v->vals[3], "");
    args_free(&a);
}

TEST(args_required_flags_are_listed_sorted)
{
    struct args a;
    char *msg = NULL;
    ASSERT(parse(&a, &msg, 0) == 0);
    ASSERT(args_check_required(&a, &msg) < 0);
    ASSERT_STR_EQ(msg, "required flag(s) \"address\", \"name\" not set");
    free(msg);
    args_free(&a);
    ASSERT(parse(&a, &msg, 2, "--name", "n") == 0);
    ASSERT(args_check_required(&a, &msg) < 0);
    ASSERT_STR_EQ(msg, "required flag(s) \"address\" not set");
    free(msg);
    args_free(&a);
}

TEST(args_durations)
{
    ASSERT_INT_EQ(args_parse_duration_ms("1m30s"), 90000);
    ASSERT_INT_EQ(args_parse_duration_ms("500ms"), 500);
    ASSERT_INT_EQ(args_parse_duration_ms("2h"), 7200000);
    ASSERT_INT_EQ(args_parse_duration_ms("1.5s"), 1500);
    ASSERT_INT_EQ(args_parse_duration_ms("0"), 0);
    ASSERT_INT_EQ(args_parse_duration_ms("10"), -1);
    ASSERT_INT_EQ(args_parse_duration_ms("-1s"), -1);
    ASSERT_INT_EQ(args_parse_duration_ms("1x"), -1);
    ASSERT_INT_EQ(args_parse_duration_ms(""), -1);
}
