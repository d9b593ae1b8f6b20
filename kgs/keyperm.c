/* A balanced Feistel network over 42 bits, SipHash-2-4 as its round function, and cycle
 * walking down to 62^7 (which is just under 2^42, so a walk takes 1.25 steps on average).
 * Ten rounds, as FF1 uses for format-preserving encryption of domains this size. */
#include "keyperm.h"

#include <sodium.h>
#include <string.h>

#include "base62.h"

#define HALF_BITS 21
#define HALF_MASK ((UINT64_C(1) << HALF_BITS) - 1)

void keyperm_init(struct keyperm *p, const unsigned char secret[KEYPERM_SECRET_LEN])
{
    /* One independent key per round, so no round can be traded for another. */
    for (unsigned i = 0; i < KEYPERM_ROUNDS; i++)
        crypto_kdf_derive_from_key(p->round_keys[i], sizeof(p->round_keys[i]), i, "kgsperm1",
                                   secret);
}

void keyperm_release(struct keyperm *p)
{
    sodium_memzero(p, sizeof(*p));
}

static uint64_t round_function(const unsigned char key[16], uint64_t half)
{
    unsigned char in[8], out[8];
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        in[i] = (unsigned char)(half >> (8 * i));
    crypto_shorthash_siphash24(out, in, sizeof(in), key);
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)out[i] << (8 * i);
    return v & HALF_MASK;
}

static uint64_t feistel(const struct keyperm *p, uint64_t x)
{
    uint64_t left = x >> HALF_BITS, right = x & HALF_MASK;

    for (unsigned i = 0; i < KEYPERM_ROUNDS; i++) {
        uint64_t next = left ^ round_function(p->round_keys[i], right);
        left = right;
        right = next;
    }
    return (left << HALF_BITS) | right;
}

uint64_t keyperm_apply(const struct keyperm *p, uint64_t index)
{
    /* The Feistel network permutes [0, 2^42); following its cycle until it lands inside the
     * domain again restricts it to a permutation of [0, 62^7). */
    uint64_t x = index;
    do
        x = feistel(p, x);
    while (x >= KEYPERM_DOMAIN);
    return x;
}

void keyperm_key(const struct keyperm *p, uint64_t index, char out[GENERATED_KEY_LEN + 1])
{
    base62_encode(keyperm_apply(p, index), out, GENERATED_KEY_LEN);
}
