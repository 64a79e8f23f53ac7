/* Meta names, shared validator helpers and the type table. */
#include "../test.h"
#include "core/types.h"
#include "core/validate_internal.h"
#include "vtest.h"

struct mcase {
    const struct res_type *t;
    const char *mesh, *name, *expected;
};

static const struct mcase meta[] = {
    {&TYPE_MESH, "", "default", ""},
    {&TYPE_MESH, "", "", "name: cannot be empty"},
    {&TYPE_MESH, "", "Default",
     "name: invalid characters. A lowercase RFC 1123 subdomain must "
     "consist of lower case alphanumeric characters, '-' or '.', and "
     "must start and end with an alphanumeric character"},
    {&TYPE_MESH, "", "a_b",
     "name: invalid characters. A lowercase RFC 1123 subdomain must "
     "consist of lower case alphanumeric characters, '-' or '.', and "
     "must start and end with an alphanumeric character"},
    {&TYPE_MESH, "", "-a",
     "name: invalid characters. A lowercase RFC 1123 subdomain must "
     "consist of lower case alphanumeric characters, '-' or '.', and must "
     "start and end with an alphanumeric character"},
    {&TYPE_MESH, "", "a.b-c.d", ""},
    {&TYPE_DATAPLANE, "default", "dp-1", ""},
    {&TYPE_DATAPLANE, "", "dp-1", "mesh: cannot be empty"},
    {&TYPE_DATAPLANE, "old_mesh", "dp-1", ""},
    {&TYPE_DATAPLANE, "Mesh!", "dp-1",
     "mesh: invalid characters. Valid characters are numbers, lowercase latin letters and '-', "
     "'_', '.' symbols."},
    {&TYPE_TRAFFIC_PERMISSION, "", "", "name: cannot be empty; mesh: cannot be empty"},
    {&TYPE_GLOBAL_SECRET, "", "s1", ""},
};

TEST(validate_meta_table)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
        struct resource *r = resource_new(meta[i].t, meta[i].mesh, meta[i].name);
        struct verr ve = {0};
        validate_meta(r, &ve);
        char *got = verr_join(&ve);
        if (strcmp(got, meta[i].expected) != 0) {
            fprintf(stderr, "  case %zu: got \"%s\"\n", i, got);
            failed++;
        }
        free(got);
        verr_free(&ve);
        resource_free(r);
    }
    ASSERT_INT_EQ(failed, 0);
}

TEST(validate_meta_long_name)
{
    char name[300];
    memset(name, 'a', 254);
    name[254] = '\0';
    struct resource *r = resource_new(&TYPE_MESH, "", name);
    struct verr ve = {0};
    validate_meta(r, &ve);
    char *got = verr_join(&ve);
    ASSERT_STR_EQ(got, "name: value length must less or equal 253");
    free(got);
    verr_free(&ve);
    resource_free(r);
}

TEST(validate_common_durations)
{
    int64_t ns;
    ASSERT_INT_EQ(kuma_duration_parse("1d", &ns), 0);
    ASSERT_INT_EQ(ns, 86400LL * 1000000000LL);
    ASSERT_INT_EQ(kuma_duration_parse("10y", &ns), 0);
    ASSERT_INT_EQ(kuma_duration_parse("250ms", &ns), 0);
    ASSERT_INT_EQ(ns, 250000000LL);
    ASSERT_INT_EQ(kuma_duration_parse("0", &ns), 0);
    ASSERT(kuma_duration_parse("", &ns) != 0);
    ASSERT(kuma_duration_parse("1h30m", &ns) != 0);
    ASSERT(kuma_duration_parse("-1d", &ns) != 0);
    ASSERT(kuma_duration_parse("1.5h", &ns) != 0);
    ASSERT_INT_EQ(go_duration_parse("1h30m", &ns), 0);
    ASSERT_INT_EQ(ns, 5400LL * 1000000000LL);
    ASSERT_INT_EQ(go_duration_parse("-1.5s", &ns), 0);
    ASSERT_INT_EQ(ns, -1500000000LL);
    ASSERT_INT_EQ(go_duration_parse("0", &ns), 0);
    ASSERT_INT_EQ(go_duration_parse("300us", &ns), 0);
    ASSERT_INT_EQ(ns, 300000);
    ASSERT(go_duration_parse("1", &ns) != 0);
    ASSERT(go_duration_parse("1d", &ns) != 0);
    ASSERT(go_duration_parse("", &ns) != 0);
    ASSERT(go_duration_parse("s", &ns) != 0);
    ASSERT(go_duration_parse("1..2s", &ns) != 0);
    ASSERT(go_duration_parse("99999999999999h", &ns) != 0);
}

TEST(validate_common_addresses)
{
    ASSERT(ip_ok("192.168.0.1"));
    ASSERT(ip_ok("::1"));
    ASSERT(!ip_ok("192.168.0.256"));
    ASSERT(!ip_ok("01.2.3.4"));
    ASSERT(!ip_ok("fe80::1%eth0"));
    ASSERT(ip_is_unspecified("0.0.0.0") && ip_is_unspecified("::"));
    ASSERT(dns_name_ok("backend.svc.cluster.local"));
    ASSERT(dns_name_ok("a_b.example."));
    ASSERT(!dns_name_ok("not valid"));
    ASSERT(!dns_name_ok("-a.com"));
    ASSERT(!dns_name_ok(""));
    ASSERT(!dns_name_ok("1.2.3.4"));
    char h[64], p[16];
    ASSERT_INT_EQ(split_host_port("127.0.0.1:5000", h, sizeof(h), p, sizeof(p)), 0);
    ASSERT_STR_EQ(h, "127.0.0.1");
    ASSERT_STR_EQ(p, "5000");
    ASSERT_INT_EQ(split_host_port("[::1]:80", h, sizeof(h), p, sizeof(p)), 0);
    ASSERT_STR_EQ(h, "::1");
    ASSERT(split_host_port("::1:80", h, sizeof(h), p, sizeof(p)) != 0);
    ASSERT(split_host_port("host", h, sizeof(h), p, sizeof(p)) != 0);
    ASSERT_INT_EQ(parse_request_uri("http://zipkin:9411/api/v2/spans", p, sizeof(p)), 0);
    ASSERT_STR_EQ(p, "9411");
    ASSERT_INT_EQ(parse_request_uri("/healthz?x=1", p, sizeof(p)), 0);
    ASSERT(parse_request_uri("healthz", p, sizeof(p)) != 0);
    ASSERT(parse_request_uri("", p, sizeof(p)) != 0);
    ASSERT(parse_request_uri("http://a b:1/", p, sizeof(p)) != 0);
    ASSERT(parse_request_uri("http://a:xy/", p, sizeof(p)) != 0);
    ASSERT(parse_request_uri("/a%zz", p, sizeof(p)) != 0);
    ASSERT(parse_request_uri(":foo", p, sizeof(p)) != 0);
}

TEST(validate_common_charsets)
{
    ASSERT(tag_name_ok("kuma.io/service"));
    ASSERT(!tag_name_ok("a b"));
    ASSERT(tag_value_ok("backend_v1.2:x-y"));
    ASSERT(!tag_value_ok("a/b"));
    ASSERT(selector_value_ok("*"));
    ASSERT(selector_value_ok("a/b"));
    ASSERT(!selector_value_ok("a*"));
    ASSERT(domain_ok("foo.example.com"));
    ASSERT(!domain_ok("Foo.com"));
    ASSERT(!domain_ok("a..b"));
    ASSERT(!domain_ok("a-.b"));
    ASSERT(protocol_known("http2") && !protocol_known("tls"));
}

TEST(validate_common_paths)
{
    struct vpath p;
    vp_init(&p, "");
    size_t m = vp_field(&p, "mtls");
    vp_field(&p, "backends");
    vp_index(&p, 3);
    vp_key(&p, "a\"b");
    ASSERT_STR_EQ(p.s, "mtls.backends[3][\"a\\\"b\"]");
    vp_reset(&p, m);
    ASSERT_STR_EQ(p.s, "");
    vp_free(&p);
}

TEST(types_descriptors)
{
    ASSERT_STR_EQ(TYPE_GLOBAL_SECRET.plural, "globalsecrets");
    ASSERT_STR_EQ(TYPE_GLOBAL_SECRET.kumactl_arg, "global-secret");
    ASSERT(types_by_kumactl_arg("global-secrets") == &TYPE_GLOBAL_SECRET);
    ASSERT_INT_EQ(TYPE_DATAPLANE.include_in_federation, 0);
    ASSERT_INT_EQ(TYPE_MESH_GATEWAY.is_policy, 0);
    ASSERT_INT_EQ(TYPE_MESH_TIMEOUT.is_target_ref, 1);
    ASSERT_STR_EQ(TYPE_MESH_TIMEOUT.short_name, "mt");
    ASSERT_STR_EQ(TYPE_HEALTH_CHECK.kumactl_arg, "healthcheck");
    ASSERT(types_by_plural("meshretries") == &TYPE_MESH_RETRY);
    size_t n;
    const struct res_type *const *all = types_all(&n);
    for (size_t i = 0; i < n; i++)
        ASSERT(all[i]->validate != NULL);
}
