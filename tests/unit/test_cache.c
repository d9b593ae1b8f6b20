/* Unit tests for the REDIS_URL parser in src/cache.c (the Redis traffic itself is covered by
 * the integration tests against a real Redis). */
#include "cache.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

struct parsed {
    char host[64], path[64], password[64];
    int port, db;
};

static int parse(const char *url, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    return cache_parse_url(url, p->host, sizeof(p->host), &p->port, p->path, sizeof(p->path),
                           p->password, sizeof(p->password), &p->db);
}

static void test_tcp_forms(void **state)
{
    struct parsed p;
    (void)state;
    assert_int_equal(parse("redis://127.0.0.1:6380", &p), 0);
    assert_string_equal(p.host, "127.0.0.1");
    assert_int_equal(p.port, 6380);
    assert_int_equal(p.db, 0);
    assert_string_equal(p.path, "");

    assert_int_equal(parse("redis://cache", &p), 0);
    assert_string_equal(p.host, "cache");
    assert_int_equal(p.port, 6379);

    assert_int_equal(parse("redis://:s3cret@cache:7000/2", &p), 0);
    assert_string_equal(p.host, "cache");
    assert_string_equal(p.password, "s3cret");
    assert_int_equal(p.port, 7000);
    assert_int_equal(p.db, 2);

    assert_int_equal(parse("redis://user:pw@cache/", &p), 0);
    assert_string_equal(p.password, "pw");
    assert_int_equal(p.db, 0);
}

static void test_unix_form(void **state)
{
    struct parsed p;
    (void)state;
    assert_int_equal(parse("unix:///var/run/redis.sock", &p), 0);
    assert_string_equal(p.path, "/var/run/redis.sock");
    assert_string_equal(p.host, "");
}

static void test_rejects_malformed(void **state)
{
    struct parsed p;
    (void)state;
    const char *bad[] = {
        "",
        "cache:6379",
        "http://cache:6379",
        "redis://",
        "redis://:6379",
        "redis://cache:",
        "redis://cache:0",
        "redis://cache:65536",
        "redis://cache:63x9",
        "redis://cache/db",
        "redis://cache/-1",
        "unix://relative/path",
        "unix://",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &p) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_rejects_oversized_parts(void **state)
{
    struct parsed p;
    char url[256];
    (void)state;
    snprintf(url, sizeof(url), "redis://%0100d:6379", 0);
    assert_int_equal(parse(url, &p), -EINVAL);
    snprintf(url, sizeof(url), "unix:///%0100d", 0);
    assert_int_equal(parse(url, &p), -EINVAL);
}

static void test_cache_new_validates(void **state)
{
    struct cache_pending pending;
    (void)state;
    assert_int_equal(cache_pending_init(&pending), 0);
    struct cache *c = cache_new("redis://127.0.0.1:1", &pending);
    assert_non_null(c);
    /* Nothing listens on port 1: the cache reports itself unavailable, it does not fail. */
    char url[64];
    int64_t expires;
    assert_int_equal(cache_get(c, "abc", url, sizeof(url), &expires), -EAGAIN);
    /* A deletion Redis could not hear of is remembered for later. */
    assert_int_equal(cache_tombstone(c, "abc", 5), -EAGAIN);
    assert_int_equal(atomic_load(&pending.count), 1);
    /* Bulk eviction after cleanup reports the failure and remembers nothing: the entries of
     * expired links run out by themselves. */
    const char *keys[] = {"k1", "k2"};
    assert_int_equal(cache_evict_many(c, keys, 2), -EAGAIN);
    assert_int_equal(cache_evict_many(c, keys, 0), 0);
    assert_int_equal(atomic_load(&pending.count), 1);
    cache_free(c);
    assert_null(cache_new("ftp://x", &pending));
    cache_pending_release(&pending);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_forms),           cmocka_unit_test(test_unix_form),
        cmocka_unit_test(test_rejects_malformed),   cmocka_unit_test(test_rejects_oversized_parts),
        cmocka_unit_test(test_cache_new_validates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
