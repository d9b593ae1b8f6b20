/* One keyed hash for in-process tables (see keyhash.h). */
#include "keyhash.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static unsigned char hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t hash_key_once = PTHREAD_ONCE_INIT;

static void draw_key(void)
{
    /* Idempotent: the programs have called it already at start-up, unit tests may not have.
     * Without it there is no randomness to draw, and a predictable key is what this module
     * exists to avoid. */
    if (sodium_init() < 0)
        abort();
    randombytes_buf(hash_key, sizeof(hash_key));
}

uint64_t keyhash(const void *data, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t v;

    pthread_once(&hash_key_once, draw_key);
    crypto_shorthash(out, data, len, hash_key);
    memcpy(&v, out, sizeof(v));
    return v;
}
