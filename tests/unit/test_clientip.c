/* Unit tests for clientip.c: TRUSTED_PROXIES parsing and the client address behind proxies. */
#include "clientip.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static struct sockaddr_in v4(const char *text)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, text, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *text)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
    return a;
}

static void trusted(const char *list, struct clientip_trusted *t)
{
    char err[256];
    if (clientip_parse_trusted(list, t, err, sizeof(err)) != 0)
        fail_msg("'%s' refused: %s", list, err);
}

static bool trusts(const struct clientip_trusted *t, const char *addr)
{
    unsigned char a[16];
    assert_int_equal(clientip_parse_addr(addr, strlen(addr), a), 0);
    return clientip_is_trusted(t, a);
}

static void test_parse_trusted(void **state)
{
    struct clientip_trusted t;
    (void)state;

    trusted("", &t);
    assert_int_equal(t.n, 0);
    clientip_trusted_release(&t);
    trusted("  ", &t);
    assert_int_equal(t.n, 0);
    clientip_trusted_release(&t);

    trusted("10.0.0.0/8, 192.168.1.7 ,::1,2001:db8::/32,172.16.5.9/12", &t);
    assert_int_equal(t.n, 5);
    assert_true(trusts(&t, "10.255.1.2"));
    assert_true(trusts(&t, "192.168.1.7"));
    assert_false(trusts(&t, "192.168.1.8"));
    assert_true(trusts(&t, "::1"));
    assert_true(trusts(&t, "2001:db8:ffff::1"));
    assert_false(trusts(&t, "2001:db9::1"));
    assert_true(trusts(&t, "172.31.0.1")); /* host bits of 172.16.5.9/12 ignored */
    assert_false(trusts(&t, "172.32.0.1"));
    assert_false(trusts(&t, "11.0.0.1"));
    clientip_trusted_release(&t);

    trusted("0.0.0.0/0", &t); /* every IPv4 address, no IPv6 one */
    assert_true(trusts(&t, "198.51.100.1"));
    assert_false(trusts(&t, "::2"));
    clientip_trusted_release(&t);

    trusted("10.1.2.3/31,[::1]", &t);
    assert_true(trusts(&t, "10.1.2.2"));
    assert_false(trusts(&t, "10.1.2.4"));
    assert_true(trusts(&t, "::1"));
    clientip_trusted_release(&t);
}

static void test_parse_trusted_bad(void **state)
{
    static const char *const bad[] = {
        "300.1.1.1",   "10.0.0.0/33", "::1/129",       "10.0.0.1,,10.0.0.2", "10.0.0.1,",
        ",10.0.0.1",   "proxy.local", "10.0.0/8",      "10.0.0.0/",          "10.0.0.0/8x",
        "10.0.0.0/-1", "1.2.3.4:80",  "10.0.0.0/0008",
    };
    struct clientip_trusted t;
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (clientip_parse_trusted(bad[i], &t, err, sizeof(err)) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_true(strstr(err, "TRUSTED_PROXIES") != NULL);
        assert_null(t.nets);
    }
}

static void resolve(const struct clientip_trusted *t, const void *peer, const char *xff,
                    const char *want)
{
    char out[CLIENTIP_TEXT_MAX];
    clientip_resolve(t, peer, xff, out);
    if (strcmp(out, want) != 0)
        fail_msg("xff '%s': got '%s', want '%s'", xff ? xff : "(none)", out, want);
}

static void test_resolve(void **state)
{
    struct clientip_trusted none, t;
    struct sockaddr_in lo = v4("127.0.0.1"), proxy = v4("10.0.0.5"), outsider = v4("203.0.113.9");
    struct sockaddr_in6 lo6 = v6("::1"), client6 = v6("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    (void)state;

    trusted("", &none);
    trusted("127.0.0.1,10.0.0.0/8,::1", &t);

    /* Nobody trusted: the peer, whatever the header says. */
    resolve(&none, &lo, "198.51.100.1", "127.0.0.1");
    /* An untrusted peer's header is ignored. */
    resolve(&t, &outsider, "198.51.100.1", "203.0.113.9");
    /* A trusted peer: the first untrusted address from the right. */
    resolve(&t, &lo, "198.51.100.1", "198.51.100.1");
    resolve(&t, &proxy, "198.51.100.1, 10.1.1.1,10.2.2.2", "198.51.100.1");
    resolve(&t, &proxy, "6.6.6.6, 198.51.100.1, 10.1.1.1", "198.51.100.1");
    /* Only proxies in the chain: the furthest of them. */
    resolve(&t, &proxy, "10.3.3.3, 10.1.1.1", "10.3.3.3");
    /* No header, or one that cannot be parsed: the peer. */
    resolve(&t, &lo, NULL, "127.0.0.1");
    resolve(&t, &lo, "", "127.0.0.1");
    resolve(&t, &lo, "not-an-ip", "127.0.0.1");
    resolve(&t, &lo, "198.51.100.1, junk", "127.0.0.1");
    resolve(&t, &lo, "198.51.100.1,", "127.0.0.1");
    resolve(&t, &lo, "unknown, 10.1.1.1", "127.0.0.1");
    /* IPv6 clients are counted by their /64; brackets are allowed. */
    resolve(&t, &lo6, "2001:db8:1:2::99", "2001:db8:1:2::/64");
    resolve(&t, &lo6, "[2001:db8:1:2::99]", "2001:db8:1:2::/64");
    resolve(&t, &client6, NULL, "2001:db8:1:2::/64");
    resolve(&t, &lo, "::ffff:198.51.100.1", "198.51.100.1");
    /* Ports some proxies add are dropped; anything else after an address is refused. */
    resolve(&t, &lo, "198.51.100.1:4711", "198.51.100.1");
    resolve(&t, &lo, "[2001:db8:1:2::99]:443", "2001:db8:1:2::/64");
    resolve(&t, &lo, "[2001:db8:1:2::99]:", "127.0.0.1");
    resolve(&t, &lo, "[2001:db8:1:2::99]x:443", "127.0.0.1");
    resolve(&t, &lo, "198.51.100.1:44x", "127.0.0.1");
    resolve(&t, &lo, "198.51.100.1:", "127.0.0.1");
    resolve(&t, &lo, ":80", "127.0.0.1");
    resolve(&t, &lo, "2001:db8:1:2::1234", "2001:db8:1:2::/64");
    resolve(&t, &lo, "2001:db8:1:3::1:80", "2001:db8:1:3::/64");
    resolve(&t, &lo, "[::ffff:198.51.100.7]:80, 10.0.0.1:9", "198.51.100.7");
    resolve(&t, NULL, "198.51.100.1", "unknown");

    clientip_trusted_release(&none);
    clientip_trusted_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_trusted),
        cmocka_unit_test(test_parse_trusted_bad),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
