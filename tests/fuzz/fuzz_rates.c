/* libFuzzer driver for rate specifications and the one number parser (numparse.c, apikey.c):
 * "N/s", "N/min", "N/h" and bursts, as shortenerctl and the *_RATE settings read them. Whatever
 * parses must be in bounds, and write back to the very text it came from. */
#include "apikey.h"
#include "numparse.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), back[64];
    int limit = 0, window = 0, burst = 0;
    long long v = 0, w = 0;
    int rc;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (apikey_parse_rate(s, &limit, &window) == 0) {
        if (limit < 1 || limit > APIKEY_RATE_MAX || (window != 1 && window != 60 && window != 3600))
            __builtin_trap();
        apikey_format_rate(limit, window, back, sizeof(back));
        if (strcmp(back, s) != 0)
            __builtin_trap(); /* canonical: one spelling per rate */
    }
    if (apikey_parse_burst(s, &burst) == 0 && (burst < 1 || burst > APIKEY_RATE_MAX))
        __builtin_trap();
    rc = numparse_ll(s, -1000000, 1000000, 0, &v);
    if (rc == 0 && (v < -1000000 || v > 1000000))
        __builtin_trap();
    if (rc != 0 && rc != -EINVAL && rc != -ERANGE)
        __builtin_trap();
    /* The counted form agrees with the NUL-terminated one on the same bytes. */
    if (memchr(data, '\0', size) == NULL) {
        int rc2 = numparse_ll_n((const char *)data, size, -1000000, 1000000, 0, &w);
        if (rc2 != rc || (rc == 0 && v != w))
            __builtin_trap();
    }
    rc = numparse_ll(s, LLONG_MIN, LLONG_MAX, NUMPARSE_CANONICAL, &v);
    if (rc == 0) {
        snprintf(back, sizeof(back), "%lld", v);
        if (strcmp(back, s) != 0)
            __builtin_trap();
    }
    free(s);
    return 0;
}
