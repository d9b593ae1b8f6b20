"""Clients that hold connections instead of using them: requests that need a key are refused
before their body is read, a request must arrive whole within REQUEST_TIMEOUT however slowly
it trickles, connections are limited per address, and a slowloris of thousands of connections
from several addresses never keeps a redirect from being answered."""

import http.client
import os
import resource
import selectors
import socket
import threading
import time
from urllib.parse import urlparse

import pytest

import stack as stk

GOOD = "https://example.com/slowloris"


def addr_of(server):
    u = urlparse(server.base_url)
    return u.hostname, u.port


def read_head(s, timeout):
    """The status of the answer on s, or None when the connection ends (or nothing comes in
    timeout seconds) without one."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split()[1])


def metric(server, name, missing_ok=False):
    text = stk.session().get(server.url("/metrics"), timeout=stk.HTTP_TIMEOUT).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    if missing_ok:
        return -1
    raise AssertionError(f"{name} not in /metrics")


# ---------------------------------------------------------------- 401 before the body

@pytest.mark.parametrize("method,path", [("POST", "/api/v1/urls"), ("POST", "/api/v1/urls/bulk"),
                                         ("PATCH", "/api/v1/urls/abcdefg")])
@pytest.mark.parametrize("cred", [None, "Authorization: Basic dXNlcjpwYXNz",
                                  "Authorization: Bearer not-a-key", "X-API-Key: sk_short",
                                  "Authorization: Bearer"])
def test_no_key_refused_before_the_body(server, method, path, cred):
    # A body of 60,000 bytes is announced and never sent: the answer must come without it.
    with socket.create_connection(addr_of(server), timeout=10) as s:
        lines = [f"{method} {path} HTTP/1.1", "Host: x", "Content-Type: application/json",
                 "Content-Length: 60000"] + ([cred] if cred else [])
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        assert read_head(s, 10) == 401


def test_well_formed_key_gets_its_body_read(server, api_key):
    # A key that could be one is looked up once the body is there: an unknown one is 401
    # after the body, a good one creates.
    body = b'{"url": "https://example.com/after-body"}'
    for key, want in (("sk_" + "A" * (len(api_key) - 3), 401), (api_key, 201)):
        with socket.create_connection(addr_of(server), timeout=10) as s:
            head = (f"POST /api/v1/urls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n")
            s.sendall(head.encode())
            assert read_head(s, 1) is None  # waits for the body
            s.sendall(body)
            assert read_head(s, 10) == want


def test_anonymous_creates_read_their_body_where_allowed(extra_server):
    srv = extra_server(ALLOW_ANONYMOUS=1)
    body = b'{"url": "https://example.com/anon-body"}'
    with socket.create_connection(addr_of(srv), timeout=10) as s:
        s.sendall((f"POST /api/v1/urls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        assert read_head(s, 10) == 201
    # but a bulk create still needs a key
    with socket.create_connection(addr_of(srv), timeout=10) as s:
        s.sendall(b"POST /api/v1/urls/bulk HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n")
        assert read_head(s, 10) == 401


# ---------------------------------------------------------------- whole-request deadline

@pytest.fixture(scope="module")
def quick(extra_server):
    return extra_server(REQUEST_TIMEOUT=2, CONNECTION_TIMEOUT=60)


def trickle_until_cut(server, first, byte, limit_s):
    """Sends first, then one byte every 0.3 s (never idle long); returns the seconds until the
    server ended the connection, or None if it had not after limit_s."""
    with socket.create_connection(addr_of(server), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(first)
        while time.monotonic() - t0 < limit_s:
            time.sleep(0.3)
            try:
                s.sendall(byte)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - t0
            s.settimeout(0.01)
            try:
                if s.recv(4096) == b"":
                    return time.monotonic() - t0
            except socket.timeout:
                pass
            except ConnectionResetError:
                return time.monotonic() - t0
    return None


def test_trickled_headers_are_cut(quick):
    before = metric(quick, "shortener_connections_timed_out_total")
    cut = trickle_until_cut(quick, b"GET /abc HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a", 20)
    assert cut is not None, "a request trickled byte by byte was never cut"
    assert metric(quick, "shortener_connections_timed_out_total") > before


def test_trickled_body_is_cut(quick, api_key):
    head = (f"POST /api/v1/urls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Length: 60000\r\n\r\n").encode()
    assert trickle_until_cut(quick, head, b" ", 20) is not None


def test_keepalive_serves_requests_past_the_deadline(quick, api_key):
    # The deadline is per request: a connection that keeps asking is served well past it.
    key = stk.Client(quick, api_key).create_ok(GOOD + "/keepalive")["key"]
    c = http.client.HTTPConnection(*addr_of(quick), timeout=10)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 5:
        c.request("GET", "/" + key)
        r = c.getresponse()
        r.read()
        assert r.status == 301
        n += 1
        time.sleep(0.2)
    c.close()
    assert n >= 10


# ---------------------------------------------------------------- per-address limit

def test_connections_limited_per_address(extra_server):
    srv = extra_server(PER_IP_CONNECTIONS=5)
    held = []
    try:
        for _ in range(5):
            s = socket.socket()
            s.bind(("127.0.0.7", 0))
            s.connect(addr_of(srv))
            # answered, so surely counted; kept open (keep-alive, no body left to read)
            s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_head(s, 10) == 200
            held.append(s)
        # The sixth from that address is closed unanswered ...
        s = socket.socket()
        s.bind(("127.0.0.7", 0))
        s.connect(addr_of(srv))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(s, 10) is None
        s.close()
        # ... while another address is served, and so are the five held.
        s = socket.socket()
        s.bind(("127.0.0.8", 0))
        s.connect(addr_of(srv))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(s, 10) == 200
        s.close()
        for h in held:
            h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_head(h, 10) == 200
    finally:
        for h in held:
            h.close()
    # Closed connections are given back: the address may connect again.
    def again():
        with socket.socket() as s2:
            s2.bind(("127.0.0.7", 0))
            s2.connect(addr_of(srv))
            s2.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            return read_head(s2, 5) == 200
    stk.wait_until("the address's connections to be given back", again, 10)
    assert metric(srv, "shortener_connections_refused_total") >= 1


def test_trusted_proxy_is_not_limited_per_address(extra_server):
    srv = extra_server(PER_IP_CONNECTIONS=3, TRUSTED_PROXIES="127.0.0.9")
    held = []
    try:
        for _ in range(6):
            s = socket.socket()
            s.bind(("127.0.0.9", 0))
            s.connect(addr_of(srv))
            held.append(s)
        for h in held:
            h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_head(h, 10) == 200
    finally:
        for h in held:
            h.close()


# ---------------------------------------------------------------- the slowloris

ATTACK_ADDRESSES = [f"127.0.0.{i}" for i in range(20, 30)]
ATTACK_PER_ADDRESS = 500  # 5,000 connections: more than MAX_CONNECTIONS (4,096)
ATTACK_SECONDS = 30
TRICKLE_EVERY = 3.0


class Slowloris(threading.Thread):
    """Keeps ATTACK_PER_ADDRESS connections open from each attack address: half trickle
    header bytes, half announce a 128 KiB create body without a key and trickle it; every
    TRICKLE_EVERY seconds each sends one byte, and whatever the server closed is opened again."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.target = target
        self.stop = threading.Event()
        self.opened = self.cut = self.peak_open = 0
        self.sel = selectors.DefaultSelector()
        self.socks = {}  # socket -> index

    def _open(self, i):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((ATTACK_ADDRESSES[i % len(ATTACK_ADDRESSES)], 0))
            s.connect_ex(self.target)
        except OSError:
            s.close()
            return
        first = (b"GET /slow HTTP/1.1\r\nHost: x\r\nX-A: " if i % 2 == 0 else
                 b"POST /api/v1/urls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 131072\r\n\r\n{")
        self.socks[s] = (i, first)
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        self.opened += 1

    def _close(self, s):
        self.sel.unregister(s)
        del self.socks[s]
        s.close()
        self.cut += 1

    def run(self):
        total = ATTACK_PER_ADDRESS * len(ATTACK_ADDRESSES)
        for i in range(total):
            self._open(i)
        next_tick = time.monotonic() + TRICKLE_EVERY
        while not self.stop.is_set():
            for key, ev in self.sel.select(timeout=0.2):
                s = key.fileobj
                if s not in self.socks:
                    continue
                if ev & selectors.EVENT_READ:
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if not data:  # the server ended it (or answered and will)
                        self._close(s)
                        continue
                if ev & selectors.EVENT_WRITE and self.socks[s][1]:
                    i, first = self.socks[s]
                    try:
                        s.send(first)
                    except OSError:
                        self._close(s)
                        continue
                    self.socks[s] = (i, b"")
                    self.sel.modify(s, selectors.EVENT_READ)
            self.peak_open = max(self.peak_open, len(self.socks))
            if time.monotonic() >= next_tick:
                next_tick += TRICKLE_EVERY
                for s in list(self.socks):
                    if self.socks[s][1]:
                        continue
                    try:
                        s.send(b"a")
                    except OSError:
                        self._close(s)
                missing = total - len(self.socks)
                for i in range(missing):
                    self._open(i)
        for s in list(self.socks):
            s.close()


def test_slowloris_never_stops_redirects(extra_server, api_key):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = ATTACK_PER_ADDRESS * len(ATTACK_ADDRESSES) + 500
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need, "not enough descriptors"
    # The defaults, named so that this instance is the attack's own.
    srv = extra_server(REQUEST_TIMEOUT=10)
    key = stk.Client(srv, api_key).create_ok(GOOD)["key"]
    attack = Slowloris(addr_of(srv))
    answered = failed = 0
    failures = []
    attack.start()
    try:
        time.sleep(3)  # the attack's connections are all opened
        t0 = time.monotonic()
        while time.monotonic() - t0 < ATTACK_SECONDS:
            # A new connection for every redirect, as a browser arriving then would.
            c = http.client.HTTPConnection(*addr_of(srv), timeout=5)
            try:
                c.request("GET", "/" + key)
                r = c.getresponse()
                r.read()
                if r.status == 301:
                    answered += 1
                else:
                    failed += 1
                    failures.append(r.status)
            except OSError as e:
                failed += 1
                failures.append(repr(e))
            finally:
                c.close()
            time.sleep(0.02)
    finally:
        attack.stop.set()
        attack.join(30)
    timed_out = metric(srv, "shortener_connections_timed_out_total", missing_ok=True)
    refused = metric(srv, "shortener_connections_refused_total", missing_ok=True)
    report = (f"slowloris: {len(ATTACK_ADDRESSES)} addresses x {ATTACK_PER_ADDRESS} connections, "
              f"{ATTACK_SECONDS}s: redirects answered {answered}, failed {failed}; attack opened "
              f"{attack.opened}, peak open {attack.peak_open}, ended by the server {attack.cut}; "
              f"server cut {timed_out:.0f} by deadline, refused {refused:.0f} over the "
              f"per-address limit")
    print("\n" + report)
    with open(os.environ.get("SLOWLORIS_REPORT", os.devnull), "a") as f:
        f.write(report + "\n")
    assert failed == 0, f"{report}; failures: {failures[:10]}"
    assert answered > 100, report
    # The attack was real: thousands of connections, cut and refused by the server.
    assert attack.opened > 5000 and timed_out > 0 and refused > 0, report
