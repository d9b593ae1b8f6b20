/* The redirect path: hot cache, Redis, PostgreSQL, and the rules a link carries (see
 * redirect.h). */
#include "redirect.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "cache.h"
#include "caller.h"
#include "container_of.h"
#include "deadline.h"
#include "hotcache.h"
#include "hotrefresh.h"
#include "live.h"
#include "latency.h"
#include "metrics.h"
#include "pwform.h"
#include "pwhash.h"
#include "ratelimit.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "urlcheck.h"
#include "visitlimit.h"
#include "visits.h"

/* Wrong passwords allowed per client address and link: 10 in 10 minutes (API.md), in any 10
 * minutes. Ten at once, then one more every 10 minutes: as 10 per 600 s (one every minute
 * after the ten), a guesser got 19 tries in the first 10 minutes and 60 an hour. */
static const struct ratelimit_policy wrong_password_policy = {
    .limit = 1, .window = 600, .burst = 10};

static long long min_ll(long long a, long long b)
{
    return a < b ? a : b;
}

static bool is_get(const struct http_request *r)
{
    return strcmp(r->method, "GET") == 0;
}

/* Hands a visit to analytics (whatever tier answered): only copies, never waits. count: the
 * visit counts in the link's visits through analytics (counted_by_analytics). */
static void record_visit(struct http_request *r, const char *key, size_t len, int64_t now,
                         bool count)
{
    struct server *s = r->srv;
    unsigned char addr[16];

    if (!s->analytics)
        return;
    analytics_visit(s->analytics, (unsigned)(r->worker - s->workers), now, key, len,
                    caller_client_addr(r, addr) == 0 ? addr : NULL, http_header(r, "Referer"),
                    http_header(r, "User-Agent"), count);
}

/* With analytics on, a visit is counted once, in its analytics row, which carries it to the
 * link's count (migrations/0015_visits_in_stats.sql); but a link with a visit limit has its
 * count written at once, as before, for Redis starts its counter from it. */
static bool counted_by_analytics(const struct server *s, const struct link_rules *ru)
{
    return s->analytics && !ru->max_visits;
}

/* A key that does not exist: 404, unless the client's address has looked up too many of those
 * (MISS_RATE), when it is 429. Links that exist are never limited. */
static enum http_step unknown_key(struct http_request *r)
{
    struct server *s = r->srv;
    char name[RATELIMIT_KEY_MAX];

    if (s->cfg.rate_limits && !caller_is_proxy(r)) {
        caller_client_key(r, "m:", NULL, name, sizeof(name));
        ratelimit_check(&s->ratelimit, r->worker->redis, name, &s->miss_policy, true,
                        &r->rl_result);
        if (!r->rl_result.allowed) {
            r->rl_policy = s->miss_policy;
            r->ratelimited = true;
            metrics_inc(&s->metrics.ratelimited);
            return http_link_limited(r);
        }
    }
    /* Counted per day, for "what do people mistype?" (analytics.h). */
    if (is_get(r)) {
        if (s->analytics)
            analytics_unknown(s->analytics, (unsigned)(r->worker - s->workers), deadline_now_s_up(),
                              r->path + 1, strlen(r->path + 1));
        else
            metrics_inc(&s->metrics.unknown_key_visits);
    }
    return http_link_not_found(r);
}

/* What one redirect is about. */
struct hop {
    const char *key;
    size_t len;
    const char *url;
    struct link_rules rules;
    int64_t durable; /* visits written to PostgreSQL; -1: not read */
    enum metric_redirect where;
    bool visit;    /* a GET (or a password that opened the link): counts as a visit */
    bool unlocked; /* its password was given */
};

/* Takes a visit of a link with a maximum. HTTP_GO_ON when it may be followed. */
static enum http_step take_visit(struct http_request *r, struct hop *h)
{
    struct server *s = r->srv;
    int64_t now = deadline_now_s_up();
    int64_t ttl = h->rules.expires_at ? h->rules.expires_at - now + 60 : 0;
    int rc =
        visitlimit_take(r->worker->redis, h->key, h->rules.max_visits, h->durable, ttl, h->visit);

    if (rc == VISITLIMIT_NEED_COUNT) {
        struct redirect_row row;
        /* Redis has no counter yet: start it from what PostgreSQL has written. */
        int drc = store_lookup_redirect(r->worker->store, h->key, &row);
        if (drc == -ENOENT)
            return http_link_not_found(r);
        if (drc < 0) {
            metrics_inc(&s->metrics.db_errors);
            return http_link_unavailable(r, "the database");
        }
        free(row.url);
        h->durable = row.visits;
        rc = visitlimit_take(r->worker->redis, h->key, h->rules.max_visits, h->durable, ttl,
                             h->visit);
    }
    if (rc == VISITLIMIT_ALLOWED)
        return HTTP_GO_ON;
    if (rc == VISITLIMIT_EXHAUSTED)
        return http_link_not_found(r);
    /* Without Redis, an exact count cannot be kept: refuse rather than exceed (visitlimit.h). */
    metrics_inc(&s->metrics.cache_errors);
    return http_link_unavailable(r, "the visit counter");
}

/* Answers the redirect of a live link under its rules. */
static enum http_step respond(struct http_request *r, struct hop *h)
{
    struct server *s = r->srv;
    const struct link_rules *ru = &h->rules;
    int64_t now = deadline_now_s_up();
    enum http_step step;
    long long max_age;
    int status;

    metrics_inc(&r->worker->metrics.redirects[h->where]);
    r->redirect_tier = h->where == MR_HOT_HIT     ? LT_HOT
                       : h->where == MR_CACHE_HIT ? LT_REDIS
                                                  : LT_DB;
    /* now is rounded up: a link becomes valid only once a whole second has passed. */
    if (ru->valid_from >= now)
        return http_link_not_found(r);
    if (ru->password && !h->unlocked)
        return pwform_send(r, h->key, 401, PWFORM_ASK);
    if (ru->max_visits) {
        step = take_visit(r, h);
        if (step != HTTP_GO_ON)
            return step;
    }
    status = ru->redirect_status ? ru->redirect_status : (int)s->cfg.default_redirect_status;
    /* The password form's POST: a 307 or 308 would have the browser post the password on to
     * the target; 303 sends it there with a GET. */
    if (h->unlocked && (status == 307 || status == 308))
        status = 303;
    /* Each click of these must reach us (API.md): a temporary redirect, a counted one, or one
     * behind a password. */
    if (status == 302 || status == 307 || ru->max_visits || ru->password)
        max_age = 0;
    else
        max_age = ru->expires_at ? min_ll(ru->expires_at - now, s->cfg.redirect_max_age)
                                 : s->cfg.redirect_max_age;
    /* A hot hit's visit was counted in its entry already (hotcache_get), unless analytics
     * count it. */
    bool by_analytics = counted_by_analytics(s, ru);
    if (h->visit && h->where != MR_HOT_HIT && !by_analytics &&
        !visits_record(s->visits, h->key, h->len))
        metrics_inc(&s->metrics.visits_dropped);
    if (h->visit) {
        record_visit(r, h->key, h->len, now, by_analytics);
        live_visit(s->live, h->key, h->len);
    }
    return http_redirect(r, (unsigned)status, h->url, max_age);
}

/* The link from the replica, when its answer can be trusted; else the primary must be asked
 * (-ENOENT: not there, which may be replica lag; -ESTALE: too far behind; -EAGAIN: down).
 *
 * Deletes and edits are judged by the primary. A replica that replayed a commit less than
 * DATABASE_READ_MAX_LAG_MS ago has every change committed before that; a change made since
 * still has its tombstone or mark in Redis (they live longer: change_ttl), and the caller
 * found none there. So a deleted link is never served, or cached, from a lagging replica. */
static int replica_row(struct http_request *r, const char *key, struct redirect_row *row)
{
    int64_t age;
    int rc = store_lookup_replica(r->worker->replica, key, row, &age);

    if (rc < 0)
        return rc;
    if (age < 0 || age > r->srv->cfg.database_read_max_lag_ms) {
        free(row->url);
        return -ESTALE;
    }
    return 0;
}

/* Looks the link up, tier by tier, and answers. Only the password form's POST passes
 * unlocked. */
static enum http_step lookup(struct http_request *r, const char *key, size_t len, bool unlocked)
{
    struct server *s = r->srv;
    struct worker *w = r->worker;
    char url[URLCHECK_MAX_LEN + 1];
    struct hop h = {.key = key, .len = len, .url = url, .durable = -1, .unlocked = unlocked};
    struct redirect_row row;
    int64_t now = deadline_now_s_up(), remaining;
    bool fill = true;
    uint64_t epoch;
    int rc;

    h.visit = unlocked || is_get(r);
    /* The hot cache holds plain links only: their visits are counted in their entries, or,
     * with analytics on, by analytics (counted_by_analytics). */
    rc = unlocked ? -ENOENT
                  : hotcache_get(s->hot, key, len, url, sizeof(url), &h.rules.expires_at,
                                 &h.rules.redirect_status, now, h.visit && !s->analytics);
    if (rc >= 0) {
        if (rc == HOTCACHE_REFRESH)
            (void)hotrefresh_ask(s->refresh, key, len); /* full: looked up once too old */
        if (!h.rules.expires_at || h.rules.expires_at > now) {
            h.where = MR_HOT_HIT;
            return respond(r, &h);
        }
        hotcache_evict(s->hot, key, len);
    }
    /* Read before looking further: a deletion from now on keeps what we find out of the hot
     * cache. */
    epoch = hotcache_epoch(s->hot);
    rc = cache_get(w->cache, key, url, sizeof(url), &h.rules);
    if (rc == CACHE_NEGATIVE) {
        metrics_inc(&r->worker->metrics.redirects[MR_CACHE_NEGATIVE]);
        r->redirect_tier = LT_REDIS;
        return unknown_key(r);
    }
    /* An entry is judged by our clock: a cache may hold it a moment longer than it lives. */
    if (rc == CACHE_HIT && (!h.rules.expires_at || h.rules.expires_at > now)) {
        if (link_rules_plain(&h.rules, now))
            hotcache_put(s->hot, epoch, key, len, url, h.rules.expires_at, h.rules.redirect_status,
                         now);
        h.where = MR_CACHE_HIT;
        return respond(r, &h);
    }
    if (rc == CACHE_EDITED)
        fill = false; /* edited a moment ago: a fill that raced the edit could be stale */
    else if (rc == -EAGAIN)
        metrics_inc(&s->metrics.cache_errors);

    /* The replica only when Redis answered (a miss): without Redis, no tombstone could have
     * told us about a change the replica has not replayed yet. */
    bool replica = w->replica && rc == -ENOENT && replica_row(r, key, &row) == 0;
    rc = replica ? 0 : store_lookup_redirect(w->store, key, &row);
    if (rc == -ENOENT) {
        metrics_inc(&r->worker->metrics.redirects[MR_DB_MISS]);
        r->redirect_tier = LT_DB;
        cache_fill_negative(w->cache, key, s->cfg.negative_ttl);
        return unknown_key(r);
    }
    if (rc < 0) {
        metrics_inc(&s->metrics.db_errors);
        return http_link_unavailable(r, "the database");
    }
    h.url = row.url;
    h.rules = link_rules_of(&row.a);
    h.durable = replica ? -1 : row.visits; /* a visit limit starts from the primary's count */
    h.where = replica ? MR_REPLICA_HIT : MR_DB_HIT;
    remaining = row.remaining;
    /* remaining is the database's view (-1: never expires), so a link in its last second is
     * not cached anywhere. */
    if (remaining != 0 && fill) {
        long long ttl = remaining < 0 ? s->cfg.cache_ttl : min_ll(remaining, s->cfg.cache_ttl);
        cache_fill(w->cache, key, row.url, &h.rules, ttl);
        if (link_rules_plain(&h.rules, now))
            hotcache_put(s->hot, epoch, key, len, row.url, h.rules.expires_at,
                         h.rules.redirect_status, now);
    }
    enum http_step step = respond(r, &h);
    free(row.url);
    return step;
}

enum http_step redirect_handle(struct http_request *r, const char *key, size_t len)
{
    if (!request_is_key(key, len)) {
        metrics_inc(&r->worker->metrics.redirects[MR_INVALID]);
        return http_link_not_found(r);
    }
    return lookup(r, key, len, false);
}

/* A password form's POST, parked while the password is checked. */
struct unlock {
    struct http_request *req;
    char key[KEY_MAX_LEN + 1];
    char limit_key[RATELIMIT_KEY_MAX];
    struct create_request form; /* its password */
    char *hash;                 /* the link's */
    struct pwhash_job job;
};

static void unlock_free(void *p)
{
    struct unlock *u = p;
    if (!u)
        return;
    create_request_release(&u->form);
    free(u->hash);
    free(u);
}

static void unlock_checked(struct pwhash_job *job)
{
    http_resume(container_of(job, struct unlock, job)->req->conn);
}

/* Resumed: the password was checked. */
static enum http_step unlock_checked_answer(struct unlock *u)
{
    struct http_request *r = u->req;
    struct ratelimit_result spent;

    if (u->job.rc == 0)
        return lookup(r, u->key, strlen(u->key), true);
    if (u->job.rc != -EACCES)
        return http_problem(r, 500, "internal", "the password could not be checked");
    ratelimit_check(&r->srv->ratelimit, r->worker->redis, u->limit_key, &wrong_password_policy,
                    true, &spent);
    return pwform_send(r, u->key, 401, PWFORM_WRONG);
}

enum http_step redirect_unlock(struct http_request *r, const char *key, size_t len)
{
    struct unlock *u = r->state;
    struct ratelimit_result left;
    char err[128];
    int rc;

    if (u)
        return unlock_checked_answer(u);
    if (!request_is_key(key, len))
        return http_link_not_found(r);
    if (r->body_too_large)
        return http_problem(r, 413, "body-too-large", "the body is over %zu bytes", r->body_limit);
    u = calloc(1, sizeof(*u));
    if (!u)
        return http_problem(r, 500, "internal", "out of memory");
    u->req = r;
    r->state = u;
    r->state_free = unlock_free;
    snprintf(u->key, sizeof(u->key), "%.*s", (int)len, key);
    caller_client_key(r, "pw:", u->key, u->limit_key, sizeof(u->limit_key));
    /* Refused before the hash is even looked at, once the address has spent its tries. */
    ratelimit_check(&r->srv->ratelimit, r->worker->redis, u->limit_key, &wrong_password_policy,
                    false, &left);
    if (!left.allowed)
        return pwform_send_retry(r, u->key, ratelimit_retry_after(&left));
    rc = store_password_hash(r->worker->store, u->key, &u->hash);
    if (rc == -ENOENT)
        return http_link_not_found(r);
    if (rc < 0) {
        metrics_inc(&r->srv->metrics.db_errors);
        return http_link_unavailable(r, "the database");
    }
    if (request_body_type(http_header(r, "Content-Type")) != BODY_FORM ||
        request_parse_create(BODY_FORM, r->body, r->body_len, &u->form, err, sizeof(err)) < 0 ||
        !u->form.password) {
        /* No password could be right (none, or none of a valid length): still a wrong try,
         * or a guesser would get these for free. */
        ratelimit_check(&r->srv->ratelimit, r->worker->redis, u->limit_key, &wrong_password_policy,
                        true, &left);
        return pwform_send(r, u->key, 401, PWFORM_WRONG);
    }
    u->job = (struct pwhash_job){.password = u->form.password,
                                 .len = u->form.password_len,
                                 .verify_against = u->hash,
                                 .done = unlock_checked};
    http_suspend(r);
    if (pwhash_submit(r->srv->pwhash, &u->job) < 0) {
        u->job.rc = -ENOMEM; /* shutting down */
        unlock_checked(&u->job);
    }
    return HTTP_ANSWERED;
}
