"""The web page's files as HTTP answers: security fields on every page (CSP without inline
script, nosniff, no referrer, no framing), ETag and 304, gzip only where asked for, versioned
files immutable, the whole page under 100 KB, /{key}+ only for public_stats links, and the
404 and password pages in the same look. (The page's behaviour is tested in a real browser:
tests/web/.)"""

import gzip
import re

import pytest

import stack as stk
from stack import assert_problem

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
GZ = {"Accept-Encoding": "gzip"}
PLAIN = {"Accept-Encoding": "identity"}


def secure(r):
    assert r.headers["Content-Security-Policy"] == CSP, r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Vary"] == "Accept-Encoding"


def raw(anon, path, headers):
    """The body as sent (requests would undo the gzip coding)."""
    r = anon.request("GET", path, headers=headers, stream=True)
    body = r.raw.read(decode_content=False)
    r.close()
    return r, body


def static_paths(html):
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_page_headers_and_assets(anon):
    r, body = raw(anon, "/", PLAIN)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    secure(r)
    assert "Content-Encoding" not in r.headers
    assert r.headers["Cache-Control"] == "no-cache"
    html = body.decode()
    assert "<script>" not in html and not re.search(r"\son[a-z]+=", html)
    assets = static_paths(html)
    assert sorted(a.split("?")[0] for a in assets) == [
        "/static/app.css", "/static/app.js", "/static/stats.js"]
    for a in assets:
        assert re.search(r"\?v=[0-9a-f]{12}$", a), a
        f = anon.request("GET", a, headers=GZ)
        assert f.status_code == 200
        secure(f)
        assert f.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        # without the version, or with another, revalidated instead
        for other in (a.split("?")[0], a.split("?")[0] + "?v=000000000000"):
            assert anon.request("GET", other).headers["Cache-Control"] == "no-cache"
    types = {a.split("?")[0]: anon.request("GET", a).headers["Content-Type"] for a in assets}
    assert types["/static/app.css"] == "text/css; charset=utf-8"
    assert types["/static/app.js"] == "text/javascript; charset=utf-8"


def test_gzip_where_asked_and_same_bytes(anon):
    for path in ("/", "/static/app.js", "/static/app.css", "/static/stats.js"):
        plain, pbody = raw(anon, path, PLAIN)
        z, zbody = raw(anon, path, GZ)
        assert z.headers.get("Content-Encoding") == "gzip", path
        assert gzip.decompress(zbody) == pbody
        assert len(zbody) < len(pbody) * 0.9
        assert z.headers["ETag"] != plain.headers["ETag"]
        for refuse in ("gzip;q=0", "br", "deflate, gzip; q=0.0", ""):
            r, body = raw(anon, path, {"Accept-Encoding": refuse})
            assert "Content-Encoding" not in r.headers and body == pbody, (path, refuse)
        r, _ = raw(anon, path, {"Accept-Encoding": "br;q=1, GZIP;q=0.5"})
        assert r.headers.get("Content-Encoding") == "gzip"


def test_etag_304(anon):
    for path, h in (("/", GZ), ("/", PLAIN), ("/static/app.js", GZ)):
        r = anon.request("GET", path, headers=h)
        etag = r.headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{24}(-gz)?"', etag), etag
        n = anon.request("GET", path, headers={**h, "If-None-Match": etag})
        assert n.status_code == 304 and n.content == b""
        assert n.headers["ETag"] == etag
        secure(n)
        n = anon.request("GET", path, headers={**h, "If-None-Match": f'"x", W/{etag}'})
        assert n.status_code == 304
        assert anon.request("GET", path, headers={**h, "If-None-Match": '"x"'}).status_code == 200


def test_page_weight_under_100_kb(anon):
    r, body = raw(anon, "/", GZ)
    total = len(body)
    html = gzip.decompress(body).decode()
    for a in static_paths(html):
        _, b = raw(anon, a, GZ)
        total += len(b)
    print(f"page weight, gzip: {total} bytes")
    assert total < 100 * 1024, total


def test_head_and_other_methods(anon):
    g = anon.request("GET", "/", headers=GZ)
    h = anon.request("HEAD", "/", headers=GZ)
    assert h.status_code == 200 and h.content == b"" and h.headers["ETag"] == g.headers["ETag"]
    for m in ("POST", "PUT", "DELETE"):
        assert_problem(anon.request(m, "/"), 405)
        assert_problem(anon.request(m, "/static/app.js"), 405)


@pytest.mark.parametrize("path", ["/static/", "/static/nope.js", "/static/app.js/x",
                                  "/static/../openapi/openapi.json", "/static/app.css.gz",
                                  "/index.html", "/static/index.html", "/static/stats.html"])
def test_unknown_files_404(anon, path):
    assert_problem(anon.request("GET", path), 404)


def test_public_stats_page_only_for_public_links(client, anon):
    pub = client.create_ok("https://example.com/web/pub", public_stats=True)["key"]
    r = anon.request("GET", f"/{pub}+")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    secure(r)
    assert "/static/stats.js" in r.text and "/static/public.js" in r.text
    private = client.create_ok("https://example.com/web/private")["key"]
    for key in (private, "nosuchkey4", "a", "bad%20key"):
        assert_problem(anon.request("GET", f"/{key}+"), 404)
    r = anon.request("GET", f"/{private}+", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    gone = client.create_ok("https://example.com/web/gone", public_stats=True)["key"]
    assert client.delete(gone).status_code == 204
    assert_problem(anon.request("GET", f"/{gone}+"), 404)
    # the key's own redirect is untouched
    assert anon.resolve(pub).status_code == 301
    assert_problem(anon.request("POST", f"/{pub}+"), 405)


def test_404_and_password_pages_share_the_look(client, anon):
    r = anon.request("GET", "/nosuchkey5", headers={"Accept": "text/html"})
    assert r.status_code == 404
    css = re.search(r'<link rel="stylesheet" href="(/static/app\.css\?v=[0-9a-f]{12})">', r.text)
    assert css, r.text
    assert "script-src" not in r.headers["Content-Security-Policy"]  # no script at all
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert anon.request("GET", css.group(1)).status_code == 200
    key = client.create_ok("https://example.com/web/pw", password="open sesame")["key"]
    r = anon.resolve(key, headers={"Accept": "text/html"})
    assert r.status_code == 401 and css.group(1) in r.text and "<script" not in r.text
