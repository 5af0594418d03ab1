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

-- Full-text search: FTS5 over terms the server computes (`src/store/search.rs`): each word of
-- a message once per participant, `u<user id>x<word>`, and `t<thread id>`, so a search looks
-- up only the searching user's own terms however common the word is. Words are split and
-- lower-cased by the server; the tokenizer only separates them at spaces. The server indexes
-- new and edited messages in the writing transaction, and (re)builds the whole index when it
-- finds it missing; deletes (cascades too) leave it by this trigger.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    terms, content = '', contentless_delete = 1,
    tokenize = "unicode61 remove_diacritics 0 categories 'L* M* N* S* Co'"
);
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;
