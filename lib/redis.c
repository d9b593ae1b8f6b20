/* Redis connections through hiredis, with short timeouts and a back-off (see redis.h). */
#include "redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "log.h"
#include "secret.h"

/* After a failure no new connection is tried for this long. */
#define RETRY_MS      1000
#define REDIS_SCRIPTS 4
#define EVAL_MAX_ARGS 8

struct redis {
    const struct redis_target *target;
    redisContext *ctx;
    long long retry_at_ms; /* no connect before this, on deadline_now_ms()'s clock */
    bool down_logged;
    bool preparing; /* inside the prepare hook */
    redis_prepare_fn prepare;
    void *prepare_ctx;
    unsigned generation; /* the target's when this connection was made */
    redisReply *reply;   /* what the last struct redis_reply points into */
    char error[256];
    /* The scripts redis_eval() loaded on this connection, and their SHA1s: a few, since one
     * connection runs several (rate limits, visit limits). */
    struct {
        const char *script;
        char sha[41];
    } scripts[REDIS_SCRIPTS];
    unsigned next_script;
};

static int parse_fail(const char *url, const char *why, char *err, size_t errlen)
{
    char shown[256];
    snprintf(err, errlen, "'%s' %s (use redis://[:password@]host[:port][/db] or unix:///path)",
             secret_mask_url(url, shown, sizeof(shown)), why);
    return -EINVAL;
}

int redis_target_parse(const char *url, struct redis_target *out, char *err, size_t errlen)
{
    const char *p, *end, *at, *colon, *hend;
    char *e;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        p = url + 7;
        if (*p != '/')
            return parse_fail(url, "needs an absolute socket path", err, errlen);
        if (strlen(p) >= sizeof(out->path))
            return parse_fail(url, "has too long a socket path", err, errlen);
        snprintf(out->path, sizeof(out->path), "%s", p);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return parse_fail(url, "is not a redis:// or unix:// URL", err, errlen);
    p = url + 8;
    /* The last '@': the host and database number hold none, a password may. */
    at = strrchr(p, '@');
    if (at) {
        colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if ((size_t)(at - pw) >= sizeof(out->password))
            return parse_fail(url, "has too long a password", err, errlen);
        snprintf(out->password, sizeof(out->password), "%.*s", (int)(at - pw), pw);
        p = at + 1;
    }
    end = p + strcspn(p, "/");
    colon = memchr(p, ':', (size_t)(end - p));
    hend = colon ? colon : end;
    if (hend == p)
        return parse_fail(url, "names no host", err, errlen);
    if ((size_t)(hend - p) >= sizeof(out->host))
        return parse_fail(url, "has too long a host name", err, errlen);
    snprintf(out->host, sizeof(out->host), "%.*s", (int)(hend - p), p);
    if (colon) {
        long v = strtol(colon + 1, &e, 10);
        if (e != end || v < 1 || v > 65535)
            return parse_fail(url, "has a port that is not 1 to 65535", err, errlen);
        out->port = (int)v;
    }
    if (*end == '/' && end[1] != '\0') {
        long v = strtol(end + 1, &e, 10);
        if (*e != '\0' || v < 0 || v > 1000)
            return parse_fail(url, "has a database number that is not 0 to 1000", err, errlen);
        out->db = (int)v;
    }
    return 0;
}

/* One "host[:port]" or "[v6][:port]" of REDIS_SENTINELS, len bytes at p. */
static int parse_sentinel(const char *p, size_t len, struct redis_sentinel *out)
{
    const char *end = p + len, *hend, *colon = NULL;
    char num[8];
    char *e;

    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p < end && *p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend || (hend + 1 != end && hend[1] != ':'))
            return -EINVAL;
        p++;
        colon = hend + 1 != end ? hend + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
    }
    if (hend == p || (size_t)(hend - p) >= sizeof(out->host))
        return -EINVAL;
    snprintf(out->host, sizeof(out->host), "%.*s", (int)(hend - p), p);
    out->port = 26379;
    if (colon) {
        if ((size_t)(end - colon - 1) >= sizeof(num) || end - colon - 1 < 1)
            return -EINVAL;
        snprintf(num, sizeof(num), "%.*s", (int)(end - colon - 1), colon + 1);
        long v = strtol(num, &e, 10);
        if (*e != '\0' || v < 1 || v > 65535 || num[0] == '-' || num[0] == '+')
            return -EINVAL;
        out->port = (int)v;
    }
    return 0;
}

int redis_target_set_sentinels(struct redis_target *t, const char *sentinels,
                               const char *master_name, char *err, size_t errlen)
{
    const char *p = sentinels;

    if (!sentinels[0] && !master_name[0])
        return 0;
    if (!sentinels[0] || !master_name[0]) {
        snprintf(err, errlen, "REDIS_SENTINELS and REDIS_MASTER_NAME must be set together");
        return -EINVAL;
    }
    if (strlen(master_name) >= sizeof(t->master_name) || strpbrk(master_name, " \t\r\n")) {
        snprintf(err, errlen, "REDIS_MASTER_NAME must be under %zu bytes, without blanks",
                 sizeof(t->master_name));
        return -EINVAL;
    }
    t->nsentinels = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (t->nsentinels == REDIS_SENTINELS_MAX) {
            snprintf(err, errlen, "REDIS_SENTINELS names more than %d sentinels",
                     REDIS_SENTINELS_MAX);
            return -EINVAL;
        }
        if (parse_sentinel(p, len, &t->sentinels[t->nsentinels]) < 0) {
            snprintf(err, errlen,
                     "REDIS_SENTINELS '%s' must be host:port or [v6]:port, comma-separated",
                     sentinels);
            return -EINVAL;
        }
        t->nsentinels++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    snprintf(t->master_name, sizeof(t->master_name), "%s", master_name);
    return 0;
}

const char *redis_target_describe(const struct redis_target *t, char *buf, size_t cap)
{
    if (t->nsentinels)
        snprintf(buf, cap, "sentinel master '%s' (%s:%d, ...), db %d", t->master_name,
                 t->sentinels[0].host, t->sentinels[0].port, t->db);
    else if (t->path[0])
        snprintf(buf, cap, "unix://%s", t->path);
    else
        snprintf(buf, cap, "redis://%s%s:%d/%d", t->password[0] ? ":" SECRET_MASK "@" : "", t->host,
                 t->port, t->db);
    return buf;
}

/* Asks one sentinel where the master named t->master_name is. */
static int ask_sentinel(const struct redis_target *t, const struct redis_sentinel *sn,
                        struct redis_addr *out, char *err, size_t errlen)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = REDIS_TIMEOUT_MS * 1000};
    redisContext *ctx = redisConnectWithTimeout(sn->host, sn->port, tv);
    redisReply *rep = NULL;
    int rc = -EAGAIN;

    if (!ctx || ctx->err) {
        snprintf(err, errlen, "sentinel %s:%d: %s", sn->host, sn->port,
                 ctx ? ctx->errstr : "out of memory");
        goto out;
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        snprintf(err, errlen, "sentinel %s:%d: cannot set timeout", sn->host, sn->port);
        goto out;
    }
    rep = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", t->master_name);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "sentinel %s:%d: %s", sn->host, sn->port,
                 !rep                             ? (ctx->errstr[0] ? ctx->errstr : "no answer")
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                 : rep->type == REDIS_REPLY_NIL   ? "does not know this master name"
                                                  : "unexpected answer");
        goto out;
    }
    long port = strtol(rep->element[1]->str, NULL, 10);
    if (rep->element[0]->len >= sizeof(out->host) || port < 1 || port > 65535) {
        snprintf(err, errlen, "sentinel %s:%d: unusable address", sn->host, sn->port);
        goto out;
    }
    *out = (struct redis_addr){.port = (int)port};
    memcpy(out->host, rep->element[0]->str, rep->element[0]->len + 1);
    rc = 0;
out:
    if (rep)
        freeReplyObject(rep);
    if (ctx)
        redisFree(ctx);
    return rc;
}

int redis_target_resolve(const struct redis_target *t, struct redis_addr *out, char *err,
                         size_t errlen)
{
    if (t->nsentinels) {
        /* Every sentinel in turn: one that is down or partitioned away costs one timeout. */
        for (int i = 0; i < t->nsentinels; i++)
            if (ask_sentinel(t, &t->sentinels[i], out, err, errlen) == 0)
                return 0;
        return -EAGAIN;
    }
    *out = (struct redis_addr){.port = t->port};
    snprintf(out->host, sizeof(out->host), "%s", t->host);
    snprintf(out->path, sizeof(out->path), "%s", t->path);
    return 0;
}

/* ROLE on a new connection: true when the server is a master. */
static bool is_master(redisContext *ctx, char *why, size_t whylen)
{
    redisReply *rep = redisCommand(ctx, "ROLE");
    bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
              rep->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(rep->element[0]->str, "master") == 0;

    if (!ok)
        snprintf(why, whylen, "%s",
                 !rep                             ? (ctx->errstr[0] ? ctx->errstr : "no answer")
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                  : "the server sentinel named is not a master "
                                                    "(a failover under way)");
    if (rep)
        freeReplyObject(rep);
    return ok;
}

/* Runs one set-up command (AUTH, SELECT) on a new context; false with the reason in why. */
static bool setup_command(redisContext *ctx, const char *fmt, const char *arg, int n, char *why,
                          size_t whylen)
{
    redisReply *rep = arg ? redisCommand(ctx, fmt, arg) : redisCommand(ctx, fmt, n);
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;

    if (!ok)
        snprintf(why, whylen, "%s", rep ? rep->str : ctx->errstr[0] ? ctx->errstr : "no answer");
    if (rep)
        freeReplyObject(rep);
    return ok;
}

void redis_target_master_changed(const struct redis_target *t)
{
    /* The generation is the one part of a target that changes after start-up. */
    atomic_fetch_add_explicit((atomic_uint *)&t->generation, 1, memory_order_release);
}

redisContext *redis_connect(const struct redis_target *t, char *err, size_t errlen)
{
    struct redis_addr addr;
    return redis_connect_at(t, &addr, err, errlen);
}

redisContext *redis_connect_at(const struct redis_target *t, struct redis_addr *where, char *err,
                               size_t errlen)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = REDIS_TIMEOUT_MS * 1000};
    struct redis_addr addr;
    redisContext *ctx;

    if (redis_target_resolve(t, &addr, err, errlen) < 0)
        return NULL;
    *where = addr;
    ctx = addr.path[0] ? redisConnectUnixWithTimeout(addr.path, tv)
                       : redisConnectWithTimeout(addr.host, addr.port, tv);
    if (!ctx || ctx->err) {
        snprintf(err, errlen, "%s", ctx ? ctx->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        snprintf(err, errlen, "cannot set timeout");
        goto fail;
    }
    if (t->password[0] && !setup_command(ctx, "AUTH %s", t->password, 0, err, errlen))
        goto fail;
    if (t->db && !setup_command(ctx, "SELECT %d", NULL, t->db, err, errlen))
        goto fail;
    if (t->nsentinels && !is_master(ctx, err, errlen))
        goto fail;
    return ctx;
fail:
    /* Our own messages and hiredis's hold no password; Redis's replies are not ours. */
    secret_scrub(err, t->password, strlen(t->password));
    if (ctx)
        redisFree(ctx);
    return NULL;
}

struct redis *redis_new(const struct redis_target *t)
{
    struct redis *r = calloc(1, sizeof(*r));
    if (r)
        r->target = t;
    return r;
}

static void release_reply(struct redis *r)
{
    if (r->reply) {
        freeReplyObject(r->reply);
        r->reply = NULL;
    }
}

void redis_free(struct redis *r)
{
    if (!r)
        return;
    release_reply(r);
    if (r->ctx)
        redisFree(r->ctx);
    free(r);
}

const char *redis_error(const struct redis *r)
{
    return r->error[0] ? r->error : "unknown error";
}

void redis_set_prepare(struct redis *r, redis_prepare_fn fn, void *ctx)
{
    r->prepare = fn;
    r->prepare_ctx = ctx;
}

static void mark_down(struct redis *r, const char *why)
{
    /* why may point into the context about to be freed: copy it first, log the copy. */
    if (why != r->error)
        snprintf(r->error, sizeof(r->error), "%s", why);
    secret_scrub(r->error, r->target->password, strlen(r->target->password));
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->retry_at_ms = deadline_now_ms() + RETRY_MS;
    if (!r->down_logged) {
        log_warn("redis: unavailable, serving from postgres: %s", r->error);
        r->down_logged = true;
    }
}

/* rep as a command's reply: NULL (and the connection dropped) on any failure, including an
 * error reply. NOSCRIPT is let through for redis_eval(): the connection is fine. */
static redisReply *checked(struct redis *r, redisReply *rep)
{
    if (!rep) {
        mark_down(r, r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", rep->str);
        freeReplyObject(rep);
        mark_down(r, why);
        return NULL;
    }
    return rep;
}

static int connect_now(struct redis *r)
{
    char why[256];

    /* A new connection has loaded nothing; the SHA1s stay, for a command being retried. */
    for (int i = 0; i < REDIS_SCRIPTS; i++)
        r->scripts[i].script = NULL;
    r->generation = atomic_load_explicit(&r->target->generation, memory_order_acquire);
    r->ctx = redis_connect(r->target, why, sizeof(why));
    if (!r->ctx) {
        mark_down(r, why);
        return -EAGAIN;
    }
    if (r->down_logged) {
        log_info("redis: connected again");
        r->down_logged = false;
    }
    return 0;
}

static int prepare(struct redis *r)
{
    int rc;

    if (!r->prepare)
        return 0;
    r->preparing = true;
    rc = r->prepare(r, r->prepare_ctx);
    r->preparing = false;
    return rc;
}

/* Something to send on a ready connection. Returns 0, -EAGAIN when the connection failed
 * (it has been dropped), or another negative code, returned as it is. */
typedef int (*send_fn)(struct redis *r, void *arg);

/* Runs send on a connection, connecting first if need be (not within RETRY_MS of a failure)
 * and running the prepare hook if hook. A connection that worked before and fails now (Redis
 * restarted, say) gets one immediate reconnect and retry, so a restart costs no request. */
static int with_connection_hooked(struct redis *r, send_fn send, void *arg, bool hook)
{
    int rc = -EAGAIN;

    if (r->preparing)
        return r->ctx ? send(r, arg) : -EAGAIN;
    /* Through Sentinel only: a connection to a master that has since been replaced goes. */
    if (r->target->nsentinels && r->ctx &&
        r->generation != atomic_load_explicit(&r->target->generation, memory_order_acquire)) {
        redisFree(r->ctx);
        r->ctx = NULL;
        r->retry_at_ms = 0;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = !r->ctx;
        if (fresh && deadline_now_ms() < r->retry_at_ms)
            return -EAGAIN;
        if (fresh && connect_now(r) < 0)
            return -EAGAIN;
        rc = hook ? prepare(r) : 0;
        if (rc == 0)
            rc = send(r, arg);
        if (rc != -EAGAIN || fresh)
            return rc;
        r->retry_at_ms = 0;
    }
    return rc;
}

static int with_connection(struct redis *r, send_fn send, void *arg)
{
    return with_connection_hooked(r, send, arg, true);
}

/* One command: a format and its arguments, or an argument vector. */
struct command {
    const char *fmt;
    va_list *ap;
    int argc;
    const char *const *argv;
    const size_t *argvlen;
    redisReply *reply; /* its reply, once sent */
};

static int send_command(struct redis *r, void *arg)
{
    struct command *cmd = arg;
    redisReply *rep;

    if (cmd->fmt) {
        va_list ap;
        va_copy(ap, *cmd->ap);
        rep = redisvCommand(r->ctx, cmd->fmt, ap);
        va_end(ap);
    } else {
        rep = redisCommandArgv(r->ctx, cmd->argc, (const char **)cmd->argv, cmd->argvlen);
    }
    cmd->reply = checked(r, rep);
    return cmd->reply ? 0 : -EAGAIN;
}

/* A reply, or an element of one, as the caller sees it. */
static struct redis_reply view_of(const redisReply *e)
{
    struct redis_reply v = {.kind = REDIS_KIND_OTHER};
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
        v.kind = REDIS_KIND_STRING;
        v.str = e->str;
        v.len = e->len;
    } else if (e->type == REDIS_REPLY_INTEGER) {
        v.kind = REDIS_KIND_INTEGER;
        v.integer = e->integer;
    } else if (e->type == REDIS_REPLY_NIL) {
        v.kind = REDIS_KIND_NIL;
    }
    return v;
}

/* Gives the caller its view of rep, which r keeps until its next command. */
static int hand_out(struct redis *r, redisReply *rep, struct redis_reply *out)
{
    release_reply(r);
    if (rep->type == REDIS_REPLY_ERROR) {
        /* NOSCRIPT, to someone who sent EVALSHA without redis_eval(). */
        snprintf(r->error, sizeof(r->error), "%s", rep->str);
        freeReplyObject(rep);
        return -EPROTO;
    }
    if (!out) {
        freeReplyObject(rep);
        return 0;
    }
    r->reply = rep;
    *out = view_of(rep);
    return 0;
}

int redis_command(struct redis *r, struct redis_reply *reply, const char *fmt, ...)
{
    struct command cmd = {.fmt = fmt};
    va_list ap;
    int rc;

    release_reply(r);
    va_start(ap, fmt);
    cmd.ap = &ap;
    rc = with_connection(r, send_command, &cmd);
    va_end(ap);
    return rc < 0 ? rc : hand_out(r, cmd.reply, reply);
}

int redis_command_argv(struct redis *r, struct redis_reply *reply, int argc,
                       const char *const *argv, const size_t *argvlen)
{
    struct command cmd = {.argc = argc, .argv = argv, .argvlen = argvlen};
    int rc;

    release_reply(r);
    rc = with_connection(r, send_command, &cmd);
    return rc < 0 ? rc : hand_out(r, cmd.reply, reply);
}

int redis_command_each(struct redis *r, int argc, const char *const *argv, const size_t *argvlen,
                       int (*each)(void *ctx, size_t i, const struct redis_reply *element),
                       void *ctx)
{
    struct command cmd = {.argc = argc, .argv = argv, .argvlen = argvlen};
    int rc;

    release_reply(r);
    rc = with_connection(r, send_command, &cmd);
    if (rc < 0)
        return rc;
    if (cmd.reply->type != REDIS_REPLY_ARRAY) {
        snprintf(r->error, sizeof(r->error), "not an array: reply type %d", cmd.reply->type);
        rc = -EPROTO;
        goto out;
    }
    for (size_t i = 0; i < cmd.reply->elements && rc == 0; i++) {
        struct redis_reply v = view_of(cmd.reply->element[i]);
        rc = each(ctx, i, &v);
    }
out:
    freeReplyObject(cmd.reply);
    return rc;
}

struct pipeline {
    size_t n;
    int (*build)(void *ctx, size_t i, struct redis_argv *cmd);
    void *ctx;
};

static int send_pipeline(struct redis *r, void *arg)
{
    struct pipeline *p = arg;
    char failure[256] = "";
    size_t sent = 0;
    redisReply *rep;
    int rc = 0;

    for (size_t i = 0; i < p->n; i++) {
        struct redis_argv cmd = {0};
        rc = p->build(p->ctx, i, &cmd);
        if (rc < 0)
            break;
        if (redisAppendCommandArgv(r->ctx, cmd.argc, (const char **)cmd.argv, cmd.argvlen) !=
            REDIS_OK) {
            rc = -ENOMEM;
            break;
        }
        sent++;
    }
    /* The replies of whatever was sent are read, whatever happened, so that the connection
     * stays in step. */
    for (size_t i = 0; i < sent; i++) {
        if (redisGetReply(r->ctx, (void **)&rep) != REDIS_OK || !rep) {
            mark_down(r, r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
            return -EAGAIN;
        }
        if (rep->type == REDIS_REPLY_ERROR && !failure[0])
            snprintf(failure, sizeof(failure), "%s", rep->str);
        freeReplyObject(rep);
    }
    if (failure[0]) {
        mark_down(r, failure);
        return -EAGAIN;
    }
    return rc;
}

int redis_pipeline(struct redis *r, size_t n,
                   int (*build)(void *ctx, size_t i, struct redis_argv *cmd), void *ctx)
{
    struct pipeline p = {.n = n, .build = build, .ctx = ctx};

    release_reply(r);
    if (n == 0)
        return 0;
    return with_connection(r, send_pipeline, &p);
}

int redis_eval(struct redis *r, const char *script, const char *const *keys, int nkeys,
               const long long *args, int nargs, long long *out, size_t nout)
{
    char text[EVAL_MAX_ARGS][24], count[16];
    const char *argv[3 + EVAL_MAX_ARGS * 2];
    redisReply *rep;
    int rc, argc = 3;

    if (nargs < 0 || nargs > EVAL_MAX_ARGS || nkeys < 0 || nkeys > EVAL_MAX_ARGS)
        return -EINVAL;
    release_reply(r);
    int slot = -1;
    for (int i = 0; i < REDIS_SCRIPTS; i++)
        if (r->scripts[i].script == script)
            slot = i;
    if (slot < 0) {
        const char *load_argv[] = {"SCRIPT", "LOAD", script};
        struct command load = {.argc = 3, .argv = load_argv};
        rc = with_connection(r, send_command, &load);
        if (rc < 0)
            return rc;
        rep = load.reply;
        slot = (int)(r->next_script++ % REDIS_SCRIPTS);
        r->scripts[slot].script = NULL;
        if (rep->type == REDIS_REPLY_STRING && rep->len < sizeof(r->scripts[slot].sha)) {
            memcpy(r->scripts[slot].sha, rep->str, rep->len);
            r->scripts[slot].sha[rep->len] = '\0';
            r->scripts[slot].script = script;
        }
        freeReplyObject(rep);
        if (r->scripts[slot].script != script)
            return -EPROTO;
    }
    snprintf(count, sizeof(count), "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = r->scripts[slot].sha;
    argv[2] = count;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++) {
        snprintf(text[i], sizeof(text[i]), "%lld", args[i]);
        argv[argc++] = text[i];
    }
    struct command run = {.argc = argc, .argv = argv};
    rc = with_connection(r, send_command, &run);
    if (rc == 0 && run.reply->type == REDIS_REPLY_ERROR) {
        /* NOSCRIPT: Redis restarted or its scripts were flushed. */
        freeReplyObject(run.reply);
        argv[0] = "EVAL";
        argv[1] = script;
        rc = with_connection(r, send_command, &run);
    }
    if (rc < 0)
        return rc;
    rep = run.reply;
    rc = -EPROTO;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= nout) {
        rc = 0;
        for (size_t i = 0; i < nout && rc == 0; i++) {
            if (rep->element[i]->type != REDIS_REPLY_INTEGER)
                rc = -EPROTO;
            else
                out[i] = rep->element[i]->integer;
        }
    }
    freeReplyObject(rep);
    return rc;
}

int redis_incr(struct redis *r, const char *key)
{
    return redis_command(r, NULL, "INCR %s", key);
}

/* Without the prepare hook: a PING serves nothing, and whether Redis answers is not whether
 * this connection may serve (a hook refuses while Redis is distrusted, which it stays while
 * PostgreSQL is away: /readyz named Redis too when only PostgreSQL was down). */
int redis_ping(struct redis *r)
{
    static const char *const argv[] = {"PING"};
    struct command cmd = {.argc = 1, .argv = argv};
    int rc;

    release_reply(r);
    rc = with_connection_hooked(r, send_command, &cmd, false);
    return rc < 0 ? rc : hand_out(r, cmd.reply, NULL);
}
