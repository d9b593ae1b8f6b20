/* Unit tests for lib/redis.c: parsing REDIS_URL into a target, and the connection's life
 * (AUTH/SELECT, the prepare hook, back-off, one immediate retry, EVALSHA/NOSCRIPT, pipelines)
 * against the stand-in in fakeredis.h. A real Redis is exercised by the integration tests. */
#include "redis.c"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakeredis.h"

static int parse(const char *url, struct redis_target *t)
{
    char err[512];
    return redis_target_parse(url, t, err, sizeof(err));
}

static void test_tcp_forms(void **state)
{
    struct redis_target t;
    (void)state;
    assert_int_equal(parse("redis://127.0.0.1:6380", &t), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 0);
    assert_string_equal(t.path, "");
    assert_string_equal(t.password, "");

    assert_int_equal(parse("redis://cache", &t), 0);
    assert_string_equal(t.host, "cache");
    assert_int_equal(t.port, 6379);

    assert_int_equal(parse("redis://:s3cret@cache:7000/2", &t), 0);
    assert_string_equal(t.host, "cache");
    assert_string_equal(t.password, "s3cret");
    assert_int_equal(t.port, 7000);
    assert_int_equal(t.db, 2);

    assert_int_equal(parse("redis://user:pw@cache/", &t), 0);
    assert_string_equal(t.password, "pw");
    assert_int_equal(t.db, 0);

    assert_int_equal(parse("redis://s3cret@cache", &t), 0);
    assert_string_equal(t.password, "s3cret");

    /* The password runs to the last '@', so it may hold '@' and '/'. */
    assert_int_equal(parse("redis://:p@ss/w:rd@cache:7000/3", &t), 0);
    assert_string_equal(t.password, "p@ss/w:rd");
    assert_string_equal(t.host, "cache");
    assert_int_equal(t.port, 7000);
    assert_int_equal(t.db, 3);
}

static void test_unix_form(void **state)
{
    struct redis_target t;
    (void)state;
    assert_int_equal(parse("unix:///var/run/redis.sock", &t), 0);
    assert_string_equal(t.path, "/var/run/redis.sock");
    assert_string_equal(t.host, "");
}

static void test_rejects_malformed(void **state)
{
    struct redis_target t;
    (void)state;
    const char *bad[] = {
        "",
        "cache:6379",
        "http://cache:6379",
        "redis://",
        "redis://:6379",
        "redis://cache:",
        "redis://cache:0",
        "redis://cache:65536",
        "redis://cache:63x9",
        "redis://cache/db",
        "redis://cache/-1",
        "redis://cache/1001",
        "redis://:pw@",
        "unix://relative/path",
        "unix://",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &t) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_rejects_oversized_parts(void **state)
{
    struct redis_target t;
    char url[512];
    (void)state;
    snprintf(url, sizeof(url), "redis://%0300d:6379", 0);
    assert_int_equal(parse(url, &t), -EINVAL);
    snprintf(url, sizeof(url), "unix:///%0300d", 0);
    assert_int_equal(parse(url, &t), -EINVAL);
    snprintf(url, sizeof(url), "redis://:%0300d@cache", 0);
    assert_int_equal(parse(url, &t), -EINVAL);
}

static void test_errors_and_descriptions_hide_the_password(void **state)
{
    struct redis_target t;
    char err[512], desc[REDIS_DESCRIBE_MAX];
    (void)state;
    assert_int_equal(redis_target_parse("redis://:hunter2@cache:99999", &t, err, sizeof(err)),
                     -EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "redis://:***@cache:99999"));
    assert_non_null(strstr(err, "port"));

    assert_int_equal(parse("redis://:hunter2@cache:7000/4", &t), 0);
    assert_string_equal(redis_target_describe(&t, desc, sizeof(desc)), "redis://:***@cache:7000/4");
    assert_int_equal(parse("redis://cache", &t), 0);
    assert_string_equal(redis_target_describe(&t, desc, sizeof(desc)), "redis://cache:6379/0");
    assert_int_equal(parse("unix:///run/r.sock", &t), 0);
    assert_string_equal(redis_target_describe(&t, desc, sizeof(desc)), "unix:///run/r.sock");
}

static void test_sentinels_parse(void **state)
{
    struct redis_target t;
    char err[256];
    (void)state;
    assert_int_equal(parse("redis://:pw@ignored:1/2", &t), 0);
    assert_int_equal(redis_target_set_sentinels(&t, "", "", err, sizeof(err)), 0);
    assert_int_equal(t.nsentinels, 0);
    assert_int_equal(redis_target_set_sentinels(&t, "a:26380, [::1]:7 ,b, [fe80::1]", "mymaster",
                                                err, sizeof(err)),
                     0);
    assert_int_equal(t.nsentinels, 4);
    assert_string_equal(t.sentinels[0].host, "a");
    assert_int_equal(t.sentinels[0].port, 26380);
    assert_string_equal(t.sentinels[1].host, "::1");
    assert_int_equal(t.sentinels[1].port, 7);
    assert_string_equal(t.sentinels[2].host, "b");
    assert_int_equal(t.sentinels[2].port, 26379);
    assert_string_equal(t.sentinels[3].host, "fe80::1");
    assert_string_equal(t.master_name, "mymaster");
    /* The password and database stay, for the master. */
    assert_string_equal(t.password, "pw");
    assert_int_equal(t.db, 2);
    const char *bad[][2] = {{"a:1", ""},      {"", "m"},         {"a:0", "m"},
                            {"a:65536", "m"}, {"a:1,,b:2", "m"}, {"[::1", "m"},
                            {"[::1]x", "m"},  {"a:x", "m"},      {"a:1", "two words"},
                            {":26379", "m"},  {"a:-1", "m"},     {"a:1,", "m"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(redis_target_set_sentinels(&t, bad[i][0], bad[i][1], err, sizeof(err)),
                         -EINVAL);
        assert_true(strstr(err, "REDIS_") != NULL);
    }
}

static void test_resolve_answers_the_configured_address(void **state)
{
    struct redis_target t;
    struct redis_addr a;
    char err[64];
    (void)state;
    assert_int_equal(parse("redis://:pw@cache:7000/1", &t), 0);
    assert_int_equal(redis_target_resolve(&t, &a, err, sizeof(err)), 0);
    assert_string_equal(a.host, "cache");
    assert_int_equal(a.port, 7000);
    assert_string_equal(a.path, "");
    assert_int_equal(parse("unix:///run/r.sock", &t), 0);
    assert_int_equal(redis_target_resolve(&t, &a, err, sizeof(err)), 0);
    assert_string_equal(a.path, "/run/r.sock");
}

static void test_unreachable_backs_off(void **state)
{
    struct redis_target t;
    (void)state;
    /* Nothing listens on port 1. */
    assert_int_equal(parse("redis://127.0.0.1:1", &t), 0);
    struct redis *r = redis_new(&t);
    assert_non_null(r);
    long long before = deadline_now_ms();
    assert_int_equal(redis_ping(r), -EAGAIN);
    assert_true(strlen(redis_error(r)) > 0);
    /* No new attempt for about a second, on the monotonic clock. */
    assert_true(r->retry_at_ms >= before + RETRY_MS);
    assert_true(r->retry_at_ms <= deadline_now_ms() + RETRY_MS);
    long long retry_at = r->retry_at_ms;
    assert_int_equal(redis_incr(r, "x"), -EAGAIN);
    assert_int_equal(r->retry_at_ms, retry_at);
    redis_free(r);
    redis_free(NULL);
}

static struct fake_redis fake;
static struct redis_target fake_target;

static int fake_setup(void **state)
{
    (void)state;
    assert_int_equal(fake_redis_start(&fake, "right"), 0);
    memset(&fake_target, 0, sizeof(fake_target));
    snprintf(fake_target.path, sizeof(fake_target.path), "%s", fake.path);
    snprintf(fake_target.password, sizeof(fake_target.password), "right");
    return 0;
}

static int fake_teardown(void **state)
{
    (void)state;
    fake_redis_stop(&fake);
    return 0;
}

static void assert_log(const char *want)
{
    char got[2048];
    fake_redis_take_log(&fake, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("Redis heard '%s', expected '%s'", got, want);
}

static void test_connect_sends_auth_and_select(void **state)
{
    struct redis_reply rep;
    char err[256];
    (void)state;
    fake_target.db = 3;
    struct redis *r = redis_new(&fake_target);
    assert_int_equal(redis_command(r, &rep, "SET %s %s", "k", "v"), 0);
    assert_int_equal(redis_command(r, &rep, "GET %s", "k"), 0);
    assert_int_equal(rep.kind, REDIS_KIND_STRING);
    assert_int_equal(rep.len, 1);
    assert_string_equal(rep.str, "v");
    const char *argv[] = {"GET", "nothing"};
    assert_int_equal(redis_command_argv(r, &rep, 2, argv, NULL), 0);
    assert_int_equal(rep.kind, REDIS_KIND_NIL);
    assert_int_equal(redis_command(r, &rep, "INCR n"), 0);
    assert_int_equal(rep.kind, REDIS_KIND_INTEGER);
    assert_int_equal(rep.integer, 1);
    assert_log("AUTH right|SELECT 3|SET k v|GET k|GET nothing|INCR n");
    redis_free(r);

    /* The connection the pub/sub listener takes is made the same way. */
    redisContext *ctx = redis_connect(&fake_target, err, sizeof(err));
    assert_non_null(ctx);
    redisFree(ctx);
    assert_log("AUTH right|SELECT 3");
    fake_target.db = 0;
}

static void test_wrong_password_is_not_repeated(void **state)
{
    struct redis_target t = fake_target;
    char err[256];
    (void)state;
    snprintf(t.password, sizeof(t.password), "wrong-pw");
    struct redis *r = redis_new(&t);
    assert_int_equal(redis_ping(r), -EAGAIN);
    assert_non_null(strstr(redis_error(r), "WRONGPASS"));
    assert_null(strstr(redis_error(r), "wrong-pw"));
    redis_free(r);
    assert_null(redis_connect(&t, err, sizeof(err)));
    assert_non_null(strstr(err, "WRONGPASS"));
    assert_null(strstr(err, "wrong-pw"));
    assert_log("AUTH wrong-pw|AUTH wrong-pw");
}

struct hook_state {
    int calls;
    int send; /* INCR hook on this many of the next calls */
    int fail; /* fail this many of the next calls */
};

static int hook(struct redis *r, void *ctx)
{
    struct hook_state *h = ctx;
    h->calls++;
    if (h->fail > 0) {
        h->fail--;
        return -EAGAIN;
    }
    if (h->send > 0) {
        h->send--;
        return redis_command(r, NULL, "INCR hook");
    }
    return 0;
}

static void test_prepare_hook_runs_before_serving(void **state)
{
    struct hook_state h = {.send = 1};
    (void)state;
    struct redis *r = redis_new(&fake_target);
    redis_set_prepare(r, hook, &h);
    assert_int_equal(redis_command(r, NULL, "PING"), 0);
    assert_int_equal(redis_command(r, NULL, "PING"), 0);
    assert_int_equal(h.calls, 2);
    assert_log("AUTH right|INCR hook|PING|PING");

    /* A hook that fails on a fresh connection fails the command. */
    r->retry_at_ms = 0;
    redisFree(r->ctx);
    r->ctx = NULL;
    h.fail = 1;
    assert_int_equal(redis_command(r, NULL, "PING"), -EAGAIN);
    assert_log("AUTH right");

    /* redis_ping() asks whether Redis answers, not whether the connection may serve: no hook,
     * so a hook that refuses (Redis distrusted) does not fail it. */
    h.calls = 0;
    h.fail = 5;
    assert_int_equal(redis_ping(r), 0);
    assert_int_equal(h.calls, 0);
    assert_log("PING");
    /* The next command still runs the hook first. */
    assert_int_equal(redis_command(r, NULL, "PING"), -EAGAIN);
    assert_true(h.calls > 0);
    redis_free(r);
}

static void test_restart_costs_no_command(void **state)
{
    struct hook_state h = {0};
    (void)state;
    struct redis *r = redis_new(&fake_target);
    redis_set_prepare(r, hook, &h);
    assert_int_equal(redis_ping(r), 0);
    int before = fake_redis_connections(&fake);
    fake_redis_restart(&fake);
    /* The connection worked before: reconnected and sent again at once; the hook runs on the
     * new connection before the command. */
    fake_redis_take_log(&fake, (char[512]){0}, 512);
    h.send = 2;
    h.calls = 0;
    assert_int_equal(redis_incr(r, "after-restart"), 0);
    assert_int_equal(fake_redis_connections(&fake), before + 1);
    /* Once on the lost connection (unheard), once on the new one. */
    assert_int_equal(h.calls, 2);
    assert_log("AUTH right|INCR hook|INCR after-restart");
    redis_free(r);
}

static void test_error_reply_drops_the_connection(void **state)
{
    (void)state;
    struct redis *r = redis_new(&fake_target);
    assert_int_equal(redis_ping(r), 0);
    int before = fake_redis_connections(&fake);
    /* A demoted master: the connection is dropped and the command sent again on a new one
     * (redis_target_resolve() is asked again), at once. */
    fake_redis_reply_error(&fake, "READONLY You can't write against a read only replica.", 1);
    assert_int_equal(redis_command(r, NULL, "SET %s %s", "a", "b"), 0);
    assert_int_equal(fake_redis_connections(&fake), before + 1);
    assert_log("AUTH right|PING|SET a b|AUTH right|SET a b");

    /* Again on the new connection: given up, and not tried again for a second. */
    fake_redis_reply_error(&fake, "READONLY still", 2);
    assert_int_equal(redis_command(r, NULL, "SET %s %s", "a", "c"), -EAGAIN);
    assert_string_equal(redis_error(r), "READONLY still");
    assert_null(r->ctx);
    assert_int_equal(redis_ping(r), -EAGAIN);
    assert_log("SET a c|AUTH right");
    redis_free(r);
}

static const char script[] = "return {1, 2}";

static void test_eval_loads_once_and_survives_noscript(void **state)
{
    long long out[2];
    const char *keys[] = {"k1"};
    long long args[] = {7};
    (void)state;
    struct redis *r = redis_new(&fake_target);
    assert_int_equal(redis_eval(r, script, keys, 1, args, 1, out, 2), 0);
    assert_int_equal(out[0], 5); /* the fake answers with its argc */
    assert_int_equal(out[1], 0);
    assert_int_equal(redis_eval(r, script, keys, 1, args, 1, out, 2), 0);
    assert_log("AUTH right|SCRIPT LOAD return {1, 2}|EVALSHA " FAKE_SHA " 1 k1 7|EVALSHA " FAKE_SHA
               " 1 k1 7");
    /* Restarted: the scripts are gone; EVALSHA answers NOSCRIPT and the script is sent. */
    fake_redis_restart(&fake);
    assert_int_equal(redis_eval(r, script, keys, 1, args, 1, out, 2), 0);
    assert_int_equal(out[1], 1);
    assert_log("AUTH right|EVALSHA " FAKE_SHA " 1 k1 7|EVAL return {1, 2} 1 k1 7");
    /* Asking for more than the reply holds. */
    long long three[3];
    assert_int_equal(redis_eval(r, script, keys, 1, args, 1, three, 3), -EPROTO);
    assert_int_equal(redis_eval(r, script, keys, 9, args, 1, out, 2), -EINVAL);
    fake_redis_take_log(&fake, (char[512]){0}, 512);
    redis_free(r);
}

static int build(void *ctx, size_t i, struct redis_argv *cmd)
{
    static char arg[16];
    static const char *argv[2];
    (void)ctx;
    snprintf(arg, sizeof(arg), "p%zu", i);
    argv[0] = "DEL";
    argv[1] = arg;
    *cmd = (struct redis_argv){.argc = 2, .argv = argv};
    return 0;
}

static int build_fails(void *ctx, size_t i, struct redis_argv *cmd)
{
    return i == 1 ? -ENOMEM : build(ctx, i, cmd);
}

static void test_pipeline(void **state)
{
    (void)state;
    struct redis *r = redis_new(&fake_target);
    assert_int_equal(redis_pipeline(r, 3, build, NULL), 0);
    assert_int_equal(redis_pipeline(r, 0, build, NULL), 0);
    assert_log("AUTH right|DEL p0|DEL p1|DEL p2");
    /* What was sent before build failed is answered; the connection stays usable. */
    assert_int_equal(redis_pipeline(r, 3, build_fails, NULL), -ENOMEM);
    assert_int_equal(redis_ping(r), 0);
    assert_log("DEL p0|PING");
    /* An error reply drops the connection; the pipeline is sent again on a new one. */
    fake_redis_reply_error(&fake, "ERR no", 2);
    assert_int_equal(redis_pipeline(r, 2, build, NULL), 0);
    assert_log("DEL p0|DEL p1|AUTH right|DEL p0|DEL p1");
    /* ... unless that fails too. */
    fake_redis_reply_error(&fake, "ERR no", 3);
    assert_int_equal(redis_pipeline(r, 2, build, NULL), -EAGAIN);
    assert_string_equal(redis_error(r), "ERR no");
    assert_log("DEL p0|DEL p1|AUTH right");
    redis_free(r);
}

int main(void)
{
    /* The fake closes connections under hiredis's feet, as a restarted Redis does. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest parsing[] = {
        cmocka_unit_test(test_tcp_forms),
        cmocka_unit_test(test_unix_form),
        cmocka_unit_test(test_sentinels_parse),
        cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_rejects_oversized_parts),
        cmocka_unit_test(test_errors_and_descriptions_hide_the_password),
        cmocka_unit_test(test_resolve_answers_the_configured_address),
        cmocka_unit_test(test_unreachable_backs_off),
    };
    const struct CMUnitTest connection[] = {
        cmocka_unit_test(test_connect_sends_auth_and_select),
        cmocka_unit_test(test_wrong_password_is_not_repeated),
        cmocka_unit_test(test_prepare_hook_runs_before_serving),
        cmocka_unit_test(test_restart_costs_no_command),
        cmocka_unit_test(test_error_reply_drops_the_connection),
        cmocka_unit_test(test_eval_loads_once_and_survives_noscript),
        cmocka_unit_test(test_pipeline),
    };
    int failed = cmocka_run_group_tests(parsing, NULL, NULL);
    return failed + cmocka_run_group_tests(connection, fake_setup, fake_teardown);
}
