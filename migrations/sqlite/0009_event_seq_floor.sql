-- users.event_seq was each user's event counter, raised with every event: posting a message
-- dirtied two random pages of `users` (one per participant) besides the events themselves.
-- The writer now numbers a user's next event after the newest one kept in `events`, which is
-- the page the new event goes to anyway, and users.event_seq is only a floor under the head:
-- this trigger raises it to the seq of any event deleted (pruning). A user's head is the
-- larger of the two (`src/store/events.rs`), so a seq is never given twice, whichever events
-- are deleted.
CREATE TRIGGER events_seq_floor AFTER DELETE ON events BEGIN
    UPDATE users SET event_seq = OLD.seq WHERE id = OLD.user_id AND event_seq < OLD.seq;
END;
