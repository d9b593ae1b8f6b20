/* Visit analytics: per-thread buffers, the analytics thread, its sums (see analytics.h). */
#include "analytics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bgthread.h"
#include "deadline.h"
#include "keyhash.h"
#include "keyspace.h"
#include "log.h"
#include "metrics.h"
#include "referrer.h"
#include "statsquery.h"
#include "store.h"
#include "uaclass.h"

/* A request thread's buffer: records one after another. 1 MiB holds about 4,000 visits with
 * long headers; the analytics thread empties it every DRAIN_MS, so a thread would have to
 * redirect over 150,000 times a second to fill it while that thread keeps up. It does not
 * always: on two loaded CPUs it was seen away for a quarter of a second (growing its sums
 * table, or not given a CPU), while each request thread wrote 4 MB a second, and a full
 * buffer dropped thousands of visits. So a full buffer doubles, up to BUF_MAX (about 70,000
 * visits, seconds of a thread's redirects), and the analytics thread gives it back to
 * BUF_BYTES once it has caught up. */
#define BUF_BYTES (1024 * 1024)
#define BUF_MAX   (16 * 1024 * 1024)
#define DRAIN_MS  25
/* Rows summed between flushes (link x hour x visitor profile), about 80 bytes each; a batch
 * half this full is handed to the writer early. Past it (the writer still busy with the one
 * before, or PostgreSQL away), visits are dropped and counted in /metrics rather than let
 * memory grow. */
#define MAX_ROWS 262144
/* A write that failed is tried again after this long. */
#define RETRY_MS 1000
/* Recent rows rolled into the sums per dimension value per statement (store_roll_stats), and how
 * often the writer looks whether an hour has ended when it has nothing to write, or whether
 * the server rolling just then is done. A statement that failed (on a bloated table, one of
 * 5,000 rows can outrun the statement timeout, and be retried the same way for ever) is tried
 * again with half as many rows, down to ROLL_ROWS_MIN; each that succeeds takes a quarter
 * more again. */
#define ROLL_ROWS     5000
#define ROLL_ROWS_MIN 100
#define ROLL_CHECK_MS 1000
/* Distinct User-Agents whose class is remembered; the cache starts over when full. */
#define UA_CACHE 4096
/* Unknown keys remembered per flush, and sent per flush (the most visited). */
#define UNKNOWN_KEYS      1024
#define UNKNOWN_KEYS_SENT 100

/* A record's fixed part; key, Referer and User-Agent follow it. */
struct rec {
    int64_t t;
    unsigned char addr[16];
    uint8_t has_addr;
    uint8_t unknown;
    uint8_t count; /* also a visit for the link's count (analytics_visit) */
    uint8_t keylen;
    uint16_t reflen;
    uint16_t ualen;
};

struct slot {
    pthread_mutex_t lock;
    unsigned char *data, *spare;
    size_t len, cap, spare_cap;
    char pad[64]; /* slots of different threads on different cache lines */
};

/* The sums: open addressing under a keyed hash (keys and Referers are chosen by clients). A
 * row's values are a visitor profile: the six dimensions' values joined by STATS_PROFILE_SEP,
 * as visit_recent keeps them (so that bytewise order is the order of the values in turn). */
struct row {
    int64_t hour;
    int64_t visits; /* 0: empty */
    uint32_t key_off, val_off;
    uint32_t uncounted; /* of the visits, those for the links' counts */
    /* row_hash's, kept: growing the table then moves rows without hashing their strings
     * again (a table of 131,000 rows took 230 ms to grow on a loaded machine, hashing them
     * all, with the request threads' buffers filling meanwhile), and a probe compares it
     * before the strings. */
    uint32_t hash;
    uint8_t keylen;
    uint16_t vallen;
};

#define PACKED_MAX (STATS_DIMS * (STATS_NAME_MAX + 1))

struct rows {
    struct row *slots;
    size_t cap, used;
    char *arena;
    size_t arena_len, arena_cap;
};

struct ua_entry {
    char *ua; /* NULL: empty */
    size_t len;
    struct ua_info info;
};

struct unknown_entry {
    int64_t day;
    int64_t visits; /* 0: empty */
    uint8_t keylen;
    char key[KEY_MAX_LEN + 1];
};

/* What one flush writes: the sums, and the visits to unknown keys. */
struct batch {
    struct rows rows;
    struct unknown_entry unknown[UNKNOWN_KEYS];
    int64_t unknown_days[4], unknown_day_visits[4];
    size_t nunknown_days;
};

struct analytics {
    struct slot *slots;
    unsigned nslots;
    unsigned flush_ms;
    struct store *store; /* the writer thread's */
    struct metrics *metrics;
    struct uaclass *uaclass;
    MMDB_s mmdb;
    bool has_mmdb;
    /* The analytics thread's own: it classifies into cur. */
    struct batch *cur;
    struct ua_entry ua_cache[UA_CACHE];
    size_t ua_used;
    /* Start and stop of the analytics thread. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping;
    /* The writer thread writes out while out_ready, then empties it; the analytics thread
     * swaps cur and out when it is not. A slow write never stops the classifying, so the
     * request threads' buffers never fill while PostgreSQL is busy. */
    struct batch *out;
    pthread_mutex_t wlock;
    pthread_cond_t wwake;
    pthread_t writer;
    bool writer_started, out_ready, wstop;
    /* The writer's rolling of past hours into days and blocks: every hour before rolled_before
     * was found rolled; roll_more: a flush wrote to a past hour since (late visits, or a batch
     * held back while PostgreSQL was away). */
    int64_t rolled_before;
    long long roll_retry_at;
    bool roll_more;
    /* The roll in progress: the hours it moves (before roll_before, fixed for the whole roll,
     * as a key-ordered roll begun in one hour has not seen the next's) and the key it goes on
     * from; "" between rolls. */
    int64_t roll_before;
    char roll_from[KEY_MAX_LEN + 1];
    size_t roll_rows; /* per statement, now */
    /* The writer's: a flush's rows in the order they are written, kept for the next. */
    struct stats_row *sorted;
    size_t sorted_cap;
};

static int rows_init(struct rows *t, size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->slots = calloc(cap, sizeof(*t->slots));
    t->arena_cap = 64 * 1024;
    t->arena = malloc(t->arena_cap);
    if (!t->slots || !t->arena) {
        free(t->slots);
        free(t->arena);
        memset(t, 0, sizeof(*t));
        return -ENOMEM;
    }
    t->cap = cap;
    return 0;
}

static void rows_release(struct rows *t)
{
    free(t->slots);
    free(t->arena);
    memset(t, 0, sizeof(*t));
}

/* Empties t for the next flush. The table and arena keep the size this flush needed: built
 * up again from 4,096 rows every flush, they were rehashed and copied at each doubling, and
 * their fresh pages faulted in, which cost more than the sums themselves. A table that was
 * used to less than an eighth of its size (the traffic fell) starts small again. */
static int rows_empty(struct rows *t)
{
    if (t->cap > 4096 && t->used * 8 < t->cap) {
        rows_release(t);
        return rows_init(t, 4096);
    }
    memset(t->slots, 0, t->cap * sizeof(*t->slots));
    t->used = 0;
    t->arena_len = 0;
    return 0;
}

/* Joins a profile's values (each cut to STATS_NAME_MAX) into out, NUL-terminated; returns its
 * length. A control character in a value (from a GeoIP database, say) becomes '?', so that
 * the separator splits every profile into exactly its six values. */
static size_t pack(const char *const vals[STATS_DIMS], char out[PACKED_MAX])
{
    size_t n = 0;
    for (int d = 0; d < STATS_DIMS; d++) {
        if (d)
            out[n++] = STATS_PROFILE_SEP;
        for (size_t i = 0; vals[d][i] && i < STATS_NAME_MAX; i++)
            out[n++] = (unsigned char)vals[d][i] < 0x20 ? '?' : vals[d][i];
    }
    out[n] = '\0';
    return n;
}

static uint32_t row_hash(const char *key, size_t keylen, int64_t hour, const char *val,
                         size_t vallen)
{
    char buf[KEY_MAX_LEN + sizeof(int64_t) + PACKED_MAX];
    size_t n = 0;
    memcpy(buf, key, keylen);
    n += keylen;
    memcpy(buf + n, &hour, sizeof(hour));
    n += sizeof(hour);
    memcpy(buf + n, val, vallen);
    n += vallen;
    return (uint32_t)keyhash(buf, n);
}

/* The row of (key, hour, val), whose row_hash is hash, or the empty slot where it goes. */
static struct row *rows_find(struct rows *t, uint32_t hash, const char *key, size_t keylen,
                             int64_t hour, const char *val, size_t vallen)
{
    size_t i = hash & (t->cap - 1);
    for (;;) {
        struct row *r = &t->slots[i];
        if (r->visits == 0 ||
            (r->hash == hash && r->hour == hour && r->keylen == keylen && r->vallen == vallen &&
             memcmp(t->arena + r->key_off, key, keylen) == 0 &&
             memcmp(t->arena + r->val_off, val, vallen) == 0))
            return r;
        i = (i + 1) & (t->cap - 1);
    }
}

static int arena_put(struct rows *t, const char *s, size_t len, uint32_t *off)
{
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap * 2;
        while (cap < t->arena_len + len + 1)
            cap *= 2;
        char *p = realloc(t->arena, cap);
        if (!p)
            return -ENOMEM;
        t->arena = p;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = '\0';
    *off = (uint32_t)t->arena_len;
    t->arena_len += len + 1;
    return 0;
}

static int rows_grow(struct rows *t)
{
    struct rows bigger = *t;
    bigger.cap = t->cap * 2;
    bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
    if (!bigger.slots)
        return -ENOMEM;
    /* The rows are distinct: each goes to the first empty slot from its home. */
    for (size_t i = 0; i < t->cap; i++) {
        const struct row *r = &t->slots[i];
        if (!r->visits)
            continue;
        size_t j = r->hash & (bigger.cap - 1);
        while (bigger.slots[j].visits)
            j = (j + 1) & (bigger.cap - 1);
        bigger.slots[j] = *r;
    }
    free(t->slots);
    *t = bigger;
    return 0;
}

/* Adds n visits to one row (val: a packed profile of vallen bytes), u of them for the link's
 * count; -ENOSPC when the table is full. */
static int rows_add(struct rows *t, const char *key, size_t keylen, int64_t hour, const char *val,
                    size_t vallen, int64_t n, uint32_t u)
{
    uint32_t hash = row_hash(key, keylen, hour, val, vallen);
    struct row *r = rows_find(t, hash, key, keylen, hour, val, vallen);

    if (r->visits == 0) {
        if (t->used >= MAX_ROWS)
            return -ENOSPC;
        if ((t->used + 1) * 2 > t->cap) {
            if (rows_grow(t) < 0)
                return -ENOMEM;
            r = rows_find(t, hash, key, keylen, hour, val, vallen);
        }
        if (arena_put(t, key, keylen, &r->key_off) < 0 ||
            arena_put(t, val, vallen, &r->val_off) < 0)
            return -ENOMEM;
        r->hour = hour;
        r->hash = hash;
        r->keylen = (uint8_t)keylen;
        r->vallen = (uint16_t)vallen;
        t->used++;
    }
    r->visits += n;
    r->uncounted += u;
    return 0;
}

static struct batch *batch_new(void)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (b && rows_init(&b->rows, 4096) < 0) {
        free(b);
        return NULL;
    }
    return b;
}

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    rows_release(&b->rows);
    free(b);
}

struct analytics *analytics_new(struct store *store, unsigned nslots, unsigned flush_ms,
                                const char *geoip_db, struct metrics *metrics, char *err,
                                size_t errlen)
{
    struct analytics *a = calloc(1, sizeof(*a));
    size_t failed = 0;

    if (!a) {
        store_free(store);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->store = store;
    a->metrics = metrics;
    a->flush_ms = flush_ms;
    a->roll_rows = ROLL_ROWS;
    a->nslots = nslots;
    a->slots = calloc(nslots, sizeof(*a->slots));
    a->cur = batch_new();
    a->out = batch_new();
    if (!a->slots || !a->cur || !a->out || pthread_mutex_init(&a->wlock, NULL) != 0 ||
        pthread_cond_init(&a->wwake, NULL) != 0 || pthread_mutex_init(&a->lock, NULL) != 0 ||
        pthread_cond_init(&a->wake, NULL) != 0)
        goto nomem;
    for (unsigned i = 0; i < nslots; i++) {
        a->slots[i].data = malloc(BUF_BYTES);
        a->slots[i].spare = malloc(BUF_BYTES);
        a->slots[i].cap = a->slots[i].spare_cap = BUF_BYTES;
        if (!a->slots[i].data || !a->slots[i].spare ||
            pthread_mutex_init(&a->slots[i].lock, NULL) != 0)
            goto nomem;
    }
    a->uaclass = uaclass_new(&failed);
    if (!a->uaclass)
        goto nomem;
    if (failed)
        log_warn("analytics: %zu crawler patterns did not compile and are not matched", failed);
    if (geoip_db && geoip_db[0]) {
        int rc = MMDB_open(geoip_db, MMDB_MODE_MMAP, &a->mmdb);
        if (rc != MMDB_SUCCESS) {
            snprintf(err, errlen, "GEOIP_DB '%s' cannot be opened: %s", geoip_db,
                     MMDB_strerror(rc));
            analytics_free(a);
            return NULL;
        }
        a->has_mmdb = true;
    }
    return a;
nomem:
    snprintf(err, errlen, "out of memory");
    analytics_free(a);
    return NULL;
}

/* A visit that cannot be summed is lost to the link's count too when it was to count there. */
static void dropped(struct analytics *a, const struct rec *h)
{
    metrics_inc(&a->metrics->analytics_dropped);
    if (h->count)
        metrics_inc(&a->metrics->visits_dropped);
}

static void append(struct analytics *a, unsigned slot, const struct rec *h, const char *key,
                   const char *ref, const char *ua)
{
    struct slot *s;
    size_t need = sizeof(*h) + h->keylen + h->reflen + h->ualen;

    if (slot >= a->nslots)
        return;
    s = &a->slots[slot];
    pthread_mutex_lock(&s->lock);
    if (s->len + need > s->cap) {
        unsigned char *bigger = s->cap < BUF_MAX ? realloc(s->data, s->cap * 2) : NULL;
        if (!bigger) {
            pthread_mutex_unlock(&s->lock);
            dropped(a, h);
            return;
        }
        s->data = bigger;
        s->cap *= 2;
    }
    unsigned char *p = s->data + s->len;
    memcpy(p, h, sizeof(*h));
    p += sizeof(*h);
    memcpy(p, key, h->keylen);
    p += h->keylen;
    if (h->reflen)
        memcpy(p, ref, h->reflen);
    p += h->reflen;
    if (h->ualen)
        memcpy(p, ua, h->ualen);
    s->len += need;
    pthread_mutex_unlock(&s->lock);
}

static uint16_t cut(const char *s, size_t max)
{
    return s ? (uint16_t)strnlen(s, max) : 0;
}

void analytics_visit(struct analytics *a, unsigned slot, int64_t now, const char *key,
                     size_t keylen, const unsigned char *addr, const char *referer, const char *ua,
                     bool count)
{
    struct rec h = {.t = now, .count = count};

    if (!a || keylen == 0 || keylen > KEY_MAX_LEN)
        return;
    h.keylen = (uint8_t)keylen;
    if (addr) {
        memcpy(h.addr, addr, 16);
        h.has_addr = 1;
    }
    h.reflen = cut(referer, ANALYTICS_REFERER_MAX);
    h.ualen = cut(ua, ANALYTICS_UA_MAX);
    append(a, slot, &h, key, referer, ua);
}

void analytics_unknown(struct analytics *a, unsigned slot, int64_t now, const char *key,
                       size_t keylen)
{
    struct rec h = {.t = now, .unknown = 1};

    if (!a || keylen == 0 || keylen > KEY_MAX_LEN)
        return;
    h.keylen = (uint8_t)keylen;
    append(a, slot, &h, key, NULL, NULL);
}

/* ------------------------------------------------------------------ the analytics thread */

static const struct ua_info *classify_ua(struct analytics *a, const char *ua, size_t len)
{
    size_t i = (size_t)keyhash(ua, len) & (UA_CACHE - 1);

    /* A short probe; a full cache starts over (the next User-Agents are the ones in use). */
    for (size_t probe = 0; probe < 8; probe++) {
        struct ua_entry *e = &a->ua_cache[(i + probe) & (UA_CACHE - 1)];
        if (e->ua && e->len == len && memcmp(e->ua, ua, len) == 0)
            return &e->info;
        if (!e->ua) {
            if (a->ua_used >= UA_CACHE / 2)
                break;
            e->ua = malloc(len + 1);
            if (!e->ua)
                break;
            memcpy(e->ua, ua, len);
            e->ua[len] = '\0';
            e->len = len;
            uaclass_classify(a->uaclass, ua, len, &e->info);
            a->ua_used++;
            return &e->info;
        }
    }
    for (size_t k = 0; k < UA_CACHE; k++) {
        free(a->ua_cache[k].ua);
        a->ua_cache[k].ua = NULL;
    }
    a->ua_used = 0;
    struct ua_entry *e = &a->ua_cache[i];
    e->ua = malloc(len + 1);
    if (!e->ua) {
        static struct ua_info other = {"Other", "Other", UA_OTHER, false};
        return &other;
    }
    memcpy(e->ua, ua, len);
    e->ua[len] = '\0';
    e->len = len;
    uaclass_classify(a->uaclass, ua, len, &e->info);
    a->ua_used++;
    return &e->info;
}

static void country_of(struct analytics *a, const struct rec *h, char out[3])
{
    struct sockaddr_storage ss;
    MMDB_entry_data_s data;
    int mmdb = 0;
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memcpy(out, "", 1);
    if (!a->has_mmdb || !h->has_addr)
        return;
    memset(&ss, 0, sizeof(ss));
    if (memcmp(h->addr, v4_mapped, 12) == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, h->addr + 12, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, h->addr, 16);
    }
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&a->mmdb, (struct sockaddr *)&ss, &mmdb);
    if (mmdb != MMDB_SUCCESS || !res.found_entry)
        return;
    /* ip-location-db names it country_code; MaxMind's own databases country.iso_code. */
    if (MMDB_get_value(&res.entry, &data, "country_code", NULL) != MMDB_SUCCESS || !data.has_data)
        if (MMDB_get_value(&res.entry, &data, "country", "iso_code", NULL) != MMDB_SUCCESS)
            return;
    if (!data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2)
        return;
    for (int i = 0; i < 2; i++) {
        char c = data.utf8_string[i];
        if (c < 'A' || c > 'Z')
            return;
        out[i] = c;
    }
    out[2] = '\0';
}

static void add_unknown(struct analytics *a, const struct rec *h, const char *key)
{
    struct batch *u = a->cur;
    int64_t day = stats_floor(h->t, STATS_DAY) / STATS_DAY;
    size_t d;

    metrics_inc(&a->metrics->unknown_key_visits);
    for (d = 0; d < u->nunknown_days && u->unknown_days[d] != day; d++)
        ;
    if (d == u->nunknown_days) {
        if (d == sizeof(u->unknown_days) / sizeof(u->unknown_days[0]))
            return;
        u->unknown_days[d] = day;
        u->unknown_day_visits[d] = 0;
        u->nunknown_days++;
    }
    u->unknown_day_visits[d]++;
    size_t i = (size_t)keyhash(key, h->keylen) & (UNKNOWN_KEYS - 1);
    for (size_t probe = 0; probe < 16; probe++) {
        struct unknown_entry *e = &u->unknown[(i + probe) & (UNKNOWN_KEYS - 1)];
        if (e->visits == 0) {
            e->day = day;
            e->keylen = h->keylen;
            memcpy(e->key, key, h->keylen);
            e->key[h->keylen] = '\0';
            e->visits = 1;
            return;
        }
        if (e->day == day && e->keylen == h->keylen && memcmp(e->key, key, h->keylen) == 0) {
            e->visits++;
            return;
        }
    }
    /* No room near its home: counted in the day's total only. */
}

static void classify(struct analytics *a, const struct rec *h, const char *key, const char *ref,
                     const char *ua)
{
    char host[REFERRER_HOST_MAX + 1], country[3], packed[PACKED_MAX];
    int64_t hour = stats_floor(h->t, STATS_HOUR);
    const struct ua_info *info = classify_ua(a, ua, h->ualen);
    const char *values[STATS_DIMS];
    struct rows *t = &a->cur->rows;

    if (!t->slots && rows_init(t, 4096) < 0) {
        dropped(a, h);
        return;
    }
    referrer_host(h->reflen ? ref : NULL, h->reflen, host);
    country_of(a, h, country);
    values[DIM_BOT - 1] = info->bot ? "bot" : "human";
    values[DIM_REFERRER - 1] = host;
    values[DIM_COUNTRY - 1] = country[0] ? country : "unknown";
    values[DIM_BROWSER - 1] = info->browser;
    values[DIM_OS - 1] = info->os;
    values[DIM_DEVICE - 1] = uaclass_device_name(info->device);
    size_t len = pack(values, packed);
    if (rows_add(t, key, h->keylen, hour, packed, len, 1, h->count) < 0) {
        dropped(a, h);
        return;
    }
    metrics_inc(&a->metrics->analytics_visits);
}

/* Takes every slot's buffer and classifies what it holds. */
static void drain(struct analytics *a)
{
    for (unsigned i = 0; i < a->nslots; i++) {
        struct slot *s = &a->slots[i];
        unsigned char *full;
        size_t len;

        pthread_mutex_lock(&s->lock);
        full = s->data;
        len = s->len;
        s->data = s->spare;
        s->len = 0;
        s->spare = full;
        size_t cap = s->cap;
        s->cap = s->spare_cap;
        s->spare_cap = cap;
        pthread_mutex_unlock(&s->lock);
        /* The spare is ours until the next drain swaps it back: only this thread drains. */
        for (size_t off = 0; off < len;) {
            struct rec h;
            memcpy(&h, full + off, sizeof(h));
            const char *key = (const char *)full + off + sizeof(h);
            const char *ref = key + h.keylen;
            const char *ua = ref + h.reflen;
            if (h.unknown)
                add_unknown(a, &h, key);
            else
                classify(a, &h, key, ref, ua);
            off += sizeof(h) + h.keylen + h.reflen + h.ualen;
        }
        /* Grown while this thread was away, and little in it now: back to its usual size. */
        if (s->spare_cap > BUF_BYTES && len <= BUF_BYTES / 2) {
            unsigned char *smaller = realloc(full, BUF_BYTES);
            if (smaller) {
                s->spare = smaller;
                s->spare_cap = BUF_BYTES;
            }
        }
    }
}

static int by_row(const void *x, const void *y)
{
    const struct stats_row *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    if (c)
        return c;
    if (a->hour != b->hour)
        return a->hour < b->hour ? -1 : 1;
    return strcmp(a->profile, b->profile);
}

static int by_visits_desc(const void *x, const void *y)
{
    const struct unknown_entry *a = x, *b = y;
    return a->visits < b->visits ? 1 : a->visits > b->visits ? -1 : 0;
}

/* Writes b's visits to unknown keys; on success they are gone from b. */
static int write_unknown(struct analytics *a, struct batch *b)
{
    struct unknown_row sent[UNKNOWN_KEYS_SENT];
    struct unknown_entry *top;
    size_t n = 0;
    int rc;

    if (b->nunknown_days == 0)
        return 0;
    /* The most visited first, from a copy: should the write fail, the table keeps its order
     * for the next attempt. */
    top = malloc(sizeof(b->unknown));
    if (!top)
        return -ENOMEM;
    memcpy(top, b->unknown, sizeof(b->unknown));
    qsort(top, UNKNOWN_KEYS, sizeof(top[0]), by_visits_desc);
    for (size_t i = 0; i < UNKNOWN_KEYS && n < UNKNOWN_KEYS_SENT && top[i].visits; i++)
        sent[n++] =
            (struct unknown_row){.day = top[i].day, .key = top[i].key, .visits = top[i].visits};
    rc = store_add_unknown(a->store, b->unknown_days, b->unknown_day_visits, b->nunknown_days, sent,
                           n);
    free(top);
    if (rc < 0) {
        log_warn("analytics: visits to unknown keys not written: %s", store_error(a->store));
        return rc;
    }
    memset(b->unknown, 0, sizeof(b->unknown));
    b->nunknown_days = 0;
    return 0;
}

/* Rows per statement: a flush can carry 260,000 rows, and one statement writing them all can
 * wait on another server's writes past the statement timeout; then the whole batch would be
 * retried, growing each time, until the table filled and visits were dropped. */
#define CHUNK_ROWS 2000

/* Writes b's sums in chunks; on success they are gone from b, on failure b keeps exactly the
 * rows not yet written (those written are committed: writing them again would count them
 * twice). */
static int write_rows(struct analytics *a, struct batch *b)
{
    struct rows *t = &b->rows;
    struct rows rest;
    struct stats_row *out;
    size_t n = 0, done = 0;
    int rc = 0;

    if (!t->slots || t->used == 0)
        return 0;
    if (a->sorted_cap < t->used) {
        out = realloc(a->sorted, t->used * sizeof(*out));
        if (!out)
            return -ENOMEM;
        a->sorted = out;
        a->sorted_cap = t->used;
    }
    out = a->sorted;
    for (size_t i = 0; i < t->cap; i++) {
        const struct row *r = &t->slots[i];
        if (!r->visits)
            continue;
        out[n] = (struct stats_row){.key = t->arena + r->key_off,
                                    .hour = r->hour,
                                    .profile = t->arena + r->val_off,
                                    .visits = r->visits,
                                    .uncounted = r->uncounted};
        n++;
    }
    /* In one order on every server, so that concurrent flushes lock rows in the same order. */
    qsort(out, n, sizeof(*out), by_row);
    int64_t this_hour = stats_floor(time(NULL), STATS_HOUR);
    for (size_t i = 0; i < n && !a->roll_more; i++)
        a->roll_more = out[i].hour < this_hour;
    while (done < n) {
        size_t m = n - done < CHUNK_ROWS ? n - done : CHUNK_ROWS;
        if ((rc = store_add_stats(a->store, out + done, m)) < 0)
            break;
        done += m;
    }
    if (rc < 0) {
        log_warn("analytics: %zu rows not written, kept for another try: %s", n - done,
                 store_error(a->store));
        if (done == 0)
            goto out;
        /* out points into t's arena, so the rest is copied before t goes. A new table is at
         * most as full as t was, so rows_add fails only for want of memory. */
        if (rows_init(&rest, 4096) < 0) {
            log_error("analytics: out of memory, %zu rows lost", n - done);
            rows_release(t);
            goto out;
        }
        for (size_t i = done; i < n; i++) {
            if (rows_add(&rest, out[i].key, strlen(out[i].key), out[i].hour, out[i].profile,
                         strlen(out[i].profile), out[i].visits, (uint32_t)out[i].uncounted) < 0) {
                log_error("analytics: out of memory, %zu rows lost", n - i);
                break;
            }
        }
        rows_release(t);
        *t = rest;
        goto out;
    }
    if (rows_empty(t) < 0)
        log_error("analytics: out of memory");
out:
    return rc;
}

/* Rolls one statement's worth of past hours into the days and blocks when some may be left
 * (store_roll_stats). True when it rolled a full statement's worth: there may be more. */
static bool roll_some(struct analytics *a)
{
    int64_t before = stats_floor(time(NULL), STATS_HOUR);
    long long now = deadline_now_ms();
    size_t n = 0, limit = a->roll_rows;
    bool busy = false;

    if (now < a->roll_retry_at || (!a->roll_more && before <= a->rolled_before))
        return false;
    if (!a->roll_from[0])
        a->roll_before = before;
    if (store_roll_stats(a->store, a->roll_before, limit, a->roll_from, &n, &busy) < 0) {
        a->roll_rows = limit / 2 < ROLL_ROWS_MIN ? ROLL_ROWS_MIN : limit / 2;
        log_warn("analytics: rolling past hours into days, tried again in %d ms with %zu rows: %s",
                 RETRY_MS, a->roll_rows, store_error(a->store));
        a->roll_retry_at = now + RETRY_MS;
        return false;
    }
    if (busy) {
        /* Another server's roll: this one goes on where it was once that one is done. */
        a->roll_retry_at = now + ROLL_CHECK_MS;
        return false;
    }
    a->roll_rows = limit + limit / 4 > ROLL_ROWS ? ROLL_ROWS : limit + limit / 4;
    if (n == limit)
        return true;
    /* The next roll starts from the first key again: a late flush may have written behind. */
    a->roll_from[0] = '\0';
    a->roll_more = false;
    a->rolled_before = a->roll_before;
    return false;
}

static void *writer_thread(void *arg)
{
    struct analytics *a = arg;
    struct timespec until;

    pthread_mutex_lock(&a->wlock);
    for (;;) {
        /* Between batches, which come first, the past hours are rolled. */
        while (!a->out_ready && !a->wstop) {
            pthread_mutex_unlock(&a->wlock);
            bool more = roll_some(a);
            pthread_mutex_lock(&a->wlock);
            if (!more && !a->out_ready && !a->wstop) {
                deadline_after(CLOCK_REALTIME, ROLL_CHECK_MS, &until);
                pthread_cond_timedwait(&a->wwake, &a->wlock, &until);
            }
        }
        if (!a->out_ready)
            break;
        pthread_mutex_unlock(&a->wlock);
        int rc = write_unknown(a, a->out);
        if (write_rows(a, a->out) < 0)
            rc = -EIO;
        pthread_mutex_lock(&a->wlock);
        if (rc == 0 || a->wstop) {
            if (rc < 0)
                log_error("analytics: stopping with visits that could not be written");
            a->out_ready = false;
            continue;
        }
        deadline_after(CLOCK_REALTIME, RETRY_MS, &until);
        pthread_cond_timedwait(&a->wwake, &a->wlock, &until);
    }
    pthread_mutex_unlock(&a->wlock);
    return NULL;
}

/* Hands what cur holds to the writer, unless it is still busy with the last batch (then
 * false). */
static bool hand_over(struct analytics *a)
{
    bool done = false;

    pthread_mutex_lock(&a->wlock);
    if (!a->out_ready) {
        struct batch *b = a->out;
        a->out = a->cur;
        a->cur = b;
        a->out_ready = true;
        pthread_cond_signal(&a->wwake);
        done = true;
    }
    pthread_mutex_unlock(&a->wlock);
    return done;
}

static void *analytics_thread(void *arg)
{
    struct analytics *a = arg;
    long long next_flush = deadline_now_ms() + a->flush_ms;
    struct timespec until;

    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        deadline_after(CLOCK_REALTIME, DRAIN_MS, &until);
        pthread_cond_timedwait(&a->wake, &a->lock, &until);
        pthread_mutex_unlock(&a->lock);
        drain(a);
        /* Due, or filling up: written now if the writer is free, else at the next look. */
        if ((deadline_now_ms() >= next_flush || a->cur->rows.used >= MAX_ROWS / 2) && hand_over(a))
            next_flush = deadline_now_ms() + a->flush_ms;
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

int analytics_start(struct analytics *a)
{
    int rc = bgthread_start(&a->writer, "analytics-write", writer_thread, a);
    if (rc < 0)
        return rc;
    a->writer_started = true;
    rc = bgthread_start(&a->thread, "analytics", analytics_thread, a);
    if (rc < 0)
        return rc;
    a->started = true;
    return 0;
}

void analytics_free(struct analytics *a)
{
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->lock);
        a->stopping = true;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
    }
    /* The writer finishes the batch it has (one more try if it is failing), then stops. */
    if (a->writer_started) {
        pthread_mutex_lock(&a->wlock);
        a->wstop = true;
        pthread_cond_signal(&a->wwake);
        pthread_mutex_unlock(&a->wlock);
        pthread_join(a->writer, NULL);
    }
    /* What is still buffered is written here, once: the writer is gone. */
    if (a->started) {
        drain(a);
        if (write_unknown(a, a->cur) < 0 || write_rows(a, a->cur) < 0)
            log_error("analytics: stopping with visits that could not be written");
    }
    for (unsigned i = 0; a->slots && i < a->nslots; i++) {
        free(a->slots[i].data);
        free(a->slots[i].spare);
        pthread_mutex_destroy(&a->slots[i].lock);
    }
    free(a->slots);
    for (size_t k = 0; k < UA_CACHE; k++)
        free(a->ua_cache[k].ua);
    batch_free(a->cur);
    batch_free(a->out);
    free(a->sorted);
    uaclass_free(a->uaclass);
    if (a->has_mmdb)
        MMDB_close(&a->mmdb);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->wlock);
    pthread_cond_destroy(&a->wwake);
    store_free(a->store);
    free(a);
}
