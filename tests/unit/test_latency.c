/* Unit tests for latency.c: the kind of a request, bucketing and the histogram text. */
#include "latency.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(latency_kind_of("GET", "/abc1234"), LK_REDIRECT);
    assert_int_equal(latency_kind_of("HEAD", "/my-alias"), LK_REDIRECT);
    assert_int_equal(latency_kind_of("POST", "/abc1234"), LK_OTHER); /* a password form */
    assert_int_equal(latency_kind_of("POST", "/api/v1/urls"), LK_CREATE);
    assert_int_equal(latency_kind_of("POST", "/api/v1/urls/"), LK_CREATE);
    assert_int_equal(latency_kind_of("POST", "/api/v1/urls/bulk"), LK_CREATE);
    assert_int_equal(latency_kind_of("GET", "/api/v1/urls"), LK_LIST);
    assert_int_equal(latency_kind_of("GET", "/api/v1/urls/abc1234"), LK_READ);
    assert_int_equal(latency_kind_of("GET", "/api/v1/urls/abc1234/stats"), LK_STATS);
    assert_int_equal(latency_kind_of("GET", "/api/v1/urls/abc1234/live"), LK_LIVE);
    assert_int_equal(latency_kind_of("GET", "/api/v1/urls/abc1234/qr"), LK_OTHER);
    assert_int_equal(latency_kind_of("PATCH", "/api/v1/urls/abc1234"), LK_OTHER);
    assert_int_equal(latency_kind_of("GET", "/api/v1/urlsx"), LK_OTHER);
    assert_int_equal(latency_kind_of("GET", "/api/v1/openapi.json"), LK_OTHER);
    assert_int_equal(latency_kind_of("GET", "/healthz"), LK_OTHER);
    assert_int_equal(latency_kind_of("GET", "/metrics"), LK_OTHER);
    assert_int_equal(latency_kind_of("GET", "/"), LK_OTHER);
    assert_int_equal(latency_kind_of("GET", "/a/b"), LK_OTHER);
    assert_int_equal(latency_kind_for_tier(LT_HOT), LK_REDIRECT_HOT);
    assert_int_equal(latency_kind_for_tier(LT_REDIS), LK_REDIRECT_REDIS);
    assert_int_equal(latency_kind_for_tier(LT_DB), LK_REDIRECT_DB);
    assert_int_equal(latency_kind_for_tier(LT_UNKNOWN), LK_OTHER);
}

static void test_record_and_render(void **state)
{
    static struct latency a, b, total;
    char buf[32768];
    (void)state;

    latency_record(&a, LK_REDIRECT_HOT, 20000);   /* 20 µs: the first bucket */
    latency_record(&a, LK_REDIRECT_HOT, 50000);   /* exactly 50 µs: still the first */
    latency_record(&b, LK_REDIRECT_HOT, 50001);   /* just over: the second */
    latency_record(&b, LK_CREATE, 7000000000ULL); /* 7 s: only +Inf */
    latency_add(&total, &a);
    latency_add(&total, &b);
    int len = latency_render(&total, buf, sizeof(buf));
    assert_true(len > 0);
    assert_non_null(strstr(buf, "# TYPE shortener_request_duration_seconds histogram\n"));
    assert_non_null(strstr(buf, "shortener_request_duration_seconds_bucket{kind=\"redirect_hot\","
                                "le=\"5e-05\"} 2\n"));
    assert_non_null(strstr(buf, "shortener_request_duration_seconds_bucket{kind=\"redirect_hot\","
                                "le=\"0.0001\"} 3\n"));
    assert_non_null(strstr(buf, "shortener_request_duration_seconds_bucket{kind=\"redirect_hot\","
                                "le=\"+Inf\"} 3\n"));
    assert_non_null(
        strstr(buf, "shortener_request_duration_seconds_sum{kind=\"redirect_hot\"} 0.000120001\n"));
    assert_non_null(strstr(buf, "shortener_request_duration_seconds_bucket{kind=\"create\","
                                "le=\"5\"} 0\n"));
    assert_non_null(strstr(buf, "shortener_request_duration_seconds_bucket{kind=\"create\","
                                "le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(buf, "shortener_request_duration_seconds_sum{kind=\"create\"} "
                                "7.000000000\n"));
    assert_non_null(strstr(buf, "shortener_request_duration_seconds_count{kind=\"other\"} 0\n"));
    assert_int_equal((size_t)len, strlen(buf));
    /* Too small a buffer is refused whole. */
    assert_int_equal(latency_render(&total, buf, (size_t)len), -ENOSPC);
    assert_int_equal(latency_render(&total, buf, (size_t)len + 1), len);
    assert_int_equal(latency_render(&total, buf, 0), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_record_and_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
