"""The optional link fields of API.md (Create, "Further optional create fields"; Redirect):
redirect_status, max_visits, valid_from, password, tags and public_stats, from create through
read and list to the redirect on every cache tier (PostgreSQL, Redis, the hot cache), on two
servers at once, and with Redis stopped (a stack of this file's own)."""

import re
import threading
import time

import pytest

import stack as stk
from linkutil import (BASE_FIELDS, OPTIONAL_FIELDS, check_redirect, client_from, fresh_client,
                      list_ok, no_store, redirects_by_tier, seconds_ahead, unique,
                      wait_hot_cache_on, without_visits)
from stack import assert_problem, wait_until

REDIRECT_MAX_AGE = 300  # the server's default
PASSWORD = "Tr0ub4dor&3-horse"


def check_cache_control(r, status):
    """302 and 307 are never stored; 301 and 308 may be, for at most REDIRECT_MAX_AGE."""
    cc = r.headers.get("Cache-Control", "")
    if status in (302, 307):
        assert no_store(r), f"{status} with Cache-Control {cc!r}"
    else:
        assert not no_store(r), f"{status} of a plain link with Cache-Control {cc!r}"
        age = stk.cache_control_max_age(r)
        assert age is not None and 0 < age <= REDIRECT_MAX_AGE, f"Cache-Control {cc!r}"


# ---------------------------------------------------------------------------- round trips


def all_fields():
    _, valid_from = seconds_ahead(3600)
    _, expires_at = seconds_ahead(30 * 86400)
    return {
        "alias": unique("rt-"),
        "expires_at": expires_at,
        "redirect_status": 307,
        "max_visits": 42,
        "valid_from": valid_from,
        "password": PASSWORD,
        "tags": ["red", "Blue_2", "x-y", "0"],
        "public_stats": True,
    }


def expected_link(url, fields):
    want = {"key": fields["alias"], "url": url, "expires_at": fields["expires_at"],
            "password_protected": True}
    for f in ("redirect_status", "max_visits", "valid_from", "tags", "public_stats"):
        want[f] = fields[f]
    return want


def check_link(link, want, server, where):
    assert "password" not in link, f"{where}: the password is shown: {link}"
    assert PASSWORD not in repr(link), f"{where}: the password is shown: {link}"
    for k, v in want.items():
        assert link.get(k) == v, f"{where}: {k} is {link.get(k)!r}, not {v!r}: {link}"
    assert link["short_url"] == f"{server.base_url}/{link['key']}", link
    assert set(link) - {"visits"} == set(BASE_FIELDS) | set(OPTIONAL_FIELDS), \
        f"{where}: fields {sorted(link)}"


def test_every_field_round_trips_json(stack, server):
    c = fresh_client(stack, server)
    url = "https://example.com/round/trip?json=1"
    fields = all_fields()
    want = expected_link(url, fields)
    r = c.create(url, **fields)
    assert r.status_code == 201, r.text
    created = r.json()
    check_link(created, want, server, "create")
    assert "visits" not in created or created["visits"] == 0, created

    r = c.read(fields["alias"])
    assert r.status_code == 200, r.text
    read = r.json()
    check_link(read, want, server, "read")
    assert read["visits"] == 0, read
    assert without_visits(read) == without_visits(created)

    items = list_ok(c)["items"]
    assert len(items) == 1, items
    check_link(items[0], want, server, "list")
    assert without_visits(items[0]) == without_visits(created)


def test_every_field_round_trips_form(stack, server):
    """The same names as form fields; several tags fields give several tags."""
    c = fresh_client(stack, server)
    url = "https://example.com/round/trip?form=1"
    fields = all_fields()
    want = expected_link(url, fields)
    form = [("url", url)] + [(k, v) for k, v in fields.items() if k not in ("tags",)]
    form = [(k, "true" if v is True else str(v)) for k, v in form]
    form += [("tags", t) for t in fields["tags"]]
    r = c.request("POST", "/api/v1/urls", data=form)
    assert r.status_code == 201, r.text
    created = r.json()
    check_link(created, want, server, "create (form)")
    read = c.read(fields["alias"]).json()
    check_link(read, want, server, "read")
    items = list_ok(c)["items"]
    assert [without_visits(i) for i in items] == [without_visits(created)]


def test_plain_link_carries_no_optional_field(stack, server):
    c = fresh_client(stack, server)
    created = c.create_ok("https://example.com/plain-fields")
    read = c.read(created["key"]).json()
    items = list_ok(c)["items"]
    for where, link in (("create", created), ("read", read), ("list", items[0])):
        extra = set(link) - set(BASE_FIELDS) - {"visits"}
        assert not extra, f"{where} shows fields that were never set: {sorted(extra)}: {link}"
        assert "password" not in link


@pytest.mark.parametrize("field,value,shown", [
    ("redirect_status", 302, ("redirect_status", 302)),
    ("redirect_status", 308, ("redirect_status", 308)),
    ("max_visits", 1, ("max_visits", 1)),
    ("max_visits", 1000000, ("max_visits", 1000000)),
    ("valid_from", None, None),  # filled in below: an hour ahead
    ("password", PASSWORD, ("password_protected", True)),
    ("password", "8chars!!", ("password_protected", True)),
    ("password", "p" * 128, ("password_protected", True)),
    ("tags", ["one"], ("tags", ["one"])),
    ("tags", [f"t{i}" for i in range(10)], ("tags", [f"t{i}" for i in range(10)])),
    ("tags", ["a" * 32, "_", "-"], ("tags", ["a" * 32, "_", "-"])),
    ("public_stats", True, ("public_stats", True)),
], ids=["status-302", "status-308", "max-visits-1", "max-visits-1e6", "valid-from",
        "password", "password-8", "password-128", "one-tag", "ten-tags", "tag-edges",
        "public-stats"])
def test_one_field_alone(stack, server, field, value, shown):
    """A link with one optional field set carries that field and no other optional one."""
    if field == "valid_from":
        _, value = seconds_ahead(3600)
        shown = ("valid_from", value)
    c = fresh_client(stack, server)
    created = c.create_ok("https://example.com/one-field", **{field: value})
    read = c.read(created["key"]).json()
    listed = list_ok(c)["items"][0]
    for where, link in (("create", created), ("read", read), ("list", listed)):
        extra = set(link) - set(BASE_FIELDS) - {"visits"}
        assert extra == {shown[0]}, f"{where}: optional fields {sorted(extra)}: {link}"
        assert link[shown[0]] == shown[1], f"{where}: {link}"
        assert "password" not in link


def test_valid_from_with_an_offset_is_shown_in_utc(stack, server):
    c = fresh_client(stack, server)
    ts, _ = seconds_ahead(7200)
    local = time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(ts + 7200))
    created = c.create_ok("https://example.com/offset", valid_from=local)
    assert created["valid_from"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)), created


def test_password_null_is_no_password(client):
    link = client.create_ok("https://example.com/null-password", password=None)
    assert "password_protected" not in link, link
    r = client.resolve(link["key"])
    assert r.status_code == 301 and r.headers["Location"] == "https://example.com/null-password"


# ---------------------------------------------------------------------------- redirect_status


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_status_on_every_tier(client, server, second_server, status):
    """The first GET is answered from PostgreSQL, the second server's from Redis, the next
    ones from the hot cache: each with the link's status and the right Cache-Control."""
    wait_hot_cache_on(server)
    wait_hot_cache_on(second_server)
    url = f"https://example.com/status/{status}/{unique()}"
    key = client.create_ok(url, redirect_status=status)["key"]
    other = stk.Client(second_server)

    a0, b0 = redirects_by_tier(server), redirects_by_tier(second_server)
    check_cache_control(check_redirect(client.resolve(key), status, url), status)
    a1 = redirects_by_tier(server)
    assert a1["db_hit"] - a0["db_hit"] == 1, (a0, a1)

    check_cache_control(check_redirect(other.resolve(key), status, url), status)
    b1 = redirects_by_tier(second_server)
    assert b1["cache_hit"] - b0["cache_hit"] == 1, (b0, b1)

    for _ in range(3):
        check_cache_control(check_redirect(client.resolve(key), status, url), status)
    a2 = redirects_by_tier(server)
    assert a2["hot_hit"] - a1["hot_hit"] == 3, (a1, a2)
    assert a2["db_hit"] == a1["db_hit"] and a2["cache_hit"] == a1["cache_hit"], (a1, a2)

    # HEAD gives the same answer.
    check_cache_control(check_redirect(client.resolve(key, method="HEAD"), status, url), status)
    check_cache_control(check_redirect(other.resolve(key, method="HEAD"), status, url), status)


def test_default_redirect_status_302(extra_server, api_key):
    srv = extra_server(DEFAULT_REDIRECT_STATUS=302)
    c = stk.Client(srv, api_key)
    url = f"https://example.com/default-302/{unique()}"
    link = c.create_ok(url)
    for _ in range(4):  # PostgreSQL, then the hot cache
        r = check_redirect(c.resolve(link["key"]), 302, url)
        assert no_store(r), r.headers
    # A link that names its status keeps it.
    url301 = f"https://example.com/explicit-301/{unique()}"
    key301 = c.create_ok(url301, redirect_status=301)["key"]
    for _ in range(4):
        check_cache_control(check_redirect(c.resolve(key301), 301, url301), 301)


# ---------------------------------------------------------------------------- valid_from


def test_valid_from_in_the_future_is_404_on_every_tier(client, second_server):
    _, valid_from = seconds_ahead(3600)
    key = client.create_ok("https://example.com/not-yet", valid_from=valid_from)["key"]
    other = stk.Client(second_server)
    for c in (client, other, client, client, client, other, other, other):
        assert_problem(c.resolve(key), 404)
        r = c.resolve(key, method="HEAD")
        assert r.status_code == 404 and "Location" not in r.headers, r.headers
    r = client.resolve(key, headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html"), r.headers
    # The owner still sees it.
    assert client.read(key).status_code == 200


def test_link_starts_redirecting_when_valid_from_passes(client, second_server):
    ts, valid_from = seconds_ahead(2)
    url = f"https://example.com/soon/{unique()}"
    key = client.create_ok(url, valid_from=valid_from)["key"]
    other = stk.Client(second_server)
    for c in (client, other, client, other):
        r = c.resolve(key)
        if time.time() < ts:  # (always, unless this machine stalled for seconds)
            assert_problem(r, 404)
    for c in (client, other):
        r = wait_until("the link to redirect once valid_from passed",
                       lambda c=c: (lambda r: r if r.status_code == 301 else None)(c.resolve(key)),
                       ts - time.time() + 5, interval=0.05)
        assert time.time() >= ts, "redirected before valid_from"
        check_redirect(r, 301, url)
        for _ in range(3):
            check_redirect(c.resolve(key), 301, url)


# ---------------------------------------------------------------------------- visits


def test_head_is_not_a_visit(extra_server, api_key):
    srv = extra_server(VISITS_FLUSH_MS=100)
    c = stk.Client(srv, api_key)
    url = "https://example.com/head-not-a-visit"
    key = c.create_ok(url)["key"]

    def visits():
        r = c.read(key)
        assert r.status_code == 200, r.text
        return r.json()["visits"]

    for method in ["HEAD"] * 5 + ["GET"] * 3 + ["HEAD"] * 5:
        check_redirect(c.resolve(key, method=method), 301, url)
    wait_until("the 3 GETs to be counted", lambda: visits() >= 3, 10)
    # One more GET: whatever else was counted would have been flushed by the time it is.
    check_redirect(c.resolve(key), 301, url)
    wait_until("the 4th GET to be counted", lambda: visits() >= 4, 10)
    assert visits() == 4


# ---------------------------------------------------------------------------- passwords


def assert_password_form(r, key, status=401):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:300]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "text/html", ctype
    assert "Location" not in r.headers, r.headers
    page = r.text
    assert "<script" not in page.lower(), page
    assert not re.search(r"\son[a-z]+\s*=", page, re.I), f"inline event handler: {page}"
    assert re.search(r"<form[^>]*method=\"post\"", page, re.I), page
    assert f'action="/{key}"' in page, page
    assert re.search(r"<input[^>]*name=\"password\"", page), page
    assert re.search(r"<input[^>]*type=\"password\"", page), page
    csp = r.headers.get("Content-Security-Policy", "")
    assert csp, f"no Content-Security-Policy: {dict(r.headers)}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert re.search(r"(default-src|script-src) 'none'", csp) or "script-src 'self'" in csp, csp
    assert r.headers.get("X-Content-Type-Options", "").lower() == "nosniff", r.headers
    assert no_store(r), r.headers


def post_password(c, key, password):
    return c.request("POST", "/" + key, auth=False, data={"password": password})


def test_password_flow(client, server, stack):
    url = f"https://example.com/secret/{unique()}"
    answers = []
    r = client.create(url, alias=unique("pw_A-"), password=PASSWORD)
    answers.append(r)
    assert r.status_code == 201, r.text
    link = r.json()
    key = link["key"]
    assert link["password_protected"] is True and "password" not in link, link

    answers.append(r := client.resolve(key))
    assert_password_form(r, key)
    answers.append(r := client.resolve(key, headers={"Accept": "text/html"}))
    assert_password_form(r, key)
    answers.append(r := client.resolve(key, method="HEAD"))
    assert r.status_code == 401 and "Location" not in r.headers, r.headers

    answers.append(r := post_password(client, key, "not-the-password"))
    assert_password_form(r, key)
    answers.append(r := post_password(client, key, PASSWORD + "x"))
    assert_password_form(r, key)
    answers.append(r := client.request("POST", "/" + key, auth=False, data={"pass": PASSWORD}))
    assert_password_form(r, key)

    answers.append(r := post_password(client, key, PASSWORD))
    check_redirect(r, 301, url)
    assert no_store(r), r.headers
    # Opening it once does not open it for good.
    answers.append(r := client.resolve(key))
    assert_password_form(r, key)

    answers.append(client.read(key))
    answers.append(client.request("GET", "/api/v1/urls", params={"q": key}))
    for a in answers:
        text = a.text + "\n" + "\n".join(f"{k}: {v}" for k, v in a.headers.items())
        assert PASSWORD not in text, f"the password in an answer: {a.status_code} {text[:500]}"
    stored = stack.psql(f"SELECT password_hash FROM urls WHERE key = '{key}'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored, stored
    for sh in stack.shorteners:
        assert PASSWORD not in sh.proc.log_text(), f"the password in {sh.proc.log_path}"


@pytest.mark.parametrize("status", [302, 307, 308])
def test_password_opens_with_the_links_status_without_resending_it(client, status):
    """A right password answers the redirect. 302 keeps the link's status; a 307/308 answer to
    a POST would make the browser POST the form, password and all, to the target site, so
    those are answered with 303 See Other."""
    url = f"https://example.com/secret-{status}/{unique()}"
    key = client.create_ok(url, password=PASSWORD, redirect_status=status)["key"]
    assert_password_form(client.resolve(key), key)
    r = post_password(client, key, PASSWORD)
    want = 302 if status == 302 else 303
    assert r.status_code == want, \
        f"a {status} link unlocked by POST answered {r.status_code}, not {want}"
    assert r.headers.get("Location") == url and no_store(r), r.headers


def test_ten_wrong_passwords_lock_out_that_address_and_link_only(client, server):
    url = f"https://example.com/locked/{unique()}"
    key = client.create_ok(url, password=PASSWORD)["key"]
    key2 = client.create_ok(url + "/2", password=PASSWORD)["key"]
    here = client_from(server, "127.0.0.2")
    there = client_from(server, "127.0.0.3")

    for i in range(10):
        assert_password_form(post_password(here, key, f"wrong-password-{i}"), key)
    for pw in ("wrong-password-10", PASSWORD):
        r = post_password(here, key, pw)
        assert r.status_code == 429, f"try {pw!r} after 10 wrong: {r.status_code} {r.text[:200]}"
        retry = r.headers.get("Retry-After", "")
        assert re.fullmatch(r"[1-9]\d*", retry), f"Retry-After {retry!r}"
        # Locked out for the rest of the 10 minutes, not for a tenth of them.
        assert 540 <= int(retry) <= 600, f"Retry-After {retry!r}"
        assert "Location" not in r.headers and PASSWORD not in r.text
    # Another address is not locked out, and neither is another link from this one.
    assert_password_form(post_password(there, key, "wrong-password-x"), key)
    check_redirect(post_password(there, key, PASSWORD), 301, url)
    assert_password_form(post_password(here, key2, "wrong-password-y"), key2)
    check_redirect(post_password(here, key2, PASSWORD), 301, url + "/2")


# ---------------------------------------------------------------------------- max_visits


def test_max_visits_exact_across_two_servers(client, server, second_server):
    url = f"https://example.com/limited/{unique()}"
    key = client.create_ok(url, max_visits=100)["key"]
    results, errors = [], []
    lock = threading.Lock()

    def worker(srv):
        c = stk.Client(srv)
        mine = []
        try:
            for _ in range(40):
                mine.append(c.resolve(key))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(srv,))
               for srv in (server, second_server, server, second_server)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) == 160
    codes = {}
    for r in results:
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
    assert codes == {301: 100, 404: 60}, codes
    for r in results:
        if r.status_code == 301:
            assert r.headers["Location"] == url and no_store(r), r.headers
        else:
            assert_problem(r, 404)
    for c in (client, stk.Client(second_server)):
        assert_problem(c.resolve(key), 404)
        assert c.resolve(key, method="HEAD").status_code == 404
    wait_until("100 visits in the link", lambda: client.read(key).json()["visits"] == 100, 10)


def test_head_does_not_use_up_max_visits(client, second_server):
    url = f"https://example.com/limited-head/{unique()}"
    key = client.create_ok(url, max_visits=2)["key"]
    other = stk.Client(second_server)
    for c in (client, other) * 3:
        r = check_redirect(c.resolve(key, method="HEAD"), 301, url)
        assert no_store(r), r.headers
    check_redirect(client.resolve(key), 301, url)
    check_redirect(other.resolve(key), 301, url)
    for c in (client, other):
        assert_problem(c.resolve(key), 404)
        assert c.resolve(key, method="HEAD").status_code == 404


@pytest.fixture(scope="module")
def redis_stack():
    """A stack of this file's own: the test below stops its Redis."""
    with stk.running_stack("fields-redis") as st:
        yield st


def test_max_visits_link_is_503_while_redis_is_down(redis_stack):
    st = redis_stack
    c = stk.Client(st.server, st.create_apikey("mv-redis")[0])
    url = f"https://example.com/limited-redis/{unique()}"
    limited = c.create_ok(url, max_visits=2)["key"]
    plain = c.create_ok(url + "/plain")["key"]
    check_redirect(c.resolve(limited), 301, url)
    check_redirect(c.resolve(plain), 301, url + "/plain")
    wait_until("the visit to reach PostgreSQL",
               lambda: st.psql(f"SELECT visits FROM urls WHERE key = '{limited}'") == "1", 10)
    st.redis.stop()
    try:
        for _ in range(3):
            assert_problem(c.resolve(limited), 503)
        # Links without a visit limit still redirect.
        check_redirect(c.resolve(plain), 301, url + "/plain")
    finally:
        st.redis.start()
    # Back: the count goes on from what PostgreSQL holds, so exactly one visit is left.
    r = wait_until("the limited link to redirect again",
                   lambda: (lambda r: r if r.status_code != 503 else None)(c.resolve(limited)),
                   20, interval=0.1)
    check_redirect(r, 301, url)
    assert_problem(c.resolve(limited), 404)


def test_wrong_tries_are_counted_across_servers(client, server, second_server):
    """The 10 wrong tries are per address and link, whichever server they reach."""
    url = f"https://example.com/locked-two/{unique()}"
    key = client.create_ok(url, password=PASSWORD)["key"]
    here = (client_from(server, "127.0.0.4"), client_from(second_server, "127.0.0.4"))
    for i in range(10):
        assert_password_form(post_password(here[i % 2], key, f"wrong-password-{i}"), key)
    for c in here:
        assert post_password(c, key, PASSWORD).status_code == 429


def test_right_passwords_are_not_wrong_tries(client, server):
    url = f"https://example.com/locked-right/{unique()}"
    key = client.create_ok(url, password=PASSWORD)["key"]
    here = client_from(server, "127.0.0.5")
    for i in range(9):
        assert_password_form(post_password(here, key, f"wrong-password-{i}"), key)
    for _ in range(3):
        check_redirect(post_password(here, key, PASSWORD), 301, url)
    assert_password_form(post_password(here, key, "wrong-password-9"), key)  # the 10th
    assert post_password(here, key, "wrong-password-10").status_code == 429


def test_wrong_tries_of_any_shape_count(client, server):
    """A password no link could have (too short, too long, empty, missing, not a form) is a
    wrong try like any other: they used to be answered 401 for ever, without counting."""
    url = f"https://example.com/locked-shapes/{unique()}"
    key = client.create_ok(url, password=PASSWORD)["key"]
    here = client_from(server, "127.0.0.6")
    tries = [
        lambda: post_password(here, key, "nope"),
        lambda: post_password(here, key, "x" * 129),
        lambda: post_password(here, key, ""),
        lambda: here.request("POST", "/" + key, auth=False, data={"other": "field"}),
        lambda: here.request("POST", "/" + key, auth=False, data="password=" + "%zz",
                             headers={"Content-Type": "application/x-www-form-urlencoded"}),
        lambda: here.request("POST", "/" + key, auth=False, json={"password": PASSWORD}),
    ]
    for i in range(10):
        assert_password_form(tries[i % len(tries)](), key)
    r = post_password(here, key, PASSWORD)
    assert r.status_code == 429, f"the right password after 10 odd tries: {r.status_code}"
    assert re.fullmatch(r"[1-9]\d*", r.headers.get("Retry-After", "")), r.headers


def test_valid_from_in_the_past_redirects_at_once(client, second_server):
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    url = f"https://example.com/valid-already/{unique()}"
    link = client.create_ok(url, valid_from=past)
    assert link["valid_from"] == past, link
    for c in (client, stk.Client(second_server), client, client, client):
        check_redirect(c.resolve(link["key"]), 301, url)
