/* Batches of imported links: one statement each (see import_store.h). */
#include "import_store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* A batch waits this long at most for a lock (a migration, say) rather than queue up in front
 * of creates; and is rolled back when it runs for longer than any batch should. */
#define IMPORT_LOCK_TIMEOUT      "5s"
#define IMPORT_STATEMENT_TIMEOUT "120s"

/* The first line of each key in the batch is offered to import_seen, the keys this run has met;
 * a line whose offer is refused repeats a key (from earlier in this batch or an earlier one).
 * The others are offered to link_keys, and only those it takes become links, in the same
 * statement. The final SELECT sees the tables as they were before the statement, so an urls
 * row it finds was there before: the key's owner keeps it. It looks keys up one by one
 * through the primary keys, which stays cheap however large urls and import_seen grow. */
#define BATCH_SQL                                                                                  \
    "WITH input AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[],"      \
    " $5::float8[], $6::bigint[], $7::text[]) WITH ORDINALITY"                                     \
    " AS t(line, key, url, created, expires, visits, tags, ord)),"                                 \
    " first AS (SELECT DISTINCT ON (key) key, line FROM input ORDER BY key, line),"                \
    " seen AS (INSERT INTO pg_temp.import_seen (key, line) SELECT key, line FROM first"            \
    " ON CONFLICT (key) DO NOTHING RETURNING key, line),"                                          \
    " fresh AS (SELECT i.* FROM input i JOIN seen s ON s.key = i.key AND s.line = i.line),"        \
    " reg AS (INSERT INTO link_keys (key) SELECT key FROM fresh ON CONFLICT DO NOTHING"            \
    " RETURNING key),"                                                                             \
    " ins AS (INSERT INTO urls (key, url, owner_id, created_at, expires_at, visits, tags)"         \
    " SELECT f.key, f.url, $8::bigint, COALESCE(to_timestamp(f.created), now()),"                  \
    " to_timestamp(f.expires), f.visits, string_to_array(f.tags, ',')"                             \
    " FROM fresh f JOIN reg r ON r.key = f.key RETURNING key)"                                     \
    " SELECT i.ord, CASE WHEN s.key IS NULL THEN 'd' WHEN n.key IS NOT NULL THEN 'i'"              \
    " ELSE COALESCE((SELECT CASE WHEN u.url = i.url THEN 'e' ELSE 't' END FROM urls u"             \
    " WHERE u.key = i.key), 'u') END,"                                                             \
    " CASE WHEN s.key IS NULL THEN COALESCE((SELECT o.line FROM pg_temp.import_seen o"             \
    " WHERE o.key = i.key), f.line) END"                                                           \
    " FROM input i"                                                                                \
    " LEFT JOIN seen s ON s.key = i.key AND s.line = i.line"                                       \
    " LEFT JOIN ins n ON n.key = i.key AND s.key IS NOT NULL"                                      \
    " LEFT JOIN first f ON f.key = i.key"

#define STMT "import_batch"

int import_store_check_owner(PGconn *conn, int64_t id, char *err, size_t errlen)
{
    char text[24];
    const char *params[1] = {text};
    PGresult *res;
    int rc = 0;

    snprintf(text, sizeof(text), "%" PRId64, id);
    res = PQexecParams(conn, "SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = $1", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(conn, err, errlen);
        rc = -EIO;
    } else if (PQntuples(res) == 0) {
        snprintf(err, errlen, "no API key with id %" PRId64, id);
        rc = -ENOENT;
    } else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        snprintf(err, errlen, "API key %" PRId64 " is revoked", id);
        rc = -EKEYREVOKED;
    }
    PQclear(res);
    return rc;
}

int import_store_begin(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res;
    int rc = 0;

    if (db_exec(conn,
                "SET lock_timeout = '" IMPORT_LOCK_TIMEOUT "';"
                " SET statement_timeout = '" IMPORT_STATEMENT_TIMEOUT "';"
                " SET synchronous_commit = on;"
                /* Planned with each batch's arrays, the planner knows how many rows they
                 * hold; a generic plan guesses 10 and joins them in nested loops. */
                " SET plan_cache_mode = force_custom_plan;"
                " CREATE TEMPORARY TABLE import_seen (key text COLLATE \"C\" PRIMARY KEY,"
                " line bigint NOT NULL)",
                err, errlen) < 0)
        return -EIO;
    res = PQprepare(conn, STMT, BATCH_SQL, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_error(conn, err, errlen);
        rc = -EIO;
    }
    PQclear(res);
    return rc;
}

/* A growing text buffer for the array literals of one batch. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Appends s as a quoted array element: only '"' and '\\' need escaping there. */
static void sb_element(struct sbuf *b, const char *s, bool first)
{
    const char *run = s;

    sb_put(b, first ? "\"" : ",\"", first ? 1 : 2);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            sb_put(b, run, (size_t)(s - run));
            sb_put(b, "\\", 1);
            run = s;
        }
    }
    sb_put(b, run, (size_t)(s - run));
    sb_put(b, "\"", 1);
}

static void sb_number(struct sbuf *b, long long v, bool null, bool first)
{
    char text[24];
    int n = null ? snprintf(text, sizeof(text), "NULL") : snprintf(text, sizeof(text), "%lld", v);
    if (!first)
        sb_put(b, ",", 1);
    sb_put(b, text, (size_t)n);
}

enum { P_LINE, P_KEY, P_URL, P_CREATED, P_EXPIRES, P_VISITS, P_TAGS, P_OWNER, P_COUNT };

int import_store_batch(PGconn *conn, const struct import_row *rows, size_t n, int64_t owner,
                       struct import_status *status, char *err, size_t errlen)
{
    struct sbuf b[P_OWNER] = {{0}};
    const char *params[P_COUNT];
    char owner_text[24];
    PGresult *res = NULL;
    int rc = -ENOMEM;

    if (n == 0)
        return 0;
    for (int p = 0; p < P_OWNER; p++)
        sb_put(&b[p], "{", 1);
    for (size_t i = 0; i < n; i++) {
        const struct import_row *r = &rows[i];
        bool first = i == 0;
        sb_number(&b[P_LINE], r->line, false, first);
        sb_element(&b[P_KEY], r->key, first);
        sb_element(&b[P_URL], r->url, first);
        sb_number(&b[P_CREATED], r->created_at, r->created_at == 0, first);
        sb_number(&b[P_EXPIRES], r->expires_at, r->expires_at == 0, first);
        sb_number(&b[P_VISITS], r->visits, false, first);
        sb_element(&b[P_TAGS], r->tags, first);
    }
    for (int p = 0; p < P_OWNER; p++) {
        sb_put(&b[p], "}", 1);
        if (b[p].failed) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        params[p] = b[p].p;
    }
    snprintf(owner_text, sizeof(owner_text), "%" PRId64, owner);
    params[P_OWNER] = owner > 0 ? owner_text : NULL;

    res = PQexecPrepared(conn, STMT, P_COUNT, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = db_result_error(conn, res, err, errlen) == -EAGAIN ? -EAGAIN : -EIO;
        goto out;
    }
    if ((size_t)PQntuples(res) != n) {
        snprintf(err, errlen, "the batch statement answered %d rows for %zu lines", PQntuples(res),
                 n);
        rc = -EIO;
        goto out;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        size_t i = (size_t)strtoull(PQgetvalue(res, row, 0), NULL, 10) - 1;
        const char *what = PQgetvalue(res, row, 1);
        if (i >= n) {
            snprintf(err, errlen, "the batch statement answered an unknown row");
            rc = -EIO;
            goto out;
        }
        status[i].first_line = strtoll(PQgetvalue(res, row, 2), NULL, 10);
        switch (what[0]) {
        case 'i':
            status[i].outcome = IMPORT_IMPORTED;
            break;
        case 'd':
            status[i].outcome = IMPORT_DUPLICATE;
            break;
        case 'e':
            status[i].outcome = IMPORT_EXISTS;
            break;
        case 't':
            status[i].outcome = IMPORT_TAKEN;
            break;
        default:
            status[i].outcome = IMPORT_USED;
            break;
        }
    }
    rc = 0;
out:
    PQclear(res);
    for (int p = 0; p < P_OWNER; p++)
        free(b[p].p);
    return rc;
}
