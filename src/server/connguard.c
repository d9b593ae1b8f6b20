/* Per-address connection limits and whole-request deadlines (see connguard.h). */
#include "connguard.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "bgthread.h"
#include "deadline.h"
#include "keyhash.h"
#include "log.h"

/* Buckets of the per-address table: chains stay short under the connection limit's worth of
 * distinct addresses, and the hash is keyed, so nobody can lengthen one on purpose. */
#define BUCKETS 4096
/* How often deadlines are looked at; a connection may outlive its deadline by this much. */
#define SWEEP_MS 200

struct address {
    struct address *next;
    unsigned char net[16];
    unsigned count;
};

struct connguard_conn {
    struct connguard_conn *prev, *next;
    struct address *addr; /* NULL: not counted (not an IP peer, or exempt) */
    int fd;
    bool shut;
    /* Monotonic ms by which the request under way must have arrived; 0 while none is due
     * (the request is being answered). Written by the connection's thread, read by the
     * sweep. */
    atomic_llong due;
};

struct connguard {
    unsigned per_address;
    long long timeout_ms;
    const struct clientip_trusted *exempt;
    struct metrics *metrics;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, started;
    pthread_t thread;
    struct connguard_conn *conns; /* every open connection */
    unsigned long long open;
    struct address *buckets[BUCKETS];
};

struct connguard *connguard_new(unsigned per_address, long long request_timeout_ms,
                                const struct clientip_trusted *exempt, struct metrics *m)
{
    struct connguard *g = calloc(1, sizeof(*g));
    pthread_condattr_t attr;

    if (!g)
        return NULL;
    g->per_address = per_address;
    g->timeout_ms = request_timeout_ms;
    g->exempt = exempt;
    g->metrics = m;
    if (pthread_mutex_init(&g->lock, NULL) != 0) {
        free(g);
        return NULL;
    }
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&g->wake, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    pthread_condattr_destroy(&attr);
    return g;
}

static struct address **slot_of(struct connguard *g, const unsigned char net[16])
{
    struct address **p = &g->buckets[keyhash(net, 16) % BUCKETS];
    while (*p && memcmp((*p)->net, net, 16) != 0)
        p = &(*p)->next;
    return p;
}

/* The peer's network when it is counted at all. */
static bool counted(struct connguard *g, const struct sockaddr *peer, unsigned char net[16])
{
    unsigned char exact[16];

    if (g->per_address == 0 || clientip_peer_net(peer, net) < 0)
        return false;
    /* Trusted proxies are judged by their whole address, as TRUSTED_PROXIES names them. */
    if (g->exempt && g->exempt->n > 0) {
        memcpy(exact, net, 16);
        if (peer->sa_family == AF_INET6)
            memcpy(exact, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr, 16);
        if (clientip_is_trusted(g->exempt, exact))
            return false;
    }
    return true;
}

bool connguard_admit(struct connguard *g, const struct sockaddr *peer)
{
    unsigned char net[16];
    bool ok = true;

    if (!counted(g, peer, net))
        return true;
    pthread_mutex_lock(&g->lock);
    struct address *a = *slot_of(g, net);
    if (a && a->count >= g->per_address)
        ok = false;
    pthread_mutex_unlock(&g->lock);
    if (!ok)
        metrics_inc(&g->metrics->connections_refused);
    return ok;
}

struct connguard_conn *connguard_opened(struct connguard *g, const struct sockaddr *peer, int fd)
{
    struct connguard_conn *c = calloc(1, sizeof(*c));
    unsigned char net[16];
    bool over = false;

    if (!c)
        return NULL;
    c->fd = fd;
    atomic_init(&c->due, deadline_now_ms() + g->timeout_ms);
    bool count = counted(g, peer, net);
    pthread_mutex_lock(&g->lock);
    if (count) {
        struct address **p = slot_of(g, net);
        if (!*p) {
            *p = calloc(1, sizeof(**p));
            if (*p)
                memcpy((*p)->net, net, 16);
        }
        if (*p) {
            c->addr = *p;
            c->addr->count++;
            over = c->addr->count > g->per_address;
        }
    }
    c->next = g->conns;
    if (g->conns)
        g->conns->prev = c;
    g->conns = c;
    g->open++;
    if (over) {
        /* Two threads let two connections of one address past connguard_admit at once. */
        c->shut = true;
        shutdown(fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&g->lock);
    if (over)
        metrics_inc(&g->metrics->connections_refused);
    return c;
}

void connguard_closed(struct connguard *g, struct connguard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->open--;
    if (c->addr && --c->addr->count == 0) {
        struct address **p = slot_of(g, c->addr->net);
        *p = c->addr->next;
        free(c->addr);
    }
    pthread_mutex_unlock(&g->lock);
    free(c);
}

void connguard_request_received(struct connguard_conn *c)
{
    if (c)
        atomic_store_explicit(&c->due, 0, memory_order_relaxed);
}

void connguard_request_done(struct connguard *g, struct connguard_conn *c)
{
    if (c)
        atomic_store_explicit(&c->due, deadline_now_ms() + g->timeout_ms, memory_order_relaxed);
}

unsigned long long connguard_open_count(struct connguard *g)
{
    pthread_mutex_lock(&g->lock);
    unsigned long long n = g->open;
    pthread_mutex_unlock(&g->lock);
    return n;
}

static void *sweep(void *arg)
{
    struct connguard *g = arg;
    struct timespec ts;

    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        long long now = deadline_now_ms();
        unsigned long long cut = 0;
        for (struct connguard_conn *c = g->conns; c; c = c->next) {
            long long due = atomic_load_explicit(&c->due, memory_order_relaxed);
            if (!c->shut && due != 0 && due < now) {
                /* libmicrohttpd sees the end of the stream and closes the connection. */
                shutdown(c->fd, SHUT_RDWR);
                c->shut = true;
                cut++;
            }
        }
        if (cut) {
            metrics_add(&g->metrics->connections_timed_out, cut);
            log_debug("cut %llu connections whose request was not whole in %lld ms", cut,
                      g->timeout_ms);
        }
        deadline_after(CLOCK_MONOTONIC, SWEEP_MS, &ts);
        pthread_cond_timedwait(&g->wake, &g->lock, &ts);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int connguard_start(struct connguard *g)
{
    int rc = bgthread_start(&g->thread, "connguard", sweep, g);
    if (rc < 0)
        return rc;
    g->started = true;
    return 0;
}

void connguard_free(struct connguard *g)
{
    if (!g)
        return;
    if (g->started) {
        pthread_mutex_lock(&g->lock);
        g->stopping = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
    }
    while (g->conns) {
        struct connguard_conn *c = g->conns;
        g->conns = c->next;
        free(c);
    }
    for (unsigned i = 0; i < BUCKETS; i++)
        while (g->buckets[i]) {
            struct address *a = g->buckets[i];
            g->buckets[i] = a->next;
            free(a);
        }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
