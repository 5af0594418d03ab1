-- When a message's text was last edited (NULL: never).
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
