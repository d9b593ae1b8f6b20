-- kgs stops storing keys. It claims ranges of one durable counter and maps each index to a
-- key through a keyed permutation (kgs/keyperm.c): a claim is a one-row UPDATE however many
-- keys it covers, where claiming stored rows cost about 7 us per key plus as much again to
-- generate them. The first kgs to start draws the secret (INSERT ... ON CONFLICT DO NOTHING).
--
-- The secret and the algorithm number must never change: keys already issued were made
-- with them. Keys kgs_keys handed out live on in urls (and link_keys), where a new key that
-- happens to equal one is refused like any taken key and the next one is used.

CREATE TABLE kgs_state (
    id         integer PRIMARY KEY CHECK (id = 1),
    algorithm  integer NOT NULL,
    secret     bytea NOT NULL CHECK (length(secret) = 32),
    next_index bigint NOT NULL CHECK (next_index >= 0)
);

DROP TABLE kgs_keys;
