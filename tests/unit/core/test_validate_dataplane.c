/* Dataplane: static validator and Mesh membership constraints. */
#include "../test.h"
#include "vtest.h"

#define NET(x) "{'networking':{'address':'192.168.0.1'," x "}}"
#define IN1    "'inbound':[{'port':8080,'tags':{'kuma.io/service':'backend'}}]"

static const struct vcase dp_valid[] = {
    {NET(IN1), ""},
    {NET("'inbound':[{'port':8080,'servicePort':7070,'serviceAddress':'192.168.0.2',"
         "'tags':{'kuma.io/service':'backend','kuma.io/protocol':'http','version':'v1'}}],"
         "'outbound':[{'port':33033,'tags':{'kuma.io/service':'redis'}},{'port':1,'service':"
         "'web'}]"),
     ""},
    {"{'networking':{'address':'backend.svc.local'," IN1 "}}", ""},
    {NET("'inbound':[{'port':8080}]"), ""},
    {NET("'gateway':{'tags':{'kuma.io/service':'gw'}}"), ""},
    {NET("'gateway':{'type':'BUILTIN','tags':{'kuma.io/service':'gw','kuma.io/protocol':'tcp'}}"),
     ""},
    {NET(IN1 ",'outbound':[{'port':8080,'backendRef':{'kind':'MeshService','name':'redis',"
             "'port':6379}}]"),
     ""},
    {NET(IN1 ",'outbound':[{'port':8080,'backendRef':{'kind':'MeshExternalService',"
             "'labels':{'a':'b'}}}]"),
     ""},
    {NET(IN1 ",'transparentProxying':{'redirectPortInbound':15006,'reachableBackends':{'refs':"
             "[{'kind':'MeshService','name':'redis'},{'kind':'MeshExternalService','labels':"
             "{'x':'y'}}]}}"),
     ""},
    {"{'networking':{'address':'192.168.0.1'," IN1 "},'probes':{'port':9000,'endpoints':"
     "[{'inboundPort':8080,'inboundPath':'/healthz','path':'/8080/healthz'}]}}",
     ""},
    {"{'networking':{'address':'192.168.0.1'," IN1 "},'metrics':{'type':'prometheus','conf':"
     "{'port':1234}}}",
     ""},
    {NET(IN1 ",'admin':{'port':9901}"), ""},
    {NET("'inbound':[{'port':8080,'serviceProbe':{'interval':'1s','timeout':'2s',"
         "'unhealthyThreshold':3,'healthyThreshold':1},'tags':{'kuma.io/service':'b'}}]"),
     ""},
};

static const struct vcase dp_invalid[] = {
    {"{}", "networking: must be defined"},
    {"{'networking':{" IN1 "}}", "networking.address: address can't be empty"},
    {"{'networking':{'address':'0.0.0.0'," IN1 "}}",
     "networking.address: must not be 0.0.0.0 or ::"},
    {"{'networking':{'address':'::'," IN1 "}}", "networking.address: must not be 0.0.0.0 or ::"},
    {"{'networking':{'address':'not valid!'," IN1 "}}",
     "networking.address: address has to be valid IP address or domain name"},
    {NET("'outbound':[{'port':1,'service':'x'}]"),
     "networking: has to contain at least one inbound interface or gateway"},
    {NET("'inbound':[{'port':0,'tags':{'kuma.io/service':'b'}}]"),
     "networking.inbound[0].port: port must be in the range [1, 65535]"},
    {NET("'inbound':[{'port':65536,'servicePort':70000,'tags':{'kuma.io/service':'b'}}]"),
     "networking.inbound[0].port: port must be in the range [1, 65535]; "
     "networking.inbound[0].servicePort: port must be in the range [1, 65535]"},
    {NET("'inbound':[{'port':80,'serviceAddress':'foo','tags':{'kuma.io/service':'b'}}]"),
     "networking.inbound[0].serviceAddress: serviceAddress has to be valid IP address"},
    {NET("'inbound':[{'port':80,'serviceAddress':'192.168.0.1','tags':{'kuma.io/service':'b'}}]"),
     "networking.inbound[0].serviceAddress: serviceAddress and servicePort has to differ from "
     "address and port"},
    {NET("'inbound':[{'port':80,'address':'bad','tags':{'kuma.io/service':'b'}}]"),
     "networking.inbound[0].address: address has to be valid IP address"},
    {NET("'inbound':[{'port':80,'tags':{'version':'v1'}}]"),
     "networking.inbound[0].tags[\"kuma.io/service\"]: tag has to exist"},
    {NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b','kuma.io/protocol':'ftp'}}]"),
     "networking.inbound[0].tags[\"kuma.io/protocol\"]: tag \"kuma.io/protocol\" has an "
     "invalid value \"ftp\". Allowed values: grpc, http, http2, kafka, tcp"},
    {NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b/c'}}]"),
     "networking.inbound[0].tags[\"kuma.io/service\"]: tag value must consist of alphanumeric "
     "characters, dots, dashes and underscores"},
    {NET("'inbound':[{'port':80,'tags':{'kuma.io/service':''}}]"),
     "networking.inbound[0].tags[\"kuma.io/service\"]: tag value must be non-empty"},
    {NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b'},'serviceProbe':{'interval':'0s',"
         "'unhealthyThreshold':0}}]"),
     "networking.inbound[0].serviceProbe.interval: must have a positive value; "
     "networking.inbound[0].serviceProbe.unhealthyThreshold: must have a positive value"},
    {NET(IN1 ",'outbound':[{'port':0,'tags':{'kuma.io/service':'x'}}]"),
     "networking.outbound[0].port: port must be in the range [1, 65535]"},
    {NET(IN1 ",'outbound':[{'port':1,'address':'nope'}]"),
     "networking.outbound[0].address: address has to be valid IP address; "
     "networking.outbound[0].tags: mandatory tag \"kuma.io/service\" is missing"},
    {NET(IN1 ",'outbound':[{'port':1,'tags':{'version':'1'}}]"),
     "networking.outbound[0].tags: mandatory tag \"kuma.io/service\" is missing"},
    {NET(IN1 ",'outbound':[{'port':1,'backendRef':{'kind':'Foo','port':80}}]"),
     "networking.outbound[0].backendRef.kind: invalid value. Available values are: "
     "MeshExternalService,MeshMultiZoneService,MeshService; "
     "networking.outbound[0].backendRef: either 'name' or 'labels' should be specified"},
    {NET(IN1 ",'outbound':[{'port':1,'backendRef':{'kind':'MeshService','name':'a'}}]"),
     "networking.outbound[0].backendRef.port: port must be in the range [1, 65535]"},
    {NET(IN1 ",'outbound':[{'port':1,'service':'x','backendRef':{'kind':'MeshService','name':"
             "'a','port':80}}]"),
     "networking.outbound[0].backendRef: both backendRef and tags/service cannot be defined"},
    {NET(IN1 ",'transparentProxying':{'reachableBackends':{'refs':[{'kind':'Other','name':"
             "'a'},{'kind':'MeshService'},{'kind':'MeshService','namespace':'ns'},{'kind':"
             "'MeshService','name':'a','labels':{'k':'v'}},{'kind':'MeshService','name':'A_b'}]}}"),
     "networking.transparentProxing.reachableBackends.refs[0].kind: invalid value. Available "
     "values are: MeshExternalService,MeshMultiZoneService,MeshService; "
     "networking.transparentProxing.reachableBackends.refs[1].name: name or labels are required; "
     "networking.transparentProxing.reachableBackends.refs[2].name: name is required, when "
     "namespace is defined; "
     "networking.transparentProxing.reachableBackends.refs[3].labels: labels cannot be defined "
     "when name is specified; "
     "networking.transparentProxing.reachableBackends.refs[4].name: invalid characters. A "
     "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
     "'.', and must start and end with an alphanumeric character"},
    {NET(IN1 ",'gateway':{'tags':{'kuma.io/service':'gw'}}"),
     "networking.inbound: inbound cannot be defined for delegated gateways"},
    {NET("'gateway':{'tags':{'version':'1'}}"),
     "networking.gateway.tags: mandatory tag \"kuma.io/service\" is missing"},
    {NET("'gateway':{'tags':{'kuma.io/service':'gw','kuma.io/protocol':'http'}}"),
     "networking.gateway.tags[\"kuma.io/protocol\"]: other values than tcp are not allowed, "
     "provided value \"http\""},
    {"{'networking':{'address':'1.1.1.1','gateway':{'type':'BUILTIN','tags':{'kuma.io/service':"
     "'gw'}}," IN1 ",'outbound':[{'port':1,'service':'a'}]},'probes':{'port':1}}",
     "networking.inbound: inbound cannot be defined for builtin gateways; "
     "networking.outbound: outbound cannot be defined for builtin gateways; "
     "networking.probes: probes cannot be defined for builtin gateways"},
    {NET("'inbound':[{'port':9901,'tags':{'kuma.io/service':'b'}}],'admin':{'port':9901}"),
     "networking.admin.port: must differ from inbound"},
    {NET(IN1 ",'outbound':[{'port':9901,'service':'a'}],'admin':{'port':9901}"),
     "networking.admin.port: must differ from outbound"},
    {"{'networking':{'address':'1.1.1.1'," IN1 "},'probes':{'port':0,'endpoints':[{'inboundPort':"
     "8080,'inboundPath':'healthz','path':''}]}}",
     "probes.port: port must be in the range [1, 65535]; "
     "probes.endpoints[0].inboundPath: should be a valid URL Path; "
     "probes.endpoints[0].path: should be a valid URL Path"},
    {"{'networking':{'address':'1.1.1.1'," IN1 "},'metrics':{'type':'statsd'}}",
     "metrics.type: unknown backend type. Available backends: \"prometheus\""},
    {"{'networking':{'address':'1.1.1.1'," IN1 "},'metrics':{'type':'prometheus','conf':"
     "{'skipMTLS':true,'tls':{'mode':'providedTLS'}}}}",
     "metrics.conf: skipMTLS and tls configuration cannot be defined together"},
    {NET("'listeners':[{'type':'Sidecar','port':10001}]"),
     "networking.listeners[0].type: type must be ZoneIngress or ZoneEgress"},
};

static const struct vcase dp_hostile[] = {
    {"{'networking':'x'}", "networking: must be an object"},
    {"{'networking':{'address':5," IN1 "}}",
     "networking.address: must be a string; networking.address: address can't be empty"},
    {NET("'inbound':{'port':1}"),
     "networking.inbound: must be an array; "
     "networking: has to contain at least one inbound interface or gateway"},
    {NET("'inbound':[1,'a',null]"),
     "networking.inbound[0]: must be an object; networking.inbound[1]: must be an object"},
    {NET("'inbound':[{'port':'abc','tags':{'kuma.io/service':'b'}}]"),
     "networking.inbound[0].port: must be a non-negative integer; "
     "networking.inbound[0].port: port must be in the range [1, 65535]"},
    {NET("'inbound':[{'port':80,'tags':['a']}]"), "networking.inbound[0].tags: must be an object"},
    {NET("'inbound':[{'port':80,'tags':{'kuma.io/service':1}}]"),
     "networking.inbound[0].tags[\"kuma.io/service\"]: must be a string"},
    {NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b'},'serviceProbe':{'interval':"
         "'soon'}}]"),
     "networking.inbound[0].serviceProbe.interval: must be a valid duration"},
    {NET("'inbound':[{'port':1.8e19,'tags':{'kuma.io/service':'b'}}]"),
     "networking.inbound[0].port: must be a non-negative integer; "
     "networking.inbound[0].port: port must be in the range [1, 65535]"},
    {NET("'gateway':'BUILTIN'"),
     "networking.gateway: must be an object; "
     "networking: has to contain at least one inbound interface or gateway"},
    {"{'networking':{'address':'1.1.1.1'," IN1 "},'probes':[1]}", "probes: must be an object"},
};

TEST(validate_dataplane_valid)
{
    VTEST_TABLE("dataplane valid", &TYPE_DATAPLANE, validate_dataplane, dp_valid);
}

TEST(validate_dataplane_invalid)
{
    VTEST_TABLE("dataplane invalid", &TYPE_DATAPLANE, validate_dataplane, dp_invalid);
}

TEST(validate_dataplane_hostile)
{
    VTEST_TABLE("dataplane hostile", &TYPE_DATAPLANE, validate_dataplane, dp_hostile);
}

struct ccase {
    const char *mesh, *dp, *expected;
};

static const struct ccase constraints[] = {
    {"{}", NET(IN1), ""},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'kuma.io/zone':'*'}}]}}}",
     NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b','kuma.io/zone':'east'}}]"), ""},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'kuma.io/zone':'west'}}]}}}",
     NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b','kuma.io/zone':'east'}}]"),
     ": dataplane cannot be a member of mesh \"default\" because its tags \"kuma.io/service=b "
     "kuma.io/zone=east\" does not fulfill any requirements defined on the Mesh"},
    {"{'constraints':{'dataplaneProxy':{'restrictions':[{'tags':{'kuma.io/zone':'east'}}]}}}",
     NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b','kuma.io/zone':'east'}}]"),
     ": dataplane cannot be a member of mesh \"default\" because its tags \"kuma.io/service=b "
     "kuma.io/zone=east\" matches restricted tags \"kuma.io/zone=east\" defined on the Mesh"},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'kuma.io/zone':'*'}}]}}}",
     NET("'inbound':[{'port':80,'tags':{'kuma.io/service':'b'}}]"),
     ": dataplane cannot be a member of mesh \"default\" because its tags \"kuma.io/service=b\" "
     "does not fulfill any requirements defined on the Mesh"},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'team':'a'}}]}}}",
     NET("'gateway':{'tags':{'kuma.io/service':'gw','team':'a'}}"), ""},
    {"{'constraints':'x'}", NET(IN1), ""},
};

TEST(validate_dataplane_constraints_table)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(constraints) / sizeof(constraints[0]); i++) {
        struct resource *m = vtest_resource(&TYPE_MESH, "", "default", constraints[i].mesh);
        struct resource *d = vtest_resource(&TYPE_DATAPLANE, "default", "dp", constraints[i].dp);
        struct verr ve = {0};
        validate_dataplane_constraints(m, d, &ve);
        char *got = verr_join(&ve);
        if (strcmp(got, constraints[i].expected) != 0) {
            fprintf(stderr, "  case %zu\n    got:      %s\n    expected: %s\n", i, got,
                    constraints[i].expected);
            failed++;
        }
        free(got);
        verr_free(&ve);
        resource_free(m);
        resource_free(d);
    }
    ASSERT_INT_EQ(failed, 0);
}
