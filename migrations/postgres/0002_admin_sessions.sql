-- Sessions of the admin page (/admin/); see migrations/sqlite/0002_admin_sessions.sql.

CREATE TABLE admin_sessions (
    id_hash    TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT   NOT NULL,
    created    BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    flash      TEXT
);
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires);

-- Deactivating a user, taking their staff status away, or a password change ends their admin
-- sessions, whichever code path made the change.
CREATE FUNCTION admin_sessions_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM admin_sessions WHERE user_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER admin_sessions_end AFTER UPDATE OF is_active, is_staff, token_version ON users
FOR EACH ROW
WHEN (NOT NEW.is_active OR NOT NEW.is_staff OR NEW.token_version <> OLD.token_version)
EXECUTE FUNCTION admin_sessions_end();
