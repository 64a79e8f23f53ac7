/* Legacy policies, ExternalService, Secret, MeshGateway, targetRef policies. */
#include "../test.h"
#include "vtest.h"

#define SRC "'sources':[{'match':{'kuma.io/service':'web'}}]"
#define DST "'destinations':[{'match':{'kuma.io/service':'backend'}}]"

static const struct vcase tp[] = {
    {"{" SRC "," DST "}", ""},
    {"{'sources':[{'match':{'kuma.io/service':'*'}}],'destinations':[{'match':{'kuma.io/service':"
     "'*'}}]}",
     ""},
    {"{}", "sources: must have at least one element; destinations: must have at least one element"},
    {"{'sources':[{'match':{}}]," DST "}", "sources[0].match: must have at least one tag"},
    {"{'sources':[{}]," DST "}", "sources[0].match: must have at least one tag"},
    {"{'sources':[{'match':{'region':'eu'}}]," DST "}", ""},
    {"{" SRC ",'destinations':[{'match':{'kuma.io/service':''}}]}",
     "destinations[0].match[\"kuma.io/service\"]: tag value must be non-empty"},
    {"{" SRC ",'destinations':[{'match':{'kuma.io/service':'a b'}}]}",
     "destinations[0].match[\"kuma.io/service\"]: tag value must consist of alphanumeric "
     "characters, dots, dashes, slashes and underscores or be \"*\""},
    {"{'sources':'all'," DST "}",
     "sources: must be an array; sources: must have at least one element"},
    {"{'sources':[5]," DST "}",
     "sources[0]: must be an object; sources[0].match: must have at least one tag"},
    {"{'sources':[{'match':'x'}]," DST "}",
     "sources[0].match: must be an object; sources[0].match: must have at least one tag"},
};

TEST(validate_traffic_permission_table)
{
    VTEST_TABLE("traffic permission", &TYPE_TRAFFIC_PERMISSION, validate_traffic_permission, tp);
}

static const struct vcase tr[] = {
    {"{" SRC "," DST ",'conf':{'destination':{'kuma.io/service':'backend'}}}", ""},
    {"{" SRC "," DST ",'conf':{'split':[{'weight':90,'destination':{'kuma.io/service':'b',"
     "'version':'1'}},{'weight':10,'destination':{'kuma.io/service':'b','version':'2'}}],"
     "'loadBalancer':{'roundRobin':{}}}}",
     ""},
    {"{" SRC "," DST "}", "conf: cannot be empty"},
    {"{" SRC ",'destinations':[{'match':{'kuma.io/service':'b','version':'1'}}],'conf':"
     "{'destination':{'kuma.io/service':'b'}}}",
     "destinations[0].match: must consist of exactly one tag \"kuma.io/service\"; "
     "destinations[0].match[\"version\"]: tag \"version\" is not allowed"},
    {"{'sources':[{'match':{'region':'eu'}}]," DST ",'conf':{'destination':{'kuma.io/service':"
     "'b'}}}",
     "sources[0].match: mandatory tag \"kuma.io/service\" is missing"},
    {"{" SRC "," DST ",'conf':{}}", "conf: requires either \"destination\" or \"split\""},
    {"{" SRC "," DST ",'conf':{'split':[],'destination':{'kuma.io/service':'b'}}}",
     "conf: \"split\" cannot be defined at the same time as \"destination\"; "
     "conf.split: must have at least one element"},
    {"{" SRC "," DST ",'conf':{'split':[{'destination':{'kuma.io/service':'b'}}]}}",
     "conf.split[0].weight: needs to be defined; "
     "conf.split: there must be at least one split entry with weight above 0"},
    {"{" SRC "," DST ",'conf':{'split':[{'weight':0,'destination':{'version':'1'}}]}}",
     "conf.split[0].destination: mandatory tag \"kuma.io/service\" is missing; "
     "conf.split: there must be at least one split entry with weight above 0"},
    {"{" SRC "," DST ",'conf':{'destination':{}}}",
     "conf.destination: must have at least one tag; conf.destination: mandatory tag "
     "\"kuma.io/service\" is missing"},
    {"{" SRC "," DST ",'conf':{'destination':{'kuma.io/service':'b'},'http':[{'destination':"
     "{'kuma.io/service':'c'}}]}}",
     "conf.http[0].match: must be present and contain at least one of the elements: \"method\", "
     "\"path\" or \"headers\""},
    {"{" SRC "," DST ",'conf':{'destination':{'kuma.io/service':'b'},'http':[{'match':{'path':"
     "{'prefix':''},'method':{},'headers':{'x':{'regex':''}}},'destination':{'kuma.io/service':"
     "'c'}}]}}",
     "conf.http[0].match.method: cannot be empty. Available options: \"exact\", \"split\" or "
     "\"regex\"; conf.http[0].match.path.prefix: cannot be empty; "
     "conf.http[0].match.headers[\"x\"].regex: cannot be empty"},
    {"{" SRC "," DST ",'conf':{'destination':{'kuma.io/service':'b'},'http':[{'match':{'path':"
     "{'exact':'/a'}},'modify':{'path':{'rewritePrefix':'/b'},'host':{},'requestHeaders':{'add':"
     "[{'name':'host','value':''}],'remove':[{'name':':path'}]}},'destination':{'kuma.io/service'"
     ":'c'}}]}}",
     "conf.http[0].modify.path.rewritePrefix: can only be set when .http.match.path.prefix is "
     "not empty; conf.http[0].modify.host: either \"value\" or \"fromPath\" has to be set; "
     "conf.http[0].modify.requestHeaders.add[0].name: host header and HTTP/2 pseudo-headers are "
     "not allowed to be modified; conf.http[0].modify.requestHeaders.add[0].value: cannot be "
     "empty; conf.http[0].modify.requestHeaders.remove[0].name: host header and HTTP/2 "
     "pseudo-headers are not allowed to be modified"},
    {"{" SRC "," DST ",'conf':{'destination':{'kuma.io/service':'b'},'loadBalancer':"
     "{'leastRequest':{'choiceCount':1}}}}",
     "conf.loadBalancer.leastRequest.choiceCount: value must be greater than or equal to 2"},
    {"{" SRC "," DST ",'conf':{'destination':{'kuma.io/service':'b'},'loadBalancer':"
     "{'ringHash':{'hashFunction':'MD5'}}}}",
     "conf.loadBalancer.ringHash.hashFunction: must have a valid hash function"},
    {"{" SRC "," DST ",'conf':'all'}", "conf: must be an object"},
    {"{" SRC "," DST ",'conf':{'destination':{'kuma.io/service':'b'},'http':[7]}}",
     "conf.http[0]: must be an object"},
};

TEST(validate_traffic_route_table)
{
    VTEST_TABLE("traffic route", &TYPE_TRAFFIC_ROUTE, validate_traffic_route, tr);
}

static const struct vcase tl[] = {
    {"{" SRC "," DST ",'conf':{'backend':'file'}}", ""},
    {"{" SRC "," DST "}", ""},
    {"{'sources':[{'match':{'a':'b'}}]," DST "}",
     "sources[0].match: mandatory tag \"kuma.io/service\" is missing"},
    {"{" SRC ",'destinations':[{'match':{'kuma.io/service':'*','version':'1'}}]}",
     "destinations[0].match: must consist of exactly one tag \"kuma.io/service\"; "
     "destinations[0].match[\"version\"]: tag \"version\" is not allowed"},
    {"{" SRC "," DST ",'conf':{'backend':1}}", "conf.backend: must be a string"},
};

TEST(validate_traffic_log_table)
{
    VTEST_TABLE("traffic log", &TYPE_TRAFFIC_LOG, validate_traffic_log, tl);
}

static const struct vcase tt[] = {
    {"{'selectors':[{'match':{'kuma.io/service':'*'}}],'conf':{'backend':'zipkin'}}", ""},
    {"{}", "selectors: must have at least one element"},
    {"{'selectors':[{'match':{}}]}", "selectors[0].match: must have at least one tag"},
    {"{'selectors':[{'match':{'a b':'c'}}]}",
     "selectors[0].match[\"a b\"]: tag name must consist of alphanumeric characters, dots, "
     "dashes, slashes and underscores"},
};

TEST(validate_traffic_trace_table)
{
    VTEST_TABLE("traffic trace", &TYPE_TRAFFIC_TRACE, validate_traffic_trace, tt);
}

static const struct vcase hc[] = {
    {"{" SRC "," DST ",'conf':{'interval':'10s','timeout':'2s','unhealthyThreshold':3,"
     "'healthyThreshold':1,'http':{'path':'/health','expectedStatuses':[200]}}}",
     ""},
    {"{" SRC "," DST "}", "conf: has to be defined"},
    {"{" SRC "," DST ",'conf':{}}",
     "conf.interval: must have a positive value; conf.timeout: must have a positive value; "
     "conf.unhealthyThreshold: must have a positive value; conf.healthyThreshold: must have a "
     "positive value"},
    {"{" SRC "," DST ",'conf':{'interval':'0s','timeout':'1s','unhealthyThreshold':1,"
     "'healthyThreshold':1,'healthyPanicThreshold':101}}",
     "conf.interval: must have a positive value; conf.healthyPanicThreshold: must be in range "
     "[0.0 - 100.0]"},
    {"{" SRC "," DST ",'conf':{'interval':'1s','timeout':'1s','unhealthyThreshold':1,"
     "'healthyThreshold':1,'http':{'expectedStatuses':[99,600],'requestHeadersToAdd':[{},"
     "{'header':{'value':'v'}}]},'tcp':{}}}",
     "conf.http.path: has to be defined and cannot be empty; conf.http.expectedStatuses[0]: "
     "must be in range [100, 600); conf.http.expectedStatuses[1]: must be in range [100, 600); "
     "conf.http.requestHeadersToAdd[0].header: has to be defined; "
     "conf.http.requestHeadersToAdd[1].header.key: cannot be empty; "
     "conf: http and tcp cannot be defined at the same time"},
    {"{" SRC "," DST ",'conf':{'interval':10,'timeout':'1s','unhealthyThreshold':1,"
     "'healthyThreshold':1}}",
     "conf.interval: must be a valid duration"},
};

TEST(validate_health_check_table)
{
    VTEST_TABLE("health check", &TYPE_HEALTH_CHECK, validate_health_check, hc);
}

static const struct vcase cb[] = {
    {"{" SRC "," DST ",'conf':{'thresholds':{'maxConnections':2}}}", ""},
    {"{" SRC "," DST ",'conf':{'detectors':{'totalErrors':{'consecutive':20}}}}", ""},
    {"{" SRC "," DST "}", "conf: must have at least one of the detector or threshold configured"},
    {"{" SRC "," DST ",'conf':{'detectors':{},'thresholds':{}}}",
     "conf: must have at least one of the detector or threshold configured"},
    {"{" SRC "," DST ",'conf':{'maxEjectionPercent':101,'detectors':{'failure':{'threshold':"
     "150}},'thresholds':{}}}",
     "conf.maxEjectionPercent: has to be in [0.0 - 100.0] range; "
     "conf.detectors.failure.threshold: has to be in [0.0 - 100.0] range; "
     "conf.thresholds: can't be empty"},
};

TEST(validate_circuit_breaker_table)
{
    VTEST_TABLE("circuit breaker", &TYPE_CIRCUIT_BREAKER, validate_circuit_breaker, cb);
}

static const struct vcase retry[] = {
    {"{" SRC "," DST ",'conf':{'http':{'numRetries':5,'perTryTimeout':'200ms','backOff':"
     "{'baseInterval':'20ms','maxInterval':'1s'}},'tcp':{'maxConnectAttempts':3}}}",
     ""},
    {"{" SRC "," DST "}", "conf: has to be defined"},
    {"{" SRC "," DST ",'conf':{}}", "conf: missing protocol [grpc|http|tcp] configuration"},
    {"{" SRC "," DST ",'conf':{'http':{}}}", "conf.http: field cannot be empty"},
    {"{" SRC "," DST ",'conf':{'http':{'numRetries':0,'perTryTimeout':'0s','backOff':"
     "{'maxInterval':'1s'}}}}",
     "conf.http.numRetries: has to be greater than 0 when defined; conf.http.perTryTimeout: has "
     "to be greater than 0 when defined; conf.http.backOff.baseInterval: has to be defined"},
    {"{" SRC "," DST ",'conf':{'http':{'backOff':{'baseInterval':'0s'},'retriableMethods':"
     "['GET','NONE'],'retryOn':['retriable_status_codes']}}}",
     "conf.http.backOff.baseInterval: has to be greater than 0; "
     "conf.http.retriableMethods[1]: field cannot be empty; "
     "conf.http.retryOn[0]: retriableStatusCodes cannot be empty when this option is specified"},
    {"{" SRC "," DST ",'conf':{'grpc':{'retryOn':['cancelled','internal','cancelled']}}}",
     "conf.grpc.retryOn: repeated value \"cancelled\" at indexes [0, 2]"},
    {"{" SRC "," DST ",'conf':{'tcp':{}}}",
     "conf.tcp.maxConnectAttempts: has to be greater than 0"},
};

TEST(validate_retry_table)
{
    VTEST_TABLE("retry", &TYPE_RETRY, validate_retry, retry);
}

static const struct vcase timeout[] = {
    {"{" SRC "," DST ",'conf':{'connectTimeout':'5s','tcp':{'idleTimeout':'1h'},'http':"
     "{'requestTimeout':'15s','idleTimeout':'1h'},'grpc':{'streamIdleTimeout':'30m'}}}",
     ""},
    {"{" SRC "," DST "}", "conf: has to be defined"},
    {"{" SRC "," DST ",'conf':{'tcp':{},'http':{},'grpc':{}}}",
     "conf.tcp: at least one timeout in section has to be defined; "
     "conf.http: at least one timeout in section has to be defined; "
     "conf.grpc: at least one timeout in section has to be defined"},
    {"{" SRC "," DST ",'conf':{'tcp':{'idleTimeout':'0s'},'http':{'requestTimeout':'0s'}}}",
     "conf.tcp.idleTimeout: has to be greater than 0; "
     "conf.http.requestTimeout: has to be greater than 0 when defined"},
};

TEST(validate_timeout_table)
{
    VTEST_TABLE("timeout", &TYPE_TIMEOUT, validate_timeout, timeout);
}

#define FI_DST "'destinations':[{'match':{'kuma.io/service':'b','kuma.io/protocol':'http'}}]"

static const struct vcase fi[] = {
    {"{" SRC "," FI_DST ",'conf':{'abort':{'httpStatus':500,'percentage':50},'delay':"
     "{'value':'5s','percentage':50.5},'responseBandwidth':{'limit':'50 mbps','percentage':10}}}",
     ""},
    {"{" SRC "," FI_DST "}", "conf: must have at least one of the faults configured"},
    {"{" SRC "," DST ",'conf':{'abort':{'httpStatus':500,'percentage':1}}}",
     "destinations[0].match: protocol must be specified"},
    {"{" SRC ",'destinations':[{'match':{'kuma.io/service':'b','kuma.io/protocol':'tcp'}}],"
     "'conf':{'abort':{'httpStatus':500,'percentage':1}}}",
     "destinations[0].match[\"kuma.io/protocol\"]: must be one of the [http, http2, grpc]"},
    {"{" SRC "," FI_DST ",'conf':{'abort':{'httpStatus':999,'percentage':101},'delay':"
     "{'percentage':5},'responseBandwidth':{'limit':'fast'}}}",
     "conf.delay.value: cannot be empty; conf.abort.percentage: has to be in [0.0 - 100.0] "
     "range; conf.abort.httpStatus: http status code is incorrect; "
     "conf.responseBandwidth.percentage: cannot be empty; conf.responseBandwidth.limit: has to "
     "be in kbps/mbps/gbps units"},
};

TEST(validate_fault_injection_table)
{
    VTEST_TABLE("fault injection", &TYPE_FAULT_INJECTION, validate_fault_injection, fi);
}

static const struct vcase rl[] = {
    {"{" SRC "," DST ",'conf':{'http':{'requests':5,'interval':'10s','onRateLimit':{'status':"
     "423,'headers':[{'key':'x','value':'y'}]}}}}",
     ""},
    {"{" SRC "," DST "}", "conf: must have conf"},
    {"{" SRC "," DST ",'conf':{'http':{'onRateLimit':{'headers':[{'key':'','value':''}]}}}}",
     "conf.http.requests: requests must be set; conf.http.onRateLimit.header[\"0\"]: key must be "
     "set; conf.http.onRateLimit.header[\"0\"]: value must be set"},
};

TEST(validate_rate_limit_table)
{
    VTEST_TABLE("rate limit", &TYPE_RATE_LIMIT, validate_rate_limit, rl);
}

static const struct vcase es[] = {
    {"{'networking':{'address':'httpbin.org:443','tls':{'enabled':true}},'tags':"
     "{'kuma.io/service':'httpbin','kuma.io/protocol':'http'}}",
     ""},
    {"{'networking':{'address':'10.0.0.1:80'},'tags':{'kuma.io/service':'x'}}", ""},
    {"{'tags':{'kuma.io/service':'x'}}", "networking: should have networking"},
    {"{'networking':{},'tags':{'kuma.io/service':'x'}}",
     "networking.address: address can't be empty"},
    {"{'networking':{'address':'httpbin.org'},'tags':{'kuma.io/service':'x'}}",
     "networking.address: unable to parse address; networking.address: address has to be a "
     "valid IP address or a domain name; networking.address: unable to parse port in address; "
     "networking.address: port must be in the range [1, 65535]"},
    {"{'networking':{'address':'httpbin.org:0'},'tags':{'kuma.io/service':'x'}}",
     "networking.address: port must be in the range [1, 65535]"},
    {"{'networking':{'address':'a.b:80'},'tags':{'version':'1'}}",
     "tags: mandatory tag \"kuma.io/service\" is missing"},
    {"{'networking':{'address':'a.b:80','tls':{'serverName':'','caCert':{}}},'tags':"
     "{'kuma.io/service':'x','kuma.io/protocol':'smtp'}}",
     "networking.tls.serverName: cannot be empty; networking.tls.caCert: data source cannot be "
     "empty; tags[\"kuma.io/protocol\"]: tag \"kuma.io/protocol\" has an invalid value \"smtp\". "
     "Allowed values: grpc, http, http2, kafka, tcp"},
    {"{'networking':{'address':'httpbin.org:80'},'tags':{'kuma.io/service':'httpbin.org'}}",
     "tags[\"kuma.io/service\"]: cannot be the same as networking.address"},
    {"{'networking':{'address':80},'tags':{'kuma.io/service':'x'}}",
     "networking.address: must be a string; networking.address: address can't be empty"},
};

TEST(validate_external_service_table)
{
    VTEST_TABLE("external service", &TYPE_EXTERNAL_SERVICE, validate_external_service, es);
}

static const struct vcase secret[] = {
    {"{'data':'dGVzdA=='}", ""},
    {"{}", "data: cannot be empty"},
    {"{'data':''}", "data: cannot be empty"},
    {"{'data':'not base64!'}", "data: has to be valid base64 string"},
    {"{'data':{'value':'x'}}", "data: must be a string"},
};

TEST(validate_secret_table)
{
    VTEST_TABLE("secret", &TYPE_SECRET, validate_secret, secret);
    VTEST_TABLE("global secret", &TYPE_GLOBAL_SECRET, validate_secret, secret);
}

#define GW_SEL "'selectors':[{'match':{'kuma.io/service':'gw'}}]"

static const struct vcase gw[] = {
    {"{" GW_SEL ",'conf':{'listeners':[{'port':8080,'protocol':'HTTP','hostname':'foo.example.com'"
     "},{'port':8443,'protocol':'HTTPS','tls':{'mode':'TERMINATE','certificates':[{'secret':"
     "'c'}]}}]}}",
     ""},
    {"{" GW_SEL "}", "conf: cannot be empty"},
    {"{" GW_SEL ",'conf':{'listeners':[]}}", "conf.listeners: cannot be empty"},
    {"{'conf':{'listeners':[{'port':80,'protocol':'HTTP'}]}}",
     "selectors: must have at least one element"},
    {"{" GW_SEL ",'tags':{'kuma.io/service':'x'},'conf':{'listeners':[{'port':80,'protocol':"
     "'HTTP','tags':{'kuma.io/zone':'z'}}]}}",
     "tags[\"kuma.io/service\"]: tag name must not be \"kuma.io/service\"; "
     "conf.listeners[0].tags[\"kuma.io/zone\"]: tag name must not be \"kuma.io/zone\""},
    {"{" GW_SEL ",'conf':{'listeners':[{'port':0,'hostname':'Bad_Host'}]}}",
     "conf.listeners[0].hostname: invalid hostname; conf.listeners[0].port: port must be in the "
     "range [1, 65535]; conf.listeners[0].protocol: cannot be empty"},
    {"{" GW_SEL ",'conf':{'listeners':[{'port':443,'protocol':'HTTPS'}]}}",
     "conf.listeners[0].tls: cannot be empty"},
    {"{" GW_SEL ",'conf':{'listeners':[{'port':443,'protocol':'HTTPS','hostname':'*.x.com',"
     "'tls':{'mode':'TERMINATE'}}]}}",
     "conf.listeners[0].tls.certificates: cannot be empty in TLS termination mode"},
    {"{" GW_SEL ",'conf':{'listeners':[{'port':443,'protocol':'HTTPS','tls':{'mode':"
     "'PASSTHROUGH'}}]}}",
     "conf.listeners[0].tls.mode: mode is not supported on HTTPS listeners"},
    {"{" GW_SEL ",'conf':{'listeners':[{'port':80,'protocol':'HTTPS','crossMesh':true}]}}",
     "conf.listeners[0].protocol: protocol is not supported with crossMesh"},
    {"{" GW_SEL ",'conf':{'listeners':[{'port':80,'protocol':'HTTP'},{'port':80,'protocol':"
     "'TCP'}]}}",
     "conf.listeners[0]: protocol conflicts with other listeners on this port; "
     "conf.listeners[1]: protocol conflicts with other listeners on this port; "
     "conf.listeners[0]: multiple listeners for hostname on this port; "
     "conf.listeners[1]: multiple listeners for hostname on this port"},
    {"{" GW_SEL ",'conf':{'listeners':[{'port':80,'protocol':'HTTP','hostname':'a.com'},"
     "{'port':80,'protocol':'HTTP','hostname':'a.com'}]}}",
     "conf.listeners[0]: multiple listeners for hostname on this port; "
     "conf.listeners[1]: multiple listeners for hostname on this port"},
    {"{'selectors':[{'match':{'kuma.io/service':'a'}},{'match':{'kuma.io/service':'b'}}],"
     "'conf':{'listeners':[{'port':80,'protocol':'HTTP','crossMesh':true}]}}",
     "selectors[1]: there can be at most one selector"},
    {"{" GW_SEL ",'conf':{'listeners':'all'}}",
     "conf.listeners: must be an array; conf.listeners: cannot be empty"},
};

TEST(validate_mesh_gateway_table)
{
    VTEST_TABLE("mesh gateway", &TYPE_MESH_GATEWAY, validate_mesh_gateway, gw);
}

static const struct vcase mt[] = {
    {"{'targetRef':{'kind':'MeshService','name':'web'},'from':[{'targetRef':{'kind':'Mesh'},"
     "'default':{'connectionTimeout':'10s','idleTimeout':'1h','http':{'requestTimeout':'0s'}}}],"
     "'to':[{'targetRef':{'kind':'MeshService','name':'backend'},'default':{'http':"
     "{'requestTimeout':'1s'}}}]}",
     ""},
    {"{'targetRef':{'kind':'Mesh','proxyTypes':['Sidecar']},'to':[{'targetRef':{'kind':'Mesh'},"
     "'default':{'idleTimeout':'1h'}}]}",
     ""},
    {"{'targetRef':{'kind':'Mesh'}}",
     "spec: at least one of 'from', 'to' or 'rules' has to be defined"},
    {"{'targetRef':{'kind':'MeshService','name':'web'},'from':[{'targetRef':{'kind':"
     "'MeshGatewayRoute'},'default':{'http':{'requestTimeout':'1s'}}}]}",
     "spec.from[0].targetRef.kind: value is not supported"},
    {"{'targetRef':{'kind':'MeshService','name':'web'},'to':[{'targetRef':{'kind':"
     "'MeshServiceSubset'},'default':{'http':{'requestTimeout':'1s'}}}]}",
     "spec.to[0].targetRef.kind: value is not supported"},
    {"{'targetRef':{'kind':'MeshService','name':'web'},'to':[{'targetRef':{'kind':'MeshService',"
     "'name':'b'}}]}",
     "spec.to[0].default: at least one timeout should be configured"},
    {"{'targetRef':{'kind':'MeshService','name':'web'},'to':[{'targetRef':{'kind':'MeshService',"
     "'name':'b'},'default':{'connectionTimeout':'-1s','http':{'requestTimeout':'-10s'}}}]}",
     "spec.to[0].default.connectionTimeout: must be greater than zero when defined; "
     "spec.to[0].default.http.requestTimeout: must not be negative when defined"},
    {"{'targetRef':{'kind':'MeshService','name':'web'},'to':[{'targetRef':{'kind':'MeshService',"
     "'name':'b'},'default':{'http':{}}}]}",
     "spec.to[0].default.http: at least one timeout in this section should be configured"},
    {"{'targetRef':{'kind':'MeshHTTPRoute','name':'r'},'to':[{'targetRef':{'kind':'MeshService',"
     "'name':'b'},'default':{'connectionTimeout':'1s','http':{'maxStreamDuration':'1h'}}}],"
     "'from':[{'targetRef':{'kind':'Mesh'},'default':{'idleTimeout':'1s'}}]}",
     "spec.from: must not be defined; spec.to[0].targetRef.kind: value is not supported; "
     "spec.to[0].default.connectionTimeout: can't be specified when top-level TargetRef is "
     "referencing MeshHTTPRoute; spec.to[0].default.http.maxStreamDuration: can't be specified "
     "when top-level TargetRef is referencing MeshHTTPRoute"},
    {"{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'MeshExternalService','name':'w',"
     "'labels':{'a':'b'}},'default':{'idleTimeout':'1h'}}]}",
     "spec.to[0].targetRef.labels: either labels or name must be specified"},
    {"{'targetRef':{'kind':'Mesh'},'rules':[{'default':{'idleTimeout':'1s'}}],'to':[{'targetRef':"
     "{'kind':'Mesh'},'default':{'idleTimeout':'1s'}}]}",
     "spec: fields 'to' and 'from' must be empty when 'rules' is defined"},
    {"{'targetRef':{'kind':'Mesh','name':'x','tags':{'a':'b'}},'to':[{'targetRef':{'kind':'Mesh'},"
     "'default':{'idleTimeout':'1s'}}]}",
     "spec.targetRef.name: using name with kind Mesh is not yet supported; "
     "spec.targetRef.tags: must not be set with kind Mesh"},
    {"{'targetRef':{},'to':[{'targetRef':{'kind':'Mesh'},'default':{'idleTimeout':'1s'}}]}",
     "spec.targetRef.kind: must be defined"},
    {"{'targetRef':{'kind':'MeshService'},'to':[{'targetRef':{'kind':'Mesh'},'default':"
     "{'idleTimeout':'1s'}}]}",
     "spec.targetRef.name: must be set with kind MeshService"},
    {"{'targetRef':{'kind':'MeshSubset','tags':{'k':'a/b'}},'to':[{'targetRef':{'kind':'Mesh'},"
     "'default':{'idleTimeout':'1s'}}]}",
     "spec.targetRef.tags[\"k\"]: tag value must consist of alphanumeric characters, dots, "
     "dashes and underscores"},
    {"{'targetRef':'Mesh','to':'all'}",
     "spec.targetRef: must be an object; spec: at least one of 'from', 'to' or 'rules' has to be "
     "defined; spec.to: must be an array"},
    {"{'to':[{'default':{'idleTimeout':'1s'}}]}", "spec.to[0].targetRef.kind: must be defined"},
};

TEST(validate_mesh_timeout_table)
{
    VTEST_TABLE("mesh timeout", &TYPE_MESH_TIMEOUT, validate_target_ref_policy, mt);
}

static const struct vcase mtp[] = {
    {"{'targetRef':{'kind':'Mesh'},'from':[{'targetRef':{'kind':'Mesh'},'default':{'action':"
     "'Allow'}}]}",
     ""},
    {"{'targetRef':{'kind':'Mesh'}}", "spec.from: needs at least one item"},
    {"{'targetRef':{'kind':'MeshGateway','name':'gw'},'from':[{'targetRef':{'kind':'Mesh'},"
     "'default':{'action':'Deny'}}]}",
     "spec.targetRef.kind: value is not supported"},
    {"{'targetRef':{'kind':'Mesh'},'from':[{'targetRef':{'kind':'MeshService','name':'a'}}]}",
     "spec.from[0].default: must be defined"},
    {"{'targetRef':{'kind':'Mesh'},'from':[{'targetRef':{'kind':'MeshHTTPRoute','name':'a'},"
     "'default':{'action':'Maybe'}}]}",
     "spec.from[0].targetRef.kind: value is not supported; spec.from[0].default.action: value "
     "is not supported"},
};

TEST(validate_mesh_traffic_permission_table)
{
    VTEST_TABLE("mesh traffic permission", &TYPE_MESH_TRAFFIC_PERMISSION,
                validate_target_ref_policy, mtp);
}

static const struct vcase mr[] = {
    {"{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'Mesh'},'default':{'tcp':"
     "{'maxConnectAttempt':5},'http':{'numRetries':5,'retryOn':['5xx','503']}}}]}",
     ""},
    {"{'targetRef':{'kind':'Mesh'}}", "spec.to: needs at least one item"},
    {"{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'Mesh'},'default':{}}]}",
     "spec.to[0].default.conf: at least one of the 'tcp', 'http', 'grpc' must be specified"},
    {"{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'Mesh'},'default':{'tcp':{},"
     "'http':{},'grpc':{'retryOn':['Nope']}}}]}",
     "spec.to[0].default.conf.tcp: must not be empty; spec.to[0].default.conf.http: must not be "
     "empty; spec.to[0].default.conf.grpc.retryOn[0]: unknown item 'Nope'"},
    {"{'targetRef':{'kind':'MeshGateway','name':'gw'},'to':[{'targetRef':{'kind':'MeshService',"
     "'name':'b'},'default':{'http':{'numRetries':1}}}]}",
     "spec.to[0].targetRef.kind: value is not supported"},
};

TEST(validate_mesh_retry_table)
{
    VTEST_TABLE("mesh retry", &TYPE_MESH_RETRY, validate_target_ref_policy, mr);
}

static const struct vcase mcb[] = {
    {"{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'Mesh'},'default':"
     "{'connectionLimits':{'maxConnections':1024,'maxPendingRequests':1024,'maxRequests':1024,"
     "'maxRetries':3}}}]}",
     ""},
    {"{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'Mesh'},'default':{}}]}",
     "spec.to[0].default: at least one of: 'connectionLimits' or 'outlierDetection' should be "
     "configured"},
    {"{'targetRef':{'kind':'Mesh'},'to':[{'targetRef':{'kind':'Mesh'},'default':"
     "{'connectionLimits':{'maxConnections':0},'outlierDetection':{'interval':'0s',"
     "'maxEjectionPercent':101}}}]}",
     "spec.to[0].default.connectionLimits.maxConnections: must be greater than 0; "
     "spec.to[0].default.outlierDetection.interval: must be greater than zero when defined; "
     "spec.to[0].default.outlierDetection.maxEjectionPercent: must be in inclusive range "
     "[0, 100]; spec.to[0].default.outlierDetection.detectors: must be defined"},
    {"{'targetRef':{'kind':'Mesh'},'from':[{'targetRef':{'kind':'Mesh'},'default':"
     "{'outlierDetection':{'detectors':{}}}}]}",
     "spec.from[0].default.outlierDetection.detectors: must have at least one defined: "
     "totalFailures, gatewayFailures, localOriginFailures, successRate, failurePercentage"},
    {"{'targetRef':{'kind':'Mesh'},'from':[{'targetRef':{'kind':'Mesh'},'default':"
     "{'outlierDetection':{'detectors':{'successRate':{'standardDeviationFactor':'abc'}}}}}]}",
     "spec.from[0].default.outlierDetection.detectors.successRate.standardDeviationFactor: "
     "invalid number"},
};

TEST(validate_mesh_circuit_breaker_table)
{
    VTEST_TABLE("mesh circuit breaker", &TYPE_MESH_CIRCUIT_BREAKER, validate_target_ref_policy,
                mcb);
}

/* Every validator survives specs of the wrong shape. */
TEST(validate_policies_never_crash)
{
    static const char *const specs[] = {
        "[]",
        "'x'",
        "1",
        "null",
        "{'sources':[[[]]],'destinations':{},'conf':[]}",
        "{'selectors':'*','conf':1,'networking':[],'tags':'a','targetRef':[],'from':[1],"
        "'to':[null],'rules':{}}",
    };
    size_t n;
    const struct res_type *const *all = types_all(&n);
    for (size_t t = 0; t < n; t++) {
        if (!all[t]->validate)
            continue;
        for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
            struct resource *r = vtest_resource(all[t], "default", "x", specs[i]);
            struct verr ve = {0};
            all[t]->validate(r, &ve);
            validate_meta(r, &ve);
            verr_free(&ve);
            resource_free(r);
        }
        struct verr ve = {0};
        all[t]->validate(NULL, &ve);
        verr_free(&ve);
    }
}
