-- A thread's place in its members' lists is the thread's own `updated`: `thread_members.updated`
-- was always the same value, written to both members' rows with every post, and its index
-- `thread_members_by_activity` took two more entries per post (each a delete and an insert).
-- A post dirtied four random pages of this table and its index (both members' rows, two index
-- leaves); it now dirties one (the recipient's unread count). A thread list sorts the user's
-- few member rows by their threads' activity (`src/store/threads.rs`, `LIST`); counting them
-- already read all of them.
DROP INDEX thread_members_by_activity;
ALTER TABLE thread_members DROP COLUMN updated;
