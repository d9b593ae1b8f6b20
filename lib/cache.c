/* Redis access for the redirect cache, through hiredis with short timeouts. */
#include "cache.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "invalidation.h"
#include "log.h"

#define KEY_FMT CACHE_ENTRY_KEY_FMT

/* Redis answers in microseconds; anything slower than this is treated as down. */
#define CACHE_TIMEOUT_MS 250

struct cache {
    char host[256];
    char path[256];
    char password[256];
    int port;
    int db;
    redisContext *ctx;
    struct cache_pending *pending;
    time_t retry_at;
    bool down_logged;
    char error[256];
    /* The script cache_eval() loaded on this connection, and its SHA1. */
    const char *script;
    char script_sha[41];
};

int cache_parse_url(const char *url, char *host, size_t hostcap, int *port, char *path,
                    size_t pathcap, char *password, size_t passcap, int *db)
{
    const char *p, *end;

    host[0] = path[0] = password[0] = '\0';
    *port = 6379;
    *db = 0;
    if (strncmp(url, "unix://", 7) == 0) {
        p = url + 7;
        if (*p != '/' || strlen(p) >= pathcap)
            return -EINVAL;
        snprintf(path, pathcap, "%s", p);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -EINVAL;
    p = url + 8;
    end = p + strcspn(p, "/");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if ((size_t)(at - pw) >= passcap)
            return -EINVAL;
        snprintf(password, passcap, "%.*s", (int)(at - pw), pw);
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    if (hend == p || (size_t)(hend - p) >= hostcap)
        return -EINVAL;
    snprintf(host, hostcap, "%.*s", (int)(hend - p), p);
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || v < 1 || v > 65535)
            return -EINVAL;
        *port = (int)v;
    }
    if (*end == '/' && end[1] != '\0') {
        char *e;
        long v = strtol(end + 1, &e, 10);
        if (*e != '\0' || v < 0 || v > 1000)
            return -EINVAL;
        *db = (int)v;
    }
    return 0;
}

int cache_pending_init(struct cache_pending *p)
{
    atomic_init(&p->count, 0);
    return pthread_mutex_init(&p->lock, NULL) == 0 ? 0 : -ENOMEM;
}

void cache_pending_release(struct cache_pending *p)
{
    pthread_mutex_destroy(&p->lock);
}

struct cache *cache_new(const char *redis_url, struct cache_pending *pending)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->pending = pending;
    if (cache_parse_url(redis_url, c->host, sizeof(c->host), &c->port, c->path, sizeof(c->path),
                        c->password, sizeof(c->password), &c->db) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    free(c);
}

const char *cache_error(const struct cache *c)
{
    return c->error[0] ? c->error : "unknown error";
}

static void mark_down(struct cache *c, const char *why)
{
    /* why may point into the context about to be freed: copy it first, log the copy. */
    if (why != c->error)
        snprintf(c->error, sizeof(c->error), "%s", why);
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    c->retry_at = time(NULL) + 1;
    if (!c->down_logged) {
        log_warn("redis: unavailable, serving from postgres: %s", c->error);
        c->down_logged = true;
    }
}

/* Runs one command on the connected context; NULL (and the connection dropped) on any
 * failure, including an error reply. */
static redisReply *checked(struct cache *c, redisReply *r)
{
    if (!r) {
        mark_down(c, c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
        return NULL;
    }
    /* The script cache was flushed, by a restart or SCRIPT FLUSH: cache_eval() sends the
     * script itself; the connection is fine. */
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
        return r;
    if (r->type == REDIS_REPLY_ERROR) {
        char why[256];
        snprintf(why, sizeof(why), "%s", r->str);
        freeReplyObject(r);
        mark_down(c, why);
        return NULL;
    }
    return r;
}

static redisReply *vcommand(struct cache *c, const char *fmt, va_list ap)
{
    return checked(c, redisvCommand(c->ctx, fmt, ap));
}

static redisReply *command(struct cache *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcommand(c, fmt, ap);
    va_end(ap);
    return r;
}

static int connect_now(struct cache *c)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = CACHE_TIMEOUT_MS * 1000};

    c->script = NULL;
    c->ctx = c->path[0] ? redisConnectUnixWithTimeout(c->path, tv)
                        : redisConnectWithTimeout(c->host, c->port, tv);
    if (!c->ctx || c->ctx->err) {
        mark_down(c, c->ctx ? c->ctx->errstr : "out of memory");
        return -EAGAIN;
    }
    if (redisSetTimeout(c->ctx, tv) != REDIS_OK) {
        mark_down(c, "cannot set timeout");
        return -EAGAIN;
    }
    if (c->password[0]) {
        redisReply *r = command(c, "AUTH %s", c->password);
        if (!r)
            return -EAGAIN;
        freeReplyObject(r);
    }
    if (c->db) {
        redisReply *r = command(c, "SELECT %d", c->db);
        if (!r)
            return -EAGAIN;
        freeReplyObject(r);
    }
    if (c->down_logged) {
        log_info("redis: connected again");
        c->down_logged = false;
    }
    return 0;
}

/* Deletes the entries of links deleted while Redis could not be reached, before this
 * connection serves anything. */
static int drain_pending(struct cache *c)
{
    struct cache_pending *p = c->pending;
    char key[KEY_MAX_LEN + 1];

    while (p && atomic_load_explicit(&p->count, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->lock);
        size_t n = atomic_load_explicit(&p->count, memory_order_relaxed);
        if (n == 0) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        memcpy(key, p->keys[n - 1], sizeof(key));
        pthread_mutex_unlock(&p->lock);
        redisReply *r = command(c, "DEL " KEY_FMT, key);
        if (!r)
            return -EAGAIN;
        freeReplyObject(r);
        r = command(c, "PUBLISH " INVALIDATION_CHANNEL " %s", key);
        if (!r)
            return -EAGAIN;
        freeReplyObject(r);
        /* Remove it only now; another thread may have drained it too, which is harmless. */
        pthread_mutex_lock(&p->lock);
        n = atomic_load_explicit(&p->count, memory_order_relaxed);
        for (size_t i = n; i-- > 0;)
            if (strcmp(p->keys[i], key) == 0) {
                memcpy(p->keys[i], p->keys[n - 1], sizeof(p->keys[i]));
                atomic_store_explicit(&p->count, n - 1, memory_order_release);
                break;
            }
        pthread_mutex_unlock(&p->lock);
    }
    return 0;
}

/* A command for run_command(): a format and its arguments, or an argument vector. */
struct command {
    const char *fmt;
    va_list *ap;
    int argc;
    const char **argv;
};

static redisReply *send_command(struct cache *c, const struct command *cmd)
{
    va_list ap;
    redisReply *r;

    if (!cmd->fmt)
        return checked(c, redisCommandArgv(c->ctx, cmd->argc, cmd->argv, NULL));
    va_copy(ap, *cmd->ap);
    r = vcommand(c, cmd->fmt, ap);
    va_end(ap);
    return r;
}

/* Runs a command, connecting first if needed. A connection that worked before and fails now
 * (Redis restarted, say) gets one immediate reconnect and retry, so a restart costs no
 * request; every command here may safely run twice. */
static redisReply *run_command(struct cache *c, const struct command *cmd)
{
    redisReply *r = NULL;

    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = !c->ctx;
        if (fresh && time(NULL) < c->retry_at)
            return NULL;
        if (fresh && connect_now(c) < 0)
            return NULL;
        if (drain_pending(c) < 0) {
            if (fresh)
                return NULL;
            c->retry_at = 0;
            continue;
        }
        r = send_command(c, cmd);
        if (r || fresh)
            return r;
        c->retry_at = 0;
    }
    return r;
}

static redisReply *run(struct cache *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct command cmd = {.fmt = fmt, .ap = &ap};
    redisReply *r = run_command(c, &cmd);
    va_end(ap);
    return r;
}

static void remember(struct cache *c, const char *key)
{
    struct cache_pending *p = c->pending;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    size_t n = atomic_load_explicit(&p->count, memory_order_relaxed);
    if (n < CACHE_PENDING_MAX) {
        snprintf(p->keys[n], sizeof(p->keys[n]), "%s", key);
        atomic_store_explicit(&p->count, n + 1, memory_order_release);
    } else {
        log_error("redis: more than %d deletions wait for redis; %s may be served from the cache "
                  "until it expires there",
                  CACHE_PENDING_MAX, key);
    }
    pthread_mutex_unlock(&p->lock);
}

int cache_get(struct cache *c, const char *key, char *url, size_t cap, int64_t *expires_at)
{
    redisReply *r;
    int rc = -ENOENT;

    r = run(c, "GET " KEY_FMT, key);
    if (!r)
        return -EAGAIN;
    if (r->type == REDIS_REPLY_STRING) {
        char *nl;
        if (r->len == strlen(CACHE_ENTRY_NEGATIVE) &&
            memcmp(r->str, CACHE_ENTRY_NEGATIVE, r->len) == 0) {
            rc = CACHE_NEGATIVE;
        } else if ((nl = memchr(r->str, CACHE_ENTRY_SEP[0], r->len)) &&
                   r->len - (size_t)(nl - r->str) <= cap) {
            size_t ulen = r->len - (size_t)(nl - r->str) - 1;
            *expires_at = strtoll(r->str, NULL, 10);
            memcpy(url, nl + 1, ulen);
            url[ulen] = '\0';
            rc = CACHE_HIT;
        }
        /* Anything else is not ours: treat it as a miss and let the fill replace it later. */
    }
    freeReplyObject(r);
    return rc;
}

static int simple(redisReply *r)
{
    if (!r)
        return -EAGAIN;
    freeReplyObject(r);
    return 0;
}

int cache_fill(struct cache *c, const char *key, const char *url, int64_t expires_at, int64_t ttl)
{
    char head[24];
    snprintf(head, sizeof(head), "%" PRId64 CACHE_ENTRY_SEP, expires_at);
    return simple(run(c, "SET " KEY_FMT " %s%s EX %" PRId64 " NX", key, head, url, ttl));
}

int cache_fill_negative(struct cache *c, const char *key, int64_t ttl)
{
    return simple(run(c, "SET " KEY_FMT " " CACHE_ENTRY_NEGATIVE " EX %" PRId64 " NX", key, ttl));
}

int cache_evict(struct cache *c, const char *key)
{
    int rc = simple(run(c, "DEL " KEY_FMT, key));
    if (rc < 0)
        remember(c, key);
    return rc;
}

/* Keys per DEL command: small enough that Redis never blocks long on one. */
#define EVICT_CHUNK 1000

/* Sends DEL commands for keys[0..n) and reads their replies: one round trip in all. */
static int evict_pipelined(struct cache *c, const char *const *keys, size_t n)
{
    const char *argv[EVICT_CHUNK + 1];
    size_t argvlen[EVICT_CHUNK + 1];
    char(*names)[KEY_MAX_LEN + 3] = malloc(EVICT_CHUNK * sizeof(*names));
    size_t sent = 0, failed = 0;
    redisReply *r;
    int rc = 0;

    if (!names)
        return -ENOMEM;
    for (size_t at = 0; at < n; at += EVICT_CHUNK) {
        size_t m = n - at < EVICT_CHUNK ? n - at : EVICT_CHUNK;
        argv[0] = "DEL";
        argvlen[0] = 3;
        for (size_t i = 0; i < m; i++) {
            int len = snprintf(names[i], sizeof(names[i]), KEY_FMT, keys[at + i]);
            argv[i + 1] = names[i];
            argvlen[i + 1] = (size_t)len < sizeof(names[i]) ? (size_t)len : sizeof(names[i]) - 1;
        }
        /* hiredis copies the arguments into its output buffer, so names is reused. */
        if (redisAppendCommandArgv(c->ctx, (int)m + 1, argv, argvlen) != REDIS_OK) {
            rc = -ENOMEM;
            break;
        }
        sent++;
    }
    for (size_t i = 0; i < sent; i++) {
        if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK || !r) {
            mark_down(c, c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
            rc = -EAGAIN;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR)
            failed++;
        freeReplyObject(r);
    }
    free(names);
    if (rc == 0 && failed) {
        mark_down(c, "DEL answered with an error");
        rc = -EAGAIN;
    }
    return rc;
}

int cache_evict_many(struct cache *c, const char *const *keys, size_t n)
{
    int rc = -EAGAIN;

    if (n == 0)
        return 0;
    /* As run(): one immediate retry on a connection that worked before; DEL may run twice. */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = !c->ctx;
        if (fresh && time(NULL) < c->retry_at)
            return -EAGAIN;
        if (fresh && connect_now(c) < 0)
            return -EAGAIN;
        if (drain_pending(c) == 0) {
            rc = evict_pipelined(c, keys, n);
            if (rc != -EAGAIN || fresh)
                return rc;
        } else if (fresh) {
            return -EAGAIN;
        }
        c->retry_at = 0;
    }
    return rc;
}

int cache_tombstone(struct cache *c, const char *key, int64_t ttl)
{
    int rc = simple(run(c, "SET " KEY_FMT " " CACHE_ENTRY_NEGATIVE " EX %" PRId64, key, ttl));
    /* Other servers drop the key from their hot caches when they hear this. */
    if (rc == 0)
        rc = simple(run(c, "PUBLISH " INVALIDATION_CHANNEL " %s", key));
    if (rc < 0)
        remember(c, key);
    return rc;
}

int cache_ping(struct cache *c)
{
    return simple(run(c, "PING"));
}

#define EVAL_MAX_ARGS 8

int cache_eval(struct cache *c, const char *script, const char *const *keys, int nkeys,
               const long long *args, int nargs, long long *out, size_t nout)
{
    char text[EVAL_MAX_ARGS][24], count[16];
    const char *argv[3 + EVAL_MAX_ARGS * 2];
    redisReply *r;
    int rc = -EPROTO, argc = 3;

    if (nargs < 0 || nargs > EVAL_MAX_ARGS || nkeys < 0 || nkeys > EVAL_MAX_ARGS)
        return -EINVAL;
    if (c->script != script) {
        r = run(c, "SCRIPT LOAD %s", script);
        if (!r)
            return -EAGAIN;
        if (r->type == REDIS_REPLY_STRING && r->len < sizeof(c->script_sha)) {
            memcpy(c->script_sha, r->str, r->len);
            c->script_sha[r->len] = '\0';
            c->script = script;
        }
        freeReplyObject(r);
        if (c->script != script)
            return -EPROTO;
    }
    snprintf(count, sizeof(count), "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = c->script_sha;
    argv[2] = count;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++) {
        snprintf(text[i], sizeof(text[i]), "%lld", args[i]);
        argv[argc++] = text[i];
    }
    struct command cmd = {.argc = argc, .argv = argv};
    r = run_command(c, &cmd);
    if (r && r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = script;
        r = run_command(c, &cmd);
    }
    if (!r)
        return -EAGAIN;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= nout) {
        rc = 0;
        for (size_t i = 0; i < nout && rc == 0; i++) {
            if (r->element[i]->type != REDIS_REPLY_INTEGER)
                rc = -EPROTO;
            else
                out[i] = r->element[i]->integer;
        }
    }
    freeReplyObject(r);
    return rc;
}

int cache_incr(struct cache *c, const char *key)
{
    return simple(run(c, "INCR %s", key));
}
