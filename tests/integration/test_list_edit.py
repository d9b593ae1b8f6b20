"""The owner's view of links (API.md: List, Edit): GET /api/v1/urls newest first with keyset
pages that never repeat or skip while links come and go, the tag and q filters, the limit;
PATCH /api/v1/urls/{key} of every field, null clearing the optional ones, and every server
redirecting to the new state within one second."""

import time

import pytest

import stack as stk
from linkutil import (check_redirect, fresh_client, keys_of, list_all, list_ok, no_store,
                      seconds_ahead, unique, without_visits)
from stack import assert_problem, parse_time, wait_until

PASSWORD = "correct-horse-battery"
WITHIN = 1.0  # API.md: every server redirects to the new state within one second


def make(c, n, prefix="https://example.com/list", **fields):
    """n links, oldest first."""
    return [c.create_ok(f"{prefix}/{i}", **fields)["key"] for i in range(n)]


def patch(c, key, body, **kw):
    return c.request("PATCH", f"/api/v1/urls/{key}", json=body, **kw)


def patch_ok(c, key, body):
    r = patch(c, key, body)
    assert r.status_code == 200, f"PATCH {body}: {r.status_code} {r.text[:300]}"
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json", r.headers
    link = r.json()
    assert link["key"] == key, link
    # The answer is the link as it is now.
    read = c.read(key)
    assert read.status_code == 200, read.text
    assert without_visits(read.json()) == without_visits(link), (read.json(), link)
    return link


def redirects_to(c, key, status, url):
    """A predicate for wait_until: key now redirects with status to url."""
    def check():
        r = c.resolve(key)
        return r if r.status_code == status and r.headers.get("Location") == url else None
    return check


def everywhere_within(clients, key, status, url, what):
    """Every server answers the new state within a second of the edit's answer, and keeps
    answering it."""
    for c in clients:
        r = wait_until(f"{c.base} to {what}", redirects_to(c, key, status, url), WITHIN,
                       interval=0.02)
        for _ in range(3):
            r = check_redirect(c.resolve(key), status, url)
    return r


def warm(clients, key, status, url):
    """Looked up everywhere, three times each: in every cache it may be in."""
    for c in clients:
        for _ in range(3):
            check_redirect(c.resolve(key), status, url)


# ---------------------------------------------------------------------------- list


def test_list_is_newest_first(stack, server):
    c = fresh_client(stack, server)
    assert list_ok(c) == {"items": [], "next_cursor": None}
    keys = make(c, 5)
    body = list_ok(c)
    assert keys_of(body["items"]) == keys[::-1]
    assert body["next_cursor"] is None
    for it in body["items"]:
        assert it["short_url"] == f"{server.base_url}/{it['key']}"
        parse_time(it["created_at"])


def test_pages_of_two_visit_each_link_once_in_order(stack, server):
    c = fresh_client(stack, server)
    keys = make(c, 7)
    pages, cursor = [], None
    while True:
        body = list_ok(c, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append(keys_of(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) <= 4, pages
    assert [len(p) for p in pages] == [2, 2, 2, 1], pages
    assert [k for p in pages for k in p] == keys[::-1]


def test_pages_while_links_are_created_and_deleted(stack, server):
    """A page starts right after the last one: a link made meanwhile is newer than the cursor
    (not seen), one deleted before its page comes is simply absent, and deleting the link the
    cursor points at changes nothing."""
    c = fresh_client(stack, server)
    k = make(c, 9)  # k[8] newest
    first = list_ok(c, limit=2)
    assert keys_of(first["items"]) == [k[8], k[7]]

    new = c.create_ok("https://example.com/list/new")["key"]
    assert c.delete(k[4]).status_code == 204   # not seen yet
    assert c.delete(k[8]).status_code == 204   # seen already
    second = list_ok(c, limit=2, cursor=first["next_cursor"])
    assert keys_of(second["items"]) == [k[6], k[5]]

    assert c.delete(k[5]).status_code == 204   # the link the cursor points at
    c.create_ok("https://example.com/list/newer")
    third = list_ok(c, limit=2, cursor=second["next_cursor"])
    assert keys_of(third["items"]) == [k[3], k[2]]
    fourth = list_ok(c, limit=2, cursor=third["next_cursor"])
    assert keys_of(fourth["items"]) == [k[1], k[0]]
    assert fourth["next_cursor"] is None or list_ok(
        c, limit=2, cursor=fourth["next_cursor"])["items"] == []
    # A fresh listing shows the new ones first.
    assert keys_of(list_all(c))[1] == new


def test_pages_over_links_made_in_one_bulk(stack, server):
    """Links made in one request may share a creation time to the microsecond: pages still
    visit each once, in the order of the whole list."""
    c = fresh_client(stack, server)
    r = c.request("POST", "/api/v1/urls/bulk",
                  json=[{"url": f"https://example.com/bulk-pages/{i}"} for i in range(50)])
    assert r.status_code == 200, r.text[:300]
    made = {it["link"]["key"] for it in r.json()["items"]}
    whole = keys_of(list_ok(c, limit=1000)["items"])
    assert set(whole) == made and len(whole) == 50
    for limit in (1, 7, 49):
        assert keys_of(list_all(c, limit=limit)) == whole, limit


def test_tag_filter(stack, server):
    c = fresh_client(stack, server)
    a = c.create_ok("https://example.com/tags/a", tags=["red"])["key"]
    b = c.create_ok("https://example.com/tags/b", tags=["red", "blue"])["key"]
    cc = c.create_ok("https://example.com/tags/c", tags=["blue"])["key"]
    c.create_ok("https://example.com/tags/d")
    assert keys_of(list_ok(c, tag="red")["items"]) == [b, a]
    assert keys_of(list_ok(c, tag="blue")["items"]) == [cc, b]
    assert list_ok(c, tag="green") == {"items": [], "next_cursor": None}
    # Pages of a filtered list.
    assert keys_of(list_all(c, limit=1, tag="red")) == [b, a]
    for it in list_ok(c, tag="red")["items"]:
        assert "red" in it["tags"], it


def test_q_filter_matches_key_or_url_in_any_case(stack, server):
    c = fresh_client(stack, server)
    u = unique()
    by_key = c.create_ok("https://example.com/nothing/here", alias=f"QAlpha-{u}")["key"]
    by_url = c.create_ok(f"https://example.com/Some/PATH/{u}")["key"]
    neither = c.create_ok("https://other.example/zzz")["key"]
    assert keys_of(list_ok(c, q=f"qalpha-{u}")["items"]) == [by_key]
    assert keys_of(list_ok(c, q="QALPHA")["items"]) == [by_key]
    assert keys_of(list_ok(c, q="some/path")["items"]) == [by_url]
    assert keys_of(list_ok(c, q="Some/Path/" + u.upper())["items"]) == [by_url]
    assert keys_of(list_ok(c, q=u)["items"]) == [by_url, by_key]
    assert keys_of(list_ok(c, q="other.EXAMPLE")["items"]) == [neither]
    assert list_ok(c, q="no-such-text")["items"] == []
    assert keys_of(list_all(c, limit=1, q=u)) == [by_url, by_key]


def test_tag_and_q_together(stack, server):
    c = fresh_client(stack, server)
    a = c.create_ok("https://example.com/both/apple", tags=["fruit"])["key"]
    c.create_ok("https://example.com/both/carrot", tags=["veg"])
    c.create_ok("https://example.com/both/banana", tags=["fruit"])
    assert keys_of(list_ok(c, tag="fruit", q="APPLE")["items"]) == [a]


def test_other_keys_links_are_never_listed(stack, server):
    mine = fresh_client(stack, server)
    theirs = fresh_client(stack, server)
    u = unique()
    their_keys = set(make(theirs, 3, prefix=f"https://example.com/{u}", tags=["shared"]))
    my_keys = make(mine, 2, prefix=f"https://example.com/{u}", tags=["shared"])
    for params in ({}, {"tag": "shared"}, {"q": u}, {"limit": 1000}):
        listed = keys_of(list_all(mine, **params))
        assert listed == my_keys[::-1], (params, listed)
        assert not their_keys & set(listed)


def test_limit_default_100_and_at_most_1000(stack, server):
    c = fresh_client(stack, server)
    for n in (1000, 5):
        r = c.request("POST", "/api/v1/urls/bulk",
                      json=[{"url": f"https://example.com/many/{n}/{i}"} for i in range(n)])
        assert r.status_code == 200, r.text[:300]
        assert all(it["status"] == 201 for it in r.json()["items"])
    page = list_ok(c)
    assert len(page["items"]) == 100 and page["next_cursor"], len(page["items"])
    big = list_ok(c, limit=1000)
    assert len(big["items"]) == 1000 and big["next_cursor"]
    assert keys_of(big["items"])[:100] == keys_of(page["items"])
    rest = list_ok(c, limit=1000, cursor=big["next_cursor"])
    assert len(rest["items"]) == 5 and rest["next_cursor"] is None
    keys = keys_of(big["items"]) + keys_of(rest["items"])
    assert len(set(keys)) == 1005
    assert keys_of(list_ok(c, limit=1)["items"]) == keys_of(page["items"])[:1]


# ---------------------------------------------------------------------------- PATCH


def full_link(c, url=None):
    _, expires_at = seconds_ahead(30 * 86400)
    _, valid_from = seconds_ahead(3600)
    return c.create_ok(url or f"https://example.com/full/{unique()}", expires_at=expires_at,
                       redirect_status=308, max_visits=50, valid_from=valid_from,
                       password=PASSWORD, tags=["one", "two"], public_stats=True)


@pytest.mark.parametrize("field", ["url", "expires_at", "ttl", "redirect_status", "max_visits",
                                   "valid_from", "password", "tags", "public_stats"])
def test_patch_each_field(client, field):
    link = client.create_ok(f"https://example.com/patch/{unique()}", redirect_status=302,
                            tags=["old"])
    key = link["key"]
    _, later = seconds_ahead(7 * 86400)
    _, soon = seconds_ahead(600)
    value, want = {
        "url": ("https://example.org/patched?x=1", {"url": "https://example.org/patched?x=1"}),
        "expires_at": (later, {"expires_at": later}),
        "ttl": (3600, {}),
        "redirect_status": (307, {"redirect_status": 307}),
        "max_visits": (7, {"max_visits": 7}),
        "valid_from": (soon, {"valid_from": soon}),
        "password": (PASSWORD, {"password_protected": True}),
        "tags": (["new", "newer"], {"tags": ["new", "newer"]}),
        "public_stats": (True, {"public_stats": True}),
    }[field]
    t0 = time.time()
    now = patch_ok(client, key, {field: value})
    for k, v in want.items():
        assert now.get(k) == v, (field, now)
    if field == "ttl":
        assert abs(parse_time(now["expires_at"]) - (t0 + 3600)) <= 2, now
    assert "password" not in now
    # Everything else is as it was.
    for k in ("url", "expires_at", "redirect_status", "tags", "created_at", "short_url"):
        if k not in want and not (field == "ttl" and k == "expires_at"):
            assert now.get(k) == link.get(k), (k, link, now)


@pytest.mark.parametrize("field", ["expires_at", "redirect_status", "max_visits", "valid_from",
                                   "password", "tags", "public_stats"])
def test_null_clears_an_optional_field(client, field):
    link = full_link(client)
    shown = "password_protected" if field == "password" else field
    assert link.get(shown) not in (None, False), link
    now = patch_ok(client, link["key"], {field: None})
    if field == "expires_at":
        assert now["expires_at"] is None, now
    else:
        assert shown not in now, f"{field}: null did not clear it: {now}"
    # Only that one.
    for f in ("redirect_status", "max_visits", "valid_from", "tags", "public_stats",
              "password_protected", "expires_at", "url"):
        if f != shown:
            assert now.get(f) == link.get(f), (f, link, now)


def test_null_clears_every_optional_field_to_a_plain_link(client):
    link = full_link(client)
    now = patch_ok(client, link["key"], {f: None for f in (
        "expires_at", "redirect_status", "max_visits", "valid_from", "password", "tags")})
    assert now["expires_at"] is None, now
    for f in ("redirect_status", "max_visits", "valid_from", "tags", "password_protected"):
        assert f not in now, now
    check_redirect(client.resolve(link["key"]), 301, link["url"])


def test_patch_several_fields_at_once(client):
    key = client.create_ok(f"https://example.com/several/{unique()}")["key"]
    now = patch_ok(client, key, {"url": "https://example.org/several", "redirect_status": 302,
                                 "tags": ["x"]})
    assert (now["url"], now["redirect_status"], now["tags"]) == (
        "https://example.org/several", 302, ["x"])
    check_redirect(client.resolve(key), 302, "https://example.org/several")


def test_patched_url_is_followed_everywhere_within_a_second(client, second_server):
    clients = (client, stk.Client(second_server))
    url = f"https://example.com/before/{unique()}"
    key = client.create_ok(url)["key"]
    warm(clients, key, 301, url)
    patch_ok(client, key, {"url": "https://example.org/after"})
    everywhere_within(clients, key, 301, "https://example.org/after", "follow the new url")


def test_301_link_edited_to_302(client, second_server):
    clients = (client, stk.Client(second_server))
    url = f"https://example.com/permanent/{unique()}"
    key = client.create_ok(url, redirect_status=301)["key"]
    warm(clients, key, 301, url)
    patch_ok(client, key, {"redirect_status": 302})
    r = everywhere_within(clients, key, 302, url, "answer 302")
    assert no_store(r), r.headers


def test_patched_max_visits_counts_everywhere(client, second_server):
    other = stk.Client(second_server)
    url = f"https://example.com/patched-limit/{unique()}"
    key = client.create_ok(url)["key"]
    patch_ok(client, key, {"max_visits": 2})
    check_redirect(client.resolve(key), 301, url)
    check_redirect(other.resolve(key), 301, url)
    for c in (client, other):
        assert_problem(c.resolve(key), 404)
    patch_ok(client, key, {"max_visits": None})
    everywhere_within((client, other), key, 301, url, "redirect without a visit limit")


def test_patched_valid_from_everywhere(client, second_server):
    clients = (client, stk.Client(second_server))
    url = f"https://example.com/patched-valid-from/{unique()}"
    key = client.create_ok(url)["key"]
    warm(clients, key, 301, url)
    _, later = seconds_ahead(3600)
    patch_ok(client, key, {"valid_from": later})
    for c in clients:
        wait_until(f"{c.base} to answer 404 before valid_from",
                   lambda c=c: c.resolve(key).status_code == 404, WITHIN, interval=0.02)
        assert_problem(c.resolve(key), 404)
    patch_ok(client, key, {"valid_from": None})
    everywhere_within(clients, key, 301, url, "redirect again")


def test_password_set_by_patch_then_needed_then_cleared(client, second_server):
    clients = (client, stk.Client(second_server))
    url = f"https://example.com/patched-password/{unique()}"
    key = client.create_ok(url)["key"]
    warm(clients, key, 301, url)
    now = patch_ok(client, key, {"password": PASSWORD})
    assert now["password_protected"] is True and PASSWORD not in str(now)
    for c in clients:
        wait_until(f"{c.base} to ask for the password",
                   lambda c=c: c.resolve(key).status_code == 401, WITHIN, interval=0.02)
        r = c.resolve(key)
        assert r.status_code == 401 and "Location" not in r.headers, r.headers
        assert r.headers["Content-Type"].startswith("text/html")
        assert c.request("POST", "/" + key, auth=False,
                         data={"password": "wrong-password"}).status_code == 401
        r = c.request("POST", "/" + key, auth=False, data={"password": PASSWORD})
        check_redirect(r, 301, url)
    now = patch_ok(client, key, {"password": None})
    assert "password_protected" not in now
    everywhere_within(clients, key, 301, url, "redirect without a password")
    assert "password_protected" not in client.read(key).json()


def test_patch_of_someone_elses_link_is_404(client, other_client):
    url = f"https://example.com/mine/{unique()}"
    link = client.create_ok(url)
    before = client.read(link["key"]).json()
    for body in ({"url": "https://evil.example/"}, {"tags": ["x"]}, {"password": PASSWORD}):
        assert_problem(patch(other_client, link["key"], body), 404)
    assert without_visits(client.read(link["key"]).json()) == without_visits(before)
    check_redirect(client.resolve(link["key"]), 301, url)


def test_patch_of_a_deleted_link_is_404(client):
    key = client.create_ok(f"https://example.com/gone/{unique()}")["key"]
    assert client.delete(key).status_code == 204
    assert_problem(patch(client, key, {"url": "https://example.org/revived"}), 404)
    assert_problem(client.resolve(key), 404)


def test_patch_of_an_expired_link_is_404(client, stack):
    key = client.create_ok(f"https://example.com/expiring/{unique()}", ttl=1)["key"]
    wait_until("the link to expire", lambda: client.read(key).status_code == 404, 5)
    for body in ({"url": "https://example.org/revived"}, {"ttl": 3600}, {"expires_at": None}):
        assert_problem(patch(client, key, body), 404)
    assert_problem(client.resolve(key), 404)
    assert client.read(key).status_code == 404


def test_patch_of_an_unknown_key_is_404(client):
    assert_problem(patch(client, unique("nolink"), {"url": "https://example.org/"}), 404)


def test_valid_from_after_expires_at_is_400(client):
    _, expires_at = seconds_ahead(3600)
    _, after = seconds_ahead(7200)
    _, before = seconds_ahead(600)
    key = client.create_ok(f"https://example.com/order/{unique()}", expires_at=expires_at,
                           valid_from=before)["key"]
    was = client.read(key).json()
    for body in ({"valid_from": after},
                 {"expires_at": before},
                 {"valid_from": after, "expires_at": expires_at},
                 {"valid_from": expires_at}):
        assert_problem(patch(client, key, body), 400)
    assert without_visits(client.read(key).json()) == without_visits(was)
    # Moving both together is fine.
    _, much_later = seconds_ahead(9000)
    now = patch_ok(client, key, {"valid_from": after, "expires_at": much_later})
    assert (now["valid_from"], now["expires_at"]) == (after, much_later)


def test_raising_max_visits_allows_exactly_the_difference(client, second_server):
    other = stk.Client(second_server)
    url = f"https://example.com/raise-limit/{unique()}"
    key = client.create_ok(url, max_visits=2)["key"]
    check_redirect(client.resolve(key), 301, url)
    check_redirect(other.resolve(key), 301, url)
    assert_problem(client.resolve(key), 404)
    patch_ok(client, key, {"max_visits": 4})
    oks = 0
    for c in (client, other) * 3:
        r = c.resolve(key)
        if r.status_code == 301:
            oks += 1
        else:
            assert_problem(r, 404)
    assert oks == 2, f"{oks} more visits after raising max_visits from 2 to 4"


def test_lowering_max_visits_below_the_visits_made_is_404(client, second_server):
    url = f"https://example.com/lower-limit/{unique()}"
    key = client.create_ok(url, max_visits=10)["key"]
    for _ in range(3):
        check_redirect(client.resolve(key), 301, url)
    patch_ok(client, key, {"max_visits": 2})
    for c in (client, stk.Client(second_server)):
        assert_problem(c.resolve(key), 404)


def test_tag_filter_is_exact(stack, server):
    c = fresh_client(stack, server)
    red = c.create_ok("https://example.com/exact/red", tags=["red"])["key"]
    c.create_ok("https://example.com/exact/reddish", tags=["reddish"])
    c.create_ok("https://example.com/exact/Red", tags=["Red"])
    assert keys_of(list_ok(c, tag="red")["items"]) == [red]
    assert list_ok(c, tag="re")["items"] == []


def test_q_is_plain_text_not_a_pattern(stack, server):
    c = fresh_client(stack, server)
    pct = c.create_ok("https://example.com/a%20b")["key"]
    under = c.create_ok("https://example.com/x", alias=unique("und_er"))["key"]
    c.create_ok("https://example.com/plain")
    assert keys_of(list_ok(c, q="%")["items"]) == [pct]
    assert keys_of(list_ok(c, q="_")["items"]) == [under]
    assert keys_of(list_ok(c, q="%20")["items"]) == [pct]


def test_list_edit_and_bulk_answers_carry_ratelimit(client):
    key = client.create_ok(f"https://example.com/rl-fields/{unique()}")["key"]
    answers = [client.request("GET", "/api/v1/urls", params={"limit": 1}),
               patch(client, key, {"tags": ["rl"]}),
               client.request("POST", "/api/v1/urls/bulk",
                              json=[{"url": "https://example.com/rl-fields/bulk"}])]
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.headers.get("RateLimit") and r.headers.get("RateLimit-Policy"), \
            f"{r.request.method} {r.request.url}: {dict(r.headers)}"
