-- Simple Chat schema, SQLite flavour. Timestamps are INTEGER microseconds since the Unix epoch (UTC).
-- Append-only: never edit a migration that has shipped; add a new file instead.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    email         TEXT    NOT NULL DEFAULT '',
    first_name    TEXT    NOT NULL DEFAULT '',
    last_name     TEXT    NOT NULL DEFAULT '',
    password      TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    is_staff      INTEGER NOT NULL DEFAULT 0,
    is_superuser  INTEGER NOT NULL DEFAULT 0,
    date_joined   INTEGER NOT NULL,
    last_login    INTEGER,
    -- bumped on password change and deactivation: tokens carrying an older version stop working
    token_version INTEGER NOT NULL DEFAULT 0,
    -- the user's event log head: the seq of the newest event (0 = none yet)
    event_seq     INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT users_username_key UNIQUE (username)
);

-- A thread is exactly two different users, stored in id order so that a pair has one row.
CREATE TABLE threads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_low        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_high       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    last_message_id INTEGER,
    message_count   INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT threads_pair_key UNIQUE (user_low, user_high),
    CONSTRAINT threads_two_users CHECK (user_low < user_high)
);
CREATE INDEX threads_user_high ON threads (user_high);

-- One row per participant: what that user sees of the thread (its place in their list, their
-- unread count). Kept in the same transaction as every change to the thread.
CREATE TABLE thread_members (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    thread_id INTEGER NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    updated   INTEGER NOT NULL,
    unread    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, thread_id)
) WITHOUT ROWID;
CREATE INDEX thread_members_by_activity ON thread_members (user_id, updated DESC, thread_id DESC);
CREATE INDEX thread_members_thread ON thread_members (thread_id);

CREATE TABLE messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id INTEGER NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    sender_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text      TEXT    NOT NULL,
    created   INTEGER NOT NULL,
    is_read   INTEGER NOT NULL DEFAULT 0,
    client_id TEXT
);
CREATE INDEX messages_thread ON messages (thread_id, id);
CREATE INDEX messages_sender ON messages (sender_id);
CREATE UNIQUE INDEX messages_sender_client_id ON messages (sender_id, client_id) WHERE client_id IS NOT NULL;

-- Each user's event log: seq grows by exactly one per event (users.event_seq is the counter).
CREATE TABLE events (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    created INTEGER NOT NULL,
    payload TEXT    NOT NULL,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
CREATE INDEX events_created ON events (created);
