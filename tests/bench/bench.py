#!/usr/bin/python3
"""`make bench`: the real stack under wrk, side by side with the references it is judged
against, all measured in one run on this machine, on loopback only. See README.md here for
what each row measures.

Settings (environment):
  BENCH_LINKS    links loaded before the redirect rows (default 100000)
  BENCH_SECONDS  length of one measured run (default 10); the warm-up is min(3, this)
  BENCH_RUNS     measured runs per row, the median is reported (default 3)
  BENCH_CONNS    wrk connection counts for the redirect rows (default "64 256")
  BENCH_THREADS  shortener THREADS = nginx workers = ceiling threads (default 2)
  BENCH_ONLY     run only these groups of rows (for working on the bench): reference cached
                 redis-path uncached create kgs cleanup
  SHORTENER_BIN_DIR, BENCH_BIN_DIR  where the programs and ceiling/kgsload are (the Makefile
                 sets both)

`bench.py --compare A.json B.json` prints the req/s of two result files side by side (100k
against 1M links: is the per-request cost flat?).

Every load (wrk, pgbench, kgsload, cleanup) has its own time bound; every process started
here is stopped on the way out, also on Ctrl-C or an error. Targets are reported, never
asserted: the exit status is 0 unless the harness itself failed.
"""

import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import stack as st  # noqa: E402 - needs the path above

BENCH_BIN = Path(os.environ.get("BENCH_BIN_DIR") or REPO / "build" / "release" / "bench")
LINKS = int(os.environ.get("BENCH_LINKS") or 100000)
SECONDS = int(os.environ.get("BENCH_SECONDS") or 10)
RUNS = int(os.environ.get("BENCH_RUNS") or 3)
CONNS = [int(c) for c in (os.environ.get("BENCH_CONNS") or "64 256").split()]
THREADS = int(os.environ.get("BENCH_THREADS") or 2)
WARMUP = min(3, SECONDS)
ONLY = (os.environ.get("BENCH_ONLY") or "").split()
CREATE_CONNS = 64 if 64 in CONNS else CONNS[0]
WRK_THREADS = 2
KGS_BATCH = 1000
KGS_CONNS = 2
CLEANUP_ROWS = 1_000_000
CLEANUP_TIMEOUT = 600

# Distinct, random-looking keys: i -> (i * MULT + OFFSET) mod 62^7 is a bijection because MULT
# is prime to 62, written as 7 base62 digits. Rows n+1.. of the same sequence never collide
# with rows 1..n, which the cleanup row relies on.
KEYSPACE = 62 ** 7
MULT = 2305843009
OFFSET = 1234567890123
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

TARGETS = {
    "cached": "≥ 0.8× nginx; p99 ≤ 2 ms at 64",
    "redis-path": "≥ 0.9× ceiling",
    "uncached": "≥ 0.9× ceiling",
    "create": "≥ 0.8× pgbench",
    "create, no limits": "limiting costs < 10%",
    "cached + cleanup": "(reported)",
    "kgs": "≥ 200,000 keys/s",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- processes


class Extra:
    """A process started here besides the stack's (nginx, ceiling, cleanup), stopped on exit."""

    live = []

    def __init__(self, name, argv, root, env=None):
        self.name = name
        self.log_path = root / f"{name}.log"
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(argv, cwd=root, env=st.base_env(env),
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        Extra.live.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def stop(self, timeout=15):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=30)
        if self in Extra.live:
            Extra.live.remove(self)

    def tail(self, n=20):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @classmethod
    def stop_all(cls):
        for p in list(cls.live):
            try:
                p.stop(timeout=5)
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                log(f"stopping {p.name}: {e!r}")


def wait_http(port, proc, what):
    """Waits until something answers HTTP on 127.0.0.1:port."""
    s = st.session()

    def up():
        if proc.popen.poll() is not None:
            raise st.Fatal(f"{what} exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            s.get(f"http://127.0.0.1:{port}/x", timeout=2, allow_redirects=False)
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False
    st.wait_until(f"{what} to answer", up, st.START_TIMEOUT, fail_fast=False)


def descendants(pid):
    """pid and every process below it (nginx workers)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kb(pids):
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class RssSampler:
    """The largest total RSS of a server (and its children) while a load runs."""

    def __init__(self, pid):
        self.pids = descendants(pid) if pid else []
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pids))
            self._stop.wait(0.1)

    def __enter__(self):
        if self.pids:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.pids:
            self._thread.join()
            self.peak = max(self.peak, rss_kb(self.pids))


# ---------------------------------------------------------------------------- load tools

WRK_LINE = re.compile(r"^BENCH (.*)$", re.M)


def wrk(url, conns, seconds, args):
    """One wrk run; returns its counts and latencies (µs) from the script's done()."""
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-s", str(HERE / "bench.lua"), url, "--", *map(str, args)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                         env=st.base_env(), stdin=subprocess.DEVNULL)
    m = WRK_LINE.search(res.stdout)
    if res.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    r = {k: int(float(v)) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return r


def measure(name, url, conns, args, pid, before_run=None, runs=None):
    """Warm-up, then RUNS measured runs; the median of each figure, the peak RSS."""
    runs = runs or RUNS
    if before_run:
        before_run()
    wrk(url, conns, WARMUP, args)
    results = []
    peak = 0
    for _ in range(runs):
        if before_run:
            before_run()
        with RssSampler(pid) as rss:
            results.append(wrk(url, conns, SECONDS, args))
        peak = max(peak, rss.peak)
    row = summarize(name, conns, results)
    row["rss_mb"] = round(peak / 1024, 1) if peak else None
    log(f"{name:<24} c={conns:<4} {row['rps']:>10.0f} req/s  p50 {row['p50_ms']} ms  "
        f"p99 {row['p99_ms']} ms  errors {row['errors']}")
    return row


def measure_alternating(servers, conns, args):
    """Like measure() for several (name, url, pid) servers at once, their runs interleaved."""
    for _, url, _ in servers:
        wrk(url, conns, WARMUP, args)
    results = {name: [] for name, _, _ in servers}
    peaks = {name: 0 for name, _, _ in servers}
    for _ in range(RUNS):
        for name, url, pid in servers:
            with RssSampler(pid) as rss:
                results[name].append(wrk(url, conns, SECONDS, args))
            peaks[name] = max(peaks[name], rss.peak)
    rows = []
    for name, _, _ in servers:
        row = summarize(name, conns, results[name])
        row["rss_mb"] = round(peaks[name] / 1024, 1)
        log(f"{name:<24} c={conns:<4} {row['rps']:>10.0f} req/s  p50 {row['p50_ms']} ms  "
            f"p99 {row['p99_ms']} ms  errors {row['errors']}")
        rows.append(row)
    return rows


def summarize(name, conns, results):
    med = statistics.median
    return {
        "scenario": name, "conns": conns,
        "rps": round(med(r["rps"] for r in results), 1),
        "p50_ms": round(med(r["p50_us"] for r in results) / 1000, 3),
        "p99_ms": round(med(r["p99_us"] for r in results) / 1000, 3),
        "errors": sum(r["errors"] for r in results),
        "runs": results,
    }


def pgbench(pg, script, clients, seconds):
    argv = [str(st.PG_BIN / "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
            "-T", str(seconds), "-f", str(script), "-h", str(pg.sockdir), "-U", "shortener",
            "shortener"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                         env=st.base_env(), stdin=subprocess.DEVNULL, cwd=pg.root)
    tps = re.search(r"^tps = ([\d.]+)", res.stdout, re.M)
    lat = re.search(r"^latency average = ([\d.]+) ms", res.stdout, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", res.stdout, re.M)
    if res.returncode != 0 or not tps:
        raise RuntimeError(f"pgbench failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return {"rps": float(tps.group(1)), "latency_avg_ms": float(lat.group(1)) if lat else None,
            "failed": int(failed.group(1)) if failed else 0}


def kgsload(sock, seconds):
    argv = [str(BENCH_BIN / "kgsload"), str(sock), str(seconds), str(KGS_CONNS), str(KGS_BATCH)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                         env=st.base_env(), stdin=subprocess.DEVNULL)
    m = re.search(r"keys=(\d+) seconds=([\d.]+) keys_per_s=(\d+) unavailable=(\d+) bad=(\d+)",
                  res.stdout)
    if res.returncode != 0 or not m:
        raise RuntimeError(f"kgsload failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return {"keys": int(m.group(1)), "seconds": float(m.group(2)), "rps": int(m.group(3)),
            "unavailable": int(m.group(4))}


# ---------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self):
        self.rows = []
        self.notes = []
        self.stack = None
        self.keyfile = None
        self.server_help = ""
        # Other work on the machine skews every row: the report shows how busy it was.
        self.loadavg = [round(x, 2) for x in os.getloadavg()]

    # ------------------------------------------------------------ setup

    def start_stack(self):
        self.stack = st.Stack("bench")
        # 1M cached links need more than the test suite's 64 MB of Redis.
        argv = self.stack.redis.proc.argv
        argv[argv.index("--maxmemory") + 1] = "1gb"
        self.stack.start(**self.server_env())
        self.keyfile = self.stack.root / "keys.txt"
        self.server_help = subprocess.run([str(st.BIN_DIR / "shortener"), "--help"],
                                          capture_output=True, text=True, timeout=10).stdout
        self.ctl_help = self.stack.ctl("--help").stdout

    def server_env(self, **extra):
        env = {"THREADS": THREADS, "VISITS_FLUSH_MS": 1000, "NEGATIVE_TTL": 5, "LOG_LEVEL": "warn"}
        env.update(extra)
        return env

    def restart_server(self, **extra):
        if self.stack.server:
            self.stack.server.stop()
        self.stack.server = self.stack.start_shortener(**self.server_env(**extra))
        return self.stack.server

    def psql(self, sql):
        return self.stack.psql(sql)

    def key_sql(self, first, last):
        """The i-th generated key for i in first..last, as a SELECT yielding column k."""
        powers = ",".join(str(62 ** d) for d in range(7))
        return (f"SELECT (SELECT string_agg(substr('{ALPHABET}', "
                f"(((g * {MULT}::bigint + {OFFSET}) % {KEYSPACE}) / "
                f"(ARRAY[{powers}]::bigint[])[d + 1] % 62)::int + 1, 1), '' ORDER BY d) "
                f"FROM generate_series(0, 6) d) AS k FROM generate_series({first}, {last}) g")

    def load_links(self):
        t0 = time.monotonic()
        self.psql(f"INSERT INTO urls (key, url, expires_at) SELECT k, "
                  f"'https://example.com/bench/' || k, now() + interval '365 days' "
                  f"FROM ({self.key_sql(1, LINKS)}) s")
        self.register_keys()
        self.psql("VACUUM ANALYZE urls")
        self.psql("CHECKPOINT")
        res = subprocess.run(["psql", self.stack.pg.dsn, "-AtXq", "-c",
                              "COPY (SELECT key FROM urls) TO STDOUT"],
                             capture_output=True, text=True, timeout=120, env=st.base_env())
        keys = res.stdout.split()
        if res.returncode != 0 or len(keys) != LINKS:
            raise RuntimeError(f"exporting keys: {len(keys)} of {LINKS}: {res.stderr}")
        self.keyfile.write_text("\n".join(keys) + "\n")
        log(f"loaded {LINKS} links in {time.monotonic() - t0:.1f}s")

    def register_keys(self):
        """Where the schema has a registry of used keys (link_keys), the bulk-loaded keys go
        there too, as the server's own inserts would put them."""
        if self.psql("SELECT to_regclass('link_keys') IS NOT NULL") != "t":
            return
        try:
            self.psql("INSERT INTO link_keys (key) SELECT key FROM urls ON CONFLICT DO NOTHING")
        except RuntimeError as e:
            self.notes.append(f"could not register the loaded keys in link_keys: {e}")

    def redis(self, *cmd):
        res = subprocess.run(["redis-cli", "-s", str(self.stack.redis.sock), *cmd],
                             capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"redis-cli {cmd}: {res.stdout}{res.stderr}")
        return res.stdout.strip()

    def flush_redis(self):
        self.redis("FLUSHALL")

    def warm(self, url):
        """Requests every loaded key once, in order, through the server at url; passes of at
        most 30 s until the whole file is covered."""
        t0 = time.monotonic()
        start = 1
        while start <= LINKS:
            r = wrk(url, 64, min(30, max(2, SECONDS)), ["walk", self.keyfile, start, WRK_THREADS])
            if r["errors"] or r["walked_min"] <= 0:
                raise RuntimeError(f"warm-up pass: {r['errors']} errors, "
                                   f"{r['walked_min']} keys per thread: {r}")
            start += WRK_THREADS * r["walked_min"]
            if time.monotonic() - t0 > 600:
                raise RuntimeError("warming the cache took over 10 minutes")
        log(f"requested all {LINKS} keys once in {time.monotonic() - t0:.1f}s")

    def supports(self, setting):
        return re.search(rf"\b{setting}\b", self.server_help) is not None

    # ------------------------------------------------------------ references

    def start_nginx(self):
        root = self.stack.root / "nginx"
        root.mkdir(exist_ok=True)
        lease = st.PortLease()
        # keepalive_requests: nginx closes a connection after 1000 requests by default and
        # shortener never does; without this nginx pays for reconnects the others do not.
        conf = root / "nginx.conf"
        conf.write_text(f"""
worker_processes {THREADS};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{lease.port};
        location / {{ return 301 https://example.com/; }}
    }}
}}
""")
        lease.release()
        proc = Extra("nginx", ["nginx", "-p", str(root), "-e", str(root / "error.log"),
                               "-c", str(conf)], self.stack.root)
        wait_http(lease.port, proc, "nginx")
        return proc, f"http://127.0.0.1:{lease.port}"

    def start_ceiling(self, mode, ttl=None):
        lease = st.PortLease()
        argv = [str(BENCH_BIN / "ceiling"), mode, str(lease.port), str(THREADS)]
        if mode != "const":
            argv += [self.stack.pg.dsn, self.stack.redis.url]
        if ttl:
            argv.append(str(ttl))
        lease.release()
        proc = Extra(f"ceiling-{mode}", argv, self.stack.root)
        wait_http(lease.port, proc, f"ceiling {mode}")
        return proc, f"http://127.0.0.1:{lease.port}"

    # ------------------------------------------------------------ rows

    def add(self, row, ref=None, target=None, note=None):
        row["reference"] = ref["scenario"] if ref else None
        row["ratio"] = round(row["rps"] / ref["rps"], 3) if ref and ref.get("rps") else None
        row["target"] = target
        if note:
            row["note"] = note
        self.rows.append(row)
        return row

    def find(self, scenario, conns):
        for r in self.rows:
            if r["scenario"] == scenario and r["conns"] == conns and r.get("rps"):
                return r
        return None

    def skip(self, scenario, conns, why):
        log(f"{scenario}: skipped: {why}")
        self.rows.append({"scenario": scenario, "conns": conns, "rps": None, "skipped": why})

    def run(self):
        self.start_stack()
        self.load_links()
        redirect = ["random", self.keyfile]
        steps = {"reference": self.reference_rows, "cached": self.cached_rows,
                 "redis-path": self.redis_path_rows, "uncached": self.uncached_rows,
                 "create": self.create_rows, "kgs": self.kgs_row, "cleanup": self.cleanup_row}
        for name, step in steps.items():
            if ONLY and name not in ONLY:
                continue
            try:
                step(redirect)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # noqa: BLE001 - one broken row must not lose the others
                log(f"{step.__name__} failed: {e}")
                self.notes.append(f"{step.__name__} failed: {e}")
            finally:
                Extra.stop_all()

    def reference_rows(self, redirect):
        nginx, url = self.start_nginx()
        for c in CONNS:
            self.add(measure("nginx return 301", url, c, redirect, nginx.pid))
        nginx.stop()
        ceiling, url = self.start_ceiling("const")
        for c in CONNS:
            self.add(measure("ceiling const", url, c, redirect, ceiling.pid),
                     self.find("nginx return 301", c))
        ceiling.stop()

    def cached_rows(self, redirect):
        srv = self.restart_server()
        self.flush_redis()
        self.warm(srv.base_url)
        for c in CONNS:
            self.add(measure("cached", srv.base_url, c, redirect, srv.proc.pid),
                     self.find("nginx return 301", c), TARGETS["cached"])
        # Every entry is in Redis now: the ceiling's single GET finds it.
        ceiling, url = self.start_ceiling("redis")
        for c in CONNS:
            self.add(measure("ceiling redis", url, c, redirect, ceiling.pid),
                     self.find("nginx return 301", c))
        ceiling.stop()

    def redis_path_rows(self, redirect):
        name = "redis-path"
        note = None
        if not self.supports("HOT_CACHE_ENTRIES"):
            name = "redis-path (no hot tier)"
            note = ("this build has no in-process cache (no HOT_CACHE_ENTRIES): every cached "
                    "redirect is a Redis GET, so this row repeats 'cached'")
        srv = self.restart_server(HOT_CACHE_ENTRIES=0)
        for c in CONNS:
            self.add(measure(name, srv.base_url, c, redirect, srv.proc.pid),
                     self.find("ceiling redis", c), TARGETS["redis-path"], note)

    def uncached_rows(self, redirect):
        # Redis is flushed before every run and entries live 1 s, so nearly every request
        # misses Redis and reads PostgreSQL, on both servers.
        self.stack.server.stop()
        ceiling, url = self.start_ceiling("chain", ttl=1)
        for c in CONNS:
            self.add(measure("ceiling chain", url, c, redirect, ceiling.pid,
                             before_run=self.flush_redis), self.find("nginx return 301", c))
        ceiling.stop()
        srv = self.restart_server(HOT_CACHE_ENTRIES=0, CACHE_TTL=1)
        for c in CONNS:
            self.add(measure("uncached", srv.base_url, c, redirect, srv.proc.pid,
                             before_run=self.flush_redis),
                     self.find("ceiling chain", c), TARGETS["uncached"])

    def create_rows(self, redirect):
        self.psql("CREATE TABLE IF NOT EXISTS bench_insert (LIKE urls INCLUDING ALL)")
        script = self.stack.root / "insert.sql"
        script.write_text(
            "\\set r random(1, 1000000000000)\n"
            "INSERT INTO bench_insert (key, url, expires_at) VALUES "
            "(substr(md5(:r::text || random()::text), 1, 12), "
            "'https://example.com/bench/' || :r, now() + interval '365 days') "
            "ON CONFLICT (key) DO NOTHING;\n")
        pgbench(self.stack.pg, script, 8, WARMUP)
        runs = [pgbench(self.stack.pg, script, 8, SECONDS) for _ in range(RUNS)]
        ref = {"scenario": "pgbench INSERT (8 clients)", "conns": 8,
               "rps": round(statistics.median(r["rps"] for r in runs), 1),
               "p50_ms": None, "p99_ms": None, "errors": sum(r["failed"] for r in runs),
               "latency_avg_ms": statistics.median(r["latency_avg_ms"] or 0 for r in runs),
               "runs": runs, "rss_mb": None}
        self.add(ref)
        log(f"pgbench INSERT: {ref['rps']:.0f} tps, latency avg {ref['latency_avg_ms']} ms")
        sync = self.psql("SHOW synchronous_commit")
        if sync != "on":
            self.notes.append(f"synchronous_commit is {sync}, not on")

        key, _ = self.stack.create_apikey(rate="1000000/s")
        args = ["create", "-", key]
        srv = self.restart_server()
        if not self.supports("RATE_LIMITS"):
            self.add(measure("create", srv.base_url, CREATE_CONNS, args, srv.proc.pid), ref,
                     TARGETS["create"])
            self.skip("create, no limits", CREATE_CONNS,
                      "this build has no RATE_LIMITS setting: cost of limiting not measured")
            return
        # Both servers run side by side and their runs alternate, so drift in what else the
        # machine does falls on both alike: the difference sought is under 10%.
        free = self.stack.start_shortener(**self.server_env(RATE_LIMITS=0))
        limited, unlimited = measure_alternating(
            [("create", srv.base_url, srv.proc.pid),
             ("create, no limits", free.base_url, free.proc.pid)], CREATE_CONNS, args)
        self.add(limited, ref, TARGETS["create"])
        self.add(unlimited, ref, TARGETS["create, no limits"])
        unlimited["limiting_cost_pct"] = round(100 * (1 - limited["rps"] / unlimited["rps"]), 1)
        free.stop()

    def kgs_row(self, redirect):
        kgsload(self.stack.kgs.sock, WARMUP)
        pid = self.stack.kgs.proc.pid
        runs = []
        peak = 0
        for _ in range(RUNS):
            with RssSampler(pid) as rss:
                runs.append(kgsload(self.stack.kgs.sock, SECONDS))
            peak = max(peak, rss.peak)
        row = {"scenario": f"kgs TAKE {KGS_BATCH}", "conns": KGS_CONNS,
               "rps": statistics.median(r["rps"] for r in runs), "p50_ms": None, "p99_ms": None,
               "errors": 0, "unavailable": sum(r["unavailable"] for r in runs), "runs": runs,
               "rss_mb": round(peak / 1024, 1)}
        self.add(row, target=TARGETS["kgs"])
        log(f"kgs: {row['rps']} keys/s ({row['unavailable']} 'unavailable' replies)")

    def cleanup_row(self, redirect):
        name = "cached + cleanup"
        conns = CONNS[0]
        if not re.search(r"^\s*cleanup\b", self.ctl_help, re.M):
            self.skip(name, conns, "this build has no 'shortenerctl cleanup'")
            return
        t0 = time.monotonic()
        self.psql(f"INSERT INTO urls (key, url, expires_at) SELECT k, "
                  f"'https://example.com/expired/' || k, now() - interval '1 day' "
                  f"FROM ({self.key_sql(LINKS + 1, LINKS + CLEANUP_ROWS)}) s "
                  f"ON CONFLICT DO NOTHING")
        self.register_keys()
        self.psql("VACUUM ANALYZE urls")
        log(f"inserted {CLEANUP_ROWS} expired links in {time.monotonic() - t0:.1f}s")
        srv = self.restart_server()
        self.flush_redis()
        self.warm(srv.base_url)
        base = self.find("cached", conns)
        env = {"DATABASE_URL": self.stack.pg.dsn, "REDIS_URL": self.stack.redis.url,
               "SHORTENER_ENV_FILE": self.stack.root / "no-such-env-file"}
        cleanup = Extra("cleanup", [str(st.BIN_DIR / "shortenerctl"), "cleanup"], self.stack.root,
                        env)
        t0 = time.monotonic()
        results = []
        peak = 0
        # Runs back to back while cleanup lasts (at least one, at most RUNS).
        while len(results) < RUNS and (not results or cleanup.popen.poll() is None):
            with RssSampler(srv.proc.pid) as rss:
                results.append(wrk(srv.base_url, conns, SECONDS, redirect))
            peak = max(peak, rss.peak)
        try:
            rc = cleanup.popen.wait(timeout=CLEANUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        cleanup.stop()
        left = int(self.psql("SELECT count(*) FROM urls WHERE expires_at <= now()"))
        row = summarize(name, conns, results)
        row["rss_mb"] = round(peak / 1024, 1)
        note = (f"cleanup exit {rc}, took {took:.1f}s, {left} expired rows left; "
                f"{len(results)} run(s) of {SECONDS}s during it; it said: "
                f"{cleanup.tail(1 if rc == 0 else 5).strip()}")
        self.add(row, base, TARGETS[name], note)
        row["cleanup_seconds"] = round(took, 1)
        log(f"{name}: {row['rps']:.0f} req/s; {note}")

    # ------------------------------------------------------------ report

    def report(self, started):
        machine = {"nproc": os.cpu_count(), "kernel": platform.release(),
                   "machine": platform.machine(), "loadavg_at_start": self.loadavg,
                   "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
        try:
            machine["cpu"] = next(line.split(":", 1)[1].strip() for line in
                                  open("/proc/cpuinfo") if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip()
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        doc = {"started": started, "git": {"commit": commit, "describe": git},
               "machine": machine,
               "settings": {"links": LINKS, "seconds": SECONDS, "runs": RUNS, "warmup": WARMUP,
                            "conns": CONNS, "threads": THREADS, "wrk_threads": WRK_THREADS,
                            "kgs_batch": KGS_BATCH, "kgs_conns": KGS_CONNS},
               "rows": self.rows, "notes": self.notes}
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        path = out / f"bench-{started.replace(':', '').replace('-', '')}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")

        head = ["scenario", "conns", "req/s", "p50 ms", "p99 ms", "errors", "RSS MB",
                "reference", "ratio", "target"]
        lines = [head]
        for r in self.rows:
            if r.get("skipped"):
                lines.append([r["scenario"], str(r["conns"]), "skipped", "", "", "", "", "", "",
                              r["skipped"]])
                continue
            unit = " keys/s" if r["scenario"].startswith("kgs") else ""
            lines.append([
                r["scenario"], str(r["conns"]), f"{r['rps']:,.0f}{unit}",
                fmt(r.get("p50_ms")), fmt(r.get("p99_ms")), str(r.get("errors", "")),
                fmt(r.get("rss_mb"), 1), r.get("reference") or "",
                f"{r['ratio']:.2f}×" if r.get("ratio") else "", r.get("target") or ""])
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        print(f"\nmake bench: {LINKS:,} links, {RUNS} × {SECONDS}s runs (median), "
              f"THREADS={THREADS}, {machine['nproc']} CPUs, {machine['kernel']}, {git}; "
              f"load average {self.loadavg[0]} at start, {machine['loadavg_at_end'][0]} at end")
        for i, line in enumerate(lines):
            print("  ".join(c.rjust(w) if 1 <= j <= 6 or j == 8 else c.ljust(w)
                            for j, (c, w) in enumerate(zip(line, widths))).rstrip())
            if i == 0:
                print("  ".join("-" * w for w in widths))
        seen = set()
        for r in self.rows:
            if r.get("latency_avg_ms"):
                print(f"{r['scenario']}: latency average {r['latency_avg_ms']} ms")
            if r.get("limiting_cost_pct") is not None:
                print(f"cost of rate limiting on creates: {r['limiting_cost_pct']}% "
                      "(target < 10%)")
            if r.get("note") and (r["scenario"], r["note"]) not in seen:
                seen.add((r["scenario"], r["note"]))
                print(f"{r['scenario']}: {r['note']}")
        for n in self.notes:
            print(f"note: {n}")
        print(f"results: {path.relative_to(REPO)}")

    def close(self):
        Extra.stop_all()
        if self.stack:
            problems = self.stack.close()
            for p in problems:
                log(f"stack: {p}")


def fmt(v, digits=2):
    return "" if v is None else f"{v:.{digits}f}"


def compare(paths):
    """Side by side req/s of two or more result files, e.g. 100k against 1M links: the
    per-request cost is flat when the ratios stay near 1."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    print("scenario".ljust(28) + "conns".rjust(6) + "".join(
        f"{d['settings']['links']:>12,} links" for d in docs) + "   last/first")
    first = docs[0]
    for row in first["rows"]:
        if not row.get("rps"):
            continue
        vals = []
        for d in docs:
            match = [r for r in d["rows"] if r["scenario"] == row["scenario"]
                     and r["conns"] == row["conns"] and r.get("rps")]
            vals.append(match[0]["rps"] if match else None)
        ratio = f"{vals[-1] / vals[0]:.2f}×" if vals[-1] else ""
        print(row["scenario"].ljust(28) + str(row["conns"]).rjust(6) + "".join(
            f"{v:>18,.0f}" if v else " " * 18 for v in vals) + ratio.rjust(14))
    return 0


def main():
    if sys.argv[1:2] == ["--compare"]:
        return compare(sys.argv[2:])
    for tool in ("wrk", "nginx", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (deploy/install-deps.sh --bench installs it)")
    for prog in ("ceiling", "kgsload"):
        if not (BENCH_BIN / prog).exists():
            sys.exit(f"bench: {BENCH_BIN / prog} is missing (make bench builds it)")

    # SIGTERM takes the same way out as Ctrl-C: through close(), which stops everything.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    bench = Bench()
    t0 = time.monotonic()
    try:
        bench.run()
        bench.report(started)
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        bench.close()
        log(f"bench took {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
