"""Every endpoint of API.md on the shared stack: create, redirect, read, delete, operations,
authentication and the instance-wide settings (anonymous creation, DEFAULT_TTL)."""

import datetime
import os
import re
import threading
import time
import urllib.parse

import pytest

import stack as stk
from stack import assert_problem, parse_time

YEAR = 31536000


def unique(prefix="t"):
    return f"{prefix}{os.urandom(5).hex()}"


def check_link_body(body, server, url, key=None):
    assert set(body) >= {"key", "short_url", "url", "created_at", "expires_at"}, body
    if key is not None:
        assert body["key"] == key
    assert body["short_url"] == f"{server.base_url}/{body['key']}", body
    assert body["url"] == url, body
    created = parse_time(body["created_at"])
    assert abs(created - time.time()) < 120, body["created_at"]
    if body["expires_at"] is not None:
        parse_time(body["expires_at"])
    return body


def check_location(r, server, key):
    loc = r.headers.get("Location")
    assert loc, f"no Location: {dict(r.headers)}"
    assert urllib.parse.urljoin(server.base_url + "/", loc) == \
        f"{server.base_url}/api/v1/urls/{key}", loc


# ---------------------------------------------------------------------------- create


def test_create_json_generated_key(client, server, stack):
    url = "https://example.com/some/path?q=1#frag"
    r = client.create(url)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    body = check_link_body(r.json(), server, url)
    assert stk.KEY_RE.match(body["key"]), body["key"]
    check_location(r, server, body["key"])
    # Default DEFAULT_TTL: 365 days.
    assert body["expires_at"] is not None
    assert abs(parse_time(body["expires_at"]) - parse_time(body["created_at"]) - YEAR) <= 1
    assert stack.psql(f"SELECT url FROM urls WHERE key = '{body['key']}'") == url


def test_create_normalises_scheme_and_host(client, server):
    body = client.create_ok("HTTPS://WWW.Example.COM/Path/CaseKept")
    assert body["url"] == "https://www.example.com/Path/CaseKept", body
    r = client.resolve(body["key"])
    assert r.status_code == 301 and r.headers["Location"] == body["url"]


def test_create_with_alias_and_409_when_taken(client, other_client, server, stack):
    alias = unique("Alias_")
    r = client.create("https://example.com/first", alias=alias)
    assert r.status_code == 201, r.text
    check_link_body(r.json(), server, "https://example.com/first", key=alias)
    check_location(r, server, alias)

    before = stack.count_urls()
    for c in (client, other_client):
        assert_problem(c.create("https://example.com/second", alias=alias), 409)
    assert stack.count_urls() == before
    r = client.resolve(alias)
    assert r.status_code == 301 and r.headers["Location"] == "https://example.com/first"


@pytest.mark.parametrize("alias", ["a3Z", "L" * 64, "x-y_z", "0123456", "UPPER-lower_09",
                                   "-_-", "1234"])
def test_alias_boundaries_accepted(client, server, alias):
    body = client.create_ok("https://example.com/alias-ok", alias=alias)
    assert body["key"] == alias
    r = client.resolve(alias)
    assert r.status_code == 301 and r.headers["Location"] == "https://example.com/alias-ok"


def test_alias_race_has_one_winner(server, api_key, other_key, stack):
    alias = unique("race")
    results = []
    lock = threading.Lock()

    def attempt(i):
        c = stk.Client(server, api_key if i % 2 else other_key)
        r = c.create(f"https://example.com/race/{i}", alias=alias)
        with lock:
            results.append(r)
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 7, codes
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409)
    winner = next(r for r in results if r.status_code == 201).json()["url"]
    assert stack.psql(f"SELECT url FROM urls WHERE key = '{alias}'") == winner
    assert stk.Client(server).resolve(alias).headers["Location"] == winner


def test_create_with_ttl(client):
    body = client.create_ok("https://example.com/ttl", ttl=60)
    assert abs(parse_time(body["expires_at"]) - parse_time(body["created_at"]) - 60) <= 1, body


def test_create_with_expires_at_utc_and_offset(client):
    when = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) \
        + datetime.timedelta(days=30)
    z = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = client.create_ok("https://example.com/exp-z", expires_at=z)
    assert body["expires_at"] == z, body

    plus2 = when.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    body = client.create_ok("https://example.com/exp-offset",
                            expires_at=plus2.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    assert body["expires_at"] == z, body


def test_create_form_encoded(client, server):
    alias = unique("form")
    r = client.request("POST", "/api/v1/urls",
                       data={"url": "https://example.com/form?a=1&b=2", "alias": alias,
                             "ttl": "120"})
    assert r.status_code == 201, r.text
    body = check_link_body(r.json(), server, "https://example.com/form?a=1&b=2", key=alias)
    assert abs(parse_time(body["expires_at"]) - parse_time(body["created_at"]) - 120) <= 1
    check_location(r, server, alias)
    r = client.request("POST", "/api/v1/urls", data={"url": "https://example.com/form2"})
    assert r.status_code == 201, r.text
    assert stk.KEY_RE.match(r.json()["key"])
    assert client.resolve(alias).headers["Location"] == "https://example.com/form?a=1&b=2"


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON"])
def test_create_json_content_type_variants(client, ctype):
    r = client.request("POST", "/api/v1/urls", headers={"Content-Type": ctype},
                       data=b'{"url": "https://example.com/ctype"}')
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("url", [
    "https://example.com/?a=%20b&c=d%26e&e=%2F#x",
    "https://example.com:8443/path;param?q",
    "http://[2001:db8::1]:8080/v6",
    "https://user@example.com/with-user",
    "https://example.com/caf\u00e9?q=\u00fc",
    "https://b\u00fccher.example/idn",
])
def test_url_round_trips_to_location(client, url):
    r = client.create(url)
    if r.status_code == 400:  # refusing non-ASCII is a choice; serving it broken is not
        assert_problem(r, 400)
        assert any(ord(ch) > 127 for ch in url), f"valid URL refused: {r.text}"
        return
    assert r.status_code == 201, r.text
    stored = r.json()["url"]
    loc = client.resolve(r.json()["key"]).headers["Location"]
    assert loc == stored, (loc, stored)
    assert all(32 < ord(ch) < 127 for ch in loc), f"Location is not plain ASCII: {loc!r}"
    if url.isascii():
        assert stored == url, stored


def test_create_url_of_8192_bytes_accepted(client):
    url = "https://example.com/" + "a" * (8192 - len("https://example.com/"))
    assert len(url) == 8192
    body = client.create_ok(url)
    r = client.resolve(body["key"])
    assert r.status_code == 301 and r.headers["Location"] == url


def test_body_of_exactly_64_kib_accepted(client):
    core = b'{"url": "https://example.com/64k"}'
    body = core[:-1] + b" " * (65536 - len(core)) + b"}"
    assert len(body) == 65536
    r = client.request("POST", "/api/v1/urls", data=body,
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_x_api_key_header_works(server, api_key):
    c = stk.Client(server, api_key, header="x-api-key")
    body = c.create_ok("https://example.com/x-api-key")
    r = c.read(body["key"])
    assert r.status_code == 200, r.text
    assert c.delete(body["key"]).status_code == 204


def test_bearer_scheme_is_case_insensitive(server, api_key):
    c = stk.Client(server)
    r = c.request("POST", "/api/v1/urls", headers={"Authorization": f"bearer {api_key}"},
                  json={"url": "https://example.com/lower-bearer"})
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------------------- redirect


def test_redirect_get_and_head(client, anon):
    url = "https://example.org/target?x=1"
    key = client.create_ok(url)["key"]
    for _ in range(2):  # first from PostgreSQL, then from Redis
        r = anon.resolve(key)
        assert r.status_code == 301, r.text
        assert r.headers["Location"] == url
        assert stk.cache_control_max_age(r) is not None, r.headers
    r = anon.resolve(key, method="HEAD")
    assert r.status_code == 301
    assert r.headers["Location"] == url
    assert r.content == b""


def test_unknown_key_404_html_for_browsers_problem_otherwise(anon):
    for key in ("zzzzzzz", "no-such-alias", unique("n")):
        r = anon.resolve(key, headers={
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
        assert r.status_code == 404
        assert r.headers["Content-Type"].lower().startswith("text/html"), r.headers
        assert "<html" in r.text.lower()
        # Either answer depends on Accept, and none may be kept: the key may be made later.
        answers = [r, anon.resolve(key), anon.resolve(key, headers={"Accept": "application/json"})]
        for a in answers[1:]:
            assert_problem(a, 404)
        for a in answers:
            assert "no-store" in a.headers.get("Cache-Control", ""), a.headers
            assert "Accept" in a.headers.get("Vary", ""), a.headers
        r = anon.resolve(key, method="HEAD")
        assert r.status_code == 404


@pytest.mark.parametrize("path", ["/no.dots", "/ab", "/" + "a" * 65, "/%00abcdef",
                                  "/abc%0D%0ASet-Cookie:%20x=1", "/abc%20def", "/a/b/c",
                                  "/api/v1/nothing"])
def test_odd_paths_404(anon, path):
    r = anon.request("GET", path, auth=False)
    assert_problem(r, 404)
    assert "Set-Cookie" not in r.headers


def test_deleted_link_404_html_too(client, anon):
    key = client.create_ok("https://example.com/del-html")["key"]
    assert client.delete(key).status_code == 204
    r = anon.resolve(key, headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["Content-Type"].lower().startswith("text/html")


# ---------------------------------------------------------------------------- read


def test_read_own_link(client, server):
    url = "https://example.com/read"
    created = client.create_ok(url)
    r = client.read(created["key"])
    assert r.status_code == 200, r.text
    body = r.json()
    check_link_body(body, server, url, key=created["key"])
    assert body["created_at"] == created["created_at"]
    assert body["expires_at"] == created["expires_at"]
    assert type(body.get("visits")) is int and body["visits"] == 0, body


def test_read_and_delete_need_a_key(client, anon, stack):
    key = client.create_ok("https://example.com/needs-key")["key"]
    assert_problem(anon.read(key), 401)
    assert_problem(anon.delete(key), 401)
    bogus = stk.Client(client.base, "sk_" + "A" * 32)
    assert_problem(bogus.read(key), 401)
    assert_problem(bogus.delete(key), 401)
    assert client.resolve(key).status_code == 301


def test_a_key_sees_only_its_own_links(client, other_client):
    key = client.create_ok("https://example.com/mine")["key"]
    assert_problem(other_client.read(key), 404)
    assert_problem(other_client.delete(key), 404)
    # Not leaked: the same answer as for a key that does not exist.
    assert_problem(other_client.read("zzzzzzz"), 404)
    assert client.read(key).status_code == 200
    assert client.resolve(key).status_code == 301
    # And the other way round.
    theirs = other_client.create_ok("https://example.com/theirs")["key"]
    assert_problem(client.read(theirs), 404)
    assert_problem(client.delete(theirs), 404)
    assert other_client.read(theirs).status_code == 200


def test_read_unknown_404(client):
    assert_problem(client.read("zzzzzzz"), 404)
    assert_problem(client.read(unique("nope")), 404)


# ---------------------------------------------------------------------------- delete


def test_delete_then_404_at_once(client, stack):
    key = client.create_ok("https://example.com/delete-me")["key"]
    assert client.resolve(key).status_code == 301  # now cached
    r = client.delete(key)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(client.resolve(key), 404)
    assert_problem(client.read(key), 404)
    assert_problem(client.delete(key), 404)
    assert stack.psql(f"SELECT count(*) FROM urls WHERE key = '{key}'") == "0"


def test_delete_alias(client):
    alias = unique("del")
    client.create_ok("https://example.com/del-alias", alias=alias)
    client.resolve(alias)
    assert client.delete(alias).status_code == 204
    assert_problem(client.resolve(alias), 404)


# ---------------------------------------------------------------------------- operations


def test_healthz(anon):
    r = anon.request("GET", "/healthz", auth=False)
    assert r.status_code == 200
    assert anon.request("HEAD", "/healthz", auth=False).status_code == 200


def test_readyz_ok(anon):
    r = anon.request("GET", "/readyz", auth=False)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"


METRIC_LINE = re.compile(
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*=\"(\\.|[^\"\\])*\""
    r"(,[a-zA-Z_][a-zA-Z0-9_]*=\"(\\.|[^\"\\])*\")*,?\})? "
    r"([-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|[-+]?Inf|NaN)( -?[0-9]+)?$")


def test_metrics_is_prometheus_text(client, anon):
    key = client.create_ok("https://example.com/metrics")["key"]
    anon.resolve(key)
    anon.resolve("zzzzzzz")
    r = anon.request("GET", "/metrics", auth=False)
    assert r.status_code == 200
    ctype = r.headers["Content-Type"].replace(" ", "").lower()
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    samples = 0
    typed = set()
    for line in r.text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)( .*)?$", line)
            assert m, f"bad comment line: {line!r}"
            if m.group(1) == "TYPE":
                assert m.group(3).strip() in ("counter", "gauge", "histogram", "summary",
                                              "untyped"), line
                typed.add(m.group(2))
            continue
        assert METRIC_LINE.match(line), f"bad sample line: {line!r}"
        samples += 1
    assert samples >= 3, r.text
    assert r.text.endswith("\n")


@pytest.mark.parametrize("method,path", [
    ("POST", "/healthz"), ("DELETE", "/readyz"), ("PUT", "/metrics"),
])
def test_operations_wrong_method_405(anon, method, path):
    assert_problem(anon.request(method, path, auth=False), 405)


# ---------------------------------------------------------------------------- instance settings


def test_default_instance_refuses_anonymous_create(anon, stack):
    before = stack.count_urls()
    assert_problem(anon.create("https://example.com/anon"), 401)
    r = anon.request("POST", "/api/v1/urls", auth=False, data={"url": "https://example.com/a"})
    assert_problem(r, 401)
    assert stack.count_urls() == before


def test_allow_anonymous_instance(extra_server, client, stack):
    srv = extra_server(ALLOW_ANONYMOUS=1)
    anon = stk.Client(srv)
    r = anon.create("https://example.com/anonymous")
    assert r.status_code == 201, r.text
    body = check_link_body(r.json(), srv, "https://example.com/anonymous")
    r2 = anon.resolve(body["key"])
    assert r2.status_code == 301 and r2.headers["Location"] == "https://example.com/anonymous"
    r = anon.request("POST", "/api/v1/urls", auth=False,
                     data={"url": "https://example.com/anon-form"})
    assert r.status_code == 201, r.text
    # Nobody owns it: reading needs a key, and no key owns it.
    assert_problem(anon.read(body["key"]), 401)
    assert_problem(stk.Client(srv, client.api_key).read(body["key"]), 404)
    # A key that is given must still be valid.
    before = stack.count_urls()
    bad = stk.Client(srv, "sk_" + "B" * 32)
    assert_problem(bad.create("https://example.com/bad-key-on-anon"), 401)
    assert stack.count_urls() == before
    # Keys still work there.
    assert stk.Client(srv, client.api_key).create("https://example.com/k").status_code == 201


def test_default_ttl_zero_means_no_expiry(extra_server, api_key):
    srv = extra_server(DEFAULT_TTL=0)
    c = stk.Client(srv, api_key)
    body = c.create_ok("https://example.com/forever")
    assert body["expires_at"] is None, body
    assert c.read(body["key"]).json()["expires_at"] is None
    r = c.resolve(body["key"])
    assert r.status_code == 301
    assert stk.cache_control_max_age(r) is not None
    body = c.create_ok("https://example.com/forever-but-ttl", ttl=30)
    assert abs(parse_time(body["expires_at"]) - parse_time(body["created_at"]) - 30) <= 1


def test_default_ttl_applies_and_bounds_cache_control(extra_server, api_key):
    srv = extra_server(DEFAULT_TTL=60)
    c = stk.Client(srv, api_key)
    body = c.create_ok("https://example.com/sixty")
    expires = parse_time(body["expires_at"])
    assert abs(expires - parse_time(body["created_at"]) - 60) <= 1, body
    for _ in range(2):
        t = int(time.time())
        r = c.resolve(body["key"])
        assert r.status_code == 301
        age = stk.cache_control_max_age(r)
        assert age is not None and age <= expires - t, (r.headers, expires - t)


def test_oversized_request_headers_get_431_and_the_server_goes_on(client):
    # libmicrohttpd answers this itself (its connection memory is 16 KiB); what matters is a
    # clear refusal, a closed connection and a server that keeps serving.
    key = client.create_ok("https://example.com/after-431")["key"]
    for size in (17000, 40000):
        r = client.s.get(client.base + "/" + key, headers={"Cookie": "a=" + "b" * size},
                         allow_redirects=False, timeout=stk.HTTP_TIMEOUT)
        assert r.status_code == 431
    assert client.resolve(key).status_code == 301
