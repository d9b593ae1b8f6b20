/* The "u:<key>" entries in Redis (see linkentry.h). */
#include "linkentry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "redis.h"

#define KEY_FMT LINKENTRY_KEY_FMT

/* Keys per DEL command: small enough that Redis never blocks long on one. */
#define EVICT_CHUNK 1000

/* A whole decimal number and the separator after it; NULL when there is none. */
static const char *number(const char *p, const char *end, char sep, int64_t *out)
{
    int64_t v = 0;
    const char *start = p;

    while (p < end && *p >= '0' && *p <= '9' && p - start < 18)
        v = v * 10 + (*p++ - '0');
    if (p == start || p >= end || *p != sep)
        return NULL;
    *out = v;
    return p + 1;
}

int linkentry_parse(const char *value, size_t len, char *url, size_t cap, struct link_rules *rules)
{
    const char *end = value + len, *p = value, *nl;
    int64_t status = 0;

    if (len == 1 && value[0] == '!')
        return LINKENTRY_NEGATIVE;
    if (len == 1 && value[0] == '~')
        return LINKENTRY_EDITED;
    memset(rules, 0, sizeof(*rules));
    nl = memchr(value, '\n', len);
    /* Anything else is not ours: a miss, which the next fill replaces. */
    if (!nl || (size_t)(end - nl) > cap)
        return -ENOENT;
    if ((p = number(p, nl + 1, ' ', &rules->expires_at))) {
        if (!(p = number(p, nl + 1, ' ', &rules->valid_from)) ||
            !(p = number(p, nl + 1, ' ', &rules->max_visits)) ||
            !(p = number(p, nl + 1, ' ', &status)) || p + 2 != nl + 1 || (*p != 'p' && *p != '-'))
            return -ENOENT;
        /* Only what linkentry_format writes: a status past an int would wrap into one that
         * nobody chose (found by fuzz_linkentry). */
        if (status != 0 && status != 301 && status != 302 && status != 307 && status != 308)
            return -ENOENT;
        rules->password = *p == 'p';
        rules->redirect_status = (int)status;
    } else if (!number(value, nl + 1, '\n', &rules->expires_at)) {
        return -ENOENT;
    }
    size_t ulen = (size_t)(end - nl) - 1;
    memcpy(url, nl + 1, ulen);
    url[ulen] = '\0';
    return LINKENTRY_HIT;
}

int linkentry_get(struct redis *r, const char *key, char *url, size_t cap, struct link_rules *rules)
{
    struct redis_reply rep;
    int rc = redis_command(r, &rep, "GET " KEY_FMT, key);

    if (rc < 0)
        return -EAGAIN;
    if (rep.kind != REDIS_KIND_STRING)
        return -ENOENT;
    return linkentry_parse(rep.str, rep.len, url, cap, rules);
}

/* One MGET's arguments, and what its replies are parsed into. */
struct get_many {
    const char *argv[LINKENTRY_GET_MAX + 1];
    size_t argvlen[LINKENTRY_GET_MAX + 1];
    char names[LINKENTRY_GET_MAX][KEY_MAX_LEN + 3];
    void (*found)(void *ctx, size_t i, int rc, const char *url, const struct link_rules *rules);
    void *ctx;
    size_t n, cap;
    char url[]; /* cap bytes */
};

static int parse_one(void *ctx, size_t i, const struct redis_reply *v)
{
    struct get_many *g = ctx;
    struct link_rules rules = {0};
    int rc = -ENOENT;

    if (i >= g->n)
        return -EPROTO;
    if (v->kind == REDIS_KIND_STRING)
        rc = linkentry_parse(v->str, v->len, g->url, g->cap, &rules);
    g->found(g->ctx, i, rc, rc == LINKENTRY_HIT ? g->url : NULL, &rules);
    return 0;
}

int linkentry_get_many(struct redis *r, const char *const *keys, size_t n, size_t cap,
                       void (*found)(void *ctx, size_t i, int rc, const char *url,
                                     const struct link_rules *rules),
                       void *ctx)
{
    struct get_many *g;
    int rc;

    if (n == 0)
        return 0;
    if (n > LINKENTRY_GET_MAX || cap == 0)
        return -EINVAL;
    g = malloc(sizeof(*g) + cap);
    if (!g)
        return -ENOMEM;
    g->found = found;
    g->ctx = ctx;
    g->n = n;
    g->cap = cap;
    g->argv[0] = "MGET";
    g->argvlen[0] = 4;
    for (size_t k = 0; k < n; k++) {
        int len = snprintf(g->names[k], sizeof(g->names[k]), KEY_FMT, keys[k]);
        g->argv[k + 1] = g->names[k];
        g->argvlen[k + 1] =
            (size_t)len < sizeof(g->names[k]) ? (size_t)len : sizeof(g->names[k]) - 1;
    }
    rc = redis_command_each(r, (int)n + 1, g->argv, g->argvlen, parse_one, g);
    free(g);
    return rc == -EPROTO ? -EAGAIN : rc;
}

int linkentry_format(const char *url, const struct link_rules *rules, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%" PRId64 " %" PRId64 " %" PRId64 " %d %c\n%s", rules->expires_at,
                     rules->valid_from, rules->max_visits, rules->redirect_status,
                     rules->password ? 'p' : '-', url);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int linkentry_fill(struct redis *r, const char *key, const char *url,
                   const struct link_rules *rules, int64_t ttl)
{
    char head[LINKENTRY_HEAD_MAX];
    /* The head alone: hiredis joins it with the url, so no copy of a long url is made here. */
    int n = linkentry_format("", rules, head, sizeof(head));
    if (n < 0)
        return -EINVAL;
    return redis_command(r, NULL, "SET " KEY_FMT " %s%s EX %" PRId64 " NX", key, head, url, ttl) < 0
               ? -EAGAIN
               : 0;
}

int linkentry_mark_edited(struct redis *r, const char *key, int64_t ttl)
{
    return redis_command(r, NULL, "SET " KEY_FMT " ~ EX %" PRId64, key, ttl) < 0 ? -EAGAIN : 0;
}

int linkentry_fill_negative(struct redis *r, const char *key, int64_t ttl)
{
    return redis_command(r, NULL, "SET " KEY_FMT " ! EX %" PRId64 " NX", key, ttl) < 0 ? -EAGAIN
                                                                                       : 0;
}

int linkentry_tombstone(struct redis *r, const char *key, int64_t ttl)
{
    return redis_command(r, NULL, "SET " KEY_FMT " ! EX %" PRId64, key, ttl) < 0 ? -EAGAIN : 0;
}

int linkentry_evict(struct redis *r, const char *key)
{
    return redis_command(r, NULL, "DEL " KEY_FMT, key) < 0 ? -EAGAIN : 0;
}

/* What the DEL commands of linkentry_evict_many() are built from. */
struct evict_batch {
    const char *const *keys;
    size_t n;
    const char *argv[EVICT_CHUNK + 1];
    size_t argvlen[EVICT_CHUNK + 1];
    char names[EVICT_CHUNK][KEY_MAX_LEN + 3];
};

/* DEL command i: keys [i * EVICT_CHUNK, ...). names is reused: hiredis copies each command. */
static int build_del(void *ctx, size_t i, struct redis_argv *cmd)
{
    struct evict_batch *b = ctx;
    size_t at = i * EVICT_CHUNK, m = b->n - at < EVICT_CHUNK ? b->n - at : EVICT_CHUNK;

    b->argv[0] = "DEL";
    b->argvlen[0] = 3;
    for (size_t k = 0; k < m; k++) {
        int len = snprintf(b->names[k], sizeof(b->names[k]), KEY_FMT, b->keys[at + k]);
        b->argv[k + 1] = b->names[k];
        b->argvlen[k + 1] =
            (size_t)len < sizeof(b->names[k]) ? (size_t)len : sizeof(b->names[k]) - 1;
    }
    *cmd = (struct redis_argv){.argc = (int)m + 1, .argv = b->argv, .argvlen = b->argvlen};
    return 0;
}

int linkentry_evict_many(struct redis *r, const char *const *keys, size_t n)
{
    struct evict_batch *b;
    int rc;

    if (n == 0)
        return 0;
    b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->keys = keys;
    b->n = n;
    rc = redis_pipeline(r, (n + EVICT_CHUNK - 1) / EVICT_CHUNK, build_del, b);
    free(b);
    return rc == -ENOMEM ? rc : rc < 0 ? -EAGAIN : 0;
}
