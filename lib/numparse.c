/* Bounded decimal integers, parsed by hand rather than with strtoll(), which skips blanks,
 * takes a '+' and depends on errno for overflow: each caller used to patch that up its own way. */
#include "numparse.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

int numparse_ll_n(const char *text, size_t len, long long lo, long long hi, unsigned flags,
                  long long *out)
{
    unsigned long long mag = 0, limit;
    bool negative = false, overflow = false;
    size_t i = 0;
    long long v;

    if (!text)
        return -EINVAL;
    if (len > 0 && text[0] == '-' && lo < 0) {
        negative = true;
        i = 1;
    }
    if (i == len)
        return -EINVAL;
    if ((flags & NUMPARSE_CANONICAL) && text[i] == '0' && (negative || len - i > 1))
        return -EINVAL;
    /* The largest magnitude a long long of this sign holds. */
    limit = negative ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    /* Every byte is looked at even past an overflow: "99999999999999999999x" is malformed,
     * not merely too large. */
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -EINVAL;
        unsigned digit = (unsigned)(text[i] - '0');
        if (overflow || mag > (limit - digit) / 10)
            overflow = true;
        else
            mag = mag * 10 + digit;
    }
    if (overflow)
        return -ERANGE;
    if (!negative)
        v = (long long)mag;
    else if (mag == (unsigned long long)LLONG_MAX + 1)
        v = LLONG_MIN;
    else
        v = -(long long)mag;
    if (v < lo || v > hi)
        return -ERANGE;
    *out = v;
    return 0;
}

int numparse_ll(const char *text, long long lo, long long hi, unsigned flags, long long *out)
{
    if (!text)
        return -EINVAL;
    return numparse_ll_n(text, strlen(text), lo, hi, flags, out);
}
