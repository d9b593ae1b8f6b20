"""Visit analytics and GET /api/v1/urls/{key}/stats (API.md, Stats), on a stack of its own
with the test country database (GEOIP_DB) and 127.0.0.1 as a trusted proxy, so that
X-Forwarded-For names real addresses: exact sums over chosen headers and client addresses,
every tier counted once, HEAD never, owner-only and public_stats, every bad parameter, visits
to unknown keys, a kill -9 that loses at most one flush interval, and retention."""

import datetime
import time
from pathlib import Path

import pytest

import stack as stk
from linkutil import client_from, metric, redirects_by_tier, unique, wait_hot_cache_on
from stack import assert_problem, wait_until

REPO = Path(__file__).resolve().parents[2]
GEOIP_DB = REPO / "node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"

CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
SAFARI_IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
               "Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# Addresses whose country the test database (ip-location-db geo-whois-asn-country) gives;
# loopback addresses are in no database: "unknown".
US, JP, BR = "8.8.8.8", "133.1.1.1", "200.160.2.3"

# Long enough that a crash loses visits, short enough for the tests to wait for.
FLUSH_MS = 300


@pytest.fixture(scope="module")
def st():
    if not GEOIP_DB.exists():
        pytest.fail(f"{GEOIP_DB} is missing: run npm ci --ignore-scripts (make does)")
    with stk.running_stack("stats", GEOIP_DB=GEOIP_DB, TRUSTED_PROXIES="127.0.0.1",
                           VISITS_FLUSH_MS=FLUSH_MS) as s:
        yield s


@pytest.fixture(scope="module")
def owner(st):
    return stk.Client(st.server, st.create_apikey(unique("stats-"))[0])


def stats(client, key, **params):
    return client.request("GET", f"/api/v1/urls/{key}/stats", params=params)


def stats_ok(client, key, **params):
    r = stats(client, key, **params)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    body = r.json()
    assert set(body) == {"key", "from", "to", "interval", "total", "human", "bots", "series",
                         "referrers", "countries", "browsers", "os", "devices"}, body.keys()
    assert body["total"] == body["human"] + body["bots"], body
    assert sum(p["visits"] for p in body["series"]) == body["total"], body
    for name in ("referrers", "countries", "browsers", "os", "devices"):
        lst = body[name]
        assert len(lst) <= 10, lst
        counts = [e["visits"] for e in lst]
        assert counts == sorted(counts, reverse=True), (name, lst)
    return body


def as_dict(lst):
    return {e["name"]: e["visits"] for e in lst}


def wait_total(client, key, total, **params):
    """Stats show a visit within VISITS_FLUSH_MS plus one second (API.md): polls until the
    total is reached, then returns the body (which must not then exceed it)."""
    return wait_until(f"stats of {key} to reach {total}",
                      lambda: (lambda b: b if b["total"] >= total else None)(
                          stats_ok(client, key, **params)), 15)


def hour_of(ts):
    return int(ts) // 3600 * 3600


def iso(ts):
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- exact sums


def test_exact_sums_by_every_dimension(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    proxy = client_from(st.server, "127.0.0.1")   # a trusted proxy: X-Forwarded-For believed
    two = client_from(st.server, "127.0.0.2")     # clients: X-Forwarded-For ignored
    three = client_from(st.server, "127.0.0.3")
    t0 = time.time()
    plan = [
        (proxy, 3, {"X-Forwarded-For": US, "Referer": "https://news.example.com/a?b=1",
                    "User-Agent": CHROME_WIN}),
        (proxy, 2, {"X-Forwarded-For": JP, "User-Agent": SAFARI_IPHONE}),
        (proxy, 1, {"X-Forwarded-For": BR, "Referer": "android-app://com.example/",
                    "User-Agent": GOOGLEBOT}),
        (two, 2, {"X-Forwarded-For": US, "Referer": "https://t.co/xyz", "User-Agent": "curl/8.5.0"}),
        (three, 1, {"Referer": "HTTPS://WWW.Example.ORG:8443/p", "User-Agent": SAFARI_IPAD}),
    ]
    for client, n, headers in plan:
        for _ in range(n):
            r = client.resolve(key, headers=headers)
            assert r.status_code == 301, r.status_code
    # HEAD is never a visit, whoever sends it.
    for _ in range(2):
        assert proxy.resolve(key, method="HEAD", headers=plan[0][2]).status_code == 301
    t1 = time.time()

    body = wait_total(owner, key, 9)
    time.sleep(3 * FLUSH_MS / 1000 + 0.5)
    body = stats_ok(owner, key)
    assert (body["total"], body["human"], body["bots"]) == (9, 6, 3), body
    assert body["key"] == key and body["interval"] == "day"
    assert as_dict(body["referrers"]) == {"news.example.com": 3, "direct": 3, "t.co": 2,
                                          "www.example.org": 1}
    assert as_dict(body["countries"]) == {"US": 3, "JP": 2, "BR": 1, "unknown": 3}
    assert as_dict(body["browsers"]) == {"Chrome": 3, "Safari": 3, "curl": 2, "Other": 1}
    assert as_dict(body["os"]) == {"Windows": 3, "iOS": 3, "Other": 3}
    assert as_dict(body["devices"]) == {"desktop": 3, "mobile": 2, "tablet": 1, "bot": 3}
    # Ties are broken by name, so the order is exact too.
    assert [e["name"] for e in body["referrers"]] == ["direct", "news.example.com", "t.co",
                                                       "www.example.org"]

    # The default range: the last 30 days, one bucket a day, zeros included.
    series = body["series"]
    assert len(series) in (30, 31), len(series)
    days = [stk.parse_time(p["t"]) for p in series]
    assert all(b - a == 86400 for a, b in zip(days, days[1:])), days
    assert all(d % 86400 == 0 for d in days)
    busy = [p for p in series if p["visits"]]
    assert {stk.parse_time(p["t"]) for p in busy} <= {t0 // 86400 * 86400, t1 // 86400 * 86400}

    # Hourly over the last three hours.
    body = stats_ok(owner, key, interval="hour", **{"from": iso(t0 - 2 * 3600), "to": iso(t1)})
    assert body["interval"] == "hour" and body["total"] == 9
    assert len(body["series"]) == (hour_of(t1) - hour_of(t0 - 2 * 3600)) // 3600 + 1
    for p in body["series"]:
        t = stk.parse_time(p["t"])
        assert t % 3600 == 0
        if p["visits"]:
            assert hour_of(t0) <= t <= hour_of(t1), (p, t0, t1)
    # A range before the visits holds none of them, with every bucket there.
    body = stats_ok(owner, key, **{"from": iso(t0 - 10 * 86400), "to": iso(t0 - 5 * 86400)})
    assert body["total"] == 0 and len(body["series"]) == 6
    assert all(not body[n] for n in ("referrers", "countries", "browsers", "os", "devices"))
    # No address is stored anywhere.
    dump = st.psql(f"SELECT string_agg(value, ' ') FROM {hourly_rows(key)}")
    assert "Chrome" in dump
    for addr in (US, JP, BR, "127.0.0"):
        assert addr not in dump


def test_every_tier_counts_once(st, owner):
    """The first GET is answered from PostgreSQL, one on a second server from Redis, the next
    ones from the hot cache: each is one visit, as /metrics shows where it was answered."""
    other_server = st.shorteners[1] if len(st.shorteners) > 1 else st.start_shortener(
        GEOIP_DB=GEOIP_DB, TRUSTED_PROXIES="127.0.0.1", VISITS_FLUSH_MS=FLUSH_MS)
    wait_hot_cache_on(st.server)
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    anon, other = stk.Client(st.server), stk.Client(other_server)
    ua = {"User-Agent": CHROME_WIN}
    a0, b0 = redirects_by_tier(st.server), redirects_by_tier(other_server)
    assert anon.resolve(key, headers=ua).status_code == 301
    a1 = redirects_by_tier(st.server)
    assert a1["db_hit"] - a0["db_hit"] == 1, (a0, a1)
    assert other.resolve(key, headers=ua).status_code == 301
    b1 = redirects_by_tier(other_server)
    assert b1["cache_hit"] - b0["cache_hit"] == 1, (b0, b1)
    for _ in range(4):
        assert anon.resolve(key, headers=ua).status_code == 301
    a2 = redirects_by_tier(st.server)
    assert a2["hot_hit"] - a1["hot_hit"] == 4, (a1, a2)
    body = wait_total(owner, key, 6)
    time.sleep(3 * FLUSH_MS / 1000 + 0.5)
    body = stats_ok(owner, key)
    assert (body["total"], body["human"], body["bots"]) == (6, 6, 0), body
    assert as_dict(body["browsers"]) == {"Chrome": 6}
    assert owner.read(key).json()["visits"] == 6


def test_ranges_agree_with_the_hourly_rows(st, owner):
    """60 days of sums as flushes leave them (hourly rows, their daily and 16-day sums): any
    range, read through blocks, days and hours, gives what its hours alone hold."""
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    hours = (f"SELECT '{key}' AS k, date_trunc('hour', now()) - g * interval '1 hour' AS h, g"
             " FROM generate_series(0, 60 * 24) g")
    st.psql("INSERT INTO visit_hours (key, dim, hour, value, visits)"
            f" SELECT k, 0, h, '', g % 7 + 1 FROM ({hours}) x"
            f" UNION ALL SELECT k, 1, h, 'human', g % 7 + 1 FROM ({hours}) x"
            f" UNION ALL SELECT k, 2, h, 'r' || (g % 13) || '.example', g % 7 + 1 FROM ({hours}) x")
    st.psql("INSERT INTO visit_days (key, dim, day, value, visits) SELECT key, dim,"
            " to_timestamp(floor(extract(epoch FROM hour) / 86400) * 86400), value, sum(visits)"
            f" FROM visit_hours WHERE key = '{key}' GROUP BY 1, 2, 3, 4")
    st.psql("INSERT INTO visit_blocks (key, dim, block, value, visits) SELECT key, dim,"
            " to_timestamp(floor(extract(epoch FROM hour) / 1382400) * 1382400), value,"
            f" sum(visits) FROM visit_hours WHERE key = '{key}' AND dim > 0 GROUP BY 1, 2, 3, 4")
    assert_ranges_match_hours(st, owner, key, (
        (59 * 86400 + 1234, 0), (45 * 86400 + 77, 3 * 86400 + 5000),
        (20 * 86400, 19 * 86400 + 7200), (3 * 3600 + 1, 3600), (58 * 86400, 2 * 86400),
        (33 * 86400 + 999, 16 * 86400 + 3)))


def hourly_rows(key=None, where=None):
    """SQL for the hourly sums per dimension value (key, hour, dim, value, visits) of key, or
    of the keys where (an SQL condition on key) holds: those rolled into visit_hours and those
    still per visitor profile in visit_recent (migrations/0014_stats_recent.sql)."""
    where = where or f"key = '{key}'"
    return (f"(SELECT key, hour, dim, value, visits FROM visit_hours WHERE {where}"
            f" UNION ALL SELECT key, hour, 0::smallint, '', visits FROM visit_recent"
            f" WHERE {where}"
            f" UNION ALL SELECT key, hour, d::smallint, v, visits FROM visit_recent,"
            f" unnest(string_to_array(profile, chr(31))) WITH ORDINALITY AS u(v, d)"
            f" WHERE {where}) hourly_rows")


def assert_ranges_match_hours(st, client, key, ranges):
    """For each (seconds back to from, seconds back to to), by the day and by the hour: the
    total, human and bots, and the referrer top list are what key's hourly sums hold."""
    now = int(time.time())
    for back_from, back_to in ranges:
        frm, to = now - back_from, now - back_to
        where = (f"hour >= to_timestamp({hour_of(frm)})"
                 f" AND hour <= to_timestamp({hour_of(to)})")
        rows = hourly_rows(key)
        want = tuple(int(x) for x in st.psql(
            f"SELECT COALESCE(sum(visits) FILTER (WHERE dim = 0), 0),"
            f" COALESCE(sum(visits) FILTER (WHERE dim = 1 AND value = 'human'), 0),"
            f" COALESCE(sum(visits) FILTER (WHERE dim = 1 AND value = 'bot'), 0)"
            f" FROM {rows} WHERE {where}").split("|"))
        refs = dict(tuple(line.split("|")) for line in st.psql(
            f"SELECT value, sum(visits) FROM {rows} WHERE {where} AND dim = 2"
            " GROUP BY value").splitlines())
        for interval in ("day", "hour"):
            body = stats_ok(client, key, interval=interval, **{"from": iso(frm), "to": iso(to)})
            assert (body["total"], body["human"], body["bots"]) == want, \
                (back_from, back_to, interval, body["total"], want)
            top = sorted(refs.items(), key=lambda kv: (-int(kv[1]), kv[0]))[:10]
            assert [(e["name"], e["visits"]) for e in body["referrers"]] == \
                [(k, int(v)) for k, v in top], (back_from, back_to, interval)


# ---------------------------------------------------------------------------- who may read


def test_owner_only_unless_public(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    other = stk.Client(st.server, st.create_apikey(unique("other-"))[0])
    anon = stk.Client(st.server)
    assert stats_ok(owner, key)["total"] == 0
    assert_problem(stats(other, key), 404)
    assert_problem(stats(anon, key), 401)
    assert_problem(stats(stk.Client(st.server, "sk_" + "x" * 40), key), 401)
    # Keys that do not exist look the same.
    assert_problem(stats(owner, "nosuch" + unique()), 404)
    assert_problem(stats(anon, "nosuch" + unique()), 401)
    assert_problem(stats(owner, "bad%21key"), 404)
    # An admin key reads any link's stats.
    res = st.ctl("apikey", "create", unique("admin-"), "--admin")
    admin = stk.Client(st.server, res.stdout.strip().splitlines()[-1])
    assert stats_ok(admin, key)["key"] == key
    # public_stats: anyone, with or without a key.
    public = owner.create_ok(f"https://example.com/{unique()}", public_stats=True)["key"]
    assert stats_ok(anon, public)["key"] == public
    assert stats_ok(other, public)["key"] == public
    # Made private again: back to 404 / 401.
    r = owner.request("PATCH", f"/api/v1/urls/{public}", json={"public_stats": False})
    assert r.status_code == 200, r.text
    assert_problem(stats(other, public), 404)
    assert_problem(stats(anon, public), 401)
    # A deleted link has no stats to show.
    assert owner.delete(key).status_code == 204
    assert_problem(stats(owner, key), 404)
    # Only GET and HEAD.
    assert_problem(owner.request("POST", f"/api/v1/urls/{public}/stats"), 405)
    assert owner.request("HEAD", f"/api/v1/urls/{public}/stats").status_code == 200


@pytest.mark.parametrize("params", [
    {"interval": "week"}, {"interval": ""}, {"interval": "HOUR"}, {"interval": "day "},
    {"from": "yesterday"}, {"from": ""}, {"to": "2030-01-01"}, {"to": "2030-13-01T00:00:00Z"},
    {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T23:59:59Z"},
    {"from": "2029-01-01T00:00:00Z", "to": "2030-02-05T00:00:01Z"},
    {"from": "2020-01-01T00:00:00Z", "to": "2022-01-01T00:00:00Z"},
    {"from": "2999-01-01T00:00:00Z"},
    {"from": "2030-01-01T00:00:00\x01Z"},
])
def test_bad_parameters(st, owner, params):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    body = assert_problem(stats(owner, key, **params), 400)
    assert body["type"].endswith("invalid-parameter"), body


def test_longest_range_is_fine(st, owner):
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    body = stats_ok(owner, key, interval="hour", **{"from": "2029-01-01T00:00:00Z",
                                                    "to": "2030-02-05T00:00:00Z"})
    assert len(body["series"]) == 400 * 24 + 1 and body["total"] == 0
    assert body["from"] == "2029-01-01T00:00:00Z" and body["to"] == "2030-02-05T00:00:00Z"
    # An offset is read, and answered in UTC.
    body = stats_ok(owner, key, **{"from": "2029-01-01T02:00:00+02:00",
                                   "to": "2029-01-03T00:00:00Z"})
    assert body["from"] == "2029-01-01T00:00:00Z" and len(body["series"]) == 3
    # The same offset typed into a URL without encoding its '+' (which then reads as a space).
    r = owner.request("GET", f"/api/v1/urls/{key}/stats"
                      "?from=2029-01-01T02:00:00+02:00&to=2029-01-03T00:00:00Z")
    assert r.status_code == 200, r.text
    assert r.json()["from"] == "2029-01-01T00:00:00Z" and len(r.json()["series"]) == 3


# ---------------------------------------------------------------------------- unknown keys


def test_unknown_keys_counted_by_day(st):
    anon = stk.Client(st.server)
    key = "typo" + unique()
    before = metric(st.server, "shortener_unknown_key_visits_total")
    for _ in range(3):
        assert anon.resolve(key).status_code == 404
    assert anon.resolve(key, method="HEAD").status_code == 404
    wait_until("the unknown key's row", lambda: st.psql(
        f"SELECT visits FROM unknown_keys WHERE key = '{key}'") == "3", 15)
    assert metric(st.server, "shortener_unknown_key_visits_total") - before == 3
    assert int(st.psql("SELECT visits FROM unknown_key_days WHERE day = "
                       "(now() AT TIME ZONE 'UTC')::date")) >= 3


def test_unknown_keys_bounded_per_day(st):
    """Past 1000 keys a day, new keys are counted in the day's total only."""
    st.psql("INSERT INTO unknown_keys (day, key, visits) SELECT (now() AT TIME ZONE 'UTC')::date,"
            " 'filler' || g, 1 FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING")
    day_before = int(st.psql("SELECT COALESCE(sum(visits), 0) FROM unknown_key_days"))
    anon = stk.Client(st.server)
    keys = ["late" + unique() for _ in range(5)]
    for k in keys:
        assert anon.resolve(k).status_code == 404
    wait_until("the day's total", lambda: int(st.psql(
        "SELECT COALESCE(sum(visits), 0) FROM unknown_key_days")) >= day_before + 5, 15)
    found = st.psql("SELECT count(*) FROM unknown_keys WHERE key LIKE 'late%'")
    assert found == "0"
    assert int(st.psql("SELECT count(*) FROM unknown_keys WHERE day = "
                       "(now() AT TIME ZONE 'UTC')::date")) <= 1000 + 100


# ---------------------------------------------------------------------------- crash


def test_kill9_loses_at_most_one_flush_interval(st, owner):
    """N1 visits are flushed (stats show them), N2 more come in, then kill -9: afterwards the
    stats hold at least N1 and never more than N1 + N2, however often they are read."""
    victim = st.start_shortener(GEOIP_DB=GEOIP_DB, VISITS_FLUSH_MS=2000)
    key = owner.create_ok(f"https://example.com/{unique()}")["key"]
    c = stk.Client(victim)
    ua = {"User-Agent": SAFARI_IPHONE}
    n1, n2 = 20, 30
    for _ in range(n1):
        assert c.resolve(key, headers=ua).status_code == 301
    wait_total(owner, key, n1)
    for _ in range(n2):
        assert c.resolve(key, headers=ua).status_code == 301
    victim.proc.kill9()
    victim.stop()
    first = stats_ok(owner, key)["total"]
    time.sleep(2.5)
    body = stats_ok(owner, key)
    assert n1 <= first <= body["total"] <= n1 + n2, (first, body["total"])
    assert as_dict(body["devices"]) == {"mobile": body["total"]}


# ---------------------------------------------------------------------------- retention


def test_cleanup_drops_old_aggregates(st):
    key = "ret" + unique()
    st.psql(f"INSERT INTO visit_hours (key, dim, hour, value, visits) SELECT '{key}', 1,"
            " date_trunc('hour', now()) - g * interval '1 hour', 'human', 1"
            " FROM generate_series(0, 24 * 50) g")
    st.psql(f"INSERT INTO visit_days (key, dim, day, value, visits) SELECT '{key}', 1,"
            " date_trunc('day', now()) - g * interval '1 day', 'human', 24"
            " FROM generate_series(0, 50) g")
    # Recent rows are rolled within the hour by a running server; with none running, they
    # may stay, and go all the same.
    st.psql(f"INSERT INTO visit_recent (key, hour, profile, visits) SELECT '{key}',"
            " date_trunc('hour', now()) - g * interval '1 day', array_to_string("
            "ARRAY['human', 'direct', 'unknown', 'Chrome', 'Windows', 'desktop'], chr(31)), 1"
            " FROM generate_series(0, 50) g")
    st.psql("INSERT INTO unknown_key_days (day, visits) VALUES (current_date - 45, 7)"
            " ON CONFLICT DO NOTHING")
    keep_hours = st.psql(f"SELECT count(*) FROM visit_hours WHERE key = '{key}'"
                         " AND hour >= now() - interval '40 days'")
    keep_days = st.psql(f"SELECT count(*) FROM visit_days WHERE key = '{key}'"
                        " AND day >= now() - interval '40 days'")
    keep_recent = st.psql(f"SELECT count(*) FROM visit_recent WHERE key = '{key}'"
                          " AND hour >= now() - interval '40 days'")
    assert 0 < int(keep_hours) < 24 * 50 and 0 < int(keep_days) < 50
    assert 0 < int(keep_recent) < 50
    # Batches of 100: the 240-odd old hourly rows take several.
    res = st.ctl("cleanup", "--batch", "100", env={"STATS_RETENTION_DAYS": "40"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "visit stats" in res.stdout, res.stdout
    assert st.psql(f"SELECT count(*) FROM visit_hours WHERE key = '{key}'") == keep_hours
    assert st.psql(f"SELECT count(*) FROM visit_days WHERE key = '{key}'") == keep_days
    assert st.psql(f"SELECT count(*) FROM visit_recent WHERE key = '{key}'") == keep_recent
    assert st.psql("SELECT count(*) FROM unknown_key_days WHERE day < current_date - 40") == "0"
    # The default keeps 400 days: nothing more goes, and nothing is said about it.
    res = st.ctl("cleanup")
    assert res.returncode == 0 and "visit stats" not in res.stdout, res.stdout
    assert st.psql(f"SELECT count(*) FROM visit_hours WHERE key = '{key}'") == keep_hours
    bad = st.ctl("cleanup", env={"STATS_RETENTION_DAYS": "0"})
    assert bad.returncode == 2 and "STATS_RETENTION_DAYS" in bad.stderr, bad.stderr
