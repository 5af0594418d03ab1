//! The seam between the topic modules and the two engines: SQL written once, parameters and
//! columns that both engines understand, rows read by column name.
//!
//! A topic module (users, threads, messages, ...) writes each statement once, with PostgreSQL's
//! numbered placeholders (`$1`), in the subset of SQL both engines share; [`Sql`] hands SQLite
//! the same text with `?1` (SQLite would read `$1` as a *named* parameter numbered by first
//! appearance, which breaks as soon as `$2` comes before `$1`). The few statements that really
//! differ between the engines are written as [`Sql::dialects`], side by side.
//!
//! The operations themselves are `async fn`s generic over [`Db`] (and [`Tx`] for writes): on
//! PostgreSQL they await the network; on SQLite they run inside a reader or writer thread where
//! every query completes at once, and the engine polls the future to completion in one go (see
//! `sqlite::run_now`). One function, one set of rules, both engines.

use std::{borrow::Cow, sync::OnceLock};

use crate::clock::Timestamp;

use super::{StoreError, StoreResult};

/// Which engine a statement runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One SQL statement, in PostgreSQL's placeholder style, with its SQLite spelling made once.
pub struct Sql {
    postgres: Cow<'static, str>,
    sqlite_source: Option<&'static str>,
    sqlite: OnceLock<String>,
}

impl Sql {
    /// A statement both engines run as written (placeholders aside).
    pub const fn new(text: &'static str) -> Sql {
        Sql {
            postgres: Cow::Borrowed(text),
            sqlite_source: None,
            sqlite: OnceLock::new(),
        }
    }

    /// A statement the engines spell differently (both with `$n` placeholders).
    pub const fn dialects(sqlite: &'static str, postgres: &'static str) -> Sql {
        Sql {
            postgres: Cow::Borrowed(postgres),
            sqlite_source: Some(sqlite),
            sqlite: OnceLock::new(),
        }
    }

    /// A statement built at run time (filters that depend on the request).
    pub fn owned(text: String) -> Sql {
        Sql {
            postgres: Cow::Owned(text),
            sqlite_source: None,
            sqlite: OnceLock::new(),
        }
    }

    pub fn text(&self, dialect: Dialect) -> &str {
        match dialect {
            Dialect::Postgres => &self.postgres,
            Dialect::Sqlite => self
                .sqlite
                .get_or_init(|| numbered_for_sqlite(self.sqlite_source.unwrap_or(&self.postgres))),
        }
    }
}

/// `$1` → `?1`, outside quoted strings and identifiers.
fn numbered_for_sqlite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => out.push('?'),
            None => out.push(c),
        }
    }
    out
}

/// A value bound to a placeholder: anything both drivers can send.
pub trait Param: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync {}

impl<T: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync + ?Sized> Param for T {}

/// A value read from a column: anything both drivers can read.
pub trait Column: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

impl<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>> Column for T {}

/// A result row of either engine, read by column name.
pub trait Row {
    fn get<T: Column>(&self, column: &str) -> StoreResult<T>;
    /// The value of the first column (for single-value queries).
    fn first<T: Column>(&self) -> StoreResult<T>;
}

/// One struct per row type: how it is read from a row, by column name.
pub trait FromRow: Sized + Send {
    fn from_row(row: &impl Row) -> StoreResult<Self>;
}

/// Single values (`COUNT(*)`, `RETURNING id`) read from the first column.
macro_rules! scalar_rows {
    ($($t:ty),*) => {$(
        impl FromRow for $t {
            fn from_row(row: &impl Row) -> StoreResult<Self> {
                row.first()
            }
        }
    )*};
}
scalar_rows!(
    i64,
    bool,
    String,
    Option<i64>,
    Option<String>,
    Timestamp,
    Option<Timestamp>
);

/// A connection (or an open transaction) of either engine.
///
/// `async fn` in a crate-private trait: every caller is generic code instantiated for a concrete
/// engine, so the futures are `Send` exactly when that engine's are (PostgreSQL's are; SQLite's
/// never leave their thread).
#[allow(async_fn_in_trait)]
pub trait Db {
    fn dialect(&self) -> Dialect;

    /// Every row the statement returns.
    async fn rows<T: FromRow>(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Vec<T>>;

    /// The first row, if any.
    async fn row<T: FromRow>(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Option<T>> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    /// The one row the statement must return.
    async fn one<T: FromRow>(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<T> {
        self.row(sql, params).await?.ok_or_else(vanished)
    }

    /// Runs a statement; returns how many rows it changed.
    async fn execute(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<u64>;
}

/// An open write transaction: a [`Db`] that also records events for users' logs and what the
/// commit hook must learn.
#[allow(async_fn_in_trait)]
pub trait Tx: Db {
    /// The time of this write (one value per job, so a batch shares its `created`).
    fn now(&self) -> Timestamp;

    /// Appends events to a user's log in this transaction, in order (the seqs are assigned by
    /// the engine).
    async fn append_events(
        &mut self,
        user: i64,
        events: Vec<super::events::NewEvent>,
    ) -> StoreResult<()>;

    /// The user's sessions end when this commits (the hub closes their sockets).
    fn sign_out(&mut self, user: i64);

    /// The user's row changed: this and other instances drop their cached copy at commit.
    fn user_changed(&mut self, user: i64);

    /// A username changed (it appears in other users' thread lists).
    fn user_renamed(&mut self);

    /// A thread was deleted, by itself or with one of its users.
    fn thread_deleted(&mut self);
}

pub(crate) fn vanished() -> StoreError {
    StoreError::Other(anyhow::anyhow!("a row vanished inside its own transaction"))
}

// ----- Timestamp as a column and a parameter of both engines (integer microseconds) -----

impl rusqlite::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.0))
    }
}

impl rusqlite::types::FromSql for Timestamp {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(Timestamp)
    }
}

impl tokio_postgres::types::ToSql for Timestamp {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <i64 as tokio_postgres::types::ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> tokio_postgres::types::FromSql<'a> for Timestamp {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        i64::from_sql(ty, raw).map(Timestamp)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <i64 as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// A list of ids as one parameter: JSON text, which both engines unpack in SQL
/// (`json_each` / `json_array_elements_text`), so a statement takes any number of ids without
/// building its text.
pub struct IdList(pub String);

impl IdList {
    pub fn new(ids: &[i64]) -> IdList {
        IdList(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_sqlite() {
        assert_eq!(
            numbered_for_sqlite("SELECT $2, $1 FROM t WHERE a = '$1' AND b = $10"),
            "SELECT ?2, ?1 FROM t WHERE a = '$1' AND b = ?10"
        );
        assert_eq!(numbered_for_sqlite("SELECT '$' || $1"), "SELECT '$' || ?1");
    }

    #[test]
    fn dialects_keep_their_own_text() {
        let sql = Sql::dialects("SELECT $1 -- lite", "SELECT $1 -- pg");
        assert_eq!(sql.text(Dialect::Sqlite), "SELECT ?1 -- lite");
        assert_eq!(sql.text(Dialect::Postgres), "SELECT $1 -- pg");
    }
}
