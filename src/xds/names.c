/* names — see names.h. */
#include "xds/names.h"

#include <string.h>

#include "core/util.h"

static char *join(const char *prefix, const char *ip, uint32_t port)
{
    if (strchr(ip, ':'))
        return xasprintf("%s:[%s]:%u", prefix, ip, port);
    return xasprintf("%s:%s:%u", prefix, ip, port);
}

char *xds_name_inbound(const char *ip, uint32_t port)
{
    return join("inbound", ip, port);
}

char *xds_name_outbound(const char *ip, uint32_t port)
{
    return join("outbound", ip, port);
}

char *xds_name_local_cluster(uint32_t port)
{
    return xasprintf("localhost:%u", port);
}

char *xds_stat_name(const char *name)
{
    char *s = xstrdup(name);
    for (char *p = s; *p; p++)
        if (*p == ':')
            *p = '_';
    return s;
}

int xds_host_order(const char *x, const char *y)
{
    int wx = strchr(x, '*') != NULL, wy = strchr(y, '*') != NULL;
    if (wx != wy)
        return wx - wy;
    size_t lx = strlen(x), ly = strlen(y);
    if (wx && lx != ly)
        return lx > ly ? -1 : 1;
    return strcmp(x, y);
}
