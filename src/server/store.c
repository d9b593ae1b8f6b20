/* PostgreSQL access for the API server: prepared statements on one connection per thread. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "deadline.h"
#include "log.h"
#include "request.h"
#include "statsrecent.h"

/* Statements run by the server: prepared once per connection, right after it opens. */
enum stmt {
    ST_PING,
    ST_LOOKUP,
    ST_LOOKUP_REPLICA,
    ST_INSERT_MANY,
    ST_GET,
    ST_PASSWORD,
    ST_LIST,
    ST_UPDATE,
    ST_DELETE,
    ST_CHANGES,
    ST_VISITS,
    ST_IDEM_RESERVE,
    ST_IDEM_TAKEOVER,
    ST_IDEM_FIND,
    ST_IDEM_RELEASE,
    ST_STATS_ADD,
    ST_STATS_ROLL,
    ST_UNKNOWN_ADD,
    ST_STATS_LINK,
    ST_STATS_TOP,
    ST_STATS_SERIES,
    ST_STATS_RECENT,
    ST_COUNT
};

/* An edit's bits are enum request_field's (request.h), as ST_UPDATE reads them. */
_Static_assert(FIELD_URL == 0 && FIELD_EXPIRES_AT == 2 && FIELD_TTL == 3 &&
                   FIELD_REDIRECT_STATUS == 4 && FIELD_MAX_VISITS == 5 && FIELD_VALID_FROM == 6 &&
                   FIELD_PASSWORD == 7 && FIELD_TAGS == 8 && FIELD_PUBLIC_STATS == 9,
               "ST_UPDATE's masks follow enum request_field");

/* A link as struct link reads it (read_link): the same columns in every statement. */
#define LINK_COLUMNS                                                                               \
    "key, url, (extract(epoch FROM created_at) * 1000000)::bigint,"                                \
    " COALESCE(floor(extract(epoch FROM expires_at))::bigint, 0),"                                 \
    " COALESCE(floor(extract(epoch FROM valid_from))::bigint, 0), COALESCE(max_visits, 0),"        \
    " COALESCE(redirect_status, 0), public_stats, password_hash IS NOT NULL,"                      \
    " array_to_string(tags, ','), " VISITSQL_LINK_VISITS
#define LIVE "(expires_at IS NULL OR expires_at > now())"
/* The advisory lock of a stats roll statement (shortenerctl migrate's is ...0001). */
#define STATS_ROLL_LOCK "7283512390002"

static const struct {
    const char *name;
    const char *sql;
} statements[ST_COUNT] = {
    [ST_PING] = {"ping", "SELECT 1"},
    [ST_LOOKUP] = {"lookup", STORE_LOOKUP_REDIRECT_SQL},
    /* The same on a replica, with how long ago (ms) the last transaction it replayed
     * committed: -1 when it replayed none since it started; 0 when it is no replica at all
     * (then it is the primary, and its answer is the truth). */
    [ST_LOOKUP_REPLICA] =
        {"lookup_replica",
         "SELECT url, COALESCE(floor(extract(epoch FROM expires_at))::bigint, 0),"
         " COALESCE(floor(extract(epoch FROM expires_at - now()))::bigint, -1),"
         " COALESCE(floor(extract(epoch FROM valid_from))::bigint, 0),"
         " COALESCE(max_visits, 0), COALESCE(redirect_status, 0),"
         " password_hash IS NOT NULL, " VISITSQL_LIMITED_VISITS ","
         " CASE WHEN pg_is_in_recovery() THEN COALESCE(floor(extract(epoch"
         " FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)"
         "::bigint, -1) ELSE 0 END"
         " FROM urls WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())"},
    /* A batch of links in one statement, so in one commit. Each key is registered for good
     * in the same statement: a key with no row back was given to a link before, live or
     * not, and is never handed out again. DISTINCT ON keeps the first of two equal keys in
     * one batch (the second then finds the key taken) instead of failing them all. An
     * idempotent create's reservation gets its answer in the same statement. */
    [ST_INSERT_MANY] =
        {"insert_many",
         "WITH input AS (SELECT DISTINCT ON (key) * FROM unnest($1::text[], $2::text[],"
         " $3::bigint[], $4::float8[], $5::float8[], $6::bigint[], $7::smallint[], $8::text[],"
         " $9::text[], $10::bool[], $11::bigint[], $12::text[], $13::text[])"
         " WITH ORDINALITY AS t(key, url, owner, exp, vf, mv, rs, pw, tags, ps, cus, ik, resp, ord)"
         " ORDER BY key, ord),"
         " reg AS (INSERT INTO link_keys (key) SELECT key FROM input"
         " ON CONFLICT DO NOTHING RETURNING key),"
         " ins AS (INSERT INTO urls (key, url, owner_id, expires_at, valid_from, max_visits,"
         " redirect_status, password_hash, tags, public_stats, created_at)"
         " SELECT i.key, i.url, i.owner, to_timestamp(i.exp), to_timestamp(i.vf), i.mv, i.rs,"
         " i.pw, string_to_array(i.tags, ','), i.ps, to_timestamp(i.cus / 1000000.0)"
         " FROM input i JOIN reg ON reg.key = i.key RETURNING key),"
         " done AS (UPDATE idempotency_keys k SET status = 201, link_key = i.key,"
         " response = i.resp FROM input i JOIN ins ON ins.key = i.key"
         " WHERE i.ik IS NOT NULL AND k.owner_id = COALESCE(i.owner, 0) AND k.idem_key = i.ik)"
         " SELECT key FROM ins"},
    [ST_GET] = {"get", "SELECT " LINK_COLUMNS " FROM urls WHERE key = $1"
                       " AND ($2::bigint IS NULL OR owner_id = $2) AND " LIVE},
    [ST_PASSWORD] = {"password", "SELECT password_hash FROM urls WHERE key = $1 AND " LIVE
                                 " AND password_hash IS NOT NULL"},
    /* Newest first by the keyset (created_at, key), which urls_owner_created_idx serves:
     * a page starts right after the last one, whatever was created or deleted meanwhile. */
    [ST_LIST] = {"list", "SELECT " LINK_COLUMNS " FROM urls WHERE owner_id = $1 AND " LIVE
                         " AND ($2::text IS NULL OR tags @> ARRAY[$2::text])"
                         " AND ($3::text IS NULL OR strpos(lower(key), lower($3)) > 0"
                         " OR strpos(lower(url), lower($3)) > 0)"
                         " AND ($5::text IS NULL OR (created_at, key) <"
                         " (to_timestamp($4::bigint / 1000000.0), $5::text))"
                         " ORDER BY created_at DESC, key DESC LIMIT $6"},
    /* $3 is a bit set of the fields to change (enum request_field); each then takes its
     * parameter, NULL clearing it. */
    /* Every edit and delete is journalled in link_changes by its own statement (so in its
     * commit): what a Redis outage may have left stale is read from there (store_changes). */
    [ST_UPDATE] = {"update",
                   "WITH u AS (UPDATE urls SET"
                   " url = CASE WHEN $3::int & 1 <> 0 THEN $4 ELSE url END,"
                   " expires_at = CASE WHEN $3::int & 12 <> 0 THEN to_timestamp($5::float8)"
                   " ELSE expires_at END,"
                   " redirect_status = CASE WHEN $3::int & 16 <> 0 THEN $6::smallint"
                   " ELSE redirect_status END,"
                   " max_visits = CASE WHEN $3::int & 32 <> 0 THEN $7::bigint ELSE max_visits END,"
                   " valid_from = CASE WHEN $3::int & 64 <> 0 THEN to_timestamp($8::float8)"
                   " ELSE valid_from END,"
                   " password_hash = CASE WHEN $3::int & 128 <> 0 THEN $9 ELSE password_hash END,"
                   " tags = CASE WHEN $3::int & 256 <> 0 THEN string_to_array($10, ',')"
                   " ELSE tags END,"
                   " public_stats = CASE WHEN $3::int & 512 <> 0 THEN $11::bool"
                   " ELSE public_stats END,"
                   " updated_at = now()"
                   " WHERE key = $1 AND ($2::bigint IS NULL OR owner_id = $2) AND " LIVE
                   " RETURNING " LINK_COLUMNS "),"
                   " j AS (INSERT INTO link_changes (key) SELECT key FROM u)"
                   " SELECT * FROM u"},
    [ST_DELETE] = {"delete", "WITH d AS (DELETE FROM urls WHERE key = $1"
                             " AND ($2::bigint IS NULL OR owner_id = $2)"
                             " RETURNING key, " LIVE " AS live),"
                             " j AS (INSERT INTO link_changes (key) SELECT key FROM d)"
                             " SELECT live FROM d"},
    [ST_CHANGES] = {"changes", "SELECT id, key FROM link_changes"
                               " WHERE changed_at > now() - make_interval(secs => $1::float8)"
                               " AND id > $2 ORDER BY id LIMIT $3"},
    /* Two servers adding to overlapping links must lock the rows in one order, or they
     * deadlock: l locks them in key order (keys are COLLATE "C", the order the callers sort
     * in), and the update reaches a row only through l, so after l has locked it (EXPLAIN
     * shows l read whole first, or as the join's outer side); MATERIALIZED keeps the planner
     * from folding it into the update's join, which locks in whatever order the join yields. */
    [ST_VISITS] = {"visits", "WITH v AS (SELECT k, n FROM unnest($1::text[], $2::bigint[])"
                             " AS v(k, n)),"
                             " l AS MATERIALIZED (SELECT u.key FROM urls u JOIN v ON u.key = v.k"
                             " ORDER BY u.key FOR NO KEY UPDATE OF u)"
                             " UPDATE urls u SET visits = u.visits + v.n"
                             " FROM v JOIN l ON l.key = v.k WHERE u.key = v.k"},
    [ST_IDEM_RESERVE] = {"idem_reserve",
                         "INSERT INTO idempotency_keys (owner_id, idem_key, body_hash)"
                         " VALUES ($1, $2, $3::bytea) ON CONFLICT DO NOTHING RETURNING 1"},
    /* A reservation whose create never finished (its server died) is taken over after a
     * minute, which is far longer than any create is parked. */
    [ST_IDEM_TAKEOVER] = {"idem_takeover",
                          "UPDATE idempotency_keys SET body_hash = $3::bytea, created_at = now()"
                          " WHERE owner_id = $1 AND idem_key = $2 AND status = 0"
                          " AND created_at < now() - interval '1 minute' RETURNING 1"},
    [ST_IDEM_FIND] = {"idem_find", "SELECT body_hash, status, response, link_key"
                                   " FROM idempotency_keys WHERE owner_id = $1 AND idem_key = $2"},
    [ST_IDEM_RELEASE] = {"idem_release", "DELETE FROM idempotency_keys"
                                         " WHERE owner_id = $1 AND idem_key = $2 AND status = 0"},
    /* One flush of visit sums per profile: the rows come distinct and sorted (analytics.c).
     * They stay in visit_recent until ST_STATS_ROLL moves their hour on
     * (migrations/0014_stats_recent.sql); a profile is its six values joined by chr(31)
     * (0016_stats_profile_text.sql). */
    [ST_STATS_ADD] = {"stats_add",
                      "INSERT INTO visit_recent AS t (key, hour, profile, visits, uncounted)"
                      " SELECT key, to_timestamp(h), p, n, u"
                      " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[],"
                      " $5::bigint[]) AS v(key, h, p, n, u)"
                      " ON CONFLICT (key, hour, profile) DO UPDATE"
                      " SET visits = t.visits + EXCLUDED.visits,"
                      " uncounted = t.uncounted + EXCLUDED.uncounted"},
    /* Moves up to $2 recent rows of hours before $1 (epoch seconds), of keys from $3 on, into
     * the sums per dimension value of their hour, day and block, and their uncounted visits
     * into urls.visits (locked in key order, as ST_VISITS locks them), in one statement. A row a
     * flush is writing just now is skipped (SKIP LOCKED), so this never waits on a flush; a
     * flush that comes after finds the row gone and makes a new one, moved by a later roll. The
     * sums are locked in key order, as the flushes lock theirs. Answers how many rows it took
     * and the last key.
     *
     * The rows are taken in key order, so that a statement holds whole links: a link's profiles
     * share most of their values, and its hour becomes a few sums per dimension instead of one
     * upsert per profile and value. Taken as they lay (flush order, every row another link's),
     * an hour of 1.8 M rows over 100,000 links rolled at 3,200 rows per CPU-second; in key
     * order, at 17,000. Starting each statement where the last one ended ($3) keeps the
     * index scan off the rows it has just deleted.
     *
     * One server rolls at a time (the advisory lock, taken for the statement; answered in the
     * third column): the others would wait on the same links' sums, which the rows they skip
     * share with the rows they take, and each would walk the rows the others just deleted.
     * Two servers rolling a bloated table together ran into the statement timeout, again and
     * again. */
    [ST_STATS_ROLL] =
        {"stats_roll",
         "WITH lk AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(" STATS_ROLL_LOCK ") AS got),"
         " c AS MATERIALIZED (DELETE FROM visit_recent WHERE (SELECT got FROM lk)"
         " AND ctid = ANY(ARRAY("
         "SELECT ctid FROM visit_recent WHERE hour < to_timestamp($1::float8) AND key >= $3"
         " ORDER BY key LIMIT $2 FOR UPDATE SKIP LOCKED))"
         " RETURNING key, hour, profile, visits, uncounted),"
         " r AS (SELECT key, extract(epoch FROM hour)::bigint AS h, 0::smallint AS dim,"
         " ''::text COLLATE \"C\" AS value, visits AS n FROM c"
         " UNION ALL SELECT key, extract(epoch FROM hour)::bigint, d::smallint, v,"
         " visits FROM c, unnest(string_to_array(c.profile, chr(31))) WITH ORDINALITY AS u(v, d)),"
         " hours AS (INSERT INTO visit_hours AS t (key, dim, hour, value, visits)"
         " SELECT key, dim, to_timestamp(h), value, sum(n) FROM r"
         " GROUP BY key, dim, h, value ORDER BY 1, 2, 3, 4"
         " ON CONFLICT (key, dim, hour, value)"
         " DO UPDATE SET visits = t.visits + EXCLUDED.visits),"
         " days AS (INSERT INTO visit_days AS t (key, dim, day, value, visits)"
         " SELECT key, dim, to_timestamp(h - h % 86400), value, sum(n) FROM r"
         " GROUP BY key, dim, h - h % 86400, value ORDER BY 1, 2, 3, 4"
         " ON CONFLICT (key, dim, day, value)"
         " DO UPDATE SET visits = t.visits + EXCLUDED.visits),"
         " blocks AS (INSERT INTO visit_blocks AS t (key, dim, block, value, visits)"
         " SELECT key, dim, to_timestamp(h - h % 1382400), value, sum(n) FROM r"
         " WHERE dim > 0 GROUP BY key, dim, h - h % 1382400, value"
         " ORDER BY 1, 2, 3, 4 ON CONFLICT (key, dim, block, value)"
         " DO UPDATE SET visits = t.visits + EXCLUDED.visits)," VISITSQL_COUNT_DELETED
         " SELECT count(*), COALESCE(max(key), ''), (SELECT got FROM lk) FROM c"},
    /* Days are counted since 1970-01-01. A key gets a row only while its day has fewer than
     * 1000 (judged before this statement: a flush adds at most the 100 it sends), or has one
     * already; every visit counts in the day's total. */
    [ST_UNKNOWN_ADD] =
        {"unknown_add",
         "WITH d AS (INSERT INTO unknown_key_days AS t (day, visits)"
         " SELECT date '1970-01-01' + d::int, n"
         " FROM unnest($1::bigint[], $2::bigint[]) AS v(d, n)"
         " ON CONFLICT (day) DO UPDATE SET visits = t.visits + EXCLUDED.visits)"
         " INSERT INTO unknown_keys AS t (day, key, visits)"
         " SELECT v.day, v.key, v.n FROM (SELECT date '1970-01-01' + d::int AS day,"
         " k AS key, n FROM unnest($3::bigint[], $4::text[], $5::bigint[])"
         " AS u(d, k, n)) v"
         " WHERE EXISTS (SELECT 1 FROM unknown_keys u"
         " WHERE u.day = v.day AND u.key = v.key)"
         " OR (SELECT count(*) FROM unknown_keys u WHERE u.day = v.day) < 1000"
         " ON CONFLICT (day, key) DO UPDATE SET visits = t.visits + EXCLUDED.visits"},
    [ST_STATS_LINK] = {"stats_link", "SELECT COALESCE(owner_id, 0), public_stats FROM urls"
                                     " WHERE key = $1 AND " LIVE},
    /* $2..$7: first hour, last hour, first whole day, end of the whole days, first whole
     * block, end of the whole blocks (epoch seconds, statsquery.h): blocks, then days outside
     * them, then hours outside those. Each dimension's 10 largest values (the bot dimension
     * has two), and the values $8, $9 (dimensions and values) have recent rows for
     * (ST_STATS_RECENT), which the server adds to these (statsrecent.h). */
    [ST_STATS_TOP] =
        {"stats_top",
         "SELECT dim, value, n FROM (SELECT dim, value, sum(visits)::bigint AS n,"
         " row_number() OVER (PARTITION BY dim ORDER BY sum(visits) DESC, value)"
         " AS rank FROM ("
         "SELECT dim, value, visits FROM visit_blocks WHERE key = $1"
         " AND dim = ANY('{1,2,3,4,5,6}'::smallint[])"
         " AND block >= to_timestamp($6::float8) AND block < to_timestamp($7::float8)"
         " UNION ALL SELECT dim, value, visits FROM visit_days WHERE key = $1"
         " AND dim = ANY('{1,2,3,4,5,6}'::smallint[])"
         " AND day >= to_timestamp($4::float8) AND day < to_timestamp($6::float8)"
         " UNION ALL SELECT dim, value, visits FROM visit_days WHERE key = $1"
         " AND dim = ANY('{1,2,3,4,5,6}'::smallint[])"
         " AND day >= to_timestamp($7::float8) AND day < to_timestamp($5::float8)"
         " UNION ALL SELECT dim, value, visits FROM visit_hours WHERE key = $1"
         " AND dim = ANY('{1,2,3,4,5,6}'::smallint[])"
         " AND hour >= to_timestamp($2::float8) AND hour < to_timestamp($4::float8)"
         " UNION ALL SELECT dim, value, visits FROM visit_hours WHERE key = $1"
         " AND dim = ANY('{1,2,3,4,5,6}'::smallint[])"
         " AND hour >= to_timestamp($5::float8) AND hour <= to_timestamp($3::float8)"
         ") r GROUP BY dim, value) x WHERE rank <= 10"
         " OR (dim, value) IN (SELECT d, v FROM unnest($8::smallint[], $9::text[]) AS f(d, v))"},
    /* The total's rows (dimension 0, one per hour or day) by their time, for the series (the
     * recent rows of the hours are added by the server: ST_STATS_RECENT). */
    [ST_STATS_SERIES] =
        {"stats_series",
         "SELECT extract(epoch FROM day)::bigint, visits FROM visit_days"
         " WHERE key = $1 AND dim = 0"
         " AND day >= to_timestamp($4::float8) AND day < to_timestamp($5::float8)"
         " UNION ALL SELECT extract(epoch FROM hour)::bigint, visits FROM visit_hours"
         " WHERE key = $1 AND dim = 0"
         " AND hour >= to_timestamp($2::float8) AND hour < to_timestamp($4::float8)"
         " UNION ALL SELECT extract(epoch FROM hour)::bigint, visits FROM visit_hours"
         " WHERE key = $1 AND dim = 0"
         " AND hour >= to_timestamp($5::float8) AND hour <= to_timestamp($3::float8)"},
    /* The recent rows of the hours $2..$3 (not yet rolled: ST_STATS_ROLL), one per visitor
     * profile, for the top lists and the series (statsrecent.h). */
    [ST_STATS_RECENT] =
        {"stats_recent",
         "SELECT extract(epoch FROM hour)::bigint, profile, visits FROM visit_recent"
         " WHERE key = $1"
         " AND hour >= to_timestamp($2::float8) AND hour <= to_timestamp($3::float8)"},
};

struct store {
    char *conninfo;
    char *application_name;
    const char *what; /* in log lines: "postgres" or "postgres replica" */
    bool replica;     /* a read replica: prepares only what a redirect reads there */
    PGconn *conn;
    time_t retry_at;   /* no reconnect attempt before this while PostgreSQL is down */
    long long used_at; /* monotonic ms of the last statement that succeeded */
    char error[256];
};

/* A write is not retried (it may have committed), so a connection idle this long is pinged
 * first: one that PostgreSQL closed meanwhile (a restart, a failover) is then reopened by the
 * ping, which may be retried, instead of failing the write. Under load the writes come far
 * more often, and nothing is pinged. */
#define WRITE_IDLE_PING_MS 1000

struct store *store_new(const char *conninfo, const char *application_name)
{
    struct store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->what = "postgres";
    st->conninfo = strdup(conninfo);
    st->application_name = strdup(application_name);
    if (!st->conninfo || !st->application_name) {
        store_free(st);
        return NULL;
    }
    return st;
}

struct store *store_new_replica(const char *conninfo, const char *application_name)
{
    struct store *st = store_new(conninfo, application_name);
    if (st) {
        st->replica = true;
        st->what = "postgres replica";
    }
    return st;
}

/* Whether a store of this kind prepares statement s. */
static bool prepared_on(const struct store *st, int s)
{
    if (st->replica)
        return s == ST_PING || s == ST_LOOKUP_REPLICA;
    return s != ST_LOOKUP_REPLICA;
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
        log_warn("%s: cannot connect: %s", st->what, st->error);
        st->retry_at = time(NULL) + 1;
        return -EAGAIN;
    }
    /* A create is acknowledged once its commit returns: it must be on disk by then, whatever
     * the server's or role's default. */
    /* Every statement here reads a few rows through an index (a year of stats is some
     * thousands): starting parallel workers would only add their start-up to each. A replica
     * takes no writes, so it has no commits to make durable. */
    if (db_exec(st->conn,
                st->replica
                    ? "SET max_parallel_workers_per_gather = 0"
                    : "SET synchronous_commit = on; SET max_parallel_workers_per_gather = 0",
                st->error, sizeof(st->error)) < 0) {
        log_error("postgres: %s", st->error);
        disconnect(st);
        return -EAGAIN;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (!prepared_on(st, i))
            continue;
        res = PQprepare(st->conn, statements[i].name, statements[i].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            db_error(st->conn, st->error, sizeof(st->error));
            log_error("%s: cannot prepare %s: %s", st->what, statements[i].name, st->error);
            PQclear(res);
            disconnect(st);
            return -EAGAIN;
        }
        PQclear(res);
    }
    /* API keys' own statement, which their module owns. */
    if (!st->replica && apikey_store_prepare(st->conn, st->error, sizeof(st->error)) < 0) {
        log_error("postgres: cannot prepare apikey_auth: %s", st->error);
        disconnect(st);
        return -EAGAIN;
    }
    return 0;
}

/* After a statement found the connection gone: drops it and says whether to try once more
 * on a new one, as statements that change nothing may (attempt counts from 0). */
static bool reconnect_for_retry(struct store *st, bool retry, int attempt)
{
    log_warn("%s: connection lost: %s", st->what, st->error);
    disconnect(st);
    if (!retry || attempt > 0)
        return false;
    st->retry_at = 0;
    return true;
}

/* Runs a prepared statement. A connection found broken is reopened and, for statements that
 * change nothing, the statement retried once: PostgreSQL restarts then cost no failed
 * request. Writes are not retried, since the first attempt may have committed. */
static int run(struct store *st, enum stmt s, int nparams, const char *const *params,
               ExecStatusType want, PGresult **out)
{
    bool retry = s == ST_PING || s == ST_LOOKUP || s == ST_LOOKUP_REPLICA || s == ST_CHANGES ||
                 s == ST_GET || s == ST_PASSWORD || s == ST_LIST || s == ST_IDEM_FIND ||
                 s == ST_STATS_LINK || s == ST_STATS_TOP || s == ST_STATS_SERIES ||
                 s == ST_STATS_RECENT;
    int rc;

    if (!retry && st->conn && deadline_now_ms() - st->used_at > WRITE_IDLE_PING_MS) {
        PGresult *ping;
        rc = run(st, ST_PING, 0, NULL, PGRES_TUPLES_OK, &ping);
        if (rc < 0)
            return rc;
        PQclear(ping);
    }
    for (int attempt = 0;; attempt++) {
        rc = connect_and_prepare(st);
        if (rc < 0)
            return rc;
        PGresult *res =
            PQexecPrepared(st->conn, statements[s].name, nparams, params, NULL, NULL, 0);
        if (PQresultStatus(res) == want) {
            st->used_at = deadline_now_ms();
            *out = res;
            return 0;
        }
        rc = db_result_error(st->conn, res, st->error, sizeof(st->error));
        PQclear(res);
        if (rc == -EEXIST || rc == -EINVAL)
            return rc;
        if (rc == -EAGAIN) {
            if (reconnect_for_retry(st, retry, attempt))
                continue;
            return -EAGAIN;
        }
        log_error("%s: %s failed: %s", st->what, statements[s].name, st->error);
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

static int64_t int_at(PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool bool_at(PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

/* Tags come as one comma-separated text: tags never contain commas. */
static void read_tags(const char *text, struct link_attrs *a)
{
    a->ntags = 0;
    while (*text && a->ntags < LINK_TAGS_MAX) {
        size_t len = strcspn(text, ",");
        if (len > 0 && len <= LINK_TAG_MAX_LEN) {
            memcpy(a->tags[a->ntags], text, len);
            a->tags[a->ntags++][len] = '\0';
        }
        text += len + (text[len] == ',');
    }
}

/* Reads LINK_COLUMNS of row into out. */
static int read_link(PGresult *res, int row, struct link *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->key, sizeof(out->key), "%s", PQgetvalue(res, row, 0));
    out->url = strdup(PQgetvalue(res, row, 1));
    if (!out->url)
        return -ENOMEM;
    out->created_us = int_at(res, row, 2);
    out->a.expires_at = int_at(res, row, 3);
    out->a.valid_from = int_at(res, row, 4);
    out->a.max_visits = int_at(res, row, 5);
    out->a.redirect_status = (int)int_at(res, row, 6);
    out->a.public_stats = bool_at(res, row, 7);
    out->a.password_protected = bool_at(res, row, 8);
    read_tags(PQgetvalue(res, row, 9), &out->a);
    out->visits = int_at(res, row, 10);
    return 0;
}

void link_release(struct link *l)
{
    free(l->url);
    l->url = NULL;
}

/* ST_LOOKUP or ST_LOOKUP_REPLICA; the latter's replay age goes to age_ms. */
static int lookup_redirect(struct store *st, enum stmt s, const char *key, struct redirect_row *out,
                           int64_t *age_ms)
{
    PGresult *res;
    const char *params[1] = {key};
    int rc = run(st, s, 1, params, PGRES_TUPLES_OK, &res);

    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) != 1) {
        rc = -ENOENT;
        goto out;
    }
    out->url = strdup(PQgetvalue(res, 0, 0));
    if (!out->url) {
        rc = -ENOMEM;
        goto out;
    }
    out->a.expires_at = int_at(res, 0, 1);
    out->remaining = int_at(res, 0, 2);
    out->a.valid_from = int_at(res, 0, 3);
    out->a.max_visits = int_at(res, 0, 4);
    out->a.redirect_status = (int)int_at(res, 0, 5);
    out->a.password_protected = bool_at(res, 0, 6);
    out->visits = int_at(res, 0, 7);
    if (age_ms)
        *age_ms = int_at(res, 0, 8);
out:
    PQclear(res);
    return rc;
}

int store_lookup_redirect(struct store *st, const char *key, struct redirect_row *out)
{
    return lookup_redirect(st, ST_LOOKUP, key, out, NULL);
}

int store_lookup_replica(struct store *st, const char *key, struct redirect_row *out,
                         int64_t *age_ms)
{
    return lookup_redirect(st, ST_LOOKUP_REPLICA, key, out, age_ms);
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

/* An array literal built up element by element, for unnest(). */
struct array_text {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void array_put_raw(struct array_text *a, const char *s, size_t n)
{
    if (a->failed)
        return;
    if (a->len + n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < a->len + n + 2)
            cap *= 2;
        char *p = realloc(a->buf, cap);
        if (!p) {
            a->failed = true;
            return;
        }
        a->buf = p;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, s, n);
    a->len += n;
    a->buf[a->len] = '\0';
}

static void array_begin(struct array_text *a)
{
    memset(a, 0, sizeof(*a));
    array_put_raw(a, "{", 1);
}

static void array_sep(struct array_text *a)
{
    if (a->len > 1)
        array_put_raw(a, ",", 1);
}

/* A quoted element (NULL: SQL NULL): only '"' and '\\' need escaping in one. */
static void array_text(struct array_text *a, const char *s)
{
    array_sep(a);
    if (!s) {
        array_put_raw(a, "NULL", 4);
        return;
    }
    array_put_raw(a, "\"", 1);
    for (; *s; s++) {
        size_t run = strcspn(s, "\"\\");
        array_put_raw(a, s, run);
        s += run;
        if (!*s)
            break;
        array_put_raw(a, "\\", 1);
        array_put_raw(a, s, 1);
    }
    array_put_raw(a, "\"", 1);
}

static void array_int(struct array_text *a, int64_t v, bool null)
{
    char num[24];
    int n = null ? snprintf(num, sizeof(num), "NULL") : snprintf(num, sizeof(num), "%" PRId64, v);
    array_sep(a);
    array_put_raw(a, num, (size_t)n);
}

static void array_bool(struct array_text *a, bool v)
{
    array_sep(a);
    array_put_raw(a, v ? "t" : "f", 1);
}

static const char *array_end(struct array_text *a)
{
    array_put_raw(a, "}", 1);
    return a->failed ? NULL : a->buf;
}

/* The tags as one comma-separated text, as string_to_array() takes them back. */
static void tags_text(const struct link_attrs *a, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < a->ntags && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", a->tags[i]);
}

#define TAGS_TEXT_MAX (LINK_TAGS_MAX * (LINK_TAG_MAX_LEN + 1) + 1)

enum { INSERT_PARAMS = 13 };

int store_insert_links(struct store *st, struct link_insert *links, size_t n)
{
    struct array_text arr[INSERT_PARAMS];
    const char *params[INSERT_PARAMS];
    char tags[TAGS_TEXT_MAX];
    PGresult *res = NULL;
    int rc = -ENOMEM;

    if (n == 0)
        return 0;
    for (int k = 0; k < INSERT_PARAMS; k++)
        array_begin(&arr[k]);
    for (size_t i = 0; i < n; i++) {
        const struct link_insert *l = &links[i];
        const struct link_attrs *a = l->a;
        links[i].rc = -EEXIST;
        tags_text(a, tags, sizeof(tags));
        array_text(&arr[0], l->key);
        array_text(&arr[1], l->url);
        array_int(&arr[2], l->owner, l->owner <= 0);
        array_int(&arr[3], a->expires_at, a->expires_at <= 0);
        array_int(&arr[4], a->valid_from, a->valid_from <= 0);
        array_int(&arr[5], a->max_visits, a->max_visits <= 0);
        array_int(&arr[6], a->redirect_status, a->redirect_status <= 0);
        array_text(&arr[7], l->password_hash);
        array_text(&arr[8], tags);
        array_bool(&arr[9], a->public_stats);
        array_int(&arr[10], l->created_us, false);
        array_text(&arr[11], l->idem_key);
        array_text(&arr[12], l->idem_response);
    }
    for (int k = 0; k < INSERT_PARAMS; k++)
        if (!(params[k] = array_end(&arr[k])))
            goto out;
    rc = run(st, ST_INSERT_MANY, INSERT_PARAMS, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        goto out;
    /* Rows come back in no particular order; batches are small, so match them directly. */
    for (int row = 0; row < PQntuples(res); row++) {
        const char *key = PQgetvalue(res, row, 0);
        for (size_t i = 0; i < n; i++)
            if (links[i].rc == -EEXIST && strcmp(links[i].key, key) == 0) {
                links[i].rc = 0;
                break;
            }
    }
out:
    PQclear(res);
    for (int k = 0; k < INSERT_PARAMS; k++)
        free(arr[k].buf);
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
    rc = PQntuples(res) == 1 ? read_link(res, 0, out) : -ENOENT;
    PQclear(res);
    return rc;
}

int store_password_hash(struct store *st, const char *key, char **hash)
{
    PGresult *res;
    const char *params[1] = {key};
    int rc = run(st, ST_PASSWORD, 1, params, PGRES_TUPLES_OK, &res);

    if (rc < 0)
        return rc;
    if (PQntuples(res) != 1)
        rc = -ENOENT;
    else if (!(*hash = strdup(PQgetvalue(res, 0, 0))))
        rc = -ENOMEM;
    PQclear(res);
    return rc;
}

int store_list_links(struct store *st, int64_t owner, const char *tag, const char *q,
                     int64_t after_us, const char *after_key, size_t limit, struct link *out,
                     size_t *n)
{
    char owner_text[24], after_text[24], limit_text[24];
    const char *params[6] = {owner_text, tag, q, after_text, after_key, limit_text};
    PGresult *res;
    int rc;

    *n = 0;
    snprintf(owner_text, sizeof(owner_text), "%" PRId64, owner);
    snprintf(after_text, sizeof(after_text), "%" PRId64, after_us);
    snprintf(limit_text, sizeof(limit_text), "%zu", limit);
    rc = run(st, ST_LIST, 6, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    for (int row = 0; row < PQntuples(res) && (size_t)row < limit; row++) {
        rc = read_link(res, row, &out[row]);
        if (rc < 0)
            break;
        (*n)++;
    }
    PQclear(res);
    return rc;
}

int store_update_link(struct store *st, const char *key, int64_t owner, const struct link_edit *e,
                      struct link *out)
{
    char owner_text[24], change[16], exp[24], status[8], mv[24], vf[24], tags[TAGS_TEXT_MAX];
    const struct link_attrs *a = &e->a;
    const char *params[11];
    PGresult *res;
    int rc;

    snprintf(change, sizeof(change), "%u", e->change);
    snprintf(exp, sizeof(exp), "%" PRId64, a->expires_at);
    snprintf(status, sizeof(status), "%d", a->redirect_status);
    snprintf(mv, sizeof(mv), "%" PRId64, a->max_visits);
    snprintf(vf, sizeof(vf), "%" PRId64, a->valid_from);
    tags_text(a, tags, sizeof(tags));
    params[0] = key;
    params[1] = owner_param(owner, owner_text);
    params[2] = change;
    params[3] = e->url;
    params[4] = a->expires_at > 0 ? exp : NULL;
    params[5] = a->redirect_status > 0 ? status : NULL;
    params[6] = a->max_visits > 0 ? mv : NULL;
    params[7] = a->valid_from > 0 ? vf : NULL;
    params[8] = e->password_hash;
    params[9] = tags;
    params[10] = a->public_stats ? "t" : "f";
    rc = run(st, ST_UPDATE, 11, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? read_link(res, 0, out) : -ENOENT;
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

int store_changes(struct store *st, double seconds, int64_t *after, size_t limit,
                  char (*keys)[KEY_MAX_LEN + 1], size_t *n)
{
    char secs[32], after_text[24], limit_text[24];
    const char *params[3] = {secs, after_text, limit_text};
    PGresult *res;
    int rc;

    snprintf(secs, sizeof(secs), "%.3f", seconds);
    snprintf(after_text, sizeof(after_text), "%" PRId64, *after);
    snprintf(limit_text, sizeof(limit_text), "%zu", limit);
    rc = run(st, ST_CHANGES, 3, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    *n = 0;
    for (int i = 0; i < PQntuples(res) && *n < limit; i++) {
        *after = int_at(res, i, 0);
        snprintf(keys[(*n)++], KEY_MAX_LEN + 1, "%s", PQgetvalue(res, i, 1));
    }
    PQclear(res);
    return 0;
}

/* The bytea parameter of a hash: "\x" and hex. */
static void hash_param(const unsigned char hash[32], char out[67])
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < 32; i++) {
        out[2 + 2 * i] = hex[hash[i] >> 4];
        out[3 + 2 * i] = hex[hash[i] & 15];
    }
    out[66] = '\0';
}

static int idem_find(struct store *st, const char *const *params, struct idempotency_record *out)
{
    PGresult *res;
    size_t len = 0;
    int rc = run(st, ST_IDEM_FIND, 2, params, PGRES_TUPLES_OK, &res);

    if (rc < 0)
        return rc;
    if (PQntuples(res) != 1) {
        rc = -ENOENT; /* released meanwhile: the caller may try again */
        goto out;
    }
    unsigned char *bin = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
    if (bin && len == sizeof(out->body_hash))
        memcpy(out->body_hash, bin, len);
    PQfreemem(bin);
    out->status = (int)int_at(res, 0, 1);
    if (!PQgetisnull(res, 0, 2) && !(out->response = strdup(PQgetvalue(res, 0, 2))))
        rc = -ENOMEM;
    snprintf(out->link_key, sizeof(out->link_key), "%s", PQgetvalue(res, 0, 3));
    if (rc == 0)
        rc = -EEXIST;
out:
    PQclear(res);
    return rc;
}

int store_reserve_idempotency(struct store *st, int64_t owner, const char *key,
                              const unsigned char body_hash[32], struct idempotency_record *out)
{
    char owner_text[24], hash[67];
    const char *params[3] = {owner_text, key, hash};
    PGresult *res;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(owner_text, sizeof(owner_text), "%" PRId64, owner > 0 ? owner : 0);
    hash_param(body_hash, hash);
    /* Reserve, or take over a dead server's reservation, or report what is there; a record
     * released between two of these steps is simply tried again. */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = run(st, ST_IDEM_RESERVE, 3, params, PGRES_TUPLES_OK, &res);
        if (rc < 0)
            return rc;
        rc = PQntuples(res) == 1 ? 0 : -EEXIST;
        PQclear(res);
        if (rc == 0)
            return 0;
        rc = run(st, ST_IDEM_TAKEOVER, 3, params, PGRES_TUPLES_OK, &res);
        if (rc < 0)
            return rc;
        rc = PQntuples(res) == 1 ? 0 : -EEXIST;
        PQclear(res);
        if (rc == 0)
            return 0;
        rc = idem_find(st, params, out);
        if (rc != -ENOENT)
            return rc;
    }
    return -EAGAIN;
}

int store_release_idempotency(struct store *st, int64_t owner, const char *key)
{
    char owner_text[24];
    const char *params[2] = {owner_text, key};
    PGresult *res;
    int rc;

    snprintf(owner_text, sizeof(owner_text), "%" PRId64, owner > 0 ? owner : 0);
    rc = run(st, ST_IDEM_RELEASE, 2, params, PGRES_COMMAND_OK, &res);
    if (rc == 0)
        PQclear(res);
    return rc;
}

int store_authenticate(struct store *st, const unsigned char hash[APIKEY_HASH_LEN],
                       struct apikey_info *out)
{
    /* A read, retried once on a new connection as run() retries its reads. */
    for (int attempt = 0;; attempt++) {
        int rc = connect_and_prepare(st);
        if (rc < 0)
            return rc;
        rc = apikey_store_authenticate(st->conn, hash, out, st->error, sizeof(st->error));
        if (rc != -EAGAIN) {
            if (rc < 0 && rc != -ENOENT)
                log_error("postgres: apikey_auth failed: %s", st->error);
            return rc;
        }
        if (!reconnect_for_retry(st, true, attempt))
            return -EAGAIN;
    }
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

int store_add_stats(struct store *st, const struct stats_row *rows, size_t n)
{
    enum { NPARAMS = 5 };
    struct array_text arr[NPARAMS];
    const char *params[NPARAMS];
    PGresult *res = NULL;
    int rc = -ENOMEM;

    if (n == 0)
        return 0;
    for (int k = 0; k < NPARAMS; k++)
        array_begin(&arr[k]);
    for (size_t i = 0; i < n; i++) {
        array_text(&arr[0], rows[i].key);
        array_int(&arr[1], rows[i].hour, false);
        array_text(&arr[2], rows[i].profile);
        array_int(&arr[NPARAMS - 2], rows[i].visits, false);
        array_int(&arr[NPARAMS - 1], rows[i].uncounted, false);
    }
    for (int k = 0; k < NPARAMS; k++)
        if (!(params[k] = array_end(&arr[k])))
            goto out;
    rc = run(st, ST_STATS_ADD, NPARAMS, params, PGRES_COMMAND_OK, &res);
    PQclear(res);
out:
    for (int k = 0; k < NPARAMS; k++)
        free(arr[k].buf);
    return rc;
}

int store_roll_stats(struct store *st, int64_t before, size_t limit, char *from, size_t *rolled,
                     bool *busy)
{
    char text[2][24];
    const char *params[3] = {text[0], text[1], from};
    PGresult *res = NULL;
    int rc;

    *rolled = 0;
    *busy = false;
    snprintf(text[0], sizeof(text[0]), "%" PRId64, before);
    snprintf(text[1], sizeof(text[1]), "%zu", limit);
    rc = run(st, ST_STATS_ROLL, 3, params, PGRES_TUPLES_OK, &res);
    if (rc == 0 && PQntuples(res) == 1) {
        *rolled = (size_t)int_at(res, 0, 0);
        *busy = strcmp(PQgetvalue(res, 0, 2), "t") != 0;
        if (*rolled) {
            const char *last = PQgetvalue(res, 0, 1);
            size_t len = strlen(last);
            if (len <= KEY_MAX_LEN)
                memcpy(from, last, len + 1);
        }
    }
    PQclear(res);
    return rc;
}

int store_add_unknown(struct store *st, const int64_t *days, const int64_t *day_visits,
                      size_t ndays, const struct unknown_row *keys, size_t nkeys)
{
    struct array_text arr[5];
    const char *params[5];
    PGresult *res = NULL;
    int rc = -ENOMEM;

    if (ndays == 0)
        return 0;
    for (int k = 0; k < 5; k++)
        array_begin(&arr[k]);
    for (size_t i = 0; i < ndays; i++) {
        array_int(&arr[0], days[i], false);
        array_int(&arr[1], day_visits[i], false);
    }
    for (size_t i = 0; i < nkeys; i++) {
        array_int(&arr[2], keys[i].day, false);
        array_text(&arr[3], keys[i].key);
        array_int(&arr[4], keys[i].visits, false);
    }
    for (int k = 0; k < 5; k++)
        if (!(params[k] = array_end(&arr[k])))
            goto out;
    rc = run(st, ST_UNKNOWN_ADD, 5, params, PGRES_COMMAND_OK, &res);
    PQclear(res);
out:
    for (int k = 0; k < 5; k++)
        free(arr[k].buf);
    return rc;
}

int store_stats_link(struct store *st, const char *key, int64_t *owner, bool *public_stats)
{
    PGresult *res;
    const char *params[1] = {key};
    int rc = run(st, ST_STATS_LINK, 1, params, PGRES_TUPLES_OK, &res);

    if (rc < 0)
        return rc;
    if (PQntuples(res) != 1) {
        rc = -ENOENT;
    } else {
        *owner = int_at(res, 0, 0);
        *public_stats = bool_at(res, 0, 1);
    }
    PQclear(res);
    return rc;
}

/* The recent rows of key's hours range[0]..range[1], summed per dimension value into r; their
 * visits per hour in *points (heap), *npoints of them. */
static int stats_recent_rows(struct store *st, const char *key, const int64_t range[2],
                             struct stats_recent *r, struct stats_point **points, size_t *npoints)
{
    char text[2][24];
    const char *params[3] = {key, text[0], text[1]};
    PGresult *res = NULL;
    int rc;

    *points = NULL;
    *npoints = 0;
    snprintf(text[0], sizeof(text[0]), "%" PRId64, range[0]);
    snprintf(text[1], sizeof(text[1]), "%" PRId64, range[1]);
    rc = run(st, ST_STATS_RECENT, 3, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        return rc;
    int n = PQntuples(res);
    *points = calloc(n ? (size_t)n : 1, sizeof(**points));
    if (!*points) {
        rc = -ENOMEM;
        goto out;
    }
    for (int row = 0; row < n; row++) {
        int64_t visits = int_at(res, row, 2);
        int err =
            stats_recent_add(r, PQgetvalue(res, row, 1), (size_t)PQgetlength(res, row, 1), visits);
        if (err == -ENOMEM) {
            rc = err;
            goto out;
        }
        if (err < 0)
            log_warn("postgres: a recent stats row of %s has no profile of %d values", key,
                     STATS_DIMS);
        (*points)[*npoints].t = int_at(res, row, 0);
        (*points)[(*npoints)++].visits = visits;
    }
out:
    PQclear(res);
    return rc;
}

/* The top lists: the rolled sums (ST_STATS_TOP, which also answers the rolled sums of every
 * value r has) merged with r's. */
static int stats_top_lists(struct store *st, const char *key, const int64_t range[6],
                           const struct stats_recent *r, struct stats_result *out)
{
    char text[6][24];
    const char *params[9];
    struct array_text dims, values;
    const char **names = NULL;
    int64_t *sums = NULL;
    PGresult *res = NULL;
    int rc = -ENOMEM;

    array_begin(&dims);
    array_begin(&values);
    for (size_t i = 0; i < stats_recent_count(r); i++) {
        int dim;
        const char *v = stats_recent_value(r, i, &dim);
        array_int(&dims, dim, false);
        array_text(&values, v);
    }
    params[0] = key;
    for (int i = 0; i < 6; i++) {
        snprintf(text[i], sizeof(text[i]), "%" PRId64, range[i]);
        params[i + 1] = text[i];
    }
    if (!(params[7] = array_end(&dims)) || !(params[8] = array_end(&values)))
        goto out;
    rc = run(st, ST_STATS_TOP, 9, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        goto out;
    /* The rows come in no order that matters: each dimension picks out its own. */
    size_t nrows = (size_t)PQntuples(res);
    names = malloc((nrows + 1) * sizeof(*names));
    sums = malloc((nrows + 1) * sizeof(*sums));
    if (!names || !sums) {
        rc = -ENOMEM;
        goto out;
    }
    for (int dim = 1; dim <= STATS_DIMS; dim++) {
        size_t n = 0;
        for (size_t row = 0; row < nrows; row++) {
            if (int_at(res, (int)row, 0) != dim)
                continue;
            names[n] = PQgetvalue(res, (int)row, 1);
            sums[n++] = int_at(res, (int)row, 2);
        }
        rc = stats_recent_top(r, dim, names, sums, n, &out->top[dim - 1]);
        if (rc < 0)
            goto out;
    }
out:
    PQclear(res);
    free(names);
    free(sums);
    free(dims.buf);
    free(values.buf);
    return rc;
}

int store_stats(struct store *st, const char *key, const int64_t range[6],
                const int64_t series_range[4], struct stats_result *out)
{
    char text[4][24];
    const char *params[5];
    struct stats_recent *recent = stats_recent_new();
    struct stats_point *recent_points = NULL;
    size_t nrecent = 0;
    PGresult *res = NULL;
    int rc = -ENOMEM;

    memset(out, 0, sizeof(*out));
    if (!recent)
        goto out;
    /* Both ranges start and end at the same hours (statsquery.h): one read serves both. */
    rc = stats_recent_rows(st, key, range, recent, &recent_points, &nrecent);
    if (rc < 0)
        goto out;
    rc = stats_top_lists(st, key, range, recent, out);
    if (rc < 0)
        goto out;
    params[0] = key;
    for (int i = 0; i < 4; i++) {
        snprintf(text[i], sizeof(text[i]), "%" PRId64, series_range[i]);
        params[i + 1] = text[i];
    }
    rc = run(st, ST_STATS_SERIES, 5, params, PGRES_TUPLES_OK, &res);
    if (rc < 0)
        goto out;
    size_t nrolled = (size_t)PQntuples(res);
    out->points = calloc(nrolled + nrecent + 1, sizeof(*out->points));
    if (!out->points) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t row = 0; row < nrolled; row++) {
        out->points[row].t = int_at(res, (int)row, 0);
        out->points[row].visits = int_at(res, (int)row, 1);
    }
    /* Several per hour, and beside the hour's rolled row if a flush came after its roll:
     * stats.c adds up the points of a bucket. */
    memcpy(out->points + nrolled, recent_points, nrecent * sizeof(*out->points));
    out->npoints = nrolled + nrecent;
out:
    PQclear(res);
    free(recent_points);
    stats_recent_free(recent);
    return rc;
}
