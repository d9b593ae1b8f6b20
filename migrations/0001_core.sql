-- API keys and short links: the source of truth for every shortener instance.

CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- keyed BLAKE2b (libsodium crypto_generichash) of the secret; the secret itself is
    -- never stored
    key_hash     bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    rate_limit   integer NOT NULL CHECK (rate_limit > 0),
    rate_window  integer NOT NULL CHECK (rate_window IN (1, 60, 3600)),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE urls (
    key        text COLLATE "C" PRIMARY KEY CHECK (key ~ '^[0-9A-Za-z_-]{3,64}$'),
    url        text NOT NULL CHECK (length(url) BETWEEN 1 AND 8192),
    owner_id   bigint REFERENCES api_keys (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- NULL only when DEFAULT_TTL=0 and the caller named no expiry
    expires_at timestamptz,
    visits     bigint NOT NULL DEFAULT 0
);

-- Cleanup finds expired rows through this index instead of scanning the table.
CREATE INDEX urls_expires_at_idx ON urls (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX urls_owner_idx ON urls (owner_id);
