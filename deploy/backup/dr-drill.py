#!/usr/bin/python3
"""The restore drill (make dr-drill): a real stack on loopback (tests/integration/stack.py), its
PostgreSQL archiving WAL to a private pgBackRest repository; links created continuously through
the HTTP API while it takes a full backup, then an incremental; a moment T is noted; more links;
then the data directory is destroyed and restored to T (--type=time). Every link acknowledged
before T must redirect, none whose create was sent after T may exist.

Settings (environment): DRILL_LINKS links loaded before the first backup (default 1000000, by
INSERT ... SELECT: creating a million through HTTP would take far longer than the drill),
DRILL_PHASE_SECONDS how long each phase of HTTP creates lasts (default 5), SHORTENER_BIN_DIR.
Prints a report; exits 1 when a check failed.
"""

import datetime
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import stack as stk  # noqa: E402

LINKS = int(os.environ.get("DRILL_LINKS", "1000000"))
PHASE = float(os.environ.get("DRILL_PHASE_SECONDS", "5"))
STANZA = "drill"


def say(msg):
    print(f"dr-drill: {msg}", flush=True)


class Creator(threading.Thread):
    """Creates links one after another; remembers when each was sent and acknowledged."""

    def __init__(self, server, key):
        super().__init__(daemon=True)
        self.client = stk.Client(server, key)
        self.done = []  # (key, sent, acknowledged), wall-clock seconds
        self.failed = 0
        self.stopping = threading.Event()

    def run(self):
        n = 0
        while not self.stopping.is_set():
            n += 1
            sent = time.time()
            try:
                r = self.client.create(f"https://example.com/drill/{n}")
            except Exception:  # noqa: BLE001 - counted
                self.failed += 1
                continue
            ack = time.time()
            if r.status_code == 201:
                self.done.append((r.json()["key"], sent, ack))
            else:
                self.failed += 1

    def stop(self):
        self.stopping.set()
        self.join(60)


class Drill:
    def __init__(self):
        self.st = stk.Stack("dr-drill")
        self.root = self.st.root
        self.repo = self.root / "pgbackrest-repo"
        self.conf = self.root / "pgbackrest.conf"
        self.report = []

    # ------------------------------------------------------------------ helpers

    def as_pg(self, argv, timeout=3600, check=True):
        if stk.IS_ROOT:
            argv = ["runuser", "-u", "postgres", "--"] + [str(a) for a in argv]
        res = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=timeout,
                             env=stk.base_env())
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({res.returncode}):\n"
                               f"{res.stdout}\n{res.stderr}")
        return res

    def pgbackrest(self, *args, timeout=3600):
        return self.as_pg(["pgbackrest", f"--config={self.conf}", f"--stanza={STANZA}", *args],
                          timeout=timeout)

    def setup_backups(self):
        pg = self.st.pg
        for d in (self.repo, self.root / "pgbackrest-log", self.root / "pgbackrest-lock"):
            d.mkdir()
            if stk.IS_ROOT:
                shutil.chown(d, "postgres", "postgres")
        self.conf.write_text(f"""[global]
repo1-path={self.repo}
repo1-retention-full=2
compress-type=lz4
process-max=2
start-fast=y
log-path={self.root}/pgbackrest-log
lock-path={self.root}/pgbackrest-lock
log-level-console=warn
log-level-file=info
archive-timeout=60

[{STANZA}]
pg1-path={pg.data}
pg1-socket-path={pg.sockdir}
pg1-user=shortener
""")
        os.chmod(self.conf, 0o644)
        archive = f"pgbackrest --config={self.conf} --stanza={STANZA} archive-push %p"
        self.st.psql("ALTER SYSTEM SET archive_mode = on")
        self.st.psql(f"ALTER SYSTEM SET archive_command = '{archive}'")
        pg.stop()  # archive_mode needs a restart; the servers reconnect by themselves
        pg.start()
        self.pgbackrest("stanza-create")
        self.pgbackrest("check")

    def load(self, n):
        """n links straight into urls + link_keys, as a restore would find them."""
        t0 = time.monotonic()
        self.st.psql(
            "WITH k AS (SELECT 'drl' || i AS key FROM generate_series(1, %d) i),"
            " r AS (INSERT INTO link_keys (key) SELECT key FROM k)"
            " INSERT INTO urls (key, url, expires_at) SELECT key,"
            " 'https://example.com/bulk/' || key, now() + interval '1 year' FROM k" % n,
            timeout=3600)
        return time.monotonic() - t0

    def redirects(self, keys, server):
        c = stk.Client(server)
        bad = []
        for k in keys:
            r = c.resolve(k)
            if r.status_code not in (301, 302, 307, 308):
                bad.append((k, r.status_code))
        return bad

    # ------------------------------------------------------------------ the drill

    def run(self):
        st = self.st
        st.start()
        key, _ = st.create_apikey("drill")
        self.setup_backups()
        if LINKS:
            say(f"loading {LINKS} links with INSERT ... SELECT")
            self.report.append(f"loaded {LINKS} links in {self.load(LINKS):.1f} s")
        size = st.psql("SELECT pg_size_pretty(pg_database_size('shortener'))")
        self.report.append(f"database size {size}")

        creator = Creator(st.server, key)
        creator.start()
        time.sleep(PHASE)
        t0 = time.monotonic()
        self.pgbackrest("--type=full", "backup")
        self.report.append(f"full backup: {time.monotonic() - t0:.1f} s (links created meanwhile)")
        time.sleep(PHASE)
        t0 = time.monotonic()
        self.pgbackrest("--type=incr", "backup")
        self.report.append(f"incremental backup: {time.monotonic() - t0:.1f} s")
        time.sleep(PHASE)
        # The moment to come back to. Whole seconds later or earlier do not matter: every link
        # is judged against this exact instant below.
        target = time.time()
        time.sleep(PHASE)
        creator.stop()
        # Everything up to now goes to the archive (the segment holding T, and after).
        st.psql("SELECT pg_switch_wal()")
        st.psql("CHECKPOINT")
        wait = time.monotonic() + 120
        while time.monotonic() < wait:
            last = st.psql("SELECT last_archived_wal, pg_walfile_name(pg_current_wal_lsn())"
                           " FROM pg_stat_archiver")
            archived, current = last.split("|")
            if archived and archived >= self._prev(current):
                break
            time.sleep(0.5)
        before = [d for d in creator.done if d[2] < target]
        after = [d for d in creator.done if d[1] > target]
        unsure = len(creator.done) - len(before) - len(after)
        self.report.append(
            f"HTTP creates: {len(before)} acknowledged before T, {len(after)} sent after T, "
            f"{unsure} in flight at T (not judged), {creator.failed} failed")

        # The disaster.
        say("destroying the data directory")
        st.pg.force_stop()
        shutil.rmtree(st.pg.data)
        st.pg.data.mkdir(mode=0o700)
        if stk.IS_ROOT:
            shutil.chown(st.pg.data, "postgres", "postgres")
        tstamp = datetime.datetime.fromtimestamp(target, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S.%f+00")
        t0 = time.monotonic()
        self.pgbackrest("restore", "--type=time", f"--target={tstamp}", "--target-action=promote")
        t_restore = time.monotonic() - t0
        st.pg.start()
        # Accepting connections while it still replays WAL; writable once promoted at T.
        stk.wait_until("recovery to reach T and promote",
                       lambda: st.psql("SELECT pg_is_in_recovery()") == "f", 3600,
                       interval=0.2, fail_fast=False)
        t_up = time.monotonic() - t0
        # What operators must do after a restore to a point in time (README "Backups"):
        # 1. the cache still holds links from after T (and "unknown" answers): empty it;
        # 2. kgs's counter went back to T: keys it handed out after T would be issued again,
        #    so it skips far ahead; kgs and the servers restart to drop their buffers.
        subprocess.run(["redis-cli", "-s", str(st.redis.sock), "FLUSHALL"], check=True,
                       capture_output=True, timeout=30)
        st.psql("UPDATE kgs_state SET next_index = next_index + 100000000")
        st.kgs.stop()
        st.kgs.start()
        for sh in st.shorteners:
            sh.stop()
        server = st.start_shortener()
        t_ready = time.monotonic() - t0
        self.report.append(f"restore to T ({tstamp}): pgbackrest restore {t_restore:.1f} s, "
                           f"PostgreSQL recovered and writable after {t_up:.1f} s, a server ready "
                           f"after {t_ready:.1f} s")

        # The checks.
        ok = True
        present = set(st.psql("SELECT key FROM urls WHERE url LIKE 'https://example.com/drill/%'")
                      .split())
        lost = [k for k, _, _ in before if k not in present]
        resurrected = [k for k, _, _ in after if k in present]
        bad = self.redirects([k for k, _, _ in before], server)
        ghosts = [k for k, _, _ in after
                  if stk.Client(server).resolve(k).status_code != 404]
        bulk = int(st.psql("SELECT count(*) FROM urls WHERE key LIKE 'drl%'"))
        sample = self.redirects([f"drl{i}" for i in range(1, LINKS + 1, max(1, LINKS // 200))]
                                if LINKS else [], server)
        fresh = stk.Client(server, key)
        new = [fresh.create_ok(f"https://example.com/after-restore/{i}")["key"]
               for i in range(200)]
        reused = set(new) & {k for k, _, _ in after}
        for name, items in (("acknowledged before T but missing", lost),
                            ("acknowledged before T but not redirecting", bad),
                            ("sent after T but present", resurrected),
                            ("sent after T but answering", ghosts),
                            ("bulk links not redirecting (sample)", sample),
                            ("keys of lost links issued again", sorted(reused))):
            self.report.append(f"{name}: {len(items)}" + (f" e.g. {items[:5]}" if items else ""))
            ok &= not items
        if bulk != LINKS:
            self.report.append(f"bulk links present: {bulk} of {LINKS}")
            ok = False
        else:
            self.report.append(f"bulk links present: all {LINKS}")
        if not before or not after:
            self.report.append("too few creates on one side of T to judge: raise DRILL_PHASE_SECONDS")
            ok = False
        return ok

    @staticmethod
    def _prev(walfile):
        """The WAL file name before walfile (same timeline), for 'archived up to here'."""
        tl, log, seg = walfile[:8], int(walfile[8:16], 16), int(walfile[16:], 16)
        if seg == 0:
            log, seg = log - 1, 0xFF
        else:
            seg -= 1
        return f"{tl}{log:08X}{seg:08X}"


def main():
    d = Drill()
    ok = False
    try:
        ok = d.run()
    finally:
        problems = d.st.close()
        print("\n== DR drill report (links: %d)" % LINKS)
        for line in d.report:
            print("  " + line)
        for p in problems:
            print("  problem: " + p)
        ok = ok and not problems
        print("RESULT: " + ("PASS" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
