/* The in-process tier in front of Redis: a bounded cache of live links shared by a server's
 * worker threads, so that a popular redirect costs neither a Redis nor a PostgreSQL round trip.
 *
 * It holds only links that exist (never "not found"), each with its expiry and the time it was
 * cached. Deletions reach it in two ways: the server that deletes evicts at once, and every
 * other server hears of it over Redis pub/sub (invalidation.c). While that channel is not
 * known to work, the cache is disabled and empty, so nothing stale can be served from it.
 *
 * Fills race with evictions: a lookup may read a link from Redis just before it is deleted
 * and try to cache it just after the eviction. Every eviction therefore advances an epoch; a
 * caller reads the epoch before its lookup and passes it to hotcache_put(), which drops the
 * entry if any eviction happened in between.
 *
 * All functions are thread-safe. Keys are at most KEY_MAX_LEN bytes. */
#ifndef SHORTENER_HOTCACHE_H
#define SHORTENER_HOTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"

struct hotcache;

/* Where visits counted in entries go: called with the key and its count when an entry holding
 * uncounted visits leaves the cache, and for every such entry by hotcache_harvest(). Called
 * with one of the cache's locks held: it must not call back into the cache. */
typedef void (*hotcache_visits_fn)(void *ctx, const char *key, size_t keylen, uint32_t count);

/* A cache of up to about max_entries links, each trusted for at most max_age seconds (a
 * bound on staleness should an invalidation ever be missed), and read again from the second
 * half of that on. It starts disabled. max_entries 0 gives a cache that is always disabled.
 * Visits counted by hotcache_get() go to visits_fn (may be NULL). Returns NULL when out of
 * memory. */
struct hotcache *hotcache_new(size_t max_entries, int64_t max_age, hotcache_visits_fn visits_fn,
                              void *visits_ctx);
void hotcache_free(struct hotcache *h);

enum { HOTCACHE_REFRESH = 1 };

/* 0 with the URL copied into url (NUL-terminated), its expiry (0: never) and its redirect
 * status (0: the default), or -ENOENT when the key is not cached, its entry is too old, or the
 * URL does not fit in cap bytes. HOTCACHE_REFRESH is a hit too, the first one in the second
 * half of the entry's age: the caller has it read again (hotcache_put() or hotcache_forget()
 * it); until then later calls answer 0 from it, and -ENOENT once its age is over. A hit
 * that will be answered counts a visit in the entry when visit is true: a popular link's
 * visits are then counted where it already is, without a table of their own per request. */
int hotcache_get(struct hotcache *h, const char *key, size_t keylen, char *url, size_t cap,
                 int64_t *expires_at, int *status, int64_t now, bool visit);

/* Looks at *sets of the table's hotcache_sets() sets from *cursor on (wrapping), for entries
 * in the second half of their age that nobody reads again yet, moving *cursor past and
 * counting down *sets for each set it looked at. Copies up to max of their keys into keys
 * (NUL-terminated) and counts each as being read again, as a HOTCACHE_REFRESH hit does;
 * stops early, before a set, when max is near. Returns how many keys it copied. */
size_t hotcache_due(struct hotcache *h, int64_t now, size_t *cursor, size_t *sets,
                    char (*keys)[KEY_MAX_LEN + 1], size_t max);

/* The number of sets (0 for a cache that is always disabled) and the age it was made with. */
size_t hotcache_sets(const struct hotcache *h);
int64_t hotcache_max_age(const struct hotcache *h);

/* Hands every entry's uncounted visits to the visits function and zeroes them. */
void hotcache_harvest(struct hotcache *h);

uint64_t hotcache_epoch(struct hotcache *h);

/* Caches key -> url unless the cache is disabled or an eviction happened since epoch was read.
 * Replaces what the key had; may push out a less recently used entry. Only links whose every
 * click may be answered from memory belong here: no visit limit, no password, valid now. */
void hotcache_put(struct hotcache *h, uint64_t epoch, const char *key, size_t keylen,
                  const char *url, int64_t expires_at, int status, int64_t now);

/* Forgets key, which changed: a put that read it before is dropped. */
void hotcache_evict(struct hotcache *h, const char *key, size_t keylen);

/* Forgets key's entry, which could not be confirmed (it has not changed, as far as we know):
 * puts of other keys are not disturbed. */
void hotcache_forget(struct hotcache *h, const char *key, size_t keylen);

/* Empties the cache and turns it off, or turns it on (empty). */
void hotcache_set_enabled(struct hotcache *h, bool enabled);

/* Turns the cache off but keeps its entries, for an invalidation channel that went quiet but
 * may yet deliver everything it owes: lookups miss, puts are dropped (also those begun
 * before), evictions still apply. hotcache_resume() turns it back on with what it holds;
 * hotcache_set_enabled() empties it as always. */
void hotcache_suspend(struct hotcache *h);
void hotcache_resume(struct hotcache *h);

bool hotcache_enabled(struct hotcache *h);

/* Entries cached now. */
size_t hotcache_count(struct hotcache *h);

#endif
