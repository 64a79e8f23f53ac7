/* Tests for ctl/config: Kuma's file format, defaults and edits. */
#include "ctl/config.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "../test.h"
#include "core/util.h"
#include "helpers.h"

TEST(config_default_matches_kuma)
{
    struct ctl_config c;
    ctl_config_default(&c);
    char *y = ctl_config_to_yaml(&c);
    assert_golden("config-default.golden.yaml", y);
    free(y);
    ctl_config_free(&c);
}

TEST(config_reads_snake_case_and_writes_camel_case)
{
    char *text = testdata_read("config-snake-case.yaml");
    struct ctl_config c;
    struct err e;
    if (ctl_config_parse(text, strlen(text), &c, &e) < 0)
        TEST_FAIL_("%s", e.msg);
    ASSERT_INT_EQ(c.ncps, 2);
    ASSERT(c.cps[0].skip_verify);
    ASSERT_STR_EQ(c.cps[0].headers[0].value, "payments");
    ASSERT_STR_EQ(ctl_config_current(&c)->control_plane, "west");
    char *y = ctl_config_to_yaml(&c);
    assert_golden("config-roundtrip.golden.yaml", y);

    /* Reading our own output gives the same output again. */
    struct ctl_config c2;
    if (ctl_config_parse(y, strlen(y), &c2, &e) < 0)
        TEST_FAIL_("%s", e.msg);
    char *y2 = ctl_config_to_yaml(&c2);
    ASSERT_STR_EQ(y2, y);
    free(y);
    free(y2);
    free(text);
    ctl_config_free(&c);
    ctl_config_free(&c2);
}

TEST(config_parse_errors_and_empty_files)
{
    struct ctl_config c;
    struct err e;
    ASSERT(ctl_config_parse("", 0, &c, &e) == 0);
    ASSERT_INT_EQ(c.ncps, 0);
    ctl_config_free(&c);
    ASSERT(ctl_config_parse("[1]", 3, &c, &e) < 0);
    ASSERT(ctl_config_parse("controlPlanes: 5", 16, &c, &e) < 0);
    ASSERT_STR_CONTAINS(e.msg, "controlPlanes");
    ASSERT(ctl_config_parse("contexts: [{name: 5}]", 21, &c, &e) < 0);
    ASSERT_STR_CONTAINS(e.msg, "contexts[0].name");
    ASSERT(ctl_config_parse("a: [", 4, &c, &e) < 0);
}

TEST(config_add_switch_remove_follow_kuma)
{
    struct ctl_config c;
    ctl_config_default(&c);
    struct ctl_cp *cp = calloc(1, sizeof(*cp));
    cp->name = strdup("prod");
    cp->url = strdup("https://prod:5682");
    cp->auth_conf = json_object();
    ASSERT(ctl_config_add_cp(&c, cp, 0) == 0);
    free(cp);
    ASSERT(ctl_config_add_context(&c, "prod", "prod", 0) == 0);
    ASSERT(ctl_config_add_context(&c, "prod", "prod", 0) < 0);

    cp = calloc(1, sizeof(*cp));
    cp->name = strdup("prod");
    cp->auth_conf = json_object();
    ASSERT(ctl_config_add_cp(&c, cp, 0) < 0); /* freed by the call */
    free(cp);

    ASSERT(ctl_config_switch(&c, "prod") == 0);
    ASSERT_STR_EQ(ctl_config_current(&c)->name, "prod");
    ASSERT(ctl_config_switch(&c, "nope") < 0);

    /* Removing the active one moves to the first remaining context. */
    ASSERT(ctl_config_remove_cp(&c, "prod") == 0);
    ASSERT_STR_EQ(ctl_config_current(&c)->name, "local");
    ASSERT(ctl_config_remove_cp(&c, "prod") < 0);
    ASSERT(ctl_config_remove_cp(&c, "local") == 0);
    ASSERT(ctl_config_current(&c) == NULL);
    char *y = ctl_config_to_yaml(&c);
    ASSERT_STR_EQ(y, "{}\n");
    free(y);
    ctl_config_free(&c);
}

TEST(config_load_and_save)
{
    struct ctl_config c;
    struct err e;
    char *missing = xasprintf("%s/none/config", test_tmpdir());
    ASSERT(ctl_config_load(missing, &c, &e) < 0);
    ASSERT_STR_CONTAINS(e.msg, "Failed to access configuration file \"");

    /* The default path is $HOME/.kumactl/config; a missing one means defaults. */
    setenv("HOME", test_tmpdir(), 1);
    ASSERT(ctl_config_load(NULL, &c, &e) == 0);
    ASSERT_STR_EQ(c.cps[0].url, "http://localhost:5681");
    ASSERT(ctl_config_save(NULL, &c, &e) == 0);
    char *path = xasprintf("%s/.kumactl/config", test_tmpdir());
    struct stat st;
    ASSERT(stat(path, &st) == 0);
    ASSERT_INT_EQ(st.st_mode & 0777, 0600);
    ctl_config_free(&c);

    FILE *f = fopen(path, "w");
    fputs("controlPlanes: {", f);
    fclose(f);
    ASSERT(ctl_config_load(path, &c, &e) < 0);
    ASSERT_STR_CONTAINS(e.msg, "Failed to parse configuration from file \"");
    free(path);
    free(missing);
}
