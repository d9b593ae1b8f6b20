"""Bad input of every kind. Each case asserts the status, a complete problem+json body and
that nothing was stored (the urls table keeps its row count, and the alias named, if any,
does not exist)."""

import json

import pytest

import stack as stk
from stack import assert_problem

GOOD = "https://example.com/ok"
UNKNOWN_KEY = "sk_" + "Q" * 32


class Case:
    def __init__(self, cid, status, body=None, *, method="POST", path="/api/v1/urls",
                 ctype="application/json", auth="valid", alias=None, raw=None, chunked=False):
        self.id, self.status, self.method, self.path = cid, status, method, path
        self.ctype, self.auth, self.alias, self.chunked = ctype, auth, alias, chunked
        if raw is not None:
            self.data = raw
        elif body is None:
            self.data = None
        elif ctype.startswith("application/x-www-form-urlencoded"):
            self.data = body if isinstance(body, (bytes, str)) else None
            assert self.data is not None
        else:
            self.data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        if isinstance(self.data, str):
            self.data = self.data.encode()


def j(**fields):
    return fields


FORM = "application/x-www-form-urlencoded"


def cases():
    c = [
        # --- malformed bodies
        Case("json-truncated", 400, raw=b'{"url": "https://example.com/x"'),
        Case("json-array", 400, raw=b'["https://example.com/x"]'),
        Case("json-string", 400, raw=b'"https://example.com/x"'),
        Case("json-number", 400, raw=b"42"),
        Case("json-null", 400, raw=b"null"),
        Case("empty-body", 400, raw=b""),
        Case("json-trailing-garbage", 400, raw=b'{"url": "https://example.com/x"} {"a":1}'),
        Case("json-raw-nul-byte", 400, raw=b'{"url": "https://example.com/\x00x"}'),
        Case("json-invalid-utf8", 400, raw=b'{"url": "https://example.com/\xff\xfe"}'),
        Case("json-deeply-nested", 400, raw=b"[" * 20000 + b"]" * 20000),
        Case("json-nested-in-field", 400, raw=b'{"url": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        Case("json-single-quotes", 400, raw=b"{'url': 'https://example.com/x'}"),
        # --- url missing or invalid
        Case("url-missing", 400, j(alias="nourl1")),
        Case("url-null", 400, j(url=None, alias="nourl2")),
        Case("url-number", 400, j(url=123, alias="nourl3")),
        Case("url-list", 400, j(url=[GOOD], alias="nourl4")),
        Case("url-object", 400, j(url={"href": GOOD})),
        Case("url-empty", 400, j(url="")),
        Case("url-blank", 400, j(url="   ")),
        Case("url-no-scheme", 400, j(url="example.com/path")),
        Case("url-relative", 400, j(url="/just/a/path")),
        Case("url-scheme-relative", 400, j(url="//example.com/x")),
        Case("url-ftp", 400, j(url="ftp://example.com/file")),
        Case("url-javascript", 400, j(url="javascript:alert(1)")),
        Case("url-host-of-dots", 400, j(url="https://.../b?q=1#frag")),
        Case("url-host-empty-label", 400, j(url="https://a..b/")),
        Case("url-data", 400, j(url="data:text/html,<script>alert(1)</script>")),
        Case("url-file", 400, j(url="file:///etc/passwd")),
        Case("url-mailto", 400, j(url="mailto:someone@example.com")),
        Case("url-no-host", 400, j(url="http://")),
        Case("url-empty-host", 400, j(url="http:///path/only")),
        Case("url-space-in-host", 400, j(url="https://exa mple.com/")),
        Case("url-space-in-path", 400, j(url="https://example.com/a b")),
        Case("url-leading-space", 400, j(url=" https://example.com/")),
        Case("url-crlf", 400, j(url="https://example.com/\r\nSet-Cookie: a=b", alias="crlf-u")),
        Case("url-lf", 400, j(url="https://example.com/\nx")),
        Case("url-tab", 400, j(url="https://example.com/\tx")),
        Case("url-nul-escape", 400, j(url="https://example.com/\u0000x", alias="nul-url")),
        Case("url-del-char", 400, j(url="https://example.com/\x7fx")),
        Case("url-c1-control", 400, j(url="https://example.com/a\u0085b")),
        Case("url-unclosed-ipv6", 400, j(url="http://[::1/x")),
        Case("url-8193-bytes", 400,
             j(url="https://example.com/" + "a" * (8193 - len("https://example.com/")))),
        Case("url-64k", 400,
             j(url="https://example.com/" + "a" * 60000)),
        # --- aliases
        Case("alias-too-short", 400, j(url=GOOD, alias="ab"), alias="ab"),
        Case("alias-too-long", 400, j(url=GOOD, alias="a" * 65), alias="a" * 65),
        Case("alias-space", 400, j(url=GOOD, alias="has space")),
        Case("alias-slash", 400, j(url=GOOD, alias="a/b/c")),
        Case("alias-dot", 400, j(url=GOOD, alias="dot.ted"), alias="dot.ted"),
        Case("alias-percent", 400, j(url=GOOD, alias="a%20b")),
        Case("alias-unicode", 400, j(url=GOOD, alias="caf\u00e9s")),
        Case("alias-crlf", 400, j(url=GOOD, alias="ab\r\ncd")),
        Case("alias-nul", 400, j(url=GOOD, alias="abc\u0000def")),
        Case("alias-number", 400, j(url=GOOD, alias=12345)),
        Case("alias-null-byte-raw", 400, raw=b'{"url":"https://example.com/","alias":"ab\x00cd"}'),
        # --- reserved paths
        Case("reserved-api", 400, j(url=GOOD, alias="api"), alias="api"),
        Case("reserved-API", 400, j(url=GOOD, alias="API"), alias="API"),
        Case("reserved-healthz", 400, j(url=GOOD, alias="healthz"), alias="healthz"),
        Case("reserved-readyz", 400, j(url=GOOD, alias="readyz"), alias="readyz"),
        # /api/v1/urls/bulk is the bulk create: no link may be read or edited there.
        Case("reserved-bulk", 400, j(url=GOOD, alias="bulk"), alias="bulk"),
        Case("reserved-metrics", 400, j(url=GOOD, alias="metrics"), alias="metrics"),
        Case("reserved-Metrics", 400, j(url=GOOD, alias="Metrics"), alias="Metrics"),
        Case("reserved-static", 400, j(url=GOOD, alias="static"), alias="static"),
        Case("reserved-HealthZ", 400, j(url=GOOD, alias="HealthZ"), alias="HealthZ"),
        # --- expiries
        Case("ttl-zero", 400, j(url=GOOD, ttl=0, alias="ttl-zero")),
        Case("ttl-negative", 400, j(url=GOOD, ttl=-5)),
        Case("ttl-string", 400, j(url=GOOD, ttl="60")),
        Case("ttl-float", 400, j(url=GOOD, ttl=1.5)),
        Case("ttl-bool", 400, j(url=GOOD, ttl=True)),
        Case("ttl-huge", 400, raw=b'{"url":"https://example.com/","ttl":99999999999999999999999}'),
        Case("ttl-beyond-year-9999", 400, j(url=GOOD, ttl=10 ** 15)),
        Case("ttl-and-expires-at", 400, j(url=GOOD, ttl=60, expires_at="2099-01-01T00:00:00Z")),
        Case("expires-at-past", 400, j(url=GOOD, expires_at="2001-01-01T00:00:00Z")),
        Case("expires-at-garbage", 400, j(url=GOOD, expires_at="tomorrow")),
        Case("expires-at-empty", 400, j(url=GOOD, expires_at="")),
        Case("expires-at-number", 400, j(url=GOOD, expires_at=4102444800)),
        Case("expires-at-bad-date", 400, j(url=GOOD, expires_at="2099-02-30T00:00:00Z")),
        Case("expires-at-bad-hour", 400, j(url=GOOD, expires_at="2099-01-01T25:00:00Z")),
        # --- form bodies
        Case("form-no-url", 400, "alias=formnourl", ctype=FORM, alias="formnourl"),
        Case("form-ftp", 400, "url=ftp%3A%2F%2Fexample.com%2F", ctype=FORM),
        Case("form-crlf-url", 400, "url=https%3A%2F%2Fexample.com%2F%0D%0AX%3A%20y", ctype=FORM),
        Case("form-nul-url", 400, "url=https%3A%2F%2Fexample.com%2F%00x", ctype=FORM),
        Case("form-nul-alias", 400, "url=https%3A%2F%2Fexample.com%2F&alias=abc%00def",
             ctype=FORM),
        Case("form-crlf-alias", 400, "url=https%3A%2F%2Fexample.com%2F&alias=ab%0D%0Acd",
             ctype=FORM),
        Case("form-ttl-zero", 400, "url=https%3A%2F%2Fexample.com%2F&ttl=0", ctype=FORM),
        Case("form-ttl-word", 400, "url=https%3A%2F%2Fexample.com%2F&ttl=soon", ctype=FORM),
        Case("form-ttl-negative", 400, "url=https%3A%2F%2Fexample.com%2F&ttl=-1", ctype=FORM),
        Case("form-reserved", 400, "url=https%3A%2F%2Fexample.com%2F&alias=readyz", ctype=FORM,
             alias="readyz"),
        # --- sizes
        Case("body-64k-plus-1", 413, raw=b'{"url":"https://example.com/","pad":"'
             + b"x" * (65537 - len(b'{"url":"https://example.com/","pad":""}')) + b'"}'),
        Case("body-300k", 413, raw=b'{"url":"https://example.com/","pad":"'
             + b"x" * 300000 + b'"}'),
        Case("body-4m", 413, raw=b'{"url":"https://example.com/","pad":"'
             + b"x" * 4000000 + b'"}'),
        Case("body-100k-chunked", 413, raw=b'{"url":"https://example.com/","pad":"'
             + b"x" * 100000 + b'"}', chunked=True),
        # --- content types
        Case("ctype-text-plain", 415, j(url=GOOD), ctype="text/plain"),
        Case("ctype-xml", 415, raw=b"<url>https://example.com/</url>", ctype="application/xml"),
        Case("ctype-octet-stream", 415, j(url=GOOD), ctype="application/octet-stream"),
        Case("ctype-multipart", 415, raw=b"--b\r\nContent-Disposition: form-data; name=\"url\""
             b"\r\n\r\nhttps://example.com/\r\n--b--\r\n", ctype="multipart/form-data; boundary=b"),
        Case("ctype-json-lookalike", 415, j(url=GOOD), ctype="application/jsonx"),
        # --- wrong methods
        Case("put-collection", 405, j(url=GOOD, alias="put-coll"), method="PUT",
             alias="put-coll"),
        Case("patch-collection", 405, j(url=GOOD), method="PATCH"),
        Case("delete-collection", 405, None, method="DELETE"),
        Case("post-link", 405, j(url=GOOD), method="POST", path="/api/v1/urls/abcdefg"),
        Case("put-link", 405, j(url=GOOD), method="PUT", path="/api/v1/urls/abcdefg"),
        # PATCH edits a link and POST /{key} opens a password link: neither exists here.
        Case("patch-link", 404, j(url=GOOD), method="PATCH", path="/api/v1/urls/abcdefg"),
        Case("post-redirect", 404, j(url=GOOD), method="POST", path="/abcdefg"),
        Case("put-redirect", 405, j(url=GOOD), method="PUT", path="/abcdefg"),
        Case("delete-redirect", 405, None, method="DELETE", path="/abcdefg"),
        # --- API keys
        Case("no-key", 401, j(url=GOOD, alias="nokey-a"), auth=None, alias="nokey-a"),
        Case("unknown-key", 401, j(url=GOOD, alias="unk-a"), auth="unknown", alias="unk-a"),
        Case("unknown-x-api-key", 401, j(url=GOOD), auth="x-unknown"),
        Case("malformed-key", 401, j(url=GOOD), auth="malformed"),
        Case("revoked-key", 401, j(url=GOOD, alias="revoked-a"), auth="revoked",
             alias="revoked-a"),
        Case("revoked-x-api-key", 401, j(url=GOOD), auth="x-revoked"),
        Case("basic-auth", 401, j(url=GOOD), auth="basic"),
        Case("empty-bearer", 401, j(url=GOOD), auth="empty-bearer"),
        Case("key-with-trailing-junk", 401, j(url=GOOD), auth="junk"),
    ]
    return c


CASES = cases()


@pytest.fixture(scope="module")
def revoked_key(stack):
    key, key_id = stack.create_apikey("revoked-for-bad-input")
    stack.revoke_apikey(key_id)
    return key


def auth_headers(mode, api_key, revoked):
    return {
        None: {},
        "valid": {"Authorization": f"Bearer {api_key}"},
        "unknown": {"Authorization": f"Bearer {UNKNOWN_KEY}"},
        "x-unknown": {"X-API-Key": UNKNOWN_KEY},
        "malformed": {"Authorization": "Bearer not-a-key"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
        "x-revoked": {"X-API-Key": revoked},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "empty-bearer": {"Authorization": "Bearer "},
        "junk": {"Authorization": f"Bearer {api_key}x"},
    }[mode]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, stack, server, api_key, revoked_key):
    before = stack.count_urls()
    s = stk.session()
    headers = auth_headers(case.auth, api_key, revoked_key)
    if case.data is not None:
        headers["Content-Type"] = case.ctype
    data = case.data
    if case.chunked:
        payload = data

        def gen():
            for i in range(0, len(payload), 8192):
                yield payload[i:i + 8192]
        data = gen()
    r = s.request(case.method, server.url(case.path), data=data, headers=headers,
                  allow_redirects=False, timeout=stk.HTTP_TIMEOUT)
    assert_problem(r, case.status)
    assert stack.count_urls() == before, "a rejected request stored a link"
    if case.alias is not None:
        n = stack.psql("SELECT count(*) FROM urls WHERE key = '"
                       + case.alias.replace("'", "''") + "'")
        assert n == "0", f"alias {case.alias!r} was stored"
    # The server is still fine afterwards.
    assert stk.Client(server, api_key).create("https://example.com/after-bad").status_code == 201


def test_bad_input_has_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("path", ["/abcdefg", "/api/v1/urls/abcdefg", "/"])
def test_self_referencing_url_rejected(stack, server, api_key, path):
    c = stk.Client(server, api_key)
    before = stack.count_urls()
    for base in (server.base_url, server.base_url.replace("http://", "HTTP://")):
        assert_problem(c.create(base + path), 400)
    assert stack.count_urls() == before


def test_self_referencing_url_rejected_by_host_name(extra_server, stack, api_key):
    srv = extra_server(BASE_URL="http://localhost:{port}")
    c = stk.Client(srv, api_key)
    before = stack.count_urls()
    for url in (f"http://localhost:{srv.port}/abcdefg", f"http://LOCALHOST:{srv.port}/abcdefg",
                f"https://LocalHost:{srv.port}/abcdefg", f"http://localhost.:{srv.port}/x"):
        assert_problem(c.create(url), 400)
    assert stack.count_urls() == before
    # short_url uses BASE_URL, whatever address the request came to.
    body = c.create_ok("https://example.com/via-localhost")
    assert body["short_url"] == f"http://localhost:{srv.port}/{body['key']}"
