/* The ceiling for `make bench`: a bare libmicrohttpd server doing exactly the redirect lookup
 * work of shortener and nothing else (no routing, metrics, visits, logging), threaded the same
 * way. shortener's redirect paths are compared against it, so the gap between the two is what
 * the server's own code costs.
 *
 *   ceiling const PORT THREADS                           constant 301
 *   ceiling redis PORT THREADS DATABASE_URL REDIS_URL    one Redis GET u:<key>, 301 or 404
 *   ceiling chain PORT THREADS DATABASE_URL REDIS_URL [CACHE_TTL]
 *       Redis GET; on a miss shortener's prepared lookup SELECT, then SET u:<key> EX ttl NX
 *
 * The statement and the cache entry's format come from shortener's own headers (store.h,
 * linkentry.h), so the baseline cannot drift from what the server does.
 *
 * REDIS_URL is unix:///path or redis://host:port. Runs until SIGINT or SIGTERM. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "link.h"
#include "linkentry.h"
#include "store.h"

enum mode { MODE_CONST, MODE_REDIS, MODE_CHAIN };

#define MAX_THREADS 64
#define URL_MAX     8192

/* One per libmicrohttpd pool thread: neither libpq nor hiredis connections are thread-safe. */
struct slot {
    pthread_t thread;
    bool bound;
    redisContext *redis;
    PGconn *pg;
};

struct ceiling {
    enum mode mode;
    unsigned threads;
    const char *database_url;
    char redis_path[256];
    char redis_host[256];
    int redis_port;
    long cache_ttl;
    pthread_mutex_t lock;
    struct slot slots[MAX_THREADS];
    int marker; /* the request context of every request: its address only */
};

static struct slot *ceiling_slot(struct ceiling *c)
{
    pthread_t self = pthread_self();
    struct slot *s = NULL;

    for (unsigned i = 0; i < c->threads; i++)
        if (__atomic_load_n(&c->slots[i].bound, __ATOMIC_ACQUIRE) &&
            pthread_equal(c->slots[i].thread, self))
            return &c->slots[i];
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->threads; i++)
        if (!c->slots[i].bound) {
            s = &c->slots[i];
            s->thread = self;
            __atomic_store_n(&s->bound, true, __ATOMIC_RELEASE);
            break;
        }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* Connects what the mode needs on first use. Returns 0 or -EIO. */
static int slot_connect(struct ceiling *c, struct slot *s)
{
    if (c->mode == MODE_CONST)
        return 0;
    if (!s->redis) {
        s->redis = c->redis_path[0] ? redisConnectUnix(c->redis_path)
                                    : redisConnect(c->redis_host, c->redis_port);
        if (!s->redis || s->redis->err) {
            fprintf(stderr, "ceiling: redis: %s\n", s->redis ? s->redis->errstr : "no memory");
            redisFree(s->redis);
            s->redis = NULL;
            return -EIO;
        }
    }
    if (c->mode == MODE_CHAIN && !s->pg) {
        s->pg = PQconnectdb(c->database_url);
        if (PQstatus(s->pg) != CONNECTION_OK) {
            fprintf(stderr, "ceiling: postgres: %s", PQerrorMessage(s->pg));
            PQfinish(s->pg);
            s->pg = NULL;
            return -EIO;
        }
        PGresult *res = PQprepare(s->pg, "lookup", STORE_LOOKUP_REDIRECT_SQL, 0, NULL);
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "ceiling: prepare: %s", PQerrorMessage(s->pg));
        PQclear(res);
        if (!ok) {
            PQfinish(s->pg);
            s->pg = NULL;
            return -EIO;
        }
    }
    return 0;
}

static enum MHD_Result send_status(struct MHD_Connection *conn, unsigned status,
                                   const char *location, const char *cache_control)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_NO;

    if (!resp)
        return MHD_NO;
    if (location && (MHD_add_response_header(resp, "Location", location) != MHD_YES ||
                     MHD_add_response_header(resp, "Cache-Control", cache_control) != MHD_YES))
        goto out;
    rc = MHD_queue_response(conn, status, resp);
out:
    MHD_destroy_response(resp);
    return rc;
}

/* The url of a cached value, read as shortener reads it (linkentry.h); NULL when it is not
 * a link. */
static const char *cached_url(const redisReply *r, char *url, size_t cap)
{
    struct link_rules rules;

    if (r->type != REDIS_REPLY_STRING ||
        linkentry_parse(r->str, r->len, url, cap, &rules) != LINKENTRY_HIT)
        return NULL;
    return url;
}

static enum MHD_Result lookup(struct ceiling *c, struct slot *s, struct MHD_Connection *conn,
                              const char *key)
{
    char url[URL_MAX + 1];
    const char *found;
    enum MHD_Result rc = MHD_NO;

    redisReply *r = redisCommand(s->redis, "GET " LINKENTRY_KEY_FMT, key);
    if (!r)
        return MHD_NO;
    found = cached_url(r, url, sizeof(url));
    freeReplyObject(r);
    if (found || c->mode == MODE_REDIS)
        return send_status(conn, found ? 301 : 404, found, "private, max-age=300");

    const char *params[1] = {key};
    PGresult *res = PQexecPrepared(s->pg, "lookup", 1, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto out;
    if (PQntuples(res) != 1) {
        rc = send_status(conn, 404, NULL, NULL);
        goto out;
    }
    /* The entry shortener writes for this row (store.h's columns, linkentry.h's format). */
    struct link_rules rules = {.expires_at = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
                               .valid_from = strtoll(PQgetvalue(res, 0, 3), NULL, 10),
                               .max_visits = strtoll(PQgetvalue(res, 0, 4), NULL, 10),
                               .redirect_status = atoi(PQgetvalue(res, 0, 5)),
                               .password = PQgetvalue(res, 0, 6)[0] == 't'};
    char head[LINKENTRY_HEAD_MAX];
    if (linkentry_format("", &rules, head, sizeof(head)) < 0)
        goto out;
    r = redisCommand(s->redis, "SET " LINKENTRY_KEY_FMT " %s%s EX %ld NX", key, head,
                     PQgetvalue(res, 0, 0), c->cache_ttl);
    if (!r)
        goto out;
    freeReplyObject(r);
    rc = send_status(conn, 301, PQgetvalue(res, 0, 0), "private, max-age=300");
out:
    PQclear(res);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct ceiling *c = cls;
    (void)method;
    (void)version;
    (void)upload_data;

    /* Answering on the first call makes libmicrohttpd 0.9.75 close the connection. */
    if (*req_cls == NULL) {
        *req_cls = &c->marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->mode == MODE_CONST)
        return send_status(conn, 301, "https://example.com/", "private, max-age=300");
    struct slot *s = ceiling_slot(c);
    if (!s || slot_connect(c, s) < 0)
        return MHD_NO;
    return lookup(c, s, conn, url[0] == '/' ? url + 1 : url);
}

static int parse_redis_url(struct ceiling *c, const char *url)
{
    if (strncmp(url, "unix://", 7) == 0)
        url += 7;
    if (url[0] == '/') {
        if (strlen(url) >= sizeof(c->redis_path))
            return -EINVAL;
        snprintf(c->redis_path, sizeof(c->redis_path), "%s", url);
        return 0;
    }
    if (strncmp(url, "redis://", 8) == 0)
        url += 8;
    const char *colon = strrchr(url, ':');
    size_t hlen = colon ? (size_t)(colon - url) : strlen(url);
    if (hlen == 0 || hlen >= sizeof(c->redis_host))
        return -EINVAL;
    snprintf(c->redis_host, sizeof(c->redis_host), "%.*s", (int)hlen, url);
    c->redis_port = colon ? atoi(colon + 1) : 6379;
    return c->redis_port > 0 && c->redis_port < 65536 ? 0 : -EINVAL;
}

static int usage(void)
{
    fprintf(stderr, "usage: ceiling const PORT THREADS\n"
                    "       ceiling redis PORT THREADS DATABASE_URL REDIS_URL\n"
                    "       ceiling chain PORT THREADS DATABASE_URL REDIS_URL [CACHE_TTL]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static struct ceiling c = {.cache_ttl = 60};
    sigset_t stop;
    int sig, rc = 1;

    if (argc < 4)
        return usage();
    if (strcmp(argv[1], "const") == 0)
        c.mode = MODE_CONST;
    else if (strcmp(argv[1], "redis") == 0)
        c.mode = MODE_REDIS;
    else if (strcmp(argv[1], "chain") == 0)
        c.mode = MODE_CHAIN;
    else
        return usage();
    long port = strtol(argv[2], NULL, 10);
    long threads = strtol(argv[3], NULL, 10);
    if (port < 1 || port > 65535 || threads < 1 || threads > MAX_THREADS)
        return usage();
    c.threads = (unsigned)threads;
    if (c.mode != MODE_CONST) {
        if (argc < 6 || parse_redis_url(&c, argv[5]) < 0)
            return usage();
        c.database_url = argv[4];
        if (argc > 6 && (c.cache_ttl = strtol(argv[6], NULL, 10)) < 1)
            return usage();
    }
    pthread_mutex_init(&c.lock, NULL);

    /* Signals are taken with sigwait; the pool threads inherit the blocked mask. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Loopback only: the benchmark never listens beyond this machine. */
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
        NULL, on_request, &c, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, c.threads, MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot listen on port %ld\n", port);
        goto out;
    }
    fprintf(stderr, "ceiling: %s mode on port %ld with %u threads\n", argv[1], port, c.threads);
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    rc = 0;
out:
    for (unsigned i = 0; i < c.threads; i++) {
        if (c.slots[i].redis)
            redisFree(c.slots[i].redis);
        if (c.slots[i].pg)
            PQfinish(c.slots[i].pg);
    }
    pthread_mutex_destroy(&c.lock);
    return rc;
}
