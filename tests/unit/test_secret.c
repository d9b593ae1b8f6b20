/* Unit tests for lib/secret.c: passwords in REDIS_URL and DATABASE_URL forms are masked, and
 * nothing else is. */
#include "secret.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

static void assert_masked(const char *url, const char *want)
{
    char out[256];
    const char *got = secret_mask_url(url, out, sizeof(out));
    assert_ptr_equal(got, out);
    if (strcmp(got, want) != 0)
        fail_msg("mask of '%s': got '%s', want '%s'", url, got, want);
}

static void test_redis_uris(void **state)
{
    (void)state;
    assert_masked("redis://:s3cret@cache:6379/2", "redis://:***@cache:6379/2");
    assert_masked("redis://user:s3cret@cache", "redis://user:***@cache");
    /* REDIS_URL reads a user part without ':' as the password. */
    assert_masked("redis://s3cret@cache", "redis://***@cache");
    /* Unescaped '@' or '/' in the password: all of it is hidden. */
    assert_masked("redis://:pa@ss/wd@cache:1", "redis://:***@cache:1");
    assert_masked("rediss://:s3cret@cache", "rediss://:***@cache");
}

static void test_postgres_uris(void **state)
{
    (void)state;
    assert_masked("postgresql://app:s3cret@db.example:5432/shortener",
                  "postgresql://app:***@db.example:5432/shortener");
    assert_masked("postgres://app:s3cret@db/x", "postgres://app:***@db/x");
    /* Without ':' the user part is the user's name: nothing to hide. */
    assert_masked("postgresql://app@db/shortener", "postgresql://app@db/shortener");
    assert_masked("postgresql://db/shortener?user=app&password=s3cret&sslmode=require",
                  "postgresql://db/shortener?user=app&password=***&sslmode=require");
    assert_masked("postgresql:///shortener?password=s3cret",
                  "postgresql:///shortener?password=***");
    assert_masked("postgresql://app:one@db/x?password=two",
                  "postgresql://app:***@db/x?password=***");
    /* A query parameter that merely ends in "password" is not one. */
    assert_masked("postgresql://db/x?oldpassword=keep", "postgresql://db/x?oldpassword=keep");
}

static void test_conninfo(void **state)
{
    (void)state;
    assert_masked("host=db dbname=shortener user=app password=s3cret",
                  "host=db dbname=shortener user=app password=***");
    assert_masked("password = s3cret host=db", "password = *** host=db");
    assert_masked("host=db password='s3 cr\\'et' dbname=x", "host=db password=*** dbname=x");
    /* Unterminated quotes: everything after the password's start is hidden. */
    assert_masked("host=db password='s3cret dbname=x", "host=db password=***");
    assert_masked("host=db passwordx=keep", "host=db passwordx=keep");
}

static void test_no_password(void **state)
{
    (void)state;
    assert_masked("redis://127.0.0.1:6379", "redis://127.0.0.1:6379");
    assert_masked("unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock");
    assert_masked("unix:///tmp/a@b.sock", "unix:///tmp/a@b.sock");
    assert_masked("dbname=shortener", "dbname=shortener");
    assert_masked("host=/tmp/pg dbname=shortener user=shortener",
                  "host=/tmp/pg dbname=shortener user=shortener");
    assert_masked("", "");
    assert_masked("redis://:@cache", "redis://:@cache");
}

static void test_truncation(void **state)
{
    char out[12];
    (void)state;
    /* Cut short, never past the mask into the password. */
    assert_string_equal(secret_mask_url("redis://:s3cret@cache", out, sizeof(out)), "redis://:**");
    assert_string_equal(secret_mask_url("redis://:s3cret@cache", out, 1), "");
}

static void test_scrub(void **state)
{
    char text[128];
    (void)state;
    snprintf(text, sizeof(text), "invalid percent-encoded token: \"pw%%zzsecret\"");
    secret_scrub_url(text, "postgresql://app:pw%zzsecret@db/x");
    assert_string_equal(text, "invalid percent-encoded token: \"***\"");

    snprintf(text, sizeof(text), "s3cret and s3cret again");
    secret_scrub(text, "s3cret", 6);
    assert_string_equal(text, "*** and *** again");

    snprintf(text, sizeof(text), "a quoted 's3 cret' one");
    secret_scrub_url(text, "host=db password='s3 cret'");
    assert_string_equal(text, "a quoted '***' one");

    snprintf(text, sizeof(text), "ab");
    secret_scrub(text, "b", 1);
    assert_string_equal(text, "a*");

    snprintf(text, sizeof(text), "nothing here");
    secret_scrub_url(text, "redis://cache:6379");
    secret_scrub(text, "", 0);
    assert_string_equal(text, "nothing here");
}

static void test_many_passwords(void **state)
{
    char url[512], out[512];
    size_t o = 0;
    (void)state;
    o += (size_t)snprintf(url + o, sizeof(url) - o, "postgresql://db/x?");
    for (int i = 0; i < MAX_SPANS + 3; i++)
        o += (size_t)snprintf(url + o, sizeof(url) - o, "password=pw%d&", i);
    secret_mask_url(url, out, sizeof(out));
    assert_null(strstr(out, "pw"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_uris),     cmocka_unit_test(test_postgres_uris),
        cmocka_unit_test(test_conninfo),       cmocka_unit_test(test_no_password),
        cmocka_unit_test(test_truncation),     cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_many_passwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
