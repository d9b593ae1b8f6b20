/* Request-duration histograms for /metrics, by kind of request (a redirect by the tier that
 * answered it, create, read, list, stats, live connects, other), with buckets from 50 µs, fit
 * for redirects answered from memory. Each worker thread owns one block and is its only
 * writer: recording is a relaxed load and store, never a shared read-modify-write; /metrics
 * sums the blocks when it is scraped. */
#ifndef SHORTENER_LATENCY_H
#define SHORTENER_LATENCY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LATENCY_KINDS(X)                                                                           \
    X(REDIRECT_HOT, "redirect_hot")                                                                \
    X(REDIRECT_REDIS, "redirect_redis")                                                            \
    X(REDIRECT_DB, "redirect_db")                                                                  \
    X(CREATE, "create")                                                                            \
    X(READ, "read")                                                                                \
    X(LIST, "list")                                                                                \
    X(STATS, "stats")                                                                              \
    X(LIVE, "live")                                                                                \
    X(OTHER, "other")

#define LATENCY_KIND_ENUM_(name, label) LK_##name,
enum latency_kind { LATENCY_KINDS(LATENCY_KIND_ENUM_) LK_COUNT };

/* Upper bounds of the buckets, in seconds: 50 µs to 5 s; one more bucket takes the rest. */
#define LATENCY_BOUNDS 16

struct latency {
    atomic_ullong counts[LK_COUNT][LATENCY_BOUNDS + 1]; /* per bucket, not cumulative */
    atomic_ullong sum_ns[LK_COUNT];
};

/* Where a redirect was answered: the redirect handler says so on the request. A redirect
 * whose tier is unknown (refused, or broken before a look-up) counts as "other". */
enum latency_tier { LT_UNKNOWN = 0, LT_HOT, LT_REDIS, LT_DB };

/* Stands for a redirect until its tier is known: latency_kind_for_tier() tells the kind. */
#define LK_REDIRECT LK_COUNT

enum latency_kind latency_kind_for_tier(enum latency_tier tier);

/* The kind of a request from its method and path (known when its headers are in); a path of
 * one segment is LK_REDIRECT, whose tier the redirect handler tells. */
enum latency_kind latency_kind_of(const char *method, const char *path);

/* Adds one request of kind that took ns nanoseconds. Only the block's own thread may call
 * it. */
void latency_record(struct latency *l, enum latency_kind kind, uint64_t ns);

/* Adds every count of from into into (from may be being written meanwhile). */
void latency_add(struct latency *into, const struct latency *from);

/* Appends the Prometheus histogram shortener_request_duration_seconds of l to buf. Returns
 * the length written, or -ENOSPC (nothing usable) when it does not fit. */
int latency_render(const struct latency *l, char *buf, size_t cap);

#endif
