/* The server's redirect cache in Redis: the link entries (linkentry.h) read through on a worker's
 * connection, and what Redis has yet to hear of.
 *
 * A create that could not drop a link's negative entry because Redis was unreachable: the key
 * is remembered in the server's struct cache_pending, and whichever of the server's
 * connections next reaches Redis drops the entry before it serves anything else (at most
 * CACHE_PENDING_MAX; one forgotten costs at most NEGATIVE_TTL of 404s).
 *
 * A delete or edit is another matter: a stale entry could serve a deleted link for an hour.
 * Those are not remembered here but journalled in PostgreSQL (link_changes, by the statement
 * that makes them), and Redis is distrusted instead (cache_distrust()): while it is, no
 * connection with the prepare hook uses Redis (every command fails as if Redis were down, so
 * redirects come from PostgreSQL) until the invalidation thread has overwritten the entry of
 * every link changed since the last moment Redis was known consistent (invalidation.h). The
 * same happens whenever Redis comes back or Sentinel names another master, and at start. */
#ifndef SHORTENER_CACHE_H
#define SHORTENER_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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
    /* How many keys wait, and a bit while Redis is distrusted: it may hold entries of links
     * changed since resync_from_ms (monotonic ms), and nothing reads or writes it through the
     * prepare hook until a resync clears the bit. */
    atomic_size_t state;
    char keys[CACHE_PENDING_MAX][KEY_MAX_LEN + 1];
    long long resync_from_ms; /* under lock */
    unsigned requests;        /* under lock: distrusts so far, so a resync knows it is current */
};

/* Stops every connection with the prepare hook from using Redis until cache_trust(): entries
 * of links changed since since_ms (monotonic ms) may be stale there. */
void cache_distrust(struct cache_pending *p, long long since_ms);

/* Whether a resync is wanted, and from when; *ticket is for cache_trust(). */
bool cache_resync_wanted(struct cache_pending *p, long long *since_ms, unsigned *ticket);

/* After the entries of every link changed since the wanted time were overwritten: Redis is
 * trusted again, unless another cache_distrust() came since the ticket was taken (then false,
 * and another resync is wanted). */
bool cache_trust(struct cache_pending *p, unsigned ticket);

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

/* cache_get() of keys[0..n) in one round trip (linkentry_get_many()). */
int cache_get_many(struct cache *c, const char *const *keys, size_t n, size_t cap,
                   void (*found)(void *ctx, size_t i, int rc, const char *url,
                                 const struct link_rules *rules),
                   void *ctx);

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
