/* Unit tests for request.c: create bodies in JSON and form encoding, aliases and expiry.
 * Most cases are malformed input; each failure must leave nothing allocated (ASan build)
 * and an error sentence that is safe to send back. */
#include "request.c"
#include "timefmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define NOW 1795441637LL /* 2026-11-23T13:47:17Z */

static char err[256];

static int parse_n(enum body_type t, const char *body, size_t len, struct create_request *out)
{
    memset(err, 0, sizeof(err));
    return request_parse_create(t, body, len, out, err, sizeof(err));
}

static int parse(enum body_type t, const char *body, struct create_request *out)
{
    return parse_n(t, body, strlen(body), out);
}

static void assert_err_printable(void)
{
    assert_true(strlen(err) > 0);
    for (const char *p = err; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            fail_msg("unprintable byte 0x%02x in error '%s'", (unsigned char)*p, err);
}

/* Parses body, expects -EINVAL, an error mentioning want (when given) and an empty out. */
static void assert_bad_n(enum body_type t, const char *body, size_t len, const char *want)
{
    struct create_request req;
    memset(&req, 0x5a, sizeof(req));
    if (parse_n(t, body, len, &req) != -EINVAL)
        fail_msg("accepted: '%.*s'", (int)len, body);
    assert_null(req.url);
    assert_null(req.alias);
    assert_false(req.has_ttl);
    assert_false(req.has_expires_at);
    assert_err_printable();
    if (want && !strstr(err, want))
        fail_msg("'%.*s': error '%s' does not mention '%s'", (int)len, body, err, want);
}

static void assert_bad(enum body_type t, const char *body, const char *want)
{
    assert_bad_n(t, body, strlen(body), want);
}

static void test_body_type(void **state)
{
    (void)state;
    assert_int_equal(request_body_type("application/json"), BODY_JSON);
    assert_int_equal(request_body_type("Application/JSON"), BODY_JSON);
    assert_int_equal(request_body_type("application/json; charset=utf-8"), BODY_JSON);
    assert_int_equal(request_body_type("application/json;charset=UTF-8"), BODY_JSON);
    assert_int_equal(request_body_type(" application/json "), BODY_JSON);
    assert_int_equal(request_body_type("application/x-www-form-urlencoded"), BODY_FORM);
    assert_int_equal(request_body_type("APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8"),
                     BODY_FORM);
    assert_int_equal(request_body_type(NULL), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type(""), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("text/plain"), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("application/jsonx"), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("application/jso"), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("application/problem+json"), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("application/json-seq"), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("application/json x"), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("multipart/form-data; boundary=x"), BODY_UNSUPPORTED);
    assert_int_equal(request_body_type("application/"), BODY_UNSUPPORTED);
}

static void test_json_all_fields(void **state)
{
    struct create_request req;
    (void)state;
    assert_int_equal(parse(BODY_JSON,
                           "{\"url\":\"https://example.com/\\u00fc\",\"alias\":\"my-link\","
                           "\"expires_at\":\"2030-01-01T00:00:00Z\"}",
                           &req),
                     0);
    assert_string_equal(req.url, "https://example.com/\xc3\xbc");
    assert_int_equal(req.url_len, 22);
    assert_string_equal(req.alias, "my-link");
    assert_true(req.has_expires_at);
    assert_int_equal(req.expires_at, 1893456000);
    assert_false(req.has_ttl);
    create_request_release(&req);
    assert_null(req.url);
    assert_null(req.alias);

    assert_int_equal(parse(BODY_JSON, " {\"ttl\": 3600, \"url\": \"http://a.example\"}\n", &req),
                     0);
    assert_string_equal(req.url, "http://a.example");
    assert_null(req.alias);
    assert_true(req.has_ttl);
    assert_int_equal(req.ttl, 3600);
    assert_false(req.has_expires_at);
    create_request_release(&req);
}

static void test_json_absent_null_and_unknown(void **state)
{
    struct create_request req;
    (void)state;
    /* url is required by the caller, not here. */
    assert_int_equal(parse(BODY_JSON, "{}", &req), 0);
    assert_null(req.url);
    create_request_release(&req);

    assert_int_equal(parse(BODY_JSON,
                           "{\"url\":null,\"alias\":null,\"expires_at\":null,\"ttl\":null,"
                           "\"extra\":{\"nested\":[1,2,{\"url\":5}]},\"URL\":7}",
                           &req),
                     0);
    assert_null(req.url);
    assert_null(req.alias);
    assert_false(req.has_ttl);
    assert_false(req.has_expires_at);
    create_request_release(&req);

    /* An empty url is present; the URL check reports it. */
    assert_int_equal(parse(BODY_JSON, "{\"url\":\"\"}", &req), 0);
    assert_non_null(req.url);
    assert_int_equal(req.url_len, 0);
    create_request_release(&req);
}

static void test_json_malformed(void **state)
{
    (void)state;
    assert_bad(BODY_JSON, "", "malformed JSON");
    assert_bad(BODY_JSON, "   ", "malformed JSON");
    assert_bad(BODY_JSON, "{", "malformed JSON");
    assert_bad(BODY_JSON, "{\"url\":}", "malformed JSON");
    assert_bad(BODY_JSON, "{\"url\":\"a\",}", "malformed JSON");
    assert_bad(BODY_JSON, "{'url':'a'}", "malformed JSON");
    assert_bad(BODY_JSON, "{} x", "malformed JSON");
    assert_bad(BODY_JSON, "{}{}", "malformed JSON");
    assert_bad(BODY_JSON, "{\"url\":\"a\"} \xff", "malformed JSON");
    assert_bad(BODY_JSON, "{\"url\":\"\xff\xfe\"}", "malformed JSON");
    assert_bad(BODY_JSON, "{\"url\":\"a\x01\"}", "malformed JSON");
    assert_bad(BODY_JSON, "url=https://example.com", "malformed JSON");
    /* jansson quotes the bad token; the reply must not. */
    assert_bad(BODY_JSON, "{\"url\": tru\x1b[31m}", "malformed JSON");
    assert_bad(BODY_JSON, "{\"url\":\"\xc3\xbc\x1b[31m", "malformed JSON");
    assert_bad_n(BODY_JSON, "{\"url\":\"a\"}\0", 12, "malformed JSON");
    assert_bad_n(BODY_JSON, "{\"url\":\0\"a\"}", 12, "malformed JSON");
}

static void test_json_not_object(void **state)
{
    (void)state;
    assert_bad(BODY_JSON, "[]", NULL);
    assert_bad(BODY_JSON, "[{\"url\":\"https://example.com\"}]", NULL);
    /* jansson refuses scalars at the top without JSON_DECODE_ANY; either way, rejected. */
    assert_bad(BODY_JSON, "\"https://example.com\"", NULL);
    assert_bad(BODY_JSON, "42", NULL);
    assert_bad(BODY_JSON, "null", NULL);
    assert_bad(BODY_JSON, "true", NULL);
    assert_bad(BODY_JSON, "[1]", "object");
}

static void test_json_duplicates(void **state)
{
    (void)state;
    assert_bad(BODY_JSON, "{\"url\":\"https://a.example\",\"url\":\"https://b.example\"}", NULL);
    assert_bad(BODY_JSON, "{\"url\":\"https://a.example\",\"x\":1,\"x\":2}", NULL);
    assert_bad(BODY_JSON, "{\"ttl\":1,\"ttl\":null}", NULL);
}

static void test_json_nul_in_string(void **state)
{
    (void)state;
    assert_bad(BODY_JSON, "{\"url\":\"https://example.com/\\u0000evil\"}", NULL);
    assert_bad(BODY_JSON, "{\"alias\":\"ab\\u0000c\"}", NULL);
}

static void test_json_wrong_types(void **state)
{
    (void)state;
    assert_bad(BODY_JSON, "{\"url\":1}", "url");
    assert_bad(BODY_JSON, "{\"url\":true}", "url");
    assert_bad(BODY_JSON, "{\"url\":[\"https://example.com\"]}", "url");
    assert_bad(BODY_JSON, "{\"url\":{\"href\":\"https://example.com\"}}", "url");
    assert_bad(BODY_JSON, "{\"alias\":123}", "alias");
    assert_bad(BODY_JSON, "{\"alias\":false}", "alias");
    assert_bad(BODY_JSON, "{\"expires_at\":1893456000}", "expires_at");
    assert_bad(BODY_JSON, "{\"expires_at\":{}}", "expires_at");
    assert_bad(BODY_JSON, "{\"ttl\":\"60\"}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":true}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":[60]}", "ttl");
    /* A good field first must not hide a bad one after it. */
    assert_bad(BODY_JSON, "{\"url\":\"https://example.com\",\"alias\":7}", "alias");
    assert_bad(BODY_JSON, "{\"url\":\"https://example.com\",\"ttl\":\"7\"}", "ttl");
    assert_bad(BODY_JSON, "{\"alias\":\"abc\",\"ttl\":60,\"url\":5}", "url");
}

static void test_json_ttl_values(void **state)
{
    struct create_request req;
    char body[64];
    (void)state;
    assert_bad(BODY_JSON, "{\"ttl\":0}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":-1}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":-9223372036854775808}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":60.0}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":1.5}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":1e3}", "ttl");
    assert_bad(BODY_JSON, "{\"ttl\":1e400}", NULL);
    assert_bad(BODY_JSON, "{\"ttl\":99999999999999999999999}", NULL);
    assert_bad(BODY_JSON, "{\"ttl\":9223372036854775807}", "ttl");
    snprintf(body, sizeof(body), "{\"ttl\":%lld}", TTL_MAX + 1);
    assert_bad(BODY_JSON, body, "ttl");

    snprintf(body, sizeof(body), "{\"ttl\":%lld}", TTL_MAX);
    assert_int_equal(parse(BODY_JSON, body, &req), 0);
    assert_int_equal(req.ttl, TTL_MAX);
    create_request_release(&req);
    assert_int_equal(parse(BODY_JSON, "{\"ttl\":1}", &req), 0);
    assert_int_equal(req.ttl, 1);
    assert_true(req.has_ttl);
    create_request_release(&req);
}

static void test_json_expiry_fields(void **state)
{
    (void)state;
    assert_bad(BODY_JSON, "{\"expires_at\":\"tomorrow\"}", "expires_at");
    assert_bad(BODY_JSON, "{\"expires_at\":\"2030-02-30T00:00:00Z\"}", "expires_at");
    assert_bad(BODY_JSON, "{\"expires_at\":\"\"}", "expires_at");
    assert_bad(BODY_JSON, "{\"expires_at\":\"2030-01-01T00:00:00Z\",\"ttl\":60}",
               "expires_at and ttl are exclusive");
    assert_bad(BODY_JSON, "{\"ttl\":60,\"url\":\"x\",\"expires_at\":\"2030-01-01T00:00:00Z\"}",
               "exclusive");
}

static void test_json_deep_nesting(void **state)
{
    enum { DEPTH = 30000 };
    char *body = malloc(2 * DEPTH + 16);
    size_t n = 0;
    (void)state;
    assert_non_null(body);
    memcpy(body, "{\"x\":", 5);
    n = 5;
    for (int i = 0; i < DEPTH; i++)
        body[n++] = '[';
    for (int i = 0; i < DEPTH; i++)
        body[n++] = ']';
    body[n++] = '}';
    body[n] = '\0';
    /* Within the body limit but far too deep: refused without blowing the stack. */
    assert_bad(BODY_JSON, body, NULL);
    free(body);
}

static void test_body_limits(void **state)
{
    size_t n = REQUEST_MAX_BODY + 1;
    char *body = malloc(n);
    struct create_request req;
    (void)state;
    assert_non_null(body);
    memset(body, ' ', n);
    memcpy(body, "{}", 2);
    assert_bad_n(BODY_JSON, body, n, "body");
    assert_int_equal(parse_n(BODY_JSON, body, n - 1, &req), 0);
    create_request_release(&req);
    free(body);

    assert_bad_n(BODY_JSON, NULL, 5, NULL);
    assert_int_equal(parse_n(BODY_FORM, NULL, 0, &req), 0);
    assert_null(req.url);
    create_request_release(&req);
    assert_bad(BODY_UNSUPPORTED, "{\"url\":\"https://example.com\"}", NULL);
}

static void test_form_fields(void **state)
{
    struct create_request req;
    (void)state;
    assert_int_equal(parse(BODY_FORM,
                           "url=https%3A%2F%2Fexample.com%2Fa%3Fb%3Dc%26d%3D%2B1&alias=my_link"
                           "&expires_at=2030-01-01T01%3A00%3A00%2B01%3A00",
                           &req),
                     0);
    assert_string_equal(req.url, "https://example.com/a?b=c&d=+1");
    assert_int_equal(req.url_len, strlen(req.url));
    assert_string_equal(req.alias, "my_link");
    assert_true(req.has_expires_at);
    assert_int_equal(req.expires_at, 1893456000);
    create_request_release(&req);

    /* The curl -d example from the API contract: nothing encoded at all. */
    assert_int_equal(parse(BODY_FORM, "url=https://example.com&ttl=0060", &req), 0);
    assert_string_equal(req.url, "https://example.com");
    assert_true(req.has_ttl);
    assert_int_equal(req.ttl, 60);
    create_request_release(&req);

    /* '+' is a space, %2B a plus. */
    assert_int_equal(parse(BODY_FORM, "alias=a+b%2Bc", &req), 0);
    assert_string_equal(req.alias, "a b+c");
    create_request_release(&req);

    /* Names are decoded too; unknown fields, empty pairs and a trailing '&' are ignored. */
    assert_int_equal(parse(BODY_FORM, "&u%72l=x&&other=1&other=2&x=%00&URL=y&", &req), 0);
    assert_string_equal(req.url, "x");
    assert_null(req.alias);
    create_request_release(&req);
}

static void test_form_empty_values(void **state)
{
    struct create_request req;
    (void)state;
    /* Present but empty: the URL check later reports "the url is empty". */
    assert_int_equal(parse(BODY_FORM, "url=", &req), 0);
    assert_non_null(req.url);
    assert_string_equal(req.url, "");
    assert_int_equal(req.url_len, 0);
    create_request_release(&req);
    assert_int_equal(parse(BODY_FORM, "url", &req), 0);
    assert_non_null(req.url);
    assert_int_equal(req.url_len, 0);
    create_request_release(&req);
    assert_int_equal(parse(BODY_FORM, "alias=&url=x", &req), 0);
    assert_string_equal(req.alias, "");
    create_request_release(&req);
    assert_int_equal(parse(BODY_FORM, "", &req), 0);
    assert_null(req.url);
    create_request_release(&req);

    assert_bad(BODY_FORM, "ttl=", "ttl");
    assert_bad(BODY_FORM, "ttl", "ttl");
    assert_bad(BODY_FORM, "expires_at=", "expires_at");
}

static void test_form_bad_escapes(void **state)
{
    (void)state;
    assert_bad(BODY_FORM, "url=%", "escape");
    assert_bad(BODY_FORM, "url=%4", "escape");
    assert_bad(BODY_FORM, "url=a%zz", "escape");
    assert_bad(BODY_FORM, "url=a%g0", "escape");
    assert_bad(BODY_FORM, "url=a%0g", "escape");
    assert_bad(BODY_FORM, "url=a%%41", "escape");
    assert_bad(BODY_FORM, "url=https://example.com&other=%", "escape");
    assert_bad(BODY_FORM, "u%7=x", "escape");
}

static void test_form_nul(void **state)
{
    (void)state;
    assert_bad(BODY_FORM, "url=https://example.com/%00evil", "url");
    assert_bad(BODY_FORM, "alias=abc%00", "alias");
    assert_bad(BODY_FORM, "expires_at=2030-01-01T00:00:00Z%00", "expires_at");
    assert_bad_n(BODY_FORM, "url=ab\0c", 8, "url");
}

static void test_form_duplicates(void **state)
{
    (void)state;
    assert_bad(BODY_FORM, "url=https://a.example&url=https://b.example", "url");
    assert_bad(BODY_FORM, "url=a&alias=abc&alias=abc", "alias");
    assert_bad(BODY_FORM, "ttl=1&ttl=1", "ttl");
    assert_bad(BODY_FORM, "url=a&u%72l=b", "url");
    assert_bad(BODY_FORM, "url=&url", "url");
}

static void test_form_ttl(void **state)
{
    static const char *const bad[] = {
        "ttl=0",   "ttl=000", "ttl=-1",    "ttl=%2B1",
        "ttl=+1",  "ttl=1.5", "ttl=1e3",   "ttl=0x10",
        "ttl=60s", "ttl=6 0", "ttl=%2060", "ttl=99999999999999999999999999999999",
    };
    struct create_request req;
    char body[64];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_bad(BODY_FORM, bad[i], "ttl");
    snprintf(body, sizeof(body), "ttl=%lld", TTL_MAX + 1);
    assert_bad(BODY_FORM, body, "ttl");
    snprintf(body, sizeof(body), "ttl=%lld", TTL_MAX);
    assert_int_equal(parse(BODY_FORM, body, &req), 0);
    assert_int_equal(req.ttl, TTL_MAX);
    create_request_release(&req);
    assert_bad(BODY_FORM, "url=x&ttl=60&expires_at=2030-01-01T00:00:00Z", "exclusive");
    assert_bad(BODY_FORM, "expires_at=2030-13-01T00:00:00Z", "expires_at");
}

static void test_alias_ok(void **state)
{
    static const char *const good[] = {
        "abc",         "my-link",
        "my_link",     "ABC123",
        "---",         "___",
        "apis",        "xapi",
        "api-docs",    "healthz2",
        "Status-page", "0123456789012345678901234567890123456789012345678901234567890123",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (request_check_alias(good[i], err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", good[i], err);
    }
}

static void test_alias_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "a",
        "ab",
        "a b",
        "abc/",
        "abc.",
        ".well-known",
        "abc?",
        "abc#",
        "ab%20",
        "\xc3\xbc\xc3\xbc\xc3\xbc",
        "abc\n",
        "abc\t",
        "01234567890123456789012345678901234567890123456789012345678901234",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (request_check_alias(bad[i], err, sizeof(err)) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_err_printable();
    }
    assert_int_equal(request_check_alias(NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(request_check_alias("ab", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "3 to 64"));
    assert_int_equal(request_check_alias("a b", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "letters"));
}

static void test_alias_reserved(void **state)
{
    char upper[32];
    (void)state;
    for (size_t i = 0; i < linkkey_nreserved; i++) {
        const char *r = linkkey_reserved[i];
        err[0] = '\0';
        if (request_check_alias(r, err, sizeof(err)) != -EINVAL)
            fail_msg("reserved '%s' accepted", r);
        assert_non_null(strstr(err, "reserved"));
        for (size_t k = 0; k < sizeof(upper) - 1 && r[k]; k++)
            upper[k] = (char)(r[k] >= 'a' && r[k] <= 'z' ? r[k] - 32 : r[k]);
        upper[strlen(r)] = '\0';
        if (request_check_alias(upper, err, sizeof(err)) != -EINVAL)
            fail_msg("reserved '%s' accepted", upper);
    }
    /* The contract names these; make sure the table keeps them. */
    assert_int_equal(request_check_alias("api", err, sizeof(err)), -EINVAL);
    assert_int_equal(request_check_alias("healthz", err, sizeof(err)), -EINVAL);
    assert_int_equal(request_check_alias("readyz", err, sizeof(err)), -EINVAL);
    assert_int_equal(request_check_alias("metrics", err, sizeof(err)), -EINVAL);
    assert_int_equal(request_check_alias("static", err, sizeof(err)), -EINVAL);
    assert_int_equal(request_check_alias("Well-Known", err, sizeof(err)), -EINVAL);
}

static void test_is_key(void **state)
{
    (void)state;
    assert_true(request_is_key("abc", 3));
    assert_true(request_is_key("aB3_-xY", 7));
    assert_true(request_is_key("abcdef", 3));
    assert_true(
        request_is_key("0123456789012345678901234567890123456789012345678901234567890123", 64));
    assert_false(request_is_key("0123456789012345678901234567890123456789012345678901234567890123"
                                "4",
                                65));
    assert_false(request_is_key("ab", 2));
    assert_false(request_is_key("", 0));
    assert_false(request_is_key(NULL, 0));
    assert_false(request_is_key("ab\0cd", 5));
    assert_false(request_is_key("ab.cd", 5));
    assert_false(request_is_key("ab/cd", 5));
    assert_false(request_is_key("ab cd", 5));
    assert_false(request_is_key("ab%cd", 5));
    assert_false(request_is_key("\xc3\xbc\xc3\xbc", 4));
}

static void test_expiry(void **state)
{
    struct create_request req = {0};
    int64_t exp = -1;
    (void)state;

    assert_int_equal(request_resolve_expiry(&req, NOW, 3600, &exp, err, sizeof(err)), 0);
    assert_int_equal(exp, NOW + 3600);
    assert_int_equal(request_resolve_expiry(&req, NOW, 0, &exp, err, sizeof(err)), 0);
    assert_int_equal(exp, 0);
    exp = -1;
    assert_int_equal(request_resolve_expiry(&req, NOW, -5, &exp, err, sizeof(err)), 0);
    assert_int_equal(exp, 0);

    req.has_ttl = true;
    req.ttl = 60;
    assert_int_equal(request_resolve_expiry(&req, NOW, 3600, &exp, err, sizeof(err)), 0);
    assert_int_equal(exp, NOW + 60);
    req.ttl = 0;
    assert_int_equal(request_resolve_expiry(&req, NOW, 3600, &exp, err, sizeof(err)), -EINVAL);
    req.ttl = TTL_MAX + 1;
    assert_int_equal(request_resolve_expiry(&req, NOW, 3600, &exp, err, sizeof(err)), -EINVAL);

    req.has_ttl = false;
    req.has_expires_at = true;
    req.expires_at = NOW + 1;
    assert_int_equal(request_resolve_expiry(&req, NOW, 3600, &exp, err, sizeof(err)), 0);
    assert_int_equal(exp, NOW + 1);
    req.expires_at = NOW;
    err[0] = '\0';
    assert_int_equal(request_resolve_expiry(&req, NOW, 3600, &exp, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "expiry is in the past");
    req.expires_at = NOW - 86400;
    assert_int_equal(request_resolve_expiry(&req, NOW, 0, &exp, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "expiry is in the past");
    req.expires_at = NOW + EXPIRES_MAX_OUT;
    assert_int_equal(request_resolve_expiry(&req, NOW, 0, &exp, err, sizeof(err)), 0);
    assert_int_equal(exp, NOW + EXPIRES_MAX_OUT);
    req.expires_at = NOW + EXPIRES_MAX_OUT + 1;
    err[0] = '\0';
    assert_int_equal(request_resolve_expiry(&req, NOW, 0, &exp, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "100 years"));
}

static void test_expiry_from_parsed_body(void **state)
{
    struct create_request req;
    int64_t exp;
    (void)state;
    assert_int_equal(parse(BODY_JSON, "{\"expires_at\":\"2026-11-23T14:47:17+01:00\"}", &req), 0);
    assert_int_equal(request_resolve_expiry(&req, NOW, 60, &exp, err, sizeof(err)), -EINVAL);
    create_request_release(&req);
    assert_int_equal(parse(BODY_FORM, "expires_at=2026-11-23T13%3A47%3A18Z", &req), 0);
    assert_int_equal(request_resolve_expiry(&req, NOW, 60, &exp, err, sizeof(err)), 0);
    assert_int_equal(exp, NOW + 1);
    create_request_release(&req);
}

static void test_small_error_buffer(void **state)
{
    struct create_request req;
    char tiny[8];
    (void)state;
    memset(tiny, 'x', sizeof(tiny));
    assert_int_equal(request_parse_create(BODY_JSON, "[]", 2, &req, tiny, sizeof(tiny)), -EINVAL);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(request_parse_create(BODY_JSON, "[", 1, &req, NULL, 0), -EINVAL);
    assert_int_equal(request_check_alias("a", NULL, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_type),
        cmocka_unit_test(test_json_all_fields),
        cmocka_unit_test(test_json_absent_null_and_unknown),
        cmocka_unit_test(test_json_malformed),
        cmocka_unit_test(test_json_not_object),
        cmocka_unit_test(test_json_duplicates),
        cmocka_unit_test(test_json_nul_in_string),
        cmocka_unit_test(test_json_wrong_types),
        cmocka_unit_test(test_json_ttl_values),
        cmocka_unit_test(test_json_expiry_fields),
        cmocka_unit_test(test_json_deep_nesting),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_form_fields),
        cmocka_unit_test(test_form_empty_values),
        cmocka_unit_test(test_form_bad_escapes),
        cmocka_unit_test(test_form_nul),
        cmocka_unit_test(test_form_duplicates),
        cmocka_unit_test(test_form_ttl),
        cmocka_unit_test(test_alias_ok),
        cmocka_unit_test(test_alias_bad),
        cmocka_unit_test(test_alias_reserved),
        cmocka_unit_test(test_is_key),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_expiry_from_parsed_body),
        cmocka_unit_test(test_small_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
