/* Unit tests of summing recent profile rows per dimension value and merging them into the
 * rolled sums' top lists: exact totals, values only one side has, the top ten's order and
 * ties, rows that are not profiles, and many distinct values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "statsrecent.c"

/* A profile as visit_recent keeps it: six values joined by STATS_PROFILE_SEP. */
static size_t profile(char *out, size_t cap, const char *bot, const char *ref, const char *country)
{
    int n = snprintf(out, cap,
                     "%s\x1f%s\x1f%s\x1f"
                     "Chrome\x1fWindows\x1f"
                     "desktop",
                     bot, ref, country);
    return (size_t)n;
}

static void add(struct stats_recent *r, const char *bot, const char *ref, int64_t visits)
{
    char p[256];
    size_t len = profile(p, sizeof(p), bot, ref, "DE");
    assert_int_equal(stats_recent_add(r, p, len, visits), 0);
}

static void test_sums_per_dimension_value(void **state)
{
    struct stats_recent *r = stats_recent_new();
    struct stats_top top;
    (void)state;
    add(r, "human", "a.example", 3);
    add(r, "bot", "a.example", 2);
    add(r, "human", "b.example", 4);
    /* bot: human, bot; referrer: a, b; country, browser, os, device: one each. */
    assert_int_equal(stats_recent_count(r), 8);
    assert_int_equal(stats_recent_top(r, 1, NULL, NULL, 0, &top), 0);
    assert_int_equal(top.n, 2);
    assert_string_equal(top.name[0], "human");
    assert_int_equal(top.visits[0], 7);
    assert_string_equal(top.name[1], "bot");
    assert_int_equal(top.visits[1], 2);
    assert_int_equal(stats_recent_top(r, 2, NULL, NULL, 0, &top), 0);
    assert_string_equal(top.name[0], "a.example");
    assert_int_equal(top.visits[0], 5);
    assert_int_equal(stats_recent_top(r, 6, NULL, NULL, 0, &top), 0);
    assert_int_equal(top.n, 1);
    assert_string_equal(top.name[0], "desktop");
    assert_int_equal(top.visits[0], 9);
    for (size_t i = 0; i < stats_recent_count(r); i++) {
        int dim;
        const char *v = stats_recent_value(r, i, &dim);
        assert_true(dim >= 1 && dim <= STATS_DIMS);
        assert_non_null(v);
    }
    stats_recent_free(r);
}

/* Rolled r01..r12 with 120, 110, .. 10; recent visits lift r12 to the top, add a value the
 * rolled sums do not have, and tie another with r11 (broken by the name). */
static void test_merged_top_ten(void **state)
{
    struct stats_recent *r = stats_recent_new();
    struct stats_top top;
    char names[12][8];
    const char *rolled[12];
    int64_t sums[12];
    (void)state;
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof(names[i]), "r%02d", i + 1);
        rolled[i] = names[i];
        sums[i] = 120 - 10 * i;
    }
    add(r, "human", "r12", 200);
    add(r, "human", "new", 105);
    add(r, "human", "r05", 1);
    add(r, "human", "r08", 0);
    assert_int_equal(stats_recent_top(r, 2, rolled, sums, 12, &top), 0);
    assert_int_equal(top.n, STATS_TOP_MAX);
    const char *want[STATS_TOP_MAX] = {"r12", "r01", "r02", "new", "r03",
                                       "r04", "r05", "r06", "r07", "r08"};
    const int64_t visits[STATS_TOP_MAX] = {210, 120, 110, 105, 100, 90, 81, 70, 60, 50};
    for (int i = 0; i < STATS_TOP_MAX; i++) {
        assert_string_equal(top.name[i], want[i]);
        assert_int_equal(top.visits[i], visits[i]);
    }
    /* A tie: the smaller name first, bytewise ("R" < "r"). */
    struct stats_recent *t = stats_recent_new();
    const char *two[2] = {"r", "s"};
    const int64_t five[2] = {5, 5};
    add(t, "human", "R", 5);
    assert_int_equal(stats_recent_top(t, 2, two, five, 2, &top), 0);
    assert_int_equal(top.n, 3);
    assert_string_equal(top.name[0], "R");
    assert_string_equal(top.name[1], "r");
    assert_string_equal(top.name[2], "s");
    stats_recent_free(t);
    stats_recent_free(r);
}

static void test_not_a_profile(void **state)
{
    struct stats_recent *r = stats_recent_new();
    struct stats_top top;
    (void)state;
    assert_int_equal(stats_recent_add(r, "human", 5, 1), -EINVAL);
    assert_int_equal(stats_recent_add(r,
                                      "a\x1f"
                                      "b\x1f"
                                      "c\x1f"
                                      "d\x1f"
                                      "e\x1f"
                                      "f\x1fg",
                                      13, 1),
                     -EINVAL);
    assert_int_equal(stats_recent_add(r, "", 0, 1), -EINVAL);
    assert_int_equal(stats_recent_count(r), 0);
    /* Six empty values are a profile. */
    assert_int_equal(stats_recent_add(r, "\x1f\x1f\x1f\x1f\x1f", 5, 2), 0);
    assert_int_equal(stats_recent_count(r), 6);
    assert_int_equal(stats_recent_top(r, 3, NULL, NULL, 0, &top), 0);
    assert_int_equal(top.n, 1);
    assert_string_equal(top.name[0], "");
    assert_int_equal(top.visits[0], 2);
    stats_recent_free(r);
}

static void test_many_values(void **state)
{
    struct stats_recent *r = stats_recent_new();
    struct stats_top top;
    char ref[32];
    (void)state;
    for (int i = 0; i < 20000; i++) {
        snprintf(ref, sizeof(ref), "host%d.example", i);
        add(r, i % 2 ? "human" : "bot", ref, i);
        add(r, "human", ref, 1);
    }
    assert_int_equal(stats_recent_count(r), 20000 + 2 + 4);
    assert_int_equal(stats_recent_top(r, 2, NULL, NULL, 0, &top), 0);
    assert_int_equal(top.n, STATS_TOP_MAX);
    assert_string_equal(top.name[0], "host19999.example");
    assert_int_equal(top.visits[0], 20000);
    assert_int_equal(top.visits[9], 19991);
    assert_int_equal(stats_recent_top(r, 1, NULL, NULL, 0, &top), 0);
    assert_int_equal(top.visits[0] + top.visits[1], 20000LL * 19999 / 2 + 20000);
    stats_recent_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_per_dimension_value),
        cmocka_unit_test(test_merged_top_ten),
        cmocka_unit_test(test_not_a_profile),
        cmocka_unit_test(test_many_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
