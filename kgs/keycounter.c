/* kgs_state through libpq: the permutation secret and the claim counter. */
#include "keycounter.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define KEYCOUNTER_STATEMENT_TIMEOUT_MS 10000

/* ON CONFLICT DO NOTHING: two kgs starting on an empty database both offer a secret, one
 * wins, and both then read the winner's. */
#define SQL_OFFER_SECRET                                                                           \
    "INSERT INTO kgs_state (id, algorithm, secret, next_index) VALUES (1, $1, $2, 0) "             \
    "ON CONFLICT (id) DO NOTHING"
#define SQL_READ_SECRET "SELECT algorithm, secret FROM kgs_state WHERE id = 1"

/* The row lock serialises concurrent claims; each returns a range nobody else got. */
#define SQL_CLAIM                                                                                  \
    "UPDATE kgs_state SET next_index = next_index + $1::bigint WHERE id = 1 "                      \
    "AND next_index <= $2::bigint - $1::bigint RETURNING next_index - $1::bigint"

#define SQL_CLAIMED "SELECT next_index FROM kgs_state WHERE id = 1"

static const struct {
    const char *name;
    const char *sql;
    int nparams;
} statements[] = {
    {"kgs_claim", SQL_CLAIM, 2},
    {"kgs_claimed", SQL_CLAIMED, 0},
};

static int load_secret(PGconn *conn, unsigned char secret[KEYPERM_SECRET_LEN], char *err,
                       size_t errlen)
{
    unsigned char fresh[KEYPERM_SECRET_LEN];
    char hex[2 + KEYPERM_SECRET_LEN * 2 + 1] = "\\x", algorithm[16];
    const char *params[2] = {algorithm, hex};
    PGresult *res = NULL;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    int rc = -EIO;

    randombytes_buf(fresh, sizeof(fresh));
    sodium_bin2hex(hex + 2, sizeof(hex) - 2, fresh, sizeof(fresh));
    sodium_memzero(fresh, sizeof(fresh));
    snprintf(algorithm, sizeof(algorithm), "%d", KEYPERM_ALGORITHM);
    res = PQexecParams(conn, SQL_OFFER_SECRET, 2, NULL, params, NULL, NULL, 0);
    sodium_memzero(hex, sizeof(hex));
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_error(conn, err, errlen);
        goto out;
    }
    PQclear(res);
    res = PQexecParams(conn, SQL_READ_SECRET, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        db_error(conn, err, errlen);
        goto out;
    }
    if (atoi(PQgetvalue(res, 0, 0)) != KEYPERM_ALGORITHM) {
        snprintf(err, errlen, "kgs_state uses key algorithm %s; this kgs knows only %d",
                 PQgetvalue(res, 0, 0), KEYPERM_ALGORITHM);
        rc = -EINVAL;
        goto out;
    }
    raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1), &rawlen);
    if (!raw || rawlen != KEYPERM_SECRET_LEN) {
        snprintf(err, errlen, "kgs_state holds a malformed secret");
        goto out;
    }
    memcpy(secret, raw, KEYPERM_SECRET_LEN);
    rc = 0;
out:
    if (raw) {
        sodium_memzero(raw, rawlen);
        PQfreemem(raw);
    }
    PQclear(res);
    return rc;
}

PGconn *keycounter_connect(const char *conninfo, unsigned char secret[KEYPERM_SECRET_LEN],
                           char *err, size_t errlen)
{
    PGconn *conn = db_connect(conninfo, "kgs", KEYCOUNTER_STATEMENT_TIMEOUT_MS, err, errlen);
    PGresult *res = NULL;

    if (!conn)
        return NULL;
    /* A claim must be on disk before its keys are handed out, or a server crash could move
     * the counter back under keys already issued. Whatever the server or role default says. */
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
    if (load_secret(conn, secret, err, errlen) < 0)
        goto fail;
    return conn;
fail:
    PQclear(res);
    PQfinish(conn);
    return NULL;
}

int keycounter_claim(PGconn *conn, size_t n, uint64_t *first, char *err, size_t errlen)
{
    char count[24], domain[24];
    const char *params[2] = {count, domain};
    PGresult *res;
    int rc = -EIO;

    if (n < 1 || n > KEYCOUNTER_MAX_BATCH) {
        snprintf(err, errlen, "batch of %zu keys out of range", n);
        return -EINVAL;
    }
    snprintf(count, sizeof(count), "%zu", n);
    snprintf(domain, sizeof(domain), "%llu", KEYPERM_DOMAIN);
    /* Autocommitted: when the result arrives, the UPDATE has committed and been flushed. */
    res = PQexecPrepared(conn, "kgs_claim", 2, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(conn, err, errlen);
        goto out;
    }
    if (PQntuples(res) == 0) {
        /* No row, or the counter would pass the end of the key space. */
        snprintf(err, errlen, "the key space is used up (or kgs_state is empty)");
        rc = 0;
        goto out;
    }
    *first = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    rc = (int)n;
out:
    PQclear(res);
    return rc;
}

long long keycounter_claimed(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexecPrepared(conn, "kgs_claimed", 0, NULL, NULL, NULL, 0);
    long long n = -EIO;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else
        db_error(conn, err, errlen);
    PQclear(res);
    return n;
}
