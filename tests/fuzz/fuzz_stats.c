/* libFuzzer driver for the stats query parameters (statsquery.c): any bytes, cut at the first
 * two newlines into from, to and interval (a missing part is an absent parameter), are either
 * refused with a printable sentence or give a range within API.md's bounds, whose hours,
 * buckets and whole days agree with each other. */
#include "statsquery.c"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *parts[3] = {NULL, NULL, NULL}, err[256] = "";
    struct stats_query q;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    parts[0] = text;
    for (int i = 1; i < 3 && parts[i - 1]; i++) {
        char *nl = strchr(parts[i - 1], '\n');
        if (nl) {
            *nl = '\0';
            parts[i] = nl + 1;
        }
    }
    /* An empty first part stands for an absent from, so that defaults are reached too. */
    int rc = stats_query_parse(parts[0][0] ? parts[0] : NULL, parts[1], parts[2],
                               1894710896 /* 2030-01-15 */, &q, err, sizeof(err));
    if (rc == 0) {
        if (q.to < q.from || q.to - q.from > (int64_t)STATS_MAX_DAYS * STATS_DAY)
            __builtin_trap();
        if (q.first_hour > q.from || q.first_hour % STATS_HOUR != 0 || q.last_hour > q.to ||
            q.first_hour > q.last_hour)
            __builtin_trap();
        if (q.nbuckets < 1 || q.nbuckets > (size_t)STATS_MAX_DAYS * 24 + 1)
            __builtin_trap();
        if (q.first_bucket > q.first_hour ||
            q.first_bucket + (int64_t)q.nbuckets * q.step <= q.last_hour)
            __builtin_trap();
        if (q.day_from > q.day_to ||
            (q.day_from < q.day_to &&
             (q.day_from < q.first_hour || q.day_to > q.last_hour + STATS_HOUR)))
            __builtin_trap();
    } else {
        if (rc != -EINVAL || err[0] == '\0')
            __builtin_trap();
        for (const char *p = err; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                __builtin_trap();
    }
    free(text);
    return 0;
}
