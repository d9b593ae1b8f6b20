/* Unit tests for authcache.c: entries are trusted for AUTHCACHE_TTL_MS and no longer, and a
 * different hash never matches. */
#include "authcache.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void hash_of(unsigned char h[APIKEY_HASH_LEN], unsigned char seed)
{
    for (int i = 0; i < APIKEY_HASH_LEN; i++)
        h[i] = (unsigned char)(seed * 31 + i);
}

static void test_hit_within_ttl_only(void **state)
{
    struct authcache *ac = authcache_new(64);
    unsigned char h[APIKEY_HASH_LEN];
    struct apikey_info in = {.id = 7,
                             .rate_limit = 5,
                             .rate_window = 60,
                             .burst = 9,
                             .is_admin = true},
                       out = {0};
    int64_t rev = 0;
    (void)state;

    assert_non_null(ac);
    hash_of(h, 1);
    assert_false(authcache_get(ac, h, 1000, &out, &rev));
    authcache_put(ac, h, 1000, &in, 12);
    assert_true(authcache_get(ac, h, 1000, &out, &rev));
    assert_int_equal(rev, 12);
    assert_int_equal(out.id, 7);
    assert_int_equal(out.rate_limit, 5);
    assert_int_equal(out.rate_window, 60);
    assert_int_equal(out.burst, 9);
    assert_true(out.is_admin);
    assert_true(authcache_get(ac, h, 1000 + AUTHCACHE_TTL_MS - 1, &out, &rev));
    assert_false(authcache_get(ac, h, 1000 + AUTHCACHE_TTL_MS, &out, &rev));
    assert_false(authcache_get(ac, h, 999, &out, &rev)); /* a clock that went back: do not trust */
    authcache_free(ac);
}

static void test_other_hash_misses(void **state)
{
    struct authcache *ac = authcache_new(1); /* one slot: every hash collides */
    unsigned char a[APIKEY_HASH_LEN], b[APIKEY_HASH_LEN];
    struct apikey_info ia = {.id = 1}, ib = {.id = 2}, out;
    int64_t rev;
    (void)state;

    assert_non_null(ac);
    hash_of(a, 1);
    hash_of(b, 2);
    authcache_put(ac, a, 10, &ia, -1);
    assert_false(authcache_get(ac, b, 10, &out, &rev));
    authcache_put(ac, b, 10, &ib, 0);
    assert_true(authcache_get(ac, b, 10, &out, &rev));
    assert_int_equal(out.id, 2);
    assert_false(authcache_get(ac, a, 10, &out, &rev));
    authcache_free(ac);
    authcache_free(NULL);
    assert_null(authcache_new(3));
    assert_null(authcache_new(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_within_ttl_only),
        cmocka_unit_test(test_other_hash_misses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
