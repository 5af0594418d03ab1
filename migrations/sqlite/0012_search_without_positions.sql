-- The search index without word positions (`detail = none`): a search matches whole terms and
-- prefixes and orders by message id, never by position or rank, so FTS5 need not store where
-- in a message each term stands. Each entry is then a message id alone, where it was an id
-- and a position list, and every search reads and merges less. The server fills it again when
-- it opens the database: `INDEX_VERSION` 3 (`src/store/search.rs`) is this table.
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    terms, content = '', contentless_delete = 1, detail = none,
    tokenize = "unicode61 remove_diacritics 0 categories 'L* M* N* S* Co'"
);
