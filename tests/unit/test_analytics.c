/* Unit tests of the analytics buffers and sums, without their threads: a request thread's
 * buffer grows while nobody drains it instead of dropping visits, up to its bound, and shrinks
 * back once drained; every visit is summed exactly once into its row while the sums table
 * grows many times over, and each row is handed over once with the right visits and counted
 * visits. PostgreSQL is a stand-in here: store_add_stats() records what it is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "analytics.c"
#include "crawlers_data.c"
#include "referrer.c"
#include "statsquery.c"
#include "uaclass.c"

enum { KEYS = 100000, PROFILES = 2 };

static int64_t written[KEYS][PROFILES], written_uncounted[KEYS][PROFILES];
static size_t rows_written, bad_rows;

void store_free(struct store *st)
{
    (void)st;
}

const char *store_error(const struct store *st)
{
    (void)st;
    return "stand-in";
}

int store_add_unknown(struct store *st, const int64_t *days, const int64_t *day_visits,
                      size_t ndays, const struct unknown_row *keys, size_t nkeys)
{
    (void)st, (void)days, (void)day_visits, (void)ndays, (void)keys, (void)nkeys;
    return 0;
}

int store_roll_stats(struct store *st, int64_t before, size_t limit, char *from, size_t *rolled,
                     bool *busy)
{
    (void)st, (void)before, (void)limit, (void)from;
    *rolled = 0;
    *busy = false;
    return 0;
}

/* Which of the two profiles the tests make a row is: agents[0] is a browser's, agents[1] a
 * bot's, and a profile's first value says which. */
static int profile_index(const char *profile)
{
    size_t human = strlen("human"), bot = strlen("bot");
    if (strncmp(profile, "human", human) == 0 && profile[human] == STATS_PROFILE_SEP)
        return 0;
    if (strncmp(profile, "bot", bot) == 0 && profile[bot] == STATS_PROFILE_SEP)
        return 1;
    return -1;
}

int store_add_stats(struct store *st, const struct stats_row *rows, size_t n)
{
    (void)st;
    for (size_t i = 0; i < n; i++) {
        int k = rows[i].key[0] == 'k' ? atoi(rows[i].key + 1) : -1;
        int p = profile_index(rows[i].profile);
        if (k < 0 || k >= KEYS || p < 0) {
            bad_rows++;
            continue;
        }
        written[k][p] += rows[i].visits;
        written_uncounted[k][p] += rows[i].uncounted;
        rows_written++;
    }
    return 0;
}

static struct metrics metrics;
static char referer[400];

static const char *const agents[PROFILES] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
};

static struct analytics *fresh(void)
{
    char err[256];
    memset(&metrics, 0, sizeof(metrics));
    memset(written, 0, sizeof(written));
    memset(written_uncounted, 0, sizeof(written_uncounted));
    rows_written = bad_rows = 0;
    struct analytics *a = analytics_new(NULL, 2, 5000, NULL, &metrics, err, sizeof(err));
    assert_non_null(a);
    return a;
}

static void visit(struct analytics *a, unsigned slot, int k, int p, bool count)
{
    char key[16];
    int n = snprintf(key, sizeof(key), "k%d", k);
    analytics_visit(a, slot, 1764633600, key, (size_t)n, NULL, referer, agents[p], count);
}

/* One visit's bytes in a buffer, as visit() records it for key "k0". */
static size_t record_bytes(int p)
{
    return sizeof(struct rec) + 2 + strlen(referer) + strlen(agents[p]);
}

static void test_buffer_grows_while_not_drained(void **state)
{
    (void)state;
    struct analytics *a = fresh();
    /* Four times what the buffer starts with: dropped, all but the first quarter, before. */
    size_t n = 4 * BUF_BYTES / record_bytes(0);

    for (size_t i = 0; i < n; i++)
        visit(a, 0, 0, 0, true);
    assert_int_equal(metrics.analytics_dropped, 0);
    assert_int_equal(metrics.visits_dropped, 0);
    assert_true(a->slots[0].cap > BUF_BYTES);
    drain(a);
    assert_int_equal(metrics.analytics_visits, n);
    /* Two drains with little in the buffer: both of its buffers are back to their size. */
    for (int round = 0; round < 2; round++) {
        visit(a, 0, 0, 0, true);
        drain(a);
    }
    assert_int_equal(a->slots[0].cap, BUF_BYTES);
    assert_int_equal(a->slots[0].spare_cap, BUF_BYTES);
    assert_int_equal(metrics.analytics_visits, n + 2);
    assert_int_equal(write_rows(a, a->cur), 0);
    assert_int_equal(written[0][0], (int64_t)n + 2);
    assert_int_equal(written_uncounted[0][0], (int64_t)n + 2);
    assert_int_equal(rows_written, 1);
    analytics_free(a);
}

static void test_buffer_bounded(void **state)
{
    (void)state;
    struct analytics *a = fresh();
    size_t n = 2 * BUF_MAX / record_bytes(0);

    for (size_t i = 0; i < n; i++)
        visit(a, 1, 0, 0, i % 2 == 0);
    assert_int_equal(a->slots[1].cap, BUF_MAX);
    size_t kept = a->slots[1].len / record_bytes(0);
    assert_true(kept >= BUF_MAX / record_bytes(0) - 1);
    assert_int_equal(kept + metrics.analytics_dropped, n);
    /* The other slot is untouched. */
    assert_int_equal(a->slots[0].cap, BUF_BYTES);
    drain(a);
    assert_int_equal(metrics.analytics_visits, kept);
    assert_int_equal(write_rows(a, a->cur), 0);
    assert_int_equal(written[0][0], (int64_t)kept);
    /* Every other visit was for the link's count; those dropped are counted as such. */
    assert_int_equal(written_uncounted[0][0] + (int64_t)metrics.visits_dropped, (n + 1) / 2);
    analytics_free(a);
}

/* 100,000 links, two profiles each, 1 to 3 visits per row from both slots, drained now and
 * then: the sums table grows from 4,096 rows to 524,288 while rows are added and found. */
static void test_sums_exact_across_growth(void **state)
{
    (void)state;
    struct analytics *a = fresh();
    int64_t visits = 0, counted = 0;

    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < KEYS; k++) {
            for (int p = 0; p < PROFILES; p++) {
                if (round > 0 && (k + p + round) % 3 == 0)
                    continue;
                bool count = (k + round) % 2 == 0;
                visit(a, (unsigned)(k + p) % 2, k, p, count);
                visits++;
                counted += count;
            }
            if (k % 1000 == 999)
                drain(a);
        }
    }
    drain(a);
    assert_int_equal(metrics.analytics_dropped, 0);
    assert_int_equal(metrics.analytics_visits, visits);
    assert_int_equal(a->cur->rows.used, KEYS * PROFILES);
    assert_int_equal(write_rows(a, a->cur), 0);
    assert_int_equal(bad_rows, 0);
    assert_int_equal(rows_written, KEYS * PROFILES);
    int64_t sum = 0, sum_counted = 0;
    for (int k = 0; k < KEYS; k++) {
        for (int p = 0; p < PROFILES; p++) {
            int64_t want = 1, want_counted = k % 2 == 0;
            for (int round = 1; round < 3; round++) {
                if ((k + p + round) % 3 != 0) {
                    want++;
                    want_counted += (k + round) % 2 == 0;
                }
            }
            assert_int_equal(written[k][p], want);
            assert_int_equal(written_uncounted[k][p], want_counted);
            sum += written[k][p];
            sum_counted += written_uncounted[k][p];
        }
    }
    assert_int_equal(sum, visits);
    assert_int_equal(sum_counted, counted);
    /* Written: the table is empty for the next flush, and keeps its size. */
    assert_int_equal(a->cur->rows.used, 0);
    assert_int_equal(a->cur->rows.cap, 524288);
    analytics_free(a);
}

int main(void)
{
    memset(referer, 'r', sizeof(referer) - 1);
    memcpy(referer, "https://news.example.com/", strlen("https://news.example.com/"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_grows_while_not_drained),
        cmocka_unit_test(test_buffer_bounded),
        cmocka_unit_test(test_sums_exact_across_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
