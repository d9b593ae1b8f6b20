/* kgs_keys through libpq: prepared statements for generating, counting and claiming keys. */
#include "keypool.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* Generous next to the ~100 ms a batch takes, yet a wedged server cannot stall the refill
 * thread (and so shutdown) for long. */
#define KEYPOOL_STATEMENT_TIMEOUT_MS 10000

/* unnest() of one array literal: one round trip and one parse per batch. A key that
 * exists already, or twice in the batch, is skipped rather than failing the batch. */
#define SQL_GENERATE "INSERT INTO kgs_keys (key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING"

/* An estimate, not count(*): both ends come from the partial index on seq in O(log n), while
 * counting reads every unclaimed entry (hundreds of thousands) on each pass of the refill
 * loop. The range overcounts only by gaps in seq (a rare ON CONFLICT skip, a failed batch,
 * rows another kgs is claiming right now), which merely delays a refill a little. */
#define SQL_UNCLAIMED                                                                              \
    "SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM kgs_keys WHERE claimed_at IS NULL"

/* SKIP LOCKED lets two kgs claim side by side without waiting for or sharing rows; the outer
 * "claimed_at IS NULL" is re-checked on the locked row version, so a row claimed by someone
 * else in the meantime can never come back.
 *
 * "key = ANY(ARRAY(...))" rather than "key IN (...)": the same rows, but the array is
 * computed first and then looked up through the primary key whatever the statistics say,
 * while the IN form let the planner hash-join against every unclaimed row (measured: 140-170
 * ms per 10,000 keys against 75-85 ms). */
#define SQL_CLAIM                                                                                  \
    "UPDATE kgs_keys SET claimed_at = now() WHERE key = ANY(ARRAY(SELECT key FROM kgs_keys "       \
    "WHERE claimed_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)) "                     \
    "AND claimed_at IS NULL RETURNING key"

static const struct {
    const char *name;
    const char *sql;
    int nparams;
} statements[] = {
    {"kgs_generate", SQL_GENERATE, 1},
    {"kgs_unclaimed", SQL_UNCLAIMED, 0},
    {"kgs_claim", SQL_CLAIM, 1},
};

PGconn *keypool_connect(const char *conninfo, char *err, size_t errlen)
{
    PGconn *conn = db_connect(conninfo, "kgs", KEYPOOL_STATEMENT_TIMEOUT_MS, err, errlen);
    PGresult *res = NULL;

    if (!conn)
        return NULL;
    /* A claim must be on disk before its keys are handed out, or a server crash could bring
     * issued keys back as unclaimed. Whatever the server or role default says. */
    if (db_exec(conn, "SET synchronous_commit = on", err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
        res = PQprepare(conn, statements[i].name, statements[i].sql, statements[i].nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            db_error(conn, err, errlen);
            goto fail;
        }
        PQclear(res);
        res = NULL;
    }
    return conn;
fail:
    PQclear(res);
    PQfinish(conn);
    return NULL;
}

int keypool_generate(PGconn *conn, size_t n, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *param;
    char *literal, *p;
    int rc;

    if (n < 1 || n > KEYPOOL_MAX_BATCH) {
        snprintf(err, errlen, "batch of %zu keys out of range", n);
        return -EINVAL;
    }
    /* "{k1,k2,...}": base62 digits need no quoting inside an array literal. */
    literal = malloc(n * (BASE62_KEY_LEN + 1) + 2);
    if (!literal) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p = literal;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        base62_random(p, BASE62_KEY_LEN);
        p += BASE62_KEY_LEN;
        *p++ = ',';
    }
    p[-1] = '}';
    *p = '\0';
    param = literal;
    res = PQexecPrepared(conn, "kgs_generate", 1, &param, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_error(conn, err, errlen);
        rc = -EIO;
        goto out;
    }
    rc = atoi(PQcmdTuples(res));
out:
    PQclear(res);
    free(literal);
    return rc;
}

long long keypool_unclaimed(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexecPrepared(conn, "kgs_unclaimed", 0, NULL, NULL, NULL, 0);
    long long n = -EIO;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else
        db_error(conn, err, errlen);
    PQclear(res);
    return n;
}

int keypool_claim(PGconn *conn, size_t n, char (*out_keys)[BASE62_KEY_LEN + 1], char *err,
                  size_t errlen)
{
    PGresult *res = NULL;
    char limit[24];
    const char *param = limit;
    int rows, got = 0;

    if (n < 1 || n > KEYPOOL_MAX_BATCH) {
        snprintf(err, errlen, "batch of %zu keys out of range", n);
        return -EINVAL;
    }
    snprintf(limit, sizeof(limit), "%zu", n);
    /* Autocommitted: when the result arrives, the UPDATE has committed and been flushed. */
    res = PQexecPrepared(conn, "kgs_claim", 1, &param, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(conn, err, errlen);
        got = -EIO;
        goto out;
    }
    rows = PQntuples(res);
    for (int i = 0; i < rows && (size_t)got < n; i++) {
        /* The table's CHECK makes anything else impossible; a row skipped here is claimed
         * and so simply never issued. */
        if (PQgetlength(res, i, 0) != BASE62_KEY_LEN)
            continue;
        memcpy(out_keys[got], PQgetvalue(res, i, 0), BASE62_KEY_LEN + 1);
        got++;
    }
out:
    PQclear(res);
    return got;
}
