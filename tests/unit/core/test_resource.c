/* Tests for the resource model's universal and Kubernetes forms. */
#include "core/codec.h"
#include "core/resource.h"

#include "test.h"

static struct resource *from_yaml(const char *s, struct err *e)
{
    json_t *doc;
    if (codec_parse_one(s, strlen(s), &doc, e) < 0)
        return NULL;
    struct resource *r = NULL;
    int rc = resource_from_json(doc, &r, e);
    json_decref(doc);
    return rc < 0 ? NULL : r;
}

TEST(resource_universal_flattened_spec)
{
    struct err e;
    struct resource *r =
        from_yaml("type: TrafficRoute\nmesh: m1\nname: r1\ncreationTime: x\n"
                  "labels: {team: a}\nsources: [{match: {kuma.io/service: '*'}}]\n",
                  &e);
    ASSERT(r);
    ASSERT(r->type == &TYPE_TRAFFIC_ROUTE);
    ASSERT_STR_EQ(r->mesh, "m1");
    ASSERT_STR_EQ(r->name, "r1");
    ASSERT(json_object_get(r->spec, "sources"));
    ASSERT(!json_object_get(r->spec, "creationTime"));
    ASSERT_STR_EQ(json_string_value(json_object_get(r->labels, "team")), "a");
    resource_free(r);
}

TEST(resource_k8s_form)
{
    struct err e;
    struct resource *r = from_yaml("apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: "
                                   "m2\nspec:\n  networking: {outbound: {passthrough: false}}\n",
                                   &e);
    ASSERT(r);
    ASSERT(r->type == &TYPE_MESH);
    ASSERT_STR_EQ(r->name, "m2");
    ASSERT_STR_EQ(r->mesh, "");
    ASSERT(json_is_false(json_object_get(
        json_object_get(json_object_get(r->spec, "networking"), "outbound"), "passthrough")));
    json_t *k = resource_to_json(r, RES_FORM_K8S);
    ASSERT_STR_EQ(json_string_value(json_object_get(k, "kind")), "Mesh");
    ASSERT(json_equal(json_object_get(k, "spec"), r->spec));
    json_decref(k);
    resource_free(r);

    r = from_yaml("apiVersion: kuma.io/v1alpha1\nkind: TrafficRoute\nmesh: m3\nmetadata: {name: "
                  "x}\nspec: {conf: {}}\n",
                  &e);
    ASSERT(r);
    ASSERT_STR_EQ(r->mesh, "m3");
    resource_free(r);
}

TEST(resource_target_ref_spec_nested)
{
    struct err e;
    struct resource *r = from_yaml(
        "type: MeshTimeout\nmesh: default\nname: t\nspec: {targetRef: {kind: Mesh}}\n", &e);
    ASSERT(r);
    ASSERT(json_object_get(r->spec, "targetRef"));
    json_t *u = resource_to_json(r, RES_FORM_UNIVERSAL);
    ASSERT(json_object_get(json_object_get(u, "spec"), "targetRef"));
    ASSERT_STR_EQ(json_string_value(json_object_get(u, "kri")), "kri_mt_default___t_");
    json_decref(u);
    resource_free(r);
}

TEST(resource_bad_documents)
{
    struct err e;
    ASSERT(!from_yaml("- a\n- b\n", &e));
    ASSERT_STR_CONTAINS(e.msg, "must be an object");
    ASSERT(!from_yaml("name: x\n", &e));
    ASSERT_STR_CONTAINS(e.msg, "type: must be set");
    ASSERT(!from_yaml("type: Nope\nname: x\n", &e));
    ASSERT_STR_CONTAINS(e.msg, "unknown type \"Nope\"");
    ASSERT(!from_yaml("type: Mesh\nname: [1]\n", &e));
    ASSERT_STR_CONTAINS(e.msg, "name: must be a string");
    ASSERT(!from_yaml("type: Mesh\nname: x\nlabels: {a: [1]}\n", &e));
    ASSERT_STR_CONTAINS(e.msg, "labels[\"a\"]");
    ASSERT(!from_yaml("apiVersion: v1\nkind: Mesh\nmetadata: {name: x}\n", &e));
    ASSERT_STR_CONTAINS(e.msg, "apiVersion");
}

TEST(resource_universal_round_trip)
{
    struct err e;
    struct resource *r = from_yaml("type: Mesh\nname: m\nmtls: {enabledBackend: ''}\n", &e);
    ASSERT(r);
    r->creation_time = 1700000000123000000LL;
    r->modification_time = 1700000000123000000LL;
    json_t *u = resource_to_json(r, RES_FORM_UNIVERSAL);
    ASSERT_STR_EQ(json_string_value(json_object_get(u, "creationTime")),
                  "2023-11-14T22:13:20.123Z");
    struct resource *back = NULL;
    ASSERT_INT_EQ(resource_from_json(u, &back, &e), 0);
    ASSERT(json_equal(back->spec, r->spec));
    json_decref(u);
    resource_free(r);
    resource_free(back);
}
