/* Fetching generated keys from one of several kgs in batches, on a thread of its own, and
 * handing them out one at a time (see keys_client.h). */
#include "keys_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base62.h"
#include "bgthread.h"
#include "deadline.h"
#include "keyspace.h"
#include "kgs_proto.h"
#include "log.h"
#include "sock.h"

/* After every kgs failed, this long before the next try; takes meanwhile fail at once. */
#define KGS_BACKOFF_MS  250
#define SOCKET_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

struct keys_client {
    pthread_mutex_t lock;
    pthread_cond_t wanted;  /* the refill thread waits on it for the buffer to run low */
    pthread_cond_t arrived; /* takers wait on it for a refill's outcome */
    char paths[KEYS_CLIENT_MAX_SOCKETS][SOCKET_PATH_MAX];
    unsigned npaths;
    atomic_uint current; /* the kgs that answered last: tried first */
    unsigned batch;      /* also the low-water mark: the buffer holds up to twice this */
    char (*keys)[GENERATED_KEY_LEN + 1];
    size_t count;
    long long retry_at_ms; /* every kgs failed: nobody waits for keys before this */
    bool stopping;
    bool lock_ready, wanted_ready, arrived_ready, started;
    pthread_t thread;
    /* The refill thread's own: its connection, and the batch being read. */
    int fd;
    unsigned fd_path;
    struct sock_reader reader;
    char (*incoming)[GENERATED_KEY_LEN + 1];
    bool down_logged;
};

/* Splits sockets into paths; with out NULL only checks. */
static int split_sockets(const char *sockets, char out[][SOCKET_PATH_MAX], unsigned *n, char *err,
                         size_t errlen)
{
    const char *p = sockets;

    *n = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *start = p, *end = p + len;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end == start) {
            snprintf(err, errlen, "KGS_SOCKET '%s' names an empty socket path", sockets);
            return -EINVAL;
        }
        if ((size_t)(end - start) >= SOCKET_PATH_MAX) {
            snprintf(err, errlen, "KGS_SOCKET has a socket path over %zu bytes",
                     SOCKET_PATH_MAX - 1);
            return -EINVAL;
        }
        if (*n == KEYS_CLIENT_MAX_SOCKETS) {
            snprintf(err, errlen, "KGS_SOCKET names more than %d sockets", KEYS_CLIENT_MAX_SOCKETS);
            return -EINVAL;
        }
        if (out)
            snprintf(out[*n], SOCKET_PATH_MAX, "%.*s", (int)(end - start), start);
        (*n)++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

int keys_client_check_sockets(const char *sockets, char *err, size_t errlen)
{
    unsigned n;
    return split_sockets(sockets, NULL, &n, err, errlen);
}

static void drop_connection(struct keys_client *kc)
{
    if (kc->fd >= 0)
        close(kc->fd);
    kc->fd = -1;
}

/* One TAKE round trip to kgs number i into kc->incoming; *got says how many keys arrived,
 * which are kept even when the connection fails later: they were issued to us. */
static int take_from(struct keys_client *kc, unsigned i, size_t *got)
{
    char line[KGS_LINE_MAX];
    struct kgs_reply rep;
    int rc, len;

    *got = 0;
    if (kc->fd >= 0 && kc->fd_path != i)
        drop_connection(kc);
    if (kc->fd < 0) {
        rc = sock_unix_connect(kc->paths[i], KGS_CLIENT_TIMEOUT_MS);
        if (rc < 0)
            return rc;
        kc->fd = rc;
        kc->fd_path = i;
        sock_reader_init(&kc->reader, kc->fd);
    }
    len = kgs_format_take(line, sizeof(line), kc->batch);
    if (len < 0)
        return len;
    rc = sock_write_all(kc->fd, line, (size_t)len, KGS_CLIENT_TIMEOUT_MS);
    if (rc < 0)
        goto fail;
    rc = sock_read_line(&kc->reader, line, sizeof(line), KGS_CLIENT_TIMEOUT_MS);
    if (rc < 0)
        goto fail;
    if (kgs_parse_reply(line, &rep) < 0 || rep.kind == KGS_REPLY_PONG ||
        (rep.kind == KGS_REPLY_KEYS && rep.count != kc->batch)) {
        rc = -EPROTO;
        goto fail;
    }
    if (rep.kind == KGS_REPLY_ERR) {
        log_warn("kgs %s: %s", kc->paths[i], rep.error);
        return -EAGAIN; /* a well-formed refusal: the connection stays usable */
    }
    for (unsigned k = 0; k < rep.count; k++) {
        rc = sock_read_line(&kc->reader, line, sizeof(line), KGS_CLIENT_TIMEOUT_MS);
        if (rc < 0)
            goto fail;
        if (!base62_is_key(line, (size_t)rc)) {
            rc = -EPROTO;
            goto fail;
        }
        memcpy(kc->incoming[(*got)++], line, GENERATED_KEY_LEN + 1);
    }
    return 0;
fail:
    drop_connection(kc);
    return rc;
}

/* One batch from the first kgs that gives one, starting with the one that answered last. A
 * kept connection that fails earns one fresh connection to the same kgs first: it may just
 * have restarted. Returns 0 with *got > 0, or the last failure. */
static int refill_once(struct keys_client *kc, size_t *got)
{
    unsigned start = atomic_load(&kc->current);
    int rc = -EAGAIN;

    for (unsigned k = 0; k < kc->npaths; k++) {
        unsigned i = (start + k) % kc->npaths;
        bool reused = kc->fd >= 0 && kc->fd_path == i;
        rc = take_from(kc, i, got);
        if (*got == 0 && reused && kc->fd < 0)
            rc = take_from(kc, i, got);
        if (*got > 0) {
            if (i != start)
                log_info("kgs: taking keys from %s", kc->paths[i]);
            atomic_store(&kc->current, i);
            return 0;
        }
        if (kc->npaths > 1)
            log_warn("kgs %s: %s; trying the next", kc->paths[i], strerror(rc < 0 ? -rc : EAGAIN));
    }
    return rc < 0 ? rc : -EAGAIN;
}

/* Waits on cond until abs_ms on the monotonic clock (forever when 0). */
static void wait_until_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long long abs_ms)
{
    if (abs_ms == 0) {
        pthread_cond_wait(cond, lock);
        return;
    }
    struct timespec ts = {.tv_sec = abs_ms / 1000, .tv_nsec = (abs_ms % 1000) * 1000000};
    pthread_cond_timedwait(cond, lock, &ts);
}

static void *refill_main(void *arg)
{
    struct keys_client *kc = arg;

    pthread_mutex_lock(&kc->lock);
    while (!kc->stopping) {
        if (kc->count > kc->batch) {
            pthread_cond_wait(&kc->wanted, &kc->lock);
            continue;
        }
        if (deadline_now_ms() < kc->retry_at_ms) {
            wait_until_ms(&kc->wanted, &kc->lock, kc->retry_at_ms);
            continue;
        }
        /* The round trip runs unlocked: takers keep taking what is left meanwhile. */
        pthread_mutex_unlock(&kc->lock);
        size_t got = 0;
        int rc = refill_once(kc, &got);
        pthread_mutex_lock(&kc->lock);
        /* count <= batch and got <= batch: the buffer holds twice the batch. */
        memcpy(kc->keys[kc->count], kc->incoming, got * sizeof(*kc->keys));
        kc->count += got;
        if (got == 0) {
            if (!kc->down_logged)
                log_warn("kgs: no keys available: %s", strerror(rc < 0 ? -rc : EAGAIN));
            kc->down_logged = true;
            kc->retry_at_ms = deadline_now_ms() + KGS_BACKOFF_MS;
        } else {
            if (kc->down_logged)
                log_info("kgs: keys available again");
            kc->down_logged = false;
            kc->retry_at_ms = 0;
        }
        pthread_cond_broadcast(&kc->arrived);
    }
    pthread_mutex_unlock(&kc->lock);
    return NULL;
}

struct keys_client *keys_client_new(const char *sockets, unsigned batch)
{
    struct keys_client *kc = calloc(1, sizeof(*kc));
    pthread_condattr_t attr;
    char err[160];

    if (!kc)
        return NULL;
    kc->fd = -1;
    kc->batch = batch < 1 ? 1 : batch > KGS_MAX_TAKE ? KGS_MAX_TAKE : batch;
    if (split_sockets(sockets, kc->paths, &kc->npaths, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto fail;
    }
    kc->keys = calloc(2 * (size_t)kc->batch, sizeof(*kc->keys));
    kc->incoming = calloc(kc->batch, sizeof(*kc->incoming));
    if (!kc->keys || !kc->incoming)
        goto fail;
    kc->lock_ready = pthread_mutex_init(&kc->lock, NULL) == 0;
    if (!kc->lock_ready || pthread_condattr_init(&attr) != 0)
        goto fail;
    /* Timed waits count on the monotonic clock, as deadline_now_ms() does. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    kc->wanted_ready = pthread_cond_init(&kc->wanted, &attr) == 0;
    kc->arrived_ready = pthread_cond_init(&kc->arrived, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!kc->wanted_ready || !kc->arrived_ready)
        goto fail;
    kc->started = bgthread_start(&kc->thread, "kgs-refill", refill_main, kc) == 0;
    if (!kc->started)
        goto fail;
    return kc;
fail:
    keys_client_free(kc);
    return NULL;
}

void keys_client_free(struct keys_client *kc)
{
    if (!kc)
        return;
    if (kc->started) {
        pthread_mutex_lock(&kc->lock);
        kc->stopping = true;
        pthread_cond_broadcast(&kc->wanted);
        pthread_cond_broadcast(&kc->arrived);
        pthread_mutex_unlock(&kc->lock);
        pthread_join(kc->thread, NULL);
    }
    drop_connection(kc);
    if (kc->wanted_ready)
        pthread_cond_destroy(&kc->wanted);
    if (kc->arrived_ready)
        pthread_cond_destroy(&kc->arrived);
    if (kc->lock_ready)
        pthread_mutex_destroy(&kc->lock);
    free(kc->keys);
    free(kc->incoming);
    free(kc);
}

int keys_client_take(struct keys_client *kc, char out[GENERATED_KEY_LEN + 1])
{
    int rc = -EAGAIN;

    pthread_mutex_lock(&kc->lock);
    if (kc->count <= kc->batch)
        pthread_cond_signal(&kc->wanted);
    if (kc->count == 0) {
        /* Truly empty: wait for the refill in flight, unless every kgs failed a moment ago
         * (then the refill thread is backing off and there is nothing to wait for). */
        long long until = deadline_now_ms() + KGS_CLIENT_TIMEOUT_MS;
        for (;;) {
            long long now = deadline_now_ms();
            if (kc->count > 0 || kc->stopping || now >= until || now < kc->retry_at_ms)
                break;
            wait_until_ms(&kc->arrived, &kc->lock, until);
        }
    }
    if (kc->count > 0) {
        memcpy(out, kc->keys[--kc->count], GENERATED_KEY_LEN + 1);
        rc = 0;
    }
    pthread_mutex_unlock(&kc->lock);
    return rc;
}

static int ping_one(const char *path)
{
    struct sock_reader r;
    char line[KGS_LINE_MAX];
    struct kgs_reply rep;
    int fd, rc;

    fd = sock_unix_connect(path, KGS_CLIENT_TIMEOUT_MS);
    if (fd < 0)
        return fd;
    sock_reader_init(&r, fd);
    rc = sock_write_all(fd, "PING\n", 5, KGS_CLIENT_TIMEOUT_MS);
    if (rc == 0)
        rc = sock_read_line(&r, line, sizeof(line), KGS_CLIENT_TIMEOUT_MS);
    if (rc >= 0)
        rc = kgs_parse_reply(line, &rep) == 0 && rep.kind == KGS_REPLY_PONG ? 0 : -EPROTO;
    close(fd);
    return rc;
}

int keys_client_ping(struct keys_client *kc)
{
    unsigned start = atomic_load(&kc->current);
    int rc = -EAGAIN;

    for (unsigned k = 0; k < kc->npaths; k++)
        if ((rc = ping_one(kc->paths[(start + k) % kc->npaths])) == 0)
            return 0;
    return rc;
}

size_t keys_client_buffered(struct keys_client *kc)
{
    pthread_mutex_lock(&kc->lock);
    size_t n = kc->count;
    pthread_mutex_unlock(&kc->lock);
    return n;
}
