"""The live counter, GET /api/v1/urls/{key}/live (API.md "Live counter"): server-sent events of
a link's visit total, to its watchers only, across servers through Redis.

A stack of its own with two shortener instances, a short LIVE_INTERVAL_MS and keep-alive,
and a small per-address limit (LIVE_MAX_PER_ADDRESS), so that every rule shows in seconds.
"""

import json
import os
import queue
import resource
import socket
import subprocess
import threading
import time

import pytest

import stack as stk
from linkutil import client_from, metric, unique

INTERVAL_MS = 200
KEEPALIVE_MS = 400
PER_ADDRESS = 4


@pytest.fixture(scope="module")
def lstack():
    st = stk.Stack("live").start(LIVE_INTERVAL_MS=INTERVAL_MS, LIVE_KEEPALIVE_MS=KEEPALIVE_MS,
                                 LIVE_MAX_PER_ADDRESS=PER_ADDRESS)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture(scope="module")
def servers(lstack):
    second = lstack.start_shortener(LIVE_INTERVAL_MS=INTERVAL_MS, LIVE_KEEPALIVE_MS=KEEPALIVE_MS,
                                    LIVE_MAX_PER_ADDRESS=PER_ADDRESS)
    return lstack.server, second


@pytest.fixture(scope="module")
def keys(lstack):
    owner, _ = lstack.create_apikey(unique("owner-"))
    other, _ = lstack.create_apikey(unique("other-"))
    return owner, other


class Watcher:
    """One SSE stream read on a thread of its own: every event and comment line, with the time
    it arrived. Raw sockets, so that the source address, the chunked framing and the moment of
    each line are all ours to see."""

    def __init__(self, server, key, api_key=None, source="127.0.0.1", extra_headers="",
                 version="HTTP/1.1"):
        self.events = queue.Queue()
        self.status = None
        self.headers = {}
        self.body = b""
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10,
                                             source_address=(source, 0))
        auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        self.sock.sendall((f"GET /api/v1/urls/{key}/live {version}\r\nHost: t\r\n{auth}"
                           f"Accept: text/event-stream\r\n{extra_headers}\r\n").encode())
        self.buf = b""
        self._read_head()
        self.closed = threading.Event()
        if self.status == 200:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip()
                        for k, v in (line.split(":", 1) for line in lines[1:])}
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._recv()
            self.body = self.buf[:n]

    def _chunks(self):
        """The body's bytes, chunk by chunk (Transfer-Encoding: chunked)."""
        while True:
            while b"\r\n" not in self.buf:
                self._recv()
            size_line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return
            while len(self.buf) < size + 2:
                self._recv()
            yield self.buf[:size]
            self.buf = self.buf[size + 2:]

    def _raw(self):
        """The body's bytes as they come (Connection: close, no chunk framing)."""
        if self.buf:
            yield self.buf
            self.buf = b""
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            yield data

    def _run(self):
        text = ""
        chunked = self.headers.get("transfer-encoding") == "chunked"
        try:
            for chunk in (self._chunks() if chunked else self._raw()):
                text += chunk.decode()
                while "\n\n" in text:
                    block, text = text.split("\n\n", 1)
                    now = time.monotonic()
                    if block.startswith(":"):
                        self.events.put((now, "comment", None))
                        continue
                    fields = dict(line.split(": ", 1) for line in block.split("\n"))
                    self.events.put((now, fields.get("event"), json.loads(fields["data"])))
        except (EOFError, OSError):
            pass
        finally:
            self.closed.set()

    def next(self, timeout=10, kind="visits"):
        """The next event of kind (comments skipped unless asked for), or AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} event within {timeout}s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev[1] == kind:
                return ev

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def create(server, api_key, **fields):
    return stk.Client(server, api_key).create_ok(f"https://example.com/{unique('l')}", **fields)


def totals_until(w, want, timeout=15):
    """Reads w's events until one carries total want; returns every event read meanwhile."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        ev = w.next(timeout=max(0.1, deadline - time.monotonic()))
        seen.append(ev[2])
        if ev[2]["total"] == want:
            return seen


def visit(server, key, n):
    c = stk.Client(server)
    for _ in range(n):
        r = c.resolve(key)
        assert r.status_code == 301, r.text


def http_fds(server):
    """The server's descriptors that are TCP connections on its HTTP port (its PostgreSQL and
    Redis connections, made lazily, are on Unix sockets and not counted)."""
    inodes = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == server.port and f[3] != "0A":  # not the listener
            inodes.add(f[9])
    fd_dir = f"/proc/{server.proc.pid}/fd"
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            n += 1
    return n


def test_totals_across_two_servers(servers, keys):
    s1, s2 = servers
    owner, _ = keys
    a = create(s1, owner)["key"]
    b = create(s1, owner)["key"]
    wa1, wa2 = Watcher(s1, a, owner), Watcher(s2, a, owner, source="127.0.0.2")
    wb2 = Watcher(s2, b, owner)
    try:
        for w in (wa1, wa2, wb2):
            assert w.status == 200
            assert w.headers["content-type"] == "text/event-stream"
            assert w.headers["cache-control"] == "no-store"
        # At once: the link's total so far.
        for w, key in ((wa1, a), (wa2, a), (wb2, b)):
            assert w.next()[2] == {"key": key, "total": 0}
        # Visits on both servers, to both links (through every tier: the first misses the
        # caches, the rest come from Redis or the hot cache).
        visit(s1, a, 7)
        visit(s2, a, 5)
        visit(s1, b, 3)
        for w, key, want in ((wa1, a, 12), (wa2, a, 12), (wb2, b, 3)):
            seen = totals_until(w, want)
            assert all(ev["key"] == key for ev in seen), seen
            assert [ev["total"] for ev in seen] == sorted(ev["total"] for ev in seen), seen
        # Nothing about the other link, and nothing more once the totals are right.
        time.sleep(3 * INTERVAL_MS / 1000)
        for w, key in ((wa1, a), (wa2, a), (wb2, b)):
            while not w.events.empty():
                ev = w.events.get()
                assert ev[1] == "comment", ev
        # The total agrees with the link's read once the visits are written.
        c = stk.Client(s1, owner)
        stk.wait_until("visits flushed", lambda: c.read(a).json()["visits"] == 12, 10)
        assert c.read(b).json()["visits"] == 3
    finally:
        for w in (wa1, wa2, wb2):
            w.close()


def test_starting_total_is_the_durable_count(servers, keys):
    s1, s2 = servers
    owner, _ = keys
    key = create(s1, owner)["key"]
    visit(s1, key, 4)
    c = stk.Client(s1, owner)
    stk.wait_until("visits flushed", lambda: c.read(key).json()["visits"] == 4, 10)
    w = Watcher(s2, key, owner)
    try:
        assert w.next()[2] == {"key": key, "total": 4}
        # A later watcher on a server that has one already gets the same total at once.
        w2 = Watcher(s2, key, owner, source="127.0.0.3")
        assert w2.next()[2] == {"key": key, "total": 4}
        w2.close()
    finally:
        w.close()


def test_visits_before_the_first_watcher_are_caught_up(servers, keys):
    """Visits counted (not yet flushed) before anybody watched appear once the link is quiet:
    the total is re-read from PostgreSQL."""
    s1, s2 = servers
    owner, _ = keys
    key = create(s1, owner)["key"]
    visit(s1, key, 3)
    w = Watcher(s2, key, owner)
    try:
        first = w.next()[2]["total"]
        assert first in range(0, 4)
        if first != 3:
            totals_until(w, 3)
        visit(s2, key, 2)
        totals_until(w, 5)
    finally:
        w.close()


@pytest.mark.parametrize("version, headers, chunked", [
    ("HTTP/1.1", "", True), ("HTTP/1.1", "Connection: close\r\n", True),
    ("HTTP/1.0", "", False)])
def test_every_framing_carries_events(servers, keys, version, headers, chunked):
    """libmicrohttpd frames the stream in chunks for HTTP/1.1 and not for HTTP/1.0; the
    events written after the first follow the same framing."""
    s1, _ = servers
    owner, _ = keys
    key = create(s1, owner)["key"]
    w = Watcher(s1, key, owner, extra_headers=headers, version=version)
    try:
        assert w.status == 200
        assert (w.headers.get("transfer-encoding") == "chunked") == chunked, w.headers
        assert w.next()[2] == {"key": key, "total": 0}
        w.next(kind="comment")
        visit(s1, key, 2)
        totals_until(w, 2)
    finally:
        w.close()


def test_keepalive_comment(servers, keys):
    s1, _ = servers
    owner, _ = keys
    key = create(s1, owner)["key"]
    w = Watcher(s1, key, owner)
    try:
        w.next()
        w.next(kind="comment")
        w.next(kind="comment")
    finally:
        w.close()


def test_who_may_watch(servers, keys):
    s1, _ = servers
    owner, other = keys
    private = create(s1, owner)["key"]
    public = create(s1, owner, public_stats=True)["key"]
    # No key, or a bad one: 401, whether the link exists or not.
    for key in (private, "nosuchkey1"):
        w = Watcher(s1, key)
        stk.assert_problem(_as_response(w), 401)
        w.close()
    w = Watcher(s1, private, "sk_not_a_real_key")
    stk.assert_problem(_as_response(w), 401)
    w.close()
    # Another owner's link, an unknown key, a key that cannot be one: 404, the read's answer.
    for key, api_key in ((private, other), ("nosuchkey1", owner), ("bad!key", owner),
                         ("x" * 65, owner)):
        w = Watcher(s1, key, api_key)
        stk.assert_problem(_as_response(w), 404)
        w.close()
    # Only GET.
    r = stk.Client(s1, owner).request("POST", f"/api/v1/urls/{private}/live")
    stk.assert_problem(r, 405)
    # public_stats: anyone, with or without a key; a key sent is checked and counted, as for
    # the link's stats: a bad one is 401, a good one gets its RateLimit fields.
    for api_key in (None, other):
        w = Watcher(s1, public, api_key)
        try:
            assert w.status == 200
            assert w.next()[2] == {"key": public, "total": 0}
            assert ("ratelimit" in w.headers) == (api_key is not None), w.headers
        finally:
            w.close()
    w = Watcher(s1, public, "sk_not_a_real_key")
    stk.assert_problem(_as_response(w), 401)
    w.close()
    r = stk.Client(s1, "sk_not_a_real_key").request("GET", f"/api/v1/urls/{public}/stats")
    stk.assert_problem(r, 401)


class _Resp:
    def __init__(self, w):
        self.status_code = w.status
        self.headers = {k.title(): v for k, v in w.headers.items()}
        self.headers["Content-Type"] = w.headers.get("content-type", "")
        self.text = w.body.decode()

    def json(self):
        return json.loads(self.text)


def _as_response(w):
    return _Resp(w)


def test_per_address_limit(servers, keys):
    s1, _ = servers
    owner, _ = keys
    key = create(s1, owner)["key"]
    held = [Watcher(s1, key, owner, source="127.0.0.7") for _ in range(PER_ADDRESS)]
    try:
        assert all(w.status == 200 for w in held)
        over = Watcher(s1, key, owner, source="127.0.0.7")
        body = stk.assert_problem(_as_response(over), 429)
        assert str(PER_ADDRESS) in body["detail"]
        over.close()
        # Another address is not affected.
        elsewhere = Watcher(s1, key, owner, source="127.0.0.8")
        assert elsewhere.status == 200
        elsewhere.close()
        # A watcher that leaves makes room (once the server noticed, at its next write).
        held.pop().close()

        def admitted():
            w = Watcher(s1, key, owner, source="127.0.0.7")
            if w.status == 200:
                held.append(w)
                return True
            w.close()
            return False
        stk.wait_until("a place for the address again", admitted, 10)
    finally:
        for w in held:
            w.close()


def _churn(server, key, subnet, n, failures):
    for i in range(n):
        try:
            w = Watcher(server, key, source=f"127.0.{subnet}.{i % 250 + 1}")
            if w.status != 200:
                failures.append(w.status)
            else:
                w.next()
            w.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            failures.append(repr(e))
            return


def test_no_leak_after_ten_thousand_watchers(servers, keys):
    s1, _ = servers
    owner, _ = keys
    key = create(s1, owner, public_stats=True)["key"]
    stk.wait_until("no watchers", lambda: metric(s1, "shortener_live_watchers") == 0, 10)
    fds_before = http_fds(s1)
    failures = []
    threads = [threading.Thread(target=_churn, args=(s1, key, 10 + i, 1250, failures))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    stk.wait_until("every watcher forgotten",
                   lambda: metric(s1, "shortener_live_watchers") == 0, 15)
    stk.wait_until(f"the HTTP descriptors back to {fds_before}",
                   lambda: http_fds(s1) <= fds_before, 15)


def test_metrics_count_watchers(servers, keys):
    s1, s2 = servers
    owner, _ = keys
    key = create(s1, owner)["key"]
    stk.wait_until("no watchers", lambda: metric(s2, "shortener_live_watchers") == 0, 10)
    ws = [Watcher(s2, key, owner, source=f"127.0.2.{i + 1}") for i in range(3)]
    try:
        for w in ws:
            w.next()
        assert metric(s2, "shortener_live_watchers") == 3
        # s1 hears of the link being watched on s2, so that it counts its visits live.
        stk.wait_until("s1 knows the link is watched",
                       lambda: metric(s1, "shortener_live_links") >= 1, 10)
    finally:
        for w in ws:
            w.close()


def test_sigterm_with_watchers_attached(lstack, keys):
    owner, _ = keys
    srv = lstack.start_shortener(LIVE_INTERVAL_MS=INTERVAL_MS, LIVE_KEEPALIVE_MS=15000)
    key = create(srv, owner)["key"]
    ws = [Watcher(srv, key, owner, source=f"127.0.3.{i + 1}") for i in range(20)]
    for w in ws:
        w.next()
    problem = srv.stop()
    assert problem is None, problem
    assert srv.proc.popen.returncode == 0
    for w in ws:
        assert w.closed.wait(5), "a stream was not ended"
        w.close()


def test_fd_limit_checked_at_start(lstack):
    """MAX_CONNECTIONS needs that many descriptors: a hard limit too low is a clear error."""
    env = stk.base_env({"DATABASE_URL": lstack.pg.dsn, "REDIS_URL": lstack.redis.url,
                        "KGS_SOCKET": lstack.kgs.sock, "PORT": "1", "MAX_CONNECTIONS": "4096"})

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1000))

    r = subprocess.run([str(stk.BIN_DIR / "shortener")], env=env, preexec_fn=low_limit,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "MAX_CONNECTIONS=4096 needs" in r.stderr and "hard limit is 1000" in r.stderr, r.stderr
    for bad in ("65537", "0", "x"):
        r = subprocess.run([str(stk.BIN_DIR / "shortener"), "--max-connections", bad], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "MAX_CONNECTIONS" in r.stderr.upper(), r.stderr
    for name, bad in (("LIVE_INTERVAL_MS", "0"), ("LIVE_KEEPALIVE_MS", "15001"),
                      ("LIVE_MAX_PER_ADDRESS", "0")):
        r = subprocess.run([str(stk.BIN_DIR / "shortener")], env={**env, name: bad},
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and name in r.stderr, r.stderr
