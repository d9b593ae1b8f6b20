"""Links that point back at this service: BASE_URL's host over http and https, with or
without www., and the hosts named in SELF_HOSTS are refused by create, bulk create and
PATCH; so is an authority with a backslash or another character outside RFC 3986 (browsers
and curl disagree on where its host is)."""

import subprocess

import pytest

import stack as stk
from stack import assert_problem

SELF = ["https://sho.rt/abcdefg", "http://sho.rt/abcdefg", "https://www.sho.rt/abcdefg",
        "http://WWW.SHO.RT./x", "http://sho.rt:443/x", "https://old.example/k",
        "http://www.old.example/k", "https://s.example.org./k", "http://192.0.2.10/k",
        "http://3221225994/k"]
AUTHORITY = ["https://evil.example\\@sho.rt/", "https://sho.rt\\@evil.example/",
             "https://evil.example\\.sho.rt/", "https://a@b@example.com/",
             "https://ex{ample.com/", "https://us|er@example.com/", "https://user%zz@example.com/",
             "https://\u00fc:pw@example.com/"]
FINE = ["https://example.com/fine", "https://sho.rt:8443/other-service",
        "https://www2.sho.rt/x", "https://old.example.com/k", "https://api.sho.rt/x",
        "https://example.com/a\\b"]


@pytest.fixture(scope="module")
def srv(extra_server):
    return extra_server(BASE_URL="https://sho.rt", SELF_HOSTS="old.example, s.example.org,"
                        "192.0.2.10")


@pytest.fixture
def c(srv, api_key):
    return stk.Client(srv, api_key)


@pytest.mark.parametrize("url", SELF + AUTHORITY)
def test_create_refused(stack, c, url):
    before = stack.count_urls()
    body = assert_problem(c.create(url), 400)
    assert ("own short links" in body["detail"]) == (url in SELF), body
    assert stack.count_urls() == before


@pytest.mark.parametrize("url", FINE)
def test_others_accepted(c, url):
    assert c.create_ok(url)["url"] == url


def test_bulk_refuses_each(stack, c):
    items = [{"url": "https://example.com/bulk-ok"}] + [{"url": u} for u in SELF + AUTHORITY]
    before = stack.count_urls()
    r = c.request("POST", "/api/v1/urls/bulk", json=items)
    assert r.status_code == 200, r.text
    got = r.json()["items"]
    assert [i["status"] for i in got] == [201] + [400] * (len(items) - 1), got
    for i in got[1:]:
        assert i["problem"]["status"] == 400
    assert stack.count_urls() == before + 1


def test_patch_refused(c, srv):
    key = c.create_ok("https://example.com/patch-me")["key"]
    for url in SELF + AUTHORITY:
        r = c.request("PATCH", f"/api/v1/urls/{key}", json={"url": url})
        assert_problem(r, 400)
    assert c.read(key).json()["url"] == "https://example.com/patch-me"
    assert c.resolve(key).headers["Location"] == "https://example.com/patch-me"


@pytest.mark.parametrize("bad", ["old.example/path", "http://old.example", "a,,b",
                                 "old.example:80", "u@h"])
def test_bad_self_hosts_refused_at_start(bad):
    p = subprocess.run([str(stk.BIN_DIR / "shortener")], env=stk.base_env({"SELF_HOSTS": bad}),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "SELF_HOSTS" in p.stderr, p.stderr
