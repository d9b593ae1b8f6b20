/* Unit tests of the visit counters: exact sums over many distinct keys (short and alias-long),
 * the table growing while its keys live in the arena, counts kept when a write fails, and
 * short probes even for aliases chosen to collide. PostgreSQL is a stand-in here:
 * store_add_visits() records what it is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "visits.c"

enum { KEYS = 50000 };

static int64_t written[KEYS];
static int64_t written_other; /* visits to keys not made by key_for() */
static size_t writes;
static bool fail_writes;

static int index_of(const char *key)
{
    /* "k<number>" optionally padded with '-' up to 64 characters; -1 for any other key. */
    return key[0] == 'k' ? atoi(key + 1) : -1;
}

int store_add_visits(struct store *st, const char *const *keys, const int64_t *counts, size_t n)
{
    (void)st;
    if (fail_writes)
        return -EAGAIN;
    writes++;
    for (size_t i = 0; i < n; i++) {
        int at = index_of(keys[i]);
        if (at >= 0)
            written[at] += counts[i];
        else
            written_other += counts[i];
    }
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

/* A table keeps the size it grew to for the flushes after (swapped in again two flushes
 * later), so an interval with as many links as the one before grows nothing; one used to
 * less than an eighth of its size starts small again. */
static void test_table_keeps_its_size(void **state)
{
    struct visits *v = visits_new(NULL, 60000, 4 * KEYS);
    char key[ALIAS_MAX_LEN + 1];
    size_t cap;
    (void)state;

    assert_non_null(v);
    memset(written, 0, sizeof(written));
    for (int i = 0; i < KEYS; i++) {
        key_for(i, key, sizeof(key));
        assert_true(visits_record(v, key, strlen(key)));
    }
    cap = v->table.cap;
    assert_true(cap >= 2 * KEYS);
    flush(v); /* the full table is written, emptied, and kept */
    assert_int_equal(v->spare.cap, cap);
    assert_int_equal(v->spare.used, 0);
    flush(v); /* and swapped in again */
    assert_int_equal(v->table.cap, cap);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < KEYS; i++) {
            key_for(i, key, sizeof(key));
            assert_true(visits_record(v, key, strlen(key)));
        }
    assert_int_equal(v->table.cap, cap); /* nothing grew */
    assert_int_equal(visits_pending(v), KEYS);
    flush(v);
    flush(v);
    /* A sixteenth as many links: written, then the table starts small again. */
    assert_int_equal(v->table.cap, cap);
    for (int i = 0; i < KEYS / 16; i++) {
        key_for(i, key, sizeof(key));
        assert_true(visits_record(v, key, strlen(key)));
    }
    flush(v);
    assert_int_equal(v->spare.cap, INITIAL_CAP);
    visits_free(v);
    for (int i = 0; i < KEYS; i++)
        assert_int_equal(written[i], 3 + (i < KEYS / 16));
}

/* The hash visits.c used before its hash was keyed: FNV-1a (with an offset basis one digit
 * short of the usual one). Anybody could compute it, and so choose aliases that collide. */
static uint64_t old_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return h;
}

static const char alias_chars[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";

enum { COLLIDING = 3000, COLLIDING_CAP = 8192, COLLIDING_LEN = 6 };

/* Writes n valid aliases ("x" and five alias characters) whose old hash is 0 in its low
 * log2(cap) bits: under it every one of them starts its probe in slot 0, at every table size
 * up to cap. The prefix's state is computed once for the 64 last characters. */
static void colliding_aliases(char (*out)[COLLIDING_LEN + 1], size_t n, size_t cap)
{
    size_t found = 0;

    for (uint32_t p = 0; found < n; p++) {
        char a[COLLIDING_LEN + 1] = "x";
        for (int i = 0; i < 4; i++)
            a[1 + i] = alias_chars[(p >> (6 * i)) & 63];
        uint64_t prefix = old_hash(a, 5);
        for (int c = 0; c < 64 && found < n; c++) {
            uint64_t h = (prefix ^ (unsigned char)alias_chars[c]) * 1099511628211ULL;
            if ((h & (cap - 1)) != 0)
                continue;
            a[5] = alias_chars[c];
            assert_true(old_hash(a, COLLIDING_LEN) == h);
            memcpy(out[found++], a, sizeof(a));
        }
        assert_true(p < (1u << 24));
    }
}

/* Aliases chosen to collide under an unkeyed hash still find their slots in a few probes:
 * with linear probing, COLLIDING of them in one place would cost COLLIDING^2/2 probes to
 * insert, again on every flush that has to put counts back, and a lookup as long as the
 * cluster for each redirect that counts a visit. */
static void test_colliding_aliases_probe_briefly(void **state)
{
    char(*aliases)[COLLIDING_LEN + 1] = calloc(COLLIDING, sizeof(*aliases));
    struct visits *v = visits_new(NULL, 60000, 4 * COLLIDING);
    size_t max_probe = 0, total_probes = 0, used = 0;
    (void)state;

    assert_non_null(aliases);
    assert_non_null(v);
    colliding_aliases(aliases, COLLIDING, COLLIDING_CAP);
    for (size_t i = 0; i < COLLIDING; i++)
        assert_true(visits_record(v, aliases[i], COLLIDING_LEN));
    /* The size they were chosen to collide in: the table grew to it and no further. */
    assert_int_equal(v->table.cap, COLLIDING_CAP);
    for (size_t i = 0; i < v->table.cap; i++) {
        const struct slot *s = &v->table.slots[i];
        if (!s->count)
            continue;
        /* The probes a search for this key makes: from its home slot to here. */
        size_t probes =
            ((i - home_of(&v->table, key_of(&v->table, s), s->len)) & (v->table.cap - 1)) + 1;
        max_probe = probes > max_probe ? probes : max_probe;
        total_probes += probes;
        used++;
    }
    assert_int_equal(used, COLLIDING);
    /* At a load of 3000/8192, linear probing under a random hash averages ~1.3 probes per
     * key; in 200,000 simulated runs the average never passed 1.4, the longest search passed
     * 40 once and 64 never. The old hash: 1500 on average, 3000 at most. */
    printf("colliding aliases: %zu keys, %.2f probes on average, %zu at most\n", used,
           (double)total_probes / (double)used, max_probe);
    assert_true(total_probes <= 2 * used);
    assert_true(max_probe <= 64);

    written_other = 0;
    flush(v);
    assert_int_equal(written_other, COLLIDING);
    visits_free(v);
    free(aliases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_are_exact),
        cmocka_unit_test(test_full_table_drops_and_failed_writes_are_kept),
        cmocka_unit_test(test_table_keeps_its_size),
        cmocka_unit_test(test_colliding_aliases_probe_briefly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
