-- What changed when: one row per delete or edit of a link, written by the statement that makes
-- the change (so in the same commit). PostgreSQL, not any server's memory, is then the record
-- of which cache entries a Redis outage or failover may have left stale: every server, once
-- Redis answers again (or Sentinel names another master), reads the keys changed since it last
-- knew Redis to be consistent and overwrites their entries before it trusts Redis again.
-- Rows older than a day are of no use (no cache entry lives that long) and cleanup removes
-- them.
CREATE TABLE link_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        text COLLATE "C" NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX link_changes_changed_at_idx ON link_changes (changed_at);
