/* Unit tests of the kgs key permutation: it is a permutation (no two indices share a key),
 * it stays inside the key space, it depends on the secret, and it is pinned by known answers,
 * since changing it would make new keys collide with keys already issued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyperm.c"

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void secret_of(unsigned char secret[KEYPERM_SECRET_LEN], unsigned char seed)
{
    for (int i = 0; i < KEYPERM_SECRET_LEN; i++)
        secret[i] = (unsigned char)(seed + i);
}

/* The inverse of feistel(): proves each step can be undone, i.e. is a bijection. */
static uint64_t feistel_inverse(const struct keyperm *p, uint64_t y)
{
    uint64_t left = y >> HALF_BITS, right = y & HALF_MASK;

    for (int i = KEYPERM_ROUNDS - 1; i >= 0; i--) {
        uint64_t prev = right ^ round_function(p->round_keys[i], left);
        right = left;
        left = prev;
    }
    return (left << HALF_BITS) | right;
}

static uint64_t apply_inverse(const struct keyperm *p, uint64_t y)
{
    uint64_t x = y;
    do
        x = feistel_inverse(p, x);
    while (x >= KEYPERM_DOMAIN);
    return x;
}

static void test_known_answers(void **state)
{
    unsigned char secret[KEYPERM_SECRET_LEN];
    struct keyperm p;
    char key[GENERATED_KEY_LEN + 1];
    (void)state;

    /* Recorded from algorithm 1. If this fails, the permutation changed: every deployment
     * would start issuing keys that may equal ones already out there. Bump
     * KEYPERM_ALGORITHM and keep the old construction instead. */
    secret_of(secret, 0);
    keyperm_init(&p, secret);
    keyperm_key(&p, 0, key);
    assert_string_equal(key, "o7BC771");
    keyperm_key(&p, 1, key);
    assert_string_equal(key, "PYPTmvc");
    keyperm_key(&p, KEYPERM_DOMAIN - 1, key);
    assert_string_equal(key, "VW4loTx");
    keyperm_release(&p);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_distinct_and_in_domain(void **state)
{
    enum { N = 1000000 };
    unsigned char secret[KEYPERM_SECRET_LEN];
    struct keyperm p;
    uint64_t *out = malloc(N * sizeof(*out));
    (void)state;

    assert_non_null(out);
    secret_of(secret, 7);
    keyperm_init(&p, secret);
    for (uint64_t i = 0; i < N; i++) {
        out[i] = keyperm_apply(&p, i);
        assert_true(out[i] < KEYPERM_DOMAIN);
    }
    qsort(out, N, sizeof(*out), cmp_u64);
    for (size_t i = 1; i < N; i++)
        assert_true(out[i - 1] != out[i]);
    keyperm_release(&p);
    free(out);
}

static void test_invertible(void **state)
{
    unsigned char secret[KEYPERM_SECRET_LEN];
    struct keyperm p;
    (void)state;

    secret_of(secret, 42);
    keyperm_init(&p, secret);
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t x = (i * UINT64_C(35184372088891)) % KEYPERM_DOMAIN;
        assert_true(apply_inverse(&p, keyperm_apply(&p, x)) == x);
    }
    keyperm_release(&p);
}

static void test_secret_matters(void **state)
{
    unsigned char a[KEYPERM_SECRET_LEN], b[KEYPERM_SECRET_LEN];
    struct keyperm pa, pb;
    unsigned same = 0;
    (void)state;

    secret_of(a, 1);
    secret_of(b, 2);
    keyperm_init(&pa, a);
    keyperm_init(&pb, b);
    for (uint64_t i = 0; i < 10000; i++)
        same += keyperm_apply(&pa, i) == keyperm_apply(&pb, i);
    assert_true(same < 5);
    keyperm_release(&pa);
    keyperm_release(&pb);
}

/* The value of a base62 digit: 0-9, A-Z, a-z. */
static int digit_value(char c)
{
    return c <= '9' ? c - '0' : c <= 'Z' ? c - 'A' + 10 : c - 'a' + 36;
}

/* Consecutive indices must not give neighbouring keys: the output spreads over the space. */
static void test_spread(void **state)
{
    unsigned char secret[KEYPERM_SECRET_LEN];
    struct keyperm p;
    unsigned buckets[62] = {0};
    char key[GENERATED_KEY_LEN + 1];
    (void)state;

    secret_of(secret, 9);
    keyperm_init(&p, secret);
    for (uint64_t i = 0; i < 62000; i++) {
        keyperm_key(&p, i, key);
        assert_true(base62_is_key(key, strlen(key)));
        buckets[digit_value(key[0])]++;
    }
    /* 1000 expected per first digit; a permutation that kept order would fill one or two. */
    for (int i = 0; i < 62; i++)
        assert_true(buckets[i] > 800 && buckets[i] < 1200);
    keyperm_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers), cmocka_unit_test(test_distinct_and_in_domain),
        cmocka_unit_test(test_invertible),    cmocka_unit_test(test_secret_matters),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
