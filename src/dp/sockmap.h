/*
 * sockmap — kernel forwarding of established plaintext TCP pairs (BPF).
 *
 * A proxied plaintext connection is two sockets, downstream and upstream,
 * and in user space every byte costs a recv and a send. Once a pair is
 * handed to this module, a small BPF stream-verdict program attached to a
 * sockmap moves each received segment straight to the paired socket's send
 * path inside the kernel, and the proxy is not woken for the bytes at all.
 *
 * Contract:
 *  - Only for a pair whose user-space buffers are empty and that has seen
 *    no EOF: bytes already read were already written, bytes not yet read
 *    are taken by the kernel in order, so the stream order holds.
 *  - The kernel counts the bytes it took from each socket (per-socket slot
 *    keyed by the socket cookie); the caller reads them for its stats and
 *    its idle timeout.
 *  - Stopping (dp_sockmap_pair_stop) makes new bytes stay on their socket
 *    for a recv; bytes the kernel already took may still be on their way
 *    (a kernel worker writes them). The caller must wait until
 *    dp_sockmap_written() of each socket has caught up with the bytes taken
 *    from its peer before it reads, writes or shuts either socket down
 *    itself; closing both sockets is always allowed.
 *  - Not thread-bound: the maps are shared by the engine's workers.
 */
#ifndef DP_SOCKMAP_H
#define DP_SOCKMAP_H

#include <stdint.h>

#include "core/util.h"

struct dp_sockmap;

/* Creates the maps and loads the program. Fails (message in e) when the
 * kernel has no sockmap, BPF is not permitted, or the program is refused:
 * the caller then stays in user space. */
int dp_sockmap_open(struct dp_sockmap **out, struct err *e);
void dp_sockmap_free(struct dp_sockmap *m);

/* Starts kernel forwarding between fd[0] and fd[1] and returns their
 * cookies. 0: forwarding (check *partial on failure only). -errno: not
 * forwarding; when *partial is set, one direction may have started and the
 * caller must treat the pair as stopped (wait for the drain) rather than
 * untouched. */
int dp_sockmap_pair_add(struct dp_sockmap *m, const int fd[2], uint64_t credit, uint64_t cookie[2],
                        int *partial);

/* The most bytes the kernel may take from the socket with this cookie (its
 * total since pair_add): the caller raises it as the peer accepts bytes.
 * A segment that would go past it stays on its socket, and so does every
 * later one: the pair is "paused" for good (see dp_sockmap_taken) and the
 * caller takes it back to user space. This bounds the kernel's queue
 * towards a slow peer, which the kernel itself does not. */
int dp_sockmap_set_credit(struct dp_sockmap *m, uint64_t cookie, uint64_t credit);

/* Stops moving bytes between the pair: from now on the program leaves every
 * new segment on its own socket, where a recv reads it (in order, after
 * whatever the kernel moved before). Returns once no redirect is in flight,
 * so dp_sockmap_taken() is final for both sockets. The sockets stay
 * attached to the program until they are closed (see sockmap.c). */
void dp_sockmap_pair_stop(struct dp_sockmap *m, const int fd[2], const uint64_t cookie[2]);

/* Waits until every segment the socket has received so far has been through
 * the program (and its count is in dp_sockmap_taken). */
void dp_sockmap_sync(int fd);

/* Forgets the pair's counters; call after the drain or before closing. */
void dp_sockmap_pair_forget(struct dp_sockmap *m, const uint64_t cookie[2]);

/* Bytes the kernel took from the socket with this cookie so far; *paused
 * (if not NULL) is set when its credit ran out. */
uint64_t dp_sockmap_taken(struct dp_sockmap *m, uint64_t cookie, int *paused);

/* Bytes a TCP socket has accepted for sending since it was opened
 * (acknowledged + still queued), read so that a race with an incoming ACK
 * can only under-count. -errno on failure. */
int dp_sockmap_written(int fd, uint64_t *out);

#endif
