/* API-key storage: the SQL of the api_keys table, for shortenerctl and the server alike. */
#include "apikey_store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* The name of the prepared authentication statement, unique on the server's connections. */
#define AUTH_STMT "apikey_auth"

/* last_used_at is written at most once a minute per key: a write per request would turn every
 * authenticated call into a commit. */
#define AUTH_SQL                                                                                   \
    "WITH k AS (SELECT id, key_hash, rate_limit, rate_window, burst, is_admin, last_used_at"       \
    " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL),"                                  \
    " u AS (UPDATE api_keys a SET last_used_at = now() FROM k"                                     \
    " WHERE a.id = k.id AND (k.last_used_at IS NULL"                                               \
    " OR k.last_used_at < now() - interval '60 seconds'))"                                         \
    " SELECT id, key_hash, rate_limit, rate_window, burst, is_admin FROM k"

/* A hash as a bytea literal in hex format ("\x" and two digits a byte), which is also how
 * PostgreSQL sends bytea back with its default bytea_output. */
#define BYTEA_HEX_LEN (2 + APIKEY_HASH_LEN * 2 + 1)

static void hash_to_bytea(const unsigned char hash[APIKEY_HASH_LEN], char out[BYTEA_HEX_LEN])
{
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, BYTEA_HEX_LEN - 2, hash, APIKEY_HASH_LEN);
}

/* Numbers in our own table's results: PostgreSQL wrote them, so no checking beyond that. */
static int64_t int_at(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int64_t time_at(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : int_at(res, row, col);
}

int apikey_store_insert(PGconn *conn, const struct apikey_new *key, int64_t *id, char *err,
                        size_t errlen)
{
    char hex[BYTEA_HEX_LEN], limit[16], window[16], burst[16];
    const char *params[6] = {key->name, hex, limit, window, burst, key->is_admin ? "t" : "f"};
    PGresult *res;
    int rc = 0;

    hash_to_bytea(key->hash, hex);
    snprintf(limit, sizeof(limit), "%d", key->rate_limit);
    snprintf(window, sizeof(window), "%d", key->rate_window);
    snprintf(burst, sizeof(burst), "%d", key->burst);
    res = PQexecParams(conn,
                       "INSERT INTO api_keys (name, key_hash, rate_limit, rate_window, burst,"
                       " is_admin) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                       6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = db_result_error(conn, res, err, errlen);
    else
        *id = int_at(res, 0, 0);
    PQclear(res);
    return rc;
}

int apikey_store_list(PGconn *conn, struct apikey_list *out, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT id, name, rate_limit, rate_window,"
                                 " floor(extract(epoch FROM created_at))::bigint,"
                                 " floor(extract(epoch FROM last_used_at))::bigint,"
                                 " floor(extract(epoch FROM revoked_at))::bigint"
                                 " FROM api_keys ORDER BY id");
    int rc = 0;

    out->rows = NULL;
    out->n = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = db_result_error(conn, res, err, errlen);
        goto out;
    }
    out->rows = calloc((size_t)PQntuples(res) + 1, sizeof(*out->rows));
    if (!out->rows) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct apikey_row *r = &out->rows[i];
        r->name = strdup(PQgetvalue(res, i, 1));
        if (!r->name) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
            goto out;
        }
        out->n++;
        r->id = int_at(res, i, 0);
        r->rate_limit = (int)int_at(res, i, 2);
        r->rate_window = (int)int_at(res, i, 3);
        r->created_at = time_at(res, i, 4);
        r->last_used_at = time_at(res, i, 5);
        r->revoked_at = time_at(res, i, 6);
    }
out:
    PQclear(res);
    return rc;
}

void apikey_list_release(struct apikey_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->rows[i].name);
    free(list->rows);
    list->rows = NULL;
    list->n = 0;
}

int apikey_store_revoke(PGconn *conn, int64_t id, bool *already, char *err, size_t errlen)
{
    char text[24];
    const char *params[1] = {text};
    PGresult *res;
    int rc = 0;

    snprintf(text, sizeof(text), "%" PRId64, id);
    res = PQexecParams(conn,
                       "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())"
                       " WHERE id = $1 RETURNING revoked_at < now()",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = db_result_error(conn, res, err, errlen);
    } else if (PQntuples(res) == 0) {
        snprintf(err, errlen, "no API key with id %" PRId64, id);
        rc = -ENOENT;
    } else {
        *already = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    }
    PQclear(res);
    return rc;
}

int apikey_store_prepare(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQprepare(conn, AUTH_STMT, AUTH_SQL, 0, NULL);
    int rc = 0;

    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = db_result_error(conn, res, err, errlen);
    PQclear(res);
    return rc;
}

int apikey_store_authenticate(PGconn *conn, const unsigned char hash[APIKEY_HASH_LEN],
                              struct apikey_info *out, char *err, size_t errlen)
{
    char hex[BYTEA_HEX_LEN];
    const char *params[1] = {hex};
    PGresult *res;
    int rc = 0;

    hash_to_bytea(hash, hex);
    res = PQexecPrepared(conn, AUTH_STMT, 1, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = db_result_error(conn, res, err, errlen);
        goto out;
    }
    /* The index finds the row; the comparison that decides is constant-time anyway. */
    if (PQntuples(res) != 1 || PQgetlength(res, 0, 1) != (int)strlen(hex) ||
        sodium_memcmp(PQgetvalue(res, 0, 1), hex, strlen(hex)) != 0) {
        rc = -ENOENT;
        goto out;
    }
    out->id = int_at(res, 0, 0);
    out->rate_limit = (int)int_at(res, 0, 2);
    out->rate_window = (int)int_at(res, 0, 3);
    out->burst = (int)int_at(res, 0, 4);
    out->is_admin = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
out:
    PQclear(res);
    return rc;
}
