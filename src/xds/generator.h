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
 * outbound, transparent proxy, proxyless. The next ones (mTLS contexts and
 * SDS secrets, RBAC on inbounds, HTTP routes/splits/timeouts) are further
 * steps or configurers applied to what these produce.
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
    int borrowed; /* data belongs to the snapshot */
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
};

/* Everything the output depends on, hashed: equal hashes mean the output
 * would be identical, so the proxy need not be regenerated. */
uint64_t xds_gen_input_hash(const struct xds_mesh_snapshot *snap, const struct xds_dataplane *dp,
                            const struct xds_gen_opts *o);

/* Generates dp's configuration (dp must belong to snap). Never fails on
 * valid input; returns the config with one reference. */
struct xds_proxy_config *xds_generate(struct xds_mesh_snapshot *snap,
                                      const struct xds_dataplane *dp, const struct xds_gen_opts *o);

struct xds_proxy_config *xds_proxy_config_ref(struct xds_proxy_config *c);
void xds_proxy_config_unref(struct xds_proxy_config *c);

#endif
