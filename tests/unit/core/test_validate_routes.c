/* MeshHTTPRoute and MeshTCPRoute validators (Kuma's paths and messages). */
#include "../test.h"
#include "vtest.h"

#define TO_BACKEND   "'targetRef':{'kind':'MeshService','name':'backend'}"
#define HTTP_RULE(x) "{'targetRef':{'kind':'Mesh'},'to':[{" TO_BACKEND ",'rules':[" x "]}]}"

static const struct vcase mhr[] = {
    /* valid: matches, filters and weighted backends */
    {HTTP_RULE("{'matches':[{'path':{'type':'PathPrefix','value':'/v1'},'method':'GET',"
               "'headers':[{'type':'Exact','name':'x','value':'1'}],'queryParams':[{'type':"
               "'Exact','name':'q','value':'1'}]}],'default':{'filters':[{'type':"
               "'RequestHeaderModifier','requestHeaderModifier':{'set':[{'name':'a','value':'b'}],"
               "'remove':['c']}},{'type':'URLRewrite','urlRewrite':{'path':{'type':"
               "'ReplacePrefixMatch','replacePrefixMatch':'/v2'}}}],'backendRefs':[{'kind':"
               "'MeshServiceSubset','name':'backend','tags':{'version':'v2'},'weight':90},{'kind':"
               "'MeshService','name':'backend','weight':10}]}}"),
     ""},
    /* no targetRef: kind Mesh */
    {"{'to':[{" TO_BACKEND ",'rules':[{'matches':[{'path':{'type':'Exact','value':'/a'}}],"
     "'default':{}}]}]}",
     ""},
    {"{'targetRef':{'kind':'MeshHTTPRoute','name':'web'},'to':[]}",
     "spec.targetRef.kind: value is not supported"},
    {"{'targetRef':{'kind':'MeshGateway','name':'gw','tags':{'port':'80'}},'to':[{'targetRef':"
     "{'kind':'Mesh'},'hostnames':['example.com'],'rules':[{'matches':[{'path':{'type':"
     "'PathPrefix','value':'/'}}],'default':{'backendRefs':[{'kind':'MeshService','name':"
     "'backend'}]}}]}]}",
     ""},
    {"{'targetRef':{'kind':'MeshGateway','name':'gw'},'to':[{" TO_BACKEND ",'rules':[{'matches':"
     "[{'path':{'type':'PathPrefix','value':'/'}}],'default':{}}]}]}",
     "spec.to[0].targetRef.kind: value is not supported; spec.to[0].rules[0].default.backendRefs: "
     "must not be empty"},
    {"{'targetRef':{'kind':'MeshGateway','name':'gw'},'to':[{'targetRef':{'kind':'Mesh'},"
     "'rules':[{'matches':[{'path':{'type':'PathPrefix','value':'/'}}],'default':{'filters':[{"
     "'type':'RequestRedirect','requestRedirect':{'scheme':'https'}}]}}]}]}",
     ""},
    {"{'to':[{'targetRef':{'kind':'Mesh'},'hostnames':['a.com']}]}",
     "spec.to[0].targetRef.kind: value is not supported; spec.to[0].hostnames: must not be "
     "defined"},
    {HTTP_RULE("{'matches':[{'path':{'type':'PathPrefix','value':'v1/'}},{'path':{'type':"
               "'Exact','value':'x'}},{'path':{'type':'RegularExpression','value':'.*'}},"
               "{'path':{'type':'Glob','value':'/'}}],'default':{}}"),
     "spec.to[0].rules[0].matches[0].path.value: does not need a trailing slash because only a "
     "`/`-separated prefix or an entire path is matched; spec.to[0].rules[0].matches[0].path."
     "value: must be an absolute path; spec.to[0].rules[0].matches[1].path.value: must be an "
     "absolute path; spec.to[0].rules[0].matches[3].path.type: value is not supported"},
    {HTTP_RULE("{'matches':[{'queryParams':[{'type':'Exact','name':'a','value':'1'},{'type':"
               "'Exact','name':'a','value':'2'}],'headers':[{'type':'Present','name':'h','value':"
               "'x'},{'type':'Absent','name':'g'}]}],'default':{}}"),
     "spec.to[0].rules[0].matches[0].queryParams[1].name: multiple entries for name a; "
     "spec.to[0].rules[0].matches[0].headers[0].value: must not be defined"},
    {HTTP_RULE("{'matches':[{'method':'FETCH'}],'default':{'filters':[{'type':"
               "'RequestHeaderModifier'},{'type':'ResponseHeaderModifier',"
               "'responseHeaderModifier':{}},{'type':'ResponseHeaderModifier',"
               "'responseHeaderModifier':{'set':[{'name':'a','value':'1'}],'add':[{'name':'a',"
               "'value':'2'}],'remove':['a']}}]}}"),
     "spec.to[0].rules[0].matches[0].method: value is not supported; "
     "spec.to[0].rules[0].default.filters[0].requestHeaderModifier: must be defined; "
     "spec.to[0].rules[0].default.filters[1].responseHeaderModifier: must have at least one "
     "defined: set, add, remove; spec.to[0].rules[0].default.filters[2].responseHeaderModifier."
     "add[0].name: duplicate header name; spec.to[0].rules[0].default.filters[2]."
     "responseHeaderModifier.remove[0].name: duplicate header name"},
    {"{'targetRef':{'kind':'MeshSubset','tags':{'team':'edge'}},'to':[]}", ""},
    {HTTP_RULE("{'matches':[{'path':{'type':'Exact','value':'/a'}}],'default':{'filters':[{"
               "'type':'RequestRedirect','requestRedirect':{'hostname':'10.0.0.1','path':{'type':"
               "'ReplacePrefixMatch','replacePrefixMatch':'/b'},'statusCode':304}},{'type':"
               "'URLRewrite','urlRewrite':{'hostname':'Bad_Host','hostToBackendHostname':true}},"
               "{'type':'Teleport'}]}}"),
     "spec.to[0].rules[0].default.filters[0].requestRedirect.path.replacePrefixMatch: can only "
     "appear if all matches match a path prefix; spec.to[0].rules[0].default.filters[0]."
     "requestRedirect.hostname: cannot be an IP address; spec.to[0].rules[0].default.filters[0]."
     "requestRedirect.statusCode: value is not supported; spec.to[0].rules[0].default.filters[1]."
     "urlRewrite.hostname: a lowercase RFC 1123 subdomain must consist of lower case "
     "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
     "character (e.g. 'example.com', regex used for validation is "
     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'); "
     "spec.to[0].rules[0].default.filters[1].urlRewrite.hostToBackendHostname: can only be set "
     "with MeshGateway; spec.to[0].rules[0].default.filters[1].urlRewrite.hostToBackendHostname: "
     "cannot be set together with hostname; spec.to[0].rules[0].default.filters[2].type: value "
     "is not supported"},
    {HTTP_RULE("{'matches':[{'path':{'type':'PathPrefix','value':'/'}}],'default':{'filters':[{"
               "'type':'RequestMirror','requestMirror':{'backendRef':{'kind':'Mesh'}}}],"
               "'backendRefs':[{'kind':'MeshMultiZoneService','name':'m'},{'kind':'Mesh'},{'kind':"
               "'MeshService'}]}}"),
     "spec.to[0].rules[0].default.filters[0].requestMirror.backendRef.kind: value is not "
     "supported; spec.to[0].rules[0].default.backendRefs[0].port: must be defined with kind "
     "MeshMultiZoneService; spec.to[0].rules[0].default.backendRefs[1].kind: value is not "
     "supported; spec.to[0].rules[0].default.backendRefs[2].name: must be set with kind "
     "MeshService"},
    /* wrong JSON types never crash and say what is wrong */
    {"{'to':{}}", "spec.to: must be an array"},
    {"{'to':[{'targetRef':'x','rules':[{'matches':'y','default':[]}]}]}",
     "spec.to[0].targetRef: must be an object; spec.to[0].rules[0].matches: must be an array; "
     "spec.to[0].rules[0].default: must be an object"},
};

TEST(validate_mesh_http_route_table)
{
    VTEST_TABLE("mesh http route", &TYPE_MESH_HTTP_ROUTE, validate_mesh_http_route, mhr);
}

static const struct vcase mtcpr[] = {
    {"{'targetRef':{'kind':'Mesh'},'to':[{" TO_BACKEND ",'rules':[{'default':{'backendRefs':[{"
     "'kind':'MeshServiceSubset','name':'backend','tags':{'version':'v1'},'weight':80},{'kind':"
     "'MeshService','name':'other','weight':20}]}}]}]}",
     ""},
    {"{'targetRef':{'kind':'Mesh'},'to':[{" TO_BACKEND ",'rules':[{'default':{}}]}]}",
     "spec.to[0].rules[0].default.backendRefs: must be defined"},
    {"{'targetRef':{'kind':'MeshHTTPRoute','name':'r'},'to':[{'targetRef':{'kind':"
     "'MeshServiceSubset','name':'x'},'rules':[{'default':{'backendRefs':[{'kind':"
     "'MeshGateway','name':'g'}]}}]}]}",
     "spec.targetRef.kind: value is not supported; spec.to[0].targetRef.kind: value is not "
     "supported; spec.to[0].rules[0].default.backendRefs[0].kind: value is not supported"},
    {"{'targetRef':{'kind':'MeshGateway','name':'gw'},'to':[{'targetRef':{'kind':'Mesh'},"
     "'rules':[{'default':{'backendRefs':[{'kind':'MeshService','name':'tcp'}]}}]}]}",
     ""},
};

TEST(validate_mesh_tcp_route_table)
{
    VTEST_TABLE("mesh tcp route", &TYPE_MESH_TCP_ROUTE, validate_mesh_tcp_route, mtcpr);
}

/* A producer/consumer role (label kuma.io/policy-role) cannot target a
 * MeshGateway. */
TEST(validate_mesh_http_route_policy_role)
{
    struct resource *r = vtest_resource(&TYPE_MESH_HTTP_ROUTE, "default", "x",
                                        "{'targetRef':{'kind':'MeshGateway','name':'gw'}}");
    json_object_set_new(r->labels, "kuma.io/policy-role", json_string("consumer"));
    struct verr ve = {0};
    validate_mesh_http_route(r, &ve);
    char *got = verr_join(&ve);
    ASSERT_STR_EQ(got, "spec.targetRef.kind: value is not supported");
    free(got);
    verr_free(&ve);
    resource_free(r);
}
