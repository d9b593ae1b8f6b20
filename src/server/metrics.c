/* Prometheus exposition of the server's counters: one table of metrics, rendered in a loop. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define STATUS_CODE(code) code,
static const unsigned status_codes[] = {METRICS_STATUSES(STATUS_CODE)};
_Static_assert(ARRAY_LEN(status_codes) == MS_OTHER, "one status code per series but other");

/* Where a value is kept: an atomic_ullong in struct metrics, or an unsigned long long in the
 * struct metrics_gauges the caller passes in. */
enum source { IN_METRICS, IN_GAUGES };

/* One series of a labelled metric, always in struct metrics. */
struct series {
    const char *label_value;
    size_t offset;
};

struct metric {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    enum source source;
    size_t offset; /* of the value, when the metric has no label */
    const char *label;
    const struct series *series; /* when label is set: one per value of it */
    size_t nseries;
};

#define STATUS_SERIES(code) {#code, offsetof(struct metrics, responses[MS_##code])},
static const struct series responses[] = {
    METRICS_STATUSES(STATUS_SERIES){"other", offsetof(struct metrics, responses[MS_OTHER])}};

#define REDIRECT_SERIES(name, label) {label, offsetof(struct metrics, redirects[MR_##name])},
static const struct series redirects[] = {METRICS_REDIRECTS(REDIRECT_SERIES)};

static const struct series dependency_errors[] = {
    {"redis", offsetof(struct metrics, cache_errors)},
    {"postgres", offsetof(struct metrics, db_errors)},
    {"kgs", offsetof(struct metrics, kgs_errors)},
};

#define COUNTED(field)        IN_METRICS, offsetof(struct metrics, field), NULL, NULL, 0
#define PASSED_IN(field)      IN_GAUGES, offsetof(struct metrics_gauges, field), NULL, NULL, 0
#define BY_LABEL(label, list) IN_METRICS, 0, label, list, ARRAY_LEN(list)

/* In the order they are rendered. */
static const struct metric metrics_table[] = {
    {"shortener_http_responses_total", "counter", "HTTP responses by status code.",
     BY_LABEL("code", responses)},
    {"shortener_redirects_total", "counter", "Redirect look-ups by where they were answered.",
     BY_LABEL("result", redirects)},
    {"shortener_links_created_total", "counter", "Links created.", COUNTED(links_created)},
    {"shortener_links_deleted_total", "counter", "Links deleted through the API.",
     COUNTED(links_deleted)},
    {"shortener_dependency_errors_total", "counter", "Failed calls to a dependency.",
     BY_LABEL("dependency", dependency_errors)},
    {"shortener_visits_dropped_total", "counter", "Visits not counted because the buffer was full.",
     COUNTED(visits_dropped)},
    {"shortener_analytics_visits_total", "counter",
     "Visits classified and summed for stats (analytics.c).", COUNTED(analytics_visits)},
    {"shortener_analytics_dropped_total", "counter",
     "Visits left out of stats because a buffer or the unwritten sums were full.",
     COUNTED(analytics_dropped)},
    {"shortener_unknown_key_visits_total", "counter",
     "Look-ups (GET) of keys that do not exist, answered 404.", COUNTED(unknown_key_visits)},
    {"shortener_keys_buffered", "gauge", "Generated keys held locally, fetched from kgs.",
     PASSED_IN(keys_buffered)},
    {"shortener_visits_pending", "gauge", "Links with visits not yet written to PostgreSQL.",
     PASSED_IN(visits_pending)},
    {"shortener_ratelimited_total", "counter", "Requests refused with 429 by a rate limit.",
     COUNTED(ratelimited)},
    {"shortener_ratelimit_fallback", "gauge",
     "1 while Redis is unreachable and limits are kept by this instance alone.",
     COUNTED(ratelimit_fallback)},
    {"shortener_ratelimit_fallback_total", "counter",
     "Times rate limiting fell back to this instance alone.", COUNTED(ratelimit_fallbacks)},
    {"shortener_hot_cache_entries", "gauge", "Links held in the in-process cache.",
     PASSED_IN(hot_entries)},
    {"shortener_hot_cache_enabled", "gauge",
     "1 while the in-process cache is in use (subscribed to deletions).", PASSED_IN(hot_enabled)},
    {"shortener_hot_cache_refreshes_total", "counter",
     "In-process cache entries past their age read again from Redis in the background.",
     PASSED_IN(hot_refreshes)},
    {"shortener_create_queue", "gauge", "Creates waiting for a link writer.",
     PASSED_IN(writer_queued)},
    {"shortener_live_watchers", "gauge", "Live counter streams open on this server.",
     PASSED_IN(live_watchers)},
    {"shortener_live_links", "gauge",
     "Links watched here or, as announced, on other servers: their visits are counted live.",
     PASSED_IN(live_links)},
    {"shortener_create_commits_total", "counter", "Commits of new links (each carries a batch).",
     PASSED_IN(writer_batches)},
    {"shortener_create_batched_total", "counter", "Creates carried by those commits.",
     PASSED_IN(writer_links)},
    {"shortener_connections_open", "gauge", "HTTP connections open.", PASSED_IN(connections_open)},
    {"shortener_connections_refused_total", "counter",
     "HTTP connections refused because their address (IPv4, or IPv6 /64) had too many open.",
     COUNTED(connections_refused)},
    {"shortener_connections_timed_out_total", "counter",
     "HTTP connections cut because a request did not arrive whole within REQUEST_TIMEOUT.",
     COUNTED(connections_timed_out)},
};

void metrics_count_status(struct metrics_shard *sh, unsigned status)
{
    for (int i = 0; i < MS_OTHER; i++)
        if (status_codes[i] == status) {
            metrics_inc(&sh->responses[i]);
            return;
        }
    metrics_inc(&sh->responses[MS_OTHER]);
}

/* struct metrics is counters only, so it is copied as an array of them. */
_Static_assert(sizeof(struct metrics) % sizeof(atomic_ullong) == 0,
               "struct metrics: counters only");

void metrics_snapshot(const struct metrics *m, struct metrics *out)
{
    const atomic_ullong *from = (const atomic_ullong *)(const void *)m;
    atomic_ullong *to = (atomic_ullong *)(void *)out;

    for (size_t i = 0; i < sizeof(*m) / sizeof(*from); i++)
        atomic_init(&to[i], atomic_load_explicit(&from[i], memory_order_relaxed));
}

void metrics_add_shard(struct metrics *out, const struct metrics_shard *sh)
{
    for (int i = 0; i < MS_COUNT; i++)
        metrics_add(&out->responses[i],
                    atomic_load_explicit(&sh->responses[i], memory_order_relaxed));
    for (int i = 0; i < MR_COUNT; i++)
        metrics_add(&out->redirects[i],
                    atomic_load_explicit(&sh->redirects[i], memory_order_relaxed));
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

static unsigned long long value_at(const struct metrics *m, const struct metrics_gauges *g,
                                   enum source source, size_t offset)
{
    unsigned long long v;

    if (source == IN_GAUGES) {
        memcpy(&v, (const char *)g + offset, sizeof(v));
        return v;
    }
    return atomic_load_explicit((const atomic_ullong *)(const void *)((const char *)m + offset),
                                memory_order_relaxed);
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};

    for (size_t i = 0; i < ARRAY_LEN(metrics_table); i++) {
        const struct metric *x = &metrics_table[i];

        put(&o, "# HELP %s %s\n# TYPE %s %s\n", x->name, x->help, x->name, x->type);
        if (!x->label) {
            put(&o, "%s %llu\n", x->name, value_at(m, g, x->source, x->offset));
            continue;
        }
        for (size_t j = 0; j < x->nseries; j++)
            put(&o, "%s{%s=\"%s\"} %llu\n", x->name, x->label, x->series[j].label_value,
                value_at(m, g, x->source, x->series[j].offset));
    }
    return o.err ? o.err : (int)o.len;
}
