"""`shortenerctl cleanup`: expired links leave PostgreSQL and Redis in short batches, safely
when two runs overlap or one is killed half-way, while redirects keep answering correctly;
and a key once given to a link is never given again, cleaned up or not.

The links are bulk-loaded with SQL (200,000 expired and 50,000 live per load), not through
HTTP. This module runs its own stack: it stops Redis and PostgreSQL, and counts every expired
row in the database."""

import contextlib
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import stack as stk
from stack import assert_problem, wait_until

EXPIRED = 200_000
LIVE = 50_000

DONE_RE = re.compile(r"^cleanup: deleted (\d+) expired links? in (\d+) batch(?:es)? "
                     r"in \d+\.\d\d s(.*)$")


@pytest.fixture(scope="module")
def cst():
    with stk.running_stack("cleanup") as st:
        yield st


@pytest.fixture(scope="module")
def owner(cst):
    return cst.create_apikey("cleanup-owner")


@pytest.fixture
def client(cst, owner):
    return stk.Client(cst.server, owner[0])


def ctl_env(st):
    return stk.base_env({"DATABASE_URL": st.pg.dsn, "REDIS_URL": st.redis.url,
                         "SHORTENER_ENV_FILE": st.root / "no-such-env-file"})


def ctl_start(st, *args):
    """shortenerctl in the background, for runs that overlap or get killed."""
    return subprocess.Popen([str(stk.BIN_DIR / "shortenerctl"), *map(str, args)], cwd=st.root,
                            env=ctl_env(st), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    for marker in stk.SANITIZER_MARKERS:
        assert marker not in err, err
    return proc.returncode, out, err


def parse_done(stdout):
    """(rows, batches, rest of the line) from the one line a cleanup run prints."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"not one line: {stdout!r}"
    m = DONE_RE.match(lines[0])
    assert m, f"unexpected report: {lines[0]!r}"
    return int(m.group(1)), int(m.group(2)), m.group(3)


def load(st, owner_id, prefix, expired=EXPIRED, live=LIVE):
    """Removes whatever has expired already, then adds `expired` expired links
    (<prefix>e1...) and `live` live ones (<prefix>l1...), keys registered as the server
    would, in one statement."""
    st.psql("DELETE FROM urls WHERE expires_at <= now()")
    st.psql(f"""
        WITH k AS (
            INSERT INTO link_keys (key)
            SELECT '{prefix}e' || g FROM generate_series(1, {expired}) g
            UNION ALL SELECT '{prefix}l' || g FROM generate_series(1, {live}) g
            RETURNING key)
        INSERT INTO urls (key, url, owner_id, created_at, expires_at)
        SELECT key, 'https://example.com/' || key, {owner_id}, now() - interval '2 hours',
               CASE WHEN key LIKE '{prefix}e%'
                    THEN now() - interval '1 hour'
                         + substr(key, {len(prefix) + 2})::int * interval '1 ms'
                    ELSE now() + interval '1 day' END
        FROM k""")
    st.psql("ANALYZE urls")
    assert counts(st, prefix) == (expired, live)


def counts(st, prefix):
    """(expired, live) links of one load still in the table."""
    row = st.psql(f"SELECT count(*) FILTER (WHERE key LIKE '{prefix}e%'),"
                  f" count(*) FILTER (WHERE key LIKE '{prefix}l%') FROM urls")
    e, l = row.split("|")
    return int(e), int(l)


def expired_total(st):
    return int(st.psql("SELECT count(*) FROM urls WHERE expires_at <= now()"))


def sample(prefix, kind, n, total):
    return [f"{prefix}{kind}{g}" for g in range(1, total + 1, max(1, total // n))]


def wait_ctl_sessions_gone(st):
    """A killed run's backend goes away by itself; until then it may hold its batch's locks."""
    wait_until("the killed run's PostgreSQL session to end",
               lambda: st.psql("SELECT count(*) FROM pg_stat_activity"
                               " WHERE application_name = 'shortenerctl'") == "0", 30)


@contextlib.contextmanager
def redirects_checked(st, prefix, skip=()):
    """Redirects of live and expired links of one load, in a loop in the background, for as
    long as the with block lasts: live ones must answer 301 to their URL, expired ones 404,
    whatever cleanup is doing meanwhile."""
    live = sample(prefix, "l", 40, LIVE)
    expired = [k for k in sample(prefix, "e", 40, EXPIRED) + [f"{prefix}e{EXPIRED}"]
               if k not in skip]
    stop = threading.Event()
    bad, rounds = [], [0]

    def loop():
        c = stk.Client(st.server)
        i = 0
        while not stop.is_set():
            try:
                k = live[i % len(live)]
                r = c.resolve(k)
                if r.status_code != 301 or r.headers.get("Location") != f"https://example.com/{k}":
                    bad.append(f"live {k}: {r.status_code} {r.headers.get('Location')}")
                k = expired[i % len(expired)]
                r = c.resolve(k)
                if r.status_code != 404:
                    bad.append(f"expired {k}: {r.status_code} {r.headers.get('Location')}")
            except Exception as e:  # noqa: BLE001 - reported below
                bad.append(f"{k}: {e!r}")
            i += 1
            rounds[0] = i

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
        wait_until("redirects to have run", lambda: rounds[0] >= 3, 30)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not bad, f"{len(bad)} wrong redirects during cleanup, e.g. {bad[:5]}"


# ---------------------------------------------------------------------------- the work


def test_cleanup_removes_exactly_the_expired_in_batches(cst, owner):
    load(cst, owner[1], "ca")
    assert expired_total(cst) == EXPIRED
    # An entry that should never exist (no cache entry outlives its link), so that only the
    # cleanup's eviction can remove it.
    stale = "cae7"
    cst.redis.cli("SET", f"u:{stale}", f"{int(time.time()) + 86400}\nhttps://example.com/{stale}",
                  "EX", 3600)

    res = cst.ctl("cleanup", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"cleanup: {EXPIRED} expired links would be deleted (dry run)"
    assert counts(cst, "ca") == (EXPIRED, LIVE), "the dry run deleted something"
    assert cst.redis.cli("EXISTS", f"u:{stale}") == "1"

    with redirects_checked(cst, "ca", skip=[stale]):
        res = cst.ctl("cleanup", "--batch", 5000)
    assert res.returncode == 0, res.stderr
    rows, batches, rest = parse_done(res.stdout)
    assert rows == EXPIRED, res.stdout
    # Full batches only: the short batch that ends the run deletes nothing and is not counted.
    assert batches == EXPIRED // 5000, res.stdout
    assert rest == "", res.stdout
    assert counts(cst, "ca") == (0, LIVE)
    assert expired_total(cst) == 0
    assert cst.redis.cli("EXISTS", f"u:{stale}") == "0", "the cache entry was not evicted"
    # The registry keeps every key, cleaned up or not.
    assert cst.psql("SELECT count(*) FROM link_keys WHERE key LIKE 'ca%'") == str(EXPIRED + LIVE)

    # Nothing left: a second run deletes nothing and says so.
    res = cst.ctl("cleanup")
    assert res.returncode == 0, res.stderr
    assert parse_done(res.stdout)[:2] == (0, 0)
    res = cst.ctl("cleanup", "--dry-run")
    assert res.stdout.strip() == "cleanup: 0 expired links would be deleted (dry run)"


def test_two_concurrent_runs_share_the_work(cst, owner):
    load(cst, owner[1], "cb")
    with redirects_checked(cst, "cb"):
        runs = [ctl_start(cst, "cleanup", "--batch", 1000) for _ in range(2)]
        results = [finish(p) for p in runs]
    deleted = 0
    for rc, out, err in results:
        assert rc == 0, f"exit {rc}: {out} {err}"
        rows, batches, rest = parse_done(out)
        assert rest == "", out
        assert batches <= rows // 1000 + 1, out
        deleted += rows
    assert deleted == EXPIRED, [r[1] for r in results]
    assert counts(cst, "cb") == (0, LIVE)


def test_time_limit_sigterm_and_sigkill_then_the_next_run_finishes(cst, owner):
    load(cst, owner[1], "cc")

    def expired_left():
        return counts(cst, "cc")[0]

    with redirects_checked(cst, "cc"):
        # A time limit ends the run between batches, having done part of the work.
        res = cst.ctl("cleanup", "--batch", 10, "--max-seconds", 1)
        assert res.returncode == 0, res.stderr
        rows, _, rest = parse_done(res.stdout)
        assert "time limit" in rest, res.stdout
        assert 0 < rows < EXPIRED
        assert counts(cst, "cc") == (EXPIRED - rows, LIVE)

        # SIGTERM: the batch in flight finishes, the report is printed, exit 0.
        before = expired_left()
        proc = ctl_start(cst, "cleanup", "--batch", 20)
        wait_until("cleanup to make progress", lambda: expired_left() <= before - 100, 60)
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        rc, out, err = finish(proc)
        assert rc == 0, f"exit {rc} after SIGTERM: {out} {err}"
        rows, _, rest = parse_done(out)
        assert "stopped by a signal" in rest, out
        assert expired_left() == before - rows, "the report does not match what was deleted"
        assert expired_left() > 0

        # SIGKILL half-way: whole batches only, live links untouched.
        before = expired_left()
        proc = ctl_start(cst, "cleanup", "--batch", 20)
        wait_until("cleanup to make progress", lambda: expired_left() <= before - 100, 60)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.kill()
        rc, _, _ = finish(proc)
        assert rc == -signal.SIGKILL
        wait_ctl_sessions_gone(cst)
        left = expired_left()
        assert 0 < left < before
        assert counts(cst, "cc")[1] == LIVE

        # The next run finishes the work.
        res = cst.ctl("cleanup")
        assert res.returncode == 0, res.stderr
        assert parse_done(res.stdout)[0] == left, res.stdout
    assert counts(cst, "cc") == (0, LIVE)
    assert cst.psql("SELECT count(*) FROM pg_locks WHERE NOT granted") == "0"


# ---------------------------------------------------------------------------- keys are not reused


def expire_now(st, key):
    st.psql(f"UPDATE urls SET expires_at = now() - interval '1 second' WHERE key = '{key}'")


def test_alias_of_an_expired_link_is_refused_before_and_after_cleanup(cst, client):
    alias = f"cx{os.urandom(4).hex()}"
    client.create_ok("https://example.com/expired-alias", alias=alias)
    expire_now(cst, alias)
    assert_problem(client.resolve(alias), 404)
    assert_problem(client.create("https://example.com/someone-else", alias=alias), 409)

    res = cst.ctl("cleanup")
    assert res.returncode == 0, res.stderr
    assert parse_done(res.stdout)[0] >= 1
    assert cst.psql(f"SELECT count(*) FROM urls WHERE key = '{alias}'") == "0"
    assert_problem(client.create("https://example.com/someone-else", alias=alias), 409)
    assert_problem(client.resolve(alias), 404)


def test_alias_of_a_deleted_link_is_refused(cst, client):
    alias = f"cy{os.urandom(4).hex()}"
    client.create_ok("https://example.com/deleted-alias", alias=alias)
    assert client.delete(alias).status_code == 204
    assert_problem(client.create("https://example.com/someone-else", alias=alias), 409)
    assert cst.ctl("cleanup").returncode == 0
    assert_problem(client.create("https://example.com/someone-else", alias=alias), 409)
    assert_problem(client.resolve(alias), 404)
    # Fresh aliases and generated keys still work.
    client.create_ok("https://example.com/fresh", alias=f"cz{os.urandom(4).hex()}")
    client.create_ok("https://example.com/generated")


def test_migration_registers_existing_keys(cst, owner):
    """The registry starts with every key urls holds when the migration runs."""
    key = f"cm{os.urandom(4).hex()}"
    cst.psql("DROP TABLE link_keys; DELETE FROM schema_migrations WHERE version = 3")
    cst.psql(f"INSERT INTO urls (key, url, owner_id) VALUES ('{key}', 'https://example.com/m',"
             f" {owner[1]})")
    res = cst.ctl("migrate")
    assert res.returncode == 0, res.stderr
    assert cst.psql(f"SELECT count(*) FROM link_keys WHERE key = '{key}'") == "1"
    assert cst.psql("SELECT count(*) FROM urls u WHERE NOT EXISTS"
                    " (SELECT 1 FROM link_keys k WHERE k.key = u.key)") == "0"
    assert_problem(stk.Client(cst.server, owner[0]).create("https://example.com/x", alias=key),
                   409)


# ---------------------------------------------------------------------------- dependencies down


def test_redis_down_still_deletes(cst, owner):
    load(cst, owner[1], "cr", expired=3000, live=10)
    cst.redis.stop()
    try:
        res = cst.ctl("cleanup", "--batch", 1000)
    finally:
        cst.redis.start()
    assert res.returncode == 0, res.stderr
    assert parse_done(res.stdout)[:2] == (3000, 3), res.stdout
    assert "redis" in res.stderr.lower(), res.stderr
    assert counts(cst, "cr") == (0, 10)


@pytest.mark.parametrize("args", [["cleanup"], ["cleanup", "--dry-run"]],
                         ids=["cleanup", "dry-run"])
def test_postgres_down_fails_clearly(cst, args):
    cst.pg.stop()
    try:
        res = cst.ctl(*args)
    finally:
        cst.pg.start()
    assert res.returncode == 1, f"exit {res.returncode}: {res.stdout} {res.stderr}"
    assert "cannot connect to PostgreSQL" in res.stderr, res.stderr
    assert res.stdout == ""


# ---------------------------------------------------------------------------- command line


@pytest.mark.parametrize("args", [
    ["--batch", "0"],
    ["--batch", "100001"],
    ["--batch", "-1"],
    ["--batch", "many"],
    ["--batch"],
    ["--batch="],
    ["--max-seconds", "-1"],
    ["--max-seconds", "1.5"],
    ["--max-seconds", "86401"],
    ["--max-seconds"],
    ["--pause-ms", "-1"],
    ["--pause-ms", "10001"],
    ["--pause-ms", "soon"],
    ["--dry-run=yes"],
    ["--bogus"],
    ["now"],
], ids=["batch-zero", "batch-too-big", "batch-negative", "batch-word", "batch-missing",
        "batch-empty", "seconds-negative", "seconds-fraction", "seconds-too-big",
        "seconds-missing", "pause-negative", "pause-too-big", "pause-word", "dry-run-value", "unknown-flag", "extra-argument"])
def test_bad_arguments_exit_2_and_delete_nothing(cst, owner, args):
    cst.psql("DELETE FROM urls WHERE expires_at <= now()")
    load(cst, owner[1], f"cf{os.urandom(3).hex()}", expired=5, live=0)
    res = cst.ctl("cleanup", *args)
    assert res.returncode == 2, f"{args}: exit {res.returncode}: {res.stdout} {res.stderr}"
    assert "cleanup" in res.stderr and res.stderr.strip(), res.stderr
    assert res.stdout == ""
    assert expired_total(cst) == 5


def test_help_mentions_cleanup(cst):
    res = cst.ctl("--help")
    assert res.returncode == 0
    for word in ("cleanup", "--batch", "--max-seconds", "--pause-ms", "--dry-run"):
        assert word in res.stdout, res.stdout
