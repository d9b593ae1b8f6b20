/* Unit tests of Referer parsing: the host of http and https Referers, lower-cased, without
 * user, port, path, query or fragment; "direct" for everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "referrer.c"

static const char *host_of(const char *ref)
{
    static char out[REFERRER_HOST_MAX + 1];
    referrer_host(ref, ref ? strlen(ref) : 0, out);
    return out;
}

static void test_hosts(void **state)
{
    (void)state;
    assert_string_equal(host_of("https://www.Example.COM/path?q=1#x"), "www.example.com");
    assert_string_equal(host_of("http://news.ycombinator.com"), "news.ycombinator.com");
    assert_string_equal(host_of("HTTPS://t.co/abc"), "t.co");
    assert_string_equal(host_of("https://user:pw@mail.example.org:8443/inbox"), "mail.example.org");
    assert_string_equal(host_of("https://example.com.:443/"), "example.com");
    assert_string_equal(host_of("https://example.com?x"), "example.com");
    assert_string_equal(host_of("https://example.com#frag"), "example.com");
    assert_string_equal(host_of("  https://lead.example/"), "lead.example");
    assert_string_equal(host_of("http://192.0.2.1:8080/x"), "192.0.2.1");
    assert_string_equal(host_of("http://[2001:DB8::1]:80/"), "[2001:db8::1]");
}

static void test_direct(void **state)
{
    (void)state;
    const char *direct_ones[] = {
        NULL,
        "",
        "direct",
        "android-app://com.google.android.gm/",
        "ftp://example.com/",
        "https://",
        "https:///path",
        "https://:80/",
        "https://exa mple.com/",
        "https://ex\"ample.com/",
        "https://<script>/",
        "http://[::1/",
        "http://[]/",
        "https://.example.com/",
        "https://-example.com/",
        "//example.com/",
        "example.com",
    };
    for (size_t i = 0; i < sizeof(direct_ones) / sizeof(direct_ones[0]); i++)
        assert_string_equal(host_of(direct_ones[i]), "direct");
}

static void test_bounds(void **state)
{
    char ref[600], out[REFERRER_HOST_MAX + 1];
    (void)state;
    /* 253 characters fit; 254 do not. */
    memcpy(ref, "https://", 8);
    memset(ref + 8, 'a', 253);
    ref[8 + 253] = '\0';
    referrer_host(ref, strlen(ref), out);
    assert_int_equal(strlen(out), 253);
    memset(ref + 8, 'a', 254);
    ref[8 + 254] = '\0';
    referrer_host(ref, strlen(ref), out);
    assert_string_equal(out, "direct");
    /* Only len bytes are read, NUL or not. */
    referrer_host("https://abc.example/", 11, out);
    assert_string_equal(out, "abc");
    referrer_host("https://a\0b.example/", 20, out);
    assert_string_equal(out, "direct");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_direct),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
