"""kgs killed with kill -9 again and again while 4 clients create 20,000 links: afterwards every
key is distinct, every link resolves, and every generated key comes from an index kgs
claimed."""

import http.client
import random
import threading
import time

import pytest
import requests

import stack as stk

THREADS = 4
PER_THREAD = 5000
TOTAL = THREADS * PER_THREAD
DEADLINE = 420  # seconds for the whole create phase, far above what it needs


@pytest.fixture(scope="module")
def kstack():
    # The smallest kgs buffer (the default holds 100,000): every kill -9 throws away what kgs
    # holds in memory, and the test's key checks cost time per claimed index.
    with stk.running_stack("kgs-kill", kgs_env={"KGS_MEMORY_KEYS": 10000}) as st:
        yield st


def test_kgs_kill9_while_4_clients_create_20000_links(kstack):
    api_key = kstack.create_apikey("kill-test")[0]
    base = kstack.server.base_url
    stop = threading.Event()
    failures = []
    results = [[] for _ in range(THREADS)]
    retries = [0] * THREADS
    kills = []
    end_by = time.monotonic() + DEADLINE

    def creator(t):
        s = stk.session()
        headers = {"Authorization": f"Bearer {api_key}"}
        try:
            for i in range(PER_THREAD):
                url = f"https://example.com/kill/{t}/{i}"
                while True:
                    if stop.is_set():
                        return
                    if time.monotonic() > end_by:
                        raise AssertionError(f"thread {t} still at link {i} at the deadline")
                    try:
                        r = s.post(base + "/api/v1/urls", json={"url": url}, headers=headers,
                                   allow_redirects=False, timeout=stk.HTTP_TIMEOUT)
                    except requests.ConnectionError:
                        retries[t] += 1
                        time.sleep(0.05)
                        continue
                    if r.status_code == 503:
                        stk.assert_problem(r, 503)
                        retries[t] += 1
                        time.sleep(0.03)
                        continue
                    break
                if r.status_code != 201:
                    raise AssertionError(f"thread {t} link {i}: {r.status_code} {r.text}")
                body = r.json()
                if body.get("url") != url:
                    raise AssertionError(f"thread {t} link {i}: url {body.get('url')!r}")
                results[t].append((body["key"], url))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            failures.append(f"creator {t}: {e!r}")
            stop.set()

    def killer():
        try:
            while not stop.wait(random.uniform(0.3, 0.7)):
                kstack.kgs.kill9()
                kills.append(time.monotonic())
                kstack.kgs.start()
        except BaseException as e:  # noqa: BLE001
            failures.append(f"killer: {e!r}")
            stop.set()

    creators = [threading.Thread(target=creator, args=(t,), daemon=True)
                for t in range(THREADS)]
    k = threading.Thread(target=killer, daemon=True)
    t0 = time.monotonic()
    try:
        for th in creators:
            th.start()
        k.start()
        for th in creators:
            th.join(DEADLINE + 60)
    finally:
        # Also on Ctrl-C: no thread may restart kgs while the stack is being torn down.
        stop.set()
        k.join(120)
        for th in creators:
            th.join(30)
    elapsed = time.monotonic() - t0
    print(f"\n{TOTAL} creates in {elapsed:.1f}s with {len(kills)} kill -9 of kgs, "
          f"{sum(retries)} retries")
    assert not failures, "\n".join(failures)
    assert not any(th.is_alive() for th in creators) and not k.is_alive(), "threads hung"
    assert kstack.kgs.proc.alive(), "kgs is not running after the test"
    assert len(kills) >= 3, f"only {len(kills)} kills: the test proved little"

    links = dict(kv for part in results for kv in part)
    all_keys = [key for part in results for key, _ in part]
    assert len(all_keys) == TOTAL
    assert len(set(all_keys)) == TOTAL, f"{TOTAL - len(set(all_keys))} keys issued twice"
    bad = [key for key in all_keys if not stk.KEY_RE.match(key)]
    assert not bad, bad[:10]

    # The database agrees: exactly these rows, every key a claimed kgs key.
    assert kstack.count_urls() == TOTAL
    stored = dict(line.split("|", 1) for line in kstack.psql(
        "SELECT key, url FROM urls").splitlines())
    assert stored == links
    foreign = kstack.issued_by_kgs(all_keys)
    assert not foreign, f"{len(foreign)} keys were not made from claimed indices: {foreign[:5]}"

    # Every link resolves, to its own URL.
    items = list(links.items())
    wrong = []

    def resolver(part):
        # http.client rather than requests: a tenth of the client CPU per request, and 20,000
        # of them are checked.
        conn = http.client.HTTPConnection("127.0.0.1", kstack.server.port,
                                          timeout=stk.HTTP_TIMEOUT)
        try:
            for key, url in part:
                try:
                    conn.request("GET", f"/{key}")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 301 or r.getheader("Location") != url:
                        wrong.append((key, url, r.status, r.getheader("Location")))
                except (OSError, http.client.HTTPException) as e:
                    wrong.append((key, url, repr(e)))
                    conn.close()
        finally:
            conn.close()
    parts = [items[i::THREADS] for i in range(THREADS)]
    ths = [threading.Thread(target=resolver, args=(p,), daemon=True) for p in parts]
    for th in ths:
        th.start()
    for th in ths:
        th.join(300)
    assert not any(th.is_alive() for th in ths), "resolvers hung"
    assert not wrong, f"{len(wrong)} links do not resolve, e.g. {wrong[:5]}"
