/* Opening PostgreSQL connections the same way in every program. */
#include "db.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "secret.h"

void db_error(PGconn *conn, char *err, size_t errlen)
{
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    size_t len = strcspn(msg, "\n");
    snprintf(err, errlen, "%.*s", (int)len, msg);
}

PGconn *db_connect(const char *conninfo, const char *application_name, int statement_timeout_ms,
                   char *err, size_t errlen)
{
    /* The caller's conninfo is expanded first; later keywords fill in what it leaves out. */
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {conninfo, "3", application_name, NULL};
    char sql[96];
    PGconn *conn = PQconnectdbParams(keys, vals, 1);

    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        db_error(conn, err, errlen);
        /* libpq quotes parts of a conninfo it cannot read, a password among them. */
        secret_scrub_url(err, conninfo);
        PQfinish(conn);
        return NULL;
    }
    if (statement_timeout_ms > 0) {
        snprintf(sql, sizeof(sql), "SET statement_timeout = %d", statement_timeout_ms);
        if (db_exec(conn, sql, err, errlen) < 0) {
            PQfinish(conn);
            return NULL;
        }
    }
    return conn;
}

int db_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    int rc = 0;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(conn, err, errlen);
        rc = -EIO;
    }
    PQclear(res);
    return rc;
}

int db_result_error(PGconn *conn, const PGresult *res, char *err, size_t errlen)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    db_error(conn, err, errlen);
    if (state && strcmp(state, "23505") == 0)
        return -EEXIST;
    /* A check constraint: the row asked for is one the schema refuses (the caller said what
     * it should be, e.g. a link valid from after it expires). */
    if (state && strcmp(state, "23514") == 0)
        return -EINVAL;
    /* Class 08 (connection exception) and 57P (shutdown, crash recovery) mean the server went
     * away even if libpq has not noticed yet. */
    if ((state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)) ||
        PQstatus(conn) != CONNECTION_OK)
        return -EAGAIN;
    return -EIO;
}
