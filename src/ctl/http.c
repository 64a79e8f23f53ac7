/*
 * ctl/http — libcurl client for the REST API (see http.h).
 */
#include "ctl/http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct sink {
    struct buf b;
    int overflow;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    if (buf_append(&s->b, p, size * n) < 0) {
        s->overflow = 1;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* "Get", "Put": Go's url.Error names the operation this way. */
static char *op_name(const char *method)
{
    char *s = xstrdup(method);
    for (char *p = s + 1; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return s;
}

static char *host_port(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *out;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    }
    out = xasprintf("%s:%s", host ? host : "", port ? port : "");
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

static char *host_only(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *out;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
        curl_url_get(u, CURLUPART_HOST, &host, 0);
    out = xstrdup(host ? host : "");
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

static char *transport_error(const char *method, const char *url, CURLcode rc, CURL *h,
                             const char *errbuf, const struct sink *s)
{
    char *op = op_name(method), *why, *out;
    char *ip = NULL;
    switch (rc) {
    case CURLE_COULDNT_CONNECT: {
        char *hp = host_port(url);
        if (curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip && *ip) {
            long port = 0;
            curl_easy_getinfo(h, CURLINFO_PRIMARY_PORT, &port);
            free(hp);
            hp = strchr(ip, ':') ? xasprintf("[%s]:%ld", ip, port) : xasprintf("%s:%ld", ip, port);
        }
        why = xasprintf("dial tcp %s: connect: connection refused", hp);
        free(hp);
        break;
    }
    case CURLE_COULDNT_RESOLVE_HOST: {
        char *host = host_only(url);
        why = xasprintf("dial tcp: lookup %s: no such host", host);
        free(host);
        break;
    }
    case CURLE_OPERATION_TIMEDOUT:
        why = xstrdup("context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
        break;
    case CURLE_WRITE_ERROR:
        if (s->overflow) {
            why = xasprintf("response body larger than %u bytes", CTL_HTTP_MAX_BODY);
            break;
        }
        /* fall through */
    default:
        why = xstrdup(errbuf[0] ? errbuf : curl_easy_strerror(rc));
        break;
    }
    out = xasprintf("%s \"%s\": %s", op, url, why);
    free(op);
    free(why);
    return out;
}

int ctl_http_do(const struct ctl_cp *cp, const char *method, const char *path, const char *body,
                long timeout_ms, struct ctl_http_response *resp, char **errmsg)
{
    static int inited;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    struct sink s;
    int result = -1;
    char *url;

    memset(resp, 0, sizeof(*resp));
    *errmsg = NULL;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }
    const char *base = cp && cp->url ? cp->url : "";
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    url = xasprintf("%.*s%s", (int)bl, base, path);
    if (!str_has_prefix(url, "http://") && !str_has_prefix(url, "https://")) {
        const char *colon = strchr(url, ':');
        char *op = op_name(method);
        *errmsg = xasprintf("%s \"%s\": unsupported protocol scheme \"%.*s\"", op, url,
                            colon ? (int)(colon - url) : 0, url);
        free(op);
        free(url);
        return -1;
    }

    CURL *h = curl_easy_init();
    if (!h) {
        *errmsg = xstrdup("could not initialise the HTTP client");
        free(url);
        return -1;
    }
    buf_init(&s.b, CTL_HTTP_MAX_BODY);
    s.overflow = 0;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kumactl");
    if (timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (cp) {
        for (size_t i = 0; i < cp->nheaders; i++) {
            char *hl = xasprintf("%s: %s", cp->headers[i].key, cp->headers[i].value);
            hdrs = curl_slist_append(hdrs, hl);
            free(hl);
        }
        if (cp->auth_type && strcmp(cp->auth_type, "tokens") == 0) {
            const char *tok = json_string_value(json_object_get(cp->auth_conf, "token"));
            if (tok) {
                char *hl = xasprintf("Authorization: Bearer %s", tok);
                hdrs = curl_slist_append(hdrs, hl);
                free(hl);
            }
        }
        if (cp->ca_cert_file && *cp->ca_cert_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, cp->ca_cert_file);
        if (cp->client_cert_file && *cp->client_cert_file)
            curl_easy_setopt(h, CURLOPT_SSLCERT, cp->client_cert_file);
        if (cp->client_key_file && *cp->client_key_file)
            curl_easy_setopt(h, CURLOPT_SSLKEY, cp->client_key_file);
        if (cp->skip_verify) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        *errmsg = transport_error(method, url, rc, h, errbuf, &s);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    buf_str(&s.b);
    resp->body = s.b.data ? s.b.data : xstrdup("");
    resp->len = s.b.len;
    s.b.data = NULL;
    result = 0;
out:
    buf_free(&s.b);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(url);
    return result;
}

void ctl_http_response_free(struct ctl_http_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static char *dup_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return xstrdup(s ? s : "");
}

static void parse_params(const json_t *arr, const char *msgkey, struct ctl_api_param **out,
                         size_t *n)
{
    size_t i;
    json_t *x;
    if (!json_is_array(arr))
        return;
    json_array_foreach(arr, i, x)
    {
        if (!json_is_object(x))
            continue;
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[*n].field = dup_str(x, "field");
        (*out)[*n].reason = dup_str(x, msgkey);
        (*n)++;
    }
}

int ctl_api_error_parse(const char *body, size_t len, struct ctl_api_error *out)
{
    memset(out, 0, sizeof(*out));
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    const char *title = json_string_value(json_object_get(j, "title"));
    if (!title || !*title) {
        json_decref(j);
        return -1;
    }
    out->title = xstrdup(title);
    out->detail = dup_str(j, "detail");
    out->details = dup_str(j, "details");
    out->status = (long)json_integer_value(json_object_get(j, "status"));
    parse_params(json_object_get(j, "invalid_parameters"), "reason", &out->params, &out->nparams);
    parse_params(json_object_get(j, "causes"), "message", &out->causes, &out->ncauses);
    json_decref(j);
    return 0;
}

void ctl_api_error_free(struct ctl_api_error *e)
{
    free(e->title);
    free(e->detail);
    free(e->details);
    for (size_t i = 0; i < e->nparams; i++) {
        free(e->params[i].field);
        free(e->params[i].reason);
    }
    for (size_t i = 0; i < e->ncauses; i++) {
        free(e->causes[i].field);
        free(e->causes[i].reason);
    }
    free(e->params);
    free(e->causes);
    memset(e, 0, sizeof(*e));
}

char *ctl_api_error_string(const struct ctl_api_error *e)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s (%s)", e->title, e->detail);
    for (size_t i = 0; i < e->nparams; i++)
        buf_printf(&b, ";%s=%s ", e->params[i].field, e->params[i].reason);
    char *s = xstrdup(buf_str(&b));
    buf_free(&b);
    return s;
}

char *ctl_api_error_format(const struct ctl_api_error *e)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s (%s)", e->title, *e->detail ? e->detail : e->details);
    if (e->ncauses && !e->nparams) {
        for (size_t i = 0; i < e->ncauses; i++)
            buf_printf(&b, "\n* %s: %s", e->causes[i].field, e->causes[i].reason);
    } else {
        for (size_t i = 0; i < e->nparams; i++)
            buf_printf(&b, "\n* %s: %s", e->params[i].field, e->params[i].reason);
    }
    char *s = xstrdup(buf_str(&b));
    buf_free(&b);
    return s;
}
