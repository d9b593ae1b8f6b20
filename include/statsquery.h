/* The parameters of GET /api/v1/urls/{key}/stats (API.md, Stats), checked, and the hours and
 * buckets they come to. Visits are counted per UTC hour: a range counts every hour from the
 * one holding `from` to the one holding `to`, both included, and the series has one bucket per
 * UTC hour or day those hours touch, oldest first. */
#ifndef SHORTENER_STATSQUERY_H
#define SHORTENER_STATSQUERY_H

#include <stddef.h>
#include <stdint.h>

#define STATS_DEFAULT_DAYS 30
#define STATS_MAX_DAYS     400
#define STATS_HOUR         3600
#define STATS_DAY          86400
/* Sums are also kept per block of 16 days (aligned on 1970-01-01), so that the top lists of
 * a year read some 25 rows per value instead of 365. */
#define STATS_BLOCK (16 * STATS_DAY)

struct stats_query {
    int64_t from, to;              /* as given, or the defaults; seconds since the epoch */
    int64_t step;                  /* STATS_HOUR or STATS_DAY */
    int64_t first_hour, last_hour; /* the hours counted, both included */
    int64_t first_bucket;
    size_t nbuckets;
    /* The whole UTC days among those hours, [day_from, day_to): read from the daily rows;
     * the hours before and after them from the hourly rows. day_from == day_to: none. */
    int64_t day_from, day_to;
    /* The whole blocks among those days, [block_from, block_to), for the top lists (which
     * then read daily rows only for the days outside them). block_from == block_to: none. */
    int64_t block_from, block_to;
};

/* from, to and interval are the query parameters as given (NULL: absent); now is the time
 * the defaults count from. Returns 0, or -EINVAL with a sentence for the client in err. */
int stats_query_parse(const char *from, const char *to, const char *interval, int64_t now,
                      struct stats_query *out, char *err, size_t errlen);

/* t rounded down to a multiple of step (also before 1970). */
int64_t stats_floor(int64_t t, int64_t step);

#endif
