/*
 * xds_map — Envoy resources to the engine's model; the contract and the
 * list of what is mapped, ignored and refused are in xds_map.h.
 *
 * Invariants: a set owns its decoded messages (protobuf-c's unpacked trees);
 * dp_xds_build() only reads them and copies every string it keeps into the
 * model, so a set can be dropped as soon as the next one replaces it.
 */
#include "dp/xds_map.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"

#define LOG "xds"

#define TYPE_PREFIX   "type.googleapis.com/"
#define URL_TCP_PROXY TYPE_PREFIX "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define URL_HCM                                                                                    \
    TYPE_PREFIX "envoy.extensions.filters.network.http_connection_manager.v3."                     \
                "HttpConnectionManager"
#define URL_ROUTER       TYPE_PREFIX "envoy.extensions.filters.http.router.v3.Router"
#define URL_HTTP_RBAC    TYPE_PREFIX "envoy.extensions.filters.http.rbac.v3.RBAC"
#define URL_NETWORK_RBAC TYPE_PREFIX "envoy.extensions.filters.network.rbac.v3.RBAC"
#define URL_UPSTREAM_TLS TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
#define URL_DOWNSTREAM_TLS                                                                         \
    TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"

/* A weighted split is spread over this many weight units per cluster share,
 * so shares stay exact for up to this many endpoints per cluster. */
#define SPLIT_SCALE 720720u /* lcm(1..16) */

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Extensions__TransportSockets__Tls__V3__Secret Secret;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext CommonTls;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext ValCtx;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;
typedef Envoy__Config__Rbac__V3__Principal Principal;
typedef Envoy__Config__Core__V3__Metadata Metadata;

static const struct {
    const char *url, *name;
    const ProtobufCMessageDescriptor *desc;
} TYPES[DP_XDS_NTYPES] = {
    [DP_XDS_CDS] = {TYPE_PREFIX "envoy.config.cluster.v3.Cluster", "CDS",
                    &envoy__config__cluster__v3__cluster__descriptor},
    [DP_XDS_EDS] = {TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment", "EDS",
                    &envoy__config__endpoint__v3__cluster_load_assignment__descriptor},
    [DP_XDS_LDS] = {TYPE_PREFIX "envoy.config.listener.v3.Listener", "LDS",
                    &envoy__config__listener__v3__listener__descriptor},
    [DP_XDS_SDS] = {TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret", "SDS",
                    &envoy__extensions__transport_sockets__tls__v3__secret__descriptor},
};

const char *dp_xds_type_url(enum dp_xds_type t)
{
    return TYPES[t].url;
}
const char *dp_xds_type_name(enum dp_xds_type t)
{
    return TYPES[t].name;
}
int dp_xds_type_from_url(const char *url)
{
    for (int i = 0; i < DP_XDS_NTYPES; i++)
        if (url && strcmp(url, TYPES[i].url) == 0)
            return i;
    return -1;
}

struct dp_xds_set {
    enum dp_xds_type type;
    char *version;
    size_t n;
    ProtobufCMessage **msgs;
};

void dp_xds_set_free(struct dp_xds_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        protobuf_c_message_free_unpacked(s->msgs[i], NULL);
    free(s->msgs);
    free(s->version);
    free(s);
}

const char *dp_xds_set_version(const struct dp_xds_set *s)
{
    return s ? s->version : "";
}
size_t dp_xds_set_size(const struct dp_xds_set *s)
{
    return s ? s->n : 0;
}

static const char *msg_name(enum dp_xds_type t, const ProtobufCMessage *m)
{
    switch (t) {
    case DP_XDS_CDS:
        return ((const Cluster *)m)->name;
    case DP_XDS_EDS:
        return ((const Cla *)m)->cluster_name;
    case DP_XDS_LDS:
        return ((const Listener *)m)->name;
    default:
        return ((const Secret *)m)->name;
    }
}

int dp_xds_set_decode(enum dp_xds_type t, const char *version, const void *const *values,
                      const size_t *lens, const char *const *type_urls, size_t n,
                      struct dp_xds_set **out, struct err *e)
{
    struct dp_xds_set *s = xcalloc(1, sizeof(*s));
    s->type = t;
    s->version = xstrdup(version ? version : "");
    s->msgs = xcalloc(n ? n : 1, sizeof(*s->msgs));
    for (size_t i = 0; i < n; i++) {
        if (!type_urls[i] || strcmp(type_urls[i], TYPES[t].url) != 0) {
            err_set(e, "resource %zu: type %s in a %s response", i,
                    type_urls[i] ? type_urls[i] : "(none)", TYPES[t].name);
            goto fail;
        }
        ProtobufCMessage *m = protobuf_c_message_unpack(TYPES[t].desc, NULL, lens[i], values[i]);
        if (!m) {
            err_set(e, "resource %zu: could not decode %s", i, TYPES[t].url);
            goto fail;
        }
        s->msgs[s->n++] = m;
        const char *name = msg_name(t, m);
        if (!name || !*name) {
            err_set(e, "resource %zu: %s without a name", i, TYPES[t].name);
            goto fail;
        }
        for (size_t j = 0; j + 1 < s->n; j++)
            if (strcmp(msg_name(t, s->msgs[j]), name) == 0) {
                err_set(e, "duplicate %s resource %s", TYPES[t].name, name);
                goto fail;
            }
    }
    *out = s;
    return 0;
fail:
    dp_xds_set_free(s);
    return -1;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static int is_ip(const char *s)
{
    unsigned char b[16];
    return s && (inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1);
}

static int socket_address(const Envoy__Config__Core__V3__Address *a, const char **ip,
                          uint32_t *port, const char *what, struct err *e)
{
    if (!a || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS ||
        !a->socket_address)
        return err_set(e, "%s: only socket addresses are supported", what);
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    if (sa->protocol != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP)
        return err_set(e, "%s: only TCP is supported", what);
    if (sa->port_specifier_case ==
        ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_NAMED_PORT)
        return err_set(e, "%s: named ports are not supported", what);
    if (!is_ip(sa->address))
        return err_set(e, "%s: address %s is not an IP literal", what,
                       sa->address ? sa->address : "");
    if (sa->port_value > 65535)
        return err_set(e, "%s: port %u out of range", what, sa->port_value);
    *ip = sa->address;
    *port = sa->port_value;
    return 0;
}

static uint32_t duration_ms(const Google__Protobuf__Duration *d)
{
    if (!d)
        return 0;
    int64_t ms = d->seconds * 1000 + d->nanos / 1000000;
    if (ms <= 0)
        return 0;
    return ms > (int64_t)UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)ms;
}

static int string_matcher(const Envoy__Type__Matcher__V3__StringMatcher *m,
                          enum dp_match_kind *kind, const char **value, const char *what,
                          struct err *e)
{
    if (!m)
        return err_set(e, "%s: missing string matcher", what);
    if (m->ignore_case)
        return err_set(e, "%s: ignore_case matchers are not supported", what);
    switch (m->match_pattern_case) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        *kind = DP_MATCH_EXACT;
        *value = m->exact;
        return 0;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        *kind = DP_MATCH_PREFIX;
        *value = m->prefix;
        return 0;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        *kind = DP_MATCH_SUFFIX;
        *value = m->suffix;
        return 0;
    default:
        return err_set(e, "%s: only exact, prefix and suffix matchers are supported", what);
    }
}

/* The string value of filter_metadata[filter][key], or NULL. */
static const char *metadata_get(const Metadata *md, const char *filter, const char *key)
{
    if (!md)
        return NULL;
    for (size_t i = 0; i < md->n_filter_metadata; i++) {
        const Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *fe = md->filter_metadata[i];
        if (!fe->key || strcmp(fe->key, filter) != 0 || !fe->value)
            continue;
        for (size_t j = 0; j < fe->value->n_fields; j++) {
            const Google__Protobuf__Struct__FieldsEntry *f = fe->value->fields[j];
            if (f->key && strcmp(f->key, key) == 0 && f->value &&
                f->value->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
                return f->value->string_value;
        }
    }
    return NULL;
}

/* Whether every envoy.lb key/value of want is in have's envoy.lb. */
static int metadata_subset(const Metadata *want, const Metadata *have)
{
    if (!want)
        return 1;
    for (size_t i = 0; i < want->n_filter_metadata; i++) {
        const Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *fe = want->filter_metadata[i];
        if (!fe->key || strcmp(fe->key, "envoy.lb") != 0 || !fe->value)
            continue;
        for (size_t j = 0; j < fe->value->n_fields; j++) {
            const Google__Protobuf__Struct__FieldsEntry *f = fe->value->fields[j];
            if (!f->value || f->value->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
                return 0;
            const char *v = metadata_get(have, "envoy.lb", f->key);
            if (!v || strcmp(v, f->value->string_value) != 0)
                return 0;
        }
    }
    return 1;
}

/* ---- TLS ----------------------------------------------------------------------------------- */

static const ProtobufCMessage *typed(const Google__Protobuf__Any *any, const char *url,
                                     const ProtobufCMessageDescriptor *d, const char *what,
                                     struct err *e)
{
    if (!any || !any->type_url || strcmp(any->type_url, url) != 0) {
        err_set(e, "%s: expected %s, got %s", what, url,
                any && any->type_url ? any->type_url : "nothing");
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    if (!m)
        err_set(e, "%s: could not decode %s", what, url);
    return m;
}

static int sds_name(const Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *s,
                    char **out, const char *what, struct err *e)
{
    if (!s || !s->name || !*s->name)
        return err_set(e, "%s: SDS secret config without a name", what);
    if (s->sds_config && s->sds_config->config_source_specifier_case !=
                             ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS)
        return err_set(e, "%s: SDS secret %s: only ADS config sources are supported", what,
                       s->name);
    *out = xstrdup(s->name);
    return 0;
}

static int san_matchers(const ValCtx *v, struct dp_common_tls_context *t, const char *what,
                        struct err *e)
{
    if (!v)
        return 0;
    if (v->trusted_ca)
        return err_set(e, "%s: inline trusted_ca is not supported (use SDS)", what);
    for (size_t i = 0; i < v->n_match_typed_subject_alt_names; i++) {
        const Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
            v->match_typed_subject_alt_names[i];
        if (m->san_type !=
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI)
            return err_set(e, "%s: only URI SAN matchers are supported", what);
        enum dp_match_kind k;
        const char *val;
        if (string_matcher(m->matcher, &k, &val, what, e) < 0)
            return -1;
        dp_tls_add_san(t, k, val);
    }
    return 0;
}

static int common_tls(const CommonTls *c, struct dp_common_tls_context *t, const char *what,
                      struct err *e)
{
    if (!c)
        return err_set(e, "%s: TLS context without common_tls_context", what);
    if (c->n_tls_certificate_sds_secret_configs > 1)
        return err_set(e, "%s: several TLS certificates are not supported", what);
    if (c->n_tls_certificate_sds_secret_configs == 1 &&
        sds_name(c->tls_certificate_sds_secret_configs[0], &t->tls_certificate_sds_secret, what,
                 e) < 0)
        return -1;
    switch (c->validation_context_type_case) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG:
        if (sds_name(c->validation_context_sds_secret_config, &t->validation_context_sds_secret,
                     what, e) < 0)
            return -1;
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT:
        if (!c->combined_validation_context)
            break;
        if (c->combined_validation_context->validation_context_sds_secret_config &&
            sds_name(c->combined_validation_context->validation_context_sds_secret_config,
                     &t->validation_context_sds_secret, what, e) < 0)
            return -1;
        if (san_matchers(c->combined_validation_context->default_validation_context, t, what, e) <
            0)
            return -1;
        break;
    default:
        break;
    }
    for (size_t i = 0; i < c->n_alpn_protocols; i++)
        dp_tls_add_alpn(t, c->alpn_protocols[i]);
    return 0;
}

/* A transport socket: NULL any = plaintext. Only envoy.transport_sockets.tls. */
static const Google__Protobuf__Any *tls_socket(const Envoy__Config__Core__V3__TransportSocket *ts,
                                               const char *what, int *plain, struct err *e)
{
    *plain = 0;
    if (!ts) {
        *plain = 1;
        return NULL;
    }
    if (!ts->name ||
        (strcmp(ts->name, "envoy.transport_sockets.tls") != 0 && strcmp(ts->name, "tls") != 0)) {
        err_set(e, "%s: transport socket %s is not supported", what, ts->name ? ts->name : "");
        return NULL;
    }
    if (ts->config_type_case !=
            ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG ||
        !ts->typed_config) {
        err_set(e, "%s: tls transport socket without typed_config", what);
        return NULL;
    }
    return ts->typed_config;
}

/* The DownstreamTlsContext a listener's TLS transport socket carries
 * (tls_socket's typed_config); NULL with e filled when it is another type or
 * malformed. The caller frees it with protobuf_c_message_free_unpacked. */
static const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *
downstream_tls(const Google__Protobuf__Any *tany, const char *what, struct err *e)
{
    return (const void *)typed(
        tany, URL_DOWNSTREAM_TLS,
        &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor, what,
        e);
}

static int upstream_tls(const Cluster *c, struct dp_cluster *out, struct err *e)
{
    int plain;
    char what[300];
    snprintf(what, sizeof(what), "cluster %s", c->name);
    const Google__Protobuf__Any *any = tls_socket(c->transport_socket, what, &plain, e);
    if (plain)
        return 0;
    if (!any)
        return -1;
    const Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u = (const void *)typed(
        any, URL_UPSTREAM_TLS,
        &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor, what, e);
    if (!u)
        return -1;
    out->tls = xcalloc(1, sizeof(*out->tls));
    int rc = common_tls(u->common_tls_context, &out->tls->common_tls_context, what, e);
    if (rc == 0 && u->sni && *u->sni)
        out->tls->sni = xstrdup(u->sni);
    protobuf_c_message_free_unpacked((ProtobufCMessage *)u, NULL);
    return rc;
}

/* ---- build --------------------------------------------------------------------------------- */

struct build {
    struct dp_xds_set *const *sets;
    struct dp_config *cfg;
};

static const Cla *find_cla(const struct build *b, const char *name)
{
    const struct dp_xds_set *s = b->sets[DP_XDS_EDS];
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(((const Cla *)s->msgs[i])->cluster_name, name) == 0)
            return (const Cla *)s->msgs[i];
    return NULL;
}

static const Cluster *find_cluster_pb(const struct build *b, const char *name)
{
    const struct dp_xds_set *s = b->sets[DP_XDS_CDS];
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(((const Cluster *)s->msgs[i])->name, name) == 0)
            return (const Cluster *)s->msgs[i];
    return NULL;
}

static int usable(const Envoy__Config__Endpoint__V3__LbEndpoint *lb)
{
    switch (lb->health_status) {
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY:
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING:
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__TIMEOUT:
        return 0;
    default:
        return 1;
    }
}

/* Visits the usable priority-0 endpoints of a CLA that match `match` (all
 * when match is NULL). Returns -1 with e set on a bad endpoint. */
typedef void endpoint_fn(void *ctx, const char *ip, uint32_t port, uint32_t weight);
static int cla_each(const Cla *a, const Metadata *match, endpoint_fn *fn, void *ctx, size_t *count,
                    struct err *e)
{
    char what[300];
    snprintf(what, sizeof(what), "assignment %s", a->cluster_name);
    *count = 0;
    for (size_t i = 0; i < a->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = a->endpoints[i];
        if (loc->priority != 0)
            continue; /* failover priorities: not modelled (one priority) */
        for (size_t j = 0; j < loc->n_lb_endpoints; j++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *lb = loc->lb_endpoints[j];
            if (lb->host_identifier_case !=
                    ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
                !lb->endpoint)
                return err_set(e, "%s: only inline endpoints are supported", what);
            if (!usable(lb) || !metadata_subset(match, lb->metadata))
                continue;
            const char *ip;
            uint32_t port;
            if (socket_address(lb->endpoint->address, &ip, &port, what, e) < 0)
                return -1;
            uint32_t w = lb->load_balancing_weight ? lb->load_balancing_weight->value : 1;
            if (fn)
                fn(ctx, ip, port, w ? w : 1);
            (*count)++;
        }
    }
    return 0;
}

static void add_endpoint(void *ctx, const char *ip, uint32_t port, uint32_t weight)
{
    dp_cla_add_endpoint(ctx, ip, port, weight);
}

/* A zeroed cluster appended to cfg (dp_config_add_cluster presets names). */
static struct dp_cluster *add_blank_cluster(struct dp_config *cfg)
{
    struct dp_cluster *cl = dp_config_add_cluster(cfg, "");
    free(cl->name);
    free(cl->alt_stat_name);
    free(cl->load_assignment.cluster_name);
    memset(cl, 0, sizeof(*cl));
    return cl;
}

static int map_cluster(struct build *b, const Cluster *c, struct dp_cluster *out, struct err *e)
{
    out->name = xstrdup(c->name);
    out->alt_stat_name =
        xstrdup(c->alt_stat_name && *c->alt_stat_name ? c->alt_stat_name : c->name);
    out->connect_timeout_ms = duration_ms(c->connect_timeout);
    switch (c->lb_policy) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN:
        out->lb_policy = DP_LB_ROUND_ROBIN;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM:
        out->lb_policy = DP_LB_RANDOM;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST:
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH:
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV:
        out->lb_policy = DP_LB_LEAST_REQUEST;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED:
        if (c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST)
            break;
        /* fall through */
    default:
        return err_set(e, "cluster %s: lb_policy %d is not supported", c->name, (int)c->lb_policy);
    }
    if (c->outlier_detection) {
        const Envoy__Config__Cluster__V3__OutlierDetection *o = c->outlier_detection;
        out->outlier_detection = xcalloc(1, sizeof(*out->outlier_detection));
        if (o->consecutive_5xx)
            out->outlier_detection->consecutive_local_origin_failure = o->consecutive_5xx->value;
        out->outlier_detection->base_ejection_time_ms = duration_ms(o->base_ejection_time);
        if (o->max_ejection_percent)
            out->outlier_detection->max_ejection_percent = o->max_ejection_percent->value;
    }
    if (upstream_tls(c, out, e) < 0)
        return -1;
    if (c->upstream_bind_config && c->upstream_bind_config->source_address) {
        const Envoy__Config__Core__V3__SocketAddress *sa = c->upstream_bind_config->source_address;
        if (!sa->address || !is_ip(sa->address))
            return err_set(e, "cluster %s: upstream_bind_config source address %s is not an IP",
                           c->name, sa->address ? sa->address : "");
        out->upstream_bind_address = xstrdup(sa->address);
    }
    out->load_assignment.cluster_name = xstrdup(c->name);
    if (c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST) {
        /* Transparent proxying's passthrough: each connection goes to its
         * original destination (lb_policy CLUSTER_PROVIDED). */
        out->type = DP_CLUSTER_ORIGINAL_DST;
        return 0;
    }
    if (c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC) {
        out->type = DP_CLUSTER_STATIC;
        if (c->load_assignment) {
            size_t n;
            if (cla_each(c->load_assignment, NULL, add_endpoint, &out->load_assignment, &n, e) < 0)
                return -1;
        }
        return 0;
    }
    if (c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
        return err_set(e, "cluster %s: discovery type %d is not supported", c->name, (int)c->type);
    const char *svc = c->eds_cluster_config && c->eds_cluster_config->service_name &&
                              *c->eds_cluster_config->service_name
                          ? c->eds_cluster_config->service_name
                          : c->name;
    if (c->eds_cluster_config && c->eds_cluster_config->eds_config &&
        c->eds_cluster_config->eds_config->config_source_specifier_case !=
            ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS)
        return err_set(e, "cluster %s: only ADS EDS config sources are supported", c->name);
    if (strcmp(svc, c->name) == 0) {
        out->type = DP_CLUSTER_EDS;
        return 0;
    }
    /* Reads another service's assignment: the model finds EDS endpoints by
     * cluster name, so copy them inline. */
    out->type = DP_CLUSTER_STATIC;
    const Cla *a = find_cla(b, svc);
    size_t n;
    if (a && cla_each(a, NULL, add_endpoint, &out->load_assignment, &n, e) < 0)
        return -1;
    return 0;
}

static int map_cla(const Cla *a, struct dp_config *cfg, struct err *e)
{
    struct dp_cluster_load_assignment *out = dp_config_add_assignment(cfg, a->cluster_name);
    size_t n;
    return cla_each(a, NULL, add_endpoint, out, &n, e);
}

static int map_secret(const Secret *s, struct dp_config *cfg, struct err *e)
{
    struct dp_secret *out = dp_config_add_secret(cfg, s->name);
    const Envoy__Config__Core__V3__DataSource *ds[3] = {NULL, NULL, NULL};
    char **dst[3] = {&out->certificate_chain, &out->private_key, &out->trusted_ca};
    if (s->type_case ==
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE &&
        s->tls_certificate) {
        ds[0] = s->tls_certificate->certificate_chain;
        ds[1] = s->tls_certificate->private_key;
        if (!ds[0] || !ds[1])
            return err_set(e, "secret %s: tls_certificate needs a chain and a key", s->name);
    } else if (s->type_case ==
                   ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT &&
               s->validation_context) {
        if (s->validation_context->n_match_typed_subject_alt_names)
            return err_set(e, "secret %s: SAN matchers in a secret are not supported", s->name);
        ds[2] = s->validation_context->trusted_ca;
        if (!ds[2])
            return err_set(e, "secret %s: validation_context without trusted_ca", s->name);
    } else {
        return err_set(e, "secret %s: only tls_certificate and validation_context are supported",
                       s->name);
    }
    for (int i = 0; i < 3; i++) {
        if (!ds[i])
            continue;
        if (ds[i]->specifier_case == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES)
            *dst[i] = xstrndup((const char *)ds[i]->inline_bytes.data, ds[i]->inline_bytes.len);
        else if (ds[i]->specifier_case ==
                 ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING)
            *dst[i] = xstrdup(ds[i]->inline_string);
        else
            return err_set(e, "secret %s: only inline data sources are supported", s->name);
    }
    return 0;
}

/* One principal into out (zeroed): any, authenticated principal_name, or
 * and_ids / or_ids / not_id over those, at most DP_RBAC_MAX_DEPTH deep. */
static int map_principal_tree(const Principal *pr, struct dp_rbac_principal *out, int depth,
                              const char *what, struct err *e)
{
    if (depth > DP_RBAC_MAX_DEPTH)
        return err_set(e, "%s: RBAC principals nested deeper than %d", what, DP_RBAC_MAX_DEPTH);
    const Envoy__Config__Rbac__V3__Principal__Set *set = NULL;
    switch (pr->identifier_case) {
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY:
        if (!pr->any)
            break;
        out->any = 1;
        return 0;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED: {
        enum dp_match_kind k;
        const char *v;
        if (!pr->authenticated)
            break;
        if (string_matcher(pr->authenticated->principal_name, &k, &v, what, e) < 0)
            return -1;
        out->principal_name.kind = k;
        out->principal_name.value = xstrdup(v);
        return 0;
    }
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS:
        out->set = DP_RBAC_AND;
        set = pr->and_ids;
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS:
        out->set = DP_RBAC_OR;
        set = pr->or_ids;
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID:
        if (!pr->not_id)
            break;
        out->set = DP_RBAC_NOT;
        return map_principal_tree(pr->not_id, dp_rbac_set_add(out), depth + 1, what, e);
    default:
        break;
    }
    if (set) {
        if (set->n_ids == 0)
            return err_set(e, "%s: an RBAC principal set needs at least one id", what);
        for (size_t i = 0; i < set->n_ids; i++)
            if (map_principal_tree(set->ids[i], dp_rbac_set_add(out), depth + 1, what, e) < 0)
                return -1;
        return 0;
    }
    return err_set(e,
                   "%s: RBAC principal kind %d is not supported (only any, authenticated "
                   "principal_name and and_ids/or_ids/not_id of them)",
                   what, (int)pr->identifier_case);
}

/* A policy principal into p. A top-level or_ids is flattened (policy
 * principals are OR-ed already) and a one-element and_ids unwrapped, so the
 * common shapes stay flat. */
static int map_principal_at(const Principal *pr, struct dp_rbac_policy *p, int depth,
                            const char *what, struct err *e)
{
    if (depth > DP_RBAC_MAX_DEPTH)
        return err_set(e, "%s: RBAC principals nested deeper than %d", what, DP_RBAC_MAX_DEPTH);
    if (pr->identifier_case == ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS &&
        pr->or_ids && pr->or_ids->n_ids > 0) {
        for (size_t i = 0; i < pr->or_ids->n_ids; i++)
            if (map_principal_at(pr->or_ids->ids[i], p, depth + 1, what, e) < 0)
                return -1;
        return 0;
    }
    if (pr->identifier_case == ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS &&
        pr->and_ids && pr->and_ids->n_ids == 1)
        return map_principal_at(pr->and_ids->ids[0], p, depth + 1, what, e);
    return map_principal_tree(pr, dp_rbac_policy_add_set(p, DP_RBAC_LEAF), depth, what, e);
}

static int map_principal(const Principal *pr, struct dp_rbac_policy *p, const char *what,
                         struct err *e)
{
    return map_principal_at(pr, p, 0, what, e);
}

/* envoy.config.rbac.v3.RBAC rules (network or HTTP filter) into out. */
static int map_rbac_rules(const Envoy__Config__Rbac__V3__RBAC *rules, struct dp_rbac *out,
                          const char *what, struct err *e)
{
    if (rules->action == ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW)
        out->action = DP_RBAC_ALLOW;
    else if (rules->action == ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY)
        out->action = DP_RBAC_DENY;
    else
        return err_set(e, "%s: action LOG is not supported", what);
    for (size_t i = 0; i < rules->n_policies; i++) {
        const Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *pe = rules->policies[i];
        if (!pe->value)
            continue;
        for (size_t j = 0; j < pe->value->n_permissions; j++)
            if (pe->value->permissions[j]->rule_case !=
                    ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY ||
                !pe->value->permissions[j]->any)
                return err_set(e, "%s: policy %s: only `any` permissions are supported", what,
                               pe->key);
        struct dp_rbac_policy *p = dp_rbac_add_policy(out, pe->key);
        for (size_t j = 0; j < pe->value->n_principals; j++)
            if (map_principal(pe->value->principals[j], p, what, e) < 0)
                return -1;
    }
    return 0;
}

static int map_rbac(const Google__Protobuf__Any *any, struct dp_listener *l, struct err *e)
{
    char what[300];
    snprintf(what, sizeof(what), "listener %s: RBAC", l->name);
    const Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *r = (const void *)typed(
        any, URL_NETWORK_RBAC, &envoy__extensions__filters__network__rbac__v3__rbac__descriptor,
        what, e);
    if (!r)
        return -1;
    int rc = -1;
    if (l->rbac) {
        err_set(e, "%s: several RBAC filters are not supported", what);
        goto out;
    }
    l->rbac = xcalloc(1, sizeof(*l->rbac));
    l->rbac->stat_prefix = xstrdup(r->stat_prefix ? r->stat_prefix : "");
    if (!r->rules) {
        /* No rules: the filter allows everything (Envoy). */
        l->rbac->action = DP_RBAC_DENY;
        rc = 0;
        goto out;
    }
    rc = map_rbac_rules(r->rules, l->rbac, what, e);
out:
    protobuf_c_message_free_unpacked((ProtobufCMessage *)r, NULL);
    return rc;
}

struct split_ctx {
    struct dp_cluster_load_assignment *a;
    uint32_t per_endpoint; /* the cluster's share divided by its endpoint weight sum */
    const char *cluster;   /* the real cluster the endpoints are counted under */
};

static void add_split_endpoint(void *ctx, const char *ip, uint32_t port, uint32_t weight)
{
    struct split_ctx *s = ctx;
    uint64_t w = (uint64_t)s->per_endpoint * weight;
    struct dp_lb_endpoint *ep =
        dp_cla_add_endpoint(s->a, ip, port, w > UINT32_MAX ? UINT32_MAX : (w ? (uint32_t)w : 1));
    ep->stat_cluster = xstrdup(s->cluster);
}

struct sum_ctx {
    uint64_t sum;
};
static void sum_weight(void *ctx, const char *ip, uint32_t port, uint32_t weight)
{
    ((struct sum_ctx *)ctx)->sum += weight;
}

/* The endpoints of one weighted cluster: its EDS service (or its inline
 * endpoints), those matching metadata_match; none matching = all (Kuma sets
 * lb_subset_config fallback ANY_ENDPOINT). */
static int weighted_endpoints(struct build *b, const Cluster *c, const Metadata *match,
                              uint32_t share, struct dp_cluster_load_assignment *a, struct err *e)
{
    const Cla *cla = c->load_assignment;
    if (c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS) {
        const char *svc = c->eds_cluster_config && c->eds_cluster_config->service_name &&
                                  *c->eds_cluster_config->service_name
                              ? c->eds_cluster_config->service_name
                              : c->name;
        cla = find_cla(b, svc);
    }
    if (!cla)
        return 0;
    struct sum_ctx sc = {0};
    size_t n;
    if (cla_each(cla, match, sum_weight, &sc, &n, e) < 0)
        return -1;
    if (n == 0) {
        match = NULL;
        if (cla_each(cla, NULL, sum_weight, &sc, &n, e) < 0)
            return -1;
    }
    if (n == 0 || share == 0)
        return 0;
    struct split_ctx s = {a, (uint32_t)(((uint64_t)share * SPLIT_SCALE) / sc.sum), c->name};
    if (s.per_endpoint == 0)
        s.per_endpoint = 1;
    return cla_each(cla, match, add_split_endpoint, &s, &n, e);
}

static uint32_t gcd32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The engine expands weights into a schedule of at most 65536 slots (it
 * falls back to equal weights beyond): reduce by the common divisor, then
 * scale down what is still too large. */
static void normalize_weights(struct dp_cluster_load_assignment *a)
{
    uint32_t g = 0;
    for (size_t i = 0; i < a->n_endpoints; i++)
        g = gcd32(g, a->endpoints[i].load_balancing_weight);
    uint64_t total = 0;
    for (size_t i = 0; g > 1 && i < a->n_endpoints; i++)
        a->endpoints[i].load_balancing_weight /= g;
    for (size_t i = 0; i < a->n_endpoints; i++)
        total += a->endpoints[i].load_balancing_weight;
    if (total <= 65536)
        return;
    for (size_t i = 0; i < a->n_endpoints; i++) {
        uint64_t w = (uint64_t)a->endpoints[i].load_balancing_weight * 60000 / total;
        a->endpoints[i].load_balancing_weight = w ? (uint32_t)w : 1;
    }
}

/* Flattens a split into one synthetic cluster named "<owner>:weighted" and
 * stores the name the listener or route must use in *cluster. */
static int
map_weighted(struct build *b, const char *owner,
             const Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc,
             char **cluster, struct dp_weighted_clusters *sent, struct err *e)
{
    char what[300];
    snprintf(what, sizeof(what), "%s: weighted_clusters", owner);
    if (!wc || wc->n_clusters == 0)
        return err_set(e, "%s: no clusters", what);
    /* /config_dump shows the split as sent. */
    sent->clusters = xcalloc(wc->n_clusters, sizeof(*sent->clusters));
    sent->n = wc->n_clusters;
    for (size_t i = 0; i < wc->n_clusters; i++) {
        sent->clusters[i].name = xstrdup(wc->clusters[i]->name ? wc->clusters[i]->name : "");
        sent->clusters[i].weight = wc->clusters[i]->weight;
    }
    /* One cluster without a subset is just that cluster. */
    if (wc->n_clusters == 1 && !wc->clusters[0]->metadata_match) {
        *cluster = xstrdup(wc->clusters[0]->name);
        return 0;
    }
    const Cluster *first = NULL;
    for (size_t i = 0; i < wc->n_clusters && !first; i++)
        first = find_cluster_pb(b, wc->clusters[i]->name);
    char *name = xasprintf("%s:weighted", owner);
    *cluster = xstrdup(name);
    struct dp_cluster *out = add_blank_cluster(b->cfg);
    if (first) {
        if (map_cluster(b, first, out, e) < 0) {
            free(name);
            return -1;
        }
        /* map_cluster filled the first cluster's endpoints: the split
         * below replaces them. */
        free(out->name);
        free(out->load_assignment.cluster_name);
        for (size_t i = 0; i < out->load_assignment.n_endpoints; i++) {
            free(out->load_assignment.endpoints[i].address.address);
            free(out->load_assignment.endpoints[i].stat_cluster);
        }
        free(out->load_assignment.endpoints);
        memset(&out->load_assignment, 0, sizeof(out->load_assignment));
    }
    out->name = name;
    /* What is counted before a host (and so a real cluster) is picked goes
     * to the first cluster (map_cluster set its stat name). */
    if (!out->alt_stat_name)
        out->alt_stat_name = xstrdup(wc->clusters[0]->name ? wc->clusters[0]->name : "");
    out->synthetic = 1;
    out->type = DP_CLUSTER_STATIC;
    out->load_assignment.cluster_name = xstrdup(name);
    for (size_t i = 0; i < wc->n_clusters; i++) {
        const Cluster *c = find_cluster_pb(b, wc->clusters[i]->name);
        if (!c)
            continue; /* not delivered yet: no endpoints, as Envoy's unknown cluster */
        if (c != first && out->tls) {
            /* Every cluster's identity is acceptable for the flattened one. */
            struct dp_cluster tmp = {0};
            struct err e2;
            if (upstream_tls(c, &tmp, &e2) == 0 && tmp.tls) {
                const struct dp_common_tls_context *t = &tmp.tls->common_tls_context;
                for (size_t k = 0; k < t->n_match_subject_alt_names; k++) {
                    int dup = 0;
                    const struct dp_common_tls_context *o = &out->tls->common_tls_context;
                    for (size_t m = 0; m < o->n_match_subject_alt_names; m++)
                        dup |= o->match_subject_alt_names[m].kind ==
                                   t->match_subject_alt_names[k].kind &&
                               strcmp(o->match_subject_alt_names[m].value,
                                      t->match_subject_alt_names[k].value) == 0;
                    if (!dup)
                        dp_tls_add_san(&out->tls->common_tls_context,
                                       t->match_subject_alt_names[k].kind,
                                       t->match_subject_alt_names[k].value);
                }
            }
            /* tmp's strings are freed through a throwaway config. */
            struct dp_config *junk = dp_config_new("");
            add_blank_cluster(junk)->tls = tmp.tls;
            dp_config_free(junk);
        }
        if (weighted_endpoints(b, c, wc->clusters[i]->metadata_match, wc->clusters[i]->weight,
                               &out->load_assignment, e) < 0)
            return -1;
    }
    normalize_weights(&out->load_assignment);
    return 0;
}

static int map_tcp_proxy(struct build *b, const Google__Protobuf__Any *any, struct dp_listener *l,
                         struct err *e)
{
    char what[300];
    snprintf(what, sizeof(what), "listener %s: tcp_proxy", l->name);
    const TcpProxy *t = (const void *)typed(
        any, URL_TCP_PROXY,
        &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor, what, e);
    if (!t)
        return -1;
    int rc = 0;
    l->tcp_proxy.stat_prefix = xstrdup(t->stat_prefix ? t->stat_prefix : "");
    if (t->idle_timeout) {
        uint32_t ms = duration_ms(t->idle_timeout);
        l->tcp_proxy.idle_timeout_ms = ms ? ms : UINT32_MAX; /* 0s disables it */
    }
    if (t->max_connect_attempts)
        l->tcp_proxy.max_connect_attempts = t->max_connect_attempts->value;
    if (t->cluster_specifier_case ==
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER)
        l->tcp_proxy.cluster = xstrdup(t->cluster);
    else if (
        t->cluster_specifier_case ==
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS)
        rc = map_weighted(b, l->name, t->weighted_clusters, &l->tcp_proxy.cluster,
                          &l->tcp_proxy.weighted, e);
    else
        rc = err_set(e, "%s: no cluster", what);
    protobuf_c_message_free_unpacked((ProtobufCMessage *)t, NULL);
    return rc;
}

/* Inline certificate material of a static TLS context (Kuma's
 * ServerSideStaticMTLS) as a model secret the listener names. */
static int inline_data(const Envoy__Config__Core__V3__DataSource *ds, char **out)
{
    if (!ds)
        return -1;
    if (ds->specifier_case == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES)
        *out = xstrndup((const char *)ds->inline_bytes.data, ds->inline_bytes.len);
    else if (ds->specifier_case == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING)
        *out = xstrdup(ds->inline_string);
    else
        return -1;
    return 0;
}

#define ADMIN_LISTENER  "kuma:envoy:admin"
#define ADMIN_CERT_NAME "kuma:envoy:admin:certificate"
#define ADMIN_CA_NAME   "kuma:envoy:admin:ca"

/*
 * Kuma's admin listener (kuma:envoy:admin, pkg/xds/generator/
 * admin_proxy_generator.go): a tls_inspector, a plaintext chain that only
 * answers /ready and a chain for transport_protocol "tls" whose HCM routes
 * everything to the cluster kuma:envoy:admin (the admin on 127.0.0.1),
 * behind a DownstreamTlsContext with inline certificate, key and CA that
 * requires a client certificate. kuma-dp serves it as one TLS listener
 * that TCP-proxies to that cluster: the admin it reaches serves GET only
 * and /ready itself, so the HCM's routes add nothing. The inline material
 * becomes two model secrets. The plaintext chain is not served (a plaintext
 * client gets a failed handshake). A listener without a TLS chain is
 * skipped.
 */
static int map_admin_listener(struct build *b, const Listener *m, struct err *e)
{
    const char *what = "listener " ADMIN_LISTENER;
    const char *ip;
    uint32_t port;
    if (socket_address(m->address, &ip, &port, what, e) < 0)
        return -1;
    const Envoy__Config__Listener__V3__FilterChain *fc = NULL;
    for (size_t i = 0; i < m->n_filter_chains; i++) {
        const Envoy__Config__Listener__V3__FilterChainMatch *fm =
            m->filter_chains[i]->filter_chain_match;
        if (fm && fm->transport_protocol && strcmp(fm->transport_protocol, "tls") == 0)
            fc = m->filter_chains[i];
    }
    if (!fc) {
        log_info(LOG, "%s: skipped (no TLS filter chain)", what);
        return 0;
    }
    int plain;
    const Google__Protobuf__Any *tany = tls_socket(fc->transport_socket, what, &plain, e);
    if (plain)
        return err_set(e, "%s: the TLS filter chain has no transport socket", what);
    if (!tany)
        return -1;
    const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        downstream_tls(tany, what, e);
    if (!d)
        return -1;
    const CommonTls *c = d->common_tls_context;
    char *chain = NULL, *key = NULL, *ca = NULL;
    int rc = -1;
    if (!c || c->n_tls_certificates != 1 ||
        inline_data(c->tls_certificates[0]->certificate_chain, &chain) < 0 ||
        inline_data(c->tls_certificates[0]->private_key, &key) < 0) {
        err_set(e, "%s: needs one inline TLS certificate and key", what);
        goto out;
    }
    if (c->validation_context_type_case !=
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT ||
        !c->validation_context || inline_data(c->validation_context->trusted_ca, &ca) < 0) {
        err_set(e, "%s: needs an inline trusted_ca", what);
        goto out;
    }
    if (!d->require_client_certificate || !d->require_client_certificate->value) {
        err_set(e, "%s: must require client certificates", what);
        goto out;
    }
    struct dp_secret *sc = dp_config_add_secret(b->cfg, ADMIN_CERT_NAME);
    sc->certificate_chain = chain;
    sc->private_key = key;
    chain = key = NULL;
    struct dp_secret *sv = dp_config_add_secret(b->cfg, ADMIN_CA_NAME);
    sv->trusted_ca = ca;
    ca = NULL;
    struct dp_listener *l = dp_config_add_listener(b->cfg, ADMIN_LISTENER, ip, port);
    l->traffic_direction = DP_DIR_INBOUND;
    l->tls = xcalloc(1, sizeof(*l->tls));
    l->tls->require_client_certificate = 1;
    l->tls->common_tls_context.tls_certificate_sds_secret = xstrdup(ADMIN_CERT_NAME);
    l->tls->common_tls_context.validation_context_sds_secret = xstrdup(ADMIN_CA_NAME);
    l->tcp_proxy.stat_prefix = xstrdup("kuma_envoy_admin");
    l->tcp_proxy.cluster = xstrdup(ADMIN_LISTENER);
    rc = 0;
out:
    free(chain);
    free(key);
    free(ca);
    protobuf_c_message_free_unpacked((ProtobufCMessage *)d, NULL);
    return rc;
}

/* ---- HTTP connection manager ---------------------------------------------------------------- */

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfig;
typedef Envoy__Config__Route__V3__Route Route;

static int http_string_matcher(const Envoy__Type__Matcher__V3__StringMatcher *m,
                               struct dp_http_header_matcher *h, const char *what, struct err *e)
{
    if (!m)
        return err_set(e, "%s: missing string matcher", what);
    h->ignore_case = m->ignore_case;
    const char *v = NULL;
    switch (m->match_pattern_case) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        h->kind = DP_HTTP_MATCH_EXACT;
        v = m->exact;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        h->kind = DP_HTTP_MATCH_PREFIX;
        v = m->prefix;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        h->kind = DP_HTTP_MATCH_SUFFIX;
        v = m->suffix;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
        h->kind = DP_HTTP_MATCH_CONTAINS;
        v = m->contains;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
        h->kind = DP_HTTP_MATCH_REGEX;
        v = m->safe_regex ? m->safe_regex->regex : NULL;
        if (!v)
            return err_set(e, "%s: safe_regex without a regex", what);
        break;
    default:
        return err_set(e, "%s: empty string matcher", what);
    }
    h->value = xstrdup(v ? v : "");
    return 0;
}

static int map_route(struct build *b, const char *owner, const Route *r, struct dp_http_vhost *vh,
                     struct err *e)
{
    char what[520];
    snprintf(what, sizeof(what), "%s route %zu", owner, vh->n_routes);
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE || !r->route)
        return err_set(e, "%s: only route actions are supported (not redirects)", what);
    const Envoy__Config__Route__V3__RouteMatch *m = r->match;
    if (!m)
        return err_set(e, "%s: no match", what);
    enum dp_http_path_kind pk;
    const char *path;
    switch (m->path_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX:
        pk = DP_HTTP_PATH_PREFIX;
        path = m->prefix;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH:
        pk = DP_HTTP_PATH_EXACT;
        path = m->path;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX:
        pk = DP_HTTP_PATH_REGEX;
        path = m->safe_regex ? m->safe_regex->regex : NULL;
        if (!path)
            return err_set(e, "%s: safe_regex without a regex", what);
        break;
    default:
        return err_set(e, "%s: no path specifier", what);
    }
    struct dp_http_route *dr = dp_http_add_route(vh, pk, path ? path : "", NULL);
    dr->name = xstrdup(r->name ? r->name : "");
    for (size_t i = 0; i < m->n_headers; i++) {
        const Envoy__Config__Route__V3__HeaderMatcher *hm = m->headers[i];
        if (!hm->name || !*hm->name)
            return err_set(e, "%s: header matcher without a name", what);
        struct dp_http_header_matcher *h =
            dp_http_route_add_header(dr, hm->name, DP_HTTP_MATCH_PRESENT, NULL);
        h->invert = hm->invert_match;
        if (hm->header_match_specifier_case ==
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH) {
            if (http_string_matcher(hm->string_match, h, what, e) < 0)
                return -1;
        } else if (hm->header_match_specifier_case ==
                   ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH) {
            if (!hm->present_match)
                h->invert = !h->invert; /* present_match: false = must be absent */
        }
        /* No specifier: Envoy matches presence. */
    }
    for (size_t i = 0; i < m->n_query_parameters; i++) {
        const Envoy__Config__Route__V3__QueryParameterMatcher *qm = m->query_parameters[i];
        if (!qm->name || !*qm->name)
            return err_set(e, "%s: query parameter matcher without a name", what);
        struct dp_http_header_matcher *q =
            dp_http_route_add_query(dr, qm->name, DP_HTTP_MATCH_PRESENT, NULL);
        if (qm->query_parameter_match_specifier_case ==
            ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH) {
            if (http_string_matcher(qm->string_match, q, what, e) < 0)
                return -1;
        } else if (
            qm->query_parameter_match_specifier_case ==
                ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_PRESENT_MATCH &&
            !qm->present_match) {
            return err_set(e, "%s: query parameter %s: present_match false is not supported", what,
                           qm->name);
        }
    }
    const Envoy__Config__Route__V3__RouteAction *ra = r->route;
    /* What would change the request the upstream sees is refused (the
     * engine forwards heads as they are, apart from the header edits of
     * docs/proxy.md); header edits per route are ignored with a log line. */
    if ((ra->prefix_rewrite && *ra->prefix_rewrite) || ra->regex_rewrite ||
        ra->host_rewrite_specifier_case !=
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER__NOT_SET)
        return err_set(e, "%s: path and host rewrites are not supported", what);
    if (r->n_request_headers_to_add || r->n_request_headers_to_remove ||
        r->n_response_headers_to_add || r->n_response_headers_to_remove)
        log_info(LOG, "%s: per-route header changes are ignored", what);
    if (ra->n_request_mirror_policies)
        log_info(LOG, "%s: request mirroring is ignored", what);
    switch (ra->cluster_not_found_response_code) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__NOT_FOUND:
        dr->cluster_not_found_status = 404;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__INTERNAL_SERVER_ERROR:
        dr->cluster_not_found_status = 500;
        break;
    default:
        dr->cluster_not_found_status = 503;
    }
    if (ra->cluster_specifier_case ==
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER) {
        dr->cluster = xstrdup(ra->cluster ? ra->cluster : "");
    } else if (ra->cluster_specifier_case ==
               ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
        /* The route's split has the tcp_proxy split's shape: reuse its
         * flattening (weight unset counts as 0, as Envoy's). */
        const Envoy__Config__Route__V3__WeightedCluster *wc = ra->weighted_clusters;
        size_t n = wc ? wc->n_clusters : 0;
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster tw =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__WEIGHTED_CLUSTER__INIT;
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight
            *cws = xcalloc(n ? n : 1, sizeof(*cws));
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight
            **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
            cws[i].name = wc->clusters[i]->name ? wc->clusters[i]->name : "";
            cws[i].weight = wc->clusters[i]->weight ? wc->clusters[i]->weight->value : 0;
            cws[i].metadata_match = wc->clusters[i]->metadata_match;
            ptrs[i] = &cws[i];
        }
        tw.n_clusters = n;
        tw.clusters = ptrs;
        char owner2[520];
        snprintf(owner2, sizeof(owner2), "%s:%zu", owner, vh->n_routes - 1);
        int rc = map_weighted(b, owner2, &tw, &dr->cluster, &dr->weighted, e);
        free(cws);
        free(ptrs);
        if (rc < 0)
            return -1;
    } else {
        return err_set(e, "%s: only cluster and weighted_clusters are supported", what);
    }
    if (ra->timeout) {
        uint32_t ms = duration_ms(ra->timeout);
        dr->timeout_ms = ms ? ms : UINT32_MAX; /* 0s disables it */
    }
    if (ra->retry_policy) {
        dr->retry_on = xstrdup(ra->retry_policy->retry_on ? ra->retry_policy->retry_on : "");
        dr->num_retries = ra->retry_policy->num_retries ? ra->retry_policy->num_retries->value : 1;
    }
    return 0;
}

static int map_route_config(struct build *b, const char *lname, const RouteConfig *rc,
                            struct dp_http_route_config *out, struct err *e)
{
    out->name = xstrdup(rc->name ? rc->name : "");
    if (rc->n_request_headers_to_add)
        log_debug(LOG, "listener %s: request_headers_to_add ignored", lname);
    for (size_t i = 0; i < rc->n_request_headers_to_remove; i++) {
        out->request_headers_to_remove =
            xrealloc(out->request_headers_to_remove,
                     (out->n_request_headers_to_remove + 1) * sizeof(char *));
        char *h = xstrdup(rc->request_headers_to_remove[i]);
        for (char *p = h; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        out->request_headers_to_remove[out->n_request_headers_to_remove++] = h;
    }
    for (size_t i = 0; i < rc->n_virtual_hosts; i++) {
        const Envoy__Config__Route__V3__VirtualHost *v = rc->virtual_hosts[i];
        struct dp_http_vhost *vh = dp_http_add_vhost(out, v->name);
        if (v->n_domains == 0)
            return err_set(e, "listener %s: virtual host %s without domains", lname,
                           v->name ? v->name : "");
        for (size_t j = 0; j < v->n_domains; j++)
            dp_http_vhost_add_domain(vh, v->domains[j] ? v->domains[j] : "");
        char owner[400];
        snprintf(owner, sizeof(owner), "%s:%s", lname, v->name ? v->name : "");
        for (size_t j = 0; j < v->n_routes; j++)
            if (map_route(b, owner, v->routes[j], vh, e) < 0)
                return -1;
    }
    return 0;
}

/* envoy.filters.http.rbac: `rules` enforced per request (absent = no
 * enforcement, as Envoy); shadow rules only log in Envoy, ignored here. */
static int map_http_rbac(const Google__Protobuf__Any *any, struct dp_http_conn_manager *m,
                         const char *what0, struct err *e)
{
    char what[400];
    snprintf(what, sizeof(what), "%s: HTTP RBAC", what0);
    const Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *r = (const void *)typed(
        any, URL_HTTP_RBAC, &envoy__extensions__filters__http__rbac__v3__rbac__descriptor, what, e);
    if (!r)
        return -1;
    int rc = 0;
    if (m->rbac) {
        rc = err_set(e, "%s: several RBAC filters are not supported", what);
    } else if (r->rules) {
        m->rbac = xcalloc(1, sizeof(*m->rbac));
        m->rbac->stat_prefix = xasprintf("http.%s.", m->stat_prefix ? m->stat_prefix : "");
        rc = map_rbac_rules(r->rules, m->rbac, what, e);
    }
    protobuf_c_message_free_unpacked((ProtobufCMessage *)r, NULL);
    return rc;
}

static int map_hcm(struct build *b, const Google__Protobuf__Any *any, struct dp_listener *l,
                   struct err *e)
{
    char what[300];
    snprintf(what, sizeof(what), "listener %s: http_connection_manager", l->name);
    const Hcm *h = (const void *)typed(
        any, URL_HCM,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
        what, e);
    if (!h)
        return -1;
    int rc = -1;
    l->hcm = xcalloc(1, sizeof(*l->hcm));
    l->hcm->stat_prefix = xstrdup(h->stat_prefix ? h->stat_prefix : "");
    if (h->codec_type ==
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP2 ||
        h->codec_type ==
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP3) {
        err_set(e, "%s: only HTTP/1.1 is supported", what);
        goto out;
    }
    int router = 0;
    for (size_t i = 0; i < h->n_http_filters; i++) {
        const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *f =
            h->http_filters[i];
        const char *url =
            f->config_type_case ==
                        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG &&
                    f->typed_config && f->typed_config->type_url
                ? f->typed_config->type_url
                : "";
        const char *fname = f->name ? f->name : "";
        if (strcmp(url, URL_ROUTER) == 0 || strcmp(fname, "envoy.filters.http.router") == 0) {
            router = 1;
            if (i + 1 != h->n_http_filters) {
                err_set(e, "%s: the router must be the last HTTP filter", what);
                goto out;
            }
        } else if (strcmp(url, URL_HTTP_RBAC) == 0) {
            if (map_http_rbac(f->typed_config, l->hcm, what, e) < 0)
                goto out;
        } else if (f->is_optional) {
            log_info(LOG, "%s: optional HTTP filter %s ignored", what, fname);
        } else {
            err_set(e, "%s: HTTP filter %s (%s) is not supported", what, fname, url);
            goto out;
        }
    }
    if (!router) {
        err_set(e, "%s: no envoy.filters.http.router filter", what);
        goto out;
    }
    if (h->route_specifier_case !=
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG ||
        !h->route_config) {
        err_set(e, "%s: only an inline route_config is supported (RDS is not)", what);
        goto out;
    }
    if (h->stream_idle_timeout) {
        uint32_t ms = duration_ms(h->stream_idle_timeout);
        l->hcm->stream_idle_timeout_ms = ms ? ms : UINT32_MAX;
    }
    if (h->common_http_protocol_options && h->common_http_protocol_options->idle_timeout) {
        uint32_t ms = duration_ms(h->common_http_protocol_options->idle_timeout);
        l->hcm->idle_timeout_ms = ms ? ms : UINT32_MAX;
    }
    rc = map_route_config(b, l->name, h->route_config, &l->hcm->route_config, e);
out:
    protobuf_c_message_free_unpacked((ProtobufCMessage *)h, NULL);
    return rc;
}

static int map_listener(struct build *b, const Listener *m, struct err *e);

/* A chain of a PERMISSIVE listener that is proxied as it is: no transport
 * socket, only a tcp_proxy to one cluster (0, *out set), or only an HTTP
 * connection manager (1, left to the caller). */
static int plain_chain_proxy(const Envoy__Config__Listener__V3__FilterChain *fc,
                             struct dp_tcp_proxy **out, const char *what, struct err *e)
{
    if (fc->transport_socket)
        return err_set(e,
                       "%s: a transport socket on a plaintext or TLS-passthrough filter chain "
                       "is not supported",
                       what);
    if (fc->n_filters == 1 && fc->filters[0]->typed_config &&
        fc->filters[0]->typed_config->type_url &&
        strcmp(fc->filters[0]->typed_config->type_url, URL_HCM) == 0)
        return 1; /* an HTTP chain: the caller decides */
    if (fc->n_filters != 1 || !fc->filters[0]->typed_config ||
        !fc->filters[0]->typed_config->type_url ||
        strcmp(fc->filters[0]->typed_config->type_url, URL_TCP_PROXY) != 0)
        return err_set(e,
                       "%s: a plaintext or TLS-passthrough filter chain must hold one tcp_proxy "
                       "(RBAC and HTTP there are not supported)",
                       what);
    const TcpProxy *t = (const void *)typed(
        fc->filters[0]->typed_config, URL_TCP_PROXY,
        &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor, what, e);
    if (!t)
        return -1;
    int rc = 0;
    if (t->cluster_specifier_case !=
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER) {
        rc = err_set(e, "%s: the plaintext filter chain's tcp_proxy needs one cluster", what);
    } else {
        *out = xcalloc(1, sizeof(**out));
        (*out)->stat_prefix = xstrdup(t->stat_prefix ? t->stat_prefix : "");
        (*out)->cluster = xstrdup(t->cluster);
    }
    protobuf_c_message_free_unpacked((ProtobufCMessage *)t, NULL);
    return rc;
}

static int is_tls_inspector(const Envoy__Config__Listener__V3__ListenerFilter *f)
{
    return (f->name && strcmp(f->name, "envoy.filters.listener.tls_inspector") == 0) ||
           (f->typed_config && f->typed_config->type_url &&
            strcmp(f->typed_config->type_url, TYPE_PREFIX
                   "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector") == 0);
}

/*
 * Kuma's PERMISSIVE inbound (pkg/xds/generator/inbound_proxy_generator.go):
 * a tls_inspector and chains matched on transport_protocol "raw_buffer",
 * "tls", and "tls" + application_protocols [kuma]. The last is mapped as an
 * ordinary listener; the other two become the listener's raw_tcp_proxy and
 * tls_tcp_proxy, which the engine takes after peeking at the first bytes
 * (dp/sniff.h). Any other shape of several chains is refused.
 */
static int map_inspected_listener(struct build *b, const Listener *m, struct err *e)
{
    char what[300];
    snprintf(what, sizeof(what), "listener %s", m->name);
    int inspector = 0;
    for (size_t i = 0; i < m->n_listener_filters; i++)
        inspector |= is_tls_inspector(m->listener_filters[i]);
    if (!inspector)
        return err_set(e, "%s: several filter chains are supported only behind a tls_inspector",
                       what);
    const Envoy__Config__Listener__V3__FilterChain *kuma = NULL, *raw = NULL, *tls = NULL;
    for (size_t i = 0; i < m->n_filter_chains; i++) {
        const Envoy__Config__Listener__V3__FilterChain *fc = m->filter_chains[i];
        const Envoy__Config__Listener__V3__FilterChainMatch *fm = fc->filter_chain_match;
        const char *tp = fm && fm->transport_protocol ? fm->transport_protocol : "";
        int alpn_kuma = fm && fm->n_application_protocols == 1 &&
                        strcmp(fm->application_protocols[0], "kuma") == 0;
        const Envoy__Config__Listener__V3__FilterChain **slot = NULL;
        if (fm && fm->n_server_names == 0) {
            if (strcmp(tp, "tls") == 0 && alpn_kuma)
                slot = &kuma;
            else if (strcmp(tp, "tls") == 0 && fm->n_application_protocols == 0)
                slot = &tls;
            else if (strcmp(tp, "raw_buffer") == 0 && fm->n_application_protocols == 0)
                slot = &raw;
        }
        if (!slot)
            return err_set(e,
                           "%s: filter chain %zu: only Kuma's PERMISSIVE matches (raw_buffer, tls, "
                           "tls + ALPN kuma) are supported",
                           what, i);
        if (*slot)
            return err_set(e, "%s: two filter chains with the same match", what);
        *slot = fc;
    }
    if (!kuma)
        return err_set(e, "%s: no filter chain for tls + ALPN kuma", what);
    Listener one = *m;
    Envoy__Config__Listener__V3__FilterChain *only = (void *)kuma;
    one.n_filter_chains = 1;
    one.filter_chains = &only;
    one.n_listener_filters = 0;
    size_t before = b->cfg->n_listeners;
    if (map_listener(b, &one, e) < 0)
        return -1;
    if (b->cfg->n_listeners != before + 1)
        return 0; /* skipped (transparent proxying) */
    struct dp_listener *l = &b->cfg->listeners[before];
    if (!l->tls)
        return err_set(e, "%s: the tls + ALPN kuma filter chain has no TLS context", what);
    l->inspect = 1;
    int rc;
    if (raw && (rc = plain_chain_proxy(raw, &l->raw_tcp_proxy, what, e)) != 0) {
        if (rc < 0)
            return -1;
        /* Kuma's plaintext chain of an HTTP inbound: its filters, that is
         * the same HCM as the mTLS chain's, served without TLS. */
        if (!l->hcm)
            return err_set(e, "%s: an HTTP plaintext chain needs an HTTP mTLS chain", what);
        l->raw_http = 1;
    }
    if (tls && (rc = plain_chain_proxy(tls, &l->tls_tcp_proxy, what, e)) != 0) {
        if (rc < 0)
            return -1;
        /* HTTP over TLS the proxy does not terminate cannot be parsed (Envoy
         * answers such bytes 400): those connections are closed. */
        log_info(LOG, "%s: TLS-passthrough chain with HTTP: such connections are closed", what);
    }
    return 0;
}

static int map_listener(struct build *b, const Listener *m, struct err *e)
{
    const char *name = m->name;
    if (name && strcmp(name, ADMIN_LISTENER) == 0)
        return map_admin_listener(b, m, e);
    if (m->n_filter_chains > 1)
        return map_inspected_listener(b, m, e);
    if (m->api_listener)
        return err_set(e, "listener %s: API listeners are not supported", name);
    const char *ip;
    uint32_t port;
    char what[300];
    snprintf(what, sizeof(what), "listener %s", name);
    if (socket_address(m->address, &ip, &port, what, e) < 0)
        return -1;
    if (m->n_filter_chains != 1)
        return err_set(e, "listener %s: exactly one filter chain is supported (got %zu)", name,
                       m->n_filter_chains);
    const Envoy__Config__Listener__V3__FilterChain *fc = m->filter_chains[0];
    struct dp_listener *l = dp_config_add_listener(b->cfg, name, ip, port);
    /* Transparent proxying: see dp/tproxy.h. */
    l->no_bind = m->bind_to_port && !m->bind_to_port->value;
    l->use_original_dst = m->use_original_dst && m->use_original_dst->value;
    switch (m->traffic_direction) {
    case ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND:
        l->traffic_direction = DP_DIR_INBOUND;
        break;
    case ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND:
        l->traffic_direction = DP_DIR_OUTBOUND;
        break;
    default:
        l->traffic_direction = DP_DIR_UNSPECIFIED;
    }
    int plain;
    const Google__Protobuf__Any *tany = tls_socket(fc->transport_socket, what, &plain, e);
    if (!plain) {
        if (!tany)
            return -1;
        const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
            downstream_tls(tany, what, e);
        if (!d)
            return -1;
        l->tls = xcalloc(1, sizeof(*l->tls));
        l->tls->require_client_certificate =
            d->require_client_certificate && d->require_client_certificate->value;
        int rc = common_tls(d->common_tls_context, &l->tls->common_tls_context, what, e);
        protobuf_c_message_free_unpacked((ProtobufCMessage *)d, NULL);
        if (rc < 0)
            return -1;
    }
    int have_proxy = 0;
    for (size_t i = 0; i < fc->n_filters; i++) {
        const Envoy__Config__Listener__V3__Filter *f = fc->filters[i];
        const char *fname = f->name ? f->name : "";
        if (have_proxy)
            return err_set(e, "listener %s: filter %s after %s", name, fname,
                           l->hcm ? "http_connection_manager" : "tcp_proxy");
        if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
            !f->typed_config)
            return err_set(e, "listener %s: filter %s without typed_config", name, fname);
        const char *url = f->typed_config->type_url ? f->typed_config->type_url : "";
        if (strcmp(url, URL_NETWORK_RBAC) == 0) {
            if (map_rbac(f->typed_config, l, e) < 0)
                return -1;
        } else if (strcmp(url, URL_TCP_PROXY) == 0) {
            if (map_tcp_proxy(b, f->typed_config, l, e) < 0)
                return -1;
            have_proxy = 1;
        } else if (strcmp(url, URL_HCM) == 0) {
            if (map_hcm(b, f->typed_config, l, e) < 0)
                return -1;
            have_proxy = 1;
        } else {
            return err_set(e, "listener %s: filter %s (%s) is not supported", name, fname, url);
        }
    }
    if (!have_proxy)
        return err_set(e, "listener %s: no tcp_proxy or http_connection_manager filter", name);
    return 0;
}

static int missing(const struct dp_config *cfg, const char *secret)
{
    return secret && !dp_config_find_secret(cfg, secret);
}

int dp_xds_build(struct dp_xds_set *const sets[DP_XDS_NTYPES], struct dp_config **out,
                 int *missing_secret, struct err *e)
{
    char version[512];
    snprintf(version, sizeof(version), "cds=%s eds=%s lds=%s sds=%s",
             dp_xds_set_version(sets[DP_XDS_CDS]), dp_xds_set_version(sets[DP_XDS_EDS]),
             dp_xds_set_version(sets[DP_XDS_LDS]), dp_xds_set_version(sets[DP_XDS_SDS]));
    struct build b = {sets, dp_config_new(version)};
    const struct dp_xds_set *s;
    if ((s = sets[DP_XDS_SDS]))
        for (size_t i = 0; i < s->n; i++)
            if (map_secret((const Secret *)s->msgs[i], b.cfg, e) < 0)
                goto fail;
    if ((s = sets[DP_XDS_EDS]))
        for (size_t i = 0; i < s->n; i++)
            if (map_cla((const Cla *)s->msgs[i], b.cfg, e) < 0)
                goto fail;
    if ((s = sets[DP_XDS_CDS]))
        for (size_t i = 0; i < s->n; i++) {
            const Cluster *c = (const Cluster *)s->msgs[i];
            if (map_cluster(&b, c, add_blank_cluster(b.cfg), e) < 0)
                goto fail;
        }
    if ((s = sets[DP_XDS_LDS]))
        for (size_t i = 0; i < s->n; i++)
            if (map_listener(&b, (const Listener *)s->msgs[i], e) < 0)
                goto fail;
    *missing_secret = 0;
    for (size_t i = 0; i < b.cfg->n_clusters; i++) {
        const struct dp_upstream_tls_context *t = b.cfg->clusters[i].tls;
        if (t && (missing(b.cfg, t->common_tls_context.tls_certificate_sds_secret) ||
                  missing(b.cfg, t->common_tls_context.validation_context_sds_secret)))
            *missing_secret = 1;
    }
    for (size_t i = 0; i < b.cfg->n_listeners; i++) {
        const struct dp_downstream_tls_context *t = b.cfg->listeners[i].tls;
        if (t && (missing(b.cfg, t->common_tls_context.tls_certificate_sds_secret) ||
                  missing(b.cfg, t->common_tls_context.validation_context_sds_secret)))
            *missing_secret = 1;
    }
    *out = b.cfg;
    return 0;
fail:
    dp_config_free(b.cfg);
    return -1;
}
