/* Stats parameters (see statsquery.h): pure arithmetic, so that it can be tested and fuzzed
 * alone. */
#include "statsquery.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "timefmt.h"

int64_t stats_floor(int64_t t, int64_t step)
{
    int64_t r = t % step;
    return r < 0 ? t - r - step : t - r;
}

static int parse_time(const char *name, const char *text, int64_t *out, char *err, size_t errlen)
{
    size_t len = strlen(text);
    char fixed[64];

    /* A query string decodes '+' to a space, so ?from=...T00:00:00+01:00 typed into a shell
     * without encoding arrives as "...T00:00:00 01:00": that space can only have been a '+'. */
    if (len >= 6 && len < sizeof(fixed) && text[len - 6] == ' ' && text[len - 3] == ':') {
        memcpy(fixed, text, len + 1);
        fixed[len - 6] = '+';
        text = fixed;
    }
    if (timefmt_parse(text, len, out) < 0) {
        snprintf(err, errlen, "%s is not an RFC 3339 date-time such as 2030-01-31T12:00:00Z", name);
        return -EINVAL;
    }
    return 0;
}

int stats_query_parse(const char *from, const char *to, const char *interval, int64_t now,
                      struct stats_query *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->step = STATS_DAY;
    if (interval) {
        if (strcmp(interval, "hour") == 0)
            out->step = STATS_HOUR;
        else if (strcmp(interval, "day") != 0) {
            snprintf(err, errlen, "interval must be hour or day");
            return -EINVAL;
        }
    }
    out->to = now;
    if (to && parse_time("to", to, &out->to, err, errlen) < 0)
        return -EINVAL;
    out->from = out->to - (int64_t)STATS_DEFAULT_DAYS * STATS_DAY;
    if (from && parse_time("from", from, &out->from, err, errlen) < 0)
        return -EINVAL;
    if (out->to < out->from) {
        snprintf(err, errlen, "to is before from");
        return -EINVAL;
    }
    if (out->to - out->from > (int64_t)STATS_MAX_DAYS * STATS_DAY) {
        snprintf(err, errlen, "the range from from to to is longer than %d days", STATS_MAX_DAYS);
        return -EINVAL;
    }
    out->first_hour = stats_floor(out->from, STATS_HOUR);
    out->last_hour = stats_floor(out->to, STATS_HOUR);
    out->first_bucket = stats_floor(out->first_hour, out->step);
    out->nbuckets =
        (size_t)((stats_floor(out->last_hour, out->step) - out->first_bucket) / out->step + 1);
    /* Whole days: from the first midnight at or after first_hour to the last midnight at or
     * before the end of last_hour. */
    out->day_from = stats_floor(out->first_hour + STATS_DAY - 1, STATS_DAY);
    out->day_to = stats_floor(out->last_hour + STATS_HOUR, STATS_DAY);
    if (out->day_from >= out->day_to)
        out->day_from = out->day_to = out->last_hour + STATS_HOUR;
    out->block_from = stats_floor(out->day_from + STATS_BLOCK - 1, STATS_BLOCK);
    out->block_to = stats_floor(out->day_to, STATS_BLOCK);
    if (out->block_from >= out->block_to)
        out->block_from = out->block_to = out->day_to;
    return 0;
}
