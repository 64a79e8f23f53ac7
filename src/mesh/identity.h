/*
 * identity — what the resource manager does for a mesh's identity: check
 * its CA backends against their certificates (provided CAs) or settings
 * (builtin), create each builtin backend's root CA once, and create the
 * mesh's dataplane-token signing key. Keys live in the store as Secrets owned
 * by the mesh, so they go with it.
 */
#ifndef MESH_IDENTITY_H
#define MESH_IDENTITY_H

#include "core/resource.h"
#include "core/verr.h"
#include "store/store.h"

/* A ca_secret_fetch_fn over the store (ud = struct store *): the decoded
 * bytes of Secret name in mesh. */
int identity_secret_fetch(void *ud, const char *mesh, const char *name, char **data, size_t *len,
                          struct err *e);

/* The CA plugins' ValidateBackend over every mTLS backend of mesh (unless
 * mtls.skipValidation), with violations at mtls.backends[i].conf.… */
void identity_validate_backends(struct store *st, const struct resource *mesh, struct verr *ve);

/* Creates, for each builtin backend whose secrets are missing, its root CA
 * (Secrets <mesh>.ca-builtin-cert-<backend> and ...-key-<backend>). Never
 * replaces existing ones. */
int identity_ensure_cas(struct store *st, const struct resource *mesh, struct changes *ch,
                        struct err *e);

/* Creates dataplane-token-signing-key-<mesh>-1 unless it exists. */
int identity_ensure_signing_key(struct store *st, const char *mesh, struct changes *ch,
                                struct err *e);

/* Stores a Secret (mesh "" = GlobalSecret) with data unless one exists.
 * Returns 1 if it already existed, 0 if created, <0 on failure. */
int identity_put_secret_once(struct store *st, const char *mesh, const char *name, const void *data,
                             size_t len, struct changes *ch, struct err *e);

#endif
