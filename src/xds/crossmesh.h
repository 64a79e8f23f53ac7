/*
 * crossmesh — the client side of cross-mesh gateways.
 *
 * A MeshGateway listener with `crossMesh: true` (in an mTLS mesh A) accepts
 * the proxies of every other mesh. Kuma gives those proxies a VIP outbound;
 * without VIPs (universal, no DNS) a dataplane of mesh B declares it:
 *
 *     outbound:
 *     - port: 10001
 *       tags: {kuma.io/service: edge-gateway, kuma.io/mesh: A}
 *
 * For such an outbound the generator emits a listener `outbound:<ip>:<port>`
 * proxying to the cluster Kuma names `<service>-<16 hex>_<mesh>` (tags hashed
 * as Kuma's DestinationClusterName, then the mesh), whose endpoints are the
 * addresses of A's builtin gateway dataplanes at their crossMesh listener
 * ports, and, when both meshes have mTLS, Kuma's CrossMeshClientSideMTLS:
 * the proxy's own identity_cert:secret:<B>, A's CA as mesh_ca:secret:<A>
 * (delivered by SDS), SAN spiffe://<A>/<service>, ALPN kuma, SNI
 * `<service>{mesh=<A>,...}`.
 *
 * Isolation: a snapshot of B holds, of another mesh, only what cross-mesh
 * outbounds of B's dataplanes name (that mesh's CA certificate and its
 * crossMesh gateway endpoints); the generator gives them only to the proxy
 * that declares the outbound. Nothing else of A ever reaches B.
 */
#ifndef XDS_CROSSMESH_H
#define XDS_CROSSMESH_H

#include <stddef.h>
#include <stdint.h>

#include "core/resource.h"
#include "core/util.h"
#include "store/store.h"
#include "xds/snapshot.h"

/* What a snapshot needs of one other mesh, as resources in memory. */
struct xds_cross_input {
    const char *mesh_name;
    const struct resource *mesh; /* NULL: the mesh does not exist */
    const char *ca_cert_pem;     /* its enabled backend's CA certificate, or NULL */
    struct resource *const *dataplanes;
    size_t n_dataplanes;
    struct resource *const *gateways; /* its MeshGateways */
    size_t n_gateways;
};

/* The other meshes s's dataplanes name in cross-mesh outbounds: sorted,
 * unique, allocated (free each and the array). *n may be 0. */
char **xds_crossmesh_wanted(const struct xds_mesh_snapshot *s, size_t *n);

/* Fills s->cross from the inputs (s not yet shared). Inputs of meshes no
 * outbound of s names, or of s's own mesh, are ignored; a wanted mesh
 * without input is recorded as absent. */
void xds_crossmesh_set(struct xds_mesh_snapshot *s, const struct xds_cross_input *in, size_t n);

/* The same, reading the other meshes from the store. A mesh that cannot be
 * read is recorded as absent with a warning. */
void xds_crossmesh_load(struct store *st, struct xds_mesh_snapshot *s);

/* Does s depend on mesh (a cross-mesh outbound of s names it)? A change of
 * anything in that mesh must then rebuild s. */
int xds_crossmesh_depends_on(const struct xds_mesh_snapshot *s, const char *mesh);

/* Frees s->cross (snapshot.c). */
void xds_crossmesh_free(struct xds_mesh_snapshot *s);

/* The other mesh an outbound names, or NULL when s does not know it. */
const struct xds_cross_mesh *xds_crossmesh_find(const struct xds_mesh_snapshot *s,
                                                const char *mesh);

/* Kuma's cluster name for a cross-mesh outbound: `<service>-<hex of the
 * first 8 bytes of SHA-256 over its sorted tags, kuma.io/mesh included>_<mesh>`.
 * Caller frees. */
char *xds_crossmesh_cluster_name(const struct xds_cross_outbound *o);

/* The serialized ClusterLoadAssignment `cluster` of an outbound: the
 * endpoints of cm with the outbound's service whose tags carry every other
 * tag of the outbound (none when cm is NULL). Caller frees. */
uint8_t *xds_crossmesh_cla(const struct xds_cross_mesh *cm, const struct xds_cross_outbound *o,
                           const char *cluster, size_t *len);

#endif
