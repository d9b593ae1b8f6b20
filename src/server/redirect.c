/* The redirect path: hot cache, Redis, PostgreSQL (see redirect.h). */
#include "redirect.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "cache.h"
#include "hotcache.h"
#include "metrics.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "urlcheck.h"
#include "visits.h"

static long long min_ll(long long a, long long b)
{
    return a < b ? a : b;
}

/* Answers a redirect found in a cache: expires_at (0: never) is judged by our clock, since
 * a cache may hold an entry a moment longer than the link lives. HTTP_GO_ON when the entry
 * has expired and nothing was sent. */
static enum http_step redirect_cached(struct http_request *r, enum metric_redirect where,
                                      const char *key, size_t len, const char *url,
                                      int64_t expires_at, int64_t now)
{
    struct server *s = r->srv;

    if (expires_at && expires_at <= now)
        return HTTP_GO_ON;
    metrics_inc(&s->metrics.redirects[where]);
    /* A hot hit's visit was counted in its entry already (hotcache_get). */
    if (where != MR_HOT_HIT && !visits_record(s->visits, key, len))
        metrics_inc(&s->metrics.visits_dropped);
    return http_redirect(r, url,
                         expires_at ? min_ll(expires_at - now, s->cfg.redirect_max_age)
                                    : s->cfg.redirect_max_age);
}

enum http_step redirect_handle(struct http_request *r, const char *linkkey, size_t len)
{
    struct server *s = r->srv;
    struct worker *w = r->worker;
    char url[URLCHECK_MAX_LEN + 1];
    struct redirect_row row;
    int64_t expires_at = 0, remaining, now = (int64_t)time(NULL);
    bool fill = true;
    uint64_t epoch;
    enum http_step step;
    int rc;

    if (!request_is_key(linkkey, len)) {
        metrics_inc(&s->metrics.redirects[MR_INVALID]);
        return http_link_not_found(r);
    }
    if (hotcache_get(s->hot, linkkey, len, url, sizeof(url), &expires_at, now, true) == 0) {
        step = redirect_cached(r, MR_HOT_HIT, linkkey, len, url, expires_at, now);
        if (step != HTTP_GO_ON)
            return step;
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
        step = redirect_cached(r, MR_CACHE_HIT, linkkey, len, url, expires_at, now);
        if (step != HTTP_GO_ON)
            return step;
    } else if (rc == CACHE_EDITED) {
        fill = false; /* edited a moment ago: a fill that raced it could be stale */
    } else if (rc == -EAGAIN) {
        metrics_inc(&s->metrics.cache_errors);
    }

    rc = store_lookup_redirect(w->store, linkkey, &row);
    if (rc == -ENOENT) {
        metrics_inc(&s->metrics.redirects[MR_DB_MISS]);
        cache_fill_negative(w->cache, linkkey, s->cfg.negative_ttl);
        return http_link_not_found(r);
    }
    if (rc < 0) {
        metrics_inc(&s->metrics.db_errors);
        return http_unavailable(r, "the database");
    }
    metrics_inc(&s->metrics.redirects[MR_DB_HIT]);
    expires_at = row.a.expires_at;
    remaining = row.remaining;
    /* remaining is the database's view (-1: never expires), so a link in its last second is
     * not cached anywhere. */
    if (remaining != 0 && fill) {
        long long ttl = remaining < 0 ? s->cfg.cache_ttl : min_ll(remaining, s->cfg.cache_ttl);
        cache_fill(w->cache, linkkey, row.url, expires_at, ttl);
        hotcache_put(s->hot, epoch, linkkey, len, row.url, expires_at, now);
    }
    if (!visits_record(s->visits, linkkey, len))
        metrics_inc(&s->metrics.visits_dropped);
    step = http_redirect(r, row.url,
                         remaining < 0 ? s->cfg.redirect_max_age
                                       : min_ll(remaining, s->cfg.redirect_max_age));
    free(row.url);
    return step;
}
