/* Keeping Redis consistent with PostgreSQL across outages and failovers, and hearing of the
 * changes other servers make: one thread per server.
 *
 * It subscribes to a Redis pub/sub channel and evicts each key published there from this
 * server's hot cache. The hot cache answers only while the subscription is known to work. A
 * PING unanswered for half a second pauses it with its entries: should the PONG come within
 * five seconds, every message sent meanwhile came before it, and once the journal's changes
 * are evicted again (below) the cache answers again as it was. Any error, or no PONG by then,
 * counts as lost, and the cache is emptied, since messages sent meanwhile are gone. Every
 * server publishes on the channel after it deletes or edits (cache_tombstone(),
 * cache_invalidate()).
 *
 * Whenever Redis may have missed changes (the subscription was lost, Sentinel names another
 * master, a delete or edit could not reach Redis, and at start, when nothing is known), Redis
 * is distrusted (cache_distrust()), and before it is trusted again this thread reads from
 * PostgreSQL's journal (link_changes) every link changed since the last moment Redis was
 * known consistent, less a safety margin, and overwrites their entries with the edit mark
 * "~" (read PostgreSQL, do not fill) and publishes their keys, in batches. So a delete made
 * during an outage, by any server, even one that died since, is never served once Redis
 * answers again. With Sentinel it also asks the sentinels every half second which master is
 * current, since a live old master keeps accepting (and later discards) writes until Sentinel
 * demotes it. */
#ifndef SHORTENER_INVALIDATION_H
#define SHORTENER_INVALIDATION_H

#include <stdbool.h>

struct cache_pending;
struct hotcache;
struct invalidation;
struct redis_target;
struct store;

#define INVALIDATION_CHANNEL "shortener:evict"

/* How the thread works. */
struct invalidation_config {
    const struct redis_target *target; /* connected to as every Redis connection is */
    struct hotcache *hot;
    struct cache_pending *pending; /* the trust of the server's Redis connections */
    struct store *store;           /* on the primary, for the journal; owned by the thread */
    long long change_ttl;          /* seconds a re-evicted entry's mark lives */
    long long cache_ttl;           /* no entry is older than this (CACHE_TTL) */
};

/* Starts the thread. Returns NULL when out of memory or the thread cannot be started (the
 * store is freed). target, the hot cache and pending must outlive it. */
struct invalidation *invalidation_start(const struct invalidation_config *cfg);

/* Stops and joins the thread; the hot cache is left disabled. */
void invalidation_stop(struct invalidation *inv);

/* True while subscribed. */
bool invalidation_subscribed(struct invalidation *inv);

/* True once Redis has been made consistent (trusted) since start, whatever happened since. */
bool invalidation_synced(struct invalidation *inv);

#endif
