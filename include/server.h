/* The API server's state: configuration, the libmicrohttpd daemon and one set of connections
 * per worker thread. Everything mutable lives here; nothing is global. */
#ifndef SHORTENER_SERVER_H
#define SHORTENER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "clientip.h"
#include "cors.h"
#include "latency.h"
#include "metrics.h"
#include "ratelimit.h"
#include "redis.h"
#include "urlcheck.h"

struct MHD_Daemon;
struct store;
struct keys_client;
struct visits;
struct analytics;
struct authcache;
struct hotcache;
struct hotrefresh;
struct invalidation;
struct linkwriter;
struct admission;
struct pwhash;
struct live;
struct connguard;

struct server_config {
    char *database_url;
    char *database_read_url; /* empty: no replica */
    char *redis_url;
    char *redis_sentinels;
    char *redis_master_name;
    char *kgs_socket;
    char *listen_address;
    char *base_url; /* empty: http://localhost:PORT */
    char *apikey_pepper;
    char *environment; /* SHORTENER_ENV: "production" or "development" */
    char *log_level;
    char *anonymous_rate;
    char *auth_failure_rate;
    char *miss_rate;
    char *trusted_proxies;
    char *cors_origins;
    char *geoip_db;
    char *self_hosts;
    long long port;
    long long threads;
    long long default_ttl;
    long long cache_ttl;
    long long hot_cache_entries;
    long long hot_cache_max_age;
    long long negative_ttl;
    long long redirect_max_age;
    long long default_redirect_status;
    long long visits_flush_ms;
    long long max_connections;
    long long per_ip_connections;
    long long connection_timeout;
    long long database_read_max_lag_ms;
    long long live_interval_ms;
    long long live_keepalive_ms;
    long long live_max_per_address;
    long long request_timeout;
    bool allow_anonymous;
    bool rate_limits;
    bool analytics;
};

/* What one libmicrohttpd worker thread owns: neither libpq nor hiredis connections may be
 * shared between threads. */
struct worker {
    pthread_t thread;
    bool bound;
    struct store *store;
    struct store *replica; /* DATABASE_READ_URL's, for redirect look-ups; NULL without one */
    struct redis *redis;   /* rate limits, and the cache's connection */
    struct cache *cache;
    /* Written by this thread only (summed by /metrics), on cache lines of its own: every
     * request thread reads the lines above of every worker (server_worker()). */
    _Alignas(64) struct metrics_shard metrics;
    uint64_t requests; /* answered so far: request ids */
    struct latency latency;
};

struct server {
    struct server_config cfg;
    struct redis_target redis_target; /* parsed from cfg.redis_url once, at start-up */
    struct MHD_Daemon *daemon;
    struct keys_client *keys;
    struct visits *visits;
    struct analytics *analytics; /* NULL when ANALYTICS=0 */
    struct hotcache *hot;
    struct hotrefresh *refresh; /* reads the hot cache's stale entries again */
    struct invalidation *invalidation;
    struct linkwriter *writer;
    struct admission *admission;
    struct pwhash *pwhash;
    struct live *live;
    struct connguard *guard; /* per-address connection limits, request deadlines */
    struct metrics metrics;
    struct cache_pending pending; /* deletions Redis has yet to hear of */
    bool pending_ready;
    struct ratelimit ratelimit;
    struct authcache *auth;
    /* Parsed from the configuration by server_configure(). */
    struct ratelimit_policy anonymous_policy, auth_failure_policy, miss_policy;
    struct clientip_trusted trusted_proxies;
    struct cors cors;
    struct urlcheck_self self_hosts; /* BASE_URL's host and SELF_HOSTS: links may not point there */
    /* Slots are bound to threads on first use; the lock is taken only then. */
    pthread_mutex_t workers_lock;
    bool workers_lock_ready;
    struct worker *workers;
    unsigned nworkers;
    /* /readyz's last check (api.c): when, and which dependencies failed (a bit each). */
    pthread_mutex_t readyz_lock;
    bool readyz_lock_ready;
    long long readyz_at;
    unsigned readyz_failed;
    /* How long a delete's tombstone and an edit's mark stay in Redis (server_configure()):
     * NEGATIVE_TTL, and with a replica longer than the replica may lag behind. */
    long long change_ttl;
    char base_url[512];   /* without a trailing slash */
    char bodiless_marker; /* its address marks requests without a body we read */
};

/* Checks and parses the settings that need more than the config table does. Returns 0 or
 * -EINVAL with the reason in err; server_release() frees what it made either way. */
int server_configure(struct server *s, char *err, size_t errlen);

/* Prepares everything but the listener; the server is not yet serving. Returns 0 or -errno
 * with the reason logged. On failure server_release() still must be called. */
int server_init(struct server *s);

/* Starts listening; from now on requests are served on libmicrohttpd's threads. */
int server_start(struct server *s);

/* Stops listening, waits for in-flight requests, flushes visits, frees everything. */
void server_release(struct server *s);

/* The calling thread's worker slot, bound on first use. NULL only when more threads call
 * than were configured, which would be a bug. */
struct worker *server_worker(struct server *s);

#endif
