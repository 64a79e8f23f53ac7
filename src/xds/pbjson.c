/* pbjson — see pbjson.h. */
#include "xds/pbjson.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "xds/pb.h"

static const ProtobufCMessageDescriptor *const known[] = {
    &envoy__config__listener__v3__listener__descriptor,
    &envoy__config__cluster__v3__cluster__descriptor,
    &envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
    &envoy__config__route__v3__route_configuration__descriptor,
    &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor,
    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
    &envoy__extensions__filters__http__router__v3__router__descriptor,
    &envoy__extensions__filters__network__rbac__v3__rbac__descriptor,
    &envoy__extensions__filters__http__rbac__v3__rbac__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__secret__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor,
    &envoy__extensions__upstreams__http__v3__http_protocol_options__descriptor,
    &envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__descriptor,
    &envoy__service__discovery__v3__discovery_request__descriptor,
    &envoy__service__discovery__v3__discovery_response__descriptor,
};

static const ProtobufCMessageDescriptor *lookup(const char *type_url)
{
    const char *slash = strrchr(type_url, '/');
    const char *name = slash ? slash + 1 : type_url;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(known[i]->name, name) == 0)
            return known[i];
    return NULL;
}

static char *camel(const char *snake)
{
    char *out = xstrdup(snake), *w = out;
    for (const char *r = snake; *r; r++) {
        if (*r == '_' && r[1]) {
            r++;
            *w++ = (char)(*r >= 'a' && *r <= 'z' ? *r - 'a' + 'A' : *r);
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return out;
}

static json_t *message_json(const ProtobufCMessage *m);

static json_t *any_json(const Google__Protobuf__Any *a)
{
    json_t *inner = xds_pb_bytes_to_json(a->type_url, a->value.data, a->value.len);
    if (!inner) {
        inner = json_object();
        json_object_set_new(inner, "value", json_integer((json_int_t)a->value.len));
    }
    json_t *o = json_object();
    json_object_set_new(o, "@type", json_string(a->type_url));
    json_object_update(o, inner);
    json_decref(inner);
    return o;
}

static json_t *value_json(const Google__Protobuf__Value *v);

static json_t *struct_json(const Google__Protobuf__Struct *s)
{
    json_t *o = json_object();
    for (size_t i = 0; i < s->n_fields; i++)
        json_object_set_new(o, s->fields[i]->key, value_json(s->fields[i]->value));
    return o;
}

static json_t *value_json(const Google__Protobuf__Value *v)
{
    if (!v)
        return json_null();
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        return json_real(v->number_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        return json_string(v->string_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        return json_boolean(v->bool_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        return struct_json(v->struct_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->list_value->n_values; i++)
            json_array_append_new(a, value_json(v->list_value->values[i]));
        return a;
    }
    default:
        return json_null();
    }
}

static json_t *sub_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &google__protobuf__any__descriptor)
        return any_json((const Google__Protobuf__Any *)m);
    if (d == &google__protobuf__duration__descriptor) {
        const Google__Protobuf__Duration *du = (const Google__Protobuf__Duration *)m;
        char buf[64];
        /* proto3 JSON: 0, 3, 6 or 9 fractional digits. */
        if (du->nanos % 1000000 == 0 && du->nanos)
            snprintf(buf, sizeof(buf), "%" PRId64 ".%03ds", du->seconds, du->nanos / 1000000);
        else if (du->nanos % 1000 == 0 && du->nanos)
            snprintf(buf, sizeof(buf), "%" PRId64 ".%06ds", du->seconds, du->nanos / 1000);
        else if (du->nanos)
            snprintf(buf, sizeof(buf), "%" PRId64 ".%09ds", du->seconds, du->nanos);
        else
            snprintf(buf, sizeof(buf), "%" PRId64 "s", du->seconds);
        return json_string(buf);
    }
    if (d == &google__protobuf__bool_value__descriptor)
        return json_boolean(((const Google__Protobuf__BoolValue *)m)->value);
    if (d == &google__protobuf__uint32_value__descriptor)
        return json_integer(((const Google__Protobuf__UInt32Value *)m)->value);
    if (d == &google__protobuf__struct__descriptor)
        return struct_json((const Google__Protobuf__Struct *)m);
    return message_json(m);
}

static json_t *scalar_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer((json_int_t) * (const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        return ev ? json_string(ev->name) : json_integer(*(const int *)p);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return json_integer((json_int_t)((const ProtobufCBinaryData *)p)->len);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? sub_json(sub) : json_null();
    }
    }
    return json_null();
}

static int is_map_entry(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
        return 0;
    const ProtobufCMessageDescriptor *d = f->descriptor;
    return d->n_fields == 2 && str_has_suffix(d->name, "Entry") &&
           strcmp(d->fields[0].name, "key") == 0;
}

static int scalar_is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p == 0;
    default:
        return *(const uint32_t *)p == 0;
    }
}

static json_t *message_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        const void *p = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (!n)
                continue;
            if (is_map_entry(f)) {
                v = json_object();
                ProtobufCMessage *const *items = *(ProtobufCMessage *const **)p;
                for (size_t k = 0; k < n; k++) {
                    const ProtobufCMessageDescriptor *ed = items[k]->descriptor;
                    const char *eb = (const char *)items[k];
                    const char *key = *(char *const *)(eb + ed->fields[0].offset);
                    json_object_set_new(v, key ? key : "",
                                        scalar_json(&ed->fields[1], eb + ed->fields[1].offset));
                }
            } else {
                v = json_array();
                size_t sz =
                    f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING
                        ? sizeof(void *)
                    : f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
                    : f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
                            f->type == PROTOBUF_C_TYPE_SINT64 ||
                            f->type == PROTOBUF_C_TYPE_FIXED64 ||
                            f->type == PROTOBUF_C_TYPE_SFIXED64 || f->type == PROTOBUF_C_TYPE_DOUBLE
                        ? 8
                        : 4;
                const char *arr = *(const char *const *)p;
                for (size_t k = 0; k < n; k++)
                    json_array_append_new(v, scalar_json(f, arr + k * sz));
            }
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            if (which != f->id)
                continue;
            v = scalar_json(f, p);
        } else {
            if (scalar_is_default(f, p))
                continue;
            v = scalar_json(f, p);
        }
        char *name = camel(f->name);
        json_object_set_new(o, name, v);
        free(name);
    }
    return o;
}

json_t *xds_pb_to_json(const ProtobufCMessage *m)
{
    return sub_json(m);
}

json_t *xds_pb_bytes_to_json(const char *type_url, const uint8_t *data, size_t len)
{
    const ProtobufCMessageDescriptor *d = lookup(type_url);
    if (!d)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
    if (!m)
        return NULL;
    json_t *j = message_json(m);
    protobuf_c_message_free_unpacked(m, NULL);
    return j;
}

json_t *xds_proxy_config_to_json(const struct xds_proxy_config *c)
{
    json_t *o = json_object();
    for (int t = 0; t < XDS_TYPE_N; t++) {
        const struct xds_resource_set *set = &c->sets[t];
        if (!set->n)
            continue;
        json_t *a = json_array();
        for (size_t i = 0; i < set->n; i++) {
            json_t *r =
                xds_pb_bytes_to_json(xds_type_url((enum xds_type)t), set->v[i].data, set->v[i].len);
            json_array_append_new(a, r ? r : json_null());
        }
        json_object_set_new(o, xds_type_short((enum xds_type)t), a);
    }
    return o;
}
