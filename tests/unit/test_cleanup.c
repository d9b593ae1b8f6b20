/* Unit tests for the flags of `shortenerctl cleanup`: the table in src/ctl/cleanup.c, read by
 * lib/config.c (the batches themselves run against a real PostgreSQL in
 * tests/integration/test_cleanup.py). */
#include "cleanup.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static int parse(struct cleanup_opts *o, char *err, size_t errlen, ...)
{
    char *argv[8];
    int argc = 0;
    va_list ap;

    va_start(ap, errlen);
    for (char *a; argc < 8 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    err[0] = '\0';
    return config_load_args(cleanup_options, CLEANUP_NOPTIONS, o, argc, argv, NULL, 0, NULL, err,
                            errlen);
}

static void test_defaults(void **state)
{
    struct cleanup_opts o = {.batch = 7, .max_seconds = 7, .dry_run = true};
    char err[256];
    (void)state;
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.batch, CLEANUP_BATCH_DEFAULT);
    assert_int_equal(o.max_seconds, 0);
    assert_int_equal(o.pause_ms, CLEANUP_PAUSE_MS_DEFAULT);
    assert_false(o.dry_run);
}

static void test_all_forms(void **state)
{
    struct cleanup_opts o;
    char err[256];
    (void)state;
    assert_int_equal(
        parse(&o, err, sizeof(err), "--batch", "10", "--max-seconds=30", "--dry-run", NULL), 0);
    assert_int_equal(o.batch, 10);
    assert_int_equal(o.max_seconds, 30);
    assert_true(o.dry_run);

    assert_int_equal(parse(&o, err, sizeof(err), "--batch=1", "--max-seconds", "0", NULL), 0);
    assert_int_equal(o.batch, 1);
    assert_int_equal(o.max_seconds, 0);
    assert_false(o.dry_run);

    assert_int_equal(
        parse(&o, err, sizeof(err), "--batch", "100000", "--max-seconds", "86400", NULL), 0);
    assert_int_equal(o.batch, CLEANUP_BATCH_MAX);
    assert_int_equal(o.max_seconds, CLEANUP_MAX_SECONDS_MAX);

    assert_int_equal(parse(&o, err, sizeof(err), "--pause-ms", "0", NULL), 0);
    assert_int_equal(o.pause_ms, 0);
    assert_int_equal(parse(&o, err, sizeof(err), "--pause-ms=10000", NULL), 0);
    assert_int_equal(o.pause_ms, CLEANUP_PAUSE_MS_MAX);
}

static void test_rejects(void **state)
{
    struct cleanup_opts o;
    char err[256];
    (void)state;
    static const char *const bad[][3] = {
        {"--batch", "0", NULL},
        {"--batch", "100001", NULL},
        {"--batch", "-5", NULL},
        {"--batch", "ten", NULL},
        {"--batch", "", NULL},
        {"--batch", "5x", NULL},
        {"--batch", NULL, NULL},
        {"--batch=", NULL, NULL},
        {"--max-seconds", "-1", NULL},
        {"--max-seconds", "86401", NULL},
        {"--max-seconds", "1.5", NULL},
        {"--max-seconds", NULL, NULL},
        {"--pause-ms", "-1", NULL},
        {"--pause-ms", "10001", NULL},
        {"--pause-ms", "fast", NULL},
        {"--pause-ms", NULL, NULL},
        {"--batches", "5", NULL},
        {"--dry-run=yes", NULL, NULL},
        {"now", NULL, NULL},
        {"-n", NULL, NULL},
        {"--batch", "99999999999999999999999", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(&o, err, sizeof(err), bad[i][0], bad[i][1], bad[i][2], NULL);
        if (rc != -EINVAL)
            fail_msg("case %zu (%s %s) gave %d", i, bad[i][0], bad[i][1] ? bad[i][1] : "", rc);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_forms),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
