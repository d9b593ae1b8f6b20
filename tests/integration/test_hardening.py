"""Requests built to confuse the server: a percent-encoded NUL or control byte in a path,
X-Forwarded-For sent on two lines, floods of unknown keys (MISS_RATE), and what /readyz tells
a stranger."""

import socket
from urllib.parse import urlparse

import pytest

import stack as stk
from stack import assert_problem

GOOD = "https://example.com/hardening"


def raw(server, lines):
    """Sends one request as the given header lines (no body) and returns (status, text)."""
    u = urlparse(server.base_url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return int(head.split()[1]), head


@pytest.mark.parametrize("suffix", ["%00", "%00anything", "%00/x", "%0a", "%1f", "%7f", "%00%00"])
def test_control_bytes_never_shorten_a_key(client, anon, suffix):
    key = client.create_ok(GOOD, alias=f"nul-{abs(hash(suffix)) % 100000}")["key"]
    assert anon.resolve(key).status_code == 301
    r = anon.request("GET", f"/{key}{suffix}", auth=False, headers={"Accept": "application/json"})
    assert r.status_code == 404, (suffix, r.status_code, r.headers.get("Location"))
    assert "Location" not in r.headers
    # nor the API's view of it
    r = client.request("GET", f"/api/v1/urls/{key}{suffix}")
    assert_problem(r, 404)


def test_escaped_letters_still_decode(client, anon):
    key = client.create_ok(GOOD, alias="esc-abc")["key"]
    r = anon.request("GET", "/esc-%61bc", auth=False)
    assert r.status_code == 301 and r.headers["Location"] == GOOD
    assert key == "esc-abc"


@pytest.fixture(scope="module")
def proxied(extra_server):
    """Behind a proxy at 127.0.0.1 that appends its own X-Forwarded-For line, with a small
    budget of unknown keys per client."""
    return extra_server(TRUSTED_PROXIES="127.0.0.1", MISS_RATE="5/min")


def test_forwarded_for_on_two_lines_right_one_wins(proxied):
    # The client forges 203.0.113.9 on its own line; the proxy appends the address it saw.
    # Five misses spend 198.51.100.20's budget, so the sixth is 429 only if that address is
    # the one counted, whatever the client wrote.
    for i in range(5):
        status, _ = raw(proxied, [f"GET /no-such-{i}-xff HTTP/1.1", "Host: x",
                                  "Accept: application/json", "X-Forwarded-For: 203.0.113.9",
                                  "X-Forwarded-For: 198.51.100.20"])
        assert status == 404
    status, head = raw(proxied, ["GET /no-such-5-xff HTTP/1.1", "Host: x",
                                 "X-Forwarded-For: 203.0.113.9", "X-Forwarded-For: 198.51.100.20"])
    assert status == 429, head
    # The forged address was never charged.
    status, _ = raw(proxied, ["GET /no-such-6-xff HTTP/1.1", "Host: x",
                              "X-Forwarded-For: 203.0.113.9"])
    assert status == 404


def test_unknown_keys_limited_existing_links_not(proxied, api_key):
    c = stk.Client(proxied, api_key)
    live = c.create_ok(GOOD + "/live")["key"]
    who = {"X-Forwarded-For": "198.51.100.30", "Accept": "application/json"}
    for i in range(5):
        assert c.request("GET", f"/nokey{i}x", auth=False, headers=who).status_code == 404
    r = c.request("GET", "/nokey5x", auth=False, headers=who)
    body = assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert "do not exist" in body["detail"]
    # The same address still follows links that exist, again and again.
    for _ in range(10):
        r = c.request("GET", f"/{live}", auth=False, headers=who)
        assert r.status_code == 301, r.text
    # Another address has its own budget.
    other = {"X-Forwarded-For": "198.51.100.31"}
    assert c.request("GET", "/nokey6x", auth=False, headers=other).status_code == 404


def test_unknown_keys_limited_a_page_for_browsers(proxied):
    # A person who mistyped links too often gets a page saying when to come back; a program
    # gets the problem. Both depend on Accept, and neither may be kept.
    c = stk.Client(proxied)
    html = {"X-Forwarded-For": "198.51.100.32",
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for i in range(5):
        r = c.request("GET", f"/nokey{i}h", auth=False, headers=html)
        assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    r = c.request("GET", "/nokey5h", auth=False, headers=html)
    assert r.status_code == 429, r.text
    assert r.headers["Content-Type"] == "text/html; charset=utf-8", r.headers
    retry = int(r.headers["Retry-After"])
    assert retry >= 1
    assert f"try again in {retry} s" in r.text and "<h1>Too many requests</h1>" in r.text
    assert "no-store" in r.headers["Cache-Control"] and "Accept" in r.headers["Vary"]
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "RateLimit" in r.headers and "RateLimit-Policy" in r.headers, r.headers
    r = c.request("GET", "/nokey6h", auth=False,
                  headers={**html, "Accept": "application/json"})
    assert "do not exist" in assert_problem(r, 429)["detail"]
    assert int(r.headers["Retry-After"]) >= 1


def test_proxy_itself_is_not_limited(proxied):
    # The balancer's own requests (no X-Forwarded-For: health checks, say) are not a client.
    for i in range(12):
        assert stk.Client(proxied).request("GET", f"/noproxy{i}x",
                                           auth=False).status_code == 404


def test_bad_miss_rate_refused_at_start():
    import subprocess
    p = subprocess.run([str(stk.BIN_DIR / "shortener")], env={**stk.base_env(),
                       "MISS_RATE": "lots"}, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "MISS_RATE" in p.stderr, p.stderr
