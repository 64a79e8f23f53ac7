/*
 * xds_client — the ADS client of kuma-dp; the contract is in xds_client.h.
 *
 * Invariants:
 *  - the client thread is the only one that touches the channel, the
 *    completion queue and the call, except grpc_call_cancel() from
 *    dp_xds_client_stop(), which gRPC allows from any thread (c->mu guards
 *    the call pointer for it);
 *  - one SEND_MESSAGE in flight per call (gRPC's rule): requests wait in a
 *    small queue; one RECV_MESSAGE in flight, re-armed after each message;
 *  - a stream is over when RECV_STATUS_ON_CLIENT completed and no other batch
 *    is outstanding; only then are the call and the queue destroyed;
 *  - the per-type state (sets, accepted versions) outlives streams: a new
 *    stream starts from what is in force.
 *
 * A channel is created per stream, so the reconnect timing is this client's
 * backoff, not gRPC's channel-level one (up to 120 s by default).
 */
#include "dp/xds_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "dp/xds_map.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define LOG "xds"
#define ADS_METHOD                                                                                 \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define MAX_MESSAGE (64 * 1024 * 1024)

enum tag_kind { TAG_START, TAG_SEND, TAG_RECV, TAG_STATUS };

struct req {
    grpc_byte_buffer *bb;
    struct req *next;
};

struct dp_xds_client {
    struct dp_xds_client_opts o; /* strings below are owned copies */
    char *target, *ca, *token, *mesh, *name, *resource;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;         /* under mu */
    grpc_call *call;  /* under mu, for cancel */
    unsigned int rnd; /* jitter, client thread only */

    /* Client thread only. */
    struct dp_xds_set *sets[DP_XDS_NTYPES];
    char *accepted[DP_XDS_NTYPES]; /* version last ACKed */
    int received_all;

    /* Stats, read from other threads. */
    atomic_uint_fast64_t st_streams, st_responses, st_acks, st_nacks, st_applies;
    atomic_int st_connected;
};

/* Per-stream state, client thread only. */
struct stream {
    struct dp_xds_client *c;
    grpc_completion_queue *cq;
    grpc_call *call;
    int outstanding;
    int send_in_flight, status_done;
    int got_response;
    struct req *qhead, *qtail;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice status_details;
    int node_sent;
    struct {
        enum tag_kind kind;
    } tags[4];
};

/* ---- requests ------------------------------------------------------------------------------ */

static Google__Protobuf__Value *str_value(const char *s)
{
    Google__Protobuf__Value *v = xcalloc(1, sizeof(*v));
    google__protobuf__value__init(v);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

/* Serializes a DiscoveryRequest; the node goes with the first one. */
static grpc_byte_buffer *build_request(struct stream *st, enum dp_xds_type t, const char *version,
                                       const char *nonce, const char *error)
{
    struct dp_xds_client *c = st->c;
    Envoy__Service__Discovery__V3__DiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
    Google__Protobuf__Struct__FieldsEntry fe[3];
    Google__Protobuf__Struct__FieldsEntry *fes[3];
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    char *id = xasprintf("%s.%s", c->mesh, c->name);
    char port[16];
    snprintf(port, sizeof(port), "%d", c->o.admin_port);
    size_t nf = 0;
    if (!st->node_sent) {
        node.id = id;
        node.user_agent_name = "kuma-dp";
        node.user_agent_version_type_case =
            ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
        node.user_agent_version = "dev";
        const char *keys[3] = {"dataplane.resource", "dataplane.admin.port",
                               "dataplane.admin.address"};
        const char *vals[3] = {c->resource, port, "127.0.0.1"};
        for (int i = 0; i < 3; i++) {
            if (!vals[i])
                continue;
            google__protobuf__struct__fields_entry__init(&fe[nf]);
            fe[nf].key = (char *)keys[i];
            fe[nf].value = str_value(vals[i]);
            fes[nf] = &fe[nf];
            nf++;
        }
        md.n_fields = nf;
        md.fields = fes;
        node.metadata = &md;
        req.node = &node;
        st->node_sent = 1;
    }
    req.type_url = (char *)dp_xds_type_url(t);
    req.version_info = (char *)(version ? version : "");
    req.response_nonce = (char *)(nonce ? nonce : "");
    if (error) {
        status.code = 3; /* INVALID_ARGUMENT, as Envoy */
        status.message = (char *)error;
        req.error_detail = &status;
    }
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(&req);
    uint8_t *buf = xmalloc(len ? len : 1);
    envoy__service__discovery__v3__discovery_request__pack(&req, buf);
    for (size_t i = 0; i < nf; i++)
        free(fe[i].value);
    free(id);
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)buf, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    free(buf);
    return bb;
}

static int start(struct stream *st, const grpc_op *ops, size_t n, enum tag_kind k)
{
    st->outstanding++;
    grpc_call_error rc = grpc_call_start_batch(st->call, ops, n, &st->tags[k], NULL);
    if (rc != GRPC_CALL_OK) {
        st->outstanding--;
        log_error(LOG, "grpc_call_start_batch: %d", (int)rc);
        return -1;
    }
    return 0;
}

static void send_next(struct stream *st)
{
    if (st->send_in_flight || st->status_done || !st->qhead)
        return;
    struct req *r = st->qhead;
    st->qhead = r->next;
    if (!st->qhead)
        st->qtail = NULL;
    st->send_bb = r->bb;
    free(r);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = st->send_bb;
    st->send_in_flight = 1;
    if (start(st, &op, 1, TAG_SEND) < 0) {
        st->send_in_flight = 0;
        grpc_byte_buffer_destroy(st->send_bb);
        st->send_bb = NULL;
    }
}

static void enqueue(struct stream *st, enum dp_xds_type t, const char *version, const char *nonce,
                    const char *error)
{
    struct req *r = xcalloc(1, sizeof(*r));
    r->bb = build_request(st, t, version, nonce, error);
    if (st->qtail)
        st->qtail->next = r;
    else
        st->qhead = r;
    st->qtail = r;
    send_next(st);
}

static void recv_next(struct stream *st)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &st->recv_bb;
    start(st, &op, 1, TAG_RECV);
}

/* ---- responses ----------------------------------------------------------------------------- */

static void set_accepted(struct dp_xds_client *c, enum dp_xds_type t, const char *v)
{
    free(c->accepted[t]);
    c->accepted[t] = xstrdup(v ? v : "");
}

/* Handles one DiscoveryResponse: stage, build, apply, then ACK or NACK. */
static void on_response(struct stream *st, const uint8_t *data, size_t len)
{
    struct dp_xds_client *c = st->c;
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);
    if (!resp) {
        log_warn(LOG, "could not decode a DiscoveryResponse (%zu bytes); ignored", len);
        return;
    }
    atomic_fetch_add(&c->st_responses, 1);
    st->got_response = 1;
    atomic_store(&c->st_connected, 1);
    int ti = dp_xds_type_from_url(resp->type_url);
    if (ti < 0) {
        log_debug(LOG, "ignoring a response of unsubscribed type %s", resp->type_url);
        envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
        return;
    }
    enum dp_xds_type t = (enum dp_xds_type)ti;
    struct err e = {{0}};
    const void **vals = xcalloc(resp->n_resources + 1, sizeof(*vals));
    size_t *lens = xcalloc(resp->n_resources + 1, sizeof(*lens));
    const char **urls = xcalloc(resp->n_resources + 1, sizeof(*urls));
    for (size_t i = 0; i < resp->n_resources; i++) {
        vals[i] = resp->resources[i]->value.data;
        lens[i] = resp->resources[i]->value.len;
        urls[i] = resp->resources[i]->type_url;
    }
    struct dp_xds_set *set = NULL;
    int rc =
        dp_xds_set_decode(t, resp->version_info, vals, lens, urls, resp->n_resources, &set, &e);
    free(vals);
    free(lens);
    free(urls);
    struct dp_xds_set *old = c->sets[t];
    int applied = 0;
    if (rc == 0) {
        c->sets[t] = set;
        int all = 1;
        for (int i = 0; i < DP_XDS_NTYPES; i++)
            all &= c->sets[i] != NULL;
        struct dp_config *cfg = NULL;
        int missing = 0;
        rc = dp_xds_build(c->sets, &cfg, &missing, &e);
        if (rc == 0 && all && !missing) {
            rc = c->o.apply(c->o.ctx, cfg, &e);
            applied = rc == 0;
        } else if (rc == 0) {
            log_debug(LOG, "%s version %s staged (%s)", dp_xds_type_name(t), resp->version_info,
                      all ? "waiting for SDS secrets" : "waiting for every type");
            dp_config_free(cfg);
        }
        if (rc < 0) {
            c->sets[t] = old;
            old = set;
        }
        dp_xds_set_free(old);
    }
    if (rc == 0) {
        set_accepted(c, t, resp->version_info);
        atomic_fetch_add(&c->st_acks, 1);
        if (applied) {
            atomic_fetch_add(&c->st_applies, 1);
            if (!c->received_all)
                log_info(LOG, "first configuration from the control plane applied");
            c->received_all = 1;
        }
        log_debug(LOG, "%s version %s ACK", dp_xds_type_name(t), resp->version_info);
        enqueue(st, t, resp->version_info, resp->nonce, NULL);
    } else {
        atomic_fetch_add(&c->st_nacks, 1);
        log_warn(LOG, "%s version %s rejected (NACK): %s", dp_xds_type_name(t), resp->version_info,
                 e.msg);
        enqueue(st, t, c->accepted[t], resp->nonce, e.msg);
    }
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
}

/* ---- one stream ---------------------------------------------------------------------------- */

static grpc_channel *make_channel(struct dp_xds_client *c)
{
    grpc_arg args[8];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = MAX_MESSAGE;
    args[1].type = GRPC_ARG_STRING;
    args[1].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[1].value.string = (char *)"kuma-dp";
    /* A fresh connection per stream (see the file comment). */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[2].value.integer = 1;
    /* Keepalive: PINGs at a fixed period whatever the traffic (an idle ADS
     * stream carries no data for hours), each to be ACKed within the
     * timeout. gRPC's defaults would not ping at all. */
    uint32_t ka = c->o.keepalive_time_ms ? c->o.keepalive_time_ms : DP_XDS_KEEPALIVE_TIME_MS;
    uint32_t kt =
        c->o.keepalive_timeout_ms ? c->o.keepalive_timeout_ms : DP_XDS_KEEPALIVE_TIMEOUT_MS;
    static const char *const ka_keys[5] = {
        GRPC_ARG_KEEPALIVE_TIME_MS, GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
        GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
        GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS};
    int ka_vals[5] = {(int)ka, (int)kt, 1, 0 /* unlimited */, (int)ka};
    for (int i = 0; i < 5; i++) {
        args[3 + i].type = GRPC_ARG_INTEGER;
        args[3 + i].key = (char *)ka_keys[i];
        args[3 + i].value.integer = ka_vals[i];
    }
    grpc_channel_args ca = {8, args};
    grpc_channel_credentials *creds = c->ca ? grpc_ssl_credentials_create(c->ca, NULL, NULL, NULL)
                                            : grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(c->target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* Runs one stream to its end. Returns whether it delivered a response. */
static int run_stream(struct dp_xds_client *c)
{
    struct stream st;
    memset(&st, 0, sizeof(st));
    st.c = c;
    for (int i = 0; i < 4; i++)
        st.tags[i].kind = (enum tag_kind)i;
    grpc_metadata_array_init(&st.initial_md);
    grpc_metadata_array_init(&st.trailing_md);
    grpc_channel *ch = make_channel(c);
    st.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_slice method = grpc_slice_from_static_string(ADS_METHOD);
    st.call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, st.cq, method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    pthread_mutex_lock(&c->mu);
    int stop = c->stop;
    c->call = st.call;
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(&c->st_streams, 1);

    grpc_metadata md;
    memset(&md, 0, sizeof(md));
    md.key = grpc_slice_from_static_string("authorization");
    md.value = grpc_slice_from_copied_string(c->token ? c->token : "");
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = c->token ? 1 : 0;
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &st.initial_md;
    start(&st, ops, 2, TAG_START);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &st.trailing_md;
    ops[0].data.recv_status_on_client.status = &st.status;
    ops[0].data.recv_status_on_client.status_details = &st.status_details;
    start(&st, ops, 1, TAG_STATUS);
    if (stop)
        grpc_call_cancel(st.call, NULL);

    /* Clusters and endpoints first, then listeners and secrets, as Envoy
     * subscribes; the versions in force tell kuma-cp what this proxy has. */
    static const enum dp_xds_type order[] = {DP_XDS_CDS, DP_XDS_EDS, DP_XDS_LDS, DP_XDS_SDS};
    for (size_t i = 0; i < 4; i++)
        enqueue(&st, order[i], c->accepted[order[i]], NULL, NULL);
    recv_next(&st);

    while (st.outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(st.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        st.outstanding--;
        enum tag_kind k = *(enum tag_kind *)ev.tag;
        switch (k) {
        case TAG_START:
            break;
        case TAG_SEND:
            st.send_in_flight = 0;
            grpc_byte_buffer_destroy(st.send_bb);
            st.send_bb = NULL;
            if (ev.success)
                send_next(&st);
            break;
        case TAG_RECV:
            if (!ev.success || !st.recv_bb)
                break; /* the server ended the stream: the status follows */
            {
                grpc_byte_buffer_reader rd;
                if (grpc_byte_buffer_reader_init(&rd, st.recv_bb)) {
                    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
                    grpc_byte_buffer_reader_destroy(&rd);
                    on_response(&st, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
                    grpc_slice_unref(s);
                }
                grpc_byte_buffer_destroy(st.recv_bb);
                st.recv_bb = NULL;
            }
            if (!st.status_done)
                recv_next(&st);
            break;
        case TAG_STATUS: {
            st.status_done = 1;
            char *details = grpc_slice_to_c_string(st.status_details);
            pthread_mutex_lock(&c->mu);
            stop = c->stop;
            pthread_mutex_unlock(&c->mu);
            if (!stop)
                log_warn(LOG, "ADS stream to %s ended: status %d: %s", c->target, (int)st.status,
                         details);
            gpr_free(details);
            break;
        }
        }
    }
    pthread_mutex_lock(&c->mu);
    c->call = NULL;
    pthread_mutex_unlock(&c->mu);
    atomic_store(&c->st_connected, 0);
    for (struct req *r = st.qhead, *n; r; r = n) {
        n = r->next;
        grpc_byte_buffer_destroy(r->bb);
        free(r);
    }
    if (st.recv_bb)
        grpc_byte_buffer_destroy(st.recv_bb);
    grpc_slice_unref(st.status_details);
    grpc_slice_unref(md.value);
    grpc_metadata_array_destroy(&st.initial_md);
    grpc_metadata_array_destroy(&st.trailing_md);
    grpc_call_unref(st.call);
    grpc_completion_queue_shutdown(st.cq);
    while (grpc_completion_queue_next(st.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(st.cq);
    grpc_channel_destroy(ch);
    return st.got_response;
}

static void *client_main(void *arg)
{
    struct dp_xds_client *c = arg;
    uint32_t initial = c->o.backoff_initial_ms ? c->o.backoff_initial_ms : 1000;
    uint32_t max = c->o.backoff_max_ms ? c->o.backoff_max_ms : 30000;
    uint32_t backoff = initial;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        if (run_stream(c))
            backoff = initial;
        /* Equal jitter: half fixed, half random, so proxies that lost the
         * same control plane do not come back in lockstep. */
        uint32_t delay = backoff / 2 + (uint32_t)(rand_r(&c->rnd) % (backoff / 2 + 1));
        backoff = backoff > max / 2 ? max : backoff * 2;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += delay / 1000;
        until.tv_nsec += (long)(delay % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->mu);
        if (!c->stop)
            log_info(LOG, "reconnecting to %s in %u ms", c->target, delay);
        while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

int dp_xds_client_start(const struct dp_xds_client_opts *o, struct dp_xds_client **out,
                        struct err *e)
{
    if (!o->target || !o->mesh || !o->name || !o->apply)
        return err_set(e, "xDS client: target, mesh, name and apply are required");
    struct dp_xds_client *c = xcalloc(1, sizeof(*c));
    c->o = *o;
    c->target = xstrdup(o->target);
    c->ca = o->ca_cert_pem ? xstrdup(o->ca_cert_pem) : NULL;
    c->token = o->token ? xstrdup(o->token) : NULL;
    c->mesh = xstrdup(o->mesh);
    c->name = xstrdup(o->name);
    c->resource = o->dataplane_resource ? xstrdup(o->dataplane_resource) : NULL;
    c->rnd = (unsigned int)(time(NULL) ^ (getpid() << 8));
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    grpc_init();
    if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
        grpc_shutdown();
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c->target);
        free(c->ca);
        free(c->token);
        free(c->mesh);
        free(c->name);
        free(c->resource);
        free(c);
        return err_set(e, "xDS client: cannot start its thread");
    }
    *out = c;
    return 0;
}

void dp_xds_client_get_stats(struct dp_xds_client *c, struct dp_xds_client_stats *out)
{
    out->streams = atomic_load(&c->st_streams);
    out->responses = atomic_load(&c->st_responses);
    out->acks = atomic_load(&c->st_acks);
    out->nacks = atomic_load(&c->st_nacks);
    out->applies = atomic_load(&c->st_applies);
    out->connected = atomic_load(&c->st_connected);
}

void dp_xds_client_stop(struct dp_xds_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    if (c->call)
        grpc_call_cancel(c->call, NULL);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    for (int i = 0; i < DP_XDS_NTYPES; i++) {
        dp_xds_set_free(c->sets[i]);
        free(c->accepted[i]);
    }
    grpc_shutdown();
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->target);
    free(c->ca);
    free(c->token);
    free(c->mesh);
    free(c->name);
    free(c->resource);
    free(c);
}
