"""Type=notify: shortener and kgs tell systemd READY=1 once they serve, and STOPPING=1 when a
stop signal arrives (sd_notify through NOTIFY_SOCKET, a Unix datagram socket read here)."""

import socket

import pytest

import stack as stk


@pytest.fixture(scope="module")
def st():
    with stk.running_stack("sdnotify") as s:
        yield s


class NotifySocket:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(stk.START_TIMEOUT)

    def wait_for(self, word):
        """Messages up to and including the first that has word as one of its lines."""
        got = []
        while True:
            msg = self.sock.recv(4096).decode()
            got.append(msg)
            if word in msg.split("\n"):
                return got

    def close(self):
        self.sock.close()


def test_shortener_says_ready_once_it_serves_and_stopping_when_told(st):
    ns = NotifySocket(st.root / "notify-shortener")
    try:
        sh = st.start_shortener(wait_ready=False, NOTIFY_SOCKET=ns.path)
        msgs = ns.wait_for("READY=1")
        # Ready means answering: no request may be refused after READY=1.
        r = stk.session().get(sh.url("/healthz"), timeout=stk.HTTP_TIMEOUT)
        assert r.status_code == 200
        assert f"MAINPID={sh.proc.pid}" in msgs[-1].split("\n"), msgs
        assert sh.stop() is None
        assert "STOPPING=1" in ns.wait_for("STOPPING=1")[-1]
    finally:
        ns.close()


def test_kgs_says_ready_once_it_serves_and_stopping_when_told(st):
    ns = NotifySocket(st.root / "notify-kgs")
    sock = st.root / "kgs2.sock"
    proc = stk.Proc("kgs2", [str(stk.BIN_DIR / "kgs")],
                    stk.base_env({"DATABASE_URL": st.pg.kgs_dsn, "KGS_SOCKET": sock,
                                  "NOTIFY_SOCKET": ns.path}),
                    st.root, st.root / "kgs2.log", checked=True)
    st.procs.append(proc)
    try:
        proc.start()
        msgs = ns.wait_for("READY=1")
        assert f"MAINPID={proc.pid}" in msgs[-1].split("\n"), msgs
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(5)
            c.connect(str(sock))  # listening when it said so
            c.sendall(b"PING\n")
            assert c.recv(16) == b"PONG\n"
        assert proc.stop() is None
        assert "STOPPING=1" in ns.wait_for("STOPPING=1")[-1]
    finally:
        proc.stop()
        ns.close()

