"""Passwords in REDIS_URL and DATABASE_URL never reach a log line, an error message or an
answer, whether the setting is malformed, the password wrong, or the service unreachable. The
right password works, for the request connections and the pub/sub listener alike."""

import subprocess
import tempfile
import time

import pytest

import stack as stk

REDIS_PASSWORD = "redis-Pw-6f3a9c"
WRONG_REDIS_PASSWORD = "wrong-Pw-0d41e8"
PG_PASSWORD = "pg-Pw-51b7e2"


def assert_hidden(text, *secrets):
    for s in secrets:
        assert s not in text, f"{s!r} shows in:\n{text}"


@pytest.fixture(scope="module")
def protected_redis(stack):
    """A Redis on TCP that wants REDIS_PASSWORD; yields its port."""
    lease = stk.PortLease()
    proc = stk.Proc("redis-auth", [
        "redis-server", "--port", str(lease.port), "--bind", "127.0.0.1",
        "--requirepass", REDIS_PASSWORD, "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--dir", str(stack.root)],
        stk.base_env(), stack.root, stack.root / "redis-auth.log", checked=False)
    proc.start()
    try:
        def up():
            res = subprocess.run(["redis-cli", "-p", str(lease.port), "--no-auth-warning",
                                  "-a", REDIS_PASSWORD, "PING"],
                                 capture_output=True, text=True, timeout=5)
            return res.stdout.strip() == "PONG"
        stk.wait_until("the password-protected redis to answer", up, stk.START_TIMEOUT,
                       fail_fast=False)
        yield lease.port
    finally:
        proc.stop()
        lease.release()


@pytest.mark.parametrize("program,args", [("shortener", []), ("shortenerctl", ["cleanup"])])
def test_malformed_redis_url_is_refused_with_its_password_masked(stack, program, args):
    url = f"redis://:{REDIS_PASSWORD}@cache:99999"
    env = {"DATABASE_URL": stack.pg.dsn, "REDIS_URL": url,
           "SHORTENER_ENV_FILE": stack.root / "no-such-env-file"}
    with tempfile.TemporaryDirectory() as cwd:
        res = subprocess.run([str(stk.BIN_DIR / program), *args], cwd=cwd,
                             env=stk.base_env(env), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, f"{program} exited {res.returncode}: {res.stderr}"
    assert "REDIS_URL" in res.stderr and "redis://:***@cache:99999" in res.stderr, res.stderr
    assert_hidden(res.stdout + res.stderr, REDIS_PASSWORD)


def test_ctl_hides_database_and_redis_passwords(stack, protected_redis):
    # libpq quotes the part of a URI it cannot decode: here, the password.
    bad_dsn = f"postgresql://shortener:{PG_PASSWORD}%zz@/shortener?host={stack.pg.sockdir}"
    res = stack.ctl("apikey", "list", env={"DATABASE_URL": bad_dsn})
    assert res.returncode == 1, res.stderr
    assert "percent-encoded" in res.stderr, res.stderr
    assert_hidden(res.stdout + res.stderr, PG_PASSWORD)

    # A revocation still works when Redis refuses the password; the warning names no password.
    _, key_id = stack.create_apikey("secrets-revoke")
    url = f"redis://:{WRONG_REDIS_PASSWORD}@127.0.0.1:{protected_redis}"
    res = stack.ctl("apikey", "revoke", key_id, env={"REDIS_URL": url})
    assert res.returncode == 0, res.stderr
    assert "could not tell the servers" in res.stderr, res.stderr
    assert_hidden(res.stdout + res.stderr, WRONG_REDIS_PASSWORD)


def test_kgs_hides_the_database_password(stack):
    bad_dsn = f"postgresql://shortener:{PG_PASSWORD}%zz@/shortener?host={stack.pg.sockdir}"
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([str(stk.BIN_DIR / "kgs")], cwd=d,
                                env=stk.base_env({"DATABASE_URL": bad_dsn,
                                                  "KGS_SOCKET": f"{d}/kgs.sock",
                                                  "LOG_LEVEL": "debug"}),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(1.5)
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
    assert "percent-encoded" in out, out
    assert_hidden(out, PG_PASSWORD)


def test_server_hides_passwords_it_cannot_use(stack, protected_redis):
    bad_dsn = f"postgresql://shortener:{PG_PASSWORD}%zz@/shortener?host={stack.pg.sockdir}"
    redis_url = f"redis://:{WRONG_REDIS_PASSWORD}@127.0.0.1:{protected_redis}/1"
    sh = stack.start_shortener(wait_ready=False, DATABASE_URL=bad_dsn, REDIS_URL=redis_url)
    try:
        c = stk.Client(sh)
        r = c.request("GET", "/readyz", auth=False)
        body = stk.assert_problem(r, 503)
        assert "postgres" in body["detail"] and "redis" in body["detail"], body
        # The drivers' words go to the log (checked below), not to whoever asks /readyz.
        assert "WRONGPASS" not in body["detail"], body
        assert_hidden(r.text, PG_PASSWORD, WRONG_REDIS_PASSWORD)
        # A redirect and a create go through the same connections.
        r = c.resolve("NoSuchKey")
        assert_hidden(r.text, PG_PASSWORD, WRONG_REDIS_PASSWORD)
        r = c.create("https://example.com/secrets", headers={"Authorization": "Bearer sk_nope"})
        assert_hidden(r.text, PG_PASSWORD, WRONG_REDIS_PASSWORD)

        def logged():
            text = sh.proc.log_text()
            return all(m in text for m in ("postgres: cannot connect", "redis: unavailable",
                                           "cannot subscribe to deletions"))
        stk.wait_until("the failures to be logged", logged, 10)
    finally:
        sh.stop()
    text = sh.proc.log_text()
    assert "percent-encoded" in text and "WRONGPASS" in text, text
    assert_hidden(text, PG_PASSWORD, WRONG_REDIS_PASSWORD)


def test_server_uses_the_right_password(stack, protected_redis, api_key):
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{protected_redis}/2"
    sh = stack.start_shortener(REDIS_URL=redis_url)
    try:
        c = stk.Client(sh, api_key)
        link = c.create_ok("https://example.com/secrets-right-password")
        for _ in range(2):  # a fill, then a hit
            r = c.resolve(link["key"])
            assert r.status_code == 301, r.text
            assert r.headers["Location"] == "https://example.com/secrets-right-password"
        res = subprocess.run(["redis-cli", "-p", str(protected_redis), "--no-auth-warning",
                              "-a", REDIS_PASSWORD, "-n", "2", "EXISTS", f"u:{link['key']}"],
                             capture_output=True, text=True, timeout=10)
        assert res.stdout.strip() == "1", res.stdout + res.stderr

        # The pub/sub listener authenticates too: the hot cache is on only while subscribed.
        def hot_cache_on():
            m = c.request("GET", "/metrics", auth=False).text
            return "shortener_hot_cache_enabled 1" in m
        stk.wait_until("the hot cache to be enabled", hot_cache_on, 10)
    finally:
        sh.stop()
    assert_hidden(sh.proc.log_text(), REDIS_PASSWORD)
