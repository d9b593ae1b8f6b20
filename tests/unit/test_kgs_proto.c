/* Unit tests for lib/kgs_proto.c: both ends of the kgs line protocol reject anything but
 * the exact forms, since a lenient parser would let a buggy peer hand out wrong counts. */
#include "../../lib/kgs_proto.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_request_good(void **state)
{
    struct kgs_request req;
    (void)state;
    memset(&req, 0x5a, sizeof(req));
    assert_int_equal(kgs_parse_request("PING", &req), 0);
    assert_int_equal(req.op, KGS_OP_PING);
    assert_int_equal(kgs_parse_request("TAKE 1", &req), 0);
    assert_int_equal(req.op, KGS_OP_TAKE);
    assert_int_equal(req.count, 1);
    assert_int_equal(kgs_parse_request("TAKE 42", &req), 0);
    assert_int_equal(req.count, 42);
    assert_int_equal(kgs_parse_request("TAKE 10000", &req), 0);
    assert_int_equal(req.count, KGS_MAX_TAKE);
    assert_int_equal(kgs_parse_request("TAKE 9999", &req), 0);
    assert_int_equal(req.count, 9999);
}

static void test_request_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "PING ",
        " PING",
        "ping",
        "PINGPING",
        "PONG",
        "TAKE",
        "TAKE ",
        "TAKE 0",
        "TAKE 00",
        "TAKE 01",
        "TAKE 007",
        "TAKE 10001",
        "TAKE 99999",
        "TAKE 4294967297",
        "TAKE 18446744073709551617",
        "TAKE -1",
        "TAKE +1",
        "TAKE 1 ",
        "TAKE  1",
        "TAKE 1x",
        "TAKE x1",
        "TAKE 1.0",
        "TAKE 1e3",
        "TAKE 0x10",
        "TAKE\t1",
        "take 1",
        "TAKE 1\r",
        "TAKE 1\n",
        "KEYS 1",
    };
    struct kgs_request req;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kgs_parse_request(bad[i], &req) != -EINVAL)
            fail_msg("request '%s' accepted", bad[i]);
    }
}

static void test_reply_good(void **state)
{
    struct kgs_reply rep;
    char long_err[400];
    (void)state;
    assert_int_equal(kgs_parse_reply("PONG", &rep), 0);
    assert_int_equal(rep.kind, KGS_REPLY_PONG);
    assert_int_equal(kgs_parse_reply("KEYS 1", &rep), 0);
    assert_int_equal(rep.kind, KGS_REPLY_KEYS);
    assert_int_equal(rep.count, 1);
    assert_int_equal(kgs_parse_reply("KEYS 10000", &rep), 0);
    assert_int_equal(rep.count, 10000);
    assert_int_equal(kgs_parse_reply("ERR unavailable the pool is empty", &rep), 0);
    assert_int_equal(rep.kind, KGS_REPLY_ERR);
    assert_string_equal(rep.error, "unavailable the pool is empty");
    assert_int_equal(rep.count, 0);
    assert_int_equal(kgs_parse_reply("ERR bad_request", &rep), 0);
    assert_string_equal(rep.error, "bad_request");

    /* A long error text is cut to fit, still NUL-terminated. */
    memcpy(long_err, "ERR ", 4);
    memset(long_err + 4, 'e', sizeof(long_err) - 5);
    long_err[sizeof(long_err) - 1] = '\0';
    assert_int_equal(kgs_parse_reply(long_err, &rep), 0);
    assert_int_equal(strlen(rep.error), sizeof(rep.error) - 1);
}

static void test_reply_bad(void **state)
{
    static const char *const bad[] = {
        "",        "PONG ",   "pong",    "PING",       "KEYS",
        "KEYS ",   "KEYS 0",  "KEYS 01", "KEYS 10001", "KEYS -1",
        "KEYS +1", "KEYS 1 ", "KEYS  1", "KEYS 1x",    "KEYS 4294967297",
        "keys 1",  "ERR",     "ERR ",    "ERROR x",    "OK",
        "TAKE 1",
    };
    struct kgs_reply rep;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kgs_parse_reply(bad[i], &rep) != -EINVAL)
            fail_msg("reply '%s' accepted", bad[i]);
    }
}

static void test_format_take(void **state)
{
    char buf[32];
    struct kgs_request req;
    /* Opaque to the optimiser, which would otherwise flag the deliberate truncation. */
    volatile size_t seven = 7, eight = 8, zero = 0;
    (void)state;
    assert_int_equal(kgs_format_take(buf, sizeof(buf), 5), 7);
    assert_string_equal(buf, "TAKE 5\n");
    assert_int_equal(kgs_format_take(buf, sizeof(buf), KGS_MAX_TAKE), 11);
    assert_string_equal(buf, "TAKE 10000\n");
    assert_int_equal(kgs_format_take(buf, sizeof(buf), 0), -EINVAL);
    assert_int_equal(kgs_format_take(buf, sizeof(buf), KGS_MAX_TAKE + 1), -EINVAL);
    assert_int_equal(kgs_format_take(buf, seven, 5), -ENOSPC);
    assert_int_equal(kgs_format_take(buf, eight, 5), 7);
    assert_int_equal(kgs_format_take(buf, zero, 5), -ENOSPC);

    /* What one side writes, the other reads back. */
    for (unsigned n = 1; n <= KGS_MAX_TAKE; n += 97) {
        int len = kgs_format_take(buf, sizeof(buf), n);
        assert_true(len > 0);
        buf[len - 1] = '\0';
        assert_int_equal(kgs_parse_request(buf, &req), 0);
        assert_int_equal(req.op, KGS_OP_TAKE);
        assert_int_equal(req.count, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_good), cmocka_unit_test(test_request_bad),
        cmocka_unit_test(test_reply_good),   cmocka_unit_test(test_reply_bad),
        cmocka_unit_test(test_format_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
