/* A ring of claimed keys guarded by one mutex. Critical sections are memcpy's of a few
 * kilobytes, so one lock is not what limits throughput; shuffling happens outside it. */
#include "keybuf.h"
#include "deadline.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int keybuf_init(struct keybuf *b, size_t cap)
{
    pthread_condattr_t attr;
    int rc = 0;

    memset(b, 0, sizeof(*b));
    if (cap == 0)
        return -EINVAL;
    b->slots = calloc(cap, sizeof(*b->slots));
    if (!b->slots)
        return -ENOMEM;
    b->cap = cap;
    rc = -pthread_condattr_init(&attr);
    if (rc < 0)
        goto out;
    /* Timeouts must not jump when someone sets the wall clock. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = -pthread_mutex_init(&b->lock, NULL);
    if (rc == 0) {
        rc = -pthread_cond_init(&b->filled, &attr);
        if (rc == 0) {
            rc = -pthread_cond_init(&b->drained, &attr);
            if (rc < 0)
                pthread_cond_destroy(&b->filled);
        }
        if (rc < 0)
            pthread_mutex_destroy(&b->lock);
    }
    pthread_condattr_destroy(&attr);
out:
    if (rc < 0) {
        free(b->slots);
        b->slots = NULL;
    }
    return rc;
}

void keybuf_release(struct keybuf *b)
{
    if (!b->slots)
        return;
    pthread_cond_destroy(&b->drained);
    pthread_cond_destroy(&b->filled);
    pthread_mutex_destroy(&b->lock);
    /* Claimed keys are as good as issued: leave no copy behind in freed memory. */
    sodium_memzero(b->slots, b->cap * sizeof(*b->slots));
    free(b->slots);
    b->slots = NULL;
}

static void shuffle(char (*keys)[KEYBUF_SLOT], size_t n)
{
    char tmp[KEYBUF_SLOT];

    for (size_t i = n; i > 1; i--) {
        size_t j = randombytes_uniform((uint32_t)i);
        memcpy(tmp, keys[i - 1], KEYBUF_SLOT);
        memcpy(keys[i - 1], keys[j], KEYBUF_SLOT);
        memcpy(keys[j], tmp, KEYBUF_SLOT);
    }
}

size_t keybuf_put(struct keybuf *b, char (*keys)[KEYBUF_SLOT], size_t n)
{
    size_t stored, tail, first;

    if (n > UINT32_MAX)
        n = UINT32_MAX; /* randombytes_uniform's range; batches are far smaller */
    shuffle(keys, n);
    pthread_mutex_lock(&b->lock);
    stored = b->cap - b->count < n ? b->cap - b->count : n;
    tail = (b->head + b->count) % b->cap;
    first = b->cap - tail < stored ? b->cap - tail : stored;
    memcpy(b->slots[tail], keys, first * sizeof(*keys));
    memcpy(b->slots[0], keys + first, (stored - first) * sizeof(*keys));
    b->count += stored;
    if (stored > 0)
        pthread_cond_broadcast(&b->filled);
    pthread_mutex_unlock(&b->lock);
    return stored;
}

int keybuf_take(struct keybuf *b, size_t n, char (*out)[KEYBUF_SLOT], int timeout_ms)
{
    struct timespec deadline;
    size_t first;
    int rc = 0;

    if (n == 0 || n > b->cap)
        return -EINVAL;
    deadline_after(CLOCK_MONOTONIC, timeout_ms, &deadline);
    pthread_mutex_lock(&b->lock);
    while (b->count < n && !b->stopping) {
        if (pthread_cond_timedwait(&b->filled, &b->lock, &deadline) == ETIMEDOUT && b->count < n) {
            rc = -EAGAIN;
            goto out;
        }
    }
    if (b->stopping) {
        rc = -EAGAIN;
        goto out;
    }
    first = b->cap - b->head < n ? b->cap - b->head : n;
    memcpy(out, b->slots[b->head], first * sizeof(*out));
    memcpy(out + first, b->slots[0], (n - first) * sizeof(*out));
    b->head = (b->head + n) % b->cap;
    b->count -= n;
    pthread_cond_broadcast(&b->drained);
out:
    pthread_mutex_unlock(&b->lock);
    return rc;
}

size_t keybuf_count(struct keybuf *b)
{
    pthread_mutex_lock(&b->lock);
    size_t n = b->count;
    pthread_mutex_unlock(&b->lock);
    return n;
}

size_t keybuf_wait_below(struct keybuf *b, size_t level, int timeout_ms)
{
    struct timespec deadline;
    size_t n;

    deadline_after(CLOCK_MONOTONIC, timeout_ms, &deadline);
    pthread_mutex_lock(&b->lock);
    while (b->count >= level && !b->stopping)
        if (pthread_cond_timedwait(&b->drained, &b->lock, &deadline) == ETIMEDOUT)
            break;
    n = b->count;
    pthread_mutex_unlock(&b->lock);
    return n;
}

void keybuf_stop(struct keybuf *b)
{
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_broadcast(&b->filled);
    pthread_cond_broadcast(&b->drained);
    pthread_mutex_unlock(&b->lock);
}

bool keybuf_stopping(struct keybuf *b)
{
    pthread_mutex_lock(&b->lock);
    bool stopping = b->stopping;
    pthread_mutex_unlock(&b->lock);
    return stopping;
}
