"""Generated keys: their shape, their uniqueness, and that a custom alias spelt like a
generated key (7 base62 characters) never breaks later creates, even when kgs hands out that
very key afterwards."""

import random
import re

import keyperm
import stack as stk

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_generated_keys_are_distinct_and_issued_by_kgs(client, stack):
    keys = [client.create_ok(f"https://example.com/gen/{i}")["key"] for i in range(300)]
    assert all(stk.KEY_RE.match(k) for k in keys), [k for k in keys if not stk.KEY_RE.match(k)]
    assert len(set(keys)) == len(keys)
    assert stack.issued_by_kgs(keys) == [], "some keys were not made from claimed indices"


def test_python_permutation_matches_c_known_answers():
    # The same known answers as tests/unit/test_keyperm.c: keyperm.py is the C code's twin.
    rounds = keyperm.round_keys(bytes(range(32)))
    assert keyperm.keyperm_key(rounds, 0) == "o7BC771"
    assert keyperm.keyperm_key(rounds, 1) == "PYPTmvc"
    assert keyperm.keyperm_key(rounds, keyperm.DOMAIN - 1) == "VW4loTx"
    assert keyperm.index_of(rounds, "PYPTmvc") == 1


def test_kgs_state_survives_restart_and_never_moves_back(stack, client):
    rounds, before = stack.kgs_state()
    stack.kgs.kill9()
    stack.kgs.start()
    client.create_ok("https://example.com/after-kgs-restart")
    rounds_after, after = stack.kgs_state()
    assert rounds_after == rounds, "the permutation secret changed"
    assert after >= before


def test_seven_char_aliases_never_break_later_creates(client, stack):
    # A plain 7-character alias works like any other.
    alias = "".join(random.choice(B62) for _ in range(7))
    client.create_ok("https://example.com/seven", alias=alias)
    assert client.resolve(alias).headers["Location"] == "https://example.com/seven"

    # Squat some of the keys that are claimed but not yet used: they sit in kgs's or a
    # shortener's buffer and will be handed out next. About 5% of them, so that a create
    # meets a squatted key now and then but never many in a row.
    client.create_ok("https://example.com/prime-the-buffer")
    rounds, claimed = stack.kgs_state()
    used = set(stack.psql("SELECT key FROM link_keys").split())  # deleted links too
    sample = random.sample(range(claimed), min(claimed, 12000))
    pending = [k for k in (keyperm.keyperm_key(rounds, i) for i in sample) if k not in used]
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
