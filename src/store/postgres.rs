//! The PostgreSQL backend (tokio-postgres with a deadpool pool), for production and for several
//! instances on one database.
//!
//! The same operations as the SQLite backend, with PostgreSQL's SQL. What differs in kind:
//! - Many writers run at once. Each write is one transaction; per-user event seqs come from
//!   `UPDATE users SET event_seq = event_seq + n ... RETURNING`, taken in user-id order so two
//!   transactions never wait on each other in a cycle. Deadlocks and serialization failures that
//!   happen anyway are retried.
//! - Other instances learn of commits through `NOTIFY simple_chat` (sent inside the transaction,
//!   so it is delivered exactly when the commit is visible); the log stays the truth, so a lost
//!   notification only delays a frame until the next wake-up or heartbeat.
//! - Connection failures become `StoreError::Unavailable` (503); every statement has a timeout,
//!   and waiting for a pooled connection is bounded.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::{NoTls, Row, error::SqlState, types::ToSql};

use super::{
    Commit, Counted, Event, Message, MessageWindow, NewMessage, NewUser, Participant, StoreError,
    StoreOptions, StoreResult, ThreadMembers, ThreadView, User, UserChanges, payload,
};
use crate::clock::Timestamp;

type CommitHook = Box<dyn Fn(&Commit) + Send + Sync>;

/// The channel instances NOTIFY each other on.
const CHANNEL: &str = "simple_chat";
/// Serializes migrations when several instances start at once.
const MIGRATION_LOCK: i64 = 0x5349_4d50_4c45; // "SIMPLE"
const RETRIES: usize = 5;

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    hook: Arc<OnceLock<CommitHook>>,
    /// For the dedicated LISTEN connection.
    config: Arc<tokio_postgres::Config>,
}

/// An open transaction and what it changed (for the commit hook and NOTIFY).
pub struct PgTx<'c> {
    txn: deadpool_postgres::Transaction<'c>,
    now: Timestamp,
    events: Vec<(i64, Value)>,
    commit: Commit,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn constraint_column(constraint: &str) -> &str {
    match constraint {
        "users_username_key" => "users.username",
        "threads_pair_key" => "threads.user_low, threads.user_high",
        "messages_sender_client_id" => "messages.sender_id, messages.client_id",
        other => other,
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        if let Some(db) = error.as_db_error() {
            if db.code() == &SqlState::UNIQUE_VIOLATION {
                let constraint = db.constraint().unwrap_or_default();
                return StoreError::Conflict(constraint_column(constraint).to_owned());
            }
            if db.code() == &SqlState::T_R_DEADLOCK_DETECTED
                || db.code() == &SqlState::T_R_SERIALIZATION_FAILURE
            {
                return StoreError::Retry(db.message().to_owned());
            }
            if db.code() == &SqlState::QUERY_CANCELED
                || db.code() == &SqlState::ADMIN_SHUTDOWN
                || db.code() == &SqlState::CANNOT_CONNECT_NOW
                || db.code() == &SqlState::TOO_MANY_CONNECTIONS
            {
                return unavailable(db.message());
            }
            return StoreError::Other(anyhow::Error::new(error));
        }
        // No database error: either the connection failed (worth a retry later) or we sent
        // something the server could not take (a bug).
        let io_failure = std::error::Error::source(&error)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
        if error.is_closed() || io_failure {
            unavailable(error)
        } else {
            StoreError::Other(anyhow::Error::new(error))
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> StoreError {
        match error {
            deadpool_postgres::PoolError::Backend(error) => error.into(),
            other => unavailable(other),
        }
    }
}

fn retryable(error: &StoreError) -> bool {
    match error {
        StoreError::Retry(_) => true,
        // A concurrent insert of the same client_id: the retry finds the stored message.
        StoreError::Conflict(what) => what == "messages.sender_id, messages.client_id",
        _ => false,
    }
}

/// Runs `$body` in a transaction bound to `$tx`, committing it and telling the hook; retried
/// on deadlocks and serialization failures.
macro_rules! transaction {
    ($store:expr, $tx:ident => $body:block) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = async {
                let mut client = $store.client().await?;
                let txn = client.transaction().await?;
                let mut $tx = PgTx {
                    txn,
                    now: Timestamp::now(),
                    events: Vec::new(),
                    commit: Commit::default(),
                };
                let value = $body;
                let commit = $tx.finish().await?;
                Ok::<_, StoreError>((value, commit))
            }
            .await;
            match outcome {
                Ok((value, commit)) => {
                    $store.after_commit(&commit);
                    break Ok(value);
                }
                Err(error) if attempt < RETRIES && retryable(&error) => {
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
                }
                Err(error) => break Err(error),
            }
        }
    }};
}

// After the macro, so the admin operations can use it.
mod admin;
mod transfer;

impl PostgresStore {
    /// Connects (a pool of connections with a statement timeout) and applies pending
    /// migrations under an advisory lock, so that several instances can start at once.
    pub async fn open(
        url: &str,
        options: &StoreOptions,
    ) -> StoreResult<(PostgresStore, Vec<String>)> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Other(anyhow::anyhow!("bad DATABASE_URL: {e}")))?;
        config.options(format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("simple-chat");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let size = options
            .pool_size
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get() * 4)
                    .unwrap_or(8)
                    .clamp(8, 32)
            })
            .max(1);
        let pool = Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.pool_wait))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        let store = PostgresStore {
            pool,
            hook: Arc::new(OnceLock::new()),
            config: Arc::new(config),
        };
        let applied = store.migrate().await?;
        Ok((store, applied))
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let result = async {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (
                         name    TEXT PRIMARY KEY,
                         applied BIGINT NOT NULL
                     )",
                )
                .await?;
            let mut applied = Vec::new();
            for (name, sql) in super::migrations::POSTGRES {
                let txn = client.transaction().await?;
                let done = txn
                    .query_opt("SELECT 1 FROM schema_migrations WHERE name = $1", &[name])
                    .await?
                    .is_some();
                if !done {
                    txn.batch_execute(sql).await?;
                    txn.execute(
                        "INSERT INTO schema_migrations (name, applied) VALUES ($1, $2)",
                        &[name, &Timestamp::now().micros()],
                    )
                    .await?;
                    applied.push((*name).to_owned());
                }
                txn.commit().await?;
            }
            Ok::<_, StoreError>(applied)
        }
        .await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        result
    }

    async fn client(&self) -> StoreResult<Object> {
        Ok(self.pool.get().await?)
    }

    pub fn on_commit(&self, hook: impl Fn(&Commit) + Send + Sync + 'static) {
        let _ = self.hook.set(Box::new(hook));
    }

    fn after_commit(&self, commit: &Commit) {
        if !commit.is_empty()
            && let Some(hook) = self.hook.get()
        {
            hook(commit);
        }
    }

    /// Listens for other instances' commits and tells the hook, until the store is dropped.
    /// A lost listening connection is re-established (and logged); after a reconnect every
    /// local connection is woken, since notifications may have been missed meanwhile.
    pub fn listen(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(listen_loop((*self.config).clone(), self.hook.clone()))
    }

    // ----- settings -----

    pub async fn setting_or_insert(&self, key: &str, default: String) -> StoreResult<String> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &default],
            )
            .await?;
        let row = client
            .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?;
        Ok(row.get(0))
    }

    // ----- users -----

    async fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> T,
    ) -> StoreResult<Option<T>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client
            .query_opt(&statement, params)
            .await?
            .as_ref()
            .map(map))
    }

    async fn query_all<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> T,
    ) -> StoreResult<Vec<T>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client
            .query(&statement, params)
            .await?
            .iter()
            .map(map)
            .collect())
    }

    pub async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.query_opt(&USER_BY_ID, &[&id], user_from_row).await
    }

    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.query_opt(&USER_BY_NAME, &[&username], user_from_row)
            .await
    }

    pub async fn search_users(
        &self,
        term: &str,
        everywhere: bool,
        active_only: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<User>> {
        let pattern = format!("%{}%", super::escape_like(term));
        let filter = if everywhere {
            "(username ILIKE $1 OR email ILIKE $1 OR first_name ILIKE $1 OR last_name ILIKE $1)"
        } else {
            "username ILIKE $1"
        };
        let active = if active_only { "AND is_active" } else { "" };
        let count = self
            .query_opt(
                &format!("SELECT COUNT(*) FROM users WHERE {filter} {active}"),
                &[&pattern],
                |row| row.get::<_, i64>(0),
            )
            .await?
            .unwrap_or(0);
        let items = self
            .query_all(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE {filter} {active}
                     ORDER BY id LIMIT $2 OFFSET $3"
                ),
                &[&pattern, &limit, &offset],
                user_from_row,
            )
            .await?;
        Ok(Counted { count, items })
    }

    pub async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        let client = self.client().await?;
        let statement = client.prepare_cached(&USER_INSERT).await?;
        let row = client
            .query_one(
                &statement,
                &[
                    &user.username,
                    &user.password_hash,
                    &user.email,
                    &user.first_name,
                    &user.last_name,
                    &user.is_active,
                    &user.is_staff,
                    &user.is_superuser,
                    &Timestamp::now().micros(),
                ],
            )
            .await?;
        Ok(user_from_row(&row))
    }

    pub async fn update_user(&self, id: i64, changes: UserChanges) -> StoreResult<Option<User>> {
        transaction!(self, tx => {
            let bump = i64::from(changes.ends_tokens());
            if changes.ends_tokens() {
                tx.commit.signed_out.push(id);
            }
            let statement = tx.txn.prepare_cached(&USER_UPDATE).await?;
            tx.txn
                .query_opt(
                    &statement,
                    &[
                        &id,
                        &changes.username,
                        &changes.email,
                        &changes.first_name,
                        &changes.last_name,
                        &changes.password_hash,
                        &changes.is_active,
                        &changes.is_staff,
                        &changes.is_superuser,
                        &bump,
                    ],
                )
                .await?
                .as_ref()
                .map(user_from_row)
        })
    }

    pub async fn record_login(&self, id: i64, new_hash: Option<String>) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE users SET last_login = $2, password = COALESCE($3, password) WHERE id = $1",
                &[&id, &Timestamp::now().micros(), &new_hash],
            )
            .await?;
        Ok(())
    }

    pub async fn delete_user(&self, id: i64) -> StoreResult<bool> {
        transaction!(self, tx => {
            let threads = tx
                .txn
                .query(
                    "SELECT id, CASE WHEN user_low = $1 THEN user_high ELSE user_low END
                     FROM threads WHERE user_low = $1 OR user_high = $1
                     ORDER BY id FOR UPDATE",
                    &[&id],
                )
                .await?;
            let deleted = tx.txn.execute("DELETE FROM users WHERE id = $1", &[&id]).await?;
            if deleted > 0 {
                tx.commit.signed_out.push(id);
                for row in threads {
                    tx.append_event(row.get(1), payload::thread_deleted(row.get(0)));
                }
            }
            deleted > 0
        })
    }

    // ----- threads -----

    pub async fn thread_members(&self, id: i64) -> StoreResult<Option<ThreadMembers>> {
        self.query_opt(MEMBERS, &[&id], |row| ThreadMembers {
            id,
            users: [row.get(0), row.get(1)],
        })
        .await
    }

    pub async fn thread_view(&self, id: i64, viewer: i64) -> StoreResult<Option<ThreadView>> {
        self.query_opt(&THREAD_VIEW, &[&id, &viewer], thread_view_from_row)
            .await
    }

    pub async fn create_thread(
        &self,
        a: i64,
        b: i64,
        viewer: i64,
    ) -> StoreResult<(ThreadView, bool)> {
        let (low, high) = (a.min(b), a.max(b));
        transaction!(self, tx => {
            let inserted = tx
                .txn
                .query_opt(
                    "INSERT INTO threads (user_low, user_high, created, updated)
                     VALUES ($1, $2, $3, $3)
                     ON CONFLICT (user_low, user_high) DO NOTHING
                     RETURNING id",
                    &[&low, &high, &tx.now.micros()],
                )
                .await?;
            let (id, created) = match inserted {
                Some(row) => {
                    let id: i64 = row.get(0);
                    tx.txn
                        .execute(
                            "INSERT INTO thread_members (user_id, thread_id, updated)
                             VALUES ($1, $3, $4), ($2, $3, $4)",
                            &[&low, &high, &id, &tx.now.micros()],
                        )
                        .await?;
                    for user in [low, high] {
                        let view = tx.thread_view(id, user).await?;
                        tx.append_event(user, payload::thread_created(&view));
                    }
                    (id, true)
                }
                None => {
                    let row = tx
                        .txn
                        .query_one(
                            "SELECT id FROM threads WHERE user_low = $1 AND user_high = $2",
                            &[&low, &high],
                        )
                        .await?;
                    (row.get(0), false)
                }
            };
            (tx.thread_view(id, viewer).await?, created)
        })
    }

    pub async fn delete_thread(&self, id: i64) -> StoreResult<bool> {
        transaction!(self, tx => {
            let deleted = tx
                .txn
                .query_opt(
                    "DELETE FROM threads WHERE id = $1 RETURNING user_low, user_high",
                    &[&id],
                )
                .await?;
            match deleted {
                Some(row) => {
                    for user in [row.get::<_, i64>(0), row.get(1)] {
                        tx.append_event(user, payload::thread_deleted(id));
                    }
                    true
                }
                None => false,
            }
        })
    }

    pub async fn threads_of(
        &self,
        user: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<ThreadView>> {
        let count = self
            .query_opt(THREAD_COUNT, &[&user], |row| row.get::<_, i64>(0))
            .await?
            .unwrap_or(0);
        let items = self
            .query_all(
                &THREAD_LIST,
                &[&user, &limit, &offset],
                thread_view_from_row,
            )
            .await?;
        Ok(Counted { count, items })
    }

    // ----- messages -----

    pub async fn messages(
        &self,
        thread: i64,
        window: MessageWindow,
    ) -> StoreResult<(Counted<Message>, i64)> {
        let total = self
            .query_opt(
                "SELECT message_count FROM threads WHERE id = $1",
                &[&thread],
                |row| row.get::<_, i64>(0),
            )
            .await?
            .unwrap_or(0);
        let count_where = |sql: &'static str, id: i64| async move {
            self.query_opt(sql, &[&thread, &id], |row| row.get::<_, i64>(0))
                .await
                .map(|c| c.unwrap_or(0))
        };
        let (count, items) = match window {
            MessageWindow::Offset { limit, offset } => (
                total,
                self.query_all(
                    &MESSAGES_BY_OFFSET,
                    &[&thread, &limit, &offset],
                    message_from_row,
                )
                .await?,
            ),
            MessageWindow::After { id, limit } => (
                count_where(COUNT_AFTER, id).await?,
                self.query_all(&MESSAGES_AFTER, &[&thread, &id, &limit], message_from_row)
                    .await?,
            ),
            MessageWindow::Before { id, limit } => (
                count_where(COUNT_BEFORE, id).await?,
                self.query_all(&MESSAGES_BEFORE, &[&thread, &id, &limit], message_from_row)
                    .await?,
            ),
        };
        Ok((Counted { count, items }, total))
    }

    pub async fn post_messages(
        &self,
        thread: i64,
        sender: i64,
        batch: Vec<NewMessage>,
    ) -> StoreResult<Option<Vec<Message>>> {
        transaction!(self, tx => {
            // Locking the thread row first orders concurrent posts to one thread.
            let members = tx
                .txn
                .query_opt(
                    "SELECT user_low, user_high FROM threads WHERE id = $1 FOR UPDATE",
                    &[&thread],
                )
                .await?
                .map(|row| ThreadMembers { id: thread, users: [row.get(0), row.get(1)] });
            match members {
                None => None,
                Some(members) => Some(tx.post(members, sender, &batch).await?),
            }
        })
    }

    pub async fn mark_read(&self, reader: i64, ids: Vec<i64>) -> StoreResult<i64> {
        transaction!(self, tx => {
            let marked = tx
                .txn
                .query(
                    "UPDATE messages SET is_read = TRUE
                     WHERE id = ANY($1)
                       AND NOT is_read
                       AND sender_id <> $2
                       AND thread_id IN (SELECT thread_id FROM thread_members WHERE user_id = $2)
                     RETURNING thread_id, id",
                    &[&ids, &reader],
                )
                .await?;
            let total = marked.len() as i64;
            let mut by_thread: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for row in marked {
                by_thread.entry(row.get(0)).or_default().push(row.get(1));
            }
            for (thread, mut ids) in by_thread {
                ids.sort_unstable();
                let row = tx
                    .txn
                    .query_one(
                        "UPDATE thread_members SET unread = unread - $3
                         WHERE user_id = $1 AND thread_id = $2
                         RETURNING unread",
                        &[&reader, &thread, &(ids.len() as i64)],
                    )
                    .await?;
                let reader_unread: i64 = row.get(0);
                let members = tx.members(thread).await?;
                let sender = members.other(reader);
                let sender_unread = tx.unread_in(sender, thread).await?;
                tx.append_event(reader, payload::messages_read(thread, &ids, reader, reader_unread));
                tx.append_event(sender, payload::messages_read(thread, &ids, reader, sender_unread));
            }
            total
        })
    }

    pub async fn unread_count(&self, user: i64) -> StoreResult<i64> {
        Ok(self
            .query_opt(UNREAD_TOTAL, &[&user], |row| row.get::<_, i64>(0))
            .await?
            .unwrap_or(0))
    }

    // ----- events -----

    pub async fn events_after(
        &self,
        user: i64,
        since: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<Event>)> {
        let head = self
            .query_opt(
                "SELECT event_seq FROM users WHERE id = $1",
                &[&user],
                |row| row.get::<_, i64>(0),
            )
            .await?
            .unwrap_or(0);
        let events = self
            .query_all(EVENTS_AFTER, &[&user, &since, &limit], |row| Event {
                seq: row.get(0),
                payload: serde_json::from_str(row.get::<_, &str>(1)).unwrap_or(Value::Null),
            })
            .await?;
        Ok((head, events))
    }

    pub async fn event_bounds(&self, user: i64) -> StoreResult<(i64, Option<i64>)> {
        Ok(self
            .query_opt(
                "SELECT event_seq, (SELECT MIN(seq) FROM events WHERE user_id = $1)
                 FROM users WHERE id = $1",
                &[&user],
                |row| (row.get(0), row.get(1)),
            )
            .await?
            .unwrap_or((0, None)))
    }

    pub async fn prune_events(&self, cutoff: Timestamp, limit: i64) -> StoreResult<usize> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM events WHERE (user_id, seq) IN (
                     SELECT user_id, seq FROM events WHERE created < $1 LIMIT $2
                 )",
                &[&cutoff.micros(), &limit],
            )
            .await?;
        Ok(deleted as usize)
    }
}

impl PgTx<'_> {
    /// Queues an event for a user's log; seqs are assigned at the end of the transaction.
    fn append_event(&mut self, user: i64, payload: Value) {
        self.events.push((user, payload));
    }

    /// Writes the queued events (taking each user's seqs in one update, in user-id order),
    /// notifies the other instances, and commits.
    async fn finish(mut self) -> StoreResult<Commit> {
        let mut per_user: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        for (user, payload) in std::mem::take(&mut self.events) {
            per_user.entry(user).or_default().push(payload);
        }
        let bump = self
            .txn
            .prepare_cached(
                "UPDATE users SET event_seq = event_seq + $2 WHERE id = $1 RETURNING event_seq",
            )
            .await?;
        let insert = self
            .txn
            .prepare_cached(
                "INSERT INTO events (user_id, seq, created, payload)
                 SELECT $1, s.seq, $3, s.payload
                 FROM unnest($2::BIGINT[], $4::TEXT[]) AS s(seq, payload)",
            )
            .await?;
        for (user, payloads) in per_user {
            let n = payloads.len() as i64;
            let Some(row) = self.txn.query_opt(&bump, &[&user, &n]).await? else {
                continue;
            };
            let head: i64 = row.get(0);
            let seqs: Vec<i64> = (head - n + 1..=head).collect();
            let texts: Vec<String> = payloads.iter().map(Value::to_string).collect();
            self.txn
                .execute(&insert, &[&user, &seqs, &self.now.micros(), &texts])
                .await?;
            self.commit.events_for.push(user);
        }
        self.commit.dedup();
        if !self.commit.is_empty() {
            let note = serde_json::json!({
                "e": self.commit.events_for,
                "s": self.commit.signed_out,
            })
            .to_string();
            self.txn
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &note])
                .await?;
        }
        self.txn.commit().await?;
        Ok(self.commit)
    }

    async fn members(&self, thread: i64) -> StoreResult<ThreadMembers> {
        let row = self.txn.query_one(MEMBERS, &[&thread]).await?;
        Ok(ThreadMembers {
            id: thread,
            users: [row.get(0), row.get(1)],
        })
    }

    async fn thread_view(&self, id: i64, viewer: i64) -> StoreResult<ThreadView> {
        let statement = self.txn.prepare_cached(&THREAD_VIEW).await?;
        let row = self.txn.query_one(&statement, &[&id, &viewer]).await?;
        Ok(thread_view_from_row(&row))
    }

    async fn unread_in(&self, user: i64, thread: i64) -> StoreResult<i64> {
        Ok(self
            .txn
            .query_opt(
                "SELECT unread FROM thread_members WHERE user_id = $1 AND thread_id = $2",
                &[&user, &thread],
            )
            .await?
            .map_or(0, |row| row.get(0)))
    }

    /// Stores a batch (see `Store::post_messages`).
    async fn post(
        &mut self,
        members: ThreadMembers,
        sender: i64,
        batch: &[NewMessage],
    ) -> StoreResult<Vec<Message>> {
        let thread = members.id;
        let recipient = members.other(sender);
        let now = self.now.micros();
        let by_client_id = self.txn.prepare_cached(&MESSAGE_BY_CLIENT_ID).await?;
        let insert = self.txn.prepare_cached(&MESSAGE_INSERT).await?;
        let mut stored = Vec::with_capacity(batch.len());
        let mut fresh = Vec::new();
        for message in batch {
            if let Some(client_id) = &message.client_id
                && let Some(row) = self
                    .txn
                    .query_opt(&by_client_id, &[&sender, client_id])
                    .await?
            {
                stored.push(message_from_row(&row));
                continue;
            }
            let row = self
                .txn
                .query_one(
                    &insert,
                    &[&thread, &sender, &message.text, &now, &message.client_id],
                )
                .await?;
            let inserted = message_from_row(&row);
            fresh.push(inserted.clone());
            stored.push(inserted);
        }
        let Some(last) = fresh.last() else {
            return Ok(stored);
        };
        let added = fresh.len() as i64;
        self.txn
            .execute(
                "UPDATE threads SET updated = $2, last_message_id = $3,
                                    message_count = message_count + $4
                 WHERE id = $1",
                &[&thread, &now, &last.id, &added],
            )
            .await?;
        let rows = self
            .txn
            .query(
                "UPDATE thread_members
                 SET updated = $2, unread = unread + CASE WHEN user_id = $3 THEN $4::BIGINT ELSE 0 END
                 WHERE thread_id = $1
                 RETURNING user_id, unread",
                &[&thread, &now, &recipient, &added],
            )
            .await?;
        let unread_of = |user: i64| {
            rows.iter()
                .find(|row| row.get::<_, i64>(0) == user)
                .map_or(0, |row| row.get::<_, i64>(1))
        };
        let (sender_unread, recipient_unread) = (unread_of(sender), unread_of(recipient));
        let first_unread = recipient_unread - added;
        for (i, message) in fresh.iter().enumerate() {
            self.append_event(sender, payload::message_created(message, sender_unread));
            let unread = first_unread + i as i64 + 1;
            self.append_event(recipient, payload::message_created(message, unread));
        }
        Ok(stored)
    }
}

async fn listen_loop(config: tokio_postgres::Config, hook: Arc<OnceLock<CommitHook>>) {
    use futures_util::StreamExt;
    let mut delay = Duration::from_millis(200);
    let mut first = true;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let listening = async { client.batch_execute(&format!("LISTEN {CHANNEL}")).await };
                // The connection must be driven while LISTEN runs.
                let mut listen = std::pin::pin!(listening);
                let ready = loop {
                    tokio::select! {
                        result = &mut listen => break result.is_ok(),
                        message = messages.next() => if message.is_none() { break false },
                    }
                };
                if ready {
                    if first {
                        tracing::info!("listening for other instances' commits");
                    } else {
                        tracing::warn!("re-established the notification connection");
                        // Anything may have been missed meanwhile: wake every connection.
                        if let Some(hook) = hook.get() {
                            hook(&Commit {
                                everyone: true,
                                ..Commit::default()
                            });
                        }
                    }
                    first = false;
                    delay = Duration::from_millis(200);
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                                if let (Some(hook), Some(commit)) =
                                    (hook.get(), parse_note(note.payload()))
                                {
                                    hook(&commit);
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "notification connection failed");
                                break;
                            }
                        }
                    }
                }
                tracing::warn!("lost the notification connection; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open the notification connection; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn parse_note(text: &str) -> Option<Commit> {
    let note: Value = serde_json::from_str(text).ok()?;
    let ids = |key: &str| -> Vec<i64> {
        note.get(key)
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    Some(Commit {
        events_for: ids("e"),
        signed_out: ids("s"),
        everyone: false,
    })
}

// ----- SQL -----

const USER_COLUMNS: &str = "id, username, email, first_name, last_name, password, is_active, \
                            is_staff, is_superuser, date_joined, last_login, token_version";
const MESSAGE_COLUMNS: &str = "id, thread_id, sender_id, text, created, is_read, client_id";

static USER_BY_ID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"));
static USER_BY_NAME: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"));
static USER_INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO users (username, password, email, first_name, last_name,
                            is_active, is_staff, is_superuser, date_joined)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {USER_COLUMNS}"
    )
});
static USER_UPDATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE users SET
             username = COALESCE($2, username),
             email = COALESCE($3, email),
             first_name = COALESCE($4, first_name),
             last_name = COALESCE($5, last_name),
             password = COALESCE($6, password),
             is_active = COALESCE($7, is_active),
             is_staff = COALESCE($8, is_staff),
             is_superuser = COALESCE($9, is_superuser),
             token_version = token_version + $10
         WHERE id = $1
         RETURNING {USER_COLUMNS}"
    )
});
const MEMBERS: &str = "SELECT user_low, user_high FROM threads WHERE id = $1";
const THREAD_VIEW_SELECT: &str = "SELECT t.id, t.created, t.updated, t.user_low, ul.username, \
    t.user_high, uh.username, COALESCE(me.unread, 0), \
    m.id, m.thread_id, m.sender_id, m.text, m.created, m.is_read, m.client_id";
const THREAD_VIEW_JOINS: &str = "JOIN users ul ON ul.id = t.user_low \
    JOIN users uh ON uh.id = t.user_high \
    LEFT JOIN messages m ON m.id = t.last_message_id";
static THREAD_VIEW: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{THREAD_VIEW_SELECT}
         FROM threads t
         LEFT JOIN thread_members me ON me.thread_id = t.id AND me.user_id = $2
         {THREAD_VIEW_JOINS}
         WHERE t.id = $1"
    )
});
static THREAD_LIST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{THREAD_VIEW_SELECT}
         FROM thread_members me
         JOIN threads t ON t.id = me.thread_id
         {THREAD_VIEW_JOINS}
         WHERE me.user_id = $1
         ORDER BY me.updated DESC, me.thread_id DESC
         LIMIT $2 OFFSET $3"
    )
});
const THREAD_COUNT: &str = "SELECT COUNT(*) FROM thread_members WHERE user_id = $1";
const UNREAD_TOTAL: &str =
    "SELECT CAST(COALESCE(SUM(unread), 0) AS BIGINT) FROM thread_members WHERE user_id = $1";
static MESSAGES_BY_OFFSET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1
         ORDER BY id LIMIT $2 OFFSET $3"
    )
});
static MESSAGES_AFTER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1 AND id > $2
         ORDER BY id LIMIT $3"
    )
});
static MESSAGES_BEFORE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT * FROM (
             SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE thread_id = $1 AND id < $2
             ORDER BY id DESC LIMIT $3
         ) AS page ORDER BY id"
    )
});
const COUNT_AFTER: &str = "SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id > $2";
const COUNT_BEFORE: &str = "SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id < $2";
static MESSAGE_BY_CLIENT_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = $1 AND client_id = $2")
});
static MESSAGE_INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO messages (thread_id, sender_id, text, created, client_id)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING {MESSAGE_COLUMNS}"
    )
});
const EVENTS_AFTER: &str = "SELECT seq, payload FROM events WHERE user_id = $1 AND seq > $2
     ORDER BY seq LIMIT $3";

fn user_from_row(row: &Row) -> User {
    User {
        id: row.get(0),
        username: row.get(1),
        email: row.get(2),
        first_name: row.get(3),
        last_name: row.get(4),
        password: row.get(5),
        is_active: row.get(6),
        is_staff: row.get(7),
        is_superuser: row.get(8),
        date_joined: Timestamp(row.get(9)),
        last_login: row.get::<_, Option<i64>>(10).map(Timestamp),
        token_version: row.get(11),
    }
}

fn message_from_row(row: &Row) -> Message {
    message_at(row, 0).expect("a selected message row has an id")
}

fn message_at(row: &Row, at: usize) -> Option<Message> {
    let id: Option<i64> = row.get(at);
    Some(Message {
        id: id?,
        thread: row.get(at + 1),
        sender: row.get(at + 2),
        text: row.get(at + 3),
        created: Timestamp(row.get(at + 4)),
        is_read: row.get(at + 5),
        client_id: row.get(at + 6),
    })
}

fn thread_view_from_row(row: &Row) -> ThreadView {
    let low = Participant {
        id: row.get(3),
        username: row.get(4),
    };
    let high = Participant {
        id: row.get(5),
        username: row.get(6),
    };
    ThreadView {
        id: row.get(0),
        participants_list: [low.username.clone(), high.username.clone()],
        participants: [low, high],
        created: Timestamp(row.get(1)),
        updated: Timestamp(row.get(2)),
        unread_count: row.get(7),
        last_message: message_at(row, 8),
    }
}
