/* Unit tests of the visit counters: exact sums over many distinct keys (short and alias-long),
 * the table growing while its keys live in the arena, and counts kept when a write fails.
 * PostgreSQL is a stand-in here: store_add_visits() records what it is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "visits.c"

enum { KEYS = 50000 };

static int64_t written[KEYS];
static size_t writes;
static bool fail_writes;

static int index_of(const char *key)
{
    /* "k<number>" optionally padded with '-' up to 64 characters. */
    return atoi(key + 1);
}

int store_add_visits(struct store *st, const char *const *keys, const int64_t *counts, size_t n)
{
    (void)st;
    if (fail_writes)
        return -EAGAIN;
    writes++;
    for (size_t i = 0; i < n; i++)
        written[index_of(keys[i])] += counts[i];
    return 0;
}

void store_free(struct store *st)
{
    (void)st;
}

static void key_for(int i, char *out, size_t cap)
{
    int len = snprintf(out, cap, "k%d", i);
    if (i % 7 == 0) { /* an alias as long as aliases get */
        memset(out + len, '-', ALIAS_MAX_LEN - (size_t)len);
        out[ALIAS_MAX_LEN] = '\0';
    }
}

static void test_sums_are_exact(void **state)
{
    struct visits *v = visits_new(NULL, 60000, 4 * KEYS);
    char key[ALIAS_MAX_LEN + 1];
    (void)state;

    assert_non_null(v);
    memset(written, 0, sizeof(written));
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < KEYS; i++) {
            key_for(i, key, sizeof(key));
            for (int j = 0; j <= i % 3; j++)
                assert_true(visits_record(v, key, strlen(key)));
        }
    assert_int_equal(visits_pending(v), KEYS);
    flush(v);
    assert_int_equal(visits_pending(v), 0);
    visits_free(v);
    for (int i = 0; i < KEYS; i++)
        assert_int_equal(written[i], 3 * (i % 3 + 1));
}

static void test_full_table_drops_and_failed_writes_are_kept(void **state)
{
    struct visits *v = visits_new(NULL, 60000, 100);
    char key[ALIAS_MAX_LEN + 1];
    (void)state;

    assert_non_null(v);
    memset(written, 0, sizeof(written));
    for (int i = 0; i < 100; i++) {
        key_for(i, key, sizeof(key));
        assert_true(visits_record(v, key, strlen(key)));
    }
    assert_false(visits_record(v, "k100", 4)); /* a 101st distinct key */
    assert_true(visits_record(v, "k5", 2));    /* a known one still counts */
    fail_writes = true;
    flush(v);
    fail_writes = false;
    assert_int_equal(visits_pending(v), 100);
    flush(v);
    visits_free(v);
    assert_int_equal(written[5], 2);
    assert_int_equal(written[99], 1);
    assert_int_equal(written[100], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_are_exact),
        cmocka_unit_test(test_full_table_drops_and_failed_writes_are_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
