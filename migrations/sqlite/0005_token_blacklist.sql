-- Refresh tokens that must never work again (signed out, or used once with rotation on), by
-- their `jti`, kept until they would have expired anyway.
CREATE TABLE token_blacklist (
    jti     TEXT    PRIMARY KEY NOT NULL,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX token_blacklist_expires ON token_blacklist (expires);
