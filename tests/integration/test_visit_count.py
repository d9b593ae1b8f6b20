"""A link's visit count (the read's "visits") with analytics on and off
(migrations/0015_visits_in_stats.sql). With analytics on, a visit of a link without a visit
limit is counted once, in its analytics row (visit_recent.uncounted), and the roll of an ended
hour moves it into urls.visits in the same statement; a link with a limit is counted straight
into urls.visits, as every link is with analytics off. Whichever way, the read shows every
visit exactly once, before and after the roll, on every tier, and a limit set later starts
from every visit the link had."""

import pytest

import stack as stk
from linkutil import unique
from stack import wait_until

FLUSH_MS = 200
PROFILE = ("array_to_string(ARRAY['human', 'direct', 'unknown', 'Chrome', 'Windows',"
           " 'desktop'], chr(31))")


@pytest.fixture(scope="module")
def st():
    with stk.running_stack("visitcount", VISITS_FLUSH_MS=FLUSH_MS) as s:
        yield s


@pytest.fixture(scope="module")
def owner(st):
    return stk.Client(st.server, st.create_apikey(unique("visitcount-"))[0])


def visits(client, key):
    r = client.read(key)
    assert r.status_code == 200, r.text[:300]
    return r.json()["visits"]


def visit(client, key, n, expect=(301, 302)):
    for _ in range(n):
        assert client.resolve(key).status_code in expect


def recent(st, key, what):
    return int(st.psql(f"SELECT coalesce(sum({what}), 0) FROM visit_recent WHERE key = '{key}'"))


def column(st, key):
    return int(st.psql(f"SELECT visits FROM urls WHERE key = '{key}'"))


def test_visits_are_counted_once_through_analytics(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    # HEAD is no visit; the first GET is answered from PostgreSQL, the next from the caches.
    assert owner.resolve(key, method="HEAD").status_code in (301, 302)
    visit(owner, key, 7)
    wait_until("7 visits in the read", lambda: visits(owner, key) == 7, 10)
    assert recent(st, key, "uncounted") == 7
    assert recent(st, key, "visits") == 7
    assert column(st, key) == 0
    # Later flushes change nothing.
    visit(owner, key, 0)
    assert visits(owner, key) == 7
    r = owner.request("GET", f"/api/v1/urls?q={key}")
    assert r.status_code == 200, r.text[:300]
    assert [i["visits"] for i in r.json()["items"] if i["key"] == key] == [7]


def test_the_roll_moves_uncounted_visits_into_the_link(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    # Past hours as flushes leave them: 5 visits counted through analytics, and 4 counted
    # elsewhere (by the visits thread, or by a server of an older build).
    st.psql(f"UPDATE urls SET visits = 4 WHERE key = '{key}'")
    st.psql("INSERT INTO visit_recent (key, hour, profile, visits, uncounted) VALUES"
            f" ('{key}', date_trunc('hour', now()) - interval '2 hours', {PROFILE}, 5, 5),"
            f" ('{key}', date_trunc('hour', now()) - interval '3 hours', {PROFILE}, 4, 0)")
    visit(owner, key, 3)
    wait_until("all 12 visits in the read", lambda: visits(owner, key) == 12, 10)
    # A server rolls the past hours when it starts.
    srv = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS)
    try:
        wait_until("the past hours to be rolled", lambda: st.psql(
            f"SELECT count(*) FROM visit_recent WHERE key = '{key}'"
            " AND hour < date_trunc('hour', now())") == "0", 30)
        assert column(st, key) == 4 + 5 + (3 - recent(st, key, "uncounted"))
        assert visits(owner, key) == 12
        assert visits(stk.Client(srv, owner.api_key), key) == 12
        stats = owner.request("GET", f"/api/v1/urls/{key}/stats").json()
        assert stats["total"] == 12, stats
    finally:
        srv.stop()


def test_a_limit_set_later_counts_the_visits_analytics_hold(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    visit(owner, key, 3)
    wait_until("3 visits in the read", lambda: visits(owner, key) == 3, 10)
    assert column(st, key) == 0
    r = owner.request("PATCH", f"/api/v1/urls/{key}", json={"max_visits": 5})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["visits"] == 3
    # The limit's counter starts from the 3 visits analytics hold: 2 more, then 404.
    visit(owner, key, 2)
    assert owner.resolve(key).status_code == 404
    # Those 2 went to urls.visits, not through analytics.
    wait_until("the limited visits to be written", lambda: column(st, key) == 2, 10)
    assert recent(st, key, "uncounted") == 3
    assert recent(st, key, "visits") == 5
    assert visits(owner, key) == 5


def test_without_analytics_every_tier_counts_in_the_link(st, owner):
    srv = st.start_shortener(VISITS_FLUSH_MS=FLUSH_MS, ANALYTICS=0)
    try:
        client = stk.Client(srv, owner.api_key)
        key = client.create_ok(f"https://example.com/{unique()}")["key"]
        limited = client.create_ok(f"https://example.com/{unique()}", max_visits=100)["key"]
        visit(client, key, 6)
        visit(client, limited, 2)
        wait_until("6 visits in the link", lambda: column(st, key) == 6, 10)
        wait_until("2 visits in the limited link", lambda: column(st, limited) == 2, 10)
        assert visits(client, key) == 6
        assert visits(client, limited) == 2
        assert recent(st, key, "visits") == 0
    finally:
        srv.stop()


def test_cleanup_keeps_the_uncounted_visits_of_rows_past_retention(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    # Never rolled (no server ran for longer than the retention): deleted, but not from the
    # link's count.
    st.psql("INSERT INTO visit_recent (key, hour, profile, visits, uncounted) VALUES"
            f" ('{key}', date_trunc('hour', now()) - interval '3 days', {PROFILE}, 6, 6),"
            f" ('{key}', date_trunc('hour', now()) - interval '4 days', {PROFILE}, 2, 0)")
    assert visits(owner, key) == 6
    st.ctl("cleanup", env={"STATS_RETENTION_DAYS": "2"})
    assert st.psql(f"SELECT count(*) FROM visit_recent WHERE key = '{key}'") == "0"
    assert column(st, key) == 6
    assert visits(owner, key) == 6
