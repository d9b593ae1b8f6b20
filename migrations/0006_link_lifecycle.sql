-- Links people manage: a redirect status of their own, a visit limit, a start time, a
-- password, tags and public stats; edits; listing newest first; idempotent creates.

ALTER TABLE urls
    -- NULL: the server's DEFAULT_REDIRECT_STATUS, whatever it is when the link is followed
    ADD COLUMN redirect_status smallint CHECK (redirect_status IN (301, 302, 307, 308)),
    -- after this many visits the link answers 404; counted exactly in Redis, durably in visits
    ADD COLUMN max_visits bigint CHECK (max_visits > 0),
    ADD COLUMN valid_from timestamptz,
    -- libsodium crypto_pwhash_str (Argon2id); the password itself is never stored
    ADD COLUMN password_hash text CHECK (password_hash LIKE '$argon2id$%'),
    ADD COLUMN tags text[] COLLATE "C" NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 10),
    ADD COLUMN public_stats boolean NOT NULL DEFAULT false,
    ADD COLUMN updated_at timestamptz,
    ADD CONSTRAINT urls_valid_before_expiry CHECK (valid_from < expires_at);

-- The list: one owner's links newest first, paged by the keyset (created_at, key), which
-- also serves every lookup by owner the old index served.
CREATE INDEX urls_owner_created_idx ON urls (owner_id, created_at DESC, key DESC);
DROP INDEX urls_owner_idx;
CREATE INDEX urls_tags_idx ON urls USING gin (tags);

-- Idempotency-Key (draft-ietf-httpapi-idempotency-key-header). A create with a key first
-- reserves it here (status 0: in flight), so a second one with the same key, on any server,
-- sees it in flight; the link and the answer (status 201, the response body) are then written
-- in one statement, so in one commit, and a retry gets that answer back: exactly one link is
-- ever made per key. A create that fails removes its reservation; one whose server died is
-- taken over after a minute. owner_id 0 is anonymous creation. Records older than 24 hours
-- are removed by shortenerctl cleanup.
CREATE TABLE idempotency_keys (
    owner_id   bigint NOT NULL,
    idem_key   text COLLATE "C" NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    -- SHA-256 of the request's content type and body
    body_hash  bytea NOT NULL CHECK (length(body_hash) = 32),
    status     smallint NOT NULL DEFAULT 0,
    link_key   text COLLATE "C",
    response   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, idem_key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
