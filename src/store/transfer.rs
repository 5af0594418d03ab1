//! Moving whole databases: every table dumped page by page in key order and loaded elsewhere
//! with its ids, for `simple-chat migrate-data` (SQLite → PostgreSQL and back) and
//! `simple-chat import-django`.
//!
//! Each table is described once ([`Table::columns`]): its columns and their kinds, and its key.
//! Rows travel as [`Record`]s of [`Value`]s in that column order, so one piece of code dumps,
//! loads and compares every table on either engine; a new table is one more entry here.

mod values;
pub use values::{ColumnValue, Value};

use super::{
    Store, StoreResult,
    db::{Db, Dialect, FromRow, Param, Row, Sql, Tx},
    messages::Message,
    read_apart,
    users::User,
    write,
};

/// The tables that hold data, in an order that loads without breaking a foreign key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Settings,
    Users,
    Threads,
    Members,
    Messages,
    Events,
    Blacklist,
    Blocks,
    Files,
    FileChunks,
    MessageFiles,
}

/// How a column's values are read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Bool,
    Text,
    Blob,
}

use Kind::{Blob, Bool, Int, Text};

impl Table {
    pub const ALL: [Table; 11] = [
        Table::Settings,
        Table::Users,
        Table::Threads,
        Table::Members,
        Table::Messages,
        Table::Events,
        Table::Blacklist,
        Table::Blocks,
        Table::Files,
        Table::FileChunks,
        Table::MessageFiles,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Settings => "settings",
            Table::Users => "users",
            Table::Threads => "threads",
            Table::Members => "thread_members",
            Table::Messages => "messages",
            Table::Events => "events",
            Table::Blacklist => "token_blacklist",
            Table::Blocks => "blocks",
            Table::Files => "files",
            Table::FileChunks => "file_chunks",
            Table::MessageFiles => "message_files",
        }
    }

    /// Every column, in the order of a [`Record`].
    pub fn columns(self) -> &'static [(&'static str, Kind)] {
        match self {
            Table::Settings => &[("key", Text), ("value", Text)],
            Table::Users => &[
                ("id", Int),
                ("username", Text),
                ("email", Text),
                ("first_name", Text),
                ("last_name", Text),
                ("password", Text),
                ("is_active", Bool),
                ("is_staff", Bool),
                ("is_superuser", Bool),
                ("date_joined", Int),
                ("last_login", Int),
                ("token_version", Int),
                ("event_seq", Int),
                ("last_seen", Int),
            ],
            Table::Threads => &[
                ("id", Int),
                ("user_low", Int),
                ("user_high", Int),
                ("created", Int),
                ("updated", Int),
                ("last_message_id", Int),
                ("message_count", Int),
            ],
            Table::Members => &[("user_id", Int), ("thread_id", Int), ("unread", Int)],
            // Listed once, with the message's struct (see `messages::message_row!`).
            Table::Messages => super::messages::TRANSFER_COLUMNS,
            Table::Events => &[
                ("user_id", Int),
                ("seq", Int),
                ("created", Int),
                ("message_id", Int),
                ("payload", Text),
            ],
            Table::Blacklist => &[("jti", Text), ("expires", Int)],
            Table::Blocks => &[("blocker_id", Int), ("blocked_id", Int), ("created", Int)],
            Table::Files => &[
                ("id", Int),
                ("owner_id", Int),
                ("name", Text),
                ("content_type", Text),
                ("size", Int),
                ("created", Int),
                ("complete", Bool),
                ("attached", Bool),
                ("thumbnail", Blob),
            ],
            Table::FileChunks => &[("file_id", Int), ("seq", Int), ("data", Blob)],
            Table::MessageFiles => &[("message_id", Int), ("file_id", Int), ("position", Int)],
        }
    }

    /// The columns that order and page the table (a prefix of [`Table::columns`]).
    pub fn key_len(self) -> usize {
        match self {
            Table::Members
            | Table::Events
            | Table::Blocks
            | Table::FileChunks
            | Table::MessageFiles => 2,
            _ => 1,
        }
    }

    /// Tables whose ids come from a sequence that must move past the loaded ids.
    fn has_identity(self) -> bool {
        matches!(
            self,
            Table::Users | Table::Threads | Table::Messages | Table::Files
        )
    }

    /// Rows moved at a time: few of the big ones (a file chunk is 256 KiB).
    pub fn page_size(self) -> i64 {
        match self {
            Table::FileChunks => 16,
            Table::Files => 100,
            _ => 1_000,
        }
    }

    fn column_list(self) -> String {
        let names: Vec<&str> = self.columns().iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }

    /// The columns as a dumped page reads them: a user's `event_seq` is their event head
    /// (see [`super::events::HEAD_AS_COLUMN`]), so events continue after the copied ones.
    fn select_list(self) -> String {
        let columns: Vec<&str> = self
            .columns()
            .iter()
            .map(|(name, _)| match (self, *name) {
                (Table::Users, "event_seq") => super::events::HEAD_AS_COLUMN,
                (_, name) => name,
            })
            .collect();
        columns.join(", ")
    }

    fn key_list(self) -> String {
        let names: Vec<&str> = self.columns()[..self.key_len()]
            .iter()
            .map(|(name, _)| *name)
            .collect();
        names.join(", ")
    }

    /// A page: rows after `after` (none: from the start) in key order, at most `limit`.
    fn dump_sql(self, after: bool) -> Sql {
        let keys = self.key_list();
        let n = self.key_len();
        let filter = if after {
            let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
            format!("WHERE ({keys}) > ({})", placeholders.join(", "))
        } else {
            String::new()
        };
        let limit_at = if after { n + 1 } else { 1 };
        Sql::owned(format!(
            "SELECT {} FROM {} {filter} ORDER BY {keys} LIMIT ${limit_at}",
            self.select_list(),
            self.name()
        ))
    }

    fn insert_sql(self) -> Sql {
        let placeholders: Vec<String> = (1..=self.columns().len())
            .map(|i| format!("${i}"))
            .collect();
        Sql::owned(format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name(),
            self.column_list(),
            placeholders.join(", ")
        ))
    }

    fn index(self, column: &str) -> usize {
        self.columns()
            .iter()
            .position(|(name, _)| *name == column)
            .unwrap_or_else(|| panic!("{} has no column {column}", self.name()))
    }
}

/// One row of a table: its values in [`Table::columns`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record(pub Vec<Value>);

impl Record {
    /// The value of a column of `table`.
    pub fn get(&self, table: Table, column: &str) -> &Value {
        &self.0[table.index(column)]
    }

    pub fn int(&self, table: Table, column: &str) -> i64 {
        self.get(table, column).as_int().unwrap_or_default()
    }

    pub fn text(&self, table: Table, column: &str) -> &str {
        self.get(table, column).as_text().unwrap_or_default()
    }

    /// A user row (the user's log starts empty at `event_seq`).
    pub fn user(user: &User, event_seq: i64) -> Record {
        Record(vec![
            Value::Int(user.id),
            Value::Text(user.username.clone()),
            Value::Text(user.email.clone()),
            Value::Text(user.first_name.clone()),
            Value::Text(user.last_name.clone()),
            Value::Text(user.password.clone()),
            Value::Bool(user.is_active),
            Value::Bool(user.is_staff),
            Value::Bool(user.is_superuser),
            Value::Int(user.date_joined.micros()),
            user.last_login.map(|t| t.micros()).into(),
            Value::Int(user.token_version),
            Value::Int(event_seq),
            Value::Null,
        ])
    }

    /// A thread row of two users (counters are recomputed by [`Store::recount`]).
    pub fn thread(id: i64, (low, high): (i64, i64), created: i64, updated: i64) -> Record {
        Record(vec![
            Value::Int(id),
            Value::Int(low),
            Value::Int(high),
            Value::Int(created),
            Value::Int(updated),
            Value::Null,
            Value::Int(0),
        ])
    }

    pub fn member(user: i64, thread: i64) -> Record {
        Record(vec![Value::Int(user), Value::Int(thread), Value::Int(0)])
    }

    pub fn message(message: &Message) -> Record {
        Record(message.values())
    }
}

/// Rows of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rows {
    pub table: Table,
    pub records: Vec<Record>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The key of the last row, to ask for the next page.
    pub fn last_key(&self) -> Option<Vec<Value>> {
        let last = self.records.last()?;
        Some(last.0[..self.table.key_len()].to_vec())
    }
}

/// A row read with its table's column kinds (the table is the const parameter, by position
/// in [`Table::ALL`]).
struct TableRow<const T: usize>(Record);

impl<const T: usize> FromRow for TableRow<T> {
    fn from_row(row: &impl Row) -> StoreResult<Self> {
        let mut values = Vec::new();
        for (name, kind) in Table::ALL[T].columns() {
            values.push(match kind {
                Int => row.get::<Option<i64>>(name)?.into(),
                Text => row.get::<Option<String>>(name)?.into(),
                Bool => row
                    .get::<Option<bool>>(name)?
                    .map_or(Value::Null, Value::Bool),
                Blob => row
                    .get::<Option<Vec<u8>>>(name)?
                    .map_or(Value::Null, Value::Blob),
            });
        }
        Ok(TableRow(Record(values)))
    }
}

async fn rows_of<const T: usize>(
    db: &impl Db,
    sql: &Sql,
    params: &[&dyn Param],
) -> StoreResult<Vec<Record>> {
    let rows: Vec<TableRow<T>> = db.rows(sql, params).await?;
    Ok(rows.into_iter().map(|TableRow(record)| record).collect())
}

async fn dump(
    db: &impl Db,
    table: Table,
    after: Option<&[Value]>,
    limit: i64,
) -> StoreResult<Rows> {
    let sql = table.dump_sql(after.is_some());
    let mut params: Vec<&dyn Param> = after
        .unwrap_or_default()
        .iter()
        .map(|v| v as &dyn Param)
        .collect();
    params.push(&limit);
    let records = match table {
        Table::Settings => rows_of::<0>(db, &sql, &params).await?,
        Table::Users => rows_of::<1>(db, &sql, &params).await?,
        Table::Threads => rows_of::<2>(db, &sql, &params).await?,
        Table::Members => rows_of::<3>(db, &sql, &params).await?,
        Table::Messages => rows_of::<4>(db, &sql, &params).await?,
        Table::Events => rows_of::<5>(db, &sql, &params).await?,
        Table::Blacklist => rows_of::<6>(db, &sql, &params).await?,
        Table::Blocks => rows_of::<7>(db, &sql, &params).await?,
        Table::Files => rows_of::<8>(db, &sql, &params).await?,
        Table::FileChunks => rows_of::<9>(db, &sql, &params).await?,
        Table::MessageFiles => rows_of::<10>(db, &sql, &params).await?,
    };
    Ok(Rows { table, records })
}

async fn load(tx: &impl Tx, rows: &Rows) -> StoreResult<()> {
    let insert = rows.table.insert_sql();
    for record in &rows.records {
        let params: Vec<&dyn Param> = record.0.iter().map(|v| v as &dyn Param).collect();
        tx.execute(&insert, &params).await?;
    }
    Ok(())
}

/// Recomputes what is derived from messages (counts, last message, activity, unread counters),
/// after rows were loaded without it.
static RECOUNT: [Sql; 2] = [
    Sql::new(
        "UPDATE threads SET
             message_count = (SELECT COUNT(*) FROM messages m WHERE m.thread_id = threads.id),
             last_message_id = (SELECT MAX(m.id) FROM messages m WHERE m.thread_id = threads.id),
             updated = CASE
                 WHEN (SELECT MAX(m.created) FROM messages m WHERE m.thread_id = threads.id) > updated
                 THEN (SELECT MAX(m.created) FROM messages m WHERE m.thread_id = threads.id)
                 ELSE updated END",
    ),
    Sql::new(
        "UPDATE thread_members SET
             unread = (SELECT COUNT(*) FROM messages m
                       WHERE m.thread_id = thread_members.thread_id
                         AND m.sender_id <> thread_members.user_id AND NOT m.is_read)",
    ),
];

/// PostgreSQL's statistics of every table, for its planner.
static ANALYZE: Sql = Sql::new("ANALYZE");

impl Store {
    pub async fn count_rows(&self, table: Table) -> StoreResult<i64> {
        let sql = Sql::owned(format!("SELECT COUNT(*) FROM {}", table.name()));
        read_apart!(self, |db| db.one(&sql, &[]).await)
    }

    /// Up to `limit` rows of a table after the key `after` (`None`: from the start), in key
    /// order.
    pub async fn dump(
        &self,
        table: Table,
        after: Option<Vec<Value>>,
        limit: i64,
    ) -> StoreResult<Rows> {
        read_apart!(self, |db| dump(db, table, after.as_deref(), limit).await)
    }

    /// Inserts rows with their ids, in one transaction.
    pub async fn load(&self, rows: Rows) -> StoreResult<()> {
        write!(self, |tx| load(tx, &rows).await)
    }

    /// Recomputes message counts, last messages, activity and unread counters.
    pub async fn recount(&self) -> StoreResult<()> {
        write!(self, |tx| {
            for sql in &RECOUNT {
                tx.execute(sql, &[]).await?;
            }
            Ok(())
        })
    }

    /// Lets new ids continue after the loaded ones (SQLite's AUTOINCREMENT does so by itself),
    /// builds the SQLite search index of the loaded messages, and has PostgreSQL gather the
    /// planner's statistics of the loaded tables at once. Without them, until autovacuum's
    /// next analyze (a minute or more after a load), statements planned meanwhile could scan
    /// whole tables: scenario B of the load harness, started right after its bulk load, was
    /// unhealthy at 4,000 users, its partners' query taking the cores (2026-12-02).
    pub async fn finish_load(&self) -> StoreResult<()> {
        write!(self, |tx| {
            super::search::rebuild(tx).await?;
            if tx.dialect() == Dialect::Postgres {
                for table in Table::ALL.iter().filter(|t| t.has_identity()) {
                    let name = table.name();
                    let sql = Sql::owned(format!(
                        "SELECT setval(pg_get_serial_sequence('{name}', 'id'),
                                       COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                    ));
                    let _: Option<i64> = tx.row(&sql, &[]).await?;
                }
                tx.execute(&ANALYZE, &[]).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_key() {
        assert_eq!(
            Table::Members.dump_sql(true).text(Dialect::Sqlite),
            "SELECT user_id, thread_id, unread FROM thread_members \
             WHERE (user_id, thread_id) > (?1, ?2) ORDER BY user_id, thread_id LIMIT ?3"
        );
        assert_eq!(
            Table::Settings.dump_sql(false).text(Dialect::Postgres),
            "SELECT key, value FROM settings  ORDER BY key LIMIT $1"
        );
    }

    #[test]
    fn every_table_is_in_the_const_list_in_order() {
        for (i, table) in Table::ALL.iter().enumerate() {
            assert_eq!(Table::ALL[i], *table);
            assert!(table.key_len() <= table.columns().len());
        }
    }
}
