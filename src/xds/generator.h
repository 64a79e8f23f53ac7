/*
 * generator — the Envoy resources of one proxy, from its mesh's snapshot.
 *
 * Output is serialized bytes per resource, grouped by xDS type, each group
 * sorted by name with a version (hex of a hash of the names and bytes), so
 * "did this proxy's config change" is a comparison of versions. Endpoint
 * assignments are borrowed from the snapshot (shared by every proxy that
 * calls the service); the config holds a snapshot reference for that.
 *
 * The generator is a list of steps (generator.c `steps[]`): inbound,
 * outbound, outbound clusters, transparent proxy, SDS secrets for sidecars;
 * API listeners for proxyless clients; MeshGateway listeners and RDS routes
 * for builtin gateways. Listeners of http/http2/grpc services carry an HTTP
 * connection manager with inline routes. An outbound's resources are built
 * once per snapshot and policy context and shared ("units", docs/xds.md).
 */
#ifndef XDS_GENERATOR_H
#define XDS_GENERATOR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "xds/snapshot.h"

/* In the order ADS pushes them: clusters before their endpoints, both before
 * the listeners that use them. */
enum xds_type { XDS_CDS, XDS_EDS, XDS_LDS, XDS_RDS, XDS_SDS, XDS_TYPE_N };

const char *xds_type_url(enum xds_type t);
const char *xds_type_short(enum xds_type t); /* "CDS" */
/* Returns the type of a type URL, or -1. */
int xds_type_from_url(const char *url);

struct xds_resource {
    char *name;
    uint8_t *data;
    size_t len;
    int borrowed;  /* name and data belong to the snapshot */
    uint32_t seq;  /* order of addition: the first of a name wins */
    uint64_t hash; /* of the bytes (xds_hash_fast) */
};

struct xds_resource_set {
    struct xds_resource *v;
    size_t n, cap;
    uint64_t hash;
    char version[17];
};

struct xds_proxy_config {
    atomic_int refs;
    struct xds_mesh_snapshot *snap;
    struct xds_resource_set sets[XDS_TYPE_N];
    uint64_t input_hash;
};

struct xds_gen_opts {
    /* A proxyless gRPC client (grpc-js-xds, grpc-go...): instead of Envoy
     * listeners, an API listener per outbound service named after the
     * service (what `xds:///<service>` asks for), with an inline route to
     * the service's EDS cluster. */
    int proxyless;
    /* mTLS: the proxy's workload certificate and key (PEM), delivered as
     * identity_cert:secret:<mesh>. NULL when the mesh has no mTLS or no CA. */
    const char *identity_cert_pem, *identity_key_pem;
    /* Envoy admin (xds/admin.h): the admin port the proxy reported (0 =
     * none), the admin listener's server certificate and key and the envoy
     * admin CA (PEM; NULL = no TLS admin listener). */
    uint32_t admin_port;
    const char *admin_cert_pem, *admin_key_pem, *admin_ca_pem;
};

/* Everything the output depends on, hashed: equal hashes mean the output
 * would be identical, so the proxy need not be regenerated. */
uint64_t xds_gen_input_hash(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                            const struct xds_gen_opts *o);

/* Generates dp's configuration (dp must belong to snap). Never fails on
 * valid input; returns the config with one reference. */
struct xds_proxy_config *xds_generate(struct xds_mesh_snapshot *snap,
                                      const struct xds_dataplane *dp, const struct xds_gen_opts *o);

/* One proxy of a batch: dp and o in, out filled by xds_generate_batch. */
#define XDS_GEN_MAX_THREADS 8

struct xds_gen_job {
    const struct xds_dataplane *dp;
    struct xds_gen_opts o;
    struct xds_proxy_config *out;
};

/* Generates every job of a batch on up to `threads` threads (the calling
 * thread included; small batches stay on it). The snapshot is only read,
 * its shared-resource cache excepted (locked); each job's output belongs to
 * that job, so the caller sees them all once this returns. */
void xds_generate_batch(struct xds_mesh_snapshot *snap, struct xds_gen_job *jobs, size_t n,
                        int threads);

/* Frees a snapshot's shared units (snapshot.c calls it). */
struct xds_unit;
void xds_units_free(struct xds_unit *list);

struct xds_proxy_config *xds_proxy_config_ref(struct xds_proxy_config *c);
void xds_proxy_config_unref(struct xds_proxy_config *c);

#endif
