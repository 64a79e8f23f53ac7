/*
 * libFuzzer harness for kuma-dp's tls_inspector (dp/sniff.c): any bytes, at
 * any length, with or without EOF, classify without reading out of bounds;
 * with EOF there is always an answer, and input that does not start with a
 * TLS handshake record is plaintext at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > DP_SNIFF_MAX)
        size = DP_SNIFF_MAX;
    /* Exact-size copies so ASan sees any read past the end. */
    for (size_t n = 0; n <= size; n += n < 64 ? 1 : 97) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, data, n);
        enum dp_sniff a = dp_sniff_classify(p, n, 0);
        enum dp_sniff b = dp_sniff_classify(p, n, 1);
        if (b == DP_SNIFF_MORE)
            abort(); /* with EOF there is always an answer */
        if (n > 0 && p[0] != 0x16 && a != DP_SNIFF_RAW)
            abort(); /* not a handshake record: plaintext at once */
        free(p);
    }
    return 0;
}
