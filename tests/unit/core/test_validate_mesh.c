/* Mesh: static validator, manager create/update rules and defaulting. */
#include "../test.h"
#include "vtest.h"

static const struct vcase mesh_valid[] = {
    {"{}", ""},
    {"{'mtls':{'enabledBackend':'ca-1','backends':[{'name':'ca-1','type':'builtin',"
     "'dpCert':{'rotation':{'expiration':'1d'}},'conf':{'caCert':{'RSAbits':2048,"
     "'expiration':'10y'}}}]}}",
     ""},
    {"{'logging':{'defaultBackend':'file-1','backends':[{'name':'file-1','type':'file',"
     "'conf':{'path':'/tmp/access.log'}},{'name':'tcp-1','type':'tcp','conf':{'address':"
     "'127.0.0.1:5000'}}]}}",
     ""},
    {"{'tracing':{'defaultBackend':'zipkin-1','backends':[{'name':'zipkin-1','type':'zipkin',"
     "'sampling':100.0,'conf':{'url':'http://zipkin:9411/api/v2/spans'}},{'name':'dd',"
     "'type':'datadog','conf':{'address':'127.0.0.1','port':8126}}]}}",
     ""},
    {"{'metrics':{'enabledBackend':'prometheus-1','backends':[{'name':'prometheus-1',"
     "'type':'prometheus','conf':{'port':5670,'path':'/metrics','skipMTLS':false,"
     "'tags':{'kuma.io/service':'dataplane-metrics'}}}]}}",
     ""},
    {"{'networking':{'outbound':{'passthrough':false}},'routing':{'localityAwareLoadBalancing':"
     "true}}",
     ""},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'kuma.io/zone':'east'}}],"
     "'restrictions':[{'tags':{'kuma.io/zone':'*'}}]}}}",
     ""},
    {"{'routing':{'zoneEgress':true},'mtls':{'enabledBackend':'ca-1','backends':[{'name':'ca-1',"
     "'type':'builtin'}]}}",
     ""},
    {"{'skipCreatingInitialPolicies':['*'],'meshServices':{'mode':'Exclusive'}}", ""},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'builtin','dpCert':{'rotation':"
     "{'expiration':'0'}}}]}}",
     ""},
    {"{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':true,"
     "'tls':{'mode':'disabled'}}}]}}",
     ""},
};

static const struct vcase mesh_invalid[] = {
    {"{'mtls':{'backends':[{'name':'a','type':'builtin'},{'name':'b','type':'builtin'}]}}",
     "mtls.backends: cannot have more than 1 backends"},
    {"{'mtls':{'backends':[{'name':'a','type':'builtin'},{'name':'a','type':'builtin'}]}}",
     "mtls.backends: cannot have more than 1 backends; "
     "mtls.backends[1].name: \"a\" name is already used for another backend"},
    {"{'mtls':{'enabledBackend':'ca-2','backends':[{'name':'ca-1','type':'builtin'}]}}",
     "mtls.enabledBackend: has to be set to one of the backends in the mesh"},
    {"{'mtls':{'enabledBackend':'ca-1'}}",
     "mtls.enabledBackend: has to be set to one of the backends in the mesh"},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'builtin','dpCert':{'rotation':"
     "{'expiration':'1x'}}}]}}",
     "mtls.dpcert.rotation.expiration: has to be a valid format"},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'builtin','dpCert':{}}]}}",
     "mtls.dpcert.rotation.expiration: has to be a valid format"},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'builtin','dpCert':{'rotation':"
     "{'expiration':'1h30m'}}}]}}",
     "mtls.dpcert.rotation.expiration: has to be a valid format"},
    {"{'logging':{'backends':[{'type':'file','conf':{'path':'/x'}}]}}",
     "logging.backends[0].name: cannot be empty"},
    {"{'logging':{'backends':[{'name':'a','type':'syslog'}]}}",
     "logging.backends[0].type: unknown backend type. Available backends: \"tcp\", \"file\""},
    {"{'logging':{'backends':[{'name':'a','type':'tcp','conf':{}}]}}",
     "logging.backends[0].config.address: cannot be empty"},
    {"{'logging':{'backends':[{'name':'a','type':'tcp','conf':{'address':'127.0.0.1'}}]}}",
     "logging.backends[0].config.address: has to be in format of HOST:PORT"},
    {"{'logging':{'backends':[{'name':'a','type':'tcp','conf':{'address':':5000'}}]}}",
     "logging.backends[0].config.address: has to be in format of HOST:PORT"},
    {"{'logging':{'backends':[{'name':'a','type':'file'}]}}",
     "logging.backends[0].config.path: cannot be empty"},
    {"{'logging':{'defaultBackend':'b','backends':[{'name':'a','type':'file','conf':"
     "{'path':'/x'}},{'name':'a','type':'file','conf':{'path':'/y'}}]}}",
     "logging.backends[1].name: \"a\" name is already used for another backend; "
     "logging.defaultBackend: has to be set to one of the logging backend in mesh"},
    {"{'tracing':{'backends':[{'name':'z','type':'zipkin','sampling':100.1,'conf':{'url':"
     "'http://zipkin:9411/api'}}]}}",
     "tracing.backends[0].sampling: has to be in [0.0 - 100.0] range"},
    {"{'tracing':{'backends':[{'name':'z','type':'jaeger'}]}}",
     "tracing.backends[0].type: unknown backend type. Available backends: \"zipkin\", "
     "\"datadog\""},
    {"{'tracing':{'backends':[{'name':'z','type':'zipkin','conf':{}}]}}",
     "tracing.backends[0].config.url: cannot be empty"},
    {"{'tracing':{'backends':[{'name':'z','type':'zipkin','conf':{'url':'not a url'}}]}}",
     "tracing.backends[0].config.url: invalid URL"},
    {"{'tracing':{'backends':[{'name':'z','type':'zipkin','conf':{'url':'http://zipkin/api'}}]}}",
     "tracing.backends[0].config.url: port has to be explicitly specified"},
    {"{'tracing':{'backends':[{'name':'z','type':'zipkin','conf':{'url':'http://zipkin:9411',"
     "'apiVersion':'v3'}}]}}",
     "tracing.backends[0].config.apiVersion: has invalid value. Allowed values: httpJsonV1, "
     "httpJson, httpProto"},
    {"{'tracing':{'backends':[{'name':'d','type':'datadog','conf':{}}]}}",
     "tracing.backends[0].config.address: cannot be empty; "
     "tracing.backends[0].config.port: port must be in the range [1, 65535]"},
    {"{'tracing':{'backends':[{'name':'d','type':'datadog','conf':{'address':'x','port':"
     "70000}}]}}",
     "tracing.backends[0].config.port: port must be in the range [1, 65535]"},
    {"{'tracing':{'defaultBackend':'nope','backends':[]}}",
     "tracing.defaultBackend: has to be set to one of the tracing backend in mesh"},
    {"{'metrics':{'backends':[{'name':'p','type':'statsd'}]}}",
     "metrics.backends[0].type: unknown backend type. Available backends: \"prometheus\""},
    {"{'metrics':{'enabledBackend':'q','backends':[{'name':'p','type':'prometheus'},"
     "{'name':'p','type':'prometheus'}]}}",
     "metrics.backends[1].name: \"p\" name is already used for another backend; "
     "metrics.enabledBackend: has to be set to one of the backends in the mesh"},
    {"{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':true,"
     "'tls':{'mode':'activeMTLSBackend'}}}]}}",
     "metrics.backends[0].conf: skipMTLS and tls configuration cannot be defined together"},
    {"{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':false,"
     "'tls':{'mode':'providedTLS'}}}]}}",
     "metrics.backends[0].conf: skipMTLS and tls configuration cannot be defined together"},
    {"{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'aggregate':["
     "{'name':'a','port':1},{'name':'a','port':2}]}}]}}",
     "metrics.backends[0].conf.aggregate[1].name: duplicate entry: a, values have to be "
     "unique"},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{}}]}}}",
     "constraints.dataplaneProxy.requirements[0].tags: must have at least one tag"},
    {"{'constraints':{'dataplaneProxy':{'restrictions':[{'tags':{'kuma.io/zone':''}}]}}}",
     "constraints.dataplaneProxy.restrictions[0].tags[\"kuma.io/zone\"]: tag value must be "
     "non-empty"},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'a b':'x'}}]}}}",
     "constraints.dataplaneProxy.requirements[0].tags[\"a b\"]: tag name must consist of "
     "alphanumeric characters, dots, dashes, slashes and underscores"},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'k':'a b'}}]}}}",
     "constraints.dataplaneProxy.requirements[0].tags[\"k\"]: tag value must consist of "
     "alphanumeric characters, dots, dashes, slashes and underscores or be \"*\""},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'':'x'}}]}}}",
     "constraints.dataplaneProxy.requirements[0].tags: tag name must be non-empty"},
    {"{'routing':{'zoneEgress':true}}", "mtls: has to be set when zoneEgress enabled"},
    {"{'mtls':{'backends':[{'name':'x','type':'builtin'}]},'routing':{'zoneEgress':true}}",
     "mtls: has to be set when zoneEgress enabled"},
};

/* Hostile JSON: wrong types get a violation, never a crash. */
static const struct vcase mesh_hostile[] = {
    {"{'mtls':'yes'}", "mtls: must be an object"},
    {"{'mtls':{'backends':{'name':'a'}}}", "mtls.backends: must be an array"},
    {"{'mtls':{'backends':[1,2]}}",
     "mtls.backends: cannot have more than 1 backends; mtls.backends[0]: must be an object; "
     "mtls.backends[1]: must be an object"},
    {"{'mtls':{'backends':[{'name':7,'type':'builtin'}]}}",
     "mtls.backends[0].name: must be a string"},
    {"{'mtls':{'enabledBackend':['a']}}", "mtls.enabledBackend: must be a string"},
    {"{'logging':{'backends':[{'name':'a','type':'file','conf':'path'}]}}",
     "logging.backends[0].config: could not parse config: must be an object; "
     "logging.backends[0].config.path: cannot be empty"},
    {"{'tracing':{'backends':[{'name':'z','type':'zipkin','sampling':'lots','conf':"
     "{'url':'http://z:1'}}]}}",
     "tracing.backends[0].sampling: must be a number"},
    {"{'tracing':{'backends':[{'name':'d','type':'datadog','conf':{'address':'x','port':1e300}}]}}",
     "tracing.backends[0].config.port: must be a non-negative integer; "
     "tracing.backends[0].config.port: port must be in the range [1, 65535]"},
    {"{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':'no'}}]}}",
     "metrics.backends[0].conf.skipMTLS: must be a boolean"},
    {"{'metrics':[]}", "metrics: must be an object"},
    {"{'routing':{'zoneEgress':'true'}}", "routing.zoneEgress: must be a boolean"},
    {"{'constraints':{'dataplaneProxy':{'requirements':[{'tags':{'k':5}}]}}}",
     "constraints.dataplaneProxy.requirements[0].tags[\"k\"]: must be a string"},
    {"{'mtls':null,'logging':null}", ""},
    {"{'skipCreatingInitialPolicies':'*'}", "skipCreatingInitialPolicies: must be an array"},
};

TEST(validate_mesh_valid)
{
    VTEST_TABLE("mesh valid", &TYPE_MESH, validate_mesh, mesh_valid);
}

TEST(validate_mesh_invalid)
{
    VTEST_TABLE("mesh invalid", &TYPE_MESH, validate_mesh, mesh_invalid);
}

TEST(validate_mesh_hostile)
{
    VTEST_TABLE("mesh hostile", &TYPE_MESH, validate_mesh, mesh_hostile);
}

TEST(validate_mesh_non_object_spec)
{
    struct resource *r = resource_new(&TYPE_MESH, "", "m");
    json_decref(r->spec);
    r->spec = json_array();
    struct verr ve = {0};
    validate_mesh(r, &ve);
    validate_mesh_create(r, &ve);
    resource_default(r);
    ASSERT_INT_EQ(ve.n, 0);
    verr_free(&ve);
    validate_mesh(NULL, &ve);
    validate_mesh_create(NULL, &ve);
    validate_mesh_update(NULL, NULL, &ve);
    resource_default(NULL);
    ASSERT_INT_EQ(ve.n, 0);
    resource_free(r);
}

static const struct vcase mesh_create[] = {
    {"{}", ""},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'builtin'}]}}", ""},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'vault'}]}}",
     "mtls.backends[0].type: could not find installed plugin for this type"},
    {"{'mtls':{'backends':[{'name':'ca-1'}]}}",
     "mtls.backends[0].type: could not find installed plugin for this type"},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'provided'}]}}",
     "mtls.backends[0].conf.cert: has to be defined; mtls.backends[0].conf.key: has to be "
     "defined"},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'provided','conf':{'cert':{'secret':'c'},"
     "'key':{'secret':''}}}]}}",
     "mtls.backends[0].conf.key.secret: cannot be empty"},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'provided','conf':{'cert':{},"
     "'key':{'inlineString':'x'}}}]}}",
     "mtls.backends[0].conf.cert: data source has to be chosen. Available sources: secret, "
     "file, inline"},
    {"{'mtls':{'skipValidation':true,'backends':[{'name':'ca-1','type':'provided'}]}}", ""},
    {"{'mtls':{'backends':[{'name':'CA','type':'builtin'}]}}",
     "mtls.backends[0].conf.mtls.backends.name: \"CA\" name must be valid dns name"},
    {"{'mtls':{'backends':[{'name':'ca 1','type':'builtin'}]}}",
     "mtls.backends[0].conf.mtls.backends.name: \"ca 1\" name must be valid dns name"},
    {"{'mtls':{'backends':[{'name':'ca-1','type':'builtin','conf':'x'}]}}",
     "mtls.backends[0].conf: could not convert backend config: must be an object"},
};

TEST(validate_mesh_create_rules)
{
    VTEST_TABLE("mesh create", &TYPE_MESH, validate_mesh_create, mesh_create);
}

TEST(validate_mesh_create_name_length)
{
    char name[80];
    memset(name, 'x', 64);
    name[64] = '\0';
    struct resource *r = vtest_resource(&TYPE_MESH, "", name, "{}");
    struct verr ve = {0};
    validate_mesh_create(r, &ve);
    char *s = verr_join(&ve);
    ASSERT_STR_EQ(s, "name: cannot be longer than 63 characters");
    free(s);
    verr_free(&ve);
    resource_free(r);
    name[63] = '\0';
    r = vtest_resource(&TYPE_MESH, "", name, "{}");
    validate_mesh_create(r, &ve);
    ASSERT_INT_EQ(ve.n, 0);
    resource_free(r);
}

TEST(validate_mesh_create_backend_name_too_long)
{
    char spec[600], name[300];
    memset(name, 'a', 250);
    name[250] = '\0';
    snprintf(spec, sizeof(spec), "{'mtls':{'backends':[{'name':'%s','type':'builtin'}]}}", name);
    struct resource *r = vtest_resource(&TYPE_MESH, "", "default", spec);
    struct verr ve = {0};
    validate_mesh_create(r, &ve);
    char *s = verr_join(&ve);
    ASSERT_STR_CONTAINS(s, "mtls.backends[0].conf.mtls.backends.name: Backend name is too long. "
                           "Max length: 255");
    free(s);
    verr_free(&ve);
    resource_free(r);
}

TEST(validate_mesh_update_ca_change)
{
    struct resource *old = vtest_resource(
        &TYPE_MESH, "", "m",
        "{'mtls':{'enabledBackend':'ca-1','backends':[{'name':'ca-1','type':'builtin'}]}}");
    struct resource *nw = vtest_resource(
        &TYPE_MESH, "", "m",
        "{'mtls':{'enabledBackend':'ca-2','backends':[{'name':'ca-2','type':'builtin'}]}}");
    struct resource *off = vtest_resource(
        &TYPE_MESH, "", "m", "{'mtls':{'backends':[{'name':'ca-2','type':'builtin'}]}}");
    struct verr ve = {0};
    validate_mesh_update(old, nw, &ve);
    char *s = verr_join(&ve);
    ASSERT_STR_EQ(s, "mtls.enabledBackend: Changing CA when mTLS is enabled is forbidden. "
                     "Disable mTLS first and then change the CA");
    free(s);
    verr_free(&ve);
    validate_mesh_update(old, off, &ve); /* disabling is fine */
    ASSERT_INT_EQ(ve.n, 0);
    validate_mesh_update(off, nw, &ve); /* enabling is fine */
    ASSERT_INT_EQ(ve.n, 0);
    validate_mesh_update(old, old, &ve);
    ASSERT_INT_EQ(ve.n, 0);
    resource_free(old);
    resource_free(nw);
    resource_free(off);
}

TEST(validate_mesh_update_revalidates_backends)
{
    struct resource *old = vtest_resource(&TYPE_MESH, "", "m", "{}");
    struct resource *nw =
        vtest_resource(&TYPE_MESH, "", "m", "{'mtls':{'backends':[{'name':'x','type':'acme'}]}}");
    struct verr ve = {0};
    validate_mesh_update(old, nw, &ve);
    char *s = verr_join(&ve);
    ASSERT_STR_EQ(s, "mtls.backends[0].type: could not find installed plugin for this type");
    free(s);
    verr_free(&ve);
    resource_free(old);
    resource_free(nw);
}

/* Defaulting: the golden from Kuma's mesh manager test. */
static void check_default(const char *in, const char *want)
{
    struct resource *r = vtest_resource(&TYPE_MESH, "", "m", in);
    resource_default(r);
    json_t *w = vtest_json(want);
    char *got = json_dumps(r->spec, JSON_SORT_KEYS | JSON_COMPACT);
    char *exp = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
    ASSERT_STR_EQ(got, exp);
    free(got);
    free(exp);
    json_decref(w);
    resource_free(r);
}

TEST(validate_defaults_prometheus)
{
    check_default("{'metrics':{'backends':[{'name':'prometheus-1','type':'prometheus'}]}}",
                  "{'metrics':{'backends':[{'name':'prometheus-1','type':'prometheus','conf':"
                  "{'port':5670,'path':'/metrics','tags':{'kuma.io/service':"
                  "'dataplane-metrics'},'tls':{}}}]}}");
    check_default("{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':"
                  "true,'port':1234,'path':'/m','tags':{'a':'b'}}}]}}",
                  "{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':"
                  "true,'port':1234,'path':'/m','tags':{'a':'b'},'tls':{'mode':'disabled'}}}]}}");
    check_default("{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':"
                  "false,'tls':{'mode':'providedTLS'}}}]}}",
                  "{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'tls':{'mode':"
                  "'providedTLS'},'port':5670,'path':'/metrics','tags':{'kuma.io/service':"
                  "'dataplane-metrics'}}}]}}");
    check_default("{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':"
                  "false}}]}}",
                  "{'metrics':{'backends':[{'name':'p','type':'prometheus','conf':{'skipMTLS':"
                  "false,'tls':{},'port':5670,'path':'/metrics','tags':{'kuma.io/service':"
                  "'dataplane-metrics'}}}]}}");
    /* Other types and hostile values are left alone. */
    check_default("{'metrics':{'backends':[{'name':'s','type':'statsd'},7,{'type':'prometheus',"
                  "'conf':'x'}]}}",
                  "{'metrics':{'backends':[{'name':'s','type':'statsd'},7,{'type':'prometheus',"
                  "'conf':'x'}]}}");
    check_default("{'metrics':'x'}", "{'metrics':'x'}");
}

TEST(validate_defaults_only_mesh)
{
    struct resource *r = vtest_resource(&TYPE_DATAPLANE, "default", "dp",
                                        "{'metrics':{'backends':[{'type':'prometheus'}]}}");
    resource_default(r);
    ASSERT(!json_object_get(
        json_array_get(json_object_get(json_object_get(r->spec, "metrics"), "backends"), 0),
        "conf"));
    resource_free(r);
}
