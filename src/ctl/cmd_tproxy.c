/*
 * ctl/cmd_tproxy — `kumactl install transparent-proxy` and `kumactl uninstall
 * transparent-proxy` (Kuma's app/kumactl/cmd/install/install_transparent_proxy.go,
 * pkg/transparentproxy/iptables/builder): the iptables NAT rules that send a
 * workload's TCP traffic through kuma-dp's redirect ports.
 *
 * Chains (nat table, per IP family): KUMA_MESH_INBOUND (from PREROUTING),
 * KUMA_MESH_OUTBOUND (from OUTPUT), KUMA_MESH_INBOUND_REDIRECT and
 * KUMA_MESH_OUTBOUND_REDIRECT (REDIRECT to the inbound and outbound ports).
 * Outbound rules in Kuma's order: the inbound passthrough source (127.0.0.6 /
 * ::6) on loopback is left alone; the proxy's own loopback traffic to a
 * local non-localhost address goes back through the inbound redirect; other
 * users' loopback traffic is left alone; everything the kuma-dp user sends
 * is left alone (no loops); localhost is left alone; the rest is redirected.
 *
 * Everything is applied at once with iptables-restore --noflush (one input
 * per family); a failure of the IPv6 part rolls the IPv4 part back. Every
 * rule we add to a built-in chain carries the comment
 * "kuma/mesh/transparent/proxy", so uninstall removes exactly our rules and
 * chains (read back with iptables-save) and nothing else.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/ctl.h"

extern char **environ;

#define TP_COMMENT      "kuma/mesh/transparent/proxy"
#define TP_CHAIN_PREFIX "KUMA_MESH_"
#define TP_DEFAULT_UID  5678
#define TP_DEFAULT_USER "kuma-dp"
#define TP_MAX_OUTPUT   (4u << 20) /* iptables-save output read at most */

/* The buffer's text as a new string; frees the buffer. */
static char *take_str(struct buf *b)
{
    char *s = xstrdup(buf_str(b));
    buf_free(b);
    return s;
}

/* --- running iptables ------------------------------------------------------------------------ */

/* Finds an executable in PATH, then in Kuma's fallback locations. */
static char *find_exe(const char *name)
{
    const char *path = getenv("PATH");
    char *dirs = xasprintf("%s:/usr/sbin:/sbin:/usr/bin:/bin", path ? path : "");
    char *save = NULL, *found = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        if (!*d)
            continue;
        char *p = xasprintf("%s/%s", d, name);
        if (access(p, X_OK) == 0)
            found = p;
        else
            free(p);
    }
    free(dirs);
    return found;
}

/* Runs argv with input on stdin; collects stdout and stderr (bounded).
 * Returns the exit status (0 = success), or -1 if it could not run. */
static int run_cmd(char *const argv[], const char *input, struct buf *out, struct buf *errb)
{
    int in[2], o[2], e[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(o, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    if (pipe2(e, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        close(o[0]);
        close(o[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    posix_spawn_file_actions_adddup2(&fa, e[1], 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(o[1]);
    close(e[1]);
    if (rc != 0) {
        close(in[1]);
        close(o[0]);
        close(e[0]);
        errno = rc;
        return -1;
    }
    /* Small inputs: write it all, then read both outputs until EOF. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    size_t len = input ? strlen(input) : 0, off = 0;
    while (off < len) {
        ssize_t w = write(in[1], input + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(in[1]);
    signal(SIGPIPE, old);
    struct pollfd p[2] = {{o[0], POLLIN, 0}, {e[0], POLLIN, 0}};
    int open_fds = 2;
    char tmp[8192];
    while (open_fds > 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            ssize_t r = read(p[i].fd, tmp, sizeof(tmp));
            if (r > 0) {
                struct buf *b = i == 0 ? out : errb;
                if (b) /* beyond the buffer's cap the rest is dropped */
                    buf_append(b, tmp, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* --- configuration --------------------------------------------------------------------------- */

struct uid_excl {
    const char *proto; /* "tcp", "udp" */
    char *ports;       /* iptables multiport list ("53,3000:5000"), NULL = any port */
    char *uids;        /* owner match ("106-108") */
};

struct tp_cfg {
    int dry_run, verbose, ipv6, redirect_inbound;
    unsigned out_port, in_port;
    unsigned uid;
    char **ex_in, **ex_out; /* port numbers as strings */
    size_t n_ex_in, n_ex_out;
    struct uid_excl *ex_uid;
    size_t n_ex_uid;
    char lo[IF_NAMESIZE + 1];
};

static void cfg_free(struct tp_cfg *t)
{
    for (size_t i = 0; i < t->n_ex_in; i++)
        free(t->ex_in[i]);
    for (size_t i = 0; i < t->n_ex_out; i++)
        free(t->ex_out[i]);
    for (size_t i = 0; i < t->n_ex_uid; i++) {
        free(t->ex_uid[i].ports);
        free(t->ex_uid[i].uids);
    }
    free(t->ex_in);
    free(t->ex_out);
    free(t->ex_uid);
}

/* A port 1..65535; returns it or 0. */
static unsigned parse_port(const char *s)
{
    if (!s || !*s || strlen(s) > 5)
        return 0;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v >= 1 && v <= 65535 ? v : 0;
}

/* "22,443" → list; empty string → empty list. */
static int parse_port_list(struct ctl *c, const char *flag, const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!s || !*s)
        return 0;
    char *copy = xstrdup(s), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned p = parse_port(tok);
        if (!p) {
            rc = ctl_fail(c,
                          "invalid argument \"%s\" for \"--%s\" flag: \"%s\" is not a valid port "
                          "(1-65535)",
                          s, flag, tok);
            break;
        }
        *out = xrealloc(*out, (*n + 1) * sizeof(char *));
        (*out)[(*n)++] = xasprintf("%u", p);
    }
    free(copy);
    return rc;
}

/* Kuma's value-or-range list ("53,3000-5000", "*"): ports for multiport,
 * with ranges written a:b. NULL *out = any. */
static int parse_ports_spec(const char *s, char **out)
{
    *out = NULL;
    if (strcmp(s, "*") == 0)
        return 0;
    struct buf b = {0};
    char *copy = xstrdup(s), *save = NULL;
    int ok = *s != 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        if (dash) {
            *dash = 0;
            unsigned a = parse_port(tok), z = parse_port(dash + 1);
            ok = a && z && a <= z;
            if (ok)
                buf_printf(&b, "%s%u:%u", b.len ? "," : "", a, z);
        } else {
            unsigned a = parse_port(tok);
            ok = a != 0;
            if (ok)
                buf_printf(&b, "%s%u", b.len ? "," : "", a);
        }
    }
    free(copy);
    if (!ok) {
        buf_free(&b);
        return -1;
    }
    *out = take_str(&b);
    return 0;
}

/* A uid or uid range "106-108". */
static int valid_uids(const char *s)
{
    const char *dash = strchr(s, '-');
    size_t n1 = dash ? (size_t)(dash - s) : strlen(s);
    if (!n1 || n1 > 10)
        return 0;
    for (size_t i = 0; i < n1; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    if (dash) {
        const char *r = dash + 1;
        if (!*r || strlen(r) > 10)
            return 0;
        for (; *r; r++)
            if (*r < '0' || *r > '9')
                return 0;
        if (strtoull(s, NULL, 10) > strtoull(dash + 1, NULL, 10))
            return 0;
    }
    return 1;
}

/* --exclude-outbound-ports-for-uids: [<protocol>:][<ports>:]<uids>. */
static int parse_uid_excl(struct ctl *c, struct tp_cfg *t, const char *v)
{
    char *copy = xstrdup(v);
    char *parts[3] = {0};
    size_t np = 0;
    char *p = copy;
    while (np < 3) {
        parts[np++] = p;
        char *colon = strchr(p, ':');
        if (!colon)
            break;
        *colon = 0;
        p = colon + 1;
    }
    int rc = -1;
    const char *proto = NULL, *ports = "*", *uids = NULL;
    size_t colons = 0;
    for (const char *q = v; *q; q++)
        colons += *q == ':';
    if (colons > 2) {
        rc = ctl_fail(c,
                      "invalid value \"%s\" for --exclude-outbound-ports-for-uids: too many "
                      "parts (want [protocol:][ports:]uids)",
                      v);
        goto out;
    }
    if (np == 3) {
        proto = parts[0];
        ports = parts[1];
        uids = parts[2];
    } else if (np == 2) {
        ports = parts[0];
        uids = parts[1];
    } else {
        uids = parts[0];
    }
    if (proto && *proto && strcmp(proto, "*") != 0 && strcmp(proto, "tcp") != 0 &&
        strcmp(proto, "udp") != 0) {
        rc =
            ctl_fail(c,
                     "invalid value \"%s\" for --exclude-outbound-ports-for-uids: unknown protocol "
                     "%s, only 'tcp' or 'udp' allowed",
                     v, proto);
        goto out;
    }
    char *mp = NULL;
    if (parse_ports_spec(*ports ? ports : "*", &mp) != 0) {
        rc = ctl_fail(c,
                      "invalid value \"%s\" for --exclude-outbound-ports-for-uids: ports must "
                      "be a value, a list, a range (a-b) or *",
                      v);
        goto out;
    }
    if (!uids || !valid_uids(uids)) {
        free(mp);
        rc = ctl_fail(c,
                      "invalid value \"%s\" for --exclude-outbound-ports-for-uids: uids must be "
                      "a value or a range (a-b)",
                      v);
        goto out;
    }
    static const char *const both[] = {"tcp", "udp"};
    for (int i = 0; i < 2; i++) {
        if (proto && *proto && strcmp(proto, "*") != 0 && strcmp(proto, both[i]) != 0)
            continue;
        t->ex_uid = xrealloc(t->ex_uid, (t->n_ex_uid + 1) * sizeof(*t->ex_uid));
        struct uid_excl *x = &t->ex_uid[t->n_ex_uid++];
        x->proto = both[i];
        x->ports = mp ? xstrdup(mp) : NULL;
        x->uids = xstrdup(uids);
    }
    free(mp);
    rc = 0;
out:
    free(copy);
    return rc;
}

/* --kuma-dp-user / --kuma-dp-uid: a name or a uid; default uid 5678, then
 * user "kuma-dp" (Kuma's order). */
static int resolve_user(struct ctl *c, const char *v, unsigned *uid)
{
    if (v && *v) {
        size_t n = strspn(v, "0123456789");
        if (n == strlen(v) && n <= 10) {
            unsigned long long u = strtoull(v, NULL, 10);
            if (u > 0xFFFFFFFEull)
                return ctl_fail(c, "invalid UID %s", v);
            *uid = (unsigned)u;
            return 0;
        }
        struct passwd *pw = getpwnam(v);
        if (!pw)
            return ctl_fail(c, "failed to find user '%s'", v);
        *uid = pw->pw_uid;
        return 0;
    }
    if (getpwuid(TP_DEFAULT_UID)) {
        *uid = TP_DEFAULT_UID;
        return 0;
    }
    struct passwd *pw = getpwnam(TP_DEFAULT_USER);
    if (pw) {
        *uid = pw->pw_uid;
        return 0;
    }
    return ctl_fail(c,
                    "failed to find the user to run kuma-dp: no user with UID %d or name '%s'; "
                    "create one or pass --kuma-dp-user",
                    TP_DEFAULT_UID, TP_DEFAULT_USER);
}

/* The loopback interface's name ("lo" on Linux). */
static void loopback_name(char *out, size_t size)
{
    snprintf(out, size, "lo");
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0)
        return;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
        if ((i->ifa_flags & IFF_LOOPBACK) && i->ifa_name) {
            snprintf(out, size, "%s", i->ifa_name);
            break;
        }
    freeifaddrs(ifa);
}

/* Kuma's HasLocalIPv6: some interface has a non-loopback IPv6 address. */
static int has_local_ipv6(void)
{
    struct ifaddrs *ifa = NULL;
    int found = 0;
    if (getifaddrs(&ifa) != 0)
        return 0;
    for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6)
            continue;
        const struct in6_addr *a = &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        found = !IN6_IS_ADDR_LOOPBACK(a);
    }
    freeifaddrs(ifa);
    return found;
}

/* --- rules ------------------------------------------------------------------------------------ */

/* Appends one rule line; with verbose, Kuma's long option names. */
static void rule(struct buf *b, int verbose, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rule(struct buf *b, int verbose, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    if (vasprintf(&line, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (!verbose) {
        buf_printf(b, "%s\n", line);
        free(line);
        return;
    }
    static const char *const longs[][2] = {
        {"-N", "--new-chain"},   {"-A", "--append"},        {"-I", "--insert"},
        {"-p", "--protocol"},    {"-j", "--jump"},          {"-s", "--source"},
        {"-d", "--destination"}, {"-o", "--out-interface"}, {"-m", "--match"},
    };
    char *save = NULL;
    int first = 1;
    for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        const char *w = tok;
        for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
            if (strcmp(tok, longs[i][0]) == 0)
                w = longs[i][1];
        buf_printf(b, "%s%s", first ? "" : " ", w);
        first = 0;
    }
    buf_printf(b, "\n");
    free(line);
}

/* The iptables-restore input of one family. */
static char *build_rules(const struct tp_cfg *t, int v6)
{
    struct buf b = {0};
    int vb = t->verbose;
    const char *cm = "-m comment --comment \"" TP_COMMENT "\"";
    const char *localhost = v6 ? "::1/128" : "127.0.0.1/32";
    const char *passthrough_src = v6 ? "::6/128" : "127.0.0.6/32";
    buf_printf(&b, "* nat\n");
    rule(&b, vb, "-N KUMA_MESH_INBOUND");
    rule(&b, vb, "-N KUMA_MESH_OUTBOUND");
    rule(&b, vb, "-N KUMA_MESH_INBOUND_REDIRECT");
    rule(&b, vb, "-N KUMA_MESH_OUTBOUND_REDIRECT");
    rule(&b, vb, "-A PREROUTING -p tcp %s -j KUMA_MESH_INBOUND", cm);
    unsigned pos = 1;
    for (size_t i = 0; i < t->n_ex_uid; i++) {
        const struct uid_excl *x = &t->ex_uid[i];
        if (x->ports)
            rule(&b, vb,
                 "-I OUTPUT %u -p %s -m multiport --dports %s -m owner --uid-owner %s %s -j RETURN",
                 pos++, x->proto, x->ports, x->uids, cm);
        else
            rule(&b, vb, "-I OUTPUT %u -p %s -m owner --uid-owner %s %s -j RETURN", pos++, x->proto,
                 x->uids, cm);
    }
    rule(&b, vb, "-A OUTPUT -p tcp %s -j KUMA_MESH_OUTBOUND", cm);
    if (t->redirect_inbound) {
        for (size_t i = 0; i < t->n_ex_in; i++)
            rule(&b, vb, "-A KUMA_MESH_INBOUND -p tcp --dport %s -j RETURN", t->ex_in[i]);
        rule(&b, vb, "-A KUMA_MESH_INBOUND -p tcp -j KUMA_MESH_INBOUND_REDIRECT");
    } else {
        rule(&b, vb, "-A KUMA_MESH_INBOUND -p tcp -j RETURN");
    }
    for (size_t i = 0; i < t->n_ex_out; i++)
        rule(&b, vb, "-A KUMA_MESH_OUTBOUND -p tcp --dport %s -j RETURN", t->ex_out[i]);
    rule(&b, vb, "-A KUMA_MESH_OUTBOUND -s %s -o %s -j RETURN", passthrough_src, t->lo);
    rule(&b, vb,
         "-A KUMA_MESH_OUTBOUND -p tcp -o %s ! -d %s -m owner --uid-owner %u -j "
         "KUMA_MESH_INBOUND_REDIRECT",
         t->lo, localhost, t->uid);
    rule(&b, vb, "-A KUMA_MESH_OUTBOUND -p tcp -o %s -m owner ! --uid-owner %u -j RETURN", t->lo,
         t->uid);
    rule(&b, vb, "-A KUMA_MESH_OUTBOUND -m owner --uid-owner %u -j RETURN", t->uid);
    rule(&b, vb, "-A KUMA_MESH_OUTBOUND -d %s -j RETURN", localhost);
    rule(&b, vb, "-A KUMA_MESH_OUTBOUND -j KUMA_MESH_OUTBOUND_REDIRECT");
    rule(&b, vb, "-A KUMA_MESH_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports %u", t->in_port);
    rule(&b, vb, "-A KUMA_MESH_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports %u", t->out_port);
    buf_printf(&b, "COMMIT\n");
    return take_str(&b);
}

/* The restore input removing what install added, from `<save> -t nat`
 * output: our rules in built-in chains (by comment or jump target), then
 * our chains. NULL when there is nothing of ours. */
static char *build_removal(const char *saved)
{
    /* Every chain is flushed before any is deleted: they refer to each other. */
    struct buf del = {0}, flush = {0}, chains = {0};
    const char *p = saved;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = xstrndup(p, n);
        p = nl ? nl + 1 : NULL;
        if (strncmp(line, ":" TP_CHAIN_PREFIX, strlen(":" TP_CHAIN_PREFIX)) == 0) {
            char *sp = strchr(line, ' ');
            if (sp)
                *sp = 0;
            buf_printf(&flush, "-F %s\n", line + 1);
            buf_printf(&chains, "-X %s\n", line + 1);
        } else if (strncmp(line, "-A ", 3) == 0 &&
                   strncmp(line + 3, TP_CHAIN_PREFIX, strlen(TP_CHAIN_PREFIX)) != 0 &&
                   (strstr(line, TP_COMMENT) || strstr(line, "-j " TP_CHAIN_PREFIX))) {
            buf_printf(&del, "-D %s\n", line + 3);
        }
        free(line);
    }
    if (!del.len && !chains.len) {
        buf_free(&del);
        buf_free(&flush);
        buf_free(&chains);
        return NULL;
    }
    struct buf out = {0};
    buf_printf(&out, "* nat\n");
    if (del.len)
        buf_append(&out, del.data, del.len);
    if (flush.len)
        buf_append(&out, flush.data, flush.len);
    if (chains.len)
        buf_append(&out, chains.data, chains.len);
    buf_printf(&out, "COMMIT\n");
    buf_free(&flush);
    buf_free(&del);
    buf_free(&chains);
    return take_str(&out);
}

struct family {
    const char *name; /* "iptables", "ip6tables" */
    char *restore, *save;
};

static int family_init(struct family *f, const char *name)
{
    f->name = name;
    char *r = xasprintf("%s-restore", name), *s = xasprintf("%s-save", name);
    f->restore = find_exe(r);
    f->save = find_exe(s);
    free(r);
    free(s);
    return f->restore && f->save ? 0 : -1;
}

static void family_free(struct family *f)
{
    free(f->restore);
    free(f->save);
}

/* `<family>-save -t nat` into *out; 0 or -1 with the message in c. */
static int save_nat(struct ctl *c, const struct family *f, char **out)
{
    struct buf o, e;
    buf_init(&o, TP_MAX_OUTPUT);
    buf_init(&e, 64 * 1024);
    char *argv[] = {f->save, (char *)"-t", (char *)"nat", NULL};
    int rc = run_cmd(argv, NULL, &o, &e);
    if (rc != 0) {
        ctl_fail(c, "%s -t nat failed (%s): %s", f->save, rc < 0 ? strerror(errno) : "exit status",
                 buf_str(&e));
        buf_free(&o);
        buf_free(&e);
        return -1;
    }
    buf_free(&e);
    *out = take_str(&o);
    return 0;
}

/* `<family>-restore --noflush --wait 5` with input. */
static int restore(struct ctl *c, const struct family *f, const char *input)
{
    struct buf o, e;
    buf_init(&o, 64 * 1024);
    buf_init(&e, 64 * 1024);
    char *argv[] = {f->restore, (char *)"--noflush", (char *)"--wait", (char *)"5", NULL};
    int rc = run_cmd(argv, input, &o, &e);
    if (rc != 0) {
        const char *why = buf_str(&e);
        ctl_fail(c, "%s failed: %s", f->restore,
                 rc < 0 ? strerror(errno) : (*why ? why : "non-zero exit status"));
    }
    buf_free(&o);
    buf_free(&e);
    return rc == 0 ? 0 : -1;
}

/* ip -6 addr add/del ::6/128 dev lo: the inbound passthrough source address
 * (Kuma configures it so replies to ::6 stay local). Best effort. */
static void ipv6_passthrough_addr(const char *lo, int add)
{
    char *ip = find_exe("ip");
    if (!ip)
        return;
    char *argv[] = {ip,
                    (char *)"-6",
                    (char *)"addr",
                    (char *)(add ? "add" : "del"),
                    (char *)"::6/128",
                    (char *)"dev",
                    (char *)lo,
                    NULL};
    run_cmd(argv, NULL, NULL, NULL);
    free(ip);
}

/* --- commands --------------------------------------------------------------------------------- */

static int check_root(struct ctl *c, int dry_run)
{
    if (geteuid() == 0)
        return 0;
    if (dry_run) {
        fprintf(c->err, "# [WARNING] [dry-run]: running this command as a non-root user may lead "
                        "to unpredictable results\n");
        return 0;
    }
    return ctl_fail(c, "you need to have root privileges to run this command");
}

int ctl_cmd_install_tproxy(struct ctl *c)
{
    const struct args *a = c->args;
    struct tp_cfg t = {0};
    struct family f4 = {0}, f6 = {0};
    char *r4 = NULL, *r6 = NULL, *saved = NULL;
    int rc = -1;
    t.dry_run = args_bool(a, "dry-run");
    t.verbose = args_bool(a, "verbose");
    t.redirect_inbound = args_bool(a, "redirect-inbound");
    if (check_root(c, t.dry_run) < 0)
        goto out;
    const char *mode = args_str(a, "ip-family-mode");
    if (strcmp(mode, "dualstack") != 0 && strcmp(mode, "ipv4") != 0) {
        ctl_fail(c,
                 "invalid argument \"%s\" for \"--ip-family-mode\" flag: must be one of: "
                 "dualstack, ipv4",
                 mode);
        goto out;
    }
    if (!(t.out_port = parse_port(args_str(a, "redirect-outbound-port")))) {
        ctl_fail(c,
                 "invalid argument \"%s\" for \"--redirect-outbound-port\" flag: not a valid "
                 "port (1-65535)",
                 args_str(a, "redirect-outbound-port"));
        goto out;
    }
    if (!(t.in_port = parse_port(args_str(a, "redirect-inbound-port")))) {
        ctl_fail(c,
                 "invalid argument \"%s\" for \"--redirect-inbound-port\" flag: not a valid "
                 "port (1-65535)",
                 args_str(a, "redirect-inbound-port"));
        goto out;
    }
    if (parse_port_list(c, "exclude-inbound-ports", args_str(a, "exclude-inbound-ports"), &t.ex_in,
                        &t.n_ex_in) < 0 ||
        parse_port_list(c, "exclude-outbound-ports", args_str(a, "exclude-outbound-ports"),
                        &t.ex_out, &t.n_ex_out) < 0)
        goto out;
    const struct flag_val *ux = args_get(a, "exclude-outbound-ports-for-uids");
    for (size_t i = 0; ux && i < ux->npairs; i++)
        if (parse_uid_excl(c, &t, ux->vals[i]) < 0)
            goto out;
    const char *user =
        args_is_set(a, "kuma-dp-user") ? args_str(a, "kuma-dp-user") : args_str(a, "kuma-dp-uid");
    if (resolve_user(c, user, &t.uid) < 0)
        goto out;
    loopback_name(t.lo, sizeof(t.lo));

    int have4 = family_init(&f4, "iptables") == 0;
    if (!have4 && !t.dry_run) {
        ctl_fail(c,
                 "iptables-restore and iptables-save are needed to install the transparent "
                 "proxy; none found in PATH, /usr/sbin, /sbin, /usr/bin or /bin (Debian: apt-get "
                 "install iptables)");
        goto out;
    }
    t.ipv6 = strcmp(mode, "dualstack") == 0 && has_local_ipv6();
    if (t.ipv6 && family_init(&f6, "ip6tables") != 0 && !t.dry_run) {
        fprintf(c->err, "# [WARNING] ip6tables-restore not found: IPv6 traffic will not be "
                        "redirected\n");
        t.ipv6 = 0;
    }
    r4 = build_rules(&t, 0);
    if (t.ipv6)
        r6 = build_rules(&t, 1);
    if (t.dry_run) {
        fprintf(c->out, "### IPv4 ###\n\n%s", r4);
        if (r6)
            fprintf(c->out, "\n### IPv6 ###\n\n%s", r6);
        rc = 0;
        goto out;
    }
    /* Installed already? iptables-restore would fail on -N anyway; say why. */
    if (save_nat(c, &f4, &saved) < 0)
        goto out;
    if (strstr(saved, ":KUMA_MESH_")) {
        ctl_fail(c, "transparent proxy is already installed (chains KUMA_MESH_* exist in the nat "
                    "table); run 'kumactl uninstall transparent-proxy' first");
        goto out;
    }
    if (t.verbose)
        fprintf(c->out, "# iptables-restore --noflush input:\n%s", r4);
    if (restore(c, &f4, r4) < 0)
        goto out;
    if (r6) {
        if (t.verbose)
            fprintf(c->out, "# ip6tables-restore --noflush input:\n%s", r6);
        char *saved6 = NULL;
        int bad = save_nat(c, &f6, &saved6) < 0 || restore(c, &f6, r6) < 0;
        free(saved6);
        if (bad) {
            /* Roll back IPv4 so the host is left as it was. */
            char *now = NULL;
            struct ctl tmp;
            ctl_init(&tmp, c->out, c->err, c->in);
            if (save_nat(&tmp, &f4, &now) == 0) {
                char *rm = build_removal(now);
                if (rm)
                    restore(&tmp, &f4, rm);
                free(rm);
            }
            free(now);
            ctl_free(&tmp);
            goto out;
        }
        ipv6_passthrough_addr(t.lo, 1);
    }
    fprintf(c->out, "transparent proxy setup completed successfully. You can now run kuma-dp with "
                    "the transparent-proxy feature enabled\n");
    rc = 0;
out:
    free(r4);
    free(r6);
    free(saved);
    family_free(&f4);
    family_free(&f6);
    cfg_free(&t);
    return rc;
}

int ctl_cmd_uninstall_tproxy(struct ctl *c)
{
    int dry_run = args_bool(c->args, "dry-run");
    int verbose = args_bool(c->args, "verbose");
    if (check_root(c, dry_run) < 0)
        return -1;
    struct family fs[2] = {{0}, {0}};
    int rc = -1, removed = 0;
    char lo[IF_NAMESIZE + 1];
    loopback_name(lo, sizeof(lo));
    if (family_init(&fs[0], "iptables") != 0) {
        ctl_fail(c, "iptables-restore and iptables-save are needed to uninstall the transparent "
                    "proxy; none found in PATH, /usr/sbin, /sbin, /usr/bin or /bin");
        goto out;
    }
    int have6 = family_init(&fs[1], "ip6tables") == 0;
    for (int i = 0; i < (have6 ? 2 : 1); i++) {
        char *saved = NULL;
        if (save_nat(c, &fs[i], &saved) < 0) {
            if (i == 1) { /* no IPv6 netfilter: nothing of ours there */
                free(c->errmsg);
                c->errmsg = NULL;
                continue;
            }
            goto out;
        }
        char *rm = build_removal(saved);
        free(saved);
        if (!rm)
            continue;
        if (dry_run || verbose)
            fprintf(c->out, "### %s ###\n\n%s\n", i ? "IPv6" : "IPv4", rm);
        if (!dry_run && restore(c, &fs[i], rm) < 0) {
            free(rm);
            goto out;
        }
        free(rm);
        removed = 1;
        if (i == 1 && !dry_run)
            ipv6_passthrough_addr(lo, 0);
    }
    if (!dry_run)
        fprintf(c->out, removed ? "transparent proxy cleanup completed successfully\n"
                                : "transparent proxy is not installed: nothing to clean up\n");
    rc = 0;
out:
    family_free(&fs[0]);
    family_free(&fs[1]);
    return rc;
}
