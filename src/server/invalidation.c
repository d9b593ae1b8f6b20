/* The pub/sub listener thread, on a hiredis connection of its own (a subscribed connection
 * can do nothing else), and the resyncs that make Redis trusted again (see invalidation.h).
 * It polls the socket itself so that it can stop, PING, resync and ask Sentinel on time. */
#include "invalidation.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgthread.h"
#include "cache.h"
#include "deadline.h"
#include "hotcache.h"
#include "linkentry.h"
#include "log.h"
#include "redis.h"
#include "store.h"

#define POLL_MS 100
/* Idle this long, we PING; unanswered this long after, the hot cache is paused; unanswered
 * for SUSPEND_MAX_MS, the subscription is lost. */
#define IDLE_PING_MS   250
#define PONG_WAIT_MS   500
#define SUSPEND_MAX_MS 5000
#define RETRY_MS       1000
/* How often the sentinels are asked which master is current. */
#define SENTINEL_POLL_MS 500
/* Changes this much older than the last moment Redis was known consistent are re-evicted
 * too: a delete's commit and its tombstone are not one instant, replication to a Redis
 * replica lags, and the sentinels learn of a promotion a moment apart. */
#define RESYNC_MARGIN_S 10
#define RESYNC_BATCH    1000

struct invalidation {
    struct invalidation_config cfg;
    pthread_t thread;
    atomic_bool stopping;
    atomic_bool subscribed;
    atomic_bool synced; /* a resync has completed since start */
    bool down_logged;
    struct redis *redis; /* the resync's writes */
    char (*keys)[KEY_MAX_LEN + 1];
    /* Monotonic ms of the last moment Redis was heard and (through Sentinel) was the master. */
    long long confirmed_ms;
};

/* A connection of the module's own making (redis_connect_at()), subscribed; where in *where. */
static redisContext *subscribe(struct invalidation *inv, struct redis_addr *where, char *err,
                               size_t errlen)
{
    redisContext *ctx = redis_connect_at(inv->cfg.target, where, err, errlen);
    redisReply *r;

    if (!ctx)
        return NULL;
    r = redisCommand(ctx, "SUBSCRIBE " INVALIDATION_CHANNEL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        snprintf(err, errlen, "%s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str
                 : ctx->errstr[0]                  ? ctx->errstr
                                                   : "no answer");
        if (r)
            freeReplyObject(r);
        redisFree(ctx);
        return NULL;
    }
    freeReplyObject(r);
    return ctx;
}

enum heard { HEARD_NOTHING, HEARD_MESSAGE, HEARD_PONG };

/* What a reply proves: the connection alive (a message, which it evicts), or also that every
 * message published before our PING has been handled (its PONG: replies keep their order). */
static enum heard handle(struct invalidation *inv, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return HEARD_NOTHING;
    if (strcmp(r->element[0]->str, "message") == 0 && r->elements == 3 &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        hotcache_evict(inv->cfg.hot, r->element[2]->str, r->element[2]->len);
        return HEARD_MESSAGE;
    }
    return strcmp(r->element[0]->str, "pong") == 0 ? HEARD_PONG : HEARD_NOTHING;
}

/* What the resync's pipeline sends: for each key, its mark and its announcement. */
struct marks {
    char (*keys)[KEY_MAX_LEN + 1];
    char ttl[24];
    char name[KEY_MAX_LEN + 3];
    const char *argv[6];
};

static int build_mark(void *ctx, size_t i, struct redis_argv *cmd)
{
    struct marks *m = ctx;
    const char *key = m->keys[i / 2];

    if (i % 2 == 0) {
        snprintf(m->name, sizeof(m->name), LINKENTRY_KEY_FMT, key);
        m->argv[0] = "SET";
        m->argv[1] = m->name;
        m->argv[2] = "~";
        m->argv[3] = "EX";
        m->argv[4] = m->ttl;
        *cmd = (struct redis_argv){.argc = 5, .argv = m->argv};
    } else {
        m->argv[0] = "PUBLISH";
        m->argv[1] = INVALIDATION_CHANNEL;
        m->argv[2] = key;
        *cmd = (struct redis_argv){.argc = 3, .argv = m->argv};
    }
    return 0;
}

/* When Redis is distrusted: overwrites the entry of every link changed since then (less the
 * margin; never further back than an entry can live) with the edit mark, and publishes it,
 * in batches; then trusts Redis again. The marks are written whatever the entry held: a
 * stale link, a tombstone, or nothing. Returns 0, or -EAGAIN when PostgreSQL or Redis failed
 * (Redis stays distrusted). */
static int resync(struct invalidation *inv)
{
    long long since;
    unsigned ticket;
    int64_t after = 0;
    size_t n, total = 0;
    struct marks m = {.keys = inv->keys};

    if (!cache_resync_wanted(inv->cfg.pending, &since, &ticket))
        return 0;
    double seconds = (double)(deadline_now_ms() - since) / 1000.0 + RESYNC_MARGIN_S;
    if (seconds > (double)inv->cfg.cache_ttl + RESYNC_MARGIN_S)
        seconds = (double)inv->cfg.cache_ttl + RESYNC_MARGIN_S;
    snprintf(m.ttl, sizeof(m.ttl), "%lld", inv->cfg.change_ttl);
    do {
        if (store_changes(inv->cfg.store, seconds, &after, RESYNC_BATCH, inv->keys, &n) < 0) {
            log_warn("redis: cannot read the changes to evict again from postgres: %s",
                     store_error(inv->cfg.store));
            return -EAGAIN;
        }
        for (size_t i = 0; i < n; i++)
            hotcache_evict(inv->cfg.hot, inv->keys[i], strlen(inv->keys[i]));
        if (n > 0 && redis_pipeline(inv->redis, 2 * n, build_mark, &m) < 0) {
            log_warn("redis: cannot evict changed links again: %s", redis_error(inv->redis));
            return -EAGAIN;
        }
        total += n;
    } while (n == RESYNC_BATCH && !atomic_load(&inv->stopping));
    if (atomic_load(&inv->stopping))
        return -EAGAIN;
    if (cache_trust(inv->cfg.pending, ticket))
        log_info("redis: trusted again after evicting %zu changes of the last %.0f s", total,
                 seconds);
    return 0;
}

static bool same_addr(const struct redis_addr *a, const struct redis_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0 && strcmp(a->path, b->path) == 0;
}

/* Serves one subscription, to the master at where, until it fails, Sentinel names another
 * master, or we stop. */
static void listen_on(struct invalidation *inv, redisContext *ctx, const struct redis_addr *where,
                      char *err, size_t errlen)
{
    int64_t last_heard = deadline_now_ms(), ping_sent = 0;
    int64_t asked = last_heard, agreed = last_heard;
    /* While paused (a PING unanswered): since when, whether its PONG came, and when the resync
     * may be tried again. */
    int64_t paused_at = 0, resync_at = 0;
    bool ponged = false;
    struct pollfd pfd = {.fd = ctx->fd, .events = POLLIN};
    const struct redis_target *t = inv->cfg.target;

    while (!atomic_load(&inv->stopping)) {
        int n = poll(&pfd, 1, POLL_MS);
        int64_t now = deadline_now_ms();
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return;
        }
        if (n > 0) {
            redisReply *r = NULL;
            if (redisBufferRead(ctx) != REDIS_OK) {
                snprintf(err, errlen, "%s", ctx->errstr[0] ? ctx->errstr : "connection lost");
                return;
            }
            while (redisGetReplyFromReader(ctx, (void **)&r) == REDIS_OK && r) {
                enum heard heard = handle(inv, r);
                if (heard != HEARD_NOTHING) {
                    last_heard = now;
                    ping_sent = 0;
                }
                if (paused_at && !ponged && heard == HEARD_PONG) {
                    /* Every message published before it is handled. A deletion whose
                     * publication failed before it is in the journal: one more resync, from
                     * now, evicts it before the cache answers again. */
                    ponged = true;
                    cache_distrust(inv->cfg.pending, inv->confirmed_ms);
                    resync_at = 0;
                }
                freeReplyObject(r);
                r = NULL;
            }
            if (ctx->err) {
                snprintf(err, errlen, "%s", ctx->errstr);
                return;
            }
        }
        /* A PING unanswered: a deletion published meanwhile may be late, or lost should the
         * connection be dead, so the hot cache stops answering at once. But a Redis that only
         * stalled (a fork, a slow command, a starved CPU) still delivers every message, in
         * order, before the PONG: the cache waits for it with its entries, rather than being
         * emptied and refilled by every server at once while Redis is struggling. Redis is
         * distrusted as for a lost subscription: the journal's changes are evicted again,
         * from the hot cache too, for deletions whose publication failed meanwhile. */
        if (ping_sent && now - ping_sent > PONG_WAIT_MS && !paused_at) {
            paused_at = now;
            ponged = false;
            hotcache_suspend(inv->cfg.hot);
            cache_distrust(inv->cfg.pending, inv->confirmed_ms);
            log_warn("redis: no answer to PING for %d ms; hot cache paused, keeping its %zu "
                     "links until Redis answers",
                     PONG_WAIT_MS, hotcache_count(inv->cfg.hot));
        }
        if (paused_at && now - paused_at > SUSPEND_MAX_MS - PONG_WAIT_MS) {
            snprintf(err, errlen, "paused for %d ms: %s", SUSPEND_MAX_MS,
                     ponged ? "changes could not be evicted again" : "no answer to PING");
            return;
        }
        if (t->nsentinels && now - asked >= SENTINEL_POLL_MS) {
            struct redis_addr current;
            char why[256];
            asked = now;
            if (redis_target_resolve(t, &current, why, sizeof(why)) == 0) {
                if (!same_addr(&current, where)) {
                    snprintf(err, errlen, "sentinel names another master, %.64s:%d", current.host,
                             current.port);
                    redis_target_master_changed(t);
                    return;
                }
                agreed = now;
            }
        }
        if (!paused_at)
            inv->confirmed_ms = t->nsentinels && agreed < last_heard ? agreed : last_heard;
        if (now >= resync_at && resync(inv) < 0) {
            /* Paused, Redis may still be stalled: tried again while the pause lasts. */
            if (!paused_at) {
                snprintf(err, errlen, "changes could not be evicted again");
                return;
            }
            resync_at = now + RETRY_MS;
        }
        long long since;
        unsigned ticket;
        if (paused_at && ponged && !cache_resync_wanted(inv->cfg.pending, &since, &ticket)) {
            log_info("redis: answered PING after %lld ms; hot cache on again with its %zu links",
                     (long long)(now - paused_at + PONG_WAIT_MS), hotcache_count(inv->cfg.hot));
            hotcache_resume(inv->cfg.hot);
            paused_at = 0;
            inv->confirmed_ms = t->nsentinels && agreed < last_heard ? agreed : last_heard;
        }
        if (!ping_sent && now - last_heard > IDLE_PING_MS) {
            int done = 0;
            if (redisAppendCommand(ctx, "PING") != REDIS_OK) {
                snprintf(err, errlen, "cannot send PING");
                return;
            }
            while (!done)
                if (redisBufferWrite(ctx, &done) != REDIS_OK) {
                    snprintf(err, errlen, "%s", ctx->errstr[0] ? ctx->errstr : "write failed");
                    return;
                }
            ping_sent = now;
        }
    }
}

static void sleep_unless_stopping(struct invalidation *inv, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&inv->stopping); waited += POLL_MS)
        poll(NULL, 0, POLL_MS);
}

static void *listener_main(void *arg)
{
    struct invalidation *inv = arg;
    struct redis_addr where;
    char err[256];

    /* Nothing is known at start: a Redis that outlived every server may hold entries of links
     * changed since, as old as an entry can be. */
    cache_distrust(inv->cfg.pending, deadline_now_ms() - inv->cfg.cache_ttl * 1000);
    while (!atomic_load(&inv->stopping)) {
        redisContext *ctx = subscribe(inv, &where, err, sizeof(err));
        if (!ctx) {
            if (!inv->down_logged)
                log_warn("redis: cannot subscribe to deletions (%s); hot cache off", err);
            inv->down_logged = true;
            sleep_unless_stopping(inv, RETRY_MS);
            continue;
        }
        /* Subscribed first, then the journal: a change published from now on reaches us, one
         * made before is read from PostgreSQL; and the sweep in hotcache_set_enabled() drops
         * whatever was filled before. */
        if (resync(inv) < 0) {
            redisFree(ctx);
            inv->down_logged = true;
            sleep_unless_stopping(inv, RETRY_MS);
            continue;
        }
        hotcache_set_enabled(inv->cfg.hot, true);
        atomic_store(&inv->subscribed, true);
        atomic_store(&inv->synced, true);
        if (inv->down_logged)
            log_info("redis: subscribed to deletions again; hot cache on");
        inv->down_logged = false;
        err[0] = '\0';
        listen_on(inv, ctx, &where, err, sizeof(err));
        /* From the last moment Redis was known to be the consistent master. */
        cache_distrust(inv->cfg.pending, inv->confirmed_ms);
        atomic_store(&inv->subscribed, false);
        hotcache_set_enabled(inv->cfg.hot, false);
        redisFree(ctx);
        if (!atomic_load(&inv->stopping)) {
            log_warn("redis: lost the deletions subscription (%s); hot cache off", err);
            inv->down_logged = true;
        }
    }
    return NULL;
}

struct invalidation *invalidation_start(const struct invalidation_config *cfg)
{
    struct invalidation *inv = calloc(1, sizeof(*inv));

    if (!inv)
        goto fail;
    inv->cfg = *cfg;
    atomic_init(&inv->stopping, false);
    atomic_init(&inv->subscribed, false);
    atomic_init(&inv->synced, false);
    inv->redis = redis_new(cfg->target);
    inv->keys = calloc(RESYNC_BATCH, sizeof(*inv->keys));
    if (!inv->redis || !inv->keys ||
        bgthread_start(&inv->thread, "invalidation", listener_main, inv) < 0)
        goto fail;
    return inv;
fail:
    if (inv) {
        redis_free(inv->redis);
        free(inv->keys);
        free(inv);
    }
    store_free(cfg->store);
    return NULL;
}

void invalidation_stop(struct invalidation *inv)
{
    if (!inv)
        return;
    atomic_store(&inv->stopping, true);
    pthread_join(inv->thread, NULL);
    redis_free(inv->redis);
    store_free(inv->cfg.store);
    free(inv->keys);
    free(inv);
}

bool invalidation_subscribed(struct invalidation *inv)
{
    return inv && atomic_load(&inv->subscribed);
}

bool invalidation_synced(struct invalidation *inv)
{
    return inv && atomic_load(&inv->synced);
}
