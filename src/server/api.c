/* The HTTP API of API.md: routing, and the small handlers (read, delete, the operational
 * endpoints). Creates and redirects have modules of their own (create.c, redirect.c). */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "caller.h"
#include "connguard.h"
#include "cors.h"
#include "create.h"
#include "deadline.h"
#include "hotcache.h"
#include "hotrefresh.h"
#include "http.h"
#include "invalidation.h"
#include "latency.h"
#include "keys_client.h"
#include "links.h"
#include "live.h"
#include "linkwriter.h"
#include "log.h"
#include "openapi.h"
#include "qr.h"
#include "redirect.h"
#include "request.h"
#include "server.h"
#include "web.h"
#include "stats.h"
#include "store.h"
#include "visits.h"

#define API_PREFIX "/api/v1/urls"

/* HAProxy asks /readyz several times a second from every balancer: one check serves every
 * request for READYZ_CACHE_MS, and a failing dependency is named, its driver's words only
 * logged (they may say more about our setup than a client should know). */
#define READYZ_CACHE_MS 250

static unsigned readyz_check(struct http_request *r)
{
    struct worker *w = r->worker;
    unsigned failed = 0;
    int rc;

    if (store_ping(w->store) < 0) {
        failed |= 1;
        log_warn("readyz: postgres: %s", store_error(w->store));
    }
    if (cache_ping(w->cache) < 0) {
        failed |= 2;
        log_warn("readyz: redis: %s", cache_error(w->cache));
    }
    /* A new server distrusts Redis until its first resync (invalidation.h): meanwhile every
     * redirect goes to PostgreSQL and each server limits rates by itself, so it is not ready
     * yet. Only the first: a later distrust (an outage, a failover) comes to every server at
     * once, and taking them all out of the balancer would turn slower into down. While
     * PostgreSQL is away no resync can run, and PostgreSQL alone is named. */
    if (!failed && !invalidation_synced(r->srv->invalidation)) {
        failed |= 2;
        log_warn("readyz: redis: not yet made consistent since start");
    }
    if ((rc = keys_client_ping(r->srv->keys)) < 0) {
        failed |= 4;
        log_warn("readyz: kgs: %s", strerror(-rc));
    }
    return failed;
}

static enum http_step handle_readyz(struct http_request *r)
{
    static const char *const names[] = {"postgres", "redis", "kgs"};
    struct server *s = r->srv;
    long long now = deadline_now_ms();
    unsigned failed;
    char detail[64] = "";

    pthread_mutex_lock(&s->readyz_lock);
    if (now - s->readyz_at >= READYZ_CACHE_MS || s->readyz_at == 0) {
        /* Checked under the lock: concurrent probes wait for one check instead of each
         * making their own. */
        s->readyz_failed = readyz_check(r);
        s->readyz_at = deadline_now_ms();
    }
    failed = s->readyz_failed;
    pthread_mutex_unlock(&s->readyz_lock);
    if (failed) {
        for (int i = 0; i < 3; i++)
            if (failed & (1u << i))
                snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), "%s%s",
                         detail[0] ? ", " : "", names[i]);
        return http_problem(r, 503, "not-ready", "not ready: %s unavailable", detail);
    }
    static const char ok[] =
        "{\"status\":\"ok\",\"checks\":{\"postgres\":\"ok\",\"redis\":\"ok\",\"kgs\":\"ok\"}}";
    return http_send(r, 200, "application/json", ok, sizeof(ok) - 1, NULL);
}

static enum http_step handle_metrics(struct http_request *r)
{
    struct server *s = r->srv;
    struct metrics_gauges g = {
        .keys_buffered = keys_client_buffered(s->keys),
        .visits_pending = visits_pending(s->visits),
        .hot_entries = hotcache_count(s->hot),
        .hot_enabled = hotcache_enabled(s->hot),
        .hot_refreshes = hotrefresh_count(s->refresh),
        .writer_queued = linkwriter_queued(s->writer),
        .live_watchers = live_watchers(s->live),
        .live_links = live_links(s->live),
        .connections_open = s->guard ? connguard_open_count(s->guard) : 0,
    };
    linkwriter_counts(s->writer, &g.writer_batches, &g.writer_links);
    /* Each worker's histograms are written by that worker alone: summed here, a moment's
     * counts at most behind. */
    struct latency total = {0};
    struct metrics sum;
    metrics_snapshot(&s->metrics, &sum);
    for (unsigned i = 0; i < s->nworkers; i++) {
        latency_add(&total, &s->workers[i].latency);
        metrics_add_shard(&sum, &s->workers[i].metrics);
    }
    enum { METRICS_BUF = 64 * 1024 };
    char *buf = malloc(METRICS_BUF);
    if (!buf)
        return http_problem(r, 500, "internal", "out of memory");
    int len = metrics_render(&sum, &g, buf, METRICS_BUF);
    int hlen = len < 0 ? len : latency_render(&total, buf + len, METRICS_BUF - (size_t)len);
    enum http_step step = hlen < 0
                              ? http_problem(r, 500, "internal", "metrics do not fit their buffer")
                              : http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf,
                                          (size_t)len + (size_t)hlen, NULL);
    free(buf);
    return step;
}

static bool is(const char *method, const char *want)
{
    return strcmp(method, want) == 0;
}

static bool get_or_head(const char *method)
{
    return is(method, "GET") || is(method, "HEAD");
}

/* OPTIONS on the API: a CORS preflight when it asks for a method, from an origin that may
 * use the API; otherwise just what the API allows. */
static enum http_step handle_options(struct http_request *r)
{
    const char *const preflight[] = {"Access-Control-Allow-Methods",
                                     CORS_METHODS,
                                     "Access-Control-Allow-Headers",
                                     CORS_ALLOW_HEADERS,
                                     "Access-Control-Max-Age",
                                     CORS_MAX_AGE,
                                     NULL};
    const char *const plain[] = {"Allow", CORS_METHODS, NULL};

    if (r->cors_origin && http_header(r, "Origin") &&
        http_header(r, "Access-Control-Request-Method"))
        return http_send(r, 204, NULL, "", 0, preflight);
    return http_send(r, 204, NULL, "", 0, plain);
}

/* Whether the request is one that sends a body and needs a caller (create, bulk, edit), and
 * whether that caller may be anonymous: bulk creates need a key even where anonymous creates
 * are allowed. */
static bool sends_body(const struct http_request *r, bool *anonymous_ok)
{
    const char *path = r->path, *m = r->method;
    bool create =
        (strcmp(path, API_PREFIX) == 0 || strcmp(path, API_PREFIX "/") == 0) && is(m, "POST");
    bool bulk = strcmp(path, API_PREFIX "/bulk") == 0 && is(m, "POST");
    bool edit = strncmp(path, API_PREFIX "/", sizeof(API_PREFIX)) == 0 && is(m, "PATCH");

    *anonymous_ok = create && r->srv->cfg.allow_anonymous;
    return create || bulk || edit;
}

enum http_step api_check_early(struct http_request *r)
{
    bool anonymous_ok;

    if (!sends_body(r, &anonymous_ok))
        return HTTP_GO_ON;
    r->cors_origin = cors_allow_origin(&r->srv->cors, http_header(r, "Origin"));
    return caller_refuse_early(r, anonymous_ok);
}

enum http_step api_refuse_too_large(struct http_request *r)
{
    bool anonymous_ok;

    if (strncmp(r->path, "/api/", 5) == 0)
        r->cors_origin = cors_allow_origin(&r->srv->cors, http_header(r, "Origin"));
    if (sends_body(r, &anonymous_ok)) {
        enum http_step step = caller_peek(r, anonymous_ok);
        if (step != HTTP_GO_ON)
            return step;
    }
    return http_problem(r, 413, "body-too-large", "the body is over %zu bytes", r->body_limit);
}

/* A refusal of an API path that no handler takes (no such endpoint, a malformed key, a
 * method the path does not have): a caller that sent credentials is authenticated first, as
 * every handler would, so that a bad key gets 401 and a good one sees its RateLimit fields
 * (unspent) on the refusal too. */
static enum http_step api_refuse(struct http_request *r)
{
    return caller_sent_credentials(r) ? caller_peek(r, false) : HTTP_GO_ON;
}

static enum http_step api_not_found(struct http_request *r, const char *detail)
{
    enum http_step step = api_refuse(r);
    return step != HTTP_GO_ON ? step : http_problem(r, 404, "not-found", "%s", detail);
}

static enum http_step api_not_allowed(struct http_request *r, const char *allow)
{
    enum http_step step = api_refuse(r);
    return step != HTTP_GO_ON ? step : http_method_not_allowed(r, allow);
}

enum http_step api_handle(struct http_request *r)
{
    const char *path = r->path, *m = r->method;

    if (strncmp(path, "/api/", 5) == 0) {
        r->cors_origin = cors_allow_origin(&r->srv->cors, http_header(r, "Origin"));
        if (is(m, "OPTIONS"))
            return handle_options(r);
    }

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
    if (strcmp(path, OPENAPI_PATH) == 0)
        return openapi_handle(r);
    if (strcmp(path, API_PREFIX) == 0 || strcmp(path, API_PREFIX "/") == 0) {
        if (is(m, "POST"))
            return create_handle(r, false);
        return get_or_head(m) ? links_list(r) : api_not_allowed(r, "GET, HEAD, POST");
    }
    if (strcmp(path, API_PREFIX "/bulk") == 0)
        return is(m, "POST") ? create_handle(r, true) : api_not_allowed(r, "POST");
    if (strncmp(path, API_PREFIX "/", sizeof(API_PREFIX)) == 0) {
        const char *key = path + sizeof(API_PREFIX);
        size_t keylen = strlen(key);
        static const char stats_suffix[] = "/stats";
        if (keylen > sizeof(stats_suffix) - 1 &&
            strcmp(key + keylen - (sizeof(stats_suffix) - 1), stats_suffix) == 0) {
            char k[KEY_MAX_LEN + 1];
            keylen -= sizeof(stats_suffix) - 1;
            if (keylen > KEY_MAX_LEN || !request_is_key(key, keylen))
                return api_not_found(r, "no link with this key");
            if (!get_or_head(m))
                return api_not_allowed(r, "GET, HEAD");
            memcpy(k, key, keylen);
            k[keylen] = '\0';
            return stats_handle(r, k);
        }
        size_t klen = strlen(key);
        if (klen > 5 && strcmp(key + klen - 5, "/live") == 0) {
            char live_key[KEY_MAX_LEN + 1];
            if (klen - 5 > KEY_MAX_LEN || !request_is_key(key, klen - 5))
                return api_not_found(r, "no link with this key");
            if (!get_or_head(m))
                return api_not_allowed(r, "GET, HEAD");
            memcpy(live_key, key, klen - 5);
            live_key[klen - 5] = '\0';
            return live_handle(r, live_key);
        }
        if (!request_is_key(key, strlen(key)))
            return api_not_found(r, "no link with this key");
        if (get_or_head(m))
            return links_read(r, key);
        if (is(m, "PATCH"))
            return links_edit(r, key);
        if (is(m, "DELETE"))
            return links_delete(r, key);
        return api_not_allowed(r, "GET, HEAD, PATCH, DELETE");
    }
    if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0)
        return api_not_found(r, "no such endpoint");
    if (path[0] == '/' && path[1] != '\0' && !strchr(path + 1, '/')) {
        size_t len = strlen(path + 1);
        if (path[len] == '+')
            return web_public_stats(r, path + 1, len - 1);
        if (is(m, "POST"))
            return redirect_unlock(r, path + 1, len);
        if (!get_or_head(m))
            return http_method_not_allowed(r, "GET, HEAD, POST");
        return redirect_handle(r, path + 1, len);
    }
    /* Paths of two segments and the page: never on a redirect's way. */
    const char *slash = path[0] ? strchr(path + 1, '/') : NULL;
    if (slash && strcmp(slash, "/qr") == 0)
        return qr_handle(r, path + 1, (size_t)(slash - path - 1));
    if (strcmp(path, "/") == 0 || strncmp(path, "/static/", 8) == 0)
        return web_handle(r);
    return http_problem(r, 404, "not-found", "no such page");
}
