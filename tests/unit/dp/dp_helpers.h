/*
 * Helpers for the proxy engine's unit tests: loopback backends run in threads
 * (echo, id, paused sink, black hole), blocking clients with timeouts, stat
 * lookups, and a test CA that mints ECDSA P-256 leaves with URI SANs through
 * OpenSSL's APIs.
 */
#ifndef DP_HELPERS_H
#define DP_HELPERS_H

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "dp/engine.h"

enum backend_mode {
    BACKEND_ECHO,            /* echo until EOF, then half-close */
    BACKEND_ID,              /* send the id string, then close */
    BACKEND_PAUSE,           /* read nothing until backend_resume(), then count and discard */
    BACKEND_REPLY_AFTER_EOF, /* read until EOF, then send it all back and close */
    BACKEND_BLAST, /* read until EOF, then send BLAST_BYTES of fill_random(seed 7), close */
};

struct backend;

#define BLAST_BYTES (4u << 20)

struct backend *backend_start(enum backend_mode mode, const char *id);
int backend_port(const struct backend *b);
/* PAUSE mode: start reading. */
void backend_resume(struct backend *b);
/* PAUSE mode: bytes received so far. */
uint64_t backend_received(struct backend *b);
/* PAUSE mode: a hash of received bytes (FNV-1a 64) */
uint64_t backend_hash(struct backend *b);
long backend_accepted(struct backend *b);
void backend_stop(struct backend *b);

/* A port that refuses connections (bound then closed). */
int closed_port(void);
/* A listening socket whose accept queue is full, so SYNs go unanswered.
 * Returns the port; *fds receives the sockets to close later (3 of them). */
int blackhole_start(int fds[3]);
void blackhole_stop(int fds[3]);

/* Blocking loopback client with 5 s send/receive timeouts; -1 on failure. */
int client_connect(int port);
/* Reads until EOF or n bytes; returns bytes read. */
size_t read_full(int fd, void *p, size_t n);
int write_full(int fd, const void *p, size_t n);
/* Sends `out` from a thread (then shuts down writing) while reading into `in`
 * until EOF; returns bytes read. */
size_t exchange(int fd, const void *out, size_t n, void *in, size_t cap);
/* Connect, read everything until EOF (or 5 s), return as a string. */
char *client_read_all(int port);

uint64_t fnv64(const void *p, size_t n, uint64_t h);
void fill_random(void *p, size_t n, uint64_t seed);

/* A stat's value from /stats text ("name: value"), -1 if absent. */
long long stat_get(struct dp_engine *eng, const char *name);
/* Polls until stat >= want or 3 s pass; returns the last value. */
long long stat_wait(struct dp_engine *eng, const char *name, long long want);

/* --- certificates --- */
struct test_ca {
    EVP_PKEY *key;
    X509 *cert;
    char *pem;
};
void test_ca_init(struct test_ca *ca, const char *cn);
void test_ca_free(struct test_ca *ca);
/* A leaf signed by ca with the given URI SAN; PEMs are heap strings. */
void test_ca_leaf(struct test_ca *ca, const char *uri, char **cert_pem, char **key_pem);

/* A raw TLS client for the handshake tests: returns the connected SSL (fd
 * inside) after a handshake that succeeded, or NULL. */
SSL *tls_client(int port, const char *cert_pem, const char *key_pem, const char *ca_pem,
                const char *alpn);
void tls_client_free(SSL *ssl);

/* HTTP GET on 127.0.0.1:port; returns the whole response (status line,
 * headers, body) as a heap string. */
char *http_get(int port, const char *path);

#endif
