/* PostgreSQL access for the API server: prepared statements on one connection per thread. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"

/* Statements run by the server: prepared once per connection, right after it opens. */
enum stmt { ST_PING, ST_LOOKUP, ST_INSERT_MANY, ST_GET, ST_DELETE, ST_AUTH, ST_VISITS, ST_COUNT };

static const struct {
    const char *name;
    const char *sql;
} statements[ST_COUNT] = {
    [ST_PING] = {"ping", "SELECT 1"},
    [ST_LOOKUP] = {"lookup", STORE_LOOKUP_REDIRECT_SQL},
    /* A batch of links in one statement, so in one commit. Each key is registered for good
     * in the same statement: a key with no row back was given to a link before, live or
     * not, and is never handed out again. DISTINCT ON keeps the first of two equal keys in
     * one batch (the second then finds the key taken) instead of failing them all. */
    [ST_INSERT_MANY] = {"insert_many",
                        "WITH input AS (SELECT DISTINCT ON (key) key, url, owner, exp"
                        " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[])"
                        " WITH ORDINALITY AS t(key, url, owner, exp, ord) ORDER BY key, ord),"
                        " reg AS (INSERT INTO link_keys (key) SELECT key FROM input"
                        " ON CONFLICT DO NOTHING RETURNING key)"
                        " INSERT INTO urls (key, url, owner_id, expires_at)"
                        " SELECT i.key, i.url, i.owner, to_timestamp(i.exp)"
                        " FROM input i JOIN reg ON reg.key = i.key"
                        " RETURNING key, floor(extract(epoch FROM created_at))::bigint"},
    [ST_GET] = {"get", "SELECT url, floor(extract(epoch FROM created_at))::bigint,"
                       " COALESCE(floor(extract(epoch FROM expires_at))::bigint, 0), visits"
                       " FROM urls WHERE key = $1 AND ($2::bigint IS NULL OR owner_id = $2)"
                       " AND (expires_at IS NULL OR expires_at > now())"},
    [ST_DELETE] = {"delete", "DELETE FROM urls WHERE key = $1"
                             " AND ($2::bigint IS NULL OR owner_id = $2)"
                             " RETURNING expires_at IS NULL OR expires_at > now()"},
    /* last_used_at is written at most once a minute per key: a write per request would
     * turn every authenticated call into a commit. */
    [ST_AUTH] = {"auth", "WITH k AS (SELECT id, key_hash, rate_limit, rate_window, burst,"
                         " is_admin, last_used_at"
                         " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL),"
                         " u AS (UPDATE api_keys a SET last_used_at = now() FROM k"
                         " WHERE a.id = k.id AND (k.last_used_at IS NULL"
                         " OR k.last_used_at < now() - interval '60 seconds'))"
                         " SELECT id, key_hash, rate_limit, rate_window, burst, is_admin FROM k"},
    [ST_VISITS] = {"visits", "UPDATE urls u SET visits = u.visits + v.n"
                             " FROM unnest($1::text[], $2::bigint[]) AS v(k, n)"
                             " WHERE u.key = v.k"},
};

struct store {
    char *conninfo;
    char *application_name;
    PGconn *conn;
    time_t retry_at; /* no reconnect attempt before this while PostgreSQL is down */
    char error[256];
};

struct store *store_new(const char *conninfo, const char *application_name)
{
    struct store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->conninfo = strdup(conninfo);
    st->application_name = strdup(application_name);
    if (!st->conninfo || !st->application_name) {
        store_free(st);
        return NULL;
    }
    return st;
}

void store_free(struct store *st)
{
    if (!st)
        return;
    PQfinish(st->conn);
    free(st->conninfo);
    free(st->application_name);
    free(st);
}

const char *store_error(const struct store *st)
{
    return st->error[0] ? st->error : "unknown error";
}

static void disconnect(struct store *st)
{
    PQfinish(st->conn);
    st->conn = NULL;
    st->retry_at = time(NULL) + 1;
}

static int connect_and_prepare(struct store *st)
{
    PGresult *res;

    if (st->conn)
        return 0;
    if (time(NULL) < st->retry_at)
        return -EAGAIN;
    st->conn = db_connect(st->conninfo, st->application_name, 5000, st->error, sizeof(st->error));
    if (!st->conn) {
        log_warn("postgres: cannot connect: %s", st->error);
        st->retry_at = time(NULL) + 1;
        return -EAGAIN;
    }
    /* A create is acknowledged once its commit returns: it must be on disk by then, whatever
     * the server's or role's default. */
    if (db_exec(st->conn, "SET synchronous_commit = on", st->error, sizeof(st->error)) < 0) {
        log_error("postgres: %s", st->error);
        disconnect(st);
        return -EAGAIN;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        res = PQprepare(st->conn, statements[i].name, statements[i].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            db_error(st->conn, st->error, sizeof(st->error));
            log_error("postgres: cannot prepare %s: %s", statements[i].name, st->error);
            PQclear(res);
            disconnect(st);
            return -EAGAIN;
        }
        PQclear(res);
    }
    return 0;
}

/* Runs a prepared statement. A connection found broken is reopened and, for statements that
 * change nothing, the statement retried once: PostgreSQL restarts then cost no failed
 * request. Writes are not retried, since the first attempt may have committed. */
static int run(struct store *st, enum stmt s, int nparams, const char *const *params,
               ExecStatusType want, PGresult **out)
{
    bool retry = s == ST_PING || s == ST_LOOKUP || s == ST_GET || s == ST_AUTH;
    int rc;

    for (int attempt = 0;; attempt++) {
        rc = connect_and_prepare(st);
        if (rc < 0)
            return rc;
        PGresult *res =
            PQexecPrepared(st->conn, statements[s].name, nparams, params, NULL, NULL, 0);
        if (PQresultStatus(res) == want) {
            *out = res;
            return 0;
        }
        db_error(st->conn, st->error, sizeof(st->error));
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        bool unique = state && strcmp(state, "23505") == 0;
        /* Class 08 (connection exception) and 57P (shutdown, crash recovery) mean the server
         * went away even if libpq has not noticed yet. */
        bool gone = state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
        PQclear(res);
        if (unique)
            return -EEXIST;
        if (gone || PQstatus(st->conn) != CONNECTION_OK) {
            log_warn("postgres: connection lost: %s", st->error);
            disconnect(st);
            if (retry && attempt == 0) {
                st->retry_at = 0;
                continue;
            }
            return -EAGAIN;
        }
        log_error("postgres: %s failed: %s", statements[s].name, st->error);
        return -EIO;
    }
}

int store_ping(struct store *st)
{
    PGresult *res;
    int rc = run(st, ST_PING, 0, NULL, PGRES_TUPLES_OK, &res);
    if (rc == 0)
        PQclear(res);
    return rc;
}

static int64_t int_at(PGresult *res, int col)
{
    return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

int store_lookup_redirect(struct store *st, const char *key, char **url, int64_t *expires_at,
                          int64_t *remaining)
{
    PGresult *res;
    const char *params[1] = {key};
    int rc = run(st, ST_LOOKUP, 1, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    if (PQntuples(res) != 1) {
        rc = -ENOENT;
        goto out;
    }
    *url = strdup(PQgetvalue(res, 0, 0));
    if (!*url) {
        rc = -ENOMEM;
        goto out;
    }
    *expires_at = int_at(res, 1);
    *remaining = int_at(res, 2);
out:
    PQclear(res);
    return rc;
}

/* The text of an owner id for a statement parameter; NULL (SQL NULL: no owner, or any owner
 * in a filter) for 0. */
static const char *owner_param(int64_t owner, char buf[24])
{
    if (owner <= 0)
        return NULL;
    snprintf(buf, 24, "%" PRId64, owner);
    return buf;
}

void link_release(struct link *l)
{
    free(l->url);
    l->url = NULL;
}

/* Appends s to an array literal as a quoted element: only '"' and '\\' need escaping there. */
static char *put_element(char *p, const char *s)
{
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    *p++ = ',';
    return p;
}

/* Room per number: 20 digits and a sign, or NULL, and a comma. */
#define NUMBER_ROOM 22

static char *put_number(char *p, int64_t v, bool null)
{
    p += null ? snprintf(p, NUMBER_ROOM, "NULL") : snprintf(p, NUMBER_ROOM, "%" PRId64, v);
    *p++ = ',';
    return p;
}

static void close_array(char *p)
{
    if (p[-1] == ',')
        p--;
    *p++ = '}';
    *p = '\0';
}

int store_insert_links(struct store *st, struct link_insert *links, size_t n)
{
    size_t keys_len = 2, urls_len = 2, nums_len = 2 + n * NUMBER_ROOM;
    char *keys = NULL, *urls = NULL, *owners = NULL, *expiries = NULL, *p;
    PGresult *res = NULL;
    int rc = -ENOMEM;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        keys_len += 2 * strlen(links[i].key) + 3;
        urls_len += 2 * strlen(links[i].url) + 3;
        links[i].rc = -EEXIST;
        links[i].created_at = 0;
    }
    keys = malloc(keys_len);
    urls = malloc(urls_len);
    owners = malloc(nums_len);
    expiries = malloc(nums_len);
    if (!keys || !urls || !owners || !expiries)
        goto out;
    keys[0] = urls[0] = owners[0] = expiries[0] = '{';
    p = keys + 1;
    for (size_t i = 0; i < n; i++)
        p = put_element(p, links[i].key);
    close_array(p);
    p = urls + 1;
    for (size_t i = 0; i < n; i++)
        p = put_element(p, links[i].url);
    close_array(p);
    p = owners + 1;
    for (size_t i = 0; i < n; i++)
        p = put_number(p, links[i].owner, links[i].owner <= 0);
    close_array(p);
    p = expiries + 1;
    for (size_t i = 0; i < n; i++)
        p = put_number(p, links[i].expires_at, links[i].expires_at <= 0);
    close_array(p);

    const char *params[4] = {keys, urls, owners, expiries};
    rc = run(st, ST_INSERT_MANY, 4, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        goto out;
    /* Rows come back in no particular order; batches are small, so match them directly. */
    for (int row = 0; row < PQntuples(res); row++) {
        const char *key = PQgetvalue(res, row, 0);
        for (size_t i = 0; i < n; i++)
            if (links[i].rc == -EEXIST && strcmp(links[i].key, key) == 0) {
                links[i].rc = 0;
                links[i].created_at = strtoll(PQgetvalue(res, row, 1), NULL, 10);
                break;
            }
    }
out:
    PQclear(res);
    free(keys);
    free(urls);
    free(owners);
    free(expiries);
    return rc;
}

int store_get_link(struct store *st, const char *key, int64_t owner, struct link *out)
{
    PGresult *res;
    char owner_text[24];
    const char *params[2] = {key, NULL};
    int rc;

    params[1] = owner_param(owner, owner_text);
    rc = run(st, ST_GET, 2, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    if (PQntuples(res) != 1) {
        rc = -ENOENT;
        goto out;
    }
    out->url = strdup(PQgetvalue(res, 0, 0));
    if (!out->url) {
        rc = -ENOMEM;
        goto out;
    }
    out->created_at = int_at(res, 1);
    out->expires_at = int_at(res, 2);
    out->visits = int_at(res, 3);
out:
    PQclear(res);
    return rc;
}

int store_delete_link(struct store *st, const char *key, int64_t owner)
{
    PGresult *res;
    char owner_text[24];
    const char *params[2] = {key, NULL};
    int rc;

    params[1] = owner_param(owner, owner_text);
    rc = run(st, ST_DELETE, 2, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    /* Deleting an expired link is allowed but looks, as reading it does, like not found. */
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0)
        rc = -ENOENT;
    PQclear(res);
    return rc;
}

int store_authenticate(struct store *st, const unsigned char hash[APIKEY_HASH_LEN],
                       struct apikey_info *out)
{
    PGresult *res;
    char hex[2 + APIKEY_HASH_LEN * 2 + 1] = "\\x";
    const char *params[1] = {hex};
    int rc;

    sodium_bin2hex(hex + 2, sizeof(hex) - 2, hash, APIKEY_HASH_LEN);
    rc = run(st, ST_AUTH, 1, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    /* The index finds the row; the comparison that decides is constant-time anyway. */
    if (PQntuples(res) != 1 || PQgetlength(res, 0, 1) != (int)strlen(hex) ||
        sodium_memcmp(PQgetvalue(res, 0, 1), hex, strlen(hex)) != 0) {
        rc = -ENOENT;
        goto out;
    }
    out->id = int_at(res, 0);
    out->rate_limit = (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
    out->rate_window = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
    out->burst = (int)strtol(PQgetvalue(res, 0, 4), NULL, 10);
    out->is_admin = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
out:
    PQclear(res);
    return rc;
}

int store_add_visits(struct store *st, const char *const *keys, const int64_t *counts, size_t n)
{
    PGresult *res = NULL;
    /* Keys are [0-9A-Za-z_-] only, so quoting each element is all an array literal needs
     * (quoted, so that an alias spelt "NULL" stays a string). */
    size_t klen = 3, nlen = 3;
    char *karr = NULL, *narr = NULL;
    int rc = -ENOMEM;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        klen += strlen(keys[i]) + 3;
        nlen += 21;
    }
    karr = malloc(klen);
    narr = malloc(nlen);
    if (!karr || !narr)
        goto out;
    size_t ko = 1, no = 1;
    karr[0] = '{';
    narr[0] = '{';
    for (size_t i = 0; i < n; i++) {
        ko += (size_t)snprintf(karr + ko, klen - ko, "%s\"%s\"", i ? "," : "", keys[i]);
        no += (size_t)snprintf(narr + no, nlen - no, "%s%" PRId64, i ? "," : "", counts[i]);
    }
    snprintf(karr + ko, klen - ko, "}");
    snprintf(narr + no, nlen - no, "}");
    const char *params[2] = {karr, narr};
    rc = run(st, ST_VISITS, 2, params, PGRES_COMMAND_OK, &res);
    if (rc == 0)
        PQclear(res);
out:
    free(karr);
    free(narr);
    return rc;
}
