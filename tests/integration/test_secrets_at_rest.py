"""Secrets at rest: the local stack's files are its owner's alone and its PostgreSQL never
trusts a connection; shortenerctl never reads ./var/env of the directory it is run from; the
server warns when it runs in production without an API-key pepper."""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import stack as stk


@pytest.fixture(scope="module")
def st():
    with stk.running_stack("secrets-at-rest") as s:
        yield s


def test_the_test_clusters_postgres_trusts_nobody(st):
    assert st.psql("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'") == "0"
    # Peer, through the stack's map, for every database and for replication (replica tests).
    assert st.psql("SELECT string_agg(array_to_string(database, ',') || ' ' || auth_method || ' '"
                   " || array_to_string(options, ','), '; ' ORDER BY line_number)"
                   " FROM pg_hba_file_rules WHERE type = 'local'") == \
        "all peer map=stack; replication peer map=stack"
    # A role that exists but is not mapped for this user is refused.
    st.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'unmapped') "
            "THEN CREATE ROLE unmapped LOGIN; END IF; END $$")
    res = subprocess.run(["psql", st.pg.dsn_for("unmapped"), "-AtXqc", "SELECT 1"],
                         env=stk.base_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "authentication failed" in res.stderr, res.stderr


def run_ctl(binary, cwd, env=None):
    return subprocess.run([str(binary), "apikey", "list"], cwd=cwd, env=stk.base_env(env or {}),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_ctl_reads_the_env_file_beside_its_binary_not_the_current_directorys(st):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "bin").mkdir()
        (d / "var").mkdir()
        (d / "cwd" / "var").mkdir(parents=True)
        ctl = d / "bin" / "shortenerctl"
        shutil.copy(stk.BIN_DIR / "shortenerctl", ctl)
        # Whoever owns the current directory must not pick the database.
        (d / "cwd" / "var" / "env").write_text("DATABASE_URL=host=/cwd-env-was-read dbname=x\n")
        res = run_ctl(ctl, d / "cwd")
        assert res.returncode != 0
        assert "cwd-env-was-read" not in res.stderr, res.stderr

        # <bindir>/../var/env is read, from any directory.
        (d / "var" / "env").write_text(f"DATABASE_URL={st.pg.dsn}\n")
        res = run_ctl(ctl, d / "cwd")
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("id\tname\t"), res.stdout

        # SHORTENER_ENV_FILE wins over the file beside the binary.
        (d / "named.env").write_text("DATABASE_URL=host=/named-env-was-read dbname=x\n")
        res = run_ctl(ctl, d / "cwd", {"SHORTENER_ENV_FILE": d / "named.env"})
        assert res.returncode != 0 and "named-env-was-read" in res.stderr, res.stderr


def start_server(st, **env):
    sh = st.start_shortener(**env)
    text = sh.proc.log_text()
    sh.stop()
    return text


def test_production_without_a_pepper_warns(st):
    log = start_server(st, SHORTENER_ENV="production")
    assert "APIKEY_PEPPER is empty" in log, log
    for env in ({"SHORTENER_ENV": "production", "APIKEY_PEPPER": "p" * 32},
                {"SHORTENER_ENV": "development"}, {}):
        log = start_server(st, **env)
        assert "APIKEY_PEPPER" not in log, (env, log)


def test_an_unknown_environment_is_refused(st):
    res = subprocess.run([str(stk.BIN_DIR / "shortener")], env=stk.base_env(
        {"SHORTENER_ENV": "prod", "DATABASE_URL": st.pg.server_dsn}), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    assert "SHORTENER_ENV must be production or development" in res.stderr, res.stderr


def modes(root):
    """Every path under root (not inside PostgreSQL's own data directory) with its mode."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath).name == "pg":
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[p.relative_to(root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def test_the_local_stack_keeps_its_secrets_to_its_owner():
    lease = stk.PortLease()
    var = Path(tempfile.mkdtemp(prefix="devstack-", dir="/tmp"))
    os.chmod(var, 0o755)
    env = stk.base_env({"VAR_DIR": var, "PORT": lease.port, "SHORTENER_BIN_DIR": stk.BIN_DIR})
    devstack = [str(stk.REPO / "deploy" / "devstack.sh")]
    try:
        res = subprocess.run(devstack + ["up"], env=env, capture_output=True, text=True,
                             timeout=180, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stdout + res.stderr
        found = modes(var)
        for path in ("env", "dev-api-key", "run/redis.sock", "run/kgs.pid",
                     "run/shortener.pid", "log/kgs.log", "log/shortener.log", "log/postgres.log"):
            assert Path(path) in found, (path, sorted(found))
        for path, mode in found.items():
            if path.name.startswith(".s.PGSQL"):
                continue  # PostgreSQL's socket: authenticated by peer
            if path.name == "kgs.sock":
                assert mode & 0o007 == 0, (path, oct(mode))  # owner and group (sock.c)
            elif path in (Path("run"), Path("log")):
                assert mode & 0o066 == 0, (path, oct(mode))  # postgres passes through
            else:
                assert mode & 0o077 == 0, (path, oct(mode))
        hba = subprocess.run(["runuser", "-u", "postgres", "--", "cat", str(var / "pg" /
                                                                          "pg_hba.conf")]
                             if stk.IS_ROOT else ["cat", str(var / "pg" / "pg_hba.conf")],
                             capture_output=True, text=True, timeout=30).stdout
        assert "trust" not in hba and "peer" in hba, hba
        users = subprocess.run(
            ["psql", f"host={var}/run dbname=shortener user=shortener", "-AtXqc",
             "SELECT string_agg(DISTINCT usename, ',' ORDER BY usename) FROM pg_stat_activity"
             " WHERE datname = 'shortener' AND usename <> 'shortener'"],
            env=stk.base_env(), capture_output=True, text=True, timeout=30)
        assert users.stdout.strip() == "kgs,web", users.stdout + users.stderr
        # var/env reads the same to a shell that sources it as to shortenerctl.
        dsn = f"host={var}/run dbname=shortener user=shortener"
        sourced = subprocess.run(["sh", "-c", f'set -a; . "{var}/env"; printf %s "$DATABASE_URL"'],
                                 env=stk.base_env(), capture_output=True, text=True, timeout=30)
        assert sourced.stdout == dsn, sourced.stdout + sourced.stderr
        ctl = subprocess.run([str(stk.BIN_DIR / "shortenerctl"), "migrate"],
                             env=stk.base_env({"SHORTENER_ENV_FILE": var / "env"}),
                             capture_output=True, text=True, timeout=60)
        assert ctl.returncode == 0 and "up to date" in ctl.stdout + ctl.stderr, \
            ctl.stdout + ctl.stderr
    finally:
        subprocess.run(devstack + ["down"], env=env, capture_output=True, timeout=120)
        lease.release()
        shutil.rmtree(var, ignore_errors=True)
