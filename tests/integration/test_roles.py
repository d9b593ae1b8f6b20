"""Least privilege in PostgreSQL (migrations/0009_roles.sql): the server, kgs and cleanup log
in as roles that can do what their program does and nothing more; the kgs secret is out of the
server's reach."""

import subprocess

import pytest

import stack as stk


@pytest.fixture(scope="module")
def st():
    with stk.running_stack("roles") as s:
        yield s


def denied(st, sql, role, db=None):
    """The error psql reports when role runs sql (it must fail)."""
    dsn = st.pg.dsn_for(role) if db is None else f"host={st.pg.sockdir} dbname={db} user={role}"
    res = subprocess.run(["psql", dsn, "-AtXq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         env=stk.base_env(), stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode != 0, f"{role} ran {sql!r}: {res.stdout}"
    return res.stderr


def test_the_programs_run_as_their_own_roles(st):
    key, _ = st.create_apikey("roles")
    link = stk.Client(st.server, key).create_ok("https://example.com/roles")
    r = stk.Client(st.server).resolve(link["key"])
    assert r.status_code in (301, 302, 307, 308) and r.headers["Location"] == \
        "https://example.com/roles"
    users = st.psql("SELECT string_agg(DISTINCT usename, ',' ORDER BY usename) "
                    "FROM pg_stat_activity WHERE datname = 'shortener' AND usename <> 'shortener'")
    assert set(users.split(",")) == {"web", "kgs"}, users
    assert not st.psql("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                       "WHERE rolname IN ('web', 'kgs', 'cleanup') AND (rolsuper OR "
                       "rolcreaterole OR rolcreatedb)")


@pytest.mark.parametrize("role", ["web", "cleanup"])
def test_the_kgs_secret_is_out_of_reach_of_the_server_and_cleanup(st, role):
    assert st.psql("SELECT count(*) FROM kgs_state") == "1"  # kgs wrote it
    for sql in ("SELECT secret FROM kgs_state", "SELECT next_index FROM kgs_state",
                "UPDATE kgs_state SET next_index = 0", "DELETE FROM kgs_state"):
        assert "permission denied for table kgs_state" in denied(st, sql, role)


def test_the_server_role_cannot_change_the_schema_or_its_record(st):
    assert "permission denied" in denied(st, "CREATE TABLE mine (x int)", "web")
    assert "must be owner" in denied(st, "ALTER TABLE urls ADD COLUMN x int", "web")
    assert "must be owner" in denied(st, "DROP TABLE urls", "web")
    assert "permission denied" in denied(st, "DELETE FROM schema_migrations", "web")
    assert st.psql("SELECT count(*) > 0 FROM schema_migrations", role="web") == "t"


def test_kgs_reaches_only_its_own_table(st):
    assert st.psql("SELECT count(*) FROM kgs_state", role="kgs") == "1"
    for table in ("urls", "link_keys", "api_keys", "idempotency_keys"):
        assert f"permission denied for table {table}" in denied(
            st, f"SELECT 1 FROM {table} LIMIT 1", "kgs")


def test_cleanup_cannot_write_links(st):
    assert "permission denied for table urls" in denied(
        st, "INSERT INTO urls (key, url) VALUES ('abcdefg', 'https://example.com/')", "cleanup")
    assert "permission denied for table api_keys" in denied(
        st, "INSERT INTO api_keys (name, key_hash, rate_limit, rate_window, burst) "
        "VALUES ('x', '\\x00', 1, 1, 1)", "cleanup")


def test_tables_of_later_migrations_get_the_grants_by_themselves(st):
    # What a later migration does: the migrator creates a table, and the server may use it.
    st.psql("CREATE TABLE later_feature (id int PRIMARY KEY, note text)")
    st.psql("CREATE TABLE later_kgs (id int PRIMARY KEY); "
            "REVOKE ALL ON later_kgs FROM shortener_server, shortener_cleanup; "
            "GRANT SELECT ON later_kgs TO shortener_kgs")
    try:
        st.psql("INSERT INTO later_feature VALUES (1, 'a')", role="web")
        assert st.psql("SELECT note FROM later_feature", role="web") == "a"
        assert st.psql("DELETE FROM later_feature RETURNING id", role="cleanup") == "1"
        assert "permission denied" in denied(st, "SELECT 1 FROM later_feature", "kgs")
        assert "permission denied" in denied(st, "SELECT 1 FROM later_kgs", "web")
        assert st.psql("SELECT count(*) FROM later_kgs", role="kgs") == "0"
    finally:
        st.psql("DROP TABLE later_feature, later_kgs")


def test_a_role_outside_the_groups_gets_nothing(st):
    st.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outsider') "
            "THEN CREATE ROLE outsider LOGIN; END IF; END $$")
    for table in ("urls", "api_keys", "kgs_state"):
        assert f"permission denied for table {table}" in denied(
            st, f"SELECT 1 FROM {table} LIMIT 1", "outsider")


def test_a_migrator_that_is_not_a_superuser_can_migrate(st):
    # A fresh database owned by a plain role with CREATEROLE (the group roles exist already:
    # roles belong to the cluster).
    st.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'migrator') "
            "THEN CREATE ROLE migrator LOGIN CREATEROLE; END IF; END $$")
    st.psql("CREATE DATABASE fresh OWNER migrator")
    try:
        dsn = f"host={st.pg.sockdir} dbname=fresh user=migrator"
        res = st.ctl("migrate", env={"DATABASE_URL": dsn})
        assert res.returncode == 0, res.stderr
        assert "0009_roles" in res.stdout, res.stdout
        assert "permission denied for table kgs_state" in denied(
            st, "SELECT secret FROM kgs_state", "web", db="fresh")
        owners = subprocess.run(
            ["psql", dsn, "-AtXq", "-c",
             "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"],
            env=stk.base_env(), capture_output=True, text=True, timeout=60).stdout.split()
        assert owners == ["migrator"], owners
        res = subprocess.run(["psql", f"host={st.pg.sockdir} dbname=fresh user=web", "-AtXq",
                              "-c", "SELECT count(*) FROM urls"], env=stk.base_env(),
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.strip() == "0", res.stderr
    finally:
        st.psql("DROP DATABASE fresh WITH (FORCE)")
