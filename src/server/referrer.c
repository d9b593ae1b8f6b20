/* Referer to referring host (see referrer.h). Only the host is kept: paths and queries of
 * other sites may carry their users' data. */
#include "referrer.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static bool v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

static void direct(char *out)
{
    memcpy(out, "direct", sizeof("direct"));
}

void referrer_host(const char *ref, size_t len, char out[REFERRER_HOST_MAX + 1])
{
    size_t i = 0, start, end, at, n;

    if (!ref) {
        direct(out);
        return;
    }
    while (i < len && (ref[i] == ' ' || ref[i] == '\t'))
        i++;
    if (len - i >= 7 && strncasecmp(ref + i, "http://", 7) == 0)
        i += 7;
    else if (len - i >= 8 && strncasecmp(ref + i, "https://", 8) == 0)
        i += 8;
    else {
        direct(out);
        return;
    }
    /* The authority ends at the path, query or fragment. */
    end = i;
    while (end < len && ref[end] != '/' && ref[end] != '?' && ref[end] != '#' && ref[end] != '\\')
        end++;
    /* user:password@ goes; the host is after the last '@'. */
    start = i;
    for (at = i; at < end; at++)
        if (ref[at] == '@')
            start = at + 1;
    n = 0;
    if (start < end && ref[start] == '[') {
        size_t close = start + 1;
        while (close < end && ref[close] != ']')
            close++;
        if (close >= end || close - start - 1 == 0 || close - start - 1 > 45) {
            direct(out);
            return;
        }
        out[n++] = '[';
        for (size_t k = start + 1; k < close; k++) {
            char c = (char)((ref[k] >= 'A' && ref[k] <= 'Z') ? ref[k] - 'A' + 'a' : ref[k]);
            if (!v6_char(c)) {
                direct(out);
                return;
            }
            out[n++] = c;
        }
        out[n++] = ']';
        out[n] = '\0';
        return;
    }
    for (size_t k = start; k < end && ref[k] != ':'; k++) {
        char c = (char)((ref[k] >= 'A' && ref[k] <= 'Z') ? ref[k] - 'A' + 'a' : ref[k]);
        if (!host_char(c) || n >= REFERRER_HOST_MAX) {
            direct(out);
            return;
        }
        out[n++] = c;
    }
    while (n > 0 && out[n - 1] == '.')
        n--; /* "example.com." is example.com */
    if (n == 0 || out[0] == '.' || out[0] == '-') {
        direct(out);
        return;
    }
    out[n] = '\0';
}
