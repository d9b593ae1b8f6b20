-- A flush used to add each of its sums three times: to the hour's row, the day's row and the
-- 16-day block's row. With many links visited a few times each per flush that was some 20
-- upserts per link every VISITS_FLUSH_MS, and PostgreSQL's share of the CPU beside a loaded
-- server went to a whole core. Now a flush writes the hour's rows only, and also counts what
-- it added in unrolled; the analytics writer of some server later moves each past hour's
-- unrolled visits into the day's and the block's rows in one statement ("rolls" them), once
-- per row and hour instead of once per flush. A stats answer adds the unrolled visits of the
-- hours its daily and block rows stand for, so it is exact at every moment.
--
-- Rows already here were added to their days and blocks when they were written: 0. All
-- servers must run a build that knows this column (an older one would add its visits to the
-- days and blocks itself, and they would be counted again when rolled).
ALTER TABLE visit_hours ADD COLUMN unrolled bigint NOT NULL DEFAULT 0;

-- The stats answer's unrolled visits of one link, and the writer's search for rows to roll:
-- only rows with something to roll, so it stays the size of about an hour of flushes.
CREATE INDEX visit_hours_unrolled ON visit_hours (key, hour) WHERE unrolled <> 0;
