"""Bad input to the new link fields, PATCH, the list, bulk create and Idempotency-Key, in the
manner of test_bad_input.py: each case asserts the status, a complete problem+json body and
that nothing was stored or changed (the urls table keeps its row count; an edited link reads
as before)."""

import json

import pytest

import stack as stk
from linkutil import fresh_client, list_ok, seconds_ahead, unique, without_visits
from stack import assert_problem

GOOD = "https://example.com/ok"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_, AN_HOUR = seconds_ahead(3600)       # an hour ahead (a valid valid_from)
_, TWO_HOURS = seconds_ahead(7200)


def j(**fields):
    return json.dumps(fields).encode()


def link_body(**fields):
    return j(url=GOOD, **fields)


# ---------------------------------------------------------------------------- create

# (id, body, content type); each is sent with an alias, which must not exist afterwards
CREATE_CASES = [
    # redirect_status
    ("status-303", link_body(redirect_status=303), JSON),
    ("status-300", link_body(redirect_status=300), JSON),
    ("status-200", link_body(redirect_status=200), JSON),
    ("status-0", link_body(redirect_status=0), JSON),
    ("status-string", link_body(redirect_status="301"), JSON),
    ("status-float", b'{"url":"https://example.com/ok","redirect_status":301.0}', JSON),
    ("status-bool", link_body(redirect_status=True), JSON),
    ("status-list", link_body(redirect_status=[301]), JSON),
    ("status-form-303", b"url=https%3A%2F%2Fexample.com%2F&redirect_status=303", FORM),
    ("status-form-word", b"url=https%3A%2F%2Fexample.com%2F&redirect_status=found", FORM),
    ("status-form-twice", b"url=https%3A%2F%2Fexample.com%2F&redirect_status=301"
                          b"&redirect_status=302", FORM),
    # max_visits
    ("max-visits-0", link_body(max_visits=0), JSON),
    ("max-visits-negative", link_body(max_visits=-1), JSON),
    ("max-visits-float", link_body(max_visits=1.5), JSON),
    ("max-visits-float-whole", b'{"url":"https://example.com/ok","max_visits":10.0}', JSON),
    ("max-visits-string", link_body(max_visits="10"), JSON),
    ("max-visits-true", link_body(max_visits=True), JSON),
    ("max-visits-huge", b'{"url":"https://example.com/ok","max_visits":99999999999999999999999}',
     JSON),
    ("max-visits-form-0", b"url=https%3A%2F%2Fexample.com%2F&max_visits=0", FORM),
    ("max-visits-form-word", b"url=https%3A%2F%2Fexample.com%2F&max_visits=ten", FORM),
    ("max-visits-form-negative", b"url=https%3A%2F%2Fexample.com%2F&max_visits=-3", FORM),
    # tags
    ("tags-duplicates", link_body(tags=["a", "b", "a"]), JSON),
    ("tags-eleven", link_body(tags=[f"t{i}" for i in range(11)]), JSON),
    ("tags-space", link_body(tags=["has space"]), JSON),
    ("tags-dot", link_body(tags=["a.b"]), JSON),
    ("tags-comma", link_body(tags=["a,b"]), JSON),
    ("tags-unicode", link_body(tags=["caf\u00e9"]), JSON),
    ("tags-33-chars", link_body(tags=["x" * 33]), JSON),
    ("tags-empty-string", link_body(tags=[""]), JSON),
    ("tags-string", link_body(tags="red"), JSON),
    ("tags-object", link_body(tags={"red": True}), JSON),
    ("tags-numbers", link_body(tags=[1, 2]), JSON),
    ("tags-null-item", link_body(tags=["a", None]), JSON),
    ("tags-nested", link_body(tags=[["a"]]), JSON),
    ("tags-form-duplicates", b"url=https%3A%2F%2Fexample.com%2F&tags=a&tags=a", FORM),
    ("tags-form-bad-char", b"url=https%3A%2F%2Fexample.com%2F&tags=a%2Fb", FORM),
    ("tags-form-eleven", b"url=https%3A%2F%2Fexample.com%2F"
                         + b"".join(b"&tags=t%d" % i for i in range(11)), FORM),
    ("tags-form-empty", b"url=https%3A%2F%2Fexample.com%2F&tags=", FORM),
    # password
    ("password-7", link_body(password="1234567"), JSON),
    ("password-7-multibyte", link_body(password="\u00e9" * 7), JSON),
    ("password-129", link_body(password="p" * 129), JSON),
    ("password-129-multibyte", link_body(password="\u00e9" * 129), JSON),
    ("password-empty", link_body(password=""), JSON),
    ("password-number", link_body(password=12345678), JSON),
    ("password-bool", link_body(password=True), JSON),
    ("password-list", link_body(password=["secret-secret"]), JSON),
    ("password-nul", link_body(password="secret\u0000secret"), JSON),
    ("password-form-short", b"url=https%3A%2F%2Fexample.com%2F&password=short", FORM),
    # valid_from
    ("valid-from-garbage", link_body(valid_from="tomorrow"), JSON),
    ("valid-from-empty", link_body(valid_from=""), JSON),
    ("valid-from-number", link_body(valid_from=4102444800), JSON),
    ("valid-from-bad-date", link_body(valid_from="2099-02-30T00:00:00Z"), JSON),
    ("valid-from-no-zone", link_body(valid_from="2099-01-01T00:00:00"), JSON),
    ("valid-from-after-expiry", link_body(valid_from=TWO_HOURS, expires_at=AN_HOUR), JSON),
    ("valid-from-at-expiry", link_body(valid_from=AN_HOUR, expires_at=AN_HOUR), JSON),
    ("valid-from-after-ttl", link_body(valid_from=TWO_HOURS, ttl=60), JSON),
    ("valid-from-form-garbage", b"url=https%3A%2F%2Fexample.com%2F&valid_from=soon", FORM),
    # public_stats
    ("public-stats-string", link_body(public_stats="true"), JSON),
    ("public-stats-1", link_body(public_stats=1), JSON),
    ("public-stats-0", link_body(public_stats=0), JSON),
    ("public-stats-list", link_body(public_stats=[True]), JSON),
    ("public-stats-form-maybe", b"url=https%3A%2F%2Fexample.com%2F&public_stats=maybe", FORM),
]


@pytest.mark.parametrize("cid,data,ctype", CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_bad_create_field(cid, data, ctype, stack, server, api_key):
    alias = unique("bad-")
    if ctype == JSON:
        body = json.loads(data.decode())  # floats stay floats, big numbers keep their digits
        body["alias"] = alias
        data = json.dumps(body).encode()
    else:
        data += b"&alias=" + alias.encode()
    before = stack.count_urls()
    s = stk.session()
    r = s.post(server.url("/api/v1/urls"), data=data, timeout=stk.HTTP_TIMEOUT,
               headers={"Authorization": f"Bearer {api_key}", "Content-Type": ctype},
               allow_redirects=False)
    assert_problem(r, 400)
    assert stack.count_urls() == before, "a rejected create stored a link"
    assert stack.psql(f"SELECT count(*) FROM urls WHERE key = '{alias}'") == "0"
    assert stk.Client(server, api_key).create(GOOD).status_code == 201


@pytest.mark.parametrize("fields,shown", [
    ({"password": None}, {}),
    ({"redirect_status": None}, {}),
    ({"max_visits": None}, {}),
    ({"valid_from": None}, {}),
    ({"tags": None}, {}),
    ({"password": "\u00e9" * 8}, {"password_protected": True}),
    ({"password": "\u00e9" * 128}, {"password_protected": True}),
    ({"public_stats": False}, {}),
], ids=["password-null", "status-null", "max-visits-null", "valid-from-null", "tags-null",
        "password-8-multibyte", "password-128-multibyte", "public-stats-false"])
def test_fine_create_fields(client, fields, shown):
    """null is the same as leaving the field out; lengths count characters, not bytes."""
    link = client.create_ok(GOOD, **fields)
    for k, v in shown.items():
        assert link.get(k) == v, link
    for k in ("redirect_status", "max_visits", "valid_from", "tags", "password_protected"):
        if k not in shown:
            assert k not in link, link
    assert "password" not in link


# ---------------------------------------------------------------------------- PATCH


@pytest.fixture(scope="module")
def target(stack, api_key):
    """A link of api_key's that every PATCH case tries to change."""
    c = stk.Client(stack.server, api_key)
    _, expires_at = seconds_ahead(3 * 3600)
    return c.create_ok("https://example.com/patch-target", alias=unique("target-"),
                       expires_at=expires_at, tags=["keep"], redirect_status=302)


PATCH_CASES = [
    ("empty-object", 400, b"{}", JSON, "valid"),
    ("unknown-field", 400, j(colour="red"), JSON, "valid"),
    ("unknown-with-good", 400, j(url=GOOD, colour="red"), JSON, "valid"),
    ("key", 400, j(key="newkey1"), JSON, "valid"),
    ("alias", 400, j(alias="newalias"), JSON, "valid"),
    ("key-with-good", 400, j(url=GOOD, key="newkey2"), JSON, "valid"),
    ("created-at", 400, j(created_at="2020-01-01T00:00:00Z"), JSON, "valid"),
    ("visits", 400, j(visits=0), JSON, "valid"),
    ("url-null", 400, j(url=None), JSON, "valid"),
    ("url-ftp", 400, j(url="ftp://example.com/"), JSON, "valid"),
    ("url-empty", 400, j(url=""), JSON, "valid"),
    ("url-number", 400, j(url=5), JSON, "valid"),
    ("expires-past", 400, j(expires_at="2001-01-01T00:00:00Z"), JSON, "valid"),
    ("expires-garbage", 400, j(expires_at="later"), JSON, "valid"),
    ("ttl-zero", 400, j(ttl=0), JSON, "valid"),
    ("ttl-string", 400, j(ttl="60"), JSON, "valid"),
    ("ttl-and-expires", 400, j(ttl=60, expires_at=TWO_HOURS), JSON, "valid"),
    ("status-303", 400, j(redirect_status=303), JSON, "valid"),
    ("status-string", 400, j(redirect_status="302"), JSON, "valid"),
    ("max-visits-0", 400, j(max_visits=0), JSON, "valid"),
    ("max-visits-float", 400, j(max_visits=2.5), JSON, "valid"),
    ("valid-from-garbage", 400, j(valid_from="soon"), JSON, "valid"),
    ("valid-from-after-expiry", 400, j(valid_from="2099-01-01T00:00:00Z"), JSON, "valid"),
    ("password-short", 400, j(password="short"), JSON, "valid"),
    ("password-number", 400, j(password=123456789), JSON, "valid"),
    ("tags-duplicates", 400, j(tags=["a", "a"]), JSON, "valid"),
    ("tags-eleven", 400, j(tags=[f"t{i}" for i in range(11)]), JSON, "valid"),
    ("tags-bad-char", 400, j(tags=["a b"]), JSON, "valid"),
    ("tags-string", 400, j(tags="a"), JSON, "valid"),
    ("public-stats-string", 400, j(public_stats="true"), JSON, "valid"),
    ("json-array", 400, b'[{"url":"https://example.com/x"}]', JSON, "valid"),
    ("json-null", 400, b"null", JSON, "valid"),
    ("malformed-json", 400, b'{"url": "https://example.com/x"', JSON, "valid"),
    ("empty-body", 400, b"", JSON, "valid"),
    ("duplicate-member", 400, b'{"url":"https://example.com/a","url":"https://example.com/b"}',
     JSON, "valid"),
    ("form", 415, b"url=https%3A%2F%2Fexample.com%2Fx", FORM, "valid"),
    ("text-plain", 415, j(url=GOOD), "text/plain", "valid"),
    ("too-large", 413, b'{"url":"https://example.com/","tags":["' + b"x" * 70000 + b'"]}', JSON,
     "valid"),
    ("someone-else", 404, j(url="https://evil.example/"), JSON, "other"),
    ("no-key", 401, j(url="https://evil.example/"), JSON, None),
]


@pytest.mark.parametrize("cid,status,data,ctype,auth", PATCH_CASES,
                         ids=[c[0] for c in PATCH_CASES])
def test_bad_patch(cid, status, data, ctype, auth, stack, server, api_key, other_key, target):
    owner = stk.Client(server, api_key)
    before_link = without_visits(owner.read(target["key"]).json())
    before = stack.count_urls()
    headers = {"Content-Type": ctype}
    if auth:
        headers["Authorization"] = f"Bearer {api_key if auth == 'valid' else other_key}"
    r = stk.session().patch(server.url(f"/api/v1/urls/{target['key']}"), data=data,
                            headers=headers, timeout=stk.HTTP_TIMEOUT, allow_redirects=False)
    assert_problem(r, status)
    assert stack.count_urls() == before
    assert without_visits(owner.read(target["key"]).json()) == before_link, "the link changed"
    r = owner.resolve(target["key"])
    assert r.status_code == 302 and r.headers["Location"] == "https://example.com/patch-target"
    for k in ("newkey1", "newkey2", "newalias"):
        assert stack.psql(f"SELECT count(*) FROM urls WHERE key = '{k}'") == "0"


# ---------------------------------------------------------------------------- list


@pytest.fixture(scope="module")
def lister(stack):
    """A key with five links (three tagged 'red'), and cursors of its lists."""
    c = fresh_client(stack, stack.server)
    for i in range(5):
        c.create_ok(f"https://example.com/lister/{i}", **({"tags": ["red"]} if i % 2 == 0 else {}))
    c.cursors = {
        "plain": list_ok(c, limit=1)["next_cursor"],
        "red": list_ok(c, limit=1, tag="red")["next_cursor"],
        "q": list_ok(c, limit=1, q="lister")["next_cursor"],
    }
    assert all(c.cursors.values()), c.cursors
    return c


def tamper(cursor):
    """The cursor with one character in its middle changed to another base64url character."""
    i = len(cursor) // 2
    ch = "A" if cursor[i] != "A" else "B"
    return cursor[:i] + ch + cursor[i + 1:]


LIST_CASES = [
    ("limit-0", lambda cur: {"limit": "0"}),
    ("limit-1001", lambda cur: {"limit": "1001"}),
    ("limit-negative", lambda cur: {"limit": "-1"}),
    ("limit-word", lambda cur: {"limit": "abc"}),
    ("limit-fraction", lambda cur: {"limit": "1.5"}),
    ("limit-plus", lambda cur: {"limit": "+5"}),
    ("limit-huge", lambda cur: {"limit": "99999999999999999999"}),
    ("limit-space", lambda cur: {"limit": " 5"}),
    ("cursor-tampered", lambda cur: {"cursor": tamper(cur["plain"])}),
    ("cursor-truncated", lambda cur: {"cursor": cur["plain"][:-2]}),
    ("cursor-extended", lambda cur: {"cursor": cur["plain"] + "AA"}),
    ("cursor-garbage", lambda cur: {"cursor": "not a cursor!"}),
    ("cursor-base64-nonsense", lambda cur: {"cursor": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
    ("cursor-with-a-tag", lambda cur: {"cursor": cur["plain"], "tag": "red"}),
    ("cursor-without-its-tag", lambda cur: {"cursor": cur["red"]}),
    ("cursor-other-tag", lambda cur: {"cursor": cur["red"], "tag": "blue"}),
    ("cursor-with-a-q", lambda cur: {"cursor": cur["plain"], "q": "lister"}),
    ("cursor-other-q", lambda cur: {"cursor": cur["q"], "q": "listers"}),
    ("cursor-q-as-tag", lambda cur: {"cursor": cur["q"], "tag": "lister"}),
    ("tag-space", lambda cur: {"tag": "a b"}),
    ("tag-dot", lambda cur: {"tag": "a.b"}),
    ("tag-33", lambda cur: {"tag": "x" * 33}),
    ("tag-unicode", lambda cur: {"tag": "caf\u00e9"}),
    ("q-257-bytes", lambda cur: {"q": "q" * 257}),
    ("q-multibyte-over-256-bytes", lambda cur: {"q": "\u00e9" * 129}),
    ("q-control", lambda cur: {"q": "a\x01b"}),
]


@pytest.mark.parametrize("cid,params", LIST_CASES, ids=[c[0] for c in LIST_CASES])
def test_bad_list_parameter(cid, params, lister):
    assert_problem(lister.request("GET", "/api/v1/urls", params=params(lister.cursors)), 400)


def test_cursor_of_another_key_is_400(lister, stack, server):
    other = fresh_client(stack, server)
    other.create_ok("https://example.com/other-lister/1")
    other.create_ok("https://example.com/other-lister/2")
    assert_problem(other.request("GET", "/api/v1/urls",
                                 params={"cursor": lister.cursors["plain"]}), 400)


def test_list_parameters_at_their_bounds(lister):
    assert len(list_ok(lister, limit=1)["items"]) == 1
    assert len(list_ok(lister, limit=1000)["items"]) == 5
    assert list_ok(lister, q="q" * 256)["items"] == []
    assert list_ok(lister, tag="x" * 32)["items"] == []
    # An empty field of a search form filters nothing, and its cursor is the plain list's.
    every = list_ok(lister, limit=1000)["items"]
    assert list_ok(lister, limit=1000, q="", tag="")["items"] == every
    page = list_ok(lister, limit=1, q="")
    assert page["items"] == every[:1]
    assert list_ok(lister, limit=1, cursor=page["next_cursor"])["items"] == every[1:2]
    assert len(list_ok(lister, tag="red", cursor=lister.cursors["red"])["items"]) == 2


def test_list_needs_a_key(anon):
    assert_problem(anon.request("GET", "/api/v1/urls", auth=False), 401)


# ---------------------------------------------------------------------------- bulk


def many(n, prefix="https://example.com/bulk-bad"):
    return [{"url": f"{prefix}/{i}"} for i in range(n)]


MIB = 1024 * 1024


def over_a_mib():
    pad = "p" * 1000
    items, size = [], 2
    while size <= MIB:
        item = {"url": f"https://example.com/{pad}/{len(items)}"}
        items.append(item)
        size += len(json.dumps(item)) + 2
    return json.dumps(items).encode()


BULK_CASES = [
    ("empty-array", 400, b"[]", JSON),
    ("1001-items", 400, json.dumps(many(1001)).encode(), JSON),
    ("object", 400, j(url=GOOD), JSON),
    ("empty-object", 400, b"{}", JSON),
    ("string", 400, b'"x"', JSON),
    ("number", 400, b"3", JSON),
    ("null", 400, b"null", JSON),
    ("malformed", 400, b'[{"url": "https://example.com/"}', JSON),
    ("empty-body", 400, b"", JSON),
    ("over-1-mib", 413, None, JSON),
    ("form", 415, b"url=https%3A%2F%2Fexample.com%2F", FORM),
    ("text-plain", 415, json.dumps(many(2)).encode(), "text/plain"),
]


@pytest.mark.parametrize("cid,status,data,ctype", BULK_CASES, ids=[c[0] for c in BULK_CASES])
def test_bad_bulk(cid, status, data, ctype, stack, server, api_key):
    if data is None:
        data = over_a_mib()
        assert len(data) > MIB
    before = stack.count_urls()
    r = stk.session().post(server.url("/api/v1/urls/bulk"), data=data,
                           headers={"Authorization": f"Bearer {api_key}", "Content-Type": ctype},
                           timeout=stk.HTTP_TIMEOUT, allow_redirects=False)
    assert_problem(r, status)
    assert stack.count_urls() == before
    # An authenticated answer: it carries the key's RateLimit fields.
    assert "RateLimit" in r.headers and "RateLimit-Policy" in r.headers, dict(r.headers)


def test_refused_bulk_bodies_cost_nothing(stack, server):
    """A bulk refused for its shape (or for an Idempotency-Key) is not counted: the key's
    RateLimit shows the same remaining units after each."""
    made = stack.ctl("apikey", "create", "bulk-shape-free", "--rate", "10/h")
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": "Bearer " + made.stdout.strip().splitlines()[-1]}
    seen = []
    for data, ctype, extra in ((b"[]", JSON, {}), (b"[", JSON, {}),
                               (json.dumps(many(2)).encode(), "text/plain", {}),
                               (json.dumps(many(2)).encode(), JSON, {"Idempotency-Key": "b-1"}),
                               (json.dumps(many(1001)).encode(), JSON, {})):
        r = stk.session().post(server.url("/api/v1/urls/bulk"), data=data,
                               headers={**auth, "Content-Type": ctype, **extra},
                               timeout=stk.HTTP_TIMEOUT, allow_redirects=False)
        assert r.status_code in (400, 415), r.text
        seen.append(r.headers.get("RateLimit"))
    assert len(set(seen)) == 1 and seen[0], seen


def test_bulk_over_a_mib_chunked_is_413(stack, server, api_key):
    data = over_a_mib()
    before = stack.count_urls()

    def gen():
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]
    r = stk.session().post(server.url("/api/v1/urls/bulk"), data=gen(),
                           headers={"Authorization": f"Bearer {api_key}", "Content-Type": JSON},
                           timeout=stk.HTTP_TIMEOUT, allow_redirects=False)
    assert_problem(r, 413)
    assert stack.count_urls() == before


def test_bulk_of_exactly_1000_under_a_mib_is_fine(client, stack):
    before = stack.count_urls()
    r = client.request("POST", "/api/v1/urls/bulk", json=many(1000, "https://example.com/k"))
    assert r.status_code == 200, r.text[:300]
    assert stack.count_urls() == before + 1000


@pytest.mark.parametrize("n", [0, 1001])
def test_bulk_size_is_checked_before_the_rate_limit(stack, server, n):
    """0 or over 1000 items is 400 whatever the rate limit: here a key with a burst of 10."""
    name = unique("bulk-size-")
    res = stack.ctl("apikey", "create", name, "--rate", "10/min", "--burst", "10")
    assert res.returncode == 0, res.stdout + res.stderr
    c = stk.Client(server, res.stdout.strip().splitlines()[-1].strip())
    before = stack.count_urls()
    assert_problem(c.request("POST", "/api/v1/urls/bulk", json=many(n)), 400)
    assert stack.count_urls() == before
    # And nothing of its limit was spent.
    r = c.request("POST", "/api/v1/urls/bulk", json=many(10, "https://example.com/size-ok"))
    assert r.status_code == 200 and all(i["status"] == 201 for i in r.json()["items"]), r.text


def test_bulk_bad_items_among_good_ones(client, stack):
    u = unique()
    good = [f"https://example.com/mixed/{u}/{i}" for i in range(3)]
    body = [{"url": good[0]}, {"url": good[1], "redirect_status": 303}, 5, "x", None, [],
            {"url": good[1], "tags": ["a", "a"]}, {"alias": "no-url-here"},
            {"url": good[2], "max_visits": 0}, {"url": good[2], "password": "short"},
            {"url": good[1]},
            {"url": good[2]}]
    before = stack.count_urls()
    r = client.request("POST", "/api/v1/urls/bulk", json=body)
    assert r.status_code == 200, r.text[:300]
    items = r.json()["items"]
    assert [i["status"] for i in items] == [201] + [400] * 9 + [201, 201], items
    for i in items:
        if i["status"] == 400:
            assert set(i) == {"status", "problem"}
            assert i["problem"]["status"] == 400 and i["problem"]["detail"], i
    assert [i["link"]["url"] for i in items if i["status"] == 201] == [good[0], good[1], good[2]]
    assert stack.count_urls() == before + 3
    assert stack.psql("SELECT count(*) FROM urls WHERE key = 'no-url-here'") == "0"


# ---------------------------------------------------------------------------- Idempotency-Key


IDEM_CASES = [
    ("empty", b""),
    ("256-chars", b"k" * 256),
    ("256-quoted", b'"' + b"k" * 256 + b'"'),
    ("control-char", b"abc\x01def"),
    ("tab", b"abc\tdef"),
    ("space-inside", b"abc def"),
    ("del", b"abc\x7fdef"),
    ("non-ascii-byte", b"abc\xffdef"),
    ("utf-8", "caf\u00e9".encode()),
    ("unterminated-quote", b'"abc'),
    ("empty-quoted", b'""'),
    ("junk-after-quote", b'"abc"def'),
    ("bad-escape", b'"ab\\ncd"'),
    ("lone-quote", b'"'),
]


@pytest.mark.parametrize("cid,value", IDEM_CASES, ids=[c[0] for c in IDEM_CASES])
def test_bad_idempotency_key(cid, value, stack, server, api_key):
    url = f"https://example.com/idem-bad/{unique()}"
    before = stack.count_urls()
    r = stk.session().post(server.url("/api/v1/urls"), data=j(url=url),
                           headers={"Authorization": f"Bearer {api_key}",
                                    "Content-Type": JSON, "Idempotency-Key": value},
                           timeout=stk.HTTP_TIMEOUT, allow_redirects=False)
    assert_problem(r, 400)
    assert stack.count_urls() == before
    assert stk.Client(server, api_key).create(url).status_code == 201


@pytest.mark.parametrize("value", ["k" * 255, '"' + "k" * 255 + '"', "!", "~#$%&'*+-.^_`|"],
                         ids=["255-chars", "255-quoted", "one-char", "punctuation"])
def test_idempotency_key_bounds_accepted(stack, server, value):
    c = fresh_client(stack, server)  # its own key, so these values are new to it
    url = f"https://example.com/idem-ok/{unique()}"
    first = c.create(url, headers={"Idempotency-Key": value})
    assert first.status_code == 201, first.text
    again = c.create(url, headers={"Idempotency-Key": value})
    assert again.status_code == 201 and again.json() == first.json()


def test_patch_to_a_self_referencing_url_is_400(client, server, stack):
    key = client.create_ok("https://example.com/self-ref-target")["key"]
    for url in (f"{server.base_url}/{key}", f"{server.base_url}/abcdefg"):
        assert_problem(client.request("PATCH", f"/api/v1/urls/{key}", json={"url": url}), 400)
    r = client.resolve(key)
    assert r.status_code == 301 and r.headers["Location"] == "https://example.com/self-ref-target"
