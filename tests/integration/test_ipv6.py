"""IPv6 and dual-stack listening: LISTEN_ADDRESS "::" (the default) answers on both families,
IPv4 clients are plain IPv4 addresses whichever socket they came in on (rate-limit buckets,
trusted proxies), and an IPv6 /64 is one client for the per-address budgets."""

import socket
import subprocess

import pytest

import stack as stk

GOOD = "https://example.com/ipv6"


def get(host, port, path, headers=(), family=socket.AF_INET, source=None):
    """One request on a new connection; returns its status, or None when the connection is
    ended without an answer."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        lines = [f"GET {path} HTTP/1.1", "Host: x", "Accept: application/json", *headers]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None


@pytest.fixture(scope="module")
def dual(extra_server):
    return extra_server(LISTEN_ADDRESS="::", MISS_RATE="5/min")


def test_both_families_answer(dual, api_key):
    key = stk.Client(dual, api_key).create_ok(GOOD)["key"]
    for url in (f"http://[::1]:{dual.port}/{key}", f"http://127.0.0.1:{dual.port}/{key}"):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                              "--noproxy", "*", url], capture_output=True, text=True, timeout=30)
        assert out.stdout == f"301 {GOOD}", (url, out.stdout, out.stderr)


def test_ipv4_only_listener_still_possible(extra_server):
    srv = extra_server(LISTEN_ADDRESS="0.0.0.0", REQUEST_TIMEOUT=9)
    assert get("127.0.0.1", srv.port, "/healthz") == 200
    with pytest.raises(ConnectionRefusedError):
        get("::1", srv.port, "/healthz", family=socket.AF_INET6)


def test_ipv6_only_listener(extra_server):
    srv = extra_server(LISTEN_ADDRESS="::1", REQUEST_TIMEOUT=8)
    assert get("::1", srv.port, "/healthz", family=socket.AF_INET6) == 200


def test_ipv4_client_has_one_bucket_whichever_socket(stack, extra_server):
    # Two servers share Redis: one listens on IPv4, one dual-stack (where 127.0.0.6 arrives
    # as ::ffff:127.0.0.6). Misses from 127.0.0.6 on both spend one budget of 5.
    v4 = extra_server(LISTEN_ADDRESS="127.0.0.1", MISS_RATE="5/min", REQUEST_TIMEOUT=11)
    v6 = extra_server(LISTEN_ADDRESS="::", MISS_RATE="5/min", REQUEST_TIMEOUT=11)
    for i in range(5):
        srv = v4 if i % 2 else v6
        assert get("127.0.0.1", srv.port, f"/nokey{i}fam", source="127.0.0.6") == 404
    assert get("127.0.0.1", v4.port, "/nokey5fam", source="127.0.0.6") == 429
    assert get("127.0.0.1", v6.port, "/nokey6fam", source="127.0.0.6") == 429
    # another address is untouched
    assert get("127.0.0.1", v6.port, "/nokey7fam", source="127.0.0.16") == 404


@pytest.fixture(scope="module")
def proxied6(extra_server):
    """Dual-stack, behind a proxy at 127.0.0.1 (an IPv4 peer of an IPv6 socket)."""
    return extra_server(LISTEN_ADDRESS="::", TRUSTED_PROXIES="127.0.0.1", MISS_RATE="5/min",
                        AUTH_FAILURE_RATE="3/min")


def test_ipv4_trusted_proxy_on_dual_stack(proxied6):
    fwd = ["X-Forwarded-For: 198.51.100.44"]
    for i in range(5):
        assert get("127.0.0.1", proxied6.port, f"/nokey{i}prx", fwd) == 404
    assert get("127.0.0.1", proxied6.port, "/nokey5prx", fwd) == 429
    # the proxy's own requests are not a client's
    for i in range(7):
        assert get("127.0.0.1", proxied6.port, f"/nokey{i}own") == 404


def test_ipv6_64_is_one_client_for_misses(proxied6):
    for i in range(5):
        fwd = [f"X-Forwarded-For: 2001:db8:5:6::{i + 1:x}"]
        assert get("127.0.0.1", proxied6.port, f"/nokey{i}v6", fwd) == 404
    assert get("127.0.0.1", proxied6.port, "/nokey5v6",
               ["X-Forwarded-For: 2001:db8:5:6:ffff:1:2:3"]) == 429
    # the next /64 is another client
    assert get("127.0.0.1", proxied6.port, "/nokey6v6",
               ["X-Forwarded-For: 2001:db8:5:7::1"]) == 404


def test_ipv6_64_is_one_client_for_failed_auth(proxied6):
    def status(addr):
        with socket.create_connection(("127.0.0.1", proxied6.port), timeout=10) as s:
            s.sendall((f"GET /api/v1/urls HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {addr}\r\n"
                       f"Authorization: Bearer sk_{'x' * 40}\r\n\r\n").encode())
            return int(s.recv(4096).split()[1])
    for i in range(3):
        assert status(f"2001:db8:9:9::{i + 1}") == 401
    assert status("2001:db8:9:9:1::1") == 429
    assert status("2001:db8:9:a::1") == 401


def test_ipv6_connections_counted(extra_server):
    srv = extra_server(LISTEN_ADDRESS="::", PER_IP_CONNECTIONS=3)
    held = []
    try:
        for _ in range(3):
            s = socket.socket(socket.AF_INET6)
            s.settimeout(10)
            s.connect(("::1", srv.port))
            # answered, so surely counted; kept open (keep-alive, no body left to read)
            s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(s)
        assert get("::1", srv.port, "/healthz", family=socket.AF_INET6) is None
        # IPv4 clients of the same socket are counted by their own address
        assert get("127.0.0.1", srv.port, "/healthz") == 200
    finally:
        for s in held:
            s.close()


def test_default_listens_on_both_families(stack):
    lease = stk.PortLease()
    env = stk.base_env({"DATABASE_URL": stack.pg.dsn, "REDIS_URL": stack.redis.url,
                        "KGS_SOCKET": stack.kgs.sock, "PORT": lease.port})
    assert "LISTEN_ADDRESS" not in env
    p = subprocess.Popen([str(stk.BIN_DIR / "shortener")], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stk.wait_until("the default listener on IPv4", lambda: get(
            "127.0.0.1", lease.port, "/healthz") == 200, 30)
        assert get("::1", lease.port, "/healthz", family=socket.AF_INET6) == 200
    finally:
        p.terminate()
        assert p.wait(30) == 0
        lease.release()
