/* Unit tests of keyhash.c: one value per input within a process, inputs that differ in one
 * byte (or only in length) hash apart, and the low bits that tables index by are spread
 * evenly. No sodium_init() here: keyhash must do it itself. */
#include "keyhash.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

static void test_same_input_same_hash(void **state)
{
    (void)state;
    assert_true(keyhash("alias", 5) == keyhash("alias", 5));
    assert_true(keyhash("", 0) == keyhash("", 0));
    assert_true(keyhash("alias", 5) != keyhash("alias", 4));
    assert_true(keyhash("alias", 5) != keyhash("alias\0", 6));
    assert_true(keyhash("alias", 5) != keyhash("aliaS", 5));
}

static void test_low_bits_are_spread(void **state)
{
    enum { N = 65536, BUCKETS = 256 };
    static unsigned counts[BUCKETS];
    char key[32];
    (void)state;

    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof(key), "k%d", i);
        counts[keyhash(key, (size_t)len) & (BUCKETS - 1)]++;
    }
    /* 256 per bucket on average; a standard deviation is 16, so 160..352 is six of them. */
    for (int b = 0; b < BUCKETS; b++) {
        assert_true(counts[b] > 160);
        assert_true(counts[b] < 352);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_input_same_hash),
        cmocka_unit_test(test_low_bits_are_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
