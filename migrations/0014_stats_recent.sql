-- A flush used to add, per link and hour, one row per dimension value (0013: seven rows for a
-- link visited once). Spread over 100,000 links that was some 70,000 links and 500,000 upserts
-- per VISITS_FLUSH_MS, and the writer could not keep up beside a loaded server on two CPUs: it
-- dropped two visits in three, and PostgreSQL took a whole core from the redirects.
--
-- Now a flush adds one row per link, hour and visitor profile: the values of the six
-- dimensions together (bot, referrer, country, browser, OS, device), in that order. Visitors
-- alike share a row, so a link visited once is one row, and one visited by a thousand
-- browsers of a few kinds is a few rows. Only this table's primary key is indexed and the
-- table leaves room on its pages, so adding to a row is a HOT update that writes no index.
--
-- The analytics writer of some server moves each ended hour's rows from here into the hourly,
-- daily and 16-day rows per dimension value (visit_hours, visit_days, visit_blocks) in one
-- statement, deleting them here: a visit is in exactly one of the two places at every
-- moment, and a stats answer adds this table's rows of its range to the others'.
CREATE TABLE visit_recent (
    key    text COLLATE "C" NOT NULL,
    hour   timestamptz NOT NULL,
    vals   text[] COLLATE "C" NOT NULL,
    visits bigint NOT NULL,
    PRIMARY KEY (key, hour, vals)
) WITH (fillfactor = 60);

-- What 0013 left unrolled goes to the days and blocks now; the hourly rows hold it already.
INSERT INTO visit_days AS t (key, dim, day, value, visits)
SELECT key, dim, date_bin('1 day', hour, timestamptz '1970-01-01 00:00:00+00'), value,
       sum(unrolled)
FROM visit_hours WHERE unrolled <> 0
GROUP BY 1, 2, 3, 4
ON CONFLICT (key, dim, day, value) DO UPDATE SET visits = t.visits + EXCLUDED.visits;

INSERT INTO visit_blocks AS t (key, dim, block, value, visits)
SELECT key, dim, date_bin('16 days', hour, timestamptz '1970-01-01 00:00:00+00'), value,
       sum(unrolled)
FROM visit_hours WHERE unrolled <> 0 AND dim > 0
GROUP BY 1, 2, 3, 4
ON CONFLICT (key, dim, block, value) DO UPDATE SET visits = t.visits + EXCLUDED.visits;

DROP INDEX visit_hours_unrolled;
ALTER TABLE visit_hours DROP COLUMN unrolled;

-- Upgrading: a server of an older build adds its sums to visit_hours.unrolled, which is gone
-- now, so its analytics flushes fail (the sums are kept and tried again) until it runs this
-- build. Restart the servers right after migrating: what an old server still holds when it
-- stops is missing from the stats (never from the links' visit counts).
