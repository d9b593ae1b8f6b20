-- Rate limits: a burst per key (how many requests may come at once before the rate applies)
-- and admin keys, which may read and delete any link.

ALTER TABLE api_keys ADD COLUMN burst integer;
-- Keys made before bursts existed may send their rate at once, as new keys do by default.
UPDATE api_keys SET burst = rate_limit;
ALTER TABLE api_keys ALTER COLUMN burst SET NOT NULL,
    ADD CONSTRAINT api_keys_burst_check CHECK (burst BETWEEN 1 AND 1000000);
ALTER TABLE api_keys ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
