-- Sessions of the admin page (/admin/). The browser holds a random session id; only its SHA-256
-- (hex) is stored, so a copy of the database does not let anyone sign in.

CREATE TABLE admin_sessions (
    id_hash       TEXT    PRIMARY KEY NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- the token every form of this session carries (CSRF protection)
    csrf_token    TEXT    NOT NULL,
    created       INTEGER NOT NULL,
    -- idle expiry: pushed forward while the session is used
    expires       INTEGER NOT NULL,
    -- a one-shot message shown on the next page ("The user was added.")
    flash         TEXT
) WITHOUT ROWID;
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires);

-- Deactivating a user, taking their staff status away, or anything that ends their tokens
-- (a password change) ends their admin sessions too, whichever code path made the change.
-- `UPDATE OF` keeps it off the hot paths (event_seq, last_login updates never fire it).
CREATE TRIGGER admin_sessions_end AFTER UPDATE OF is_active, is_staff, token_version ON users
WHEN NEW.is_active = 0 OR NEW.is_staff = 0 OR NEW.token_version <> OLD.token_version
BEGIN
    DELETE FROM admin_sessions WHERE user_id = NEW.id;
END;
