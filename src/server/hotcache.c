/* A set-associative table: the key's hash picks a set of HOT_WAYS entries guarded by one
 * lock, and CLOCK (a referenced bit per entry) picks the victim inside the set. Lookups cost
 * one hash, one uncontended lock and a short copy; a set never grows, so no key pattern can
 * make an operation slower than HOT_WAYS comparisons.
 *
 * With a million links drawn, nearly every lookup misses the CPU caches twice: on its set and
 * on its entry. A set is therefore two cache lines, 128-byte aligned (lock, short tags and
 * the bit masks in one, the entry pointers in the other), which the CPU fetches as a pair. */
#include "hotcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "keyhash.h"

#define HOT_WAYS  8
#define HUGE_PAGE ((size_t)2 << 20)

struct hot_entry {
    int64_t expires_at;
    int64_t refresh_at; /* read again from Redis, in the background, on a hit after this */
    int64_t stale_at;   /* never answered after this */
    uint16_t keylen;
    uint16_t urllen;
    uint32_t visits; /* counted since the last harvest */
    uint16_t status; /* its redirect status; 0: the server's default */
    bool refreshing; /* past refresh_at, and a caller was told to have it read again */
    char data[];     /* key, NUL, url, NUL */
};

struct hot_set {
    pthread_mutex_t lock;
    uint16_t tags[HOT_WAYS]; /* 16 bits of the key's hash, never 0: 0 marks an empty way */
    uint8_t referenced;      /* one bit per way */
    uint8_t counted;         /* one bit per way: its entry holds visits not yet harvested */
    uint8_t hand;
    struct hot_entry *entries[HOT_WAYS];
} __attribute__((aligned(128)));

_Static_assert(sizeof(struct hot_set) == 128, "a set is two cache lines");

struct hotcache {
    struct hot_set *sets;
    size_t nsets;      /* a power of two */
    size_t sets_bytes; /* mapped for sets */
    int64_t max_age;
    atomic_uint_fast64_t epoch;
    atomic_bool enabled;
    atomic_size_t count;
    hotcache_visits_fn visits_fn;
    void *visits_ctx;
};

struct hotcache *hotcache_new(size_t max_entries, int64_t max_age, hotcache_visits_fn visits_fn,
                              void *visits_ctx)
{
    struct hotcache *h = calloc(1, sizeof(*h));
    size_t nsets = 1;

    if (!h)
        return NULL;
    atomic_init(&h->epoch, 1);
    atomic_init(&h->enabled, false);
    atomic_init(&h->count, 0);
    h->max_age = max_age;
    h->visits_fn = visits_fn;
    h->visits_ctx = visits_ctx;
    if (max_entries == 0)
        return h;
    while (nsets * HOT_WAYS < max_entries)
        nsets *= 2;
    /* Lookups land on random sets all over the table (46 MB as shipped), so with 4 KB pages
     * most would also miss the TLB; huge pages (THP in "madvise" mode, Debian's default) hold
     * it in a few TLB entries. Mapped memory is zero, as calloc's would be. */
    h->sets_bytes = (nsets * sizeof(*h->sets) + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    void *p = mmap(NULL, h->sets_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(h);
        return NULL;
    }
    (void)madvise(p, h->sets_bytes, MADV_HUGEPAGE);
    h->sets = p;
    h->nsets = nsets;
    for (size_t i = 0; i < nsets; i++)
        pthread_mutex_init(&h->sets[i].lock, NULL);
    return h;
}

/* Frees an entry that leaves the cache, handing on the visits it holds. Set lock held. */
static void drop(struct hotcache *h, struct hot_entry *e)
{
    if (e->visits && h->visits_fn)
        h->visits_fn(h->visits_ctx, e->data, e->keylen, e->visits);
    free(e);
}

static void clear_set(struct hotcache *h, struct hot_set *set)
{
    for (int w = 0; w < HOT_WAYS; w++)
        if (set->entries[w]) {
            drop(h, set->entries[w]);
            set->entries[w] = NULL;
            set->tags[w] = 0;
            atomic_fetch_sub_explicit(&h->count, 1, memory_order_relaxed);
        }
    set->referenced = 0;
    set->counted = 0;
}

void hotcache_free(struct hotcache *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nsets; i++) {
        clear_set(h, &h->sets[i]);
        pthread_mutex_destroy(&h->sets[i].lock);
    }
    if (h->sets)
        munmap(h->sets, h->sets_bytes);
    free(h);
}

/* Hash flooding could only crowd one set, but a keyed hash keeps sets evenly used. */
static uint64_t hash_of(const char *key, size_t keylen)
{
    return keyhash(key, keylen);
}

/* The low bits: the set is chosen by the high ones. */
static uint16_t tag_of(uint64_t hash)
{
    return (uint16_t)(hash | 1);
}

static struct hot_set *set_of(struct hotcache *h, uint64_t hash)
{
    return &h->sets[(hash >> 32) & (h->nsets - 1)];
}

/* An entry is trusted for max_age less up to a quarter of it, by its key's hash: links cached
 * in the same second (a warm-up, the refill after the cache was turned back on) would
 * otherwise all ask Redis again in the same second, max_age later, and keep doing so. The
 * hash is keyed per process, so several servers spread their refreshes differently too. */
static int64_t max_age_of(const struct hotcache *h, uint64_t hash)
{
    return h->max_age - (int64_t)((hash >> 8) % (uint64_t)(h->max_age / 4 + 1));
}

static int find(const struct hot_set *set, uint16_t tag, const char *key, size_t keylen)
{
    for (int w = 0; w < HOT_WAYS; w++)
        if (set->tags[w] == tag && set->entries[w]->keylen == keylen &&
            memcmp(set->entries[w]->data, key, keylen) == 0)
            return w;
    return -1;
}

int hotcache_get(struct hotcache *h, const char *key, size_t keylen, char *url, size_t cap,
                 int64_t *expires_at, int *status, int64_t now, bool visit)
{
    int rc = -ENOENT;

    if (!h->nsets || keylen > KEY_MAX_LEN ||
        !atomic_load_explicit(&h->enabled, memory_order_acquire))
        return -ENOENT;
    uint64_t hash = hash_of(key, keylen);
    struct hot_set *set = set_of(h, hash);
    pthread_mutex_lock(&set->lock);
    int w = find(set, tag_of(hash), key, keylen);
    if (w >= 0) {
        struct hot_entry *e = set->entries[w];
        if (now <= e->stale_at && (size_t)e->urllen < cap) {
            rc = 0;
            /* In the second half of its age, the first caller has it read again, off the
             * request path, and everyone is answered from the entry meanwhile. Read again
             * only once stale, every link requested less often than its age (most of a
             * skewed traffic's links) would cost one request a Redis round trip per age. */
            if (now > e->refresh_at && !e->refreshing) {
                e->refreshing = true;
                rc = HOTCACHE_REFRESH;
            }
            memcpy(url, e->data + e->keylen + 1, (size_t)e->urllen + 1);
            *expires_at = e->expires_at;
            *status = e->status;
            if (visit && (!e->expires_at || e->expires_at > now) && e->visits < UINT32_MAX) {
                e->visits++;
                set->counted |= (uint8_t)(1u << w);
            }
            set->referenced |= (uint8_t)(1u << w);
        }
    }
    pthread_mutex_unlock(&set->lock);
    return rc;
}

uint64_t hotcache_epoch(struct hotcache *h)
{
    return atomic_load_explicit(&h->epoch, memory_order_acquire);
}

/* CLOCK: the first way not referenced since the hand last passed it. */
static int victim(struct hot_set *set)
{
    for (int w = 0; w < HOT_WAYS; w++)
        if (!set->entries[w])
            return w;
    for (;;) {
        int w = set->hand;
        set->hand = (uint8_t)((set->hand + 1) % HOT_WAYS);
        if (!(set->referenced & (1u << w)))
            return w;
        set->referenced &= (uint8_t) ~(1u << w);
    }
}

void hotcache_put(struct hotcache *h, uint64_t epoch, const char *key, size_t keylen,
                  const char *url, int64_t expires_at, int status, int64_t now)
{
    size_t urllen = strlen(url);

    if (!h->nsets || keylen > KEY_MAX_LEN || urllen > UINT16_MAX ||
        !atomic_load_explicit(&h->enabled, memory_order_acquire))
        return;
    struct hot_entry *e = malloc(sizeof(*e) + keylen + urllen + 2);
    if (!e)
        return;
    uint64_t hash = hash_of(key, keylen);
    uint16_t tag = tag_of(hash);
    e->expires_at = expires_at;
    int64_t age = max_age_of(h, hash);
    e->refresh_at = now + age / 2;
    e->stale_at = now + age;
    e->keylen = (uint16_t)keylen;
    e->urllen = (uint16_t)urllen;
    e->visits = 0;
    e->status = (uint16_t)status;
    e->refreshing = false;
    memcpy(e->data, key, keylen);
    e->data[keylen] = '\0';
    memcpy(e->data + keylen + 1, url, urllen + 1);

    struct hot_set *set = set_of(h, hash);
    pthread_mutex_lock(&set->lock);
    /* Checked under the set's lock: an eviction advances the epoch before it takes this lock,
     * so either we see the new epoch here, or the eviction runs after us and removes e. */
    if (atomic_load_explicit(&h->epoch, memory_order_acquire) != epoch ||
        !atomic_load_explicit(&h->enabled, memory_order_acquire)) {
        pthread_mutex_unlock(&set->lock);
        free(e);
        return;
    }
    int w = find(set, tag, key, keylen);
    if (w < 0)
        w = victim(set);
    if (set->entries[w])
        drop(h, set->entries[w]);
    else
        atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    set->entries[w] = e;
    set->tags[w] = tag;
    set->referenced &= (uint8_t) ~(1u << w);
    set->counted &= (uint8_t) ~(1u << w);
    pthread_mutex_unlock(&set->lock);
}

static void drop_key(struct hotcache *h, const char *key, size_t keylen, bool changed)
{
    if (!h->nsets || keylen > KEY_MAX_LEN)
        return;
    if (changed)
        atomic_fetch_add_explicit(&h->epoch, 1, memory_order_acq_rel);
    uint64_t hash = hash_of(key, keylen);
    struct hot_set *set = set_of(h, hash);
    pthread_mutex_lock(&set->lock);
    int w = find(set, tag_of(hash), key, keylen);
    if (w >= 0) {
        drop(h, set->entries[w]);
        set->entries[w] = NULL;
        set->tags[w] = 0;
        set->referenced &= (uint8_t) ~(1u << w);
        set->counted &= (uint8_t) ~(1u << w);
        atomic_fetch_sub_explicit(&h->count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&set->lock);
}

void hotcache_evict(struct hotcache *h, const char *key, size_t keylen)
{
    drop_key(h, key, keylen, true);
}

void hotcache_forget(struct hotcache *h, const char *key, size_t keylen)
{
    drop_key(h, key, keylen, false);
}

void hotcache_set_enabled(struct hotcache *h, bool enabled)
{
    if (!h->nsets)
        return;
    /* Off first, then empty: no put can slip in behind the sweep (puts re-check both under
     * the set lock). Turning on also sweeps, since fills may have raced the last turn-off. */
    atomic_store_explicit(&h->enabled, false, memory_order_release);
    atomic_fetch_add_explicit(&h->epoch, 1, memory_order_acq_rel);
    for (size_t i = 0; i < h->nsets; i++) {
        pthread_mutex_lock(&h->sets[i].lock);
        clear_set(h, &h->sets[i]);
        pthread_mutex_unlock(&h->sets[i].lock);
    }
    if (enabled)
        atomic_store_explicit(&h->enabled, true, memory_order_release);
}

size_t hotcache_due(struct hotcache *h, int64_t now, size_t *cursor, size_t *sets,
                    char (*keys)[KEY_MAX_LEN + 1], size_t max)
{
    size_t n = 0;

    if (!h->nsets || !atomic_load_explicit(&h->enabled, memory_order_acquire)) {
        *sets = 0;
        return 0;
    }
    for (; *sets > 0 && max - n >= HOT_WAYS; (*sets)--) {
        struct hot_set *set = &h->sets[*cursor & (h->nsets - 1)];
        *cursor = (*cursor + 1) & (h->nsets - 1);
        pthread_mutex_lock(&set->lock);
        for (int w = 0; w < HOT_WAYS; w++) {
            struct hot_entry *e = set->entries[w];
            if (e && !e->refreshing && now > e->refresh_at && now <= e->stale_at) {
                e->refreshing = true;
                memcpy(keys[n], e->data, (size_t)e->keylen + 1);
                n++;
            }
        }
        pthread_mutex_unlock(&set->lock);
    }
    return n;
}

size_t hotcache_sets(const struct hotcache *h)
{
    return h->nsets;
}

int64_t hotcache_max_age(const struct hotcache *h)
{
    return h->max_age;
}

void hotcache_harvest(struct hotcache *h)
{
    if (!h->visits_fn)
        return;
    for (size_t i = 0; i < h->nsets; i++) {
        struct hot_set *set = &h->sets[i];
        pthread_mutex_lock(&set->lock);
        /* Only the entries that were visited are read: most of a million are not, each
         * flush, and reading each would cost a cache miss. */
        for (int w = 0; set->counted && w < HOT_WAYS; w++) {
            struct hot_entry *e = set->entries[w];
            if ((set->counted & (1u << w)) && e->visits) {
                h->visits_fn(h->visits_ctx, e->data, e->keylen, e->visits);
                e->visits = 0;
            }
        }
        set->counted = 0;
        pthread_mutex_unlock(&set->lock);
    }
}

void hotcache_suspend(struct hotcache *h)
{
    if (!h->nsets)
        return;
    /* Off, then a new epoch: a put that read Redis before this and comes after the resume is
     * dropped, as it may have raced a change whose eviction we have not heard yet. */
    atomic_store_explicit(&h->enabled, false, memory_order_release);
    atomic_fetch_add_explicit(&h->epoch, 1, memory_order_acq_rel);
}

void hotcache_resume(struct hotcache *h)
{
    if (h->nsets)
        atomic_store_explicit(&h->enabled, true, memory_order_release);
}

bool hotcache_enabled(struct hotcache *h)
{
    return h->nsets && atomic_load_explicit(&h->enabled, memory_order_acquire);
}

size_t hotcache_count(struct hotcache *h)
{
    return atomic_load_explicit(&h->count, memory_order_relaxed);
}
