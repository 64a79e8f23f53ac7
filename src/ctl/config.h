/*
 * ctl/config — kumactl's configuration file (~/.kumactl/config), in Kuma's
 * format: YAML of the kumactl.v1alpha1.Configuration message with camelCase
 * keys (controlPlanes, contexts, currentContext). Reading also accepts the
 * snake_case keys protobuf's JSON mapping allows (control_planes,
 * current_context, api_server, ...). Writing sorts keys as Kuma does.
 *
 * A configuration with no file is Kuma's default: one control plane "local"
 * at http://localhost:5681 and a context of the same name, active.
 */
#ifndef CTL_CONFIG_H
#define CTL_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#include "core/util.h"

#define CTL_CONFIG_MAX_BYTES (4u << 20)

struct ctl_header {
    char *key, *value;
};

struct ctl_cp {
    char *name;
    char *url;
    char *ca_cert_file, *client_cert_file, *client_key_file;
    int skip_verify;
    struct ctl_header *headers;
    size_t nheaders;
    char *auth_type;
    json_t *auth_conf; /* object of strings; never NULL */
};

struct ctl_context {
    char *name;
    char *control_plane;
    char *default_mesh; /* defaults.mesh, may be NULL */
};

struct ctl_config {
    struct ctl_cp *cps;
    size_t ncps;
    struct ctl_context *contexts;
    size_t ncontexts;
    char *current_context; /* may be NULL or "" */
};

/* Kuma's default configuration (control plane and context "local"). */
void ctl_config_default(struct ctl_config *c);
void ctl_config_free(struct ctl_config *c);

/* Parses YAML/JSON text; fills e with a message on error. */
int ctl_config_parse(const char *text, size_t len, struct ctl_config *c, struct err *e);
/* Kuma's YAML for c (sorted keys, omitted empties); caller frees. */
char *ctl_config_to_yaml(const struct ctl_config *c);

/* The default path: $HOME/.kumactl/config; caller frees. */
char *ctl_config_default_path(void);
/*
 * Loads as kumactl does: if file is NULL the default path is used and a
 * missing file means the default configuration; an explicit file must exist.
 * Messages: `Failed to access configuration file "<f>"`, `Failed to read
 * configuration from file "<f>": ...`, `Failed to parse configuration from
 * file "<f>": ...`.
 */
int ctl_config_load(const char *file, struct ctl_config *c, struct err *e);
/* Writes (0600), creating the directory (0755) when needed. */
int ctl_config_save(const char *file, const struct ctl_config *c, struct err *e);

/* Adds cp (taking ownership); returns 0, or -1 if the name exists and not
 * overwrite (cp is then freed). */
int ctl_config_add_cp(struct ctl_config *c, struct ctl_cp *cp, int overwrite);
/* Adds a context named like the control plane; same contract. */
int ctl_config_add_context(struct ctl_config *c, const char *name, const char *cp, int overwrite);
/* Removes a control plane and every context using it; the current context
 * moves to the first remaining one (or none). Returns -1 if absent. */
int ctl_config_remove_cp(struct ctl_config *c, const char *name);
/* Makes the context named name current; -1 if there is none. */
int ctl_config_switch(struct ctl_config *c, const char *name);

const struct ctl_context *ctl_config_current(const struct ctl_config *c);
const struct ctl_cp *ctl_config_find_cp(const struct ctl_config *c, const char *name);

void ctl_cp_free(struct ctl_cp *cp);

#endif
