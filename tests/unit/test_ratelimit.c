/* Unit tests for ratelimit.c: GCRA arithmetic, rate parsing, the header fields, the in-memory
 * table and the switch to it and back when Redis fails. Redis itself is replaced here by a
 * stand-in for redis_eval() that runs the same step on its own clock; the real Lua script is
 * exercised by the integration tests against a real Redis. */
#include "apikey.c"
#include "ratelimit.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define S 1000000LL /* one second in microseconds */

/* ---- the stand-in for Redis */
static bool redis_up = true;
static int64_t redis_now = 1700000000 * S;
static int64_t redis_tat;
static int redis_calls;
static int64_t redis_revocations = 3;

int redis_eval(struct redis *c, const char *script, const char *const *keys, int nkeys,
               const long long *args, int nargs, long long *out, size_t nout)
{
    struct ratelimit_result r;
    (void)c;
    redis_calls++;
    assert_ptr_equal(script, gcra_script);
    assert_int_equal(nkeys, 2);
    assert_string_equal(keys[1], RATELIMIT_REVOCATIONS_KEY);
    assert_true(strncmp(keys[0], "rl:", 3) == 0);
    assert_int_equal(nargs, 4);
    assert_int_equal(nout, 5);
    if (!redis_up)
        return -EAGAIN;
    out[0] = ratelimit_gcra_n(&redis_tat, redis_now, args[0], args[1], args[3], args[2] == 1, &r);
    out[1] = r.remaining;
    out[2] = r.reset_us;
    out[3] = r.retry_us;
    out[4] = redis_revocations;
    return 0;
}

const char *redis_error(const struct redis *c)
{
    (void)c;
    return "stand-in is down";
}

static void test_interval_rounds_up(void **state)
{
    (void)state;
    struct ratelimit_policy p = {.limit = 20, .window = 1, .burst = 20};
    assert_int_equal(ratelimit_interval_us(&p), 50000);
    p = (struct ratelimit_policy){.limit = 7, .window = 1, .burst = 7};
    assert_int_equal(ratelimit_interval_us(&p), 142858); /* 142857.14...: never faster */
    p = (struct ratelimit_policy){.limit = 1000000, .window = 1, .burst = 1};
    assert_int_equal(ratelimit_interval_us(&p), 1);
    p = (struct ratelimit_policy){.limit = 1, .window = 3600, .burst = 1};
    assert_int_equal(ratelimit_interval_us(&p), 3600 * S);
    p = (struct ratelimit_policy){.limit = 10, .window = 60, .burst = 10};
    assert_int_equal(ratelimit_interval_us(&p), 6 * S);
}

static void test_gcra_burst_then_rate(void **state)
{
    int64_t tat = 0, now = 1000 * S, T = S / 10; /* 10/s */
    struct ratelimit_result r;
    (void)state;

    /* A burst of 5 at once: remaining counts down, then a refusal one interval long. */
    for (int i = 0; i < 5; i++) {
        ratelimit_gcra(&tat, now, T, 5, true, &r);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 4 - i);
        assert_int_equal(r.reset_us, (i + 1) * T);
    }
    ratelimit_gcra(&tat, now, T, 5, true, &r);
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_us, T);
    assert_int_equal(r.reset_us, 5 * T);
    assert_int_equal(tat, now + 5 * T); /* a refusal costs nothing */

    /* Just before the interval: still refused; at it: one more, and none after. */
    ratelimit_gcra(&tat, now + T - 1, T, 5, true, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_us, 1);
    ratelimit_gcra(&tat, now + T, T, 5, true, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
    ratelimit_gcra(&tat, now + T, T, 5, true, &r);
    assert_false(r.allowed);

    /* Idle for long: the full burst is back, no more. */
    ratelimit_gcra(&tat, now + 100 * S, T, 5, true, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 4);
}

static void test_gcra_never_exceeds_rate_plus_burst(void **state)
{
    int64_t tat = 0, start = 5000 * S, T = S / 20; /* 20/s, burst 20 */
    struct ratelimit_result r;
    int admitted = 0;
    (void)state;

    /* A request every millisecond for 10 s. */
    for (int64_t t = start; t < start + 10 * S; t += 1000) {
        ratelimit_gcra(&tat, t, T, 20, true, &r);
        admitted += r.allowed;
        if (!r.allowed)
            assert_true(r.retry_us > 0 && r.retry_us <= T);
    }
    assert_int_equal(admitted, 20 + 10 * 20 - 1);
}

static void test_gcra_peek_does_not_count(void **state)
{
    int64_t tat = 0, now = 10 * S;
    struct ratelimit_result r;
    (void)state;
    for (int i = 0; i < 10; i++) {
        ratelimit_gcra(&tat, now, S, 2, false, &r);
        assert_true(r.allowed);
    }
    assert_int_equal(tat, 0);
    ratelimit_gcra(&tat, now, S, 2, true, &r);
    ratelimit_gcra(&tat, now, S, 2, true, &r);
    ratelimit_gcra(&tat, now, S, 2, false, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_us, S);
}

static void test_parse_policy(void **state)
{
    struct ratelimit_policy p = {0};
    (void)state;
    assert_int_equal(ratelimit_parse_policy("10/min", &p), 0);
    assert_int_equal(p.limit, 10);
    assert_int_equal(p.window, 60);
    assert_int_equal(p.burst, 10);
    assert_int_equal(ratelimit_parse_policy("3/h", &p), 0);
    assert_int_equal(p.window, 3600);
    static const char *const bad[] = {"", "0/s", "10", "10/day", "fast", "-1/s", "1/s "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ratelimit_parse_policy(bad[i], &p) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

static void test_header_fields(void **state)
{
    char buf[96];
    struct ratelimit_policy p = {.limit = 100, .window = 1, .burst = 100};
    struct ratelimit_result r = {.allowed = true, .remaining = 42, .reset_us = 580000};
    (void)state;

    ratelimit_format_policy(&p, buf, sizeof(buf));
    assert_string_equal(buf, "\"default\";q=100;w=1");
    ratelimit_format_state(&r, buf, sizeof(buf));
    assert_string_equal(buf, "\"default\";r=42;t=1");
    /* Reset rounds up to whole seconds; nothing to reset is 0. */
    r.reset_us = 3 * S + 1;
    ratelimit_format_state(&r, buf, sizeof(buf));
    assert_string_equal(buf, "\"default\";r=42;t=4");
    r.reset_us = 0;
    ratelimit_format_state(&r, buf, sizeof(buf));
    assert_string_equal(buf, "\"default\";r=42;t=0");
    /* A refusal: t is the Retry-After, at least 1. */
    r = (struct ratelimit_result){.allowed = false, .reset_us = 3600 * S, .retry_us = 10};
    assert_int_equal(ratelimit_retry_after(&r), 1);
    ratelimit_format_state(&r, buf, sizeof(buf));
    assert_string_equal(buf, "\"default\";r=0;t=1");
    r.retry_us = 1199 * S + 5;
    assert_int_equal(ratelimit_retry_after(&r), 1200);
    ratelimit_format_state(&r, buf, sizeof(buf));
    assert_string_equal(buf, "\"default\";r=0;t=1200");
    p = (struct ratelimit_policy){.limit = 1000000, .window = 3600, .burst = 1000000};
    ratelimit_format_policy(&p, buf, sizeof(buf));
    assert_string_equal(buf, "\"default\";q=1000000;w=3600");
}

static void test_local_table_keys_are_separate(void **state)
{
    struct ratelimit_local l;
    struct ratelimit_policy p = {.limit = 1, .window = 3600, .burst = 2};
    struct ratelimit_result r;
    (void)state;

    assert_int_equal(ratelimit_local_init(&l, 3), -EINVAL);
    assert_int_equal(ratelimit_local_init(&l, 64), 0);
    for (int i = 0; i < 2; i++) {
        ratelimit_local_check(&l, "k:1", 100 * S, &p, true, &r);
        assert_true(r.allowed);
    }
    ratelimit_local_check(&l, "k:1", 100 * S, &p, true, &r);
    assert_false(r.allowed);
    ratelimit_local_check(&l, "k:2", 100 * S, &p, true, &r);
    assert_true(r.allowed);
    ratelimit_local_check(&l, "a:192.0.2.1", 100 * S, &p, true, &r);
    assert_true(r.allowed);
    ratelimit_local_check(&l, "k:1", 100 * S, &p, true, &r);
    assert_false(r.allowed);
    ratelimit_local_release(&l);
    ratelimit_local_release(&l);
}

static void test_local_table_stays_bounded(void **state)
{
    struct ratelimit_local l;
    struct ratelimit_policy p = {.limit = 1, .window = 3600, .burst = 1};
    struct ratelimit_result r;
    char key[32];
    (void)state;

    /* Far more keys than slots: each new key finds a slot (forgetting the one nearest to
     * its full burst), and the newest key is still limited. */
    assert_int_equal(ratelimit_local_init(&l, 16), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k:%d", i);
        ratelimit_local_check(&l, key, 100 * S + i, &p, true, &r);
        assert_true(r.allowed);
        ratelimit_local_check(&l, key, 100 * S + i, &p, true, &r);
        assert_false(r.allowed);
    }
    ratelimit_local_release(&l);
}

static void test_falls_back_and_returns(void **state)
{
    struct metrics m;
    struct ratelimit rl;
    struct ratelimit_policy p = {.limit = 1, .window = 3600, .burst = 3};
    struct ratelimit_result r;
    (void)state;

    memset(&m, 0, sizeof(m));
    assert_int_equal(ratelimit_init(&rl, &m), 0);
    redis_up = true;
    redis_tat = 0;
    ratelimit_check(&rl, NULL, "k:9", &p, true, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 2);
    assert_int_equal(r.revocations, 3);
    assert_int_equal(atomic_load(&m.ratelimit_fallback), 0);

    /* Redis fails: the same limit in memory, counted once as a fallback. */
    redis_up = false;
    for (int i = 0; i < 3; i++) {
        ratelimit_check(&rl, NULL, "k:9", &p, true, &r);
        assert_true(r.allowed);
    }
    ratelimit_check(&rl, NULL, "k:9", &p, true, &r);
    assert_false(r.allowed);
    assert_true(r.retry_us > 0);
    assert_int_equal(r.revocations, -1); /* unknown without Redis */
    assert_int_equal(atomic_load(&m.ratelimit_fallback), 1);
    assert_int_equal(atomic_load(&m.ratelimit_fallbacks), 1);

    /* Back: Redis's count applies again and the gauge drops. */
    redis_up = true;
    ratelimit_check(&rl, NULL, "k:9", &p, true, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 1);
    assert_int_equal(atomic_load(&m.ratelimit_fallback), 0);
    redis_up = false;
    ratelimit_check(&rl, NULL, "k:9", &p, false, &r);
    assert_int_equal(atomic_load(&m.ratelimit_fallbacks), 2);
    ratelimit_release(&rl);
    ratelimit_release(&rl);
}

/* n requests admitted at once must be exactly what n single steps at the same instant admit,
 * leaving the same state: batching never lets more through. */
static void test_gcra_n_equals_n_steps(void **state)
{
    (void)state;
    const int64_t T = 50000, now0 = 1700000000LL * 1000000;
    for (int64_t burst = 1; burst <= 7; burst++)
        for (int64_t n = 1; n <= 12; n++)
            for (int64_t lead = -3; lead <= 9; lead++) {
                int64_t start = now0 + lead * T / 2, tat_n = start, tat_1 = start, admitted = 0;
                struct ratelimit_result rn, r1;
                int64_t k = ratelimit_gcra_n(&tat_n, now0, T, burst, n, true, &rn);
                for (int64_t i = 0; i < n; i++) {
                    ratelimit_gcra(&tat_1, now0, T, burst, true, &r1);
                    admitted += r1.allowed;
                }
                assert_int_equal(k, admitted);
                assert_int_equal(tat_n, tat_1);
                assert_int_equal(rn.allowed, k > 0);
                if (k > 0 && k < n)
                    assert_true(rn.retry_us > 0);
                if (k == 0) {
                    assert_int_equal(rn.retry_us, r1.retry_us);
                    assert_int_equal(rn.reset_us, r1.reset_us);
                }
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval_rounds_up),
        cmocka_unit_test(test_gcra_burst_then_rate),
        cmocka_unit_test(test_gcra_never_exceeds_rate_plus_burst),
        cmocka_unit_test(test_gcra_peek_does_not_count),
        cmocka_unit_test(test_gcra_n_equals_n_steps),
        cmocka_unit_test(test_parse_policy),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_local_table_keys_are_separate),
        cmocka_unit_test(test_local_table_stays_bounded),
        cmocka_unit_test(test_falls_back_and_returns),
    };
    log_init("test_ratelimit", LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
