-- Every key ever given to a link, never deleted from: browsers keep 301s, so a key that once
-- pointed somewhere must never point somewhere else. Generated keys never repeat anyway (kgs
-- claims each once); this is what refuses an alias equal to the key of an expired, deleted
-- or cleaned-up link, race-free, since nobody deletes from a unique index.

CREATE TABLE link_keys (
    key text COLLATE "C" PRIMARY KEY
);

INSERT INTO link_keys (key) SELECT key FROM urls;
