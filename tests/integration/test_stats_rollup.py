"""Rolling hourly visit sums into the daily and 16-day rows (migrations/0013_stats_unrolled.sql):
a flush writes only the hours' rows and counts what it added as unrolled; the analytics writer
of some server later adds each past hour's unrolled visits to the days and blocks. A stats
answer must be exact before, during and after: every range gives what its hours hold, whatever
was rolled. The writer rolls when it starts, when an hour ends, and after a flush to a past
hour; a row a flush holds is skipped, never waited for."""

import subprocess
import time

import pytest

import stack as stk
from linkutil import unique
from stack import wait_until
from test_stats import assert_ranges_match_hours, iso, stats_ok

FLUSH_MS = 300


@pytest.fixture(scope="module")
def st():
    with stk.running_stack("rollup", VISITS_FLUSH_MS=FLUSH_MS) as s:
        yield s


@pytest.fixture(scope="module")
def owner(st):
    return stk.Client(st.server, st.create_apikey(unique("rollup-"))[0])


def load_hours(st, key, days=40):
    """days of hourly rows of key as flushes and earlier rolls would leave them: a third never
    rolled, a third rolled, a third rolled but for one visit (a flush came after the roll); the
    daily and block rows hold exactly what was rolled."""
    hours = (f"SELECT '{key}' AS k, date_trunc('hour', now()) - g * interval '1 hour' AS h, g"
             f" FROM generate_series(1, {days} * 24) g")
    rows = []
    for dim, value in ((0, "''"), (1, "'human'"), (2, "'r' || (g % 13) || '.example'")):
        rows.append(f"SELECT k, {dim}::smallint, h, {value}, g % 7 + 2 AS v,"
                    f" CASE g % 3 WHEN 0 THEN g % 7 + 2 WHEN 1 THEN 0 ELSE 1 END AS u"
                    f" FROM ({hours}) x")
    st.psql("INSERT INTO visit_hours (key, dim, hour, value, visits, unrolled) "
            + " UNION ALL ".join(rows))
    st.psql("INSERT INTO visit_days (key, dim, day, value, visits) SELECT key, dim,"
            " to_timestamp(floor(extract(epoch FROM hour) / 86400) * 86400), value,"
            f" sum(visits - unrolled) FROM visit_hours WHERE key = '{key}' GROUP BY 1, 2, 3, 4")
    st.psql("INSERT INTO visit_blocks (key, dim, block, value, visits) SELECT key, dim,"
            " to_timestamp(floor(extract(epoch FROM hour) / 1382400) * 1382400), value,"
            f" sum(visits - unrolled) FROM visit_hours WHERE key = '{key}' AND dim > 0"
            " GROUP BY 1, 2, 3, 4")


RANGES = ((39 * 86400 + 1234, 0), (30 * 86400 + 77, 3 * 86400 + 5000), (20 * 86400, 19 * 86400),
          (5 * 3600 + 1, 3600), (38 * 86400, 2 * 86400))


def check_ranges(st, client, key):
    assert_ranges_match_hours(st, client, key, RANGES)


def unrolled_past(st, key):
    return int(st.psql(f"SELECT count(*) FROM visit_hours WHERE key = '{key}' AND unrolled <> 0"
                       " AND hour < date_trunc('hour', now())"))


def check_rolled_sums(st, key):
    """The daily and block rows hold exactly the hours' rolled sums (all of a past hour's,
    once unrolled_past is 0)."""
    for table, col, size, dims in (("visit_days", "day", 86400, "dim >= 0"),
                                   ("visit_blocks", "block", 1382400, "dim > 0")):
        diff = st.psql(
            f"SELECT count(*) FROM (SELECT dim, value, to_timestamp(floor(extract(epoch FROM"
            f" hour) / {size}) * {size}) AS t, sum(visits - unrolled) AS n FROM visit_hours"
            f" WHERE key = '{key}' AND {dims} GROUP BY 1, 2, 3"
            " HAVING sum(visits - unrolled) <> 0) h"
            f" FULL JOIN (SELECT dim, value, {col} AS t, visits AS n FROM {table}"
            f" WHERE key = '{key}') d USING (dim, value, t)"
            " WHERE h.n IS DISTINCT FROM d.n")
        assert diff == "0", (table, diff)


def rolled_by_a_fresh_server(st, client, key, what):
    """Starts a server (which rolls what is left when it starts), waits for key's past hours
    to be rolled, checks the sums and the answers, and stops it."""
    srv = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until(what, lambda: unrolled_past(st, key) == 0, 30)
        check_rolled_sums(st, key)
        check_ranges(st, client, key)
    finally:
        srv.stop()


def test_stats_are_exact_before_and_after_the_roll(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    load_hours(st, key)
    assert unrolled_past(st, key) > 0
    check_ranges(st, owner, key)

    # A server rolls what is left when it starts.
    second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until("the past hours to be rolled", lambda: unrolled_past(st, key) == 0, 30)
        check_rolled_sums(st, key)
        check_ranges(st, owner, key)
        check_ranges(st, stk.Client(second, owner.api_key), key)

        # A flush that reaches an hour already rolled (late visits): counted at once, and
        # rolled by the next start.
        st.psql("UPDATE visit_hours SET visits = visits + 5, unrolled = unrolled + 5"
                f" WHERE key = '{key}' AND hour = date_trunc('hour', now()) - interval '50 hours'"
                " AND dim IN (0, 1)")
        check_ranges(st, owner, key)
    finally:
        second.stop()
    rolled_by_a_fresh_server(st, owner, key, "the late visits to be rolled")


def test_visits_now_are_counted_once_whatever_is_rolled(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    load_hours(st, key, days=3)
    now = int(time.time())
    frm = iso(now - 4 * 86400)
    before = stats_ok(owner, key, **{"from": frm})["total"]
    for _ in range(4):
        assert owner.request("GET", f"/{key}", auth=False).status_code in (301, 302)

    def total():
        return stats_ok(owner, key, **{"from": frm})["total"]
    wait_until("the visits to show", lambda: total() == before + 4, 10)
    # This hour's rows are the flush's, all unrolled (unless the hour just ended and they
    # were rolled since, which changes nothing in the answer).
    second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until("the past hours to be rolled", lambda: unrolled_past(st, key) == 0, 30)
        assert total() == before + 4
        check_rolled_sums(st, key)
    finally:
        second.stop()


def test_a_row_a_flush_holds_is_skipped_not_waited_for(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    load_hours(st, key, days=5)
    # 30 hours back: never rolled (load_hours), its three rows all unrolled.
    held = "date_trunc('hour', now()) - interval '30 hours'"
    psql = subprocess.Popen(["psql", st.pg.dsn_for("shortener"), "-AtXq", "-v", "ON_ERROR_STOP=1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=stk.base_env())
    try:
        # As a flush would: the hour's rows locked until it commits.
        psql.stdin.write("BEGIN;\n"
                         f"SELECT count(*) FROM (SELECT 1 FROM visit_hours WHERE key = '{key}'"
                         f" AND hour = {held} FOR UPDATE) l;\n")
        psql.stdin.flush()
        assert psql.stdout.readline().strip() == "3"
        second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
        try:
            # Everything else is rolled while the lock is held.
            wait_until("the other hours to be rolled", lambda: unrolled_past(st, key) == 3, 30)
            assert st.psql(f"SELECT count(*) FROM visit_hours WHERE key = '{key}'"
                           f" AND unrolled <> 0 AND hour = {held}") == "3"
            check_ranges(st, owner, key)
        finally:
            second.stop()
        psql.stdin.write("COMMIT;\n")
        psql.stdin.close()
        assert psql.wait(timeout=30) == 0
    finally:
        if psql.poll() is None:
            psql.kill()
            psql.wait()
    rolled_by_a_fresh_server(st, owner, key, "the held hour to be rolled")
