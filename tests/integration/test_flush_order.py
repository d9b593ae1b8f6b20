"""Two servers flushing visits to the same links into one database (store.c ST_VISITS locks
rows in key order; visits.c and analytics.c write sorted, in chunks, and after a failed chunk
keep only what was not written). Links with a visit limit are counted by the visits thread
into urls.visits, the others by analytics through visit_recent (link_visits adds the two):
- both flush the same thousands of links, half of them limited, at the same moment (SIGTERM to
  both at once, each flushing at exit), and neither deadlocks with the other; the counts are
  exact;
- a row held locked by another writer makes a flush chunk time out; the chunks before it stay
  written, the rest is written once the lock goes: urls.visits and the stats sums are exact
  (nothing lost, nothing counted twice)."""

import subprocess
import threading

import requests

import stack as stk
from linkutil import unique
from stack import wait_until
from test_stats import hourly_rows

LINKS = 3000
THREADS = 4


def visit_all(servers, keys):
    """GETs every key once on every server, THREADS threads per server."""
    errors = []

    def drive(base, part):
        with requests.Session() as s:
            for k in part:
                try:
                    r = s.get(f"{base}/{k}", allow_redirects=False, timeout=stk.HTTP_TIMEOUT)
                    if r.status_code not in (301, 302, 307, 308):
                        errors.append(f"{k}: {r.status_code}")
                except requests.RequestException as e:
                    errors.append(f"{k}: {e}")

    threads = [threading.Thread(target=drive, args=(srv.base_url, keys[t::THREADS]))
               for srv in servers for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:10]


def add_links(st, prefix, n, limited_every):
    """n links; every limited_every-th has a visit limit (so the visits thread counts it)."""
    api_key, owner_id = st.create_apikey(unique("flush-"))
    # Inserted directly: thousands of creates through the API would be the slow part of the
    # test and are not what it is about.
    st.psql(f"INSERT INTO urls (key, url, owner_id, max_visits)"
            f" SELECT '{prefix}' || lpad(i::text, 6, '0'), 'https://example.com/' || i,"
            f" {owner_id}, CASE WHEN i % {limited_every} = 0 THEN 1000000 END"
            f" FROM generate_series(1, {n}) i")
    return api_key, [f"{prefix}{i:06d}" for i in range(1, n + 1)]


def totals(where):
    """SQL for every link's visits in the stats, where (an SQL condition on key) holds."""
    return f"(SELECT key, visits FROM {hourly_rows(where=where)} WHERE dim = 0) totals"


def assert_exact(st, api_key, prefix, keys, per_key):
    total = per_key * len(keys)
    mine = totals(f"key LIKE '{prefix}%'")
    wait_until(f"the links' visits to sum to {total}", lambda: int(st.psql(
        f"SELECT coalesce(sum(visits), 0) FROM link_visits WHERE key LIKE '{prefix}%'"))
        >= total, 30)
    wait_until(f"the hourly sums to reach {total}", lambda: int(st.psql(
        f"SELECT coalesce(sum(visits), 0) FROM {mine}")) >= total, 30)
    wrong = st.psql(f"SELECT key, visits FROM link_visits WHERE key LIKE '{prefix}%'"
                    f" AND visits <> {per_key} LIMIT 10")
    assert wrong == "", wrong
    wrong = st.psql(f"SELECT key, sum(visits) FROM {mine}"
                    f" GROUP BY key HAVING sum(visits) <> {per_key} LIMIT 10")
    assert wrong == "", wrong
    assert int(st.psql(f"SELECT count(DISTINCT key) FROM {mine}")) == len(keys)
    owner = stk.Client(st.server, api_key)
    for k in keys[::len(keys) // 10]:
        r = owner.request("GET", f"/api/v1/urls/{k}/stats")
        assert r.status_code == 200, r.text[:300]
        assert r.json()["total"] == per_key, (k, r.json())


def log_lines(srv, text):
    return [line for line in srv.proc.log_text().splitlines() if text in line]


def test_simultaneous_flushes_do_not_deadlock():
    # No flush until exit: then each server writes all the links in one flush, both at once.
    with stk.running_stack("flushorder", VISITS_FLUSH_MS=60000) as st:
        second = st.start_shortener(VISITS_FLUSH_MS=60000)
        servers = [st.server, second]
        api_key, keys = add_links(st, "fd", LINKS, 2)
        visit_all(servers, keys)
        problems = []
        stops = [threading.Thread(target=lambda srv=srv: problems.append(srv.stop()))
                 for srv in servers]
        for th in stops:
            th.start()
        for th in stops:
            th.join()
        assert problems == [None, None], problems
        st.start_shortener()  # for the stats endpoint
        st.server = st.shorteners[-1]
        for srv in servers:
            assert log_lines(srv, "deadlock detected") == [], srv.proc.tail()
            assert log_lines(srv, "visits failed") == [], srv.proc.tail()
        assert_exact(st, api_key, "fd", keys, len(servers))
        # The limited links were counted by the visits thread, and never through analytics.
        assert st.psql("SELECT count(*) FROM urls WHERE key LIKE 'fd%'"
                       f" AND max_visits IS NOT NULL AND visits = {len(servers)}") == str(
            LINKS // 2)
        assert st.psql("SELECT coalesce(sum(uncounted), 0) FROM visit_recent r JOIN urls u"
                       " USING (key) WHERE key LIKE 'fd%' AND max_visits IS NOT NULL") == "0"


def test_timed_out_chunk_keeps_only_what_was_not_written():
    with stk.running_stack("flushchunks", VISITS_FLUSH_MS=100) as st:
        # All limited: the visits thread writes them all, in chunks.
        api_key, keys = add_links(st, "fc", 7000, 1)
        last = keys[-1]  # the last in key order: the chunk that fails is the last one
        owner = stk.Client(st.server, api_key)
        assert owner.resolve(last).status_code in (301, 302, 307, 308)
        last_sums, fc_sums = totals(f"key = '{last}'"), totals("key LIKE 'fc%'")
        wait_until("the first visit's stats", lambda: st.psql(
            f"SELECT 1 FROM {last_sums} LIMIT 1") == "1", 15)
        # Another writer holds the last link's rows (and its stats rows, which the next visits
        # add to) far longer than the servers' 5 s statement timeout.
        holder = subprocess.Popen(
            ["psql", st.pg.dsn_for("shortener"), "-AtXq", "-v", "ON_ERROR_STOP=1", "-c",
             f"BEGIN; SELECT 1 FROM urls WHERE key = '{last}' FOR UPDATE;"
             f" SELECT 1 FROM visit_recent WHERE key = '{last}' FOR UPDATE;"
             f" SELECT 1 FROM visit_hours WHERE key = '{last}' FOR UPDATE;"
             f" SELECT 1 FROM visit_days WHERE key = '{last}' FOR UPDATE;"
             f" SELECT 1 FROM visit_blocks WHERE key = '{last}' FOR UPDATE;"
             " SELECT pg_sleep(600) /* flushchunks-holder */; COMMIT"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=stk.base_env())
        try:
            wait_until("the holder to take its locks", lambda: st.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%'"
                " AND pid <> pg_backend_pid()") == "1", 15)
            # From now on every flush carries the locked link.
            assert owner.resolve(last).status_code in (301, 302, 307, 308)
            visit_all([st.server], keys)
            # A flush that started after the last visit carries every key; the second
            # failure after the visits ended is (at the latest) such a flush.
            seen = len(log_lines(st.server, "visits failed"))
            wait_until("two flushes to time out after the visits", lambda: len(
                log_lines(st.server, "visits failed")) >= seen + 2, 30)
            # Its first chunk (the first 5,000 keys) was written although its last failed.
            written = int(st.psql("SELECT count(*) FROM urls WHERE key LIKE 'fc%' AND visits > 0"))
            assert written >= 5000, written
        finally:
            st.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()")
            holder.wait(timeout=30)
        assert all("statement timeout" in line for line in log_lines(st.server, "visits failed"))
        # The stats writer met the lock too, and kept rows back.
        assert log_lines(st.server, "rows not written"), st.server.proc.tail()
        per_key = {k: 1 for k in keys}
        per_key[last] = 3
        wait_until("urls.visits to sum to the visits", lambda: int(st.psql(
            "SELECT sum(visits) FROM urls WHERE key LIKE 'fc%'")) >= len(keys) + 2, 30)
        wait_until("the hourly sums to reach the visits", lambda: int(st.psql(
            f"SELECT coalesce(sum(visits), 0) FROM {fc_sums}")) >= len(keys) + 2, 30)
        got = dict(line.split("|") for line in st.psql(
            "SELECT key, visits FROM urls WHERE key LIKE 'fc%'").splitlines())
        assert {k: int(v) for k, v in got.items()} == per_key
        got = dict(line.split("|") for line in st.psql(
            f"SELECT key, sum(visits) FROM {fc_sums}"
            " GROUP BY key").splitlines())
        assert {k: int(v) for k, v in got.items()} == per_key
        for k in (keys[0], keys[len(keys) // 2], last):
            r = owner.request("GET", f"/api/v1/urls/{k}/stats")
            assert r.status_code == 200, r.text[:300]
            assert r.json()["total"] == per_key[k], (k, r.json())
