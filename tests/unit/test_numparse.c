/* Unit tests for lib/numparse.c, the one parser of bounded decimal integers: every edge of
 * what it takes and refuses, since every program's numbers go through it. */
#include "../../lib/numparse.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define UNTOUCHED 4242

static void accepts(const char *text, long long lo, long long hi, unsigned flags, long long want)
{
    long long v = UNTOUCHED;
    int rc = numparse_ll(text, lo, hi, flags, &v);
    if (rc != 0)
        fail_msg("'%s' in [%lld, %lld] gave %d", text, lo, hi, rc);
    assert_int_equal(v, want);
}

static void refuses(const char *text, long long lo, long long hi, unsigned flags, int want)
{
    long long v = UNTOUCHED;
    int rc = numparse_ll(text, lo, hi, flags, &v);
    if (rc != want)
        fail_msg("'%s' in [%lld, %lld] gave %d, not %d", text ? text : "(null)", lo, hi, rc, want);
    assert_int_equal(v, UNTOUCHED); /* never written on failure */
}

static void test_plain(void **state)
{
    (void)state;
    accepts("0", 0, 10, 0, 0);
    accepts("7", 0, 10, 0, 7);
    accepts("10", 0, 10, 0, 10);
    accepts("65535", 1, 65535, 0, 65535);
    accepts("123456789012", 0, LLONG_MAX, 0, 123456789012LL);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "1 ",
        " 1",
        "\t1",
        "1\n",
        "1\r",
        "+1",
        "++1",
        "--1",
        "1-",
        "-",
        "0x10",
        "1.5",
        "1e3",
        "12x",
        "x12",
        "1,000",
        "1_000",
        "\xd9\xa1",
        "\xff"
        "1",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refuses(bad[i], -100, 100000, 0, -EINVAL);
    refuses(NULL, 0, 10, 0, -EINVAL);
}

static void test_bounds_are_inclusive(void **state)
{
    (void)state;
    accepts("1", 1, 5, 0, 1);
    accepts("5", 1, 5, 0, 5);
    refuses("0", 1, 5, 0, -ERANGE);
    refuses("6", 1, 5, 0, -ERANGE);
    accepts("-5", -5, 5, 0, -5);
    refuses("-6", -5, 5, 0, -ERANGE);
    accepts("3", 3, 3, 0, 3);
    refuses("2", 3, 3, 0, -ERANGE);
}

static void test_sign_only_where_negatives_fit(void **state)
{
    (void)state;
    /* A range of non-negative numbers has no use for a sign: "-1" is not a number there. */
    refuses("-1", 0, 10, 0, -EINVAL);
    refuses("-0", 0, 10, 0, -EINVAL);
    refuses("-1", 1, 10, 0, -EINVAL);
    accepts("-1", -1, 10, 0, -1);
    accepts("-0", -1, 10, 0, 0);
    refuses("-", -1, 10, 0, -EINVAL);
    refuses("- 1", -1, 10, 0, -EINVAL);
}

static void test_overflow(void **state)
{
    (void)state;
    accepts("9223372036854775807", 0, LLONG_MAX, 0, LLONG_MAX);
    refuses("9223372036854775808", 0, LLONG_MAX, 0, -ERANGE);
    refuses("18446744073709551616", 0, LLONG_MAX, 0, -ERANGE);
    refuses("99999999999999999999999", 0, LLONG_MAX, 0, -ERANGE);
    accepts("-9223372036854775808", LLONG_MIN, 0, 0, LLONG_MIN);
    refuses("-9223372036854775809", LLONG_MIN, 0, 0, -ERANGE);
    refuses("-99999999999999999999999", LLONG_MIN, 0, 0, -ERANGE);
    /* Malformed wins over too large: the whole text is looked at. */
    refuses("99999999999999999999x", 0, LLONG_MAX, 0, -EINVAL);
    /* Far past a small bound without overflowing anything. */
    refuses("4294967297", 1, 10000, 0, -ERANGE);
}

static void test_leading_zeros(void **state)
{
    (void)state;
    accepts("007", 0, 10, 0, 7);
    accepts("00", 0, 10, 0, 0);
    accepts("-007", -10, 10, 0, -7);
    accepts("0000000000000000000000001", 0, 10, 0, 1);

    accepts("0", 0, 10, NUMPARSE_CANONICAL, 0);
    accepts("10", 0, 10, NUMPARSE_CANONICAL, 10);
    accepts("-7", -10, 10, NUMPARSE_CANONICAL, -7);
    refuses("00", 0, 10, NUMPARSE_CANONICAL, -EINVAL);
    refuses("007", 0, 10, NUMPARSE_CANONICAL, -EINVAL);
    refuses("01", 0, 10, NUMPARSE_CANONICAL, -EINVAL);
    refuses("-0", -10, 10, NUMPARSE_CANONICAL, -EINVAL);
    refuses("-07", -10, 10, NUMPARSE_CANONICAL, -EINVAL);
}

static void test_length_bounded(void **state)
{
    long long v = UNTOUCHED;
    (void)state;
    /* Only len bytes count: the text need not end there. */
    assert_int_equal(numparse_ll_n("123abc", 3, 0, 1000, 0, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(numparse_ll_n("32/", 2, 0, 32, 0, &v), 0);
    assert_int_equal(v, 32);
    v = UNTOUCHED;
    assert_int_equal(numparse_ll_n("123", 0, 0, 1000, 0, &v), -EINVAL);
    assert_int_equal(numparse_ll_n("1\0002", 3, 0, 1000, 0, &v), -EINVAL);
    assert_int_equal(numparse_ll_n("-", 1, -5, 5, 0, &v), -EINVAL);
    assert_int_equal(numparse_ll_n(NULL, 0, 0, 5, 0, &v), -EINVAL);
    assert_int_equal(v, UNTOUCHED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bounds_are_inclusive),
        cmocka_unit_test(test_sign_only_where_negatives_fit),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_leading_zeros),
        cmocka_unit_test(test_length_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
