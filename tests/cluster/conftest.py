"""One cluster (deploy/cluster/cluster.py) for the whole fault-test session, in a temporary
directory on free ports with short timings. Every test leaves it whole again; the fixture
`whole` checks that before each test and restarts whatever a failed test left dead."""

import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "deploy" / "cluster"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import cluster as cl  # noqa: E402
import stack  # noqa: E402  (free-port leases and temporary directories)

# Short enough for the whole part to fit in minutes, long enough for a busy 2-core machine.
TEST_TIMINGS = {
    "ttl": 6, "loop_wait": 1, "retry_timeout": 2,
    "down_after_ms": 1000, "failover_timeout_ms": 3000,
    "check_ms": 300,
}

SANITIZER_MARKERS = stack.SANITIZER_MARKERS


class ClusterUnderTest(cl.Cluster):
    """The cluster plus what the tests need: an API key, the CA file, instance URLs."""

    def instance_url(self, i):
        return f"http://127.0.0.1:{self.ports[f'shortener{i}']}"

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def https_url(self):
        return f"https://localhost:{self.ports['https']}"

    def unexpected_deaths(self):
        """Our programs (shortener, kgs) that exited without being told to: a crash that
        HAProxy's retries would hide from the clients."""
        out = []
        for name, p in self.history:
            if name.startswith(("shortener", "kgs")) and p.poll() is not None \
                    and p.pid not in self.intended:
                out.append(f"{name} (pid {p.pid}) exited by itself with status {p.returncode}:"
                           f"\n{self.log_tail(name)}")
                self.intended.add(p.pid)  # reported once
        return out

    def problems(self):
        """Sanitizer reports in the logs of our own programs."""
        out = []
        for f in sorted(self.logs.glob("*.log")):
            if not f.name.startswith(("shortener", "kgs")):
                continue
            text = f.read_text(errors="replace")
            for m in SANITIZER_MARKERS:
                if m in text:
                    i = text.index(m)
                    out.append(f"{f.name}: {text[max(0, i - 200):i + 2000]}")
                    break
        return out

    def make_whole(self):
        """Restarts whatever is not running and waits until every part is back in place:
        one primary and a synchronous standby, a Redis master with its replica, every
        shortener UP in HAProxy."""
        if not self.alive("etcd"):
            self.start_etcd()
        for i in (1, 2):
            if not self.alive(f"patroni{i}"):
                cl._kill_postmaster(self.pg_node_dir(i) / "data")
                self.start_patroni(i)
        cl.wait_for("a primary and a synchronous standby", lambda: self.primary_node() and any(
            self.rest(i, "/sync") == 200 for i in (1, 2)), 120, 0.3)
        for i in range(1, cl.N_SENTINELS + 1):
            if not self.alive(f"sentinel{i}"):
                self.start_sentinel(i)
        for i in (1, 2):
            if not self.alive(f"redis{i}"):
                self.start_redis(i)
        cl.wait_for("a Redis master with an attached replica", self.redis_whole, 60, 0.2)
        if not self.alive("haproxy"):
            self.start_haproxy()
        for i in range(1, cl.N_KGS + 1):
            if not self.alive(f"kgs{i}"):
                self.start_kgs(i)
        for i in range(1, cl.N_SHORTENERS + 1):
            if not self.alive(f"shortener{i}"):
                self.start_shortener(i)
        self.wait_pool_up(60)
        cl.wait_for("the PostgreSQL frontends", lambda: any(
            s.startswith("UP") for s in self.server_states("pg_primary").values()), 30)

    def redis_whole(self):
        master = self.sentinel_master()
        if master is None:
            return False
        m = 1 if master == self.ports["redis1"] else 2
        r = 3 - m
        if self.redis_role(m) != "master":
            return False
        info = cl.redis_cmd(self.ports[f"redis{r}"], "INFO", "replication")
        return "role:slave" in info and "master_link_status:up" in info and \
            f"master_port:{master}" in info


@pytest.fixture(scope="session")
def cluster():
    root = stack._make_root()
    leases = {name: stack.PortLease() for name in cl.DEFAULT_PORTS}
    ports = {name: lease.port for name, lease in leases.items()}
    c = ClusterUnderTest(root / "cluster", ports=ports, timings=TEST_TIMINGS,
                    bin_dir=stack.BIN_DIR)
    # Tests look up keys faster than people do; rate limits are tested on their own keys.
    c.extra_shortener_env = {"MISS_RATE": "1000000/s", "NEGATIVE_TTL": 1}
    try:
        c.up()
        res = c.ctl("apikey", "create", "cluster-tests", "--rate", "1000000/s")
        assert res.returncode == 0, res.stdout + res.stderr
        c.api_key = res.stdout.strip().splitlines()[-1]
        print(f"\ncluster features of {c.bin_dir}/shortener: {c.features}", file=sys.stderr)
        yield c
    except BaseException:
        print(_tails(c), file=sys.stderr)
        raise
    finally:
        problems = c.problems()
        c.down()
        for lease in leases.values():
            lease.release()
        if problems:
            keep = Path("/tmp") / f"{root.name}-cluster-logs"
            shutil.copytree(c.logs, keep, dirs_exist_ok=True)
            shutil.rmtree(root, ignore_errors=True)
            pytest.fail("sanitizer reports (logs kept in %s):\n%s" % (keep, "\n".join(problems)))
        shutil.rmtree(root, ignore_errors=True)


def _tails(c):
    out = []
    if c.logs.exists():
        for f in sorted(c.logs.glob("*.log")):
            out.append(f"--- {f.name}\n{c.log_tail(f.stem, 15)}")
    return "\n".join(out)


@pytest.fixture
def whole(cluster, request):
    """The cluster, whole again before the test; its logs shown if the test fails."""
    cluster.make_whole()
    yield cluster
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(_tails(cluster), file=sys.stderr)
    dead = cluster.unexpected_deaths()
    if dead:
        pytest.fail("\n".join(dead))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)

