/*
 * xds/admin — see admin.h.
 */
#include "xds/admin.h"

#include <stdlib.h>
#include <string.h>

#include "xds/names.h"
#include "xds/pb.h"
#include "xds/permissive.h"

/* Kuma's StaticEndpoints: an HCM whose inline route configuration sends
 * each path prefix to its cluster. */
static Envoy__Config__Listener__V3__FilterChain *static_endpoints_chain(struct pb_arena *a,
                                                                        int with_admin)
{
    size_t n = with_admin ? 2 : 1;
    Envoy__Config__Route__V3__Route **routes = pb_alloc(a, n * sizeof(*routes));
    routes[0] = pb_prefix_route(a, "/ready", XDS_ADMIN_READINESS_NAME);
    if (with_admin)
        routes[1] = pb_prefix_route(a, "/", XDS_ADMIN_NAME);
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        pb_route_config(a, NULL, pb_virtual_host(a, XDS_ADMIN_NAME, routes, n));
    return pb_filter_chain(a, pb_hcm_filter(a, pb_hcm(a, "kuma_envoy_admin", rc)));
}

/* Kuma's ServerSideStaticMTLS: inline certificate and key, the admin CA as
 * trusted_ca, client certificates required. */
static Envoy__Config__Core__V3__TransportSocket *static_mtls(struct pb_arena *a,
                                                             const struct xds_gen_opts *o)
{
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT);
    tc->certificate_chain = pb_inline_bytes(a, o->admin_cert_pem, strlen(o->admin_cert_pem));
    tc->private_key = pb_inline_bytes(a, o->admin_key_pem, strlen(o->admin_key_pem));
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT);
    vc->trusted_ca = pb_inline_bytes(a, o->admin_ca_pem, strlen(o->admin_ca_pem));
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *c =
        PB_NEW(a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
               ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT);
    c->n_tls_certificates = 1;
    c->tls_certificates = pb_alloc(a, sizeof(*c->tls_certificates));
    c->tls_certificates[0] = tc;
    c->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
    c->validation_context = vc;
    return pb_downstream_tls_socket(a, c, 1);
}

static int loopback(const char *ip)
{
    return strcmp(ip, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0;
}

void xds_admin_resources(const struct xds_dataplane *dp, const struct xds_gen_opts *o,
                         xds_admin_emit_fn *emit, void *ctx)
{
    if (!o || o->proxyless || !o->admin_port || o->admin_port > 65535)
        return;
    struct pb_arena a = {0};
    Envoy__Config__Cluster__V3__Cluster *admin =
        pb_static_cluster(&a, XDS_ADMIN_NAME, "127.0.0.1", o->admin_port);
    emit(ctx, XDS_CDS, XDS_ADMIN_NAME, &admin->base);
    Envoy__Config__Cluster__V3__Cluster *ready =
        pb_static_cluster(&a, XDS_ADMIN_READINESS_NAME, "127.0.0.1", o->admin_port);
    emit(ctx, XDS_CDS, XDS_ADMIN_READINESS_NAME, &ready->base);
    if (dp->address && !loopback(dp->address) && o->admin_cert_pem && o->admin_key_pem &&
        o->admin_ca_pem) {
        Envoy__Config__Listener__V3__ListenerFilter *lf = xds_tls_inspector(&a);

        Envoy__Config__Listener__V3__FilterChain *plain = static_endpoints_chain(&a, 0);
        Envoy__Config__Listener__V3__FilterChain *tls = static_endpoints_chain(&a, 1);
        tls->filter_chain_match = PB_NEW(&a, Envoy__Config__Listener__V3__FilterChainMatch,
                                         ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__INIT);
        tls->filter_chain_match->transport_protocol = pb_strdup(&a, "tls");
        tls->transport_socket = static_mtls(&a, o);

        Envoy__Config__Listener__V3__Listener *l = PB_NEW(
            &a, Envoy__Config__Listener__V3__Listener, ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT);
        l->name = pb_strdup(&a, XDS_ADMIN_NAME);
        l->address = pb_address(&a, dp->address, o->admin_port);
        l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND;
        l->n_listener_filters = 1;
        l->listener_filters = pb_alloc(&a, sizeof(*l->listener_filters));
        l->listener_filters[0] = lf;
        l->n_filter_chains = 2;
        l->filter_chains = pb_alloc(&a, 2 * sizeof(*l->filter_chains));
        l->filter_chains[0] = plain;
        l->filter_chains[1] = tls;
        emit(ctx, XDS_LDS, XDS_ADMIN_NAME, &l->base);
    }
    pb_arena_free(&a);
}
