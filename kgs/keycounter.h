/* kgs's durable state in PostgreSQL (table kgs_state): the secret of the key permutation
 * (keyperm.h) and a counter. A claim moves the counter forward by n in one autocommitted
 * UPDATE, durable before this module returns, and the caller owns the indices it skipped:
 * the counter never moves back, so whatever crashes when, no index (and so no key) is issued
 * twice, by this kgs or any other.
 *
 * libpq's PGconn is struct pg_conn; a connection is used by one thread at a time. After any
 * error the caller should drop the connection (PQfinish) and reconnect. */
#ifndef KGS_KEYCOUNTER_H
#define KGS_KEYCOUNTER_H

#include <stddef.h>
#include <stdint.h>

#include "keyperm.h"

struct pg_conn;

/* Indices per claim: one claim is a one-row UPDATE and an fsync, so a big range costs the
 * same as a small one; the bound only limits what a crash throws away. */
#define KEYCOUNTER_MAX_BATCH 100000

/* Connects (db_connect), forces synchronous_commit on, prepares the statements, and reads
 * the permutation secret, creating it on first use (the first kgs ever to start draws it;
 * everyone after reads the same one). Returns the connection (free with PQfinish) or NULL
 * with the reason in err. Call sodium_init() first. */
struct pg_conn *keycounter_connect(const char *conninfo, unsigned char secret[KEYPERM_SECRET_LEN],
                                   char *err, size_t errlen);

/* Claims the n (1..KEYCOUNTER_MAX_BATCH) indices starting at *first. Returns n, 0 when the key
 * space is used up, or -EINVAL / -EIO with the reason in err; after -EIO the claim may or
 * may not have committed, and the indices it claimed are lost, never reissued. */
int keycounter_claim(struct pg_conn *conn, size_t n, uint64_t *first, char *err, size_t errlen);

/* How many indices have been claimed so far, by every kgs together, or -EIO. */
long long keycounter_claimed(struct pg_conn *conn, char *err, size_t errlen);

#endif
