/* Unit tests for lib/urlcheck.c: what a stored long URL may be. Most cases are hostile or
 * malformed input, since every accepted URL is later sent to browsers as a Location. */
#include "urlcheck.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#define BASE "https://sho.rt"

static enum urlcheck_result check_n(const char *url, size_t len, const char *base)
{
    char *norm = (char *)0x1;
    enum urlcheck_result r = urlcheck_validate(url, len, base, &norm);
    if (r != URLCHECK_OK)
        assert_null(norm);
    free(norm);
    return r;
}

static enum urlcheck_result check(const char *url)
{
    return check_n(url, strlen(url), BASE);
}

static void assert_normalizes(const char *url, const char *base, const char *want)
{
    char *norm = NULL;
    enum urlcheck_result r = urlcheck_validate(url, strlen(url), base, &norm);
    if (r != URLCHECK_OK)
        fail_msg("'%s': %s", url, urlcheck_describe(r));
    assert_string_equal(norm, want);
    free(norm);
}

static void test_accepts_plain_urls(void **state)
{
    (void)state;
    assert_normalizes("https://example.com/a?b=c#d", BASE, "https://example.com/a?b=c#d");
    assert_normalizes("http://example.com", BASE, "http://example.com/");
    assert_normalizes("http://user:pw@example.com:8080/x", BASE,
                      "http://user:pw@example.com:8080/x");
    assert_normalizes("http://[::1]:8080/", BASE, "http://[::1]:8080/");
    assert_normalizes("http://192.0.2.1/", BASE, "http://192.0.2.1/");
    assert_normalizes("https://example.com/%7Efoo", BASE, "https://example.com/%7Efoo");
}

static void test_normalizes_scheme_and_port(void **state)
{
    (void)state;
    assert_normalizes("HTTP://example.com:80/x", BASE, "http://example.com/x");
    assert_normalizes("HtTpS://example.com:443/", BASE, "https://example.com/");
    assert_normalizes("https://example.com:8443/", BASE, "https://example.com:8443/");
    assert_normalizes("http://example.com/a/../b", BASE, "http://example.com/b");
    /* Host names are case-insensitive, paths are not. */
    assert_normalizes("HTTPS://WWW.Example.COM/Path/CaseKept", BASE,
                      "https://www.example.com/Path/CaseKept");
}

static void test_encodes_non_ascii_outside_host(void **state)
{
    (void)state;
    assert_normalizes("http://example.com/\xc3\xbc?q=\xc3\xa4#\xc3\xb6", BASE,
                      "http://example.com/%C3%BC?q=%C3%A4#%C3%B6");
    /* In the userinfo it is outside RFC 3986's authority: escaped it is fine. */
    assert_int_equal(check("http://\xc3\xbc:pw@example.com/"), URLCHECK_UNPARSABLE);
    assert_normalizes("http://%C3%BC:pw@example.com/", BASE, "http://%C3%BC:pw@example.com/");
    /* Not UTF-8 at all: still encoded, never stored raw. */
    assert_normalizes("http://example.com/\xff", BASE, "http://example.com/%FF");
}

static void test_rejects_non_ascii_host(void **state)
{
    (void)state;
    assert_int_equal(check("http://b\xc3\xbc"
                           "cher.de/"),
                     URLCHECK_UNPARSABLE);
    assert_int_equal(check("http://\xff.de/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("http://b%C3%BCcher.de/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("http://xn--bcher-kva.de/"), URLCHECK_OK);
}

static void test_empty(void **state)
{
    char *norm = (char *)0x1;
    (void)state;
    assert_int_equal(check(""), URLCHECK_EMPTY);
    assert_int_equal(urlcheck_validate(NULL, 0, BASE, &norm), URLCHECK_EMPTY);
    assert_null(norm);
}

static void test_length_limit(void **state)
{
    size_t n = URLCHECK_MAX_LEN + 1;
    char *url = malloc(n + 1);
    (void)state;
    assert_non_null(url);
    memcpy(url, "http://example.com/", 19);
    memset(url + 19, 'a', n - 19);
    url[n] = '\0';
    assert_int_equal(check_n(url, n, BASE), URLCHECK_TOO_LONG);
    assert_int_equal(check_n(url, n - 1, BASE), URLCHECK_OK);
    /* Exactly at the limit, but normalisation appends '/': too long once normalised. */
    memset(url + 7, 'a', n - 7);
    assert_int_equal(check_n(url, URLCHECK_MAX_LEN, BASE), URLCHECK_TOO_LONG);
    /* Percent-encoding triples a byte: an input under the limit can grow past it. */
    memcpy(url, "http://example.com/", 19);
    memset(url + 19, '\xff', 3000);
    assert_int_equal(check_n(url, 19 + 3000, BASE), URLCHECK_TOO_LONG);
    free(url);
}

static void test_control_chars_and_spaces(void **state)
{
    static const char *const bad[] = {
        "http://example.com/a b",
        "http://example.com/\r\nX-Evil: 1",
        "http://example.com/\n",
        "http://example.com/\t",
        "http://example.com/\x7f",
        "http://exa\x01mple.com/",
        " http://example.com/",
        "http://example.com/ ",
        "\thttp://example.com/",
        /* C1 controls in UTF-8: NEL (U+0085), U+0080, U+009F. */
        "http://example.com/a\xc2\x85"
        "b",
        "http://example.com/\xc2\x80",
        "http://example.com/\xc2\x9f",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(check(bad[i]), URLCHECK_CONTROL_CHARS);
    /* Their neighbours are letters: U+00A0 (no-break space) is still taken, encoded, and so is
     * U+00E9. */
    assert_int_equal(check("http://example.com/caf\xc3\xa9"), URLCHECK_OK);
    assert_int_equal(check("http://example.com/\xc2\xa0x"), URLCHECK_OK);
    /* A NUL inside the given length must not cut the URL short. */
    assert_int_equal(check_n("http://example.com/\0evil", 24, BASE), URLCHECK_CONTROL_CHARS);
}

static void test_bad_schemes(void **state)
{
    static const char *const bad[] = {
        "example.com",
        "www.example.com/path",
        "//example.com/",
        "/relative/path",
        "ftp://example.com/",
        "javascript:alert(1)",
        "JavaScript://example.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "mailto:someone@example.com",
        "file:///etc/passwd",
        "httpx://example.com/",
        "http+unix://example.com/",
        "htt://example.com/",
        "://example.com/",
        "1http://example.com/",
        "localhost:8080/x",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(bad[i]) != URLCHECK_BAD_SCHEME)
            fail_msg("'%s' not rejected for its scheme", bad[i]);
    }
}

static void test_no_host(void **state)
{
    static const char *const bad[] = {
        "http://",   "https://",   "http:///path", "http:///",      "http://?q",
        "http://#f", "http://@/x", "http://:80/",  "http://user@/",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(bad[i]) != URLCHECK_NO_HOST)
            fail_msg("'%s' not rejected for its host", bad[i]);
    }
}

static void test_unparsable(void **state)
{
    static const char *const bad[] = {
        "http:",
        "http:example.com",
        "http:/example.com",
        "http:\\\\example.com",
        "http://[::1/",
        "http://example.com:99999/",
        "http://example.com:-1/",
        "http://example.com:0/",
        "http://example.com:port/",
        "http://exa\\mple.com/",
        "http://exa<mple.com/",
        "https://.../b?q=1#frag", /* found by fuzz_urlcheck: not a fixed point */
        "https://../",
        "https://./",
        "https://.example.com/",
        "https://a..b/",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(bad[i]) != URLCHECK_UNPARSABLE)
            fail_msg("'%s' not rejected as unparsable (got %d)", bad[i], check(bad[i]));
    }
}

/* curl decodes escapes in a host only after normalising numeric addresses, so "%33" gives
 * "3" and then, parsed again, "0.0.0.3"; escapes there mostly disguise a host anyway. */
static void test_rejects_escapes_in_host(void **state)
{
    (void)state;
    assert_int_equal(check("https://%33"), URLCHECK_UNPARSABLE); /* found by fuzz_urlcheck */
    assert_int_equal(check("https://sho%2Ert/x"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("http://%32130706433/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("http://[fe80::1%25eth0]/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("http://example.com:8%30/"), URLCHECK_UNPARSABLE);
    /* Escapes in the user part, path, query and fragment are fine. */
    assert_normalizes("http://a%40b:p%3Aw@example.com/%33?%33#%33", BASE,
                      "http://a%40b:p%3Aw@example.com/%33?%33#%33");
}

/* A trailing dot stays: without it "8." would be the numeric host "8", i.e. "0.0.0.8", and
 * the stored URL would not parse to itself (found by fuzz_urlcheck). */
static void test_keeps_trailing_dot(void **state)
{
    (void)state;
    assert_normalizes("http://8.", BASE, "http://8./");
    assert_normalizes("https://Example.COM./x", BASE, "https://example.com./x");
}

/* curl rewrites numeric hosts to dotted quads; the result parses to itself. */
static void test_numeric_hosts(void **state)
{
    (void)state;
    assert_normalizes("https://3", BASE, "https://0.0.0.3/");
    assert_normalizes("https://0.0.0.3/", BASE, "https://0.0.0.3/");
    assert_normalizes("http://0x7f.1:8080/", BASE, "http://127.0.0.1:8080/");
    assert_int_equal(check_n("http://2130706433:8080/", 23, "http://127.0.0.1:8080"),
                     URLCHECK_SELF);
}

static void test_self_links(void **state)
{
    (void)state;
    assert_int_equal(check("https://sho.rt/abc1234"), URLCHECK_SELF);
    assert_int_equal(check("https://SHO.RT/abc1234"), URLCHECK_SELF);
    assert_int_equal(check("https://sho.rt:443/abc1234"), URLCHECK_SELF);
    assert_int_equal(check("HTTPS://sho.rt"), URLCHECK_SELF);
    assert_int_equal(check("https://sho.rt./x"), URLCHECK_SELF);
    assert_int_equal(check("https://user@sho.rt/x"), URLCHECK_SELF);
    /* http:// of our host is us too (a redirect to https, or a loop), and so is www. */
    assert_int_equal(check("http://sho.rt/x"), URLCHECK_SELF);
    assert_int_equal(check("http://sho.rt:80/x"), URLCHECK_SELF);
    assert_int_equal(check("https://www.sho.rt/x"), URLCHECK_SELF);
    assert_int_equal(check("http://WWW.Sho.Rt./x"), URLCHECK_SELF);
    /* Another port, another host, or a host that merely contains ours: somebody else's. */
    assert_int_equal(check("https://sho.rt:8443/x"), URLCHECK_OK);
    assert_int_equal(check("https://sho.rt@evil.example/x"), URLCHECK_OK);
    assert_int_equal(check("https://www2.sho.rt/x"), URLCHECK_OK);
    assert_int_equal(check("https://wwwsho.rt/x"), URLCHECK_OK);
    assert_int_equal(check("https://www.www.sho.rt/x"), URLCHECK_OK);
    assert_int_equal(check("https://sho.rt.evil.example/x"), URLCHECK_OK);
    assert_int_equal(check("https://api.sho.rt/x"), URLCHECK_OK);

    assert_int_equal(check_n("http://localhost:8080/k", 23, "http://localhost:8080"),
                     URLCHECK_SELF);
    assert_int_equal(check_n("http://LocalHost:8080/", 22, "http://localhost:8080"), URLCHECK_SELF);
    /* Default ports of our host are where a proxy in front of us would listen. */
    assert_int_equal(check_n("http://localhost/k", 18, "http://localhost:8080"), URLCHECK_SELF);
    assert_int_equal(check_n("https://localhost/k", 19, "http://localhost:8080"), URLCHECK_SELF);
    assert_int_equal(check_n("http://localhost:9090/k", 23, "http://localhost:8080"), URLCHECK_OK);
    assert_int_equal(check_n("http://localhost:80/k", 21, "http://localhost"), URLCHECK_SELF);
    assert_int_equal(check_n("http://127.0.0.1:8080/k", 23, "http://localhost:8080"), URLCHECK_OK);
    assert_int_equal(check_n("http://localhost:8080/k", 23, "http://localhost:8080/"),
                     URLCHECK_SELF);
    /* A base URL that is itself www. covers the bare name. */
    assert_int_equal(check_n("https://sho.rt/k", 16, "https://www.sho.rt"), URLCHECK_SELF);
}

static enum urlcheck_result check_self(const char *url, const char *base, const char *extra)
{
    struct urlcheck_self self;
    char err[128], *norm = NULL;
    enum urlcheck_result r;

    if (urlcheck_self_init(&self, base, extra, err, sizeof(err)) != 0)
        fail_msg("'%s' refused: %s", extra, err);
    r = urlcheck_check(url, strlen(url), &self, &norm);
    free(norm);
    urlcheck_self_release(&self);
    return r;
}

static void test_self_hosts(void **state)
{
    struct urlcheck_self self;
    char err[128];
    (void)state;

    const char *extra = " old.example , s.example.org,192.0.2.10,[2001:db8::5]";
    assert_int_equal(check_self("https://old.example/k", BASE, extra), URLCHECK_SELF);
    assert_int_equal(check_self("http://www.old.example/k", BASE, extra), URLCHECK_SELF);
    assert_int_equal(check_self("http://S.Example.Org./k", BASE, extra), URLCHECK_SELF);
    assert_int_equal(check_self("http://192.0.2.10/k", BASE, extra), URLCHECK_SELF);
    assert_int_equal(check_self("http://3221225994/k", BASE, extra), URLCHECK_SELF);
    assert_int_equal(check_self("http://[2001:db8::5]/k", BASE, extra), URLCHECK_SELF);
    assert_int_equal(check_self("https://sho.rt/k", BASE, extra), URLCHECK_SELF);
    assert_int_equal(check_self("https://new.example/k", BASE, extra), URLCHECK_OK);
    assert_int_equal(check_self("https://old.example.com/k", BASE, extra), URLCHECK_OK);
    assert_int_equal(check_self("https://old.example/k", BASE, ""), URLCHECK_OK);
    assert_int_equal(check_self("https://old.example/k", NULL, "old.example"), URLCHECK_SELF);
    assert_int_equal(check_self("https://x.example/k", NULL, NULL), URLCHECK_OK);
    /* Items that are not a host are refused at start-up. */
    const char *bad[] = {"old.example/path",
                         "http://old.example",
                         "a b",
                         "old.example:80",
                         "a,,b",
                         ",",
                         "u@h",
                         "[::1",
                         "h\\x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (urlcheck_self_init(&self, BASE, bad[i], err, sizeof(err)) == 0)
            fail_msg("SELF_HOSTS '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "SELF_HOSTS"));
    }
}

/* Browsers read a backslash as a slash, curl as part of the userinfo: which host is meant
 * is unclear, so such URLs, and any other character outside RFC 3986 in the authority, are
 * refused. */
static void test_authority_characters(void **state)
{
    (void)state;
    assert_int_equal(check("https://evil.example\\@sho.rt/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("https://sho.rt\\@evil.example/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("https://evil.example\\.sho.rt/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("https://a@b@example.com/"), URLCHECK_UNPARSABLE);
    const char *odd = "\"<>^`{|}";
    for (const char *c = odd; *c; c++) {
        char url[64];
        snprintf(url, sizeof(url), "https://us%cer@example.com/", *c);
        assert_int_equal(check(url), URLCHECK_UNPARSABLE);
        snprintf(url, sizeof(url), "https://exa%cmple.com/", *c);
        assert_int_equal(check(url), URLCHECK_UNPARSABLE);
    }
    assert_int_equal(check("https://user%4:pw@example.com/"), URLCHECK_UNPARSABLE);
    assert_int_equal(check("https://user%zz@example.com/"), URLCHECK_UNPARSABLE);
    /* What RFC 3986 allows still passes; backslashes after the authority are a path's. */
    assert_int_equal(check("https://us-er.name_~!$&'()*+,;=:p%41ss@example.com:8443/"),
                     URLCHECK_OK);
    assert_int_equal(check("https://[2001:db8::1]:8443/x"), URLCHECK_OK);
    assert_int_equal(check("https://example.com/a\\b"), URLCHECK_OK);
    assert_int_equal(check("https://example.com?a=\\"), URLCHECK_OK);
}

static void test_base_url_absent_or_broken(void **state)
{
    (void)state;
    assert_int_equal(check_n("https://sho.rt/x", 16, NULL), URLCHECK_OK);
    assert_int_equal(check_n("https://sho.rt/x", 16, ""), URLCHECK_OK);
    assert_int_equal(check_n("https://sho.rt/x", 16, "not a url"), URLCHECK_OK);
}

static void test_describe(void **state)
{
    (void)state;
    for (int r = URLCHECK_OK; r <= URLCHECK_NOMEM; r++) {
        const char *d = urlcheck_describe((enum urlcheck_result)r);
        assert_non_null(d);
        assert_true(strlen(d) > 0);
        for (const char *p = d; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f);
    }
    assert_non_null(strstr(urlcheck_describe(URLCHECK_TOO_LONG), "8192"));
    assert_non_null(strstr(urlcheck_describe(URLCHECK_BAD_SCHEME), "http"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_plain_urls),
        cmocka_unit_test(test_normalizes_scheme_and_port),
        cmocka_unit_test(test_encodes_non_ascii_outside_host),
        cmocka_unit_test(test_self_hosts),
        cmocka_unit_test(test_authority_characters),
        cmocka_unit_test(test_rejects_non_ascii_host),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_control_chars_and_spaces),
        cmocka_unit_test(test_bad_schemes),
        cmocka_unit_test(test_no_host),
        cmocka_unit_test(test_unparsable),
        cmocka_unit_test(test_rejects_escapes_in_host),
        cmocka_unit_test(test_keeps_trailing_dot),
        cmocka_unit_test(test_numeric_hosts),
        cmocka_unit_test(test_self_links),
        cmocka_unit_test(test_base_url_absent_or_broken),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
