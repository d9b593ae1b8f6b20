-- Visit analytics: pre-aggregated counts, never a row per visit, and never an IP address.
--
-- Each server classifies its visits off the request path and adds, once per VISITS_FLUSH_MS,
-- the visits of each link per UTC hour per dimension value. dim: 0 all visits (value '', one
-- row per hour: the series), 1 bot ('human' or 'bot'), 2 referrer host ('direct'), 3 country
-- (ISO 3166-1 alpha-2, 'unknown'), 4 browser, 5 OS, 6 device. The same sums go to a daily table,
-- so that a year of stats reads at most a few hundred rows per value (daily rows for the whole
-- days of a range, hourly rows for the hours at its ends) instead of 24 times as many.
-- The keys lead with (key, dim): a series reads one dimension's rows of one link in time
-- order, and the top lists each dimension's rows over a range, never the other dimensions'.
CREATE TABLE visit_hours (
    key    text COLLATE "C" NOT NULL,
    hour   timestamptz NOT NULL,
    dim    smallint NOT NULL,
    value  text COLLATE "C" NOT NULL,
    visits bigint NOT NULL,
    PRIMARY KEY (key, dim, hour, value)
);

CREATE TABLE visit_days (
    key    text COLLATE "C" NOT NULL,
    day    timestamptz NOT NULL,
    dim    smallint NOT NULL,
    value  text COLLATE "C" NOT NULL,
    visits bigint NOT NULL,
    PRIMARY KEY (key, dim, day, value)
);

-- The same per block of 16 days (aligned on 1970-01-01): the top lists of a long range read
-- whole blocks, and daily rows only for the days at its ends.
CREATE TABLE visit_blocks (
    key    text COLLATE "C" NOT NULL,
    dim    smallint NOT NULL,
    block  timestamptz NOT NULL,
    value  text COLLATE "C" NOT NULL,
    visits bigint NOT NULL,
    PRIMARY KEY (key, dim, block, value)
);

-- Retention (shortenerctl cleanup, STATS_RETENTION_DAYS) finds old rows by time. Rows arrive
-- roughly in time order, so a BRIN index finds them for a fraction of a B-tree's upkeep on
-- every flush.
CREATE INDEX visit_hours_hour_brin ON visit_hours USING brin (hour);
CREATE INDEX visit_days_day_brin ON visit_days USING brin (day);
CREATE INDEX visit_blocks_block_brin ON visit_blocks USING brin (block);

-- Visits to keys that do not exist, per UTC day: what people mistype. The day's total counts
-- every one; keys are kept for the most visited only, at most about 1000 a day (each flush
-- adds keys only while the day has fewer than 1000, and sends at most 100), so random keys
-- cannot grow the table without bound.
CREATE TABLE unknown_key_days (
    day    date PRIMARY KEY,
    visits bigint NOT NULL
);

CREATE TABLE unknown_keys (
    day    date NOT NULL,
    key    text COLLATE "C" NOT NULL,
    visits bigint NOT NULL,
    PRIMARY KEY (day, key)
);
