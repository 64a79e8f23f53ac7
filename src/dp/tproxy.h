/*
 * tproxy — the kernel side of transparent proxying in kuma-dp.
 *
 * With `kumactl install transparent-proxy`, iptables REDIRECTs a workload's
 * TCP connections to the proxy's redirect ports (outbound 15001, inbound
 * 15006). Kuma's listeners there have use_original_dst: each accepted
 * connection is handed to the listener whose address matches the
 * connection's original destination (read with SO_ORIGINAL_DST, or
 * IP6T_SO_ORIGINAL_DST for IPv6), as Envoy does; listeners generated with
 * bind_to_port false have no socket of their own and are reached only this
 * way. A connection no listener claims stays on the redirect listener, whose
 * tcp_proxy sends it to an ORIGINAL_DST cluster (the passthrough), which
 * connects to the original destination itself.
 *
 * The engine (engine.c) calls these helpers; they hold no state.
 */
#ifndef DP_TPROXY_H
#define DP_TPROXY_H

#include <sys/socket.h>

#include "dp/model.h"

/* The original destination of an accepted connection, from conntrack. Fills
 * sa/len and returns 0; -errno when the kernel has none (ENOENT: the
 * connection was not redirected and conntrack has no entry). */
int dp_tproxy_original_dst(int fd, struct sockaddr_storage *sa, socklen_t *len);

/* How well listener m matches the destination sa: 2 = same IP and port,
 * 1 = wildcard address (0.0.0.0 or ::, same family) and same port, 0 = no
 * match. Envoy prefers an exact match over a wildcard one. */
int dp_tproxy_match(const struct dp_listener *m, const struct sockaddr_storage *sa);

/* 1 if sa and the local address of fd are the same address and port: the
 * connection reached the proxy without redirection (there is no other
 * original destination to go to). */
int dp_tproxy_is_local(int fd, const struct sockaddr_storage *sa);

/* 0 when the host has no IPv6 at all (IPv6 sockets cannot be created) and
 * address is an IPv6 literal: kuma-cp sends the IPv6 redirect listeners
 * unless the Dataplane says IPv4, and such a host must still take the rest
 * of the configuration. 1 otherwise. */
int dp_tproxy_family_usable(const char *address);

/* "ip:port" ("[ip]:port" for IPv6) of sa into buf. */
void dp_tproxy_format(const struct sockaddr_storage *sa, char *buf, size_t size);

/* Binds fd to the source address ip (port 0) before connect(), for
 * upstream_bind_config. IP_FREEBIND lets it bind Kuma's ::6 even before the
 * address is configured. Returns 0 or -errno. */
int dp_tproxy_bind_source(int fd, int family, const char *ip);

#endif
