/* The SQL of `shortenerctl import`: links go in batches, each batch one statement and so one
 * transaction, each key registered in link_keys by the same statement that inserts its link.
 * A key is never taken from anyone: a key already registered (an earlier import of the same
 * file, a link someone made, one deleted long ago) leaves its row out and says why. The keys
 * a run has met are kept in a temporary table of the session, so that a key given twice in
 * one file is told apart from one that was there before, whatever the file's length, without
 * holding the keys in our own memory. libpq's types stay out: struct pg_conn is PGconn. */
#ifndef SHORTENER_IMPORT_STORE_H
#define SHORTENER_IMPORT_STORE_H

#include <stddef.h>
#include <stdint.h>

struct pg_conn;

/* One link to import, checked already. */
struct import_row {
    long long line;     /* where it is in the file */
    const char *key;    /* 3-64 of [0-9A-Za-z_-] */
    const char *url;    /* checked and normalised by urlcheck */
    int64_t created_at; /* seconds since the epoch; 0: now */
    int64_t expires_at; /* 0: never */
    int64_t visits;     /* >= 0 */
    const char *tags;   /* valid tags joined with ',', "" for none */
};

enum import_outcome {
    IMPORT_IMPORTED,
    IMPORT_DUPLICATE, /* the key came earlier in the file: first_line */
    IMPORT_EXISTS,    /* a link with this key and this url exists (imported before, say) */
    IMPORT_TAKEN,     /* a link with this key and another url exists */
    IMPORT_USED,      /* the key was given to a link that is gone; never given again */
};

struct import_status {
    enum import_outcome outcome;
    long long first_line; /* IMPORT_DUPLICATE: the line that had the key first */
};

/* Checks that API key id, which the imported links are to belong to, exists and is not
 * revoked: 0, -ENOENT when there is no such key, -EKEYREVOKED when it has been revoked, or
 * -EIO; with a sentence in err. (It reads api_keys, whose module is apikey_store; kept here
 * while imports are its only user.) */
int import_store_check_owner(struct pg_conn *conn, int64_t id, char *err, size_t errlen);

/* Readies the session: timeouts, synchronous commits, the table of keys met, the prepared
 * statement. Returns 0 or -EIO with the reason in err. */
int import_store_begin(struct pg_conn *conn, char *err, size_t errlen);

/* Imports rows[0..n-1] (lines in increasing order) for owner (0: nobody) in one statement,
 * and says for each what became of it in status[i]. Returns 0; -EAGAIN when the connection
 * was lost, -EIO when the statement failed (nothing of the batch was stored either way), or
 * -ENOMEM; with the reason in err. */
int import_store_batch(struct pg_conn *conn, const struct import_row *rows, size_t n, int64_t owner,
                       struct import_status *status, char *err, size_t errlen);

#endif
