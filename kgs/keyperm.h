/* The secret permutation that turns claimed counter values into keys.
 *
 * kgs does not store keys: it claims ranges of a durable counter (keycounter.c) and maps each
 * index in [0, 62^7) to a 7-character key through a keyed pseudo-random permutation. A
 * permutation never maps two indices to one key, so keys are unique exactly when indices
 * are, and without the secret the next key cannot be told from the previous ones.
 *
 * The construction is part of the on-disk format: keys already issued were made with it, so
 * changing it (or KEYPERM_ROUNDS) would let new keys collide with old ones. The algorithm
 * number stored beside the secret in kgs_state names it; tests pin it with known answers. */
#ifndef KGS_KEYPERM_H
#define KGS_KEYPERM_H

#include <stdint.h>

#include "keyspace.h"

#define KEYPERM_ALGORITHM  1
#define KEYPERM_SECRET_LEN 32
#define KEYPERM_ROUNDS     10
/* 62^7: every generated key. */
#define KEYPERM_DOMAIN 3521614606208ULL
_Static_assert(GENERATED_KEY_LEN == 7 && KEYPERM_DOMAIN == 62ULL * 62 * 62 * 62 * 62 * 62 * 62,
               "the permutation covers exactly the generated keys, and is part of the on-disk "
               "format: another key length needs another KEYPERM_ALGORITHM");

struct keyperm {
    unsigned char round_keys[KEYPERM_ROUNDS][16];
};

/* Derives the round keys from the secret. Call sodium_init() first. */
void keyperm_init(struct keyperm *p, const unsigned char secret[KEYPERM_SECRET_LEN]);

/* Wipes the round keys. */
void keyperm_release(struct keyperm *p);

/* The image of index (< KEYPERM_DOMAIN) under the permutation, also < KEYPERM_DOMAIN. */
uint64_t keyperm_apply(const struct keyperm *p, uint64_t index);

/* The key for index: GENERATED_KEY_LEN base62 digits and a NUL. */
void keyperm_key(const struct keyperm *p, uint64_t index, char out[GENERATED_KEY_LEN + 1]);

#endif
