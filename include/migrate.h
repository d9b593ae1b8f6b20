/* Schema migrations, compiled into shortenerctl from migrations/NNNN_name.sql. */
#ifndef SHORTENER_MIGRATE_H
#define SHORTENER_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

struct pg_conn;

struct migration {
    int version;
    const char *name;
    const char *sql;
};

/* In version order; generated at build time. */
extern const struct migration migrations[];
extern const unsigned migrations_count;

/* Applies every migration not yet recorded in schema_migrations, each in its own
 * transaction, under an advisory lock so concurrent runs wait for each other. Prints one line
 * per applied migration to stdout. Returns the number applied or -EIO with the reason in
 * err. */
int migrate_apply(struct pg_conn *conn, char *err, size_t errlen);

#endif
