-- SQLite numbers events after the newest one kept and keeps users.event_seq as a floor
-- (migrations/sqlite/0009_event_seq_floor.sql). PostgreSQL has several writers at once: it
-- still takes seqs by raising users.event_seq, which stays every user's head. Nothing to add.
SELECT 1;
