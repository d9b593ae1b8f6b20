/* Applying the embedded schema migrations in order, once each. */
#include "migrate.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"

/* Any constant will do, as long as nothing else in the database uses it. */
#define MIGRATE_LOCK "7283512390001"

static int applied(PGconn *conn, int version, bool *yes, char *err, size_t errlen)
{
    char v[16];
    const char *params[1] = {v};
    PGresult *res;
    int rc = 0;

    snprintf(v, sizeof(v), "%d", version);
    res = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL, params,
                       NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(conn, err, errlen);
        rc = -EIO;
    } else {
        *yes = PQntuples(res) > 0;
    }
    PQclear(res);
    return rc;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
    char v[16];
    const char *params[2] = {v, m->name};
    PGresult *res;
    int rc;

    if (db_exec(conn, "BEGIN", err, errlen) < 0)
        return -EIO;
    rc = db_exec(conn, m->sql, err, errlen);
    if (rc < 0)
        goto rollback;
    snprintf(v, sizeof(v), "%d", m->version);
    res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_error(conn, err, errlen);
        rc = -EIO;
    }
    PQclear(res);
    if (rc < 0)
        goto rollback;
    return db_exec(conn, "COMMIT", err, errlen);
rollback : {
    char ignored[64];
    db_exec(conn, "ROLLBACK", ignored, sizeof(ignored));
}
    return rc;
}

int migrate_apply(PGconn *conn, char *err, size_t errlen)
{
    int count = 0, rc;

    /* The lock comes first: two runs creating schema_migrations at once would collide. */
    if (db_exec(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", err, errlen) < 0)
        return -EIO;
    /* Not CREATE TABLE IF NOT EXISTS: its NOTICE on every later run reads like an error. */
    rc = db_exec(conn,
                 "DO $$ BEGIN IF to_regclass('schema_migrations') IS NULL THEN"
                 " CREATE TABLE schema_migrations ("
                 " version integer PRIMARY KEY, name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now()); END IF; END $$",
                 err, errlen);
    for (unsigned i = 0; rc == 0 && i < migrations_count; i++) {
        bool done = false;
        rc = applied(conn, migrations[i].version, &done, err, errlen);
        if (rc < 0 || done)
            continue;
        rc = apply_one(conn, &migrations[i], err, errlen);
        if (rc < 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s: %s", migrations[i].name, err);
            snprintf(err, errlen, "%s", why);
            break;
        }
        printf("applied %s\n", migrations[i].name);
        count++;
    }
    char ignored[64];
    db_exec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", ignored, sizeof(ignored));
    return rc < 0 ? rc : count;
}
