/* Tests for ctl/print: tables, AGE, YAML and JSON output, against goldens. */
#include "ctl/print.h"

#include <stdlib.h>

#include "../test.h"
#include "core/util.h"
#include "helpers.h"

static struct ctl_time fixed_now(void)
{
    struct ctl_time t;
    ASSERT(ctl_time_parse("2024-01-02T03:04:05Z", &t) == 0);
    return t;
}

static void list_golden(const struct res_type *t, const char *fixture, enum ctl_format f,
                        const char *golden)
{
    struct capture out;
    struct ctl_time now = fixed_now();
    char *msg = NULL;
    json_t *list = testdata_json(fixture);
    capture_open(&out);
    if (ctl_print_list(t, list, f, &now, out.f, &msg) < 0)
        TEST_FAIL_("print: %s", msg);
    assert_golden(golden, capture_text(&out));
    capture_close(&out);
    json_decref(list);
}

static void one_golden(const struct res_type *t, const json_t *item, enum ctl_format f,
                       const char *golden)
{
    struct capture out;
    struct ctl_time now = fixed_now();
    char *msg = NULL;
    capture_open(&out);
    if (ctl_print_one(t, item, f, &now, out.f, &msg) < 0)
        TEST_FAIL_("print: %s", msg);
    assert_golden(golden, capture_text(&out));
    capture_close(&out);
}

TEST(print_meshes_table_with_pagination_footer)
{
    list_golden(&TYPE_MESH, "list-meshes.json", CTL_FMT_TABLE, "get-meshes.golden.txt");
}

TEST(print_meshes_yaml_sorts_keys_and_drops_next)
{
    list_golden(&TYPE_MESH, "list-meshes.json", CTL_FMT_YAML, "get-meshes.golden.yaml");
}

TEST(print_meshes_json_puts_meta_first_and_escapes_like_go)
{
    list_golden(&TYPE_MESH, "list-meshes.json", CTL_FMT_JSON, "get-meshes.golden.json");
}

TEST(print_dataplanes_table_merges_tags_and_prefers_advertised_address)
{
    list_golden(&TYPE_DATAPLANE, "list-dataplanes.json", CTL_FMT_TABLE,
                "get-dataplanes.golden.txt");
}

TEST(print_external_services_table)
{
    list_golden(&TYPE_EXTERNAL_SERVICE, "list-external-services.json", CTL_FMT_TABLE,
                "get-external-services.golden.txt");
}

TEST(print_mesh_scoped_table_and_footer_without_size)
{
    list_golden(&TYPE_TRAFFIC_PERMISSION, "list-traffic-permissions.json", CTL_FMT_TABLE,
                "get-traffic-permissions.golden.txt");
}

TEST(print_global_scoped_table)
{
    list_golden(&TYPE_GLOBAL_SECRET, "list-global-secrets.json", CTL_FMT_TABLE,
                "get-global-secrets.golden.txt");
}

TEST(print_single_mesh_table_yaml_json)
{
    json_t *list = testdata_json("list-meshes.json");
    json_t *m = json_array_get(json_object_get(list, "items"), 0);
    one_golden(&TYPE_MESH, m, CTL_FMT_TABLE, "get-mesh.golden.txt");
    one_golden(&TYPE_MESH, m, CTL_FMT_YAML, "get-mesh.golden.yaml");
    one_golden(&TYPE_MESH, m, CTL_FMT_JSON, "get-mesh.golden.json");
    json_decref(list);
}

TEST(print_single_resource_without_spec_prints_meta_only)
{
    json_t *list = testdata_json("list-meshes.json");
    json_t *m = json_array_get(json_object_get(list, "items"), 1);
    one_golden(&TYPE_MESH, m, CTL_FMT_YAML, "get-mesh-no-spec.golden.yaml");
    json_decref(list);
}

TEST(print_target_ref_policy_yaml_is_one_sorted_object)
{
    json_t *mt = testdata_json("meshtimeout.json");
    one_golden(&TYPE_MESH_TIMEOUT, mt, CTL_FMT_YAML, "get-meshtimeout.golden.yaml");
    one_golden(&TYPE_MESH_TIMEOUT, mt, CTL_FMT_TABLE, "get-meshtimeout.golden.txt");
    json_decref(mt);
}

TEST(print_mesh_insights_table_and_yaml)
{
    struct capture out;
    char *msg = NULL;
    json_t *list = testdata_json("mesh-insights.json");
    capture_open(&out);
    ASSERT(ctl_print_mesh_insights(list, CTL_FMT_TABLE, out.f, &msg) == 0);
    assert_golden("inspect-meshes.golden.txt", capture_text(&out));
    capture_close(&out);
    capture_open(&out);
    ASSERT(ctl_print_mesh_insights(list, CTL_FMT_YAML, out.f, &msg) == 0);
    assert_golden("inspect-meshes.golden.yaml", capture_text(&out));
    capture_close(&out);
    json_decref(list);
}

static const char *age(const char *then)
{
    static char out[32];
    struct ctl_time now = fixed_now(), t;
    if (then) {
        if (ctl_time_parse(then, &t) < 0)
            TEST_FAIL_("cannot parse %s", then);
    } else {
        t = ctl_time_zero();
    }
    ctl_format_age(&t, &now, out, sizeof(out));
    return out;
}

TEST(print_age_follows_kuma_duration_rules)
{
    ASSERT_STR_EQ(age("2024-01-02T03:04:05Z"), "0s");
    ASSERT_STR_EQ(age("2024-01-02T03:04:04.1Z"), "0s");
    ASSERT_STR_EQ(age("2024-01-02T03:03:06Z"), "59s");
    ASSERT_STR_EQ(age("2024-01-02T03:03:05Z"), "1m");
    ASSERT_STR_EQ(age("2024-01-02T02:04:06Z"), "59m");
    ASSERT_STR_EQ(age("2024-01-02T02:04:05Z"), "1h");
    ASSERT_STR_EQ(age("2024-01-01T03:04:06Z"), "23h");
    ASSERT_STR_EQ(age("2024-01-01T03:04:05Z"), "1d");
    ASSERT_STR_EQ(age("2023-01-03T03:04:05Z"), "364d");
    ASSERT_STR_EQ(age("2023-01-02T03:04:05Z"), "1y");
    ASSERT_STR_EQ(age("2014-01-02T03:04:05Z"), "10y");
    /* Go's durations saturate at ~292 years: the zero time prints 292y. */
    ASSERT_STR_EQ(age(NULL), "292y");
    ASSERT_STR_EQ(age("0001-01-01T00:00:00Z"), "292y");
    /* The future: up to a second of skew reads 0s, then "never". */
    ASSERT_STR_EQ(age("2024-01-02T03:04:06Z"), "0s");
    ASSERT_STR_EQ(age("2024-01-02T03:04:07Z"), "never");
    ASSERT_STR_EQ(age("2024-01-02T04:04:05+01:00"), "0s");
    ASSERT_STR_EQ(age("2024-01-02T03:04:05-01:00"), "never");
}

TEST(print_time_parse_rejects_garbage)
{
    struct ctl_time t;
    ASSERT(ctl_time_parse("", &t) < 0);
    ASSERT(ctl_time_parse(NULL, &t) < 0);
    ASSERT(ctl_time_parse("2024-13-02T03:04:05Z", &t) < 0);
    ASSERT(ctl_time_parse("2024-01-02T03:04:05", &t) < 0);
    ASSERT(ctl_time_parse("2024-01-02T03:04:05.Z", &t) < 0);
    ASSERT(ctl_time_parse("2024-01-02T03:04:05Zjunk", &t) < 0);
    ASSERT(ctl_time_parse("1970-01-01T00:00:01.5Z", &t) == 0);
    ASSERT_INT_EQ(t.sec, 1);
    ASSERT_INT_EQ(t.nsec, 500000000);
}

TEST(print_next_offset_from_next_url)
{
    json_t *l = json_pack("{s:s}", "next", "http://h/meshes?size=2&offset=a%2Fb");
    char *o = ctl_next_offset(l);
    ASSERT_STR_EQ(o, "a/b");
    free(o);
    json_decref(l);
    l = json_pack("{s:n}", "next");
    ASSERT(ctl_next_offset(l) == NULL);
    json_decref(l);
    l = json_pack("{s:s}", "next", "http://h/meshes?size=2");
    ASSERT(ctl_next_offset(l) == NULL);
    json_decref(l);
    l = json_pack("{s:s}", "next", "http://h/meshes?offset=&size=2");
    ASSERT(ctl_next_offset(l) == NULL);
    json_decref(l);
}

TEST(print_survives_garbage_from_the_server)
{
    static const char *const bodies[] = {
        "[]",
        "{\"items\": 5}",
        "{\"items\": [1, \"x\", null, {}]}",
        "{\"items\": [{\"name\": 5, \"mtls\": [], \"routing\": \"x\", \"networking\": 7,"
        " \"modificationTime\": false}]}",
        "{\"items\": [{\"networking\": {\"inbound\": [{\"tags\": {\"a\": 1}}, 3]}}],"
        " \"next\": 5, \"total\": \"x\"}",
    };
    struct ctl_time now = fixed_now();
    size_t n;
    const struct res_type *const *all = types_all(&n);
    for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
        json_t *j = json_loads(bodies[b], 0, NULL);
        ASSERT(j != NULL);
        for (size_t i = 0; i < n; i++)
            for (int f = 0; f < 3; f++) {
                struct capture out;
                char *msg = NULL;
                capture_open(&out);
                if (ctl_print_list(all[i], j, (enum ctl_format)f, &now, out.f, &msg) < 0) {
                    ASSERT_STR_CONTAINS(msg, "expected a list");
                    free(msg);
                    msg = NULL;
                }
                json_t *item = json_array_get(json_object_get(j, "items"), 0);
                if (ctl_print_one(all[i], item ? item : j, (enum ctl_format)f, &now, out.f, &msg) <
                    0)
                    free(msg);
                msg = NULL;
                if (ctl_print_mesh_insights(j, (enum ctl_format)f, out.f, &msg) < 0)
                    free(msg);
                capture_close(&out);
            }
        json_decref(j);
    }
}

TEST(print_json_escapes_like_go)
{
    struct capture out;
    capture_open(&out);
    json_t *v = json_pack("{s:s,s:[],s:{},s:f,s:i,s:b}", "s", "<a&b>\t\"q\"\x01\xe2\x80\xa8", "e",
                          "o", "r", 0.25, "i", 7, "b", 1);
    ctl_print_json(v, out.f);
    ASSERT_STR_EQ(capture_text(&out), "{\n  \"s\": \"\\u003ca\\u0026b\\u003e\\t\\\"q\\\"\\u0001"
                                      "\\u2028\",\n  \"e\": [],\n  \"o\": {},\n  \"r\": 0.25,\n"
                                      "  \"i\": 7,\n  \"b\": true\n}\n");
    json_decref(v);
    capture_close(&out);
}

TEST(print_format_parse)
{
    ASSERT_INT_EQ(ctl_format_parse("table"), CTL_FMT_TABLE);
    ASSERT_INT_EQ(ctl_format_parse("yaml"), CTL_FMT_YAML);
    ASSERT_INT_EQ(ctl_format_parse("json"), CTL_FMT_JSON);
    ASSERT_INT_EQ(ctl_format_parse("xml"), -1);
}
