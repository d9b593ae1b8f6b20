/* Unit tests for lib/base62.c: the alphabet of generated keys and API-key secrets. */
#include "../../lib/base62.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static bool reference_digit(int c)
{
    return c != '\0' &&
           strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", c) != NULL;
}

static void test_is_digit_all_bytes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        if (base62_is_digit((char)c) != reference_digit(c))
            fail_msg("byte 0x%02x misclassified", c);
    }
}

static void test_random_shape(void **state)
{
    char buf[65];
    (void)state;
    for (size_t len = 0; len < sizeof(buf); len++) {
        memset(buf, '\x7f', sizeof(buf));
        base62_random(buf, len);
        assert_int_equal(strlen(buf), len);
        for (size_t i = 0; i < len; i++)
            assert_true(base62_is_digit(buf[i]));
    }
    base62_random(buf, GENERATED_KEY_LEN);
    assert_true(base62_is_key(buf, strlen(buf)));
}

/* 62,000 draws: each digit should turn up about 1,000 times. Bounds are loose (over 9
 * standard deviations) so this fails only on a real bias, such as a lost digit. */
static void test_random_roughly_uniform(void **state)
{
    int counts[256] = {0};
    char buf[1001];
    (void)state;
    for (int round = 0; round < 62; round++) {
        base62_random(buf, 1000);
        for (int i = 0; i < 1000; i++)
            counts[(unsigned char)buf[i]]++;
    }
    for (int c = 0; c < 256; c++) {
        if (!reference_digit(c)) {
            assert_int_equal(counts[c], 0);
        } else if (counts[c] < 700 || counts[c] > 1300) {
            fail_msg("'%c' drawn %d times in 62000", c, counts[c]);
        }
    }
}

static void test_random_differs(void **state)
{
    char a[33], b[33];
    (void)state;
    base62_random(a, 32);
    base62_random(b, 32);
    assert_string_not_equal(a, b);
}

static void test_is_key(void **state)
{
    (void)state;
    assert_true(base62_is_key("abcXYZ0", 7));
    assert_true(base62_is_key("0000000", 7));
    assert_true(base62_is_key("zzzzzzz", 7));
    assert_true(base62_is_key("abcdefgh", 7));
    assert_false(base62_is_key("abcdef", 6));
    assert_false(base62_is_key("abcdefgh", 8));
    assert_false(base62_is_key("", 0));
    assert_false(base62_is_key("abc-efg", 7));
    assert_false(base62_is_key("abc_efg", 7));
    assert_false(base62_is_key("abc efg", 7));
    assert_false(base62_is_key("abc\0efg", 7));
    assert_false(base62_is_key("abcdef\n", 7));
    assert_false(base62_is_key("abc\xc3\xa9"
                               "fg",
                               7));
}

static void test_encode(void **state)
{
    char out[GENERATED_KEY_LEN + 2];
    (void)state;

    base62_encode(0, out, GENERATED_KEY_LEN);
    assert_string_equal(out, "0000000");
    base62_encode(61, out, GENERATED_KEY_LEN);
    assert_string_equal(out, "000000z");
    base62_encode(62, out, GENERATED_KEY_LEN);
    assert_string_equal(out, "0000010");
    base62_encode(10 * 62 * 62 + 36 * 62 + 35, out, GENERATED_KEY_LEN);
    assert_string_equal(out, "0000AaZ");
    /* 62^7 - 1, the last generated key; 62^7 wraps to the first. */
    base62_encode(3521614606207ULL, out, GENERATED_KEY_LEN);
    assert_string_equal(out, "zzzzzzz");
    assert_true(base62_is_key(out, strlen(out)));
    base62_encode(3521614606208ULL, out, GENERATED_KEY_LEN);
    assert_string_equal(out, "0000000");
    base62_encode(123, out, 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_digit_all_bytes),
        cmocka_unit_test(test_random_shape),
        cmocka_unit_test(test_random_roughly_uniform),
        cmocka_unit_test(test_random_differs),
        cmocka_unit_test(test_is_key),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
