"""Client load through HAProxy for the fault tests: threads that redirect and create, each
outcome recorded with its time, so a test can say exactly what clients saw."""

import json
import os
import random
import sys
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("CLUSTER_RESULTS") or REPO / "build" / "cluster-results.json")

# A client gives up after this long: longer is a hang, a failure like any other.
CLIENT_TIMEOUT = 8

REDIRECTS = (301, 302, 307, 308)


def session():
    s = requests.Session()
    s.trust_env = False
    return s


class Outcome:
    __slots__ = ("kind", "start", "end", "status", "retry_after", "error", "key")

    def __init__(self, kind, start, end, status=None, retry_after=None, error=None, key=None):
        self.kind, self.start, self.end = kind, start, end
        self.status, self.retry_after, self.error, self.key = status, retry_after, error, key

    def __repr__(self):
        return (f"<{self.kind} {self.key} at {self.start:.2f}s+{self.end - self.start:.2f}s: "
                f"{self.status or self.error}>")


class Load:
    """redirect_threads GET known links (each must redirect to its URL); create_threads POST
    new links (201 recorded in created, 503 must carry Retry-After). All through base."""

    def __init__(self, base, api_key, links, redirect_threads=3, create_threads=0,
                 verify=True):
        self.base, self.api_key, self.links = base, api_key, dict(links)
        self.verify = verify
        self.n_redirect, self.n_create = redirect_threads, create_threads
        self.outcomes = []
        self.created = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.t0 = None

    def now(self):
        return time.monotonic() - self.t0

    def __enter__(self):
        self.t0 = time.monotonic()
        for i in range(self.n_redirect):
            self.threads.append(threading.Thread(target=self._redirects, args=(i,), daemon=True))
        for i in range(self.n_create):
            self.threads.append(threading.Thread(target=self._creates, args=(i,), daemon=True))
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=CLIENT_TIMEOUT + 5)

    def _add(self, o):
        with self.lock:
            self.outcomes.append(o)

    def _redirects(self, n):
        s = session()
        keys = list(self.links)
        rnd = random.Random(n)
        while not self.stopping.is_set():
            key = rnd.choice(keys)
            start = self.now()
            try:
                r = s.get(f"{self.base}/{key}", allow_redirects=False, timeout=CLIENT_TIMEOUT,
                          verify=self.verify)
                ok = r.status_code in REDIRECTS and r.headers.get("Location") == self.links[key]
                self._add(Outcome("redirect", start, self.now(), r.status_code,
                                  error=None if ok else f"{r.status_code} {r.text[:200]}",
                                  key=key))
            except requests.RequestException as e:
                self._add(Outcome("redirect", start, self.now(), error=repr(e), key=key))
                s = session()

    def _creates(self, n):
        s = session()
        i = 0
        while not self.stopping.is_set():
            i += 1
            url = f"https://example.com/fault/{n}/{i}/{time.time_ns()}"
            start = self.now()
            try:
                r = s.post(self.base + "/api/v1/urls", json={"url": url}, timeout=CLIENT_TIMEOUT,
                           headers={"Authorization": f"Bearer {self.api_key}"}, verify=self.verify)
            except requests.RequestException as e:
                self._add(Outcome("create", start, self.now(), error=repr(e)))
                s = session()
                continue
            o = Outcome("create", start, self.now(), r.status_code,
                        r.headers.get("Retry-After"))
            if r.status_code == 201:
                o.key = r.json()["key"]
                with self.lock:
                    self.created[o.key] = url
            elif not (r.status_code == 503 and o.retry_after):
                o.error = f"{r.status_code} {r.text[:200]}"
            else:
                # A 503 with Retry-After is the answer we want while the database fails over;
                # a client waits a little before trying again.
                time.sleep(0.1)
            self._add(o)

    # ------------------------------------------------------------ what clients saw

    def of(self, kind):
        with self.lock:
            return [o for o in self.outcomes if o.kind == kind]

    def failures(self, kind, allow_503=False):
        return [o for o in self.of(kind) if o.error or (o.status == 503 and not allow_503)]

    def count(self, kind, status):
        return sum(1 for o in self.of(kind) if o.status == status)

    def longest_gap(self, kind="create", status=201, after=0.0):
        """The longest stretch (seconds) after `after` with no `status` answer completing."""
        ends = sorted(o.end for o in self.of(kind) if o.status == status)
        last, gap = after, 0.0
        for e in ends:
            if e < after:
                continue
            gap = max(gap, e - last)
            last = e
        return round(gap, 2)

    def max_latency(self, kind):
        return round(max((o.end - o.start for o in self.of(kind)), default=0.0), 2)

    def summary(self, kind):
        counts = {}
        for o in self.of(kind):
            k = str(o.status) if o.status is not None else "error"
            counts[k] = counts.get(k, 0) + 1
        return counts


def make_links(base, api_key, n, verify=True, tag="warm"):
    """n links, each redirected once so that it is cached."""
    s = session()
    links = {}
    for i in range(n):
        url = f"https://example.com/{tag}/{i}/{time.time_ns()}"
        r = s.post(base + "/api/v1/urls", json={"url": url}, timeout=CLIENT_TIMEOUT,
                   headers={"Authorization": f"Bearer {api_key}"}, verify=verify)
        assert r.status_code == 201, f"create: {r.status_code} {r.text}"
        links[r.json()["key"]] = url
    for key in links:
        r = s.get(f"{base}/{key}", allow_redirects=False, timeout=CLIENT_TIMEOUT, verify=verify)
        assert r.status_code in REDIRECTS, f"warm {key}: {r.status_code} {r.text}"
    return links


def assert_all_redirect(base, links, verify=True):
    """Every link that ever got 201 redirects to its URL."""
    s = session()
    bad = []
    for key, url in links.items():
        r = s.get(f"{base}/{key}", allow_redirects=False, timeout=CLIENT_TIMEOUT, verify=verify)
        if r.status_code not in REDIRECTS or r.headers.get("Location") != url:
            bad.append((key, url, r.status_code, r.headers.get("Location")))
    assert not bad, f"{len(bad)} of {len(links)} links that got 201 do not redirect: {bad[:10]}"


def record(test, **numbers):
    """Prints what a test measured and keeps it in RESULTS (JSON, one object per test) for
    the README and the issue's closing note."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        data = {}
    data[test] = {**numbers, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"\n{test}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()), file=sys.stderr)
