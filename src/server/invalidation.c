/* The pub/sub listener thread, on a hiredis connection of its own (a subscribed connection
 * can do nothing else). It polls the socket itself so that it can stop, and PING, on time. */
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

#include "deadline.h"
#include "hotcache.h"
#include "log.h"
#include "redis.h"

#define POLL_MS 100
/* Idle this long, we PING; unanswered this long after, the subscription is lost. */
#define IDLE_PING_MS 250
#define PONG_WAIT_MS 500
#define RETRY_MS     1000

struct invalidation {
    struct hotcache *hot;
    const struct redis_target *target;
    pthread_t thread;
    atomic_bool stopping;
    atomic_bool subscribed;
    bool down_logged;
};

/* A connection of the module's own making (redis_connect()), subscribed. */
static redisContext *subscribe(struct invalidation *inv, char *err, size_t errlen)
{
    redisContext *ctx = redis_connect(inv->target, err, errlen);
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

/* Returns true for a reply that proves the connection alive; evicts on a message. */
static bool handle(struct invalidation *inv, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return false;
    if (strcmp(r->element[0]->str, "message") == 0 && r->elements == 3 &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        hotcache_evict(inv->hot, r->element[2]->str, r->element[2]->len);
        return true;
    }
    return strcmp(r->element[0]->str, "pong") == 0;
}

/* Serves one subscription until it fails or we stop. */
static void listen_on(struct invalidation *inv, redisContext *ctx, char *err, size_t errlen)
{
    int64_t last_heard = deadline_now_ms(), ping_sent = 0;
    struct pollfd pfd = {.fd = ctx->fd, .events = POLLIN};

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
                if (handle(inv, r)) {
                    last_heard = now;
                    ping_sent = 0;
                }
                freeReplyObject(r);
                r = NULL;
            }
            if (ctx->err) {
                snprintf(err, errlen, "%s", ctx->errstr);
                return;
            }
        }
        if (ping_sent && now - ping_sent > PONG_WAIT_MS) {
            snprintf(err, errlen, "no answer to PING for %d ms", PONG_WAIT_MS);
            return;
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
    char err[256];

    while (!atomic_load(&inv->stopping)) {
        redisContext *ctx = subscribe(inv, err, sizeof(err));
        if (!ctx) {
            if (!inv->down_logged)
                log_warn("redis: cannot subscribe to deletions (%s); hot cache off", err);
            inv->down_logged = true;
            sleep_unless_stopping(inv, RETRY_MS);
            continue;
        }
        /* Subscribed first, then on: a deletion published from now on reaches us, and the
         * sweep in hotcache_set_enabled() drops whatever was filled before. */
        hotcache_set_enabled(inv->hot, true);
        atomic_store(&inv->subscribed, true);
        if (inv->down_logged)
            log_info("redis: subscribed to deletions again; hot cache on");
        inv->down_logged = false;
        err[0] = '\0';
        listen_on(inv, ctx, err, sizeof(err));
        atomic_store(&inv->subscribed, false);
        hotcache_set_enabled(inv->hot, false);
        redisFree(ctx);
        if (!atomic_load(&inv->stopping)) {
            log_warn("redis: lost the deletions subscription (%s); hot cache off", err);
            inv->down_logged = true;
        }
    }
    return NULL;
}

struct invalidation *invalidation_start(const struct redis_target *target, struct hotcache *hot)
{
    struct invalidation *inv = calloc(1, sizeof(*inv));

    if (!inv)
        return NULL;
    inv->hot = hot;
    inv->target = target;
    atomic_init(&inv->stopping, false);
    atomic_init(&inv->subscribed, false);
    if (pthread_create(&inv->thread, NULL, listener_main, inv) != 0) {
        free(inv);
        return NULL;
    }
    return inv;
}

void invalidation_stop(struct invalidation *inv)
{
    if (!inv)
        return;
    atomic_store(&inv->stopping, true);
    pthread_join(inv->thread, NULL);
    free(inv);
}

bool invalidation_subscribed(struct invalidation *inv)
{
    return inv && atomic_load(&inv->subscribed);
}
