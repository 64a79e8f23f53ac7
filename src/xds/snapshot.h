/*
 * snapshot — the immutable, reference-counted view of one mesh that every
 * proxy of that mesh is generated from: the mesh's settings, its dataplanes
 * (parsed once), and per service the ClusterLoadAssignment (EDS) already
 * serialized, because its bytes are the same for every proxy that calls the
 * service. Built once per change of the mesh by the xDS mesh thread, then
 * only read, from any thread, until the last reference is dropped.
 *
 * Isolation: a snapshot holds the dataplanes of its own mesh only, so a
 * proxy can never be given an endpoint of another mesh.
 */
#ifndef XDS_SNAPSHOT_H
#define XDS_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/resource.h"
#include "core/util.h"
#include "store/store.h"
#include "xds/hmap.h"
#include "xds/model.h"

struct xds_service {
    char *name;   /* kuma.io/service */
    uint8_t *cla; /* serialized envoy.config.endpoint.v3.ClusterLoadAssignment */
    size_t cla_len;
    uint64_t hash; /* of cla */
    size_t n_endpoints;
    enum xds_protocol protocol; /* common protocol of its endpoints */
};

/* A policy of the mesh as stored (spec parsed once, read by the generator). */
struct xds_policy {
    const struct res_type *type;
    char *name;
    json_t *spec;
};

struct ca_signer;

/* A crossMesh listener of a builtin gateway dataplane of another mesh: what
 * that mesh's proxies would reach it at (Kuma's CrossMeshEndpoints). */
struct xds_cross_endpoint {
    char *service; /* the gateway dataplane's kuma.io/service */
    char *address;
    uint32_t port;        /* the crossMesh listener's port */
    struct xds_tag *tags; /* dataplane gateway tags, MeshGateway tags, listener tags */
    size_t ntags;
};

/* Another mesh that some dataplane of this snapshot's mesh declares a
 * cross-mesh outbound to (xds/crossmesh.h), as far as it concerns them: its
 * mTLS CA certificate and its cross-mesh gateway endpoints, nothing else. */
struct xds_cross_mesh {
    char *mesh;
    int exists;
    int mtls;
    char *ca_cert_pem; /* mesh_ca:secret:<mesh>; NULL without mTLS or CA */
    struct xds_cross_endpoint *eps;
    size_t n_eps;
};

/* The parsed dataplanes of a mesh and their endpoint assignments: the part
 * of a snapshot that only Dataplane changes affect, shared (reference
 * counted) by consecutive snapshots when only policies, secrets or the Mesh
 * changed, so a policy change does not re-read and re-parse every
 * dataplane. */
struct xds_dpset {
    atomic_int refs;
    struct xds_dataplane **dataplanes;
    size_t n_dataplanes;
    struct xds_service *services;
    size_t n_services;
};

struct xds_mesh_snapshot {
    atomic_int refs;
    char *mesh;
    int passthrough;     /* networking.outbound.passthrough, default true */
    int mtls;            /* mtls.enabledBackend is set */
    int mtls_permissive; /* the enabled backend's mode is PERMISSIVE (docs/xds.md) */
    uint64_t mesh_hash;  /* of the Mesh spec */
    /* mTLS: the enabled backend's CA. signer is NULL when the CA could not
     * be loaded (ca_error says why) or the snapshot was built without a key
     * (tests); ca_cert_pem is what mesh_ca:secret:<mesh> carries. */
    char *mtls_backend, *mtls_backend_type;
    struct ca_signer *signer;
    char *ca_cert_pem;
    char *ca_error;
    uint64_t ca_hash;         /* of backend name + CA certificate: changes on a CA switch */
    int64_t cert_lifetime_ns; /* dpCert.rotation.expiration, default 24h */
    /* Cross-mesh gateways (a MeshGateway listener with crossMesh: true in
     * this mTLS mesh): the CA certificates of every mesh with mTLS enabled,
     * meshes in name order, what mesh_ca:secret:all carries; NULL
     * otherwise. Part of ca_hash. */
    char *all_ca_pem;
    /* Cross-mesh outbounds (xds/crossmesh.h): the other meshes this mesh's
     * dataplanes name in `kuma.io/mesh` outbound tags, sorted by name (those
     * that do not exist included, so that their creation dirties this
     * mesh), and a hash of all of it. Empty when no dataplane has one. */
    struct xds_cross_mesh *cross;
    size_t n_cross;
    uint64_t cross_hash;
    /* Policies of every type the generator reads, sorted by type then name. */
    struct xds_policy *policies;
    size_t n_policies;
    uint64_t policy_hash;              /* of every policy's type, name and spec */
    int has_traffic_permissions;       /* any TrafficPermission in the mesh */
    struct xds_dpset *dpset;           /* owns the four below */
    struct xds_dataplane **dataplanes; /* sorted by name */
    size_t n_dataplanes;
    struct xds_service *services; /* sorted by name */
    size_t n_services;
    int dataplane_refs; /* some policy's top-level targetRef is a Dataplane */
    /* Resources the generator shares between proxies (generator.c "units":
     * an outbound's listener, its clusters), built once per snapshot for
     * every proxy with the same policy context and borrowed by their
     * configs. The one mutable part of a snapshot, under unit_mu. */
    pthread_mutex_t unit_mu;
    struct hmap units;          /* key -> struct xds_unit * */
    struct xds_unit *unit_list; /* every unit, for freeing */
};

/* Loads the mesh and its dataplanes from the store. A mesh that does not
 * exist gives STORE_ENOTFOUND. Dataplanes the generator cannot read are
 * skipped with a warning. */
int xds_snapshot_load(struct store *st, const char *mesh, struct xds_mesh_snapshot **out,
                      struct err *e);
/* The same, sharing prev's dataplanes and endpoints (prev must be of the
 * same mesh and its dataplanes unchanged since). */
int xds_snapshot_reload(struct store *st, const char *mesh, const struct xds_mesh_snapshot *prev,
                        struct xds_mesh_snapshot **out, struct err *e);

/* Builds a snapshot from resources already in memory (mesh may be NULL for
 * defaults); dataplanes of other meshes are ignored. */
struct xds_mesh_snapshot *xds_snapshot_build(const char *mesh_name, const struct resource *mesh,
                                             struct resource *const *dataplanes, size_t n);

/* Everything a snapshot is made of. Policies of other meshes are ignored.
 * ca_cert_pem/ca_key_pem: the enabled backend's CA pair (a NULL key gives a
 * snapshot without signer, for tests); ca_error the reason it is missing. */
struct xds_snapshot_input {
    const char *mesh_name;
    const struct resource *mesh;
    struct resource *const *dataplanes;
    size_t n_dataplanes;
    struct resource *const *policies;
    size_t n_policies;
    const char *ca_cert_pem, *ca_key_pem, *ca_error;
    const char *all_ca_pem; /* see xds_mesh_snapshot.all_ca_pem; may be NULL */
    /* When set, its dataplanes and endpoints are shared instead of parsing
     * `dataplanes` (only policies, secrets or the Mesh changed). */
    const struct xds_mesh_snapshot *reuse;
};
struct xds_mesh_snapshot *xds_snapshot_build_from(const struct xds_snapshot_input *in);

/* The policy types a snapshot holds (and whose changes dirty a mesh). */
extern const struct res_type *const xds_policy_types[];
extern const size_t xds_n_policy_types;
int xds_is_policy_type(const struct res_type *t);

struct xds_mesh_snapshot *xds_snapshot_ref(struct xds_mesh_snapshot *s);
void xds_snapshot_unref(struct xds_mesh_snapshot *s);

const struct xds_dataplane *xds_snapshot_dataplane(const struct xds_mesh_snapshot *s,
                                                   const char *name);
const struct xds_service *xds_snapshot_service(const struct xds_mesh_snapshot *s, const char *name);

/* The CA certificate of a mesh's enabled mTLS backend (its key is read and
 * wiped): for the cross-mesh CA of another mesh (xds/crossmesh.h). */
int xds_snapshot_load_ca_cert(struct store *st, const struct resource *mesh, char **cert,
                              struct err *e);

/* The serialized ClusterLoadAssignment of a service with no endpoints. */
uint8_t *xds_empty_cla(const char *service, size_t *len);

#endif
