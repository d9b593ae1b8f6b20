/* API keys in PostgreSQL: the one module that holds their SQL. shortenerctl creates, lists and
 * revokes keys through it; the server authenticates with it, on a statement prepared once per
 * connection. Only a key's keyed hash (apikey_hash()) is stored, as bytea, never the key.
 * Every function takes the caller's connection; libpq's types stay out: struct pg_conn is
 * libpq's PGconn.
 *
 * Functions return 0 or a negative errno, with what PostgreSQL said in err:
 *   -ENOENT  no such key (or, to authenticate, a revoked one)
 *   -EAGAIN  the connection is lost: a new one may succeed
 *   -EIO     the statement failed otherwise
 *   -ENOMEM  out of memory */
#ifndef SHORTENER_APIKEY_STORE_H
#define SHORTENER_APIKEY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apikey.h"

struct pg_conn;

/* What the server knows of a key it has authenticated. */
struct apikey_info {
    int64_t id;
    int rate_limit;
    int rate_window;
    int burst;
    bool is_admin; /* may read and delete any link */
};

/* A key to store: its hash, never the key itself, and its limits. */
struct apikey_new {
    const char *name;
    const unsigned char *hash; /* APIKEY_HASH_LEN bytes */
    int rate_limit;
    int rate_window; /* seconds */
    int burst;
    bool is_admin;
};

/* Stores a new key; *id gets its id. */
int apikey_store_insert(struct pg_conn *conn, const struct apikey_new *key, int64_t *id, char *err,
                        size_t errlen);

/* One key as `shortenerctl apikey list` shows it: nothing that would let anyone use it. */
struct apikey_row {
    int64_t id;
    char *name;
    int rate_limit;
    int rate_window;      /* seconds */
    int64_t created_at;   /* seconds since the epoch */
    int64_t last_used_at; /* 0: never used */
    int64_t revoked_at;   /* 0: not revoked */
};

struct apikey_list {
    struct apikey_row *rows; /* by id */
    size_t n;
};

/* Every key, revoked ones included. Free with apikey_list_release(), also after a failure. */
int apikey_store_list(struct pg_conn *conn, struct apikey_list *out, char *err, size_t errlen);
void apikey_list_release(struct apikey_list *list);

/* Revokes key id at once; *already is true when it had been revoked before (it keeps that
 * first time). -ENOENT when there is no key id. */
int apikey_store_revoke(struct pg_conn *conn, int64_t id, bool *already, char *err, size_t errlen);

/* Prepares apikey_store_authenticate()'s statement on conn: once per new connection. */
int apikey_store_prepare(struct pg_conn *conn, char *err, size_t errlen);

/* Finds the unrevoked key with this hash, compared in constant time, and records its use (at
 * most once a minute). -ENOENT when unknown or revoked. */
int apikey_store_authenticate(struct pg_conn *conn, const unsigned char hash[APIKEY_HASH_LEN],
                              struct apikey_info *out, char *err, size_t errlen);

#endif
