/* The server's redirect cache in Redis: the link entries (linkentry.h) read through on a worker's
 * connection, and the deletions Redis has yet to hear of.
 *
 * A delete or create that could not drop a link's entry because Redis was unreachable must
 * not let that entry be served once Redis is back: the key is remembered in the server's
 * struct cache_pending, and whichever of the server's connections next reaches Redis drops
 * the entry (and tells the other servers' hot caches) before it serves anything else. */
#ifndef SHORTENER_CACHE_H
#define SHORTENER_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"
#include "linkentry.h"

#define CACHE_PENDING_MAX 4096

struct cache;
struct redis;

/* Deletions whose cache entry could not be removed because Redis was unreachable, shared by
 * every connection of one server. */
struct cache_pending {
    pthread_mutex_t lock;
    atomic_size_t count;
    char keys[CACHE_PENDING_MAX][KEY_MAX_LEN + 1];
};

int cache_pending_init(struct cache_pending *p);
void cache_pending_release(struct cache_pending *p);

/* Makes r drop the entries of p's keys before it serves anything, each time it is used (its
 * prepare hook: see redis_set_prepare()). p must outlive r; NULL does nothing. */
void cache_pending_attach(struct cache_pending *p, struct redis *r);

/* The cache on connection r, which it borrows; pending (attached to r here) is shared with
 * the server's other connections and outlives them. Returns NULL when out of memory. */
struct cache *cache_new(struct redis *r, struct cache_pending *pending);
void cache_free(struct cache *c);

/* Why the last call failed. */
const char *cache_error(const struct cache *c);

enum {
    CACHE_HIT = LINKENTRY_HIT,
    CACHE_NEGATIVE = LINKENTRY_NEGATIVE,
    CACHE_EDITED = LINKENTRY_EDITED
};

/* As linkentry_get(): CACHE_HIT with the URL and its rules, CACHE_NEGATIVE, CACHE_EDITED,
 * -ENOENT on a miss, -EAGAIN when Redis is unavailable. */
int cache_get(struct cache *c, const char *key, char *url, size_t cap, struct link_rules *rules);

/* Read-through fills (linkentry_fill(), linkentry_fill_negative()). */
int cache_fill(struct cache *c, const char *key, const char *url, const struct link_rules *rules,
               int64_t ttl);
int cache_fill_negative(struct cache *c, const char *key, int64_t ttl);

/* After a create commits: drop whatever is cached for key (a negative entry, usually).
 * When Redis cannot be reached this and cache_tombstone() remember the key in the pending
 * list. */
int cache_evict(struct cache *c, const char *key);

/* After links are created in bulk: drops the entries of keys[0..n) in one round trip.
 * Nothing is remembered when Redis cannot be reached (-EAGAIN): the caller falls back to
 * cache_evict() per key. -ENOMEM when out of memory. */
int cache_evict_many(struct cache *c, const char *const *keys, size_t n);

/* After a delete commits: the entry becomes a tombstone for ttl seconds
 * (linkentry_tombstone()), and the key is published on INVALIDATION_CHANNEL for the other
 * servers' hot caches. */
int cache_tombstone(struct cache *c, const char *key, int64_t ttl);

/* After an edit commits: replace the entry with "~" for ttl seconds, which sends lookups to
 * PostgreSQL and keeps them from filling (a fill that read the row before the edit cannot
 * bring the old link back), and publish the key for the other servers' hot caches. */
int cache_invalidate(struct cache *c, const char *key, int64_t ttl);

int cache_ping(struct cache *c);

#endif
