/*
 * kumactl — the CLI's entry point: the command table and argument handling.
 *
 * The grammar is a tree of commands as in Kuma's cobra-based kumactl.
 * Resolution follows cobra: the first word that is not a flag selects a
 * subcommand at each level; the rest are flags (the command's own, the
 * persistent flags of its ancestors and the global ones) and positional
 * arguments. Errors found before the command runs (unknown flags, wrong
 * argument counts) print "Error: ..." and the usage; errors from the
 * command print "Error: ...". Either way the exit code is 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/types.h"
#include "core/util.h"
#include "ctl/args.h"
#include "ctl/ctl.h"

struct node {
    const char *name, *use, *short_help, *long_help;
    const struct flag_def *flags;  /* local flags */
    const struct flag_def *pflags; /* persistent: inherited by subcommands */
    int min_args, max_args;        /* -1 = unlimited */
    int (*run)(struct ctl *);
    const struct res_type *type;
    struct node **children;
    size_t nchildren;
    struct node *parent;
};

static const struct flag_def global_flags[] = {
    {"config-file", 0, FLAG_STRING, "", "path to the configuration file to use", 0},
    {"mesh", 'm', FLAG_STRING, "default", "mesh to use", 0},
    {"log-level", 0, FLAG_STRING, "off", "log level: one of off|info|debug", 0},
    {"no-config", 0, FLAG_BOOL, "false",
     "if set no config file and config directory will be created", 0},
    {"api-timeout", 0, FLAG_DURATION, "1m0s",
     "the timeout for api calls. It includes connection time, any redirects, and reading the "
     "response body. A timeout of zero means no timeout",
     0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def apply_flags[] = {
    {"file", 'f', FLAG_STRING, "",
     "Path to file or directory to apply. When a directory is provided, all .yaml, .yml, and .json "
     "files are applied. Pass `-` to read from stdin",
     1},
    {"var", 'v', FLAG_MAP, NULL, "Variable to replace in configuration", 0},
    {"dry-run", 0, FLAG_BOOL, "false",
     "Resolve variable and prints result out without actual applying", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def output_flags[] = {
    {"output", 'o', FLAG_STRING, "table", "output format: one of table|yaml|json", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def mesh_flags[] = {
    {"mesh", 'm', FLAG_STRING, "default", "mesh to use", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def inspect_dp_flags[] = {
    {"type", 0, FLAG_STRING, "policies",
     "inspection type: one of policies|config-dump|stats|clusters|config", 0},
    {"include-eds", 0, FLAG_BOOL, "false", "include EDS when dumping envoy config for dataplane",
     0},
    {"mesh", 'm', FLAG_STRING, "default", "mesh to use", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def list_flags[] = {
    {"mesh", 'm', FLAG_STRING, "default", "mesh to use", 0},
    {"size", 0, FLAG_INT, "0", "maximum number of elements to return", 0},
    {"offset", 0, FLAG_STRING, "",
     "the offset that indicates starting element of the resources list to retrieve", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def cp_add_flags[] = {
    {"name", 0, FLAG_STRING, "", "reference name for the Control Plane (required)", 1},
    {"address", 0, FLAG_STRING, "",
     "URL of the Control Plane API Server (required). Example: http://localhost:5681 or "
     "https://localhost:5682)",
     1},
    {"overwrite", 0, FLAG_BOOL, "false",
     "overwrite existing Control Plane with the same reference name", 0},
    {"client-cert-file", 0, FLAG_STRING, "",
     "path to the certificate of a client that is authorized to use the Admin operations of the "
     "Control Plane (kumactl stores only a reference to this file)",
     0},
    {"client-key-file", 0, FLAG_STRING, "",
     "path to the certificate key of a client that is authorized to use the Admin operations of "
     "the Control Plane (kumactl stores only a reference to this file)",
     0},
    {"ca-cert-file", 0, FLAG_STRING, "",
     "path to the certificate authority which will be used to verify the Control Plane certificate "
     "(kumactl stores only a reference to this file)",
     0},
    {"skip-verify", 0, FLAG_BOOL, "false", "skip CA verification", 0},
    {"headers", 0, FLAG_MAP, NULL,
     "add these headers while communicating to control plane, format key=value", 0},
    {"auth-type", 0, FLAG_STRING, "", "authentication type (for example: \"tokens\")", 0},
    {"auth-conf", 0, FLAG_MAP, NULL,
     "authentication configuration for defined authentication type format key=value", 0},
    {"skip-check", 0, FLAG_BOOL, "false", "skip checking if we can connect to the CP", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def cp_name_flags[] = {
    {"name", 0, FLAG_STRING, "", "reference name for the Control Plane (required)", 1},
    {NULL, 0, 0, NULL, NULL, 0},
};

/* --- identity: kumactl generate --- */
static const struct flag_def gen_dp_token_flags[] = {
    {"name", 0, FLAG_STRING, "", "name of the Dataplane", 1},
    {"mesh", 'm', FLAG_STRING, "default", "mesh to use", 0},
    {"type", 0, FLAG_STRING, "", "type of the Dataplane (\"dataplane\", \"ingress\")", 0},
    {"proxy-type", 0, FLAG_STRING, "", "type of the Dataplane (\"dataplane\", \"ingress\")", 0},
    {"tag", 0, FLAG_MAP, NULL,
     "required tag values for dataplane (split values by comma to provide multiple values)", 0},
    {"valid-for", 0, FLAG_DURATION, "0s", "how long the token will be valid (for example \"24h\")",
     1},
    {"signing-key-path", 0, FLAG_STRING, "",
     "path to a file that contains private signing key. When specified, control plane won't be "
     "used to issue the token.",
     0},
    {"kid", 0, FLAG_STRING, "",
     "ID of the key that is used to issue a token. Required when --signing-key-path is used.", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def gen_user_token_flags[] = {
    {"name", 0, FLAG_STRING, "", "name of the user", 1},
    {"group", 0, FLAG_STRING_SLICE, NULL, "group of the user", 0},
    {"valid-for", 0, FLAG_DURATION, "0s", "how long the token will be valid (for example \"24h\")",
     1},
    {"signing-key-path", 0, FLAG_STRING, "",
     "path to a file that contains private signing key. When specified, control plane won't be "
     "used to issue the token.",
     0},
    {"kid", 0, FLAG_STRING, "",
     "ID of the key that is used to issue a token. Required when --signing-key-path is used.", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def gen_tls_flags[] = {
    {"key-file", 0, FLAG_STRING, "key.pem",
     "path to a file with a generated private key ('-' for stdout)", 0},
    {"cert-file", 0, FLAG_STRING, "cert.pem",
     "path to a file with a generated TLS certificate ('-' for stdout)", 0},
    {"type", 0, FLAG_STRING, "", "type of the certificate: one of client|server", 1},
    {"hostname", 0, FLAG_STRING_SLICE, NULL, "DNS hostname(s) to issue the certificate for", 1},
    {"key-type", 0, FLAG_STRING, "rsa", "type of the private key: one of rsa|ecdsa", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def gen_public_key_flags[] = {
    {"signing-key-path", 0, FLAG_STRING, "", "path to a file that contains private signing key", 1},
    {NULL, 0, 0, NULL, NULL, 0},
};
/* --- end identity --- */

/* kumactl install|uninstall transparent-proxy (Kuma's flags; DNS, eBPF and
 * firewalld options are not implemented, see docs/transparent-proxy.md) */
static const struct flag_def tproxy_install_flags[] = {
    {"dry-run", 0, FLAG_BOOL, "false", "dry run", 0},
    {"verbose", 0, FLAG_BOOL, "false", "verbose", 0},
    {"ip-family-mode", 0, FLAG_STRING, "dualstack",
     "The IP family mode to enable traffic redirection for. Can be 'dualstack' or 'ipv4'", 0},
    {"redirect-outbound-port", 0, FLAG_STRING, "15001",
     "outbound port redirected to Envoy, as specified in dataplane's "
     "\"networking.transparentProxying.redirectPortOutbound\"",
     0},
    {"redirect-inbound", 0, FLAG_BOOL, "true",
     "redirect the inbound traffic to the Envoy. Should be disabled for Gateway data plane "
     "proxies.",
     0},
    {"redirect-inbound-port", 0, FLAG_STRING, "15006",
     "inbound port redirected to Envoy, as specified in dataplane's "
     "\"networking.transparentProxying.redirectPortInbound\"",
     0},
    {"exclude-inbound-ports", 0, FLAG_STRING, "",
     "a comma separated list of inbound ports to exclude from redirect to Envoy", 0},
    {"exclude-outbound-ports", 0, FLAG_STRING, "",
     "a comma separated list of outbound ports to exclude from redirect to Envoy", 0},
    {"kuma-dp-user", 0, FLAG_STRING, "",
     "the username or UID of the user that will run kuma-dp. If not provided, the system will "
     "search for a user with the default UID ('5678') or the default username ('kuma-dp')",
     0},
    {"kuma-dp-uid", 0, FLAG_STRING, "", "the uid of the user that will run kuma-dp", 0},
    {"exclude-outbound-ports-for-uids", 0, FLAG_STRING_ARRAY, NULL,
     "outbound ports to exclude for specific uids in a format of protocol:ports:uids where "
     "protocol and ports can be omitted or have value tcp or udp and ports can be a single value, "
     "a list, a range or a combination of all or * and uid can be a value or a range e.g. "
     "53,3000-5000:106-108 would mean exclude ports 53 and from 3000 to 5000 for both TCP and UDP "
     "for uids 106, 107, 108",
     0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def tproxy_uninstall_flags[] = {
    {"dry-run", 0, FLAG_BOOL, "false", "dry run", 0},
    {"verbose", 0, FLAG_BOOL, "false", "verbose", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const struct flag_def version_flags[] = {
    {"detailed", 'a', FLAG_BOOL, "false", "Print detailed version", 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

static struct node *node_new(struct node *parent, const char *name, const char *use,
                             const char *short_help, const char *long_help)
{
    struct node *n = xcalloc(1, sizeof(*n));
    n->name = name;
    n->use = use ? use : name;
    n->short_help = short_help;
    n->long_help = long_help;
    n->min_args = 0;
    n->max_args = 0;
    n->parent = parent;
    if (parent) {
        parent->children =
            xrealloc(parent->children, (parent->nchildren + 1) * sizeof(struct node *));
        parent->children[parent->nchildren++] = n;
    }
    return n;
}

static void node_free(struct node *n)
{
    for (size_t i = 0; i < n->nchildren; i++)
        node_free(n->children[i]);
    free(n->children);
    if (n->type) {
        free((char *)n->short_help);
        free((char *)n->long_help);
        free((char *)n->use);
    }
    free(n);
}

static struct node *build_tree(void)
{
    struct node *root =
        node_new(NULL, "kumactl", NULL, "Management tool for Kuma", "Management tool for Kuma.");
    root->pflags = global_flags;
    root->max_args = -1;

    struct node *n = node_new(root, "apply", NULL, "Create or modify Kuma resources",
                              "Create or modify Kuma resources.");
    n->flags = apply_flags;
    n->run = ctl_cmd_apply;

    struct node *cfg =
        node_new(root, "config", NULL, "Manage kumactl config", "Manage kumactl config.");
    struct node *cps = node_new(cfg, "control-planes", NULL, "Manage known Control Planes",
                                "Manage known Control Planes.");
    n = node_new(cps, "add", NULL, "Add a Control Plane", "Add a Control Plane.");
    n->flags = cp_add_flags;
    n->run = ctl_cmd_cp_add;
    n = node_new(cps, "list", NULL, "List Control Planes", "List Control Planes.");
    n->run = ctl_cmd_cp_list;
    n = node_new(cps, "remove", NULL, "Remove a Control Plane", "Remove a Control Plane.");
    n->flags = cp_name_flags;
    n->run = ctl_cmd_cp_remove;
    n = node_new(cps, "switch", NULL, "Switch active Control Plane",
                 "Switch active Control Plane.");
    n->flags = cp_name_flags;
    n->run = ctl_cmd_cp_switch;
    n = node_new(cfg, "view", NULL, "Show kumactl config", "Show kumactl config.");
    n->run = ctl_cmd_config_view;

    n = node_new(root, "delete", "delete TYPE NAME", "Delete Kuma resources",
                 "Delete Kuma resources.");
    n->pflags = mesh_flags;
    n->min_args = n->max_args = 2;
    n->run = ctl_cmd_delete;

    /* --- identity: kumactl generate --- */
    struct node *gen = node_new(root, "generate", NULL, "Generate resources, tokens, etc",
                                "Generate resources, tokens, etc.");
    n = node_new(gen, "dataplane-token", NULL, "Generate Dataplane Token",
                 "Generate Dataplane Token that is used to prove Dataplane identity.");
    n->flags = gen_dp_token_flags;
    n->run = ctl_cmd_generate_dataplane_token;
    n = node_new(gen, "public-key", NULL, "Generate public key",
                 "Generate public key from the private signing key.");
    n->flags = gen_public_key_flags;
    n->run = ctl_cmd_generate_public_key;
    n = node_new(gen, "signing-key", NULL, "Generate signing keys",
                 "Generate a private key for signing tokens.");
    n->run = ctl_cmd_generate_signing_key;
    n = node_new(gen, "tls-certificate",
                 "tls-certificate --type=server|client --hostname=HOST1[,HOST2...]",
                 "Generate a TLS certificate",
                 "Generate self signed key and certificate pair that can be used for example in "
                 "Dataplane Token Server setup.");
    n->flags = gen_tls_flags;
    n->run = ctl_cmd_generate_tls_certificate;
    n = node_new(gen, "user-token", NULL, "Generate User Token",
                 "Generate User Token that is used to prove User identity.");
    n->flags = gen_user_token_flags;
    n->run = ctl_cmd_generate_user_token;
    /* --- end identity --- */

    struct node *get = node_new(root, "get", NULL, "Show Kuma resources", "Show Kuma resources.");
    get->pflags = output_flags;
    size_t nt;
    const struct res_type *const *all = types_all(&nt);
    for (size_t i = 0; i < nt; i++) {
        const struct res_type *t = all[i];
        n = node_new(get, t->kumactl_list_arg, xstrdup(t->kumactl_list_arg),
                     xasprintf("Show %s", t->name), xasprintf("Show %s entities.", t->name));
        n->pflags = list_flags;
        n->run = ctl_cmd_get_list;
        n->type = t;
        n = node_new(get, t->kumactl_arg, xasprintf("%s NAME", t->kumactl_arg),
                     xasprintf("Show a single %s resource", t->name),
                     xasprintf("Show a single %s resource.", t->name));
        n->pflags = mesh_flags;
        n->min_args = n->max_args = 1;
        n->run = ctl_cmd_get_one;
        n->type = t;
    }

    struct node *insp =
        node_new(root, "inspect", NULL, "Inspect Kuma resources", "Inspect Kuma resources.");
    insp->pflags = output_flags;
    n = node_new(insp, "meshes", NULL, "Inspect Meshes", "Inspect Meshes.");
    n->run = ctl_cmd_inspect_meshes;
    n->max_args = -1; /* cobra: no Args validator on this command */
    n = node_new(insp, "dataplanes", NULL, "Inspect Dataplanes", "Inspect Dataplanes.");
    n->pflags = mesh_flags;
    n->run = ctl_cmd_inspect_dataplanes;
    n->max_args = -1;
    n = node_new(insp, "dataplane", "dataplane NAME", "Inspect Dataplane", "Inspect Dataplane.");
    n->pflags = inspect_dp_flags;
    n->min_args = n->max_args = 1;
    n->run = ctl_cmd_inspect_dataplane;

    struct node *inst = node_new(root, "install", NULL, "Install various Kuma components.",
                                 "Install various Kuma components.");
    n = node_new(inst, "transparent-proxy", NULL,
                 "Install Transparent Proxy pre-requisites on the host",
                 "Install Transparent Proxy by modifying the hosts iptables.\n\nRun it as root "
                 "with --kuma-dp-user naming the user kuma-dp runs as; revert it with 'kumactl "
                 "uninstall transparent-proxy'.");
    n->flags = tproxy_install_flags;
    n->run = ctl_cmd_install_tproxy;
    struct node *uninst = node_new(root, "uninstall", NULL, "Uninstall various Kuma components.",
                                   "Uninstall various Kuma components.");
    n = node_new(uninst, "transparent-proxy", NULL,
                 "Uninstall Transparent Proxy pre-requisites on the host",
                 "Uninstall Transparent Proxy by restoring the hosts iptables.");
    n->flags = tproxy_uninstall_flags;
    n->run = ctl_cmd_uninstall_tproxy;

    n = node_new(root, "version", NULL, "Print version", "Print version.");
    n->flags = version_flags;
    n->run = ctl_cmd_version;
    n->max_args = -1;
    return root;
}

static struct node *child(const struct node *n, const char *name)
{
    for (size_t i = 0; i < n->nchildren; i++)
        if (strcmp(n->children[i]->name, name) == 0)
            return n->children[i];
    return NULL;
}

/* The flag tables that apply to n: its own, then persistent ones upwards. */
static size_t tables_for(const struct node *n, const struct flag_def **out, size_t max)
{
    size_t k = 0;
    if (n->flags && k < max)
        out[k++] = n->flags;
    for (const struct node *p = n; p; p = p->parent)
        if (p->pflags && k < max)
            out[k++] = p->pflags;
    return k;
}

static int takes_value(const struct node *n, const char *w)
{
    const struct flag_def *tables[8];
    size_t nt = tables_for(n, tables, 8);
    if (w[1] == '-') {
        const char *name = w + 2;
        if (strchr(name, '='))
            return 0;
        for (size_t i = 0; i < nt; i++)
            for (const struct flag_def *d = tables[i]; d->name; d++)
                if (strcmp(d->name, name) == 0)
                    return d->kind != FLAG_BOOL;
        return 0;
    }
    if (w[1] && !w[2])
        for (size_t i = 0; i < nt; i++)
            for (const struct flag_def *d = tables[i]; d->name; d++)
                if (d->shorthand == w[1])
                    return d->kind != FLAG_BOOL;
    return 0;
}

static char *command_path(const struct node *n)
{
    if (!n->parent)
        return xstrdup(n->name);
    char *p = command_path(n->parent);
    char *r = xasprintf("%s %s", p, n->name);
    free(p);
    return r;
}

static void print_flags(FILE *f, const struct flag_def *const *tables, size_t nt, int help_first,
                        const char *help_name, const struct flag_def *const *skip, size_t nskip)
{
    const char *seen[64];
    size_t nseen = 0;
    for (size_t i = 0; i < nskip; i++)
        for (const struct flag_def *d = skip[i]; d->name && nseen < 64; d++)
            seen[nseen++] = d->name;
    size_t width = 0;
    char lines[64][160];
    const char *usages[64];
    char defs[64][96];
    size_t nl = 0;
    if (help_first) {
        snprintf(lines[nl], sizeof(lines[nl]), "  -h, --help");
        defs[nl][0] = '\0';
        usages[nl++] = help_name;
    }
    for (size_t i = 0; i < nt; i++) {
        for (const struct flag_def *d = tables[i]; d->name && nl < 64; d++) {
            int dup = 0;
            for (size_t s = 0; s < nseen; s++)
                if (strcmp(seen[s], d->name) == 0)
                    dup = 1;
            if (dup)
                continue;
            seen[nseen++] = d->name;
            const char *ty = d->kind == FLAG_STRING         ? " string"
                             : d->kind == FLAG_INT          ? " int"
                             : d->kind == FLAG_MAP          ? " stringToString"
                             : d->kind == FLAG_DURATION     ? " duration"
                             : d->kind == FLAG_STRING_SLICE ? " strings"
                             : d->kind == FLAG_STRING_ARRAY ? " stringArray"
                                                            : "";
            if (d->shorthand)
                snprintf(lines[nl], sizeof(lines[nl]), "  -%c, --%s%s", d->shorthand, d->name, ty);
            else
                snprintf(lines[nl], sizeof(lines[nl]), "      --%s%s", d->name, ty);
            const char *def = d->defval;
            if (def && *def && d->kind != FLAG_BOOL && !(d->kind == FLAG_INT && !strcmp(def, "0")))
                snprintf(defs[nl], sizeof(defs[nl]),
                         d->kind == FLAG_STRING ? " (default \"%s\")" : " (default %s)", def);
            else
                defs[nl][0] = '\0';
            usages[nl++] = d->usage;
        }
    }
    for (size_t i = 0; i < nl; i++)
        if (strlen(lines[i]) > width)
            width = strlen(lines[i]);
    for (size_t i = 0; i < nl; i++)
        fprintf(f, "%-*s   %s%s\n", (int)width, lines[i], usages[i], defs[i]);
}

static void print_usage(FILE *f, const struct node *n)
{
    char *path = command_path(n);
    fprintf(f, "Usage:\n");
    if (n->run) {
        char *parent = n->parent ? command_path(n->parent) : NULL;
        fprintf(f, "  %s%s%s [flags]\n", parent ? parent : "", parent ? " " : "", n->use);
        free(parent);
    }
    if (n->nchildren)
        fprintf(f, "  %s [command]\n", path);
    if (n->nchildren) {
        size_t w = 0;
        fprintf(f, "\nAvailable Commands:\n");
        for (size_t i = 0; i < n->nchildren; i++)
            if (strlen(n->children[i]->name) > w)
                w = strlen(n->children[i]->name);
        for (size_t i = 0; i < n->nchildren; i++)
            fprintf(f, "  %-*s %s\n", (int)(w < 10 ? 11 : w + 1), n->children[i]->name,
                    n->children[i]->short_help);
    }
    const struct flag_def *local[2];
    size_t nl = 0;
    if (n->flags)
        local[nl++] = n->flags;
    if (n->pflags)
        local[nl++] = n->pflags;
    char *help_name = xasprintf("help for %s", n->name);
    fprintf(f, "\nFlags:\n");
    print_flags(f, local, nl, 1, help_name, NULL, 0);
    free(help_name);
    const struct flag_def *inherited[8];
    size_t ni = 0;
    for (const struct node *p = n->parent; p; p = p->parent)
        if (p->pflags && ni < 8)
            inherited[ni++] = p->pflags;
    if (ni) {
        fprintf(f, "\nGlobal Flags:\n");
        print_flags(f, inherited, ni, 0, NULL, local, nl);
    }
    if (n->nchildren)
        fprintf(f, "\nUse \"%s [command] --help\" for more information about a command.\n", path);
    free(path);
}

static void print_help(FILE *f, const struct node *n)
{
    fprintf(f, "%s\n\n", n->long_help);
    print_usage(f, n);
}

static int fail_with_usage(const struct node *n, const char *msg)
{
    fprintf(stderr, "Error: %s\n", msg);
    print_usage(stderr, n);
    return 1;
}

static int check_args(const struct node *n, const struct args *a, char **msg)
{
    size_t got = a->npos;
    if (n->max_args == -1)
        return 0;
    if (n->min_args == 0 && n->max_args == 0 && got > 0) {
        char *path = command_path(n);
        *msg = xasprintf("unknown command \"%s\" for \"%s\"", a->pos[0], path);
        free(path);
        return -1;
    }
    if ((int)got < n->min_args || (int)got > n->max_args) {
        *msg = xasprintf("accepts %d arg(s), received %zu", n->min_args, got);
        return -1;
    }
    return 0;
}

static int run(int argc, char **argv, struct node *root)
{
    struct node *n = root;
    char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0, descending = 1, help_cmd = 0;

    for (int i = 1; i < argc; i++) {
        char *w = argv[i];
        if (w[0] == '-' && w[1]) {
            rest[nrest++] = w;
            if (strcmp(w, "--") == 0) {
                for (i++; i < argc; i++)
                    rest[nrest++] = argv[i];
                break;
            }
            if (takes_value(n, w) && i + 1 < argc)
                rest[nrest++] = argv[++i];
            continue;
        }
        if (descending && n == root && strcmp(w, "help") == 0 && !help_cmd) {
            help_cmd = 1;
            continue;
        }
        struct node *c = descending ? child(n, w) : NULL;
        if (c) {
            n = c;
            continue;
        }
        descending = 0;
        rest[nrest++] = w;
    }

    const struct flag_def *tables[8];
    size_t nt = tables_for(n, tables, 8);
    struct args a;
    char *msg = NULL;
    int code = 0;
    struct ctl c;
    ctl_init(&c, stdout, stderr, stdin);

    if (args_parse(tables, nt, nrest, rest, &a, &msg) < 0) {
        code = fail_with_usage(n, msg);
        free(msg);
        free(rest);
        ctl_free(&c);
        return code;
    }
    if (a.help || help_cmd || !n->run) {
        if (!n->run && a.npos > 0 && !a.help && !help_cmd) {
            char *path = command_path(n);
            fprintf(stderr,
                    "Error: unknown command \"%s\" for \"%s\"\nRun '%s --help' for usage.\n",
                    a.pos[0], path, path);
            free(path);
            code = 1;
        } else {
            print_help(stdout, n);
        }
        goto out;
    }
    if (check_args(n, &a, &msg) < 0) {
        code = fail_with_usage(n, msg);
        free(msg);
        goto out;
    }

    /* PersistentPreRunE: from here on errors print without the usage. */
    const char *level = args_str(&a, "log-level");
    if (strcmp(level, "off") != 0 && strcmp(level, "info") != 0 && strcmp(level, "debug") != 0) {
        fprintf(stderr, "Error: unknown log level \"%s\"\n", level);
        code = 1;
        goto out;
    }
    c.args = &a;
    c.type = n->type;
    c.config_file = args_is_set(&a, "config-file") ? args_str(&a, "config-file") : NULL;
    c.no_config = args_bool(&a, "no-config");
    c.timeout_ms = (long)args_duration_ms(&a, "api-timeout");
    if (ctl_prepare(&c) < 0 || args_check_required(&a, &msg) < 0 || n->run(&c) < 0) {
        if (msg) {
            fprintf(stderr, "Error: %s\n", msg);
            free(msg);
        } else {
            fprintf(stderr, "Error: %s\n", c.errmsg ? c.errmsg : "unknown error");
        }
        code = 1;
    }
out:
    fflush(stdout);
    args_free(&a);
    ctl_free(&c);
    free(rest);
    return code;
}

int main(int argc, char **argv)
{
    struct node *root = build_tree();
    int code = run(argc, argv, root);
    node_free(root);
    return code;
}
