/*
 * names — Kuma's names for the Envoy resources kuma-cp generates
 * (pkg/xds/envoy/names in Kuma, default non-unified naming). Every generator
 * takes names from here so that they match Kuma's exactly.
 */
#ifndef XDS_NAMES_H
#define XDS_NAMES_H

#include <stdint.h>

#define XDS_NAME_OUTBOUND_PASSTHROUGH_V4 "outbound:passthrough:ipv4"
#define XDS_NAME_OUTBOUND_PASSTHROUGH_V6 "outbound:passthrough:ipv6"
#define XDS_NAME_INBOUND_PASSTHROUGH_V4  "inbound:passthrough:ipv4"
#define XDS_NAME_INBOUND_PASSTHROUGH_V6  "inbound:passthrough:ipv6"

/* "inbound:<ip>:<port>", IPv6 addresses in brackets. Caller frees. */
char *xds_name_inbound(const char *ip, uint32_t port);
/* "outbound:<ip>:<port>". Caller frees. */
char *xds_name_outbound(const char *ip, uint32_t port);
/* "localhost:<port>": the cluster of an inbound's local application. */
char *xds_name_local_cluster(uint32_t port);
/* Kuma's stat name: the name with every ':' replaced by '_'. Caller frees. */
char *xds_stat_name(const char *name);
/* The order of a gateway's virtual-host names: exact names first (by
 * strcmp), then wildcards, longest first. A qsort-style comparison. */
int xds_host_order(const char *x, const char *y);

#endif
