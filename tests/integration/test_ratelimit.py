"""Rate limits (issue 3): per API key, shared through Redis by every shortener instance, the
IETF RateLimit header fields on every authenticated answer, anonymous and failed-authentication
limits per client address, the in-process fallback while Redis is away, admin keys, and the
shortenerctl flags. One stack of its own with two instances, since one test stops Redis."""

import re
import threading
import time

import pytest

import stack as stk
from stack import assert_problem

# draft-ietf-httpapi-ratelimit-headers: both fields are structured-field Lists (RFC 8941) of
# one Item here, a String (the policy name) with Integer parameters.
SF_STRING = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"'
SF_PARAMS = r'((?:;[a-z*][a-z0-9_.*-]*=-?\d{1,15})*)'
ITEM_RE = re.compile(rf"^({SF_STRING}){SF_PARAMS}$")


def sf_item(value):
    """(name, {param: int}) of a one-item structured-field list, or an assertion error."""
    assert value is not None, "header missing"
    m = ITEM_RE.match(value)
    assert m, f"not a structured-field item with integer parameters: {value!r}"
    params = {}
    for p in m.group(2).split(";")[1:]:
        k, v = p.split("=")
        assert k not in params, f"parameter {k} twice in {value!r}"
        params[k] = int(v)
    return m.group(1)[1:-1], params


def check_headers(r, limit, window, burst=None):
    """The RateLimit-Policy and RateLimit fields of an authenticated answer; returns
    (remaining, reset)."""
    name, pol = sf_item(r.headers.get("RateLimit-Policy"))
    assert name == "default", r.headers
    assert pol == {"q": limit, "w": window}, f"policy {pol} for {limit}/{window}s"
    name2, state = sf_item(r.headers.get("RateLimit"))
    assert name2 == name, r.headers
    assert set(state) == {"r", "t"}, state
    assert state["r"] >= 0 and state["t"] >= 0, state
    if burst is not None:
        assert state["r"] < burst, state
    if r.status_code == 429:
        assert_problem(r, 429)
        retry = r.headers.get("Retry-After", "")
        assert re.fullmatch(r"[1-9]\d*", retry), f"Retry-After {retry!r}"
        assert state["r"] == 0 and state["t"] == int(retry), (state, retry)
    return state["r"], state["t"]


def assert_no_headers(r):
    for h in ("RateLimit", "RateLimit-Policy"):
        assert h not in r.headers, f"{r.status_code} carries {h}: {r.headers[h]}"


@pytest.fixture(scope="module")
def rl_stack():
    with stk.running_stack("ratelimit") as st:
        st.second = st.start_shortener()
        yield st


# ---------------------------------------------------------------------------- the shared limit


def test_two_instances_share_one_limit(rl_stack):
    """8 clients on one key (20/s, burst 20) spread over two instances for several windows:
    together they get no more than the rate plus the burst, and every refusal is a complete
    429."""
    rate, burst = 20, 20
    key, _ = rl_stack.create_apikey(rate=f"{rate}/s")
    servers = [rl_stack.server, rl_stack.second]
    link = stk.Client(servers[0], key).create_ok("https://example.com/shared-limit")["key"]
    accepted, refused, per_server, errors = [], [], [0, 0], []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n):
        clients = [stk.Client(s, key) for s in servers]
        i = n
        while not stop.is_set():
            which = i % 2
            c = clients[which]
            kind = i % 5
            try:
                if kind == 0:
                    r, admitted = c.create("https://example.com/shared/%d" % i), 201
                elif kind == 1:
                    r, admitted = c.delete("nosuchlink%d" % n), 404
                else:
                    r, admitted = c.read(link), 200
                with lock:
                    if r.status_code == admitted:
                        accepted.append(time.monotonic())
                        per_server[which] += 1
                        check_headers(r, rate, 1, burst)
                    elif r.status_code == 429:
                        refused.append(r)
                    else:
                        errors.append(f"{r.status_code} {r.text[:200]}")
            except AssertionError as e:
                errors.append(str(e))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            i += 8
            time.sleep(0.005)

    # The creation above spent one request of the burst; let it come back.
    time.sleep(1.0 / rate + 0.05)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - t0
    assert not errors, errors[:5]
    for r in refused:
        check_headers(r, rate, 1)
    limit = burst + rate * elapsed
    assert len(accepted) <= limit + 1, \
        f"{len(accepted)} accepted in {elapsed:.2f}s, more than {limit:.0f} (rate 20/s, burst 20)"
    # Well under what 8 clients could send: the limit, not the clients, decided.
    assert len(refused) > len(accepted), (len(accepted), len(refused))
    assert len(accepted) >= burst, len(accepted)
    assert min(per_server) > 0, per_server


def test_every_authenticated_answer_carries_the_fields(rl_stack):
    key, _ = rl_stack.create_apikey(rate="1000/h")
    c = stk.Client(rl_stack.server, key)
    r = c.create("https://example.com/fields", alias="fields-alias")
    assert r.status_code == 201, r.text
    alias = r.json()["key"]
    remaining, _ = check_headers(r, 1000, 3600, 1000)
    answers = [
        c.read(alias),                                              # 200
        c.create("https://example.com/dup", alias=alias),           # 409
        c.create("not a url"),                                      # 400
        c.read("nosuchkey1"),                                       # 404
        c.request("POST", "/api/v1/urls", data=b"x",
                  headers={"Content-Type": "text/plain"}),          # 415
        c.delete(alias),                                            # 204
    ]
    assert [a.status_code for a in answers] == [200, 409, 400, 404, 415, 204]
    for a in answers:
        r2, _ = check_headers(a, 1000, 3600, 1000)
        assert r2 < remaining, (a.status_code, r2, remaining)
        remaining = r2
    # Without a valid key there is no limit to speak of; a redirect is not limited at all.
    assert_no_headers(stk.Client(rl_stack.server).read(alias))
    link = c.create_ok("https://example.com/fields-redirect")["key"]
    r = c.resolve(link)
    assert r.status_code == 301
    assert_no_headers(r)


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/api/v1/nope", 404),
    ("GET", "/api/v1", 404),
    ("GET", "/api/v1/urls/ab", 404),                # too short to be a key
    ("GET", "/api/v1/urls/bad.key", 404),
    ("GET", "/api/v1/urls/bad.key/stats", 404),
    ("GET", "/api/v1/urls/somekey1/nope", 404),
    ("PUT", "/api/v1/urls", 405),
    ("DELETE", "/api/v1/urls", 405),
    ("GET", "/api/v1/urls/bulk", 405),
    ("POST", "/api/v1/urls/somekey1", 405),
    ("POST", "/api/v1/urls/somekey1/stats", 405),
    ("DELETE", "/api/v1/urls/somekey1/live", 405),
])
def test_refusals_of_paths_and_methods_are_authenticated(rl_stack, method, path, status):
    """An API path or method no handler takes is refused after the caller's key was checked,
    like every other answer: with a good key the refusal carries the RateLimit fields (and
    costs nothing), with a bad one it is 401, and without any it is the refusal, bare."""
    key, _ = rl_stack.create_apikey(rate="1000/h")
    c = stk.Client(rl_stack.server, key)
    first = c.read("nosuchkey9")
    remaining, _ = check_headers(first, 1000, 3600, 1000)
    r = c.request(method, path)
    body = assert_problem(r, status)
    if status == 405:
        assert r.headers.get("Allow"), r.headers
    assert check_headers(r, 1000, 3600, 1000)[0] == remaining, "a refusal was counted"
    bad = stk.Client(rl_stack.server, "sk_live_" + "x" * 40).request(method, path)
    assert_problem(bad, 401)
    anon = stk.Client(rl_stack.server).request(method, path, auth=False)
    assert assert_problem(anon, status)["detail"] == body["detail"]
    assert_no_headers(anon)


def test_redirects_are_not_counted(rl_stack):
    key, _ = rl_stack.create_apikey(rate="3/h")
    c = stk.Client(rl_stack.server, key)
    r = c.create("https://example.com/not-counted")
    assert r.status_code == 201
    assert check_headers(r, 3, 3600)[0] == 2
    for _ in range(20):
        red = c.resolve(r.json()["key"])
        assert red.status_code == 301
        assert_no_headers(red)
    assert check_headers(c.read(r.json()["key"]), 3, 3600)[0] == 1
    assert check_headers(c.read(r.json()["key"]), 3, 3600)[0] == 0
    refused = c.read(r.json()["key"])
    check_headers(refused, 3, 3600)
    assert int(refused.headers["Retry-After"]) > 60, refused.headers
    # The other instance shares the same count.
    check_headers(stk.Client(rl_stack.second, key).read(r.json()["key"]), 3, 3600)
    assert stk.Client(rl_stack.second, key).read(r.json()["key"]).status_code == 429


def test_burst_is_separate_from_the_rate(rl_stack):
    res = rl_stack.ctl("apikey", "create", "rl-burst", "--rate", "2/h", "--burst", "5")
    assert res.returncode == 0, res.stderr
    c = stk.Client(rl_stack.server, res.stdout.strip().splitlines()[-1])
    codes = [c.read("nosuchkey2").status_code for _ in range(7)]
    assert codes == [404] * 5 + [429] * 2, codes


def test_revocation_reaches_both_instances_at_once(rl_stack):
    """Both instances have the key cached; the revocation still holds for the very next
    request on each (shortenerctl bumps a counter in Redis that every rate-limit check
    reads)."""
    key, key_id = rl_stack.create_apikey()
    clients = [stk.Client(s, key) for s in (rl_stack.server, rl_stack.second)]
    for c in clients:
        for _ in range(5):  # warm both instances' key caches
            assert c.read("nosuchkey3").status_code == 404
    res = rl_stack.revoke_apikey(key_id)
    assert "warning" not in res.stderr, res.stderr
    for c in clients:
        r = c.read("nosuchkey3")
        assert_problem(r, 401)
        assert_no_headers(r)
        assert_problem(c.create("https://example.com/revoked"), 401)


# ---------------------------------------------------------------------------- per address


def test_failed_authentication_is_limited_per_address(rl_stack):
    """AUTH_FAILURE_RATE=6/h: the seventh bad key from one address gets 429; a good key from
    the same address still works (behind NAT or in one IPv6 /64 many clients share it, and
    only failures are charged); other addresses are unaffected. 127.0.0.1 is a trusted proxy
    of these instances, so X-Forwarded-For names the address."""
    env = {"TRUSTED_PROXIES": "127.0.0.1", "AUTH_FAILURE_RATE": "6/h"}
    one, two = rl_stack.start_shortener(**env), rl_stack.start_shortener(**env)
    good, _ = rl_stack.create_apikey()
    bad = stk.Client(one, "sk_" + "Q" * 32)
    here = {"X-Forwarded-For": "192.0.2.50"}
    for i in range(6):
        c = bad if i % 2 else stk.Client(two, "sk_" + "Z" * 32)
        assert_problem(c.read("nosuchkey4", headers=here), 401)
    r = bad.read("nosuchkey4", headers=here)
    check_headers(r, 6, 3600)
    assert r.status_code == 429
    r = stk.Client(two).read("nosuchkey4", headers=here)  # no key at all
    assert r.status_code == 429, r.text
    r = stk.Client(one, good).read("nosuchkey4", headers=here)
    assert r.status_code == 404, r.text
    # The good key charged nothing: bad ones from there are still refused.
    assert bad.read("nosuchkey4", headers=here).status_code == 429
    # Another address is fine, with a good key and with a bad one.
    there = {"X-Forwarded-For": "192.0.2.51"}
    assert stk.Client(one, good).read("nosuchkey4", headers=there).status_code == 404
    assert_problem(bad.read("nosuchkey4", headers=there), 401)


@pytest.fixture(scope="module")
def anonymous_servers(rl_stack):
    trusting = rl_stack.start_shortener(ALLOW_ANONYMOUS=1, ANONYMOUS_RATE="3/h",
                                        TRUSTED_PROXIES="10.9.0.0/16, 127.0.0.1")
    untrusting = rl_stack.start_shortener(ALLOW_ANONYMOUS=1, ANONYMOUS_RATE="3/h")
    return trusting, untrusting


def test_anonymous_creation_is_limited_per_address(anonymous_servers, rl_stack):
    trusting, untrusting = anonymous_servers
    anon = stk.Client(trusting)

    def create(xff, srv=None):
        return stk.Client(srv or trusting).create("https://example.com/anon",
                                                  headers={"X-Forwarded-For": xff})

    for i in range(3):
        r = create("198.51.100.7")
        assert r.status_code == 201, r.text
        assert check_headers(r, 3, 3600)[0] == 2 - i
    check_headers(create("198.51.100.7"), 3, 3600)
    assert create("198.51.100.7").status_code == 429
    # The client is the first address from the right that is not a trusted proxy.
    assert create("198.51.100.7, 10.9.3.4").status_code == 429
    assert create("203.0.113.1, 198.51.100.7").status_code == 429
    assert create("198.51.100.8, 10.9.3.4").status_code == 201
    # A key still gets its own limit there, not the address's.
    key, _ = rl_stack.create_apikey()
    r = stk.Client(trusting, key).create("https://example.com/keyed",
                                         headers={"X-Forwarded-For": "198.51.100.7"})
    assert r.status_code == 201
    check_headers(r, 1000000, 1)
    # From a peer that is not trusted, X-Forwarded-For is ignored: every "client" is the peer.
    codes = [create(f"198.51.100.{20 + i}", untrusting).status_code for i in range(5)]
    assert codes == [201, 201, 201, 429, 429], codes
    # A header that cannot be parsed, even from a trusted peer, counts as the peer itself.
    assert create("not-an-address", trusting).status_code == 429
    assert anon.create("https://example.com/no-xff").status_code == 429


def test_default_instance_refuses_anonymous(rl_stack):
    assert_problem(stk.Client(rl_stack.server).create("https://example.com/anon-off"), 401)


def test_rate_limits_off(rl_stack):
    srv = rl_stack.start_shortener(RATE_LIMITS=0)
    key, _ = rl_stack.create_apikey(rate="1/h")
    c = stk.Client(srv, key)
    for _ in range(5):
        r = c.read("nosuchkey5")
        assert r.status_code == 404
        assert_no_headers(r)


# ---------------------------------------------------------------------------- admin keys


def test_admin_key_reads_and_deletes_any_link(rl_stack):
    res = rl_stack.ctl("apikey", "create", "rl-admin", "--admin")
    assert res.returncode == 0, res.stderr
    admin = stk.Client(rl_stack.server, res.stdout.strip().splitlines()[-1])
    owner = stk.Client(rl_stack.server, rl_stack.create_apikey()[0])
    other = stk.Client(rl_stack.server, rl_stack.create_apikey()[0])
    key = owner.create_ok("https://example.com/owned")["key"]
    assert_problem(other.read(key), 404)
    assert_problem(other.delete(key), 404)
    r = admin.read(key)
    assert r.status_code == 200 and r.json()["url"] == "https://example.com/owned"
    assert admin.delete(key).status_code == 204
    assert_problem(owner.read(key), 404)
    assert owner.resolve(key).status_code == 404


# ---------------------------------------------------------------------------- shortenerctl


def test_apikey_create_burst_and_admin_are_stored(rl_stack):
    res = rl_stack.ctl("apikey", "create", "rl-flags", "--rate", "10/min", "--burst", "25",
                       "--admin")
    assert res.returncode == 0, res.stderr
    row = rl_stack.psql("SELECT rate_limit, rate_window, burst, is_admin FROM api_keys"
                        " WHERE name = 'rl-flags'")
    assert row == "10|60|25|t", row
    res = rl_stack.ctl("apikey", "create", "rl-defaults", "--rate=7/s")
    assert res.returncode == 0, res.stderr
    row = rl_stack.psql("SELECT burst, is_admin FROM api_keys WHERE name = 'rl-defaults'")
    assert row == "7|f", row
    listing = rl_stack.ctl("apikey", "list")
    key = res.stdout.strip().splitlines()[-1]
    assert key not in listing.stdout
    rows = {r["name"]: r for r in rl_stack.list_apikeys()}  # exactly 6 columns each
    assert rows["rl-flags"]["rate"] == "10/min" and rows["rl-defaults"]["rate"] == "7/s"


@pytest.mark.parametrize("args", [
    ["--burst", "0"], ["--burst", "-3"], ["--burst", "many"], ["--burst", "1000001"],
    ["--burst", "2.5"], ["--burst"], ["--burst="], ["--rate", "1000001/s"], ["--admin=yes"],
    ["--rate", "5/s", "--burst", " 5"],
], ids=["burst-zero", "burst-negative", "burst-word", "burst-too-big", "burst-fraction",
        "burst-missing", "burst-empty", "rate-too-big", "admin-value", "burst-blank"])
def test_apikey_create_rejects_bad_flags(rl_stack, args):
    before = rl_stack.psql("SELECT count(*) FROM api_keys")
    res = rl_stack.ctl("apikey", "create", "rl-bad", *args)
    assert res.returncode == 2, f"{args}: exit {res.returncode}: {res.stdout}{res.stderr}"
    assert res.stderr.strip(), "no message"
    assert rl_stack.psql("SELECT count(*) FROM api_keys") == before


# ---------------------------------------------------------------------------- Redis away


def metric(srv, name):
    text = stk.session().get(srv.url("/metrics"), timeout=stk.HTTP_TIMEOUT).text
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return int(m.group(1))


def test_redis_away_limits_per_instance_then_shared_again(rl_stack):
    """Redis stopped: each instance keeps the limit by itself (so two allow up to twice the
    rate between them), says so in /metrics and its log; Redis back: shared again."""
    key, _ = rl_stack.create_apikey(rate="4/h")
    servers = (rl_stack.server, rl_stack.second)
    clients = [stk.Client(s, key) for s in servers]
    assert clients[0].read("nosuchkey6").status_code == 404  # the key is known, warm
    rl_stack.redis.stop()
    try:
        for srv, c in zip(servers, clients):
            codes = []
            for _ in range(8):
                r = c.read("nosuchkey6")
                codes.append(r.status_code)
                check_headers(r, 4, 3600)
            # Not refused wholesale, not unlimited: the burst of 4, then 429s.
            assert codes == [404] * 4 + [429] * 4, (srv.base_url, codes)
            assert metric(srv, "shortener_ratelimit_fallback") == 1
            assert metric(srv, "shortener_ratelimit_fallback_total") >= 1
            assert metric(srv, "shortener_ratelimited_total") >= 4
            assert "ratelimit: redis unavailable" in srv.proc.log_text()
        # Revoked while Redis is away: servers cannot hear of it, but trust a confirmed key
        # for half a second only.
        key2, key2_id = rl_stack.create_apikey()
        c2 = [stk.Client(s, key2) for s in servers]
        for c in c2:
            assert c.read("nosuchkey7").status_code == 404
        res = rl_stack.revoke_apikey(key2_id)
        assert "warning" in res.stderr, res.stderr
        t0 = time.monotonic()
        for c in c2:
            stk.wait_until("the revoked key to be refused without redis",
                           lambda c=c: c.read("nosuchkey7").status_code == 401, timeout=10,
                           interval=0.02)
        took = time.monotonic() - t0
        assert took < 3, f"revocation took {took:.2f}s without redis"
    finally:
        rl_stack.redis.start()
    # Back to Redis: the count there (one request) is what counts, on both instances.
    for srv, c in zip(servers, clients):
        stk.wait_until("the limiter to use redis again", lambda c=c, srv=srv: (
            c.read("nosuchkey6") is not None
            and metric(srv, "shortener_ratelimit_fallback") == 0), timeout=15, interval=0.3)
        assert "ratelimit: redis answers again" in srv.proc.log_text()
