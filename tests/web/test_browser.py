"""The web page in a real browser (Debian's chromium through playwright-core), against the
real stack: each test sets up links through the API, runs one flow of flows.mjs and checks
what the flow reports. axe-core runs on every page a flow visits; screenshots of each page at
1280 and 360 px wide are written under build/web-tests/ (WEB_TEST_OUT)."""

import os
import subprocess
import time

import pytest

import stack as stk
from conftest import OUT, run_flow

HOSTILE_URL = 'https://example.com/"><script>alert(1)</script>'


def zbar(data, name):
    path = OUT / f"{name}.png"
    path.write_bytes(data)
    res = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                          str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"zbarimg found no code in {path}: {res.stderr}"
    return res.stdout.rstrip("\n")


def test_shorten_copy_follow_and_qr(server, api_key, target):
    out = run_flow("shorten", base=server.base_url, key=api_key, target=target)
    short = out["short_url"]
    assert short.startswith(server.base_url + "/")
    s = stk.session()
    png = s.get(server.base_url + out["png"], timeout=stk.HTTP_TIMEOUT)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert zbar(png.content, "qr-from-page") == short
    svg = s.get(server.base_url + out["svg"], timeout=stk.HTTP_TIMEOUT)
    assert svg.status_code == 200 and svg.headers["Content-Type"] == "image/svg+xml"
    (OUT / "qr-from-page.svg").write_bytes(svg.content)
    subprocess.run(["rsvg-convert", "-w", "400", "-b", "white", "-o",
                    str(OUT / "qr-from-page-svg.png"), str(OUT / "qr-from-page.svg")],
                   check=True, timeout=60)
    assert zbar((OUT / "qr-from-page-svg.png").read_bytes(), "qr-from-page-svg") == short


def test_anonymous_mode_on(anon_server, target):
    out = run_flow("anonymous", base=anon_server.base_url, target=target)
    assert out["short_url"].startswith(anon_server.base_url + "/")


def wait_visits(c, key, n):
    stk.wait_until(f"{n} visits of {key}", lambda: c.read(key).json().get("visits") == n, 15)


def test_links_list_search_tags_delete_edit(stack, server, target):
    key, _ = stack.create_apikey(f"web-links-{os.urandom(3).hex()}")
    c = stk.Client(server, key)
    made = []
    for i in range(23):
        fields = {}
        if i % 7 == 0:
            fields["tags"] = ["blue", f"n{i}"]
        url = f"{target}/page/{i}" + ("/needle" if i in (5, 21) else "")
        made.append(c.create_ok(url, **fields)["key"])
    newest = made[::-1]
    for n, k in enumerate(newest[:3]):
        for _ in range(n):
            assert c.resolve(k).status_code == 301
        wait_visits(c, k, n)
    run_flow("links", base=server.base_url, key=key, target=target,
             links=[{"key": k, "visits": n} for n, k in enumerate(newest[:3])],
             search="needle", searchMatches=[made[5], made[21]],
             tag="blue", tagMatches=[made[i] for i in (0, 7, 14, 21)], total=23,
             deleteKey=newest[1], editKey=newest[2])
    r = c.resolve(newest[2])
    assert r.status_code == 301 and r.headers["Location"] == f"{target}/edited"
    assert c.resolve(newest[1]).status_code == 404


def _endpoint_missing(c, key, suffix):
    r = c.request("GET", f"/api/v1/urls/{key}/{suffix}", stream=True)
    try:
        return r.status_code == 404
    finally:
        r.close()


def test_stats_page_and_public_stats(stack, server, api_key, target):
    c = stk.Client(server, api_key)
    k = c.create_ok(f"{target}/stats", public_stats=True)["key"]
    if _endpoint_missing(c, k, "stats"):
        pytest.skip("needs GET /api/v1/urls/{key}/stats (branch part-analytics)")
    s = stk.session()
    browser = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/120.0.0.0 Safari/537.36")
    for ref in ("https://news.example/a", "https://news.example/b", None):
        h = {"User-Agent": browser, **({"Referer": ref} if ref else {})}
        assert s.get(f"{server.base_url}/{k}", headers=h, allow_redirects=False,
                     timeout=stk.HTTP_TIMEOUT).status_code == 301
    stk.wait_until("3 visits in stats", lambda: c.request(
        "GET", f"/api/v1/urls/{k}/stats").json().get("total") == 3, 20)
    run_flow("stats", base=server.base_url, key=api_key, target=target, statsKey=k, visits=3,
             publicKey=k)


def test_live_counter_goes_up_when_another_tab_visits(stack, server, api_key, target):
    c = stk.Client(server, api_key)
    # 302: each visit of the other tab reaches the server (a 301 would be cached by it)
    k = c.create_ok(f"{target}/live", public_stats=True, redirect_status=302)["key"]
    if _endpoint_missing(c, k, "live"):
        pytest.skip("needs GET /api/v1/urls/{key}/live (branch part-live)")
    for _ in range(2):
        assert c.resolve(k).status_code == 302
    wait_visits(c, k, 2)
    run_flow("live", base=server.base_url, key=api_key, target=target, liveKey=k, visits=2)


def test_password_wrong_then_right_and_404_page(server, api_key, target):
    c = stk.Client(server, api_key)
    k = c.create_ok(f"{target}/secret", password="correct horse")["key"]
    run_flow("password", base=server.base_url, target=target, pwKey=k, password="correct horse")


def test_hostile_url_and_tags_render_as_text(stack, server, target):
    key, _ = stack.create_apikey(f"web-hostile-{os.urandom(3).hex()}")
    c = stk.Client(server, key)
    link = c.create_ok(HOSTILE_URL, tags=["x-y_z"])
    assert link["url"] == HOSTILE_URL
    run_flow("hostile", base=server.base_url, key=key, target=target, hostileKey=link["key"],
             hostileUrl=HOSTILE_URL)
