/* Reading hot cache entries past their age again, off the request path: a request that finds
 * its link's entry past HOT_CACHE_MAX_AGE (hotcache_get() answered HOTCACHE_REFRESH) is
 * answered from the entry and hands the key to one thread, which reads the queued keys from
 * Redis in batches (one MGET per batch) and puts each entry back fresh, or evicts it when Redis
 * has no live plain link for it (deleted, edited, evicted from Redis, or Redis unavailable or
 * distrusted: the next request then looks it up as usual).
 *
 * A cache of many links filled in the same few minutes (a warm-up, a restart) goes stale in
 * the same few minutes too; looked up again by the requests themselves, each of them waited
 * for its own Redis round trip, thousands a second. */
#ifndef SHORTENER_HOTREFRESH_H
#define SHORTENER_HOTREFRESH_H

#include <stdbool.h>
#include <stddef.h>

struct cache_pending;
struct hotcache;
struct hotrefresh;
struct redis_target;

/* Starts the thread, with a Redis connection of its own to target (attached to pending, so it
 * obeys a distrust like every other). hot, target and pending must outlive it. NULL when out
 * of memory. */
struct hotrefresh *hotrefresh_start(struct hotcache *hot, const struct redis_target *target,
                                    struct cache_pending *pending);

/* Queues key (at most KEY_MAX_LEN bytes) to be read again. False when the queue is full: the
 * entry is then answered until its grace is over, and looked up as usual after. */
bool hotrefresh_ask(struct hotrefresh *r, const char *key, size_t len);

/* Entries read again so far. */
unsigned long long hotrefresh_count(struct hotrefresh *r);

/* Stops and joins the thread; what is queued is dropped. NULL does nothing. */
void hotrefresh_stop(struct hotrefresh *r);

#endif
