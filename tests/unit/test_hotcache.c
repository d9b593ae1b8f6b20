/* Unit tests of the in-process hot cache: hits and misses, the epoch that keeps a fill racing
 * an eviction out, disabling, pausing, the age bound and its spread, and that it never grows
 * past its capacity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "hotcache.c"

#define NOW 1000000

static uint64_t visits_seen;

static void count_visit(void *ctx, const char *key, size_t keylen, uint32_t count)
{
    (void)ctx;
    (void)key;
    (void)keylen;
    visits_seen += count;
}

static struct hotcache *enabled_cache(size_t entries)
{
    struct hotcache *h = hotcache_new(entries, 60, count_visit, NULL);
    assert_non_null(h);
    hotcache_set_enabled(h, true);
    return h;
}

static void test_put_then_get(void **state)
{
    struct hotcache *h = enabled_cache(64);
    char url[64];
    int64_t exp = -1;
    int status;
    (void)state;

    assert_int_equal(hotcache_get(h, "abc", 3, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    hotcache_put(h, hotcache_epoch(h), "abc", 3, "https://e.com/a", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "abc", 3, url, sizeof(url), &exp, &status, NOW, false), 0);
    assert_string_equal(url, "https://e.com/a");
    assert_int_equal(exp, 0);
    /* Replacing keeps one entry. */
    hotcache_put(h, hotcache_epoch(h), "abc", 3, "https://e.com/b", NOW + 50, 307, NOW);
    assert_int_equal(hotcache_get(h, "abc", 3, url, sizeof(url), &exp, &status, NOW, false), 0);
    assert_string_equal(url, "https://e.com/b");
    assert_int_equal(exp, NOW + 50);
    assert_int_equal(status, 307);
    assert_int_equal(hotcache_count(h), 1);
    /* Keys differing only in length or one byte are different keys. */
    assert_int_equal(hotcache_get(h, "ab", 2, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    assert_int_equal(hotcache_get(h, "abd", 3, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    hotcache_free(h);
}

static void test_evict_and_stale_fill(void **state)
{
    struct hotcache *h = enabled_cache(64);
    char url[64];
    int64_t exp;
    int status;
    (void)state;

    hotcache_put(h, hotcache_epoch(h), "k1", 2, "https://e.com/1", 0, 0, NOW);
    uint64_t before = hotcache_epoch(h); /* a lookup of k2 starts */
    hotcache_evict(h, "k1", 2);          /* a deletion of anything arrives meanwhile */
    assert_int_equal(hotcache_get(h, "k1", 2, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    /* The lookup that began before the eviction must not cache what it found. */
    hotcache_put(h, before, "k2", 2, "https://e.com/2", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "k2", 2, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    hotcache_put(h, hotcache_epoch(h), "k2", 2, "https://e.com/2", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "k2", 2, url, sizeof(url), &exp, &status, NOW, false), 0);
    assert_int_equal(hotcache_count(h), 1);
    hotcache_free(h);
}

static void test_disabled_holds_nothing(void **state)
{
    struct hotcache *h = hotcache_new(64, 60, count_visit, NULL);
    char url[64];
    int64_t exp;
    int status;
    (void)state;

    assert_false(hotcache_enabled(h));
    hotcache_put(h, hotcache_epoch(h), "k", 1, "https://e.com/", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "k", 1, url, sizeof(url), &exp, &status, NOW, false), -ENOENT);
    hotcache_set_enabled(h, true);
    uint64_t e = hotcache_epoch(h);
    hotcache_put(h, e, "k", 1, "https://e.com/", 0, 0, NOW);
    assert_int_equal(hotcache_count(h), 1);
    /* Turning off empties it, and a fill begun while on is refused once it is off. */
    hotcache_set_enabled(h, false);
    assert_int_equal(hotcache_count(h), 0);
    hotcache_put(h, e, "k", 1, "https://e.com/", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "k", 1, url, sizeof(url), &exp, &status, NOW, false), -ENOENT);
    /* A fill begun before it was turned back on is refused too. */
    hotcache_set_enabled(h, true);
    hotcache_put(h, e, "k", 1, "https://e.com/", 0, 0, NOW);
    assert_int_equal(hotcache_count(h), 0);
    hotcache_free(h);

    h = hotcache_new(0, 60, count_visit, NULL); /* HOT_CACHE_ENTRIES=0 */
    assert_non_null(h);
    hotcache_set_enabled(h, true);
    assert_false(hotcache_enabled(h));
    hotcache_put(h, hotcache_epoch(h), "k", 1, "https://e.com/", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "k", 1, url, sizeof(url), &exp, &status, NOW, false), -ENOENT);
    hotcache_evict(h, "k", 1);
    hotcache_free(h);
}

static void test_age_bound_and_sizes(void **state)
{
    struct hotcache *h = enabled_cache(64);
    char url[16], key[KEY_MAX_LEN + 2];
    int64_t exp;
    int status;
    (void)state;

    hotcache_put(h, hotcache_epoch(h), "old", 3, "https://e.com/", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "old", 3, url, sizeof(url), &exp, &status, NOW + 20, false),
                     0);
    assert_int_equal(hotcache_get(h, "old", 3, url, sizeof(url), &exp, &status, NOW + 45, false),
                     HOTCACHE_REFRESH);
    assert_int_equal(hotcache_get(h, "old", 3, url, sizeof(url), &exp, &status, NOW + 61, false),
                     -ENOENT);
    /* A URL that does not fit the caller's buffer is a miss, not a truncation. */
    hotcache_put(h, hotcache_epoch(h), "long", 4, "https://example.com/long", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "long", 4, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    /* Keys longer than any alias are never cached. */
    memset(key, 'a', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    hotcache_put(h, hotcache_epoch(h), key, sizeof(key) - 1, "https://e.com/", 0, 0, NOW);
    assert_int_equal(
        hotcache_get(h, key, sizeof(key) - 1, url, sizeof(url), &exp, &status, NOW, false),
        -ENOENT);
    hotcache_free(h);
}

/* Links cached in the same second go stale over the last quarter of the age bound, not in
 * the same second: every one is served for three quarters of it and none past it. */
static void test_refreshes_spread_out(void **state)
{
    struct hotcache *h = enabled_cache(1024);
    char url[32], key[8];
    int64_t exp;
    int status, early = 0, middle = 0, late = 0;
    (void)state;

    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        hotcache_put(h, hotcache_epoch(h), key, strlen(key), "https://e.com/", 0, 0, NOW);
    }
    assert_int_equal(hotcache_count(h), 64);
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        early += hotcache_get(h, key, strlen(key), url, sizeof(url), &exp, &status, NOW + 45,
                              false) >= 0;
        middle += hotcache_get(h, key, strlen(key), url, sizeof(url), &exp, &status, NOW + 52,
                               false) >= 0;
        late += hotcache_get(h, key, strlen(key), url, sizeof(url), &exp, &status, NOW + 61,
                             false) >= 0;
    }
    assert_int_equal(early, 64);
    assert_true(middle > 0 && middle < 64);
    assert_int_equal(late, 0);
    hotcache_free(h);
}

static void test_bounded_and_keeps_the_referenced(void **state)
{
    enum { CAP = 1024 };
    struct hotcache *h = enabled_cache(CAP);
    char key[16], url[64];
    int64_t exp;
    int status;
    unsigned kept = 0;
    (void)state;

    for (int i = 0; i < 20 * CAP; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        hotcache_put(h, hotcache_epoch(h), key, strlen(key), "https://e.com/", 0, 0, NOW);
        /* k0..k99 are read after every insert: CLOCK must keep most of them. */
        snprintf(key, sizeof(key), "k%d", i % 100);
        hotcache_get(h, key, strlen(key), url, sizeof(url), &exp, &status, NOW, false);
    }
    assert_true(hotcache_count(h) <= CAP);
    assert_true(hotcache_count(h) >= CAP * 3 / 4);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        kept += hotcache_get(h, key, strlen(key), url, sizeof(url), &exp, &status, NOW, false) == 0;
    }
    assert_true(kept >= 90);
    hotcache_free(h);
}

/* Visits counted in entries all come out: by harvest, or when their entry leaves. */
static void test_visits_are_handed_on(void **state)
{
    struct hotcache *h = enabled_cache(64);
    char url[64];
    int64_t exp;
    int status;
    (void)state;

    visits_seen = 0;
    hotcache_put(h, hotcache_epoch(h), "a", 1, "https://e.com/a", 0, 0, NOW);
    hotcache_put(h, hotcache_epoch(h), "b", 1, "https://e.com/b", NOW + 10, 0, NOW);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW, true), 0);
    assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW, false), 0);
    assert_int_equal(hotcache_get(h, "b", 1, url, sizeof(url), &exp, &status, NOW, true), 0);
    /* An expired link's hit is no visit (the caller answers 404). */
    assert_int_equal(hotcache_get(h, "b", 1, url, sizeof(url), &exp, &status, NOW + 10, true), 0);
    hotcache_harvest(h);
    assert_int_equal(visits_seen, 6);
    hotcache_harvest(h);
    assert_int_equal(visits_seen, 6);
    assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW, true), 0);
    hotcache_evict(h, "a", 1);
    assert_int_equal(visits_seen, 7);
    assert_int_equal(hotcache_get(h, "b", 1, url, sizeof(url), &exp, &status, NOW, true), 0);
    hotcache_set_enabled(h, false);
    assert_int_equal(visits_seen, 8);
    hotcache_free(h);
}

/* Paused: nothing is answered or added (not even by a fill begun before), evictions still
 * apply, and resuming answers with what was kept. */
static void test_paused_keeps_its_entries(void **state)
{
    struct hotcache *h = enabled_cache(64);
    char url[64];
    int64_t exp;
    int status;
    (void)state;

    hotcache_put(h, hotcache_epoch(h), "kept", 4, "https://e.com/k", 0, 0, NOW);
    hotcache_put(h, hotcache_epoch(h), "gone", 4, "https://e.com/g", 0, 0, NOW);
    uint64_t before = hotcache_epoch(h);
    hotcache_suspend(h);
    assert_false(hotcache_enabled(h));
    assert_int_equal(hotcache_count(h), 2);
    assert_int_equal(hotcache_get(h, "kept", 4, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    hotcache_put(h, hotcache_epoch(h), "new", 3, "https://e.com/n", 0, 0, NOW);
    hotcache_evict(h, "gone", 4);
    assert_int_equal(hotcache_count(h), 1);
    hotcache_resume(h);
    assert_true(hotcache_enabled(h));
    hotcache_put(h, before, "late", 4, "https://e.com/l", 0, 0, NOW);
    assert_int_equal(hotcache_get(h, "kept", 4, url, sizeof(url), &exp, &status, NOW, false), 0);
    assert_string_equal(url, "https://e.com/k");
    assert_int_equal(hotcache_get(h, "gone", 4, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    assert_int_equal(hotcache_get(h, "new", 3, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    assert_int_equal(hotcache_get(h, "late", 4, url, sizeof(url), &exp, &status, NOW, false),
                     -ENOENT);
    assert_int_equal(hotcache_count(h), 1);
    hotcache_free(h);
}

/* A stale entry read again: put back fresh (answered again without a refresh), or forgotten
 * without disturbing a put of another key that began before. */
static void test_refreshed_or_forgotten(void **state)
{
    /* Trusted 8 s less up to 2: read again after NOW + 4 at the latest, never answered
     * after NOW + 8. */
    struct hotcache *h = hotcache_new(64, 8, count_visit, NULL);
    char url[64];
    int64_t exp;
    int status;
    (void)state;

    hotcache_set_enabled(h, true);
    hotcache_put(h, hotcache_epoch(h), "a", 1, "https://e.com/a", 0, 0, NOW);
    hotcache_put(h, hotcache_epoch(h), "b", 1, "https://e.com/b", 0, 0, NOW);
    hotcache_put(h, hotcache_epoch(h), "c", 1, "https://e.com/c", 0, 0, NOW);
    /* In the second half of its age: answered, and only the first caller is told to have it
     * read again. */
    assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW + 5, false),
                     HOTCACHE_REFRESH);
    assert_string_equal(url, "https://e.com/a");
    assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW + 5, false), 0);
    assert_int_equal(hotcache_get(h, "b", 1, url, sizeof(url), &exp, &status, NOW + 5, false),
                     HOTCACHE_REFRESH);
    uint64_t e = hotcache_epoch(h); /* the refresh reads Redis */
    hotcache_forget(h, "b", 1);     /* b was not there */
    hotcache_put(h, e, "a", 1, "https://e.com/a2", 0, 301, NOW + 5);
    assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW + 6, false), 0);
    assert_string_equal(url, "https://e.com/a2");
    assert_int_equal(status, 301);
    assert_int_equal(hotcache_get(h, "b", 1, url, sizeof(url), &exp, &status, NOW + 6, false),
                     -ENOENT);
    /* Never read again: answered until its age is over, then a miss. */
    assert_int_equal(hotcache_get(h, "c", 1, url, sizeof(url), &exp, &status, NOW + 5, false),
                     HOTCACHE_REFRESH);
    assert_int_equal(hotcache_get(h, "c", 1, url, sizeof(url), &exp, &status, NOW + 6, false), 0);
    assert_int_equal(hotcache_get(h, "c", 1, url, sizeof(url), &exp, &status, NOW + 9, false),
                     -ENOENT);
    /* The refreshed one is trusted anew from its refresh. */
    assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW + 10, false),
                     HOTCACHE_REFRESH);
    assert_int_equal(hotcache_count(h), 2);
    hotcache_free(h);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The sweep finds every entry in the second half of its age, once, and none before or after,
 * in slices that together cover the table. */
static void test_sweep_finds_the_due(void **state)
{
    struct hotcache *h = hotcache_new(64, 8, count_visit, NULL); /* due NOW+4, stale NOW+8 */
    char keys[HOT_WAYS * 4][KEY_MAX_LEN + 1];
    char url[64];
    int64_t exp;
    int status;
    size_t cursor = 0, sets;
    (void)state;

    sets = 1;
    assert_int_equal(hotcache_due(h, NOW + 5, &cursor, &sets, keys, HOT_WAYS * 4), 0);
    assert_int_equal(sets, 0); /* disabled: nothing to look at */
    hotcache_set_enabled(h, true);
    size_t nsets = hotcache_sets(h);
    assert_true(nsets >= 2);
    hotcache_put(h, hotcache_epoch(h), "a", 1, "https://e.com/a", 0, 0, NOW);
    hotcache_put(h, hotcache_epoch(h), "b", 1, "https://e.com/b", 0, 0, NOW);
    hotcache_put(h, hotcache_epoch(h), "c", 1, "https://e.com/c", 0, 0, NOW);
    hotcache_put(h, hotcache_epoch(h), "late", 4, "https://e.com/l", 0, 0, NOW + 3);
    /* Not yet due. */
    sets = nsets;
    assert_int_equal(hotcache_due(h, NOW + 2, &cursor, &sets, keys, HOT_WAYS * 4), 0);
    assert_int_equal(cursor, 0);
    /* Too little room for a set's worth: nothing looked at. */
    sets = nsets;
    assert_int_equal(hotcache_due(h, NOW + 5, &cursor, &sets, keys, HOT_WAYS - 1), 0);
    assert_int_equal(sets, nsets);
    /* Slices of one set each add up to the whole table; the entry cached later is not due. */
    size_t n = 0;
    for (size_t i = 0; i < nsets; i++) {
        sets = 1;
        n += hotcache_due(h, NOW + 5, &cursor, &sets, keys + n, HOT_WAYS * 4 - n);
        assert_int_equal(sets, 0);
    }
    assert_int_equal(cursor, 0);
    assert_int_equal(n, 3);
    qsort(keys, n, sizeof(keys[0]), cmp_keys);
    assert_string_equal(keys[0], "a");
    assert_string_equal(keys[1], "b");
    assert_string_equal(keys[2], "c");
    /* Once found, neither the next sweep nor a hit asks for it again. */
    sets = nsets;
    assert_int_equal(hotcache_due(h, NOW + 6, &cursor, &sets, keys, HOT_WAYS * 4), 0);
    assert_int_equal(hotcache_get(h, "a", 1, url, sizeof(url), &exp, &status, NOW + 6, false), 0);
    /* Read again, it is trusted anew; past its age, a stale entry is not due but gone. */
    hotcache_put(h, hotcache_epoch(h), "a", 1, "https://e.com/a", 0, 0, NOW + 6);
    sets = nsets;
    assert_int_equal(hotcache_due(h, NOW + 9, &cursor, &sets, keys, HOT_WAYS * 4), 1);
    assert_string_equal(keys[0], "late");
    sets = nsets;
    assert_int_equal(hotcache_due(h, NOW + 11, &cursor, &sets, keys, HOT_WAYS * 4), 1);
    assert_string_equal(keys[0], "a");
    hotcache_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_then_get),
        cmocka_unit_test(test_evict_and_stale_fill),
        cmocka_unit_test(test_disabled_holds_nothing),
        cmocka_unit_test(test_age_bound_and_sizes),
        cmocka_unit_test(test_refreshes_spread_out),
        cmocka_unit_test(test_bounded_and_keeps_the_referenced),
        cmocka_unit_test(test_visits_are_handed_on),
        cmocka_unit_test(test_paused_keeps_its_entries),
        cmocka_unit_test(test_refreshed_or_forgotten),
        cmocka_unit_test(test_sweep_finds_the_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
