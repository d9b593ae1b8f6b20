"""The rate limit's Lua script (gcra_script in src/server/ratelimit.c) run by a real Redis, case
by case against its C twin ratelimit_gcra_n(), which the unit tests pin down and which the
server uses while Redis is away. Both come from build/.../tests/integration/gcra_twin (made by
`make all`): `gcra_twin script` prints the script as the server sends it, and gcra_twin reads
cases on stdin and prints the C answers.

The script reads Redis's clock (TIME), which moves between calls. Each case sets the state
relative to TIME read just before, runs the script between two more readings t0 <= now <= t1,
and asks the C twin at both ends. The TAT offsets are whole or half intervals and the window
(microseconds) is far shorter than half an interval, so the admitted count and `remaining`
are the same at both ends and must be matched exactly; every time in the reply is linear in
`now` and must lie between the twin's two values. Where the reply gives the script's `now`
away (a stored TAT minus `reset`, or a TAT surely ahead plus the intervals admitted minus
`reset`), that `now` must lie in the window and the twin, asked at exactly that `now`, must
give exactly the same reply: then no field is off by even a microsecond. What no test can see
is an error that shifts `reset` alone, by less than the window, while the TAT stays ahead of
the clock: the script's clock cannot be stopped."""

import itertools
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import stack as stk

RL_KEY = "rl:gcra-test"
REVOKED_KEY = "apikeys:revoked"  # RATELIMIT_REVOCATIONS_KEY
REVOCATIONS = 7

# Emission intervals in microseconds: 20/s, 3/s (rounded up, as ratelimit_interval_us does),
# 1/s and 1/h (TATs an hour per request ahead: large numbers in Lua's doubles).
INTERVALS = (50_000, 333_334, 1_000_000, 3_600_000_000)
# And under a millisecond, down to 1,000,000/s (a TAT less than 1 ms ahead, so the key's PX is
# the 1 the script adds). The clock moves by several such intervals while the script runs, so
# these take only states at or behind it, where nothing depends on the exact `now`.
SHORT_INTERVALS = (1, 700)
BURSTS = range(1, 8)
COUNTS = range(1, 13)


def _helper_dir():
    if os.environ.get("SHORTENER_TEST_HELPER_DIR"):
        return Path(os.environ["SHORTENER_TEST_HELPER_DIR"])
    # make: bin/ goes with build/release, build/asan/bin with build/asan.
    build = stk.BIN_DIR.parent if stk.BIN_DIR.parent.parent.name == "build" \
        else stk.REPO / "build" / "release"
    return build / "tests" / "integration"


TWIN = _helper_dir() / "gcra_twin"


class Resp:
    """The little of the Redis protocol these tests need, over a Unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _reply(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"redis: unexpected reply {line!r}")

    def pipeline(self, *commands):
        """Sends the commands in one write and returns their replies, errors included."""
        self.sock.sendall(b"".join(self._encode(c) for c in commands))
        out = []
        for _ in commands:
            try:
                out.append(self._reply())
            except RuntimeError as e:
                out.append(e)
        return out

    def call(self, *args):
        reply = self.pipeline(args)[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def micros(time_reply):
    return int(time_reply[0]) * 1_000_000 + int(time_reply[1])


@pytest.fixture(scope="module")
def twin():
    if not TWIN.exists():
        pytest.fail(f"{TWIN} is missing: build it with make all (or set "
                    "SHORTENER_TEST_HELPER_DIR)")
    script = subprocess.run([str(TWIN), "script"], capture_output=True, text=True, check=True,
                            timeout=30).stdout
    assert "redis.call('TIME')" in script, script

    def run(cases):
        """C answers to cases [(interval, burst, n, commit, tat, now)], as tuples
        (admitted, remaining, reset, retry, tat after)."""
        text = "".join(" ".join(str(v) for v in c) + "\n" for c in cases)
        res = subprocess.run([str(TWIN)], input=text, capture_output=True, text=True, check=True,
                             timeout=60)
        out = [tuple(int(v) for v in line.split()) for line in res.stdout.splitlines()]
        assert len(out) == len(cases), res.stderr
        return out
    run.script = script
    return run


@pytest.fixture(scope="module")
def redis():
    root = stk._make_root()
    server = stk.Redis(root)
    try:
        server.start()
        conn = Resp(server.sock)
        try:
            yield conn
        finally:
            conn.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def offsets(interval, burst):
    """Where the TAT stands, relative to Redis's clock just before the script runs: None for
    no state, far and just in the past, now, and whole and half intervals ahead, around the
    edge of the burst (burst - 1 intervals ahead is the last TAT that admits one more)."""
    if interval in SHORT_INTERVALS:
        return [None, -10**12, -3 * interval, 0]
    half = interval // 2
    ahead = [0, half, interval, (burst - 1) * interval - half, (burst - 1) * interval,
             (burst - 1) * interval + half, burst * interval, (burst + 3) * interval + half]
    return [None, -10**12, -3 * interval] + sorted({a for a in ahead if a >= 0})


def run_case(redis, script, interval, burst, n, commit, offset):
    """Sets the state, runs the script once. Returns (reply, t0, t1, tat set or 0, stored tat,
    pttl, t2): t0 <= the script's now <= t1, and t2 after the state was read back."""
    t0 = micros(redis.call("TIME"))
    tat = 0 if offset is None else t0 + offset
    first = ("DEL", RL_KEY) if offset is None else ("SET", RL_KEY, tat)
    replies = redis.pipeline(first, ("TIME",),
                             ("EVAL", script, 2, RL_KEY, REVOKED_KEY, interval, burst, commit, n),
                             ("TIME",), ("GET", RL_KEY), ("PTTL", RL_KEY), ("TIME",))
    for r in replies:
        if isinstance(r, Exception):
            raise r
    _, before, reply, after, stored, pttl, later = replies
    return reply, micros(before), micros(after), tat, stored, pttl, micros(later)


def script_now(case, run):
    """The script's clock as its reply gives it away, or None where the reply does not depend
    on it (a TAT at or behind the clock)."""
    interval, _, _, commit, offset = case
    reply, _, t1, tat, stored, _, _ = run
    if len(reply) != 5:
        return None
    admitted, _, reset = reply[:3]
    if commit and admitted > 0 and stored is not None and stored.isdigit():
        return int(stored) - reset  # reset is new TAT - now
    if offset is not None and tat >= t1:
        return tat + admitted * interval - reset  # the TAT was ahead: new TAT = TAT + k I
    return None


def between(value, a, b):
    return min(a, b) <= value <= max(a, b)


def test_script_matches_its_c_twin(redis, twin):
    redis.call("SET", REVOKED_KEY, REVOCATIONS)
    cases = [(i, b, n, c, o) for i in INTERVALS + SHORT_INTERVALS for b in BURSTS for n in COUNTS
             for c in (0, 1) for o in offsets(i, b)]
    runs = [run_case(redis, twin.script, *case) for case in cases]
    at_t0 = twin([(i, b, n, c, run[3], run[1]) for (i, b, n, c, _), run in zip(cases, runs)])
    at_t1 = twin([(i, b, n, c, run[3], run[2]) for (i, b, n, c, _), run in zip(cases, runs)])
    nows = [script_now(case, run) for case, run in zip(cases, runs)]
    at_now = twin([(i, b, n, c, run[3], now if now is not None else run[1])
                   for (i, b, n, c, _), run, now in zip(cases, runs, nows)])

    failures = []
    windows = []
    for case, run, c0, c1, now, cn in zip(cases, runs, at_t0, at_t1, nows, at_now):
        interval, burst, n, commit, offset = case
        reply, t0, t1, tat, stored, pttl, t2 = run
        windows.append(t1 - t0)
        problems = []
        if len(reply) != 5:
            problems.append(f"reply has {len(reply)} elements")
        elif (c0[0], c0[1]) != (c1[0], c1[1]):
            problems.append(f"the C answer moved within the window {t0}..{t1}: {c0} vs {c1}")
        else:
            admitted, remaining, reset, retry, revoked = reply
            if admitted != c0[0]:
                problems.append(f"admitted {admitted}, C {c0[0]}")
            if remaining != c0[1]:
                problems.append(f"remaining {remaining}, C {c0[1]}")
            if not between(reset, c0[2], c1[2]):
                problems.append(f"reset {reset}, C {c0[2]}..{c1[2]}")
            if not between(retry, c0[3], c1[3]):
                problems.append(f"retry {retry}, C {c0[3]}..{c1[3]}")
            if revoked != REVOCATIONS:
                problems.append(f"revocations {revoked}, set {REVOCATIONS}")
            if commit and admitted > 0:
                # Written as a plain integer (%.0f), and kept at least until the TAT.
                if stored is None or not stored.isdigit() \
                        or not between(int(stored), c0[4], c1[4]):
                    problems.append(f"stored TAT {stored!r}, C {c0[4]}..{c1[4]}")
                else:
                    new_tat = int(stored)
                    if not (new_tat - t2) // 1000 - 1 <= pttl <= (new_tat - t0) // 1000 + 1:
                        problems.append(f"PTTL {pttl} ms for a TAT {new_tat - t0} us ahead")
            else:
                # Asked without committing, or refused: the state is left as it was.
                want = None if offset is None else str(tat)
                if stored != want:
                    problems.append(f"state {stored!r} changed, was {want!r}")
                if offset is None and pttl != -2 or offset is not None and pttl != -1:
                    problems.append(f"PTTL {pttl} on a state the script should not touch")
            if now is not None and not t0 <= now <= t1:
                problems.append(f"the reply puts the script's clock at {now}, outside "
                                f"{t0}..{t1}")
            elif now is not None:
                want = list(cn[:4])
                if [admitted, remaining, reset, retry] != want:
                    problems.append(f"at the script's own now {now}: reply {reply[:4]}, C {want}")
                if commit and admitted > 0 and stored != str(cn[4]):
                    problems.append(f"at the script's own now {now}: stored TAT {stored!r}, "
                                    f"C {cn[4]}")
        if problems:
            failures.append(f"interval={interval} burst={burst} n={n} commit={commit} "
                            f"tat=now{'' if offset is None else f'{offset:+d}'}: "
                            + "; ".join(problems) + f" (reply {reply})")
    windows.sort()
    print(f"\n{len(cases)} cases; script window median {windows[len(windows) // 2]} us, "
          f"max {windows[-1]} us")
    assert not failures, f"{len(failures)} of {len(cases)} cases differ:\n" + \
        "\n".join(failures[:20])
    # The grid covers every outcome: all admitted, some, none.
    outcomes = {(r[0][0] == 0, r[0][0] == case[2]) for case, r in zip(cases, runs)}
    assert outcomes == {(True, False), (False, True), (False, False)}, outcomes


@pytest.mark.parametrize("stored, expected", [(None, 0), ("41", 41), ("not-a-number", 0)])
def test_revocation_count_comes_back_with_every_answer(redis, twin, stored, expected):
    if stored is None:
        redis.call("DEL", REVOKED_KEY)
    else:
        redis.call("SET", REVOKED_KEY, stored)
    try:
        for commit, n in itertools.product((0, 1), (1, 3)):
            redis.call("DEL", RL_KEY)
            reply = redis.call("EVAL", twin.script, 2, RL_KEY, REVOKED_KEY, 1_000_000, 2, commit,
                               n)
            assert reply[4] == expected, reply
    finally:
        redis.call("SET", REVOKED_KEY, REVOCATIONS)


def test_a_state_that_is_not_a_number_counts_as_none(redis, twin):
    """Whatever else sits under the key (a value from an older format, say) is read as no
    state, as in the C twin with tat 0: the whole burst is there."""
    redis.call("SET", RL_KEY, "garbage")
    t0 = micros(redis.call("TIME"))
    reply = redis.call("EVAL", twin.script, 2, RL_KEY, REVOKED_KEY, 1_000_000, 3, 1, 5)
    c = twin([(1_000_000, 3, 5, 1, 0, t0)])[0]
    assert reply[:2] == [c[0], c[1]], (reply, c)
    assert reply[2] == c[2] and reply[3] == c[3], (reply, c)  # independent of now here
