/* Unit tests of the kgs key buffer: exact counts, FIFO across batches, shuffling, timeouts
 * and a producer racing a consumer. The module is #included so the test links nothing but it
 * and the common library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keybuf.c"

/* Distinct keys "k000000", "k000001", ... so order and identity are easy to check. */
static void make_keys(char (*keys)[KEYBUF_SLOT], size_t n, size_t first)
{
    for (size_t i = 0; i < n; i++)
        snprintf(keys[i], KEYBUF_SLOT, "k%06zu", first + i);
}

static size_t key_index(const char *key)
{
    return (size_t)strtoul(key + 1, NULL, 10);
}

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void test_put_take_counts(void **state)
{
    struct keybuf b;
    char in[100][KEYBUF_SLOT], out[100][KEYBUF_SLOT];
    bool seen[100] = {false};
    (void)state;

    assert_int_equal(keybuf_init(&b, 64), 0);
    make_keys(in, 100, 0);
    /* Only what fits is stored; the caller learns how much. */
    assert_int_equal(keybuf_put(&b, in, 100), 64);
    assert_int_equal(keybuf_count(&b), 64);
    assert_int_equal(keybuf_take(&b, 10, out, 0), 0);
    assert_int_equal(keybuf_count(&b), 54);
    assert_int_equal(keybuf_take(&b, 54, out + 10, 0), 0);
    assert_int_equal(keybuf_count(&b), 0);
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(strlen(out[i]), GENERATED_KEY_LEN);
        size_t k = key_index(out[i]);
        assert_true(k < 100);
        assert_false(seen[k]);
        seen[k] = true;
    }
    assert_int_equal(keybuf_take(&b, 0, out, 0), -EINVAL);
    assert_int_equal(keybuf_take(&b, 65, out, 0), -EINVAL);
    keybuf_release(&b);
}

/* Exactly n keys come out, never more, also when the ring wraps around. */
static void test_take_exact_with_wrap(void **state)
{
    struct keybuf b;
    char in[10][KEYBUF_SLOT], out[11][KEYBUF_SLOT];
    size_t next = 0, taken = 0;
    bool seen[1000] = {false};
    (void)state;

    assert_int_equal(keybuf_init(&b, 16), 0);
    for (int round = 0; round < 100; round++) {
        make_keys(in, 10, next);
        assert_int_equal(keybuf_put(&b, in, 10), 10);
        next += 10;
        memset(out, 'x', sizeof(out));
        assert_int_equal(keybuf_take(&b, 7, out, 0), 0);
        /* The slot after the last one asked for is untouched. */
        for (size_t j = 0; j < KEYBUF_SLOT; j++)
            assert_int_equal(out[7][j], 'x');
        for (size_t i = 0; i < 7; i++) {
            size_t k = key_index(out[i]);
            assert_true(k < next);
            assert_false(seen[k]);
            seen[k] = true;
        }
        taken += 7;
        assert_int_equal(keybuf_take(&b, 3, out, 0), 0);
        for (size_t i = 0; i < 3; i++) {
            size_t k = key_index(out[i]);
            assert_false(seen[k]);
            seen[k] = true;
        }
        taken += 3;
        assert_int_equal(keybuf_count(&b), 0);
    }
    assert_int_equal(taken, 1000);
    keybuf_release(&b);
}

/* A batch of 1000 comes out in a different order. The identity permutation has probability
 * 1/1000!, and more than 20 fixed points (1 expected) less than 1e-18. */
static void test_shuffles(void **state)
{
    enum { N = 1000 };
    struct keybuf b;
    static char in[N][KEYBUF_SLOT], out[N][KEYBUF_SLOT];
    bool seen[N] = {false};
    size_t fixed = 0;
    (void)state;

    assert_int_equal(keybuf_init(&b, N), 0);
    make_keys(in, N, 0);
    assert_int_equal(keybuf_put(&b, in, N), N);
    assert_int_equal(keybuf_take(&b, N, out, 0), 0);
    for (size_t i = 0; i < N; i++) {
        size_t k = key_index(out[i]);
        assert_true(k < N);
        assert_false(seen[k]);
        seen[k] = true;
        if (k == i)
            fixed++;
    }
    assert_true(fixed <= 20);
    keybuf_release(&b);
}

static long long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void test_take_times_out(void **state)
{
    struct keybuf b;
    char in[3][KEYBUF_SLOT], out[5][KEYBUF_SLOT];
    struct timespec start;
    long long ms;
    (void)state;

    assert_int_equal(keybuf_init(&b, 10), 0);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(keybuf_take(&b, 1, out, 150), -EAGAIN);
    ms = elapsed_ms(&start);
    assert_true(ms >= 140 && ms < 2000);

    /* Too few keys is no better than none, and the ones there stay there. */
    make_keys(in, 3, 0);
    assert_int_equal(keybuf_put(&b, in, 3), 3);
    assert_int_equal(keybuf_take(&b, 5, out, 50), -EAGAIN);
    assert_int_equal(keybuf_count(&b), 3);

    /* A level that is never reached makes wait_below a plain sleep. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(keybuf_wait_below(&b, 0, 100), 3);
    assert_true(elapsed_ms(&start) >= 90);
    /* Below the level already: no wait at all. */
    assert_int_equal(keybuf_wait_below(&b, 4, 5000), 3);

    keybuf_stop(&b);
    assert_true(keybuf_stopping(&b));
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(keybuf_take(&b, 1, out, 5000), -EAGAIN);
    assert_int_equal(keybuf_wait_below(&b, 0, 5000), 3);
    assert_true(elapsed_ms(&start) < 1000);
    keybuf_release(&b);
}

enum { RACE_BATCHES = 200, RACE_BATCH = 100, RACE_TOTAL = RACE_BATCHES * RACE_BATCH };

struct race {
    struct keybuf b;
    size_t produced;
};

/* Behaves like the refill thread: waits for the level to drop, then tops up. */
static void *producer(void *arg)
{
    struct race *r = arg;
    char batch[RACE_BATCH][KEYBUF_SLOT];

    while (r->produced < RACE_TOTAL) {
        if (keybuf_wait_below(&r->b, r->b.cap / 2, 1000) >= r->b.cap / 2)
            continue;
        make_keys(batch, RACE_BATCH, r->produced);
        size_t stored = keybuf_put(&r->b, batch, RACE_BATCH);
        if (stored != RACE_BATCH)
            return (void *)1;
        r->produced += stored;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    static struct race r;
    static bool seen[RACE_TOTAL];
    char out[13][KEYBUF_SLOT];
    size_t got = 0;
    pthread_t t;
    void *result;
    (void)state;

    memset(seen, 0, sizeof(seen));
    r.produced = 0;
    assert_int_equal(keybuf_init(&r.b, 1000), 0);
    assert_int_equal(pthread_create(&t, NULL, producer, &r), 0);
    while (got < RACE_TOTAL) {
        size_t n = RACE_TOTAL - got < 13 ? RACE_TOTAL - got : 13;
        assert_int_equal(keybuf_take(&r.b, n, out, 5000), 0);
        for (size_t i = 0; i < n; i++) {
            size_t k = key_index(out[i]);
            assert_true(k < RACE_TOTAL);
            assert_false(seen[k]);
            seen[k] = true;
        }
        got += n;
    }
    assert_int_equal(pthread_join(t, &result), 0);
    assert_null(result);
    assert_int_equal(keybuf_count(&r.b), 0);
    keybuf_release(&r.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_take_counts), cmocka_unit_test(test_take_exact_with_wrap),
        cmocka_unit_test(test_shuffles),        cmocka_unit_test(test_take_times_out),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
