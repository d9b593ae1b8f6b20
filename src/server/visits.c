/* In-memory visit counters and the thread that writes them to PostgreSQL. */
#include "visits.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgthread.h"
#include "deadline.h"
#include "keyhash.h"
#include "keyspace.h"
#include "log.h"
#include "store.h"

/* 16 bytes; the key itself is in the table's arena. Keeping many distinct keys cheap matters:
 * the more visits one flush sums per link, the fewer rows PostgreSQL has to update. */
struct slot {
    int64_t count; /* 0: empty */
    uint32_t off;  /* of the key in the arena */
    uint8_t len;
};

struct table {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
    char *arena; /* the keys, NUL-terminated, one after another */
    size_t arena_len, arena_cap;
};

struct visits {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping;
    struct table table;
    /* The table the last flush wrote, emptied, with the size it had: the next flush swaps it
     * in. Started again from INITIAL_CAP every flush, the table grew by doubling up to the
     * links visited each interval, rehashing every key under the lock at each step (up to
     * 25 ms at a time for 100,000 links, on two loaded CPUs), with the request threads that
     * count visits waiting on it. The flush thread's alone. */
    struct table spare;
    size_t max_keys;
    unsigned flush_ms;
    void (*harvest)(void *ctx);
    void *harvest_ctx;
    struct store *store;
};

#define INITIAL_CAP 1024

static int table_init(struct table *t, size_t cap)
{
    t->slots = calloc(cap, sizeof(*t->slots));
    t->cap = cap;
    t->used = 0;
    t->arena_cap = cap * 4;
    t->arena_len = 0;
    t->arena = malloc(t->arena_cap);
    if (!t->slots || !t->arena) {
        free(t->slots);
        free(t->arena);
        t->slots = NULL;
        t->arena = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void table_release(struct table *t)
{
    free(t->slots);
    free(t->arena);
    t->slots = NULL;
    t->arena = NULL;
}

/* Empties t for another interval, keeping its size, unless it was used to less than an eighth
 * of it (the traffic fell): then it starts small again. */
static int table_empty(struct table *t)
{
    if (t->cap > INITIAL_CAP && t->used * 8 < t->cap) {
        table_release(t);
        return table_init(t, INITIAL_CAP);
    }
    memset(t->slots, 0, t->cap * sizeof(*t->slots));
    t->used = 0;
    t->arena_len = 0;
    return 0;
}

static const char *key_of(const struct table *t, const struct slot *s)
{
    return t->arena + s->off;
}

/* The slot where the search for key starts. The hash is keyed: aliases are chosen by
 * clients, and with a hash anybody can compute, aliases chosen to share a home slot would
 * make every search among them (each visit counted, each key put back after a failed
 * flush) as long as their whole cluster. */
static size_t home_of(const struct table *t, const char *key, size_t len)
{
    return (size_t)keyhash(key, len) & (t->cap - 1);
}

static struct slot *table_find(struct table *t, const char *key, size_t len)
{
    size_t i = home_of(t, key, len);
    for (;;) {
        struct slot *s = &t->slots[i];
        if (s->count == 0 || (s->len == len && memcmp(key_of(t, s), key, len) == 0))
            return s;
        i = (i + 1) & (t->cap - 1);
    }
}

static int table_grow(struct table *t)
{
    struct table bigger = *t;

    /* The arena stays: slots only point into it. */
    bigger.cap = t->cap * 2;
    bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
    if (!bigger.slots)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        struct slot *s = &t->slots[i];
        if (s->count)
            *table_find(&bigger, key_of(t, s), s->len) = *s;
    }
    free(t->slots);
    *t = bigger;
    return 0;
}

/* Adds n visits to key; false when the table is full. Called with the lock held. */
static bool table_add(struct visits *v, const char *key, size_t len, int64_t n)
{
    struct table *t = &v->table;
    struct slot *s = table_find(t, key, len);

    if (s->count == 0) {
        if (t->used >= v->max_keys)
            return false;
        /* Keep the load factor at or under one half so probes stay short. */
        if ((t->used + 1) * 2 > t->cap) {
            if (table_grow(t) < 0)
                return false;
            s = table_find(t, key, len);
        }
        if (t->arena_len + len + 1 > t->arena_cap) {
            size_t cap = t->arena_cap * 2;
            char *p = realloc(t->arena, cap);
            if (!p)
                return false;
            t->arena = p;
            t->arena_cap = cap;
        }
        memcpy(t->arena + t->arena_len, key, len);
        t->arena[t->arena_len + len] = '\0';
        s->off = (uint32_t)t->arena_len;
        t->arena_len += len + 1;
        s->len = (uint8_t)len;
        t->used++;
        /* Many distinct keys: write them now rather than let the table (and the process)
         * grow until the interval ends. */
        if (t->used == v->max_keys / 2)
            pthread_cond_signal(&v->wake);
    }
    s->count += n;
    return true;
}

struct visits *visits_new(struct store *store, unsigned flush_ms, size_t max_keys)
{
    struct visits *v = calloc(1, sizeof(*v));
    if (!v) {
        store_free(store);
        return NULL;
    }
    v->store = store;
    v->flush_ms = flush_ms;
    v->max_keys = max_keys;
    if (table_init(&v->table, INITIAL_CAP) < 0 || pthread_mutex_init(&v->lock, NULL) != 0 ||
        pthread_cond_init(&v->wake, NULL) != 0) {
        visits_free(v);
        return NULL;
    }
    return v;
}

bool visits_record(struct visits *v, const char *key, size_t len)
{
    bool ok;
    if (len > KEY_MAX_LEN)
        return false;
    pthread_mutex_lock(&v->lock);
    ok = table_add(v, key, len, 1);
    pthread_mutex_unlock(&v->lock);
    return ok;
}

bool visits_add(struct visits *v, const char *key, size_t len, uint32_t n)
{
    bool ok;
    if (len > KEY_MAX_LEN || n == 0)
        return n == 0;
    pthread_mutex_lock(&v->lock);
    ok = table_add(v, key, len, n);
    pthread_mutex_unlock(&v->lock);
    return ok;
}

void visits_set_harvest(struct visits *v, void (*harvest)(void *ctx), void *ctx)
{
    v->harvest = harvest;
    v->harvest_ctx = ctx;
}

size_t visits_pending(struct visits *v)
{
    pthread_mutex_lock(&v->lock);
    size_t n = v->table.used;
    pthread_mutex_unlock(&v->lock);
    return n;
}

/* Keys per statement: a flush can carry 100,000 keys, and one statement updating them all
 * can wait on another server's writes past the statement timeout; then the whole batch would
 * be retried, growing each time. */
#define CHUNK_KEYS 5000

struct entry {
    const char *key;
    int64_t count;
};

static int by_key(const void *x, const void *y)
{
    return strcmp(((const struct entry *)x)->key, ((const struct entry *)y)->key);
}

/* Writes one table's counts; on failure those not yet written go back into the live table. */
static void flush(struct visits *v)
{
    struct table full;
    struct entry *e = NULL;
    const char **keys = NULL;
    int64_t *counts = NULL;
    size_t n = 0, done = 0;

    if (v->harvest)
        v->harvest(v->harvest_ctx);
    if (!v->spare.slots && table_init(&v->spare, INITIAL_CAP) < 0)
        return;
    pthread_mutex_lock(&v->lock);
    full = v->table;
    v->table = v->spare;
    pthread_mutex_unlock(&v->lock);
    memset(&v->spare, 0, sizeof(v->spare));
    if (full.used == 0)
        goto out;
    e = calloc(full.used, sizeof(*e));
    keys = calloc(full.used, sizeof(*keys));
    counts = calloc(full.used, sizeof(*counts));
    if (!e || !keys || !counts)
        goto restore;
    for (size_t i = 0; i < full.cap; i++)
        if (full.slots[i].count)
            e[n++] = (struct entry){key_of(&full, &full.slots[i]), full.slots[i].count};
    /* In the order ST_VISITS locks rows in (keys are COLLATE "C"), so that the chunks of two
     * servers move through the keys the same way and never wait on each other in a cycle. */
    qsort(e, n, sizeof(*e), by_key);
    for (size_t i = 0; i < n; i++) {
        keys[i] = e[i].key;
        counts[i] = e[i].count;
    }
    while (done < n) {
        size_t m = n - done < CHUNK_KEYS ? n - done : CHUNK_KEYS;
        if (store_add_visits(v->store, keys + done, counts + done, m) < 0)
            goto restore;
        done += m;
    }
    goto out;
restore:
    /* Only what was not written: the chunks before are committed, and counting them again
     * would add visits nobody made. */
    pthread_mutex_lock(&v->lock);
    if (n > 0) {
        for (size_t i = done; i < n; i++)
            table_add(v, keys[i], strlen(keys[i]), counts[i]);
    } else {
        for (size_t i = 0; i < full.cap; i++)
            if (full.slots[i].count)
                table_add(v, key_of(&full, &full.slots[i]), full.slots[i].len, full.slots[i].count);
    }
    pthread_mutex_unlock(&v->lock);
out:
    free(e);
    free(keys);
    free(counts);
    if (table_empty(&full) < 0)
        table_release(&full);
    v->spare = full;
}

static void *flush_thread(void *arg)
{
    struct visits *v = arg;
    struct timespec until;

    pthread_mutex_lock(&v->lock);
    while (!v->stopping) {
        deadline_after(CLOCK_REALTIME, (int)v->flush_ms, &until);
        pthread_cond_timedwait(&v->wake, &v->lock, &until);
        pthread_mutex_unlock(&v->lock);
        flush(v);
        pthread_mutex_lock(&v->lock);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

int visits_start(struct visits *v)
{
    int rc = bgthread_start(&v->thread, "visits", flush_thread, v);
    if (rc < 0)
        return rc;
    v->started = true;
    return 0;
}

void visits_free(struct visits *v)
{
    if (!v)
        return;
    if (v->started) {
        pthread_mutex_lock(&v->lock);
        v->stopping = true;
        pthread_cond_signal(&v->wake);
        pthread_mutex_unlock(&v->lock);
        pthread_join(v->thread, NULL);
        flush(v);
    }
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->wake);
    table_release(&v->table);
    table_release(&v->spare);
    store_free(v->store);
    free(v);
}
