"""Rolling recent visit sums into the sums per dimension value
(migrations/0014_stats_recent.sql): a flush adds one row per link, hour and visitor profile to
visit_recent; the analytics writer of some server later moves each ended hour's rows into
visit_hours, visit_days and visit_blocks in one statement, deleting them. A stats answer must
be exact before, during and after: every range gives what its hours hold, wherever the rows
are. The writer rolls when it starts, when an hour ends, and after a flush to a past hour; a
row a flush holds is skipped, never waited for."""

import contextlib
import subprocess
import time

import pytest

import stack as stk
from linkutil import unique
from stack import wait_until
from test_stats import assert_ranges_match_hours, hourly_rows, iso, stats_ok

FLUSH_MS = 300


@pytest.fixture(scope="module")
def st():
    with stk.running_stack("rollup", VISITS_FLUSH_MS=FLUSH_MS) as s:
        yield s


@pytest.fixture(scope="module")
def owner(st):
    return stk.Client(st.server, st.create_apikey(unique("rollup-"))[0])


def profile(g, browser):
    return (f"ARRAY[CASE WHEN g % 5 = 0 THEN 'bot' ELSE 'human' END,"
            f" 'r' || (g % 13) || '.example', 'unknown', '{browser}', 'Windows', 'desktop']")


def profile_text(g, browser):
    """The same profile as visit_recent keeps it (migrations/0016_stats_profile_text.sql)."""
    return f"array_to_string({profile(g, browser)}, chr(31))"


def load_hours(st, key, days=40):
    """days of hours of key as flushes and earlier rolls would leave them: a third rolled
    (their sums per value in visit_hours, visit_days and visit_blocks), a third still recent
    (two visitor profiles an hour in visit_recent), a third rolled and then visited again (a
    flush after the roll: both)."""
    hours = (f"SELECT '{key}' AS k, date_trunc('hour', now()) - g * interval '1 hour' AS h, g"
             f" FROM generate_series(1, {days} * 24) g")
    st.psql("INSERT INTO visit_recent (key, hour, profile, visits)"
            f" SELECT k, h, {profile_text('g', 'Chrome')}, g % 7 + 2 FROM ({hours}) x"
            " WHERE g % 3 <> 0"
            f" UNION ALL SELECT k, h, {profile_text('g', 'Firefox')}, 1 FROM ({hours}) x"
            " WHERE g % 3 <> 0")
    # The rolled ones, as a roll leaves them: the same profile's values per dimension.
    st.psql("INSERT INTO visit_hours (key, dim, hour, value, visits)"
            f" SELECT k, 0, h, '', g % 5 + 1 FROM ({hours}) x WHERE g % 3 <> 1"
            f" UNION ALL SELECT k, d::smallint, h, v, g % 5 + 1 FROM ({hours}) x,"
            f" unnest({profile('g', 'Safari')}) WITH ORDINALITY AS u(v, d) WHERE g % 3 <> 1")
    st.psql("INSERT INTO visit_days (key, dim, day, value, visits) SELECT key, dim,"
            " to_timestamp(floor(extract(epoch FROM hour) / 86400) * 86400), value,"
            f" sum(visits) FROM visit_hours WHERE key = '{key}' GROUP BY 1, 2, 3, 4")
    st.psql("INSERT INTO visit_blocks (key, dim, block, value, visits) SELECT key, dim,"
            " to_timestamp(floor(extract(epoch FROM hour) / 1382400) * 1382400), value,"
            f" sum(visits) FROM visit_hours WHERE key = '{key}' AND dim > 0"
            " GROUP BY 1, 2, 3, 4")


RANGES = ((39 * 86400 + 1234, 0), (30 * 86400 + 77, 3 * 86400 + 5000), (20 * 86400, 19 * 86400),
          (5 * 3600 + 1, 3600), (38 * 86400, 2 * 86400))


def check_ranges(st, client, key):
    assert_ranges_match_hours(st, client, key, RANGES)


def recent_past(st, key):
    return int(st.psql(f"SELECT count(*) FROM visit_recent WHERE key = '{key}'"
                       " AND hour < date_trunc('hour', now())"))


def sums_per_hour(st, key):
    """key's sums per (hour, dimension, value), wherever they are, for the past hours."""
    return st.psql(f"SELECT hour, dim, value, sum(visits) FROM {hourly_rows(key)}"
                   " WHERE hour < date_trunc('hour', now()) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def check_rolled(st, key, want):
    """The past hours' sums are all in visit_hours now, and are want (sums_per_hour before
    the roll); the daily and block rows hold exactly what the hourly rows do."""
    assert recent_past(st, key) == 0
    assert st.psql(f"SELECT hour, dim, value, visits FROM visit_hours WHERE key = '{key}'"
                   " AND hour < date_trunc('hour', now()) ORDER BY 1, 2, 3") == want
    for table, col, size, dims in (("visit_days", "day", 86400, "dim >= 0"),
                                   ("visit_blocks", "block", 1382400, "dim > 0")):
        diff = st.psql(
            f"SELECT count(*) FROM (SELECT dim, value, to_timestamp(floor(extract(epoch FROM"
            f" hour) / {size}) * {size}) AS t, sum(visits) AS n FROM visit_hours"
            f" WHERE key = '{key}' AND {dims} GROUP BY 1, 2, 3) h"
            f" FULL JOIN (SELECT dim, value, {col} AS t, visits AS n FROM {table}"
            f" WHERE key = '{key}') d USING (dim, value, t)"
            " WHERE h.n IS DISTINCT FROM d.n")
        assert diff == "0", (table, diff)


def rolled_by_a_fresh_server(st, client, key, what):
    """Starts a server (which rolls what is left when it starts), waits for key's past hours
    to be rolled, checks the sums and the answers, and stops it."""
    want = sums_per_hour(st, key)
    srv = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until(what, lambda: recent_past(st, key) == 0, 30)
        check_rolled(st, key, want)
        check_ranges(st, client, key)
    finally:
        srv.stop()


def test_stats_are_exact_before_and_after_the_roll(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    load_hours(st, key)
    assert recent_past(st, key) > 0
    check_ranges(st, owner, key)
    want = sums_per_hour(st, key)

    # A server rolls what is left when it starts.
    second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until("the past hours to be rolled", lambda: recent_past(st, key) == 0, 30)
        check_rolled(st, key, want)
        check_ranges(st, owner, key)
        check_ranges(st, stk.Client(second, owner.api_key), key)

        # A flush that reaches an hour already rolled (late visits): counted at once, and
        # rolled by the next start.
        st.psql("INSERT INTO visit_recent (key, hour, profile, visits) VALUES"
                f" ('{key}', date_trunc('hour', now()) - interval '50 hours', array_to_string("
                "ARRAY['human', 'late.example', 'unknown', 'Chrome', 'Windows', 'desktop'],"
                " chr(31)), 5)")
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
    # This hour's rows are the flush's, all recent (unless the hour just ended and they
    # were rolled since, which changes nothing in the answer).
    second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until("the past hours to be rolled", lambda: recent_past(st, key) == 0, 30)
        assert total() == before + 4
    finally:
        second.stop()


def test_a_row_a_flush_holds_is_skipped_not_waited_for(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    load_hours(st, key, days=5)
    # 31 hours back: never rolled (load_hours), its two profiles recent.
    held = "date_trunc('hour', now()) - interval '31 hours'"
    psql = subprocess.Popen(["psql", st.pg.dsn_for("shortener"), "-AtXq", "-v", "ON_ERROR_STOP=1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=stk.base_env())
    try:
        # As a flush would: the hour's rows locked until it commits.
        psql.stdin.write("BEGIN;\n"
                         f"SELECT count(*) FROM (SELECT 1 FROM visit_recent WHERE key = '{key}'"
                         f" AND hour = {held} FOR UPDATE) l;\n")
        psql.stdin.flush()
        assert psql.stdout.readline().strip() == "2"
        second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
        try:
            # Everything else is rolled while the lock is held.
            wait_until("the other hours to be rolled", lambda: recent_past(st, key) == 2, 30)
            assert st.psql(f"SELECT count(*) FROM visit_recent WHERE key = '{key}'"
                           f" AND hour = {held}") == "2"
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


def test_top_lists_merge_recent_and_rolled_sums_exactly(st, owner):
    """The server adds the recent rows' visits per value (statsrecent.h) to the rolled sums'
    top ten: a value ranked 12th by its rolled sums rises to the top, a value only recent rows
    have enters, one gains a visit, and a tie is broken by the name; the series counts them."""
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    past = "date_trunc('hour', now()) - interval '3 hours'"
    # Rolled: referrers r01..r12 with 120, 110, .. 10 visits, one hour.
    st.psql("INSERT INTO visit_hours (key, dim, hour, value, visits)"
            f" SELECT '{key}', 2, {past}, 'r' || lpad(g::text, 2, '0'), 130 - 10 * g"
            " FROM generate_series(1, 12) g"
            f" UNION ALL SELECT '{key}', 0, {past}, '', 780"
            f" UNION ALL SELECT '{key}', 1, {past}, 'human', 780")
    st.psql("INSERT INTO visit_days (key, dim, day, value, visits) SELECT key, dim,"
            " date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', value, visits"
            f" FROM visit_hours WHERE key = '{key}'")
    st.psql("INSERT INTO visit_blocks (key, dim, block, value, visits) SELECT key, dim,"
            " to_timestamp(floor(extract(epoch FROM hour) / 1382400) * 1382400), value, visits"
            f" FROM visit_hours WHERE key = '{key}' AND dim > 0")

    def recent(ref, bot, n):
        return (f"('{key}', date_trunc('hour', now()), array_to_string(ARRAY['{bot}', '{ref}',"
                f" 'unknown', 'Chrome', 'Windows', 'desktop'], chr(31)), {n})")
    st.psql("INSERT INTO visit_recent (key, hour, profile, visits) VALUES "
            + ", ".join([recent("r12", "human", 200), recent("new.example", "human", 105),
                         recent("r05", "bot", 1), recent("r11", "bot", 0),
                         recent("R", "human", 50)]))
    now = int(time.time())
    for interval in ("day", "hour"):
        body = stats_ok(owner, key, interval=interval, **{"from": iso(now - 2 * 86400),
                                                          "to": iso(now)})
        assert [(e["name"], e["visits"]) for e in body["referrers"]] == [
            ("r12", 210), ("r01", 120), ("r02", 110), ("new.example", 105), ("r03", 100),
            ("r04", 90), ("r05", 81), ("r06", 70), ("r07", 60), ("R", 50)]
        assert (body["total"], body["human"], body["bots"]) == (1136, 1135, 1)
        assert sum(p["visits"] for p in body["series"]) == 1136
    # R (recent only) ties with r08 (rolled only) at 50 and goes first: "R" < "r08" bytewise.
    assert_ranges_match_hours(st, owner, key, ((2 * 86400, 0), (3600, 0)))


def test_a_roll_of_many_statements_moves_every_row_once(st, owner):
    """A roll takes its rows in key order, 5,000 a statement, each going on from the last key
    the one before took: every row must be moved exactly once, also those of a link with more
    rows than a statement takes, cut in the middle."""
    big, *small = [owner.create_ok(f"https://example.com/{unique()}")["key"] for _ in range(3)]
    # 7,000 profiles of one hour for big; 2,500 rows over 50 hours for each of the others;
    # some of their visits not in urls.visits yet (uncounted), as flushes leave them.
    st.psql("INSERT INTO visit_recent (key, hour, profile, visits, uncounted)"
            f" SELECT '{big}', date_trunc('hour', now()) - interval '3 hours',"
            f" {profile_text('g', 'Chrome')} || g, g % 3 + 1, g % 2"
            " FROM generate_series(1, 7000) g")
    for key in small:
        st.psql("INSERT INTO visit_recent (key, hour, profile, visits, uncounted)"
                f" SELECT '{key}', date_trunc('hour', now()) - (g % 50 + 1) * interval '1 hour',"
                f" {profile_text('g', 'Firefox')} || g, g % 4 + 1, g % 3"
                " FROM generate_series(1, 2500) g")
    keys = [big, *small]
    want = {key: sums_per_hour(st, key) for key in keys}
    visits = {key: st.psql(f"SELECT visits FROM link_visits WHERE key = '{key}'") for key in keys}
    assert int(visits[big]) == sum(g % 2 for g in range(1, 7001))

    second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until("every past hour to be rolled",
                   lambda: sum(recent_past(st, key) for key in keys) == 0, 60)
        for key in keys:
            check_rolled(st, key, want[key])
            assert st.psql(f"SELECT visits FROM link_visits WHERE key = '{key}'") == visits[key]
            assert st.psql(f"SELECT visits FROM urls WHERE key = '{key}'") == visits[key]
        check_ranges(st, owner, big)
    finally:
        second.stop()


# The advisory lock a roll statement takes (STATS_ROLL_LOCK in src/server/store.c).
ROLL_LOCK = 7283512390002


class Holder:
    """Another session that holds something a roll needs: runs sql (ending in a long sleep)
    under its own application_name; end() ends its session, which a killed psql would not
    until the sleep is over."""

    def __init__(self, st, name, *sql):
        self.st, self.name = st, name
        argv = ["psql", st.pg.dsn_for("shortener"), "-AtXq"]
        for statement in sql:
            argv += ["-c", statement]
        self.proc = subprocess.Popen(argv, env=stk.base_env({"PGAPPNAME": name}),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(f"{name} to hold", lambda: st.psql(
            f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}'"
            " AND wait_event = 'PgSleep'") == "1", 10)

    def end(self):
        assert self.st.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            f" WHERE application_name = '{self.name}'") == "1"
        self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def roller(st):
    """One more server: it rolls the past hours when it starts."""
    second = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        yield second
    finally:
        second.stop()


def load_past_rows(st, owner, browser, uncounted):
    """A new link with 3,000 profile rows over past hours; returns its key, its sums per hour
    and its visit count."""
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    st.psql("INSERT INTO visit_recent (key, hour, profile, visits, uncounted)"
            f" SELECT '{key}', date_trunc('hour', now()) - (g % 7 + 1) * interval '1 hour',"
            f" {profile_text('g', browser)} || g, g % 4 + 1, {uncounted}"
            " FROM generate_series(1, 3000) g")
    visits = st.psql(f"SELECT visits FROM link_visits WHERE key = '{key}'")
    return key, sums_per_hour(st, key), visits


def check_rolled_once(st, key, want, visits):
    wait_until("the hours to be rolled", lambda: recent_past(st, key) == 0, 30)
    check_rolled(st, key, want)
    assert st.psql(f"SELECT visits FROM link_visits WHERE key = '{key}'") == visits
    assert st.psql(f"SELECT visits FROM urls WHERE key = '{key}'") == visits


def test_one_server_rolls_at_a_time(st, owner):
    """A roll statement runs only while no other server's does (an advisory lock): two
    servers rolling at once waited on the same links' sums and ran into the statement
    timeout. While another session holds the lock, a server that has an hour to roll takes
    nothing, and logs no error; once it is free, it rolls every row, once."""
    key, want, visits = load_past_rows(st, owner, "Edge", 1)
    assert int(visits) == int(st.psql(f"SELECT visits FROM urls WHERE key = '{key}'")) + 3000
    with Holder(st, "roll-lock-holder", f"SELECT pg_advisory_lock({ROLL_LOCK})",
                "SELECT pg_sleep(60)") as holder:
        assert st.psql(f"SELECT pg_try_advisory_xact_lock({ROLL_LOCK})") == "f"
        with roller(st) as second:
            # A server rolls when it starts and looks again every second.
            time.sleep(3)
            assert recent_past(st, key) == 3000
            assert "rolling past hours" not in second.proc.log_text()
            holder.end()
            check_rolled_once(st, key, want, visits)


def test_a_failed_roll_statement_is_retried_smaller_and_rolls_every_row_once(st, owner):
    """A roll statement that fails (here: it waits on the link's daily sums, which another
    session holds, past the server's 5 s statement timeout) leaves everything as it was and
    is tried again with half as many rows; once it can, the roll moves every row exactly
    once."""
    key, want, visits = load_past_rows(st, owner, "Opera", "g % 2")
    # The link's daily total rows exist (empty), so that the roll adds to them and waits.
    st.psql("INSERT INTO visit_days (key, dim, day, value, visits) SELECT DISTINCT key, 0,"
            " to_timestamp(floor(extract(epoch FROM hour) / 86400) * 86400), '', 0"
            f" FROM visit_recent WHERE key = '{key}'")
    with Holder(st, "visit-days-holder", f"BEGIN; SELECT 1 FROM visit_days WHERE key = '{key}'"
                " FOR UPDATE; SELECT pg_sleep(60); COMMIT") as holder, roller(st) as second:
        wait_until("a roll statement to fail and be retried smaller",
                   lambda: "tried again in 1000 ms with 2500 rows" in second.proc.log_text(), 20)
        assert recent_past(st, key) == 3000
        holder.end()
        check_rolled_once(st, key, want, visits)


def test_migration_0016_keeps_every_recent_row(st):
    """0016 turns visit_recent's text[] profiles into text: run on a copy of the table as 0015
    left it, every row keeps its sums and its six values, in order, split back as the readers
    split them."""
    sql = (stk.REPO / "migrations" / "0016_stats_profile_text.sql").read_text()
    table = "visit_recent_0015_" + unique().lower().replace("-", "_")
    st.psql(f"CREATE TABLE {table} (key text COLLATE \"C\" NOT NULL,"
            " hour timestamptz NOT NULL, vals text[] COLLATE \"C\" NOT NULL,"
            " visits bigint NOT NULL, uncounted bigint NOT NULL DEFAULT 0,"
            " PRIMARY KEY (key, hour, vals))")
    try:
        st.psql(f"INSERT INTO {table} VALUES"
                " ('a', '2030-01-01T00:00:00Z',"
                " ARRAY['human', 'direct', 'unknown', 'Chrome', 'Windows', 'desktop'], 3, 1),"
                " ('a', '2030-01-01T00:00:00Z',"
                " ARRAY['bot', 'x.example', 'DE', 'Googlebot', 'Other', 'bot'], 2, 0),"
                " ('b', '2030-01-01T01:00:00Z',"
                " ARRAY['human', 'a-b_c.example', 'FR', 'Mobile Safari', 'iOS', 'mobile'], 7, 7)")
        st.psql(sql.replace("visit_recent", table))
        rows = st.psql(f"SELECT key, visits, uncounted,"
                       f" array_to_string(string_to_array(profile, chr(31)), '|')"
                       f" FROM {table} ORDER BY key, profile")
        assert rows.splitlines() == [
            "a|2|0|bot|x.example|DE|Googlebot|Other|bot",
            "a|3|1|human|direct|unknown|Chrome|Windows|desktop",
            "b|7|7|human|a-b_c.example|FR|Mobile Safari|iOS|mobile",
        ], rows
        # The key is the renamed column's: one more visit of a profile adds to its row.
        st.psql(f"INSERT INTO {table} AS t (key, hour, profile, visits) VALUES ('a',"
                " '2030-01-01T00:00:00Z', array_to_string(ARRAY['human', 'direct', 'unknown',"
                " 'Chrome', 'Windows', 'desktop'], chr(31)), 1) ON CONFLICT (key, hour, profile)"
                " DO UPDATE SET visits = t.visits + EXCLUDED.visits")
        assert st.psql(f"SELECT count(*), sum(visits) FROM {table}") == "3|13"
    finally:
        st.psql(f"DROP TABLE {table}")
