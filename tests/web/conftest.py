"""Fixtures of the browser tests: the real stack (tests/integration/stack.py), an API key, a
target page on loopback for short links to land on, and run_flow(), which runs one flow of
flows.mjs (Node, playwright-core driving Debian's chromium) and fails with its output."""

import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import stack as stk  # noqa: E402

OUT = pathlib.Path(os.environ.get("WEB_TEST_OUT") or REPO / "build" / "web-tests")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# A bound on a hung browser, not a timing check: a flow takes about a minute on an idle
# machine and several when the two CPUs are shared with other test runs.
FLOW_TIMEOUT = 900


def pytest_configure(config):
    missing = [p for p in ("shortener", "kgs", "shortenerctl") if not (stk.BIN_DIR / p).exists()]
    if missing:
        raise pytest.UsageError(f"missing programs in {stk.BIN_DIR}: {', '.join(missing)}")
    if not (REPO / "node_modules" / "playwright-core").exists():
        raise pytest.UsageError("node_modules/playwright-core is missing: npm ci --ignore-scripts")
    if not pathlib.Path(CHROMIUM).exists():
        raise pytest.UsageError(f"{CHROMIUM} is missing (Debian package chromium)")
    OUT.mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _no_crashes():
    yield
    problems = [p for st in stk.live_stacks() for p in st.problems()]
    if problems:
        pytest.fail("server processes failed:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def stack():
    with stk.running_stack("web") as st:
        yield st


@pytest.fixture(scope="session")
def server(stack):
    return stack.server


@pytest.fixture(scope="session")
def anon_server(stack):
    """A second shortener on the same stack that lets anyone create links."""
    return stack.start_shortener(ALLOW_ANONYMOUS=1)


@pytest.fixture(scope="session")
def api_key(stack):
    return stack.create_apikey("web-key")[0]


@pytest.fixture
def client(server, api_key):
    return stk.Client(server, api_key)


class _Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server name
        body = (f"<!doctype html><html lang=en><title>Target reached</title>"
                f"<h1 id=landed>Target reached</h1><p id=path>{self.path}</p>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def target():
    """Base URL of a tiny page on loopback that short links lead to."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def run_flow(name, **config):
    """Runs flows.mjs NAME with config (JSON); returns what the flow printed as JSON on its
    last line. Fails the test with the flow's output when it fails."""
    config.setdefault("out", str(OUT))
    config.setdefault("chromium", CHROMIUM)
    env = dict(os.environ, FLOW_CONFIG=json.dumps(config), NODE_PATH=str(REPO / "node_modules"))
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    res = subprocess.run(["node", str(HERE / "flows.mjs"), name], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=FLOW_TIMEOUT)
    if res.returncode != 0:
        pytest.fail(f"flow {name} failed ({res.returncode}):\n{res.stdout[-6000:]}\n"
                    f"{res.stderr[-6000:]}", pytrace=False)
    lines = [l for l in res.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {}
