-- One index on a message's sender instead of two: `messages_sender (sender_id)` served only
-- the cascade when a user is deleted, and the partial unique `(sender_id, client_id)` only
-- the messages that carry a client_id (the web client sends one with every message). Every
-- such post dirtied a random page of each. The unique index over all messages serves both:
-- its leading column finds a sender's messages, and messages without a client_id (NULL)
-- never collide, as NULLs are distinct in a unique index.
DROP INDEX messages_sender_client_id;
DROP INDEX messages_sender;
CREATE UNIQUE INDEX messages_sender_client_id ON messages (sender_id, client_id);
