"""The in-process hot cache in front of Redis: popular links are answered from memory, a
delete on one server empties every other server's hot cache over Redis pub/sub within a
second, and while that channel is down (Redis stopped or frozen) the hot cache is off (and
emptied unless Redis answers again within seconds), so it can never serve a link deleted
meanwhile."""

import contextlib
import re
import signal
import time

import pytest

import stack as stk
from linkutil import redirects_by_tier
from stack import assert_problem, wait_until


@pytest.fixture(scope="module")
def hstack():
    with stk.running_stack("hot") as st:
        st.other = st.start_shortener()
        st.api_key = st.create_apikey("hot")[0]
        yield st


def metric(server, name, labels=""):
    text = stk.Client(server).request("GET", "/metrics", auth=False).text
    m = re.search(r"^" + re.escape(name + labels) + r" (\d+)$", text, re.M)
    assert m, f"{name}{labels} missing from /metrics"
    return int(m.group(1))


def hot_hits(server):
    return metric(server, "shortener_redirects_total", '{result="hot_hit"}')


def hot_enabled(server):
    return metric(server, "shortener_hot_cache_enabled") == 1


def wait_hot(server, on, timeout=5):
    wait_until(f"hot cache {'on' if on else 'off'}", lambda: hot_enabled(server) == on, timeout,
               interval=0.05)


@pytest.fixture
def clients(hstack):
    hstack.revive()
    wait_hot(hstack.server, True)
    wait_hot(hstack.other, True)
    return (stk.Client(hstack.server, hstack.api_key), stk.Client(hstack.other))


def test_second_redirect_is_answered_from_memory(hstack, clients):
    a, _ = clients
    key = a.create_ok("https://example.com/hot/1")["key"]
    before = hot_hits(hstack.server)
    for _ in range(3):
        r = a.resolve(key)
        assert r.status_code == 301 and r.headers["Location"] == "https://example.com/hot/1"
    assert hot_hits(hstack.server) - before == 2  # the first came from PostgreSQL
    assert metric(hstack.server, "shortener_hot_cache_entries") >= 1


def test_delete_reaches_the_other_servers_hot_cache(hstack, clients):
    a, b = clients
    for i in range(5):
        key = a.create_ok(f"https://example.com/hot/del/{i}")["key"]
        for _ in range(2):
            assert b.resolve(key).status_code == 301
        before = hot_hits(hstack.other)
        assert b.resolve(key).status_code == 301
        assert hot_hits(hstack.other) == before + 1, "the other server did not serve it from memory"
        assert a.delete(key).status_code == 204
        assert_problem(a.resolve(key), 404)
        wait_until("the other server to forget the deleted link",
                   lambda: b.resolve(key).status_code == 404, 1.0, interval=0.02)


def test_hot_cache_serves_no_expired_link(hstack, clients):
    a, _ = clients
    # 4 s: max-age counts whole seconds left, the expiry rounded down and now rounded up, so
    # it can be up to 2 less than the ttl (2 s left none under ASan once in a while).
    key = a.create_ok("https://example.com/hot/expiring", ttl=4)["key"]
    assert a.resolve(key).status_code == 301
    r = a.resolve(key)
    assert r.status_code == 301
    max_age = int(r.headers["Cache-Control"].split("max-age=")[1])
    assert 0 < max_age <= 4
    wait_until("the link to expire", lambda: a.resolve(key).status_code == 404, 6, interval=0.1)
    # A second after expiry too (an off-by-one once read "expired 1 s ago" as "never expires").
    time.sleep(1.2)
    assert_problem(a.resolve(key), 404)


def test_redis_stopped_turns_it_off_and_nothing_stale_is_served(hstack, clients):
    a, b = clients
    key = a.create_ok("https://example.com/hot/outage")["key"]
    for _ in range(3):
        assert b.resolve(key).status_code == 301
    hstack.redis.stop()
    try:
        wait_hot(hstack.other, False, timeout=2)
        assert metric(hstack.other, "shortener_hot_cache_entries") == 0
        # Deleted while nobody can publish: the other server must read PostgreSQL now.
        r = a.delete(key)
        assert r.status_code == 204, r.text
        assert_problem(b.resolve(key), 404)
        # Live links still resolve, from PostgreSQL.
        live = a.create_ok("https://example.com/hot/outage-live")["key"]
        assert b.resolve(live).status_code == 301
    finally:
        hstack.redis.start()
    wait_hot(hstack.other, True)
    assert_problem(b.resolve(key), 404)
    assert b.resolve(live).status_code == 301


def test_redis_frozen_turns_it_off_within_a_second(hstack, clients):
    a, b = clients
    key = a.create_ok("https://example.com/hot/frozen")["key"]
    for _ in range(3):
        assert b.resolve(key).status_code == 301
    redis = hstack.redis.proc.popen
    redis.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_hot(hstack.other, False, timeout=3)
        assert time.monotonic() - t0 < 1.5, "a frozen Redis went unnoticed too long"
    finally:
        redis.send_signal(signal.SIGCONT)
    wait_hot(hstack.other, True)
    assert b.resolve(key).status_code == 301


def hot_on_other(a, b, hstack, url):
    """A link created on one server and answered from the other's hot cache."""
    key = a.create_ok(url)["key"]
    for _ in range(2):
        assert b.resolve(key).status_code == 301
    before = hot_hits(hstack.other)
    assert b.resolve(key).status_code == 301
    assert hot_hits(hstack.other) == before + 1
    return key


def test_redis_stalled_briefly_pauses_the_hot_cache_and_keeps_it(hstack, clients):
    """Redis stops answering for a second and a half (a fork, a starved CPU): the hot cache
    stops answering within a second, and when the PING is answered it answers again with what
    it held, rather than every server refilling its cache from a struggling Redis."""
    a, b = clients
    key = hot_on_other(a, b, hstack, "https://example.com/hot/stall")
    held = metric(hstack.other, "shortener_hot_cache_entries")
    redis = hstack.redis.proc.popen
    redis.send_signal(signal.SIGSTOP)
    try:
        wait_hot(hstack.other, False, timeout=3)
        assert metric(hstack.other, "shortener_hot_cache_entries") == held
        time.sleep(0.7)
    finally:
        redis.send_signal(signal.SIGCONT)
    wait_hot(hstack.other, True)
    assert metric(hstack.other, "shortener_hot_cache_entries") == held
    before = hot_hits(hstack.other)
    assert b.resolve(key).status_code == 301
    assert hot_hits(hstack.other) == before + 1, "the link was not kept in memory"
    assert "hot cache paused" in hstack.other.proc.log_text()


def test_delete_during_a_stall_is_not_served_from_the_kept_hot_cache(hstack, clients):
    """A delete while Redis is stalled cannot be published, and its server dies before it
    can publish it later: the other server never hears of it, so the journal must evict it
    from the kept cache before that answers again."""
    a, b = clients
    gone = hot_on_other(a, b, hstack, "https://example.com/hot/stall-del")
    kept = hot_on_other(a, b, hstack, "https://example.com/hot/stall-kept")
    deleter = hstack.start_shortener()
    redis = hstack.redis.proc.popen
    redis.send_signal(signal.SIGSTOP)
    try:
        wait_hot(hstack.other, False, timeout=3)
        r = stk.Client(deleter, hstack.api_key).delete(gone)
        assert r.status_code == 204, r.text
        deleter.proc.kill9()
        deleter.stopped = True  # not revived: the point is that it is gone
    finally:
        redis.send_signal(signal.SIGCONT)
    wait_hot(hstack.other, True)
    assert_problem(b.resolve(gone), 404)
    before = hot_hits(hstack.other)
    assert b.resolve(kept).status_code == 301
    assert hot_hits(hstack.other) == before + 1, "the cache was emptied, not kept"


def test_redis_stalled_for_long_empties_the_hot_cache(hstack, clients):
    """No PONG within five seconds: the subscription is given up and the cache emptied, as
    messages may have been lost with a connection that died without a word."""
    a, b = clients
    hot_on_other(a, b, hstack, "https://example.com/hot/long-stall")
    redis = hstack.redis.proc.popen
    redis.send_signal(signal.SIGSTOP)
    try:
        wait_hot(hstack.other, False, timeout=3)
        wait_until("the paused hot cache to be emptied",
                   lambda: metric(hstack.other, "shortener_hot_cache_entries") == 0, 8,
                   interval=0.1)
    finally:
        redis.send_signal(signal.SIGCONT)
    wait_hot(hstack.other, True, timeout=10)


@contextlib.contextmanager
def aging_server(hstack, client, age, path):
    """A server whose hot cache trusts an entry age seconds, and two links created by client,
    each requested twice through it (so held in its hot cache): (server, its client, keys)."""
    srv = hstack.start_shortener(HOT_CACHE_MAX_AGE=age)
    try:
        wait_hot(srv, True)
        b = stk.Client(srv)
        keys = [client.create_ok(f"https://example.com/hot/{path}/{i}")["key"]
                for i in range(2)]
        for key in keys:
            for _ in range(2):
                assert b.resolve(key).status_code == 301
        yield srv, b, keys
    finally:
        assert srv.stop() is None


def test_stale_entries_are_read_again_in_the_background(hstack, clients):
    """Past HOT_CACHE_MAX_AGE a link is still answered from memory while one thread reads it
    again from Redis: a change that was never announced (here, its entry rewritten in Redis
    by hand) shows within the age and a moment, and no request waits for Redis meanwhile.
    An entry Redis no longer has is forgotten and looked up as usual."""
    with aging_server(hstack, clients[0], 2, "aging") as (srv, b, keys):
        changed, dropped = keys
        entry = hstack.redis.cli("GET", f"u:{changed}")
        head = entry.split("\n")[0]
        assert hstack.redis.cli("SET", f"u:{changed}",
                                head + "\nhttps://example.com/hot/aging/rewritten",
                                "KEEPTTL") == "OK"
        assert hstack.redis.cli("DEL", f"u:{dropped}") == "1"
        refreshed = metric(srv, "shortener_hot_cache_refreshes_total")
        before = redirects_by_tier(srv)
        seen, n = [], 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            r = b.resolve(changed)
            n += 1
            assert r.status_code == 301
            seen.append(r.headers["Location"])
            if seen[-1].endswith("/rewritten"):
                break
            time.sleep(0.05)
        assert seen[-1] == "https://example.com/hot/aging/rewritten", seen[-3:]
        assert seen[0] == "https://example.com/hot/aging/0"
        after = redirects_by_tier(srv)
        assert after["hot_hit"] - before["hot_hit"] == n, (before, after)
        assert after["cache_hit"] == before["cache_hit"], "a request waited for Redis"
        assert metric(srv, "shortener_hot_cache_refreshes_total") > refreshed
        # The dropped one: once stale and read again, it is gone from memory, and the next
        # lookup finds it in PostgreSQL (and fills Redis and the cache again).
        wait_until("the dropped entry to be forgotten",
                   lambda: b.resolve(dropped).status_code == 301
                   and redirects_by_tier(srv)["db_hit"] > after["db_hit"], 10, interval=0.1)
        assert hstack.redis.cli("EXISTS", f"u:{dropped}") == "1"


def test_entries_nobody_requests_are_kept_fresh(hstack, clients):
    """A link requested less often than HOT_CACHE_MAX_AGE is still answered from memory: the
    refresh thread sweeps the table and reads every entry in the second half of its age again
    from Redis, asked for or not. One whose Redis entry is gone is forgotten by the sweep, and
    its next request is looked up as usual."""
    with aging_server(hstack, clients[0], 3, "swept") as (srv, b, keys):
        kept, dropped = keys
        assert hstack.redis.cli("DEL", f"u:{dropped}") == "1"
        refreshed = metric(srv, "shortener_hot_cache_refreshes_total")
        # Two ages and more without a request: stale twice over, but read again meanwhile.
        time.sleep(7)
        assert metric(srv, "shortener_hot_cache_refreshes_total") >= refreshed + 2
        before = redirects_by_tier(srv)
        r = b.resolve(kept)
        assert r.status_code == 301
        assert r.headers["Location"] == "https://example.com/hot/swept/0"
        after = redirects_by_tier(srv)
        assert after["hot_hit"] == before["hot_hit"] + 1, (before, after)
        assert (after["cache_hit"], after["db_hit"]) == (before["cache_hit"], before["db_hit"])
        # The dropped one was forgotten, not served: PostgreSQL answers it.
        assert b.resolve(dropped).status_code == 301
        assert redirects_by_tier(srv)["db_hit"] == after["db_hit"] + 1


def test_hot_cache_can_be_turned_off(hstack):
    srv = hstack.start_shortener(HOT_CACHE_ENTRIES=0)
    try:
        c = stk.Client(srv, hstack.api_key)
        key = c.create_ok("https://example.com/hot/off")["key"]
        for _ in range(3):
            assert c.resolve(key).status_code == 301
        assert hot_hits(srv) == 0
        assert not hot_enabled(srv)
    finally:
        assert srv.stop() is None
