/* API keys: generation, keyed hashing and rate specifications. The plain key is shown once
 * and never stored; only apikey_hash() of it is. */
#ifndef SHORTENER_APIKEY_H
#define SHORTENER_APIKEY_H

#include <stdbool.h>
#include <stddef.h>

#define APIKEY_PREFIX     "sk_" /* recognisable to secret scanners */
#define APIKEY_PREFIX_LEN 3
#define APIKEY_RANDOM_LEN 32 /* base62 digits: about 190 bits */
#define APIKEY_LEN        (APIKEY_PREFIX_LEN + APIKEY_RANDOM_LEN)
#define APIKEY_HASH_LEN   32
#define APIKEY_RATE_MAX   1000000 /* largest N of a rate, and largest burst */

/* Writes a fresh random key and its NUL into out (APIKEY_LEN + 1 bytes). */
void apikey_generate(char out[APIKEY_LEN + 1]);

/* True when key has the shape of a key we issue; anything else needs no database look-up. */
bool apikey_well_formed(const char *key, size_t len);

/* Keyed BLAKE2b of the key. The pepper (APIKEY_PEPPER, may be empty) must be the same for
 * every program that shares the database. Returns 0 or -1. */
int apikey_hash(const char *key, size_t len, const char *pepper,
                unsigned char out[APIKEY_HASH_LEN]);

/* Parses "N/s", "N/min" or "N/h" (1 <= N <= 1000000). Returns 0 or -EINVAL. */
int apikey_parse_rate(const char *s, int *limit, int *window_seconds);

/* Parses a burst: a decimal integer, 1 <= B <= APIKEY_RATE_MAX. Returns 0 or -EINVAL. */
int apikey_parse_burst(const char *s, int *burst);

/* Writes "N/s", "N/min" or "N/h". */
void apikey_format_rate(int limit, int window_seconds, char *buf, size_t cap);

#endif
