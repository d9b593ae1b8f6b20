/* The redirect cache on a worker's Redis connection, and the pending deletions (see cache.h). */
#include "cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "invalidation.h"
#include "log.h"
#include "redis.h"

struct cache {
    struct redis *redis;
    struct cache_pending *pending;
};

/* The state word: the number of pending creates, and this bit while Redis is distrusted, so
 * that the prepare hook has one atomic load to make when there is nothing to do. */
#define UNTRUSTED ((size_t)1 << (sizeof(size_t) * 8 - 1))

int cache_pending_init(struct cache_pending *p)
{
    atomic_init(&p->state, 0);
    p->resync_from_ms = 0;
    p->requests = 0;
    return pthread_mutex_init(&p->lock, NULL) == 0 ? 0 : -ENOMEM;
}

void cache_distrust(struct cache_pending *p, long long since_ms)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    if (!(atomic_load_explicit(&p->state, memory_order_relaxed) & UNTRUSTED) ||
        since_ms < p->resync_from_ms)
        p->resync_from_ms = since_ms;
    p->requests++;
    atomic_fetch_or_explicit(&p->state, UNTRUSTED, memory_order_release);
    pthread_mutex_unlock(&p->lock);
}

bool cache_resync_wanted(struct cache_pending *p, long long *since_ms, unsigned *ticket)
{
    if (!(atomic_load_explicit(&p->state, memory_order_acquire) & UNTRUSTED))
        return false;
    pthread_mutex_lock(&p->lock);
    *since_ms = p->resync_from_ms;
    *ticket = p->requests;
    bool wanted = atomic_load_explicit(&p->state, memory_order_relaxed) & UNTRUSTED;
    pthread_mutex_unlock(&p->lock);
    return wanted;
}

bool cache_trust(struct cache_pending *p, unsigned ticket)
{
    pthread_mutex_lock(&p->lock);
    bool current = p->requests == ticket;
    if (current)
        atomic_fetch_and_explicit(&p->state, ~UNTRUSTED, memory_order_release);
    pthread_mutex_unlock(&p->lock);
    return current;
}

void cache_pending_release(struct cache_pending *p)
{
    pthread_mutex_destroy(&p->lock);
}

static void remember(struct cache_pending *p, const char *key)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    size_t n = atomic_load_explicit(&p->state, memory_order_relaxed) & ~UNTRUSTED;
    if (n < CACHE_PENDING_MAX) {
        snprintf(p->keys[n], sizeof(p->keys[n]), "%s", key);
        atomic_fetch_add_explicit(&p->state, 1, memory_order_release);
    } else {
        log_error("redis: more than %d creates wait for redis; %s may answer 404 for up to "
                  "NEGATIVE_TTL once it is back",
                  CACHE_PENDING_MAX, key);
    }
    pthread_mutex_unlock(&p->lock);
}

/* The prepare hook: refuses Redis while it is distrusted, then drops the entries of links
 * created while Redis could not be reached, before the connection serves anything. One
 * atomic load when there is nothing to do. */
static int drain(struct redis *r, void *ctx)
{
    struct cache_pending *p = ctx;
    char key[KEY_MAX_LEN + 1];
    size_t state;

    while ((state = atomic_load_explicit(&p->state, memory_order_acquire)) != 0) {
        if (state & UNTRUSTED)
            return -EAGAIN;
        pthread_mutex_lock(&p->lock);
        size_t n = atomic_load_explicit(&p->state, memory_order_relaxed) & ~UNTRUSTED;
        if (n == 0) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        memcpy(key, p->keys[n - 1], sizeof(key));
        pthread_mutex_unlock(&p->lock);
        if (linkentry_evict(r, key) < 0 ||
            redis_command(r, NULL, "PUBLISH " INVALIDATION_CHANNEL " %s", key) < 0)
            return -EAGAIN;
        /* Remove it only now; another thread may have drained it too, which is harmless. */
        pthread_mutex_lock(&p->lock);
        n = atomic_load_explicit(&p->state, memory_order_relaxed) & ~UNTRUSTED;
        for (size_t i = n; i-- > 0;)
            if (strcmp(p->keys[i], key) == 0) {
                memcpy(p->keys[i], p->keys[n - 1], sizeof(p->keys[i]));
                atomic_fetch_sub_explicit(&p->state, 1, memory_order_release);
                break;
            }
        pthread_mutex_unlock(&p->lock);
    }
    return 0;
}

void cache_pending_attach(struct cache_pending *p, struct redis *r)
{
    if (p)
        redis_set_prepare(r, drain, p);
}

struct cache *cache_new(struct redis *r, struct cache_pending *pending)
{
    struct cache *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->redis = r;
    c->pending = pending;
    cache_pending_attach(pending, r);
    return c;
}

void cache_free(struct cache *c)
{
    free(c);
}

const char *cache_error(const struct cache *c)
{
    return redis_error(c->redis);
}

int cache_get(struct cache *c, const char *key, char *url, size_t cap, struct link_rules *rules)
{
    return linkentry_get(c->redis, key, url, cap, rules);
}

int cache_get_many(struct cache *c, const char *const *keys, size_t n, size_t cap,
                   void (*found)(void *ctx, size_t i, int rc, const char *url,
                                 const struct link_rules *rules),
                   void *ctx)
{
    return linkentry_get_many(c->redis, keys, n, cap, found, ctx);
}

int cache_fill(struct cache *c, const char *key, const char *url, const struct link_rules *rules,
               int64_t ttl)
{
    return linkentry_fill(c->redis, key, url, rules, ttl);
}

int cache_fill_negative(struct cache *c, const char *key, int64_t ttl)
{
    return linkentry_fill_negative(c->redis, key, ttl);
}

int cache_evict(struct cache *c, const char *key)
{
    int rc = linkentry_evict(c->redis, key);
    if (rc < 0)
        remember(c->pending, key);
    return rc;
}

int cache_evict_many(struct cache *c, const char *const *keys, size_t n)
{
    return linkentry_evict_many(c->redis, keys, n);
}

/* After the entry of a deleted or edited link was replaced (rc its outcome): other servers
 * drop the key from their hot caches when they hear it published. What Redis did not hear is
 * in PostgreSQL's journal: Redis is distrusted until it has been re-evicted from there. */
static int announce(struct cache *c, const char *key, int rc)
{
    if (rc == 0 && redis_command(c->redis, NULL, "PUBLISH " INVALIDATION_CHANNEL " %s", key) < 0)
        rc = -EAGAIN;
    if (rc < 0) {
        log_warn("redis: did not hear of the change of %s; distrusted until the changes since "
                 "are evicted again",
                 key);
        cache_distrust(c->pending, deadline_now_ms());
    }
    return rc;
}

int cache_tombstone(struct cache *c, const char *key, int64_t ttl)
{
    return announce(c, key, linkentry_tombstone(c->redis, key, ttl));
}

int cache_invalidate(struct cache *c, const char *key, int64_t ttl)
{
    return announce(c, key, linkentry_mark_edited(c->redis, key, ttl));
}

int cache_ping(struct cache *c)
{
    return redis_ping(c->redis) < 0 ? -EAGAIN : 0;
}
