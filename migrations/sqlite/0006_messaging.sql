-- Everyday messaging: replies, reactions, blocking, presence.

-- The message this one answers (same thread when posted; kept when the original is deleted).
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
-- Reactions as the message JSON shows them: [{"emoji": "👍", "users": [ids]}, ...] in the order
-- first used; NULL when none. A message has two possible reactors, so this stays small.
ALTER TABLE messages ADD COLUMN reactions TEXT;

-- While either of two users blocks the other, neither can start their thread or post in it.
CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created    INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_blocked ON blocks (blocked_id);

-- When the user's last socket closed (presence's "last seen").
ALTER TABLE users ADD COLUMN last_seen INTEGER;

-- Server instances and their heartbeats; a user is online while a fresh instance holds a
-- presence row for them (one per instance with at least one of their sockets open).
CREATE TABLE instances (
    id        TEXT    PRIMARY KEY NOT NULL,
    heartbeat INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE presence (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    instance TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    since    INTEGER NOT NULL,
    PRIMARY KEY (user_id, instance)
) WITHOUT ROWID;
CREATE INDEX presence_instance ON presence (instance);
