"""Helpers shared by the tests of links people manage (test_link_fields, test_list_edit,
test_bulk_idempotency, test_bad_input_links): clients that stand for other addresses, fresh
API keys with empty lists, the list, /metrics, times a few seconds ahead."""

import calendar
import datetime
import os
import re
import time

from requests.adapters import HTTPAdapter

import stack as stk

# The optional fields of a link object (API.md, "Further optional create fields"), as the
# link object shows them: password becomes password_protected.
OPTIONAL_FIELDS = ("redirect_status", "max_visits", "valid_from", "tags", "public_stats",
                   "password_protected")
BASE_FIELDS = ("key", "short_url", "url", "created_at", "expires_at")


def unique(prefix="t"):
    return f"{prefix}{os.urandom(5).hex()}"


def rfc3339(ts):
    """RFC 3339 UTC, whole seconds, as the API writes times."""
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def seconds_ahead(n):
    """A whole second at least n seconds from now, as (timestamp, RFC 3339 text)."""
    ts = int(time.time()) + n + 1
    return ts, rfc3339(ts)


def from_rfc3339(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class SourceAddressAdapter(HTTPAdapter):
    """Connects from a given local address: on loopback, 127.0.0.2, 127.0.0.3, ... stand for
    different clients (the server listens on 127.0.0.1 and sees the peer address)."""

    def __init__(self, address, **kw):
        self._address = address
        super().__init__(**kw)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)


def client_from(server, address, api_key=None):
    """A stack.Client whose connections come from address."""
    c = stk.Client(server, api_key)
    c.s.mount("http://", SourceAddressAdapter(address))
    return c


def fresh_client(stack, server, rate="1000000/s"):
    """A client with an API key of its own, so its list holds only what the test made."""
    key, _ = stack.create_apikey(unique("list-"), rate=rate)
    return stk.Client(server, key)


def list_page(client, **params):
    return client.request("GET", "/api/v1/urls", params=params)


def list_ok(client, **params):
    r = list_page(client, **params)
    assert r.status_code == 200, f"list {params}: {r.status_code} {r.text[:300]}"
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json", r.headers
    body = r.json()
    assert set(body) == {"items", "next_cursor"}, body.keys()
    assert isinstance(body["items"], list), body
    assert body["next_cursor"] is None or (isinstance(body["next_cursor"], str)
                                           and body["next_cursor"]), body["next_cursor"]
    return body


def list_all(client, limit=None, **params):
    """Every page, following next_cursor; returns the items in order."""
    items, cursor, pages = [], None, 0
    while True:
        p = dict(params)
        if limit is not None:
            p["limit"] = limit
        if cursor is not None:
            p["cursor"] = cursor
        body = list_ok(client, **p)
        items.extend(body["items"])
        pages += 1
        assert pages < 10000, "the list never ends"
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def keys_of(items):
    return [it["key"] for it in items]


def without_visits(link):
    return {k: v for k, v in link.items() if k != "visits"}


def metric(server, name, labels=""):
    text = stk.session().get(server.url("/metrics"), timeout=stk.HTTP_TIMEOUT).text
    m = re.search(r"^" + re.escape(name + labels) + r" (\d+)$", text, re.M)
    assert m, f"{name}{labels} missing from /metrics"
    return int(m.group(1))


def redirects_by_tier(server):
    return {tier: metric(server, "shortener_redirects_total", f'{{result="{tier}"}}')
            for tier in ("hot_hit", "cache_hit", "db_hit")}


def wait_hot_cache_on(server, timeout=10):
    stk.wait_until("the hot cache to be on",
                   lambda: metric(server, "shortener_hot_cache_enabled") == 1, timeout)


def no_store(r):
    return re.search(r"\bno-store\b", r.headers.get("Cache-Control", "")) is not None


def check_redirect(r, status, url):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:300]}"
    assert r.headers.get("Location") == url, dict(r.headers)
    cc = r.headers.get("Cache-Control")
    assert cc, f"a redirect without Cache-Control: {dict(r.headers)}"
    if status in (302, 307):
        assert no_store(r), f"{status} with Cache-Control {cc!r}"
    return r
