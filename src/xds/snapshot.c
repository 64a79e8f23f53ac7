/*
 * snapshot — see snapshot.h. Endpoints of a service: every ready inbound
 * tagged with that kuma.io/service, at the inbound's address and port, with
 * its tags as `envoy.lb` metadata (what tag-based subsets will select on).
 * Only IP literals are usable as EDS addresses; other addresses are skipped.
 */
#include "xds/snapshot.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/types.h"
#include "xds/pb.h"

struct ep {
    const char *service, *address;
    uint32_t port;
    const struct xds_inbound *in;
};

static int cmp_ep(const void *a, const void *b)
{
    const struct ep *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    if (c)
        return c;
    if ((c = strcmp(x->address, y->address)))
        return c;
    return x->port < y->port ? -1 : x->port > y->port;
}

static int cmp_dp(const void *a, const void *b)
{
    return strcmp((*(struct xds_dataplane *const *)a)->name,
                  (*(struct xds_dataplane *const *)b)->name);
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static uint8_t *build_cla(const char *service, const struct ep *eps, size_t n, size_t *len)
{
    struct pb_arena a = {0};
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        PB_NEW(&a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
               ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT);
    cla->cluster_name = pb_strdup(&a, service);
    if (n > 0) {
        /* One locality; its weight must be set or xDS clients drop it. */
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc =
            PB_NEW(&a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
                   ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
        loc->locality =
            PB_NEW(&a, Envoy__Config__Core__V3__Locality, ENVOY__CONFIG__CORE__V3__LOCALITY__INIT);
        loc->load_balancing_weight = pb_u32(&a, 1);
        loc->n_lb_endpoints = n;
        loc->lb_endpoints = pb_alloc(&a, n * sizeof(*loc->lb_endpoints));
        for (size_t i = 0; i < n; i++) {
            Envoy__Config__Endpoint__V3__LbEndpoint *lb =
                PB_NEW(&a, Envoy__Config__Endpoint__V3__LbEndpoint,
                       ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT);
            lb->host_identifier_case =
                ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
            lb->endpoint = PB_NEW(&a, Envoy__Config__Endpoint__V3__Endpoint,
                                  ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT);
            lb->endpoint->address = pb_address(&a, eps[i].address, eps[i].port);
            if (eps[i].in->ntags)
                lb->metadata = pb_metadata_tags(&a, "envoy.lb", eps[i].in->tags, eps[i].in->ntags);
            lb->load_balancing_weight = pb_u32(&a, 1);
            loc->lb_endpoints[i] = lb;
        }
        cla->n_endpoints = 1;
        cla->endpoints = pb_alloc(&a, sizeof(*cla->endpoints));
        cla->endpoints[0] = loc;
    }
    uint8_t *out = pb_pack(&cla->base, len);
    pb_arena_free(&a);
    return out;
}

uint8_t *xds_empty_cla(const char *service, size_t *len)
{
    return build_cla(service, NULL, 0, len);
}

struct xds_mesh_snapshot *xds_snapshot_build(const char *mesh_name, const struct resource *mesh,
                                             struct resource *const *dataplanes, size_t n)
{
    struct xds_mesh_snapshot *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->mesh = xstrdup(mesh_name);
    s->passthrough = 1;
    s->mesh_hash = XDS_HASH_INIT;
    if (mesh) {
        json_t *pt = json_object_get(
            json_object_get(json_object_get(mesh->spec, "networking"), "outbound"), "passthrough");
        if (json_is_false(pt))
            s->passthrough = 0;
        const char *eb = json_string_value(
            json_object_get(json_object_get(mesh->spec, "mtls"), "enabledBackend"));
        s->mtls = eb && *eb;
        char *text = json_dumps(mesh->spec, JSON_SORT_KEYS | JSON_COMPACT);
        s->mesh_hash = xds_hash_str(XDS_HASH_INIT, text);
        free(text);
    }

    s->dataplanes = xcalloc(n ? n : 1, sizeof(*s->dataplanes));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(dataplanes[i]->mesh, mesh_name) != 0)
            continue;
        struct err e;
        struct xds_dataplane *dp;
        if (xds_dataplane_from_resource(dataplanes[i], &dp, &e) < 0) {
            log_warn("xds", "dataplane %s.%s skipped: %s", mesh_name, dataplanes[i]->name, e.msg);
            continue;
        }
        s->dataplanes[s->n_dataplanes++] = dp;
    }
    qsort(s->dataplanes, s->n_dataplanes, sizeof(*s->dataplanes), cmp_dp);

    /* Endpoints grouped by service, in a stable order. */
    size_t cap = 0, neps = 0;
    for (size_t i = 0; i < s->n_dataplanes; i++)
        cap += s->dataplanes[i]->n_inbounds;
    struct ep *eps = xcalloc(cap ? cap : 1, sizeof(*eps));
    for (size_t i = 0; i < s->n_dataplanes; i++) {
        const struct xds_dataplane *dp = s->dataplanes[i];
        for (size_t j = 0; j < dp->n_inbounds; j++) {
            const struct xds_inbound *in = &dp->inbounds[j];
            if (!in->service || !in->ready || !is_ip(in->address))
                continue;
            eps[neps++] = (struct ep){in->service, in->address, in->port, in};
        }
    }
    qsort(eps, neps, sizeof(*eps), cmp_ep);
    s->services = xcalloc(neps ? neps : 1, sizeof(*s->services));
    for (size_t i = 0; i < neps;) {
        size_t j = i;
        while (j < neps && strcmp(eps[j].service, eps[i].service) == 0)
            j++;
        struct xds_service *svc = &s->services[s->n_services++];
        svc->name = xstrdup(eps[i].service);
        svc->cla = build_cla(svc->name, &eps[i], j - i, &svc->cla_len);
        svc->hash = xds_hash(XDS_HASH_INIT, svc->cla, svc->cla_len);
        svc->n_endpoints = j - i;
        i = j;
    }
    free(eps);
    return s;
}

int xds_snapshot_load(struct store *st, const char *mesh, struct xds_mesh_snapshot **out,
                      struct err *e)
{
    struct resource *m = NULL;
    int rc = store_get(st, &TYPE_MESH, "", mesh, &m, e);
    if (rc < 0)
        return rc;
    struct resource_list l = {0};
    struct store_filter f = {.mesh = mesh};
    rc = store_list(st, &TYPE_DATAPLANE, &f, &l, e);
    if (rc < 0) {
        resource_free(m);
        return rc;
    }
    *out = xds_snapshot_build(mesh, m, l.items, l.n);
    resource_list_free(&l);
    resource_free(m);
    return 0;
}

struct xds_mesh_snapshot *xds_snapshot_ref(struct xds_mesh_snapshot *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void xds_snapshot_unref(struct xds_mesh_snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n_dataplanes; i++)
        xds_dataplane_free(s->dataplanes[i]);
    for (size_t i = 0; i < s->n_services; i++) {
        free(s->services[i].name);
        free(s->services[i].cla);
    }
    free(s->dataplanes);
    free(s->services);
    free(s->mesh);
    free(s);
}

const struct xds_dataplane *xds_snapshot_dataplane(const struct xds_mesh_snapshot *s,
                                                   const char *name)
{
    size_t lo = 0, hi = s->n_dataplanes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->dataplanes[mid]->name, name);
        if (c == 0)
            return s->dataplanes[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct xds_service *xds_snapshot_service(const struct xds_mesh_snapshot *s, const char *name)
{
    size_t lo = 0, hi = s->n_services;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->services[mid].name, name);
        if (c == 0)
            return &s->services[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
