"""The programs' command lines: --help everywhere, API-key administration."""

import subprocess
import tempfile

import pytest

import stack as stk

SETTINGS = {
    "shortener": ["DATABASE_URL", "REDIS_URL", "KGS_SOCKET", "PORT", "BASE_URL", "DEFAULT_TTL"],
    # Every program's --help names the settings the whole product shares.
    "kgs": ["DATABASE_URL", "REDIS_URL", "KGS_SOCKET", "PORT", "BASE_URL", "DEFAULT_TTL"],
    "shortenerctl": ["DATABASE_URL", "REDIS_URL", "KGS_SOCKET", "PORT", "BASE_URL",
                     "DEFAULT_TTL"],
}


@pytest.mark.parametrize("program", sorted(SETTINGS))
def test_help_exits_0_and_lists_settings(program):
    with tempfile.TemporaryDirectory() as cwd:
        res = subprocess.run([str(stk.BIN_DIR / program), "--help"], cwd=cwd,
                             env=stk.base_env(), stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=30)
    assert res.returncode == 0, f"{program} --help exited {res.returncode}: {res.stderr}"
    text = res.stdout + res.stderr
    assert text.strip(), f"{program} --help printed nothing"
    for var in SETTINGS[program]:
        assert var in text, f"{program} --help does not mention {var}"
    for marker in stk.SANITIZER_MARKERS:
        assert marker not in res.stderr, res.stderr


def test_apikey_create_list_revoke(stack, server):
    name = "cli-listed"
    res = stack.ctl("apikey", "create", name, "--rate", "50/min")
    assert res.returncode == 0, res.stderr
    key = res.stdout.strip().splitlines()[-1]
    assert key.startswith("sk_") and len(key) > 10, res.stdout

    default_name = "cli-default-rate"
    res2 = stack.ctl("apikey", "create", default_name)
    assert res2.returncode == 0, res2.stderr
    key2 = res2.stdout.strip().splitlines()[-1]

    listing = stack.ctl("apikey", "list")
    assert listing.returncode == 0, listing.stderr
    assert key not in listing.stdout and key[3:] not in listing.stdout, "list shows a key"
    assert key2 not in listing.stdout
    rows = {r["name"]: r for r in stack.list_apikeys()}
    row = rows[name]
    assert row["id"].isdigit()
    assert row["rate"] == "50/min", row
    assert rows[default_name]["rate"] == "100/s", rows[default_name]
    assert row["created"].strip() and row["created"] != "-", row
    revoked_before = row["revoked"]

    # The key works until it is revoked, and not a moment after.
    c = stk.Client(server, key)
    assert c.create("https://example.com/cli-before-revoke").status_code == 201
    stack.revoke_apikey(row["id"])
    after = {r["name"]: r for r in stack.list_apikeys()}[name]
    assert after["revoked"] != revoked_before and after["revoked"].strip(), after
    stk.assert_problem(c.create("https://example.com/cli-after-revoke"), 401)
    # The other key is untouched.
    assert stk.Client(server, key2).create("https://example.com/cli-other").status_code == 201


@pytest.mark.parametrize("args", [
    ["apikey", "create", "bad-rate", "--rate", "fast"],
    ["apikey", "create", "bad-rate2", "--rate", "0/s"],
    ["apikey", "create"],
    ["apikey", "revoke", "not-a-number"],
    ["no-such-command"],
], ids=["rate-word", "rate-zero", "no-name", "revoke-nan", "unknown-command"])
def test_ctl_rejects_bad_arguments(stack, args):
    before = stack.psql("SELECT count(*) FROM api_keys")
    res = stack.ctl(*args)
    assert res.returncode != 0, f"{args} succeeded: {res.stdout}"
    assert stack.psql("SELECT count(*) FROM api_keys") == before


def test_revoke_unknown_id_fails(stack):
    res = stack.ctl("apikey", "revoke", "987654321")
    assert res.returncode != 0, res.stdout


@pytest.mark.parametrize("program,env,args", [
    ("shortener", {"BASE_URL": "ftp://sho.rt"}, []),
    ("shortener", {"BASE_URL": "not a url"}, []),
    ("shortener", {"PORT": "eighty"}, []),
    ("shortener", {"PORT": "70000"}, []),
    ("shortener", {"DEFAULT_TTL": "-5"}, []),
    ("shortener", {"LOG_LEVEL": "loud"}, []),
    ("shortener", {"REDIS_URL": "http://cache:6379"}, []),
    ("shortener", {"REDIS_URL": "redis://cache:99999"}, []),
    ("shortener", {"ANONYMOUS_RATE": "fast"}, []),
    ("shortener", {"ANONYMOUS_RATE": "0/min"}, []),
    ("shortener", {"AUTH_FAILURE_RATE": "10/day"}, []),
    ("shortener", {"TRUSTED_PROXIES": "300.1.1.1"}, []),
    ("shortener", {"TRUSTED_PROXIES": "10.0.0.0/33"}, []),
    ("shortener", {"TRUSTED_PROXIES": "::1/129"}, []),
    ("shortener", {"TRUSTED_PROXIES": "10.0.0.1,,10.0.0.2"}, []),
    ("shortener", {"TRUSTED_PROXIES": "proxy.local"}, []),
    ("shortener", {"RATE_LIMITS": "maybe"}, []),
    ("shortener", {}, ["--no-such-flag"]),
    ("shortener", {}, ["--port"]),
    ("shortener", {"HOT_CACHE_ENTRIES": "-1"}, []),
    ("shortener", {"HOT_CACHE_ENTRIES": "lots"}, []),
    ("shortener", {"HOT_CACHE_MAX_AGE": "0"}, []),
    ("kgs", {"KGS_MEMORY_KEYS": "ten"}, []),
    ("kgs", {"KGS_MEMORY_KEYS": "9999"}, []),
    ("kgs", {}, ["--no-such-flag"]),
    ("shortenerctl", {}, ["--no-such-flag", "migrate"]),
], ids=["base-url-ftp", "base-url-junk", "port-word", "port-range", "ttl-negative",
        "log-level", "redis-url-scheme", "redis-url-port", "anonymous-rate-word",
        "anonymous-rate-zero", "auth-failure-rate-unit", "trusted-proxy-bad-ip",
        "trusted-proxy-v4-prefix", "trusted-proxy-v6-prefix", "trusted-proxy-empty-item",
        "trusted-proxy-name", "rate-limits-word", "shortener-flag", "flag-without-value",
        "hot-cache-negative", "hot-cache-word", "hot-cache-age-zero", "kgs-memory-word",
        "kgs-memory-below-take", "kgs-flag", "ctl-flag"])
def test_bad_configuration_exits_2_with_a_message(program, env, args):
    """A typo in the configuration stops the program at once with a clear message; it never
    starts half-configured."""
    with tempfile.TemporaryDirectory() as cwd:
        res = subprocess.run([str(stk.BIN_DIR / program), *args], cwd=cwd,
                             env={**stk.base_env(), **env}, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, f"{program} {env} {args} exited {res.returncode}: {res.stderr}"
    assert res.stderr.strip(), "no message on stderr"
    for marker in stk.SANITIZER_MARKERS:
        assert marker not in res.stderr, res.stderr


def test_group_help_exits_0(stack):
    res = stack.ctl("apikey", "--help")
    assert res.returncode == 0, res.stderr
    assert "apikey create" in res.stdout + res.stderr


def test_migrate_again_is_quiet(stack):
    """A second migrate changes nothing and says nothing that reads like an error (it used to
    pass on PostgreSQL's NOTICE that schema_migrations exists)."""
    before = stack.psql("SELECT count(*) FROM schema_migrations")
    for _ in range(2):
        res = stack.ctl("migrate")
        assert res.returncode == 0, res.stderr
        assert "NOTICE" not in res.stderr, res.stderr
    assert stack.psql("SELECT count(*) FROM schema_migrations") == before
