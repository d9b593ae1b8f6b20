/* Recent rows summed per dimension value, merged into the top lists (see statsrecent.h). */
#include "statsrecent.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "keyhash.h"

struct entry {
    uint64_t hash;
    int64_t visits;
    size_t off; /* of the value in the arena */
    size_t len;
    int dim;
};

struct stats_recent {
    struct entry *entries; /* in the order they came */
    size_t n, cap;
    uint32_t *index; /* open addressing: entry + 1, 0 empty; size a power of two */
    size_t index_cap;
    char *arena;
    size_t arena_len, arena_cap;
};

struct candidate {
    const char *name;
    int64_t visits;
};

struct stats_recent *stats_recent_new(void)
{
    return calloc(1, sizeof(struct stats_recent));
}

void stats_recent_free(struct stats_recent *r)
{
    if (!r)
        return;
    free(r->entries);
    free(r->index);
    free(r->arena);
    free(r);
}

static uint64_t hash_of(int dim, const char *value, size_t len)
{
    char buf[1 + STATS_NAME_MAX];
    if (len > STATS_NAME_MAX)
        len = STATS_NAME_MAX;
    buf[0] = (char)dim;
    memcpy(buf + 1, value, len);
    return keyhash(buf, 1 + len);
}

/* The slot of (dim, value) in the index: the entry's, or the empty one it would take. */
static uint32_t *slot_of(const struct stats_recent *r, uint64_t hash, int dim, const char *value,
                         size_t len)
{
    size_t mask = r->index_cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        uint32_t *s = &r->index[i];
        const struct entry *e = *s ? &r->entries[*s - 1] : NULL;
        if (!e || (e->hash == hash && e->dim == dim && e->len == len &&
                   memcmp(r->arena + e->off, value, len) == 0))
            return s;
    }
}

static int grow_index(struct stats_recent *r)
{
    size_t cap = r->index_cap ? r->index_cap * 2 : 256;
    uint32_t *index = calloc(cap, sizeof(*index));
    if (!index)
        return -ENOMEM;
    free(r->index);
    r->index = index;
    r->index_cap = cap;
    for (size_t i = 0; i < r->n; i++) {
        const struct entry *e = &r->entries[i];
        *slot_of(r, e->hash, e->dim, r->arena + e->off, e->len) = (uint32_t)(i + 1);
    }
    return 0;
}

static int add_value(struct stats_recent *r, int dim, const char *value, size_t len, int64_t visits)
{
    uint64_t hash;
    uint32_t *slot;

    if (len > STATS_NAME_MAX)
        len = STATS_NAME_MAX; /* as the top lists show names */
    hash = hash_of(dim, value, len);
    if ((r->n + 1) * 2 > r->index_cap && grow_index(r) < 0)
        return -ENOMEM;
    slot = slot_of(r, hash, dim, value, len);
    if (*slot) {
        r->entries[*slot - 1].visits += visits;
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct entry *p = realloc(r->entries, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        r->entries = p;
        r->cap = cap;
    }
    if (r->arena_len + len + 1 > r->arena_cap) {
        size_t cap = r->arena_cap ? r->arena_cap * 2 : 4096;
        while (cap < r->arena_len + len + 1)
            cap *= 2;
        char *p = realloc(r->arena, cap);
        if (!p)
            return -ENOMEM;
        r->arena = p;
        r->arena_cap = cap;
    }
    memcpy(r->arena + r->arena_len, value, len);
    r->arena[r->arena_len + len] = '\0';
    r->entries[r->n] =
        (struct entry){.hash = hash, .visits = visits, .off = r->arena_len, .len = len, .dim = dim};
    r->arena_len += len + 1;
    *slot = (uint32_t)++r->n;
    return 0;
}

int stats_recent_add(struct stats_recent *r, const char *profile, size_t len, int64_t visits)
{
    const char *cut[STATS_DIMS + 1];
    int found = 0;

    /* Checked whole first, so that a bad row adds nothing. */
    cut[0] = profile;
    for (size_t i = 0; i < len; i++) {
        if (profile[i] != STATS_PROFILE_SEP)
            continue;
        if (++found >= STATS_DIMS)
            return -EINVAL;
        cut[found] = profile + i + 1;
    }
    if (found != STATS_DIMS - 1)
        return -EINVAL;
    cut[STATS_DIMS] = profile + len + 1;
    for (int d = 0; d < STATS_DIMS; d++) {
        int rc = add_value(r, d + 1, cut[d], (size_t)(cut[d + 1] - 1 - cut[d]), visits);
        if (rc < 0)
            return rc;
    }
    return 0;
}

size_t stats_recent_count(const struct stats_recent *r)
{
    return r->n;
}

const char *stats_recent_value(const struct stats_recent *r, size_t i, int *dim)
{
    *dim = r->entries[i].dim;
    return r->arena + r->entries[i].off;
}

static int by_visits_then_name(const void *x, const void *y)
{
    const struct candidate *a = x, *b = y;
    if (a->visits != b->visits)
        return a->visits > b->visits ? -1 : 1;
    return strcmp(a->name, b->name);
}

int stats_recent_top(const struct stats_recent *r, int dim, const char *const *names,
                     const int64_t *sums, size_t n, struct stats_top *out)
{
    struct candidate *c = malloc((n + r->n + 1) * sizeof(*c));
    bool *merged = calloc(r->n + 1, sizeof(*merged));
    size_t nc = 0;
    int rc = -ENOMEM;

    memset(out, 0, sizeof(*out));
    if (!c || !merged)
        goto out;
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(names[i], STATS_NAME_MAX);
        int64_t visits = sums[i];
        if (r->n) {
            const uint32_t *s = slot_of(r, hash_of(dim, names[i], len), dim, names[i], len);
            if (*s && !merged[*s - 1]) {
                visits += r->entries[*s - 1].visits;
                merged[*s - 1] = true;
            }
        }
        c[nc++] = (struct candidate){.name = names[i], .visits = visits};
    }
    for (size_t i = 0; i < r->n; i++)
        if (r->entries[i].dim == dim && !merged[i])
            c[nc++] = (struct candidate){.name = r->arena + r->entries[i].off,
                                         .visits = r->entries[i].visits};
    qsort(c, nc, sizeof(*c), by_visits_then_name);
    for (size_t i = 0; i < nc && out->n < STATS_TOP_MAX; i++) {
        size_t len = strnlen(c[i].name, STATS_NAME_MAX);
        memcpy(out->name[out->n], c[i].name, len);
        out->name[out->n][len] = '\0';
        out->visits[out->n++] = c[i].visits;
    }
    rc = 0;
out:
    free(c);
    free(merged);
    return rc;
}
