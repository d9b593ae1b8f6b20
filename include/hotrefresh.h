/* Reading hot cache entries again off the request path, so that no request waits for Redis
 * because an entry aged. One thread reads keys from Redis in batches (one MGET per batch) and
 * puts each entry back fresh, or forgets it when Redis has no live plain link for it
 * (deleted, edited, evicted from Redis, or Redis unavailable or distrusted: the next request
 * then looks it up as usual). It reads:
 * - the key of the first hit in the second half of an entry's HOT_CACHE_MAX_AGE
 *   (hotcache_get() answered HOTCACHE_REFRESH), answered from the entry meanwhile;
 * - every other entry in the second half of its age, found by sweeping the whole table once
 *   in a quarter of HOT_CACHE_MAX_AGE. Read again only when requested, a link requested less
 *   often than its age (most links of skewed traffic) cost its next request a Redis round
 *   trip of its own. An entry is kept fresh this way for as long as Redis holds
 *   its link (CACHE_TTL from the fill), at one pipelined key per entry per half age. */
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
 * entry is then answered until its age is over, and looked up as usual after. */
bool hotrefresh_ask(struct hotrefresh *r, const char *key, size_t len);

/* Entries read again so far. */
unsigned long long hotrefresh_count(struct hotrefresh *r);

/* Stops and joins the thread; what is queued is dropped. NULL does nothing. */
void hotrefresh_stop(struct hotrefresh *r);

#endif
