/*
 * model — what the xDS generator needs from a Dataplane, read once from the
 * resource's JSON spec into plain C structs, and the Envoy node id.
 *
 * Field meanings follow Kuma (api/mesh/v1alpha1/dataplane.proto and
 * dataplane_helpers.go): an inbound listens on its `address` (or the
 * dataplane's `networking.address`) and `port`, and forwards to the workload
 * at `serviceAddress` (default 127.0.0.1) and `servicePort` (default `port`).
 * Other dataplanes reach it at the same address and port. An outbound listens
 * on `address` (default 127.0.0.1) and `port` and targets the service named
 * by its `kuma.io/service` tag (or the deprecated `service` field).
 */
#ifndef XDS_MODEL_H
#define XDS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/resource.h"
#include "core/util.h"

#define XDS_TAG_SERVICE  "kuma.io/service"
#define XDS_TAG_PROTOCOL "kuma.io/protocol"
#define XDS_TAG_MESH     "kuma.io/mesh"

/* kuma.io/protocol values; anything else (or none) is TCP. */
enum xds_protocol {
    XDS_PROTO_TCP,
    XDS_PROTO_HTTP,
    XDS_PROTO_HTTP2,
    XDS_PROTO_GRPC,
    XDS_PROTO_KAFKA
};
enum xds_protocol xds_protocol_parse(const char *s);
/* Kuma's GetCommonProtocol: the first protocol of a's stack (grpc > http2 >
 * tcp, http > tcp, kafka > tcp) that b also speaks. */
enum xds_protocol xds_protocol_common(enum xds_protocol a, enum xds_protocol b);
/* HTTP, HTTP2 and gRPC get an HTTP connection manager. */
#define XDS_PROTO_IS_HTTP(p)                                                                       \
    ((p) == XDS_PROTO_HTTP || (p) == XDS_PROTO_HTTP2 || (p) == XDS_PROTO_GRPC)

struct xds_tag {
    char *key, *value;
};

struct xds_inbound {
    char *address; /* where Envoy listens (and other proxies connect) */
    uint32_t port;
    char *service_address; /* the workload */
    uint32_t service_port;
    char *service;        /* kuma.io/service, or NULL */
    struct xds_tag *tags; /* sorted by key */
    size_t ntags;
    int ready; /* health.ready, default true */
    enum xds_protocol protocol;
};

struct xds_outbound {
    char *address;
    uint32_t port;
    char *service;
};

/* An outbound to a cross-mesh gateway of another mesh: its tags name that
 * mesh with `kuma.io/mesh` (xds/crossmesh.h). */
struct xds_cross_outbound {
    char *address;
    uint32_t port;
    char *service;        /* kuma.io/service: the gateway's service */
    char *mesh;           /* kuma.io/mesh: the gateway's mesh, never the dataplane's */
    struct xds_tag *tags; /* every tag but kuma.io/mesh, sorted by key */
    size_t ntags;
};

struct xds_dataplane {
    char *mesh, *name;
    char *address;
    struct xds_inbound *inbounds;
    size_t n_inbounds;
    struct xds_outbound *outbounds; /* only those naming a kuma.io/service */
    size_t n_outbounds;
    /* Outbounds tagged kuma.io/mesh with another mesh's name: kept apart so
     * nothing but the cross-mesh generator ever sees them. */
    struct xds_cross_outbound *cross_outbounds;
    size_t n_cross_outbounds;
    /* Transparent proxying (0 = off). */
    uint32_t redirect_port_inbound, redirect_port_outbound, redirect_port_inbound_v6;
    int ipv6;            /* also generate the IPv6 passthrough resources (ipFamilyMode not IPv4) */
    int gateway;         /* networking.gateway is set */
    int builtin_gateway; /* networking.gateway.type BUILTIN */
    struct xds_tag *gateway_tags; /* networking.gateway.tags, sorted by key */
    size_t n_gateway_tags;
    /* Kuma's Dataplane.TagSet(): {tag: [values]}, every inbound's and the
     * gateway's tags merged (policy source matching). Never NULL. */
    json_t *tagset;
    uint64_t tagset_hash; /* of tagset, gateway kind and transparent proxying */
    /* The tags its workload certificate carries (ca_dataplane_identity_tags),
     * or NULL with identity_error set when it has no identity. */
    json_t *identity_tags;
    char *identity_error;
    uint64_t hash; /* of the spec: changes whenever anything above may */
};

/* Frees n tags (their keys and values) and the array; NULL is a no-op. */
void xds_tags_free(struct xds_tag *tags, size_t n);

/* Reads a Dataplane resource. Returns 0, or -1 with e set for a spec the
 * generator cannot use (the manager validates, so this is defensive). */
int xds_dataplane_from_resource(const struct resource *r, struct xds_dataplane **out,
                                struct err *e);
void xds_dataplane_free(struct xds_dataplane *dp);

/* Splits Envoy's node id "<mesh>.<name>" at the first dot, with Kuma's
 * messages: "Envoy ID must not be nil", "the name should be provided after
 * the dot", "name must not be empty". *mesh and *name are allocated. */
int xds_parse_proxy_id(const char *id, char **mesh, char **name, struct err *e);

/* FNV-1a 64 over bytes, continuing from h (start with XDS_HASH_INIT). */
#define XDS_HASH_INIT 0xcbf29ce484222325ULL
uint64_t xds_hash(uint64_t h, const void *p, size_t n);
uint64_t xds_hash_str(uint64_t h, const char *s);
uint64_t xds_hash_u64(uint64_t h, uint64_t v);
/* A word-at-a-time 64-bit hash for bulk bytes (versions, change detection),
 * several times faster than the byte-wise FNV-1a above. Not stable across
 * releases: never use it for names. */
uint64_t xds_hash_fast(uint64_t h, const void *p, size_t n);

#endif
