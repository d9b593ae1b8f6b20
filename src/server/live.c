/* The live counter: watchers parked on their connections, the live thread that counts,
 * publishes, listens and wakes them (see live.h).
 *
 * What "total" is, and how exact. A link's total is its all-time visit count, as the link's
 * read shows it once every server has flushed (urls.visits, plus what the analytics rows hold
 * for it: VISITSQL_LINK_VISITS). When a link gets its first watcher on this server, its total
 * starts from that count as PostgreSQL has it then; from
 * that moment every visit counted by any server that knows the link is watched (all of them,
 * within milliseconds of the announcement) is added as it is published, once per interval.
 * Two things that cannot be seen this way: visits counted before the announcement and not yet
 * flushed (at most one VISITS_FLUSH_MS of them, on each server), and a visit that some server
 * flushed between being counted and being published, which PostgreSQL may already hold when
 * the total is read. So the total is also re-read from PostgreSQL whenever the link has been
 * quiet (no visit published anywhere) for VISITS_FLUSH_MS + 1.5 s since it last changed, and
 * once after its first watcher came: by then every server has flushed every visit of the link
 * (all servers must share VISITS_FLUSH_MS), so the re-read total is exact, and nothing counted
 * after the re-read can be in it. In short: exact at rest; while visits keep coming, short by
 * the visits that were in flight when watching began (or over by a visit that raced a flush)
 * until the next pause. */
#include "live.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bgthread.h"
#include "caller.h"
#include "clientip.h"
#include "container_of.h"
#include "deadline.h"
#include "keyhash.h"
#include "keyspace.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "request.h"
#include "server.h"
#include "store.h"

#define LIVE_CHANNEL "shortener:live"
/* Each server announces its watched links this often; a link it stops announcing is
 * forgotten by the others after HEARD_MS. */
#define ANNOUNCE_MS 1000
#define HEARD_MS    (3 * ANNOUNCE_MS + 500)
/* PostgreSQL is trusted once a link was quiet for VISITS_FLUSH_MS plus this. */
#define RESYNC_MARGIN_MS 1500
#define RESYNC_PER_TICK  64
#define PUBLISH_MAX_MS   500
#define KEY_BUCKETS      4096
#define ADDR_BUCKETS     1024
#define RETRY_MS         1000
#define IDLE_PING_MS     1000
#define PONG_WAIT_MS     2000
/* An event with the longest key and total: 131 bytes as a chunk. */
#define EVENT_MAX (KEY_MAX_LEN + 96)

struct lkey;

/* One watcher. libmicrohttpd sends the response header and the first event through
 * watcher_read(); then the connection is parked (suspended) for the rest of its life, and the
 * live thread writes every later event and comment to its socket itself: a suspended
 * connection is not looked at by libmicrohttpd, and resuming one costs it a walk over every
 * suspended connection, which at thousands of watchers per link and an event a second each
 * cost the request threads most of their time. Each write is one whole chunk when the body is
 * chunked (libmicrohttpd is then between chunks, and ends the stream with the last chunk when
 * woken), the bare bytes otherwise. A parked watcher is touched (written, ended) only by the
 * live thread, and is woken once, to end. */
struct watcher {
    struct http_stream stream;
    struct live *live;
    struct lkey *link;
    struct addr *addr;
    struct watcher *prev, *next; /* in its link's list */
    int64_t sent;                /* the total last sent; -1: none yet */
    int64_t want;                /* what the live thread is to write next; -1: a comment */
    long long last_write_ms;     /* the last complete write */
    int fd;                      /* the connection's socket (libmicrohttpd's) */
    bool in_epoll;               /* its hang-ups are watched */
    bool chunked;                /* libmicrohttpd frames the body in chunks */
    bool parked;                 /* the live thread writes to it */
    bool hangup;                 /* end the stream at the next read */
    uint8_t out_off, out_len;    /* what of out is still to be written */
    char out[EVENT_MAX];
};

struct lkey {
    struct lkey *next;
    atomic_uint_fast64_t delta; /* visits counted here since the last tick */
    long long heard_until;      /* watched elsewhere until then (monotonic ms) */
    struct watcher *watchers;
    unsigned nwatchers;
    int64_t total;
    uint64_t gen;          /* advances with every change of total */
    long long quiet_since; /* the last change, or when it was first watched */
    long long woken_at;    /* when its watchers were last woken for a new total */
    bool dirty;            /* since the last re-read from PostgreSQL */
    uint8_t len;
    char key[KEY_MAX_LEN + 1];
};

struct addr {
    struct addr *next;
    unsigned count;
    char text[RATELIMIT_KEY_MAX];
};

struct live {
    struct live_config cfg;
    const struct redis_target *target;
    unsigned tick_ms;
    char id[17]; /* this server's, so that it skips its own messages */
    /* Lock order: lock, then rw. The chain changes only under both, so either suffices to
     * walk it. */
    pthread_mutex_t lock;
    pthread_rwlock_t rw;
    atomic_uint nkeys; /* 0: the redirect path has nothing to look up */
    struct lkey *keys[KEY_BUCKETS];
    struct addr *addrs[ADDR_BUCKETS];
    size_t nwatchers;
    bool closing;
    bool announce_now;
    atomic_bool stopping;
    int wake_fd;
    /* The sockets of watchers, for hang-ups: libmicrohttpd does not look at a parked
     * connection, so a client that leaves would otherwise hold its socket (and its place in
     * the per-address limit) until the next keep-alive. Edge-triggered, read by the live
     * thread under the lock, so that no watcher it names is freed meanwhile. */
    int epoll_fd;
    pthread_t thread;
    bool started;
    struct redis *pub;
    struct store *store;
    redisContext *sub;
    long long sub_retry_at, last_heard, ping_sent;
    bool sub_down_logged;
    /* The live thread's buffers: a message being built, watchers to write to or end. */
    char *msg;
    size_t msg_len, msg_cap;
    struct watcher **work;
    size_t nwork, work_cap;
};

static size_t bucket_of(const char *key, size_t len, size_t n)
{
    return (size_t)keyhash(key, len) & (n - 1);
}

static struct lkey *key_find(struct live *l, const char *key, size_t len)
{
    for (struct lkey *e = l->keys[bucket_of(key, len, KEY_BUCKETS)]; e; e = e->next)
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

/* With the live lock held. NULL when out of memory. */
static struct lkey *key_get(struct live *l, const char *key, size_t len)
{
    struct lkey *e = key_find(l, key, len);
    size_t b;

    if (e || len > KEY_MAX_LEN)
        return e;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    memcpy(e->key, key, len);
    e->len = (uint8_t)len;
    atomic_init(&e->delta, 0);
    b = bucket_of(key, len, KEY_BUCKETS);
    pthread_rwlock_wrlock(&l->rw);
    e->next = l->keys[b];
    l->keys[b] = e;
    atomic_fetch_add(&l->nkeys, 1);
    pthread_rwlock_unlock(&l->rw);
    return e;
}

/* Forgets links nobody watches any more, with the live lock held. */
static void keys_expire(struct live *l, long long now)
{
    for (size_t b = 0; b < KEY_BUCKETS; b++) {
        struct lkey **pp = &l->keys[b];
        while (*pp) {
            struct lkey *e = *pp;
            if (e->nwatchers == 0 && e->heard_until < now) {
                pthread_rwlock_wrlock(&l->rw);
                *pp = e->next;
                atomic_fetch_sub(&l->nkeys, 1);
                pthread_rwlock_unlock(&l->rw);
                free(e);
            } else {
                pp = &e->next;
            }
        }
    }
}

static struct addr *addr_get(struct live *l, const char *text)
{
    size_t b = bucket_of(text, strlen(text), ADDR_BUCKETS);
    struct addr *a;

    for (a = l->addrs[b]; a; a = a->next)
        if (strcmp(a->text, text) == 0)
            return a;
    a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    snprintf(a->text, sizeof(a->text), "%s", text);
    a->next = l->addrs[b];
    l->addrs[b] = a;
    return a;
}

static void addr_put(struct live *l, struct addr *a)
{
    if (--a->count > 0)
        return;
    for (struct addr **pp = &l->addrs[bucket_of(a->text, strlen(a->text), ADDR_BUCKETS)]; *pp;
         pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            free(a);
            return;
        }
}

static void wake_thread(struct live *l)
{
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof(one)) < 0)
        log_debug("live: cannot wake the live thread");
}

/* A change of a link's total, with the live lock held. */
static void total_set(struct lkey *e, int64_t total, long long now)
{
    if (total == e->total)
        return;
    e->total = total;
    e->gen++;
    e->dirty = true;
    e->quiet_since = now;
}

/* --- watchers, on libmicrohttpd's threads --- */

static int format_event(char *buf, size_t cap, const char *key, int64_t total)
{
    int n = snprintf(buf, cap, "event: visits\ndata: {\"key\":\"%s\",\"total\":%lld}\n\n", key,
                     (long long)total);
    return n > 0 && (size_t)n < cap ? n : -1;
}

static long watcher_read(struct http_stream *st, char *buf, size_t max)
{
    struct watcher *w = container_of(st, struct watcher, stream);
    struct live *l = w->live;
    long n = 0;

    pthread_mutex_lock(&l->lock);
    if (l->closing || w->hangup) {
        n = HTTP_STREAM_END;
    } else if (w->sent < 0) {
        n = format_event(buf, max, w->link->key, w->link->total);
        if (n < 0) {
            n = HTTP_STREAM_END;
        } else {
            w->sent = w->link->total;
            w->last_write_ms = deadline_now_ms();
        }
    } else {
        /* Everything before has been handed to the socket: the live thread goes on. */
        w->parked = true;
        http_stream_park(st);
    }
    pthread_mutex_unlock(&l->lock);
    return n;
}

static void watcher_release(struct http_stream *st)
{
    struct watcher *w = container_of(st, struct watcher, stream);
    struct live *l = w->live;
    struct lkey *e = w->link;

    pthread_mutex_lock(&l->lock);
    /* Before libmicrohttpd closes the socket, whose number may be reused at once. */
    if (w->in_epoll)
        epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
    if (w->prev)
        w->prev->next = w->next;
    else
        e->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    e->nwatchers--;
    addr_put(l, w->addr);
    l->nwatchers--;
    pthread_mutex_unlock(&l->lock);
    free(w);
}

/* May the caller watch the link? HTTP_GO_ON with its durable visits when it may: anyone when
 * the link has public stats, else its owner (or an admin key); others get the 404 of a read,
 * callers without a valid key its 401. As for stats, a caller that sends credentials is
 * authenticated and counted even for a public link (a bad key is 401 there too). */
static enum http_step authorize(struct http_request *r, const char *key, int64_t *visits)
{
    struct store *st = r->worker->store;
    struct caller caller;
    struct link link = {0};
    enum http_step step;
    bool admitted = false;
    int rc;

    if (caller_sent_credentials(r)) {
        step = caller_admit(r, false, &caller);
        if (step != HTTP_GO_ON)
            return step;
        admitted = true;
    }
    rc = store_get_link(st, key, 0, &link);
    if (rc < 0 && rc != -ENOENT)
        goto db_error;
    if (rc == 0 && link.a.public_stats) {
        *visits = link.visits;
        link_release(&link);
        return HTTP_GO_ON;
    }
    link_release(&link);
    if (!admitted) {
        step = caller_admit(r, false, &caller);
        if (step != HTTP_GO_ON)
            return step;
    }
    if (rc == 0 && caller_owner_filter(&caller) != 0) {
        memset(&link, 0, sizeof(link));
        rc = store_get_link(st, key, caller_owner_filter(&caller), &link);
        if (rc < 0 && rc != -ENOENT)
            goto db_error;
        link_release(&link);
    }
    if (rc == -ENOENT)
        return http_problem(r, 404, "not-found", "no link with this key");
    *visits = link.visits;
    return HTTP_GO_ON;
db_error:
    metrics_inc(&r->srv->metrics.db_errors);
    return rc == -EAGAIN ? http_unavailable(r, "the database")
                         : http_problem(r, 500, "internal", "the database failed");
}

enum http_step live_handle(struct http_request *r, const char *key)
{
    struct live *l = r->srv->live;
    char client[RATELIMIT_KEY_MAX];
    struct watcher *w;
    struct lkey *e;
    struct addr *a;
    enum http_step step;
    int64_t visits = 0;
    int fd;
    bool first;
    long long now;

    static const char *const headers[] = {"Cache-Control", "no-store", "X-Accel-Buffering", "no",
                                          NULL};

    step = authorize(r, key, &visits);
    if (step != HTTP_GO_ON)
        return step;
    /* HEAD: what GET would answer, without a stream to keep open. */
    if (strcmp(r->method, "HEAD") == 0)
        return http_send(r, 200, "text/event-stream", "", 0, headers);
    caller_client_key(r, "", NULL, client, sizeof(client));
    fd = http_socket(r);
    w = fd >= 0 ? calloc(1, sizeof(*w)) : NULL;
    if (!w)
        return http_problem(r, 500, "internal", "cannot take this connection");
    pthread_mutex_lock(&l->lock);
    if (l->closing) {
        pthread_mutex_unlock(&l->lock);
        free(w);
        return http_unavailable(r, "the live counter");
    }
    /* A link left without watchers by a failure here is forgotten by the next tick, an
     * address without any at once. */
    e = key_get(l, key, strlen(key));
    a = e ? addr_get(l, client) : NULL;
    if (!a) {
        pthread_mutex_unlock(&l->lock);
        free(w);
        return http_problem(r, 500, "internal", "out of memory");
    }
    if (a->count >= l->cfg.max_per_address) {
        pthread_mutex_unlock(&l->lock);
        free(w);
        return http_problem(r, 429, "too-many-watchers",
                            "at most %u live counters may be open from one address",
                            l->cfg.max_per_address);
    }
    now = deadline_now_ms();
    first = e->nwatchers == 0;
    if (first) {
        /* The first watcher here: start from PostgreSQL, and re-read it once the visits in
         * flight elsewhere have surely been flushed (the comment at the top). */
        e->total = visits;
        e->gen++;
        e->dirty = true;
        e->quiet_since = now;
        l->announce_now = true;
    }
    a->count++;
    w->live = l;
    w->link = e;
    w->addr = a;
    w->sent = -1;
    w->last_write_ms = now;
    w->stream.read = watcher_read;
    w->stream.release = watcher_release;
    w->fd = fd;
    w->chunked = http_stream_chunked(r);
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLET, .data.ptr = w};
    w->in_epoll = epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
    w->next = e->watchers;
    if (e->watchers)
        e->watchers->prev = w;
    e->watchers = w;
    e->nwatchers++;
    l->nwatchers++;
    pthread_mutex_unlock(&l->lock);
    if (first)
        wake_thread(l);
    return http_send_stream(r, 200, "text/event-stream", &w->stream, headers);
}

void live_visit(struct live *l, const char *key, size_t len)
{
    struct lkey *e;

    if (!l || atomic_load_explicit(&l->nkeys, memory_order_relaxed) == 0)
        return;
    pthread_rwlock_rdlock(&l->rw);
    e = key_find(l, key, len);
    if (e)
        atomic_fetch_add_explicit(&e->delta, 1, memory_order_relaxed);
    pthread_rwlock_unlock(&l->rw);
}

/* --- the live thread --- */

static int msg_append(struct live *l, const char *s, size_t len)
{
    if (l->msg_len + len + 1 > l->msg_cap) {
        size_t cap = l->msg_cap ? l->msg_cap * 2 : 4096;
        while (cap < l->msg_len + len + 1)
            cap *= 2;
        char *p = realloc(l->msg, cap);
        if (!p)
            return -ENOMEM;
        l->msg = p;
        l->msg_cap = cap;
    }
    memcpy(l->msg + l->msg_len, s, len);
    l->msg_len += len;
    l->msg[l->msg_len] = '\0';
    return 0;
}

/* Messages are "V <server> <key> <n> ..." (visits counted) and "W <server> <key> ..." (links
 * watched). Keys are [0-9A-Za-z_-], so spaces separate everything. */
static void msg_start(struct live *l, char kind)
{
    char head[24];
    int n = snprintf(head, sizeof(head), "%c %s", kind, l->id);
    l->msg_len = 0;
    msg_append(l, head, (size_t)n);
}

static void publish(struct live *l)
{
    if (redis_command(l->pub, NULL, "PUBLISH %s %b", LIVE_CHANNEL, l->msg, l->msg_len) < 0)
        log_debug("live: cannot publish: %s", redis_error(l->pub));
}

static int work_add(struct live *l, struct watcher *w)
{
    if (l->nwork == l->work_cap) {
        size_t cap = l->work_cap ? l->work_cap * 2 : 1024;
        struct watcher **p = realloc(l->work, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        l->work = p;
        l->work_cap = cap;
    }
    l->work[l->nwork++] = w;
    return 0;
}

/* Ends the collected watchers: each is unparked under the lock, then woken, and its read
 * ends the stream. Only the live thread (or live_close, after it) does this. */
static void end_collected(struct live *l)
{
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->nwork; i++) {
        l->work[i]->hangup = true;
        l->work[i]->parked = false;
    }
    pthread_mutex_unlock(&l->lock);
    for (size_t i = 0; i < l->nwork; i++)
        http_stream_wake(&l->work[i]->stream);
    l->nwork = 0;
}

/* Clients that hung up: their streams end at once. A watcher not parked yet is ended by its
 * next read, which sees the flag. */
static void collect_hangups(struct live *l)
{
    struct epoll_event evs[256];
    int n;

    pthread_mutex_lock(&l->lock);
    while ((n = epoll_wait(l->epoll_fd, evs, 256, 0)) > 0)
        for (int i = 0; i < n; i++) {
            struct watcher *w = evs[i].data.ptr;
            w->hangup = true;
            if (w->parked)
                work_add(l, w);
        }
    pthread_mutex_unlock(&l->lock);
    end_collected(l);
}

/* Collects, with the lock held, the parked watchers with something to write: a total they
 * have not seen (at most once per interval per link), the rest of a write the socket did not
 * take at once, or a keep-alive due. Returns when a held-back total is due. */
static long long collect_writes(struct live *l, long long now, bool keepalives)
{
    long long due = (long long)l->cfg.keepalive_ms - l->tick_ms, next = now + 3600000;

    for (size_t b = 0; b < KEY_BUCKETS; b++)
        for (struct lkey *e = l->keys[b]; e; e = e->next) {
            bool may_send = now - e->woken_at >= (long long)l->cfg.interval_ms, sent = false;
            for (struct watcher *w = e->watchers; w; w = w->next) {
                if (!w->parked)
                    continue;
                if (w->out_off < w->out_len) {
                    work_add(l, w);
                } else if (w->sent != e->total && may_send) {
                    w->want = e->total;
                    sent = true;
                    work_add(l, w);
                } else if (w->sent != e->total) {
                    if (e->woken_at + l->cfg.interval_ms < next)
                        next = e->woken_at + l->cfg.interval_ms;
                } else if (keepalives && now - w->last_write_ms >= due) {
                    w->want = -1;
                    work_add(l, w);
                }
            }
            if (sent)
                e->woken_at = now;
        }
    return next;
}

/* Puts the next write in w->out: a comment or the event of w->want, as a chunk of its own
 * when the body is chunked. */
static void format_write(struct watcher *w)
{
    char payload[EVENT_MAX];
    int n = w->want < 0 ? 3 : format_event(payload, sizeof(payload), w->link->key, w->want);

    if (w->want < 0)
        memcpy(payload, ":\n\n", 3);
    if (n > 0 && w->chunked)
        n = snprintf(w->out, sizeof(w->out), "%x\r\n%.*s\r\n", (unsigned)n, n, payload);
    else if (n > 0)
        memcpy(w->out, payload, (size_t)n);
    w->out_off = 0;
    w->out_len = (uint8_t)(n > 0 && (size_t)n < sizeof(w->out) ? n : 0);
}

/* Writes what was collected, outside the lock: a parked watcher is the live thread's alone.
 * A socket that takes nothing for the stream timeout, or fails, ends its stream. */
static void write_collected(struct live *l, long long now)
{
    size_t ended = 0;

    for (size_t i = 0; i < l->nwork; i++) {
        struct watcher *w = l->work[i];
        if (w->out_off == w->out_len)
            format_write(w);
        ssize_t k = send(w->fd, w->out + w->out_off, (size_t)(w->out_len - w->out_off),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            w->out_off = (uint8_t)(w->out_off + k);
            if (w->out_off == w->out_len) {
                w->last_write_ms = now;
                if (w->want >= 0)
                    w->sent = w->want;
            }
        } else if (k < 0 && (errno == EAGAIN || errno == EINTR) &&
                   now - w->last_write_ms < (long long)l->cfg.stream_timeout * 1000) {
            /* Not reading just now: again next tick. */
        } else {
            l->work[ended++] = w;
        }
    }
    l->nwork = ended;
    end_collected(l);
}

/* Adds the visits counted here to the links' totals, and builds the message with those of
 * links watched elsewhere. True when there is one to publish: none without such visits. */
static bool tick_counts(struct live *l, long long now)
{
    char item[KEY_MAX_LEN + 32];
    bool any = false;

    msg_start(l, 'V');
    for (size_t b = 0; b < KEY_BUCKETS; b++)
        for (struct lkey *e = l->keys[b]; e; e = e->next) {
            uint64_t d = atomic_exchange_explicit(&e->delta, 0, memory_order_relaxed);
            if (!d)
                continue;
            if (e->nwatchers)
                total_set(e, e->total + (int64_t)d, now);
            if (e->heard_until >= now) {
                int n = snprintf(item, sizeof(item), " %s %llu", e->key, (unsigned long long)d);
                any |= msg_append(l, item, (size_t)n) == 0;
            }
        }
    return any;
}

/* Builds the announcement of the links watched here; false when there are none. */
static bool tick_announce(struct live *l)
{
    char item[KEY_MAX_LEN + 2];
    bool any = false;

    msg_start(l, 'W');
    for (size_t b = 0; b < KEY_BUCKETS; b++)
        for (struct lkey *e = l->keys[b]; e; e = e->next)
            if (e->nwatchers) {
                int n = snprintf(item, sizeof(item), " %s", e->key);
                any |= msg_append(l, item, (size_t)n) == 0;
            }
    return any;
}

/* Re-reads from PostgreSQL the totals of links quiet long enough (see the top). */
static void tick_resync(struct live *l, long long now)
{
    struct {
        char key[KEY_MAX_LEN + 1];
        uint64_t gen;
    } due[RESYNC_PER_TICK];
    size_t n = 0;

    pthread_mutex_lock(&l->lock);
    for (size_t b = 0; b < KEY_BUCKETS && n < RESYNC_PER_TICK; b++)
        for (struct lkey *e = l->keys[b]; e && n < RESYNC_PER_TICK; e = e->next)
            if (e->nwatchers && e->dirty &&
                now - e->quiet_since >= (long long)l->cfg.flush_ms + RESYNC_MARGIN_MS) {
                memcpy(due[n].key, e->key, (size_t)e->len + 1);
                due[n++].gen = e->gen;
            }
    pthread_mutex_unlock(&l->lock);
    for (size_t i = 0; i < n; i++) {
        struct link link = {0};
        int rc = store_get_link(l->store, due[i].key, 0, &link);
        int64_t visits = link.visits;
        link_release(&link);
        if (rc < 0 && rc != -ENOENT)
            break; /* PostgreSQL is away: again next tick */
        pthread_mutex_lock(&l->lock);
        struct lkey *e = key_find(l, due[i].key, strlen(due[i].key));
        /* Only when nothing changed meanwhile: a visit added since could be in the count. */
        if (e && e->gen == due[i].gen) {
            if (rc == 0)
                total_set(e, visits, e->quiet_since);
            e->dirty = false;
        }
        pthread_mutex_unlock(&l->lock);
    }
}

/* A message from the channel: visits counted elsewhere (V), or links watched elsewhere (W). */
static void on_message(struct live *l, const char *msg, size_t len)
{
    char *copy = malloc(len + 1), *save = NULL, *kind, *id, *tok;
    long long now = deadline_now_ms();

    if (!copy)
        return;
    memcpy(copy, msg, len);
    copy[len] = '\0';
    kind = strtok_r(copy, " ", &save);
    id = strtok_r(NULL, " ", &save);
    if (!kind || !id || strcmp(id, l->id) == 0)
        goto out;
    pthread_mutex_lock(&l->lock);
    while ((tok = strtok_r(NULL, " ", &save))) {
        size_t klen = strlen(tok);
        if (!request_is_key(tok, klen))
            break;
        if (kind[0] == 'W') {
            struct lkey *e = key_get(l, tok, klen);
            if (e)
                e->heard_until = now + HEARD_MS;
        } else if (kind[0] == 'V') {
            const char *count = strtok_r(NULL, " ", &save);
            long long d = count ? strtoll(count, NULL, 10) : 0;
            struct lkey *e = key_find(l, tok, klen);
            if (d > 0 && e && e->nwatchers)
                total_set(e, e->total + d, now);
        }
    }
    pthread_mutex_unlock(&l->lock);
out:
    free(copy);
}

static void sub_drop(struct live *l, const char *why)
{
    if (!l->sub_down_logged)
        log_warn("live: lost the redis subscription (%s); other servers' visits wait for it", why);
    l->sub_down_logged = true;
    redisFree(l->sub);
    l->sub = NULL;
    l->sub_retry_at = deadline_now_ms() + RETRY_MS;
}

/* The subscribed connection is the module's own (redis_connect()): it can do nothing else. */
static void sub_connect(struct live *l, long long now)
{
    char err[256];
    redisReply *r;

    if (l->sub || now < l->sub_retry_at)
        return;
    l->sub = redis_connect(l->target, err, sizeof(err));
    if (!l->sub) {
        if (!l->sub_down_logged)
            log_warn("live: cannot subscribe (%s); other servers' visits wait for it", err);
        l->sub_down_logged = true;
        l->sub_retry_at = now + RETRY_MS;
        return;
    }
    r = redisCommand(l->sub, "SUBSCRIBE " LIVE_CHANNEL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        sub_drop(l, "SUBSCRIBE failed");
        return;
    }
    freeReplyObject(r);
    if (l->sub_down_logged)
        log_info("live: subscribed again");
    l->sub_down_logged = false;
    l->last_heard = now;
    l->ping_sent = 0;
    pthread_mutex_lock(&l->lock);
    l->announce_now = true; /* whoever missed our announcements hears them at once */
    pthread_mutex_unlock(&l->lock);
}

static void sub_read(struct live *l, long long now)
{
    redisReply *r = NULL;

    if (redisBufferRead(l->sub) != REDIS_OK) {
        sub_drop(l, l->sub->errstr[0] ? l->sub->errstr : "connection lost");
        return;
    }
    while (redisGetReplyFromReader(l->sub, (void **)&r) == REDIS_OK && r) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
            r->element[0]->type == REDIS_REPLY_STRING) {
            l->last_heard = now;
            l->ping_sent = 0;
            if (strcmp(r->element[0]->str, "message") == 0 && r->elements == 3 &&
                r->element[2]->type == REDIS_REPLY_STRING)
                on_message(l, r->element[2]->str, r->element[2]->len);
        }
        freeReplyObject(r);
        r = NULL;
    }
}

/* A subscription that stays silent may be dead: PING it, and give it up without a PONG. */
static void sub_ping(struct live *l, long long now)
{
    int done = 0;

    if (l->ping_sent && now - l->ping_sent > PONG_WAIT_MS) {
        sub_drop(l, "no answer to PING");
        return;
    }
    if (l->ping_sent || now - l->last_heard < IDLE_PING_MS)
        return;
    if (redisAppendCommand(l->sub, "PING") != REDIS_OK) {
        sub_drop(l, "cannot send PING");
        return;
    }
    while (!done)
        if (redisBufferWrite(l->sub, &done) != REDIS_OK) {
            sub_drop(l, "write failed");
            return;
        }
    l->ping_sent = now;
}

/* One turn of the live thread: counts and announcements when due, held-back totals whose
 * interval has passed, keep-alives on ticks. Returns when it wants to run again. */
static long long turn(struct live *l, long long now, long long *next_tick, long long *next_announce)
{
    bool ticked = now >= *next_tick, counts = false, announce = false;
    long long next;

    pthread_mutex_lock(&l->lock);
    if (ticked)
        counts = tick_counts(l, now);
    pthread_mutex_unlock(&l->lock);
    if (counts)
        publish(l);
    pthread_mutex_lock(&l->lock);
    if (l->announce_now || now >= *next_announce) {
        announce = tick_announce(l);
        l->announce_now = false;
        *next_announce = now + ANNOUNCE_MS;
    }
    pthread_mutex_unlock(&l->lock);
    if (announce)
        publish(l);
    if (ticked)
        tick_resync(l, now);
    pthread_mutex_lock(&l->lock);
    if (ticked)
        keys_expire(l, now);
    next = collect_writes(l, now, ticked);
    pthread_mutex_unlock(&l->lock);
    write_collected(l, now);
    if (ticked)
        *next_tick = now - *next_tick >= l->tick_ms ? now + l->tick_ms : *next_tick + l->tick_ms;
    return next < *next_tick ? next : *next_tick;
}

static void *live_main(void *arg)
{
    struct live *l = arg;
    long long now = deadline_now_ms(), next_tick = now, next_announce = now, next = now;

    while (!atomic_load(&l->stopping)) {
        struct pollfd pfd[3] = {{.fd = l->wake_fd, .events = POLLIN},
                                {.fd = l->epoll_fd, .events = POLLIN},
                                {.fd = -1}};
        int timeout;

        now = deadline_now_ms();
        sub_connect(l, now);
        if (l->sub)
            pfd[2] = (struct pollfd){.fd = l->sub->fd, .events = POLLIN};
        timeout = (int)(next > now ? next - now : 0);
        if (!l->sub && timeout > RETRY_MS)
            timeout = RETRY_MS;
        if (poll(pfd, 3, timeout) > 0) {
            if (pfd[0].revents & POLLIN) {
                uint64_t n;
                if (read(l->wake_fd, &n, sizeof(n)) < 0)
                    log_debug("live: cannot read the wake-up");
            }
            if (pfd[1].revents & POLLIN)
                collect_hangups(l);
            if (l->sub && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
                sub_read(l, deadline_now_ms());
        }
        if (atomic_load(&l->stopping))
            break;
        now = deadline_now_ms();
        if (l->sub)
            sub_ping(l, now);
        next = turn(l, now, &next_tick, &next_announce);
    }
    return NULL;
}

struct live *live_new(const struct redis_target *target, const struct live_config *cfg)
{
    struct live *l = calloc(1, sizeof(*l));
    unsigned char id[8];

    if (!l)
        return NULL;
    l->cfg = *cfg;
    l->target = target;
    l->wake_fd = -1;
    l->epoll_fd = -1;
    /* Counts are published every tick: at most half a second, so that a visit reaches
     * watchers elsewhere within one interval (the hold-back per link) plus half a second. */
    l->tick_ms = cfg->interval_ms < PUBLISH_MAX_MS ? cfg->interval_ms : PUBLISH_MAX_MS;
    if (cfg->keepalive_ms / 2 < l->tick_ms)
        l->tick_ms = cfg->keepalive_ms / 2 ? cfg->keepalive_ms / 2 : 1;
    randombytes_buf(id, sizeof(id));
    sodium_bin2hex(l->id, sizeof(l->id), id, sizeof(id));
    atomic_init(&l->nkeys, 0);
    atomic_init(&l->stopping, false);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Redirect threads read all the time; the live thread must still get its turn. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_mutex_init(&l->lock, NULL) != 0 || pthread_rwlock_init(&l->rw, &attr) != 0) {
        pthread_rwlockattr_destroy(&attr);
        free(l);
        return NULL;
    }
    pthread_rwlockattr_destroy(&attr);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    l->pub = redis_new(target);
    l->store = store_new(cfg->database_url, "shortener-live");
    if (l->wake_fd < 0 || l->epoll_fd < 0 || !l->pub || !l->store) {
        live_free(l);
        return NULL;
    }
    return l;
}

int live_start(struct live *l)
{
    int rc = bgthread_start(&l->thread, "live", live_main, l);
    if (rc < 0)
        return rc;
    l->started = true;
    return 0;
}

void live_close(struct live *l)
{
    if (!l)
        return;
    /* The thread first: from then on nobody else writes to or wakes a parked watcher. */
    if (l->started) {
        atomic_store(&l->stopping, true);
        wake_thread(l);
        pthread_join(l->thread, NULL);
        l->started = false;
    }
    pthread_mutex_lock(&l->lock);
    l->closing = true;
    for (size_t b = 0; b < KEY_BUCKETS; b++)
        for (struct lkey *e = l->keys[b]; e; e = e->next)
            for (struct watcher *w = e->watchers; w; w = w->next)
                if (w->parked)
                    work_add(l, w);
    pthread_mutex_unlock(&l->lock);
    /* From now on every read ends its stream and none parks again. */
    end_collected(l);
}

void live_free(struct live *l)
{
    if (!l)
        return;
    live_close(l);
    for (size_t b = 0; b < KEY_BUCKETS; b++)
        while (l->keys[b]) {
            struct lkey *e = l->keys[b];
            l->keys[b] = e->next;
            free(e);
        }
    for (size_t b = 0; b < ADDR_BUCKETS; b++)
        while (l->addrs[b]) {
            struct addr *a = l->addrs[b];
            l->addrs[b] = a->next;
            free(a);
        }
    if (l->sub)
        redisFree(l->sub);
    redis_free(l->pub);
    store_free(l->store);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    if (l->epoll_fd >= 0)
        close(l->epoll_fd);
    free(l->msg);
    free(l->work);
    pthread_mutex_destroy(&l->lock);
    pthread_rwlock_destroy(&l->rw);
    free(l);
}

size_t live_watchers(struct live *l)
{
    if (!l)
        return 0;
    pthread_mutex_lock(&l->lock);
    size_t n = l->nwatchers;
    pthread_mutex_unlock(&l->lock);
    return n;
}

size_t live_links(struct live *l)
{
    return l ? atomic_load(&l->nkeys) : 0;
}
