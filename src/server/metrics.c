/* Prometheus exposition of the server's counters. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const unsigned status_codes[MS_COUNT] = {200, 201, 204, 301, 400, 401, 404, 405,
                                                409, 413, 415, 429, 500, 503, 0};

static const char *const redirect_results[MR_COUNT] = {"hot_hit", "cache_hit", "cache_negative",
                                                       "db_hit",  "db_miss",   "invalid"};

void metrics_count_status(struct metrics *m, unsigned status)
{
    for (int i = 0; i < MS_OTHER; i++)
        if (status_codes[i] == status) {
            metrics_inc(&m->responses[i]);
            return;
        }
    metrics_inc(&m->responses[MS_OTHER]);
}

struct out {
    char *buf;
    size_t cap, len;
    int err;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (o->err)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->err = -ENOSPC;
        return;
    }
    o->len += (size_t)n;
}

static unsigned long long get(const atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};

    put(&o, "# HELP shortener_http_responses_total HTTP responses by status code.\n"
            "# TYPE shortener_http_responses_total counter\n");
    for (int i = 0; i < MS_OTHER; i++)
        put(&o, "shortener_http_responses_total{code=\"%u\"} %llu\n", status_codes[i],
            get(&m->responses[i]));
    put(&o, "shortener_http_responses_total{code=\"other\"} %llu\n", get(&m->responses[MS_OTHER]));
    put(&o, "# HELP shortener_redirects_total Redirect look-ups by where they were answered.\n"
            "# TYPE shortener_redirects_total counter\n");
    for (int i = 0; i < MR_COUNT; i++)
        put(&o, "shortener_redirects_total{result=\"%s\"} %llu\n", redirect_results[i],
            get(&m->redirects[i]));
    put(&o,
        "# HELP shortener_links_created_total Links created.\n"
        "# TYPE shortener_links_created_total counter\n"
        "shortener_links_created_total %llu\n"
        "# HELP shortener_links_deleted_total Links deleted through the API.\n"
        "# TYPE shortener_links_deleted_total counter\n"
        "shortener_links_deleted_total %llu\n"
        "# HELP shortener_dependency_errors_total Failed calls to a dependency.\n"
        "# TYPE shortener_dependency_errors_total counter\n"
        "shortener_dependency_errors_total{dependency=\"redis\"} %llu\n"
        "shortener_dependency_errors_total{dependency=\"postgres\"} %llu\n"
        "shortener_dependency_errors_total{dependency=\"kgs\"} %llu\n"
        "# HELP shortener_visits_dropped_total Visits not counted because the buffer was full.\n"
        "# TYPE shortener_visits_dropped_total counter\n"
        "shortener_visits_dropped_total %llu\n"
        "# HELP shortener_keys_buffered Generated keys held locally, fetched from kgs.\n"
        "# TYPE shortener_keys_buffered gauge\n"
        "shortener_keys_buffered %zu\n"
        "# HELP shortener_visits_pending Links with visits not yet written to PostgreSQL.\n"
        "# TYPE shortener_visits_pending gauge\n"
        "shortener_visits_pending %zu\n"
        "# HELP shortener_ratelimited_total Requests refused with 429 by a rate limit.\n"
        "# TYPE shortener_ratelimited_total counter\n"
        "shortener_ratelimited_total %llu\n"
        "# HELP shortener_ratelimit_fallback 1 while Redis is unreachable and limits are kept by "
        "this instance alone.\n"
        "# TYPE shortener_ratelimit_fallback gauge\n"
        "shortener_ratelimit_fallback %llu\n"
        "# HELP shortener_ratelimit_fallback_total Times rate limiting fell back to this "
        "instance alone.\n"
        "# TYPE shortener_ratelimit_fallback_total counter\n"
        "shortener_ratelimit_fallback_total %llu\n"
        "# HELP shortener_hot_cache_entries Links held in the in-process cache.\n"
        "# TYPE shortener_hot_cache_entries gauge\n"
        "shortener_hot_cache_entries %zu\n"
        "# HELP shortener_hot_cache_enabled 1 while the in-process cache is in use (subscribed to "
        "deletions).\n"
        "# TYPE shortener_hot_cache_enabled gauge\n"
        "shortener_hot_cache_enabled %d\n"
        "# HELP shortener_create_queue Creates waiting for a link writer.\n"
        "# TYPE shortener_create_queue gauge\n"
        "shortener_create_queue %u\n"
        "# HELP shortener_create_commits_total Commits of new links (each carries a batch).\n"
        "# TYPE shortener_create_commits_total counter\n"
        "shortener_create_commits_total %llu\n"
        "# HELP shortener_create_batched_total Creates carried by those commits.\n"
        "# TYPE shortener_create_batched_total counter\n"
        "shortener_create_batched_total %llu\n",
        get(&m->links_created), get(&m->links_deleted), get(&m->cache_errors), get(&m->db_errors),
        get(&m->kgs_errors), get(&m->visits_dropped), g->keys_buffered, g->visits_pending,
        get(&m->ratelimited), get(&m->ratelimit_fallback), get(&m->ratelimit_fallbacks),
        g->hot_entries, g->hot_enabled, g->writer_queued, g->writer_batches, g->writer_links);
    return o.err ? o.err : (int)o.len;
}
