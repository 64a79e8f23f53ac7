/*
 * tlsfast — see tlsfast.h.
 */
/* The ENGINE API is deprecated in OpenSSL 3 but is the only switch that
 * selects the direct legacy public-key decoder. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/tlsfast.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#endif

static pthread_mutex_t fast_mu = PTHREAD_MUTEX_INITIALIZER;
static int fast_done, fast_on;

#ifndef OPENSSL_NO_ENGINE
static const int all_nids[] = {EVP_PKEY_EC, EVP_PKEY_RSA};
static const int all_types[] = {TLS_FAST_EC, TLS_FAST_RSA};
static int fast_nids[2];
static int n_fast;
static EVP_PKEY_METHOD *fast_meths[2];

static int fast_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids, int nid)
{
    (void)e;
    if (!pmeth) {
        *nids = fast_nids;
        return n_fast;
    }
    *pmeth = NULL;
    for (int k = 0; k < n_fast; k++)
        if (nid == fast_nids[k])
            *pmeth = fast_meths[k];
    return *pmeth != NULL;
}

static int fast_init(int types)
{
    for (int k = 0; k < 2; k++) {
        if (!(types & all_types[k]))
            continue;
        const EVP_PKEY_METHOD *builtin = EVP_PKEY_meth_find(all_nids[k]);
        EVP_PKEY_METHOD *m = builtin ? EVP_PKEY_meth_new(all_nids[k], 0) : NULL;
        if (!m)
            return 0;
        EVP_PKEY_meth_copy(m, builtin);
        fast_nids[n_fast] = all_nids[k];
        fast_meths[n_fast++] = m;
    }
    if (n_fast == 0)
        return 0;
    ENGINE *e = ENGINE_new();
    int ok = e && ENGINE_set_id(e, "kuma-legacy-pkeys") &&
             ENGINE_set_name(e, "kuma legacy public keys") &&
             ENGINE_set_pkey_meths(e, fast_pkey_meths) && ENGINE_set_default_pkey_meths(e);
    ENGINE_free(e); /* the default table keeps its own reference */
    return ok ? types & (TLS_FAST_EC | TLS_FAST_RSA) : 0;
}
#else
static int fast_init(int types)
{
    (void)types;
    return 0;
}
#endif

int tls_fast_pkeys_enable(int types, const char *off_env)
{
    pthread_mutex_lock(&fast_mu);
    if (!fast_done) {
        fast_done = 1;
        const char *off = off_env ? getenv(off_env) : NULL;
        if (!(off && *off && strcmp(off, "0") != 0))
            fast_on = fast_init(types);
        ERR_clear_error(); /* only slower if it failed: the providers work as before */
    }
    int on = fast_on;
    pthread_mutex_unlock(&fast_mu);
    return on;
}
