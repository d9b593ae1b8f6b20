/* PostgreSQL connection helpers shared by every program. libpq's types stay out of users'
 * includes: struct pg_conn is libpq's PGconn. */
#ifndef SHORTENER_DB_H
#define SHORTENER_DB_H

#include <stddef.h>

struct pg_conn;
struct pg_result;

/* Opens a connection from a libpq conninfo string or URI, with a connect timeout and
 * application_name set, and a statement timeout of statement_timeout_ms (0: none).
 * Returns the connection (free with PQfinish) or NULL with the reason in err, which never
 * holds a password from conninfo. */
struct pg_conn *db_connect(const char *conninfo, const char *application_name,
                           int statement_timeout_ms, char *err, size_t errlen);

/* Runs one or more SQL commands that return no rows. Returns 0, or -EIO with libpq's message
 * in err. */
int db_exec(struct pg_conn *conn, const char *sql, char *err, size_t errlen);

/* Copies libpq's last error message for conn into err, without the trailing newline. */
void db_error(struct pg_conn *conn, char *err, size_t errlen);

/* After a statement failed with res (may be NULL): puts the reason in err and says what kind
 * of failure it was: -EEXIST for a unique violation, -EINVAL for a check constraint, -EAGAIN
 * when the server went away (whether or not libpq has noticed yet: a new connection may
 * succeed), else -EIO. */
int db_result_error(struct pg_conn *conn, const struct pg_result *res, char *err, size_t errlen);

#endif
