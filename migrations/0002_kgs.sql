-- The key generation service's durable pool. A row is inserted once, unclaimed; kgs claims
-- rows in batches and commits the claim before handing any of them out. Rows are never
-- deleted and never unclaimed, so a key can be issued at most once.

CREATE TABLE kgs_keys (
    key        text COLLATE "C" PRIMARY KEY CHECK (key ~ '^[0-9A-Za-z]{7}$'),
    -- insertion order: batches are claimed in this order, which says nothing about the keys
    -- themselves since they are drawn at random
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    claimed_at timestamptz
);

CREATE INDEX kgs_keys_unclaimed_idx ON kgs_keys (seq) WHERE claimed_at IS NULL;
