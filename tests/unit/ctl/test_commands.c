/* Tests for kumactl's commands end to end against a canned HTTP server. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "core/util.h"
#include "ctl/ctl.h"
#include "helpers.h"

static const char index_body[] =
    "{\"hostname\":\"h\",\"tagline\":\"Kuma\",\"product\":\"Kuma\",\"version\":\"" KUMA_VERSION
    "\"}";

struct run {
    struct ctl c;
    struct capture out, err;
    struct args a;
    int rc;
};

static const struct flag_def apply_flags[] = {
    {"file", 'f', FLAG_STRING, "", "", 1},
    {"var", 'v', FLAG_MAP, NULL, "", 0},
    {"dry-run", 0, FLAG_BOOL, "false", "", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static void run_cmd(struct run *r, const char *url, int (*fn)(struct ctl *),
                    const struct res_type *t, const struct flag_def *flags, int argc, char **argv)
{
    memset(r, 0, sizeof(*r));
    test_ctl_init(&r->c, &r->out, &r->err, url);
    test_ctl_args(&r->c, &r->a, flags, argc, argv);
    r->c.type = t;
    r->rc = fn(&r->c);
}

static void run_free(struct run *r)
{
    args_free(&r->a);
    ctl_free(&r->c);
    capture_close(&r->out);
    capture_close(&r->err);
}

TEST(cmd_get_list_sends_offset_and_size_and_prints_table)
{
    char *list = testdata_read("list-traffic-permissions.json");
    struct fake_route routes[] = {
        {"GET /meshes/demo/traffic-permissions?offset=2&size=5", 200, list}};
    const char *url = fake_server_start(routes, 1, 1);
    struct run r;
    char *argv[] = {"-m", "demo", "--size", "5", "--offset", "2"};
    run_cmd(&r, url, ctl_cmd_get_list, &TYPE_TRAFFIC_PERMISSION, NULL, 6, argv);
    ASSERT_INT_EQ(r.rc, 0);
    assert_golden("get-traffic-permissions.golden.txt", capture_text(&r.out));
    char *log = fake_server_log();
    ASSERT_STR_EQ(log, "GET /meshes/demo/traffic-permissions?offset=2&size=5\n");
    free(log);
    run_free(&r);
    free(list);
}

TEST(cmd_get_list_renders_api_errors_like_kumactl)
{
    struct fake_route routes[] = {
        {"GET /meshes", 400,
         "{\"type\":\"/std-errors\",\"status\":400,\"title\":\"Bad Request\","
         "\"detail\":\"Invalid page size\",\"invalid_parameters\":[{\"field\":"
         "\"size\",\"reason\":\"must be greater than 0\"}]}"},
        {"GET /globalsecrets", 500, "oops"},
        {"GET /zones", 200, "not json"}};
    const char *url = fake_server_start(routes, 3, 3);
    struct run r;
    run_cmd(&r, url, ctl_cmd_get_list, &TYPE_MESH, NULL, 0, NULL);
    ASSERT_INT_EQ(r.rc, -1);
    ASSERT_STR_EQ(r.c.errmsg, "Bad Request (Invalid page size)\n* size: must be greater than 0");
    run_free(&r);
    run_cmd(&r, url, ctl_cmd_get_list, &TYPE_GLOBAL_SECRET, NULL, 0, NULL);
    ASSERT_STR_EQ(r.c.errmsg, "failed to list GlobalSecret: (500): oops");
    run_free(&r);
    struct res_type zones = TYPE_GLOBAL_SECRET;
    zones.name = "Zone";
    zones.plural = "zones";
    run_cmd(&r, url, ctl_cmd_get_list, &zones, NULL, 0, NULL);
    ASSERT_STR_CONTAINS(r.c.errmsg, "failed to list Zone: invalid response from the control plane");
    run_free(&r);
    free(fake_server_log());
}

TEST(cmd_get_one_not_found_and_yaml)
{
    char *mt = testdata_read("meshtimeout.json");
    struct fake_route routes[] = {
        {"GET /meshes/default/meshtimeouts/mesh-timeout-all-default", 200, mt}};
    const char *url = fake_server_start(routes, 1, 3);
    struct run r;
    char *argv[] = {"mesh-timeout-all-default", "-o", "yaml"};
    run_cmd(&r, url, ctl_cmd_get_one, &TYPE_MESH_TIMEOUT, NULL, 3, argv);
    ASSERT_INT_EQ(r.rc, 0);
    assert_golden("get-meshtimeout.golden.yaml", capture_text(&r.out));
    run_free(&r);

    char *argv2[] = {"nope", "-m", "other"};
    run_cmd(&r, url, ctl_cmd_get_one, &TYPE_MESH_TIMEOUT, NULL, 3, argv2);
    ASSERT_STR_EQ(r.c.errmsg, "No resources found in other mesh");
    run_free(&r);
    char *argv3[] = {"nope"};
    run_cmd(&r, url, ctl_cmd_get_one, &TYPE_MESH, NULL, 1, argv3);
    ASSERT_STR_EQ(r.c.errmsg, "No resources found");
    run_free(&r);
    char *log = fake_server_log();
    ASSERT_STR_CONTAINS(log, "GET /meshes/other/meshtimeouts/nope\n");
    ASSERT_STR_CONTAINS(log, "GET /meshes/nope\n");
    free(log);
    free(mt);
}

TEST(cmd_get_bad_output_format)
{
    struct fake_route routes[] = {{"GET /meshes", 200, "{\"total\":0,\"items\":[],\"next\":null}"}};
    const char *url = fake_server_start(routes, 1, 1);
    struct run r;
    char *argv[] = {"-o", "xml"};
    run_cmd(&r, url, ctl_cmd_get_list, &TYPE_MESH, NULL, 2, argv);
    ASSERT_STR_EQ(r.c.errmsg, "unknown output format \"xml\"");
    run_free(&r);
    free(fake_server_log());
}

TEST(cmd_delete_messages)
{
    struct fake_route routes[] = {
        {"GET /", 200, index_body},
        {"DELETE /meshes/demo/traffic-permissions/tp-1", 200, "{}"},
        {"DELETE /meshes/demo/traffic-permissions/gone", 404,
         "{\"title\":\"Could not delete a resource\",\"detail\":\"Not found\"}"},
        {"DELETE /meshes/busy", 400,
         "{\"title\":\"Could not delete a resource\",\"detail\":\"Resource is not valid\","
         "\"invalid_parameters\":[{\"field\":\"mesh\",\"reason\":\"unable to delete mesh, there "
         "are still some dataplanes attached\"}]}"}};
    const char *url = fake_server_start(routes, 4, 8);
    struct run r;
    char *a1[] = {"traffic-permission", "tp-1", "-m", "demo"};
    run_cmd(&r, url, ctl_cmd_delete, NULL, NULL, 4, a1);
    ASSERT_INT_EQ(r.rc, 0);
    ASSERT_STR_EQ(capture_text(&r.out), "deleted TrafficPermission \"tp-1\"\n");
    ASSERT_STR_EQ(capture_text(&r.err), "");
    run_free(&r);
    char *a2[] = {"traffic-permission", "gone", "-m", "demo"};
    run_cmd(&r, url, ctl_cmd_delete, NULL, NULL, 4, a2);
    ASSERT_STR_EQ(r.c.errmsg, "there is no TrafficPermission with name \"gone\"");
    run_free(&r);
    char *a3[] = {"mesh", "busy"};
    run_cmd(&r, url, ctl_cmd_delete, NULL, NULL, 2, a3);
    ASSERT_STR_EQ(r.c.errmsg, "Could not delete a resource (Resource is not valid)\n* mesh: "
                              "unable to delete mesh, there are still some dataplanes attached");
    run_free(&r);
    char *a4[] = {"meshes", "x"};
    run_cmd(&r, url, ctl_cmd_delete, NULL, NULL, 2, a4);
    ASSERT_STR_CONTAINS(r.c.errmsg, "unknown TYPE: meshes. Allowed values: circuit-breaker, ");
    run_free(&r);
    free(fake_server_log());
}

TEST(cmd_apply_creates_then_updates_with_variables)
{
    struct fake_route routes[] = {
        {"GET /", 200, index_body},
        {"GET /meshes/demo", 404,
         "{\"title\":\"Could not retrieve a resource\",\"detail\":\"Not found\"}"},
        {"PUT /meshes/demo", 201, "{\"warnings\":[\"mtls.backends[0].dpCert is deprecated\"]}"},
        {"GET /meshes/demo/traffic-permissions/allow-web", 200, "{}"},
        {"PUT /meshes/demo/traffic-permissions/allow-web", 200, "{}"}};
    const char *url = fake_server_start(routes, 5, 5);
    char *file = testdata_path("apply-two.yaml");
    char *argv[] = {"-f", file, "-v", "mesh=demo", "--var", "dp.service=web"};
    struct run r;
    run_cmd(&r, url, ctl_cmd_apply, NULL, apply_flags, 6, argv);
    ASSERT_INT_EQ(r.rc, 0);
    ASSERT_STR_EQ(capture_text(&r.out),
                  "resource type=\"Mesh\" mesh=\"\" name=\"demo\" Created\n"
                  "resource type=\"TrafficPermission\" mesh=\"demo\" name=\"allow-web\" Updated\n");
    ASSERT_STR_EQ(capture_text(&r.err), "Warning: mtls.backends[0].dpCert is deprecated\n");
    run_free(&r);
    char *log = fake_server_log();
    assert_golden("apply-two.requests.golden.txt", log);
    free(log);
    free(file);
}

TEST(cmd_apply_reports_server_errors)
{
    struct fake_route routes[] = {
        {"GET /", 200, "{\"product\":\"Kuma\",\"version\":\"0.0.1\"}"},
        {"GET /meshes/demo", 404, "{}"},
        {"PUT /meshes/demo", 400,
         "{\"title\":\"Could not process a resource\",\"detail\":\"Resource is not valid\","
         "\"invalid_parameters\":[{\"field\":\"mtls.backends[0].name\",\"reason\":\"cannot be "
         "empty\"},{\"field\":\"name\",\"reason\":\"too long\"}]}"}};
    const char *url = fake_server_start(routes, 3, 3);
    char *file = testdata_path("apply-two.yaml");
    char *argv[] = {"-f", file, "-v", "mesh=demo,dp.service=web"};
    struct run r;
    run_cmd(&r, url, ctl_cmd_apply, NULL, apply_flags, 4, argv);
    ASSERT_INT_EQ(r.rc, -1);
    ASSERT_STR_EQ(r.c.errmsg, "resource type=\"Mesh\" mesh=\"\" name=\"demo\": failed server "
                              "side: Could not process a resource (Resource is not valid);"
                              "mtls.backends[0].name=cannot be empty ;name=too long ");
    ASSERT_STR_EQ(capture_text(&r.err),
                  "WARNING: You are using kumactl version " KUMA_VERSION " for Kuma, but the "
                  "server returned version: Kuma for 0.0.1\n");
    run_free(&r);
    free(fake_server_log());
    free(file);
}

TEST(cmd_apply_validates_every_document_before_sending)
{
    char *file = testdata_path("apply-bad.yaml");
    char *argv[] = {"-f", file};
    struct run r;
    run_cmd(&r, NULL, ctl_cmd_apply, NULL, apply_flags, 2, argv);
    ASSERT_INT_EQ(r.rc, -1);
    ASSERT_STR_EQ(r.c.errmsg, "failed to validate some resources");
    /* The first line is the version check against an unreachable server. */
    const char *err = strchr(capture_text(&r.err), '\n') + 1;
    assert_golden("apply-bad.stderr.golden.txt", err);
    run_free(&r);
    free(file);
}

TEST(cmd_apply_dry_run_prints_yaml)
{
    char *file = testdata_path("apply-two.yaml");
    char *argv[] = {"-f", file, "--dry-run", "-v", "mesh=demo,dp.service=web"};
    struct run r;
    run_cmd(&r, NULL, ctl_cmd_apply, NULL, apply_flags, 5, argv);
    ASSERT_INT_EQ(r.rc, 0);
    assert_golden("apply-dry-run.golden.yaml", capture_text(&r.out));
    run_free(&r);
    free(file);
}

TEST(cmd_apply_input_errors)
{
    struct run r;
    char *a1[] = {"-f", "/nonexistent/file.yaml"};
    run_cmd(&r, NULL, ctl_cmd_apply, NULL, apply_flags, 2, a1);
    ASSERT_STR_EQ(r.c.errmsg, "error while reading provided file: stat /nonexistent/file.yaml: "
                              "no such file or directory");
    run_free(&r);
    char *empty = xasprintf("%s/empty.yaml", test_tmpdir());
    FILE *f = fopen(empty, "w");
    fclose(f);
    char *a2[] = {"-f", empty};
    run_cmd(&r, NULL, ctl_cmd_apply, NULL, apply_flags, 2, a2);
    ASSERT_STR_EQ(r.c.errmsg, "no resource(s) passed to apply");
    run_free(&r);
    free(empty);
}

TEST(cmd_apply_reads_a_directory_in_name_order)
{
    char *dir = xasprintf("%s/res", test_tmpdir());
    char *p;
    mkdir(dir, 0755);
    const char *names[] = {"b.yml", "a.yaml", "c.txt", "d.JSON"};
    const char *bodies[] = {"type: Mesh\nname: b\n", "type: Mesh\nname: a\n", "ignored",
                            "{\"type\": \"Mesh\", \"name\": \"d\"}"};
    for (int i = 0; i < 4; i++) {
        p = xasprintf("%s/%s", dir, names[i]);
        FILE *f = fopen(p, "w");
        fputs(bodies[i], f);
        fclose(f);
        free(p);
    }
    p = xasprintf("%s/sub.yaml", dir);
    mkdir(p, 0755);
    free(p);
    char *argv[] = {"-f", dir, "--dry-run"};
    struct run r;
    run_cmd(&r, NULL, ctl_cmd_apply, NULL, apply_flags, 3, argv);
    ASSERT_INT_EQ(r.rc, 0);
    const char *out = capture_text(&r.out);
    const char *a = strstr(out, "name: a"), *b = strstr(out, "name: b"),
               *d = strstr(out, "name: d");
    ASSERT(a && b && d && a < b && b < d);
    run_free(&r);
    free(dir);
}

TEST(cmd_split_yaml_like_kuma)
{
    char **docs;
    size_t n = ctl_split_yaml("\n---\na: 1\n---\n\n---   \nb: 2\n--- \nc: '---'\n---", &docs);
    ASSERT_INT_EQ(n, 3);
    ASSERT_STR_EQ(docs[0], "a: 1");
    ASSERT_STR_EQ(docs[1], "b: 2");
    ASSERT_STR_EQ(docs[2], "c: '---'");
    for (size_t i = 0; i < n; i++)
        free(docs[i]);
    free(docs);
    ASSERT_INT_EQ(ctl_split_yaml("  \n ", &docs), 0);
    free(docs);
}

TEST(cmd_inspect_meshes_and_version)
{
    char *ins = testdata_read("mesh-insights.json");
    struct fake_route routes[] = {{"GET /mesh-insights", 200, ins}, {"GET /", 200, index_body}};
    const char *url = fake_server_start(routes, 2, 2);
    struct run r;
    run_cmd(&r, url, ctl_cmd_inspect_meshes, NULL, NULL, 0, NULL);
    ASSERT_INT_EQ(r.rc, 0);
    assert_golden("inspect-meshes.golden.txt", capture_text(&r.out));
    run_free(&r);
    run_cmd(&r, url, ctl_cmd_version, NULL, NULL, 0, NULL);
    ASSERT_INT_EQ(r.rc, 0);
    ASSERT_STR_EQ(capture_text(&r.out),
                  "Client: Kuma " KUMA_VERSION "\nServer: Kuma " KUMA_VERSION "\n");
    run_free(&r);
    run_cmd(&r, NULL, ctl_cmd_version, NULL, NULL, 0, NULL);
    ASSERT_INT_EQ(r.rc, 0);
    ASSERT_STR_CONTAINS(capture_text(&r.err), "Unable to connect to control plane: Get "
                                              "\"http://127.0.0.1:1/\": dial tcp 127.0.0.1:1: "
                                              "connect: connection refused");
    run_free(&r);
    free(fake_server_log());
    free(ins);
}

static const struct flag_def cp_flags[] = {
    {"name", 0, FLAG_STRING, "", "", 1},
    {"address", 0, FLAG_STRING, "", "", 1},
    {"overwrite", 0, FLAG_BOOL, "false", "", 0},
    {"client-cert-file", 0, FLAG_STRING, "", "", 0},
    {"client-key-file", 0, FLAG_STRING, "", "", 0},
    {"ca-cert-file", 0, FLAG_STRING, "", "", 0},
    {"skip-verify", 0, FLAG_BOOL, "false", "", 0},
    {"headers", 0, FLAG_MAP, NULL, "", 0},
    {"auth-type", 0, FLAG_STRING, "", "", 0},
    {"auth-conf", 0, FLAG_MAP, NULL, "", 0},
    {"skip-check", 0, FLAG_BOOL, "false", "", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

TEST(cmd_cp_add_checks_the_server_and_saves)
{
    struct fake_route routes[] = {{"GET /", 200, index_body}};
    const char *url = fake_server_start(routes, 1, 3);
    struct run r;
    char *a1[] = {"--name",  "it",          "--address", (char *)url,   "--headers",
                  "b=2,a=1", "--auth-type", "tokens",    "--auth-conf", "token=t0k"};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 10, a1);
    ASSERT_INT_EQ(r.rc, 0);
    ASSERT_STR_EQ(capture_text(&r.out),
                  "added Control Plane \"it\"\nswitched active Control Plane to \"it\"\n");
    char *saved = NULL;
    size_t len;
    struct err e;
    saved = read_file(r.c.config_file, 1 << 20, &len, &e);
    ASSERT(saved != NULL);
    ASSERT_STR_CONTAINS(saved, "currentContext: it\n");
    /* Headers are stored sorted by key, whatever order they were given in. */
    ASSERT(strstr(saved, "- key: a\n") &&
           strstr(saved, "- key: a\n") < strstr(saved, "- key: b\n"));
    ASSERT_STR_CONTAINS(saved, "authType: tokens\n");
    free(saved);
    run_free(&r);

    char *a2[] = {"--name", "x", "--address", "localhost:5681"};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 4, a2);
    /* Go reads "localhost" as a scheme here, so only the check fails. */
    ASSERT_STR_EQ(r.c.errmsg, "could not connect to the Control Plane API Server: Get "
                              "\"localhost:5681/\": unsupported protocol scheme \"localhost\"");
    run_free(&r);
    char *a2b[] = {"--name", "x", "--address", "foo"};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 4, a2b);
    ASSERT_STR_EQ(r.c.errmsg, "API Server URL is invalid: parse \"foo\": invalid URI for request");
    run_free(&r);
    char *a3[] = {"--name", "x", "--address", "http://a", "--client-cert-file", "c"};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 6, a3);
    ASSERT_STR_EQ(r.c.errmsg,
                  "Both --client-cert-file and --client-key-file needs to be specified");
    run_free(&r);
    char *a4[] = {"--name", "local", "--address", "http://a", "--skip-check"};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 5, a4);
    ASSERT_STR_EQ(r.c.errmsg, "Control Plane with name \"local\" already exists. Use --overwrite "
                              "to replace an existing one.");
    run_free(&r);
    char *a5[] = {"--name", "x", "--address", "http://127.0.0.1:1"};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 4, a5);
    ASSERT_STR_CONTAINS(r.c.errmsg, "could not connect to the Control Plane API Server: Get ");
    run_free(&r);
    char *a6[] = {"--name", "x", "--address", "http://a", "--auth-type", "basic"};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 6, a6);
    ASSERT_STR_EQ(r.c.errmsg, "authentication plugin of type \"basic\" is not found");
    run_free(&r);
    free(fake_server_log());
}

TEST(cmd_cp_add_refuses_other_products)
{
    struct fake_route routes[] = {
        {"GET /", 200, "{\"product\":\"Kong Mesh\",\"version\":\"2.0\"}"}};
    const char *url = fake_server_start(routes, 1, 1);
    struct run r;
    char *a[] = {"--name", "km", "--address", (char *)url};
    run_cmd(&r, url, ctl_cmd_cp_add, NULL, cp_flags, 4, a);
    ASSERT_STR_EQ(r.c.errmsg, "this CLI is for Kuma but the control plane you're connected to "
                              "is Kong Mesh. Please use the CLI for your control plane");
    run_free(&r);
    free(fake_server_log());
}

TEST(cmd_http_caps_response_size)
{
    size_t big = CTL_HTTP_MAX_BODY + 10;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    body[big] = '\0';
    struct fake_route routes[] = {{"GET /meshes", 200, body}};
    const char *url = fake_server_start(routes, 1, 1);
    struct run r;
    run_cmd(&r, url, ctl_cmd_get_list, &TYPE_MESH, NULL, 0, NULL);
    ASSERT_INT_EQ(r.rc, -1);
    ASSERT_STR_CONTAINS(r.c.errmsg, "response body larger than");
    run_free(&r);
    free(fake_server_log());
    free(body);
}
