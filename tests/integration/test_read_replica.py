"""DATABASE_READ_URL against a real streaming replica (pg_basebackup -R of the stack's
PostgreSQL): redirect misses read the replica; a link it does not have yet (replay paused,
the strongest lag) is found on the primary, so a link redirects the moment its create
returned 201; a link deleted or edited on the primary is never served from a replica that
still has the old row, with Redis up or down; with the replica stopped, redirects come from
the primary and /readyz stays 200."""

import time

import pytest

import stack as stk
from linkutil import metric

MAX_LAG_MS = 10000
# How long a delete's tombstone lives with a replica (server.c: change_ttl).
CHANGE_TTL = MAX_LAG_MS // 1000 + 2


@pytest.fixture(scope="module")
def rstack():
    with stk.running_stack("read-replica") as st:
        st.add_replica()
        yield st


@pytest.fixture(scope="module")
def replica(rstack):
    return rstack.replicas[0]


@pytest.fixture(scope="module")
def srv(rstack, replica):
    # No hot cache: every look-up here goes to Redis and then the databases.
    return rstack.start_shortener(DATABASE_READ_URL=replica.dsn,
                                  DATABASE_READ_MAX_LAG_MS=MAX_LAG_MS, HOT_CACHE_ENTRIES=0)


@pytest.fixture(scope="module")
def client(rstack, srv):
    return stk.Client(srv, rstack.create_apikey("replica")[0])


@pytest.fixture(autouse=True)
def replica_running(replica):
    """Each test starts with the replica up and replaying, whatever the last one did."""
    if not replica.running:
        replica.start()
    replica.resume()
    yield


def tier(srv, name):
    return metric(srv, "shortener_redirects_total", f'{{result="{name}"}}')


def fresh_commit(client):
    """A commit on the primary, replayed: the replica's last replayed commit is recent."""
    client.create_ok("https://example.com/replica/heartbeat")


def test_replica_answers_misses(client, srv, replica):
    link = client.create_ok("https://example.com/replica/served")
    fresh_commit(client)
    replica.wait_caught_up()
    before = tier(srv, "replica_hit")
    r = client.resolve(link["key"])
    assert r.status_code == 301 and r.headers["Location"] == link["url"]
    assert tier(srv, "replica_hit") == before + 1


def test_create_then_redirect_at_once_with_replay_paused(client, srv, replica):
    replica.wait_caught_up()
    replica.pause()
    before = tier(srv, "db_hit")
    for i in range(5):
        link = client.create_ok(f"https://example.com/replica/new/{i}")
        r = client.resolve(link["key"])
        assert r.status_code == 301 and r.headers["Location"] == link["url"], r.text
        assert replica.psql(f"SELECT count(*) FROM urls WHERE key = '{link['key']}'") == "0"
    assert tier(srv, "db_hit") == before + 5


def test_deleted_link_is_404_while_the_replica_still_has_it(rstack, client, srv, replica):
    link = client.create_ok("https://example.com/replica/deleted")
    edited = client.create_ok("https://example.com/replica/before-edit")
    key = link["key"]
    assert client.resolve(key).status_code == 301  # cached in Redis now
    replica.wait_caught_up()
    replica.pause()
    assert client.delete(key).status_code == 204
    r = client.request("PATCH", f"/api/v1/urls/{edited['key']}",
                       json={"url": "https://example.com/replica/after-edit"})
    assert r.status_code == 200, r.text
    # The replica still has the link, and the old url: a look-up there would serve them.
    assert replica.psql(f"SELECT count(*) FROM urls WHERE key = '{key}'") == "1"
    assert client.resolve(key).status_code == 404
    # Once the tombstone and the edit's mark are gone from Redis, the replica is still behind.
    time.sleep(CHANGE_TTL + 1)
    assert replica.psql(f"SELECT count(*) FROM urls WHERE key = '{key}'") == "1"
    for _ in range(3):
        assert client.resolve(key).status_code == 404
        r = client.resolve(edited["key"])
        assert r.headers.get("Location") == "https://example.com/replica/after-edit"
    # And with Redis gone (no tombstone to read at all).
    rstack.redis.stop()
    try:
        for _ in range(3):
            assert client.resolve(key).status_code == 404
            r = client.resolve(edited["key"])
            assert r.headers.get("Location") == "https://example.com/replica/after-edit"
    finally:
        rstack.redis.start()
    replica.resume()
    replica.wait_caught_up()
    assert client.resolve(key).status_code == 404


def test_replica_stopped_redirects_from_the_primary(client, srv, replica):
    old = client.create_ok("https://example.com/replica/old")
    replica.wait_caught_up()
    replica.stop()
    new = client.create_ok("https://example.com/replica/while-down")
    for link in (old, new):
        r = client.resolve(link["key"])
        assert r.status_code == 301 and r.headers["Location"] == link["url"], r.text
    assert client.resolve("NoSuchKey1").status_code == 404
    # Ready without the replica (a test before this one may have left Redis resyncing for a
    # moment after its restart: readyz names redis until then, never postgres).
    stk.wait_until("/readyz 200 with the replica down",
                   lambda: client.request("GET", "/readyz").status_code == 200, 10, interval=0.2)
    replica.start()
    # Back: the replica answers misses again.
    later = client.create_ok("https://example.com/replica/after")
    fresh_commit(client)
    replica.wait_caught_up()

    def served_by_replica():
        before = tier(srv, "replica_hit")
        fresh_commit(client)
        replica.wait_caught_up()
        key = client.create_ok("https://example.com/replica/probe")["key"]
        replica.wait_caught_up()
        return client.resolve(key).status_code == 301 and tier(srv, "replica_hit") > before
    stk.wait_until("the replica to answer again", served_by_replica, 20, interval=0.5)
    assert client.resolve(later["key"]).status_code == 301
