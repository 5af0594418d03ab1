-- SQLite queues messages for its search index (migrations/sqlite/0008_search_queue.sql).
-- PostgreSQL keeps its search column up to date in the writing transaction: nothing to add.
SELECT 1;
