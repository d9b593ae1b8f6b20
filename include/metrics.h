/* Counters for /metrics, updated with relaxed atomics from every worker thread, and their
 * exposition, rendered from one table of metrics (name, type, help, where the value is). */
#ifndef SHORTENER_METRICS_H
#define SHORTENER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

/* Status codes with a series of their own in shortener_http_responses_total; any other is
 * counted as "other" (MS_OTHER). X-macros, so the enum and the rendered labels are one list. */
#define METRICS_STATUSES(X)                                                                        \
    X(200)                                                                                         \
    X(201)                                                                                         \
    X(204)                                                                                         \
    X(301)                                                                                         \
    X(400)                                                                                         \
    X(401)                                                                                         \
    X(404)                                                                                         \
    X(405)                                                                                         \
    X(409)                                                                                         \
    X(413)                                                                                         \
    X(415)                                                                                         \
    X(429)                                                                                         \
    X(500)                                                                                         \
    X(503)

/* Where a redirect look-up was answered: MR_<name>, shown as result="<label>". */
#define METRICS_REDIRECTS(X)                                                                       \
    X(HOT_HIT, "hot_hit")                                                                          \
    X(CACHE_HIT, "cache_hit")                                                                      \
    X(CACHE_NEGATIVE, "cache_negative")                                                            \
    X(DB_HIT, "db_hit")                                                                            \
    X(REPLICA_HIT, "replica_hit")                                                                  \
    X(DB_MISS, "db_miss")                                                                          \
    X(INVALID, "invalid")

#define METRICS_STATUS_ENUM_(code)          MS_##code,
#define METRICS_REDIRECT_ENUM_(name, label) MR_##name,

enum metric_status { METRICS_STATUSES(METRICS_STATUS_ENUM_) MS_OTHER, MS_COUNT };

enum metric_redirect { METRICS_REDIRECTS(METRICS_REDIRECT_ENUM_) MR_COUNT };

struct metrics {
    /* Counted in the request threads' shards (struct metrics_shard): here only in the sum
     * /metrics renders. */
    atomic_ullong responses[MS_COUNT];
    atomic_ullong redirects[MR_COUNT];
    atomic_ullong links_created;
    atomic_ullong links_deleted;
    atomic_ullong cache_errors;
    atomic_ullong db_errors;
    atomic_ullong kgs_errors;
    atomic_ullong visits_dropped;
    atomic_ullong analytics_visits;      /* visits classified and summed for stats */
    atomic_ullong analytics_dropped;     /* visits left out of stats (a buffer or the sums full) */
    atomic_ullong unknown_key_visits;    /* GETs of keys that do not exist */
    atomic_ullong ratelimited;           /* requests refused with 429 */
    atomic_ullong ratelimit_fallbacks;   /* times rate limiting fell back to in-process */
    atomic_ullong ratelimit_fallback;    /* gauge: 1 while it is in-process */
    atomic_ullong connections_refused;   /* over the per-address limit */
    atomic_ullong connections_timed_out; /* a request not whole by its deadline */
};

/* The counters every request moves, one set per request thread (struct worker): shared, each
 * was a cache line both threads wrote on every request. /metrics adds them to the shared
 * ones (metrics_snapshot(), metrics_add_shard()). */
struct metrics_shard {
    atomic_ullong responses[MS_COUNT];
    atomic_ullong redirects[MR_COUNT];
};

void metrics_count_status(struct metrics_shard *sh, unsigned status);

/* out: what m holds now (relaxed loads, each counter a moment's value). */
void metrics_snapshot(const struct metrics *m, struct metrics *out);

/* Adds a shard's counts to out (a snapshot: no other thread writes it). */
void metrics_add_shard(struct metrics *out, const struct metrics_shard *sh);

static inline void metrics_inc(atomic_ullong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void metrics_add(atomic_ullong *c, unsigned long long n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Values the caller reads from other modules when /metrics is asked for. */
struct metrics_gauges {
    unsigned long long keys_buffered;
    unsigned long long visits_pending;
    unsigned long long hot_entries;
    unsigned long long hot_enabled;
    unsigned long long hot_refreshes;
    unsigned long long writer_queued;
    unsigned long long writer_batches;
    unsigned long long writer_links;
    unsigned long long live_watchers;
    unsigned long long live_links;
    unsigned long long connections_open;
};

/* Renders the Prometheus text format of every metric (the table in metrics.c) into buf.
 * Returns the length written; output that does not fit is never returned cut short: -ENOSPC
 * instead. */
int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char *buf, size_t cap);

#endif
