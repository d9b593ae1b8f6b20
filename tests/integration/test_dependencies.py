"""Dependencies going away and coming back: Redis, PostgreSQL and kgs. These tests run on a
stack of their own and put back what they stop, so they leave no trace on other tests."""

import os
import signal
import time

import pytest
import requests

import stack as stk
from linkutil import metric
from stack import assert_problem, parse_time, wait_until

RECOVERY = 20  # seconds a dependency's return may take to be noticed (bounded polls)
AUTHCACHE_TTL = 0.5  # AUTHCACHE_TTL_MS: how long a confirmed API key is taken on trust


@pytest.fixture(scope="module")
def dstack():
    with stk.running_stack("deps") as st:
        yield st


@pytest.fixture(scope="module")
def dkey(dstack):
    return dstack.create_apikey("deps-key")[0]


@pytest.fixture
def fresh_server(dstack):
    """A shortener of this test's own: connections that an earlier test's restarts left
    stale in the module's server do not change what this test sees."""
    srv = dstack.start_shortener()
    yield srv
    problem = srv.stop()
    assert problem is None, problem


@pytest.fixture
def dclient(fresh_server, dkey):
    return stk.Client(fresh_server, dkey)


def readyz(c):
    return c.request("GET", "/readyz", auth=False)


def not_ready_naming(c, name):
    r = readyz(c)
    if r.status_code != 503:
        return None
    body = assert_problem(r, 503)
    return body if name in body["detail"].lower() else None


def status_of(fn):
    try:
        return fn().status_code
    except requests.RequestException as e:
        return repr(e)


def test_readyz_ok_with_everything_up(dclient):
    r = readyz(dclient)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"


def test_a_new_server_is_ready_once_it_trusts_redis(dstack, dclient):
    # A new server distrusts Redis until it has marked again every link changed lately
    # (invalidation.h): meanwhile it serves every redirect from PostgreSQL and limits rates by
    # itself, so a balancer must not send it traffic yet. A deletion in the journal gives the
    # resync a write to make, and a write pause holds it there while PING still answers.
    made = dclient.create_ok("https://example.com/deleted-before-a-new-server")
    assert dclient.delete(made["key"]).status_code == 204
    assert dstack.redis.cli("CLIENT", "PAUSE", 30000, "WRITE") == "OK"
    late = None
    try:
        late = dstack.start_shortener(wait_ready=False)
        c = stk.Client(late)
        wait_until("/readyz from the new server", lambda: status_of(lambda: readyz(c)) == 503,
                   15)
        for _ in range(5):
            body = assert_problem(readyz(c), 503)
            assert body["detail"] == "not ready: redis unavailable", body
            assert metric(late, "shortener_hot_cache_enabled") == 0
            time.sleep(0.3)
        assert dstack.redis.cli("CLIENT", "UNPAUSE") == "OK"
        wait_until("/readyz 200 once the resync is done",
                   lambda: readyz(c).status_code == 200, RECOVERY, interval=0.1)
        assert metric(late, "shortener_hot_cache_enabled") == 1
        assert_problem(c.resolve(made["key"]), 404)
    finally:
        dstack.redis.cli("CLIENT", "UNPAUSE")
        if late:
            late.stop()


def test_redis_stopped_and_restarted(dstack, dclient):
    before = dclient.create_ok("https://example.com/before-redis-stop")
    assert dclient.resolve(before["key"]).status_code == 301  # cached in Redis now
    dstack.redis.stop()
    try:
        wait_until("/readyz 503 naming redis", lambda: not_ready_naming(dclient, "redis"), 10)
        # Redirects and creates keep working from PostgreSQL.
        for _ in range(3):
            r = dclient.resolve(before["key"])
            assert r.status_code == 301, r.text
            assert r.headers["Location"] == "https://example.com/before-redis-stop"
        made = dclient.create_ok("https://example.com/during-redis-stop")
        r = dclient.resolve(made["key"])
        assert r.status_code == 301 and r.headers["Location"] == made["url"]
        alias = "noredis" + os.urandom(3).hex()
        dclient.create_ok("https://example.com/alias-during-redis-stop", alias=alias)
        assert dclient.resolve(alias).status_code == 301
        assert dclient.read(made["key"]).status_code == 200
        assert dclient.delete(made["key"]).status_code == 204
        assert_problem(dclient.resolve(made["key"]), 404)
        assert_problem(dclient.resolve("zzzzzzz"), 404)
        assert dclient.request("GET", "/healthz", auth=False).status_code == 200
    finally:
        dstack.redis.start()
    wait_until("/readyz 200 after Redis is back",
               lambda: readyz(dclient).status_code == 200, RECOVERY, interval=0.2)
    after = dclient.create_ok("https://example.com/after-redis-restart")
    for _ in range(3):  # from PostgreSQL, then from the cache again
        r = dclient.resolve(after["key"])
        assert r.status_code == 301 and r.headers["Location"] == after["url"]
    assert dclient.resolve(before["key"]).status_code == 301
    assert_problem(dclient.resolve(made["key"]), 404)


def test_postgres_stopped_and_restarted(dstack, dclient, dkey):
    # Anonymous creation needs no database to admit the caller (see below).
    anon_server = dstack.start_shortener(ALLOW_ANONYMOUS=1)
    anon = stk.Client(anon_server)
    cached = dclient.create_ok("https://example.com/cached-before-pg-stop")
    uncached = dclient.create_ok("https://example.com/uncached-before-pg-stop")
    # A ttl counts from the start of the current second: ttl=3 leaves more than two seconds,
    # so the link surely redirects (and is cached) now, and has surely expired later.
    short = dclient.create_ok("https://example.com/short-lived-cached", ttl=3)
    key_confirmed = time.monotonic()  # the last time dkey was looked up while PG was up
    assert dclient.resolve(cached["key"]).status_code == 301
    assert dclient.resolve(cached["key"]).status_code == 301
    assert dclient.resolve(short["key"]).status_code == 301
    before = dstack.count_urls()
    dstack.pg.stop()
    try:
        wait_until("/readyz 503 naming postgres",
                   lambda: not_ready_naming(dclient, "postgres"), 10)
        # ... and only postgres: Redis answers, though the server distrusts it while it
        # cannot read PostgreSQL's journal of changes. Also from a server that never saw
        # PostgreSQL.
        late = dstack.start_shortener(wait_ready=False)
        try:
            for c in (dclient, stk.Client(late)):
                wait_until("/readyz from the server", lambda: status_of(lambda: readyz(c)) == 503,
                           15)
                for _ in range(10):
                    body = assert_problem(readyz(c), 503)
                    assert body["detail"] == "not ready: postgres unavailable", body
                    time.sleep(0.3)
        finally:
            late.stop()
        # A cache hit never touches PostgreSQL.
        r = dclient.resolve(cached["key"])
        assert r.status_code == 301, r.text
        assert r.headers["Location"] == cached["url"]
        # Everything that needs the database answers 503 with Retry-After, quickly.
        assert_problem(dclient.resolve(uncached["key"]), 503)
        # A browser that followed the link gets a page, and is told when to come back.
        r = dclient.resolve(uncached["key"], headers={"Accept": "text/html"})
        assert r.status_code == 503 and r.headers["Content-Type"].startswith("text/html")
        assert r.headers["Retry-After"] == "1" and "try again shortly" in r.text
        assert "no-store" in r.headers["Cache-Control"] and "Accept" in r.headers["Vary"]
        assert_problem(dclient.create("https://example.com/during-pg-stop"), 503)
        assert_problem(dclient.create("https://example.com/during-pg-stop",
                                      alias="pgdown-alias"), 503)
        assert_problem(dclient.read(uncached["key"]), 503)
        assert_problem(dclient.delete(uncached["key"]), 503)
        assert dclient.request("GET", "/healthz", auth=False).status_code == 200
        # Bad input is still bad input, whatever the database does, for a caller the server
        # can admit without it.
        assert_problem(anon.create("ftp://example.com/"), 400)
        # A key is checked before the body, and once the server's confirmation of it has aged
        # out, checking it needs the database: 503, not 400, however bad the body.
        time.sleep(max(0.0, key_confirmed + AUTHCACHE_TTL + 0.2 - time.monotonic()))
        assert_problem(dclient.create("ftp://example.com/"), 503)
        # The cache never outlives a link, even when the database cannot be asked: the Redis
        # entry went with the link's last second, and only the database may say that an
        # expired link is gone.
        time.sleep(max(0.0, parse_time(short["expires_at"]) + 1.1 - time.time()))
        assert_problem(dclient.resolve(short["key"]), 503)
    finally:
        dstack.pg.start()
        problem = anon_server.stop()
        assert problem is None, problem
    wait_until("create to work again after PostgreSQL restarts",
               lambda: status_of(lambda: dclient.create("https://example.com/pg-back")) == 201,
               RECOVERY, interval=0.2)
    wait_until("/readyz 200 after PostgreSQL restarts",
               lambda: readyz(dclient).status_code == 200, RECOVERY, interval=0.2)
    assert dstack.count_urls() == before + 1, "a create answered 503 but stored a link"
    assert dstack.psql("SELECT count(*) FROM urls WHERE key = 'pgdown-alias'") == "0"
    r = dclient.resolve(uncached["key"])
    assert r.status_code == 301 and r.headers["Location"] == uncached["url"]
    assert dclient.read(uncached["key"]).status_code == 200
    assert dclient.read(cached["key"]).status_code == 200
    assert dclient.delete(uncached["key"]).status_code == 204
    assert_problem(dclient.resolve(uncached["key"]), 404)
    # Generated keys still come from kgs, which reconnected too.
    for i in range(300):
        dclient.create_ok(f"https://example.com/after-pg/{i}")


def test_kgs_down(dstack, dclient, dkey):
    dstack.kgs.kill9()
    fresh = None
    try:
        wait_until("/readyz 503 naming kgs", lambda: not_ready_naming(dclient, "kgs"), 10)
        # A new instance has no keys buffered: generated keys are unavailable at once,
        # aliases still work.
        fresh = dstack.start_shortener(wait_ready=False)
        fc = stk.Client(fresh, dkey)
        assert_problem(stk.Client(fresh).request("GET", "/readyz", auth=False), 503)
        before = dstack.count_urls()
        assert_problem(fc.create("https://example.com/no-kgs"), 503)
        assert_problem(fc.create("https://example.com/no-kgs-again"), 503)
        assert dstack.count_urls() == before
        alias = "nokgs" + os.urandom(3).hex()
        body = fc.create_ok("https://example.com/alias-without-kgs", alias=alias)
        assert body["key"] == alias
        assert fc.resolve(alias).status_code == 301
        # Redirects of existing links do not need kgs either.
        assert dclient.resolve(alias).status_code == 301
    finally:
        dstack.kgs.start()
    try:
        wait_until("generated keys again once kgs is back",
                   lambda: status_of(lambda: fc.create("https://example.com/kgs-back")) == 201,
                   RECOVERY, interval=0.2)
        wait_until("/readyz 200 once kgs is back",
                   lambda: readyz(fc).status_code == 200, RECOVERY, interval=0.2)
        assert readyz(dclient).status_code == 200
    finally:
        if fresh:
            problem = fresh.stop()
            assert problem is None, problem


def test_no_503_once_kgs_is_back(dstack, dclient):
    """A kgs restart between two batches must not cost creates: once kgs answers again, the
    next refill works (a connection to the old kgs is stale, not a sign that kgs is down)."""
    dclient.create_ok("https://example.com/fill-the-buffer")
    dstack.kgs.kill9()
    dstack.kgs.start()  # answers PING before this returns
    codes = [dclient.create(f"https://example.com/after-kgs-restart/{i}").status_code
             for i in range(600)]
    bad = [(i, code) for i, code in enumerate(codes) if code != 201]
    assert not bad, f"{len(bad)} of 600 creates failed after kgs came back, first {bad[:3]}"


def test_visits_during_postgres_outage_are_kept(dstack, dclient):
    key = dclient.create_ok("https://example.com/visits-outage")["key"]
    assert dclient.resolve(key).status_code == 301
    wait_until("the first visit to be flushed",
               lambda: dclient.read(key).json()["visits"] == 1, 3.0, interval=0.1)
    dstack.pg.stop()
    try:
        for _ in range(3):
            assert dclient.resolve(key).status_code == 301  # from Redis
    finally:
        dstack.pg.start()
    wait_until("visits made during the outage to reach PostgreSQL",
               lambda: status_of(lambda: dclient.read(key)) == 200
               and dclient.read(key).json()["visits"] == 4, RECOVERY, interval=0.2)


def test_delete_while_redis_is_unreachable_is_not_undone(dstack, dclient, fresh_server):
    """Redis stalls (a network blip), a delete happens, Redis comes back with its data: the
    deleted link must not be served from a cache entry the delete could not remove."""
    key = dclient.create_ok("https://example.com/delete-during-blip")["key"]
    for _ in range(2):
        assert dclient.resolve(key).status_code == 301  # cached in Redis now
    redis = dstack.redis.proc.popen
    redis.send_signal(signal.SIGSTOP)
    try:
        # Served from PostgreSQL once the cache times out; the server now knows Redis is away.
        assert_problem(dclient.resolve("zzzzzzz"), 404)
        # PostgreSQL decides: the delete commits, and the entry Redis could not drop is
        # remembered and dropped before this server serves anything from Redis again.
        r = dclient.delete(key)
        assert r.status_code == 204, r.text
    finally:
        redis.send_signal(signal.SIGCONT)
    others = stk.Client(fresh_server)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        for c in (dclient, others):
            r = c.resolve(key)
            assert r.status_code == 404, \
                f"deleted link answered {r.status_code} -> {r.headers.get('Location')}"
        time.sleep(0.1)
