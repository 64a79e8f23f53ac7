/*
 * xds/permissive — see permissive.h.
 */
#include "xds/permissive.h"

#include <string.h>

#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"

Envoy__Config__Listener__V3__ListenerFilter *xds_tls_inspector(struct pb_arena *a)
{
    Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector *ti =
        PB_NEW(a, Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector,
               ENVOY__EXTENSIONS__FILTERS__LISTENER__TLS_INSPECTOR__V3__TLS_INSPECTOR__INIT);
    Envoy__Config__Listener__V3__ListenerFilter *lf =
        PB_NEW(a, Envoy__Config__Listener__V3__ListenerFilter,
               ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__INIT);
    lf->name = pb_strdup(a, "envoy.filters.listener.tls_inspector");
    lf->config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    lf->typed_config = pb_any(a, XDS_URL_TLS_INSPECTOR, &ti->base);
    return lf;
}

static Envoy__Config__Listener__V3__FilterChainMatch *
chain_match(struct pb_arena *a, const char *transport, const char *alpn)
{
    Envoy__Config__Listener__V3__FilterChainMatch *m =
        PB_NEW(a, Envoy__Config__Listener__V3__FilterChainMatch,
               ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__INIT);
    m->transport_protocol = pb_strdup(a, transport);
    if (alpn) {
        m->n_application_protocols = 1;
        m->application_protocols = pb_alloc(a, sizeof(char *));
        m->application_protocols[0] = pb_strdup(a, alpn);
    }
    return m;
}

/* The mTLS chain's filters without the network RBAC filter (and with
 * plain_hcm for the HTTP connection manager when given), no TLS. */
static Envoy__Config__Listener__V3__FilterChain *
plain_chain(struct pb_arena *a, const Envoy__Config__Listener__V3__FilterChain *tls,
            const char *transport, Envoy__Config__Listener__V3__Filter *plain_hcm)
{
    Envoy__Config__Listener__V3__FilterChain *fc =
        PB_NEW(a, Envoy__Config__Listener__V3__FilterChain,
               ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN__INIT);
    fc->filters = pb_alloc(a, (tls->n_filters ? tls->n_filters : 1) * sizeof(*fc->filters));
    for (size_t i = 0; i < tls->n_filters; i++) {
        const char *name = tls->filters[i]->name ? tls->filters[i]->name : "";
        if (strcmp(name, "envoy.filters.network.rbac") == 0)
            continue;
        if (plain_hcm && strcmp(name, "envoy.filters.network.http_connection_manager") == 0)
            fc->filters[fc->n_filters++] = plain_hcm;
        else
            fc->filters[fc->n_filters++] = tls->filters[i];
    }
    fc->filter_chain_match = chain_match(a, transport, NULL);
    return fc;
}

void xds_permissive_inbound(struct pb_arena *a, Envoy__Config__Listener__V3__Listener *l,
                            Envoy__Config__Listener__V3__Filter *plain_hcm)
{
    if (l->n_filter_chains != 1)
        return;
    Envoy__Config__Listener__V3__FilterChain *tls = l->filter_chains[0];
    tls->filter_chain_match = chain_match(a, "tls", "kuma");
    Envoy__Config__Listener__V3__FilterChain **v = pb_alloc(a, 3 * sizeof(*v));
    v[0] = plain_chain(a, tls, "raw_buffer", plain_hcm);
    v[1] = plain_chain(a, tls, "tls", plain_hcm);
    v[2] = tls;
    l->filter_chains = v;
    l->n_filter_chains = 3;
    Envoy__Config__Listener__V3__ListenerFilter **lf = pb_alloc(a, sizeof(*lf));
    lf[0] = xds_tls_inspector(a);
    l->listener_filters = lf;
    l->n_listener_filters = 1;
}
