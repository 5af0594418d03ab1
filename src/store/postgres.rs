//! The PostgreSQL engine (tokio-postgres with a deadpool pool), for production and for several
//! instances on one database.
//!
//! What differs from SQLite in kind:
//! - Many writers run at once. Each write is one transaction (see `store::write!`); per-user
//!   event seqs are taken at the end of it with `UPDATE users SET event_seq = event_seq + n ...
//!   RETURNING`, in user-id order, so two transactions never wait on each other in a cycle.
//!   Deadlocks and serialization failures that happen anyway are retried.
//! - Other instances learn of commits through `NOTIFY simple_chat` (sent inside the
//!   transaction, so it is delivered exactly when the commit is visible), in notes of at most
//!   [`IDS_PER_NOTE`] user ids each (PostgreSQL refuses payloads over 8,000 bytes). The log stays
//!   the truth, so a lost notification only delays a frame until the next wake-up.
//! - Connection failures become `StoreError::Unavailable` (503); every statement has a timeout,
//!   and waiting for a pooled connection is bounded.

mod listen;

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::{NoTls, error::SqlState};

use super::{
    Commit, StoreError, StoreOptions, StoreResult,
    db::{Column, Db, Dialect, FromRow, Param, Row, Sql, Tx},
    events::{self, NewEvent},
    user_cache::UserCache,
};
use crate::clock::Timestamp;

pub(crate) type CommitHook = Box<dyn Fn(&Commit) + Send + Sync>;

/// The channel instances NOTIFY each other on.
pub(crate) const CHANNEL: &str = "simple_chat";
/// Serializes migrations when several instances start at once.
const MIGRATION_LOCK: i64 = 0x5349_4d50_4c45; // "SIMPLE"
const RETRIES: usize = 5;
/// User ids per NOTIFY payload: 300 ids of at most 20 characters stay far below 8,000 bytes.
pub(crate) const IDS_PER_NOTE: usize = 300;

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    hook: Arc<OnceLock<CommitHook>>,
    users: Arc<UserCache>,
    /// For the dedicated LISTEN connection.
    config: Arc<tokio_postgres::Config>,
}

/// A pooled connection (or any client), as the topic modules see it.
pub struct PgDb<'c, C: GenericClient>(pub &'c C);

/// An open transaction and what it changed (for the commit hook and NOTIFY).
pub struct PgTx<'c> {
    txn: deadpool_postgres::Transaction<'c>,
    now: Timestamp,
    events: Vec<(i64, NewEvent)>,
    commit: Commit,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// The `table.column` name SQLite would report for a unique constraint, so callers match one
/// spelling.
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
            let code = db.code();
            if code == &SqlState::UNIQUE_VIOLATION {
                let constraint = db.constraint().unwrap_or_default();
                return StoreError::Conflict(constraint_column(constraint).to_owned());
            }
            if code == &SqlState::T_R_DEADLOCK_DETECTED
                || code == &SqlState::T_R_SERIALIZATION_FAILURE
            {
                return StoreError::Retry(db.message().to_owned());
            }
            if code == &SqlState::QUERY_CANCELED
                || code == &SqlState::ADMIN_SHUTDOWN
                || code == &SqlState::CANNOT_CONNECT_NOW
                || code == &SqlState::TOO_MANY_CONNECTIONS
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

/// Whether a failed transaction is worth running again (attempt `attempt` just failed).
pub fn should_retry(error: &StoreError, attempt: usize) -> bool {
    attempt < RETRIES
        && match error {
            StoreError::Retry(_) => true,
            // A concurrent insert of the same client_id: the retry finds the stored message.
            StoreError::Conflict(what) => what == "messages.sender_id, messages.client_id",
            _ => false,
        }
}

pub async fn back_off(attempt: usize) {
    tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
}

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
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.pool_wait))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        let store = PostgresStore {
            pool,
            hook: Arc::new(OnceLock::new()),
            users: Arc::new(UserCache::default()),
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
            let done: Vec<String> = client
                .query("SELECT name FROM schema_migrations", &[])
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            super::refuse_newer(&done, super::migrations::POSTGRES)?;
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

    pub async fn client(&self) -> StoreResult<Object> {
        let started = std::time::Instant::now();
        let client = self.pool.get().await;
        metrics::histogram!("simple_chat_db_pool_wait_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(client?)
    }

    /// Sets the pool gauges for a metrics scrape.
    pub fn record_gauges(&self) {
        let status = self.pool.status();
        let idle = status.available;
        let in_use = status.size.saturating_sub(idle);
        metrics::gauge!("simple_chat_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("simple_chat_db_pool_connections", "state" => "in_use").set(in_use as f64);
        metrics::gauge!("simple_chat_db_pool_waiting").set(status.waiting as f64);
    }

    /// Opens a transaction on a pooled connection.
    pub async fn begin<'c>(&self, client: &'c mut Object) -> StoreResult<PgTx<'c>> {
        Ok(PgTx {
            txn: client.transaction().await?,
            now: Timestamp::now(),
            events: Vec::new(),
            commit: Commit::default(),
        })
    }

    pub fn on_commit(&self, hook: impl Fn(&Commit) + Send + Sync + 'static) {
        let _ = self.hook.set(Box::new(hook));
    }

    pub fn user_cache(&self) -> &UserCache {
        &self.users
    }

    pub fn after_commit(&self, commit: &Commit) {
        self.users.apply(commit);
        if !commit.is_empty()
            && let Some(hook) = self.hook.get()
        {
            hook(commit);
        }
    }

    /// Sends an ephemeral frame to every instance (this one included, through its own LISTEN).
    pub async fn notify_ephemeral(&self, ephemeral: &super::Ephemeral) -> StoreResult<()> {
        let client = self.client().await?;
        for note in listen::ephemeral_notes(ephemeral) {
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &note])
                .await?;
        }
        Ok(())
    }

    /// Listens for other instances' commits and tells the hook, until the store is dropped.
    /// A lost listening connection is re-established (and logged); after a reconnect every
    /// local connection is woken, since notifications may have been missed meanwhile.
    pub fn listen(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(listen::listen_loop(
            (*self.config).clone(),
            self.hook.clone(),
            self.users.clone(),
        ))
    }
}

impl Row for tokio_postgres::Row {
    fn get<T: Column>(&self, column: &str) -> StoreResult<T> {
        self.try_get(column)
            .map_err(|e| StoreError::Other(e.into()))
    }

    fn first<T: Column>(&self) -> StoreResult<T> {
        self.try_get(0).map_err(|e| StoreError::Other(e.into()))
    }
}

async fn query<T: FromRow>(
    client: &impl GenericClient,
    sql: &Sql,
    params: &[&dyn Param],
) -> StoreResult<Vec<T>> {
    let statement = client.prepare_cached(sql.text(Dialect::Postgres)).await?;
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| *p as _).collect();
    let rows = client.query(&statement, &params).await?;
    rows.iter().map(T::from_row).collect()
}

async fn execute(
    client: &impl GenericClient,
    sql: &Sql,
    params: &[&dyn Param],
) -> StoreResult<u64> {
    let statement = client.prepare_cached(sql.text(Dialect::Postgres)).await?;
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| *p as _).collect();
    Ok(client.execute(&statement, &params).await?)
}

impl<C: GenericClient> Db for PgDb<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn rows<T: FromRow>(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Vec<T>> {
        query(self.0, sql, params).await
    }

    async fn execute(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<u64> {
        execute(self.0, sql, params).await
    }
}

impl Db for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn rows<T: FromRow>(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Vec<T>> {
        query(&self.txn, sql, params).await
    }

    async fn execute(&self, sql: &Sql, params: &[&dyn Param]) -> StoreResult<u64> {
        execute(&self.txn, sql, params).await
    }
}

impl Tx for PgTx<'_> {
    fn now(&self) -> Timestamp {
        self.now
    }

    /// Queued; seqs are taken at the end of the transaction (see [`PgTx::finish`]).
    async fn append_events(&mut self, user: i64, events: Vec<NewEvent>) -> StoreResult<()> {
        self.events
            .extend(events.into_iter().map(|event| (user, event)));
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

impl PgTx<'_> {
    /// Writes the queued events (taking each user's seqs in one update, in user-id order),
    /// notifies the other instances, and commits.
    pub async fn finish(mut self) -> StoreResult<Commit> {
        let mut per_user: BTreeMap<i64, Vec<NewEvent>> = BTreeMap::new();
        for (user, event) in std::mem::take(&mut self.events) {
            per_user.entry(user).or_default().push(event);
        }
        for (user, events) in per_user {
            let n = events.len() as i64;
            let head: Option<i64> = self.row(&events::TAKE_SEQS, &[&user, &n]).await?;
            let Some(head) = head else {
                continue; // the user is gone: nobody to tell
            };
            let seqs: Vec<i64> = (head - n + 1..=head).collect();
            let messages: Vec<Option<i64>> = events.iter().map(|e| e.message).collect();
            let payloads: Vec<&str> = events.iter().map(|e| e.payload.as_str()).collect();
            let insert = self
                .txn
                .prepare_cached(events::INSERT_MANY_POSTGRES.text(Dialect::Postgres))
                .await?;
            self.txn
                .execute(&insert, &[&user, &seqs, &self.now, &messages, &payloads])
                .await?;
            self.commit.events_for.push(user);
        }
        self.commit.dedup();
        for note in listen::notes(&self.commit) {
            self.txn
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &note])
                .await?;
        }
        self.txn.commit().await?;
        Ok(self.commit)
    }
}
