/* Recently confirmed API keys, shared by the server's threads, so that a busy key costs one
 * PostgreSQL look-up per AUTHCACHE_TTL_MS instead of one per request. An entry is trusted for
 * that long at most, so a revoked key stops working on every instance within it even with
 * Redis away. Normally it stops at once: each entry remembers the revocation count Redis
 * showed when it was confirmed, and api.c asks the database again when the count moves.
 * Only valid keys are kept; unknown ones always go to the database (and count against the
 * caller's failed-authentication limit). */
#ifndef SHORTENER_AUTHCACHE_H
#define SHORTENER_AUTHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apikey.h"
#include "store.h"

#define AUTHCACHE_TTL_MS 500

struct authcache;

/* slots: a power of two. NULL when out of memory. */
struct authcache *authcache_new(size_t slots);
void authcache_free(struct authcache *ac);

/* True, with the key's details and the revocation count it was confirmed under, when hash
 * was confirmed less than AUTHCACHE_TTL_MS before now_ms (a monotonic clock in ms). */
bool authcache_get(struct authcache *ac, const unsigned char hash[APIKEY_HASH_LEN], int64_t now_ms,
                   struct apikey_info *out, int64_t *revocations);

/* Remembers a key the database confirmed at now_ms, under a revocation count (-1: unknown). */
void authcache_put(struct authcache *ac, const unsigned char hash[APIKEY_HASH_LEN], int64_t now_ms,
                   const struct apikey_info *info, int64_t revocations);

#endif
