"""Several kgs for one server (KGS_SOCKET "a.sock,b.sock") and the key buffer refilled in the
background: the kgs the server takes keys from is killed with kill -9 under create load and
no create fails; every key is distinct and redirects; /readyz stays 200 while one kgs
answers; a bad KGS_SOCKET stops the server at start."""

import subprocess
import tempfile
import threading
import time

import pytest
import requests

import stack as stk

THREADS = 4
SECONDS = 3  # of create load before the kill
BUFFER_MAX = 2 * 1024  # keys a server holds at most (KEYS_BATCH in server.c, twice)


@pytest.fixture(scope="module")
def kstack():
    with stk.running_stack("kgs-failover", kgs_env={"KGS_MEMORY_KEYS": 10000}) as st:
        st.add_kgs("kgs2", {"KGS_MEMORY_KEYS": 10000})
        yield st


def kgs_sockets(st):
    return f"{st.kgs.sock}, {st.extra_kgs[0].sock}"


def test_kill9_of_the_kgs_in_use_fails_no_create(kstack):
    api_key = kstack.create_apikey("kgs-failover")[0]
    srv = kstack.start_shortener(KGS_SOCKET=kgs_sockets(kstack))
    # A server whose only kgs is the one about to die: shows the test can fail.
    lone = kstack.start_shortener(KGS_SOCKET=str(kstack.kgs.sock))
    stop = threading.Event()
    failures, results = [], [[] for _ in range(THREADS)]

    def creator(t):
        s = stk.session()
        headers = {"Authorization": f"Bearer {api_key}"}
        i = 0
        while not stop.is_set():
            url = f"https://example.com/kgs-failover/{t}/{i}"
            try:
                r = s.post(srv.url("/api/v1/urls"), json={"url": url}, headers=headers,
                           allow_redirects=False, timeout=stk.HTTP_TIMEOUT)
            except requests.RequestException as e:
                failures.append(f"thread {t} link {i}: {e!r}")
                return
            if r.status_code != 201:
                failures.append(f"thread {t} link {i}: {r.status_code} {r.text}")
                return
            results[t].append((r.json()["key"], url))
            i += 1

    threads = [threading.Thread(target=creator, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    def made():
        return sum(len(part) for part in results)
    try:
        time.sleep(SECONDS / 2)
        kstack.kgs.kill9()
        at_kill = made()
        # More creates after the kill than the buffer holds (2 batches of 1024): keys had to
        # come from the other kgs.
        stk.wait_until("creates after the kill to outnumber the buffer",
                       lambda: failures or made() - at_kill > BUFFER_MAX, 120, interval=0.2)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=60)
    try:
        assert not failures, failures[:5]
        created = [kv for part in results for kv in part]
        keys = [k for k, _ in created]
        assert len(set(keys)) == len(keys), "a key was handed out twice"
        assert stk.Client(srv).resolve(created[-1][0]).status_code == 301
        # Every key is a link in PostgreSQL, once.
        assert int(kstack.psql("SELECT count(*) FROM urls WHERE url LIKE "
                               "'https://example.com/kgs-failover/%'")) == len(keys)
        # One kgs answers: ready. The lone server's only kgs is dead: not ready, for kgs.
        assert stk.Client(srv).request("GET", "/readyz").status_code == 200

        def lone_not_ready():
            r = stk.Client(lone).request("GET", "/readyz")
            return r.status_code == 503 and "kgs" in r.json()["detail"]
        stk.wait_until("the lone server to call kgs unavailable", lone_not_ready, 10)
    finally:
        kstack.kgs.start()
        lone.stop()
        srv.stop()


def test_a_missing_first_socket_is_skipped(kstack):
    """ENOENT on the first socket: keys come from the second at once."""
    api_key = kstack.create_apikey("kgs-missing")[0]
    missing = kstack.root / "no-such-kgs.sock"
    srv = kstack.start_shortener(KGS_SOCKET=f"{missing},{kstack.extra_kgs[0].sock}")
    try:
        c = stk.Client(srv, api_key)
        for i in range(3):
            c.create_ok(f"https://example.com/kgs-missing/{i}")
        assert c.request("GET", "/readyz").status_code == 200
    finally:
        srv.stop()


@pytest.mark.parametrize("value", [",", "/tmp/a.sock,,/tmp/b.sock", " ", "/tmp/" + "x" * 200],
                         ids=["only-comma", "empty-item", "blank", "too-long"])
def test_bad_kgs_socket_exits_2(value):
    with tempfile.TemporaryDirectory() as cwd:
        res = subprocess.run([str(stk.BIN_DIR / "shortener")], cwd=cwd,
                             env=stk.base_env({"KGS_SOCKET": value}), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, f"exit {res.returncode}: {res.stderr}"
    assert "KGS_SOCKET" in res.stderr, res.stderr
