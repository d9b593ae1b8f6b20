"""The OpenAPI description (openapi/openapi.json) against the server: it serves exactly the
file in the repository, and what it answers on every endpoint it implements matches the
document: every path, method and status it answered is documented, and the status, the
Content-Type, the header fields and the body match what the document gives for it.

Endpoints and fields still being built have their tests here too, skipped with the reason;
enable each as its feature lands. Bodies are checked with schemacheck.py (a JSON Schema
subset that refuses keywords it does not know)."""

import json
import os
import pathlib
import re
import sys
import time
import urllib.parse

import pytest

import stack as stk
from schemacheck import Checker, UnknownKeyword

DOC_FILE = pathlib.Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
DOC = json.loads(DOC_FILE.read_text())
CHECK = Checker(DOC)
METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
PROBLEM_TYPE = "https://shortener.invalid/problems/"

# (path template, method, status) of every answer checked by conforms(), for the last test.
ANSWERED = set()


def unique(prefix="oa"):
    return f"{prefix}{os.urandom(5).hex()}"


# ---------------------------------------------------------------------------- the checks


def _template_re(template):
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p)
                                    for p in parts if p) + "$")


def doc_path(path):
    """The document's path that a request path matches: a concrete one first (OpenAPI's
    rule), else the template with the most literal characters (/{key}+ before /{key})."""
    if path in DOC["paths"]:
        return path
    matches = [t for t in DOC["paths"] if "{" in t and _template_re(t).match(path)]
    if not matches:
        return None
    return max(matches, key=lambda t: len(re.sub(r"\{[^}]+\}", "", t)))


def documented_response(method, template, status, r):
    """The response object the document gives for method on template with status."""
    item = DOC["paths"][template]
    op = item.get(method.lower())
    if op is None and method == "HEAD":
        op = item.get("get")  # every GET answers HEAD (info.description, "Methods")
    if op is None:
        assert status == 405, f"{method} {template} is not in the document, yet answered {status}"
        allowed = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
        listed = {m.upper() for m in item if m in METHODS} | ({"HEAD"} if "get" in item else set())
        assert allowed and allowed <= listed, \
            f"{method} {template}: Allow {allowed} names methods the document does not ({listed})"
        return CHECK.resolve(DOC["x-method-not-allowed"])
    responses = op["responses"]
    resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    assert resp is not None, \
        f"{method} {template} answered {status}, which the document does not list " \
        f"({sorted(responses)}): {r.text[:300]}"
    return CHECK.resolve(resp)


def _header_value(value, schema):
    if schema.get("type") == "integer":
        assert re.fullmatch(r"-?\d+", value), f"{value!r} is not an integer"
        return int(value)
    return value


def conforms(r, status=None):
    """Checks one answer against the document; returns it. status: the one expected."""
    method = r.request.method
    path = urllib.parse.urlsplit(r.request.url).path
    if status is not None:
        assert r.status_code == status, \
            f"{method} {path}: expected {status}, got {r.status_code}: {r.text[:300]}"
    template = doc_path(path)
    assert template, f"{method} {path}: no path of the document matches"
    resp = documented_response(method, template, r.status_code, r)
    what = f"{method} {template} {r.status_code}"

    for name, header in resp.get("headers", {}).items():
        header = CHECK.resolve(header)
        value = r.headers.get(name)
        if value is None:
            assert not header.get("required"), f"{what}: no {name} field: {dict(r.headers)}"
            continue
        schema = CHECK.resolve(header.get("schema", {}))
        errs = CHECK.errors(_header_value(value, schema), schema, name)
        assert not errs, f"{what}: field {name}: {errs}"

    content = resp.get("content")
    ctype = r.headers.get("Content-Type")
    if not content:
        assert not r.content, f"{what}: a body where the document has none: {r.text[:200]}"
    else:
        assert ctype, f"{what}: no Content-Type"
        base = ctype.split(";")[0].strip().lower()
        media = {k.lower(): v for k, v in content.items()}.get(base)
        assert media is not None, f"{what}: Content-Type {ctype!r}, document: {sorted(content)}"
        if method == "HEAD":
            assert not r.content, f"{what}: HEAD with a body"
        elif "schema" in media:
            if base == "application/json" or base.endswith("+json"):
                value = r.json()
            elif base.startswith("text/") or base == "image/svg+xml":
                value = r.text
            else:
                value = None  # binary: the media type is the check
            if value is not None:
                errs = CHECK.errors(value, media["schema"])
                assert not errs, f"{what}: the body does not match its schema:\n" + \
                    "\n".join(errs) + f"\nbody: {r.text[:500]}"
            if base == "application/problem+json":
                assert value["status"] == r.status_code, f"{what}: {value}"
    ANSWERED.add((template, method, r.status_code))
    return r


def conforms_problem(r, status, slug=None):
    body = conforms(r, status).json()
    if slug:
        assert body["type"] == PROBLEM_TYPE + slug, body
    return body


# ---------------------------------------------------------------------------- the document


def test_server_serves_the_repository_file(anon):
    r = conforms(anon.request("GET", "/api/v1/openapi.json"), 200)
    assert r.json() == DOC
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    assert r.headers["Cache-Control"] == "public, max-age=3600"
    assert re.fullmatch(r'"[0-9a-f]{32}"', r.headers["ETag"]), r.headers["ETag"]


def test_document_needs_no_api_key_and_ignores_a_bad_one(anon):
    r = conforms(anon.request("GET", "/api/v1/openapi.json",
                              headers={"Authorization": "Bearer sk_not_a_key"}), 200)
    assert r.json() == DOC


def test_document_head_and_conditional_get(anon):
    etag = anon.request("GET", "/api/v1/openapi.json").headers["ETag"]
    r = conforms(anon.request("HEAD", "/api/v1/openapi.json"), 200)
    assert r.headers["ETag"] == etag
    assert int(r.headers["Content-Length"]) == DOC_FILE.stat().st_size
    for inm in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = conforms(anon.request("GET", "/api/v1/openapi.json",
                                  headers={"If-None-Match": inm}), 304)
        assert r.headers["ETag"] == etag and not r.content, inm
    conforms(anon.request("HEAD", "/api/v1/openapi.json", headers={"If-None-Match": etag}), 304)
    r = conforms(anon.request("GET", "/api/v1/openapi.json",
                              headers={"If-None-Match": '"0123456789abcdef0123456789abcdef"'}),
                 200)
    assert r.json() == DOC


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_document_other_methods_405(anon, method):
    r = conforms(anon.request(method, "/api/v1/openapi.json"), 405)
    assert r.headers["Allow"] == "GET, HEAD"


def _schemas_in(node, where="#"):
    """Every schema the document holds: under "schema", components.schemas, x-event-data."""
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{where}/{k}"
            if k in ("schema", "x-event-data"):
                yield here, v
            elif where == "#/components" and k == "schemas":
                for name, s in v.items():
                    yield f"{here}/{name}", s
                continue
            yield from _schemas_in(v, here)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _schemas_in(v, f"{where}/{i}")


def test_every_schema_uses_only_what_the_checker_knows():
    found = list(_schemas_in(DOC))
    assert len(found) > 50, len(found)
    for where, schema in found:
        CHECK.check_schema(schema, where)


# What API.md names for each operation: the document must describe at least these statuses.
CONTRACT = {
    ("/api/v1/urls", "post"): {201, 400, 401, 409, 413, 415, 422, 429, 503},
    ("/api/v1/urls", "get"): {200, 400, 401, 429},
    ("/api/v1/urls", "options"): {204},
    ("/api/v1/urls/bulk", "post"): {200, 400, 401, 413, 429},
    ("/api/v1/urls/{key}", "get"): {200, 401, 404, 429},
    ("/api/v1/urls/{key}", "patch"): {200, 400, 401, 404, 429},
    ("/api/v1/urls/{key}", "delete"): {204, 401, 404, 429},
    ("/api/v1/urls/{key}/stats", "get"): {200, 400, 401, 404, 429},
    ("/api/v1/urls/{key}/live", "get"): {200, 401, 404},
    ("/api/v1/openapi.json", "get"): {200, 304},
    ("/api/v1/openapi.json", "head"): {200, 304},
    ("/{key}", "get"): {301, 302, 307, 308, 401, 404, 429, 503},
    ("/{key}", "head"): {301, 302, 307, 308, 401, 404},
    ("/{key}", "post"): {301, 302, 307, 308, 401, 404, 429},
    ("/{key}+", "get"): {200, 404},
    ("/{key}/qr", "get"): {200, 400, 404},
    ("/", "get"): {200},
    ("/healthz", "get"): {200},
    ("/readyz", "get"): {200, 503},
    ("/metrics", "get"): {200},
}


def test_document_covers_the_contract():
    for (path, method), statuses in CONTRACT.items():
        op = DOC["paths"][path][method]
        missing = statuses - {int(s) for s in op["responses"]}
        assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"
        for status in statuses:
            resp = CHECK.resolve(op["responses"][str(status)])
            if status in (429, 503):
                assert CHECK.resolve(resp["headers"]["Retry-After"])["required"], (path, status)
            if 400 <= status and "content" in resp and path.startswith("/api/"):
                assert set(resp["content"]) == {"application/problem+json"}, (path, status)
    link = DOC["components"]["schemas"]["Link"]
    assert set(link["required"]) == {"key", "short_url", "url", "created_at", "expires_at"}
    assert set(link["properties"]) == {
        "key", "short_url", "url", "created_at", "expires_at", "visits", "redirect_status",
        "max_visits", "valid_from", "tags", "public_stats", "password_protected"}
    create = DOC["components"]["schemas"]["CreateRequest"]
    assert set(create["properties"]) == {
        "url", "alias", "expires_at", "ttl", "redirect_status", "max_visits", "valid_from",
        "password", "tags", "public_stats"}
    assert set(DOC["components"]["schemas"]["Problem"]["required"]) == {
        "type", "title", "status", "detail"}
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"] == {**schemes["apiKeyHeader"], "type": "apiKey",
                                       "in": "header", "name": "X-API-Key"}
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/{key}", "/"):
        assert DOC["paths"][path]["get"]["security"] == [], path


def test_checker_refuses_what_it_cannot_check_and_catches_mistakes():
    link = {"$ref": "#/components/schemas/Link"}
    good = {"key": "abc", "short_url": "http://h/abc", "url": "https://e.com/",
            "created_at": "2030-01-01T00:00:00Z", "expires_at": None}
    assert CHECK.errors(good, link) == []
    assert CHECK.errors({**good, "expires_at": "2030-01-01T00:00:00+02:00"}, link) == []
    for bad in ({k: v for k, v in good.items() if k != "url"}, {**good, "extra": 1},
                {**good, "expires_at": "2030-01-01"}, {**good, "expires_at": 5},
                {**good, "key": "a b"}, {**good, "redirect_status": 303},
                {**good, "tags": ["a", "a"]}, {**good, "visits": -1}, {**good, "visits": True},
                {**good, "url": "no scheme"}, {**good, "created_at": "2030-02-30T00:00:00Z"}):
        assert CHECK.errors(bad, link), bad
    bulk = {"$ref": "#/components/schemas/BulkResult"}
    assert CHECK.errors({"items": [{"status": 201, "link": good}]}, bulk) == []
    assert CHECK.errors({"items": [{"status": 201, "problem": {}}]}, bulk)
    create = {"$ref": "#/components/schemas/CreateRequest"}
    assert CHECK.errors({"url": "https://e.com/", "ttl": 5}, create) == []
    assert CHECK.errors({"url": "https://e.com/", "ttl": 5, "expires_at": "2030-01-01T00:00:00Z"},
                        create)
    for unknown in ({"type": "string", "contains": {}}, {"type": "string", "format": "email"},
                    {"type": "decimal"}, {"$ref": "other.json#/x"}):
        with pytest.raises(UnknownKeyword):
            CHECK.errors("x", unknown)


@pytest.fixture
def stranger(extra_server):
    """A client without credentials, seen as an address of its own: its server trusts 127.0.0.1
    as a proxy, so X-Forwarded-For names the address, and the 401s here do not spend the
    failed-authentication budget (AUTH_FAILURE_RATE) of 127.0.0.1 that other files count on."""
    c = stk.Client(extra_server(TRUSTED_PROXIES="127.0.0.1"))
    c.s.headers["X-Forwarded-For"] = f"198.51.100.{1 + os.urandom(1)[0] % 254}"
    return c


# ---------------------------------------------------------------------------- create


def test_create_json_201(client, server):
    r = conforms(client.create("https://example.com/openapi/json"), 201)
    key = r.json()["key"]
    assert r.headers["Location"] == f"/api/v1/urls/{key}"
    assert stk.KEY_RE.match(key)


def test_create_form_201(client):
    r = conforms(client.request(
        "POST", "/api/v1/urls", data={"url": "https://example.com/openapi/form", "ttl": "60"}),
        201)
    assert r.json()["url"] == "https://example.com/openapi/form"


def test_create_alias_201_then_409(client, other_client):
    alias = unique("oa-")
    conforms(client.create("https://example.com/a", alias=alias), 201)
    conforms_problem(other_client.create("https://example.com/b", alias=alias), 409,
                     "alias-taken")


def test_create_never_expiring_link_has_null_expiry(extra_server, api_key):
    c = stk.Client(extra_server(DEFAULT_TTL=0), api_key)
    r = conforms(c.create("https://example.com/forever"), 201)
    assert r.json()["expires_at"] is None


@pytest.mark.parametrize("body", [
    {}, {"url": "ftp://example.com/"}, {"url": "https://example.com/", "alias": "a"},
    {"url": "https://example.com/", "alias": "healthz"}, {"url": "https://example.com/", "ttl": 0},
    {"url": "https://example.com/", "expires_at": "2001-01-01T00:00:00Z"},
    {"url": "https://example.com/", "ttl": 60, "expires_at": "2099-01-01T00:00:00Z"},
    "not json", ["https://example.com/"],
])
def test_create_400(client, body):
    if isinstance(body, str):
        r = client.request("POST", "/api/v1/urls", data=body,
                           headers={"Content-Type": "application/json"})
    else:
        r = client.request("POST", "/api/v1/urls", json=body)
    conforms_problem(r, 400)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk_unknown"},
                                     {"X-API-Key": "sk_unknown"}])
def test_create_401(stranger, headers):
    r = stranger.request("POST", "/api/v1/urls", json={"url": "https://example.com/"},
                         headers=headers)
    conforms_problem(r, 401, "unauthorized")


def test_create_413(client):
    body = b'{"url":"https://example.com/","pad":"' + b"x" * (64 * 1024) + b'"}'
    conforms_problem(client.request("POST", "/api/v1/urls", data=body,
                                    headers={"Content-Type": "application/json"}),
                     413, "body-too-large")


def test_create_415(client):
    conforms_problem(client.request("POST", "/api/v1/urls", data="url=https://example.com/",
                                    headers={"Content-Type": "text/plain"}),
                     415, "unsupported-media-type")


def test_create_429_with_ratelimit_fields(stack, server):
    key, _ = stack.create_apikey(unique("oa-slow-"), rate="1/min")
    c = stk.Client(server, key)
    r = conforms(c.create("https://example.com/once"), 201)
    assert r.headers["RateLimit-Policy"] == '"default";q=1;w=60', r.headers
    assert r.headers["RateLimit"].startswith('"default";r=0;t='), r.headers
    r = conforms(c.create("https://example.com/twice"), 429)
    assert r.json()["type"] == PROBLEM_TYPE + "rate-limited"
    assert int(r.headers["Retry-After"]) >= 1


def test_create_with_every_field_conforms(client):
    """The fields of API.md's table: whichever of them the server keeps, its answer must match
    the Link schema (with additionalProperties false, nothing undocumented comes back)."""
    r = conforms(client.request("POST", "/api/v1/urls",
                                headers={"Idempotency-Key": unique("idem-")},
                                json={"url": "https://example.com/all", "alias": unique("oa-"),
                                      "ttl": 3600, "redirect_status": 308, "max_visits": 5,
                                      "valid_from": "2020-01-01T00:00:00Z",
                                      "password": "correct horse", "tags": ["a", "b-2"],
                                      "public_stats": True}), 201)
    assert "password" not in r.json()


def test_create_with_every_field_returns_them(client):
    r = conforms(client.request("POST", "/api/v1/urls", data={
        "url": "https://example.com/all-form", "redirect_status": "307", "max_visits": "5",
        "valid_from": "2020-01-01T00:00:00Z", "password": "correct horse",
        "tags": ["a", "b-2"], "public_stats": "true"}), 201)
    body = r.json()
    assert body["redirect_status"] == 307 and body["max_visits"] == 5
    assert body["tags"] == ["a", "b-2"] and body["public_stats"] is True
    assert body["password_protected"] is True and "password" not in body
    for bad in ({"redirect_status": 303}, {"max_visits": 0}, {"tags": ["a b"]},
                {"password": "short"}, {"public_stats": "yes"}):
        conforms(client.create("https://example.com/bad", **bad), 400)


def test_create_idempotency_answers(client):
    idem = unique("idem-")
    first = conforms(client.create("https://example.com/idem", headers={"Idempotency-Key": idem}),
                     201)
    again = conforms(client.create("https://example.com/idem", headers={"Idempotency-Key": idem}),
                     201)
    assert again.json() == first.json()
    conforms(client.create("https://example.com/other", headers={"Idempotency-Key": idem}), 422)
    conforms(client.create("https://example.com/idem", headers={"Idempotency-Key": ""}), 400)


# ---------------------------------------------------------------------------- read, delete


def test_read_200_404_401(client, other_client, stranger):
    key = client.create_ok("https://example.com/read")["key"]
    r = conforms(client.read(key), 200)
    assert r.json()["key"] == key and r.json()["visits"] == 0
    conforms(client.request("HEAD", f"/api/v1/urls/{key}"), 200)
    conforms_problem(other_client.read(key), 404, "not-found")
    conforms_problem(client.read("nosuchkey9"), 404, "not-found")
    conforms_problem(client.read("a"), 404, "not-found")
    conforms_problem(stranger.read(key), 401, "unauthorized")


def test_delete_204_404_401(client, other_client, stranger):
    key = client.create_ok("https://example.com/delete")["key"]
    conforms_problem(stranger.delete(key), 401, "unauthorized")
    conforms_problem(other_client.delete(key), 404, "not-found")
    conforms(client.delete(key), 204)
    conforms_problem(client.delete(key), 404, "not-found")
    conforms(client.resolve(key), 404)


@pytest.mark.parametrize("method, path", [
    ("PUT", "/api/v1/urls/{key}"),
    ("POST", "/api/v1/urls/{key}"),
    ("PUT", "/api/v1/urls"),
    ("DELETE", "/api/v1/urls"),
    ("DELETE", "/{key}"),
    ("PUT", "/{key}"),
    ("POST", "/healthz"),
    ("DELETE", "/readyz"),
    ("PUT", "/metrics"),
    ("OPTIONS", "/healthz"),
    ("OPTIONS", "/{key}"),
])
def test_405_names_documented_methods(client, method, path):
    key = client.create_ok("https://example.com/405")["key"]
    conforms_problem(client.request(method, path.replace("{key}", key)), 405,
                     "method-not-allowed")


# ---------------------------------------------------------------------------- redirects


def test_redirect_301_get_and_head(client, anon):
    key = client.create_ok("https://example.com/go")["key"]
    r = conforms(anon.resolve(key), 301)
    assert r.headers["Location"] == "https://example.com/go"
    assert r.headers["Cache-Control"].startswith("private, max-age=")
    conforms(anon.resolve(key, method="HEAD"), 301)


@pytest.mark.parametrize("key", ["nosuchkey1", "a", "x" * 65])
def test_redirect_404_problem_and_html(anon, key):
    conforms_problem(anon.resolve(key), 404, "not-found")
    r = conforms(anon.resolve(key, headers={"Accept": "text/html"}), 404)
    assert r.headers["Content-Type"].startswith("text/html")
    conforms(anon.resolve(key, method="HEAD"), 404)


@pytest.mark.parametrize("status", [302, 307, 308])
def test_redirect_other_statuses(client, anon, status):
    key = client.create_ok("https://example.com/st", redirect_status=status)["key"]
    r = conforms(anon.resolve(key), status)
    if status in (302, 307):
        assert r.headers["Cache-Control"] == "no-store"


def test_password_form_and_unlock(client, anon):
    key = client.create_ok("https://example.com/secret", password="correct horse")["key"]
    r = conforms(anon.resolve(key), 401)
    assert r.headers["Content-Type"].startswith("text/html") and "password" in r.text
    conforms(anon.request("POST", f"/{key}", data={"password": "wrong password"}), 401)
    r = conforms(anon.request("POST", f"/{key}", data={"password": "correct horse"}), 301)
    assert r.headers["Location"] == "https://example.com/secret"
    assert r.headers["Cache-Control"] == "no-store"


def test_public_stats_page(client, anon):
    key = client.create_ok("https://example.com/pub", public_stats=True)["key"]
    r = conforms(anon.request("GET", f"/{key}+"), 200)
    assert r.headers["Content-Type"].startswith("text/html")
    conforms(anon.request("GET", f"/{key}+", headers={"If-None-Match": r.headers["ETag"]}), 304)
    conforms(anon.request("HEAD", f"/{key}+"), 200)
    private = client.create_ok("https://example.com/private")["key"]
    conforms(anon.request("GET", f"/{private}+"), 404)
    conforms(anon.request("GET", "/nosuchkey3+", headers={"Accept": "text/html"}), 404)


def test_qr_code(client, anon):
    key = client.create_ok("https://example.com/qr")["key"]
    r = conforms(anon.request("GET", f"/{key}/qr"), 200)
    assert r.headers["Content-Type"].startswith("image/svg+xml") and "<svg" in r.text
    conforms(anon.request("GET", f"/{key}/qr", headers={"If-None-Match": r.headers["ETag"]}), 304)
    conforms(anon.request("HEAD", f"/{key}/qr"), 200)
    r = conforms(anon.request("GET", f"/{key}/qr", params={"format": "png", "size": 64}), 200)
    assert r.headers["Content-Type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    for params in ({"format": "gif"}, {"size": 63}, {"size": 2049}, {"size": "big"}):
        conforms(anon.request("GET", f"/{key}/qr", params=params), 400)
    conforms(anon.request("GET", "/nosuchkey2/qr"), 404)
    conforms(anon.request("POST", f"/{key}/qr"), 405)


def test_web_page(anon):
    r = conforms(anon.request("GET", "/"), 200)
    assert "script-src" in r.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in r.headers["Content-Security-Policy"]
    conforms(anon.request("GET", "/", headers={"If-None-Match": r.headers["ETag"]}), 304)
    conforms(anon.request("HEAD", "/"), 200)
    conforms(anon.request("POST", "/"), 405)
    for name in ("app.css", "app.js", "stats.js", "public.js"):
        r = conforms(anon.request("GET", f"/static/{name}"), 200)
        conforms(anon.request("GET", f"/static/{name}",
                              headers={"If-None-Match": r.headers["ETag"]}), 304)


# ---------------------------------------------------------------------------- list, edit, bulk


def test_list(stack, server, anon):
    key, _ = stack.create_apikey(unique("oa-list-"))
    c = stk.Client(server, key)
    made = [c.create_ok(f"https://example.com/list/{i}", tags=["t1"])["key"] for i in range(3)]
    r = conforms(c.request("GET", "/api/v1/urls", params={"limit": 2}), 200)
    page = r.json()
    assert [i["key"] for i in page["items"]] == made[::-1][:2]
    assert page["next_cursor"]
    r = conforms(c.request("GET", "/api/v1/urls",
                           params={"limit": 2, "cursor": page["next_cursor"]}), 200)
    assert [i["key"] for i in r.json()["items"]] == made[:1] and r.json()["next_cursor"] is None
    conforms(c.request("GET", "/api/v1/urls", params={"tag": "t1", "q": "list"}), 200)
    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"cursor": "garbage"}):
        conforms(c.request("GET", "/api/v1/urls", params=params), 400)
    conforms(anon.request("GET", "/api/v1/urls"), 401)


def test_patch(client, other_client):
    key = client.create_ok("https://example.com/patch")["key"]
    r = conforms(client.request("PATCH", f"/api/v1/urls/{key}",
                                json={"url": "https://example.com/patched", "expires_at": None,
                                      "tags": ["x"]}), 200)
    assert r.json()["url"] == "https://example.com/patched" and r.json()["expires_at"] is None
    for body in ({}, {"key": "other"}, {"unknown": 1}, {"url": "ftp://x/"}):
        conforms(client.request("PATCH", f"/api/v1/urls/{key}", json=body), 400)
    conforms(other_client.request("PATCH", f"/api/v1/urls/{key}", json={"tags": []}), 404)
    conforms(client.request("PATCH", f"/api/v1/urls/{key}", data="tags=x",
                            headers={"Content-Type": "text/plain"}), 415)


def test_bulk(client):
    taken = client.create_ok("https://example.com/taken", alias=unique("oa-"))["key"]
    r = conforms(client.request("POST", "/api/v1/urls/bulk", json=[
        {"url": "https://example.com/b1"}, {"url": "ftp://nope/"},
        {"url": "https://example.com/b3", "alias": taken}]), 200)
    items = r.json()["items"]
    assert [i["status"] for i in items] == [201, 400, 409]
    for body in ([], [{"url": "https://example.com/"}] * 1001, {"url": "https://example.com/"}):
        conforms(client.request("POST", "/api/v1/urls/bulk", json=body), 400)


# ---------------------------------------------------------------------------- stats, live


def test_stats(client, other_client, anon):
    key = client.create_ok("https://example.com/stats")["key"]
    anon.resolve(key)
    r = conforms(client.request("GET", f"/api/v1/urls/{key}/stats",
                                params={"interval": "hour"}), 200)
    body = r.json()
    assert body["total"] == body["human"] + body["bots"]
    for params in ({"interval": "week"}, {"from": "2020-01-01T00:00:00Z",
                                          "to": "2022-01-01T00:00:00Z"},
                   {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}):
        conforms(client.request("GET", f"/api/v1/urls/{key}/stats", params=params), 400)
    conforms(other_client.request("GET", f"/api/v1/urls/{key}/stats"), 404)
    conforms(anon.request("GET", f"/api/v1/urls/{key}/stats"), 401)
    public = client.create_ok("https://example.com/pubstats", public_stats=True)["key"]
    conforms(anon.request("GET", f"/api/v1/urls/{public}/stats"), 200)


def test_live(client, other_client, anon):
    key = client.create_ok("https://example.com/live")["key"]
    conforms_problem(anon.request("GET", f"/api/v1/urls/{key}/live"), 401, "unauthorized")
    conforms_problem(other_client.request("GET", f"/api/v1/urls/{key}/live"), 404, "not-found")
    conforms_problem(client.request("POST", f"/api/v1/urls/{key}/live"), 405,
                     "method-not-allowed")
    conforms(client.request("HEAD", f"/api/v1/urls/{key}/live"), 200)
    r = client.request("GET", f"/api/v1/urls/{key}/live", stream=True)
    try:
        assert r.status_code == 200
        ctype = r.headers["Content-Type"].split(";")[0]
        media = DOC["paths"]["/api/v1/urls/{key}/live"]["get"]["responses"]["200"]["content"]
        assert ctype in media
        assert r.headers["Cache-Control"] == "no-store"
        lines = []
        for line in r.iter_lines(decode_unicode=True):
            if line == "" and lines:
                break
            lines.append(line)
        assert "event: visits" in lines, lines
        data = json.loads(next(x for x in lines if x.startswith("data:"))[5:])
        assert CHECK.errors(data, media[ctype]["x-event-data"]) == [], data
        assert data == {"key": key, "total": 0}
        ANSWERED.add(("/api/v1/urls/{key}/live", "GET", 200))
    finally:
        r.close()


# ---------------------------------------------------------------------------- operations, CORS


def test_healthz_readyz_metrics(anon):
    conforms(anon.request("GET", "/healthz"), 200)
    conforms(anon.request("HEAD", "/healthz"), 200)
    conforms(anon.request("GET", "/readyz"), 200)
    r = conforms(anon.request("GET", "/metrics"), 200)
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize("path", ["/api/v1/urls", "/api/v1/urls/{key}", "/api/v1/openapi.json",
                                  "/api/v1/urls/bulk", "/api/v1/urls/{key}/stats",
                                  "/api/v1/urls/{key}/live"])
def test_cors_preflight_and_plain_options(anon, path):
    p = path.replace("{key}", "somekey1")
    r = conforms(anon.request("OPTIONS", p, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"}), 204)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    r = conforms(anon.request("OPTIONS", p), 204)
    assert "GET" in r.headers["Allow"]


def test_503_without_kgs(stack, api_key):
    """A server whose kgs socket leads nowhere: not ready, and cannot make generated keys."""
    srv = stack.start_shortener(wait_ready=False, KGS_SOCKET=stack.root / "no-kgs.sock")
    try:
        c = stk.Client(srv, api_key)
        # A server starts distrusting Redis until its first resync of the change journal, so
        # for a moment the detail names redis too; kgs must be the only one left after that.
        deadline = time.monotonic() + 10
        while True:
            body = conforms_problem(c.request("GET", "/readyz"), 503, "not-ready")
            if body["detail"] == "not ready: kgs unavailable" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert body["detail"] == "not ready: kgs unavailable", body
        conforms_problem(c.create("https://example.com/no-kgs"), 503, "unavailable")
        conforms(c.create("https://example.com/no-kgs", alias=unique("oa-")), 201)
    finally:
        srv.stop()


# ---------------------------------------------------------------------------- last: coverage

# The answers the server gives today that the tests above must have checked.
EXERCISED_TODAY = {
    ("/api/v1/urls", "POST", s) for s in (201, 400, 401, 409, 413, 415, 429, 503)} | {
    ("/api/v1/urls/{key}", "GET", 200), ("/api/v1/urls/{key}", "GET", 404),
    ("/api/v1/urls/{key}", "GET", 401), ("/api/v1/urls/{key}", "HEAD", 200),
    ("/api/v1/urls/{key}", "DELETE", 204), ("/api/v1/urls/{key}", "DELETE", 404),
    ("/api/v1/urls/{key}", "DELETE", 401), ("/api/v1/urls/{key}", "PUT", 405),
    ("/{key}", "GET", 301), ("/{key}", "HEAD", 301), ("/{key}", "GET", 404),
    ("/{key}", "HEAD", 404), ("/{key}", "DELETE", 405),
    ("/healthz", "GET", 200), ("/healthz", "HEAD", 200), ("/readyz", "GET", 200),
    ("/readyz", "GET", 503), ("/metrics", "GET", 200),
    ("/api/v1/openapi.json", "GET", 200), ("/api/v1/openapi.json", "GET", 304),
    ("/api/v1/openapi.json", "HEAD", 200), ("/api/v1/openapi.json", "HEAD", 304),
    ("/api/v1/openapi.json", "POST", 405), ("/api/v1/urls", "OPTIONS", 204),
    ("/api/v1/urls/{key}/stats", "GET", 200), ("/api/v1/urls/{key}/stats", "GET", 400),
    ("/api/v1/urls/{key}/stats", "GET", 401), ("/api/v1/urls/{key}/stats", "GET", 404),
    ("/api/v1/urls/{key}/live", "GET", 200), ("/api/v1/urls/{key}/live", "GET", 401),
    ("/api/v1/urls/{key}/live", "GET", 404), ("/api/v1/urls/{key}/live", "HEAD", 200),
    ("/api/v1/urls/{key}/live", "POST", 405),
}


def test_zz_every_answer_documented_and_today_s_endpoints_covered(request):
    this = sys.modules[__name__]
    wanted = {n for n, f in vars(this).items() if n.startswith("test_") and callable(f)
              and not any(m.name == "skip" for m in getattr(f, "pytestmark", []))}
    ran = {getattr(i, "originalname", i.name) for i in request.session.items
           if getattr(i, "module", None) is this}
    if not wanted <= ran:
        pytest.skip("only when the whole file runs")
    # conforms() checked each answer as it came; here, once more, all of them together.
    undocumented = []
    for template, method, status in sorted(ANSWERED):
        item = DOC["paths"][template]
        op = item.get(method.lower()) or (item.get("get") if method == "HEAD" else None)
        if not (op and str(status) in op["responses"]) and not (op is None and status == 405):
            undocumented.append((template, method, status))
    assert not undocumented, f"answers the document does not list: {undocumented}"
    missing = EXERCISED_TODAY - ANSWERED
    assert not missing, f"not exercised: {sorted(missing)}"
