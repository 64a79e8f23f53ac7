/*
 * tproxy — original destinations and listener matching for transparent
 * proxying (see tproxy.h).
 */
#define _GNU_SOURCE
#include "dp/tproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int dp_tproxy_original_dst(int fd, struct sockaddr_storage *sa, socklen_t *len)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0)
        return -errno;
    memset(sa, 0, sizeof(*sa));
    if (local.ss_family == AF_INET6) {
        /* A v4-mapped peer on a dual-stack socket would need the IPv4 option;
         * the engine's IPv6 listeners are IPV6_V6ONLY, so this is IPv6. */
        *len = sizeof(struct sockaddr_in6);
        if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, sa, len) != 0)
            return -errno;
    } else {
        *len = sizeof(struct sockaddr_in);
        if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, sa, len) != 0)
            return -errno;
    }
    return 0;
}

int dp_tproxy_match(const struct dp_listener *m, const struct sockaddr_storage *sa)
{
    if (!m->address.address)
        return 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        struct in_addr ip;
        if (inet_pton(AF_INET, m->address.address, &ip) != 1 ||
            ntohs(a->sin_port) != m->address.port_value)
            return 0;
        if (ip.s_addr == a->sin_addr.s_addr)
            return 2;
        return ip.s_addr == htonl(INADDR_ANY) ? 1 : 0;
    }
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        struct in6_addr ip;
        if (inet_pton(AF_INET6, m->address.address, &ip) != 1 ||
            ntohs(a->sin6_port) != m->address.port_value)
            return 0;
        if (memcmp(&ip, &a->sin6_addr, sizeof(ip)) == 0)
            return 2;
        return memcmp(&ip, &in6addr_any, sizeof(ip)) == 0 ? 1 : 0;
    }
    return 0;
}

int dp_tproxy_is_local(int fd, const struct sockaddr_storage *sa)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0 || local.ss_family != sa->ss_family)
        return 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&local;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&local;
    return a->sin6_port == b->sin6_port &&
           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

int dp_tproxy_family_usable(const char *address)
{
    if (!address || !strchr(address, ':'))
        return 1;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno != EAFNOSUPPORT;
    close(fd);
    return 1;
}

void dp_tproxy_format(const struct sockaddr_storage *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
    }
}

int dp_tproxy_bind_source(int fd, int family, const char *ip)
{
    struct sockaddr_storage sa;
    socklen_t len;
    memset(&sa, 0, sizeof(sa));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
        if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1)
            return -EINVAL;
        a->sin6_family = AF_INET6;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&sa;
        if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
            return -EINVAL;
        a->sin_family = AF_INET;
        len = sizeof(*a);
    }
    int one = 1;
    setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, len) != 0)
        return -errno;
    return 0;
}
