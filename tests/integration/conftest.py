"""Fixtures: the real stack (PostgreSQL, Redis, kgs, shortener) in a temporary directory.

The session stack is shared by tests that leave its dependencies running. Tests that stop
Redis or PostgreSQL or kill kgs use stacks of their own (module-scoped fixtures in their
files, built with stack.running_stack), so test order never matters.
"""

import signal

import pytest

import stack as stk


def pytest_configure(config):
    # A SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so fixtures still clean up.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:
        pass
    missing = [p for p in ("shortener", "kgs", "shortenerctl") if not (stk.BIN_DIR / p).exists()]
    if missing:
        raise pytest.UsageError(f"missing programs in {stk.BIN_DIR}: {', '.join(missing)} "
                                "(build first: make; or set SHORTENER_BIN_DIR)")


def _stacks_of(item):
    """The stacks a test used (through its fixtures), else every live one."""
    live = stk.live_stacks()
    used = []
    for value in getattr(item, "funcargs", {}).values():
        for st in live:
            if st in used:
                continue
            if value is st or getattr(value, "stack", None) is st or (
                    isinstance(value, stk.Client)
                    and any(value.base == sh.base_url for sh in st.shorteners)):
                used.append(st)
    return used or live


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        tails = "\n".join(st.log_tails() for st in _stacks_of(item))
        if tails:
            rep.sections.append(("service logs (tails)", tails))


@pytest.fixture(autouse=True)
def _no_crashes():
    """After every test: any kgs or shortener that crashed, died by a signal nobody sent, or
    logged a sanitizer report fails the test that was running. Before every test: whatever
    died is started again, so a crash fails only the test during which it happened."""
    before = [p for st in stk.live_stacks() for p in st.problems()]
    for st in stk.live_stacks():
        st.revive()
    if before:
        pytest.fail("server processes failed between tests:\n" + "\n".join(before),
                    pytrace=False)
    yield
    problems = [p for st in stk.live_stacks() for p in st.problems()]
    if problems:
        pytest.fail("server processes failed:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def stack():
    """The shared stack: its dependencies stay up. Do not stop anything in it."""
    with stk.running_stack("main") as st:
        yield st


@pytest.fixture(scope="session")
def server(stack):
    return stack.server


@pytest.fixture(scope="session")
def api_key(stack):
    return stack.create_apikey("main-key")[0]


@pytest.fixture(scope="session")
def other_key(stack):
    return stack.create_apikey("other-key")[0]


@pytest.fixture
def client(server, api_key):
    return stk.Client(server, api_key)


@pytest.fixture
def other_client(server, other_key):
    return stk.Client(server, other_key)


@pytest.fixture
def anon(server):
    return stk.Client(server)


@pytest.fixture(scope="session")
def extra_server(stack):
    """extra_server(**env) -> another shortener on the shared stack with that environment
    (cached per environment for the session)."""
    made = {}

    def get(**env):
        k = tuple(sorted((a, str(b)) for a, b in env.items()))
        if k not in made:
            made[k] = stack.start_shortener(**env)
        return made[k]
    return get


@pytest.fixture(scope="session")
def second_server(extra_server):
    return extra_server()
