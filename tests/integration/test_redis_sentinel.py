"""REDIS_SENTINELS + REDIS_MASTER_NAME with real processes: a Redis master, a replica and three
redis-sentinel (down-after 1 s). The master is killed with kill -9 under redirect load:
redirects keep working throughout (from PostgreSQL while no master answers), then the server
uses the new master for the cache, rate limits (their scripts loaded again) and pub/sub (the
hot cache comes back on); a manual failover (the old master demoted, not dead) is followed
too; bad Sentinel settings stop the server at start."""

import subprocess
import tempfile
import threading
import time

import pytest
import requests

import stack as stk
from linkutil import metric

LINKS = 40


@pytest.fixture(scope="module")
def sstack():
    with stk.running_stack("sentinel") as st:
        st.add_sentinels()
        yield st


@pytest.fixture(scope="module")
def group(sstack):
    return sstack.sentinel_groups[0]


@pytest.fixture(scope="module")
def srv(sstack, group):
    return sstack.start_shortener(**group.env)


def failover_done(group, old_port):
    """The port of the new master once sentinel names another one and it says it is master."""
    port = group.master_port()
    if port is None or port == old_port:
        return None
    try:
        return port if group.node(port).cli("ROLE").splitlines()[0] == "master" else None
    except RuntimeError:
        return None


def redirect_load(srv, links, stop, failures, counts):
    s = stk.session()
    while not stop.is_set():
        for key, url in links:
            try:
                r = s.get(srv.url("/" + key), allow_redirects=False, timeout=stk.HTTP_TIMEOUT)
            except requests.RequestException as e:
                failures.append(f"{key}: {e!r}")
                continue
            counts[0] += 1
            if r.status_code != 301 or r.headers.get("Location") != url:
                failures.append(f"{key}: {r.status_code} {r.headers.get('Location')}")


def new_master_serves(sstack, srv, node):
    """What the server does now lands on node: a fresh link's cache entry, a fresh key's
    rate-limit counter (its script loaded there), and the hot cache is on (subscribed)."""
    # A slow rate: its counter lives for n * 3.6 s after n requests (1000000/s: a microsecond).
    api_key, key_id = sstack.create_apikey(rate="1000/h")
    c = stk.Client(srv, api_key)
    link = c.create_ok("https://example.com/sentinel/after")
    # Followed again until it is cached: a redirect answered while the server still distrusts
    # Redis (its resync after the switch, a moment) comes from PostgreSQL and caches nothing.
    stk.wait_until("the new link's cache entry on the new master", lambda: (
        c.resolve(link["key"]).status_code == 301
        and node.cli("EXISTS", f"u:{link['key']}") == "1"), 20, interval=0.2)
    stk.wait_until("rate limits in Redis again", lambda: (
        c.read(link["key"]).status_code == 200
        and node.cli("EXISTS", f"rl:k:{key_id}") == "1"
        and metric(srv, "shortener_ratelimit_fallback") == 0), 20, interval=0.2)
    stk.wait_until("the hot cache on again (subscribed to the new master)",
                   lambda: metric(srv, "shortener_hot_cache_enabled") == 1, 20, interval=0.2)
    return link


def test_master_killed_under_redirect_load(sstack, group, srv):
    c = stk.Client(srv, sstack.create_apikey()[0])
    links = [(l["key"], l["url"]) for l in
             (c.create_ok(f"https://example.com/sentinel/{i}") for i in range(LINKS))]
    for key, _ in links:
        assert c.resolve(key).status_code == 301
    old = group.master
    assert old.cli("EXISTS", f"u:{links[0][0]}") == "1", "the server does not use the master"
    stop, failures, counts = threading.Event(), [], [0]
    threads = [threading.Thread(target=redirect_load, args=(srv, links, stop, failures, counts))
               for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        old.proc.kill9()
        killed_at = counts[0]
        port = stk.wait_until("sentinel to promote the replica",
                              lambda: failover_done(group, old.port), 60, interval=0.2)
        node = group.node(port)
        new_master_serves(sstack, srv, node)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, failures[:5]
    assert counts[0] > killed_at, "no redirect was made after the kill"
    for key, url in links:
        r = c.resolve(key)
        assert r.status_code == 301 and r.headers["Location"] == url


def test_manual_failover_demotes_a_live_master(sstack, group, srv):
    """The old master lives on as a replica: connections to it are cut by Sentinel, a write
    that reaches it gets READONLY; either way the server asks Sentinel again."""
    # The master killed above comes back as a replica of the new one (sentinel reconfigures it).
    old = next(n for n in (group.master, group.replica) if not n.proc.alive())
    old.proc.start()
    current = group.master_port()
    stk.wait_until("the old master to be a replica in sync", lambda: (
        "master_link_status:up" in old.cli("INFO", "replication")), 60, interval=0.25)
    c = stk.Client(srv, sstack.create_apikey()[0])
    link = c.create_ok("https://example.com/sentinel/manual")
    assert c.resolve(link["key"]).status_code == 301
    stk.wait_until("every sentinel to know the replica", lambda: all(
        sn.cli("SENTINEL", "replicas", group.name).strip() for sn in group.sentinels), 30)
    out = group.sentinels[0].cli("SENTINEL", "failover", group.name)
    assert out == "OK", out
    port = stk.wait_until("the manual failover", lambda: failover_done(group, current), 60,
                          interval=0.2)
    node = group.node(port)
    # Deletes and creates work on the new master, and a delete is seen at once.
    assert c.delete(link["key"]).status_code == 204
    assert c.resolve(link["key"]).status_code == 404
    new_master_serves(sstack, srv, node)
    assert c.resolve(link["key"]).status_code == 404


@pytest.mark.parametrize("env", [
    {"REDIS_SENTINELS": "127.0.0.1:26379"},
    {"REDIS_MASTER_NAME": "m"},
    {"REDIS_SENTINELS": "127.0.0.1:0", "REDIS_MASTER_NAME": "m"},
    {"REDIS_SENTINELS": "127.0.0.1:26379,,127.0.0.1:26380", "REDIS_MASTER_NAME": "m"},
    {"REDIS_SENTINELS": "[::1", "REDIS_MASTER_NAME": "m"},
    {"REDIS_SENTINELS": "127.0.0.1:26379", "REDIS_MASTER_NAME": "two words"},
], ids=["no-name", "no-sentinels", "port-zero", "empty-item", "open-bracket", "blank-in-name"])
def test_bad_sentinel_settings_exit_2(env):
    with tempfile.TemporaryDirectory() as cwd:
        for program in ("shortener", "shortenerctl"):
            args = ["cleanup"] if program == "shortenerctl" else []
            res = subprocess.run([str(stk.BIN_DIR / program), *args], cwd=cwd,
                                 env=stk.base_env({**env, "DATABASE_URL": "host=/nonexistent",
                                                   "SHORTENER_ENV_FILE": "/nonexistent"}),
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=30)
            if program == "shortener":
                assert res.returncode == 2, f"{program} {env}: {res.returncode} {res.stderr}"
                assert "REDIS_" in res.stderr, res.stderr
