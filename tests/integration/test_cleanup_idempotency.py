"""`shortenerctl cleanup` also removes Idempotency-Key records past their 24 hours (API.md:
a retry is recognised within 24 hours), and only those; a record removed lets the key make a
new link."""

import pytest

import stack as stk


def created_key(client, idem, url):
    r = client.create(url, headers={"Idempotency-Key": idem})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def records(stack, idem):
    return int(stack.psql(f"SELECT count(*) FROM idempotency_keys WHERE idem_key = '{idem}'"))


def test_old_records_go_new_ones_stay(stack, client):
    old = created_key(client, "cleanup-old-1", "https://example.com/idem-old")
    new = created_key(client, "cleanup-new-1", "https://example.com/idem-new")
    stack.psql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"
               " WHERE idem_key = 'cleanup-old-1'")
    res = stack.ctl("cleanup")
    assert res.returncode == 0, res.stderr
    assert "idempotency record" in res.stdout, res.stdout
    assert records(stack, "cleanup-old-1") == 0
    assert records(stack, "cleanup-new-1") == 1
    # The fresh one still answers a retry with its first link ...
    assert created_key(client, "cleanup-new-1", "https://example.com/idem-new") == new
    # ... and the forgotten one makes a new link: a day later it is a new request.
    again = created_key(client, "cleanup-old-1", "https://example.com/idem-old")
    assert again != old
    assert records(stack, "cleanup-old-1") == 1


def test_nothing_old_says_nothing(stack):
    stack.psql("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
    res = stack.ctl("cleanup")
    assert res.returncode == 0, res.stderr
    assert "idempotency" not in res.stdout
