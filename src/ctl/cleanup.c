/* Expired-link cleanup: short transactions that never wait for a row lock. */
#include "cleanup.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "deadline.h"
#include "visitsql.h"

/* A batch that waits this long for a table lock (a migration, say) gives up rather than
 * queue in front of creates and redirects. Row locks are never waited for: SKIP LOCKED. */
#define CLEANUP_LOCK_TIMEOUT "2s"
/* Far above what the largest batch needs; a batch that takes longer is rolled back. */
#define CLEANUP_STATEMENT_TIMEOUT "60s"

/* The oldest expired rows come from urls_expires_at_idx (expires_at <= now() implies the
 * index's expires_at IS NOT NULL), locked without waiting: rows another run or a visit flush
 * holds are left to it or to the next batch. Autocommit: each batch is its own transaction. */
#define BATCH_SQL                                                                                  \
    "DELETE FROM urls WHERE key = ANY(ARRAY("                                                      \
    "SELECT key FROM urls WHERE expires_at <= now()"                                               \
    " ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED))"                                       \
    " RETURNING key"

#define T struct cleanup_opts
const struct config_opt cleanup_options[] = {
    CONFIG_FLAG_INT(T, "batch", 1, CLEANUP_BATCH_MAX, CONFIG_XSTR(CLEANUP_BATCH_DEFAULT),
                    "links deleted per transaction", batch),
    CONFIG_FLAG_INT(T, "max-seconds", 0, CLEANUP_MAX_SECONDS_MAX, "0",
                    "seconds after which no new batch starts; 0: no limit", max_seconds),
    CONFIG_FLAG_INT(T, "pause-ms", 0, CLEANUP_PAUSE_MS_MAX, CONFIG_XSTR(CLEANUP_PAUSE_MS_DEFAULT),
                    "pause after each full batch, in milliseconds", pause_ms),
    CONFIG_FLAG_SWITCH(T, "dry-run", "only count the expired links", dry_run),
};
#undef T

/* Idempotency records are kept 24 hours (API.md); older ones go the same way as links, by
 * their created_at index, in short batches that never wait for a row lock. */
#define IDEMPOTENCY_SQL                                                                            \
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("                                         \
    "SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '24 hours'"             \
    " ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED))"

/* The journal of deletes and edits (link_changes) is read back at most CACHE_TTL (30 days at
 * most) and a margin into the past, when Redis comes back from an outage: older rows go. */
#define CHANGES_SQL                                                                                \
    "DELETE FROM link_changes WHERE id = ANY(ARRAY("                                               \
    "SELECT id FROM link_changes WHERE changed_at < now() - interval '31 days'"                    \
    " ORDER BY changed_at LIMIT $1 FOR UPDATE SKIP LOCKED))"

static void fail(PGconn *conn, const char *what, char *err, size_t errlen)
{
    char why[400];
    db_error(conn, why, sizeof(why));
    snprintf(err, errlen, "%s: %s", what, why);
}

/* Visit aggregates past their retention ($2 days), in the same short batches: by the BRIN index
 * on their time, but for visit_recent, which holds the hours not yet rolled (about one) and is
 * read through. Its rows' visits not yet in their links' counts go there first, in the same
 * statement (visitsql.h).
 * Dates of unknown keys are UTC days. Each statement answers how many rows it deleted. */
static const char *const stats_sql[] = {
    "WITH c AS MATERIALIZED (DELETE FROM visit_recent WHERE ctid = ANY(ARRAY(SELECT ctid"
    " FROM visit_recent WHERE hour < now() - $2::int * interval '1 day' LIMIT $1"
    " FOR UPDATE SKIP LOCKED)) RETURNING key, uncounted)," VISITSQL_COUNT_DELETED
    " SELECT count(*) FROM c",
    "DELETE FROM visit_hours WHERE ctid = ANY(ARRAY(SELECT ctid FROM visit_hours"
    " WHERE hour < now() - $2::int * interval '1 day' LIMIT $1 FOR UPDATE SKIP LOCKED))",
    "DELETE FROM visit_days WHERE ctid = ANY(ARRAY(SELECT ctid FROM visit_days"
    " WHERE day < now() - $2::int * interval '1 day' LIMIT $1 FOR UPDATE SKIP LOCKED))",
    "DELETE FROM visit_blocks WHERE ctid = ANY(ARRAY(SELECT ctid FROM visit_blocks"
    " WHERE block < now() - $2::int * interval '1 day' LIMIT $1 FOR UPDATE SKIP LOCKED))",
    "DELETE FROM unknown_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM unknown_keys"
    " WHERE day < (now() AT TIME ZONE 'UTC')::date - $2::int LIMIT $1 FOR UPDATE SKIP LOCKED))",
    "DELETE FROM unknown_key_days WHERE ctid = ANY(ARRAY(SELECT ctid FROM unknown_key_days"
    " WHERE day < (now() AT TIME ZONE 'UTC')::date - $2::int LIMIT $1 FOR UPDATE SKIP LOCKED))",
};

/* Runs the prepared one-parameter DELETE stmt until a batch comes back short, adding the
 * rows to *count (may be NULL). Returns 0, or -EIO with err set to what, and why. */
static int delete_batches(PGconn *conn, const char *stmt, const char *const *params,
                          const struct cleanup_opts *o, long long *count, const char *what,
                          char *err, size_t errlen)
{
    for (;;) {
        PGresult *res = PQexecPrepared(conn, stmt, 1, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            PQclear(res);
            fail(conn, what, err, errlen);
            return -EIO;
        }
        long long n = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        if (count)
            *count += n;
        if (n < o->batch)
            return 0;
        if (o->pause_ms > 0)
            poll(NULL, 0, (int)o->pause_ms);
    }
}

/* Deletes old visit aggregates, table by table, batch by batch. */
static int cleanup_stats(PGconn *conn, const struct cleanup_opts *o, const char *limit,
                         const struct cleanup_hooks *hooks, struct cleanup_result *out, char *err,
                         size_t errlen)
{
    char days[24];
    const char *params[2] = {limit, days};

    snprintf(days, sizeof(days), "%lld", o->stats_retention_days);
    for (size_t i = 0; i < sizeof(stats_sql) / sizeof(stats_sql[0]); i++) {
        for (;;) {
            if (hooks && hooks->stop && hooks->stop(hooks->ctx)) {
                out->end = CLEANUP_STOPPED;
                return 0;
            }
            PGresult *res = PQexecParams(conn, stats_sql[i], 2, NULL, params, NULL, NULL, 0);
            ExecStatusType st = PQresultStatus(res);
            if (st != PGRES_COMMAND_OK && (st != PGRES_TUPLES_OK || PQntuples(res) != 1)) {
                PQclear(res);
                fail(conn, "deleting old visit aggregates failed", err, errlen);
                return -EIO;
            }
            long long n =
                strtoll(st == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : PQcmdTuples(res), NULL, 10);
            PQclear(res);
            out->stats_rows += n;
            if (n < o->batch)
                break;
            if (o->pause_ms > 0)
                poll(NULL, 0, (int)o->pause_ms);
        }
    }
    return 0;
}

int cleanup_count(PGconn *conn, long long *n, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT count(*) FROM urls WHERE expires_at <= now()");
    int rc = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        db_error(conn, err, errlen);
        rc = -EIO;
    } else {
        *n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return rc;
}

int cleanup_run(PGconn *conn, const struct cleanup_opts *o, const struct cleanup_hooks *hooks,
                struct cleanup_result *out, char *err, size_t errlen)
{
    long long start = deadline_now_ms();
    const char **keys = NULL;
    char limit[24];
    const char *params[1] = {limit};
    PGresult *res = NULL;
    int rc = -EIO;

    memset(out, 0, sizeof(*out));
    out->end = CLEANUP_DONE;
    if (db_exec(conn,
                "SET lock_timeout = '" CLEANUP_LOCK_TIMEOUT "';"
                " SET statement_timeout = '" CLEANUP_STATEMENT_TIMEOUT "'",
                err, errlen) < 0)
        goto out;
    res = PQprepare(conn, "cleanup_batch", BATCH_SQL, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fail(conn, "cannot prepare the batch statement", err, errlen);
        goto out;
    }
    PQclear(res);
    res = PQprepare(conn, "cleanup_idempotency", IDEMPOTENCY_SQL, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fail(conn, "cannot prepare the batch statement", err, errlen);
        goto out;
    }
    PQclear(res);
    res = PQprepare(conn, "cleanup_changes", CHANGES_SQL, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fail(conn, "cannot prepare the batch statement", err, errlen);
        goto out;
    }
    PQclear(res);
    res = NULL;
    keys = calloc((size_t)o->batch, sizeof(*keys));
    if (!keys) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(limit, sizeof(limit), "%lld", o->batch);
    for (;;) {
        if (o->max_seconds > 0 && deadline_now_ms() - start >= o->max_seconds * 1000LL) {
            out->end = CLEANUP_TIME_LIMIT;
            break;
        }
        if (hooks && hooks->stop && hooks->stop(hooks->ctx)) {
            out->end = CLEANUP_STOPPED;
            break;
        }
        res = PQexecPrepared(conn, "cleanup_batch", 1, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fail(conn,
                 PQstatus(conn) == CONNECTION_OK ? "a batch failed and was rolled back"
                                                 : "lost the connection to PostgreSQL",
                 err, errlen);
            goto out;
        }
        /* Committed: the rows are gone, now their cache entries. */
        int n = PQntuples(res);
        for (int i = 0; i < n; i++)
            keys[i] = PQgetvalue(res, i, 0);
        if (n > 0) {
            out->rows += n;
            out->batches++;
            if (hooks && hooks->evict && hooks->evict(hooks->ctx, keys, (size_t)n) < 0)
                out->not_evicted += n;
        }
        PQclear(res);
        res = NULL;
        /* A short batch means every expired row was deleted or is held by someone who
         * will delete it (another run) or whom the next run will outlast. */
        if (n < o->batch)
            break;
        if (o->pause_ms > 0)
            poll(NULL, 0, (int)o->pause_ms);
    }
    /* Then the idempotency records and the journal of changes past any use, unless the run
     * was told to stop. */
    if (out->end == CLEANUP_DONE &&
        (delete_batches(conn, "cleanup_idempotency", params, o, &out->idempotency_rows,
                        "deleting old idempotency records failed", err, errlen) < 0 ||
         delete_batches(conn, "cleanup_changes", params, o, NULL,
                        "deleting old link changes failed", err, errlen) < 0))
        goto out;
    if (out->end == CLEANUP_DONE && o->stats_retention_days > 0 &&
        cleanup_stats(conn, o, limit, hooks, out, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    PQclear(res);
    free(keys);
    out->seconds = (double)(deadline_now_ms() - start) / 1000.0;
    return rc;
}
