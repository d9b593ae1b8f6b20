/* The in-process cache of confirmed API keys (see authcache.h). */
#include "authcache.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    unsigned char hash[APIKEY_HASH_LEN];
    int64_t confirmed_ms;
    int64_t revocations;
    bool used;
    struct apikey_info info;
};

struct authcache {
    pthread_mutex_t lock;
    size_t mask;
    struct entry *slots;
};

struct authcache *authcache_new(size_t slots)
{
    struct authcache *ac;

    if (slots == 0 || (slots & (slots - 1)) != 0)
        return NULL;
    ac = calloc(1, sizeof(*ac));
    if (!ac)
        return NULL;
    ac->slots = calloc(slots, sizeof(*ac->slots));
    if (!ac->slots || pthread_mutex_init(&ac->lock, NULL) != 0) {
        free(ac->slots);
        free(ac);
        return NULL;
    }
    ac->mask = slots - 1;
    return ac;
}

void authcache_free(struct authcache *ac)
{
    if (!ac)
        return;
    pthread_mutex_destroy(&ac->lock);
    sodium_memzero(ac->slots, (ac->mask + 1) * sizeof(*ac->slots));
    free(ac->slots);
    free(ac);
}

/* The hash is a keyed BLAKE2b: its first bytes are as good an index as any. One slot per
 * index; a collision just costs the loser a database look-up. */
static struct entry *slot_of(struct authcache *ac, const unsigned char hash[APIKEY_HASH_LEN])
{
    size_t i;
    memcpy(&i, hash, sizeof(i));
    return &ac->slots[i & ac->mask];
}

bool authcache_get(struct authcache *ac, const unsigned char hash[APIKEY_HASH_LEN], int64_t now_ms,
                   struct apikey_info *out, int64_t *revocations)
{
    bool hit = false;

    pthread_mutex_lock(&ac->lock);
    struct entry *e = slot_of(ac, hash);
    if (e->used && now_ms - e->confirmed_ms < AUTHCACHE_TTL_MS && now_ms >= e->confirmed_ms &&
        sodium_memcmp(e->hash, hash, APIKEY_HASH_LEN) == 0) {
        *out = e->info;
        *revocations = e->revocations;
        hit = true;
    }
    pthread_mutex_unlock(&ac->lock);
    return hit;
}

void authcache_put(struct authcache *ac, const unsigned char hash[APIKEY_HASH_LEN], int64_t now_ms,
                   const struct apikey_info *info, int64_t revocations)
{
    pthread_mutex_lock(&ac->lock);
    struct entry *e = slot_of(ac, hash);
    memcpy(e->hash, hash, APIKEY_HASH_LEN);
    e->confirmed_ms = now_ms;
    e->info = *info;
    e->revocations = revocations;
    e->used = true;
    pthread_mutex_unlock(&ac->lock);
}
