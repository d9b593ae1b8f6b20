/* Unit tests of the stats parameters: defaults, the bounds of API.md (400 days, to before
 * from, interval), and the hours, buckets and whole days a range comes to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "statsquery.c"

/* 2030-01-15T12:34:56Z */
#define NOW 1894710896LL

static int parse(const char *from, const char *to, const char *interval, struct stats_query *q)
{
    char err[256] = "";
    int rc = stats_query_parse(from, to, interval, NOW, q, err, sizeof(err));
    if (rc < 0)
        assert_true(err[0] != '\0');
    return rc;
}

static void test_defaults(void **state)
{
    struct stats_query q;
    (void)state;
    assert_int_equal(parse(NULL, NULL, NULL, &q), 0);
    assert_int_equal(q.to, NOW);
    assert_int_equal(q.from, NOW - 30 * 86400);
    assert_int_equal(q.step, STATS_DAY);
    assert_int_equal(q.nbuckets, 31);
    assert_int_equal(q.first_hour, stats_floor(NOW - 30 * 86400, 3600));
    assert_int_equal(q.last_hour, stats_floor(NOW, 3600));
    /* Whole days: from the midnight after the first hour to the midnight before the last. */
    assert_int_equal(q.day_from, stats_floor(NOW, 86400) - 29 * 86400);
    assert_int_equal(q.day_to, stats_floor(NOW, 86400));
    assert_int_equal(parse("2030-01-10T00:00:00Z", NULL, "hour", &q), 0);
    assert_int_equal(q.to, NOW);
    assert_int_equal(q.nbuckets, 5 * 24 + 13);
}

static void test_buckets_and_days(void **state)
{
    struct stats_query q;
    (void)state;
    /* One hour. */
    assert_int_equal(parse("2030-01-01T10:15:00Z", "2030-01-01T10:45:00Z", "hour", &q), 0);
    assert_int_equal(q.nbuckets, 1);
    assert_int_equal(q.first_hour, q.last_hour);
    assert_true(q.day_from == q.day_to && q.day_from == q.last_hour + 3600);
    /* Exactly two whole days, as days and as hours. */
    assert_int_equal(parse("2030-01-01T00:00:00Z", "2030-01-02T23:59:59Z", "day", &q), 0);
    assert_int_equal(q.nbuckets, 2);
    assert_int_equal(q.day_to - q.day_from, 2 * 86400);
    assert_int_equal(q.day_from, q.first_hour);
    assert_int_equal(parse("2030-01-01T00:00:00Z", "2030-01-02T23:59:59Z", "hour", &q), 0);
    assert_int_equal(q.nbuckets, 48);
    /* A midnight as to opens a third day with its first hour. */
    assert_int_equal(parse("2030-01-01T00:00:00Z", "2030-01-03T00:00:00Z", NULL, &q), 0);
    assert_int_equal(q.nbuckets, 3);
    assert_int_equal(q.day_to - q.day_from, 2 * 86400);
    /* The longest range: 400 days hourly. */
    assert_int_equal(parse("2029-01-01T00:00:00Z", "2030-02-05T00:00:00Z", "hour", &q), 0);
    assert_int_equal(q.nbuckets, 400 * 24 + 1);
    /* Its whole blocks lie within its whole days, on block boundaries, and leave less than a
     * block of days on either side. */
    assert_true(q.day_from <= q.block_from && q.block_from < q.block_to && q.block_to <= q.day_to);
    assert_int_equal(q.block_from % STATS_BLOCK, 0);
    assert_int_equal(q.block_to % STATS_BLOCK, 0);
    assert_true(q.block_from - q.day_from < STATS_BLOCK && q.day_to - q.block_to < STATS_BLOCK);
    assert_int_equal((q.block_to - q.block_from) % STATS_BLOCK, 0);
    /* Ten days hold no whole block: the days alone. */
    assert_int_equal(parse("2030-01-01T00:00:00Z", "2030-01-10T23:00:00Z", NULL, &q), 0);
    assert_true(q.block_from == q.block_to && q.block_to == q.day_to);
    /* Before 1970 the arithmetic still floors. */
    assert_int_equal(stats_floor(-1, 3600), -3600);
    assert_int_equal(stats_floor(-3600, 3600), -3600);
    assert_int_equal(parse("1969-12-31T23:30:00Z", "1970-01-01T00:30:00Z", "hour", &q), 0);
    assert_int_equal(q.nbuckets, 2);
    assert_int_equal(q.first_bucket, -3600);
}

static void test_refused(void **state)
{
    struct stats_query q;
    (void)state;
    assert_int_equal(parse(NULL, NULL, "week", &q), -EINVAL);
    assert_int_equal(parse(NULL, NULL, "", &q), -EINVAL);
    assert_int_equal(parse(NULL, NULL, "Hour", &q), -EINVAL);
    assert_int_equal(parse(NULL, NULL, "day ", &q), -EINVAL);
    assert_int_equal(parse("yesterday", NULL, NULL, &q), -EINVAL);
    assert_int_equal(parse("", NULL, NULL, &q), -EINVAL);
    assert_int_equal(parse(NULL, "2030-13-01T00:00:00Z", NULL, &q), -EINVAL);
    assert_int_equal(parse(NULL, "2030-01-01", NULL, &q), -EINVAL);
    assert_int_equal(parse("2030-01-02T00:00:00Z", "2030-01-01T23:59:59Z", NULL, &q), -EINVAL);
    assert_int_equal(parse("2029-01-01T00:00:00Z", "2030-02-05T00:00:01Z", NULL, &q), -EINVAL);
    assert_int_equal(parse("2029-01-01T00:00:00Z", "2030-02-05T00:00:00Z", NULL, &q), 0);
    /* to alone, far in the past: the default from is 30 days before it. */
    assert_int_equal(parse(NULL, "2000-01-31T00:00:00Z", NULL, &q), 0);
    assert_int_equal(q.to - q.from, 30 * 86400);
    /* from alone after now: to (now) is before it. */
    assert_int_equal(parse("2031-01-01T00:00:00Z", NULL, NULL, &q), -EINVAL);
}

/* An offset's '+' sent unencoded in the query string arrives as a space. */
static void test_offset_plus_sent_unencoded(void **state)
{
    struct stats_query a, b, c;
    (void)state;
    assert_int_equal(parse("2030-01-01T01:00:00+01:00", "2030-01-10T00:00:00Z", NULL, &a), 0);
    assert_int_equal(parse("2030-01-01T01:00:00 01:00", "2030-01-10T00:00:00Z", NULL, &b), 0);
    assert_int_equal(a.from, b.from);
    assert_int_equal(parse("2030-01-01T00:00:00Z", "2030-01-10T00:00:00Z", NULL, &c), 0);
    assert_int_equal(b.from, c.from);
    /* Only there: a space without an offset after it is still refused. */
    assert_int_equal(parse("2030-01-01T01:00:00 ", NULL, NULL, &a), -EINVAL);
    assert_int_equal(parse("2030-01-01T01:00:00 0100", NULL, NULL, &a), -EINVAL);
    assert_int_equal(parse(" 01:00", NULL, NULL, &a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_buckets_and_days),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_offset_plus_sent_unencoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
