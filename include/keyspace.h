/* Facts about keys that several modules and programs rely on, each stated once here: how
 * long keys are, how many kgs hands out at a time, and how long a TAKE may wait. */
#ifndef SHORTENER_KEYSPACE_H
#define SHORTENER_KEYSPACE_H

/* A generated key: this many base62 digits, 62^7 (about 3.5 * 10^12) keys in all. kgs's
 * permutation covers exactly these (keyperm.h): part of its on-disk format. */
#define GENERATED_KEY_LEN 7

/* A custom alias: ALIAS_MIN_LEN to ALIAS_MAX_LEN characters of [0-9A-Za-z_-]. */
#define ALIAS_MIN_LEN 3
#define ALIAS_MAX_LEN 64

/* The longest key of either kind: a buffer for a key holds KEY_MAX_LEN + 1 bytes. */
#define KEY_MAX_LEN ALIAS_MAX_LEN
_Static_assert(GENERATED_KEY_LEN >= ALIAS_MIN_LEN && GENERATED_KEY_LEN <= KEY_MAX_LEN,
               "a generated key has the length of a possible alias, and fits a key buffer");

/* The most keys one "TAKE <n>" asks kgs for (kgs_proto.h). A plain decimal number: protocol
 * text spells it out. */
#define KGS_MAX_TAKE 10000

/* How long kgs holds a TAKE while its buffer is short of keys before it answers
 * "ERR unavailable", and how long keys_client waits for any step of a call to kgs (connect,
 * write, read a line) before it gives the connection up. The first must stay under the
 * second: then a client waiting on an empty buffer gets a clear refusal and keeps its
 * connection, instead of timing out and reconnecting for its next batch. */
#define KGS_TAKE_WAIT_MS      900
#define KGS_CLIENT_TIMEOUT_MS 1000
_Static_assert(KGS_TAKE_WAIT_MS < KGS_CLIENT_TIMEOUT_MS,
               "kgs must answer a waiting TAKE before its client stops listening");

#endif
