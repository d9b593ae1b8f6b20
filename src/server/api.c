/* Endpoints: create, redirect, read, delete, and the operational ones. */
#include "api.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admission.h"
#include "apikey.h"
#include "authcache.h"
#include "cache.h"
#include "clientip.h"
#include "hotcache.h"
#include "http.h"
#include "keys_client.h"
#include "linkwriter.h"
#include "log.h"
#include "ratelimit.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "timefmt.h"
#include "urlcheck.h"
#include "visits.h"

#define API_PREFIX "/api/v1/urls"

/* A generated key can collide with a custom alias spelt like one; the next key will not. */
#define KEY_ATTEMPTS 5

static int unavailable(struct http_request *r, const char *what)
{
    return http_problem(r, 503, "unavailable", "%s is unavailable; try again shortly", what);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Counts the request against the limit named key (e.g. "k:42") and keeps the result on r, so
 * that whatever answer follows carries the RateLimit fields. */
static void count(struct http_request *r, const char *key, const struct ratelimit_policy *p,
                  bool commit)
{
    ratelimit_check(&r->srv->ratelimit, r->worker->cache, key, p, commit, &r->rl_result);
    r->rl_policy = *p;
    r->ratelimited = true;
}

/* The 429 for a request count() refused. Returns -EBUSY. */
static int refuse(struct http_request *r, const char *what)
{
    metrics_inc(&r->srv->metrics.ratelimited);
    http_problem(r, 429, "rate-limited", "%s; retry in %lld s", what,
                 (long long)ratelimit_retry_after(&r->rl_result));
    return -EBUSY;
}

/* The limit key of the client's address: prefix + address (see clientip.h). */
static void client_key(struct http_request *r, const char *prefix, char *out, size_t cap)
{
    char ip[CLIENTIP_TEXT_MAX];
    clientip_resolve(&r->srv->trusted_proxies, http_peer(r), http_header(r, "X-Forwarded-For"), ip);
    snprintf(out, cap, "%s%s", prefix, ip);
}

/* What admission found out before counting the request against its key's limit. */
struct admit_state {
    struct admission_job job; /* first: the job's address is the state's */
    unsigned char hash[APIKEY_HASH_LEN];
    bool cached;
    int64_t revocations;
    struct apikey_info key;
};

static int admit_unauthorized(struct http_request *r, const char *fkey_in, bool had_credentials)
{
    struct server *s = r->srv;
    char fkey[RATELIMIT_KEY_MAX];

    if (s->cfg.rate_limits) {
        struct ratelimit_result spent;
        if (fkey_in && fkey_in[0])
            snprintf(fkey, sizeof(fkey), "%s", fkey_in);
        else
            client_key(r, "f:", fkey, sizeof(fkey));
        ratelimit_check(&s->ratelimit, r->worker->cache, fkey, &s->auth_failure_policy, true,
                        &spent);
    }
    if (!had_credentials)
        http_problem(r, 401, "unauthorized", "an API key is required (Authorization: Bearer)");
    else
        http_problem(r, 401, "unauthorized", "the API key is unknown or revoked");
    return -EACCES;
}

static int admit_db_error(struct http_request *r)
{
    metrics_inc(&r->srv->metrics.db_errors);
    unavailable(r, "the database");
    return -EAGAIN;
}

/* The first half of admission: everything up to counting the request against its key's
 * limit. Returns 1 when that count is still to be made (st filled in), 0 when the caller is
 * admitted already (no limits, or an anonymous caller when anonymous_ok), or a negative value
 * once the refusal (401, 429, 503) has been sent.
 *
 * Every failed authentication costs the client's address from its AUTH_FAILURE_RATE budget,
 * and an address that has spent it gets 429 before its key is even looked up. A key
 * confirmed in the last AUTHCACHE_TTL_MS is taken from the cache, unless the revocation
 * count that comes back with its rate limit has moved since: then admit_counted() looks it up
 * again, which makes revocation immediate while Redis answers. */
static int admit_begin(struct http_request *r, bool anonymous_ok, struct admit_state *st)
{
    struct server *s = r->srv;
    const char *auth = http_header(r, "Authorization");
    const char *token = NULL;
    char name[RATELIMIT_KEY_MAX], fkey[RATELIMIT_KEY_MAX] = "";
    bool limits = s->cfg.rate_limits, hashed = false;
    int rc;

    memset(st, 0, sizeof(*st));
    st->revocations = -1;
    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7) == 0) {
            token = auth + 7;
            while (*token == ' ')
                token++;
        }
    } else {
        token = http_header(r, "X-API-Key");
        if (!token && anonymous_ok) {
            if (!limits)
                return 0;
            client_key(r, "a:", name, sizeof(name));
            count(r, name, &s->anonymous_policy, true);
            return r->rl_result.allowed ? 0 : refuse(r, "too many anonymous requests");
        }
    }
    if (token && apikey_well_formed(token, strlen(token)) &&
        apikey_hash(token, strlen(token), s->cfg.apikey_pepper, st->hash) == 0) {
        hashed = true;
        st->cached = authcache_get(s->auth, st->hash, monotonic_ms(), &st->key, &st->revocations);
    }
    if (!st->cached) {
        if (limits) {
            client_key(r, "f:", fkey, sizeof(fkey));
            count(r, fkey, &s->auth_failure_policy, false);
            if (!r->rl_result.allowed)
                return refuse(r, "too many failed authentications from this address");
            r->ratelimited = false;
        }
        if (!hashed)
            return admit_unauthorized(r, fkey, token || auth);
        rc = store_authenticate(r->worker->store, st->hash, &st->key);
        if (rc == -ENOENT)
            return admit_unauthorized(r, fkey, true);
        if (rc < 0)
            return admit_db_error(r);
    }
    if (!limits) {
        if (!st->cached)
            authcache_put(s->auth, st->hash, monotonic_ms(), &st->key, -1);
        return 0;
    }
    snprintf(st->job.name, sizeof(st->job.name), "k:%lld", (long long)st->key.id);
    st->job.policy =
        (struct ratelimit_policy){.limit = st->key.rate_limit,
                                  .window = st->key.rate_window,
                                  .burst = st->key.burst > 0 ? st->key.burst : st->key.rate_limit};
    return 1;
}

/* The second half, once r->rl_result holds the count: re-checks a cached key when a
 * revocation happened meanwhile, caches a confirmed one, refuses over the limit. */
static int admit_counted(struct http_request *r, struct admit_state *st)
{
    struct server *s = r->srv;
    int rc;

    r->rl_policy = st->job.policy;
    r->ratelimited = true;
    if (st->cached && r->rl_result.revocations >= 0 &&
        r->rl_result.revocations != st->revocations) {
        /* A key was revoked somewhere since this one was confirmed: is it still valid? */
        rc = store_authenticate(r->worker->store, st->hash, &st->key);
        if (rc == -ENOENT) {
            r->ratelimited = false;
            memset(&st->key, 0, sizeof(st->key));
            return admit_unauthorized(r, NULL, true);
        }
        if (rc < 0)
            return admit_db_error(r);
        st->cached = false;
    }
    if (!st->cached)
        authcache_put(s->auth, st->hash, monotonic_ms(), &st->key, r->rl_result.revocations);
    return r->rl_result.allowed ? 0 : refuse(r, "the API key's rate limit is exceeded");
}

/* Admits the caller of a read or delete, counting it in this thread. Returns 0 with key->id
 * > 0 for a valid key (0 for an anonymous caller when anonymous_ok), or a negative value
 * once the refusal has been sent. */
static int api_admit(struct http_request *r, bool anonymous_ok, struct apikey_info *key)
{
    struct admit_state st;
    int rc = admit_begin(r, anonymous_ok, &st);

    if (rc == 1) {
        ratelimit_check(&r->srv->ratelimit, r->worker->cache, st.job.name, &st.job.policy, true,
                        &r->rl_result);
        rc = admit_counted(r, &st);
    }
    *key = rc == 0 ? st.key : (struct apikey_info){0};
    return rc;
}

/* Applies the count the admission thread made for a parked create (see handle_create). */
static int admit_resume(struct http_request *r, struct apikey_info *key)
{
    struct admit_state *st = r->admit;
    int rc;

    r->rl_result = st->job.result;
    rc = admit_counted(r, st);
    *key = rc == 0 ? st->key : (struct apikey_info){0};
    return rc;
}

/* The owner whose links a key may see: its own, or anybody's for an admin key. */
static int64_t owner_filter(const struct apikey_info *key)
{
    return key->is_admin ? 0 : key->id;
}

/* The JSON description of a link; visits < 0 leaves the field out. Caller frees. */
static char *link_json(struct server *s, const char *key, const char *url, int64_t created_at,
                       int64_t expires_at, int64_t visits)
{
    char created[TIMEFMT_LEN], expires[TIMEFMT_LEN], short_url[700];
    json_t *obj;
    char *text;

    timefmt_format(created_at, created);
    timefmt_format(expires_at, expires);
    snprintf(short_url, sizeof(short_url), "%s/%s", s->base_url, key);
    obj = json_pack("{s:s, s:s, s:s, s:s, s:o}", "key", key, "short_url", short_url, "url", url,
                    "created_at", created, "expires_at",
                    expires_at ? json_string(expires) : json_null());
    if (obj && visits >= 0)
        json_object_set_new(obj, "visits", json_integer(visits));
    text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}

static int send_json(struct http_request *r, unsigned status, char *text,
                     const char *const *headers)
{
    int rc;
    if (!text)
        return http_problem(r, 500, "internal", "out of memory");
    rc = http_send(r, status, "application/json", text, strlen(text), headers);
    free(text);
    return rc;
}

/* Where a create stands while its connection is parked (link_job.stage). */
enum create_stage { STAGE_COUNTING, STAGE_COUNTED, STAGE_WRITING, STAGE_WRITTEN };

/* On a writer thread: the link is stored or refused; wake the request. */
static void written(struct link_job *job)
{
    struct http_request *r = job->ctx;
    job->stage = STAGE_WRITTEN;
    http_resume(r->conn);
}

/* Hands the link to the writer; the request must be parked already. */
static void queue_write(struct http_request *r, struct link_job *job)
{
    job->done = written;
    job->ctx = r;
    job->attempts++;
    job->stage = STAGE_WRITING;
    if (linkwriter_submit(r->srv->writer, job) < 0) {
        job->rc = -EAGAIN; /* shutting down */
        job->stage = STAGE_WRITTEN;
        http_resume(r->conn);
    }
}

/* Parks the request and hands its link to the writer. */
static int write_parked(struct http_request *r, struct link_job *job)
{
    /* Suspended before it is queued: the writer may resume it at once. */
    http_suspend(r);
    queue_write(r, job);
    return 0;
}

/* On the admission thread: the create was counted. The common case (admitted, key confirmed
 * recently, no revocation since) goes straight on to the writer, so a create parks once;
 * anything else wakes the request to decide (429, or a fresh look at the key). */
static void counted(struct admission_job *aj)
{
    struct admit_state *st = (struct admit_state *)aj;
    struct http_request *r = aj->ctx;

    if (aj->result.allowed && st->cached &&
        (aj->result.revocations < 0 || aj->result.revocations == st->revocations)) {
        queue_write(r, r->job);
        return;
    }
    r->job->stage = STAGE_COUNTED;
    http_resume(r->conn);
}

/* The writer is done with the request's link: answer, or try the next key. */
static int create_finish(struct http_request *r)
{
    struct server *s = r->srv;
    struct link_job *job = r->job;
    char location[sizeof(API_PREFIX) + KEY_MAX_LEN + 2];

    if (r->admit) {
        r->rl_result = r->admit->job.result;
        r->rl_policy = r->admit->job.policy;
        r->ratelimited = true;
    }
    if (job->rc == -EEXIST && !job->alias && job->attempts < KEY_ATTEMPTS) {
        if (keys_client_take(s->keys, job->key) < 0) {
            metrics_inc(&s->metrics.kgs_errors);
            return unavailable(r, "the key generation service");
        }
        return write_parked(r, job);
    }
    if (job->rc == -EEXIST)
        return job->alias ? http_problem(r, 409, "alias-taken", "the alias '%s' is taken", job->key)
                          : http_problem(r, 500, "internal", "could not find a free key");
    if (job->rc < 0) {
        metrics_inc(&s->metrics.db_errors);
        return job->rc == -EAGAIN
                   ? unavailable(r, "the database")
                   : http_problem(r, 500, "internal", "the link could not be stored");
    }
    metrics_inc(&s->metrics.links_created);
    snprintf(location, sizeof(location), API_PREFIX "/%s", job->key);
    const char *headers[] = {"Location", location, NULL};
    return send_json(r, 201, link_json(s, job->key, job->url, job->created_at, job->expires_at, -1),
                     headers);
}

/* Why a create cannot go ahead, to be sent once it has been counted. */
struct create_error {
    unsigned status;
    const char *type;
    char detail[256];
};

/* Parses and validates the create's body into a link job (owned by the caller), taking a
 * generated key unless it names an alias. Returns 0, or -1 with the answer to give in err. */
static int build_job(struct http_request *r, int64_t owner, struct link_job **out,
                     struct create_error *err)
{
    struct server *s = r->srv;
    struct create_request req = {0};
    struct link_job *job = NULL;
    char *url = NULL;
    int64_t expires_at;
    enum urlcheck_result uc;
    enum body_type type;
    int rc = -1;

    *err = (struct create_error){.status = 400, .type = "invalid-body"};
    type = request_body_type(http_header(r, "Content-Type"));
    if (type == BODY_UNSUPPORTED) {
        *err = (struct create_error){.status = 415, .type = "unsupported-media-type"};
        snprintf(err->detail, sizeof(err->detail),
                 "send application/json or application/x-www-form-urlencoded");
        return -1;
    }
    rc = request_parse_create(type, r->body ? r->body : "", r->body_len, &req, err->detail,
                              sizeof(err->detail));
    if (rc == -ENOMEM)
        *err = (struct create_error){.status = 500, .type = "internal", .detail = "out of memory"};
    if (rc < 0)
        return -1;
    rc = -1;
    err->type = "invalid-url";
    if (!req.url) {
        snprintf(err->detail, sizeof(err->detail), "url is required");
        goto out;
    }
    uc = urlcheck_validate(req.url, req.url_len, s->base_url, &url);
    if (uc != URLCHECK_OK) {
        if (uc == URLCHECK_NOMEM)
            *err = (struct create_error){.status = 500, .type = "internal"};
        snprintf(err->detail, sizeof(err->detail), "%s",
                 uc == URLCHECK_NOMEM ? "out of memory" : urlcheck_describe(uc));
        goto out;
    }
    err->type = "invalid-alias";
    if (req.alias && request_check_alias(req.alias, err->detail, sizeof(err->detail)) < 0)
        goto out;
    err->type = "invalid-expiry";
    if (request_resolve_expiry(&req, time(NULL), s->cfg.default_ttl, &expires_at, err->detail,
                               sizeof(err->detail)) < 0)
        goto out;
    job = calloc(1, sizeof(*job));
    if (!job) {
        *err = (struct create_error){.status = 500, .type = "internal", .detail = "out of memory"};
        goto out;
    }
    job->url = url;
    url = NULL;
    job->owner = owner;
    job->expires_at = expires_at;
    if (req.alias) {
        job->alias = true;
        snprintf(job->key, sizeof(job->key), "%s", req.alias);
    } else if (keys_client_take(s->keys, job->key) < 0) {
        metrics_inc(&s->metrics.kgs_errors);
        *err = (struct create_error){.status = 503, .type = "unavailable"};
        snprintf(err->detail, sizeof(err->detail),
                 "the key generation service is unavailable; try again shortly");
        link_job_free(job);
        job = NULL;
        goto out;
    }
    *out = job;
    rc = 0;
out:
    free(url);
    create_request_release(&req);
    return rc;
}

/* A create: admitted (API key, rate limit), validated, then parked while the admission
 * thread counts it and the link writer stores it; answered when the writer is done. The
 * count is made after validation so that a create parks only once in the common case; an
 * invalid one is counted here before its error is sent. */
static int handle_create(struct http_request *r)
{
    struct server *s = r->srv;
    struct admit_state *st;
    struct apikey_info key;
    struct create_error err;
    struct link_job *job = NULL;
    int rc;

    if (r->job && r->job->stage == STAGE_WRITTEN)
        return create_finish(r);
    if (r->job && r->job->stage == STAGE_COUNTED) {
        if (admit_resume(r, &key) < 0)
            return 0;
        r->job->owner = key.id;
        return write_parked(r, r->job);
    }
    if (r->body_too_large)
        return http_problem(r, 413, "body-too-large", "the body is over %d bytes",
                            REQUEST_MAX_BODY);
    st = calloc(1, sizeof(*st));
    if (!st)
        return http_problem(r, 500, "internal", "out of memory");
    rc = admit_begin(r, s->cfg.allow_anonymous, st);
    if (rc < 0)
        goto out;
    if (build_job(r, st->key.id, &job, &err) < 0) {
        if (rc == 1) {
            ratelimit_check(&s->ratelimit, r->worker->cache, st->job.name, &st->job.policy, true,
                            &r->rl_result);
            if (admit_counted(r, st) < 0)
                goto out;
        }
        http_problem(r, err.status, err.type, "%s", err.detail);
        goto out;
    }
    r->job = job;
    if (rc == 0) {
        free(st);
        return write_parked(r, job);
    }
    r->admit = st;
    st->job.done = counted;
    st->job.ctx = r;
    job->stage = STAGE_COUNTING;
    http_suspend(r);
    if (admission_submit(s->admission, &st->job) < 0) {
        /* Shutting down: count here, answer when resumed. */
        ratelimit_check(&s->ratelimit, r->worker->cache, st->job.name, &st->job.policy, true,
                        &st->job.result);
        job->stage = STAGE_COUNTED;
        http_resume(r->conn);
    }
    return 0;
out:
    free(st);
    return 0;
}

static int handle_read(struct http_request *r, const char *linkkey)
{
    struct apikey_info key;
    struct link link = {0};
    int rc;

    if (api_admit(r, false, &key) < 0)
        return 0;
    rc = store_get_link(r->worker->store, linkkey, owner_filter(&key), &link);
    if (rc == -ENOENT)
        return http_problem(r, 404, "not-found", "no link with this key");
    if (rc < 0) {
        metrics_inc(&r->srv->metrics.db_errors);
        return unavailable(r, "the database");
    }
    rc = send_json(
        r, 200, link_json(r->srv, linkkey, link.url, link.created_at, link.expires_at, link.visits),
        NULL);
    link_release(&link);
    return rc;
}

static int handle_delete(struct http_request *r, const char *linkkey)
{
    struct apikey_info key;
    int rc;

    if (api_admit(r, false, &key) < 0)
        return 0;
    rc = store_delete_link(r->worker->store, linkkey, owner_filter(&key));
    if (rc == -ENOENT)
        return http_problem(r, 404, "not-found", "no link with this key");
    if (rc < 0) {
        metrics_inc(&r->srv->metrics.db_errors);
        return unavailable(r, "the database");
    }
    hotcache_evict(r->srv->hot, linkkey, strlen(linkkey));
    /* Committed first, then the cache: no server can serve the link from Redis after this. */
    if (cache_tombstone(r->worker->cache, linkkey, r->srv->cfg.negative_ttl) < 0) {
        metrics_inc(&r->srv->metrics.cache_errors);
        log_warn("request %llu: deleted %s but could not evict it from redis: %s",
                 (unsigned long long)r->id, linkkey, cache_error(r->worker->cache));
    }
    metrics_inc(&r->srv->metrics.links_deleted);
    return http_send(r, 204, NULL, "", 0, NULL);
}

static long long min_ll(long long a, long long b)
{
    return a < b ? a : b;
}

/* Answers a redirect found in a cache: expires_at (0: never) is judged by our clock, since
 * a cache may hold an entry a moment longer than the link lives. Returns 1 when the entry
 * has expired and nothing was sent. */
static int redirect_cached(struct http_request *r, enum metric_redirect where, const char *key,
                           size_t len, const char *url, int64_t expires_at, int64_t now)
{
    struct server *s = r->srv;

    if (expires_at && expires_at <= now)
        return 1;
    metrics_inc(&s->metrics.redirects[where]);
    /* A hot hit's visit was counted in its entry already (hotcache_get). */
    if (where != MR_HOT_HIT && !visits_record(s->visits, key, len))
        metrics_inc(&s->metrics.visits_dropped);
    return http_redirect(r, url,
                         expires_at ? min_ll(expires_at - now, s->cfg.redirect_max_age)
                                    : s->cfg.redirect_max_age);
}

static int handle_redirect(struct http_request *r, const char *linkkey, size_t len)
{
    struct server *s = r->srv;
    struct worker *w = r->worker;
    char url[URLCHECK_MAX_LEN + 1];
    char *dburl = NULL;
    int64_t expires_at = 0, remaining, now = (int64_t)time(NULL);
    uint64_t epoch;
    int rc;

    if (!request_is_key(linkkey, len)) {
        metrics_inc(&s->metrics.redirects[MR_INVALID]);
        return http_link_not_found(r);
    }
    if (hotcache_get(s->hot, linkkey, len, url, sizeof(url), &expires_at, now, true) == 0) {
        rc = redirect_cached(r, MR_HOT_HIT, linkkey, len, url, expires_at, now);
        if (rc <= 0)
            return rc;
        hotcache_evict(s->hot, linkkey, len);
    }
    /* Read before looking further: a deletion from now on keeps what we find out of the hot
     * cache. */
    epoch = hotcache_epoch(s->hot);
    rc = cache_get(w->cache, linkkey, url, sizeof(url), &expires_at);
    if (rc == CACHE_NEGATIVE) {
        metrics_inc(&s->metrics.redirects[MR_CACHE_NEGATIVE]);
        return http_link_not_found(r);
    }
    if (rc == CACHE_HIT) {
        if (!expires_at || expires_at > now)
            hotcache_put(s->hot, epoch, linkkey, len, url, expires_at, now);
        rc = redirect_cached(r, MR_CACHE_HIT, linkkey, len, url, expires_at, now);
        if (rc <= 0)
            return rc;
    } else if (rc == -EAGAIN) {
        metrics_inc(&s->metrics.cache_errors);
    }

    rc = store_lookup_redirect(w->store, linkkey, &dburl, &expires_at, &remaining);
    if (rc == -ENOENT) {
        metrics_inc(&s->metrics.redirects[MR_DB_MISS]);
        cache_fill_negative(w->cache, linkkey, s->cfg.negative_ttl);
        return http_link_not_found(r);
    }
    if (rc < 0) {
        metrics_inc(&s->metrics.db_errors);
        return unavailable(r, "the database");
    }
    metrics_inc(&s->metrics.redirects[MR_DB_HIT]);
    /* remaining is the database's view (-1: never expires), so a link in its last second is
     * not cached anywhere. */
    if (remaining != 0) {
        long long ttl = remaining < 0 ? s->cfg.cache_ttl : min_ll(remaining, s->cfg.cache_ttl);
        cache_fill(w->cache, linkkey, dburl, expires_at, ttl);
        hotcache_put(s->hot, epoch, linkkey, len, dburl, expires_at, now);
    }
    if (!visits_record(s->visits, linkkey, len))
        metrics_inc(&s->metrics.visits_dropped);
    rc = http_redirect(r, dburl,
                       remaining < 0 ? s->cfg.redirect_max_age
                                     : min_ll(remaining, s->cfg.redirect_max_age));
    free(dburl);
    return rc;
}

static int handle_readyz(struct http_request *r)
{
    struct worker *w = r->worker;
    char detail[768] = "";
    size_t len = 0;

    if (store_ping(w->store) < 0)
        len += (size_t)snprintf(detail + len, sizeof(detail) - len, "postgres: %s; ",
                                store_error(w->store));
    if (len < sizeof(detail) && cache_ping(w->cache) < 0)
        len += (size_t)snprintf(detail + len, sizeof(detail) - len, "redis: %s; ",
                                cache_error(w->cache));
    int krc = keys_client_ping(r->srv->keys);
    if (len < sizeof(detail) && krc < 0)
        len += (size_t)snprintf(detail + len, sizeof(detail) - len, "kgs: %s; ", strerror(-krc));
    if (len > 0) {
        if (len > 2 && len < sizeof(detail))
            detail[len - 2] = '\0';
        return http_problem(r, 503, "not-ready", "not ready: %s", detail);
    }
    static const char ok[] =
        "{\"status\":\"ok\",\"checks\":{\"postgres\":\"ok\",\"redis\":\"ok\",\"kgs\":\"ok\"}}";
    return http_send(r, 200, "application/json", ok, sizeof(ok) - 1, NULL);
}

static int handle_metrics(struct http_request *r)
{
    struct server *s = r->srv;
    struct metrics_gauges g = {
        .keys_buffered = keys_client_buffered(s->keys),
        .visits_pending = visits_pending(s->visits),
        .hot_entries = hotcache_count(s->hot),
        .hot_enabled = hotcache_enabled(s->hot),
        .writer_queued = linkwriter_queued(s->writer),
    };
    linkwriter_counts(s->writer, &g.writer_batches, &g.writer_links);
    char buf[8192];
    int len = metrics_render(&s->metrics, &g, buf, sizeof(buf));
    if (len < 0)
        return http_problem(r, 500, "internal", "metrics do not fit their buffer");
    return http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, (size_t)len, NULL);
}

static bool is(const char *method, const char *want)
{
    return strcmp(method, want) == 0;
}

static bool get_or_head(const char *method)
{
    return is(method, "GET") || is(method, "HEAD");
}

int api_handle(struct http_request *r)
{
    const char *path = r->path, *m = r->method;

    if (strcmp(path, "/healthz") == 0) {
        static const char ok[] = "{\"status\":\"ok\"}";
        if (!get_or_head(m))
            return http_method_not_allowed(r, "GET, HEAD");
        return http_send(r, 200, "application/json", ok, sizeof(ok) - 1, NULL);
    }
    if (strcmp(path, "/readyz") == 0)
        return get_or_head(m) ? handle_readyz(r) : http_method_not_allowed(r, "GET, HEAD");
    if (strcmp(path, "/metrics") == 0)
        return get_or_head(m) ? handle_metrics(r) : http_method_not_allowed(r, "GET, HEAD");
    if (strcmp(path, API_PREFIX) == 0 || strcmp(path, API_PREFIX "/") == 0)
        return is(m, "POST") ? handle_create(r) : http_method_not_allowed(r, "POST");
    if (strncmp(path, API_PREFIX "/", sizeof(API_PREFIX)) == 0) {
        const char *key = path + sizeof(API_PREFIX);
        if (!request_is_key(key, strlen(key)))
            return http_problem(r, 404, "not-found", "no link with this key");
        if (get_or_head(m))
            return handle_read(r, key);
        if (is(m, "DELETE"))
            return handle_delete(r, key);
        return http_method_not_allowed(r, "GET, HEAD, DELETE");
    }
    if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0)
        return http_problem(r, 404, "not-found", "no such endpoint");
    if (path[0] == '/' && path[1] != '\0' && !strchr(path + 1, '/')) {
        if (!get_or_head(m))
            return http_method_not_allowed(r, "GET, HEAD");
        return handle_redirect(r, path + 1, strlen(path + 1));
    }
    return http_problem(r, 404, "not-found", "no such page");
}
