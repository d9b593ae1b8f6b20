"""The cluster loses one part at a time under client load through HAProxy (issue 10). Each
test checks what clients saw and ends with every link that ever got 201 redirecting to its
URL. The order is deliberate: the PostgreSQL failover, which moves the primary for good, runs
last."""

import http.client
import subprocess
import time

import cluster as cl
from faultload import (REDIRECTS, Load, assert_all_redirect, make_links, record, session)


def wait_for(what, pred, timeout, interval=0.05):
    return cl.wait_for(what, pred, timeout, interval)


def test_tls_and_forwarded_for(whole):
    """The HTTPS frontend with curl --cacert; TLS below 1.2 refused; the client's own
    X-Forwarded-For never decides its address (failed authentications are charged to the
    address HAProxy saw, however the header is forged)."""
    c = whole
    res = subprocess.run(["curl", "-sS", "--cacert", str(c.cert), "-o", "/dev/null",
                          "-w", "%{http_code} %{ssl_verify_result}", f"{c.https_url}/readyz"],
                         capture_output=True, text=True, timeout=30)
    assert res.stdout == "200 0", f"curl --cacert over HTTPS: {res.stdout} {res.stderr}"
    res = subprocess.run(["curl", "-sS", "--cacert", str(c.cert), "--tls-max", "1.1",
                          "-o", "/dev/null", f"{c.https_url}/readyz"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0, "HAProxy accepted TLS 1.1"
    key = c.api_key
    res = subprocess.run(["curl", "-sS", "--cacert", str(c.cert), "-H",
                          f"Authorization: Bearer {key}", "-d", "url=https://example.com/tls",
                          f"{c.https_url}/api/v1/urls"], capture_output=True, text=True,
                         timeout=30)
    assert '"short_url":"' + c.https_url in res.stdout, res.stdout + res.stderr

    # From 127.0.0.77, each request claiming another address: if the claim won, no address
    # would ever be refused.
    statuses = []
    for i in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", c.ports["http"], timeout=10,
                                          source_address=("127.0.0.77", 0))
        conn.request("POST", "/api/v1/urls", body='{"url":"https://example.com/"}',
                     headers={"Authorization": "Bearer sk_not_a_key",
                              "Content-Type": "application/json",
                              "X-Forwarded-For": f"203.0.113.{i % 250}"})
        statuses.append(conn.getresponse().status)
        conn.close()
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429, f"forged X-Forwarded-For won: {sorted(set(statuses))}"
    assert set(statuses) <= {401, 429}, statuses


def test_1_kill_one_shortener(whole):
    """kill -9 one shortener under redirect load (through the HTTPS frontend): no failed
    redirect; it leaves the pool within 2 s and takes requests again once restarted."""
    c = whole
    verify = str(c.cert)
    links = make_links(c.https_url, c.api_key, 40, verify=verify)
    with Load(c.https_url, c.api_key, links, redirect_threads=4, verify=verify) as load:
        time.sleep(1.5)
        c.kill9("shortener2")
        killed = time.monotonic()
        wait_for("s2 out of the pool", lambda: c.server_states("shorteners")["s2"]
                 .startswith("DOWN"), 10)
        left = time.monotonic() - killed
        time.sleep(1.0)
        before = _served(c, "s2")
        c.start_shortener(2)
        wait_for("s2 back in the pool", lambda: c.server_states("shorteners")["s2"] == "UP", 30)
        back = time.monotonic()
        wait_for("s2 serving again", lambda: _served(c, "s2") > before, 10)
        rejoined = time.monotonic() - back
        time.sleep(1.0)
    record("kill_one_shortener", redirects=len(load.of("redirect")),
           failed_redirects=len(load.failures("redirect")),
           seconds_to_leave_pool=round(left, 2), seconds_to_serve_after_up=round(rejoined, 2))
    assert load.of("redirect"), "no load ran"
    assert not load.failures("redirect"), load.failures("redirect")[:10]
    assert left <= 2.0, f"the dead instance stayed in the pool {left:.2f}s"
    assert_all_redirect(c.https_url, links, verify=verify)


def _served(c, server):
    """Sessions HAProxy has sent to a server of the shorteners backend so far."""
    lines = c.haproxy_cmd("show stat").splitlines()
    head = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        if row.get("pxname") == "shorteners" and row.get("svname") == server:
            return int(row["stot"] or 0)
    return 0


def test_5_rolling_restart(whole):
    """Every shortener restarted, one at a time, under redirect load: no failed redirect."""
    c = whole
    links = make_links(c.http_url, c.api_key, 40)
    with Load(c.http_url, c.api_key, links, redirect_threads=4) as load:
        time.sleep(1.0)
        for i in range(1, cl.N_SHORTENERS + 1):
            c.stop(f"shortener{i}")
            c.start_shortener(i)
            wait_for(f"s{i} back in the pool",
                     lambda: c.server_states("shorteners")[f"s{i}"] == "UP", 30)
        time.sleep(1.0)
    record("rolling_restart", redirects=len(load.of("redirect")),
           failed_redirects=len(load.failures("redirect")))
    assert load.of("redirect"), "no load ran"
    assert not load.failures("redirect"), load.failures("redirect")[:10]
    assert_all_redirect(c.http_url, links)


def _metric(c, i, name):
    text = session().get(c.instance_url(i) + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_4_kill_one_kgs(whole):
    """kill -9 one kgs under create load: no create fails for lack of keys. The load goes on
    until every instance has fetched a new batch of keys after the kill."""
    c = whole
    with Load(c.http_url, c.api_key, {}, redirect_threads=0, create_threads=4) as load:
        time.sleep(1.0)
        last = {i: _metric(c, i, "shortener_keys_buffered")
                for i in range(1, cl.N_SHORTENERS + 1)}
        assert None not in last.values(), "no shortener_keys_buffered in /metrics"
        c.kill9("kgs1")
        killed_at = load.now()
        fetched = set()

        def refilled():
            if load.failures("create"):
                return True  # no point waiting: the test has failed
            for i in last:
                now = _metric(c, i, "shortener_keys_buffered")
                if now > last[i]:  # the buffer grew: a batch came from a kgs
                    fetched.add(i)
                last[i] = now
            return len(fetched) == len(last)
        wait_for("every instance to fetch keys after the kill", refilled, 90, 0.2)
        time.sleep(0.5)
    after = [o for o in load.of("create") if o.start >= killed_at]
    record("kill_one_kgs", creates=len(load.of("create")), creates_after_kill=len(after),
           failed_creates=len(load.failures("create")))
    assert after, "no creates after the kill"
    assert not load.failures("create"), load.failures("create")[:10]
    assert_all_redirect(c.http_url, load.created)


def test_6_stop_the_replica(whole):
    """The standby stops: redirect misses are read from the primary, /readyz stays 200."""
    c = whole
    links = make_links(c.http_url, c.api_key, 20)
    primary = c.primary_node()
    standby = 3 - primary
    with Load(c.http_url, c.api_key, links, redirect_threads=2) as load:
        c.stop(f"patroni{standby}")
        wait_for("the standby out of HAProxy's replica backend",
                 lambda: c.server_states("pg_replica")[f"pg{standby}"].startswith("DOWN"), 10)
        s = session()
        fresh = {}
        for n in range(20):
            url = f"https://example.com/no-replica/{n}/{time.time_ns()}"
            # Until Patroni drops the synchronous standby, a commit may wait for it; a 503
            # with Retry-After is a fair answer meanwhile.
            deadline = time.monotonic() + 30
            while True:
                r = s.post(c.http_url + "/api/v1/urls", json={"url": url}, timeout=20,
                           headers={"Authorization": f"Bearer {c.api_key}"})
                if r.status_code == 201 or time.monotonic() > deadline:
                    break
                assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
                time.sleep(0.2)
            assert r.status_code == 201, f"create without a standby: {r.status_code} {r.text}"
            key = r.json()["key"]
            fresh[key] = url
            # A link never looked up is a miss everywhere: it is read through the replica
            # frontend, which now leads to the primary.
            r = s.get(f"{c.http_url}/{key}", allow_redirects=False, timeout=10)
            assert r.status_code in REDIRECTS and r.headers["Location"] == url, \
                f"miss without a replica: {r.status_code} {r.text}"
        for i in range(1, cl.N_SHORTENERS + 1):
            r = s.get(c.instance_url(i) + "/readyz", timeout=10)
            assert r.status_code == 200, f"shortener{i} /readyz without a replica: {r.text}"
    record("stop_the_replica", redirects=len(load.of("redirect")),
           failed_redirects=len(load.failures("redirect")), misses_read=len(fresh))
    assert not load.failures("redirect"), load.failures("redirect")[:10]
    c.start_patroni(standby)
    wait_for("the standby back as synchronous standby", lambda: c.rest(standby, "/sync") == 200,
             120, 0.3)
    assert_all_redirect(c.http_url, {**links, **fresh})


def test_3_kill_the_redis_master(whole):
    """kill -9 the Redis master under load: Sentinel promotes the replica, redirects keep
    working, links deleted during the failover are gone from every instance once the new
    master answers, and rate limits are kept in Redis again."""
    c = whole
    links = make_links(c.http_url, c.api_key, 40)
    doomed = make_links(c.http_url, c.api_key, 6, tag="doomed")
    s = session()
    for key in doomed:  # cached in every instance (and its in-process cache)
        for i in range(1, cl.N_SHORTENERS + 1):
            for _ in range(3):
                s.get(f"{c.instance_url(i)}/{key}", allow_redirects=False, timeout=10)
    old_port = c.sentinel_master()
    old = 1 if old_port == c.ports["redis1"] else 2
    with Load(c.http_url, c.api_key, links, redirect_threads=3, create_threads=1) as load:
        time.sleep(1.0)
        c.kill9(f"redis{old}")
        killed = time.monotonic()
        deleted = {}
        for key in doomed:
            deadline = time.monotonic() + 30
            while True:
                r = s.delete(f"{c.http_url}/api/v1/urls/{key}", timeout=10,
                             headers={"Authorization": f"Bearer {c.api_key}"})
                if r.status_code in (200, 204) or time.monotonic() > deadline:
                    break
                assert r.status_code == 503 and r.headers.get("Retry-After"), \
                    f"delete during the failover: {r.status_code} {r.text}"
                time.sleep(0.2)
            assert r.status_code in (200, 204), f"delete: {r.status_code} {r.text}"
            deleted[key] = time.monotonic() - killed
        wait_for("Sentinel to promote the replica",
                 lambda: c.sentinel_master() not in (None, old_port)
                 and c.redis_role(3 - old) == "master", 60, 0.05)
        promoted = time.monotonic() - killed

        def gone_everywhere():
            return all(s.get(f"{c.instance_url(i)}/{key}", allow_redirects=False,
                             timeout=10).status_code == 404
                       for key in doomed for i in range(1, cl.N_SHORTENERS + 1))
        wait_for("the deleted links gone from every instance", gone_everywhere, 10, 0.1)
        gone = time.monotonic() - killed
        time.sleep(1.5)
    # Rate limits in Redis again: a key limited to 5/s is refused after its burst, and the
    # new master holds rate-limit state.
    res = c.ctl("apikey", "create", f"slow-{time.time_ns()}", "--rate", "5/s")
    assert res.returncode == 0, res.stdout + res.stderr
    slow = res.stdout.strip().splitlines()[-1]
    statuses = [s.post(c.http_url + "/api/v1/urls", json={"url": "https://example.com/rl"},
                       headers={"Authorization": f"Bearer {slow}"}, timeout=10).status_code
                for _ in range(20)]
    master_keys = cl.redis_cmd(c.ports[f"redis{3 - old}"], "KEYS", "rl:*")
    fallback = [_metric(c, i, "shortener_ratelimit_fallback")
                for i in range(1, cl.N_SHORTENERS + 1)]
    record("kill_redis_master", redirects=len(load.of("redirect")),
           failed_redirects=len(load.failures("redirect")),
           creates=load.summary("create"), failed_creates=len(load.failures("create")),
           seconds_to_promotion=round(promoted, 2),
           seconds_until_deleted_links_gone_everywhere=round(gone, 2))
    assert not load.failures("redirect"), load.failures("redirect")[:10]
    assert 429 in statuses, f"no rate limit after the failover: {statuses}"
    assert "rl:" in master_keys, f"no rate-limit state on the new master: {master_keys!r}"
    assert all(f == 0 for f in fallback), f"instances still limiting alone: {fallback}"
    for key in doomed:
        for i in range(1, cl.N_SHORTENERS + 1):
            r = s.get(f"{c.instance_url(i)}/{key}", allow_redirects=False, timeout=10)
            assert r.status_code == 404, f"deleted {key} served by shortener{i}: {r.status_code}"
    c.start_redis(old)
    wait_for("the old master back as a replica", c.redis_whole, 60, 0.2)
    assert_all_redirect(c.http_url, {**links, **load.created})


def test_2_kill_the_postgres_primary(whole):
    """kill -9 the PostgreSQL primary (Patroni and PostgreSQL: the machine dies) under create
    and redirect load: the standby is promoted; creates answer 201 or 503 with Retry-After,
    never hang, never a 201 that is later missing; cached redirects never fail."""
    c = whole
    links = make_links(c.http_url, c.api_key, 40)
    primary = c.primary_node()
    with Load(c.http_url, c.api_key, links, redirect_threads=3, create_threads=3) as load:
        time.sleep(2.0)
        c.kill_pg_node(primary)
        killed_at = load.now()
        killed = time.monotonic()
        wait_for("the standby promoted", lambda: c.rest(3 - primary, "/primary") == 200, 90,
                 0.05)
        promoted = time.monotonic() - killed

        def creating_again():
            return any(o.status == 201 and o.start > killed_at for o in load.of("create"))
        wait_for("creates to succeed again", creating_again, 60, 0.1)
        time.sleep(3.0)
    gap = load.longest_gap("create", 201, after=max(0.0, killed_at - 1.0))
    record("kill_postgres_primary", seconds_without_creates=gap,
           seconds_to_promotion=round(promoted, 2), creates=load.summary("create"),
           failed_creates=len(load.failures("create", allow_503=True)),
           creates_503=load.count("create", 503),
           redirects=len(load.of("redirect")), failed_redirects=len(load.failures("redirect")),
           slowest_create_s=load.max_latency("create"))
    assert load.count("create", 201), "no create succeeded"
    assert not load.failures("create", allow_503=True), load.failures("create", True)[:10]
    assert not load.failures("redirect"), load.failures("redirect")[:10]
    # The old primary comes back as the new standby (rewound or copied afresh).
    c.start_patroni(primary)
    wait_for("the old primary back as synchronous standby",
             lambda: c.rest(primary, "/sync") == 200, 120, 0.3)
    assert_all_redirect(c.http_url, {**links, **load.created})
    assert c.psql("SELECT count(*) FROM urls WHERE key = ANY('{%s}')" % ",".join(load.created)) \
        == str(len(load.created))
