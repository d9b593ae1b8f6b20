/* The thread that reads hot cache entries again from Redis before they go stale: the keys
 * that hits queue, and those a sweep of the table finds. */
#include "hotrefresh.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgthread.h"
#include "cache.h"
#include "deadline.h"
#include "hotcache.h"
#include "keyspace.h"
#include "link.h"
#include "linkentry.h"
#include "log.h"
#include "redis.h"
#include "urlcheck.h"

/* Keys waiting: a link is queued once per age, so this holds a burst of thousands. */
#define QUEUE_KEYS 16384
#define BATCH      LINKENTRY_GET_MAX
/* Woken by the first key queued, the thread waits this long for more: taken one by one, as
 * they come, thousands a second cost a Redis round trip and two context switches each. */
#define GATHER_MS 50
/* How often the thread sweeps a slice of the table for entries due (hotcache_due), sized so
 * that the whole table is swept once in a quarter of the age: an entry is due for half its
 * age (at least 3/8 of HOT_CACHE_MAX_AGE), so it is found before it goes stale. */
#define SWEEP_MS 1000

struct hotrefresh {
    struct hotcache *hot;
    struct redis *redis;
    struct cache *cache;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    bool stopping;                  /* under lock */
    size_t head, count;             /* under lock: a ring of QUEUE_KEYS */
    char (*queue)[KEY_MAX_LEN + 1]; /* under lock */
    char (*batch)[KEY_MAX_LEN + 1]; /* the thread's */
    const char *names[BATCH];       /* the thread's: into batch */
    size_t cursor;                  /* the thread's: the next set to sweep */
    uint64_t epoch;                 /* the thread's: read before the batch's MGET */
    int64_t now;                    /* the thread's */
    atomic_ullong refreshed;
};

/* One key's entry from Redis: put back fresh if it is a live plain link, else forgotten. */
static void found(void *ctx, size_t i, int rc, const char *url, const struct link_rules *rules)
{
    struct hotrefresh *r = ctx;
    const char *key = r->names[i];
    size_t len = strlen(key);

    if (rc == CACHE_HIT && (!rules->expires_at || rules->expires_at > r->now) &&
        link_rules_plain(rules, r->now)) {
        hotcache_put(r->hot, r->epoch, key, len, url, rules->expires_at, rules->redirect_status,
                     r->now);
        atomic_fetch_add_explicit(&r->refreshed, 1, memory_order_relaxed);
    } else {
        /* Deleted or edited (announced anyway), or not in Redis (evicted there, say). */
        hotcache_forget(r->hot, key, len);
    }
}

static void refresh(struct hotrefresh *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        r->names[i] = r->batch[i];
    /* Read first, as a fill does (redirect.c): a deletion heard while Redis answers keeps
     * what it answered out of the cache. */
    r->epoch = hotcache_epoch(r->hot);
    r->now = deadline_now_s_up();
    if (cache_get_many(r->cache, r->names, n, URLCHECK_MAX_LEN + 1, found, r) < 0)
        for (size_t i = 0; i < n; i++)
            hotcache_forget(r->hot, r->names[i], strlen(r->names[i]));
}

/* One SWEEP_MS slice of the table: its entries due, read again batch by batch. */
static void sweep(struct hotrefresh *r)
{
    size_t nsets = hotcache_sets(r->hot);
    size_t period_ms = (size_t)hotcache_max_age(r->hot) * 1000 / 4;
    size_t sets = period_ms <= SWEEP_MS ? nsets : (nsets * SWEEP_MS + period_ms - 1) / period_ms;

    while (sets > 0) {
        size_t n = hotcache_due(r->hot, deadline_now_s_up(), &r->cursor, &sets, r->batch, BATCH);
        if (n)
            refresh(r, n);
    }
}

static void *refresh_main(void *arg)
{
    struct hotrefresh *r = arg;
    long long next_sweep = deadline_now_ms() + SWEEP_MS;

    pthread_mutex_lock(&r->lock);
    for (;;) {
        long long now = deadline_now_ms();
        /* Asked-for keys do not hold the sweep up, nor the sweep them for long. */
        while (!r->count && !r->stopping && now < next_sweep) {
            struct timespec until;
            deadline_after(CLOCK_REALTIME, (int)(next_sweep - now), &until);
            pthread_cond_timedwait(&r->nonempty, &r->lock, &until);
            now = deadline_now_ms();
        }
        if (r->stopping)
            break;
        if (now >= next_sweep) {
            pthread_mutex_unlock(&r->lock);
            sweep(r);
            pthread_mutex_lock(&r->lock);
            next_sweep = now + SWEEP_MS;
            continue;
        }
        if (r->count < BATCH) {
            struct timespec until;
            deadline_after(CLOCK_REALTIME, GATHER_MS, &until);
            /* Woken early by a whole batch, or stop(). */
            while (r->count < BATCH && !r->stopping &&
                   pthread_cond_timedwait(&r->nonempty, &r->lock, &until) == 0)
                ;
            if (r->stopping)
                break;
        }
        size_t n = 0;
        for (; n < BATCH && r->count; n++) {
            memcpy(r->batch[n], r->queue[r->head], sizeof(r->batch[n]));
            r->head = (r->head + 1) % QUEUE_KEYS;
            r->count--;
        }
        pthread_mutex_unlock(&r->lock);
        refresh(r, n);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct hotrefresh *hotrefresh_start(struct hotcache *hot, const struct redis_target *target,
                                    struct cache_pending *pending)
{
    struct hotrefresh *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->hot = hot;
    atomic_init(&r->refreshed, 0);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->nonempty, NULL);
    r->queue = calloc(QUEUE_KEYS, sizeof(*r->queue));
    r->batch = calloc(BATCH, sizeof(*r->batch));
    r->redis = redis_new(target);
    r->cache = r->redis ? cache_new(r->redis, pending) : NULL;
    if (!r->queue || !r->batch || !r->cache)
        goto fail;
    if (bgthread_start(&r->thread, "hot-refresh", refresh_main, r) < 0) {
        log_error("cannot start the hot cache refresh thread");
        goto fail;
    }
    r->started = true;
    return r;
fail:
    hotrefresh_stop(r);
    return NULL;
}

bool hotrefresh_ask(struct hotrefresh *r, const char *key, size_t len)
{
    bool queued = false;

    if (len > KEY_MAX_LEN)
        return false;
    pthread_mutex_lock(&r->lock);
    if (r->count < QUEUE_KEYS && !r->stopping) {
        char *slot = r->queue[(r->head + r->count) % QUEUE_KEYS];
        memcpy(slot, key, len);
        slot[len] = '\0';
        /* The first key wakes the thread, a whole batch ends its gathering. */
        if (++r->count == 1 || r->count == BATCH)
            pthread_cond_signal(&r->nonempty);
        queued = true;
    }
    pthread_mutex_unlock(&r->lock);
    return queued;
}

unsigned long long hotrefresh_count(struct hotrefresh *r)
{
    return r ? atomic_load_explicit(&r->refreshed, memory_order_relaxed) : 0;
}

void hotrefresh_stop(struct hotrefresh *r)
{
    if (!r)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_signal(&r->nonempty);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    cache_free(r->cache);
    redis_free(r->redis);
    free(r->queue);
    free(r->batch);
    pthread_cond_destroy(&r->nonempty);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
