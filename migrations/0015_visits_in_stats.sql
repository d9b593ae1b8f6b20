-- A link's visit count (urls.visits) was written by its own flush, beside the analytics flush:
-- for links visited about once per VISITS_FLUSH_MS that was one more row updated per visit, and
-- under load it was half of PostgreSQL's work on the redirects' behalf.
--
-- Now, while analytics are on, a visit of a link without max_visits is counted once, in its
-- profile row here: "uncounted" holds those of the row's visits that urls.visits does not
-- have yet. The roll that moves an ended hour out of this table adds them to urls.visits in
-- the same statement, so a visit is at every moment in exactly one of the two, and a link's
-- count is urls.visits plus its rows' uncounted (the view link_visits). Links with max_visits
-- are still counted straight into urls.visits (Redis starts their counter from it), and all
-- links are while analytics are off; their rows here have uncounted = 0.
--
-- Upgrading: servers of an older build insert without the column (0: counted elsewhere, which
-- they do), so they run on beside new ones until restarted.
ALTER TABLE visit_recent ADD COLUMN uncounted bigint NOT NULL DEFAULT 0;

CREATE VIEW link_visits AS
SELECT u.key, u.visits + COALESCE((SELECT sum(r.uncounted) FROM visit_recent r
                                   WHERE r.key = u.key), 0)::bigint AS visits
FROM urls u;
