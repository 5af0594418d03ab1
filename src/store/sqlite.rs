//! The SQLite engine (rusqlite, bundled SQLite): WAL mode, foreign keys on, `synchronous=FULL`.
//!
//! Quick reads (a few rows found by an index: the requests' hot paths) run inline on the calling
//! thread, on a connection taken from a small idle list: a read costs what SQLite costs, with no
//! hand-off to another thread and back (that hand-off was most of a page request's cost: see
//! bench/load). Reads that may take long (search, files, admin counts, moving whole tables) run
//! on a small pool of reader threads instead, so they never hold up an async worker. Every
//! connection keeps a prepared-statement cache. Writes go to a single writer thread ([`writer`])
//! that drains whatever jobs are waiting into one transaction (group commit). SQLite allows one
//! writer at a time anyway; batching turns one fsync per request into one fsync per batch.
//!
//! The topic modules' operations are async functions generic over [`Db`]/[`Tx`]; here every
//! query completes immediately, so [`run_now`] polls such a future to completion inside the
//! reader or writer thread.

pub(crate) mod allocator;
mod caches;
mod checkpoint;
mod log_buffer;
#[cfg(test)]
mod migration_tests;
pub(crate) mod page_cache;
mod writer;

use std::{
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender};
use futures_util::FutureExt;
use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

use super::{
    Commit, StoreError, StoreResult,
    db::{Column, Db, Dialect, FromRow, Param, Row, Sql, Tx},
    events::NewEvent,
    user_cache::UserCache,
};
use crate::clock::Timestamp;
pub(crate) use caches::Caches;
use writer::{Job, WriteJob, writer_loop};

/// Most idle connections kept for inline reads (one per thread that reads at once is enough).
const MAX_IDLE_READERS: usize = 16;
/// How much of the database file each read connection maps into memory (SQLite caps it just
/// under 2 GiB): a page already in the kernel's cache is then read in place, where a `pread`
/// copied it into the connection's own cache after every commit. Writer and checkpointer do
/// not map (measured: mapping on the writer gained nothing for posts and cost remaps as the file
/// grows).
const READER_MMAP_BYTES: i64 = 2 << 30;
/// Pages of write-ahead log after which the writer checkpoints by itself (about 80 MB): only
/// reached if the checkpointer falls far behind.
const WRITER_CHECKPOINT_PAGES: i64 = 20_000;
/// The writer's page cache, in KiB (SQLite's default is 2 MiB): posts land in random threads,
/// and with the default a tenth of the writer's time went to reading back pages it had just
/// dropped (`pread`) and to writing out dirty pages early. Grows only as pages are used.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;
type CommitHook = Box<dyn Fn(&Commit) + Send + Sync>;

#[derive(Clone)]
pub struct SqliteStore {
    readers: Sender<ReadJob>,
    /// Read connections not in use, for inline reads.
    idle: Arc<Mutex<Vec<Connection>>>,
    writer: Sender<Box<dyn WriteJob>>,
    hook: Arc<OnceLock<CommitHook>>,
    caches: Arc<Caches>,
    path: Arc<PathBuf>,
    /// Dropped with the last copy of the store, which ends the checkpointer.
    _checkpointer: Arc<Sender<()>>,
}

/// A read connection, as the topic modules see it.
pub struct Conn<'c>(&'c Connection);

/// What a write job sees: the connection inside the open transaction, and what the commit hook
/// is told once the transaction is durable.
pub struct SqliteTx<'c> {
    conn: &'c Connection,
    now: Timestamp,
    commit: Commit,
    /// A job asked for the search queue to be indexed in this transaction.
    index_search_queue: bool,
}

/// Polls a future that never waits (every SQLite call completes at once) to its end.
pub fn run_now<T>(work: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    work.now_or_never().unwrap_or_else(|| {
        Err(StoreError::Other(anyhow::anyhow!(
            "a SQLite operation waited for something"
        )))
    })
}

pub(crate) fn path_from_url(url: &str) -> StoreResult<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    }
    Ok(PathBuf::from(path))
}

pub(crate) fn connect(path: &PathBuf) -> StoreResult<Connection> {
    set_up(Connection::open(path)?)
}

/// The writer's connection: its write-ahead log is written once per commit ([`log_buffer`],
/// which relies on the `synchronous = FULL` that [`set_up`] sets).
fn connect_writer(path: &PathBuf) -> StoreResult<Connection> {
    let vfs = log_buffer::register()?;
    set_up(Connection::open_with_flags_and_vfs(
        path,
        rusqlite::OpenFlags::default(),
        vfs,
    )?)
}

/// What every connection runs with: WAL, `synchronous = FULL`, foreign keys, plans that do not
/// depend on the values bound, and a statement cache.
fn set_up(conn: Connection) -> StoreResult<Connection> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    // Plans do not depend on the values bound: a cached statement is never prepared again
    // because a parameter changed (without this, the thread list was re-parsed on every call).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Runs `work` in one read transaction: its statements see one snapshot (a page and its count
/// agree), and the database file's shared lock is taken once, not once per statement (those
/// lock calls were a tenth of a message page's time).
fn in_snapshot<T>(
    conn: &Connection,
    work: impl FnOnce(&Conn<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let result = catch_unwind(AssertUnwindSafe(|| work(&Conn(conn)))).unwrap_or_else(|_| {
        Err(StoreError::Other(anyhow::anyhow!(
            "a database read panicked"
        )))
    });
    if let Err(error) = conn
        .prepare_cached("COMMIT")
        .and_then(|mut end| end.execute([]))
    {
        // A reader has nothing to keep; a connection left inside a transaction is not reused.
        tracing::warn!(%error, "ending a read transaction failed");
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// A connection that only reads.
fn reader(path: &PathBuf) -> StoreResult<Connection> {
    let conn = connect(path)?;
    conn.execute_batch("PRAGMA query_only = ON")?;
    conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    Ok(conn)
}

/// Applies the embedded migrations not yet applied; returns the names applied now.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<Vec<String>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             name    TEXT PRIMARY KEY NOT NULL,
             applied INTEGER NOT NULL
         )",
    )?;
    let done: Vec<String> = conn
        .prepare("SELECT name FROM schema_migrations")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    super::refuse_newer(&done, super::migrations::SQLITE)?;
    let mut applied = Vec::new();
    for (name, sql) in super::migrations::SQLITE {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = ?1)",
            [name],
            |row| row.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (name, applied) VALUES (?1, ?2)",
                rusqlite::params![name, Timestamp::now().micros()],
            )?;
            applied.push((*name).to_owned());
        }
        tx.commit()?;
    }
    Ok(applied)
}

impl SqliteStore {
    /// Opens (creating if needed) the database of a `sqlite://path` URL, applies pending
    /// migrations and starts the reader and writer threads; up to `kept_bytes` of answers are
    /// kept in memory while unchanged.
    pub fn open(url: &str, kept_bytes: usize) -> StoreResult<(SqliteStore, Vec<String>)> {
        let path = path_from_url(url)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Other(e.into()))?;
        }
        let mut writer_conn = connect_writer(&path)?;
        let applied = migrate(&mut writer_conn)?;

        // Checkpoints run beside the writer (`checkpoint`), not inside its commits.
        writer_conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        writer_conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // Each write job runs in a savepoint, which copies every page it changes first: kept
        // in memory, not in a temporary file (that file's writes were a tenth of the writer's
        // time when posting).
        writer_conn.pragma_update(None, "temp_store", "MEMORY")?;
        let checkpointer =
            checkpoint::start(connect(&path)?).map_err(|e| StoreError::Other(e.into()))?;

        let hook: Arc<OnceLock<CommitHook>> = Arc::new(OnceLock::new());
        let (write_tx, write_rx) = crossbeam_channel::unbounded::<Box<dyn WriteJob>>();
        let writer_hook = hook.clone();
        let caches = Arc::new(Caches::new(kept_bytes));
        let writer_caches = caches.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer_conn, write_rx, writer_hook, &writer_caches))
            .map_err(|e| StoreError::Other(e.into()))?;

        let readers = std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(4)
            .clamp(2, 8);
        let (read_tx, read_rx) = crossbeam_channel::unbounded::<ReadJob>();
        for i in 0..readers {
            let conn = reader(&path)?;
            let jobs = read_rx.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || reader_loop(conn, jobs))
                .map_err(|e| StoreError::Other(e.into()))?;
        }
        Ok((
            SqliteStore {
                readers: read_tx,
                idle: Arc::new(Mutex::new(Vec::new())),
                writer: write_tx,
                hook,
                caches,
                path: Arc::new(path),
                _checkpointer: Arc::new(checkpointer),
            },
            applied,
        ))
    }

    /// Registers the function told, after each commit, which users' event logs grew and whose
    /// sessions ended.
    pub fn on_commit(&self, hook: impl Fn(&Commit) + Send + Sync + 'static) {
        let _ = self.hook.set(Box::new(hook));
    }

    /// Tells the commit hook something that needs no transaction (ephemeral frames).
    pub fn tell(&self, commit: &Commit) {
        if let Some(hook) = self.hook.get() {
            hook(commit);
        }
    }

    pub fn user_cache(&self) -> &UserCache {
        &self.caches.users
    }

    /// What is kept in memory while unchanged ([`super::kept`]).
    pub(crate) fn caches(&self) -> &Caches {
        &self.caches
    }

    /// Sets the queue gauges for a metrics scrape.
    pub fn record_gauges(&self) {
        metrics::gauge!("simple_chat_sqlite_write_queue").set(self.writer.len() as f64);
        metrics::gauge!("simple_chat_sqlite_read_queue").set(self.readers.len() as f64);
    }

    /// The database file.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Runs a quick read (`work`) here and now, on an idle read connection.
    pub async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Conn<'_>) -> StoreResult<T>,
    {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => reader(&self.path)?,
        };
        let result = in_snapshot(&conn, work);
        if conn.is_autocommit()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(conn);
        }
        result
    }

    /// Runs a read that may take long (`work`) on a reader thread.
    pub async fn read_apart<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.readers
            .send(Box::new(move |conn: &Connection| {
                let _ = reply.send(in_snapshot(conn, work));
            }))
            .map_err(|_| StoreError::Unavailable("the database is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("a database read failed")))?
    }

    /// Indexes for search every message queued until now ([`super::search::SearchQueue`]).
    pub async fn index_search_queue(&self) -> StoreResult<()> {
        self.write(|tx| {
            tx.index_search_queue = true;
            Ok(())
        })
        .await
    }

    /// Runs `work` in the writer's next transaction; answers once it is durable.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Some(work),
            result: None,
            reply,
        };
        self.writer
            .send(Box::new(job))
            .map_err(|_| StoreError::Unavailable("the database is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("a database write failed")))?
    }
}

impl From<rusqlite::Error> for StoreError {
    /// A unique-constraint failure becomes `Conflict("table.column")`.
    fn from(error: rusqlite::Error) -> StoreError {
        if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error
            && failure.code == ErrorCode::ConstraintViolation
            && let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ")
        {
            return StoreError::Conflict(columns.to_owned());
        }
        StoreError::Sqlite(error)
    }
}

/// A result row with its statement's column names, read once per query: looking a name up
/// through SQLite for every value (what `rusqlite::Row::get(&str)` does) cost a tenth of a
/// message page's time.
struct NamedRow<'r> {
    row: &'r rusqlite::Row<'r>,
    names: &'r [String],
}

impl Row for NamedRow<'_> {
    fn get<T: Column>(&self, column: &str) -> StoreResult<T> {
        let index = self
            .names
            .iter()
            .position(|name| name == column)
            .or_else(|| {
                self.names
                    .iter()
                    .position(|name| name.eq_ignore_ascii_case(column))
            });
        Ok(match index {
            Some(index) => self.row.get(index)?,
            // Not a column of this statement: rusqlite says so in its own words.
            None => self.row.get(column)?,
        })
    }

    fn first<T: Column>(&self) -> StoreResult<T> {
        Ok(self.row.get(0)?)
    }
}

fn query<T: FromRow>(conn: &Connection, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql.text(Dialect::Sqlite))?;
    let names: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let params = rusqlite::params_from_iter(params.iter().map(|p| *p as &dyn rusqlite::ToSql));
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(T::from_row(&NamedRow { row, names: &names })?);
    }
    Ok(out)
}

fn execute(conn: &Connection, sql: &Sql, params: &[&dyn Param]) -> StoreResult<u64> {
    let mut statement = conn.prepare_cached(sql.text(Dialect::Sqlite))?;
    let params = rusqlite::params_from_iter(params.iter().map(|p| *p as &dyn rusqlite::ToSql));
    Ok(statement.execute(params)? as u64)
}

impl Db for Conn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn rows<T: FromRow>(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Vec<T>> {
        query(self.0, sql, params)
    }

    async fn execute(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<u64> {
        execute(self.0, sql, params)
    }
}

impl Db for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn rows<T: FromRow>(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Vec<T>> {
        query(self.conn, sql, params)
    }

    async fn execute(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<u64> {
        execute(self.conn, sql, params)
    }
}

impl Tx for SqliteTx<'_> {
    fn now(&self) -> Timestamp {
        self.now
    }

    /// The next seq of that user, taken under the single writer, and the event row, at once.
    /// The user's head is read once: the single writer numbers the events one after another.
    async fn append_events(&mut self, user: i64, events: Vec<NewEvent>) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let seq: Option<i64> = self.row(&super::events::NEXT_SEQ_SQLITE, &[&user]).await?;
        let Some(first) = seq else {
            return Ok(()); // the user is gone: nobody to tell
        };
        for (seq, event) in (first..).zip(events) {
            self.execute(
                &super::events::INSERT,
                &[&user, &seq, &self.now, &event.message, &event.payload],
            )
            .await?;
        }
        self.commit.events_for.push(user);
        Ok(())
    }

    fn sign_out(&mut self, user: i64) {
        self.commit.signed_out.push(user);
    }

    fn user_changed(&mut self, user: i64) {
        self.commit.users_changed.push(user);
    }

    fn user_renamed(&mut self) {
        self.commit.renamed = true;
    }

    fn thread_deleted(&mut self) {
        self.commit.threads_deleted = true;
    }
}

fn reader_loop(conn: Connection, jobs: Receiver<ReadJob>) {
    while let Ok(job) = jobs.recv() {
        if catch_unwind(AssertUnwindSafe(|| job(&conn))).is_err() {
            tracing::error!("a database read panicked");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A migrated, analysed database to read query plans from.
    pub fn planning_database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("plan.sqlite3")).unwrap();
        migrate(&mut conn).unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        (dir, conn)
    }

    #[test]
    fn the_writer_syncs_each_commit_as_its_buffered_log_needs() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect_writer(&dir.path().join("w.sqlite3")).unwrap();
        let level: i64 = conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        assert!(level >= 2, "FULL or EXTRA, found {level}");
    }

    /// `conn` as the topic modules read through it.
    pub fn reader(conn: &Connection) -> Conn<'_> {
        Conn(conn)
    }

    /// The plan of a statement, one line per step (`SEARCH messages USING INDEX ...`); panics
    /// when a step scans a whole table.
    pub fn assert_no_scan(conn: &Connection, name: &str, sql: &Sql) {
        let text = sql.text(Dialect::Sqlite);
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {text}")).unwrap();
        let nulls = vec![rusqlite::types::Null; statement.parameter_count()];
        let steps: Vec<String> = statement
            .query_map(rusqlite::params_from_iter(nulls), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        println!("{name}:\n  {}", steps.join("\n  "));
        // Derived tables: their own steps are checked; scanning their rows is reading what
        // those steps found.
        let derived: Vec<&str> = steps
            .iter()
            .filter_map(|step| step.strip_prefix("CO-ROUTINE "))
            .collect();
        for step in &steps {
            // A full-text MATCH is answered by the virtual table's own index.
            let whole_scan = step.starts_with("SCAN ")
                && !step.contains("json_each")
                && !step.contains("(subquery")
                && !step.contains("VIRTUAL TABLE INDEX")
                && !derived.iter().any(|name| step[5..] == **name);
            assert!(!whole_scan, "{name} scans a table: {step}\n{text}");
        }
    }
}
