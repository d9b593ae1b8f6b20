/* Hearing of deletions made by other servers: a thread subscribed to a Redis pub/sub channel
 * evicts each deleted key from this server's hot cache. The hot cache is enabled only while
 * the subscription is known to work (a PING unanswered for half a second, or any error,
 * counts as lost), and emptied whenever it is lost, since messages sent meanwhile are gone.
 *
 * Every server publishes on the same channel after it deletes (cache_tombstone()). */
#ifndef SHORTENER_INVALIDATION_H
#define SHORTENER_INVALIDATION_H

#include <stdbool.h>

struct hotcache;
struct invalidation;
struct redis_target;

#define INVALIDATION_CHANNEL "shortener:evict"

/* Starts the listener thread, connecting to target as every Redis connection does
 * (redis_connect()). Returns NULL when the thread cannot be started. target and the hot cache
 * must outlive it. */
struct invalidation *invalidation_start(const struct redis_target *target, struct hotcache *hot);

/* Stops and joins the thread; the hot cache is left disabled. */
void invalidation_stop(struct invalidation *inv);

/* True while subscribed. */
bool invalidation_subscribed(struct invalidation *inv);

#endif
