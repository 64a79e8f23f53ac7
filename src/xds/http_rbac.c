/*
 * http_rbac — see http_rbac.h. Kuma's MeshTrafficPermission plugin puts the
 * rules it computes for an inbound into an HTTP RBAC filter when the
 * inbound's listener has an HTTP connection manager (golden
 * pkg/plugins/policies/meshtrafficpermission/plugin/v1alpha1/testdata/
 * apply.golden.yaml: `rules.policies.MeshTrafficPermission`, or `rules: {}`
 * for nobody); the legacy TrafficPermission generator always uses the
 * network filter.
 */
#include "xds/http_rbac.h"

#include <string.h>

#include "xds/policies.h"

#define XDS_URL_HTTP_RBAC XDS_TYPE_PREFIX "envoy.extensions.filters.http.rbac.v3.RBAC"

int xds_inbound_http_rbac(
    struct pb_arena *a, const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
    const struct xds_inbound *in,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm)
{
    const char *origin = "none";
    Envoy__Config__Rbac__V3__RBAC *rules = xds_inbound_rbac(a, snap, dp, in, &origin);
    if (strcmp(origin, "TrafficPermission") == 0 ||
        (strcmp(origin, "none") == 0 && snap->has_traffic_permissions))
        return 0; /* the legacy generator's network RBAC */
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rb =
        PB_NEW(a, Envoy__Extensions__Filters__Http__Rbac__V3__RBAC,
               ENVOY__EXTENSIONS__FILTERS__HTTP__RBAC__V3__RBAC__INIT);
    rb->rules = rules;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter **v =
        pb_alloc(a, (hcm->n_http_filters + 1) * sizeof(*v));
    v[0] = pb_http_filter(a, "envoy.filters.http.rbac", XDS_URL_HTTP_RBAC, &rb->base);
    if (hcm->n_http_filters)
        memcpy(v + 1, hcm->http_filters, hcm->n_http_filters * sizeof(*v));
    hcm->http_filters = v;
    hcm->n_http_filters++;
    return 1;
}
