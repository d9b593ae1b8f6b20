/* The durable key pool in PostgreSQL (table kgs_keys): random keys are inserted unclaimed
 * ahead of demand, and claimed in batches by an autocommitted UPDATE whose commit is durable
 * before the keys leave this module. Rows are never unclaimed or deleted, and FOR UPDATE
 * SKIP LOCKED keeps concurrent kgs instances from claiming the same row, so a key is issued
 * at most once whatever crashes when.
 *
 * libpq's PGconn is struct pg_conn; a connection is used by one thread at a time. After any
 * error the caller should drop the connection (PQfinish) and reconnect: the message is in
 * err, or for keypool_unclaimed on the connection (db_error). */
#ifndef KGS_KEYPOOL_H
#define KGS_KEYPOOL_H

#include <stddef.h>

#include "base62.h"

struct pg_conn;

/* Keys per statement, for both generating and claiming: big enough that a round trip is
 * paid per ten thousand keys, small enough that one statement stays well under a second. */
#define KEYPOOL_MAX_BATCH 10000

/* Connects (db_connect), forces synchronous_commit on and prepares the statements. Returns
 * the connection (free with PQfinish) or NULL with the reason in err. */
struct pg_conn *keypool_connect(const char *conninfo, char *err, size_t errlen);

/* Draws n (1..KEYPOOL_MAX_BATCH) random keys and inserts them unclaimed in one statement;
 * keys that already exist, claimed or not, are skipped. Returns the number inserted, or
 * -EINVAL / -ENOMEM / -EIO with the reason in err. Call sodium_init() first. */
int keypool_generate(struct pg_conn *conn, size_t n, char *err, size_t errlen);

/* About how many keys are unclaimed (see keypool.c for the estimate), or -EIO with the
 * reason in err. */
long long keypool_unclaimed(struct pg_conn *conn, char *err, size_t errlen);

/* Claims up to n (1..KEYPOOL_MAX_BATCH) unclaimed keys, oldest first, and copies them,
 * NUL-terminated, into out_keys. The claim is committed with synchronous_commit on before
 * this returns. Returns the number claimed (0 when the pool is empty), or -EINVAL / -EIO
 * with the reason in err; after -EIO the claim may or may not have committed, and keys it
 * claimed are lost, never reissued. */
int keypool_claim(struct pg_conn *conn, size_t n, char (*out_keys)[BASE62_KEY_LEN + 1], char *err,
                  size_t errlen);

#endif
