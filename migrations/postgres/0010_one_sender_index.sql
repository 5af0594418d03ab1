-- One index on a message's sender instead of two (migrations/sqlite/0010_one_sender_index.sql):
-- the unique `(sender_id, client_id)` over all messages finds a sender's messages (the cascade
-- when a user is deleted) and keeps client_ids unique per sender; NULLs are distinct.
DROP INDEX messages_sender_client_id;
DROP INDEX messages_sender;
CREATE UNIQUE INDEX messages_sender_client_id ON messages (sender_id, client_id);
