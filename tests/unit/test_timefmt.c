/* Unit tests for timefmt.c: strict RFC 3339 parsing and UTC formatting, checked against
 * known epochs so that the calendar arithmetic is tested, not merely round-tripped. */
#include "timefmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static int parse(const char *s, int64_t *epoch)
{
    return timefmt_parse(s, strlen(s), epoch);
}

static void assert_parses(const char *s, int64_t want)
{
    int64_t got = -12345;
    if (parse(s, &got) != 0)
        fail_msg("'%s' rejected", s);
    if (got != want)
        fail_msg("'%s': got %lld, want %lld", s, (long long)got, (long long)want);
}

static void assert_rejected(const char *s)
{
    int64_t got = -12345;
    if (parse(s, &got) != -EINVAL)
        fail_msg("'%s' accepted as %lld", s, (long long)got);
    assert_int_equal(got, -12345);
}

static void assert_formats(int64_t epoch, const char *want)
{
    char buf[TIMEFMT_LEN];
    memset(buf, 'x', sizeof(buf));
    timefmt_format(epoch, buf);
    assert_string_equal(buf, want);
}

static void test_parse_known_epochs(void **state)
{
    (void)state;
    assert_parses("1970-01-01T00:00:00Z", 0);
    assert_parses("2000-03-01T00:00:00Z", 951868800);
    assert_parses("2026-11-23T13:47:17Z", 1795441637);
    assert_parses("1969-12-31T23:59:59Z", -1);
    assert_parses("2038-01-19T03:14:08Z", 2147483648LL);
    assert_parses("0001-01-01T00:00:00Z", -62135596800LL);
    assert_parses("9999-12-31T23:59:59Z", 253402300799LL);
}

static void test_parse_variants(void **state)
{
    (void)state;
    assert_parses("2026-11-23t13:47:17z", 1795441637);
    assert_parses("2026-11-23 13:47:17Z", 1795441637);
    assert_parses("2026-11-23T13:47:17.5Z", 1795441637);
    assert_parses("2026-11-23T13:47:17.999999999Z", 1795441637);
    assert_parses("2026-11-23T13:47:17+00:00", 1795441637);
    assert_parses("2026-11-23T13:47:17-00:00", 1795441637);
    assert_parses("2026-11-23T14:47:17+01:00", 1795441637);
    assert_parses("2026-11-23T08:17:17-05:30", 1795441637);
    assert_parses("2026-11-24T13:46:17+23:59", 1795441637);
    assert_parses("2026-11-23T13:47:17.25-00:00", 1795441637);
    /* A leap second reads as the first second of the next minute. */
    assert_parses("2016-12-31T23:59:60Z", 1483228800);
}

static void test_parse_leap_years(void **state)
{
    (void)state;
    assert_parses("2024-02-29T00:00:00Z", 1709164800);
    assert_parses("2000-02-29T00:00:00Z", 951782400);
    assert_rejected("2023-02-29T00:00:00Z");
    assert_rejected("1900-02-29T00:00:00Z");
    assert_rejected("2100-02-29T00:00:00Z");
    assert_rejected("2024-02-30T00:00:00Z");
}

static void test_parse_rejects_ranges(void **state)
{
    static const char *const bad[] = {
        "0000-01-01T00:00:00Z",      "2026-00-10T00:00:00Z",      "2026-13-10T00:00:00Z",
        "2026-01-00T00:00:00Z",      "2026-01-32T00:00:00Z",      "2026-04-31T00:00:00Z",
        "2026-06-31T00:00:00Z",      "2026-09-31T00:00:00Z",      "2026-11-31T00:00:00Z",
        "2026-01-01T24:00:00Z",      "2026-01-01T00:60:00Z",      "2026-01-01T00:00:61Z",
        "2026-01-01T00:00:99Z",      "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+00:60",
        "2026-01-01T00:00:00-99:00",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_rejected(bad[i]);
}

static void test_parse_rejects_syntax(void **state)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-23",
        "2026-11-23T13:47",
        "2026-11-23T13:47:17",
        "2026-11-23T13:47:17.Z",
        "2026-11-23T13:47:17.5",
        "2026-11-23T13:47:17+0100",
        "2026-11-23T13:47:17+01",
        "2026-11-23T13:47:17+1:00",
        "2026-11-23T13:47:17 Z",
        "2026-11-23T13:47:17Z ",
        " 2026-11-23T13:47:17Z",
        "2026-11-23T13:47:17ZZ",
        "2026-11-23X13:47:17Z",
        "2026-11-23_13:47:17Z",
        "2026-11-23T13:47:17UTC",
        "2026/11/23T13:47:17Z",
        "26-11-23T13:47:17Z",
        "+2026-11-23T13:47:17Z",
        "-2026-11-23T13:47:17Z",
        "12026-11-23T13:47:17Z",
        "2026-1-23T13:47:17Z",
        "2026-11-3T13:47:17Z",
        "2026-11-23T3:47:17Z",
        "2026-11-23T13:4:17Z",
        "2026-11-23T13:47:1Z",
        "2026-11-23T13:47:17,5Z",
        "2026-11-23T13:47:17.5.5Z",
        "2026-11-23T1a:47:17Z",
        "2026-11-23T13:47:17+01:00Z",
        "2026-11-23T13:47:17-",
        "1795441637",
        "tomorrow",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_rejected(bad[i]);
}

static void test_parse_respects_length(void **state)
{
    int64_t got = 0;
    (void)state;
    /* Only len bytes count: a valid prefix followed by junk is not enough, and a NUL inside
     * the length is junk. */
    assert_int_equal(timefmt_parse("2026-11-23T13:47:17Zjunk", 20, &got), 0);
    assert_int_equal(got, 1795441637);
    assert_int_equal(timefmt_parse("2026-11-23T13:47:17Z", 19, &got), -EINVAL);
    assert_int_equal(timefmt_parse("2026-11-23T13:47:17Z\0", 21, &got), -EINVAL);
    assert_int_equal(timefmt_parse("2026-11-23T13:47:17.\0Z", 22, &got), -EINVAL);
    assert_int_equal(timefmt_parse(NULL, 0, &got), -EINVAL);
    assert_int_equal(timefmt_parse("2026", 0, &got), -EINVAL);
}

static void test_format(void **state)
{
    (void)state;
    assert_formats(0, "1970-01-01T00:00:00Z");
    assert_formats(1795441637, "2026-11-23T13:47:17Z");
    assert_formats(-1, "1969-12-31T23:59:59Z");
    assert_formats(951782400, "2000-02-29T00:00:00Z");
    assert_formats(4107542400LL, "2100-03-01T00:00:00Z");
    assert_formats(-62135596800LL, "0001-01-01T00:00:00Z");
    assert_formats(253402300799LL, "9999-12-31T23:59:59Z");
}

static void test_format_clamps(void **state)
{
    (void)state;
    assert_formats(-62135596801LL, "0001-01-01T00:00:00Z");
    assert_formats(INT64_MIN, "0001-01-01T00:00:00Z");
    assert_formats(253402300800LL, "9999-12-31T23:59:59Z");
    assert_formats(INT64_MAX, "9999-12-31T23:59:59Z");
}

/* Every day from 1600 to 2400, noon: format then parse, and agree with the day count. */
static void test_round_trip_daily(void **state)
{
    int64_t start = -11676096000LL + 43200, end = 13569465600LL;
    char buf[TIMEFMT_LEN];
    int64_t back;
    (void)state;
    for (int64_t t = start; t < end; t += 86400) {
        timefmt_format(t, buf);
        assert_int_equal(timefmt_parse(buf, strlen(buf), &back), 0);
        if (back != t)
            fail_msg("%lld -> %s -> %lld", (long long)t, buf, (long long)back);
    }
}

/* Our arithmetic against the C library's gmtime_r, where time_t reaches. */
static void test_agrees_with_gmtime(void **state)
{
    char buf[TIMEFMT_LEN], want[32];
    struct tm tm;
    (void)state;
    for (int64_t t = -2208988800LL; t < 4102444800LL; t += 86400 * 37 + 3607) {
        time_t tt = (time_t)t;
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
        timefmt_format(t, buf);
        assert_string_equal(buf, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_known_epochs),
        cmocka_unit_test(test_parse_variants),
        cmocka_unit_test(test_parse_leap_years),
        cmocka_unit_test(test_parse_rejects_ranges),
        cmocka_unit_test(test_parse_rejects_syntax),
        cmocka_unit_test(test_parse_respects_length),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_clamps),
        cmocka_unit_test(test_round_trip_daily),
        cmocka_unit_test(test_agrees_with_gmtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
