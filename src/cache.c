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

#include "log.h"

/* Redis answers in microseconds; anything slower than this is treated as down. */
#define CACHE_TIMEOUT_MS 250

struct cache {
    char host[256];
    char path[256];
    char password[256];
    int port;
    int db;
    redisContext *ctx;
    time_t retry_at;
    bool down_logged;
    char error[256];
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

struct cache *cache_new(const char *redis_url)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
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
    snprintf(c->error, sizeof(c->error), "%s", why);
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    c->retry_at = time(NULL) + 1;
    if (!c->down_logged) {
        log_warn("redis: unavailable, serving from postgres: %s", why);
        c->down_logged = true;
    }
}

static redisReply *command(struct cache *c, const char *fmt, ...);

static int ensure(struct cache *c)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = CACHE_TIMEOUT_MS * 1000};

    if (c->ctx)
        return 0;
    if (time(NULL) < c->retry_at)
        return -EAGAIN;
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

/* Runs one command on a connected context; NULL (and the connection dropped) on any failure,
 * including an error reply. */
static redisReply *command(struct cache *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(c->ctx, fmt, ap);
    va_end(ap);
    if (!r) {
        mark_down(c, c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char why[256];
        snprintf(why, sizeof(why), "%s", r->str);
        freeReplyObject(r);
        mark_down(c, why);
        return NULL;
    }
    return r;
}

#define KEY_FMT "u:%s"

int cache_get(struct cache *c, const char *key, char *url, size_t cap, int64_t *expires_at)
{
    redisReply *r;
    int rc = -ENOENT;

    if (ensure(c) < 0)
        return -EAGAIN;
    r = command(c, "GET " KEY_FMT, key);
    if (!r)
        return -EAGAIN;
    if (r->type == REDIS_REPLY_STRING) {
        char *nl;
        if (r->len == 1 && r->str[0] == '!') {
            rc = CACHE_NEGATIVE;
        } else if ((nl = memchr(r->str, '\n', r->len)) && r->len - (size_t)(nl - r->str) <= cap) {
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
    if (ensure(c) < 0)
        return -EAGAIN;
    snprintf(head, sizeof(head), "%" PRId64 "\n", expires_at);
    return simple(command(c, "SET " KEY_FMT " %s%s EX %" PRId64 " NX", key, head, url, ttl));
}

int cache_fill_negative(struct cache *c, const char *key, int64_t ttl)
{
    if (ensure(c) < 0)
        return -EAGAIN;
    return simple(command(c, "SET " KEY_FMT " ! EX %" PRId64 " NX", key, ttl));
}

int cache_evict(struct cache *c, const char *key)
{
    if (ensure(c) < 0)
        return -EAGAIN;
    return simple(command(c, "DEL " KEY_FMT, key));
}

int cache_tombstone(struct cache *c, const char *key, int64_t ttl)
{
    if (ensure(c) < 0)
        return -EAGAIN;
    return simple(command(c, "SET " KEY_FMT " ! EX %" PRId64, key, ttl));
}

int cache_ping(struct cache *c)
{
    if (ensure(c) < 0)
        return -EAGAIN;
    return simple(command(c, "PING"));
}
