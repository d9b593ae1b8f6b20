/* Unit tests for lib/apikey_store.c without a database: the bytea literal a key's hash is
 * stored and compared as (the statements run against a real PostgreSQL in
 * tests/integration/test_cli.py and test_ratelimit.py). */
#include "../../lib/apikey_store.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_hash_to_bytea(void **state)
{
    unsigned char hash[APIKEY_HASH_LEN];
    char hex[BYTEA_HEX_LEN];
    (void)state;
    for (size_t i = 0; i < sizeof(hash); i++)
        hash[i] = (unsigned char)(0xa0 + i);
    memset(hex, '?', sizeof(hex));
    hash_to_bytea(hash, hex);
    /* PostgreSQL's hex format: "\x", then two lower-case digits a byte, as it sends bytea
     * back, so that authentication can compare the text it gets with this one. */
    assert_string_equal(hex, "\\xa0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
                             "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
    assert_int_equal(strlen(hex), 2 + 2 * APIKEY_HASH_LEN);
}

static void test_hash_to_bytea_extremes(void **state)
{
    unsigned char zeros[APIKEY_HASH_LEN] = {0}, ones[APIKEY_HASH_LEN];
    char hex[BYTEA_HEX_LEN];
    (void)state;
    memset(ones, 0xff, sizeof(ones));
    hash_to_bytea(zeros, hex);
    assert_memory_equal(hex, "\\x00000000", 10);
    assert_int_equal(strspn(hex + 2, "0"), 2 * APIKEY_HASH_LEN);
    hash_to_bytea(ones, hex);
    assert_int_equal(strspn(hex + 2, "f"), 2 * APIKEY_HASH_LEN);
    assert_int_equal(hex[BYTEA_HEX_LEN - 1], '\0');
}

static void test_list_release_is_idempotent(void **state)
{
    struct apikey_list list = {0};
    (void)state;
    apikey_list_release(&list);
    list.rows = calloc(2, sizeof(*list.rows));
    assert_non_null(list.rows);
    list.rows[0].name = strdup("a");
    list.rows[1].name = strdup("b");
    list.n = 2;
    apikey_list_release(&list);
    assert_null(list.rows);
    assert_int_equal(list.n, 0);
    apikey_list_release(&list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_to_bytea),
        cmocka_unit_test(test_hash_to_bytea_extremes),
        cmocka_unit_test(test_list_release_is_idempotent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
