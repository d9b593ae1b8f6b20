/* Unit tests for lib/linkkey.c: keys, aliases and tags as both the server and the import see
 * them, given by length (import fields are not NUL-terminated where they end). */
#include "linkkey.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define S(lit) lit, sizeof(lit) - 1

static void test_alias(void **state)
{
    (void)state;
    assert_int_equal(linkkey_check_alias(S("abc")), LINKKEY_OK);
    assert_int_equal(linkkey_check_alias(S("a-b_C9")), LINKKEY_OK);
    assert_int_equal(linkkey_check_alias(S("apis")), LINKKEY_OK);
    assert_int_equal(linkkey_check_alias(S("ab")), LINKKEY_BAD_LENGTH);
    assert_int_equal(linkkey_check_alias(NULL, 0), LINKKEY_BAD_LENGTH);
    assert_int_equal(linkkey_check_alias(S("0123456789012345678901234567890123456789012345678901"
                                           "2345678901234")),
                     LINKKEY_BAD_LENGTH);
    assert_int_equal(linkkey_check_alias(S("a b")), LINKKEY_BAD_CHARS);
    assert_int_equal(linkkey_check_alias(S("ab\0c")), LINKKEY_BAD_CHARS);
    assert_int_equal(linkkey_check_alias(S("abc/d")), LINKKEY_BAD_CHARS);
    assert_int_equal(linkkey_check_alias(S("API")), LINKKEY_RESERVED);
    assert_int_equal(linkkey_check_alias(S("Well-Known")), LINKKEY_RESERVED);
    /* Only the len bytes count: "apix" cut to three is "api". */
    assert_int_equal(linkkey_check_alias("apix", 3), LINKKEY_RESERVED);
    assert_int_equal(linkkey_check_alias("apix", 4), LINKKEY_OK);
    for (size_t i = 0; i < linkkey_nreserved; i++)
        assert_int_equal(linkkey_check_alias(linkkey_reserved[i], strlen(linkkey_reserved[i])),
                         LINKKEY_RESERVED);
}

static void test_is_key(void **state)
{
    (void)state;
    assert_true(linkkey_is_key(S("abc")));
    assert_true(linkkey_is_key(S("api"))); /* a key, though not an alias one may choose */
    assert_false(linkkey_is_key(S("ab")));
    assert_false(linkkey_is_key(S("ab.c")));
    assert_false(linkkey_is_key(NULL, 3));
}

static void test_tag(void **state)
{
    (void)state;
    assert_true(linkkey_is_tag(S("a")));
    assert_true(linkkey_is_tag(S("news_2024-q1")));
    assert_true(linkkey_is_tag(S("01234567890123456789012345678901")));
    assert_false(linkkey_is_tag(S("012345678901234567890123456789012")));
    assert_false(linkkey_is_tag(S("")));
    assert_false(linkkey_is_tag(S("my tag")));
    assert_false(linkkey_is_tag(S("caf\xc3\xa9")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alias),
        cmocka_unit_test(test_is_key),
        cmocka_unit_test(test_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
