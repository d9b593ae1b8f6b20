/* Unit tests for metrics.c: the exposition text, byte for byte (dashboards and the
 * integration tests read these names), status codes counted in their own series or in
 * "other", and a buffer too small refused rather than cut short. */
#include "metrics.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Every value distinct, so a series reading the wrong counter shows. */
static const char expected[] =
    "# HELP shortener_http_responses_total HTTP responses by status code.\n"
    "# TYPE shortener_http_responses_total counter\n"
    "shortener_http_responses_total{code=\"200\"} 1\n"
    "shortener_http_responses_total{code=\"201\"} 2\n"
    "shortener_http_responses_total{code=\"204\"} 3\n"
    "shortener_http_responses_total{code=\"301\"} 4\n"
    "shortener_http_responses_total{code=\"400\"} 5\n"
    "shortener_http_responses_total{code=\"401\"} 6\n"
    "shortener_http_responses_total{code=\"404\"} 7\n"
    "shortener_http_responses_total{code=\"405\"} 8\n"
    "shortener_http_responses_total{code=\"409\"} 9\n"
    "shortener_http_responses_total{code=\"413\"} 10\n"
    "shortener_http_responses_total{code=\"415\"} 11\n"
    "shortener_http_responses_total{code=\"429\"} 12\n"
    "shortener_http_responses_total{code=\"500\"} 13\n"
    "shortener_http_responses_total{code=\"503\"} 14\n"
    "shortener_http_responses_total{code=\"other\"} 15\n"
    "# HELP shortener_redirects_total Redirect look-ups by where they were answered.\n"
    "# TYPE shortener_redirects_total counter\n"
    "shortener_redirects_total{result=\"hot_hit\"} 16\n"
    "shortener_redirects_total{result=\"cache_hit\"} 17\n"
    "shortener_redirects_total{result=\"cache_negative\"} 18\n"
    "shortener_redirects_total{result=\"db_hit\"} 19\n"
    "shortener_redirects_total{result=\"replica_hit\"} 20\n"
    "shortener_redirects_total{result=\"db_miss\"} 21\n"
    "shortener_redirects_total{result=\"invalid\"} 22\n"
    "# HELP shortener_links_created_total Links created.\n"
    "# TYPE shortener_links_created_total counter\n"
    "shortener_links_created_total 23\n"
    "# HELP shortener_links_deleted_total Links deleted through the API.\n"
    "# TYPE shortener_links_deleted_total counter\n"
    "shortener_links_deleted_total 24\n"
    "# HELP shortener_dependency_errors_total Failed calls to a dependency.\n"
    "# TYPE shortener_dependency_errors_total counter\n"
    "shortener_dependency_errors_total{dependency=\"redis\"} 25\n"
    "shortener_dependency_errors_total{dependency=\"postgres\"} 26\n"
    "shortener_dependency_errors_total{dependency=\"kgs\"} 27\n"
    "# HELP shortener_visits_dropped_total Visits not counted because the buffer was full.\n"
    "# TYPE shortener_visits_dropped_total counter\n"
    "shortener_visits_dropped_total 28\n"
    "# HELP shortener_analytics_visits_total Visits classified and summed for stats "
    "(analytics.c).\n"
    "# TYPE shortener_analytics_visits_total counter\n"
    "shortener_analytics_visits_total 201\n"
    "# HELP shortener_analytics_dropped_total Visits left out of stats because a buffer or the "
    "unwritten sums were full.\n"
    "# TYPE shortener_analytics_dropped_total counter\n"
    "shortener_analytics_dropped_total 202\n"
    "# HELP shortener_unknown_key_visits_total Look-ups (GET) of keys that do not exist, "
    "answered 404.\n"
    "# TYPE shortener_unknown_key_visits_total counter\n"
    "shortener_unknown_key_visits_total 203\n"
    "# HELP shortener_keys_buffered Generated keys held locally, fetched from kgs.\n"
    "# TYPE shortener_keys_buffered gauge\n"
    "shortener_keys_buffered 101\n"
    "# HELP shortener_visits_pending Links with visits not yet written to PostgreSQL.\n"
    "# TYPE shortener_visits_pending gauge\n"
    "shortener_visits_pending 102\n"
    "# HELP shortener_ratelimited_total Requests refused with 429 by a rate limit.\n"
    "# TYPE shortener_ratelimited_total counter\n"
    "shortener_ratelimited_total 29\n"
    "# HELP shortener_ratelimit_fallback 1 while Redis is unreachable and limits are kept by this "
    "instance alone.\n"
    "# TYPE shortener_ratelimit_fallback gauge\n"
    "shortener_ratelimit_fallback 1\n"
    "# HELP shortener_ratelimit_fallback_total Times rate limiting fell back to this instance "
    "alone.\n"
    "# TYPE shortener_ratelimit_fallback_total counter\n"
    "shortener_ratelimit_fallback_total 30\n"
    "# HELP shortener_hot_cache_entries Links held in the in-process cache.\n"
    "# TYPE shortener_hot_cache_entries gauge\n"
    "shortener_hot_cache_entries 103\n"
    "# HELP shortener_hot_cache_enabled 1 while the in-process cache is in use (subscribed to "
    "deletions).\n"
    "# TYPE shortener_hot_cache_enabled gauge\n"
    "shortener_hot_cache_enabled 1\n"
    "# HELP shortener_hot_cache_refreshes_total In-process cache entries past their age read "
    "again from Redis in the background.\n"
    "# TYPE shortener_hot_cache_refreshes_total counter\n"
    "shortener_hot_cache_refreshes_total 113\n"
    "# HELP shortener_create_queue Creates waiting for a link writer.\n"
    "# TYPE shortener_create_queue gauge\n"
    "shortener_create_queue 104\n"
    "# HELP shortener_live_watchers Live counter streams open on this server.\n"
    "# TYPE shortener_live_watchers gauge\n"
    "shortener_live_watchers 107\n"
    "# HELP shortener_live_links Links watched here or, as announced, on other servers: their "
    "visits are counted live.\n"
    "# TYPE shortener_live_links gauge\n"
    "shortener_live_links 108\n"
    "# HELP shortener_create_commits_total Commits of new links (each carries a batch).\n"
    "# TYPE shortener_create_commits_total counter\n"
    "shortener_create_commits_total 105\n"
    "# HELP shortener_create_batched_total Creates carried by those commits.\n"
    "# TYPE shortener_create_batched_total counter\n"
    "shortener_create_batched_total 106\n"
    "# HELP shortener_connections_open HTTP connections open.\n"
    "# TYPE shortener_connections_open gauge\n"
    "shortener_connections_open 109\n"
    "# HELP shortener_connections_refused_total HTTP connections refused because their address "
    "(IPv4, or IPv6 /64) had too many open.\n"
    "# TYPE shortener_connections_refused_total counter\n"
    "shortener_connections_refused_total 31\n"
    "# HELP shortener_connections_timed_out_total HTTP connections cut because a request did not "
    "arrive whole within REQUEST_TIMEOUT.\n"
    "# TYPE shortener_connections_timed_out_total counter\n"
    "shortener_connections_timed_out_total 32\n";

static void fill(struct metrics *m, struct metrics_gauges *g)
{
    unsigned long long v = 1;

    memset(m, 0, sizeof(*m));
    for (int i = 0; i < MS_COUNT; i++)
        atomic_store(&m->responses[i], v++);
    for (int i = 0; i < MR_COUNT; i++)
        atomic_store(&m->redirects[i], v++);
    atomic_store(&m->links_created, v++);
    atomic_store(&m->links_deleted, v++);
    atomic_store(&m->cache_errors, v++);
    atomic_store(&m->db_errors, v++);
    atomic_store(&m->kgs_errors, v++);
    atomic_store(&m->visits_dropped, v++);
    atomic_store(&m->ratelimited, v++);
    atomic_store(&m->ratelimit_fallbacks, v++);
    atomic_store(&m->ratelimit_fallback, 1);
    atomic_store(&m->analytics_visits, 201);
    atomic_store(&m->analytics_dropped, 202);
    atomic_store(&m->unknown_key_visits, 203);
    atomic_store(&m->connections_refused, v++);
    atomic_store(&m->connections_timed_out, v++);
    *g = (struct metrics_gauges){.keys_buffered = 101,
                                 .visits_pending = 102,
                                 .hot_entries = 103,
                                 .hot_enabled = 1,
                                 .hot_refreshes = 113,
                                 .writer_queued = 104,
                                 .writer_batches = 105,
                                 .writer_links = 106,
                                 .live_watchers = 107,
                                 .live_links = 108,
                                 .connections_open = 109};
}

static void test_exposition_text(void **state)
{
    static struct metrics m;
    struct metrics_gauges g;
    char buf[8192];
    (void)state;

    fill(&m, &g);
    int len = metrics_render(&m, &g, buf, sizeof(buf));
    assert_int_equal(len, (int)strlen(expected));
    assert_memory_equal(buf, expected, sizeof(expected) - 1);
}

static void test_small_buffer_is_refused(void **state)
{
    static struct metrics m;
    struct metrics_gauges g;
    char buf[8192];
    (void)state;

    fill(&m, &g);
    int len = metrics_render(&m, &g, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(metrics_render(&m, &g, buf, (size_t)len), -ENOSPC);
    assert_int_equal(metrics_render(&m, &g, buf, 100), -ENOSPC);
    assert_int_equal(metrics_render(&m, &g, buf, (size_t)len + 1), len);
}

static void test_status_counting(void **state)
{
    static struct metrics_shard sh;
    (void)state;

    memset(&sh, 0, sizeof(sh));
    metrics_count_status(&sh, 200);
    metrics_count_status(&sh, 503);
    metrics_count_status(&sh, 503);
    metrics_count_status(&sh, 302);
    metrics_count_status(&sh, 0);
    assert_int_equal(atomic_load(&sh.responses[MS_200]), 1);
    assert_int_equal(atomic_load(&sh.responses[MS_503]), 2);
    assert_int_equal(atomic_load(&sh.responses[MS_OTHER]), 2);
    assert_int_equal(atomic_load(&sh.responses[MS_404]), 0);
}

/* What /metrics shows: the shared counters with every request thread's shard added. */
static void test_shards_add_up(void **state)
{
    static struct metrics m, sum;
    static struct metrics_shard a, b;
    struct metrics_gauges g;
    (void)state;

    fill(&m, &g);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    metrics_count_status(&a, 301);
    metrics_count_status(&b, 301);
    metrics_count_status(&b, 404);
    metrics_inc(&a.redirects[MR_HOT_HIT]);
    metrics_add(&b.redirects[MR_HOT_HIT], 5);
    metrics_inc(&b.redirects[MR_INVALID]);
    metrics_snapshot(&m, &sum);
    metrics_add_shard(&sum, &a);
    metrics_add_shard(&sum, &b);
    assert_int_equal(atomic_load(&sum.responses[MS_301]), atomic_load(&m.responses[MS_301]) + 2);
    assert_int_equal(atomic_load(&sum.responses[MS_404]), atomic_load(&m.responses[MS_404]) + 1);
    assert_int_equal(atomic_load(&sum.responses[MS_200]), atomic_load(&m.responses[MS_200]));
    assert_int_equal(atomic_load(&sum.redirects[MR_HOT_HIT]),
                     atomic_load(&m.redirects[MR_HOT_HIT]) + 6);
    assert_int_equal(atomic_load(&sum.redirects[MR_INVALID]),
                     atomic_load(&m.redirects[MR_INVALID]) + 1);
    /* Every other counter is copied as it was, the last one included. */
    assert_int_equal(atomic_load(&sum.links_created), atomic_load(&m.links_created));
    assert_int_equal(atomic_load(&sum.connections_timed_out),
                     atomic_load(&m.connections_timed_out));
    assert_int_equal(atomic_load(&sum.unknown_key_visits), 203);
    /* The snapshot left the shared counters alone. */
    assert_int_equal(atomic_load(&m.redirects[MR_HOT_HIT]), 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposition_text),
        cmocka_unit_test(test_small_buffer_is_refused),
        cmocka_unit_test(test_status_counting),
        cmocka_unit_test(test_shards_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
