/*
 * admin_query — see admin_query.h.
 */
#include "dp/admin_query.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void dp_admin_unescape(char *s, int plus)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        int hi, lo;
        /* r[1] is read only when it is not the terminator, r[2] likewise. */
        if (*r == '%' && (hi = hexval((unsigned char)r[1])) >= 0 &&
            (lo = hexval((unsigned char)r[2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = plus && *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
}

char *dp_admin_query_arg(const char *query, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t name_len = eq ? (size_t)(eq - p) : n;
        char *name = xstrndup(p, name_len);
        dp_admin_unescape(name, 1);
        int match = strlen(name) == kl && memcmp(name, key, kl) == 0;
        free(name);
        if (match) {
            char *v = eq ? xstrndup(eq + 1, n - name_len - 1) : xstrdup("");
            dp_admin_unescape(v, 1);
            return v;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}
