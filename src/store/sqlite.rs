//! The SQLite backend (rusqlite, bundled SQLite): WAL mode, foreign keys on, `synchronous=FULL`.
//!
//! Reads run on a small pool of threads that each own a connection with a prepared-statement
//! cache. Writes go to a single writer thread that drains whatever jobs are waiting into one
//! transaction (group commit): each job runs inside its own SAVEPOINT, so a failing job rolls
//! back alone, and every job of the batch learns its outcome only after the COMMIT that made it
//! durable. SQLite allows one writer at a time anyway; batching turns one fsync per request into
//! one fsync per batch.

use std::{
    collections::BTreeMap,
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
    sync::{Arc, LazyLock, OnceLock},
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{
    Commit, Counted, Event, Message, MessageWindow, NewMessage, NewUser, Participant, StoreError,
    StoreResult, ThreadMembers, ThreadView, User, UserChanges, payload,
};
use crate::clock::Timestamp;

mod admin;
mod transfer;

/// Most write jobs one transaction takes.
const MAX_BATCH: usize = 512;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;
type CommitHook = Box<dyn Fn(&Commit) + Send + Sync>;

#[derive(Clone)]
pub struct SqliteStore {
    readers: Sender<ReadJob>,
    writer: Sender<Box<dyn WriteJob>>,
    hook: Arc<OnceLock<CommitHook>>,
}

/// What a write job sees: the connection inside the open transaction, and what the commit hook
/// is told once the transaction is durable.
pub struct Tx<'c> {
    conn: &'c Connection,
    now: Timestamp,
    commit: Commit,
}

trait WriteJob: Send {
    /// Runs inside a savepoint; `false` rolls the savepoint back.
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Tells the caller the outcome once the transaction has committed (or failed).
    fn finish(self: Box<Self>, outcome: Result<(), String>);
}

struct Job<F, T> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> WriteJob for Job<F, T>
where
    F: FnOnce(&mut Tx<'_>) -> StoreResult<T> + Send,
    T: Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(tx))).unwrap_or_else(|_| {
            Err(StoreError::Other(anyhow::anyhow!(
                "a database write panicked"
            )))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, outcome: Result<(), String>) {
        let result = match (outcome, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(reason), _) => Err(StoreError::Unavailable(reason)),
            (Ok(()), None) => Err(StoreError::Unavailable("write was not run".into())),
        };
        let _ = self.reply.send(result);
    }
}

fn path_from_url(url: &str) -> StoreResult<PathBuf> {
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

fn connect(path: &PathBuf) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies the embedded migrations not yet applied; returns the names applied now.
fn migrate(conn: &mut Connection) -> StoreResult<Vec<String>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             name    TEXT PRIMARY KEY NOT NULL,
             applied INTEGER NOT NULL
         )",
    )?;
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
                params![name, Timestamp::now().micros()],
            )?;
            applied.push((*name).to_owned());
        }
        tx.commit()?;
    }
    Ok(applied)
}

impl SqliteStore {
    /// Opens (creating if needed) the database of a `sqlite://path` URL, applies pending
    /// migrations and starts the reader and writer threads.
    pub fn open(url: &str) -> StoreResult<(SqliteStore, Vec<String>)> {
        let path = path_from_url(url)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Other(e.into()))?;
        }
        let mut writer_conn = connect(&path)?;
        let applied = migrate(&mut writer_conn)?;

        let hook: Arc<OnceLock<CommitHook>> = Arc::new(OnceLock::new());
        let (write_tx, write_rx) = crossbeam_channel::unbounded::<Box<dyn WriteJob>>();
        let writer_hook = hook.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer_conn, write_rx, writer_hook))
            .map_err(|e| StoreError::Other(e.into()))?;

        let readers = std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(4)
            .clamp(2, 8);
        let (read_tx, read_rx) = crossbeam_channel::unbounded::<ReadJob>();
        for i in 0..readers {
            let conn = connect(&path)?;
            conn.execute_batch("PRAGMA query_only = ON")?;
            let jobs = read_rx.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || reader_loop(conn, jobs))
                .map_err(|e| StoreError::Other(e.into()))?;
        }
        Ok((
            SqliteStore {
                readers: read_tx,
                writer: write_tx,
                hook,
            },
            applied,
        ))
    }

    /// Registers the function told, after each commit, which users' event logs grew and whose
    /// sessions ended.
    pub fn on_commit(&self, hook: impl Fn(&Commit) + Send + Sync + 'static) {
        let _ = self.hook.set(Box::new(hook));
    }

    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.readers
            .send(Box::new(move |conn: &Connection| {
                let _ = reply.send(work(conn));
            }))
            .map_err(|_| StoreError::Unavailable("the database is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("a database read failed")))?
    }

    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> StoreResult<T> + Send + 'static,
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

    // ----- settings -----

    /// The value of a setting, storing `default` first when there is none (first writer wins,
    /// so every instance on one database ends up with the same value).
    pub async fn setting_or_insert(&self, key: &str, default: String) -> StoreResult<String> {
        let key = key.to_owned();
        self.write(move |tx| {
            tx.conn
                .prepare_cached("INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)")?
                .execute(params![key, default])?;
            Ok(tx
                .conn
                .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                .query_row([key], |row| row.get(0))?)
        })
        .await
    }

    // ----- users -----

    pub async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id], user_from_row)
                .optional()?)
        })
        .await
    }

    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
                ))?
                .query_row([username], user_from_row)
                .optional()?)
        })
        .await
    }

    /// Users whose username (and, with `everywhere`, email or names) contains `term`, by id.
    pub async fn search_users(
        &self,
        term: &str,
        everywhere: bool,
        active_only: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<User>> {
        let pattern = format!("%{}%", super::escape_like(term));
        self.read(move |conn| {
            let filter = if everywhere {
                "(username LIKE ?1 ESCAPE '\\' OR email LIKE ?1 ESCAPE '\\'
                  OR first_name LIKE ?1 ESCAPE '\\' OR last_name LIKE ?1 ESCAPE '\\')"
            } else {
                "username LIKE ?1 ESCAPE '\\'"
            };
            let active = if active_only { "AND is_active = 1" } else { "" };
            let count = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM users WHERE {filter} {active}"
                ))?
                .query_row([&pattern], |row| row.get(0))?;
            let items = conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE {filter} {active}
                     ORDER BY id LIMIT ?2 OFFSET ?3"
                ))?
                .query_map(params![pattern, limit, offset], user_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(Counted { count, items })
        })
        .await
    }

    pub async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.write(move |tx| {
            let created = tx
                .conn
                .prepare_cached(&format!(
                    "INSERT INTO users (username, password, email, first_name, last_name,
                                        is_active, is_staff, is_superuser, date_joined)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(
                    params![
                        user.username,
                        user.password_hash,
                        user.email,
                        user.first_name,
                        user.last_name,
                        user.is_active,
                        user.is_staff,
                        user.is_superuser,
                        tx.now.micros()
                    ],
                    user_from_row,
                )
                .map_err(conflict)?;
            Ok(created)
        })
        .await
    }

    /// Applies the changes; a password change or a deactivation also ends the user's tokens.
    pub async fn update_user(&self, id: i64, changes: UserChanges) -> StoreResult<Option<User>> {
        self.write(move |tx| {
            let bump = i64::from(changes.ends_tokens());
            if changes.ends_tokens() {
                tx.commit.signed_out.push(id);
            }
            tx.conn
                .prepare_cached(&format!(
                    "UPDATE users SET
                         username = COALESCE(?2, username),
                         email = COALESCE(?3, email),
                         first_name = COALESCE(?4, first_name),
                         last_name = COALESCE(?5, last_name),
                         password = COALESCE(?6, password),
                         is_active = COALESCE(?7, is_active),
                         is_staff = COALESCE(?8, is_staff),
                         is_superuser = COALESCE(?9, is_superuser),
                         token_version = token_version + ?10
                     WHERE id = ?1
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(
                    params![
                        id,
                        changes.username,
                        changes.email,
                        changes.first_name,
                        changes.last_name,
                        changes.password_hash,
                        changes.is_active,
                        changes.is_staff,
                        changes.is_superuser,
                        bump
                    ],
                    user_from_row,
                )
                .optional()
                .map_err(conflict)
        })
        .await
    }

    /// Records a successful login, replacing the stored hash when it was upgraded.
    pub async fn record_login(&self, id: i64, new_hash: Option<String>) -> StoreResult<()> {
        self.write(move |tx| {
            tx.conn
                .prepare_cached(
                    "UPDATE users SET last_login = ?2, password = COALESCE(?3, password)
                     WHERE id = ?1",
                )?
                .execute(params![id, tx.now.micros(), new_hash])?;
            Ok(())
        })
        .await
    }

    /// Deletes the user with their threads and messages; the other participant of each of those
    /// threads gets `thread.deleted`. `false` when there was no such user.
    pub async fn delete_user(&self, id: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            let threads: Vec<(i64, i64)> = tx
                .conn
                .prepare_cached(
                    "SELECT id, CASE WHEN user_low = ?1 THEN user_high ELSE user_low END
                     FROM threads WHERE user_low = ?1
                     UNION ALL
                     SELECT id, user_low FROM threads WHERE user_high = ?1",
                )?
                .query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let deleted = tx
                .conn
                .prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([id])?;
            if deleted == 0 {
                return Ok(false);
            }
            tx.commit.signed_out.push(id);
            for (thread, other) in threads {
                tx.append_event(other, &payload::thread_deleted(thread))?;
            }
            Ok(true)
        })
        .await
    }

    // ----- threads -----

    pub async fn thread_members(&self, id: i64) -> StoreResult<Option<ThreadMembers>> {
        self.read(move |conn| members(conn, id)).await
    }

    pub async fn thread_view(&self, id: i64, viewer: i64) -> StoreResult<Option<ThreadView>> {
        self.read(move |conn| thread_view(conn, id, viewer)).await
    }

    /// The thread of two different users as `viewer` sees it, created when there is none
    /// (`true`). The pair's unique constraint makes concurrent creations end in one thread.
    pub async fn create_thread(
        &self,
        a: i64,
        b: i64,
        viewer: i64,
    ) -> StoreResult<(ThreadView, bool)> {
        let (low, high) = (a.min(b), a.max(b));
        self.write(move |tx| {
            let inserted: Option<i64> = tx
                .conn
                .prepare_cached(
                    "INSERT INTO threads (user_low, user_high, created, updated)
                     VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (user_low, user_high) DO NOTHING
                     RETURNING id",
                )?
                .query_row(params![low, high, tx.now.micros()], |row| row.get(0))
                .optional()?;
            let (id, created) = match inserted {
                Some(id) => {
                    let mut add = tx.conn.prepare_cached(
                        "INSERT INTO thread_members (user_id, thread_id, updated)
                         VALUES (?1, ?2, ?3)",
                    )?;
                    add.execute(params![low, id, tx.now.micros()])?;
                    add.execute(params![high, id, tx.now.micros()])?;
                    drop(add);
                    for user in [low, high] {
                        let view = thread_view(tx.conn, id, user)?.ok_or_else(vanished)?;
                        tx.append_event(user, &payload::thread_created(&view))?;
                    }
                    (id, true)
                }
                None => (
                    tx.conn
                        .prepare_cached(
                            "SELECT id FROM threads WHERE user_low = ?1 AND user_high = ?2",
                        )?
                        .query_row(params![low, high], |row| row.get(0))?,
                    false,
                ),
            };
            let view = thread_view(tx.conn, id, viewer)?.ok_or_else(vanished)?;
            Ok((view, created))
        })
        .await
    }

    /// Deletes a thread and its messages; both participants get `thread.deleted`.
    pub async fn delete_thread(&self, id: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            let Some(members) = members(tx.conn, id)? else {
                return Ok(false);
            };
            tx.conn
                .prepare_cached("DELETE FROM threads WHERE id = ?1")?
                .execute([id])?;
            for user in members.users {
                tx.append_event(user, &payload::thread_deleted(id))?;
            }
            Ok(true)
        })
        .await
    }

    /// A page of a user's threads, most recent activity first.
    pub async fn threads_of(
        &self,
        user: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<ThreadView>> {
        self.read(move |conn| {
            let count = conn
                .prepare_cached(THREAD_COUNT)?
                .query_row([user], |row| row.get(0))?;
            let items = conn
                .prepare_cached(&THREAD_LIST)?
                .query_map(params![user, limit, offset], thread_view_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(Counted { count, items })
        })
        .await
    }

    // ----- messages -----

    /// A window of a thread's messages, oldest first, with the thread's total message count.
    pub async fn messages(
        &self,
        thread: i64,
        window: MessageWindow,
    ) -> StoreResult<(Counted<Message>, i64)> {
        self.read(move |conn| {
            let total: i64 = conn
                .prepare_cached("SELECT message_count FROM threads WHERE id = ?1")?
                .query_row([thread], |row| row.get(0))
                .optional()?
                .unwrap_or(0);
            let (count, items) = match window {
                MessageWindow::Offset { limit, offset } => (
                    total,
                    conn.prepare_cached(&MESSAGES_BY_OFFSET)?
                        .query_map(params![thread, limit, offset], message_from_row)?
                        .collect::<Result<_, _>>()?,
                ),
                MessageWindow::After { id, limit } => (
                    conn.prepare_cached(COUNT_AFTER)?
                        .query_row(params![thread, id], |row| row.get(0))?,
                    conn.prepare_cached(&MESSAGES_AFTER)?
                        .query_map(params![thread, id, limit], message_from_row)?
                        .collect::<Result<_, _>>()?,
                ),
                MessageWindow::Before { id, limit } => (
                    conn.prepare_cached(COUNT_BEFORE)?
                        .query_row(params![thread, id], |row| row.get(0))?,
                    conn.prepare_cached(&MESSAGES_BEFORE)?
                        .query_map(params![thread, id, limit], message_from_row)?
                        .collect::<Result<_, _>>()?,
                ),
            };
            Ok((Counted { count, items }, total))
        })
        .await
    }

    /// Stores a batch from `sender` in a thread, all or nothing, and tells both participants.
    /// A message whose `client_id` this sender used before is answered with the stored one.
    /// `None` when the thread no longer exists.
    pub async fn post_messages(
        &self,
        thread: i64,
        sender: i64,
        batch: Vec<NewMessage>,
    ) -> StoreResult<Option<Vec<Message>>> {
        self.write(move |tx| {
            let Some(members) = members(tx.conn, thread)? else {
                return Ok(None);
            };
            let recipient = members.other(sender);
            let now = tx.now.micros();
            let mut stored = Vec::with_capacity(batch.len());
            let mut fresh = Vec::new();
            for message in batch {
                if let Some(client_id) = &message.client_id {
                    let earlier = tx
                        .conn
                        .prepare_cached(&format!(
                            "SELECT {MESSAGE_COLUMNS} FROM messages
                             WHERE sender_id = ?1 AND client_id = ?2"
                        ))?
                        .query_row(params![sender, client_id], message_from_row)
                        .optional()?;
                    if let Some(earlier) = earlier {
                        stored.push(earlier);
                        continue;
                    }
                }
                let inserted = tx
                    .conn
                    .prepare_cached(&format!(
                        "INSERT INTO messages (thread_id, sender_id, text, created, client_id)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         RETURNING {MESSAGE_COLUMNS}"
                    ))?
                    .query_row(
                        params![thread, sender, message.text, now, message.client_id],
                        message_from_row,
                    )?;
                fresh.push(inserted.clone());
                stored.push(inserted);
            }
            let Some(last) = fresh.last() else {
                return Ok(Some(stored));
            };
            tx.conn
                .prepare_cached(
                    "UPDATE threads SET updated = ?2, last_message_id = ?3,
                                        message_count = message_count + ?4
                     WHERE id = ?1",
                )?
                .execute(params![thread, now, last.id, fresh.len() as i64])?;
            tx.conn
                .prepare_cached("UPDATE thread_members SET updated = ?2 WHERE thread_id = ?1")?
                .execute(params![thread, now])?;
            let recipient_unread: i64 = tx
                .conn
                .prepare_cached(
                    "UPDATE thread_members SET unread = unread + ?3
                     WHERE user_id = ?1 AND thread_id = ?2
                     RETURNING unread",
                )?
                .query_row(params![recipient, thread, fresh.len() as i64], |row| {
                    row.get(0)
                })?;
            let sender_unread = unread_in(tx.conn, sender, thread)?;
            let first_unread = recipient_unread - fresh.len() as i64;
            for (i, message) in fresh.iter().enumerate() {
                tx.append_event(sender, &payload::message_created(message, sender_unread))?;
                let unread = first_unread + i as i64 + 1;
                tx.append_event(recipient, &payload::message_created(message, unread))?;
            }
            Ok(Some(stored))
        })
        .await
    }

    /// Marks read the listed messages that `reader` received; returns how many were newly
    /// marked. Ids that are unknown, sent by the reader, or in other people's threads are
    /// ignored. Each thread touched gets one `messages.read` event in both logs.
    pub async fn mark_read(&self, reader: i64, ids: Vec<i64>) -> StoreResult<i64> {
        let ids = Value::from(ids).to_string();
        self.write(move |tx| {
            let marked: Vec<(i64, i64)> = tx
                .conn
                .prepare_cached(MARK_READ)?
                .query_map(params![ids, reader], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let total = marked.len() as i64;
            let mut by_thread: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (thread, id) in marked {
                by_thread.entry(thread).or_default().push(id);
            }
            for (thread, mut ids) in by_thread {
                ids.sort_unstable();
                let reader_unread: i64 = tx
                    .conn
                    .prepare_cached(
                        "UPDATE thread_members SET unread = unread - ?3
                         WHERE user_id = ?1 AND thread_id = ?2
                         RETURNING unread",
                    )?
                    .query_row(params![reader, thread, ids.len() as i64], |row| row.get(0))?;
                let members = members(tx.conn, thread)?.ok_or_else(vanished)?;
                let sender = members.other(reader);
                let sender_unread = unread_in(tx.conn, sender, thread)?;
                tx.append_event(
                    reader,
                    &payload::messages_read(thread, &ids, reader, reader_unread),
                )?;
                tx.append_event(
                    sender,
                    &payload::messages_read(thread, &ids, reader, sender_unread),
                )?;
            }
            Ok(total)
        })
        .await
    }

    /// Messages sent to `user` that they have not read, over all their threads.
    pub async fn unread_count(&self, user: i64) -> StoreResult<i64> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(UNREAD_TOTAL)?
                .query_row([user], |row| row.get(0))?)
        })
        .await
    }

    // ----- events -----

    /// The user's current seq and up to `limit` events after `since`, oldest first.
    pub async fn events_after(
        &self,
        user: i64,
        since: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<Event>)> {
        self.read(move |conn| {
            let head: i64 = conn
                .prepare_cached("SELECT event_seq FROM users WHERE id = ?1")?
                .query_row([user], |row| row.get(0))
                .optional()?
                .unwrap_or(0);
            let events = conn
                .prepare_cached(EVENTS_AFTER)?
                .query_map(params![user, since, limit], |row| {
                    let payload: String = row.get(1)?;
                    Ok(Event {
                        seq: row.get(0)?,
                        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok((head, events))
        })
        .await
    }
}

impl SqliteStore {
    /// The user's current seq and the oldest seq still kept (`None` when the log is empty).
    pub async fn event_bounds(&self, user: i64) -> StoreResult<(i64, Option<i64>)> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT event_seq, (SELECT MIN(seq) FROM events WHERE user_id = ?1)
                     FROM users WHERE id = ?1",
                )?
                .query_row([user], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?
                .unwrap_or((0, None)))
        })
        .await
    }

    /// Deletes up to `limit` events created before `cutoff`; returns how many went.
    pub async fn prune_events(&self, cutoff: Timestamp, limit: i64) -> StoreResult<usize> {
        self.write(move |tx| {
            Ok(tx
                .conn
                .prepare_cached(
                    "DELETE FROM events WHERE (user_id, seq) IN (
                         SELECT user_id, seq FROM events WHERE created < ?1 LIMIT ?2
                     )",
                )?
                .execute(params![cutoff.micros(), limit])?)
        })
        .await
    }
}

impl Tx<'_> {
    /// Appends one event to a user's log: the next seq of that user, in this transaction.
    fn append_event(&mut self, user: i64, payload: &Value) -> StoreResult<i64> {
        let seq: i64 = self
            .conn
            .prepare_cached(
                "UPDATE users SET event_seq = event_seq + 1 WHERE id = ?1 RETURNING event_seq",
            )?
            .query_row([user], |row| row.get(0))?;
        self.conn
            .prepare_cached(
                "INSERT INTO events (user_id, seq, created, payload) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![user, seq, self.now.micros(), payload.to_string()])?;
        self.commit.events_for.push(user);
        Ok(seq)
    }
}

fn reader_loop(conn: Connection, jobs: Receiver<ReadJob>) {
    while let Ok(job) = jobs.recv() {
        if catch_unwind(AssertUnwindSafe(|| job(&conn))).is_err() {
            tracing::error!("a database read panicked");
        }
    }
}

fn writer_loop(
    conn: Connection,
    jobs: Receiver<Box<dyn WriteJob>>,
    hook: Arc<OnceLock<CommitHook>>,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&conn, &mut batch);
        match outcome {
            Ok(commit) => {
                if !commit.is_empty()
                    && let Some(hook) = hook.get()
                {
                    hook(&commit);
                }
                for job in batch {
                    job.finish(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "database write transaction failed");
                let _ = conn.execute_batch("ROLLBACK");
                for job in batch {
                    job.finish(Err(error.to_string()));
                }
            }
        }
    }
}

/// Runs a batch of jobs in one transaction; returns what the batch changed for the hook.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> rusqlite::Result<Commit> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut tx = Tx {
        conn,
        now: Timestamp::now(),
        commit: Commit::default(),
    };
    for job in batch.iter_mut() {
        conn.execute_batch("SAVEPOINT job")?;
        tx.now = Timestamp::now();
        let before = tx.commit.mark();
        if job.run(&mut tx) {
            conn.execute_batch("RELEASE job")?;
        } else {
            tx.commit.rewind(before);
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
        }
    }
    conn.execute_batch("COMMIT")?;
    let mut commit = tx.commit;
    commit.dedup();
    Ok(commit)
}

// The queries behind the hot paths, named so that the query-plan test below checks the very
// statements the store runs.

static THREAD_LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{THREAD_VIEW_SELECT}
         FROM thread_members me
         JOIN threads t ON t.id = me.thread_id
         {THREAD_VIEW_JOINS}
         WHERE me.user_id = ?1
         ORDER BY me.updated DESC, me.thread_id DESC
         LIMIT ?2 OFFSET ?3"
    )
});
const THREAD_COUNT: &str = "SELECT COUNT(*) FROM thread_members WHERE user_id = ?1";
static THREAD_VIEW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{THREAD_VIEW_SELECT}
         FROM threads t
         LEFT JOIN thread_members me ON me.thread_id = t.id AND me.user_id = ?2
         {THREAD_VIEW_JOINS}
         WHERE t.id = ?1"
    )
});
static MESSAGES_BY_OFFSET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ?1
         ORDER BY id LIMIT ?2 OFFSET ?3"
    )
});
static MESSAGES_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ?1 AND id > ?2
         ORDER BY id LIMIT ?3"
    )
});
static MESSAGES_BEFORE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT * FROM (
             SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE thread_id = ?1 AND id < ?2
             ORDER BY id DESC LIMIT ?3
         ) ORDER BY id"
    )
});
const COUNT_AFTER: &str = "SELECT COUNT(*) FROM messages WHERE thread_id = ?1 AND id > ?2";
const COUNT_BEFORE: &str = "SELECT COUNT(*) FROM messages WHERE thread_id = ?1 AND id < ?2";
const UNREAD_TOTAL: &str = "SELECT COALESCE(SUM(unread), 0) FROM thread_members WHERE user_id = ?1";
const MARK_READ: &str = "UPDATE messages SET is_read = 1
     WHERE id IN (SELECT value FROM json_each(?1))
       AND is_read = 0
       AND sender_id <> ?2
       AND thread_id IN (SELECT thread_id FROM thread_members WHERE user_id = ?2)
     RETURNING thread_id, id";
const EVENTS_AFTER: &str = "SELECT seq, payload FROM events WHERE user_id = ?1 AND seq > ?2
     ORDER BY seq LIMIT ?3";

const USER_COLUMNS: &str = "id, username, email, first_name, last_name, password, is_active, \
                            is_staff, is_superuser, date_joined, last_login, token_version";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
        password: row.get(5)?,
        is_active: row.get(6)?,
        is_staff: row.get(7)?,
        is_superuser: row.get(8)?,
        date_joined: Timestamp(row.get(9)?),
        last_login: row.get::<_, Option<i64>>(10)?.map(Timestamp),
        token_version: row.get(11)?,
    })
}

const MESSAGE_COLUMNS: &str = "id, thread_id, sender_id, text, created, is_read, client_id";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    message_at(row, 0).map(|m| m.expect("a selected message row has an id"))
}

/// The message whose columns start at `at`, `None` when a LEFT JOIN found none.
fn message_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<Message>> {
    let Some(id) = row.get::<_, Option<i64>>(at)? else {
        return Ok(None);
    };
    Ok(Some(Message {
        id,
        thread: row.get(at + 1)?,
        sender: row.get(at + 2)?,
        text: row.get(at + 3)?,
        created: Timestamp(row.get(at + 4)?),
        is_read: row.get(at + 5)?,
        client_id: row.get(at + 6)?,
    }))
}

const THREAD_VIEW_SELECT: &str = "SELECT t.id, t.created, t.updated, t.user_low, ul.username, \
    t.user_high, uh.username, COALESCE(me.unread, 0), \
    m.id, m.thread_id, m.sender_id, m.text, m.created, m.is_read, m.client_id";

const THREAD_VIEW_JOINS: &str = "JOIN users ul ON ul.id = t.user_low \
    JOIN users uh ON uh.id = t.user_high \
    LEFT JOIN messages m ON m.id = t.last_message_id";

fn thread_view_from_row(row: &Row<'_>) -> rusqlite::Result<ThreadView> {
    let low = Participant {
        id: row.get(3)?,
        username: row.get(4)?,
    };
    let high = Participant {
        id: row.get(5)?,
        username: row.get(6)?,
    };
    Ok(ThreadView {
        id: row.get(0)?,
        participants_list: [low.username.clone(), high.username.clone()],
        participants: [low, high],
        created: Timestamp(row.get(1)?),
        updated: Timestamp(row.get(2)?),
        unread_count: row.get(7)?,
        last_message: message_at(row, 8)?,
    })
}

fn thread_view(conn: &Connection, id: i64, viewer: i64) -> StoreResult<Option<ThreadView>> {
    Ok(conn
        .prepare_cached(&THREAD_VIEW)?
        .query_row(params![id, viewer], thread_view_from_row)
        .optional()?)
}

fn members(conn: &Connection, id: i64) -> StoreResult<Option<ThreadMembers>> {
    Ok(conn
        .prepare_cached("SELECT user_low, user_high FROM threads WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(ThreadMembers {
                id,
                users: [row.get(0)?, row.get(1)?],
            })
        })
        .optional()?)
}

fn unread_in(conn: &Connection, user: i64, thread: i64) -> StoreResult<i64> {
    Ok(conn
        .prepare_cached("SELECT unread FROM thread_members WHERE user_id = ?1 AND thread_id = ?2")?
        .query_row(params![user, thread], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

fn vanished() -> StoreError {
    StoreError::Other(anyhow::anyhow!("a row vanished inside its own transaction"))
}

/// Turns a unique-constraint failure into `StoreError::Conflict("table.column")`.
fn conflict(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error
        && failure.code == ErrorCode::ConstraintViolation
        && let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ")
    {
        return StoreError::Conflict(columns.to_owned());
    }
    StoreError::Sqlite(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of a statement, one line per step (`SEARCH messages USING INDEX ...`).
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; statement.parameter_count()];
        statement
            .query_map(rusqlite::params_from_iter(nulls), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The unread count, a user's thread list (with last message and unread count per thread),
    /// a page of messages, marking read and event replay all use indexes: none of them scans a
    /// whole table. `docs/STORAGE.md` shows these plans.
    #[test]
    fn hot_queries_never_scan_whole_tables() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("plan.sqlite3")).unwrap();
        migrate(&mut conn).unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        let queries: [(&str, &str); 12] = [
            ("unread total", UNREAD_TOTAL),
            ("thread count", THREAD_COUNT),
            ("thread list", &THREAD_LIST),
            ("thread view", &THREAD_VIEW),
            ("messages by offset", &MESSAGES_BY_OFFSET),
            ("messages after", &MESSAGES_AFTER),
            ("messages before", &MESSAGES_BEFORE),
            ("count after", COUNT_AFTER),
            ("count before", COUNT_BEFORE),
            ("mark read", MARK_READ),
            ("events after", EVENTS_AFTER),
            (
                "members",
                "SELECT user_low, user_high FROM threads WHERE id = ?1",
            ),
        ];
        for (name, sql) in queries {
            let steps = plan(&conn, sql);
            println!("{name}:\n  {}", steps.join("\n  "));
            for step in &steps {
                let whole_scan = step.starts_with("SCAN ")
                    && !step.contains("json_each")
                    && !step.contains("(subquery");
                assert!(!whole_scan, "{name} scans a table: {step}\n{sql}");
            }
        }
    }
}
