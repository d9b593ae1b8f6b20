"""What operators watch: /metrics passes promtool check metrics, carries request-duration
histograms by kind (redirects by tier), and deploy/prometheus/alerts.yml passes promtool check
rules and its unit tests, naming only metrics /metrics really has."""

import re
import subprocess
from pathlib import Path

import pytest

import stack as stk

RULES = stk.REPO / "deploy" / "prometheus"
HIST = "shortener_request_duration_seconds"


def metrics_text(server):
    r = stk.session().get(server.url("/metrics"), timeout=stk.HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.text


def histogram(text):
    """{kind: {"buckets": [(le, n)...], "count": n, "sum": s}} from the exposition."""
    out = {}
    for line in text.splitlines():
        m = re.match(HIST + r'_(bucket|count|sum)\{kind="([a-z_]+)"(?:,le="([^"]+)")?\} (\S+)$',
                     line)
        if not m:
            continue
        part, kind, le, value = m.groups()
        h = out.setdefault(kind, {"buckets": []})
        if part == "bucket":
            h["buckets"].append((float(le), float(value)))
        else:
            h[part] = float(value)
    return out


@pytest.fixture(scope="module")
def mserver(extra_server):
    return extra_server(HOT_CACHE_MAX_AGE=3600, REQUEST_TIMEOUT=12)


def test_histograms_by_kind(mserver, api_key):
    c = stk.Client(mserver, api_key)
    before = histogram(metrics_text(mserver))
    key = c.create_ok("https://example.com/timed")["key"]  # create
    assert c.read(key).status_code == 200  # read
    assert c.request("GET", "/api/v1/urls").status_code == 200  # list
    for _ in range(3):  # the first from PostgreSQL or Redis, then from memory
        assert c.resolve(key).status_code == 301
    assert c.resolve("nosuchkey1").status_code == 404  # a miss: PostgreSQL
    assert c.resolve("nosuchkey1").status_code == 404  # then Redis's negative entry
    assert c.request("GET", "/healthz").status_code == 200  # other
    after = histogram(metrics_text(mserver))
    assert set(after) == {"redirect_hot", "redirect_redis", "redirect_db", "create", "read",
                          "list", "stats", "live", "other"}

    def grew(kind):
        return after[kind]["count"] - before.get(kind, {}).get("count", 0)
    assert grew("create") == 1 and grew("read") == 1 and grew("list") == 1
    assert grew("redirect_hot") >= 1 and grew("redirect_redis") >= 1 and grew("redirect_db") >= 1
    assert grew("redirect_hot") + grew("redirect_redis") + grew("redirect_db") == 5
    assert grew("other") >= 1
    for kind, h in after.items():
        les = [le for le, _ in h["buckets"]]
        assert les[0] == 0.00005 and les[-2] == 5 and les[-1] == float("inf"), (kind, les)
        counts = [n for _, n in h["buckets"]]
        assert counts == sorted(counts), (kind, counts)  # cumulative
        assert counts[-1] == h["count"] and h["sum"] >= 0
    # a redirect from memory is fast enough to land in a bucket below 5 s
    assert after["redirect_hot"]["buckets"][-2][1] >= 1


def test_promtool_check_metrics(mserver, api_key):
    stk.Client(mserver, api_key).create_ok("https://example.com/promtool")
    text = metrics_text(mserver)
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_alert_rules(mserver):
    p = subprocess.run(["promtool", "check", "rules", str(RULES / "alerts.yml")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=RULES,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # Every shortener_* metric the rules use is one /metrics has.
    exposed = set(re.findall(r"^# TYPE (\S+) ", metrics_text(mserver), re.M))
    names = set(re.findall(r"\b(shortener_[a-z_]+)", (RULES / "alerts.yml").read_text()))
    for n in names:
        base = re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith(HIST) else n
        assert base in exposed, f"alerts.yml uses {n}, which /metrics does not expose"
