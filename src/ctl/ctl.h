/*
 * ctl — kumactl's commands and the state they share. src/cmd/kumactl.c
 * parses the command line into struct args, picks a command from its table,
 * loads the configuration (ctl_prepare) and calls the command's run
 * function. A command writes its output to c->out, warnings to c->err, and
 * on failure returns -1 after ctl_fail() recorded the message that main
 * prints as "Error: <message>" (cobra's format) before exiting with 1.
 *
 * Behaviour, messages and exit codes follow Kuma 2.14's kumactl
 * (app/kumactl/cmd); docs/kumactl.md lists the differences.
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include <stdio.h>

#include "core/types.h"
#include "ctl/args.h"
#include "ctl/config.h"
#include "ctl/http.h"
#include "ctl/print.h"

#ifndef KUMA_PRODUCT
#define KUMA_PRODUCT "Kuma"
#endif
#ifndef KUMA_VERSION
#define KUMA_VERSION "2.14.3"
#endif

/* Largest file or stdin kumactl apply reads. */
#define CTL_APPLY_MAX_BYTES (32u << 20)

struct ctl {
    FILE *out, *err, *in;
    const struct args *args;
    const struct res_type *type; /* for per-type commands (get) */
    const char *config_file;     /* --config-file, or NULL for the default */
    int no_config;
    struct ctl_config cfg;
    long timeout_ms;
    struct ctl_time now;
    char *errmsg; /* set by ctl_fail, freed by ctl_free */
};

/* Zeroes c and sets the streams, "now" and the default timeout. */
void ctl_init(struct ctl *c, FILE *out, FILE *err, FILE *in);
void ctl_free(struct ctl *c);
/* Records the error message (replacing any earlier one); returns -1. */
int ctl_fail(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* kumactl's PersistentPreRun: --no-config uses the default configuration in
 * memory; otherwise a missing config file is first created with the default,
 * then the file is loaded. */
int ctl_prepare(struct ctl *c);

/* The mesh from -m/--mesh ("default" when empty). */
const char *ctl_mesh(const struct ctl *c);
/* The active control plane, or -1 with Kuma's messages ("active Control
 * Plane is not set. Use `kumactl config control-planes add` ..."). */
int ctl_current_cp(struct ctl *c, const struct ctl_cp **cp);
/* One request to the active control plane. Transport errors fail with
 * prefix + the Go-style error (prefix may be ""). */
int ctl_request(struct ctl *c, const char *method, const char *path, const char *body,
                const char *prefix, struct ctl_http_response *resp);
/* Percent-escapes one path segment; caller frees. */
char *ctl_escape(const char *s);
/* REST paths: "/meshes/m/traffic-permissions[/name]" or "/meshes[/name]". */
char *ctl_resource_path(const struct res_type *t, const char *mesh, const char *name);
/* GET / and warn on c->err when the server's product/version differ from
 * kumactl's (kumactl_cmd.CheckCompatibility). */
void ctl_check_compat(struct ctl *c);

/* Commands. */
int ctl_cmd_apply(struct ctl *c);
int ctl_cmd_get_list(struct ctl *c);
int ctl_cmd_get_one(struct ctl *c);
int ctl_cmd_delete(struct ctl *c);
int ctl_cmd_inspect_meshes(struct ctl *c);
int ctl_cmd_inspect_dataplanes(struct ctl *c); /* cmd_inspect.c */
int ctl_cmd_inspect_dataplane(struct ctl *c);  /* cmd_inspect.c */
int ctl_cmd_cp_add(struct ctl *c);
int ctl_cmd_cp_list(struct ctl *c);
int ctl_cmd_cp_switch(struct ctl *c);
int ctl_cmd_cp_remove(struct ctl *c);
int ctl_cmd_config_view(struct ctl *c);
int ctl_cmd_version(struct ctl *c);
/* kumactl generate ... (cmd_generate.c) */
int ctl_cmd_generate_dataplane_token(struct ctl *c);
int ctl_cmd_generate_user_token(struct ctl *c);
int ctl_cmd_generate_tls_certificate(struct ctl *c);
int ctl_cmd_generate_signing_key(struct ctl *c);
int ctl_cmd_generate_public_key(struct ctl *c);
/* kumactl install|uninstall transparent-proxy (cmd_tproxy.c) */
int ctl_cmd_install_tproxy(struct ctl *c);
int ctl_cmd_uninstall_tproxy(struct ctl *c);

/* Used by apply and tested on their own: splits a YAML stream on "---"
 * lines as Kuma's SplitYAML does (trimmed documents, empty ones dropped).
 * Returns the number of documents; *docs is an array of new strings. */
size_t ctl_split_yaml(const char *text, char ***docs);
/* Reads -f's argument: "-" (stdin), a file, a directory (its .yaml, .yml
 * and .json files in name order, joined by "---"), or an http(s) URL. */
int ctl_read_input(struct ctl *c, const char *file, char **text, size_t *len);

#endif
