-- SQLite's search index drops word positions (migrations/sqlite/0012_search_without_positions.sql).
-- PostgreSQL's `tsvector` column is unchanged: nothing to do.
SELECT 1;
