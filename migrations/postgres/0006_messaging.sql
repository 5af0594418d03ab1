-- Everyday messaging: replies, reactions, blocking, presence.

-- The message this one answers (same thread when posted; kept when the original is deleted).
ALTER TABLE messages ADD COLUMN reply_to BIGINT;
-- Reactions as the message JSON shows them: [{"emoji": "👍", "users": [ids]}, ...] in the order
-- first used; NULL when none. A message has two possible reactors, so this stays small.
ALTER TABLE messages ADD COLUMN reactions TEXT;

-- While either of two users blocks the other, neither can start their thread or post in it.
CREATE TABLE blocks (
    blocker_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created    BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id);

-- When the user's last socket closed (presence's "last seen").
ALTER TABLE users ADD COLUMN last_seen BIGINT;

-- Server instances and their heartbeats; a user is online while a fresh instance holds a
-- presence row for them (one per instance with at least one of their sockets open).
CREATE TABLE instances (
    id        TEXT   PRIMARY KEY,
    heartbeat BIGINT NOT NULL
);
CREATE TABLE presence (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    instance TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    since    BIGINT NOT NULL,
    PRIMARY KEY (user_id, instance)
);
CREATE INDEX presence_instance ON presence (instance);
