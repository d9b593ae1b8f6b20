"""GET /{key}/qr: the served codes decode (zbarimg) to exactly the link's short_url, as PNG
and as SVG (rendered to PNG with rsvg-convert); every bad format and size is 400; links that
do not redirect are 404; caching by ETag and immutable Cache-Control within the link's life."""

import datetime
import re
import struct
import subprocess
import time

import pytest

import stack as stk
from stack import assert_problem

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def zbar(png_bytes, tmp_path, name):
    path = tmp_path / f"{name}.png"
    path.write_bytes(png_bytes)
    res = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                          str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"zbarimg found no code in {path}: {res.stderr}"
    return res.stdout.rstrip("\n")


def png_size(data):
    assert data[:8] == PNG_SIG
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def svg_to_png(svg, tmp_path, width=400):
    src = tmp_path / "code.svg"
    src.write_bytes(svg)
    out = tmp_path / "code-svg.png"
    subprocess.run(["rsvg-convert", "-w", str(width), "-b", "white", "-o", str(out), str(src)],
                   check=True, timeout=60)
    return out.read_bytes()


@pytest.mark.parametrize("size", [64, 200, 512, 2048])
def test_png_decodes_to_short_url(client, anon, tmp_path, size):
    link = client.create_ok("https://example.com/qr/png")
    r = anon.request("GET", f"/{link['key']}/qr", params={"format": "png", "size": size})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    assert png_size(r.content) == (size, size)
    if size >= 200:  # 64 px is too small for zbarimg at this code's 33 modules a side
        assert zbar(r.content, tmp_path, f"png{size}") == link["short_url"]


def test_svg_default_decodes_to_short_url(client, anon, tmp_path):
    link = client.create_ok("https://example.com/qr/svg", alias=f"qr-{time.time_ns()}")
    r = anon.request("GET", f"/{link['key']}/qr")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/svg+xml"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.text.startswith("<?xml") and "<svg" in r.text and "<script" not in r.text
    assert re.search(r'width="512" height="512"', r.text)
    assert zbar(svg_to_png(r.content, tmp_path), tmp_path, "svg") == link["short_url"]
    r = anon.request("GET", f"/{link['key']}/qr", params={"format": "svg", "size": 100})
    assert r.status_code == 200 and 'width="100"' in r.text


def test_head_same_fields_no_body(client, anon):
    key = client.create_ok("https://example.com/qr/head")["key"]
    g = anon.request("GET", f"/{key}/qr", params={"format": "png"})
    h = anon.request("HEAD", f"/{key}/qr", params={"format": "png"})
    assert h.status_code == 200 and h.content == b""
    assert h.headers["ETag"] == g.headers["ETag"]
    assert h.headers["Content-Type"] == "image/png"


BAD_PARAMS = [
    "format=gif", "format=PNG", "format=", "format=svg%00", "format=png&format=png",
    "format=png&format=svg", "size=63", "size=2049", "size=0", "size=-512", "size=+512",
    "size=0512", "size=512px", "size=5.12", "size=", "size=big", "size=%20512",
    "size=512&size=512", "size=99999999999999999999999", "format=png&size=1e3",
]


@pytest.mark.parametrize("query", BAD_PARAMS)
def test_bad_format_or_size_is_400(client, anon, query):
    key = client.create_ok("https://example.com/qr/bad")["key"]
    r = anon.request("GET", f"/{key}/qr?{query}")
    body = assert_problem(r, 400)
    assert body["type"].endswith("/invalid-parameter"), body


def test_other_methods_405(client, anon):
    key = client.create_ok("https://example.com/qr/m")["key"]
    for m in ("POST", "DELETE", "PUT"):
        assert_problem(anon.request(m, f"/{key}/qr"), 405)


def test_links_that_do_not_redirect_are_404(client, anon):
    assert_problem(anon.request("GET", "/nosuchkey9/qr"), 404)
    assert_problem(anon.request("GET", "/bad%20key/qr"), 404)
    assert_problem(anon.request("GET", "/ab/qr"), 404)
    gone = client.create_ok("https://example.com/qr/deleted")["key"]
    assert client.delete(gone).status_code == 204
    assert_problem(anon.request("GET", f"/{gone}/qr"), 404)
    later = (datetime.datetime.now(datetime.timezone.utc)
             + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = client.create_ok("https://example.com/qr/future", valid_from=later)["key"]
    assert_problem(anon.request("GET", f"/{future}/qr"), 404)
    once = client.create_ok("https://example.com/qr/once", max_visits=1)["key"]
    assert anon.request("GET", f"/{once}/qr").status_code == 200
    assert anon.request("GET", f"/{once}/qr").status_code == 200  # asking is not a visit
    assert anon.resolve(once).status_code == 301
    assert_problem(anon.request("GET", f"/{once}/qr"), 404)
    short = client.create_ok("https://example.com/qr/expiring", ttl=1)["key"]
    stk.wait_until("the link to expire", lambda: anon.resolve(short, "HEAD").status_code == 404,
                   10)
    assert_problem(anon.request("GET", f"/{short}/qr"), 404)
    # The browser's 404 is the HTML page.
    r = anon.request("GET", "/nosuchkey9/qr", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")


def test_password_links_have_codes(client, anon, tmp_path):
    link = client.create_ok("https://example.com/qr/pw", password="open sesame")
    r = anon.request("GET", f"/{link['key']}/qr", params={"format": "png"})
    assert r.status_code == 200
    assert zbar(r.content, tmp_path, "pw") == link["short_url"]


def test_etag_304_and_immutable_within_life(client, anon):
    forever = client.create_ok("https://example.com/qr/cache")["key"]
    r = anon.request("GET", f"/{forever}/qr")
    etag, cc = r.headers["ETag"], r.headers["Cache-Control"]
    assert re.fullmatch(r'"qr-[0-9a-f]{32}"', etag), etag
    assert "immutable" in cc and "public" in cc
    age = int(re.search(r"max-age=(\d+)", cc).group(1))
    assert 0 < age <= 365 * 86400
    r2 = anon.request("GET", f"/{forever}/qr", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["ETag"] == etag
    r3 = anon.request("GET", f"/{forever}/qr", headers={"If-None-Match": '"other"'})
    assert r3.status_code == 200
    png = anon.request("GET", f"/{forever}/qr", params={"format": "png"})
    big = anon.request("GET", f"/{forever}/qr", params={"format": "png", "size": 1024})
    assert len({etag, png.headers["ETag"], big.headers["ETag"]}) == 3
    # A link with an hour to live: cached for at most that hour.
    hour = client.create_ok("https://example.com/qr/hour", ttl=3600)["key"]
    cc = anon.request("GET", f"/{hour}/qr").headers["Cache-Control"]
    age = int(re.search(r"max-age=(\d+)", cc).group(1))
    assert 3500 < age <= 3600, cc
