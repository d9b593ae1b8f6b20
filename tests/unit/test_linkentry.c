/* Unit tests for lib/linkentry.c: the "u:<key>" entries, against the stand-in Redis in
 * fakeredis.h (a real one is exercised by the integration tests). */
#include "linkentry.c"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "link.h"

#include "fakeredis.h"

static struct fake_redis fake;
static struct redis_target target;
static struct redis *r;

static int setup(void **state)
{
    (void)state;
    if (fake_redis_start(&fake, "") < 0)
        return -1;
    snprintf(target.path, sizeof(target.path), "%s", fake.path);
    r = redis_new(&target);
    return r ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    redis_free(r);
    fake_redis_stop(&fake);
    return 0;
}

static void test_fill_and_get(void **state)
{
    char url[64];
    struct link_rules expires = {.expires_at = -1};
    (void)state;
    assert_int_equal(linkentry_get(r, "a1", url, sizeof(url), &expires), -ENOENT);
    assert_int_equal(linkentry_fill(r, "a1", "https://example.com/x",
                                    &(struct link_rules){.expires_at = 1700000000}, 60),
                     0);
    assert_int_equal(linkentry_get(r, "a1", url, sizeof(url), &expires), LINKENTRY_HIT);
    assert_string_equal(url, "https://example.com/x");
    assert_int_equal(expires.expires_at, 1700000000);
    /* A URL longer than the caller's buffer is a miss, never cut short. */
    assert_int_equal(linkentry_get(r, "a1", url, 10, &expires), -ENOENT);
    /* Exactly fitting, NUL included. */
    assert_int_equal(linkentry_get(r, "a1", url, sizeof("https://example.com/x"), &expires),
                     LINKENTRY_HIT);
}

static void test_negative_and_tombstone(void **state)
{
    char url[64];
    struct link_rules expires;
    (void)state;
    assert_int_equal(linkentry_fill_negative(r, "n1", 5), 0);
    assert_int_equal(linkentry_get(r, "n1", url, sizeof(url), &expires), LINKENTRY_NEGATIVE);
    /* A fill never overwrites: the tombstone of a delete wins over a fill that raced it. */
    assert_int_equal(
        linkentry_fill(r, "t1", "https://example.com/t", &(struct link_rules){.expires_at = 0}, 60),
        0);
    assert_int_equal(linkentry_tombstone(r, "t1", 5), 0);
    assert_int_equal(
        linkentry_fill(r, "t1", "https://example.com/t", &(struct link_rules){.expires_at = 0}, 60),
        0);
    assert_int_equal(linkentry_get(r, "t1", url, sizeof(url), &expires), LINKENTRY_NEGATIVE);
    assert_int_equal(linkentry_evict(r, "t1"), 0);
    assert_int_equal(linkentry_get(r, "t1", url, sizeof(url), &expires), -ENOENT);
}

static void test_foreign_values_are_misses(void **state)
{
    char url[64];
    struct link_rules expires;
    (void)state;
    assert_int_equal(redis_command(r, NULL, "SET u:f1 %s", "not ours"), 0);
    assert_int_equal(linkentry_get(r, "f1", url, sizeof(url), &expires), -ENOENT);
    assert_int_equal(redis_command(r, NULL, "SET u:f2 %s", "123"), 0);
    assert_int_equal(linkentry_get(r, "f2", url, sizeof(url), &expires), -ENOENT);
}

/* A status no link can have is not ours either: 3195441603 once wrapped into a negative int. */
static void test_entries_with_impossible_statuses_are_misses(void **state)
{
    static const char *const bad[] = {
        "0 0 0 3195441603 -\nhttps://e.com/", "0 0 0 4294967597 -\nhttps://e.com/",
        "0 0 0 200 -\nhttps://e.com/",        "0 0 0 300 p\nhttps://e.com/",
        "0 0 0 999999999999999999 -\nx",
    };
    static const int good[] = {0, 301, 302, 307, 308};
    struct link_rules rules;
    char url[64], text[128];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(linkentry_parse(bad[i], strlen(bad[i]), url, sizeof(url), &rules),
                         -ENOENT);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), "5 0 0 %d p\nhttps://e.com/", good[i]);
        assert_int_equal(linkentry_parse(text, strlen(text), url, sizeof(url), &rules),
                         LINKENTRY_HIT);
        assert_int_equal(rules.redirect_status, good[i]);
        assert_string_equal(url, "https://e.com/");
    }
}

static void test_evict_many_in_chunks(void **state)
{
    enum { N = 2 * EVICT_CHUNK + 5 };
    static char names[N][8];
    static const char *keys[N];
    char log[512];
    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "e%d", i);
        keys[i] = names[i];
    }
    assert_int_equal(linkentry_fill_negative(r, "e0", 5), 0);
    assert_int_equal(linkentry_fill_negative(r, "e2004", 5), 0);
    fake_redis_take_log(&fake, log, sizeof(log));
    assert_int_equal(linkentry_evict_many(r, keys, N), 0);
    assert_int_equal(linkentry_evict_many(r, keys, 0), 0);
    fake_redis_take_log(&fake, log, sizeof(log));
    /* Three DEL commands (the fake logs the first few bytes of each). */
    int dels = 0;
    for (const char *p = log; (p = strstr(p, "DEL u:")) != NULL; p++)
        dels++;
    assert_int_equal(dels, 3);
    assert_non_null(strstr(log, "DEL u:e0 u:e1 "));
    assert_non_null(strstr(log, "DEL u:e2000 u:e2001 u:e2002 u:e2003 u:e2004"));
    char url[64];
    struct link_rules expires;
    assert_int_equal(linkentry_get(r, "e2004", url, sizeof(url), &expires), -ENOENT);
}

/* What linkentry_get_many() reported for each key. */
struct seen {
    int rc[8];
    char url[8][64];
    int64_t expires[8];
    size_t calls;
};

static void record(void *ctx, size_t i, int rc, const char *url, const struct link_rules *rules)
{
    struct seen *s = ctx;
    s->rc[i] = rc;
    snprintf(s->url[i], sizeof(s->url[i]), "%s", url ? url : "");
    s->expires[i] = rules->expires_at;
    s->calls++;
}

static void test_get_many(void **state)
{
    const char *keys[] = {"m1", "m2", "m3", "m4", "m5", "m6"};
    struct seen s = {0};
    (void)state;
    assert_int_equal(linkentry_fill(r, "m1", "https://example.com/m1",
                                    &(struct link_rules){.expires_at = 1700000000}, 60),
                     0);
    assert_int_equal(linkentry_fill_negative(r, "m2", 60), 0);
    assert_int_equal(linkentry_mark_edited(r, "m3", 60), 0);
    /* m4: nothing; m5: not ours; m6: a URL longer than the caller's buffer. */
    assert_int_equal(redis_command(r, NULL, "SET u:m5 %s", "garbage"), 0);
    assert_int_equal(linkentry_fill(r, "m6", "https://example.com/a-rather-long-url",
                                    &(struct link_rules){0}, 60),
                     0);
    assert_int_equal(linkentry_get_many(r, keys, 6, 24, record, &s), 0);
    assert_int_equal(s.calls, 6);
    assert_int_equal(s.rc[0], LINKENTRY_HIT);
    assert_string_equal(s.url[0], "https://example.com/m1");
    assert_int_equal(s.expires[0], 1700000000);
    assert_int_equal(s.rc[1], LINKENTRY_NEGATIVE);
    assert_int_equal(s.rc[2], LINKENTRY_EDITED);
    assert_int_equal(s.rc[3], -ENOENT);
    assert_int_equal(s.rc[4], -ENOENT);
    assert_int_equal(s.rc[5], -ENOENT);
    assert_string_equal(s.url[5], "");
    assert_int_equal(linkentry_get_many(r, keys, 0, 24, record, &s), 0);
    assert_int_equal(linkentry_get_many(r, keys, LINKENTRY_GET_MAX + 1, 24, record, &s), -EINVAL);
    assert_int_equal(s.calls, 6);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_and_get),
        cmocka_unit_test(test_negative_and_tombstone),
        cmocka_unit_test(test_foreign_values_are_misses),
        cmocka_unit_test(test_evict_many_in_chunks),
        cmocka_unit_test(test_entries_with_impossible_statuses_are_misses),
        cmocka_unit_test(test_get_many),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
