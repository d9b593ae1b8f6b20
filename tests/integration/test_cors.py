"""Cross-origin use of the API (API.md, "Cross-origin use"): preflights, the fields every API
answer carries for an allowed origin, none for another origin, none outside the API, and a bad
CORS_ORIGINS refused at start."""

import subprocess

import pytest

import stack as stk

GOOD = "https://example.com/cors"
APP = "https://app.example.org"
EXPOSED = {"location", "ratelimit", "ratelimit-policy", "retry-after"}


def cors_fields(r):
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def exposed(r):
    return {h.strip().lower() for h in r.headers.get("Access-Control-Expose-Headers", "").split(",")}


@pytest.fixture(scope="module")
def listed(extra_server):
    """A server that allows two origins only."""
    return extra_server(CORS_ORIGINS=f"{APP}, http://localhost:3000")


def preflight(client, path, origin, method="POST",
              headers="authorization, content-type, idempotency-key"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return client.request("OPTIONS", path, headers=h, auth=False)


@pytest.mark.parametrize("path,method", [("/api/v1/urls", "POST"),
                                         ("/api/v1/urls/abcdefg", "DELETE"),
                                         ("/api/v1/urls/abcdefg", "PATCH"),
                                         ("/api/v1/urls/abcdefg", "GET")])
def test_preflight_default_any_origin(anon, path, method):
    r = preflight(anon, path, "https://anywhere.example", method)
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PATCH", "DELETE", "OPTIONS"} <= methods
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "x-api-key", "content-type", "idempotency-key"}
    assert int(r.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert r.content == b""


def test_answers_carry_origin_and_exposed_fields(client):
    h = {"Origin": "https://anywhere.example"}
    created = client.create(GOOD, headers=h)
    assert created.status_code == 201
    assert created.headers["Access-Control-Allow-Origin"] == "*"
    assert exposed(created) == EXPOSED
    key = created.json()["key"]
    for r in (client.read(key, headers=h), client.read("nosuchkey1", headers=h),
              client.delete(key, headers=h)):
        assert r.headers["Access-Control-Allow-Origin"] == "*", (r.status_code, dict(r.headers))
        assert exposed(r) == EXPOSED
    # a 401 too: the page must be able to read why
    r = client.request("POST", "/api/v1/urls", headers=h, auth=False, json={"url": GOOD})
    stk.assert_problem(r, 401)
    assert r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("method,path,limit", [("POST", "/api/v1/urls", 64 * 1024),
                                                ("POST", "/api/v1/urls/bulk", 1024 * 1024),
                                                ("PATCH", "/api/v1/urls/abcdefg", 64 * 1024)],
                         ids=["create", "bulk", "edit"])
def test_too_large_answers_carry_cors_and_ratelimit(stack, server, method, path, limit):
    """A body over the limit is refused before it is read, yet the page that sent it can read
    why (CORS), and the key's limit shows unspent (RateLimit); without a key it is 401."""
    made = stack.ctl("apikey", "create", f"cors-413-{method}-{limit}", "--rate", "10/h")
    assert made.returncode == 0, made.stderr
    client = stk.Client(server, made.stdout.strip().splitlines()[-1])
    h = {"Origin": "https://anywhere.example", "Content-Type": "application/json"}
    body = b'{"url":"https://example.com/","pad":"' + b"x" * limit + b'"}'
    r = client.request(method, path, headers=h, data=body)
    stk.assert_problem(r, 413)
    assert r.headers.get("Access-Control-Allow-Origin") == "*", dict(r.headers)
    assert exposed(r) == EXPOSED
    assert "RateLimit" in r.headers and "RateLimit-Policy" in r.headers, dict(r.headers)
    before = int(r.headers["RateLimit"].split("r=")[1].split(";")[0])
    again = client.request(method, path, headers=h, data=body)
    stk.assert_problem(again, 413)
    assert 0 < before <= 10, r.headers["RateLimit"]
    assert int(again.headers["RateLimit"].split("r=")[1].split(";")[0]) == before, \
        "a refused body spent the key's limit"
    anon = client.request(method, path, headers=h, data=body, auth=False)
    stk.assert_problem(anon, 401)
    assert anon.headers.get("Access-Control-Allow-Origin") == "*"


def test_no_origin_gets_the_star(client):
    """With every origin allowed (the default), the answer is the same with or without an
    Origin: a script or a cache in between sees the fields too."""
    r = client.create(GOOD)
    assert r.status_code == 201
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    assert "Origin" not in r.headers.get("Vary", "")
    r = client.request("GET", "/api/v1/nope")
    assert r.status_code == 404
    assert r.headers.get("Access-Control-Allow-Origin") == "*"


def test_no_origin_no_fields_when_origins_are_listed(listed, api_key):
    r = stk.Client(listed, api_key).create(GOOD)
    assert r.status_code == 201
    assert cors_fields(r) == {}


def test_redirects_and_operations_carry_none(client):
    key = client.create_ok(GOOD)["key"]
    h = {"Origin": APP}
    assert cors_fields(client.resolve(key, headers=h)) == {}
    for path in ("/healthz", "/readyz", "/metrics"):
        assert cors_fields(client.request("GET", path, headers=h, auth=False)) == {}


def test_listed_origin_echoed(listed, api_key):
    c = stk.Client(listed, api_key)
    r = preflight(c, "/api/v1/urls", APP)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert "Origin" in r.headers.get("Vary", "")
    r = c.create(GOOD, headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 201
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "Origin" in r.headers.get("Vary", "")
    assert exposed(r) == EXPOSED


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.example.org.evil.example",
                                    "http://app.example.org", "https://APP.example.org", "null"])
def test_other_origin_gets_no_fields(listed, api_key, origin):
    c = stk.Client(listed, api_key)
    r = preflight(c, "/api/v1/urls", origin)
    assert r.status_code == 204
    assert cors_fields(r) == {}
    r = c.create(GOOD, headers={"Origin": origin})
    assert r.status_code == 201  # the API still answers; only the browser keeps it from a page
    assert cors_fields(r) == {}


def test_options_without_preflight_lists_methods(anon):
    r = anon.request("OPTIONS", "/api/v1/urls", auth=False)
    assert r.status_code == 204
    assert "PATCH" in r.headers["Allow"]
    # Not a preflight: no Access-Control-Allow-Methods, only the "*" of every API answer.
    assert "Access-Control-Allow-Methods" not in r.headers
    assert r.headers.get("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize("value", ["example.com", "https://a.example/path", "ftp://a.example",
                                   "https://a.example, *x", "https://a b.example"])
def test_bad_cors_origins_refused_at_start(value):
    p = subprocess.run([str(stk.BIN_DIR / "shortener")], env={**stk.base_env(),
                       "CORS_ORIGINS": value}, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "CORS_ORIGINS" in p.stderr
