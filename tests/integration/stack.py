"""The real stack for the integration tests: a private PostgreSQL cluster, Redis, kgs and any
number of shortener instances, all in one temporary directory, on Unix sockets and free ports.

Nothing here builds anything: the programs come from SHORTENER_BIN_DIR (default <repo>/bin).
Every process writes its output to a log file in the stack's directory; log_tails() shows the
ends of them when a test fails, and problems() says which kgs or shortener process crashed,
died by a signal nobody sent it, or reported an AddressSanitizer / UBSan error.
"""

import atexit
import contextlib
import datetime
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("SHORTENER_BIN_DIR") or REPO / "bin").resolve()
def _pg_bin():
    if os.environ.get("SHORTENER_PG_BIN"):
        return Path(os.environ["SHORTENER_PG_BIN"])
    if Path("/usr/lib/postgresql/15/bin/initdb").exists():
        return Path("/usr/lib/postgresql/15/bin")
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
# Roles a test may create and log in as besides the stack's own (peer authentication maps
# only named roles).
EXTRA_LOGIN_ROLES = ("migrator", "outsider")
IS_ROOT = os.geteuid() == 0

# Every HTTP request is bounded; generous because the suite also runs against an ASan build.
HTTP_TIMEOUT = 20
START_TIMEOUT = 30

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer: detected")

KEY_RE = re.compile(r"^[0-9A-Za-z]{7}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# Settings of our programs and libpq that must not leak in from the developer's shell.
_SCRUBBED = {
    "DATABASE_URL", "REDIS_URL", "KGS_SOCKET", "PORT", "LISTEN_ADDRESS", "BASE_URL",
    "DEFAULT_TTL", "ALLOW_ANONYMOUS", "APIKEY_PEPPER", "THREADS", "CACHE_TTL", "NEGATIVE_TTL",
    "HOT_CACHE_ENTRIES", "HOT_CACHE_MAX_AGE", "KGS_MEMORY_KEYS",
    "REDIRECT_MAX_AGE", "VISITS_FLUSH_MS", "MAX_CONNECTIONS", "PER_IP_CONNECTIONS",
    "CONNECTION_TIMEOUT", "LOG_LEVEL", "DEFAULT_RATE", "SHORTENER_ENV_FILE", "RATE_LIMITS",
    "ANONYMOUS_RATE", "AUTH_FAILURE_RATE", "TRUSTED_PROXIES", "SHORTENER_ENV", "ANALYTICS",
    "GEOIP_DB", "STATS_RETENTION_DAYS", "REQUEST_TIMEOUT", "SELF_HOSTS", "MISS_RATE",
    "CORS_ORIGINS",
    "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
}


def base_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in _SCRUBBED and not k.startswith(("PG", "KGS_"))}
    env["LC_ALL"] = "C"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def session():
    """A requests.Session that ignores proxy settings; one per client thread."""
    s = requests.Session()
    s.trust_env = False
    return s


class Fatal(Exception):
    """Raised by a wait_until predicate when waiting longer cannot help (a process died)."""


def wait_until(what, predicate, timeout, interval=0.05, fail_fast=True):
    """Polls predicate() until it returns a true value, which is returned; fails after timeout
    seconds with the last value or exception in the message. With fail_fast, a kgs or
    shortener dying meanwhile fails it at once."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        dead = dead_servers() if fail_fast else None
        if dead:
            raise Fatal(f"while waiting for {what}: " + "; ".join(dead))
        try:
            last = predicate()
            if last:
                return last
        except Fatal:
            raise
        except Exception as e:  # noqa: BLE001 - reported below
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def parse_time(text):
    assert isinstance(text, str) and TIME_RE.match(text), f"not RFC 3339 UTC seconds: {text!r}"
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


# ---------------------------------------------------------------------------- free ports

_PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "shortener-it-ports"


class PortLease:
    """A free TCP port on 127.0.0.1, held against other test runs by a lock file until
    release(). The port is free when picked; a server that then fails to bind retries."""

    def __init__(self):
        _PORT_LOCK_DIR.mkdir(exist_ok=True)
        try:
            os.chmod(_PORT_LOCK_DIR, 0o1777)
        except OSError:
            pass
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            fd = os.open(_PORT_LOCK_DIR / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.port, self._fd = port, fd
            return
        raise RuntimeError("no free port found")

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# ---------------------------------------------------------------------------- processes


class Proc:
    """One program run as a child process (possibly several incarnations, e.g. kgs restarted
    after kill -9), its output appended to one log file."""

    def __init__(self, name, argv, env, cwd, log_path, checked):
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.log_path = Path(log_path)
        self.checked = checked  # a shortener or kgs: crashes and sanitizer reports fail tests
        self.popen = None
        self.incarnations = []  # [popen, signal we sent or None, reported?]
        self._log_scanned = 0
        self._lock = threading.Lock()

    def start(self):
        with self._lock:
            with open(self.log_path, "ab") as log:
                log.write(f"==== {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
                log.flush()
                self.popen = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd,
                                              stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)
            self.incarnations.append([self.popen, None, False])
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def _mark(self, sig):
        for inc in self.incarnations:
            if inc[0] is self.popen and inc[1] is None:
                inc[1] = sig

    def kill9(self):
        """kill -9, as a crash would; waits until it is gone."""
        if self.alive():
            self._mark(signal.SIGKILL)
            self.popen.send_signal(signal.SIGKILL)
        if self.popen:
            self.popen.wait(timeout=30)

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after timeout. Returns a problem description or None."""
        if not self.popen or self.popen.poll() is not None:
            return None
        self._mark(signal.SIGTERM)
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._mark(signal.SIGKILL)
            self.popen.kill()
            self.popen.wait(timeout=30)
            return f"{self.name} (pid {self.popen.pid}) did not stop within {timeout}s of SIGTERM"
        return None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def excerpt(self, lines=45):
        """The start of the first sanitizer report in the log, else its tail."""
        text = self.log_text().splitlines()
        for i, line in enumerate(text):
            if any(m in line for m in SANITIZER_MARKERS):
                start = max(0, i - 2)
                return "\n".join(text[start:start + lines])
        return "\n".join(text[-lines:])

    def problems(self, final=False):
        """Crashes and sanitizer reports not yet reported. With final, a checked process that
        is still running counts as fine (the caller stops it first)."""
        out = []
        if not self.checked:
            return out
        for inc in self.incarnations:
            popen, sent, reported = inc
            rc = popen.poll()
            if reported or rc is None:
                continue
            what = None
            if rc < 0:
                sig = -rc
                if sent is None:
                    what = f"died by signal {signal.Signals(sig).name} that nobody sent"
                elif sig != sent and sig != signal.SIGKILL:
                    what = f"died by signal {signal.Signals(sig).name}"
            elif sent is None:
                what = f"exited by itself with status {rc} while it should have been running"
            elif rc != 0:
                what = f"exited with status {rc} after SIGTERM"
            if what:
                out.append(f"{self.name} (pid {popen.pid}) {what}")
            inc[2] = True
        text = self.log_text()
        new = text[self._log_scanned:]
        # Only scan whole lines so a marker split across a write is found next time.
        cut = new.rfind("\n") + 1
        if final:
            cut = len(new)
        chunk = new[:cut]
        self._log_scanned += cut
        for marker in SANITIZER_MARKERS:
            if marker in chunk:
                out.append(f"{self.name} log ({self.log_path}) reports '{marker}':\n"
                           + self.excerpt())
                break
        return out


# ---------------------------------------------------------------------------- PostgreSQL


# The login roles each program uses, members of the group roles migrations/0009_roles.sql
# makes; shortener (the cluster's superuser) is the migrator and the tests' administrator.
LOGIN_ROLES = {"web": "shortener_server", "kgs": "shortener_kgs",
               "cleanup": "shortener_cleanup"}


class Postgres:
    def __init__(self, root):
        self.root = root
        self.data = root / "pg"
        self.sockdir = root / "pgsock"
        self.log_path = root / "postgres.log"
        self.dsn = self.dsn_for("shortener")
        self.server_dsn = self.dsn_for("web")
        self.kgs_dsn = self.dsn_for("kgs")
        self.cleanup_dsn = self.dsn_for("cleanup")
        self.running = False
        # More server settings (name -> value) for start(); the bench's production-like ones.
        self.settings = {}

    def dsn_for(self, role):
        return f"host={self.sockdir} dbname=shortener user={role}"

    def _run(self, argv, timeout=90, check=True, stdin_text=None):
        if IS_ROOT:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        res = subprocess.run(argv, cwd=self.root, env=base_env(),
                             stdin=subprocess.DEVNULL if stdin_text is None else None,
                             input=stdin_text, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({res.returncode}):\n"
                               f"{res.stdout}\n{res.stderr}\n{self.tail()}")
        return res

    def init(self):
        self.data.mkdir()
        self.sockdir.mkdir()
        self.log_path.touch()
        if IS_ROOT:
            for p in (self.data, self.sockdir, self.log_path):
                shutil.chown(p, "postgres", "postgres")
        self._run([PG_BIN / "initdb", "-D", self.data, "-U", "shortener", "--auth-local=peer",
                   "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
                   "--no-instructions"])
        self._write_auth()
        self.start()
        self._run([PG_BIN / "createdb", "-h", self.sockdir, "-U", "shortener", "shortener"])

    def _write_auth(self):
        """Peer authentication, never trust: the user running the tests (and postgres, for
        createdb) may log in as the roles the stack uses and nobody else may log in at all.
        No TCP listener, so no password is needed anywhere."""
        me = pwd.getpwuid(os.geteuid()).pw_name
        users = sorted({me, "postgres"} if IS_ROOT else {me})
        roles = ["shortener", *LOGIN_ROLES, *EXTRA_LOGIN_ROLES]
        ident = "".join(f"stack {u} {r}\n" for u in users for r in roles)
        hba = ("local all all peer map=stack\n"
               "local replication all peer map=stack\n"
               "host all all 127.0.0.1/32 scram-sha-256\n"
               "host all all ::1/128 scram-sha-256\n")
        for name, text in (("pg_ident.conf", ident), ("pg_hba.conf", hba)):
            path = self.data / name
            if IS_ROOT:
                self._run(["sh", "-c", f"cat > '{path}'"], check=True, stdin_text=text)
            else:
                path.write_text(text)

    def create_login_roles(self):
        """The programs' own login roles; the group roles come from the migrations."""
        for role, group in LOGIN_ROLES.items():
            self.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')"
                      f" THEN CREATE ROLE {role} LOGIN IN ROLE {group}; END IF; END $$")

    def start(self):
        # Each server holds about ten connections (request threads, link writers, visits,
        # analytics, resync); tests run several servers on one cluster at once.
        opts = f"-k {self.sockdir} -c listen_addresses='' -c fsync=on -c max_connections=400"
        opts += "".join(f" -c {k}={v}" for k, v in self.settings.items())
        self._run([PG_BIN / "pg_ctl", "-D", self.data, "-o", opts, "-l", self.log_path,
                   "-w", "-t", "60", "start"])
        self.running = True

    def stop(self):
        self._run([PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"])
        self.running = False

    def force_stop(self):
        """Whatever state it is in: immediate stop, else kill the postmaster."""
        if not (self.data / "PG_VERSION").exists():
            return
        res = self._run([PG_BIN / "pg_ctl", "-D", self.data, "status"], check=False)
        if res.returncode != 0:
            return
        # immediate: no shutdown checkpoint, the data is about to be deleted anyway.
        res = self._run([PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30",
                         "stop"], check=False)
        if res.returncode != 0:
            try:
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
        self.running = False

    def psql(self, sql, role="shortener", timeout=60):
        """Runs one statement (as role); returns psql's unaligned, tuples-only output,
        stripped."""
        res = subprocess.run(["psql", self.dsn_for(role), "-AtXq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             cwd=self.root, env=base_env(), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"psql failed ({res.returncode}) on {sql!r}: {res.stderr}")
        return res.stdout.strip()

    def tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Replica(Postgres):
    """A streaming replica of a stack's PostgreSQL: pg_basebackup -R of the primary, started
    as a hot standby on a socket directory of its own (for DATABASE_READ_URL)."""

    def __init__(self, primary, name="replica"):
        super().__init__(primary.root)
        self.primary = primary
        self.data = self.root / name
        self.sockdir = self.root / f"{name}sock"
        self.log_path = self.root / f"{name}.log"
        self.dsn = f"host={self.sockdir} dbname=shortener user=shortener"

    def init(self):
        self.sockdir.mkdir()
        self.data.mkdir(mode=0o700)
        self.log_path.touch()
        if IS_ROOT:
            for p in (self.data, self.sockdir, self.log_path):
                shutil.chown(p, "postgres", "postgres")
        self._run([PG_BIN / "pg_basebackup", "-h", self.primary.sockdir, "-U", "shortener",
                   "-D", self.data, "-R", "-X", "stream", "-c", "fast", "--no-sync"])
        self.start()
        wait_until("the replica to accept connections",
                   lambda: self.psql("SELECT pg_is_in_recovery()") == "t", START_TIMEOUT,
                   interval=0.2, fail_fast=False)

    def caught_up(self):
        """True once the replica has replayed everything the primary has written."""
        want = self.primary.psql("SELECT pg_current_wal_lsn()")
        return self.psql(f"SELECT pg_last_wal_replay_lsn() >= '{want}'::pg_lsn") == "t"

    def wait_caught_up(self, timeout=30):
        wait_until("the replica to catch up", self.caught_up, timeout, interval=0.05)

    def pause(self):
        """Stops replaying WAL (it keeps receiving): a replica as far behind as we like."""
        self.psql("SELECT pg_wal_replay_pause()")

    def resume(self):
        self.psql("SELECT pg_wal_replay_resume()")


# ---------------------------------------------------------------------------- Redis


def redis_cli(where, args, timeout, name):
    """redis-cli's raw answer to one command (args) on the Redis at where (its flags),
    stripped; RuntimeError naming name when it fails."""
    res = subprocess.run(["redis-cli", *where, "--raw", *map(str, args)], env=base_env(),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"redis-cli {args} on {name}: {res.stderr}")
    return res.stdout.strip()


class Redis:
    def __init__(self, root):
        self.root = root
        self.sock = root / "redis.sock"
        self.url = f"unix://{self.sock}"
        self.proc = Proc("redis", [
            "redis-server", "--port", "0", "--unixsocket", str(self.sock),
            "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
            "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru",
            "--daemonize", "no", "--dir", str(root)],
            base_env(), root, root / "redis.log", checked=False)

    def cli(self, *args, timeout=60):
        """redis-cli's answer to one command, stripped."""
        return redis_cli(["-s", str(self.sock)], args, timeout, "redis")

    def ping(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(str(self.sock))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def start(self):
        self.proc.start()

        def up():
            if not self.proc.alive():
                raise Fatal(f"redis-server exited:\n{self.proc.tail()}")
            return self.ping()
        wait_until("redis to answer PING", up, START_TIMEOUT, fail_fast=False)

    def stop(self):
        self.proc.stop()


class RedisNode:
    """A Redis on a free TCP port of 127.0.0.1 (Sentinel monitors addresses, not sockets),
    optionally a replica of another (replicaof: its port)."""

    def __init__(self, root, name, replicaof=None):
        self.root, self.name = root, name
        self.lease = PortLease()
        self.port = self.lease.port
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(root),
                "--dbfilename", f"{name}.rdb"]
        if replicaof:
            argv += ["--replicaof", "127.0.0.1", str(replicaof)]
        self.proc = Proc(name, argv, base_env(), root, root / f"{name}.log", checked=False)

    def cli(self, *args, timeout=10):
        """redis-cli's answer to one command, stripped."""
        return redis_cli(["-h", "127.0.0.1", "-p", str(self.port)], args, timeout, self.name)

    def start(self):
        self.proc.start()
        wait_until(f"{self.name} to answer PING", lambda: self.cli("PING") == "PONG",
                   START_TIMEOUT, fail_fast=False)
        return self

    def stop(self):
        self.proc.stop()
        if self.lease:
            self.lease.release()
            self.lease = None


class SentinelGroup:
    """A Redis master, one replica and three redis-sentinel processes watching them as
    `name`, with failover times short enough for tests: what REDIS_SENTINELS and
    REDIS_MASTER_NAME are for. Stopped with the stack (Stack.add_sentinels())."""

    def __init__(self, root, name="shortener", down_after_ms=1000, failover_timeout_ms=3000):
        self.root, self.name = root, name
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.master = RedisNode(root, "redis-master")
        self.replica = RedisNode(root, "redis-replica", replicaof=self.master.port)
        self.sentinels = []

    @property
    def env(self):
        """The shortener settings that follow this group's master."""
        return {"REDIS_URL": "redis://sentinel", "REDIS_MASTER_NAME": self.name,
                "REDIS_SENTINELS": ",".join(f"127.0.0.1:{sn.port}" for sn in self.sentinels)}

    def start(self):
        self.master.start()
        self.replica.start()
        for i in range(3):
            sn = RedisNode(self.root, f"sentinel{i}")
            conf = self.root / f"sentinel{i}.conf"
            conf.write_text(
                f"port {sn.port}\nbind 127.0.0.1\ndaemonize no\ndir {self.root}\n"
                f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.name} 1\n")
            sn.proc.argv = ["redis-server", str(conf), "--sentinel"]
            self.sentinels.append(sn)
            sn.start()
        # Ready for a failover once every sentinel knows the replica and enough sentinels.
        def ready():
            return all(sn.cli("SENTINEL", "ckquorum", self.name).startswith("OK")
                       and sn.cli("SENTINEL", "replicas", self.name).strip() != ""
                       for sn in self.sentinels)
        wait_until("the sentinels to know the replica and each other", ready, 60,
                   interval=0.25, fail_fast=False)
        wait_until("the replica to be in sync",
                   lambda: "master_link_status:up" in self.replica.cli("INFO", "replication"),
                   START_TIMEOUT, fail_fast=False)
        return self

    def master_port(self):
        """The master's port, as the first sentinel that answers says."""
        for sn in self.sentinels:
            try:
                out = sn.cli("SENTINEL", "get-master-addr-by-name", self.name).split()
                return int(out[1])
            except (RuntimeError, IndexError, ValueError):
                continue
        return None

    def node(self, port):
        return next(n for n in (self.master, self.replica) if n.port == port)

    def stop(self):
        for n in [*self.sentinels, self.replica, self.master]:
            n.stop()


# ---------------------------------------------------------------------------- kgs


class Kgs:
    def __init__(self, root, dsn, env=None, name="kgs"):
        """name: the socket is root/<name>.sock and the log root/<name>.log, so that a stack
        can run more than one kgs on its database (add_kgs)."""
        self.root = root
        self.sock = root / f"{name}.sock"
        self.proc = Proc(name, [str(BIN_DIR / "kgs")],
                         base_env({"DATABASE_URL": dsn, "KGS_SOCKET": self.sock,
                                   "LOG_LEVEL": "info", **(env or {})}),
                         root, root / f"{name}.log", checked=True)

    def ping(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(self.sock))
            s.sendall(b"PING\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                buf += chunk
            return buf == b"PONG\n"

    def start(self):
        self.proc.start()

        def up():
            if not self.proc.alive():
                raise Fatal(f"kgs exited with {self.proc.popen.returncode}:\n"
                                   f"{self.proc.tail()}")
            return self.ping()
        wait_until("kgs to answer PING with PONG", up, START_TIMEOUT, fail_fast=False)

    def kill9(self):
        self.proc.kill9()

    def stop(self):
        return self.proc.stop()


# ---------------------------------------------------------------------------- shortener


class Shortener:
    def __init__(self, stack, env_overrides, index):
        self.stack = stack
        self.env_overrides = dict(env_overrides)
        self.index = index
        self.lease = None
        self.proc = None
        self.port = None
        self.base_url = None
        self.stopped = False

    def _env(self):
        env = {
            "DATABASE_URL": self.stack.pg.server_dsn,
            "REDIS_URL": self.stack.redis.url,
            "KGS_SOCKET": self.stack.kgs.sock,
            "PORT": self.port,
            "LISTEN_ADDRESS": "127.0.0.1",
            "BASE_URL": self.base_url,
            "NEGATIVE_TTL": 1,
            "VISITS_FLUSH_MS": 200,
            "LOG_LEVEL": "info",
            # Tests look up unknown and deleted keys from one address far faster than a
            # person would; test_hardening.py sets MISS_RATE itself to test the limit.
            "MISS_RATE": "1000000/s",
        }
        # Overrides may name the port this instance got: BASE_URL="http://localhost:{port}".
        env.update({k: str(v).format(port=self.port) for k, v in self.env_overrides.items()})
        return base_env(env)

    def start(self, wait_ready=True):
        for attempt in range(5):
            self.lease = PortLease()
            self.port = self.lease.port
            # An IPv6 listener other than "::" (which takes IPv4 too) is reached over IPv6.
            listen = str(self.env_overrides.get("LISTEN_ADDRESS", "127.0.0.1"))
            host = f"[{listen}]" if ":" in listen and listen != "::" else "127.0.0.1"
            self.base_url = f"http://{host}:{self.port}"
            self.proc = Proc(f"shortener#{self.index}:{self.port}", [str(BIN_DIR / "shortener")],
                             self._env(), self.stack.root,
                             self.stack.root / f"shortener-{self.index}.log", checked=True)
            self.stack.procs.append(self.proc)
            self.proc.start()
            try:
                self._wait(wait_ready)
                return self
            except _BindFailed:
                self.proc.incarnations[-1][2] = True  # a lost port race, not a crash
                self.lease.release()
                continue
        raise RuntimeError("shortener could not bind a free port in 5 attempts")

    def _wait(self, wait_ready):
        s = session()

        def healthy():
            if not self.proc.alive():
                if re.search(r"address already in use|EADDRINUSE", self.proc.tail(), re.I):
                    raise _BindFailed()
                raise RuntimeError(f"shortener exited with {self.proc.popen.returncode}:\n"
                                   f"{self.proc.excerpt()}")
            try:
                return s.get(self.base_url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        def ready():
            if not self.proc.alive():
                raise Fatal(f"shortener exited:\n{self.proc.tail()}")
            return s.get(self.base_url + "/readyz", timeout=5).status_code == 200

        deadline = time.monotonic() + START_TIMEOUT
        while not healthy():
            if time.monotonic() > deadline:
                raise AssertionError(f"shortener never answered /healthz 200:\n{self.proc.tail()}")
            time.sleep(0.05)
        if wait_ready:
            wait_until("/readyz to answer 200", ready, START_TIMEOUT, fail_fast=False)

    def stop(self):
        self.stopped = True
        problem = self.proc.stop() if self.proc else None
        if self.lease:
            self.lease.release()
            self.lease = None
        return problem

    def revive(self):
        """Starts it again on the same port if it died (its crash was reported already)."""
        if self.stopped or self.proc is None or self.proc.alive():
            return
        self.proc.start()
        self._wait(wait_ready=False)

    def url(self, path):
        return self.base_url + path


class _BindFailed(Exception):
    pass


# ---------------------------------------------------------------------------- the stack

_LIVE_STACKS = []
_LIVE_LOCK = threading.Lock()


def _make_root():
    """A temporary directory the postgres user can reach, with short enough socket paths."""
    candidates = [None, "/tmp"]
    for parent in candidates:
        root = Path(tempfile.mkdtemp(prefix="shortener-it-", dir=parent))
        os.chmod(root, 0o755)
        ok = len(str(root / "pgsock" / ".s.PGSQL.5432")) < 100
        if ok and IS_ROOT:
            ok = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(root)],
                                capture_output=True).returncode == 0
        if ok:
            return root
        shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError("no usable temporary directory")


class Stack:
    """PostgreSQL + Redis + kgs + shortener instances in one temporary directory."""

    def __init__(self, name="stack", kgs_env=None):
        self.name = name
        self.root = _make_root()
        self.pg = Postgres(self.root)
        self.redis = Redis(self.root)
        self.kgs = Kgs(self.root, self.pg.kgs_dsn, kgs_env)
        self.procs = [self.redis.proc, self.kgs.proc]
        self.shorteners = []
        self.extra_kgs = []
        self.replicas = []
        self.sentinel_groups = []
        self.server = None
        self.closed = False
        with _LIVE_LOCK:
            _LIVE_STACKS.append(self)

    def start(self, **server_env):
        """Everything, then one shortener (self.server) that is ready."""
        try:
            self.pg.init()
            self.redis.start()
            res = self.ctl("migrate")
            assert res.returncode == 0, f"shortenerctl migrate failed: {res.stdout}{res.stderr}"
            self.pg.create_login_roles()
            self.kgs.start()
            self.server = self.start_shortener(**server_env)
        except BaseException:
            self.close()
            raise
        return self

    def add_replica(self, name="replica"):
        """A streaming replica of this stack's PostgreSQL, started and caught up; stopped
        with the stack. Its dsn is for DATABASE_READ_URL."""
        r = Replica(self.pg, name)
        self.replicas.append(r)
        r.init()
        return r

    def add_sentinels(self, **kw):
        """A Redis master, a replica and three sentinels (SentinelGroup), started; stopped
        with the stack."""
        g = SentinelGroup(self.root, **kw)
        self.sentinel_groups.append(g)
        try:
            g.start()
        finally:
            self.procs.extend(n.proc for n in [g.master, g.replica, *g.sentinels])
        return g

    def add_kgs(self, name, env=None):
        """Another kgs on the same database, started; stopped with the stack. Its socket is
        .sock: name it in KGS_SOCKET (several, comma-separated) for a shortener to use it."""
        k = Kgs(self.root, self.pg.dsn, env, name=name)
        self.extra_kgs.append(k)
        self.procs.append(k.proc)
        k.start()
        return k

    def start_shortener(self, wait_ready=True, **env):
        sh = Shortener(self, env, len(self.shorteners))
        self.shorteners.append(sh)
        return sh.start(wait_ready=wait_ready)

    def revive(self):
        """Restarts whatever died or was left stopped, so one test's crash does not fail the
        tests after it. Called before each test; crashes were reported by then."""
        if self.closed:
            return
        if not self.pg.running:
            self.pg.start()
        if not self.redis.proc.alive():
            self.redis.start()
        if not self.kgs.proc.alive():
            self.kgs.start()
        for k in self.extra_kgs:
            if not k.proc.alive():
                k.start()
        for sh in self.shorteners:
            sh.revive()

    # ------------------------------------------------------------ shortenerctl and psql

    def ctl(self, *args, env=None, timeout=60):
        # cleanup runs as its own role, as in production; every other command as the migrator.
        dsn = self.pg.cleanup_dsn if args and args[0] == "cleanup" else self.pg.dsn
        e = {"DATABASE_URL": dsn, "REDIS_URL": self.redis.url,
             "SHORTENER_ENV_FILE": self.root / "no-such-env-file"}
        e.update(env or {})
        res = subprocess.run([str(BIN_DIR / "shortenerctl"), *map(str, args)],
                             cwd=self.root, env=base_env(e), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=timeout)
        assert res.returncode >= 0, f"shortenerctl {args} died by signal {-res.returncode}"
        for marker in SANITIZER_MARKERS:
            assert marker not in res.stderr, f"shortenerctl {args}:\n{res.stderr}"
        return res

    def create_apikey(self, name=None, rate="1000000/s"):
        """Creates an API key; returns (key, id). A high rate by default so that rate limits
        never get in the way of tests that are not about them."""
        name = name or f"test-{os.urandom(4).hex()}"
        args = ["apikey", "create", name] + (["--rate", rate] if rate else [])
        res = self.ctl(*args)
        assert res.returncode == 0, f"apikey create failed: {res.stdout}{res.stderr}"
        key = res.stdout.strip().splitlines()[-1].strip()
        assert key.startswith("sk_"), f"last line is not a key: {res.stdout!r}"
        rows = [r for r in self.list_apikeys() if r["name"] == name]
        assert len(rows) == 1, f"apikey list shows {len(rows)} keys named {name!r}"
        return key, rows[0]["id"]

    def list_apikeys(self):
        res = self.ctl("apikey", "list")
        assert res.returncode == 0, f"apikey list failed: {res.stdout}{res.stderr}"
        lines = res.stdout.splitlines()
        assert lines and lines[0].split("\t") == [
            "id", "name", "rate", "created", "last_used", "revoked"], lines[:1]
        rows = []
        for line in lines[1:]:
            f = line.split("\t")
            assert len(f) == 6, f"not 6 tab-separated fields: {line!r}"
            rows.append(dict(zip(["id", "name", "rate", "created", "last_used", "revoked"], f)))
        return rows

    def revoke_apikey(self, key_id):
        res = self.ctl("apikey", "revoke", key_id)
        assert res.returncode == 0, f"apikey revoke failed: {res.stdout}{res.stderr}"
        return res

    def psql(self, sql, role="shortener", timeout=60):
        return self.pg.psql(sql, role, timeout)

    def count_urls(self):
        return int(self.psql("SELECT count(*) FROM urls"))

    def kgs_state(self):
        """kgs's permutation round keys (see keyperm.py) and how many indices it claimed."""
        import keyperm
        secret_hex, claimed = self.psql(
            "SELECT encode(secret, 'hex'), next_index FROM kgs_state").split("|")
        return keyperm.round_keys(bytes.fromhex(secret_hex)), int(claimed)

    def issued_by_kgs(self, keys):
        """The keys among keys that kgs did not make from an index it had claimed."""
        import keyperm
        rounds, claimed = self.kgs_state()
        return [k for k in keys if keyperm.index_of(rounds, k) >= claimed]

    # ------------------------------------------------------------ diagnostics and teardown

    def log_tails(self, lines=40):
        parts = []
        for p in self.procs:
            n = lines if p.checked else 8
            if p.log_path.exists():
                parts.append(f"--- {self.name}: {p.name} ({p.log_path}), last {n} lines\n"
                             f"{p.tail(n)}")
        parts.append(f"--- {self.name}: postgres ({self.pg.log_path})\n{self.pg.tail(15)}")
        return "\n".join(parts)

    def problems(self, final=False):
        out = []
        for p in self.procs:
            out.extend(p.problems(final=final))
        return out

    def close(self):
        """Stops everything, removes the directory. Returns the problems found (crashes,
        sanitizer reports, processes that did not stop)."""
        if self.closed:
            return []
        self.closed = True
        problems = []
        for step in [*(sh.stop for sh in self.shorteners), self.kgs.stop,
                     *(k.stop for k in self.extra_kgs), self.redis.stop,
                     *(g.stop for g in self.sentinel_groups),
                     *(r.force_stop for r in self.replicas), self.pg.force_stop]:
            try:
                t0 = time.monotonic()
                p = step()
                if time.monotonic() - t0 > 3:
                    print(f"\nnote: stopping {getattr(step, '__self__', step)!r} of stack "
                          f"{self.name} took {time.monotonic() - t0:.1f}s", file=sys.stderr)
                if isinstance(p, str):
                    problems.append(p)
            except BaseException as e:  # noqa: BLE001 - keep cleaning up
                problems.append(f"cleanup step failed: {e!r}")
        problems.extend(self.problems(final=True))
        if problems:
            # Keep the evidence where the report says it is.
            keep = Path(tempfile.gettempdir()) / f"{self.root.name}-logs"
            try:
                keep.mkdir(exist_ok=True)
                for p in [*self.procs]:
                    if p.log_path.exists():
                        shutil.copy(p.log_path, keep / p.log_path.name)
                problems.append(f"(logs kept in {keep})")
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        with _LIVE_LOCK:
            if self in _LIVE_STACKS:
                _LIVE_STACKS.remove(self)
        return problems


def dead_servers():
    """kgs or shortener processes of live stacks that died without being told to."""
    out = []
    for st in live_stacks():
        for p in st.procs:
            if p.checked and p.popen is not None and p.popen.poll() is not None \
                    and p.incarnations and p.incarnations[-1][1] is None \
                    and p.incarnations[-1][0] is p.popen and not p.incarnations[-1][2]:
                out.append(f"{p.name} exited with {p.popen.returncode}:\n{p.excerpt()}")
    return out


def live_stacks():
    with _LIVE_LOCK:
        return list(_LIVE_STACKS)


@atexit.register
def _close_leftovers():
    for st in live_stacks():
        st.close()


# ---------------------------------------------------------------------------- HTTP client


class Client:
    """An API client bound to one shortener and (optionally) one API key. Never follows
    redirects."""

    def __init__(self, server, api_key=None, header="bearer"):
        self.base = server.base_url if hasattr(server, "base_url") else server
        self.api_key = api_key
        self.header = header
        self.s = session()

    def auth_headers(self):
        if not self.api_key:
            return {}
        if self.header == "x-api-key":
            return {"X-API-Key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}

    def request(self, method, path, headers=None, auth=True, **kw):
        h = self.auth_headers() if auth else {}
        h.update(headers or {})
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.s.request(method, self.base + path, headers=h, allow_redirects=False, **kw)

    def create(self, url=None, headers=None, auth=True, **fields):
        body = {} if url is None else {"url": url}
        body.update(fields)
        return self.request("POST", "/api/v1/urls", headers=headers, auth=auth, json=body)

    def create_ok(self, url, **fields):
        r = self.create(url, **fields)
        assert r.status_code == 201, f"create {url!r} {fields}: {r.status_code} {r.text}"
        return r.json()

    def resolve(self, key, method="GET", headers=None):
        return self.request(method, "/" + key, headers=headers, auth=False)

    def read(self, key, **kw):
        return self.request("GET", f"/api/v1/urls/{key}", **kw)

    def delete(self, key, **kw):
        return self.request("DELETE", f"/api/v1/urls/{key}", **kw)


def assert_problem(r, status):
    """The response is status with a complete application/problem+json body; returns it."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/problem+json", \
        f"Content-Type {ctype!r} for {status}: {r.text[:300]}"
    body = r.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("type"), str) and body["type"], body
    assert isinstance(body.get("title"), str), body
    assert type(body.get("status")) is int and body["status"] == status, body
    assert isinstance(body.get("detail"), str), body
    if status == 405:
        assert r.headers.get("Allow"), f"405 without Allow: {dict(r.headers)}"
    if status in (429, 503):
        assert r.headers.get("Retry-After"), f"{status} without Retry-After: {dict(r.headers)}"
    if status == 401:
        challenge = {k.lower(): v for k, v in r.headers.items()}.get("www-authenticate", "")
        assert challenge.startswith("Bearer"), \
            f"401 without a Bearer challenge: {dict(r.headers)}"
    return body


def cache_control_max_age(r):
    """The max-age a redirect may be cached for: 0 for no-store/no-cache, None if absent."""
    cc = r.headers.get("Cache-Control", "")
    if re.search(r"\bno-store\b|\bno-cache\b", cc):
        return 0
    ages = [int(m) for m in re.findall(r"(?:^|[,\s])(?:s-)?max-age=(\d+)", cc)]
    return max(ages) if ages else None


@contextlib.contextmanager
def running_stack(name="stack", kgs_env=None, **server_env):
    """A started Stack for a with block (or a yield fixture); on the way out everything is
    stopped and removed, and crashes or sanitizer reports raise AssertionError."""
    st = Stack(name, kgs_env).start(**server_env)
    try:
        yield st
    finally:
        problems = st.close()
        if problems:
            msg = f"stack {name!r} teardown found problems:\n" + "\n".join(problems)
            print(msg, file=sys.stderr)
            raise AssertionError(msg)
