/* Counters for /metrics, updated with relaxed atomics from every worker thread. */
#ifndef SHORTENER_METRICS_H
#define SHORTENER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

enum metric_status {
    MS_200,
    MS_201,
    MS_204,
    MS_301,
    MS_400,
    MS_401,
    MS_404,
    MS_405,
    MS_409,
    MS_413,
    MS_415,
    MS_429,
    MS_500,
    MS_503,
    MS_OTHER,
    MS_COUNT
};

enum metric_redirect {
    MR_HOT_HIT,
    MR_CACHE_HIT,
    MR_CACHE_NEGATIVE,
    MR_DB_HIT,
    MR_DB_MISS,
    MR_INVALID,
    MR_COUNT
};

struct metrics {
    atomic_ullong responses[MS_COUNT];
    atomic_ullong redirects[MR_COUNT];
    atomic_ullong links_created;
    atomic_ullong links_deleted;
    atomic_ullong cache_errors;
    atomic_ullong db_errors;
    atomic_ullong kgs_errors;
    atomic_ullong visits_dropped;
    atomic_ullong ratelimited;         /* requests refused with 429 */
    atomic_ullong ratelimit_fallbacks; /* times rate limiting fell back to in-process */
    atomic_ullong ratelimit_fallback;  /* gauge: 1 while it is in-process */
};

void metrics_count_status(struct metrics *m, unsigned status);

static inline void metrics_inc(atomic_ullong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void metrics_add(atomic_ullong *c, unsigned long long n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Renders the Prometheus text format into buf. Returns the length written (truncated output
 * is never returned: -ENOSPC instead). gauges are passed in by the caller. */
struct metrics_gauges {
    size_t keys_buffered;
    size_t visits_pending;
    size_t hot_entries;
    int hot_enabled;
    unsigned writer_queued;
    unsigned long long writer_batches;
    unsigned long long writer_links;
};

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char *buf, size_t cap);

#endif
