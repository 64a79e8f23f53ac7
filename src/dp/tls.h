/*
 * tls — OpenSSL contexts for the proxy's mTLS, built from SDS secrets (PEM).
 *
 * Chain verification is OpenSSL's (an X509_STORE holding the mesh CA bundle);
 * on top of it the leaf's URI SANs must match the configured matchers (Envoy's
 * match_typed_subject_alt_names): a prefix "spiffe://<mesh>/" inbound, the
 * exact "spiffe://<mesh>/<service>" outbound. The SAN check runs inside the
 * verify callback, so a wrong identity fails the handshake with an alert, as
 * in Envoy.
 *
 * A context presents its certificate_chain as given (no chain built from the
 * trust store, as Envoy) and remembers peer leaves that verified under it: a
 * byte-identical lone leaf skips the chain verification while its chain is
 * unexpired; the SAN check and the peer's proof of key possession still run
 * on every handshake (tls.c, "Verified-chain cache").
 *
 * An SSL_CTX is immutable once built (apart from its session and verified-leaf
 * caches, each behind a lock) and belongs to one configuration
 * snapshot; every SSL made from it holds a reference, so a rotated
 * certificate only affects handshakes started after the swap.
 */
#ifndef DP_TLS_H
#define DP_TLS_H

#include <openssl/ssl.h>

#include "core/util.h"
#include "dp/model.h"

/* What a handshake's verify callback needs and reports; one per SSL (ex_data). */
struct dp_tls_verify {
    const struct dp_string_matcher *sans; /* any one must match a URI SAN; none = no check */
    size_t n_sans;
    int san_failed;            /* the chain was fine but no URI SAN matched */
    int chain_failed;          /* X509 verification failed */
    int verify_error;          /* X509_V_ERR_* of chain_failed */
    const unsigned char *alpn; /* server: wire-format list to select from (may be NULL) */
    unsigned alpn_len;
    /* client: called with a new resumable session (the callee takes the
     * reference); NULL = sessions are not kept. */
    void (*on_session)(void *owner, SSL_SESSION *sess);
    void *owner;
};

/* Builds a server context presenting `identity` and, if `ca` is given,
 * verifying clients against it (required when require_client_cert). It issues
 * one session ticket per handshake from a session cache private to this
 * context (at most 256 entries, ~15 KiB each with the peer certificate): a rotated context cannot
 * resume sessions of the old one. */
SSL_CTX *dp_tls_server_ctx(const struct dp_secret *identity, const struct dp_secret *ca,
                           int require_client_cert, struct err *e);
/* Builds a client context presenting `identity` (optional) and verifying the
 * server against `ca` (optional: no verification without it). New sessions
 * (TLS 1.3 tickets) go to the SSL's dp_tls_verify.on_session. */
SSL_CTX *dp_tls_client_ctx(const struct dp_secret *identity, const struct dp_secret *ca,
                           struct err *e);

/* Connects ssl to the socket fd (not closed with it), like SSL_set_fd but
 * sending with MSG_NOSIGNAL and setting *drained to 1 whenever a read comes
 * back short, empty or failed: the socket held no more data, so the caller can
 * wait for epoll rather than read again for EAGAIN. While *drained is 1 the
 * BIO does not recv at all (it reports "retry"): the caller clears it when
 * level-triggered epoll reports the socket readable. drained must outlive ssl.
 * Returns 0, or -1 if out of memory. */
int dp_tls_set_socket(SSL *ssl, int fd, int *drained);

/* Write coalescing on a dp_tls_set_socket SSL. While held, what libssl
 * writes (and flushes) stays in the BIO; once the hold is off, held bytes go
 * out ahead of the next write in the same sendmsg, or with dp_tls_release.
 * The proxy holds around each handshake step: a flight that ends the step
 * waiting for the peer is released at once, but what the step completing the
 * handshake wrote (the client's Finished, the server's TLS 1.3
 * NewSessionTicket) goes out with the first application data (or the
 * close_notify), one segment instead of two. */
void dp_tls_hold(SSL *ssl, int on);
/* Turns the hold off and sends the held bytes. Returns 0 when none are left,
 * 1 when some are (socket full: call again once writable), -1 on a socket
 * error. */
int dp_tls_release(SSL *ssl);

/* Attaches v (owned by the caller, must outlive ssl's handshake) to ssl. */
void dp_tls_set_verify(SSL *ssl, struct dp_tls_verify *v);

/* Encodes ALPN protocol names in wire format into out (cap bytes); returns the
 * length, or 0 if they do not fit. */
unsigned dp_tls_alpn_wire(char *const *protos, size_t n, unsigned char *out, unsigned cap);

int dp_string_match(const struct dp_string_matcher *m, const char *s);
/* 1 if any URI SAN of the verified peer certificate matches m. */
int dp_tls_peer_uri_matches(SSL *ssl, const struct dp_string_matcher *m);
/* Envoy's RBAC principal semantics over the verified peer certificate (ssl
 * NULL = a plaintext peer, which only `any` matches): a leaf matches when
 * any URI SAN matches its principal_name, AND/OR/NOT combine their members.
 * Returns 1 or 0. */
int dp_tls_peer_principal_matches(SSL *ssl, const struct dp_rbac_principal *pr);
/* Copies the first URI SAN of the peer certificate (for logs); "" if none. */
void dp_tls_peer_first_uri(SSL *ssl, char *out, size_t outlen);

/* Makes OpenSSL 3.0 decode, sign and verify EC (P-256) keys through its
 * legacy EC code, which parses a peer's certificate ~6x faster (about a third
 * of an mTLS handshake's CPU on each side; core/tlsfast.h). Process-wide and
 * irreversible: afterwards EVP_EC_gen()/EVP_PKEY_Q_keygen("EC") fail, so only
 * a process that generates no EC keys may call it (kuma-dp). Call before
 * starting threads; idempotent. Returns 1 if on, 0 if unavailable or turned
 * off by DP_TLS_NO_LEGACY_EC=1. */
int dp_tls_enable_fast_ec_keys(void);

/* The OpenSSL error queue as one line, then clears it. */
void dp_tls_errors(char *out, size_t outlen);

#endif
