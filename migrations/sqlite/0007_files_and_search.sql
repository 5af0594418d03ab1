-- Files people attach to messages, kept in the database (so every instance of a deployment
-- sees them with no set-up), in chunks so that no file is ever held whole in memory.
CREATE TABLE files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL,
    -- every byte is stored (an upload cut off midway never is, and goes)
    complete     INTEGER NOT NULL DEFAULT 0,
    -- a message uses it (uploads never attached expire after a day)
    attached     INTEGER NOT NULL DEFAULT 0,
    -- images: a JPEG at most 400 px on its longest side
    thumbnail    BLOB
);
CREATE INDEX files_unattached ON files (created) WHERE attached = 0;
CREATE TABLE file_chunks (
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (file_id, seq)
) WITHOUT ROWID;
CREATE TABLE message_files (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    file_id    INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (message_id, file_id)
) WITHOUT ROWID;
CREATE INDEX message_files_file ON message_files (file_id);
-- The files as the message JSON shows them (NULL: none).
ALTER TABLE messages ADD COLUMN files TEXT;

-- Full-text search: FTS5 over each message's text, with a scope column of tokens that say
-- whose it is (`u<user id>` for both participants, `t<thread id>`), so a search is one index
-- lookup however many messages there are. Kept by triggers, in the writing transaction.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    text, scope, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO messages_fts (rowid, text, scope)
SELECT m.id, m.text, 'u' || t.user_low || ' u' || t.user_high || ' t' || m.thread_id
FROM messages m JOIN threads t ON t.id = m.thread_id;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text, scope)
    SELECT new.id, new.text, 'u' || t.user_low || ' u' || t.user_high || ' t' || new.thread_id
    FROM threads t WHERE t.id = new.thread_id;
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
    INSERT INTO messages_fts (rowid, text, scope)
    SELECT new.id, new.text, 'u' || t.user_low || ' u' || t.user_high || ' t' || new.thread_id
    FROM threads t WHERE t.id = new.thread_id;
END;
