/*
 * crossmesh — see crossmesh.h. The other mesh is read as a small snapshot
 * of its own (its dataplanes and MeshGateways only, no CA key), so that a
 * gateway dataplane's MeshGateway is chosen exactly as that mesh's own
 * generator chooses it (xds_builtin_gateway); only the endpoints and the CA
 * certificate are kept.
 */
#include "xds/crossmesh.h"

#include <arpa/inet.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/types.h"
#include "xds/pb.h"
#include "xds/policies.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **xds_crossmesh_wanted(const struct xds_mesh_snapshot *s, size_t *n)
{
    size_t cap = 0;
    for (size_t i = 0; i < s->n_dataplanes; i++)
        cap += s->dataplanes[i]->n_cross_outbounds;
    char **v = xcalloc(cap ? cap : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < s->n_dataplanes; i++) {
        const struct xds_dataplane *dp = s->dataplanes[i];
        for (size_t j = 0; j < dp->n_cross_outbounds; j++)
            if (strcmp(dp->cross_outbounds[j].mesh, s->mesh) != 0)
                v[k++] = xstrdup(dp->cross_outbounds[j].mesh);
    }
    qsort(v, k, sizeof(*v), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u > 0 && strcmp(v[u - 1], v[i]) == 0) {
            free(v[i]);
            continue;
        }
        v[u++] = v[i];
    }
    *n = u;
    return v;
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct xds_tag *)a)->key, ((const struct xds_tag *)b)->key);
}

/* Sets key=value in a tag list (later sources override, as Kuma's Merge). */
static void tag_put(struct xds_tag **v, size_t *n, size_t *cap, const char *k, const char *val)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i].key, k) == 0) {
            free((*v)[i].value);
            (*v)[i].value = xstrdup(val);
            return;
        }
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = (struct xds_tag){xstrdup(k), xstrdup(val)};
}

static void tags_put_json(struct xds_tag **v, size_t *n, size_t *cap, const json_t *o)
{
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)o, k, val)
    {
        if (json_is_string(val))
            tag_put(v, n, cap, k, json_string_value(val));
    }
}

static int cmp_ep(const void *a, const void *b)
{
    const struct xds_cross_endpoint *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    if (c)
        return c;
    if ((c = strcmp(x->address, y->address)))
        return c;
    return x->port < y->port ? -1 : x->port > y->port;
}

/* The crossMesh gateway endpoints of one other mesh. */
static void fill_mesh(struct xds_cross_mesh *cm, const struct xds_cross_input *in)
{
    cm->exists = in->mesh != NULL;
    if (!cm->exists)
        return;
    const char *eb = json_string_value(
        json_object_get(json_object_get(in->mesh->spec, "mtls"), "enabledBackend"));
    cm->mtls = eb && *eb;
    if (cm->mtls && in->ca_cert_pem)
        cm->ca_cert_pem = xstrdup(in->ca_cert_pem);
    /* A snapshot of the other mesh without Mesh or CA: dataplanes and
     * MeshGateways, to select gateways as that mesh does. */
    struct xds_snapshot_input si = {.mesh_name = in->mesh_name,
                                    .dataplanes = in->dataplanes,
                                    .n_dataplanes = in->n_dataplanes,
                                    .policies = in->gateways,
                                    .n_policies = in->n_gateways};
    struct xds_mesh_snapshot *o = xds_snapshot_build_from(&si);
    size_t cap = 0;
    for (size_t i = 0; i < o->n_dataplanes; i++) {
        const struct xds_dataplane *dp = o->dataplanes[i];
        if (!dp->builtin_gateway || !is_ip(dp->address))
            continue;
        const struct xds_policy *gw = xds_builtin_gateway(o, dp);
        if (!gw)
            continue;
        const char *svc = NULL;
        for (size_t t = 0; t < dp->n_gateway_tags; t++)
            if (strcmp(dp->gateway_tags[t].key, XDS_TAG_SERVICE) == 0)
                svc = dp->gateway_tags[t].value;
        if (!svc)
            continue;
        size_t k;
        json_t *l;
        json_array_foreach(json_object_get(json_object_get(gw->spec, "conf"), "listeners"), k, l)
        {
            json_int_t port = json_integer_value(json_object_get(l, "port"));
            if (!json_is_true(json_object_get(l, "crossMesh")) || port <= 0 || port > 65535)
                continue;
            if (cm->n_eps == cap) {
                cap = cap ? cap * 2 : 4;
                cm->eps = xrealloc(cm->eps, cap * sizeof(*cm->eps));
            }
            struct xds_cross_endpoint *ep = &cm->eps[cm->n_eps++];
            memset(ep, 0, sizeof(*ep));
            ep->service = xstrdup(svc);
            ep->address = xstrdup(dp->address);
            ep->port = (uint32_t)port;
            size_t tcap = 0;
            for (size_t t = 0; t < dp->n_gateway_tags; t++)
                tag_put(&ep->tags, &ep->ntags, &tcap, dp->gateway_tags[t].key,
                        dp->gateway_tags[t].value);
            tags_put_json(&ep->tags, &ep->ntags, &tcap, json_object_get(gw->spec, "tags"));
            tags_put_json(&ep->tags, &ep->ntags, &tcap, json_object_get(l, "tags"));
            if (ep->ntags > 1)
                qsort(ep->tags, ep->ntags, sizeof(*ep->tags), cmp_tag);
        }
    }
    if (cm->n_eps > 1)
        qsort(cm->eps, cm->n_eps, sizeof(*cm->eps), cmp_ep);
    xds_snapshot_unref(o);
}

static uint64_t mesh_hash(uint64_t h, const struct xds_cross_mesh *cm)
{
    h = xds_hash_str(h, cm->mesh);
    h = xds_hash_u64(h, (uint64_t)(cm->exists * 2 + cm->mtls));
    h = xds_hash_str(h, cm->ca_cert_pem);
    for (size_t i = 0; i < cm->n_eps; i++) {
        const struct xds_cross_endpoint *ep = &cm->eps[i];
        h = xds_hash_str(h, ep->service);
        h = xds_hash_str(h, ep->address);
        h = xds_hash_u64(h, ep->port);
        for (size_t t = 0; t < ep->ntags; t++) {
            h = xds_hash_str(h, ep->tags[t].key);
            h = xds_hash_str(h, ep->tags[t].value);
        }
    }
    return h;
}

void xds_crossmesh_set(struct xds_mesh_snapshot *s, const struct xds_cross_input *in, size_t n)
{
    xds_crossmesh_free(s);
    size_t nw;
    char **wanted = xds_crossmesh_wanted(s, &nw);
    s->cross = xcalloc(nw ? nw : 1, sizeof(*s->cross));
    s->n_cross = nw;
    s->cross_hash = XDS_HASH_INIT;
    for (size_t i = 0; i < nw; i++) {
        struct xds_cross_mesh *cm = &s->cross[i];
        cm->mesh = wanted[i];
        for (size_t j = 0; j < n; j++) {
            if (in[j].mesh_name && strcmp(in[j].mesh_name, cm->mesh) == 0) {
                fill_mesh(cm, &in[j]);
                break;
            }
        }
        s->cross_hash = mesh_hash(s->cross_hash, cm);
    }
    free(wanted);
}

void xds_crossmesh_load(struct store *st, struct xds_mesh_snapshot *s)
{
    size_t nw;
    char **wanted = xds_crossmesh_wanted(s, &nw);
    if (nw == 0) {
        free(wanted);
        xds_crossmesh_set(s, NULL, 0);
        return;
    }
    struct xds_cross_input *in = xcalloc(nw, sizeof(*in));
    struct resource **meshes = xcalloc(nw, sizeof(*meshes));
    struct resource_list *dps = xcalloc(nw, sizeof(*dps));
    struct resource_list *gws = xcalloc(nw, sizeof(*gws));
    char **cas = xcalloc(nw, sizeof(*cas));
    for (size_t i = 0; i < nw; i++) {
        in[i].mesh_name = wanted[i];
        struct err e = {0};
        int rc = store_get(st, &TYPE_MESH, "", wanted[i], &meshes[i], &e);
        if (rc == STORE_ENOTFOUND)
            continue;
        struct store_filter f = {.mesh = wanted[i]};
        if (rc < 0 || store_list(st, &TYPE_DATAPLANE, &f, &dps[i], &e) < 0 ||
            store_list(st, &TYPE_MESH_GATEWAY, &f, &gws[i], &e) < 0) {
            log_warn("xds", "mesh %s: cross-mesh outbounds to mesh %s: %s", s->mesh, wanted[i],
                     e.msg);
            continue; /* recorded as absent */
        }
        in[i].mesh = meshes[i];
        in[i].dataplanes = dps[i].items;
        in[i].n_dataplanes = dps[i].n;
        in[i].gateways = gws[i].items;
        in[i].n_gateways = gws[i].n;
        const char *eb = json_string_value(
            json_object_get(json_object_get(meshes[i]->spec, "mtls"), "enabledBackend"));
        if (eb && *eb) {
            struct err ce = {0};
            if (xds_snapshot_load_ca_cert(st, meshes[i], &cas[i], &ce) < 0)
                log_warn("xds", "mesh %s: cross-mesh outbounds to mesh %s: %s", s->mesh, wanted[i],
                         ce.msg);
            in[i].ca_cert_pem = cas[i];
        }
    }
    xds_crossmesh_set(s, in, nw);
    for (size_t i = 0; i < nw; i++) {
        resource_free(meshes[i]);
        resource_list_free(&dps[i]);
        resource_list_free(&gws[i]);
        free(cas[i]);
        free(wanted[i]);
    }
    free(wanted);
    free(in);
    free(meshes);
    free(dps);
    free(gws);
    free(cas);
}

int xds_crossmesh_depends_on(const struct xds_mesh_snapshot *s, const char *mesh)
{
    return s && mesh && xds_crossmesh_find(s, mesh) != NULL;
}

static int key_cross(const void *key, const void *elem)
{
    return strcmp(key, ((const struct xds_cross_mesh *)elem)->mesh);
}

const struct xds_cross_mesh *xds_crossmesh_find(const struct xds_mesh_snapshot *s, const char *mesh)
{
    return s->n_cross ? bsearch(mesh, s->cross, s->n_cross, sizeof(*s->cross), key_cross) : NULL;
}

void xds_crossmesh_free(struct xds_mesh_snapshot *s)
{
    for (size_t i = 0; i < s->n_cross; i++) {
        struct xds_cross_mesh *cm = &s->cross[i];
        for (size_t j = 0; j < cm->n_eps; j++) {
            struct xds_cross_endpoint *ep = &cm->eps[j];
            free(ep->service);
            free(ep->address);
            xds_tags_free(ep->tags, ep->ntags);
        }
        free(cm->eps);
        free(cm->ca_cert_pem);
        free(cm->mesh);
    }
    free(s->cross);
    s->cross = NULL;
    s->n_cross = 0;
}

static void buf_add(char **b, size_t *len, const char *s)
{
    size_t n = strlen(s);
    *b = xrealloc(*b, *len + n + 1);
    memcpy(*b + *len, s, n + 1);
    *len += n;
}

char *xds_crossmesh_cluster_name(const struct xds_cross_outbound *o)
{
    /* Kuma: DestinationClusterName over every tag of the outbound (sorted
     * keys, kuma.io/mesh among them), then "_<mesh>". */
    char *b = NULL;
    size_t len = 0;
    int mesh_done = 0;
    buf_add(&b, &len, "");
    for (size_t i = 0; i <= o->ntags; i++) {
        if (!mesh_done && (i == o->ntags || strcmp(XDS_TAG_MESH, o->tags[i].key) < 0)) {
            buf_add(&b, &len, XDS_TAG_MESH);
            buf_add(&b, &len, o->mesh);
            mesh_done = 1;
        }
        if (i == o->ntags)
            break;
        buf_add(&b, &len, o->tags[i].key);
        buf_add(&b, &len, o->tags[i].value);
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)b, len, md);
    free(b);
    return xasprintf("%s-%02x%02x%02x%02x%02x%02x%02x%02x_%s", o->service, md[0], md[1], md[2],
                     md[3], md[4], md[5], md[6], md[7], o->mesh);
}

/* Does the endpoint carry every tag of the outbound? */
static int ep_matches(const struct xds_cross_endpoint *ep, const struct xds_cross_outbound *o)
{
    if (strcmp(ep->service, o->service) != 0)
        return 0;
    for (size_t i = 0; i < o->ntags; i++) {
        if (strcmp(o->tags[i].key, XDS_TAG_SERVICE) == 0)
            continue;
        int found = 0;
        for (size_t t = 0; t < ep->ntags && !found; t++)
            found = strcmp(ep->tags[t].key, o->tags[i].key) == 0 &&
                    strcmp(ep->tags[t].value, o->tags[i].value) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

uint8_t *xds_crossmesh_cla(const struct xds_cross_mesh *cm, const struct xds_cross_outbound *o,
                           const char *cluster, size_t *len)
{
    struct pb_arena a = {0};
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        PB_NEW(&a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
               ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT);
    cla->cluster_name = pb_strdup(&a, cluster);
    size_t n = 0;
    for (size_t i = 0; cm && i < cm->n_eps; i++)
        n += ep_matches(&cm->eps[i], o);
    if (n > 0) {
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = pb_cla_locality(&a, cla, n);
        for (size_t i = 0; i < cm->n_eps; i++) {
            const struct xds_cross_endpoint *ep = &cm->eps[i];
            if (ep_matches(ep, o))
                loc->lb_endpoints[loc->n_lb_endpoints++] =
                    pb_eds_endpoint(&a, ep->address, ep->port, ep->tags, ep->ntags);
        }
    }
    uint8_t *out = pb_pack(&cla->base, len);
    pb_arena_free(&a);
    return out;
}
