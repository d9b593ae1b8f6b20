"""What caching must never do: serve a deleted or expired link, let a browser keep a redirect
longer than the link lives, hide a link created after a 404 on its alias; and visit counts,
which are counted in memory and flushed to PostgreSQL every VISITS_FLUSH_MS (200 here)."""

import os
import threading
import time

import stack as stk
from stack import assert_problem, parse_time, wait_until

NEGATIVE_TTL = 1  # as the harness configures every shortener


def unique(prefix):
    return f"{prefix}{os.urandom(5).hex()}"


def test_delete_is_seen_at_once_here_and_within_a_second_elsewhere(client, second_server):
    other = stk.Client(second_server)
    key = client.create_ok("https://example.com/two-servers")["key"]
    # Both servers have looked it up, so both may have it cached.
    for c in (client, other, client, other):
        r = c.resolve(key)
        assert r.status_code == 301, r.text
    assert client.delete(key).status_code == 204
    assert_problem(client.resolve(key), 404)
    wait_until("the second server to answer 404 after a delete",
               lambda: other.resolve(key).status_code == 404, 1.0, interval=0.02)
    # And it stays gone on both.
    assert_problem(other.resolve(key), 404)
    assert_problem(client.resolve(key), 404)


def test_negative_cache_does_not_hide_a_new_alias(client):
    alias = unique("neg")
    assert_problem(client.resolve(alias), 404)  # now cached as unknown, for NEGATIVE_TTL
    assert_problem(client.resolve(alias), 404)
    client.create_ok("https://example.com/after-404", alias=alias)
    r = wait_until("the new alias to resolve",
                   lambda: (lambda r: r if r.status_code == 301 else None)(client.resolve(alias)),
                   NEGATIVE_TTL + 1.5, interval=0.05)
    assert r.headers["Location"] == "https://example.com/after-404"


def test_negative_cache_on_another_server(client, second_server):
    other = stk.Client(second_server)
    alias = unique("neg2")
    assert_problem(other.resolve(alias), 404)
    client.create_ok("https://example.com/after-404-elsewhere", alias=alias)
    r = wait_until("the other server to resolve the new alias",
                   lambda: (lambda r: r if r.status_code == 301 else None)(other.resolve(alias)),
                   NEGATIVE_TTL + 1.5, interval=0.05)
    assert r.headers["Location"] == "https://example.com/after-404-elsewhere"


def test_expired_links_404_at_once(client, second_server):
    other = stk.Client(second_server)
    # A ttl counts from the start of the second the link is created in: ttl=3 leaves it more
    # than two seconds, so both servers surely see it live (and cache it) before it expires.
    visited = client.create_ok("https://example.com/short-lived-visited", ttl=3)
    unvisited = client.create_ok("https://example.com/short-lived", ttl=1)
    alias = unique("exp")
    aliased = client.create_ok("https://example.com/short-lived-alias", ttl=1, alias=alias)
    for c in (client, other):
        r = c.resolve(visited["key"])
        assert r.status_code == 301, r.text
        assert r.headers["Location"] == visited["url"]
    deadline = max(parse_time(b["expires_at"]) for b in (visited, unvisited, aliased))
    time.sleep(max(0.0, deadline - time.time()) + 1.2)
    for c in (client, other):
        for b in (visited, unvisited, aliased):
            assert_problem(c.resolve(b["key"]), 404)
            r = c.resolve(b["key"], headers={"Accept": "text/html"})
            assert r.status_code == 404
    # An expired alias is never handed out again: browsers may still hold its 301.
    assert_problem(client.create("https://example.com/alias-reborn", alias=alias), 409)
    for c in (client, other):
        assert_problem(c.resolve(alias), 404)


def test_cache_control_never_outlives_the_link(client, second_server):
    other = stk.Client(second_server)
    b = client.create_ok("https://example.com/cc", ttl=5)
    expires = parse_time(b["expires_at"])
    for i in range(4):
        for c in (client, other):
            t = int(time.time())
            r = c.resolve(b["key"])
            if r.status_code == 404:
                assert time.time() >= expires - 1
                continue
            assert r.status_code == 301, r.text
            age = stk.cache_control_max_age(r)
            assert age is not None, f"no Cache-Control max-age: {r.headers}"
            assert age <= expires - t, f"max-age {age} but only {expires - t}s left"
        time.sleep(0.7)
    # With an explicit expires_at a few seconds away, too.
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
    b = client.create_ok("https://example.com/cc-at", expires_at=when)
    expires = parse_time(b["expires_at"])
    t = int(time.time())
    r = client.resolve(b["key"])
    age = stk.cache_control_max_age(r)
    assert r.status_code == 301 and age is not None and age <= expires - t, r.headers
    # A year-long link may be cached, but not for longer than it lives.
    b = client.create_ok("https://example.com/cc-long")
    r = client.resolve(b["key"])
    age = stk.cache_control_max_age(r)
    assert age is not None and age <= parse_time(b["expires_at"]) - int(time.time()) + 1


def test_read_returns_visits(client, second_server, anon):
    other = stk.Client(second_server)
    key = client.create_ok("https://example.com/visited")["key"]
    assert client.read(key).json()["visits"] == 0
    for c in (anon, anon, other, anon, other):
        assert c.resolve(key).status_code == 301
    wait_until("read to show 5 visits",
               lambda: client.read(key).json()["visits"] == 5, 3.0, interval=0.1)
    # Counted once each, not again on later flushes.
    time.sleep(0.6)
    assert client.read(key).json()["visits"] == 5
    # Misses and reads are not visits.
    client.read(key)
    assert_problem(anon.resolve("zzzzzzz"), 404)
    time.sleep(0.5)
    assert client.read(key).json()["visits"] == 5


def test_alias_of_a_deleted_link_is_not_handed_out_again(client, second_server):
    other = stk.Client(second_server)
    alias = unique("again")
    client.create_ok("https://example.com/old-target", alias=alias)
    for c in (client, other):
        assert c.resolve(alias).headers["Location"] == "https://example.com/old-target"
    assert client.delete(alias).status_code == 204
    # Browsers that saw the 301 keep it: the key must never point anywhere else.
    assert_problem(client.create("https://example.com/new-target", alias=alias), 409)
    assert_problem(client.resolve(alias), 404)
    wait_until("the other server to answer 404 after the delete",
               lambda: other.resolve(alias).status_code == 404, NEGATIVE_TTL + 1.5)


def test_delete_under_concurrent_redirects(client, server, second_server):
    """Readers that looked a link up in PostgreSQL just before a delete must not put it back
    into the cache after the delete: no redirect that starts after the delete returned may
    answer 301 on this server, nor on another one a second later."""
    late = []
    for rnd in range(8):
        key = client.create_ok(f"https://example.com/race-delete/{rnd}")["key"]
        done = threading.Event()
        deleted_at = [None]
        seen = []

        def reader():
            c = stk.Client(server)
            while not done.is_set():
                t = time.monotonic()
                code = c.resolve(key).status_code
                seen.append((t, code))
        threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
        for th in threads:
            th.start()
        time.sleep(0.1)
        assert client.delete(key).status_code == 204
        deleted_at[0] = time.monotonic()
        time.sleep(0.2)
        done.set()
        for th in threads:
            th.join(30)
        late += [(rnd, key, code) for t, code in seen if t > deleted_at[0] and code != 404]
        time.sleep(0.05)
        for c in (client, stk.Client(second_server)):
            if c.resolve(key).status_code != 404:
                late.append((rnd, key, "still resolves"))
    assert not late, f"deleted links answered after the delete returned: {late[:5]}"
