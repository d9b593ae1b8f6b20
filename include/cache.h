/* The Redis read-through cache for redirects. One struct cache is one connection, used by one
 * thread at a time. Redis is an accelerator only: every failure is reported as -EAGAIN and the
 * caller goes to PostgreSQL. After a failure the connection is not retried for a second, so a
 * dead Redis costs one timeout per second per thread, not one per request.
 *
 * An entry is "u:<key>" holding either "<expires_at>\n<url>" (expires_at 0: never) or "!" for
 * a key known not to exist. */
#ifndef SHORTENER_CACHE_H
#define SHORTENER_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"

#define CACHE_PENDING_MAX 4096

/* The entry format above, for whatever else reads or writes entries as the server does (the
 * benchmark's ceiling, tests/bench/ceiling.c): the Redis key of a link's entry, the separator
 * between expires_at (decimal seconds) and the url, and the whole value of a negative entry. */
#define CACHE_ENTRY_KEY_FMT  "u:%s"
#define CACHE_ENTRY_SEP      "\n"
#define CACHE_ENTRY_NEGATIVE "!"
_Static_assert(sizeof(CACHE_ENTRY_SEP) == 2, "readers find the separator with memchr()");

struct cache;

/* Deletions whose cache entry could not be removed because Redis was unreachable, shared by
 * every connection of one server. Each connection removes them from Redis before it serves
 * anything once Redis answers again. */
struct cache_pending {
    pthread_mutex_t lock;
    atomic_size_t count;
    char keys[CACHE_PENDING_MAX][KEY_MAX_LEN + 1];
};

int cache_pending_init(struct cache_pending *p);
void cache_pending_release(struct cache_pending *p);

/* redis_url: "redis://[:password@]host[:port][/db]" or "unix:///path/to/socket". Connects
 * lazily. pending is shared with the server's other connections and outlives them; NULL for
 * a connection that never evicts links (shortenerctl's). Returns NULL on a malformed URL or
 * out of memory. */
struct cache *cache_new(const char *redis_url, struct cache_pending *pending);
void cache_free(struct cache *c);

/* Parses redis_url as cache_new does; exposed for tests and start-up validation.
 * Returns 0 or -EINVAL. */
int cache_parse_url(const char *redis_url, char *host, size_t hostcap, int *port, char *path,
                    size_t pathcap, char *password, size_t passcap, int *db);

const char *cache_error(const struct cache *c);

enum { CACHE_HIT = 0, CACHE_NEGATIVE = 1 };

/* CACHE_HIT with the URL copied into url (NUL-terminated, cap bytes at most) and its expiry,
 * CACHE_NEGATIVE, -ENOENT on a miss, -EAGAIN when Redis is unavailable. */
int cache_get(struct cache *c, const char *key, char *url, size_t cap, int64_t *expires_at);

/* Read-through fills. They never overwrite an entry (SET NX): a tombstone written by a delete
 * wins over a fill that raced with it. ttl in seconds, > 0. */
int cache_fill(struct cache *c, const char *key, const char *url, int64_t expires_at, int64_t ttl);
int cache_fill_negative(struct cache *c, const char *key, int64_t ttl);

/* After a create commits: drop whatever is cached for key (a negative entry, usually).
 * When Redis cannot be reached this and cache_tombstone() remember the key and delete it
 * when Redis answers again. */
int cache_evict(struct cache *c, const char *key);

/* After expired links are deleted in bulk: drops the entries of keys[0..n) in one round trip.
 * Unlike cache_evict() nothing is remembered when Redis cannot be reached (-EAGAIN): those
 * entries expire by themselves, since no entry outlives its link. -ENOMEM when out of
 * memory. */
int cache_evict_many(struct cache *c, const char *const *keys, size_t n);

/* After a delete commits: replace the entry with a negative one for ttl seconds, so that a
 * read-through fill which read the row before the delete cannot bring it back, and publish
 * the key on INVALIDATION_CHANNEL for the other servers' hot caches. */
int cache_tombstone(struct cache *c, const char *key, int64_t ttl);

int cache_ping(struct cache *c);

/* Runs a Lua script on nkeys keys with integer arguments (at most 8 of each); its reply, an
 * array of at least nout integers, goes to out. The script is loaded once per connection
 * (SCRIPT LOAD) and run by its SHA (EVALSHA); should Redis have forgotten it (NOSCRIPT), it
 * is sent again (EVAL). One round trip per call. script must outlive c. Returns 0, -EAGAIN
 * when Redis is unavailable, or -EPROTO when the reply is not what was asked for. */
int cache_eval(struct cache *c, const char *script, const char *const *keys, int nkeys,
               const long long *args, int nargs, long long *out, size_t nout);

/* INCR key. Returns 0 or -EAGAIN. */
int cache_incr(struct cache *c, const char *key);

#endif
