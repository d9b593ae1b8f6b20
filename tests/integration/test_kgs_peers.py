"""kgs checks who connects (SO_PEERCRED): its own uid, root and KGS_ALLOWED_UIDS may take
keys, anyone else who can reach the socket file is refused; a client silent for
KGS_IDLE_TIMEOUT is closed; one uid holds at most KGS_CLIENTS_PER_UID connections. Tests
run as root; other users' clients run under setpriv --reuid=nobody."""

import os
import socket
import subprocess
import time

import pytest

import stack as stk

pytestmark = pytest.mark.skipif(not stk.IS_ROOT, reason="needs root to run a client as nobody")

# Opens N connections to the socket as whoever runs it, sends PING on each and prints each
# reply line, holding them all until its standard input closes.
CLIENT = r"""
import socket, sys
path, n = sys.argv[1], int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(path)
        try:
            s.sendall(b"PING\n")
        except OSError:
            pass  # refused at once: its answer is still there to read
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            line += chunk
        print(line.decode().strip() or "EOF", flush=True)
    except OSError as e:
        print("OSERROR " + type(e).__name__, flush=True)
    held.append(s)
sys.stdin.read()
"""


def as_nobody(path, n=1):
    """Runs CLIENT as nobody; returns (its process, its reply lines)."""
    p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          "/usr/bin/python3", "-c", CLIENT, str(path), str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=stk.base_env())
    lines = [p.stdout.readline().strip() for _ in range(n)]
    return p, lines


def finish(p):
    p.stdin.close()
    p.wait(30)


def ping(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"PING\n")
        return s.recv(64)


@pytest.fixture(scope="module")
def kst():
    with stk.running_stack("kgs-peers", kgs_env={"KGS_IDLE_TIMEOUT": 2}) as st:
        # As if the socket's group or mode let another user reach it: the uid check is what
        # must refuse them.
        os.chmod(st.kgs.sock, 0o666)
        yield st


@pytest.fixture(scope="module")
def second_kgs(kst):
    """Another kgs on the same database that lets nobody in, two connections at most."""
    root = kst.root / "k2"
    root.mkdir()
    os.chmod(root, 0o755)
    k = stk.Kgs(root, kst.pg.dsn, {"KGS_ALLOWED_UIDS": "nobody", "KGS_CLIENTS_PER_UID": 2})
    kst.procs.append(k.proc)
    k.start()
    os.chmod(k.sock, 0o666)
    yield k
    k.stop()


def test_root_is_served(kst):
    assert ping(kst.kgs.sock) == b"PONG\n"


def test_other_uid_refused(kst):
    p, lines = as_nobody(kst.kgs.sock)
    finish(p)
    assert lines[0].startswith("ERR forbidden"), lines
    assert "uid 65534" in kst.kgs.proc.log_text()
    # and the server still gets keys
    c = stk.Client(kst.server, kst.create_apikey()[0])
    assert stk.KEY_RE.match(c.create_ok("https://example.com/kgs-peers")["key"])


def test_allowed_uid_served_and_limited_per_uid(second_kgs):
    p, lines = as_nobody(second_kgs.sock, 3)
    try:
        assert lines[:2] == ["PONG", "PONG"], lines
        assert lines[2].startswith("ERR unavailable"), lines
        # another uid is not held back by nobody's connections
        assert ping(second_kgs.sock) == b"PONG\n"
    finally:
        finish(p)
    # given back once closed
    p, lines = as_nobody(second_kgs.sock, 2)
    finish(p)
    assert lines == ["PONG", "PONG"], lines


def test_bad_allowed_uids_refused_at_start(kst):
    for bad in ("no-such-user-here", "12x", "1,,2"):
        p = subprocess.run([str(stk.BIN_DIR / "kgs")],
                           env=stk.base_env({"DATABASE_URL": kst.pg.dsn,
                                             "KGS_SOCKET": kst.root / "never.sock",
                                             "KGS_ALLOWED_UIDS": bad}),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "KGS_ALLOWED_UIDS" in p.stderr, (bad, p.stderr)


def test_idle_client_closed(kst):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(kst.kgs.sock))
        s.sendall(b"PING\n")
        assert s.recv(64) == b"PONG\n"
        t0 = time.monotonic()
        # silent from now on: kgs closes it (KGS_IDLE_TIMEOUT=2); the recv timeout is 10 s
        assert s.recv(64) == b""
        assert time.monotonic() - t0 < 10


def test_trickling_client_closed(kst):
    # A request line that never ends is no better than silence.
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(kst.kgs.sock))
        closed = False
        for _ in range(40):
            try:
                s.sendall(b"P")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.25)
        assert closed, "a line trickled for 10 s was never cut"


def test_server_survives_idle_drops(kst):
    # The server's kept connection is closed after 2 s of silence; its next refill connects
    # again. Creates that need new keys keep working across several idle periods.
    c = stk.Client(kst.server, kst.create_apikey()[0])
    for _ in range(3):
        assert stk.KEY_RE.match(c.create_ok("https://example.com/idle")["key"])
        time.sleep(3)
    assert c.create_ok("https://example.com/idle-after")["key"]
