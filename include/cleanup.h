/* Deleting expired links in bulk (`shortenerctl cleanup`), safe to run at any time, twice at
 * once, or killed half-way. Each batch is one short transaction that locks the rows it deletes
 * with FOR UPDATE SKIP LOCKED: concurrent runs split the work instead of waiting for each
 * other, and a killed run leaves only whole batches behind. Expired links answer 404 whether
 * or not this has run; it only reclaims space. libpq's types stay out: struct pg_conn is
 * libpq's PGconn. */
#ifndef SHORTENER_CLEANUP_H
#define SHORTENER_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CLEANUP_BATCH_DEFAULT   5000
#define CLEANUP_BATCH_MAX       100000
#define CLEANUP_MAX_SECONDS_MAX 86400
/* A pause after each full batch leaves the CPU to redirects and creates for a while: on a
 * small machine a cleanup running flat out took a fifth of redirect throughput. */
#define CLEANUP_PAUSE_MS_DEFAULT 20
#define CLEANUP_PAUSE_MS_MAX     10000

struct pg_conn;

struct cleanup_opts {
    long long batch;       /* rows per transaction, 1..CLEANUP_BATCH_MAX */
    long long max_seconds; /* no new batch is started after this long; 0: no limit */
    long long pause_ms;    /* sleep after each full batch, 0..CLEANUP_PAUSE_MS_MAX */
    bool dry_run;          /* count, delete nothing */
    /* Not a flag: STATS_RETENTION_DAYS, set by the caller. Visit aggregates (hourly, daily,
     * unknown keys) whose period starts longer ago than this are deleted; 0: none are. */
    long long stats_retention_days;
};

#define STATS_RETENTION_DEFAULT 400
#define STATS_RETENTION_MAX     36500

/* The flags of `shortenerctl cleanup` as a config table over struct cleanup_opts, with their
 * bounds and defaults: --batch N, --max-seconds S, --pause-ms MS and --dry-run. Read them with
 * config_load_args(), which also serves --help from it. */
#define CLEANUP_NOPTIONS 4
extern const struct config_opt cleanup_options[CLEANUP_NOPTIONS];

struct cleanup_hooks {
    /* Called after each commit with the keys just deleted (valid during the call only).
     * Returns 0, or < 0 when their cache entries could not be removed: counted, not fatal. */
    int (*evict)(void *ctx, const char *const *keys, size_t n);
    /* Asked before each batch: true stops the run (a signal arrived, say). */
    bool (*stop)(void *ctx);
    void *ctx;
};

enum cleanup_end { CLEANUP_DONE, CLEANUP_TIME_LIMIT, CLEANUP_STOPPED };

struct cleanup_result {
    long long rows;             /* links deleted */
    long long batches;          /* transactions that deleted at least one link */
    long long not_evicted;      /* deleted links whose cache entries may remain */
    long long idempotency_rows; /* Idempotency-Key records past their 24 hours, deleted */
    long long stats_rows;       /* visit aggregates past STATS_RETENTION_DAYS, deleted */
    double seconds;             /* wall time of the run */
    enum cleanup_end end;       /* why it stopped */
};

/* Sets the session's lock and statement timeouts, then deletes expired links batch by batch
 * until none is left, the time limit passes or hooks->stop says so; then, unless stopped,
 * Idempotency-Key records older than 24 hours the same way, then visit aggregates older than
 * o->stats_retention_days. Returns 0, or -EIO with
 * the reason in err (PostgreSQL failed or went away); *res counts what was committed either
 * way. */
int cleanup_run(struct pg_conn *conn, const struct cleanup_opts *o,
                const struct cleanup_hooks *hooks, struct cleanup_result *res, char *err,
                size_t errlen);

/* How many links have expired and wait for cleanup. Returns 0 or -EIO with err. */
int cleanup_count(struct pg_conn *conn, long long *n, char *err, size_t errlen);

#endif
