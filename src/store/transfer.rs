//! Moving whole databases: every table dumped page by page in key order and loaded elsewhere
//! with its ids, for `simple-chat migrate-data` (SQLite → PostgreSQL and back) and
//! `simple-chat import-django`. The SQL is the same text on both backends (positional `$n`
//! parameters, numbered in order of appearance, which SQLite also accepts), so it lives here
//! once; each backend only maps its rows.

use super::{Message, User};

/// The tables that hold data, in an order that loads without breaking a foreign key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Settings,
    Users,
    Threads,
    Members,
    Messages,
    Events,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Settings,
        Table::Users,
        Table::Threads,
        Table::Members,
        Table::Messages,
        Table::Events,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Settings => "settings",
            Table::Users => "users",
            Table::Threads => "threads",
            Table::Members => "thread_members",
            Table::Messages => "messages",
            Table::Events => "events",
        }
    }

    pub(crate) fn count_sql(self) -> String {
        format!("SELECT COUNT(*) FROM {}", self.name())
    }

    /// A page of rows after the key `($1, $2)`, in key order, at most `$3` of them.
    pub(crate) fn dump_sql(self) -> &'static str {
        match self {
            // A handful of rows: all of them on the first page.
            Table::Settings => {
                "SELECT key, value FROM settings
                 WHERE CAST($1 AS BIGINT) = 0 AND CAST($2 AS BIGINT) = 0 ORDER BY key LIMIT $3"
            }
            Table::Users => {
                "SELECT id, username, email, first_name, last_name, password, is_active, is_staff,
                        is_superuser, date_joined, last_login, token_version, event_seq
                 FROM users WHERE id > $1 AND CAST($2 AS BIGINT) = CAST($2 AS BIGINT) ORDER BY id LIMIT $3"
            }
            Table::Threads => {
                "SELECT id, user_low, user_high, created, updated, last_message_id, message_count
                 FROM threads WHERE id > $1 AND CAST($2 AS BIGINT) = CAST($2 AS BIGINT) ORDER BY id LIMIT $3"
            }
            Table::Members => {
                "SELECT user_id, thread_id, updated, unread FROM thread_members
                 WHERE (user_id, thread_id) > ($1, $2) ORDER BY user_id, thread_id LIMIT $3"
            }
            Table::Messages => {
                "SELECT id, thread_id, sender_id, text, created, is_read, client_id
                 FROM messages WHERE id > $1 AND CAST($2 AS BIGINT) = CAST($2 AS BIGINT) ORDER BY id LIMIT $3"
            }
            Table::Events => {
                "SELECT user_id, seq, created, payload FROM events
                 WHERE (user_id, seq) > ($1, $2) ORDER BY user_id, seq LIMIT $3"
            }
        }
    }
}

pub(crate) const INSERT_SETTING: &str = "INSERT INTO settings (key, value) VALUES ($1, $2)";
pub(crate) const INSERT_USER: &str = "INSERT INTO users (id, username, email, first_name, \
    last_name, password, is_active, is_staff, is_superuser, date_joined, last_login, \
    token_version, event_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
pub(crate) const INSERT_THREAD: &str = "INSERT INTO threads (id, user_low, user_high, created, \
    updated, last_message_id, message_count) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const INSERT_MEMBER: &str =
    "INSERT INTO thread_members (user_id, thread_id, updated, unread) VALUES ($1, $2, $3, $4)";
pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages (id, thread_id, sender_id, text, \
    created, is_read, client_id) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (user_id, seq, created, payload) VALUES ($1, $2, $3, $4)";

/// Recomputes what is derived from messages (counts, last message, activity, unread counters),
/// after rows were loaded without it.
pub(crate) const RECOUNT: [&str; 2] = [
    "UPDATE threads SET
         message_count = (SELECT COUNT(*) FROM messages m WHERE m.thread_id = threads.id),
         last_message_id = (SELECT MAX(m.id) FROM messages m WHERE m.thread_id = threads.id),
         updated = CASE
             WHEN (SELECT MAX(m.created) FROM messages m WHERE m.thread_id = threads.id) > updated
             THEN (SELECT MAX(m.created) FROM messages m WHERE m.thread_id = threads.id)
             ELSE updated END",
    "UPDATE thread_members SET
         updated = (SELECT t.updated FROM threads t WHERE t.id = thread_members.thread_id),
         unread = (SELECT COUNT(*) FROM messages m
                   WHERE m.thread_id = thread_members.thread_id
                     AND m.sender_id <> thread_members.user_id AND NOT m.is_read)",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingRow {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub user: User,
    pub event_seq: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadRow {
    pub id: i64,
    pub user_low: i64,
    pub user_high: i64,
    pub created: i64,
    pub updated: i64,
    pub last_message_id: Option<i64>,
    pub message_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub user_id: i64,
    pub thread_id: i64,
    pub updated: i64,
    pub unread: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub user_id: i64,
    pub seq: i64,
    pub created: i64,
    pub payload: String,
}

/// Rows of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rows {
    Settings(Vec<SettingRow>),
    Users(Vec<UserRow>),
    Threads(Vec<ThreadRow>),
    Members(Vec<MemberRow>),
    Messages(Vec<Message>),
    Events(Vec<EventRow>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Settings(rows) => rows.len(),
            Rows::Users(rows) => rows.len(),
            Rows::Threads(rows) => rows.len(),
            Rows::Members(rows) => rows.len(),
            Rows::Messages(rows) => rows.len(),
            Rows::Events(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of the last row, to ask for the next page.
    pub fn last_key(&self) -> Option<(i64, i64)> {
        match self {
            Rows::Settings(rows) => rows.last().map(|_| (1, 1)),
            Rows::Users(rows) => rows.last().map(|r| (r.user.id, 0)),
            Rows::Threads(rows) => rows.last().map(|r| (r.id, 0)),
            Rows::Members(rows) => rows.last().map(|r| (r.user_id, r.thread_id)),
            Rows::Messages(rows) => rows.last().map(|r| (r.id, 0)),
            Rows::Events(rows) => rows.last().map(|r| (r.user_id, r.seq)),
        }
    }
}
