"""Deletes and edits made while Redis is down reach every server once it is back, however
many (more than the 4,096 an in-memory list once held) and even when the server that made
them died meanwhile: PostgreSQL's journal of changes, not any server's memory, says what to
evict again. Redis here keeps its data across the outage (SAVE before it stops, loaded when it
starts), so every deleted link's entry is still there when it comes back."""

import threading

import pytest

import stack as stk
from linkutil import metric

DELETED = 5000
KEPT = 50
THREADS = 4


@pytest.fixture
def ostack():
    with stk.running_stack("outage-changes") as st:
        yield st


def bulk_create(client, urls):
    keys = []
    for i in range(0, len(urls), 1000):
        r = client.request("POST", "/api/v1/urls/bulk", json=[{"url": u} for u in urls[i:i + 1000]])
        assert r.status_code in (200, 201, 207), r.text[:300]
        items = r.json()["items"]
        assert all(it["status"] == 201 for it in items), items[:3]
        keys += [it["link"]["key"] for it in items]
    return keys


def in_threads(fn, items):
    """fn(session, item) for every item, on THREADS threads; returns the failures."""
    failures = []

    def work(part):
        s = stk.session()
        for it in part:
            try:
                msg = fn(s, it)
            except Exception as e:  # noqa: BLE001 - reported below
                msg = repr(e)
            if msg:
                failures.append(msg)
    threads = [threading.Thread(target=work, args=(items[t::THREADS],)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return failures


def resolves(srv, status):
    def check(s, key):
        r = s.get(srv.url("/" + key), allow_redirects=False, timeout=stk.HTTP_TIMEOUT)
        return None if r.status_code == status else f"{srv.base_url}/{key}: {r.status_code}"
    return check


def run_outage(st, kill_deleter):
    api_key = st.create_apikey("outage")[0]
    s1 = st.server
    s2 = st.start_shortener()
    c1 = stk.Client(s1, api_key)
    doomed = bulk_create(c1, [f"https://example.com/outage/gone/{i}" for i in range(DELETED)])
    kept = bulk_create(c1, [f"https://example.com/outage/kept/{i}" for i in range(KEPT)])
    edited = kept[0]
    # Every link in Redis (through s1) and in s2's hot cache.
    assert not in_threads(resolves(s1, 301), doomed + kept)
    assert not in_threads(resolves(s2, 301), doomed + kept)
    assert int(st.redis.cli("EXISTS", *[f"u:{k}" for k in doomed[:100]])) == 100
    assert st.redis.cli("SAVE") == "OK"
    st.redis.stop()

    def delete(s, key):
        r = s.delete(s1.url(f"/api/v1/urls/{key}"), headers={"Authorization": f"Bearer {api_key}"},
                     timeout=stk.HTTP_TIMEOUT)
        return None if r.status_code == 204 else f"delete {key}: {r.status_code} {r.text}"
    assert not in_threads(delete, doomed)
    r = c1.request("PATCH", f"/api/v1/urls/{edited}", json={"url": "https://example.com/edited"})
    assert r.status_code == 200, r.text
    if kill_deleter:
        s1.proc.kill9()
        s1.stopped = True  # not revived: the point is that it is gone
    st.redis.start()
    # The stale entries are back in Redis with it (unless a server already overwrote them).
    servers = [s2] if kill_deleter else [s1, s2]
    for srv in servers:
        assert not in_threads(resolves(srv, 404), doomed)[:5]
        assert not in_threads(resolves(srv, 301), kept[1:])
        r = stk.Client(srv).resolve(edited)
        assert r.headers.get("Location") == "https://example.com/edited", r.status_code
    # Once more after the servers trust Redis and their hot caches are on again.
    for srv in servers:
        stk.wait_until("the hot cache on",
                       lambda: metric(srv, "shortener_hot_cache_enabled") == 1, 30)
        assert not in_threads(resolves(srv, 404), doomed[:500])[:5]
        assert not in_threads(resolves(srv, 301), kept[1:])


def test_5000_deletes_while_redis_is_down_reach_every_server(ostack):
    run_outage(ostack, kill_deleter=False)


def test_the_server_that_deleted_dies_before_redis_is_back(ostack):
    run_outage(ostack, kill_deleter=True)


def test_cleanup_keeps_the_journal_for_31_days(ostack):
    """shortenerctl cleanup drops journal rows no resync can need (older than 31 days: CACHE_TTL
    is at most 30) and keeps the rest."""
    c = stk.Client(ostack.server, ostack.create_apikey()[0])
    key = c.create_ok("https://example.com/journal")["key"]
    assert c.delete(key).status_code == 204
    ostack.psql("INSERT INTO link_changes (key, changed_at) VALUES ('old-one', now() - interval "
                "'32 days'), ('recent-one', now() - interval '30 days')")
    res = ostack.ctl("cleanup")
    assert res.returncode == 0, res.stderr
    # ORDER BY key in the C locale is code-point order, as Python's sorted().
    assert ostack.psql("SELECT string_agg(key, ',' ORDER BY key) FROM link_changes") == \
        ",".join(sorted([key, "recent-one"]))
