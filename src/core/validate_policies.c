/*
 * validate_policies — validators of the legacy source/destination policies
 * (TrafficPermission, TrafficRoute, TrafficLog, TrafficTrace, HealthCheck,
 * CircuitBreaker, Retry, Timeout, FaultInjection, RateLimit), of
 * ExternalService, Secret/GlobalSecret and MeshGateway, and of the
 * targetRef policies (MeshTrafficPermission, MeshTimeout, MeshRetry,
 * MeshCircuitBreaker). Each follows the matching *_validator.go in Kuma:
 * same order of checks, field paths and messages.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/resource.h"
#include "core/validate.h"
#include "core/validate_internal.h"
#include "core/verr.h"

#define SPEC(r) ((r) ? (r)->spec : NULL)

/* ---- shared pieces ---- */

/* Sources as most legacy policies check them. */
static void sources(struct verr *ve, struct vpath *p, const json_t *spec, int require_service)
{
    struct tag_opts o = {.require_one = 1, .require_service = require_service};
    v_selectors(ve, p, spec, "sources", 1, 0, &o);
}

/* Destinations limited to exactly one kuma.io/service tag. */
static void destinations_only_service(struct verr *ve, struct vpath *p, const json_t *spec)
{
    struct tag_opts o = {.require_service = 1, .only_service = 1};
    v_selectors(ve, p, spec, "destinations", 1, 0, &o);
}

/* A google.protobuf wrapper number (UInt32Value etc.) at key: 1 if set. */
static int num_field(struct verr *ve, struct vpath *p, const json_t *o, const char *key,
                     double *out)
{
    return vj_num(ve, p, o, key, out);
}

/* ---- TrafficPermission, TrafficLog, TrafficTrace ---- */

void validate_traffic_permission(const struct resource *r, struct verr *ve)
{
    struct vpath p;
    vp_init(&p, "");
    struct tag_opts o = {.require_one = 1};
    v_selectors(ve, &p, SPEC(r), "sources", 1, 0, &o);
    v_selectors(ve, &p, SPEC(r), "destinations", 1, 0, &o);
    vp_free(&p);
}

void validate_traffic_log(const struct resource *r, struct verr *ve)
{
    struct vpath p;
    vp_init(&p, "");
    sources(ve, &p, SPEC(r), 1);
    destinations_only_service(ve, &p, SPEC(r));
    const json_t *conf = vj_obj(ve, &p, SPEC(r), "conf");
    if (conf) {
        vp_field(&p, "conf");
        vj_str(ve, &p, conf, "backend");
    }
    vp_free(&p);
}

void validate_traffic_trace(const struct resource *r, struct verr *ve)
{
    struct vpath p;
    vp_init(&p, "");
    struct tag_opts o = {.require_one = 1};
    v_selectors(ve, &p, SPEC(r), "selectors", 1, 0, &o);
    const json_t *conf = vj_obj(ve, &p, SPEC(r), "conf");
    if (conf) {
        vp_field(&p, "conf");
        vj_str(ve, &p, conf, "backend");
    }
    vp_free(&p);
}

/* ---- TrafficRoute ---- */

static void tr_selector(struct verr *ve, struct vpath *p, const json_t *tags)
{
    struct tag_opts o = {.require_one = 1, .require_service = 1};
    v_selector(ve, p, tags, &o);
}

static void tr_split(struct verr *ve, struct vpath *p, const json_t *split)
{
    size_t m = vp_field(p, "split");
    if (json_array_size(split) == 0) {
        vadd(ve, p, "must have at least one element");
        vp_reset(p, m);
        return;
    }
    double total = 0;
    for (size_t i = 0; i < json_array_size(split); i++) {
        const json_t *e = vj_elem_obj(ve, p, split, i);
        size_t mi = vp_index(p, i);
        double w = 0;
        if (!e || !num_field(ve, p, e, "weight", &w)) {
            if (!e || !vj_present(e, "weight"))
                vadd_at(ve, p, "weight", "needs to be defined");
        } else if (w > 0) {
            total += w;
        }
        const json_t *dest = e ? vj_tags(ve, p, e, "destination") : NULL;
        size_t md = vp_field(p, "destination");
        tr_selector(ve, p, dest);
        vp_reset(p, md);
        vp_reset(p, mi);
    }
    if (total == 0)
        vadd(ve, p, "there must be at least one split entry with weight above 0");
    vp_reset(p, m);
}

/* validateSplitAndDestination at p. */
static void tr_split_dest(struct verr *ve, struct vpath *p, const json_t *o)
{
    const json_t *split = vj_arr(ve, p, o, "split");
    const json_t *dest = vj_tags(ve, p, o, "destination");
    if (!split && !dest)
        vadd(ve, p, "requires either \"destination\" or \"split\"");
    if (split && dest)
        vadd(ve, p, "\"split\" cannot be defined at the same time as \"destination\"");
    if (split)
        tr_split(ve, p, split);
    if (dest) {
        size_t m = vp_field(p, "destination");
        tr_selector(ve, p, dest);
        vp_reset(p, m);
    }
}

static void tr_string_matcher(struct verr *ve, struct vpath *p, const json_t *m)
{
    if (!json_is_object(m)) {
        vadd(ve, p, VMSG_OBJECT);
        return;
    }
    if (vj_present(m, "exact")) {
        vj_str(ve, p, m, "exact");
    } else if (vj_present(m, "prefix")) {
        const char *s = vj_str(ve, p, m, "prefix");
        if (s && !*s)
            vadd_at(ve, p, "prefix", "cannot be empty");
    } else if (vj_present(m, "regex")) {
        const char *s = vj_str(ve, p, m, "regex");
        if (s && !*s)
            vadd_at(ve, p, "regex", "cannot be empty");
    } else {
        vadd(ve, p, "cannot be empty. Available options: \"exact\", \"split\" or \"regex\"");
    }
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void tr_match(struct verr *ve, struct vpath *p, const json_t *match)
{
    size_t m = vp_field(p, "match");
    const json_t *method = json_is_object(match) ? json_object_get(match, "method") : NULL;
    const json_t *path = json_is_object(match) ? json_object_get(match, "path") : NULL;
    const json_t *headers = json_is_object(match) ? json_object_get(match, "headers") : NULL;
    if (json_is_null(method))
        method = NULL;
    if (json_is_null(path))
        path = NULL;
    if (json_is_null(headers))
        headers = NULL;
    if (match && !json_is_object(match)) {
        vadd(ve, p, VMSG_OBJECT);
    } else if (!method && !path && !headers) {
        vadd(ve, p,
             "must be present and contain at least one of the elements: \"method\", "
             "\"path\" or \"headers\"");
    } else {
        if (method) {
            size_t mm = vp_field(p, "method");
            tr_string_matcher(ve, p, method);
            vp_reset(p, mm);
        }
        if (path) {
            size_t mm = vp_field(p, "path");
            tr_string_matcher(ve, p, path);
            vp_reset(p, mm);
        }
        if (headers) {
            size_t mh = vp_field(p, "headers");
            if (!json_is_object(headers)) {
                vadd(ve, p, VMSG_OBJECT);
            } else if (json_object_size(headers) == 0) {
                vadd(ve, p, "must contain at least one element");
            } else {
                size_t n = json_object_size(headers), i = 0;
                const char **keys = xcalloc(n, sizeof(char *));
                const char *k;
                json_t *v;
                json_object_foreach((json_t *)headers, k, v) keys[i++] = k;
                qsort(keys, n, sizeof(char *), cmp_cstr);
                for (i = 0; i < n; i++) {
                    size_t mk = vp_key(p, keys[i]);
                    if (!*keys[i])
                        vadd(ve, p, "cannot be empty");
                    tr_string_matcher(ve, p, json_object_get(headers, keys[i]));
                    vp_reset(p, mk);
                }
                free(keys);
            }
            vp_reset(p, mh);
        }
    }
    vp_reset(p, m);
}

static void header_name(struct verr *ve, struct vpath *p, const char *name)
{
    if (!name || !*name)
        vadd(ve, p, "cannot be empty");
    else if (name[0] == ':' || strcmp(name, "host") == 0 || strcmp(name, "Host") == 0)
        vadd(ve, p, "host header and HTTP/2 pseudo-headers are not allowed to be modified");
}

static void tr_headers(struct verr *ve, struct vpath *p, const json_t *h)
{
    static const char *const lists[] = {"add", "remove"};
    for (int l = 0; l < 2; l++) {
        const json_t *arr = vj_arr(ve, p, h, lists[l]);
        size_t m = vp_field(p, lists[l]);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *e = vj_elem_obj(ve, p, arr, i);
            size_t mi = vp_index(p, i);
            const char *name = e ? vj_str(ve, p, e, "name") : NULL;
            size_t mn = vp_field(p, "name");
            header_name(ve, p, name);
            vp_reset(p, mn);
            if (l == 0) {
                const char *value = e ? vj_str(ve, p, e, "value") : NULL;
                if (!value || !*value)
                    vadd_at(ve, p, "value", "cannot be empty");
            }
            vp_reset(p, mi);
        }
        vp_reset(p, m);
    }
}

static void tr_modify(struct verr *ve, struct vpath *p, const json_t *mod, const json_t *match)
{
    size_t m = vp_field(p, "modify");
    const json_t *path = vj_obj(ve, p, mod, "path");
    if (path) {
        size_t mp = vp_field(p, "path");
        if (vj_present(path, "rewritePrefix")) {
            const char *rp = vj_str(ve, p, path, "rewritePrefix");
            const json_t *mpath = json_is_object(match) ? json_object_get(match, "path") : NULL;
            const char *prefix = vj_peek_str(mpath, "prefix");
            if (rp && !*rp)
                vadd_at(ve, p, "rewritePrefix", "cannot be empty");
            if (rp && *rp && !*prefix)
                vadd_at(ve, p, "rewritePrefix",
                        "can only be set when .http.match.path.prefix is not empty");
        } else if (vj_present(path, "regex")) {
            const json_t *rx = vj_obj(ve, p, path, "regex");
            const char *pat = vj_peek_str(rx, "pattern"), *sub = vj_peek_str(rx, "substitution");
            if (!*pat)
                vadd_at(ve, p, "regex.pattern", "cannot be empty");
            if (!*sub)
                vadd_at(ve, p, "regex.substitution", "cannot be empty");
        } else {
            vadd(ve, p, "either \"rewritePrefix\" or \"regex\" has to be set");
        }
        vp_reset(p, mp);
    }
    const json_t *host = vj_obj(ve, p, mod, "host");
    if (host) {
        size_t mh = vp_field(p, "host");
        if (vj_present(host, "value")) {
            const char *v = vj_str(ve, p, host, "value");
            if (v && !*v)
                vadd_at(ve, p, "value", "cannot be empty");
        } else if (vj_present(host, "fromPath")) {
            const json_t *fp = vj_obj(ve, p, host, "fromPath");
            if (!*vj_peek_str(fp, "pattern"))
                vadd_at(ve, p, "fromPath.pattern", "cannot be empty");
            if (!*vj_peek_str(fp, "substitution"))
                vadd_at(ve, p, "fromPath.substitution", "cannot be empty");
        } else {
            vadd(ve, p, "either \"value\" or \"fromPath\" has to be set");
        }
        vp_reset(p, mh);
    }
    static const char *const hs[] = {"requestHeaders", "responseHeaders"};
    for (int i = 0; i < 2; i++) {
        const json_t *h = vj_obj(ve, p, mod, hs[i]);
        if (h) {
            size_t mh = vp_field(p, hs[i]);
            tr_headers(ve, p, h);
            vp_reset(p, mh);
        }
    }
    vp_reset(p, m);
}

static void tr_lb(struct verr *ve, struct vpath *p, const json_t *conf)
{
    const json_t *lb = vj_obj(ve, p, conf, "loadBalancer");
    if (!lb)
        return;
    size_t m = vp_field(p, "loadBalancer");
    const json_t *lr = vj_obj(ve, p, lb, "leastRequest");
    const json_t *rh = vj_obj(ve, p, lb, "ringHash");
    if (lr) {
        size_t ml = vp_field(p, "leastRequest");
        long long cc = 0;
        if (vj_int(ve, p, lr, "choiceCount", &cc) && cc == 1)
            vadd_at(ve, p, "choiceCount", "value must be greater than or equal to 2");
        vp_reset(p, ml);
    } else if (rh) {
        size_t mr = vp_field(p, "ringHash");
        const char *hf = vj_str(ve, p, rh, "hashFunction");
        if (!hf || (strcmp(hf, "XX_HASH") != 0 && strcmp(hf, "MURMUR_HASH_2") != 0))
            vadd_at(ve, p, "hashFunction", "must have a valid hash function");
        vp_reset(p, mr);
    }
    vp_reset(p, m);
}

/* The common head of the legacy connection policies (TrafficRoute, Retry,
 * CircuitBreaker, ...): sources, service-only destinations, then `conf`,
 * which must be an object; missing it is reported with missing_msg. Leaves
 * p at "conf" and returns conf, or NULL when there is nothing more to check. */
static const json_t *connection_policy_prologue(struct verr *ve, struct vpath *p,
                                                const json_t *spec, const char *missing_msg)
{
    sources(ve, p, spec, 1);
    destinations_only_service(ve, p, spec);
    const json_t *conf = vj_obj(ve, p, spec, "conf");
    vp_field(p, "conf");
    if (!conf && !vj_present(spec, "conf"))
        vadd(ve, p, "%s", missing_msg);
    return conf;
}

void validate_traffic_route(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    const json_t *conf = connection_policy_prologue(ve, &p, spec, "cannot be empty");
    if (!conf) {
        vp_free(&p);
        return;
    }
    tr_split_dest(ve, &p, conf);
    const json_t *http = vj_arr(ve, &p, conf, "http");
    size_t m = vp_field(&p, "http");
    for (size_t i = 0; i < json_array_size(http); i++) {
        const json_t *h = vj_elem_obj(ve, &p, http, i);
        if (!h)
            continue;
        size_t mi = vp_index(&p, i);
        const json_t *match = json_object_get(h, "match");
        tr_match(ve, &p, json_is_null(match) ? NULL : match);
        const json_t *mod = vj_obj(ve, &p, h, "modify");
        if (mod)
            tr_modify(ve, &p, mod, match);
        tr_split_dest(ve, &p, h);
        vp_reset(&p, mi);
    }
    vp_reset(&p, m);
    tr_lb(ve, &p, conf);
    vp_free(&p);
}

/* ---- HealthCheck ---- */

/* ValidateDuration: required, valid and non-zero. */
static void required_duration(struct verr *ve, struct vpath *p, const json_t *o, const char *key)
{
    int64_t ns = 0;
    int present = vj_present(o, key);
    int ok = vj_duration(ve, p, o, key, &ns);
    if (!present || (ok && ns == 0))
        vadd_at(ve, p, key, "must have a positive value");
}

void validate_health_check(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    const json_t *conf = connection_policy_prologue(ve, &p, spec, "has to be defined");
    if (!conf) {
        vp_free(&p);
        return;
    }
    required_duration(ve, &p, conf, "interval");
    required_duration(ve, &p, conf, "timeout");
    static const char *const thr[] = {"unhealthyThreshold", "healthyThreshold"};
    for (int i = 0; i < 2; i++) {
        long long v = 0;
        vj_int(ve, &p, conf, thr[i], &v);
        if (v <= 0)
            vadd_at(ve, &p, thr[i], "must have a positive value");
    }
    static const char *const opt[] = {"initialJitter", "intervalJitter", "noTrafficInterval"};
    for (int i = 0; i < 3; i++)
        if (vj_present(conf, opt[i]))
            required_duration(ve, &p, conf, opt[i]);
    double pct;
    if (vj_num(ve, &p, conf, "healthyPanicThreshold", &pct) && (pct < 0.0 || pct > 100.0))
        vadd_at(ve, &p, "healthyPanicThreshold", "must be in range [0.0 - 100.0]");
    const json_t *http = vj_obj(ve, &p, conf, "http");
    const json_t *tcp = vj_obj(ve, &p, conf, "tcp");
    if (http) {
        size_t m = vp_field(&p, "http");
        const char *path = vj_str(ve, &p, http, "path");
        if (!path || !*path)
            vadd_at(ve, &p, "path", "has to be defined and cannot be empty");
        const json_t *st = vj_arr(ve, &p, http, "expectedStatuses");
        size_t ms = vp_field(&p, "expectedStatuses");
        for (size_t i = 0; i < json_array_size(st); i++) {
            const json_t *s = json_array_get(st, i);
            size_t mi = vp_index(&p, i);
            if (!json_is_number(s))
                vadd(ve, &p, VMSG_NUMBER);
            else if (json_number_value(s) < 100 || json_number_value(s) >= 600)
                vadd(ve, &p, "must be in range [100, 600)");
            vp_reset(&p, mi);
        }
        vp_reset(&p, ms);
        const json_t *hdrs = vj_arr(ve, &p, http, "requestHeadersToAdd");
        size_t mh = vp_field(&p, "requestHeadersToAdd");
        for (size_t i = 0; i < json_array_size(hdrs); i++) {
            const json_t *e = vj_elem_obj(ve, &p, hdrs, i);
            size_t mi = vp_index(&p, i);
            const json_t *h = e ? vj_obj(ve, &p, e, "header") : NULL;
            vp_field(&p, "header");
            if (!h) {
                if (!e || !vj_present(e, "header"))
                    vadd(ve, &p, "has to be defined");
            } else {
                const char *key = vj_str(ve, &p, h, "key");
                vj_str(ve, &p, h, "value");
                if (!key || !*key)
                    vadd_at(ve, &p, "key", "cannot be empty");
            }
            vp_reset(&p, mi);
        }
        vp_reset(&p, mh);
        vp_reset(&p, m);
    }
    if (tcp && http)
        vadd(ve, &p, "http and tcp cannot be defined at the same time");
    vp_free(&p);
}

/* ---- CircuitBreaker ---- */

void validate_circuit_breaker(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    sources(ve, &p, spec, 1);
    destinations_only_service(ve, &p, spec);
    const json_t *conf = vj_obj(ve, &p, spec, "conf");
    vp_field(&p, "conf");
    const json_t *det = vj_obj(ve, &p, conf, "detectors");
    const json_t *thr = vj_obj(ve, &p, conf, "thresholds");
    static const char *const dets[] = {"totalErrors", "gatewayErrors", "localErrors",
                                       "standardDeviation", "failure"};
    static const char *const thrs[] = {"maxConnections", "maxPendingRequests", "maxRetries",
                                       "maxRequests"};
    int has_det = 0, has_thr = 0;
    for (int i = 0; i < 5; i++)
        has_det |= vj_present(det, dets[i]);
    for (int i = 0; i < 4; i++)
        has_thr |= vj_present(thr, thrs[i]);
    if (!has_det && !has_thr) {
        vadd(ve, &p, "must have at least one of the detector or threshold configured");
        vp_free(&p);
        return;
    }
    if (det && !has_det)
        vadd_at(ve, &p, "detectors", "can't be empty");
    double v;
    if (num_field(ve, &p, conf, "maxEjectionPercent", &v) && (v < 0 || v > 100))
        vadd_at(ve, &p, "maxEjectionPercent", "has to be in [0.0 - 100.0] range");
    if (det) {
        size_t m = vp_field(&p, "detectors");
        const json_t *failure = vj_obj(ve, &p, det, "failure");
        if (failure) {
            size_t mf = vp_field(&p, "failure");
            if (num_field(ve, &p, failure, "threshold", &v) && (v < 0 || v > 100))
                vadd_at(ve, &p, "threshold", "has to be in [0.0 - 100.0] range");
            vp_reset(&p, mf);
        }
        vp_reset(&p, m);
    }
    if (thr && !has_thr)
        vadd_at(ve, &p, "thresholds", "can't be empty");
    vp_free(&p);
}

/* ---- Retry ---- */

#define HAS_TO_BE_GT0_WHEN_DEFINED "has to be greater than 0 when defined"

static void retry_positive_uint(struct verr *ve, struct vpath *p, const json_t *o, const char *key)
{
    long long v;
    if (vj_int(ve, p, o, key, &v) && v == 0)
        vadd_at(ve, p, key, HAS_TO_BE_GT0_WHEN_DEFINED);
}

static void retry_positive_dur(struct verr *ve, struct vpath *p, const json_t *o, const char *key,
                               const char *msg)
{
    int64_t ns;
    if (vj_duration(ve, p, o, key, &ns) && ns == 0)
        vadd_at(ve, p, key, "%s", msg);
}

static void retry_backoff(struct verr *ve, struct vpath *p, const json_t *o)
{
    const json_t *b = vj_obj(ve, p, o, "backOff");
    if (!b)
        return;
    size_t m = vp_field(p, "backOff");
    int64_t base = 0;
    if (!vj_present(b, "baseInterval")) {
        vadd_at(ve, p, "baseInterval", "has to be defined");
    } else if (vj_duration(ve, p, b, "baseInterval", &base)) {
        if (base == 0)
            vadd_at(ve, p, "baseInterval", "has to be greater than 0");
        else
            retry_positive_dur(ve, p, b, "maxInterval", HAS_TO_BE_GT0_WHEN_DEFINED);
    }
    vp_reset(p, m);
}

static void retry_http(struct verr *ve, struct vpath *p, const json_t *http)
{
    size_t m = vp_field(p, "http");
    static const char *const keys[] = {"numRetries",           "perTryTimeout",    "backOff",
                                       "retriableStatusCodes", "retriableMethods", "retryOn"};
    int any = 0;
    for (int i = 0; i < 6; i++)
        any |= vj_present(http, keys[i]);
    if (!any)
        vadd(ve, p, "field cannot be empty");
    retry_positive_uint(ve, p, http, "numRetries");
    retry_positive_dur(ve, p, http, "perTryTimeout", HAS_TO_BE_GT0_WHEN_DEFINED);
    retry_backoff(ve, p, http);
    const json_t *methods = vj_arr(ve, p, http, "retriableMethods");
    size_t mm = vp_field(p, "retriableMethods");
    for (size_t i = 0; i < json_array_size(methods); i++) {
        const json_t *v = json_array_get(methods, i);
        if ((json_is_string(v) && strcmp(json_string_value(v), "NONE") == 0) ||
            (json_is_integer(v) && json_integer_value(v) == 0)) {
            size_t mi = vp_index(p, i);
            vadd(ve, p, "field cannot be empty");
            vp_reset(p, mi);
        }
    }
    vp_reset(p, mm);
    const json_t *codes = vj_arr(ve, p, http, "retriableStatusCodes");
    const json_t *on = vj_arr(ve, p, http, "retryOn");
    size_t mo = vp_field(p, "retryOn");
    for (size_t i = 0; i < json_array_size(on); i++) {
        const json_t *v = json_array_get(on, i);
        if (json_is_string(v) && strcmp(json_string_value(v), "retriable_status_codes") == 0 &&
            !codes) {
            size_t mi = vp_index(p, i);
            vadd(ve, p, "retriableStatusCodes cannot be empty when this option is specified");
            vp_reset(p, mi);
        }
    }
    vp_reset(p, mo);
    vp_reset(p, m);
}

static void retry_grpc(struct verr *ve, struct vpath *p, const json_t *grpc)
{
    size_t m = vp_field(p, "grpc");
    static const char *const keys[] = {"numRetries", "perTryTimeout", "backOff", "retryOn"};
    int any = 0;
    for (int i = 0; i < 4; i++)
        any |= vj_present(grpc, keys[i]);
    if (!any)
        vadd(ve, p, "field cannot be empty");
    const json_t *on = vj_arr(ve, p, grpc, "retryOn");
    /* Repeated values, reported sorted by message as Kuma does. */
    size_t n = json_array_size(on);
    char **msgs = xcalloc(n ? n : 1, sizeof(char *));
    size_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(on, i);
        if (!json_is_string(v))
            continue;
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(on, j), v))
                first = 0;
        if (!first)
            continue;
        struct buf idx;
        buf_init(&idx, 0);
        size_t count = 0;
        for (size_t j = i; j < n; j++)
            if (json_equal(json_array_get(on, j), v)) {
                buf_printf(&idx, count ? ", %zu" : "%zu", j);
                count++;
            }
        if (count > 1)
            msgs[nm++] = xasprintf("repeated value \"%s\" at indexes [%s]", json_string_value(v),
                                   buf_str(&idx));
        buf_free(&idx);
    }
    qsort(msgs, nm, sizeof(char *), cmp_cstr);
    for (size_t i = 0; i < nm; i++) {
        vadd_at(ve, p, "retryOn", "%s", msgs[i]);
        free(msgs[i]);
    }
    free(msgs);
    retry_positive_uint(ve, p, grpc, "numRetries");
    retry_positive_dur(ve, p, grpc, "perTryTimeout", HAS_TO_BE_GT0_WHEN_DEFINED);
    retry_backoff(ve, p, grpc);
    vp_reset(p, m);
}

void validate_retry(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    const json_t *conf = connection_policy_prologue(ve, &p, spec, "has to be defined");
    if (!conf) {
        vp_free(&p);
        return;
    }
    const json_t *http = vj_obj(ve, &p, conf, "http");
    const json_t *grpc = vj_obj(ve, &p, conf, "grpc");
    const json_t *tcp = vj_obj(ve, &p, conf, "tcp");
    if (!http && !grpc && !tcp) {
        vadd(ve, &p, "missing protocol [grpc|http|tcp] configuration");
        vp_free(&p);
        return;
    }
    if (http)
        retry_http(ve, &p, http);
    if (grpc)
        retry_grpc(ve, &p, grpc);
    if (tcp) {
        long long v = 0;
        size_t m = vp_field(&p, "tcp");
        vj_int(ve, &p, tcp, "maxConnectAttempts", &v);
        if (v == 0)
            vadd_at(ve, &p, "maxConnectAttempts", "has to be greater than 0");
        vp_reset(&p, m);
    }
    vp_free(&p);
}

/* ---- Timeout ---- */

static void timeout_section(struct verr *ve, struct vpath *p, const json_t *conf,
                            const char *section, const char *const *keys, int nkeys,
                            int required_first)
{
    const json_t *s = vj_obj(ve, p, conf, section);
    if (!s)
        return;
    size_t m = vp_field(p, section);
    int any = 0;
    for (int i = 0; i < nkeys; i++)
        any |= vj_present(s, keys[i]);
    if (!any) {
        vadd(ve, p, "at least one timeout in section has to be defined");
    } else {
        for (int i = 0; i < nkeys; i++)
            retry_positive_dur(ve, p, s, keys[i],
                               required_first ? "has to be greater than 0"
                                              : HAS_TO_BE_GT0_WHEN_DEFINED);
    }
    vp_reset(p, m);
}

void validate_timeout(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    const json_t *conf = connection_policy_prologue(ve, &p, spec, "has to be defined");
    if (!conf) {
        vp_free(&p);
        return;
    }
    int64_t ns;
    vj_duration(ve, &p, conf, "connectTimeout", &ns);
    static const char *const tcp[] = {"idleTimeout"};
    static const char *const http[] = {"requestTimeout", "idleTimeout"};
    static const char *const grpc[] = {"streamIdleTimeout", "maxStreamDuration"};
    timeout_section(ve, &p, conf, "tcp", tcp, 1, 1);
    timeout_section(ve, &p, conf, "http", http, 2, 0);
    timeout_section(ve, &p, conf, "grpc", grpc, 2, 0);
    vp_free(&p);
}

/* ---- FaultInjection ---- */

static int http_status_known(long long c)
{
    static const int codes[] = {100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208,
                                226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
                                404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
                                417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500,
                                501, 502, 503, 504, 505, 506, 507, 508, 510, 511};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i] == c)
            return 1;
    return 0;
}

static void fi_percentage(struct verr *ve, struct vpath *p, const json_t *o)
{
    double v;
    if (!vj_present(o, "percentage"))
        vadd_at(ve, p, "percentage", "cannot be empty");
    else if (vj_num(ve, p, o, "percentage", &v) && (v < 0.0 || v > 100.0))
        vadd_at(ve, p, "percentage", "has to be in [0.0 - 100.0] range");
}

/* The regexp \d*\s?[gmk]bps, unanchored: some "[gmk]bps" substring. */
static int bandwidth_ok(const char *s)
{
    for (const char *q = s; *q; q++)
        if ((*q == 'g' || *q == 'm' || *q == 'k') && strncmp(q + 1, "bps", 3) == 0)
            return 1;
    return 0;
}

/* A fault counts when set to a non-empty object (proto.Equal to empty). */
static const json_t *fault(struct verr *ve, struct vpath *p, const json_t *conf, const char *key)
{
    const json_t *f = vj_obj(ve, p, conf, key);
    return f && json_object_size(f) > 0 ? f : NULL;
}

void validate_fault_injection(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    struct tag_opts so = {.require_one = 1};
    v_selectors(ve, &p, spec, "sources", 1, 0, &so);
    /* Destinations: at least one tag and an HTTP-family protocol. */
    const json_t *dests = vj_arr(ve, &p, spec, "destinations");
    size_t m = vp_field(&p, "destinations");
    if (json_array_size(dests) == 0)
        vadd(ve, &p, "must have at least one element");
    for (size_t i = 0; i < json_array_size(dests); i++) {
        const json_t *d = vj_elem_obj(ve, &p, dests, i);
        size_t mi = vp_index(&p, i);
        const json_t *match = d ? vj_tags(ve, &p, d, "match") : NULL;
        vp_field(&p, "match");
        if (tags_len(match) == 0)
            vadd(ve, &p, "must have at least one tag");
        const char *proto = tags_get(match, "kuma.io/protocol");
        if (!proto) {
            vadd(ve, &p, "protocol must be specified");
        } else if (strcmp(proto, "http") != 0 && strcmp(proto, "http2") != 0 &&
                   strcmp(proto, "grpc") != 0) {
            size_t mk = vp_key(&p, "kuma.io/protocol");
            vadd(ve, &p, "must be one of the [http, http2, grpc]");
            vp_reset(&p, mk);
        }
        struct tag_opts o = {0};
        v_selector(ve, &p, match, &o);
        vp_reset(&p, mi);
    }
    vp_reset(&p, m);
    const json_t *conf = vj_obj(ve, &p, spec, "conf");
    vp_field(&p, "conf");
    const json_t *delay = fault(ve, &p, conf, "delay");
    const json_t *abort_ = fault(ve, &p, conf, "abort");
    const json_t *bw = fault(ve, &p, conf, "responseBandwidth");
    if (!delay && !abort_ && !bw)
        vadd(ve, &p, "must have at least one of the faults configured");
    if (delay) {
        m = vp_field(&p, "delay");
        fi_percentage(ve, &p, delay);
        int64_t ns;
        if (!vj_present(delay, "value"))
            vadd_at(ve, &p, "value", "cannot be empty");
        else
            vj_duration(ve, &p, delay, "value", &ns);
        vp_reset(&p, m);
    }
    if (abort_) {
        m = vp_field(&p, "abort");
        fi_percentage(ve, &p, abort_);
        long long st;
        if (!vj_present(abort_, "httpStatus"))
            vadd_at(ve, &p, "httpStatus", "cannot be empty");
        else if (vj_int(ve, &p, abort_, "httpStatus", &st) && !http_status_known(st))
            vadd_at(ve, &p, "httpStatus", "http status code is incorrect");
        vp_reset(&p, m);
    }
    if (bw) {
        m = vp_field(&p, "responseBandwidth");
        fi_percentage(ve, &p, bw);
        if (!vj_present(bw, "limit")) {
            vadd_at(ve, &p, "limit", "cannot be empty");
        } else {
            const char *lim = vj_str(ve, &p, bw, "limit");
            if (lim && !bandwidth_ok(lim))
                vadd_at(ve, &p, "limit", "has to be in kbps/mbps/gbps units");
        }
        vp_reset(&p, m);
    }
    vp_free(&p);
}

/* ---- RateLimit ---- */

void validate_rate_limit(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    struct tag_opts o = {.require_one = 1};
    v_selectors(ve, &p, spec, "sources", 1, 0, &o);
    v_selectors(ve, &p, spec, "destinations", 1, 0, &o);
    const json_t *conf = vj_obj(ve, &p, spec, "conf");
    vp_field(&p, "conf");
    if (!conf && !vj_present(spec, "conf"))
        vadd(ve, &p, "must have conf");
    const json_t *http = vj_obj(ve, &p, conf, "http");
    if (http) {
        vp_field(&p, "http");
        long long req;
        if (!vj_present(http, "requests"))
            vadd_at(ve, &p, "requests", "requests must be set");
        else
            vj_int(ve, &p, http, "requests", &req);
        vj_duration(ve, &p, http, "interval", &(int64_t){0});
        const json_t *on = vj_obj(ve, &p, http, "onRateLimit");
        if (on) {
            vp_field(&p, "onRateLimit");
            const json_t *hs = vj_arr(ve, &p, on, "headers");
            for (size_t i = 0; i < json_array_size(hs); i++) {
                const json_t *h = json_array_get(hs, i);
                char idx[32];
                snprintf(idx, sizeof(idx), "%zu", i);
                size_t mh = vp_field(&p, "header");
                vp_key(&p, idx);
                if (!*vj_peek_str(h, "key"))
                    vadd(ve, &p, "key must be set");
                if (!*vj_peek_str(h, "value"))
                    vadd(ve, &p, "value must be set");
                vp_reset(&p, mh);
            }
        }
    }
    vp_free(&p);
}

/* ---- ExternalService ---- */

static void datasource_nonempty(struct verr *ve, struct vpath *p, const json_t *tls,
                                const char *key)
{
    const json_t *ds = vj_obj(ve, p, tls, key);
    if (!ds)
        return;
    if (!*vj_peek_str(ds, "inline") && !*vj_peek_str(ds, "inlineString") &&
        !*vj_peek_str(ds, "secret") && !*vj_peek_str(ds, "file"))
        vadd_at(ve, p, key, "data source cannot be empty");
}

void validate_external_service(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    const json_t *net = vj_obj(ve, &p, spec, "networking");
    const char *address = NULL;
    if (!net) {
        if (!vj_present(spec, "networking"))
            verr_add(ve, "networking", "should have networking");
    } else {
        size_t m = vp_field(&p, "networking");
        address = vj_str(ve, &p, net, "address");
        vp_field(&p, "address");
        if (!address || !*address) {
            vadd(ve, &p, "address can't be empty");
        } else {
            char host[512] = "", port[64] = "";
            if (split_host_port(address, host, sizeof(host), port, sizeof(port)) != 0) {
                vadd(ve, &p, "unable to parse address");
                host[0] = port[0] = '\0';
            }
            if (!ip_ok(host) && !dns_name_ok(host))
                vadd(ve, &p, "address has to be a valid IP address or a domain name");
            char *end;
            unsigned long long pn = strtoull(port, &end, 10);
            int port_ok = *port && !*end && isdigit((unsigned char)port[0]) && pn <= 0xffffffffULL;
            if (!port_ok) {
                vadd(ve, &p, "unable to parse port in address");
                pn = 0;
            }
            v_port(ve, &p, (long long)pn);
        }
        vp_reset(&p, m);
        const json_t *tls = vj_obj(ve, &p, net, "tls");
        if (tls) {
            vp_field(&p, "networking");
            vp_field(&p, "tls");
            const json_t *sn = json_object_get(tls, "serverName");
            if (json_is_string(sn) && !*json_string_value(sn))
                vadd_at(ve, &p, "serverName", "cannot be empty");
            else if (sn && !json_is_null(sn) && !json_is_string(sn))
                vadd_at(ve, &p, "serverName", VMSG_STRING);
            datasource_nonempty(ve, &p, tls, "caCert");
            datasource_nonempty(ve, &p, tls, "clientCert");
            datasource_nonempty(ve, &p, tls, "clientKey");
            vp_reset(&p, m);
        }
    }
    const json_t *tags = vj_tags(ve, &p, spec, "tags");
    size_t mt = vp_field(&p, "tags");
    struct tag_opts o = {.require_service = 1, .check_protocol = 1};
    v_tags(ve, &p, tags, &o);
    vp_reset(&p, mt);
    const char *service = tags_get(tags, "kuma.io/service");
    if (service && *service && address) {
        char host[512], port[64];
        if (split_host_port(address, host, sizeof(host), port, sizeof(port)) == 0 &&
            strcmp(service, host) == 0)
            verr_add(ve, "tags[\"kuma.io/service\"]", "cannot be the same as networking.address");
    }
    vp_free(&p);
}

/* ---- Secret / GlobalSecret ---- */

static int base64_ok(const char *s)
{
    size_t n = strlen(s), pad = 0;
    if (n % 4 != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=') {
            pad++;
            if (i < n - 2)
                return 0;
        } else if (pad || !(isalnum(c) || c == '+' || c == '/')) {
            return 0;
        }
    }
    return pad <= 2;
}

void validate_secret(const struct resource *r, struct verr *ve)
{
    struct vpath p;
    vp_init(&p, "");
    const char *data = vj_str(ve, &p, SPEC(r), "data");
    if (!vj_present(SPEC(r), "data") || (data && !*data))
        verr_add(ve, "data", "cannot be empty");
    else if (data && !base64_ok(data))
        verr_add(ve, "data", "has to be valid base64 string");
    vp_free(&p);
}

/* ---- MeshGateway ---- */

static const char *const gw_forbidden[] = {"kuma.io/external-service-name", "kuma.io/protocol",
                                           "kuma.io/service", "kuma.io/zone", NULL};

/* ValidateHostname. */
static void gw_hostname(struct verr *ve, struct vpath *p, const char *h)
{
    if (strcmp(h, "*") == 0)
        return;
    if (strlen(h) > 253)
        vadd(ve, p, "must be at most 253 characters");
    if (strncmp(h, "*.", 2) == 0) {
        if (!domain_ok(h + 2))
            vadd(ve, p, "invalid wildcard domain");
        return;
    }
    if (!domain_ok(h))
        vadd(ve, p, "invalid hostname");
}

enum { GWP_NONE, GWP_UDP, GWP_TCP, GWP_TLS, GWP_HTTP, GWP_HTTPS, GWP_BAD };

static int gw_protocol(const json_t *v)
{
    static const char *const names[] = {"NONE", "UDP", "TCP", "TLS", "HTTP", "HTTPS"};
    if (!v || json_is_null(v))
        return GWP_NONE;
    if (json_is_string(v)) {
        for (int i = 0; i < 6; i++)
            if (strcmp(json_string_value(v), names[i]) == 0)
                return i;
    } else if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < 6) {
        return (int)json_integer_value(v);
    }
    return GWP_BAD;
}

static int tls_mode(const json_t *tls)
{
    const json_t *m = json_object_get(tls, "mode");
    if (json_is_string(m)) {
        if (strcmp(json_string_value(m), "TERMINATE") == 0)
            return 1;
        if (strcmp(json_string_value(m), "PASSTHROUGH") == 0)
            return 2;
        return strcmp(json_string_value(m), "NONE") == 0 ? 0 : -1;
    }
    if (json_is_integer(m))
        return (int)json_integer_value(m);
    return 0;
}

static void gw_listener(struct verr *ve, struct vpath *p, const json_t *l)
{
    const char *host = vj_str(ve, p, l, "hostname");
    if (host && *host) {
        size_t m = vp_field(p, "hostname");
        gw_hostname(ve, p, host);
        vp_reset(p, m);
    }
    long long port = 0;
    vj_int(ve, p, l, "port", &port);
    size_t m = vp_field(p, "port");
    v_port(ve, p, port);
    vp_reset(p, m);
    int cross = 0;
    vj_bool(ve, p, l, "crossMesh", &cross);
    const json_t *tls = vj_obj(ve, p, l, "tls");
    const json_t *certs = tls ? vj_arr(ve, p, tls, "certificates") : NULL;
    int proto = gw_protocol(json_object_get(l, "protocol"));
    if (proto == GWP_NONE) {
        vadd_at(ve, p, "protocol", "cannot be empty");
    } else if (proto == GWP_BAD) {
        vadd_at(ve, p, "protocol", "has invalid value. Allowed values: UDP, TCP, TLS, HTTP, HTTPS");
    } else if (proto == GWP_HTTPS) {
        if (cross)
            vadd_at(ve, p, "protocol", "protocol is not supported with crossMesh");
        else if (!tls)
            vadd_at(ve, p, "tls", "cannot be empty");
        else if (tls_mode(tls) == 2)
            vadd_at(ve, p, "tls.mode", "mode is not supported on HTTPS listeners");
    }
    if (tls && !cross) {
        int mode = tls_mode(tls);
        if (mode == 0)
            vadd_at(ve, p, "tls.mode", "cannot be empty");
        else if (mode == -1)
            vadd_at(ve, p, "tls.mode", "has invalid value. Allowed values: TERMINATE, PASSTHROUGH");
        else if (mode == 1 && json_array_size(certs) == 0)
            vadd_at(ve, p, "tls.certificates", "cannot be empty in TLS termination mode");
        else if (mode == 1 && json_array_size(certs) > 2)
            vadd_at(ve, p, "tls.certificates", "cannot have more than 2 certificates");
    }
    if (tls && cross && (tls_mode(tls) != 0 || json_array_size(certs) > 0))
        vadd_at(ve, p, "tls", "must be empty with crossMesh");
    const json_t *tags = vj_tags(ve, p, l, "tags");
    m = vp_field(p, "tags");
    struct tag_opts o = {.forbidden_keys = gw_forbidden};
    v_selector(ve, p, tags, &o);
    vp_reset(p, m);
}

static long long gw_port(const json_t *l)
{
    const json_t *v = json_object_get(l, "port");
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static const char *gw_host(const json_t *l)
{
    const char *h = vj_peek_str(l, "hostname");
    return *h ? h : "*";
}

static long long gw_conn_limit(const json_t *l)
{
    const json_t *res = vj_peek_obj(l, "resources");
    const json_t *v = res ? json_object_get(res, "connectionLimit") : NULL;
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* validateListenerCollapsibility: protocol conflicts, then duplicate
 * hostnames, then connection limits, each in listener order. */
static void gw_collapsibility(struct verr *ve, struct vpath *p, const json_t *ls)
{
    size_t n = json_array_size(ls);
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < n; i++) {
            const json_t *l = json_array_get(ls, i);
            if (!json_is_object(l))
                continue;
            int hit = 0;
            for (size_t j = 0; j < n && !hit; j++) {
                const json_t *o = json_array_get(ls, j);
                if (!json_is_object(o) || gw_port(o) != gw_port(l))
                    continue;
                if (pass == 0)
                    hit = gw_protocol(json_object_get(o, "protocol")) !=
                          gw_protocol(json_object_get(l, "protocol"));
                else if (pass == 1)
                    hit = j != i && strcmp(gw_host(o), gw_host(l)) == 0;
                else
                    hit = gw_conn_limit(l) && gw_conn_limit(o) &&
                          gw_conn_limit(o) != gw_conn_limit(l);
            }
            if (!hit)
                continue;
            size_t m = vp_index(p, i);
            if (pass == 0)
                vadd(ve, p, "protocol conflicts with other listeners on this port");
            else if (pass == 1)
                vadd(ve, p, "multiple listeners for hostname on this port");
            else
                vadd_at(ve, p, "resources.connectionLimit", "conflicting values for this port");
            vp_reset(p, m);
        }
}

void validate_mesh_gateway(const struct resource *r, struct verr *ve)
{
    const json_t *spec = SPEC(r);
    struct vpath p;
    vp_init(&p, "");
    const json_t *conf = vj_obj(ve, &p, spec, "conf");
    const json_t *ls = conf ? json_object_get(conf, "listeners") : NULL;
    if (!json_is_array(ls))
        ls = NULL;
    int cross = 0;
    for (size_t i = 0; i < json_array_size(ls); i++)
        if (json_is_true(json_object_get(json_array_get(ls, i), "crossMesh")))
            cross = 1;
    struct tag_opts so = {.require_one = 1, .require_service = 1};
    v_selectors(ve, &p, spec, "selectors", 1, cross, &so);
    const json_t *tags = vj_tags(ve, &p, spec, "tags");
    size_t m = vp_field(&p, "tags");
    struct tag_opts to = {.forbidden_keys = gw_forbidden};
    v_selector(ve, &p, tags, &to);
    vp_reset(&p, m);
    vp_field(&p, "conf");
    if (!conf) {
        if (!vj_present(spec, "conf"))
            vadd(ve, &p, "cannot be empty");
        vp_free(&p);
        return;
    }
    vj_arr(ve, &p, conf, "listeners");
    vp_field(&p, "listeners");
    if (json_array_size(ls) == 0)
        vadd(ve, &p, "cannot be empty");
    for (size_t i = 0; i < json_array_size(ls); i++) {
        const json_t *l = vj_elem_obj(ve, &p, ls, i);
        if (!l)
            continue;
        size_t mi = vp_index(&p, i);
        gw_listener(ve, &p, l);
        vp_reset(&p, mi);
    }
    gw_collapsibility(ve, &p, ls);
    vp_free(&p);
}

/* ---- targetRef policies ---- */

static int kind_in(const char *k, const char *const *kinds)
{
    for (size_t i = 0; kinds[i]; i++)
        if (strcmp(k, kinds[i]) == 0)
            return 1;
    return 0;
}

static int name_charset_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || *s == '.' || *s == '-' ||
              *s == '_'))
            return 0;
    return 1;
}

/* ValidateTargetRef; p at the targetRef. ref may be NULL (kind unset). */
static void target_ref(struct verr *ve, struct vpath *p, const json_t *ref, const struct tr_opts *o)
{
    const char *kind = vj_str(ve, p, ref, "kind");
    const char *name = vj_str(ve, p, ref, "name");
    const char *mesh = vj_str(ve, p, ref, "mesh");
    const char *ns = vj_str(ve, p, ref, "namespace");
    const char *section = vj_str(ve, p, ref, "sectionName");
    const json_t *tags = vj_tags(ve, p, ref, "tags");
    const json_t *labels = vj_tags(ve, p, ref, "labels");
    const json_t *proxy_types = vj_arr(ve, p, ref, "proxyTypes");
    if (!kind || !*kind) {
        vadd_at(ve, p, "kind", "must be defined");
        return;
    }
    if (!kind_in(kind, o->kinds)) {
        vadd_at(ve, p, "kind", "value is not supported");
        return;
    }
    name = name ? name : "";
    mesh = mesh ? mesh : "";
    ns = ns ? ns : "";
    section = section ? section : "";
    int has_tags = tags_len(tags) > 0, has_labels = tags_len(labels) > 0;
    int has_pt = json_array_size(proxy_types) > 0;
#define NOT_SET(f, cond)                                                                           \
    do {                                                                                           \
        if (cond)                                                                                  \
            vadd_at(ve, p, f, "must not be set with kind %s", kind);                               \
    } while (0)
#define MUST_SET(f, cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            vadd_at(ve, p, f, "must be set with kind %s", kind);                                   \
    } while (0)
#define NAME_CHARS()                                                                               \
    do {                                                                                           \
        if (!name_charset_ok(name))                                                                \
            vadd_at(ve, p, "name",                                                                 \
                    "invalid characters: must consist of lower case alphanumeric characters, "     \
                    "'-', '.' and '_'.");                                                          \
    } while (0)
    if (strcmp(kind, "Mesh") == 0) {
        if (*name)
            vadd_at(ve, p, "name", "using name with kind Mesh is not yet supported");
        NOT_SET("mesh", *mesh);
        NOT_SET("tags", has_tags);
        NOT_SET("labels", has_labels);
        NOT_SET("namespace", *ns);
        NOT_SET("sectionName", *section);
    } else if (strcmp(kind, "Dataplane") == 0) {
        NOT_SET("tags", has_tags);
        NOT_SET("mesh", *mesh);
        NOT_SET("proxyTypes", has_pt);
        if (has_labels && (*name || *ns))
            vadd_at(ve, p, "labels", "either labels or name and namespace must be specified");
        if (!o->inbound && *section)
            vadd_at(ve, p, "sectionName", "can only be used with inbound policies");
    } else if (strcmp(kind, "MeshSubset") == 0) {
        NOT_SET("name", *name);
        NOT_SET("mesh", *mesh);
        size_t m = vp_field(p, "tags");
        v_tags(ve, p, tags, NULL);
        vp_reset(p, m);
        NOT_SET("labels", has_labels);
        NOT_SET("namespace", *ns);
        NOT_SET("sectionName", *section);
    } else if (strcmp(kind, "MeshService") == 0 || strcmp(kind, "MeshHTTPRoute") == 0) {
        NAME_CHARS();
        NOT_SET("mesh", *mesh);
        NOT_SET("tags", has_tags);
        NOT_SET("proxyTypes", has_pt);
        if (!has_labels)
            MUST_SET("name", *name);
        if (has_labels && (*name || *ns))
            vadd_at(ve, p, "labels", "either labels or name and namespace must be specified");
        if (has_labels && *section)
            vadd_at(ve, p, "sectionName", "sectionName should not be combined with labels");
    } else if (strcmp(kind, "MeshServiceSubset") == 0 || strcmp(kind, "MeshGateway") == 0) {
        MUST_SET("name", *name);
        NAME_CHARS();
        NOT_SET("mesh", *mesh);
        NOT_SET("proxyTypes", has_pt);
        size_t m = vp_field(p, "tags");
        v_selector(ve, p, tags, NULL);
        vp_reset(p, m);
        if (strcmp(kind, "MeshGateway") == 0 && has_tags && !o->gateway_listener_tags)
            NOT_SET("tags", 1);
        NOT_SET("labels", has_labels);
        NOT_SET("namespace", *ns);
        NOT_SET("sectionName", *section);
    } else if (strcmp(kind, "MeshExternalService") == 0) {
        NAME_CHARS();
        NOT_SET("mesh", *mesh);
        NOT_SET("tags", has_tags);
        NOT_SET("proxyTypes", has_pt);
        if (!has_labels)
            MUST_SET("name", *name);
        if (has_labels && (*name || *ns))
            vadd_at(ve, p, "labels", "either labels or name must be specified");
        NOT_SET("sectionName", *section);
    }
#undef NOT_SET
#undef MUST_SET
#undef NAME_CHARS
}

void v_target_ref(struct verr *ve, struct vpath *p, const json_t *ref, const struct tr_opts *o)
{
    target_ref(ve, p, ref, o);
}

/* The top-level targetRef; absent means kind Mesh (valid). Returns its kind. */
static const char *top_ref(struct verr *ve, struct vpath *p, const json_t *spec,
                           const struct tr_opts *o)
{
    const json_t *ref = vj_obj(ve, p, spec, "targetRef");
    if (!ref)
        return "Mesh";
    size_t m = vp_field(p, "targetRef");
    target_ref(ve, p, ref, o);
    vp_reset(p, m);
    const char *k = vj_peek_str(ref, "kind");
    return *k ? k : "";
}

/* Durations of the new policies (k8s metav1.Duration). */
static void dur_gt0_or_nil(struct verr *ve, struct vpath *p, const json_t *o, const char *key)
{
    int64_t ns;
    if (vj_duration(ve, p, o, key, &ns) && ns <= 0)
        vadd_at(ve, p, key, "must be greater than zero when defined");
}

static void dur_not_neg_or_nil(struct verr *ve, struct vpath *p, const json_t *o, const char *key)
{
    int64_t ns;
    if (vj_duration(ve, p, o, key, &ns) && ns < 0)
        vadd_at(ve, p, key, "must not be negative when defined");
}

static void int_gt0_or_nil(struct verr *ve, struct vpath *p, const json_t *o, const char *key)
{
    long long v;
    if (vj_int(ve, p, o, key, &v) && v <= 0)
        vadd_at(ve, p, key, "must be greater than 0");
}

/* Iterates spec[key] items: targetRef check and a default callback. */
typedef void default_fn(struct verr *ve, struct vpath *p, const json_t *def, const char *top);

static void items(struct verr *ve, struct vpath *p, const json_t *arr, const char *key,
                  const struct tr_opts *o, default_fn *fn, const char *top, int has_ref)
{
    size_t m = vp_field(p, key);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *it = vj_elem_obj(ve, p, arr, i);
        if (!it)
            continue;
        size_t mi = vp_index(p, i);
        if (has_ref) {
            const json_t *ref = vj_obj(ve, p, it, "targetRef");
            size_t mr = vp_field(p, "targetRef");
            if (ref || !vj_present(it, "targetRef"))
                target_ref(ve, p, ref, o);
            vp_reset(p, mr);
        }
        const json_t *def = vj_obj(ve, p, it, "default");
        size_t md = vp_field(p, "default");
        fn(ve, p, def, top);
        vp_reset(p, md);
        vp_reset(p, mi);
    }
    vp_reset(p, m);
}

/* MeshTimeout */
static void mt_default(struct verr *ve, struct vpath *p, const json_t *def, const char *top)
{
    if (!vj_present(def, "connectionTimeout") && !vj_present(def, "idleTimeout") &&
        !vj_present(def, "http")) {
        vadd(ve, p, "at least one timeout should be configured");
        return;
    }
    const json_t *http = vj_obj(ve, p, def, "http");
    if (strcmp(top, "MeshHTTPRoute") == 0) {
        static const char msg[] =
            "can't be specified when top-level TargetRef is referencing MeshHTTPRoute";
        if (vj_present(def, "connectionTimeout"))
            vadd_at(ve, p, "connectionTimeout", msg);
        if (vj_present(def, "idleTimeout"))
            vadd_at(ve, p, "idleTimeout", msg);
        if (vj_present(http, "maxStreamDuration"))
            vadd_at(ve, p, "http.maxStreamDuration", msg);
        if (vj_present(http, "maxConnectionDuration"))
            vadd_at(ve, p, "http.maxConnectionDuration", msg);
    }
    dur_gt0_or_nil(ve, p, def, "connectionTimeout");
    dur_not_neg_or_nil(ve, p, def, "idleTimeout");
    if (http) {
        size_t m = vp_field(p, "http");
        if (!vj_present(http, "requestTimeout") && !vj_present(http, "streamIdleTimeout") &&
            !vj_present(http, "maxStreamDuration") && !vj_present(http, "maxConnectionDuration"))
            vadd(ve, p, "at least one timeout in this section should be configured");
        static const char *const keys[] = {"requestTimeout", "streamIdleTimeout",
                                           "maxStreamDuration", "maxConnectionDuration",
                                           "requestHeadersTimeout"};
        for (int i = 0; i < 5; i++)
            dur_not_neg_or_nil(ve, p, http, keys[i]);
        vp_reset(p, m);
    }
}

/* MeshCircuitBreaker */
static void mcb_default(struct verr *ve, struct vpath *p, const json_t *def, const char *top)
{
    (void)top;
    const json_t *cl = vj_obj(ve, p, def, "connectionLimits");
    const json_t *od = vj_obj(ve, p, def, "outlierDetection");
    if (!cl && !od) {
        vadd(ve, p,
             "at least one of: 'connectionLimits' or 'outlierDetection' should be "
             "configured");
        return;
    }
    if (cl) {
        size_t m = vp_field(p, "connectionLimits");
        static const char *const keys[] = {"maxConnections", "maxConnectionPools",
                                           "maxPendingRequests", "maxRetries", "maxRequests"};
        for (int i = 0; i < 5; i++)
            int_gt0_or_nil(ve, p, cl, keys[i]);
        vp_reset(p, m);
    }
    if (!od)
        return;
    size_t m = vp_field(p, "outlierDetection");
    int disabled = 0;
    vj_bool(ve, p, od, "disabled", &disabled);
    dur_gt0_or_nil(ve, p, od, "interval");
    dur_gt0_or_nil(ve, p, od, "baseEjectionTime");
    long long pct;
    if (vj_int(ve, p, od, "maxEjectionPercent", &pct) && (pct < 0 || pct > 100))
        vadd_at(ve, p, "maxEjectionPercent", "must be in inclusive range [0, 100]");
    const json_t *det = vj_obj(ve, p, od, "detectors");
    size_t md = vp_field(p, "detectors");
    static const char *const names[] = {"totalFailures", "gatewayFailures", "localOriginFailures",
                                        "successRate", "failurePercentage"};
    if (!det) {
        vadd(ve, p, "must be defined");
    } else {
        int any = 0;
        for (int i = 0; i < 5; i++)
            any |= vj_present(det, names[i]);
        if (!any) {
            vadd(ve, p,
                 "must have at least one defined: totalFailures, gatewayFailures, "
                 "localOriginFailures, successRate, failurePercentage");
        } else {
            for (int i = 0; i < 3; i++) {
                const json_t *d = vj_obj(ve, p, det, names[i]);
                size_t mi = vp_field(p, names[i]);
                int_gt0_or_nil(ve, p, d, "consecutive");
                vp_reset(p, mi);
            }
            const json_t *sr = vj_obj(ve, p, det, "successRate");
            size_t mi = vp_field(p, "successRate");
            int_gt0_or_nil(ve, p, sr, "minimumHosts");
            int_gt0_or_nil(ve, p, sr, "requestVolume");
            const json_t *sdf = sr ? json_object_get(sr, "standardDeviationFactor") : NULL;
            if (sdf && !json_is_null(sdf)) {
                double d = 0;
                int ok = json_is_number(sdf);
                if (ok)
                    d = json_number_value(sdf);
                else if (json_is_string(sdf)) {
                    char *end;
                    const char *s = json_string_value(sdf);
                    d = strtod(s, &end);
                    ok = *s && !*end;
                }
                if (!ok)
                    vadd_at(ve, p, "standardDeviationFactor", "invalid number");
                else if (d <= 0)
                    vadd_at(ve, p, "standardDeviationFactor", "must be greater than 0");
            }
            vp_reset(p, mi);
            const json_t *fp = vj_obj(ve, p, det, "failurePercentage");
            mi = vp_field(p, "failurePercentage");
            int_gt0_or_nil(ve, p, fp, "minimumHosts");
            int_gt0_or_nil(ve, p, fp, "requestVolume");
            if (vj_int(ve, p, fp, "threshold", &pct) && (pct < 0 || pct > 100))
                vadd_at(ve, p, "threshold", "must be in inclusive range [0, 100]");
            vp_reset(p, mi);
        }
    }
    vp_reset(p, md);
    vp_reset(p, m);
}

/* MeshRetry; Kuma roots the default's violations at "conf". */
static void mr_retry_on(struct verr *ve, struct vpath *p, const json_t *arr, int grpc)
{
    static const char *const http_ok[] = {"5xx",
                                          "GatewayError",
                                          "Reset",
                                          "Retriable4xx",
                                          "ConnectFailure",
                                          "EnvoyRatelimited",
                                          "RefusedStream",
                                          "Http3PostConnectFailure",
                                          "HttpMethodConnect",
                                          "HttpMethodDelete",
                                          "HttpMethodGet",
                                          "HttpMethodHead",
                                          "HttpMethodOptions",
                                          "HttpMethodPatch",
                                          "HttpMethodPost",
                                          "HttpMethodPut",
                                          "HttpMethodTrace",
                                          NULL};
    static const char *const grpc_ok[] = {"Canceled",          "DeadlineExceeded", "Internal",
                                          "ResourceExhausted", "Unavailable",      NULL};
    size_t m = vp_field(p, "retryOn");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        int ok = kind_in(s, grpc ? grpc_ok : http_ok);
        if (!ok && !grpc && *s) {
            char *end;
            long code = strtol(s, &end, 10);
            ok = !*end && isdigit((unsigned char)s[0]) && http_status_known(code);
        }
        if (!ok) {
            size_t mi = vp_index(p, i);
            vadd(ve, p, "unknown item '%s'", s);
            vp_reset(p, mi);
        }
    }
    vp_reset(p, m);
}

static void mr_backoffs(struct verr *ve, struct vpath *p, const json_t *o)
{
    const json_t *bo = vj_obj(ve, p, o, "backOff");
    if (bo && !vj_present(bo, "baseInterval") && !vj_present(bo, "maxInterval"))
        vadd_at(ve, p, "backOff", "must not be empty");
    const json_t *rl = vj_obj(ve, p, o, "rateLimitedBackOff");
    if (rl) {
        size_t m = vp_field(p, "rateLimitedBackOff");
        int64_t ns;
        if (vj_duration(ve, p, rl, "maxInterval", &ns) && ns <= 0)
            vadd_at(ve, p, "maxInterval", "must be defined and greater than zero");
        const json_t *rh = vj_arr(ve, p, rl, "resetHeaders");
        if (!rh) {
            if (!vj_present(rl, "resetHeaders"))
                vadd_at(ve, p, "resetHeaders", "must be defined");
        } else {
            size_t mh = vp_field(p, "resetHeaders");
            for (size_t i = 0; i < json_array_size(rh); i++) {
                size_t mi = vp_index(p, i);
                if (!*vj_peek_str(json_array_get(rh, i), "name"))
                    vadd_at(ve, p, "name", "must be defined");
                vp_reset(p, mi);
            }
            vp_reset(p, mh);
        }
        vp_reset(p, m);
    }
}

static void mr_default(struct verr *ve, struct vpath *p, const json_t *def, const char *top)
{
    (void)top;
    size_t m = vp_field(p, "conf");
    const json_t *tcp = vj_obj(ve, p, def, "tcp");
    const json_t *http = vj_obj(ve, p, def, "http");
    const json_t *grpc = vj_obj(ve, p, def, "grpc");
    if (!tcp && !http && !grpc)
        vadd(ve, p, "at least one of the 'tcp', 'http', 'grpc' must be specified");
    if (tcp && !vj_present(tcp, "maxConnectAttempt"))
        vadd_at(ve, p, "tcp", "must not be empty");
    if (http) {
        size_t mh = vp_field(p, "http");
        static const char *const keys[] = {"numRetries",
                                           "perTryTimeout",
                                           "backOff",
                                           "retryOn",
                                           "retriableRequestHeaders",
                                           "retriableResponseHeaders",
                                           "rateLimitedBackOff",
                                           "hostSelection"};
        int any = 0;
        for (int i = 0; i < 8; i++)
            any |= vj_present(http, keys[i]);
        if (!any)
            vadd(ve, p, "must not be empty");
        mr_backoffs(ve, p, http);
        const json_t *on = vj_arr(ve, p, http, "retryOn");
        if (on)
            mr_retry_on(ve, p, on, 0);
        vp_reset(p, mh);
    }
    if (grpc) {
        size_t mg = vp_field(p, "grpc");
        static const char *const keys[] = {"numRetries", "perTryTimeout", "backOff", "retryOn",
                                           "rateLimitedBackOff"};
        int any = 0;
        for (int i = 0; i < 5; i++)
            any |= vj_present(grpc, keys[i]);
        if (!any)
            vadd(ve, p, "must not be empty");
        mr_backoffs(ve, p, grpc);
        const json_t *on = vj_arr(ve, p, grpc, "retryOn");
        if (on)
            mr_retry_on(ve, p, on, 1);
        vp_reset(p, mg);
    }
    vp_reset(p, m);
}

/* MeshTrafficPermission */
static void mtp_default(struct verr *ve, struct vpath *p, const json_t *def, const char *top)
{
    (void)top;
    if (!def) {
        vadd(ve, p, "must be defined");
        return;
    }
    const char *action = vj_str(ve, p, def, "action");
    if (action && strcmp(action, "Allow") != 0 && strcmp(action, "Deny") != 0 &&
        strcmp(action, "AllowWithShadowDeny") != 0)
        vadd_at(ve, p, "action", "value is not supported");
}

static const char *const TOP_KINDS[] = {
    "Mesh",          "MeshSubset", "MeshGateway", "MeshService", "MeshServiceSubset",
    "MeshHTTPRoute", "Dataplane",  NULL};
static const char *const TO_KINDS[] = {"Mesh", "MeshService", "MeshExternalService",
                                       "MeshMultiZoneService", NULL};
static const char *const MESH_ONLY[] = {"Mesh", NULL};

void validate_target_ref_policy(const struct resource *r, struct verr *ve)
{
    if (!r || !r->type)
        return;
    const json_t *spec = r->spec;
    struct vpath p;
    vp_init(&p, "spec");
    const struct res_type *t = r->type;
    /* Arrays are read quietly here; their type errors are reported last so
     * the targetRef's violations come first, as in Kuma. */
    const json_t *from =
        json_is_array(json_object_get(spec, "from")) ? json_object_get(spec, "from") : NULL;
    const json_t *to =
        json_is_array(json_object_get(spec, "to")) ? json_object_get(spec, "to") : NULL;
    const json_t *rules =
        json_is_array(json_object_get(spec, "rules")) ? json_object_get(spec, "rules") : NULL;
    size_t nfrom = json_array_size(from), nto = json_array_size(to),
           nrules = json_array_size(rules);
    if (t == &TYPE_MESH_TRAFFIC_PERMISSION) {
        static const char *const top[] = {
            "Mesh", "MeshSubset", "MeshService", "MeshServiceSubset", "Dataplane", NULL};
        static const char *const fk[] = {"Mesh", "MeshSubset", "MeshService", "MeshServiceSubset",
                                         NULL};
        struct tr_opts o = {.kinds = top, .inbound = 1};
        const char *k = top_ref(ve, &p, spec, &o);
        if (nfrom == 0 && nrules == 0)
            vadd_at(ve, &p, "from", "needs at least one item");
        struct tr_opts fo = {.kinds = fk, .inbound = 1};
        items(ve, &p, from, "from", &fo, mtp_default, k, 1);
        items(ve, &p, rules, "rules", &fo, mtp_default, k, 0);
    } else if (t == &TYPE_MESH_RETRY) {
        struct tr_opts o = {.kinds = TOP_KINDS, .gateway_listener_tags = 1};
        const char *k = top_ref(ve, &p, spec, &o);
        if (nto == 0)
            vadd_at(ve, &p, "to", "needs at least one item");
        struct tr_opts to_o = {.kinds = strcmp(k, "MeshGateway") == 0 ? MESH_ONLY : TO_KINDS};
        items(ve, &p, to, "to", &to_o, mr_default, k, 1);
    } else if (t == &TYPE_MESH_TIMEOUT || t == &TYPE_MESH_CIRCUIT_BREAKER) {
        int timeout = t == &TYPE_MESH_TIMEOUT;
        struct tr_opts o = {.kinds = TOP_KINDS, .gateway_listener_tags = 1, .inbound = 1};
        const char *k = top_ref(ve, &p, spec, &o);
        default_fn *fn = timeout ? mt_default : mcb_default;
        if (nrules > 0 && (nto > 0 || nfrom > 0))
            vadd(ve, &p, "fields 'to' and 'from' must be empty when 'rules' is defined");
        else if (nto == 0 && nfrom == 0 && nrules == 0)
            vadd(ve, &p, "at least one of 'from', 'to' or 'rules' has to be defined");
        int gw_or_route = strcmp(k, "MeshHTTPRoute") == 0 || strcmp(k, "MeshGateway") == 0;
        if (gw_or_route && nfrom > 0) {
            vadd_at(ve, &p, "from", "must not be defined");
        } else {
            struct tr_opts fo = {.kinds = MESH_ONLY};
            items(ve, &p, from, "from", &fo, fn, k, 1);
        }
        struct tr_opts to_o = {.kinds = gw_or_route ? MESH_ONLY : TO_KINDS};
        items(ve, &p, to, "to", &to_o, fn, k, 1);
        items(ve, &p, rules, "rules", &to_o, fn, k, 0);
    }
    vj_arr(ve, &p, spec, "from");
    vj_arr(ve, &p, spec, "to");
    vj_arr(ve, &p, spec, "rules");
    vp_free(&p);
}
