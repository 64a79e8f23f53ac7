/*
 * fleet_tls — see fleet_tls.h.
 */
#include "fleet_tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>

SSL_CTX *fleet_tls_client_ctx(const char *ca_file, const char *verify_name, char *why,
                              size_t why_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(why, why_len, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        snprintf(why, why_len, "XDS_CA %s: %s", ca_file, ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, verify_name) != 1 &&
        X509_VERIFY_PARAM_set1_host(vp, verify_name, 0) != 1) {
        snprintf(why, why_len, "cannot verify a certificate for %s", verify_name);
        SSL_CTX_free(ctx);
        return NULL;
    }
    ERR_clear_error(); /* set1_ip_asc's failure on a name */
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Whole flights with one recv instead of a header and a body read per
     * record (fleet.c drains SSL_has_pending). AES-128-GCM first, as Envoy
     * and kuma-dp: its SHA-256 key schedule is cheaper than SHA-384. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                  "TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}
