-- Events that carry a message's text name that message, so deleting the message (or its thread,
-- or its sender) can remove the text from every stored log in the same transaction.
ALTER TABLE events ADD COLUMN message_id INTEGER;
UPDATE events SET message_id = CAST(json_extract(payload, '$.message.id') AS INTEGER)
WHERE json_extract(payload, '$.type') IN ('message.created', 'message.updated');
CREATE INDEX events_message ON events (message_id) WHERE message_id IS NOT NULL;
