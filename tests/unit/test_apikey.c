/* Unit tests for apikey.c: key shape, the keyed hash (against BLAKE2b vectors computed
 * independently with Python's hashlib) and rate specifications. */
#include "apikey.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define KEY "sk_0123456789abcdefghijABCDEFGHIJxy"

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void assert_hash(const char *key, size_t len, const char *pepper, const char *want_hex)
{
    unsigned char out[APIKEY_HASH_LEN];
    char hex[APIKEY_HASH_LEN * 2 + 1];
    assert_int_equal(apikey_hash(key, len, pepper, out), 0);
    sodium_bin2hex(hex, sizeof(hex), out, sizeof(out));
    assert_string_equal(hex, want_hex);
}

static void test_generate(void **state)
{
    char a[APIKEY_LEN + 1], b[APIKEY_LEN + 1];
    (void)state;
    memset(a, 'x', sizeof(a));
    apikey_generate(a);
    apikey_generate(b);
    assert_int_equal(strlen(a), APIKEY_LEN);
    assert_memory_equal(a, "sk_", 3);
    assert_true(apikey_well_formed(a, strlen(a)));
    assert_true(apikey_well_formed(b, strlen(b)));
    assert_string_not_equal(a, b);
}

/* Over many keys every base62 digit turns up and nothing else does. */
static void test_generate_alphabet(void **state)
{
    bool seen[256] = {false};
    char k[APIKEY_LEN + 1];
    int distinct = 0;
    (void)state;
    for (int i = 0; i < 500; i++) {
        apikey_generate(k);
        for (size_t j = APIKEY_PREFIX_LEN; j < APIKEY_LEN; j++)
            seen[(unsigned char)k[j]] = true;
    }
    for (int c = 0; c < 256; c++) {
        if (seen[c]) {
            assert_true(base62_is_digit((char)c));
            distinct++;
        }
    }
    assert_int_equal(distinct, 62);
}

static void test_well_formed(void **state)
{
    char k[APIKEY_LEN + 2];
    (void)state;
    assert_true(apikey_well_formed(KEY, strlen(KEY)));
    assert_false(apikey_well_formed(KEY, strlen(KEY) - 1));
    assert_false(apikey_well_formed(KEY "z", strlen(KEY) + 1));
    assert_false(apikey_well_formed("", 0));
    assert_false(apikey_well_formed(NULL, APIKEY_LEN));
    assert_false(apikey_well_formed("SK_0123456789abcdefghijABCDEFGHIJxy", APIKEY_LEN));
    assert_false(apikey_well_formed("pk_0123456789abcdefghijABCDEFGHIJxy", APIKEY_LEN));
    assert_false(apikey_well_formed("sk-0123456789abcdefghijABCDEFGHIJxy", APIKEY_LEN));
    assert_false(apikey_well_formed("sk_sk_3456789abcdefghijABCDEFGHIJxy", APIKEY_LEN));
    for (const char *bad = "-_ .+/=\n\x80\xff"; *bad; bad++) {
        memcpy(k, KEY, sizeof(KEY));
        k[20] = *bad;
        assert_false(apikey_well_formed(k, APIKEY_LEN));
    }
    memcpy(k, KEY, sizeof(KEY));
    k[APIKEY_LEN - 1] = '\0';
    assert_false(apikey_well_formed(k, APIKEY_LEN));
}

static void test_hash_vectors(void **state)
{
    (void)state;
    assert_hash(KEY, strlen(KEY), "",
                "e7123e451dbb90f44ed4746e24f7182ac3c2a97aafb670bf45bbe0cecc2b5f0e");
    assert_hash(KEY, strlen(KEY), NULL,
                "e7123e451dbb90f44ed4746e24f7182ac3c2a97aafb670bf45bbe0cecc2b5f0e");
    assert_hash(KEY, strlen(KEY), "pepper",
                "5f446e3142a7521033e9263e71718604240e187a36c6340aeffb0b9a9ba1fa0e");
    assert_hash("", 0, "", "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

static void test_hash_long_pepper(void **state)
{
    char pepper[201];
    (void)state;
    memset(pepper, 'p', 200);
    pepper[200] = '\0';
    assert_hash(KEY, strlen(KEY), pepper,
                "c828aec491456d05d155dc772e7a0c295ff0ee540be1f8a7c7fe453cb3762e6d");
}

static void test_hash_uses_len(void **state)
{
    unsigned char a[APIKEY_HASH_LEN], b[APIKEY_HASH_LEN];
    (void)state;
    assert_int_equal(apikey_hash(KEY "trailing", strlen(KEY), "pepper", a), 0);
    assert_int_equal(apikey_hash(KEY, strlen(KEY), "pepper", b), 0);
    assert_memory_equal(a, b, sizeof(a));
    assert_int_equal(apikey_hash(KEY, strlen(KEY) - 1, "pepper", b), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(apikey_hash(KEY, strlen(KEY), "pepper2", b), 0);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void assert_rate(const char *s, int want_limit, int want_window)
{
    int limit = -1, window = -1;
    if (apikey_parse_rate(s, &limit, &window) != 0)
        fail_msg("'%s' rejected", s);
    assert_int_equal(limit, want_limit);
    assert_int_equal(window, want_window);
}

static void test_parse_rate_ok(void **state)
{
    (void)state;
    assert_rate("100/s", 100, 1);
    assert_rate("1/s", 1, 1);
    assert_rate("60/min", 60, 60);
    assert_rate("5000/h", 5000, 3600);
    assert_rate("1000000/h", 1000000, 3600);
}

static void test_parse_rate_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "0/s",
        "1000001/s",
        "-1/s",
        "+1/s",
        "01/s",
        " 1/s",
        "1/s ",
        "1 /s",
        "1/ s",
        "1/S",
        "1/sec",
        "1/m",
        "1/minute",
        "1/hour",
        "1/H",
        "1/d",
        "1",
        "/s",
        "1/",
        "1//s",
        "1/s/s",
        "1.5/s",
        "1e3/s",
        "0x10/s",
        "1/s\n",
        "s/1",
        "100/ms",
        "99999999999999999999999/s",
        "2147483648/s",
    };
    int limit = -7, window = -7;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (apikey_parse_rate(bad[i], &limit, &window) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(limit, -7);
        assert_int_equal(window, -7);
    }
    assert_int_equal(apikey_parse_rate(NULL, &limit, &window), -EINVAL);
}

static void test_format_rate(void **state)
{
    char buf[32];
    int limit, window;
    (void)state;
    apikey_format_rate(100, 1, buf, sizeof(buf));
    assert_string_equal(buf, "100/s");
    apikey_format_rate(60, 60, buf, sizeof(buf));
    assert_string_equal(buf, "60/min");
    apikey_format_rate(1000000, 3600, buf, sizeof(buf));
    assert_string_equal(buf, "1000000/h");
    apikey_format_rate(5, 7, buf, sizeof(buf));
    assert_string_equal(buf, "5/7s");
    apikey_format_rate(1000000, 3600, buf, 4);
    assert_string_equal(buf, "100");

    static const char *const specs[] = {"1/s", "42/min", "1000000/h", "999999/s"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        assert_int_equal(apikey_parse_rate(specs[i], &limit, &window), 0);
        apikey_format_rate(limit, window, buf, sizeof(buf));
        assert_string_equal(buf, specs[i]);
    }
}

static void test_parse_burst(void **state)
{
    static const char *const bad[] = {
        "",    "0",   "-1",   "+1", "01", " 1",      "1 ",
        "1.5", "1e3", "0x10", "a",  "1a", "1000001", "99999999999999999999"};
    int burst = -7;
    (void)state;
    assert_int_equal(apikey_parse_burst("1", &burst), 0);
    assert_int_equal(burst, 1);
    assert_int_equal(apikey_parse_burst("250", &burst), 0);
    assert_int_equal(burst, 250);
    assert_int_equal(apikey_parse_burst("1000000", &burst), 0);
    assert_int_equal(burst, 1000000);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        burst = -7;
        if (apikey_parse_burst(bad[i], &burst) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(burst, -7);
    }
    assert_int_equal(apikey_parse_burst(NULL, &burst), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),         cmocka_unit_test(test_generate_alphabet),
        cmocka_unit_test(test_well_formed),      cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_hash_long_pepper), cmocka_unit_test(test_hash_uses_len),
        cmocka_unit_test(test_parse_rate_ok),    cmocka_unit_test(test_parse_rate_bad),
        cmocka_unit_test(test_format_rate),      cmocka_unit_test(test_parse_burst),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
