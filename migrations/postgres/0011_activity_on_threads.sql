-- A thread's place in its members' lists is the thread's own `updated`
-- (migrations/sqlite/0011_activity_on_threads.sql): the members' copy of it and its index go.
DROP INDEX thread_members_by_activity;
ALTER TABLE thread_members DROP COLUMN updated;
