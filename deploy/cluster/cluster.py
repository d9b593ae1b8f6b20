#!/usr/bin/python3
"""A cluster on loopback: etcd, Patroni with two PostgreSQL nodes (a primary and a synchronous
standby), Redis with a replica and three Sentinels, two kgs, three shortener instances and
HAProxy in front of them all. Every process is a child started in its own session, its pid in
run/NAME.pid and its output in log/NAME.log under the cluster's directory.

    cluster.py up      start it under var/cluster (CLUSTER_DIR), print the URL and a dev key
    cluster.py down    stop everything it started, whatever state it is in
    cluster.py status  one line per process

The ports are chosen in DEFAULT_PORTS below; CLUSTER_PORT_BASE moves them all, and
CLUSTER_PORT_<NAME> (e.g. CLUSTER_PORT_HTTP) moves one. The fault tests (tests/cluster/) import
this module and run the same cluster in a temporary directory on free ports.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
IS_ROOT = os.geteuid() == 0
MASTER_NAME = "shortener"
N_SHORTENERS = 3
N_KGS = 2
N_SENTINELS = 3

# Every port of the default cluster, in one place: offsets from CLUSTER_PORT_BASE.
DEFAULT_PORT_BASE = 7400
DEFAULT_PORTS = {
    "http": 0,          # HAProxy: the shorteners, plain HTTP
    "https": 1,         # HAProxy: the shorteners, TLS
    "stats": 2,         # HAProxy: stats page (CSV at /stats;csv)
    "pg_primary": 3,    # HAProxy: TCP to whichever PostgreSQL node is primary
    "pg_replica": 4,    # HAProxy: TCP to the standby (the primary when there is none)
    "redis_master": 5,  # HAProxy: TCP to whichever Redis says role:master
    "etcd": 10, "etcd_peer": 11,
    "pg1": 20, "pg2": 21, "rest1": 22, "rest2": 23,
    "redis1": 30, "redis2": 31, "sentinel1": 32, "sentinel2": 33, "sentinel3": 34,
    "shortener1": 40, "shortener2": 41, "shortener3": 42,
}

# The default (make cluster-up) timings; the fault tests pass shorter ones.
DEFAULT_TIMINGS = {
    "ttl": 10, "loop_wait": 2, "retry_timeout": 3,  # Patroni: leader lease and loop
    "down_after_ms": 2000, "failover_timeout_ms": 10000,  # Sentinel
    "check_ms": 400,  # HAProxy health checks (the heartbeat)
}

# HAProxy connects to the shorteners from this address, and only it is a trusted proxy: a
# client on 127.0.0.1 is never believed about X-Forwarded-For.
PROXY_SOURCE = "127.0.0.10"


def default_ports():
    base = int(os.environ.get("CLUSTER_PORT_BASE", DEFAULT_PORT_BASE))
    ports = {name: base + off for name, off in DEFAULT_PORTS.items()}
    for name in ports:
        v = os.environ.get(f"CLUSTER_PORT_{name.upper()}")
        if v:
            ports[name] = int(v)
    return ports


def log(msg):
    print(f"cluster: {msg}", flush=True)


def as_pg(argv):
    """PostgreSQL and Patroni refuse root: then they run as postgres (setpriv execs, so the
    pid we hold is the program's own)."""
    if IS_ROOT:
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]
    return list(argv)


def chown_pg(*paths):
    if IS_ROOT:
        for p in paths:
            shutil.chown(p, "postgres", "postgres")


def http_status(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


def redis_cmd(port, *args, timeout=1.0):
    """One command in RESP over TCP; returns the raw reply text (good enough for INFO, PING,
    SENTINEL get-master-addr-by-name)."""
    msg = f"*{len(args)}\r\n" + "".join(f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(msg.encode())
        buf = b""
        s.settimeout(timeout)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if _resp_complete(buf):
                break
        return buf.decode(errors="replace")


def _resp_complete(buf):
    if buf[:1] in (b"+", b"-", b":"):
        return buf.endswith(b"\r\n")
    if buf[:1] == b"$":
        head, _, rest = buf.partition(b"\r\n")
        n = int(head[1:])
        return n < 0 or len(rest) >= n + 2
    if buf[:1] == b"*":
        head, _, rest = buf.partition(b"\r\n")
        n = int(head[1:])
        return n <= 0 or rest.count(b"\r\n") >= 2 * n
    return False


def wait_for(what, pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - shown if it never succeeds
            last = e
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class Cluster:
    """The processes of one cluster under root. Knows how to start each, kill it, and find
    it again from its pid file (so `down` works from a fresh process)."""

    def __init__(self, root, ports=None, timings=None, bin_dir=None, features=None):
        self.root = Path(root).resolve()
        self.run = self.root / "run"
        self.logs = self.root / "log"
        state = self.root / "state.json"
        saved = json.loads(state.read_text()) if state.exists() else {}
        self.ports = ports or saved.get("ports") or default_ports()
        self.timings = {**DEFAULT_TIMINGS, **(saved.get("timings") or {}), **(timings or {})}
        self.bin_dir = Path(bin_dir or saved.get("bin_dir") or REPO / "bin").resolve()
        self.features = features if features is not None else saved.get("features")
        self.cert = self.root / "tls" / "cert.pem"
        self.procs = {}  # name -> Popen started by this object
        self.history = []  # (name, Popen) of every process started, in order
        self.intended = set()  # pids this object stopped or killed on purpose

    # ------------------------------------------------------------------ bookkeeping

    def save_state(self):
        (self.root / "state.json").write_text(json.dumps({
            "ports": self.ports, "timings": self.timings, "bin_dir": str(self.bin_dir),
            "features": self.features}, indent=1))

    def pidfile(self, name):
        return self.run / f"{name}.pid"

    def pid(self, name):
        try:
            pid = int(self.pidfile(name).read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def spawn(self, name, argv, env=None, cwd=None):
        self.logs.mkdir(parents=True, exist_ok=True)
        logf = self.logs / f"{name}.log"
        with open(logf, "ab") as out:
            out.write(f"==== {time.strftime('%H:%M:%S')} starting {name}\n".encode())
            out.flush()
            p = subprocess.Popen([str(a) for a in argv], env=env or _clean_env(),
                                 cwd=cwd or self.root, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = p
        self.history.append((name, p))
        self.pidfile(name).write_text(str(p.pid))
        return p

    def alive(self, name):
        return self.pid(name) is not None

    def kill9(self, name):
        pid = self.pid(name)
        if pid:
            self.intended.add(pid)
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, self.procs.get(name), 10)

    def stop(self, name, timeout=20):
        pid = self.pid(name)
        if not pid:
            return
        self.intended.add(pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not _wait_gone(pid, self.procs.get(name), timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, self.procs.get(name), 10)

    def log_tail(self, name, lines=30):
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(
                errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ------------------------------------------------------------------ features of bin/

    def detect_features(self):
        """What this shortener understands (--help lists every setting): the cluster runs
        with main's server too, only without what it lacks."""
        try:
            text = subprocess.run([str(self.bin_dir / "shortener"), "--help"],
                                  capture_output=True, text=True, timeout=10).stdout
        except OSError:
            text = ""
        kgs_line = " ".join(l for l in text.splitlines() if "KGS_SOCKET" in l or "kgs" in l)
        return {
            "read_url": "DATABASE_READ_URL" in text,
            "sentinels": "REDIS_SENTINELS" in text,
            # Several sockets in KGS_SOCKET came with DATABASE_READ_URL (part of the same
            # work); a help line that says so is believed too.
            "multi_kgs": any(w in kgs_line.lower() for w in ("comma", "several", "separated"))
            or "DATABASE_READ_URL" in text,
        }

    # ------------------------------------------------------------------ TLS

    def make_cert(self):
        d = self.root / "tls"
        d.mkdir(exist_ok=True)
        if (d / "haproxy.pem").exists():
            return
        subprocess.run([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "365", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
            check=True, capture_output=True)
        (d / "haproxy.pem").write_bytes((d / "cert.pem").read_bytes() + (d / "key.pem").read_bytes())
        os.chmod(d / "haproxy.pem", 0o600)
        os.chmod(d / "key.pem", 0o600)

    # ------------------------------------------------------------------ etcd

    def start_etcd(self):
        p = self.ports
        data = self.root / "etcd"
        peer = f"http://127.0.0.1:{p['etcd_peer']}"
        client = f"http://127.0.0.1:{p['etcd']}"
        self.spawn("etcd", [
            "etcd", "--name", "e1", "--data-dir", data,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"e1={peer}", "--initial-cluster-state", "new",
            "--heartbeat-interval", "100", "--election-timeout", "1000",
            "--log-level", "warn"])
        wait_for("etcd /health", lambda: http_status(client + "/health") == 200, 30)

    # ------------------------------------------------------------------ Patroni + PostgreSQL

    def pg_node_dir(self, i):
        return self.root / f"pg{i}"

    def patroni_config(self, i):
        p, t = self.ports, self.timings
        node = self.pg_node_dir(i)
        cfg = {
            "scope": "shortener",
            "namespace": "/service/",
            "name": f"pg{i}",
            "restapi": {"listen": f"127.0.0.1:{p[f'rest{i}']}",
                        "connect_address": f"127.0.0.1:{p[f'rest{i}']}"},
            "etcd3": {"hosts": [f"127.0.0.1:{p['etcd']}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": t["ttl"], "loop_wait": t["loop_wait"],
                    "retry_timeout": t["retry_timeout"],
                    "maximum_lag_on_failover": 1048576,
                    # A commit we acknowledged exists on both nodes (while both run).
                    "synchronous_mode": True,
                    # With one etcd, losing it would make Patroni demote the primary; in
                    # failsafe mode the primary stays while it reaches every member's REST API.
                    "failsafe_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "wal_level": "replica", "hot_standby": "on",
                            "max_wal_senders": 10, "max_replication_slots": 10,
                            "wal_log_hints": "on", "max_connections": 200,
                            "synchronous_commit": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "local replication all trust",
                    "host replication all 127.0.0.1/32 trust",
                ],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{p[f'pg{i}']}",
                "connect_address": f"127.0.0.1:{p[f'pg{i}']}",
                "data_dir": str(node / "data"),
                "bin_dir": str(PG_BIN),
                "pgpass": str(node / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": "cluster-superuser"},
                    "replication": {"username": "replicator", "password": "cluster-replicator"},
                    "rewind": {"username": "postgres", "password": "cluster-superuser"},
                },
                "parameters": {"unix_socket_directories": str(node)},
                # After a kill -9 the old primary may be ahead of the new one: rewind it, and
                # if that fails, copy it afresh rather than stay out of the cluster.
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
            },
            "tags": {"nofailover": False, "noloadbalance": False},
            "log": {"level": "INFO"},
        }
        return cfg

    def start_patroni(self, i):
        node = self.pg_node_dir(i)
        node.mkdir(exist_ok=True)
        os.chmod(node, 0o700)
        chown_pg(node)
        cfg = node / "patroni.yml"
        # YAML is a superset of JSON.
        cfg.write_text(json.dumps(self.patroni_config(i), indent=1))
        chown_pg(cfg)
        self.spawn(f"patroni{i}", as_pg(["patroni", cfg]))

    def rest(self, i, path):
        return http_status(f"http://127.0.0.1:{self.ports[f'rest{i}']}{path}")

    def primary_node(self):
        for i in (1, 2):
            if self.rest(i, "/primary") == 200:
                return i
        return None

    def kill_pg_node(self, i):
        """The machine of node i dies: Patroni and every PostgreSQL process, kill -9."""
        self.kill9(f"patroni{i}")
        _kill_postmaster(self.pg_node_dir(i) / "data")

    def psql(self, sql, port_name="pg_primary", db="shortener", user="shortener"):
        res = subprocess.run(
            ["psql", f"host=127.0.0.1 port={self.ports[port_name]} dbname={db} user={user} "
             "connect_timeout=5", "-AtXq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60, env=_clean_env())
        if res.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {res.stderr}")
        return res.stdout.strip()

    def prepare_database(self):
        """The shortener role and database, made once on whichever node is primary."""
        port = f"pg{self.primary_node()}"

        def q(sql):
            return self.psql(sql, port, db="postgres", user="postgres")
        if not q("SELECT 1 FROM pg_roles WHERE rolname = 'shortener'"):
            q("CREATE ROLE shortener LOGIN SUPERUSER")
        if not q("SELECT 1 FROM pg_database WHERE datname = 'shortener'"):
            q("CREATE DATABASE shortener OWNER shortener")

    # ------------------------------------------------------------------ Redis + Sentinel

    def start_redis(self, i):
        p = self.ports
        d = self.root / f"redis{i}"
        d.mkdir(exist_ok=True)
        conf = d / "redis.conf"
        if not conf.exists() or self.sentinel_master() is None:
            lines = [f"port {p[f'redis{i}']}", "bind 127.0.0.1", "save \"\"", "appendonly no",
                     f"dir {d}", "maxmemory 128mb", "maxmemory-policy allkeys-lru",
                     "protected-mode no"]
            if i != 1:
                lines.append(f"replicaof 127.0.0.1 {p['redis1']}")
            conf.write_text("\n".join(lines) + "\n")
        elif self.sentinel_master() != p[f"redis{i}"]:
            # Back after a failover: Sentinel will make it a replica; start it as one so it
            # never serves as a second master meanwhile.
            text = [l for l in conf.read_text().splitlines() if not l.startswith("replicaof")]
            text.append(f"replicaof 127.0.0.1 {self.sentinel_master()}")
            conf.write_text("\n".join(text) + "\n")
        self.spawn(f"redis{i}", ["redis-server", conf])
        wait_for(f"redis{i} PING", lambda: "PONG" in redis_cmd(p[f"redis{i}"], "PING"), 30)

    def start_sentinel(self, i):
        p, t = self.ports, self.timings
        d = self.root / f"sentinel{i}"
        d.mkdir(exist_ok=True)
        conf = d / "sentinel.conf"
        if not conf.exists():
            conf.write_text("\n".join([
                f"port {p[f'sentinel{i}']}", "bind 127.0.0.1", "protected-mode no", f"dir {d}",
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {p['redis1']} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} {t['down_after_ms']}",
                f"sentinel failover-timeout {MASTER_NAME} {t['failover_timeout_ms']}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
            ]) + "\n")
        self.spawn(f"sentinel{i}", ["redis-sentinel", conf])
        wait_for(f"sentinel{i} PING", lambda: "PONG" in redis_cmd(p[f"sentinel{i}"], "PING"), 30)

    def sentinel_master(self):
        """The master's port according to the first Sentinel that answers, or None."""
        for i in range(1, N_SENTINELS + 1):
            try:
                reply = redis_cmd(self.ports[f"sentinel{i}"], "SENTINEL",
                                  "get-master-addr-by-name", MASTER_NAME)
            except OSError:
                continue
            parts = reply.split("\r\n")
            if len(parts) >= 5 and parts[0] == "*2":
                return int(parts[4])
        return None

    def redis_role(self, i):
        try:
            info = redis_cmd(self.ports[f"redis{i}"], "INFO", "replication")
        except OSError:
            return None
        for line in info.splitlines():
            if line.startswith("role:"):
                return line.split(":", 1)[1].strip()
        return None

    # ------------------------------------------------------------------ HAProxy

    def haproxy_config(self):
        p, t = self.ports, self.timings
        inter = t["check_ms"]
        sock = self.run / "haproxy.sock"
        pem = self.root / "tls" / "haproxy.pem"
        shorteners = "\n".join(
            f"    server s{i} 127.0.0.1:{p[f'shortener{i}']} check"
            for i in range(1, N_SHORTENERS + 1))
        # The same processes again, unchecked, used only when no instance is ready: when
        # every /readyz fails at once the cause is shared (PostgreSQL or Redis failing over),
        # and a live instance serving cached redirects and answering 503 + Retry-After itself
        # beats HAProxy's bare 503. A dead one is skipped by the connection retry.
        backups = "\n".join(
            f"    server b{i} 127.0.0.1:{p[f'shortener{i}']} backup"
            for i in range(1, N_SHORTENERS + 1))
        redis = "\n".join(
            f"    server redis{i} 127.0.0.1:{p[f'redis{i}']} check" for i in (1, 2))
        # PostgreSQL's port, checked on Patroni's REST port (the URI is the backend's).
        pg = "\n".join(f"    server pg{i} 127.0.0.1:{p[f'pg{i}']} check port {p[f'rest{i}']}"
                       for i in (1, 2))
        return f"""# Written by deploy/cluster/cluster.py; edits are lost at the next start.
global
    maxconn 4096
    stats socket {sock} mode 600 level admin
    # TLS 1.2 and 1.3 only, AEAD ciphers with forward secrecy only.
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 15s
    timeout queue 5s
    timeout http-keep-alive 10s
    # A request that failed on one server is tried on another (redispatch on every retry).
    retries 3
    option redispatch 1

frontend web
    bind 127.0.0.1:{p['http']}
    bind 127.0.0.1:{p['https']} ssl crt {pem} alpn h2,http/1.1
    # The client's own X-Forwarded-For never reaches a server: HAProxy's is the only one.
    http-request del-header X-Forwarded-For
    option forwardfor
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    default_backend shorteners

backend shorteners
    balance roundrobin
    # The heartbeat: an instance that does not answer /readyz 200 leaves the pool.
    option httpchk GET /readyz
    http-check expect status 200
    # Requests that never reached a server (and idempotent ones that got no answer) are
    # tried again on another one; a POST is retried only when its connection failed.
    retry-on conn-failure empty-response response-timeout
    http-request disable-l7-retry if !METH_GET !METH_HEAD
    http-reuse safe
    option allbackups
    # No on-marked-down shutdown-sessions here: an instance marked down (say its kgs died)
    # still finishes the requests it has.
    default-server inter {inter} fastinter {max(100, inter // 2)} downinter {inter} rise 2 fall 2 source {PROXY_SOURCE}
{shorteners}
{backups}

listen stats
    bind 127.0.0.1:{p['stats']}
    stats enable
    stats uri /stats
    stats refresh 5s

listen pg_primary
    bind 127.0.0.1:{p['pg_primary']}
    mode tcp
    timeout client 30m
    timeout server 30m
    option httpchk GET /primary
    http-check expect status 200
    default-server inter {inter} fastinter {max(100, inter // 2)} downinter {inter} rise 1 fall 2 on-marked-down shutdown-sessions
{pg}

listen pg_replica
    bind 127.0.0.1:{p['pg_replica']}
    mode tcp
    timeout client 30m
    timeout server 30m
    option httpchk GET /replica
    http-check expect status 200
    default-server inter {inter} fastinter {max(100, inter // 2)} downinter {inter} rise 1 fall 2 on-marked-down shutdown-sessions
{pg}
    # No standby running: read from the primary (its state tracked from pg_primary).
    server pg1_primary 127.0.0.1:{p['pg1']} backup track pg_primary/pg1
    server pg2_primary 127.0.0.1:{p['pg2']} backup track pg_primary/pg2

# Redis's master for clients that cannot ask Sentinel (and for shortenerctl): the node that
# says role:master. Sentinel decides which one that is.
listen redis_master
    bind 127.0.0.1:{p['redis_master']}
    mode tcp
    timeout client 30m
    timeout server 30m
    option tcp-check
    tcp-check connect
    tcp-check send PING\\r\\n
    tcp-check expect string +PONG
    tcp-check send info\\ replication\\r\\n
    tcp-check expect string role:master
    tcp-check send QUIT\\r\\n
    tcp-check expect string +OK
    default-server inter {inter} fastinter {max(100, inter // 2)} downinter {inter} rise 1 fall 2 on-marked-down shutdown-sessions
{redis}
"""

    def start_haproxy(self):
        cfg = self.root / "haproxy.cfg"
        cfg.write_text(self.haproxy_config())
        res = subprocess.run(["haproxy", "-c", "-q", "-f", cfg], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"haproxy -c: {res.stdout}{res.stderr}")
        self.spawn("haproxy", ["haproxy", "-db", "-f", cfg])
        wait_for("haproxy", lambda: http_status(
            f"http://127.0.0.1:{self.ports['stats']}/stats") == 200, 30)

    def haproxy_cmd(self, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.run / "haproxy.sock"))
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return buf.decode(errors="replace")

    def server_states(self, backend):
        """{server: status} as HAProxy sees them now ("UP", "DOWN", "MAINT", "UP 1/2", ...)."""
        out = {}
        lines = self.haproxy_cmd("show stat").splitlines()
        if not lines:
            return out
        head = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = row.get("status", "")
        return out

    # ------------------------------------------------------------------ kgs + shortener

    def database_url(self, port_name="pg_primary"):
        return (f"host=127.0.0.1 port={self.ports[port_name]} dbname=shortener user=shortener "
                "connect_timeout=3")

    def kgs_socket(self, i):
        return self.run / f"kgs{i}.sock"

    def start_kgs(self, i):
        sock = self.kgs_socket(i)
        env = _clean_env({"DATABASE_URL": self.database_url(), "KGS_SOCKET": sock,
                          "LOG_LEVEL": "info"})
        self.spawn(f"kgs{i}", [self.bin_dir / "kgs"], env=env)
        wait_for(f"kgs{i} socket", lambda: _kgs_ping(sock), 30)

    def shortener_env(self, i):
        f = self.features or {}
        env = {
            "DATABASE_URL": self.database_url(),
            "REDIS_URL": f"redis://127.0.0.1:{self.ports['redis_master']}",
            "KGS_SOCKET": ",".join(str(self.kgs_socket(k)) for k in range(1, N_KGS + 1))
            if f.get("multi_kgs") else str(self.kgs_socket(1 + (i - 1) % N_KGS)),
            "PORT": self.ports[f"shortener{i}"],
            "LISTEN_ADDRESS": "127.0.0.1",
            "BASE_URL": f"https://localhost:{self.ports['https']}",
            "TRUSTED_PROXIES": PROXY_SOURCE,
            "PER_IP_CONNECTIONS": 0,
            "LOG_LEVEL": "info",
            "VISITS_FLUSH_MS": 500,
        }
        if f.get("read_url"):
            env["DATABASE_READ_URL"] = self.database_url("pg_replica")
        if f.get("sentinels"):
            env["REDIS_SENTINELS"] = ",".join(
                f"127.0.0.1:{self.ports[f'sentinel{k}']}" for k in range(1, N_SENTINELS + 1))
            env["REDIS_MASTER_NAME"] = MASTER_NAME
        env.update(self.extra_shortener_env)
        return _clean_env(env)

    extra_shortener_env = {}

    def start_shortener(self, i, wait=True):
        self.spawn(f"shortener{i}", [self.bin_dir / "shortener"], env=self.shortener_env(i))
        if wait:
            url = f"http://127.0.0.1:{self.ports[f'shortener{i}']}/readyz"

            def ready():
                if not self.alive(f"shortener{i}"):
                    raise RuntimeError(f"shortener{i} exited:\n{self.log_tail(f'shortener{i}')}")
                return http_status(url) == 200
            wait_for(f"shortener{i} /readyz", ready, 60)

    def ctl(self, *args):
        env = _clean_env({"DATABASE_URL": self.database_url(),
                          "REDIS_URL": f"redis://127.0.0.1:{self.ports['redis_master']}",
                          "SHORTENER_ENV_FILE": str(self.root / "no-env-file")})
        return subprocess.run([str(self.bin_dir / "shortenerctl"), *map(str, args)],
                              capture_output=True, text=True, timeout=120, env=env)

    # ------------------------------------------------------------------ the whole cluster

    def up(self):
        for d in (self.root, self.run, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        if IS_ROOT and subprocess.run(as_pg(["test", "-x", str(self.root)])).returncode != 0:
            raise RuntimeError(f"the postgres user cannot reach {self.root}")
        if self.features is None:
            self.features = self.detect_features()
        self.save_state()
        self.make_cert()
        if not self.alive("etcd"):
            self.start_etcd()
        restart = (self.pg_node_dir(2) / "data" / "PG_VERSION").exists()
        for i in (1, 2):
            if not self.alive(f"patroni{i}"):
                self.start_patroni(i)
            # The first time, node 1 makes the database and node 2 copies it; after that
            # both start at once and elect whichever is further ahead.
            if i == 1 and not restart:
                wait_for("a PostgreSQL primary", self.primary_node, 120, 0.3)
        wait_for("a PostgreSQL primary", self.primary_node, 120, 0.3)
        wait_for("the synchronous standby", lambda: any(
            self.rest(i, "/sync") == 200 for i in (1, 2)), 120, 0.3)
        self.prepare_database()
        redis_names = ["redis1", "redis2"] + [f"sentinel{i}" for i in range(1, N_SENTINELS + 1)]
        if not any(self.alive(n) for n in redis_names):
            # Redis keeps nothing on disk here: a cold start begins again from redis1 as
            # master, not from whatever a Sentinel last wrote into its file.
            for n in redis_names:
                (self.root / n / ("sentinel.conf" if n.startswith("sentinel") else
                                  "redis.conf")).unlink(missing_ok=True)
        for i in (1, 2):
            if not self.alive(f"redis{i}"):
                self.start_redis(i)
        for i in range(1, N_SENTINELS + 1):
            if not self.alive(f"sentinel{i}"):
                self.start_sentinel(i)
        if not self.alive("haproxy"):
            self.start_haproxy()
        wait_for("HAProxy's primary backend", lambda: any(
            s.startswith("UP") for s in self.server_states("pg_primary").values()), 30)
        res = self.ctl("migrate")
        if res.returncode != 0:
            raise RuntimeError(f"shortenerctl migrate: {res.stdout}{res.stderr}")
        for i in range(1, N_KGS + 1):
            if not self.alive(f"kgs{i}"):
                self.start_kgs(i)
        for i in range(1, N_SHORTENERS + 1):
            if not self.alive(f"shortener{i}"):
                self.start_shortener(i)
        self.wait_pool_up()

    def wait_pool_up(self, timeout=30):
        def all_up():
            st = self.server_states("shorteners")
            return all(st.get(f"s{i}") == "UP" for i in range(1, N_SHORTENERS + 1))
        wait_for("every shortener UP in HAProxy", all_up, timeout)

    def down(self):
        """Stops everything with a pid file, then any PostgreSQL left (Patroni killed -9
        leaves its postmaster running)."""
        # The standby stops before the primary, so that no switchover happens on the way
        # down and the primary stays the node that is furthest ahead.
        primary = self.primary_node() if self.alive("etcd") else None
        nodes = ["patroni2", "patroni1"] if primary == 1 else ["patroni1", "patroni2"]
        order = [f"shortener{i}" for i in range(1, N_SHORTENERS + 1)] + \
            [f"kgs{i}" for i in range(1, N_KGS + 1)] + ["haproxy"] + \
            [f"sentinel{i}" for i in range(1, N_SENTINELS + 1)] + ["redis1", "redis2"] + \
            nodes + ["etcd"]
        known = set(order)
        if self.run.exists():
            order += sorted(p.stem for p in self.run.glob("*.pid") if p.stem not in known)
        for name in order:
            self.stop(name, timeout=30 if name.startswith("patroni") else 10)
            try:
                self.pidfile(name).unlink()
            except OSError:
                pass
        for i in (1, 2):
            _kill_postmaster(self.pg_node_dir(i) / "data")

    def status(self):
        names = sorted(p.stem for p in self.run.glob("*.pid")) if self.run.exists() else []
        return {n: self.pid(n) for n in names}


# ---------------------------------------------------------------------------- helpers


def _clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "KGS_", "REDIS_", "DATABASE_"))
           and k not in ("PORT", "BASE_URL", "LISTEN_ADDRESS", "TRUSTED_PROXIES",
                         "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
    env["LC_ALL"] = "C"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid, popen, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            return True
        if not _alive(pid):
            if popen is not None:
                popen.poll()
            return True
        time.sleep(0.05)
    return False


def _children(pid):
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d.name))
    return out


def _kill_postmaster(data):
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if not _alive(pid):
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"postgres" not in f.read():
                return
    except OSError:
        return
    kids = _children(pid)
    for p in [pid, *kids]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait_gone(pid, None, 10)


def _kgs_ping(sock):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(str(sock))
        s.sendall(b"PING\n")
        return s.recv(64) == b"PONG\n"


def create_and_redirect(base, key, verify=True):
    """A create and its redirect through base; returns the short key or raises."""
    import requests
    s = requests.Session()
    s.trust_env = False
    url = f"https://example.com/cluster-check/{time.time_ns()}"
    r = s.post(base + "/api/v1/urls", json={"url": url},
               headers={"Authorization": f"Bearer {key}"}, timeout=10, verify=verify)
    if r.status_code != 201:
        raise RuntimeError(f"create through HAProxy: {r.status_code} {r.text}")
    k = r.json()["key"]
    r = s.get(f"{base}/{k}", allow_redirects=False, timeout=10, verify=verify)
    if r.status_code not in (301, 302, 307, 308) or r.headers.get("Location") != url:
        raise RuntimeError(f"redirect through HAProxy: {r.status_code} {r.headers}")
    return k


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    root = Path(os.environ.get("CLUSTER_DIR") or REPO / "var" / "cluster")
    c = Cluster(root)
    if cmd == "up":
        try:
            c.up()
            keyfile = c.root / "dev-api-key"
            if not keyfile.exists() or not keyfile.read_text().strip():
                res = c.ctl("apikey", "create", "development")
                if res.returncode != 0:
                    raise RuntimeError(f"apikey create: {res.stdout}{res.stderr}")
                keyfile.write_text(res.stdout.strip().splitlines()[-1] + "\n")
                os.chmod(keyfile, 0o600)
            key = keyfile.read_text().strip()
            http = f"http://127.0.0.1:{c.ports['http']}"
            https = f"https://localhost:{c.ports['https']}"
            create_and_redirect(http, key)
            create_and_redirect(https, key, verify=str(c.cert))
        except Exception as e:  # noqa: BLE001 - reported, and the exit status says it
            log(f"failed: {e}")
            log(f"logs are in {c.logs}; `make cluster-down` stops what started")
            return 1
        f = c.features
        log(f"HAProxy: {http} and {https} (certificate {c.cert})")
        log(f"HAProxy stats: http://127.0.0.1:{c.ports['stats']}/stats")
        log(f"PostgreSQL primary: host=127.0.0.1 port={c.ports['pg_primary']} "
            f"dbname=shortener user=shortener (replica: port {c.ports['pg_replica']})")
        if not all(f.values()):
            log("this shortener lacks " + ", ".join(k for k, v in f.items() if not v)
                + ": configured without it")
        log(f"development API key: {key}")
        print(f"Try:\n  curl --cacert {c.cert} -H \"Authorization: Bearer {key}\" "
              f"-d url=https://example.com {https}/api/v1/urls")
        return 0
    if cmd == "down":
        c.down()
        log("stopped")
        return 0
    if cmd == "status":
        for name, pid in c.status().items():
            print(f"{name}\t{pid or 'not running'}")
        return 0
    print("usage: cluster.py up|down|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
