"""Generated keys: their shape, their uniqueness, and that a custom alias spelt like a
generated key (7 base62 characters) never breaks later creates, even when kgs hands out that
very key afterwards."""

import random
import re

import stack as stk

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_generated_keys_are_distinct_and_issued_by_kgs(client, stack):
    keys = [client.create_ok(f"https://example.com/gen/{i}")["key"] for i in range(300)]
    assert all(stk.KEY_RE.match(k) for k in keys), [k for k in keys if not stk.KEY_RE.match(k)]
    assert len(set(keys)) == len(keys)
    listed = ",".join(f"'{k}'" for k in keys)
    n = stack.psql(f"SELECT count(*) FROM kgs_keys WHERE key IN ({listed}) "
                   "AND claimed_at IS NOT NULL")
    assert int(n) == len(keys), "some generated keys are not claimed kgs keys"


def test_seven_char_aliases_never_break_later_creates(client, stack):
    # A plain 7-character alias works like any other.
    alias = "".join(random.choice(B62) for _ in range(7))
    client.create_ok("https://example.com/seven", alias=alias)
    assert client.resolve(alias).headers["Location"] == "https://example.com/seven"

    # Squat some of the keys that are claimed but not yet used: they sit in kgs's or a
    # shortener's buffer and will be handed out next. About 5% of them, so that a create
    # meets a squatted key now and then but never many in a row.
    client.create_ok("https://example.com/prime-the-buffer")
    pending = stack.psql(
        "SELECT k.key FROM kgs_keys k WHERE k.claimed_at IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM urls u WHERE u.key = k.key) "
        # Keys of links deleted earlier in the session are claimed and unused too, but the
        # key registry refuses them as aliases for good (409), as it should.
        "AND NOT EXISTS (SELECT 1 FROM link_keys l WHERE l.key = k.key)").split()
    assert pending, "no claimed-but-unused keys: is a key buffer in use at all?"
    squats = random.sample(pending, max(1, min(len(pending) // 20, 600)))
    session = stk.Client(client.base, client.api_key)
    for k in squats:
        r = session.create(f"https://example.com/squat/{k}", alias=k)
        assert r.status_code == 201, f"alias {k}: {r.status_code} {r.text}"

    created = []
    for i in range(600):
        r = session.create(f"https://example.com/after-squat/{i}")
        assert r.status_code == 201, f"create #{i} after squatting: {r.status_code} {r.text}"
        created.append(r.json()["key"])
    assert len(set(created)) == len(created)
    assert not set(created) & set(squats), "a squatted alias was handed out again"
    # The aliases still point where their owner said.
    rows = dict(line.split("|", 1) for line in stack.psql(
        "SELECT key, url FROM urls WHERE key IN ("
        + ",".join(f"'{k}'" for k in squats) + ")").splitlines())
    assert rows == {k: f"https://example.com/squat/{k}" for k in squats}
    for k in random.sample(squats, min(20, len(squats))):
        r = session.resolve(k)
        assert r.status_code == 301 and r.headers["Location"] == f"https://example.com/squat/{k}"
    for i, k in enumerate(created[:50]):
        r = session.resolve(k)
        assert r.status_code == 301 and r.headers["Location"] == \
            f"https://example.com/after-squat/{i}"
    assert all(re.match(r"^[0-9A-Za-z]{7}$", k) for k in created)
