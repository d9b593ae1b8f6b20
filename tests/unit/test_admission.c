/* Unit tests of group admission's split: one script's result for n creates of one key,
 * split over them in queue order, must tell each create exactly what its own script would
 * have told it had the n been counted one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "admission.c"
#include "cache.c"
#include "jobqueue.c"
#include "ratelimit.c"

static void test_split_equals_single_steps(void **state)
{
    (void)state;
    const int64_t T = 50000, now = 1700000000LL * 1000000;
    for (int64_t burst = 1; burst <= 7; burst++)
        for (int64_t n = 1; n <= 12; n++)
            for (int64_t lead = -3; lead <= 9; lead++) {
                int64_t start = now + lead * T / 2, tat_n = start, tat_1 = start;
                struct ratelimit_result group, mine, single;
                int64_t admitted = ratelimit_gcra_n(&tat_n, now, T, burst, n, true, &group);
                for (int64_t pos = 0; pos < n; pos++) {
                    ratelimit_gcra(&tat_1, now, T, burst, true, &single);
                    admission_split(&group, admitted, pos, &mine);
                    assert_int_equal(mine.allowed, single.allowed);
                    assert_int_equal(mine.remaining, single.remaining);
                    assert_int_equal(mine.retry_us, single.retry_us);
                    /* The header's t of an admitted create is the whole burst's return, which
                     * the group knows only after its last one: never earlier than its own. */
                    if (mine.allowed)
                        assert_true(mine.reset_us >= single.reset_us);
                    else
                        assert_int_equal(ratelimit_retry_after(&mine),
                                         ratelimit_retry_after(&single));
                }
            }
}

/* The revocation count read by the group's script reaches every create of the group. */
static void test_split_keeps_revocations(void **state)
{
    (void)state;
    struct ratelimit_result group = {.allowed = true, .remaining = 2, .revocations = 7}, out;

    for (int64_t pos = 0; pos < 5; pos++) {
        admission_split(&group, 3, pos, &out);
        assert_int_equal(out.revocations, 7);
        assert_int_equal(out.allowed, pos < 3);
        assert_int_equal(out.remaining, pos < 3 ? 2 + (3 - 1 - pos) : 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_equals_single_steps),
        cmocka_unit_test(test_split_keeps_revocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
