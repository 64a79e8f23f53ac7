/*
 * server — kuma-cp's ADS server (Envoy v3, state of the world) on the
 * DP-server port: node id parsing, dataplane registration from node
 * metadata, per-proxy generation, push on change, ACK/NACK tracking and
 * in-memory insights. The design is in docs/xds.md.
 *
 * Threads:
 *  - the transport's completion-queue thread (transport.c) only moves bytes:
 *    it queues "stream opened / message / closed" items to the mesh thread;
 *  - an event pump thread forwards the manager's change events to the same
 *    queue;
 *  - the mesh thread owns every piece of xDS state: it decodes requests,
 *    registers dataplanes, rebuilds the snapshot of a changed mesh, generates
 *    the proxies whose inputs changed and queues their responses on the
 *    streams. It sleeps until an item arrives or a deregistration is due.
 * Insights are written by the mesh thread under a mutex and read by anyone
 * through xds_server_insight*().
 */
#ifndef XDS_SERVER_H
#define XDS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/util.h"
#include "mesh/events.h"
#include "mesh/manager.h"
#include "xds/generator.h"

/* Authenticates a proxy: token is the `authorization` metadata of its
 * stream (NULL if absent). Returns 0 to accept, or -1 with e set. The CA
 * module's dataplane-token check plugs in here. */
typedef int xds_auth_fn(void *ctx, const char *mesh, const char *name, const char *token,
                        const json_t *dp_tags, struct err *e);

/* Kuma's dataplane-token authenticator (dpServer.authn.dpProxy.type
 * "dpToken"): ctx is the store. The token is verified with the mesh's
 * signing key `dataplane-token-signing-key-<mesh>-<kid>`, must name this
 * mesh (and this dataplane when it names one), must not be listed in
 * `dataplane-token-revocations-<mesh>`, and its tags must be on the
 * dataplane (dp_tags: {tag:[values]}, from the registration or the store). */
int xds_auth_dp_token(void *ctx, const char *mesh, const char *name, const char *token,
                      const json_t *dp_tags, struct err *e);

#define XDS_DEFAULT_DEREGISTRATION_DELAY_MS 10000 /* Kuma's dataplaneDeregistrationDelay */

struct xds_server_config {
    const char *address; /* interface, default 0.0.0.0 */
    int port;            /* 0 = ephemeral */
    /* After the last stream of a dataplane that registered itself through
     * node metadata ends, it is deleted this much later unless it has
     * reconnected (KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY). */
    int64_t deregistration_delay_ms;
    const char *instance_id;  /* control_plane.identifier in responses */
    const char *tls_cert_pem; /* NULL = plaintext (see transport.h) */
    const char *tls_key_pem;
    /* The envoy admin CA (GlobalSecret envoy-admin-ca; ca/admin.h): each
     * dataplane gets a server certificate from it for its TLS admin
     * listener kuma:envoy:admin. NULL = no admin listeners. */
    const char *admin_ca_cert_pem, *admin_ca_key_pem;
    xds_auth_fn *authenticate; /* NULL = no authentication (Kuma's "none") */
    void *auth_ctx;
};

/* Defaults, then KUMA_XDS_SERVER_DATAPLANE_DEREGISTRATION_DELAY (a Go
 * duration: "10s", "500ms", "0s"). Returns -1 with e for a bad value. */
int xds_server_config_init(struct xds_server_config *c, struct err *e);

/* Parses a Go-style duration ("1m30s", "250ms", "0") into milliseconds. */
int xds_parse_duration_ms(const char *s, int64_t *ms);

struct xds_server;

/* Starts the server; *bound_port receives the port. */
int xds_server_start(struct manager *mgr, struct event_bus *bus, const struct xds_server_config *c,
                     struct xds_server **out, int *bound_port, struct err *e);

/* Stops it: streams are cancelled (dataplanes are NOT deregistered, as Kuma
 * does on a graceful shutdown, so they reconnect to the next instance).
 * Call after event_bus_close(bus). NULL is a no-op. */
void xds_server_stop(struct xds_server *s);

/* --- insights --------------------------------------------------------- */

struct xds_type_insight {
    char sent_version[17];  /* last version sent, "" if none */
    char acked_version[17]; /* last version the proxy ACKed */
    char nacked_version[17];
    int64_t last_sent_ns, last_ack_ns, last_nack_ns; /* wall clock, 0 = never */
    char *last_nack_error; /* error_detail.message of the last NACK, or NULL */
    uint64_t responses_sent, acks, nacks;
};

struct xds_dataplane_insight {
    char *mesh, *name;
    int online;                 /* at least one stream connected */
    int64_t connect_time_ns;    /* of the latest stream */
    int64_t disconnect_time_ns; /* when the last stream ended, 0 while online */
    uint64_t stream_id;         /* latest stream */
    char *peer;
    int proxyless;
    uint32_t admin_port; /* node metadata dataplane.admin.port, 0 = not reported */
    /* mTLS identity (all 0/NULL while the mesh has no mTLS): Kuma's
     * DataplaneInsight.mTLS. */
    char *cert_backend;          /* the CA backend that issued it */
    int64_t cert_expiration_ns;  /* NotAfter of the current certificate */
    int64_t cert_generation_ns;  /* when it was issued */
    uint64_t cert_regenerations; /* certificates issued for it (first one included) */
    struct xds_type_insight types[XDS_TYPE_N];
};

/* Copies the insight of one dataplane into out (free with
 * xds_dataplane_insight_clear). Returns 0, or -1 if the dataplane never
 * connected to this instance. Safe from any thread. */
int xds_server_insight(struct xds_server *s, const char *mesh, const char *name,
                       struct xds_dataplane_insight *out);

/* Copies every insight of a mesh (NULL = all meshes), sorted by mesh and
 * name, into a new array; returns the count. Free with xds_insights_free. */
size_t xds_server_insights(struct xds_server *s, const char *mesh,
                           struct xds_dataplane_insight **out);

void xds_dataplane_insight_clear(struct xds_dataplane_insight *in);
void xds_insights_free(struct xds_dataplane_insight *v, size_t n);

/* The configuration last generated for a connected dataplane (a new
 * reference; NULL when it is not connected here). Safe from any thread. */
struct xds_proxy_config *xds_server_proxy_config(struct xds_server *s, const char *mesh,
                                                 const char *name);

/* Counters for tests and diagnostics (safe from any thread). */
struct xds_server_stats {
    uint64_t snapshots_built; /* mesh snapshots rebuilt */
    uint64_t generations;     /* proxy configs generated */
    uint64_t responses_sent;
    uint64_t certs_issued; /* workload certificates issued */
};
void xds_server_get_stats(struct xds_server *s, struct xds_server_stats *out);

#endif
