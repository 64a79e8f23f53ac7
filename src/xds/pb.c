/* pb — see pb.h. */
#include "xds/pb.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void *pb_alloc(struct pb_arena *a, size_t size)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    void *p = xcalloc(1, size ? size : 1);
    a->v[a->n++] = p;
    return p;
}

char *pb_strdup(struct pb_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *p = pb_alloc(a, n + 1);
    memcpy(p, s, n);
    return p;
}

void pb_arena_free(struct pb_arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

Envoy__Config__Core__V3__SocketAddress *pb_socket_address(struct pb_arena *a, const char *ip,
                                                          uint32_t port)
{
    Envoy__Config__Core__V3__SocketAddress *sa = PB_NEW(
        a, Envoy__Config__Core__V3__SocketAddress, ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT);
    sa->address = pb_strdup(a, ip);
    sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa->port_value = port;
    return sa;
}

Envoy__Config__Core__V3__Address *pb_address(struct pb_arena *a, const char *ip, uint32_t port)
{
    Envoy__Config__Core__V3__Address *ad =
        PB_NEW(a, Envoy__Config__Core__V3__Address, ENVOY__CONFIG__CORE__V3__ADDRESS__INIT);
    ad->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    ad->socket_address = pb_socket_address(a, ip, port);
    return ad;
}

Google__Protobuf__BoolValue *pb_bool(struct pb_arena *a, int v)
{
    Google__Protobuf__BoolValue *b =
        PB_NEW(a, Google__Protobuf__BoolValue, GOOGLE__PROTOBUF__BOOL_VALUE__INIT);
    b->value = v ? 1 : 0;
    return b;
}

Google__Protobuf__UInt32Value *pb_u32(struct pb_arena *a, uint32_t v)
{
    Google__Protobuf__UInt32Value *u =
        PB_NEW(a, Google__Protobuf__UInt32Value, GOOGLE__PROTOBUF__UINT32_VALUE__INIT);
    u->value = v;
    return u;
}

Google__Protobuf__Duration *pb_duration(struct pb_arena *a, int64_t seconds, int32_t nanos)
{
    Google__Protobuf__Duration *d =
        PB_NEW(a, Google__Protobuf__Duration, GOOGLE__PROTOBUF__DURATION__INIT);
    d->seconds = seconds;
    d->nanos = nanos;
    return d;
}

Envoy__Config__Core__V3__ConfigSource *pb_ads_source(struct pb_arena *a)
{
    Envoy__Config__Core__V3__ConfigSource *cs = PB_NEW(
        a, Envoy__Config__Core__V3__ConfigSource, ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT);
    cs->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs->ads = PB_NEW(a, Envoy__Config__Core__V3__AggregatedConfigSource,
                     ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT);
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    return cs;
}

Envoy__Type__Matcher__V3__StringMatcher *pb_exact(struct pb_arena *a, const char *s)
{
    Envoy__Type__Matcher__V3__StringMatcher *m = PB_NEW(
        a, Envoy__Type__Matcher__V3__StringMatcher, ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT);
    m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
    m->exact = pb_strdup(a, s);
    return m;
}

Envoy__Type__Matcher__V3__StringMatcher *pb_prefix(struct pb_arena *a, const char *s)
{
    Envoy__Type__Matcher__V3__StringMatcher *m = PB_NEW(
        a, Envoy__Type__Matcher__V3__StringMatcher, ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT);
    m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
    m->prefix = pb_strdup(a, s);
    return m;
}

Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *pb_sds(struct pb_arena *a,
                                                                      const char *name)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *c =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT);
    c->name = pb_strdup(a, name);
    c->sds_config = pb_ads_source(a);
    return c;
}

Google__Protobuf__Any *pb_any(struct pb_arena *a, const char *type_url, const ProtobufCMessage *msg)
{
    Google__Protobuf__Any *any = PB_NEW(a, Google__Protobuf__Any, GOOGLE__PROTOBUF__ANY__INIT);
    any->type_url = pb_strdup(a, type_url);
    size_t n = protobuf_c_message_get_packed_size(msg);
    any->value.data = pb_alloc(a, n);
    any->value.len = protobuf_c_message_pack(msg, any->value.data);
    return any;
}

Envoy__Config__Core__V3__Metadata *pb_metadata_tags(struct pb_arena *a, const char *filter,
                                                    const struct xds_tag *tags, size_t n)
{
    Google__Protobuf__Struct *st =
        PB_NEW(a, Google__Protobuf__Struct, GOOGLE__PROTOBUF__STRUCT__INIT);
    st->n_fields = n;
    st->fields = pb_alloc(a, n * sizeof(*st->fields));
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__Struct__FieldsEntry *fe = PB_NEW(
            a, Google__Protobuf__Struct__FieldsEntry, GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT);
        fe->key = pb_strdup(a, tags[i].key);
        fe->value = PB_NEW(a, Google__Protobuf__Value, GOOGLE__PROTOBUF__VALUE__INIT);
        fe->value->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        fe->value->string_value = pb_strdup(a, tags[i].value);
        st->fields[i] = fe;
    }
    Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *e =
        PB_NEW(a, Envoy__Config__Core__V3__Metadata__FilterMetadataEntry,
               ENVOY__CONFIG__CORE__V3__METADATA__FILTER_METADATA_ENTRY__INIT);
    e->key = pb_strdup(a, filter);
    e->value = st;
    Envoy__Config__Core__V3__Metadata *md =
        PB_NEW(a, Envoy__Config__Core__V3__Metadata, ENVOY__CONFIG__CORE__V3__METADATA__INIT);
    md->n_filter_metadata = 1;
    md->filter_metadata = pb_alloc(a, sizeof(*md->filter_metadata));
    md->filter_metadata[0] = e;
    return md;
}

uint8_t *pb_pack(const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xmalloc(n ? n : 1);
    *len = protobuf_c_message_pack(msg, buf);
    return buf;
}
