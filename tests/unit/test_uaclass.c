/* Unit tests of the User-Agent classifier: every sample User-Agent of the crawler list is a
 * bot (the generated table, its rewritten expressions and their literal prefilters agree with
 * the list), real browsers are not, and each family and device class comes out as expected.
 * Also prints the cost of one uncached classification (a figure, not a check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "crawler_instances.c"
#include "crawlers_data.c"
#include "uaclass.c"

static struct uaclass *u;

static int setup(void **state)
{
    size_t failed = 99;
    (void)state;
    u = uaclass_new(&failed);
    assert_non_null(u);
    assert_int_equal(failed, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uaclass_free(u);
    return 0;
}

static struct ua_info classify(const char *ua)
{
    struct ua_info info;
    uaclass_classify(u, ua, ua ? strlen(ua) : 0, &info);
    return info;
}

static void test_every_listed_sample_is_a_bot(void **state)
{
    size_t missed = 0;
    (void)state;
    assert_true(crawler_npatterns > 1000);
    assert_true(crawler_ninstances > 1000);
    for (size_t i = 0; i < crawler_ninstances; i++) {
        struct ua_info info = classify(crawler_instances[i]);
        if (!info.bot) {
            fprintf(stderr, "not a bot: %s\n", crawler_instances[i]);
            missed++;
        } else {
            assert_int_equal(info.device, UA_BOT);
        }
    }
    assert_int_equal(missed, 0);
}

static const struct {
    const char *ua, *browser, *os;
    enum ua_device device;
} browsers_table[] = {
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "Chrome", "Windows", UA_DESKTOP},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
     "Edge", "Windows", UA_DESKTOP},
    {"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "Linux",
     UA_DESKTOP},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Safari/605.1.15",
     "Safari", "macOS", UA_DESKTOP},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
     "Safari", "iOS", UA_MOBILE},
    {"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
     "Chrome", "iOS", UA_TABLET},
    {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.82 Mobile Safari/537.36",
     "Chrome", "Android", UA_MOBILE},
    {"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "Chrome", "Android", UA_TABLET},
    {"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
     "Samsung Internet", "Android", UA_MOBILE},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
     "Opera", "Windows", UA_DESKTOP},
    {"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "Chrome", "Chrome OS", UA_DESKTOP},
    {"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer",
     "Windows", UA_DESKTOP},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
     "Firefox", "iOS", UA_MOBILE},
};

static void test_browsers_are_people(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(browsers_table) / sizeof(browsers_table[0]); i++) {
        struct ua_info info = classify(browsers_table[i].ua);
        assert_false(info.bot);
        assert_string_equal(info.browser, browsers_table[i].browser);
        assert_string_equal(info.os, browsers_table[i].os);
        assert_int_equal(info.device, browsers_table[i].device);
    }
}

static void test_tools_and_new_crawlers_are_bots(void **state)
{
    (void)state;
    const char *bots[] = {
        "curl/8.5.0",
        "Wget/1.21.4",
        "python-requests/2.31.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "SomeNewCrawler/1.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.0.0 Safari/537.36",
    };
    for (size_t i = 0; i < sizeof(bots) / sizeof(bots[0]); i++) {
        struct ua_info info = classify(bots[i]);
        assert_true(info.bot);
        assert_int_equal(info.device, UA_BOT);
    }
    assert_string_equal(classify("curl/8.5.0").browser, "curl");
}

static void test_nothing_is_other(void **state)
{
    (void)state;
    struct ua_info a = classify(NULL), b = classify(""), c = classify("x");
    assert_false(a.bot || b.bot || c.bot);
    assert_string_equal(a.browser, "Other");
    assert_string_equal(b.os, "Other");
    assert_int_equal(c.device, UA_OTHER);
    assert_string_equal(uaclass_device_name(UA_OTHER), "other");
    assert_string_equal(uaclass_device_name(UA_TABLET), "tablet");
    assert_string_equal(uaclass_device_name((enum ua_device)42), "other");
}

static void test_long_and_binary_input(void **state)
{
    char ua[4 * UACLASS_MAX_LEN];
    struct ua_info info;
    (void)state;
    memset(ua, 'A', sizeof(ua));
    /* Only the first UACLASS_MAX_LEN bytes count: a bot word past them is not seen. */
    memcpy(ua + sizeof(ua) - 8, "Googlebot", 8);
    uaclass_classify(u, ua, sizeof(ua), &info);
    assert_false(info.bot);
    memcpy(ua, "bot\0Firefox/1", 13);
    uaclass_classify(u, ua, 13, &info);
    assert_true(info.bot);
    assert_string_equal(info.browser, "Other");
}

static void test_cost(void **state)
{
    const char *ua = browsers_table[0].ua;
    struct ua_info info;
    struct timespec a, b;
    enum { N = 2000 };
    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++)
        uaclass_classify(u, ua, strlen(ua), &info);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N / 1e3;
    printf("uaclass: %.1f us per uncached classification of a browser User-Agent\n", us);
    assert_false(info.bot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_listed_sample_is_a_bot),
        cmocka_unit_test(test_browsers_are_people),
        cmocka_unit_test(test_tools_and_new_crawlers_are_bots),
        cmocka_unit_test(test_nothing_is_other),
        cmocka_unit_test(test_long_and_binary_input),
        cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
