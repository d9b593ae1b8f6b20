/* Caller admission: API keys, anonymous callers and rate limits (see caller.h). */
#include "caller.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authcache.h"
#include "clientip.h"
#include "deadline.h"
#include "metrics.h"
#include "ratelimit.h"
#include "server.h"

/* The longest X-Forwarded-For believed: libmicrohttpd's connection memory bounds headers
 * anyway. */
#define XFF_MAX 4096

/* Counts the request against the limit named key (e.g. "a:1.2.3.4") and keeps the result on
 * r, so that whatever answer follows carries the RateLimit fields. */
static void count(struct http_request *r, const char *key, const struct ratelimit_policy *p,
                  bool commit)
{
    ratelimit_check(&r->srv->ratelimit, r->worker->redis, key, p, commit, &r->rl_result);
    r->rl_policy = *p;
    r->ratelimited = true;
}

static enum http_step refuse(struct http_request *r, const char *what)
{
    metrics_inc(&r->srv->metrics.ratelimited);
    return http_problem(r, 429, "rate-limited", "%s; retry in %lld s", what,
                        (long long)ratelimit_retry_after(&r->rl_result));
}

/* X-Forwarded-For, every line of it: a proxy appends its own line after the client's, so the
 * first line alone is the one the client wrote. */
static const char *forwarded_for(struct http_request *r, char *buf, size_t cap)
{
    return http_header_all(r, "X-Forwarded-For", buf, cap);
}

void caller_client_key(struct http_request *r, const char *prefix, const char *suffix, char *out,
                       size_t cap)
{
    char ip[CLIENTIP_TEXT_MAX], xff[XFF_MAX];
    clientip_resolve(&r->srv->trusted_proxies, http_peer(r), forwarded_for(r, xff, sizeof(xff)),
                     ip);
    snprintf(out, cap, "%s%s%s%s", prefix, suffix ? suffix : "", suffix ? ":" : "", ip);
}

static void client_key(struct http_request *r, const char *prefix, char *out, size_t cap)
{
    caller_client_key(r, prefix, NULL, out, cap);
}

/* 401 for a failed authentication, charged to the client's address: once the address has
 * spent its AUTH_FAILURE_RATE, 429 instead. Only failures are charged, so that where many
 * clients share an address (NAT, one IPv6 /64) someone else's bad key never locks out a key
 * that works. */
static enum http_step unauthorized(struct http_request *r, bool had_credentials)
{
    struct server *s = r->srv;
    char fkey[RATELIMIT_KEY_MAX];

    if (s->cfg.rate_limits) {
        client_key(r, "f:", fkey, sizeof(fkey));
        count(r, fkey, &s->auth_failure_policy, true);
        if (!r->rl_result.allowed)
            return refuse(r, "too many failed authentications from this address");
        r->ratelimited = false;
    }
    if (!had_credentials)
        return http_problem(r, 401, "unauthorized",
                            "an API key is required (Authorization: Bearer)");
    return http_problem(r, 401, "unauthorized", "the API key is unknown or revoked");
}

static enum http_step db_error(struct http_request *r)
{
    metrics_inc(&r->srv->metrics.db_errors);
    return http_unavailable(r, "the database");
}

/* The key the client sent, or NULL; *sent tells whether it sent credentials at all. */
static const char *token_of(struct http_request *r, bool *sent)
{
    const char *auth = http_header(r, "Authorization");
    const char *token;

    if (!auth) {
        token = http_header(r, "X-API-Key");
        *sent = token != NULL;
        return token;
    }
    *sent = true;
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    for (token = auth + 7; *token == ' '; token++)
        ;
    return token;
}

bool caller_sent_credentials(struct http_request *r)
{
    bool sent;

    (void)token_of(r, &sent);
    return sent;
}

enum http_step caller_refuse_early(struct http_request *r, bool anonymous_ok)
{
    bool sent;
    const char *token = token_of(r, &sent);

    if (!sent && anonymous_ok)
        return HTTP_GO_ON;
    if (token && apikey_well_formed(token, strlen(token)))
        return HTTP_GO_ON;
    return unauthorized(r, sent);
}

enum http_step caller_begin(struct http_request *r, bool anonymous_ok, struct caller *c)
{
    struct server *s = r->srv;
    char name[RATELIMIT_KEY_MAX];
    bool limits = s->cfg.rate_limits, hashed = false, sent;
    const char *token = token_of(r, &sent);
    int rc;

    memset(c, 0, sizeof(*c));
    c->revocations = -1;
    if (!sent && anonymous_ok) {
        if (!limits)
            return HTTP_GO_ON;
        client_key(r, "a:", name, sizeof(name));
        count(r, name, &s->anonymous_policy, true);
        return r->rl_result.allowed ? HTTP_GO_ON : refuse(r, "too many anonymous requests");
    }
    if (token && apikey_well_formed(token, strlen(token)) &&
        apikey_hash(token, strlen(token), s->cfg.apikey_pepper, c->hash) == 0) {
        hashed = true;
        c->cached = authcache_get(s->auth, c->hash, deadline_now_ms(), &c->key, &c->revocations);
    }
    if (!c->cached) {
        if (!hashed)
            return unauthorized(r, sent);
        rc = store_authenticate(r->worker->store, c->hash, &c->key);
        if (rc == -ENOENT)
            return unauthorized(r, true);
        if (rc < 0)
            return db_error(r);
    }
    if (!limits) {
        if (!c->cached)
            authcache_put(s->auth, c->hash, deadline_now_ms(), &c->key, -1);
        return HTTP_GO_ON;
    }
    snprintf(c->count.name, sizeof(c->count.name), "k:%lld", (long long)c->key.id);
    c->count.policy =
        (struct ratelimit_policy){.limit = c->key.rate_limit,
                                  .window = c->key.rate_window,
                                  .burst = c->key.burst > 0 ? c->key.burst : c->key.rate_limit};
    c->uncounted = true;
    return HTTP_GO_ON;
}

void caller_count_here(struct http_request *r, struct caller *c)
{
    ratelimit_check(&r->srv->ratelimit, r->worker->redis, c->count.name, &c->count.policy, true,
                    &c->count.result);
}

bool caller_count_settled(const struct caller *c)
{
    const struct ratelimit_result *res = &c->count.result;
    return res->allowed && c->cached &&
           (res->revocations < 0 || res->revocations == c->revocations);
}

enum http_step caller_counted(struct http_request *r, struct caller *c)
{
    struct server *s = r->srv;
    int rc;

    c->uncounted = false;
    r->rl_result = c->count.result;
    r->rl_policy = c->count.policy;
    r->ratelimited = true;
    if (c->cached && r->rl_result.revocations >= 0 && r->rl_result.revocations != c->revocations) {
        /* A key was revoked somewhere since this one was confirmed: is it still valid? */
        rc = store_authenticate(r->worker->store, c->hash, &c->key);
        if (rc == -ENOENT) {
            r->ratelimited = false;
            memset(&c->key, 0, sizeof(c->key));
            return unauthorized(r, true);
        }
        if (rc < 0)
            return db_error(r);
        c->cached = false;
    }
    if (!c->cached)
        authcache_put(s->auth, c->hash, deadline_now_ms(), &c->key, r->rl_result.revocations);
    return r->rl_result.allowed ? HTTP_GO_ON : refuse(r, "the API key's rate limit is exceeded");
}

enum http_step caller_admit(struct http_request *r, bool anonymous_ok, struct caller *c)
{
    enum http_step step = caller_begin(r, anonymous_ok, c);

    if (step == HTTP_GO_ON && c->uncounted) {
        caller_count_here(r, c);
        step = caller_counted(r, c);
    }
    if (step != HTTP_GO_ON)
        memset(&c->key, 0, sizeof(c->key));
    return step;
}

enum http_step caller_count_all_here(struct http_request *r, struct caller *c, int64_t n)
{
    ratelimit_check_all(&r->srv->ratelimit, r->worker->redis, c->count.name, &c->count.policy, n,
                        &c->count.result);
    if (!c->count.result.allowed && n > c->count.policy.burst) {
        /* It could never go through whole: say why rather than when. */
        c->uncounted = false;
        r->rl_result = c->count.result;
        r->rl_policy = c->count.policy;
        r->ratelimited = true;
        metrics_inc(&r->srv->metrics.ratelimited);
        return http_problem(r, 429, "rate-limited",
                            "%lld links at once are more than this API key's burst of %lld; "
                            "send at most %lld per request",
                            (long long)n, (long long)c->count.policy.burst,
                            (long long)c->count.policy.burst);
    }
    return caller_counted(r, c);
}

void caller_show_unspent(struct http_request *r, const struct caller *c)
{
    if (!c->uncounted)
        return;
    count(r, c->count.name, &c->count.policy, false);
    /* Asking says what would be left once this request were admitted: one request, one
     * interval less than there is while it is not. */
    if (r->rl_result.allowed) {
        int64_t interval = ratelimit_interval_us(&c->count.policy);
        r->rl_result.remaining++;
        r->rl_result.reset_us =
            r->rl_result.reset_us > interval ? r->rl_result.reset_us - interval : 0;
    }
}

enum http_step caller_peek(struct http_request *r, bool anonymous_ok)
{
    struct caller c;
    enum http_step step = caller_begin(r, anonymous_ok, &c);

    if (step == HTTP_GO_ON)
        caller_show_unspent(r, &c);
    return step;
}

int caller_client_addr(struct http_request *r, unsigned char addr[16])
{
    char xff[XFF_MAX];
    const struct clientip_trusted *t = &r->srv->trusted_proxies;

    /* Without trusted proxies the header is never believed: not even looked up. */
    return clientip_resolve_addr(t, http_peer(r), t->n ? forwarded_for(r, xff, sizeof(xff)) : NULL,
                                 addr);
}

bool caller_is_proxy(struct http_request *r)
{
    char xff[XFF_MAX];
    return clientip_is_proxy(&r->srv->trusted_proxies, http_peer(r),
                             forwarded_for(r, xff, sizeof(xff)));
}

int64_t caller_owner_filter(const struct caller *c)
{
    return c->key.is_admin ? 0 : c->key.id;
}
