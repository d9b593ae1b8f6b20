/* Unit tests for kgs/peers.c: KGS_ALLOWED_UIDS and who may connect. */
#include "peers.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_parse(void **state)
{
    struct peers p;
    char err[160];
    (void)state;

    assert_int_equal(peers_parse("", 1000, &p, err, sizeof(err)), 0);
    assert_true(peers_allowed(&p, 1000));
    assert_true(peers_allowed(&p, 0));
    assert_false(peers_allowed(&p, 1001));
    assert_int_equal(peers_parse(NULL, 1000, &p, err, sizeof(err)), 0);
    assert_int_equal(p.n, 1);

    assert_int_equal(peers_parse(" 1001 ,nobody, 1001", 1000, &p, err, sizeof(err)), 0);
    assert_true(peers_allowed(&p, 1001));
    assert_true(peers_allowed(&p, 65534));
    assert_false(peers_allowed(&p, 1002));
    assert_int_equal(p.n, 3);
}

static void test_parse_bad(void **state)
{
    struct peers p;
    char err[160];
    const char *bad[] = {
        "1,,2", ",", "12x", "-1", "4294967295", "no-such-user-xyz", " ", "99999999999999999999"};
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (peers_parse(bad[i], 1000, &p, err, sizeof(err)) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(err, "KGS_ALLOWED_UIDS"));
    }
    char many[400] = "";
    for (int i = 1; i <= 32; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s%d", i > 1 ? "," : "",
                 2000 + i);
    assert_int_equal(peers_parse(many, 1000, &p, err, sizeof(err)), -EINVAL);
}

static void test_uid_of(void **state)
{
    int sv[2];
    uid_t uid = 12345;
    (void)state;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(peers_uid_of(sv[0], &uid), 0);
    assert_int_equal(uid, geteuid());
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(peers_uid_of(-1, &uid), -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_uid_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
