-- Messages whose search index entry is still to be written (`src/store/search/queue.rs`):
-- the writer indexes them together, at most about a second later or as soon as someone
-- searches. Each batch of posts used to write its own small segment of the full-text index,
-- and every search looked each term up in every segment. A row is added in the same
-- transaction as the message's post or edit, so a crash loses no entry.
CREATE TABLE search_queue (
    message_id INTEGER PRIMARY KEY
);
