/* Unit tests for connguard.c: connections counted per IPv4 address and per IPv6 /64, IPv4
 * clients of a dual-stack socket counted as IPv4, trusted proxies exempt, and deadlines that
 * shut sockets down. Sockets are socketpairs: a shut-down end reads as closed on the other. */
#include "clientip.c"
#include "connguard.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

static struct sockaddr_storage v4(const char *text)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &a->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *text)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
    return ss;
}

struct pair {
    int ours, theirs;
    struct connguard_conn *c;
};

static void open_one(struct connguard *g, struct pair *p, const char *addr)
{
    int sv[2];
    struct sockaddr_storage ss = strchr(addr, ':') ? v6(addr) : v4(addr);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->ours = sv[0];
    p->theirs = sv[1];
    p->c = connguard_opened(g, (struct sockaddr *)&ss, p->ours);
    assert_non_null(p->c);
}

/* True when our end was shut down: the other end reads the end of the stream. */
static bool was_shut(const struct pair *p)
{
    char b;
    return recv(p->theirs, &b, 1, MSG_DONTWAIT) == 0;
}

static void close_one(struct connguard *g, struct pair *p)
{
    connguard_closed(g, p->c);
    close(p->ours);
    close(p->theirs);
}

static bool admits(struct connguard *g, const char *addr)
{
    struct sockaddr_storage ss = strchr(addr, ':') ? v6(addr) : v4(addr);
    return connguard_admit(g, (struct sockaddr *)&ss);
}

static void test_ipv6_counted_per_64(void **state)
{
    struct metrics m = {0};
    struct connguard *g = connguard_new(2, 60000, NULL, &m);
    struct pair p[4];
    (void)state;

    open_one(g, &p[0], "2001:db8:1:2::1");
    open_one(g, &p[1], "2001:db8:1:2:ffff::9");
    assert_false(admits(g, "2001:db8:1:2:abcd::1")); /* same /64 */
    assert_true(admits(g, "2001:db8:1:3::1"));       /* the next /64 */
    open_one(g, &p[2], "2001:db8:1:2::77");          /* past admit by a race: shut at once */
    assert_true(was_shut(&p[2]));
    assert_false(was_shut(&p[0]));
    open_one(g, &p[3], "2001:db8:1:3::1");
    assert_false(was_shut(&p[3]));
    assert_int_equal(atomic_load(&m.connections_refused), 2);
    assert_int_equal(connguard_open_count(g), 4);
    close_one(g, &p[2]);
    close_one(g, &p[1]);
    assert_true(admits(g, "2001:db8:1:2::5"));
    close_one(g, &p[0]);
    close_one(g, &p[3]);
    assert_int_equal(connguard_open_count(g), 0);
    connguard_free(g);
}

static void test_ipv4_mapped_is_ipv4(void **state)
{
    struct metrics m = {0};
    struct connguard *g = connguard_new(1, 60000, NULL, &m);
    struct pair a, b;
    (void)state;

    open_one(g, &a, "192.0.2.7");
    assert_false(admits(g, "::ffff:192.0.2.7"));
    assert_true(admits(g, "::ffff:192.0.2.8")); /* IPv4 is counted whole, not per /64 */
    open_one(g, &b, "::ffff:192.0.2.7");
    assert_true(was_shut(&b));
    close_one(g, &a);
    close_one(g, &b);
    connguard_free(g);
}

static void test_trusted_proxy_exempt(void **state)
{
    struct metrics m = {0};
    struct clientip_trusted t;
    char err[128];
    struct pair p[3];
    (void)state;

    assert_int_equal(clientip_parse_trusted("10.0.0.1, 2001:db8::1", &t, err, sizeof(err)), 0);
    struct connguard *g = connguard_new(1, 60000, &t, &m);
    for (int i = 0; i < 3; i++)
        open_one(g, &p[i], i == 2 ? "::ffff:10.0.0.1" : "10.0.0.1");
    for (int i = 0; i < 3; i++)
        assert_false(was_shut(&p[i]));
    assert_true(admits(g, "2001:db8::1"));
    for (int i = 0; i < 3; i++)
        close_one(g, &p[i]);
    connguard_free(g);
    clientip_trusted_release(&t);
}

static void test_deadline_shuts_down(void **state)
{
    struct metrics m = {0};
    struct connguard *g = connguard_new(0, 300, NULL, &m);
    struct pair slow, served;
    (void)state;

    assert_int_equal(connguard_start(g), 0);
    open_one(g, &slow, "192.0.2.1");
    open_one(g, &served, "192.0.2.1");
    connguard_request_received(served.c); /* being answered: no deadline */
    for (int i = 0; i < 100 && !was_shut(&slow); i++)
        usleep(20000);
    assert_true(was_shut(&slow));
    assert_false(was_shut(&served));
    assert_int_equal(atomic_load(&m.connections_timed_out), 1);
    connguard_request_done(g, served.c); /* answered: the next request is due */
    for (int i = 0; i < 100 && !was_shut(&served); i++)
        usleep(20000);
    assert_true(was_shut(&served));
    close_one(g, &slow);
    close_one(g, &served);
    connguard_free(g);
}

static void test_peer_net(void **state)
{
    unsigned char net[16], want[16];
    struct sockaddr_storage a = v6("2001:db8:a:b:c:d:e:f");
    (void)state;

    assert_int_equal(clientip_peer_net((struct sockaddr *)&a, net), 0);
    assert_int_equal(clientip_parse_addr("2001:db8:a:b::", 14, want), 0);
    assert_memory_equal(net, want, 16);
    a = v4("198.51.100.3");
    assert_int_equal(clientip_peer_net((struct sockaddr *)&a, net), 0);
    assert_int_equal(clientip_parse_addr("198.51.100.3", 12, want), 0);
    assert_memory_equal(net, want, 16);
    struct sockaddr_storage u = {.ss_family = AF_UNIX};
    assert_int_equal(clientip_peer_net((struct sockaddr *)&u, net), -1);
    assert_int_equal(clientip_peer_net(NULL, net), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv6_counted_per_64),
        cmocka_unit_test(test_ipv4_mapped_is_ipv4),
        cmocka_unit_test(test_trusted_proxy_exempt),
        cmocka_unit_test(test_deadline_shuts_down),
        cmocka_unit_test(test_peer_net),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
