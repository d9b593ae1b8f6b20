/* The libmicrohttpd daemon: request life cycle, worker slots and start/stop. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "admission.h"
#include "analytics.h"
#include "api.h"
#include "authcache.h"
#include "cache.h"
#include "connguard.h"
#include "create.h"
#include "hotcache.h"
#include "hotrefresh.h"
#include "http.h"
#include "invalidation.h"
#include "keys_client.h"
#include "linkwriter.h"
#include "live.h"
#include "log.h"
#include "pwhash.h"
#include "redis.h"
#include "request.h"
#include "store.h"
#include "visits.h"

#define KEYS_BATCH 1024
/* Link writer threads: two, so that one gathers a batch while the other waits for its
 * commit to reach the disk. */
#define WRITERS 2
/* Distinct links with unwritten visits; the table is written early when half full. About 40
 * bytes each (a 16-byte slot at a load factor of at most one half, and the key): up to 10 MiB,
 * twice that while one is written. */
#define VISITS_MAX_KEYS 262144
/* Password hashing threads: Argon2id is meant to take the CPU it takes; two keep one hash
 * from queueing behind another without taking both cores from the request threads. */
#define PWHASH_THREADS 2
/* libmicrohttpd's per-connection pool: request headers, and response headers including an
 * 8 KiB Location. It is zeroed for every request, so its size is paid on the hot path (32 KiB,
 * the default, cost 6% of redirect CPU in memset); bodies are collected outside it. */
#define CONNECTION_MEMORY (16 * 1024)
#define AUTHCACHE_SLOTS   4096

struct worker *server_worker(struct server *s)
{
    pthread_t self = pthread_self();
    struct worker *w = NULL;

    /* Bound slots are never rebound, so reading them without the lock is safe once seen. */
    for (unsigned i = 0; i < s->nworkers; i++)
        if (__atomic_load_n(&s->workers[i].bound, __ATOMIC_ACQUIRE) &&
            pthread_equal(s->workers[i].thread, self))
            return &s->workers[i];
    pthread_mutex_lock(&s->workers_lock);
    for (unsigned i = 0; i < s->nworkers; i++)
        if (!s->workers[i].bound) {
            w = &s->workers[i];
            w->thread = self;
            __atomic_store_n(&w->bound, true, __ATOMIC_RELEASE);
            break;
        }
    pthread_mutex_unlock(&s->workers_lock);
    if (!w)
        log_error("more request threads than worker slots (%u)", s->nworkers);
    return w;
}

/* GET, HEAD, DELETE and OPTIONS requests carry no body we read: they share this marker as their
 * request context instead of allocating one, which keeps redirects allocation-free here. */
static bool bodiless(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
           strcmp(method, "DELETE") == 0 || strcmp(method, "OPTIONS") == 0;
}

/* The largest body a path takes: a bulk create's array, or one link. */
static size_t body_limit(const char *path)
{
    return strcmp(path, "/api/v1/urls/bulk") == 0 ? CREATE_BULK_MAX_BODY : REQUEST_MAX_BODY;
}

static int append_body(struct http_request *r, const char *data, size_t len)
{
    if (r->body_too_large)
        return 0;
    if (r->body_len + len > r->body_limit) {
        r->body_too_large = true;
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        return 0;
    }
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p)
            return -ENOMEM;
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

/* What the server keeps per connection (libmicrohttpd's socket context): its record in the
 * connection guard, and the timing of the request under way, which has to live here because
 * requests without a body have no state of their own. One request at a time per
 * connection. */
struct conn_state {
    struct connguard_conn *guard;
    long long start_ns;
    int kind; /* enum latency_kind, or LK_REDIRECT until the tier is known */
    bool timing;
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct conn_state *state_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* This connection's record in the connection guard, or NULL. */
static struct connguard_conn *guard_of(struct MHD_Connection *conn)
{
    struct conn_state *st = state_of(conn);
    return st ? st->guard : NULL;
}

/* The request's headers are in: its clock starts. */
static void timing_start(struct MHD_Connection *conn, const char *method, const char *url)
{
    struct conn_state *st = state_of(conn);
    if (!st)
        return;
    st->start_ns = now_ns();
    st->kind = (int)latency_kind_of(method, url);
    st->timing = true;
}

/* Records the request under way on this thread's block, once. */
static void timing_end(struct server *s, struct conn_state *st)
{
    struct worker *w;

    if (!st || !st->timing)
        return;
    st->timing = false;
    if (st->kind == LK_REDIRECT)
        st->kind = LK_OTHER; /* never reached a look-up */
    w = server_worker(s);
    if (w)
        latency_record(&w->latency, (enum latency_kind)st->kind,
                       (uint64_t)(now_ns() - st->start_ns));
}

static enum MHD_Result answer(struct server *s, struct http_request *r)
{
    /* The whole request is here: its deadline is met. */
    connguard_request_received(guard_of(r->conn));
    r->worker = server_worker(s);
    if (!r->worker)
        return MHD_NO;
    /* Unique across threads without a counter they share. */
    r->id = ++r->worker->requests * s->nworkers + (uint64_t)(r->worker - s->workers);
    r->suspended = false;
    if (api_handle(r) == HTTP_BROKEN)
        return MHD_NO;
    struct conn_state *st = state_of(r->conn);
    if (st && st->kind == LK_REDIRECT && r->redirect_tier != LT_UNKNOWN)
        st->kind = (int)latency_kind_for_tier((enum latency_tier)r->redirect_tier);
    /* A live counter's answer lasts as long as its watcher does: it is timed to its start. */
    if (st && st->kind == LK_LIVE && !r->suspended)
        timing_end(s, st);
    if (r->suspended)
        return MHD_YES; /* answered when resumed */
    if (!r->answered)
        return MHD_NO;
    metrics_count_status(&r->worker->metrics, r->status);
    log_debug("request %llu: %s %s -> %u", (unsigned long long)r->id, r->method, r->path,
              r->status);
    return MHD_YES;
}

/* Answers 413 before the rest of an oversized body is read; libmicrohttpd then closes the
 * connection instead of reading on. */
static enum MHD_Result refuse_too_large(struct server *s, struct http_request *r,
                                        struct MHD_Connection *conn, const char *method,
                                        const char *url)
{
    r->srv = s;
    r->conn = conn;
    r->method = method;
    r->path = url;
    r->body_too_large = true;
    r->worker = server_worker(s);
    if (!r->worker)
        return MHD_NO;
    connguard_request_received(guard_of(conn));
    if (api_refuse_too_large(r) == HTTP_BROKEN)
        return MHD_NO;
    metrics_count_status(&r->worker->metrics, r->status);
    return MHD_YES;
}

/* A request that needs an API key and has none is refused before its body is read: nobody
 * without a key can make the server hold a body (libmicrohttpd then closes the connection
 * instead of reading the body). */
static enum MHD_Result refuse_early(struct server *s, struct http_request *r,
                                    struct MHD_Connection *conn, const char *method,
                                    const char *url)
{
    enum http_step step;

    r->srv = s;
    r->conn = conn;
    r->method = method;
    r->path = url;
    r->worker = server_worker(s);
    if (!r->worker)
        return MHD_NO;
    step = api_check_early(r);
    if (step == HTTP_GO_ON) {
        /* Looked at again once the body is here. */
        r->cors_origin = NULL;
        r->ratelimited = false;
        return MHD_YES;
    }
    if (step == HTTP_BROKEN)
        return MHD_NO;
    connguard_request_received(guard_of(conn));
    metrics_count_status(&r->worker->metrics, r->status);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct server *s = cls;
    struct http_request *r;

    /* Queueing a response on the first call makes libmicrohttpd 0.9.75 close the
     * connection (NOTES.md): the first call only sets up, the answer comes on the next. */
    if (*req_cls == NULL) {
        timing_start(conn, method, url);
        if (bodiless(method)) {
            *req_cls = &s->bodiless_marker;
            return MHD_YES;
        }
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *req_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        r->body_limit = body_limit(url);
        if (cl && strtoull(cl, NULL, 10) > r->body_limit)
            return refuse_too_large(s, r, conn, method, url);
        return refuse_early(s, r, conn, method, url);
    }
    if (*req_cls == &s->bodiless_marker) {
        /* A body sent with GET or DELETE is read and ignored. */
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        struct http_request stack = {
            .srv = s, .conn = conn, .method = method, .path = url, .version = version};
        return answer(s, &stack);
    }
    r = *req_cls;
    if (r->answered) {
        /* Refused already: whatever else arrives is dropped with the connection. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* libmicrohttpd 0.9.75 cannot answer in the middle of an upload, so an oversized
         * chunked body is read and dropped, then refused; one that goes on far past the
         * limit just loses its connection. */
        r->received += *upload_data_size;
        if (r->received > 4 * r->body_limit)
            return MHD_NO;
        if (append_body(r, upload_data, *upload_data_size) < 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->body_too_large)
        return refuse_too_large(s, r, conn, method, url);
    r->srv = s;
    r->conn = conn;
    r->method = method;
    r->path = url;
    r->version = version;
    return answer(s, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct http_request *r = *req_cls;
    (void)toe;

    timing_end(s, state_of(conn));
    connguard_request_done(s->guard, guard_of(conn));

    if (r && r != (void *)&s->bodiless_marker) {
        if (r->state_free)
            r->state_free(r->state);
        free(r->body);
        free(r);
    }
    *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct server *s = cls;

    struct conn_state *st = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (st)
            connguard_closed(s->guard, st->guard);
        free(st);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    st = calloc(1, sizeof(*st));
    if (st && fd)
        st->guard = connguard_opened(s->guard, peer ? peer->client_addr : NULL, fd->connect_fd);
    *socket_context = st;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct server *s = cls;
    (void)len;
    return connguard_admit(s->guard, addr) ? MHD_YES : MHD_NO;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes in place, as libmicrohttpd would, except that in a path (it starts with
 * '/') an escape of a control character (%00-%1F, %7F) is left as it is: a decoded NUL would
 * cut the path short for every C string function after it (GET /alias%00x would be
 * GET /alias), and a path holding such a byte names nothing anyway. Query parameters are
 * decoded whole, so that their checks see and refuse control characters. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    bool path = s[0] == '/';
    char *w = s;
    (void)cls;
    (void)conn;

    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hex_value(p[1])) >= 0 && (lo = hex_value(p[2])) >= 0 &&
            (!path || (hi * 16 + lo >= 0x20 && hi * 16 + lo != 0x7f))) {
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_warn("libmicrohttpd: %s", line);
}

int server_configure(struct server *s, char *err, size_t errlen)
{
    const struct server_config *c = &s->cfg;

    if (ratelimit_parse_policy(c->anonymous_rate, &s->anonymous_policy) < 0) {
        snprintf(err, errlen, "ANONYMOUS_RATE '%s' must be N/s, N/min or N/h", c->anonymous_rate);
        return -EINVAL;
    }
    if (ratelimit_parse_policy(c->auth_failure_rate, &s->auth_failure_policy) < 0) {
        snprintf(err, errlen, "AUTH_FAILURE_RATE '%s' must be N/s, N/min or N/h",
                 c->auth_failure_rate);
        return -EINVAL;
    }
    if (ratelimit_parse_policy(c->miss_rate, &s->miss_policy) < 0) {
        snprintf(err, errlen, "MISS_RATE '%s' must be N/s, N/min or N/h", c->miss_rate);
        return -EINVAL;
    }
    if (c->default_redirect_status != 301 && c->default_redirect_status != 302 &&
        c->default_redirect_status != 307 && c->default_redirect_status != 308) {
        snprintf(err, errlen, "DEFAULT_REDIRECT_STATUS must be 301, 302, 307 or 308, not %lld",
                 c->default_redirect_status);
        return -EINVAL;
    }
    /* A delete's tombstone must outlive the replica's lag: once it is gone, a look-up that
     * misses Redis trusts the replica only if it replayed a commit within the lag, so it
     * has the delete (redirect.c). A second more for the clocks of two machines. */
    s->change_ttl = c->negative_ttl;
    if (c->database_read_url[0] && c->database_read_max_lag_ms / 1000 + 2 > s->change_ttl)
        s->change_ttl = c->database_read_max_lag_ms / 1000 + 2;
    if (keys_client_check_sockets(c->kgs_socket, err, errlen) < 0)
        return -EINVAL;
    if (cors_parse(c->cors_origins, &s->cors, err, errlen) < 0)
        return -EINVAL;
    if (c->base_url[0])
        snprintf(s->base_url, sizeof(s->base_url), "%s", c->base_url);
    else
        snprintf(s->base_url, sizeof(s->base_url), "http://localhost:%lld", c->port);
    size_t n = strlen(s->base_url);
    while (n > 0 && s->base_url[n - 1] == '/')
        s->base_url[--n] = '\0';
    if (urlcheck_self_init(&s->self_hosts, s->base_url, c->self_hosts, err, errlen) < 0)
        return -EINVAL;
    return clientip_parse_trusted(c->trusted_proxies, &s->trusted_proxies, err, errlen);
}

/* Visits of hot links are counted in their hot cache entries; these bring them to the
 * visits table, on eviction and before every flush. */
static void hot_visits(void *ctx, const char *key, size_t keylen, uint32_t count)
{
    struct server *s = ctx;
    if (!s->visits || !visits_add(s->visits, key, keylen, count))
        metrics_add(&s->metrics.visits_dropped, count);
}

static void harvest_hot_visits(void *ctx)
{
    struct server *s = ctx;
    hotcache_harvest(s->hot);
}

int server_init(struct server *s)
{
    const struct server_config *c = &s->cfg;

    if (pthread_mutex_init(&s->workers_lock, NULL) != 0)
        return -ENOMEM;
    s->workers_lock_ready = true;
    if (pthread_mutex_init(&s->readyz_lock, NULL) != 0)
        return -ENOMEM;
    s->readyz_lock_ready = true;
    if (cache_pending_init(&s->pending) < 0)
        return -ENOMEM;
    s->pending_ready = true;
    if (ratelimit_init(&s->ratelimit, &s->metrics) < 0)
        return -ENOMEM;
    s->auth = authcache_new(AUTHCACHE_SLOTS);
    if (!s->auth)
        return -ENOMEM;
    s->nworkers = (unsigned)c->threads;
    s->workers = aligned_alloc(_Alignof(struct worker), s->nworkers * sizeof(*s->workers));
    if (!s->workers)
        return -ENOMEM;
    memset(s->workers, 0, s->nworkers * sizeof(*s->workers));
    for (unsigned i = 0; i < s->nworkers; i++) {
        s->workers[i].store = store_new(c->database_url, "shortener");
        s->workers[i].redis = redis_new(&s->redis_target);
        if (c->database_read_url[0] &&
            !(s->workers[i].replica = store_new_replica(c->database_read_url, "shortener-read")))
            return -ENOMEM;
        if (s->workers[i].redis)
            s->workers[i].cache = cache_new(s->workers[i].redis, &s->pending);
        if (!s->workers[i].store || !s->workers[i].cache)
            return -ENOMEM;
    }
    s->writer = linkwriter_start(c->database_url, &s->redis_target, &s->pending, WRITERS);
    if (!s->writer)
        return -ENOMEM;
    s->admission = admission_start(&s->ratelimit, &s->redis_target, &s->pending);
    if (!s->admission)
        return -ENOMEM;
    s->pwhash = pwhash_start(PWHASH_THREADS);
    if (!s->pwhash)
        return -ENOMEM;
    s->hot = hotcache_new((size_t)c->hot_cache_entries, c->hot_cache_max_age, hot_visits, s);
    if (!s->hot)
        return -ENOMEM;
    s->refresh = hotrefresh_start(s->hot, &s->redis_target, &s->pending);
    if (!s->refresh)
        return -ENOMEM;
    s->guard = connguard_new((unsigned)c->per_ip_connections, c->request_timeout * 1000,
                             &s->trusted_proxies, &s->metrics);
    if (!s->guard)
        return -ENOMEM;
    s->keys = keys_client_new(c->kgs_socket, KEYS_BATCH);
    if (!s->keys)
        return -ENOMEM;
    struct store *vstore = store_new(c->database_url, "shortener-visits");
    s->visits = vstore ? visits_new(vstore, (unsigned)c->visits_flush_ms, VISITS_MAX_KEYS) : NULL;
    if (!s->visits)
        return -ENOMEM;
    if (c->analytics) {
        char err[512];
        struct store *astore = store_new(c->database_url, "shortener-analytics");
        s->analytics = astore ? analytics_new(astore, s->nworkers, (unsigned)c->visits_flush_ms,
                                              c->geoip_db, &s->metrics, err, sizeof(err))
                              : NULL;
        if (!s->analytics) {
            log_error("analytics: %s", astore ? err : "out of memory");
            return -EINVAL;
        }
    } else {
        /* With analytics on, the hot cache counts no visit (analytics does, and links with
         * max_visits never come from it), so walking it every flush would find nothing. */
        visits_set_harvest(s->visits, harvest_hot_visits, s);
    }
    struct live_config lc = {
        .database_url = c->database_url,
        .interval_ms = (unsigned)c->live_interval_ms,
        .keepalive_ms = (unsigned)c->live_keepalive_ms,
        .flush_ms = (unsigned)c->visits_flush_ms,
        .max_per_address = (unsigned)c->live_max_per_address,
        /* A watcher is written to at least every keep-alive; one that cannot take that for
         * longer than this is gone. */
        .stream_timeout = (unsigned)(c->connection_timeout > 2 * c->live_keepalive_ms / 1000
                                         ? c->connection_timeout
                                         : 2 * c->live_keepalive_ms / 1000 + 1),
    };
    s->live = live_new(&s->redis_target, &lc);
    if (!s->live)
        return -ENOMEM;
    return 0;
}

static int resolve_listen(const struct server_config *c, struct sockaddr_storage *addr)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    char port[8];

    snprintf(port, sizeof(port), "%lld", c->port);
    if (getaddrinfo(c->listen_address, port, &hints, &res) != 0 || !res)
        return -EINVAL;
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int server_start(struct server *s)
{
    const struct server_config *c = &s->cfg;
    struct sockaddr_storage addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;

    if (resolve_listen(c, &addr) < 0) {
        log_error("LISTEN_ADDRESS '%s' is not a numeric IPv4 or IPv6 address", c->listen_address);
        return -EINVAL;
    }
    if (addr.ss_family == AF_INET6) {
        /* "::" takes IPv4 clients too; they arrive as ::ffff:a.b.c.d, which clientip.c reads
         * as the IPv4 address it is. */
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)&addr)->sin6_addr;
        flags |= IN6_IS_ADDR_UNSPECIFIED(a6) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    }
    if (visits_start(s->visits) < 0 || live_start(s->live) < 0 || connguard_start(s->guard) < 0)
        return -ENOMEM;
    if (s->analytics && analytics_start(s->analytics) < 0)
        return -ENOMEM;
    /* Started whatever the hot cache: it also makes Redis trusted (invalidation.h). */
    struct invalidation_config ic = {.target = &s->redis_target,
                                     .hot = s->hot,
                                     .pending = &s->pending,
                                     .store = store_new(c->database_url, "shortener-resync"),
                                     .change_ttl = s->change_ttl,
                                     .cache_ttl = c->cache_ttl};
    if (!ic.store || !(s->invalidation = invalidation_start(&ic)))
        return -ENOMEM;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)c->port, on_accept, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)c->max_connections, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        log_error("cannot listen on %s port %lld", c->listen_address, c->port);
        return -EADDRINUSE;
    }
    log_info("listening on %s port %lld with %lld threads; short links at %s/", c->listen_address,
             c->port, c->threads, s->base_url);
    return 0;
}

void server_release(struct server *s)
{
    /* Every parked create is finished and its connection resumed first: libmicrohttpd must
     * not be stopped with suspended connections. */
    admission_close(s->admission);
    pwhash_close(s->pwhash);
    linkwriter_close(s->writer);
    live_close(s->live);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    connguard_free(s->guard);
    s->guard = NULL;
    linkwriter_free(s->writer);
    s->writer = NULL;
    admission_free(s->admission);
    s->admission = NULL;
    pwhash_free(s->pwhash);
    s->pwhash = NULL;
    live_free(s->live);
    s->live = NULL;
    invalidation_stop(s->invalidation);
    s->invalidation = NULL;
    hotrefresh_stop(s->refresh);
    s->refresh = NULL;
    /* Visits counted in the hot cache go to the visits table (the cache is left off and
     * empty), then the last flush writes them, then the cache goes. */
    if (s->hot)
        hotcache_set_enabled(s->hot, false);
    visits_free(s->visits);
    s->visits = NULL;
    analytics_free(s->analytics);
    s->analytics = NULL;
    hotcache_free(s->hot);
    s->hot = NULL;
    keys_client_free(s->keys);
    s->keys = NULL;
    for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
        store_free(s->workers[i].store);
        store_free(s->workers[i].replica);
        cache_free(s->workers[i].cache);
        redis_free(s->workers[i].redis);
    }
    free(s->workers);
    s->workers = NULL;
    authcache_free(s->auth);
    s->auth = NULL;
    ratelimit_release(&s->ratelimit);
    clientip_trusted_release(&s->trusted_proxies);
    cors_release(&s->cors);
    urlcheck_self_release(&s->self_hosts);
    if (s->pending_ready)
        cache_pending_release(&s->pending);
    s->pending_ready = false;
    if (s->workers_lock_ready)
        pthread_mutex_destroy(&s->workers_lock);
    s->workers_lock_ready = false;
    if (s->readyz_lock_ready)
        pthread_mutex_destroy(&s->readyz_lock);
    s->readyz_lock_ready = false;
}
