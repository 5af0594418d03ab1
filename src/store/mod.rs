//! Storage: the one seam between the application and its database.
//!
//! Handlers, the CLI and the admin page call the operations of [`Store`] (create a thread, post
//! a batch, mark read, ...) and never see SQL. Each operation that changes something runs in
//! one transaction together with the events it appends to the participants' logs, so the log
//! can never disagree with the data.
//!
//! The code is organised by topic; each topic module owns its row types, its SQL (written once,
//! see [`db`]) and its rules (who is told what, which counter moves):
//! [`settings`], [`users`], [`threads`], [`messages`] (and their [`reactions`]), [`blocks`],
//! [`presence`], [`events`], [`tokens`] (signed-out refresh tokens), [`sessions`] (the admin
//! page's), [`admin`] (lists across all users) and [`transfer`] (moving whole databases).
//!
//! Two engines run those operations: `sqlite` (embedded, the zero-configuration default: reader
//! threads and one group-commit writer) and `postgres` (production and several instances: a
//! pool, retried transactions, LISTEN/NOTIFY). They keep only what really differs: how a
//! statement reaches the database, how event seqs are taken, and how other instances learn of
//! a commit. The engine is picked from the URL scheme.

pub mod admin;
pub mod blocks;
pub mod db;
pub mod events;
pub mod files;
pub mod json_list;
pub mod kept;
pub mod list_cache;
pub mod messages;
pub mod packed;
#[cfg(test)]
mod plans;
mod postgres;
pub mod presence;
pub mod reactions;
pub mod search;
pub mod sessions;
pub mod settings;
mod sqlite;
pub mod threads;
pub mod tokens;
pub mod transfer;
pub mod user_cache;
pub mod users;

pub use events::Event;
pub use messages::{Message, MessageWindow, NewMessage};
pub use sqlite::allocator::use_mimalloc as sqlite_use_mimalloc;
pub use sqlite::page_cache::{
    parked_pages as sqlite_parked_pages, use_renamed_parking as sqlite_use_renamed_parking,
};
pub use threads::{Pair, Participant, ThreadMembers, ThreadView};
pub use users::{NewUser, User, UserChanges};

mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The file of a `sqlite://path` URL (`None`: not an SQLite URL).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    url.starts_with("sqlite:")
        .then(|| sqlite::path_from_url(url).ok())
        .flatten()
}

/// The newest migration this binary knows (the same on both backends): the schema it expects.
pub const SCHEMA: &str = env!("SIMPLE_CHAT_SCHEMA");

/// Refuses a database that a newer binary migrated (it lists a migration this one does not
/// know): its tables may hold what this binary would misread or damage.
fn refuse_newer(applied: &[String], known: &[(&str, &str)]) -> StoreResult<()> {
    let unknown: Vec<&str> = applied
        .iter()
        .map(String::as_str)
        .filter(|name| !known.iter().any(|(k, _)| k == name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StoreError::NewerSchema {
        unknown: unknown.join(", "),
        known: SCHEMA,
    })
}

/// The storage of an instance. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

/// How to connect (PostgreSQL; SQLite has its own fixed set of connections), and what to
/// keep in memory (SQLite).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Connections in the pool; `None`: four per core, between 8 and 32.
    pub pool_size: Option<usize>,
    /// How long a request waits for a pooled connection before it gets 503.
    pub pool_wait: std::time::Duration,
    /// The longest any statement may run.
    pub statement_timeout: std::time::Duration,
    /// Memory for answers kept while unchanged (SQLite: see [`kept`]); 0 keeps none.
    pub kept_answers_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            pool_size: None,
            pool_wait: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(10),
            kept_answers_bytes: 216 << 20,
        }
    }
}

impl Store {
    /// Opens the database of a `sqlite://path` or `postgres://...` URL with default options.
    pub async fn open(url: &str) -> StoreResult<(Store, Vec<String>)> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// Opens the database of a `sqlite://path` or `postgres://...` URL and applies pending
    /// migrations; returns the names of those applied now.
    pub async fn open_with(url: &str, options: &StoreOptions) -> StoreResult<(Store, Vec<String>)> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (store, applied) = postgres::PostgresStore::open(url, options).await?;
            Ok((Store::Postgres(store), applied))
        } else if url.starts_with("sqlite:") {
            let url = url.to_owned();
            let kept = options.kept_answers_bytes;
            let (store, applied) =
                tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&url, kept))
                    .await
                    .map_err(|e| StoreError::Other(e.into()))??;
            let store = Store::Sqlite(store);
            store.ensure_search_index().await?;
            Ok((store, applied))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Whether this is the only instance serving the database (SQLite: one process owns the
    /// file), so what the instance knows in memory is the whole truth (who is online).
    pub fn single_instance(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    /// Sets the gauges of the database's queues and pool for a metrics scrape.
    pub fn record_gauges(&self) {
        match self {
            Store::Sqlite(store) => store.record_gauges(),
            Store::Postgres(store) => store.record_gauges(),
        }
    }

    /// Registers the function told, after each commit (on PostgreSQL also the commits of other
    /// instances), which users' logs grew and whose sessions ended.
    pub fn on_commit(&self, hook: impl Fn(&Commit) + Send + Sync + 'static) {
        match self {
            Store::Sqlite(store) => store.on_commit(hook),
            Store::Postgres(store) => store.on_commit(hook),
        }
    }

    /// Delivers an ephemeral frame to the open sockets of `to` on every instance (best effort:
    /// it is in no log). SQLite has one instance: straight to the commit hook. PostgreSQL:
    /// `NOTIFY`, which every instance (this one too) hears.
    pub async fn send_ephemeral(
        &self,
        frame: std::sync::Arc<str>,
        to: Vec<i64>,
    ) -> StoreResult<()> {
        if to.is_empty() {
            return Ok(());
        }
        let ephemeral = Ephemeral { frame, to };
        match self {
            Store::Sqlite(store) => {
                store.tell(&Commit {
                    frames: vec![ephemeral],
                    ..Commit::default()
                });
                Ok(())
            }
            Store::Postgres(store) => store.notify_ephemeral(&ephemeral).await,
        }
    }

    /// The users kept in memory for authentication.
    pub(crate) fn user_cache(&self) -> &user_cache::UserCache {
        match self {
            Store::Sqlite(store) => store.user_cache(),
            Store::Postgres(store) => store.user_cache(),
        }
    }

    /// What SQLite keeps in memory while unchanged ([`kept`]: thread lists, latest pages,
    /// threads by pair, threads' members, unread totals); PostgreSQL keeps none of it.
    pub(crate) fn kept(&self) -> Option<&sqlite::Caches> {
        match self {
            Store::Sqlite(store) => Some(store.caches()),
            Store::Postgres(_) => None,
        }
    }

    /// Starts following other instances' commits (PostgreSQL only; SQLite has one instance).
    pub fn follow_other_instances(&self) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(store) => Some(store.listen()),
        }
    }
}

/// Runs `$body` (an expression of type `StoreResult<T>` that may `.await`) with `$db` bound to
/// a read connection of whichever engine the store uses. The body is written once and compiled
/// for both engines. For quick reads (a few rows by an index): on SQLite they run inline on the
/// calling thread; reads that may take long use [`read_apart!`].
macro_rules! read {
    ($store:expr, |$db:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(engine) => {
                engine
                    .read(|$db| $crate::store::sqlite::run_now(async { $body }))
                    .await
            }
            $crate::store::Store::Postgres(engine) => {
                let client = engine.client().await?;
                let $db = &$crate::store::postgres::PgDb(&client);
                $body
            }
        }
    };
}

/// [`read!`] for reads that may take long (search, files, admin counts, whole tables): on
/// SQLite they run on a reader thread, so the body moves its captures there.
macro_rules! read_apart {
    ($store:expr, |$db:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(engine) => {
                engine
                    .read_apart(move |$db| $crate::store::sqlite::run_now(async move { $body }))
                    .await
            }
            $crate::store::Store::Postgres(engine) => {
                let client = engine.client().await?;
                let $db = &$crate::store::postgres::PgDb(&client);
                $body
            }
        }
    };
}

/// Runs `$body` with `$tx` bound to an open write transaction (`&mut impl Tx`): on SQLite a
/// savepoint inside the writer's group commit, on PostgreSQL a transaction retried on deadlock
/// or serialization failure (so the body may run more than once and must only borrow).
macro_rules! write {
    ($store:expr, |$tx:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(engine) => {
                engine
                    .write(move |$tx| $crate::store::sqlite::run_now(async move { $body }))
                    .await
            }
            $crate::store::Store::Postgres(engine) => {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let outcome = async {
                        let mut client = engine.client().await?;
                        let mut transaction = engine.begin(&mut client).await?;
                        let value: $crate::store::StoreResult<_> = {
                            let $tx = &mut transaction;
                            $body
                        };
                        let value = value?;
                        let commit = transaction.finish().await?;
                        Ok::<_, $crate::store::StoreError>((value, commit))
                    }
                    .await;
                    match outcome {
                        Ok((value, commit)) => {
                            engine.after_commit(&commit);
                            break Ok(value);
                        }
                        Err(error) if $crate::store::postgres::should_retry(&error, attempt) => {
                            $crate::store::postgres::back_off(attempt).await;
                        }
                        Err(error) => break Err(error),
                    }
                }
            }
        }
    };
}

pub(crate) use {read, read_apart, write};

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub(crate) fn escape_like(term: &str) -> String {
    term.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `%term%`, escaped, for a case-insensitive substring match (see [`db::Dialect`]'s `LIKE`).
pub(crate) fn contains_pattern(term: &str) -> String {
    format!("%{}%", escape_like(term))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the name says which (e.g. `users.username`).
    #[error("unique constraint {0} violated")]
    Conflict(String),
    /// The database cannot be reached or is shutting down; worth a retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unsupported database URL {0:?}: use sqlite://path or postgres://...")]
    UnsupportedUrl(String),
    /// The database was migrated by a newer binary.
    #[error(
        "this database was migrated by a newer Simple Chat (it has migration {unknown}; this \
         binary knows up to {known}): run the newer binary, or restore the backup taken before \
         the upgrade"
    )]
    NewerSchema {
        unknown: String,
        known: &'static str,
    },
    /// A deadlock or serialization failure: the transaction may simply be run again.
    #[error("transaction conflict: {0}")]
    Retry(String),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page of a list plus the total the list has.
#[derive(Clone, Debug)]
pub struct Counted<T> {
    pub count: i64,
    pub items: Vec<T>,
}

/// What one committed transaction changed, for the real-time layer: the users whose event logs
/// grew, and the users whose sessions ended (password change, deactivation, deletion). It also
/// carries ephemeral frames (typing, presence) from any instance to the sockets they are for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub events_for: Vec<i64>,
    pub signed_out: Vec<i64>,
    /// Users whose rows changed (name, role, password, ...), for the [`user_cache`].
    pub users_changed: Vec<i64>,
    /// A username changed: it may appear in any user's thread list ([`list_cache`]). Not sent
    /// to other instances (PostgreSQL keeps no lists).
    pub renamed: bool,
    /// A thread was deleted, by itself or with a user: the members kept by thread id are
    /// dropped (see [`Store::thread_members`]). Not sent to other instances.
    pub threads_deleted: bool,
    /// Wake every connection (after notifications may have been missed).
    pub everyone: bool,
    /// Frames for the open sockets of some users (not in any log).
    pub frames: Vec<Ephemeral>,
}

/// A frame for the sockets of `to`, wherever they are connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ephemeral {
    pub frame: std::sync::Arc<str>,
    pub to: Vec<i64>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.events_for.is_empty()
            && self.signed_out.is_empty()
            && self.users_changed.is_empty()
            && !self.renamed
            && !self.threads_deleted
            && !self.everyone
            && self.frames.is_empty()
    }

    /// A position to [`rewind`](Self::rewind) to when a job rolls back (`users_changed` is
    /// kept: dropping a cached user that did not change costs one read).
    pub fn mark(&self) -> (usize, usize) {
        (self.events_for.len(), self.signed_out.len())
    }

    pub fn rewind(&mut self, (events_for, signed_out): (usize, usize)) {
        self.events_for.truncate(events_for);
        self.signed_out.truncate(signed_out);
    }

    pub fn dedup(&mut self) {
        for users in [
            &mut self.events_for,
            &mut self.signed_out,
            &mut self.users_changed,
        ] {
            users.sort_unstable();
            users.dedup();
        }
    }
}
