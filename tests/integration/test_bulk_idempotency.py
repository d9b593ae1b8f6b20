"""Bulk create (API.md: POST /api/v1/urls/bulk) and idempotent creates (Idempotency-Key):
per-item answers in order, the rate limit taken n units at a time, all or none; one link per
Idempotency-Key whatever the concurrency, the first answer given again."""

import re
import threading

import pytest

import stack as stk
from linkutil import unique
from stack import assert_problem

BULK = "/api/v1/urls/bulk"


def bulk(c, items, **kw):
    return c.request("POST", BULK, json=items, **kw)


def bulk_ok(c, items):
    r = bulk(c, items)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json", r.headers
    body = r.json()
    assert set(body) == {"items"} and len(body["items"]) == len(items), body
    return body["items"]


def check_created(entry, url):
    assert set(entry) == {"status", "link"} and entry["status"] == 201, entry
    link = entry["link"]
    assert link["url"] == url and isinstance(link["key"], str) and link["key"], entry
    return link


def check_refused(entry, status):
    assert set(entry) == {"status", "problem"} and entry["status"] == status, entry
    p = entry["problem"]
    assert isinstance(p, dict), entry
    for f in ("type", "title", "detail"):
        assert isinstance(p.get(f), str) and (f != "type" or p[f]), p
    assert p.get("status") == status, p
    return p


def owner_count(stack, key_id):
    return int(stack.psql(f"SELECT count(*) FROM urls WHERE owner_id = {int(key_id)}"))


def url_count(stack, url):
    return int(stack.psql("SELECT count(*) FROM urls WHERE url = '" + url.replace("'", "''")
                          + "'"))


# ---------------------------------------------------------------------------- bulk


def test_bulk_of_three_with_a_bad_one_in_the_middle(client, stack):
    u = unique()
    urls = [f"https://example.com/bulk/{u}/1", "ftp://example.com/bad",
            f"https://example.com/bulk/{u}/3"]
    before = stack.count_urls()
    items = bulk_ok(client, [{"url": urls[0]}, {"url": urls[1]},
                             {"url": urls[2], "tags": ["bulk"], "redirect_status": 302}])
    first = check_created(items[0], urls[0])
    p = check_refused(items[1], 400)
    assert "url" in p["detail"].lower(), p
    third = check_created(items[2], urls[2])
    assert third["tags"] == ["bulk"] and third["redirect_status"] == 302, third
    assert stack.count_urls() == before + 2
    r = client.resolve(first["key"])
    assert r.status_code == 301 and r.headers["Location"] == urls[0]
    r = client.resolve(third["key"])
    assert r.status_code == 302 and r.headers["Location"] == urls[2]
    for link in (first, third):
        assert client.read(link["key"]).status_code == 200


def test_bulk_items_take_every_create_field(client, stack):
    alias = unique("bulk-")
    items = bulk_ok(client, [{"url": "https://example.com/bulk-fields", "alias": alias,
                              "ttl": 3600, "max_visits": 3, "password": "bulk-password",
                              "public_stats": True}])
    link = check_created(items[0], "https://example.com/bulk-fields")
    assert link["key"] == alias and link["max_visits"] == 3 and link["public_stats"] is True
    assert link["password_protected"] is True and "password" not in link, link
    assert "bulk-password" not in str(items)
    assert client.resolve(alias).status_code == 401


def test_bulk_of_1000(client, stack):
    u = unique()
    urls = [f"https://example.com/thousand/{u}/{i}" for i in range(1000)]
    before = stack.count_urls()
    items = bulk_ok(client, [{"url": x} for x in urls])
    keys = [check_created(e, x)["key"] for e, x in zip(items, urls)]
    assert all(stk.KEY_RE.match(k) for k in keys), [k for k in keys if not stk.KEY_RE.match(k)]
    assert len(set(keys)) == 1000
    assert stack.count_urls() == before + 1000
    for i in (0, 499, 999):
        r = client.resolve(keys[i])
        assert r.status_code == 301 and r.headers["Location"] == urls[i]


def test_aliases_colliding_inside_one_bulk(client, stack):
    alias, taken = unique("dup-"), unique("taken-")
    client.create_ok("https://example.com/already", alias=taken)
    before = stack.count_urls()
    items = bulk_ok(client, [{"url": "https://example.com/dup/1", "alias": alias},
                             {"url": "https://example.com/dup/2", "alias": alias},
                             {"url": "https://example.com/dup/3", "alias": taken},
                             {"url": "https://example.com/dup/4"}])
    assert check_created(items[0], "https://example.com/dup/1")["key"] == alias
    check_refused(items[1], 409)
    check_refused(items[2], 409)
    check_created(items[3], "https://example.com/dup/4")
    assert stack.count_urls() == before + 2
    assert client.resolve(alias).headers["Location"] == "https://example.com/dup/1"
    assert client.resolve(taken).headers["Location"] == "https://example.com/already"


@pytest.fixture
def limited_key(stack):
    """A key allowed 10 creates a minute with a burst of 10: (key, id)."""
    name = unique("bulk-rl-")
    res = stack.ctl("apikey", "create", name, "--rate", "10/min", "--burst", "10")
    assert res.returncode == 0, res.stdout + res.stderr
    key = res.stdout.strip().splitlines()[-1].strip()
    rows = [r for r in stack.list_apikeys() if r["name"] == name]
    return key, rows[0]["id"]


def test_bulk_above_the_burst_is_429_naming_it_and_makes_nothing(stack, server, limited_key):
    key, key_id = limited_key
    c = stk.Client(server, key)
    body = assert_problem(bulk(c, [{"url": f"https://example.com/rl/{i}"} for i in range(11)]),
                          429)
    assert re.search(r"\b10\b", body["detail"]) and "burst" in body["detail"].lower(), body
    assert owner_count(stack, key_id) == 0
    # The refusal spent nothing: the whole burst is still there.
    items = bulk_ok(c, [{"url": f"https://example.com/rl/ok/{i}"} for i in range(10)])
    assert [e["status"] for e in items] == [201] * 10
    assert owner_count(stack, key_id) == 10


def test_bulk_costs_n_units_all_or_none(stack, server, limited_key):
    key, key_id = limited_key
    c = stk.Client(server, key)
    items = bulk_ok(c, [{"url": f"https://example.com/rl2/{i}"} for i in range(10)])
    assert [e["status"] for e in items] == [201] * 10
    assert_problem(bulk(c, [{"url": "https://example.com/rl2/one-more"}]), 429)
    assert_problem(c.create("https://example.com/rl2/single"), 429)
    assert owner_count(stack, key_id) == 10


def test_bulk_costs_n_units_after_single_creates(stack, server, limited_key):
    key, key_id = limited_key
    c = stk.Client(server, key)
    for i in range(3):
        c.create_ok(f"https://example.com/rl3/{i}")
    assert_problem(bulk(c, [{"url": f"https://example.com/rl3/b{i}"} for i in range(8)]), 429)
    assert owner_count(stack, key_id) == 3
    items = bulk_ok(c, [{"url": f"https://example.com/rl3/c{i}"} for i in range(7)])
    assert [e["status"] for e in items] == [201] * 7
    assert owner_count(stack, key_id) == 10


def test_anonymous_bulk_is_401(anon, stack, extra_server):
    before = stack.count_urls()
    assert_problem(bulk(anon, [{"url": "https://example.com/anon-bulk"}]), 401)
    open_server = extra_server(ALLOW_ANONYMOUS=1)
    assert_problem(bulk(stk.Client(open_server), [{"url": "https://example.com/anon-bulk"}]),
                   401)
    assert stack.count_urls() == before


# ---------------------------------------------------------------------------- Idempotency-Key


def idem_create(c, ik, url, **fields):
    return c.create(url, headers={"Idempotency-Key": ik}, **fields)


def test_identical_creates_make_one_link(client, stack, server):
    ik, url = unique("ik-"), f"https://example.com/idem/{unique()}"
    first = idem_create(client, ik, url, tags=["idem"])
    assert first.status_code == 201, first.text
    for _ in range(2):
        again = idem_create(client, ik, url, tags=["idem"])
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["Location"] == first.headers["Location"]
    assert url_count(stack, url) == 1
    r = client.resolve(first.json()["key"])
    assert r.status_code == 301 and r.headers["Location"] == url


def test_concurrent_identical_creates_make_exactly_one_link(client, second_server, stack,
                                                            api_key):
    ik, url = unique("ik-race-"), f"https://example.com/idem-race/{unique()}"
    servers = (client.base, second_server.base_url)
    start = threading.Barrier(20)
    answers, errors = [], []
    lock = threading.Lock()

    def attempt(i):
        c = stk.Client(servers[i % 2], api_key)
        try:
            start.wait(30)
            r = idem_create(c, ik, url)
            with lock:
                answers.append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(answers) == 20
    made = [r for r in answers if r.status_code == 201]
    others = [r for r in answers if r.status_code != 201]
    for r in others:
        assert_problem(r, 409)
    assert made, [r.status_code for r in answers]
    bodies = {r.text for r in made}
    assert len({r.json()["key"] for r in made}) == 1, bodies
    assert all(r.json() == made[0].json() for r in made), bodies
    assert url_count(stack, url) == 1
    # Afterwards a retry gets the 201.
    again = idem_create(client, ik, url)
    assert again.status_code == 201 and again.json() == made[0].json(), again.text


def test_same_key_different_body_is_422(client, stack):
    ik, url = unique("ik-"), f"https://example.com/idem-422/{unique()}"
    first = idem_create(client, ik, url)
    assert first.status_code == 201
    before = stack.count_urls()
    assert_problem(idem_create(client, ik, url + "/other"), 422)
    assert_problem(idem_create(client, ik, url, tags=["x"]), 422)
    assert stack.count_urls() == before
    # The first answer is still the answer to the first body.
    assert idem_create(client, ik, url).json() == first.json()


@pytest.mark.parametrize("bare,quoted", [
    ("abc-{u}", '"abc-{u}"'),
    ('q"{u}', '"q\\"{u}"'),
    ("b\\{u}", '"b\\\\{u}"'),
], ids=["plain", "escaped-quote", "escaped-backslash"])
def test_quoted_key_is_the_same_key(client, stack, bare, quoted):
    u = unique()
    bare, quoted = bare.format(u=u), quoted.format(u=u)
    url = f"https://example.com/idem-quoted/{u}"
    first = idem_create(client, quoted, url)
    assert first.status_code == 201, first.text
    again = idem_create(client, bare, url)
    assert again.status_code == 201 and again.json() == first.json(), again.text
    assert url_count(stack, url) == 1
    # And the other way round.
    u2 = unique()
    url2 = url + "/2"
    first = idem_create(client, bare.replace(u, u2), url2)
    again = idem_create(client, quoted.replace(u, u2), url2)
    assert again.status_code == 201 and again.json() == first.json(), again.text
    assert url_count(stack, url2) == 1


def test_keys_are_per_api_key(client, other_client, stack):
    ik, url = unique("ik-shared-"), f"https://example.com/idem-per-key/{unique()}"
    mine = idem_create(client, ik, url)
    theirs = idem_create(other_client, ik, url)
    assert mine.status_code == 201 and theirs.status_code == 201, (mine.text, theirs.text)
    assert mine.json()["key"] != theirs.json()["key"]
    assert url_count(stack, url) == 2
    assert client.read(mine.json()["key"]).status_code == 200
    assert other_client.read(theirs.json()["key"]).status_code == 200
    assert other_client.read(mine.json()["key"]).status_code == 404
    # Each replays its own.
    assert idem_create(other_client, ik, url).json() == theirs.json()
    assert idem_create(client, ik, url).json() == mine.json()


def test_idempotent_form_create(client, stack):
    ik, url = unique("ik-form-"), f"https://example.com/idem-form/{unique()}"
    answers = [client.request("POST", "/api/v1/urls", headers={"Idempotency-Key": ik},
                              data={"url": url, "tags": "form"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert url_count(stack, url) == 1
