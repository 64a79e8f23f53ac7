/* model — see model.h. */
#include "xds/model.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca/workload.h"
#include "core/codec.h"

uint64_t xds_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t xds_hash_fast(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    h ^= (uint64_t)n * 0xff51afd7ed558ccdULL;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * k;
        h ^= h >> 31;
        b += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, b, n);
    h = (h ^ w) * k;
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 32);
}

uint64_t xds_hash_str(uint64_t h, const char *s)
{
    /* Include the terminator so ("ab","c") and ("a","bc") differ. */
    return xds_hash(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

uint64_t xds_hash_u64(uint64_t h, uint64_t v)
{
    return xds_hash(h, &v, sizeof(v));
}

enum xds_protocol xds_protocol_parse(const char *s)
{
    if (!s)
        return XDS_PROTO_TCP;
    if (strcmp(s, "http") == 0)
        return XDS_PROTO_HTTP;
    if (strcmp(s, "http2") == 0)
        return XDS_PROTO_HTTP2;
    if (strcmp(s, "grpc") == 0)
        return XDS_PROTO_GRPC;
    if (strcmp(s, "kafka") == 0)
        return XDS_PROTO_KAFKA;
    return XDS_PROTO_TCP;
}

enum xds_protocol xds_protocol_common(enum xds_protocol a, enum xds_protocol b)
{
    if (a == b)
        return a;
    if ((a == XDS_PROTO_GRPC && b == XDS_PROTO_HTTP2) ||
        (a == XDS_PROTO_HTTP2 && b == XDS_PROTO_GRPC))
        return XDS_PROTO_HTTP2;
    return XDS_PROTO_TCP;
}

int xds_parse_proxy_id(const char *id, char **mesh, char **name, struct err *e)
{
    if (!id || !*id)
        return err_set(e, "Envoy ID must not be nil");
    const char *dot = strchr(id, '.');
    if (!dot)
        return err_set(e, "the name should be provided after the dot");
    if (!dot[1])
        return err_set(e, "name must not be empty");
    *mesh = xstrndup(id, (size_t)(dot - id));
    *name = xstrdup(dot + 1);
    return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : NULL;
}

static uint32_t jport(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= 65535)
        return (uint32_t)json_integer_value(v);
    return 0;
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct xds_tag *)a)->key, ((const struct xds_tag *)b)->key);
}

static void read_tags(const json_t *tags, struct xds_tag **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_object(tags) || json_object_size(tags) == 0)
        return;
    *out = xcalloc(json_object_size(tags), sizeof(**out));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!json_is_string(v))
            continue;
        (*out)[*n].key = xstrdup(k);
        (*out)[(*n)++].value = xstrdup(json_string_value(v));
    }
    qsort(*out, *n, sizeof(**out), cmp_tag);
}

int xds_dataplane_from_resource(const struct resource *r, struct xds_dataplane **out, struct err *e)
{
    const json_t *net = json_object_get(r->spec, "networking");
    if (!json_is_object(net))
        return err_set(e, "networking: must be defined");
    const char *address = jstr(net, "address");
    if (!address)
        return err_set(e, "networking.address: address can't be empty");

    struct xds_dataplane *dp = xcalloc(1, sizeof(*dp));
    dp->mesh = xstrdup(r->mesh);
    dp->name = xstrdup(r->name);
    dp->address = xstrdup(address);
    const json_t *gw = json_object_get(net, "gateway");
    dp->gateway = json_is_object(gw);
    if (dp->gateway) {
        const char *gt = jstr(gw, "type");
        dp->builtin_gateway = gt && strcasecmp(gt, "BUILTIN") == 0;
        read_tags(json_object_get(gw, "tags"), &dp->gateway_tags, &dp->n_gateway_tags);
    }
    dp->tagset = ca_dataplane_tags(r->spec);
    {
        char *ts = json_dumps(dp->tagset, JSON_SORT_KEYS | JSON_COMPACT);
        dp->tagset_hash = xds_hash_str(XDS_HASH_INIT, ts);
        free(ts);
        dp->tagset_hash =
            xds_hash_u64(dp->tagset_hash, (uint64_t)(dp->gateway * 2 + dp->builtin_gateway));
    }
    struct err ie;
    if (ca_dataplane_identity_tags(r->name, r->spec, r->labels, &dp->identity_tags, &ie) < 0)
        dp->identity_error = xstrdup(ie.msg);

    const json_t *in = json_object_get(net, "inbound");
    if (json_is_array(in) && json_array_size(in) > 0) {
        dp->inbounds = xcalloc(json_array_size(in), sizeof(*dp->inbounds));
        size_t i;
        json_t *ib;
        json_array_foreach(in, i, ib)
        {
            uint32_t port = jport(ib, "port");
            if (!port)
                continue;
            struct xds_inbound *x = &dp->inbounds[dp->n_inbounds++];
            x->port = port;
            x->address = xstrdup(jstr(ib, "address") ? jstr(ib, "address") : address);
            x->service_address =
                xstrdup(jstr(ib, "serviceAddress") ? jstr(ib, "serviceAddress") : "127.0.0.1");
            x->service_port = jport(ib, "servicePort") ? jport(ib, "servicePort") : port;
            read_tags(json_object_get(ib, "tags"), &x->tags, &x->ntags);
            for (size_t t = 0; t < x->ntags; t++)
                if (strcmp(x->tags[t].key, XDS_TAG_SERVICE) == 0)
                    x->service = xstrdup(x->tags[t].value);
                else if (strcmp(x->tags[t].key, XDS_TAG_PROTOCOL) == 0)
                    x->protocol = xds_protocol_parse(x->tags[t].value);
            const json_t *ready = json_object_get(json_object_get(ib, "health"), "ready");
            x->ready = json_is_false(ready) ? 0 : 1;
        }
    }

    const json_t *outb = json_object_get(net, "outbound");
    if (json_is_array(outb) && json_array_size(outb) > 0) {
        dp->outbounds = xcalloc(json_array_size(outb), sizeof(*dp->outbounds));
        size_t i;
        json_t *ob;
        json_array_foreach(outb, i, ob)
        {
            uint32_t port = jport(ob, "port");
            const char *svc = jstr(json_object_get(ob, "tags"), XDS_TAG_SERVICE);
            if (!svc)
                svc = jstr(ob, "service");
            if (!port || !svc)
                continue; /* backendRef outbounds: MeshService mode, not generated yet */
            const char *om = jstr(json_object_get(ob, "tags"), XDS_TAG_MESH);
            if (om && strcmp(om, r->mesh) != 0) {
                if (!dp->cross_outbounds)
                    dp->cross_outbounds =
                        xcalloc(json_array_size(outb), sizeof(*dp->cross_outbounds));
                struct xds_cross_outbound *c = &dp->cross_outbounds[dp->n_cross_outbounds++];
                c->port = port;
                c->address = xstrdup(jstr(ob, "address") ? jstr(ob, "address") : "127.0.0.1");
                c->service = xstrdup(svc);
                c->mesh = xstrdup(om);
                struct xds_tag *all;
                size_t n;
                read_tags(json_object_get(ob, "tags"), &all, &n);
                c->tags = xcalloc(n + 1, sizeof(*c->tags));
                for (size_t t = 0; t < n; t++) {
                    if (strcmp(all[t].key, XDS_TAG_MESH) == 0) {
                        free(all[t].key);
                        free(all[t].value);
                        continue;
                    }
                    c->tags[c->ntags++] = all[t];
                }
                free(all);
                if (!jstr(json_object_get(ob, "tags"), XDS_TAG_SERVICE)) {
                    /* the deprecated `service` field: a tag like the others */
                    c->tags[c->ntags++] = (struct xds_tag){xstrdup(XDS_TAG_SERVICE), xstrdup(svc)};
                    qsort(c->tags, c->ntags, sizeof(*c->tags), cmp_tag);
                }
                continue;
            }
            struct xds_outbound *x = &dp->outbounds[dp->n_outbounds++];
            x->port = port;
            x->address = xstrdup(jstr(ob, "address") ? jstr(ob, "address") : "127.0.0.1");
            x->service = xstrdup(svc);
        }
    }

    const json_t *tp = json_object_get(net, "transparentProxying");
    if (json_is_object(tp)) {
        dp->redirect_port_inbound = jport(tp, "redirectPortInbound");
        dp->redirect_port_outbound = jport(tp, "redirectPortOutbound");
        dp->redirect_port_inbound_v6 = jport(tp, "redirectPortInboundV6");
        const char *fam = jstr(tp, "ipFamilyMode");
        /* Kuma 2.14 (TransparentProxyGenerator): the IPv6 twins exist unless
         * the mode is IPv4, unset (UnSpecified) included. */
        dp->ipv6 = !(fam && (strcmp(fam, "IPv4") == 0 || strcmp(fam, "ipv4") == 0));
    }

    dp->tagset_hash = xds_hash_u64(dp->tagset_hash, dp->redirect_port_outbound != 0);
    char *text = json_dumps(r->spec, JSON_SORT_KEYS | JSON_COMPACT);
    dp->hash = xds_hash_str(xds_hash_str(XDS_HASH_INIT, r->name), text);
    free(text);
    if (r->labels && json_object_size(r->labels)) {
        text = json_dumps(r->labels, JSON_SORT_KEYS | JSON_COMPACT);
        dp->hash = xds_hash_str(dp->hash, text);
        free(text);
    }
    *out = dp;
    return 0;
}

void xds_tags_free(struct xds_tag *tags, size_t n)
{
    for (size_t t = 0; t < n; t++) {
        free(tags[t].key);
        free(tags[t].value);
    }
    free(tags);
}

void xds_dataplane_free(struct xds_dataplane *dp)
{
    if (!dp)
        return;
    for (size_t i = 0; i < dp->n_inbounds; i++) {
        struct xds_inbound *x = &dp->inbounds[i];
        free(x->address);
        free(x->service_address);
        free(x->service);
        xds_tags_free(x->tags, x->ntags);
    }
    for (size_t i = 0; i < dp->n_outbounds; i++) {
        free(dp->outbounds[i].address);
        free(dp->outbounds[i].service);
    }
    for (size_t i = 0; i < dp->n_cross_outbounds; i++) {
        struct xds_cross_outbound *c = &dp->cross_outbounds[i];
        free(c->address);
        free(c->service);
        free(c->mesh);
        xds_tags_free(c->tags, c->ntags);
    }
    free(dp->cross_outbounds);
    free(dp->inbounds);
    free(dp->outbounds);
    xds_tags_free(dp->gateway_tags, dp->n_gateway_tags);
    json_decref(dp->tagset);
    json_decref(dp->identity_tags);
    free(dp->identity_error);
    free(dp->mesh);
    free(dp->name);
    free(dp->address);
    free(dp);
}
