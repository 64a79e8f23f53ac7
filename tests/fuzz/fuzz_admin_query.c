/*
 * libFuzzer harness for the admin endpoint's request-target decoding
 * (dp/admin_query.c): any bytes as a query string, looked up under a name
 * taken from the input and under the names the endpoint asks for. Decoding
 * never grows a string, never reads past its end (exact-size copies for
 * ASan), and a value found is never longer than the query it came from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp/admin_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* "key\nquery": the first line (at most 64 bytes) names the argument. */
    const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
    size_t kl = nl ? (size_t)(nl - data) : 0;
    char *key = malloc(kl + 1);
    memcpy(key, data, kl);
    key[kl] = '\0';
    size_t ql = size - (nl ? kl + 1 : 0);
    char *query = malloc(ql + 1);
    memcpy(query, data + (size - ql), ql);
    query[ql] = '\0';

    const char *keys[] = {key, "format", "usedonly", "filter", "include_eds"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *v = dp_admin_query_arg(query, keys[i]);
        if (v && strlen(v) > strlen(query))
            abort();
        free(v);
    }
    for (int plus = 0; plus < 2; plus++) {
        size_t before = strlen(query);
        char *copy = malloc(before + 1);
        memcpy(copy, query, before + 1);
        dp_admin_unescape(copy, plus);
        if (strlen(copy) > before)
            abort();
        free(copy);
    }
    free(query);
    free(key);
    return 0;
}
