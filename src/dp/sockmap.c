/*
 * sockmap — kernel forwarding of established plaintext TCP pairs (contract
 * in sockmap.h).
 *
 * Written on the raw bpf() system call with a hand-assembled program of 41
 * instructions rather than libbpf: Debian 12 ships only the libbpf runtime
 * (libbpf1), and libbpf-dev would also need a BPF compiler toolchain in the
 * build for a program this small. The instructions are listed below with
 * what each does.
 *
 * Four maps, all keyed by the 64-bit socket cookie (SO_COOKIE):
 *  - targets (SOCKHASH, no program): targets[cookie(x)] = x's peer. Both
 *    sockets of a pair are put here first, so a redirect never finds its
 *    target missing while the pair is forwarded. Removing the entries
 *    stops the forwarding (dp_sockmap_pair_stop).
 *  - verdict (SOCKHASH, the program attached as SK_SKB_STREAM_VERDICT): a
 *    socket in this map has its received segments handed to the program.
 *    Sockets are never taken out of it while open: that clears the
 *    socket's program while a segment may be on its way to it, and the
 *    kernel then drops the segment. Closing a socket removes it.
 *  - taken (HASH of struct taken_slot): bytes the program redirected from
 *    each socket, and whether its credit ran out.
 *  - credit (HASH of u64): the most bytes the program may take from each
 *    socket, raised by the engine as the peer accepts them.
 *
 * The program: a segment without bytes (a bare FIN; TCP has recorded the
 * FIN already) is dropped: redirected, or left on the socket while the
 * kernel worker holds bytes for it, it would reach that worker, which takes
 * a zero-byte send for a broken pipe and fails the socket with EPIPE (every
 * later byte for it is then dropped). Otherwise, with cookie =
 * bpf_get_socket_cookie(skb): a socket already paused, or one whose taken
 * bytes would go past its credit (it is then marked paused for good), keeps
 * the segment (SK_PASS without a redirect: it waits on the socket for a
 * user-space recv, charged to the socket's receive buffer, which closes the
 * sender's window); else redirect to targets[cookie] (egress of the peer)
 * and, if a target was set, add skb->len to taken[cookie]. Never a drop of
 * bytes.
 *
 * Back-pressure: the kernel has none on this path (a redirected segment is
 * queued for the peer's kernel worker whatever the peer's state); the
 * credit is what bounds that queue.
 */
#define _GNU_SOURCE
#include "dp/sockmap.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (glibc's is older) */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

#define MAP_ENTRIES 65536

struct dp_sockmap {
    int targets, verdict, taken, credit, prog;
};

/* A socket's slot in `taken`: written by the program only (user space
 * creates it and reads it), so an update from user space never races with
 * the program's atomic add. */
struct taken_slot {
    uint64_t bytes;  /* redirected from this socket */
    uint64_t paused; /* set by the program when the credit ran out */
};

static long sys_bpf(int cmd, union bpf_attr *a)
{
    return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static int map_create(enum bpf_map_type type, uint32_t vsize, const char *name)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = type;
    a.key_size = sizeof(uint64_t);
    a.value_size = vsize;
    a.max_entries = MAP_ENTRIES;
    strncpy(a.map_name, name, sizeof(a.map_name) - 1);
    return (int)sys_bpf(BPF_MAP_CREATE, &a);
}

static int map_update(int map, const void *key, const void *val, uint64_t flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map;
    a.key = (uint64_t)(uintptr_t)key;
    a.value = (uint64_t)(uintptr_t)val;
    a.flags = flags;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == 0 ? 0 : -errno;
}

static int map_lookup(int map, const void *key, void *val)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map;
    a.key = (uint64_t)(uintptr_t)key;
    a.value = (uint64_t)(uintptr_t)val;
    return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) == 0 ? 0 : -errno;
}

static void map_delete(int map, const void *key)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map;
    a.key = (uint64_t)(uintptr_t)key;
    sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

/* Instruction builders (the encoding of linux/bpf.h's struct bpf_insn). */
static struct bpf_insn ins(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    struct bpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
    return i;
}
#define MOV64_REG(d, s)        ins(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, v)        ins(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, v)
#define ADD64_IMM(d, v)        ins(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, v)
#define CALL(f)                ins(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT()                 ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define STX_DW(d, s, o)        ins(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define LDX_W(d, s, o)         ins(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define JEQ_IMM(d, v, o)       ins(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, v)
#define JNE_IMM(d, v, o)       ins(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, v)
#define JGT_REG(d, s, o)       ins(BPF_JMP | BPF_JGT | BPF_X, d, s, o, 0)
#define LDX_DW(d, s, o)        ins(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define ADD64_REG(d, s)        ins(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define ATOMIC_ADD_DW(d, s, o) ins(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
/* A 64-bit immediate load of a map fd: two instruction slots. */
#define LD_MAP_FD(d, fd)                                                                           \
    ins(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), ins(0, 0, 0, 0, 0)

static int load_prog(struct dp_sockmap *m, char *log, size_t logsz)
{
    struct bpf_insn p[] = {
        MOV64_REG(6, 1),                              /* 0: r6 = skb */
        LDX_W(7, 6, offsetof(struct __sk_buff, len)), /* 1: r7 = skb->len */
        JEQ_IMM(7, 0, 36),                            /* 2: a bare FIN: to 39 */
        CALL(BPF_FUNC_get_socket_cookie),             /* 3: r0 = cookie */
        STX_DW(10, 0, -8),                            /* 4: key on the stack */
        LD_MAP_FD(1, m->taken),                       /* 5-6: r1 = taken */
        MOV64_REG(2, 10),                             /* 7: r2 = &key */
        ADD64_IMM(2, -8),                             /* 8 */
        CALL(BPF_FUNC_map_lookup_elem),               /* 9: r0 = &taken[cookie] */
        JEQ_IMM(0, 0, 26),                            /* 10: no slot: to 37 */
        MOV64_REG(8, 0),                              /* 11: r8 = &taken[cookie] */
        LDX_DW(1, 8, 8),                              /* 12: r1 = .paused */
        JNE_IMM(1, 0, 23),                            /* 13: paused: to 37 */
        LD_MAP_FD(1, m->credit),                      /* 14-15: r1 = credit */
        MOV64_REG(2, 10),                             /* 16: r2 = &key */
        ADD64_IMM(2, -8),                             /* 17 */
        CALL(BPF_FUNC_map_lookup_elem),               /* 18: r0 = &credit[cookie] */
        JEQ_IMM(0, 0, 17),                            /* 19: no slot: to 37 */
        LDX_DW(1, 8, 0),                              /* 20: r1 = .bytes */
        ADD64_REG(1, 7),                              /* 21: r1 = bytes + len */
        LDX_DW(2, 0, 0),                              /* 22: r2 = credit */
        JGT_REG(1, 2, 11),                            /* 23: over the credit: to 35 */
        MOV64_REG(1, 6),                              /* 24: r1 = skb */
        LD_MAP_FD(2, m->targets),                     /* 25-26: r2 = targets */
        MOV64_REG(3, 10),                             /* 27: r3 = &key */
        ADD64_IMM(3, -8),                             /* 28 */
        MOV64_IMM(4, 0),                              /* 29: flags 0: the peer's egress */
        CALL(BPF_FUNC_sk_redirect_hash),              /* 30: SK_PASS if a target was set */
        JNE_IMM(0, SK_PASS, 5),                       /* 31: no target: to 37 */
        ATOMIC_ADD_DW(8, 7, 0),                       /* 32: .bytes += len */
        MOV64_IMM(0, SK_PASS),                        /* 33: pass + redirect = redirect */
        EXIT(),                                       /* 34 */
        MOV64_IMM(1, 1),                              /* 35: over the credit: */
        STX_DW(8, 1, 8),                              /* 36: .paused = 1, for good */
        MOV64_IMM(0, SK_PASS),                        /* 37: keep it on this socket */
        EXIT(),                                       /* 38 */
        MOV64_IMM(0, SK_DROP),                        /* 39: nothing to lose */
        EXIT(),                                       /* 40 */
    };
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SK_SKB;
    a.insns = (uint64_t)(uintptr_t)p;
    a.insn_cnt = sizeof(p) / sizeof(p[0]);
    a.license = (uint64_t)(uintptr_t) "Dual MIT/GPL";
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = (uint32_t)logsz;
    a.log_level = 1;
    strncpy(a.prog_name, "dp_pair", sizeof(a.prog_name) - 1);
    int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
    if (fd < 0) {
        /* Retry without a log: some kernels reject a log buffer they think
         * too small even when the program is fine. */
        int saved = errno;
        a.log_buf = 0;
        a.log_size = 0;
        a.log_level = 0;
        fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
        if (fd < 0)
            errno = saved;
    }
    return fd;
}

int dp_sockmap_open(struct dp_sockmap **out, struct err *e)
{
    struct dp_sockmap *m = calloc(1, sizeof(*m));
    if (!m)
        return err_set(e, "out of memory");
    m->targets = m->verdict = m->taken = m->credit = m->prog = -1;
    char log[4096] = "";
    int rc = -1;
    m->targets = map_create(BPF_MAP_TYPE_SOCKHASH, sizeof(uint32_t), "dp_targets");
    if (m->targets < 0) {
        err_set(e, "sockhash: %s", strerror(errno));
        goto out;
    }
    m->verdict = map_create(BPF_MAP_TYPE_SOCKHASH, sizeof(uint32_t), "dp_verdict");
    if (m->verdict < 0) {
        err_set(e, "sockhash: %s", strerror(errno));
        goto out;
    }
    m->taken = map_create(BPF_MAP_TYPE_HASH, sizeof(struct taken_slot), "dp_taken");
    m->credit = map_create(BPF_MAP_TYPE_HASH, sizeof(uint64_t), "dp_credit");
    if (m->taken < 0 || m->credit < 0) {
        err_set(e, "hash map: %s", strerror(errno));
        goto out;
    }
    m->prog = load_prog(m, log, sizeof(log));
    if (m->prog < 0) {
        size_t n = strlen(log);
        while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' '))
            log[--n] = 0;
        const char *last = strrchr(log, '\n');
        err_set(e, "verdict program: %s%s%s", strerror(errno), *log ? ": " : "",
                last ? last + 1 : log);
        goto out;
    }
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.target_fd = (uint32_t)m->verdict;
    a.attach_bpf_fd = (uint32_t)m->prog;
    a.attach_type = BPF_SK_SKB_STREAM_VERDICT;
    if (sys_bpf(BPF_PROG_ATTACH, &a) != 0) {
        err_set(e, "attach verdict program: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        dp_sockmap_free(m);
    else
        *out = m;
    return rc;
}

void dp_sockmap_free(struct dp_sockmap *m)
{
    if (!m)
        return;
    int *fds[] = {&m->prog, &m->verdict, &m->targets, &m->taken, &m->credit};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    free(m);
}

/* Undoes a pair_add that forwarded nothing yet. */
static void pair_remove(struct dp_sockmap *m, const uint64_t cookie[2])
{
    for (int i = 0; i < 2; i++) {
        map_delete(m->targets, &cookie[i]);
        map_delete(m->taken, &cookie[i]);
        map_delete(m->credit, &cookie[i]);
    }
}

int dp_sockmap_pair_add(struct dp_sockmap *m, const int fd[2], uint64_t credit, uint64_t cookie[2],
                        int *partial)
{
    *partial = 0;
    for (int i = 0; i < 2; i++) {
        socklen_t len = sizeof(cookie[i]);
        if (getsockopt(fd[i], SOL_SOCKET, SO_COOKIE, &cookie[i], &len) != 0)
            return -errno;
    }
    struct taken_slot zero = {0, 0};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = map_update(m->taken, &cookie[i], &zero, BPF_ANY);
        if (rc == 0)
            rc = map_update(m->credit, &cookie[i], &credit, BPF_ANY);
    }
    for (int i = 0; i < 2 && rc == 0; i++) {
        uint32_t peer = (uint32_t)fd[1 - i];
        rc = map_update(m->targets, &cookie[i], &peer, BPF_ANY);
    }
    if (rc != 0) {
        pair_remove(m, cookie);
        return rc;
    }
    uint32_t v0 = (uint32_t)fd[0], v1 = (uint32_t)fd[1];
    rc = map_update(m->verdict, &cookie[1], &v1, BPF_ANY);
    if (rc != 0) {
        pair_remove(m, cookie);
        return rc;
    }
    rc = map_update(m->verdict, &cookie[0], &v0, BPF_ANY);
    if (rc != 0) {
        /* The upstream may already have handed bytes to the kernel: the
         * caller stops the pair (see dp_sockmap_pair_stop). */
        *partial = 1;
        return rc;
    }
    return 0;
}

void dp_sockmap_pair_stop(struct dp_sockmap *m, const int fd[2], const uint64_t cookie[2])
{
    /* Without a target the program keeps the bytes on their socket. The
     * sockets stay in the verdict map: taking one out there clears its
     * program while a segment may be between the socket's data_ready and the
     * program, and such a segment is dropped. */
    map_delete(m->targets, &cookie[0]);
    map_delete(m->targets, &cookie[1]);
    dp_sockmap_sync(fd[0]);
    dp_sockmap_sync(fd[1]);
}

void dp_sockmap_sync(int fd)
{
    /* A segment being handed to the program holds the socket's lock, and a
     * recv on a socket with the program attached takes it (tcp_bpf's
     * recvmsg, lock_sock) after passing anything still queued through the
     * program: once this returns, every segment the socket had received has
     * been through the program and counted. MSG_PEEK: the bytes the program
     * may have left on the socket stay there. */
    char c;
    recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
}

void dp_sockmap_pair_forget(struct dp_sockmap *m, const uint64_t cookie[2])
{
    for (int i = 0; i < 2; i++) {
        map_delete(m->taken, &cookie[i]);
        map_delete(m->credit, &cookie[i]);
    }
}

int dp_sockmap_set_credit(struct dp_sockmap *m, uint64_t cookie, uint64_t credit)
{
    return map_update(m->credit, &cookie, &credit, BPF_EXIST);
}

uint64_t dp_sockmap_taken(struct dp_sockmap *m, uint64_t cookie, int *paused)
{
    struct taken_slot v = {0, 0};
    if (map_lookup(m->taken, &cookie, &v) != 0)
        return 0;
    if (paused)
        *paused = v.paused != 0;
    return v.bytes;
}

int dp_sockmap_written(int fd, uint64_t *out)
{
    /* ACKed first, queued second: an ACK arriving in between moves bytes
     * from "queued" to "acked" after we read "acked", so the sum can only
     * come out low, never high. */
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return -errno;
    if (len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
        return -ENOTSUP;
    if (ti.tcpi_state == 7 /* TCP_CLOSE */)
        return -EPIPE; /* reset: it will never take the rest */
    int outq = 0;
    if (ioctl(fd, SIOCOUTQ, &outq) != 0)
        return -errno;
    *out = ti.tcpi_bytes_acked + (uint64_t)(outq > 0 ? outq : 0);
    return 0;
}
