/*
 * http_rbac — permissions on HTTP inbounds as Kuma generates them: a
 * MeshTrafficPermission (and the deny-all of a mesh without legacy
 * TrafficPermissions) becomes an `envoy.filters.http.rbac` filter, first of
 * the inbound HTTP connection manager's filters, instead of the network
 * RBAC filter; a legacy TrafficPermission keeps the network RBAC filter.
 */
#ifndef XDS_HTTP_RBAC_H
#define XDS_HTTP_RBAC_H

#include "xds/pb.h"
#include "xds/snapshot.h"

/* For the HTTP inbound `in` of dp (mTLS mesh): when Kuma uses the HTTP RBAC
 * filter, prepends it to hcm's HTTP filters (messages in arena a) and
 * returns 1; returns 0 when the network RBAC filter applies instead (the
 * caller adds it). */
int xds_inbound_http_rbac(
    struct pb_arena *a, const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
    const struct xds_inbound *in,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm);

#endif
