/* Unit tests for src/server/cache.c: creates' evictions Redis could not hear of are remembered
 * and dropped before any of the server's connections serves anything once Redis answers again;
 * a delete or edit it could not hear of makes every connection leave Redis alone until a
 * resync trusts it again.
 * Redis is the stand-in in fakeredis.h; a real one is exercised by the integration tests. */
#include "cache.c"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "link.h"

#include "fakeredis.h"

static struct fake_redis fake;

static int setup(void **state)
{
    (void)state;
    return fake_redis_start(&fake, "") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fake_redis_stop(&fake);
    return 0;
}

static size_t pending_count(struct cache_pending *p)
{
    return atomic_load(&p->state) & ~UNTRUSTED;
}

static bool distrusted(struct cache_pending *p)
{
    return atomic_load(&p->state) & UNTRUSTED;
}

static void assert_log(const char *want)
{
    char got[2048];
    fake_redis_take_log(&fake, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("Redis heard '%s', expected '%s'", got, want);
}

static void test_unreachable_redis_is_reported_and_remembered(void **state)
{
    struct cache_pending pending;
    struct redis_target t;
    char err[256], url[64];
    struct link_rules expires;
    (void)state;
    assert_int_equal(cache_pending_init(&pending), 0);
    /* Nothing listens on port 1: the cache reports itself unavailable, it does not fail. */
    assert_int_equal(redis_target_parse("redis://127.0.0.1:1", &t, err, sizeof(err)), 0);
    struct redis *r = redis_new(&t);
    struct cache *c = cache_new(r, &pending);
    assert_non_null(c);
    assert_int_equal(cache_get(c, "abc", url, sizeof(url), &expires), -EAGAIN);
    assert_int_equal(cache_ping(c), -EAGAIN);
    assert_true(strlen(cache_error(c)) > 0);
    /* A create's eviction Redis could not hear of is remembered; a deletion distrusts Redis. */
    assert_false(distrusted(&pending));
    assert_int_equal(cache_evict(c, "new"), -EAGAIN);
    assert_int_equal(pending_count(&pending), 1);
    assert_false(distrusted(&pending));
    assert_int_equal(cache_tombstone(c, "abc", 5), -EAGAIN);
    assert_true(distrusted(&pending));
    assert_int_equal(pending_count(&pending), 1);
    /* Bulk eviction reports the failure and remembers nothing: the caller evicts one by one. */
    const char *keys[] = {"k1", "k2"};
    assert_int_equal(cache_evict_many(c, keys, 2), -EAGAIN);
    assert_int_equal(cache_evict_many(c, keys, 0), 0);
    assert_int_equal(pending_count(&pending), 1);
    cache_free(c);
    redis_free(r);
    cache_pending_release(&pending);
}

static void test_pending_evictions_drain_before_serving(void **state)
{
    struct cache_pending pending;
    struct redis_target down = {.port = 1}, up = {0};
    char url[64];
    struct link_rules expires;
    (void)state;
    assert_int_equal(cache_pending_init(&pending), 0);
    snprintf(down.host, sizeof(down.host), "127.0.0.1");
    snprintf(up.path, sizeof(up.path), "%s", fake.path);

    /* One server, two connections: the first cannot reach Redis when a link is created. */
    struct redis *r1 = redis_new(&down), *r2 = redis_new(&up);
    struct cache *c1 = cache_new(r1, &pending), *c2 = cache_new(r2, &pending);
    assert_int_equal(cache_evict(c1, "new"), -EAGAIN);
    assert_int_equal(pending_count(&pending), 1);

    /* The other connection drops the entry, and tells the hot caches, before it serves. */
    assert_int_equal(cache_get(c2, "new", url, sizeof(url), &expires), -ENOENT);
    assert_int_equal(pending_count(&pending), 0);
    assert_log("DEL u:new|PUBLISH " INVALIDATION_CHANNEL " new|GET u:new");

    /* Nothing pending: one command, nothing before it. */
    assert_int_equal(
        cache_fill(c2, "kept", "https://example.com/", &(struct link_rules){.expires_at = 0}, 60),
        0);
    assert_int_equal(cache_get(c2, "kept", url, sizeof(url), &expires), CACHE_HIT);
    assert_string_equal(url, "https://example.com/");
    assert_log("SET u:kept 0 0 0 0 -\nhttps://example.com/ EX 60 NX|GET u:kept");

    /* A tombstone that reaches Redis is published and changes nothing else. */
    assert_int_equal(cache_tombstone(c2, "kept", 5), 0);
    assert_int_equal(cache_get(c2, "kept", url, sizeof(url), &expires), CACHE_NEGATIVE);
    assert_false(distrusted(&pending));
    assert_log("SET u:kept ! EX 5|PUBLISH " INVALIDATION_CHANNEL " kept|GET u:kept");

    cache_free(c1);
    cache_free(c2);
    redis_free(r1);
    redis_free(r2);
    cache_pending_release(&pending);
}

static void test_a_missed_delete_distrusts_redis_until_a_resync(void **state)
{
    struct cache_pending pending;
    struct redis_target down = {.port = 1}, up = {0};
    char url[64];
    struct link_rules expires;
    long long since = 0;
    unsigned ticket = 0;
    (void)state;
    assert_int_equal(cache_pending_init(&pending), 0);
    snprintf(down.host, sizeof(down.host), "127.0.0.1");
    snprintf(up.path, sizeof(up.path), "%s", fake.path);
    struct redis *r1 = redis_new(&down), *r2 = redis_new(&up);
    struct cache *c1 = cache_new(r1, &pending), *c2 = cache_new(r2, &pending);
    assert_false(cache_resync_wanted(&pending, &since, &ticket));

    /* A delete Redis did not hear of: no connection of the server uses Redis now. */
    assert_int_equal(cache_invalidate(c1, "gone", 5), -EAGAIN);
    assert_true(cache_resync_wanted(&pending, &since, &ticket));
    assert_int_equal(cache_get(c2, "gone", url, sizeof(url), &expires), -EAGAIN);
    assert_log("");
    /* Redis answers all the same: /readyz asks whether it does, not whether it is trusted. */
    assert_int_equal(cache_ping(c2), 0);
    assert_log("PING");

    /* A resync that another miss overtook does not count; the earliest time is kept. */
    cache_distrust(&pending, since + 1000);
    assert_false(cache_trust(&pending, ticket));
    long long again = 0;
    assert_true(cache_resync_wanted(&pending, &again, &ticket));
    assert_true(again == since);
    cache_distrust(&pending, since - 1000);
    assert_true(cache_resync_wanted(&pending, &again, &ticket));
    assert_true(again == since - 1000);

    /* Trusted again: served as before. */
    assert_true(cache_trust(&pending, ticket));
    assert_false(cache_resync_wanted(&pending, &since, &ticket));
    assert_int_equal(cache_get(c2, "gone", url, sizeof(url), &expires), -ENOENT);
    assert_log("GET u:gone");

    cache_free(c1);
    cache_free(c2);
    redis_free(r1);
    redis_free(r2);
    cache_pending_release(&pending);
}

static void test_pending_list_is_bounded(void **state)
{
    struct cache_pending *pending = malloc(sizeof(*pending));
    struct redis_target down = {.port = 1};
    char key[16];
    (void)state;
    assert_non_null(pending);
    assert_int_equal(cache_pending_init(pending), 0);
    snprintf(down.host, sizeof(down.host), "127.0.0.1");
    struct redis *r = redis_new(&down);
    struct cache *c = cache_new(r, pending);
    for (int i = 0; i < CACHE_PENDING_MAX + 2; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(cache_evict(c, key), -EAGAIN);
    }
    assert_int_equal(pending_count(pending), CACHE_PENDING_MAX);
    cache_free(c);
    redis_free(r);
    cache_pending_release(pending);
    free(pending);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_redis_is_reported_and_remembered),
        cmocka_unit_test(test_pending_evictions_drain_before_serving),
        cmocka_unit_test(test_a_missed_delete_distrusts_redis_until_a_resync),
        cmocka_unit_test(test_pending_list_is_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
