-- Least privilege: one group role per program, each with only what that program does. The
-- role that runs `shortenerctl migrate` (the migrator) owns every table; the programs log in
-- as roles that are members of these groups (README, "Database roles"):
--
--   shortener_server   the HTTP server: reads and writes links, keys, idempotency records,
--                      and whatever later migrations add, but never kgs_state (the kgs
--                      secret: whoever has it can tell which keys come next)
--   shortener_kgs      kgs: kgs_state and nothing else
--   shortener_cleanup  shortenerctl cleanup: finds and deletes expired rows
--
-- Roles belong to the whole cluster, not to one database, so they are created only when
-- missing. Creating them needs CREATEROLE once; a migrator without it needs an administrator
-- to create the three NOLOGIN roles before this migration runs.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['shortener_server', 'shortener_kgs', 'shortener_cleanup'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- Before PostgreSQL 15 every role may create tables in public; only the migrator should.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO shortener_server, shortener_kgs, shortener_cleanup;

-- The tables that exist now, including any that migrations before this one added.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO shortener_server;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO shortener_server;
-- (UPDATE because cleanup locks the rows it picks: SELECT ... FOR UPDATE SKIP LOCKED.)
GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO shortener_cleanup;

-- Tables the migrator creates from now on get the same grants by themselves. A later
-- migration that adds a table the server must not reach (anything of kgs) revokes it
-- explicitly, as below for kgs_state.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO shortener_server;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO shortener_server;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, UPDATE, DELETE ON TABLES TO shortener_cleanup;

-- kgs's secret and counter: kgs only.
REVOKE ALL ON kgs_state FROM PUBLIC, shortener_server, shortener_cleanup;
GRANT SELECT, INSERT, UPDATE ON kgs_state TO shortener_kgs;

-- The migrations' own record is the migrator's to write.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM shortener_server, shortener_cleanup;
