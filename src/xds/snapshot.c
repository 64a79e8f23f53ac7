/*
 * snapshot — see snapshot.h. Endpoints of a service: every ready inbound
 * tagged with that kuma.io/service, at the inbound's address and port, with
 * its tags as `envoy.lb` metadata (what tag-based subsets will select on).
 * Only IP literals are usable as EDS addresses; other addresses are skipped.
 */
#include "xds/snapshot.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/workload.h"
#include "core/log.h"
#include "core/types.h"
#include "mesh/identity.h"
#include "xds/crossmesh.h"
#include "xds/generator.h"
#include "xds/pb.h"

const struct res_type *const xds_policy_types[] = {
    &TYPE_TRAFFIC_PERMISSION,
    &TYPE_MESH_TRAFFIC_PERMISSION,
    &TYPE_TRAFFIC_ROUTE,
    &TYPE_MESH_TIMEOUT,
    &TYPE_MESH_RETRY,
    &TYPE_MESH_CIRCUIT_BREAKER,
    &TYPE_TIMEOUT,
    &TYPE_RETRY,
    &TYPE_CIRCUIT_BREAKER,
    &TYPE_HEALTH_CHECK,
    &TYPE_MESH_HTTP_ROUTE,
    &TYPE_MESH_TCP_ROUTE,
    &TYPE_SECRET,       /* builtin gateways' certificates (HTTPS listeners) */
    &TYPE_MESH_GATEWAY, /* not a policy, but builtin gateways read it the same way */
};
const size_t xds_n_policy_types = sizeof(xds_policy_types) / sizeof(xds_policy_types[0]);

int xds_is_policy_type(const struct res_type *t)
{
    for (size_t i = 0; i < xds_n_policy_types; i++)
        if (xds_policy_types[i] == t)
            return 1;
    return 0;
}

static int type_rank(const struct res_type *t)
{
    for (size_t i = 0; i < xds_n_policy_types; i++)
        if (xds_policy_types[i] == t)
            return (int)i;
    return -1;
}

static int cmp_policy(const void *a, const void *b)
{
    const struct xds_policy *x = a, *y = b;
    int c = type_rank(x->type) - type_rank(y->type);
    return c ? c : strcmp(x->name, y->name);
}

/* The enabled backend object of a Mesh spec, or NULL. */
static const json_t *enabled_backend(const json_t *spec)
{
    const json_t *mtls = json_object_get(spec, "mtls");
    const char *eb = json_string_value(json_object_get(mtls, "enabledBackend"));
    if (!eb || !*eb)
        return NULL;
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(mtls, "backends"), i, b)
    {
        const char *n = json_string_value(json_object_get(b, "name"));
        if (n && strcmp(n, eb) == 0)
            return b;
    }
    return NULL;
}

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
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = pb_cla_locality(&a, cla, n);
        for (size_t i = 0; i < n; i++)
            loc->lb_endpoints[loc->n_lb_endpoints++] =
                pb_eds_endpoint(&a, eps[i].address, eps[i].port, eps[i].in->tags, eps[i].in->ntags);
    }
    uint8_t *out = pb_pack(&cla->base, len);
    pb_arena_free(&a);
    return out;
}

uint8_t *xds_empty_cla(const char *service, size_t *len)
{
    return build_cla(service, NULL, 0, len);
}

static struct xds_dpset *dpset_build(const char *mesh_name, struct resource *const *dataplanes,
                                     size_t n);

static void dpset_unref(struct xds_dpset *s)
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
    free(s);
}

struct xds_mesh_snapshot *xds_snapshot_build(const char *mesh_name, const struct resource *mesh,
                                             struct resource *const *dataplanes, size_t n)
{
    struct xds_snapshot_input in = {
        .mesh_name = mesh_name, .mesh = mesh, .dataplanes = dataplanes, .n_dataplanes = n};
    return xds_snapshot_build_from(&in);
}

struct xds_mesh_snapshot *xds_snapshot_build_from(const struct xds_snapshot_input *input)
{
    const char *mesh_name = input->mesh_name;
    const struct resource *mesh = input->mesh;
    struct resource *const *dataplanes = input->dataplanes;
    size_t n = input->n_dataplanes;
    struct xds_mesh_snapshot *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->unit_mu, NULL);
    s->mesh = xstrdup(mesh_name);
    s->passthrough = 1;
    s->mesh_hash = XDS_HASH_INIT;
    s->cert_lifetime_ns = CA_WORKLOAD_DEFAULT_LIFETIME_NS;
    if (mesh) {
        json_t *pt = json_object_get(
            json_object_get(json_object_get(mesh->spec, "networking"), "outbound"), "passthrough");
        if (json_is_false(pt))
            s->passthrough = 0;
        const char *eb = json_string_value(
            json_object_get(json_object_get(mesh->spec, "mtls"), "enabledBackend"));
        s->mtls = eb && *eb;
        const json_t *b = enabled_backend(mesh->spec);
        if (s->mtls) {
            s->mtls_backend = xstrdup(eb);
            const char *bt = json_string_value(json_object_get(b, "type"));
            s->mtls_backend_type = xstrdup(bt ? bt : "builtin");
            /* CertificateAuthorityBackend.mode: STRICT (0, default) or
             * PERMISSIVE (1), as protojson reads an enum. */
            const json_t *mode = json_object_get(b, "mode");
            s->mtls_permissive =
                (json_is_string(mode) && strcmp(json_string_value(mode), "PERMISSIVE") == 0) ||
                (json_is_integer(mode) && json_integer_value(mode) == 1);
            const char *exp = json_string_value(json_object_get(
                json_object_get(json_object_get(b, "dpCert"), "rotation"), "expiration"));
            int64_t ns;
            struct err e;
            if (exp && *exp && ca_parse_duration(exp, &ns, &e) == 0 && ns > 0)
                s->cert_lifetime_ns = ns;
        }
        char *text = json_dumps(mesh->spec, JSON_SORT_KEYS | JSON_COMPACT);
        s->mesh_hash = xds_hash_str(XDS_HASH_INIT, text);
        free(text);
    }
    if (s->mtls) {
        if (input->ca_cert_pem) {
            s->ca_cert_pem = xstrdup(input->ca_cert_pem);
            if (input->ca_key_pem) {
                struct err e;
                if (ca_signer_new(input->ca_cert_pem, input->ca_key_pem, &s->signer, &e) < 0)
                    s->ca_error = xasprintf("could not load the CA of backend %s: %s",
                                            s->mtls_backend, e.msg);
            }
        } else {
            s->ca_error =
                xstrdup(input->ca_error ? input->ca_error : "the mesh CA is not available");
        }
        s->ca_hash = xds_hash_str(xds_hash_str(XDS_HASH_INIT, s->mtls_backend), s->ca_cert_pem);
        if (input->all_ca_pem) {
            s->all_ca_pem = xstrdup(input->all_ca_pem);
            s->ca_hash = xds_hash_str(s->ca_hash, s->all_ca_pem);
        }
        if (s->ca_error)
            log_warn("xds", "mesh %s: %s", mesh_name, s->ca_error);
    }

    /* Policies, in a stable order. */
    s->policies = xcalloc(input->n_policies ? input->n_policies : 1, sizeof(*s->policies));
    for (size_t i = 0; i < input->n_policies; i++) {
        const struct resource *p = input->policies[i];
        if (strcmp(p->mesh, mesh_name) != 0 || !xds_is_policy_type(p->type))
            continue;
        struct xds_policy *x = &s->policies[s->n_policies++];
        x->type = p->type;
        x->name = xstrdup(p->name);
        x->spec = json_incref(p->spec);
        if (p->type == &TYPE_TRAFFIC_PERMISSION)
            s->has_traffic_permissions = 1;
        const char *kind =
            json_string_value(json_object_get(json_object_get(p->spec, "targetRef"), "kind"));
        if (kind && strcmp(kind, "Dataplane") == 0)
            s->dataplane_refs = 1;
    }
    qsort(s->policies, s->n_policies, sizeof(*s->policies), cmp_policy);
    s->policy_hash = XDS_HASH_INIT;
    for (size_t i = 0; i < s->n_policies; i++) {
        char *text = json_dumps(s->policies[i].spec, JSON_SORT_KEYS | JSON_COMPACT);
        s->policy_hash = xds_hash_str(s->policy_hash, s->policies[i].type->name);
        s->policy_hash = xds_hash_str(s->policy_hash, s->policies[i].name);
        s->policy_hash = xds_hash_str(s->policy_hash, text);
        free(text);
    }

    if (input->reuse) {
        s->dpset = input->reuse->dpset;
        atomic_fetch_add(&s->dpset->refs, 1);
    } else {
        s->dpset = dpset_build(mesh_name, dataplanes, n);
    }
    s->dataplanes = s->dpset->dataplanes;
    s->n_dataplanes = s->dpset->n_dataplanes;
    s->services = s->dpset->services;
    s->n_services = s->dpset->n_services;
    return s;
}

static struct xds_dpset *dpset_build(const char *mesh_name, struct resource *const *dataplanes,
                                     size_t n)
{
    struct xds_dpset *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
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
        svc->hash = xds_hash_fast(XDS_HASH_INIT, svc->cla, svc->cla_len);
        svc->n_endpoints = j - i;
        svc->protocol = eps[i].in->protocol;
        for (size_t k = i + 1; k < j; k++)
            svc->protocol = xds_protocol_common(svc->protocol, eps[k].in->protocol);
        i = j;
    }
    free(eps);
    return s;
}

/* Loads the enabled backend's CA pair: a builtin backend's two Secrets, or a
 * provided backend's DataSources. */
static int load_ca(struct store *st, const struct resource *m, char **cert, char **key,
                   struct err *e)
{
    const json_t *b = enabled_backend(m->spec);
    if (!b)
        return err_set(e, "enabled backend not found");
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *type = json_string_value(json_object_get(b, "type"));
    if (type && strcmp(type, "provided") == 0)
        return ca_provided_load(m->name, json_object_get(b, "conf"), identity_secret_fetch, st,
                                cert, key, e);
    if (type && strcmp(type, "builtin") != 0)
        return err_set(e, "CA backend type %s is not supported", type);
    char *cn = ca_builtin_cert_secret_name(m->name, name);
    char *kn = ca_builtin_key_secret_name(m->name, name);
    size_t len;
    char *c = NULL, *k = NULL;
    int rc = identity_secret_fetch(st, m->name, cn, &c, &len, e);
    if (rc == 0)
        rc = identity_secret_fetch(st, m->name, kn, &k, &len, e);
    if (rc == CA_NOT_FOUND)
        rc = err_set(e, "the CA secrets of builtin backend %s do not exist", name);
    free(cn);
    free(kn);
    if (rc < 0) {
        free(c);
        free(k);
        return -1;
    }
    *cert = c;
    *key = k;
    return 0;
}

int xds_snapshot_load_ca_cert(struct store *st, const struct resource *mesh, char **cert,
                              struct err *e)
{
    char *key = NULL;
    if (load_ca(st, mesh, cert, &key, e) < 0)
        return -1;
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    return 0;
}

/* Does a MeshGateway of the mesh have a crossMesh listener? */
static int has_cross_mesh_gateway(struct resource *const *pol, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (pol[i]->type != &TYPE_MESH_GATEWAY)
            continue;
        const json_t *ls = json_object_get(json_object_get(pol[i]->spec, "conf"), "listeners");
        size_t k;
        json_t *l;
        json_array_foreach(ls, k, l) if (json_is_true(json_object_get(l, "crossMesh"))) return 1;
    }
    return 0;
}

/* The CA certificates of every mesh with mTLS enabled, in name order (Kuma's
 * mesh_ca:secret:all for cross-mesh gateways). A mesh whose CA cannot be
 * read is left out with a warning. NULL when there is none. */
static char *load_all_cas(struct store *st)
{
    struct resource_list ml = {0};
    struct err e = {0};
    if (store_list(st, &TYPE_MESH, &(struct store_filter){0}, &ml, &e) < 0) {
        log_warn("xds", "cross-mesh CA bundle: %s", e.msg);
        return NULL;
    }
    char *all = NULL;
    for (size_t i = 0; i < ml.n; i++) {
        const struct resource *m = ml.items[i];
        const char *eb =
            json_string_value(json_object_get(json_object_get(m->spec, "mtls"), "enabledBackend"));
        if (!eb || !*eb)
            continue;
        char *cert = NULL, *key = NULL;
        struct err ce = {0};
        if (load_ca(st, m, &cert, &key, &ce) < 0) {
            log_warn("xds", "cross-mesh CA bundle: mesh %s: %s", m->name, ce.msg);
            continue;
        }
        size_t kl = key ? strlen(key) : 0;
        if (key) {
            OPENSSL_cleanse(key, kl);
            free(key);
        }
        size_t cl = strlen(cert), al = all ? strlen(all) : 0;
        int nl = cl && cert[cl - 1] != '\n';
        all = xrealloc(all, al + cl + nl + 1);
        memcpy(all + al, cert, cl);
        if (nl)
            all[al + cl] = '\n';
        all[al + cl + nl] = '\0';
        free(cert);
    }
    resource_list_free(&ml);
    return all;
}

static int snapshot_load(struct store *st, const char *mesh, const struct xds_mesh_snapshot *prev,
                         struct xds_mesh_snapshot **out, struct err *e)
{
    struct resource *m = NULL;
    int rc = store_get(st, &TYPE_MESH, "", mesh, &m, e);
    if (rc < 0)
        return rc;
    struct resource_list l = {0};
    struct store_filter f = {.mesh = mesh};
    if (!prev && (rc = store_list(st, &TYPE_DATAPLANE, &f, &l, e)) < 0) {
        resource_free(m);
        return rc;
    }
    /* Policies of every type, into one array (items moved, lists freed). */
    struct resource **pol = NULL;
    size_t npol = 0;
    for (size_t t = 0; t < xds_n_policy_types; t++) {
        struct resource_list pl = {0};
        if ((rc = store_list(st, xds_policy_types[t], &f, &pl, e)) < 0) {
            for (size_t i = 0; i < npol; i++)
                resource_free(pol[i]);
            free(pol);
            resource_list_free(&l);
            resource_free(m);
            return rc;
        }
        pol = xrealloc(pol, (npol + pl.n + 1) * sizeof(*pol));
        for (size_t i = 0; i < pl.n; i++)
            pol[npol++] = pl.items[i];
        pl.n = 0;
        resource_list_free(&pl);
    }
    struct xds_snapshot_input in = {.mesh_name = mesh,
                                    .mesh = m,
                                    .dataplanes = l.items,
                                    .n_dataplanes = l.n,
                                    .policies = pol,
                                    .n_policies = npol,
                                    .reuse = prev};
    char *cert = NULL, *key = NULL;
    struct err ce = {0};
    const char *eb =
        json_string_value(json_object_get(json_object_get(m->spec, "mtls"), "enabledBackend"));
    if (eb && *eb) {
        if (load_ca(st, m, &cert, &key, &ce) == 0) {
            in.ca_cert_pem = cert;
            in.ca_key_pem = key;
        } else {
            in.ca_error = ce.msg;
        }
    }
    char *all_ca = eb && *eb && has_cross_mesh_gateway(pol, npol) ? load_all_cas(st) : NULL;
    in.all_ca_pem = all_ca;
    *out = xds_snapshot_build_from(&in);
    xds_crossmesh_load(st, *out); /* other meshes' cross-mesh gateways (crossmesh.h) */
    free(all_ca);
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    free(cert);
    for (size_t i = 0; i < npol; i++)
        resource_free(pol[i]);
    free(pol);
    resource_list_free(&l);
    resource_free(m);
    return 0;
}

int xds_snapshot_load(struct store *st, const char *mesh, struct xds_mesh_snapshot **out,
                      struct err *e)
{
    return snapshot_load(st, mesh, NULL, out, e);
}

int xds_snapshot_reload(struct store *st, const char *mesh, const struct xds_mesh_snapshot *prev,
                        struct xds_mesh_snapshot **out, struct err *e)
{
    return snapshot_load(st, mesh, prev, out, e);
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
    xds_units_free(s->unit_list);
    hmap_free(&s->units);
    pthread_mutex_destroy(&s->unit_mu);
    xds_crossmesh_free(s);
    dpset_unref(s->dpset);
    for (size_t i = 0; i < s->n_policies; i++) {
        free(s->policies[i].name);
        json_decref(s->policies[i].spec);
    }
    free(s->policies);
    ca_signer_free(s->signer);
    free(s->ca_cert_pem);
    free(s->all_ca_pem);
    free(s->ca_error);
    free(s->mtls_backend);
    free(s->mtls_backend_type);
    free(s->mesh);
    free(s);
}

/* bsearch comparators: a name against an element of the sorted arrays. */
static int key_dp(const void *key, const void *elem)
{
    return strcmp(key, (*(struct xds_dataplane *const *)elem)->name);
}

static int key_service(const void *key, const void *elem)
{
    return strcmp(key, ((const struct xds_service *)elem)->name);
}

const struct xds_dataplane *xds_snapshot_dataplane(const struct xds_mesh_snapshot *s,
                                                   const char *name)
{
    struct xds_dataplane *const *p = s->n_dataplanes ? bsearch(name, s->dataplanes, s->n_dataplanes,
                                                               sizeof(*s->dataplanes), key_dp)
                                                     : NULL;
    return p ? *p : NULL;
}

const struct xds_service *xds_snapshot_service(const struct xds_mesh_snapshot *s, const char *name)
{
    return s->n_services
               ? bsearch(name, s->services, s->n_services, sizeof(*s->services), key_service)
               : NULL;
}
