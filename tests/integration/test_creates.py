"""Creates go through the link writer: concurrent creates share commits, each is stored
before it is answered, equal aliases racing in one batch give exactly one 201, and a server
stopped while creates are parked answers every one of them before it exits."""

import re
import threading

import pytest
import requests

import stack as stk


@pytest.fixture(scope="module")
def cstack():
    with stk.running_stack("creates") as st:
        st.api_key = st.create_apikey("creates")[0]
        yield st


def metric(server, name):
    text = stk.Client(server).request("GET", "/metrics", auth=False).text
    m = re.search(r"^" + re.escape(name) + r" (\d+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return int(m.group(1))


def run_threads(n, fn):
    errors = []

    def wrap(i):
        try:
            fn(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    assert not errors, "\n".join(errors[:5])


def test_concurrent_creates_share_commits_and_are_all_stored(cstack):
    threads, per = 24, 60
    commits0 = metric(cstack.server, "shortener_create_commits_total")
    batched0 = metric(cstack.server, "shortener_create_batched_total")
    created = [[] for _ in range(threads)]

    def creator(t):
        c = stk.Client(cstack.server, cstack.api_key)
        for i in range(per):
            url = f"https://example.com/batch/{t}/{i}"
            body = c.create_ok(url)
            created[t].append((body["key"], url))

    run_threads(threads, creator)
    pairs = [p for part in created for p in part]
    keys = [k for k, _ in pairs]
    assert len(set(keys)) == threads * per
    # Every answered create is in PostgreSQL, with its own URL.
    listed = ",".join(f"'{k}'" for k in keys)
    stored = dict(line.split("|", 1) for line in cstack.psql(
        f"SELECT key, url FROM urls WHERE key IN ({listed})").splitlines())
    assert stored == dict(pairs)
    commits = metric(cstack.server, "shortener_create_commits_total") - commits0
    batched = metric(cstack.server, "shortener_create_batched_total") - batched0
    assert batched == threads * per
    # 24 clients at once: commits must have carried several creates each.
    assert commits < batched * 0.8, f"{commits} commits for {batched} creates: no sharing"
    assert metric(cstack.server, "shortener_create_queue") == 0


def test_equal_aliases_racing_give_one_201(cstack):
    for rnd in range(5):
        alias = f"race-{rnd}-{threading.get_ident() % 10000}"
        codes = []
        barrier = threading.Barrier(12)

        def racer(i):
            c = stk.Client(cstack.server, cstack.api_key)
            barrier.wait(30)
            r = c.create(f"https://example.com/race/{rnd}/{i}", alias=alias)
            codes.append((r.status_code, r))

        run_threads(12, racer)
        ok = [r for code, r in codes if code == 201]
        taken = [r for code, r in codes if code == 409]
        assert len(ok) == 1 and len(taken) == 11, sorted(c for c, _ in codes)
        for r in taken:
            stk.assert_problem(r, 409)
        winner = ok[0].json()["url"]
        assert stk.Client(cstack.server).resolve(alias).headers["Location"] == winner
        assert cstack.psql(f"SELECT url FROM urls WHERE key = '{alias}'") == winner


def test_a_batch_mixing_good_and_taken_aliases(cstack):
    c = stk.Client(cstack.server, cstack.api_key)
    taken = f"taken-{threading.get_ident() % 100000}"
    c.create_ok("https://example.com/first", alias=taken)
    results = {}

    def creator(i):
        cc = stk.Client(cstack.server, cstack.api_key)
        if i % 2:
            results[i] = cc.create(f"https://example.com/mix/{i}", alias=taken)
        else:
            results[i] = cc.create(f"https://example.com/mix/{i}")

    run_threads(16, creator)
    for i, r in results.items():
        if i % 2:
            stk.assert_problem(r, 409)
        else:
            assert r.status_code == 201, r.text
    assert cstack.psql(f"SELECT url FROM urls WHERE key = '{taken}'") == "https://example.com/first"


def test_stopping_under_load_answers_every_parked_create(cstack):
    srv = cstack.start_shortener()
    stop = threading.Event()
    stopping = threading.Event()  # set just before SIGTERM is sent
    answered, wrong = [], []

    def creator(t):
        c = stk.Client(srv, cstack.api_key)
        i = 0
        while not stop.is_set():
            try:
                r = c.create(f"https://example.com/stopping/{t}/{i}")
            except requests.RequestException:
                return  # the server went away between requests: fine
            if r.status_code == 201:
                answered.append(r.json()["key"])
            elif r.status_code != 503 or not stopping.is_set():
                # Before the stop, every create is made; once it has begun, each one in flight
                # is either made or refused (which of the two depends on when it arrived).
                wrong.append(f"{r.status_code} {r.text[:200]}")
            else:
                try:
                    stk.assert_problem(r, 503)
                except AssertionError as e:
                    wrong.append(str(e))
            i += 1

    threads = [threading.Thread(target=creator, args=(t,), daemon=True) for t in range(12)]
    for t in threads:
        t.start()
    stk.wait_until("some creates", lambda: len(answered) > 200, 30, interval=0.02)
    stopping.set()
    problem = srv.stop()
    stop.set()
    for t in threads:
        t.join(30)
    assert problem is None, problem
    assert not any(t.is_alive() for t in threads)
    assert not wrong, wrong[:5]
    # Nothing answered 201 without being stored.
    listed = ",".join(f"'{k}'" for k in answered)
    assert int(cstack.psql(f"SELECT count(*) FROM urls WHERE key IN ({listed})")) == len(answered)
