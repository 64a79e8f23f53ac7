/*
 * validate_dataplane — Kuma's Dataplane validator (dataplane_validator.go):
 * networking (address, inbounds, outbounds, transparent proxying, zone-proxy
 * listeners), gateways (delegated and builtin), the admin port, probes and
 * the metrics override; plus the Mesh membership constraints the dataplane
 * manager checks on create and update (membership_validator.go).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/resource.h"
#include "core/validate.h"
#include "core/validate_internal.h"
#include "core/verr.h"

enum gw_type { GW_NONE, GW_DELEGATED, GW_BUILTIN };

/* A port-like integer without reporting (0 when absent or invalid). */
static long long peek_int(const json_t *o, const char *key)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (json_is_integer(v))
        return (long long)json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static int is_loopback_or_any(const char *ip)
{
    return ip_is_unspecified(ip) || strcmp(ip, "127.0.0.1") == 0;
}

/* UsesInboundInterface(127.0.0.1, port): the admin listener on localhost
 * collides with an inbound's dataplane side or its workload side. */
static int admin_hits_inbound(const json_t *net, long long port)
{
    const char *dp_addr = vj_peek_str(net, "address");
    const json_t *inb = json_object_get(net, "inbound");
    for (size_t i = 0; json_is_array(inb) && i < json_array_size(inb); i++) {
        const json_t *in = json_array_get(inb, i);
        if (!json_is_object(in))
            continue;
        const char *addr = vj_peek_str(in, "address");
        if (!*addr)
            addr = dp_addr;
        long long dport = peek_int(in, "port");
        const char *waddr = vj_peek_str(in, "serviceAddress");
        if (!*waddr)
            waddr = "127.0.0.1";
        long long wport = peek_int(in, "servicePort");
        if (!wport)
            wport = dport;
        if (dport == port && is_loopback_or_any(addr))
            return 1;
        if (wport == port && is_loopback_or_any(waddr))
            return 1;
    }
    return 0;
}

static int admin_hits_outbound(const json_t *net, long long port)
{
    const json_t *outb = json_object_get(net, "outbound");
    for (size_t i = 0; json_is_array(outb) && i < json_array_size(outb); i++) {
        const json_t *o = json_array_get(outb, i);
        if (!json_is_object(o))
            continue;
        const char *addr = vj_peek_str(o, "address");
        if (!*addr)
            addr = "127.0.0.1";
        if (peek_int(o, "port") == port && is_loopback_or_any(addr))
            return 1;
    }
    return 0;
}

static void validate_address(struct verr *ve, struct vpath *p, const char *address)
{
    size_t m = vp_field(p, "address");
    if (!address || !*address) {
        vadd(ve, p, "address can't be empty");
    } else {
        if (strcmp(address, "0.0.0.0") == 0 || strcmp(address, "::") == 0)
            vadd(ve, p, "must not be 0.0.0.0 or ::");
        if (!ip_ok(address) && !dns_name_ok(address))
            vadd(ve, p, "address has to be valid IP address or domain name");
    }
    vp_reset(p, m);
}

static void validate_service_probe(struct verr *ve, struct vpath *p, const json_t *in)
{
    const json_t *sp = vj_obj(ve, p, in, "serviceProbe");
    if (!sp)
        return;
    size_t m = vp_field(p, "serviceProbe");
    static const char *const durs[] = {"interval", "timeout"};
    for (int i = 0; i < 2; i++) {
        int64_t ns;
        if (vj_duration(ve, p, sp, durs[i], &ns) && ns == 0)
            vadd_at(ve, p, durs[i], "must have a positive value");
    }
    static const char *const thr[] = {"unhealthyThreshold", "healthyThreshold"};
    for (int i = 0; i < 2; i++) {
        long long v;
        if (vj_int(ve, p, sp, thr[i], &v) && v <= 0)
            vadd_at(ve, p, thr[i], "must have a positive value");
    }
    vj_obj(ve, p, sp, "tcp");
    vp_reset(p, m);
}

/* validateInbound; p at networking.inbound[i]. */
static void validate_inbound(struct verr *ve, struct vpath *p, const json_t *in,
                             const char *dp_address)
{
    long long port = 0, sport = 0;
    vj_int(ve, p, in, "port", &port);
    int has_sport = vj_int(ve, p, in, "servicePort", &sport);
    size_t m = vp_field(p, "port");
    v_port(ve, p, port);
    vp_reset(p, m);
    if (has_sport && sport != 0) {
        m = vp_field(p, "servicePort");
        v_port(ve, p, sport);
        vp_reset(p, m);
    }
    const char *saddr = vj_str(ve, p, in, "serviceAddress");
    const char *addr = vj_str(ve, p, in, "address");
    if (!saddr)
        saddr = "";
    if (!addr)
        addr = "";
    if (*saddr) {
        if (!ip_ok(saddr))
            vadd_at(ve, p, "serviceAddress", "serviceAddress has to be valid IP address");
        if (dp_address && strcmp(saddr, dp_address) == 0 && (sport == 0 || sport == port))
            vadd_at(ve, p, "serviceAddress",
                    "serviceAddress and servicePort has to differ from address and port");
    }
    if (*addr) {
        if (!ip_ok(addr))
            vadd_at(ve, p, "address", "address has to be valid IP address");
        if (strcmp(addr, saddr) == 0 && (sport == 0 || sport == port))
            vadd_at(ve, p, "serviceAddress",
                    "serviceAddress and servicePort has to differ from address and port");
    }
    const json_t *tags = vj_tags(ve, p, in, "tags");
    m = vp_field(p, "tags");
    struct tag_opts o = {.check_protocol = 1};
    v_tags(ve, p, tags, &o);
    vp_reset(p, m);
    validate_service_probe(ve, p, in);
    vj_str(ve, p, in, "name");
}

static int backend_kind_ok(const char *k)
{
    return k && (strcmp(k, "MeshService") == 0 || strcmp(k, "MeshExternalService") == 0 ||
                 strcmp(k, "MeshMultiZoneService") == 0);
}

#define KINDS_HINT                                                                                 \
    "invalid value. Available values are: MeshExternalService,MeshMultiZoneService,MeshService"

/* validateOutbound; p at networking.outbound[i]. */
static void validate_outbound(struct verr *ve, struct vpath *p, const json_t *out)
{
    long long port = 0;
    vj_int(ve, p, out, "port", &port);
    size_t m = vp_field(p, "port");
    v_port(ve, p, port);
    vp_reset(p, m);
    const char *addr = vj_str(ve, p, out, "address");
    if (addr && *addr && !ip_ok(addr))
        vadd_at(ve, p, "address", "address has to be valid IP address");
    const json_t *ref = vj_obj(ve, p, out, "backendRef");
    const json_t *tags = vj_tags(ve, p, out, "tags");
    const char *service = vj_str(ve, p, out, "service");
    if (!service)
        service = "";
    if (ref) {
        m = vp_field(p, "backendRef");
        const char *kind = vj_str(ve, p, ref, "kind");
        const char *name = vj_str(ve, p, ref, "name");
        const json_t *labels = vj_tags(ve, p, ref, "labels");
        long long rport = 0;
        vj_int(ve, p, ref, "port", &rport);
        if (!backend_kind_ok(kind))
            vadd_at(ve, p, "kind", KINDS_HINT);
        if ((!name || !*name) && tags_len(labels) == 0)
            vadd(ve, p, "either 'name' or 'labels' should be specified");
        if (!kind || strcmp(kind, "MeshExternalService") != 0) {
            size_t mp = vp_field(p, "port");
            v_port(ve, p, rport);
            vp_reset(p, mp);
        }
        vp_reset(p, m);
    } else if (tags_len(tags) == 0) {
        if (!*service)
            vadd_at(ve, p, "tags", "mandatory tag \"kuma.io/service\" is missing");
    } else {
        m = vp_field(p, "tags");
        struct tag_opts o = {.require_service = 1};
        v_tags(ve, p, tags, &o);
        vp_reset(p, m);
    }
    if (ref && (tags_len(tags) != 0 || *service))
        vadd_at(ve, p, "backendRef", "both backendRef and tags/service cannot be defined");
}

static void validate_transparent_proxying(struct verr *ve, const json_t *net)
{
    struct vpath tmp;
    vp_init(&tmp, "networking");
    const json_t *tp = vj_obj(ve, &tmp, net, "transparentProxying");
    const json_t *rb = NULL, *refs = NULL;
    if (tp) {
        vp_field(&tmp, "transparentProxying");
        rb = vj_obj(ve, &tmp, tp, "reachableBackends");
        if (rb) {
            vp_field(&tmp, "reachableBackends");
            refs = vj_arr(ve, &tmp, rb, "refs");
        }
        /* Other transparent-proxying fields: only their types. */
        vp_reset(&tmp, strlen("networking"));
        vp_field(&tmp, "transparentProxying");
        long long n;
        vj_int(ve, &tmp, tp, "redirectPortInbound", &n);
        vj_int(ve, &tmp, tp, "redirectPortOutbound", &n);
    }
    vp_free(&tmp);
    if (!refs)
        return;
    /* Kuma's path has a typo ("transparentProxing"); kept for compatibility. */
    struct vpath p;
    vp_init(&p, "networking.transparentProxing.reachableBackends.refs");
    for (size_t i = 0; i < json_array_size(refs); i++) {
        const json_t *ref = vj_elem_obj(ve, &p, refs, i);
        if (!ref)
            continue;
        size_t mi = vp_index(&p, i);
        const char *kind = vj_str(ve, &p, ref, "kind");
        const char *name = vj_str(ve, &p, ref, "name");
        const char *ns = vj_str(ve, &p, ref, "namespace");
        const json_t *labels = vj_tags(ve, &p, ref, "labels");
        long long port;
        vj_int(ve, &p, ref, "port", &port);
        if (!name)
            name = "";
        if (!ns)
            ns = "";
        if (!backend_kind_ok(kind))
            vadd_at(ve, &p, "kind", KINDS_HINT);
        if (*name) {
            if (strlen(name) > 253)
                vadd_at(ve, &p, "name", "value length must less or equal 253");
            else if (!rfc1123_subdomain_ok(name))
                vadd_at(ve, &p, "name",
                        "invalid characters. A lowercase RFC 1123 subdomain must consist of "
                        "lower case alphanumeric characters, '-' or '.', and must start and end "
                        "with an alphanumeric character");
        }
        if (!*name && !*ns && tags_len(labels) == 0)
            vadd_at(ve, &p, "name", "name or labels are required");
        if (!*name && *ns)
            vadd_at(ve, &p, "name", "name is required, when namespace is defined");
        if ((*name || *ns) && tags_len(labels) > 0)
            vadd_at(ve, &p, "labels", "labels cannot be defined when name is specified");
        vp_reset(&p, mi);
    }
    vp_free(&p);
}

/* Zone-proxy listeners (networking.listeners). */
static void validate_listeners(struct verr *ve, struct vpath *p, const json_t *net,
                               const json_t *listeners)
{
    size_t n = json_array_size(listeners);
    const char *dp_addr = vj_peek_str(net, "address");
    const json_t *inb = json_object_get(net, "inbound");
    size_t m = vp_field(p, "listeners");
    for (size_t i = 0; i < n; i++) {
        const json_t *l = vj_elem_obj(ve, p, listeners, i);
        if (!l)
            continue;
        size_t mi = vp_index(p, i);
        const char *type = vj_str(ve, p, l, "type");
        const char *name = vj_str(ve, p, l, "name");
        const char *addr = vj_str(ve, p, l, "address");
        long long port = 0;
        vj_int(ve, p, l, "port", &port);
        if (!type || (strcmp(type, "ZoneIngress") != 0 && strcmp(type, "ZoneEgress") != 0))
            vadd_at(ve, p, "type", "type must be ZoneIngress or ZoneEgress");
        if (name && *name) {
            int dup = 0;
            for (size_t j = 0; json_is_array(inb) && j < json_array_size(inb); j++)
                if (strcmp(vj_peek_str(json_array_get(inb, j), "name"), name) == 0)
                    dup = 1;
            for (size_t j = 0; j < i; j++)
                if (strcmp(vj_peek_str(json_array_get(listeners, j), "name"), name) == 0)
                    dup = 1;
            if (dup)
                vadd_at(ve, p, "name", "name \"%s\" must be unique across inbounds and listeners",
                        name);
        }
        if (!addr || !*addr)
            addr = dp_addr;
        char ap[300];
        snprintf(ap, sizeof(ap), "%s:%lld", addr, port);
        int reported = 0;
        for (size_t j = 0; j < i && !reported; j++) {
            const json_t *o = json_array_get(listeners, j);
            const char *oaddr = vj_peek_str(o, "address");
            if (!*oaddr)
                oaddr = dp_addr;
            if (strcmp(oaddr, addr) != 0 || peek_int(o, "port") != port)
                continue;
            if (type && strcmp(vj_peek_str(o, "type"), type) == 0)
                vadd(ve, p, "address:port %s is already used by another listener", ap);
            else
                vadd(ve, p, "address:port %s is used by listeners of different types", ap);
            reported = 1;
        }
        for (size_t j = 0; json_is_array(inb) && j < json_array_size(inb) && !reported; j++) {
            const json_t *in = json_array_get(inb, j);
            const char *iaddr = vj_peek_str(in, "address");
            if (!*iaddr)
                iaddr = dp_addr;
            if (strcmp(iaddr, addr) == 0 && peek_int(in, "port") == port) {
                vadd(ve, p, "address:port %s collides with an inbound listener", ap);
                reported = 1;
            }
        }
        vp_reset(p, mi);
    }
    vp_reset(p, m);
}

/* validateNetworking; p at "networking". */
static void validate_networking(struct verr *ve, struct vpath *p, const json_t *net,
                                const json_t *inbound, const json_t *outbound,
                                const json_t *listeners)
{
    const char *address = vj_str(ve, p, net, "address");
    validate_address(ve, p, address);
    vj_str(ve, p, net, "advertisedAddress");
    size_t m = vp_field(p, "inbound");
    for (size_t i = 0; i < json_array_size(inbound); i++) {
        const json_t *in = vj_elem_obj(ve, p, inbound, i);
        if (!in)
            continue;
        size_t mi = vp_index(p, i);
        validate_inbound(ve, p, in, address);
        const json_t *tags = vj_peek_obj(in, "tags");
        if (tags_len(tags) > 0 && !json_object_get(tags, "kuma.io/service")) {
            size_t mt = vp_field(p, "tags");
            vp_key(p, "kuma.io/service");
            vadd(ve, p, "tag has to exist");
            vp_reset(p, mt);
        }
        vp_reset(p, mi);
    }
    vp_reset(p, m);
    m = vp_field(p, "outbound");
    for (size_t i = 0; i < json_array_size(outbound); i++) {
        const json_t *out = vj_elem_obj(ve, p, outbound, i);
        if (!out)
            continue;
        size_t mi = vp_index(p, i);
        validate_outbound(ve, p, out);
        vp_reset(p, mi);
    }
    vp_reset(p, m);
    validate_transparent_proxying(ve, net);
    if (listeners)
        validate_listeners(ve, p, net, listeners);
}

static void validate_probes(struct verr *ve, const json_t *spec)
{
    struct vpath p;
    vp_init(&p, "");
    const json_t *probes = vj_obj(ve, &p, spec, "probes");
    if (!probes) {
        vp_free(&p);
        return;
    }
    vp_field(&p, "probes");
    long long port = 0;
    vj_int(ve, &p, probes, "port", &port);
    size_t m = vp_field(&p, "port");
    v_port(ve, &p, port);
    vp_reset(&p, m);
    const json_t *eps = vj_arr(ve, &p, probes, "endpoints");
    m = vp_field(&p, "endpoints");
    for (size_t i = 0; i < json_array_size(eps); i++) {
        const json_t *ep = vj_elem_obj(ve, &p, eps, i);
        if (!ep)
            continue;
        size_t mi = vp_index(&p, i);
        long long iport = 0;
        vj_int(ve, &p, ep, "inboundPort", &iport);
        size_t mp = vp_field(&p, "inboundPort");
        v_port(ve, &p, iport);
        vp_reset(&p, mp);
        const char *ipath = vj_str(ve, &p, ep, "inboundPath");
        const char *path = vj_str(ve, &p, ep, "path");
        char portbuf[16];
        if (parse_request_uri(ipath ? ipath : "", portbuf, sizeof(portbuf)) != 0)
            vadd_at(ve, &p, "inboundPath", "should be a valid URL Path");
        if (parse_request_uri(path ? path : "", portbuf, sizeof(portbuf)) != 0)
            vadd_at(ve, &p, "path", "should be a valid URL Path");
        vp_reset(&p, mi);
    }
    vp_free(&p);
}

static void validate_dp_metrics(struct verr *ve, const json_t *spec)
{
    struct vpath p;
    vp_init(&p, "");
    const json_t *metrics = vj_obj(ve, &p, spec, "metrics");
    if (metrics) {
        vp_field(&p, "metrics");
        const char *type = vj_str(ve, &p, metrics, "type");
        if (!type || strcmp(type, "prometheus") != 0) {
            vadd_at(ve, &p, "type", "unknown backend type. Available backends: \"prometheus\"");
        } else {
            const json_t *conf = vj_obj(ve, &p, metrics, "conf");
            vp_field(&p, "conf");
            v_prometheus_conf(ve, &p, conf);
        }
    }
    vp_free(&p);
}

/* validateGateway; p at networking.gateway. */
static void validate_gateway(struct verr *ve, struct vpath *p, const json_t *gw)
{
    const json_t *tags = vj_tags(ve, p, gw, "tags");
    size_t m = vp_field(p, "tags");
    struct tag_opts o = {.require_service = tags_len(tags) > 0, .protocol_tcp_only = 1};
    v_tags(ve, p, tags, &o);
    vp_reset(p, m);
}

void validate_dataplane(const struct resource *r, struct verr *ve)
{
    const json_t *spec = r ? r->spec : NULL;
    struct vpath p;
    vp_init(&p, "");
    const json_t *net = vj_obj(ve, &p, spec, "networking");
    if (!net) {
        if (!vj_present(spec, "networking"))
            verr_add(ve, "networking", "must be defined");
        vp_free(&p);
        return;
    }
    vp_field(&p, "networking");
    const json_t *inbound = vj_arr(ve, &p, net, "inbound");
    const json_t *outbound = vj_arr(ve, &p, net, "outbound");
    const json_t *listeners = vj_arr(ve, &p, net, "listeners");
    const json_t *gw = vj_obj(ve, &p, net, "gateway");
    const json_t *admin = vj_obj(ve, &p, net, "admin");
    enum gw_type gtype = GW_NONE;
    if (gw) {
        size_t m = vp_field(&p, "gateway");
        const char *t = vj_str(ve, &p, gw, "type");
        vp_reset(&p, m);
        if (!t || !*t || strcmp(t, "DELEGATED") == 0)
            gtype = GW_DELEGATED;
        else if (strcmp(t, "BUILTIN") == 0)
            gtype = GW_BUILTIN;
        else {
            vadd_at(ve, &p, "gateway.type",
                    "has invalid value. Allowed values: DELEGATED, BUILTIN");
            gtype = GW_DELEGATED;
        }
    }
    if (admin) {
        size_t m = vp_field(&p, "admin");
        long long port = 0;
        if (vj_int(ve, &p, admin, "port", &port)) {
            vp_field(&p, "port");
            if (admin_hits_inbound(net, port))
                vadd(ve, &p, "must differ from inbound");
            if (admin_hits_outbound(net, port))
                vadd(ve, &p, "must differ from outbound");
        }
        vp_reset(&p, m);
    }
    size_t nin = json_array_size(inbound), nlis = json_array_size(listeners);
    switch (gtype) {
    case GW_DELEGATED:
        if (nin > 0)
            vadd_at(ve, &p, "inbound", "inbound cannot be defined for delegated gateways");
        if (nlis > 0)
            vadd_at(ve, &p, "listeners", "listeners cannot be defined for delegated gateways");
        {
            size_t m = vp_field(&p, "gateway");
            validate_gateway(ve, &p, gw);
            vp_reset(&p, m);
        }
        validate_networking(ve, &p, net, inbound, outbound, NULL);
        validate_probes(ve, spec);
        break;
    case GW_BUILTIN:
        if (nin > 0)
            vadd_at(ve, &p, "inbound", "inbound cannot be defined for builtin gateways");
        if (json_array_size(outbound) > 0)
            vadd_at(ve, &p, "outbound", "outbound cannot be defined for builtin gateways");
        if (nlis > 0)
            vadd_at(ve, &p, "listeners", "listeners cannot be defined for builtin gateways");
        if (vj_present(spec, "probes"))
            vadd_at(ve, &p, "probes", "probes cannot be defined for builtin gateways");
        {
            size_t m = vp_field(&p, "gateway");
            validate_gateway(ve, &p, gw);
            vp_reset(&p, m);
        }
        validate_networking(ve, &p, net, inbound, outbound, NULL);
        break;
    case GW_NONE:
        if (nin == 0 && nlis == 0)
            vadd(ve, &p, "has to contain at least one inbound interface or gateway");
        validate_networking(ve, &p, net, inbound, outbound, listeners);
        validate_probes(ve, spec);
        validate_dp_metrics(ve, spec);
        break;
    }
    vp_free(&p);
}

/* ---- Mesh membership (constraints.dataplaneProxy) ---- */

/* "k1=v1 k2=v2" sorted, as SingleValueTagSet.String(). */
static char *tagset_string(const json_t *tags)
{
    size_t n = tags_len(tags), i = 0;
    char **items = xcalloc(n ? n : 1, sizeof(char *));
    const char *k;
    json_t *v;
    if (n)
        json_object_foreach((json_t *)tags, k, v) items[i++] =
            xasprintf("%s=%s", k, json_is_string(v) ? json_string_value(v) : "");
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && strcmp(items[b - 1], items[b]) > 0; b--) {
            char *t = items[b];
            items[b] = items[b - 1];
            items[b - 1] = t;
        }
    struct buf out;
    buf_init(&out, 0);
    for (i = 0; i < n; i++) {
        if (i)
            buf_append(&out, " ", 1);
        buf_append(&out, items[i], strlen(items[i]));
        free(items[i]);
    }
    free(items);
    buf_str(&out);
    return out.data;
}

/* Go's %q of a plain string (enough for tag sets: quotes and backslashes). */
static char *go_quote(const char *s)
{
    char *k = path_key("", s); /* ["..."] with Go escaping */
    size_t n = strlen(k);
    char *q = xstrndup(k + 1, n - 2);
    free(k);
    return q;
}

/* matchTags: every required tag present; "*" matches any non-empty value. */
static int match_tags(const json_t *required, const json_t *dp_tags)
{
    const char *k;
    json_t *v;
    if (!json_is_object(required))
        return 1;
    json_object_foreach((json_t *)required, k, v)
    {
        const char *want = json_is_string(v) ? json_string_value(v) : "";
        const char *have = tags_get(dp_tags, k);
        if (!have)
            have = "";
        if (strcmp(want, "*") == 0 && *have)
            continue;
        if (strcmp(want, have) != 0)
            return 0;
    }
    return 1;
}

void validate_dataplane_constraints(const struct resource *mesh, const struct resource *dp,
                                    struct verr *ve)
{
    if (!mesh || !dp)
        return;
    const json_t *c = vj_peek_obj(mesh->spec, "constraints");
    const json_t *dpp = vj_peek_obj(c, "dataplaneProxy");
    if (!dpp)
        return;
    const json_t *req = json_object_get(dpp, "requirements");
    const json_t *res = json_object_get(dpp, "restrictions");
    const json_t *net = vj_peek_obj(dp->spec, "networking");
    /* SingleValueTagSets: each inbound's tags, then the gateway's. */
    const json_t *sets[1024];
    size_t nsets = 0;
    const json_t *inb = json_object_get(net ? net : json_null(), "inbound");
    for (size_t i = 0; json_is_array(inb) && i < json_array_size(inb) && nsets < 1023; i++) {
        const json_t *in = json_array_get(inb, i);
        sets[nsets++] = vj_peek_obj(in, "tags");
    }
    const json_t *gw = vj_peek_obj(net, "gateway");
    if (gw)
        sets[nsets++] = vj_peek_obj(gw, "tags");
    for (size_t s = 0; s < nsets; s++) {
        const json_t *tags = sets[s];
        int allowed = !json_is_array(req) || json_array_size(req) == 0;
        for (size_t i = 0; !allowed && i < json_array_size(req); i++)
            if (match_tags(vj_peek_obj(json_array_get(req, i), "tags"), tags))
                allowed = 1;
        char *ts = tagset_string(tags), *tq = go_quote(ts);
        char *mq = go_quote(dp->mesh ? dp->mesh : "");
        if (!allowed) {
            verr_add(ve, "",
                     "dataplane cannot be a member of mesh %s because its tags %s does not "
                     "fulfill any requirements defined on the Mesh",
                     mq, tq);
            free(ts), free(tq), free(mq);
            return;
        }
        for (size_t i = 0; json_is_array(res) && i < json_array_size(res); i++) {
            const json_t *rt = vj_peek_obj(json_array_get(res, i), "tags");
            if (match_tags(rt, tags)) {
                char *rs = tagset_string(rt), *rq = go_quote(rs);
                verr_add(ve, "",
                         "dataplane cannot be a member of mesh %s because its tags %s matches "
                         "restricted tags %s defined on the Mesh",
                         mq, tq, rq);
                free(rs), free(rq), free(ts), free(tq), free(mq);
                return;
            }
        }
        free(ts), free(tq), free(mq);
    }
}
