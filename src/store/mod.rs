//! Storage: the one seam between the application and its database.
//!
//! Handlers and the CLI call the domain operations of [`Store`] (create a thread, post a batch,
//! mark read, ...) and never see SQL. Each operation that changes something runs in one
//! transaction together with the events it appends to the participants' event logs, so the log
//! can never disagree with the data.
//!
//! Two backends implement the same operations, each with its own SQL: [`sqlite`] (embedded,
//! the zero-configuration default) and [`postgres`] (production, several instances). The
//! backend is picked from the URL scheme; [`Store`] forwards each operation to it, so handlers
//! are written once. What the backends share (the shapes of events, the row types) lives here.

pub mod admin;
mod postgres;
mod sqlite;
pub mod transfer;

use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::Timestamp;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The storage of an instance. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// How to connect (PostgreSQL; SQLite has its own fixed set of connections).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Connections in the pool; `None`: four per core, between 8 and 32.
    pub pool_size: Option<usize>,
    /// How long a request waits for a pooled connection before it gets 503.
    pub pool_wait: std::time::Duration,
    /// The longest any statement may run.
    pub statement_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            pool_size: None,
            pool_wait: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(10),
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
            let (store, applied) = PostgresStore::open(url, options).await?;
            Ok((Store::Postgres(store), applied))
        } else if url.starts_with("sqlite:") {
            let url = url.to_owned();
            let (store, applied) = tokio::task::spawn_blocking(move || SqliteStore::open(&url))
                .await
                .map_err(|e| StoreError::Other(e.into()))??;
            Ok((Store::Sqlite(store), applied))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
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

    /// Starts following other instances' commits (PostgreSQL only; SQLite has one instance).
    pub fn follow_other_instances(&self) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(store) => Some(store.listen()),
        }
    }
}

/// Forwards each listed operation to the backend in use.
macro_rules! forward {
    ($( $(#[$meta:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$meta])*
                pub async fn $name(&self $(, $arg: $ty)*) -> StoreResult<$ret> {
                    match self {
                        Store::Sqlite(store) => store.$name($($arg),*).await,
                        Store::Postgres(store) => store.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

forward! {
    /// The value of a setting, storing `default` first when there is none (first writer wins).
    fn setting_or_insert(&self, key: &str, default: String) -> String;
    fn user(&self, id: i64) -> Option<User>;
    fn user_by_username(&self, username: &str) -> Option<User>;
    /// Users whose username (with `everywhere`, also email or names) contains `term`, by id.
    fn search_users(&self, term: &str, everywhere: bool, active_only: bool, limit: i64, offset: i64) -> Counted<User>;
    fn create_user(&self, user: NewUser) -> User;
    /// Applies the changes; a password change or a deactivation also ends the user's tokens.
    fn update_user(&self, id: i64, changes: UserChanges) -> Option<User>;
    /// Records a successful login, replacing the stored hash when it was upgraded.
    fn record_login(&self, id: i64, new_hash: Option<String>) -> ();
    /// Deletes the user with their threads and messages; the other participant of each thread
    /// gets `thread.deleted`. `false` when there was no such user.
    fn delete_user(&self, id: i64) -> bool;
    fn thread_members(&self, id: i64) -> Option<ThreadMembers>;
    /// A thread as `viewer` sees it.
    fn thread_view(&self, id: i64, viewer: i64) -> Option<ThreadView>;
    /// The thread of two different users as `viewer` sees it, created when there is none
    /// (`true`). The pair's unique constraint makes concurrent creations end in one thread.
    fn create_thread(&self, a: i64, b: i64, viewer: i64) -> (ThreadView, bool);
    /// Deletes a thread and its messages; both participants get `thread.deleted`.
    fn delete_thread(&self, id: i64) -> bool;
    /// A page of a user's threads, most recent activity first.
    fn threads_of(&self, user: i64, limit: i64, offset: i64) -> Counted<ThreadView>;
    /// A window of a thread's messages, oldest first, with the thread's total message count.
    fn messages(&self, thread: i64, window: MessageWindow) -> (Counted<Message>, i64);
    /// Stores a batch from `sender`, all or nothing, and tells both participants. A message whose
    /// `client_id` this sender used before is answered with the stored one. `None` when the
    /// thread no longer exists.
    fn post_messages(&self, thread: i64, sender: i64, batch: Vec<NewMessage>) -> Option<Vec<Message>>;
    /// Marks read the listed messages that `reader` received; returns how many were newly
    /// marked. Each thread touched gets one `messages.read` event in both logs.
    fn mark_read(&self, reader: i64, ids: Vec<i64>) -> i64;
    /// Messages sent to `user` that they have not read, over all their threads.
    fn unread_count(&self, user: i64) -> i64;
    /// The user's current seq and up to `limit` events after `since`, oldest first.
    fn events_after(&self, user: i64, since: i64, limit: i64) -> (i64, Vec<Event>);
    /// The user's current seq and the oldest seq still kept (`None` when the log is empty).
    fn event_bounds(&self, user: i64) -> (i64, Option<i64>);
    /// Deletes up to `limit` events created before `cutoff`; returns how many went.
    fn prune_events(&self, cutoff: Timestamp, limit: i64) -> usize;

    // ----- the admin page -----

    /// Stores a new admin session; expired sessions of everyone are swept on the way.
    fn create_admin_session(&self, session: admin::NewAdminSession) -> ();
    /// The unexpired session with this id hash, with its user as they are now.
    fn admin_session(&self, id_hash: &str) -> Option<admin::AdminSession>;
    /// Pushes a session's expiry forward and takes its waiting message (if any).
    fn touch_admin_session(&self, id_hash: &str, expires: Timestamp) -> Option<String>;
    /// Leaves a message for the session's next page.
    fn set_admin_flash(&self, id_hash: &str, message: String) -> ();
    fn delete_admin_session(&self, id_hash: &str) -> ();
    fn site_counts(&self) -> admin::SiteCounts;
    /// A page of all users matching the filter, by username.
    fn admin_users(&self, filter: admin::UserFilter, limit: i64, offset: i64) -> Counted<User>;
    /// A page of all threads (optionally those of a user whose username contains `search`),
    /// most recent activity first.
    fn admin_threads(&self, search: &str, limit: i64, offset: i64) -> Counted<admin::ThreadSummary>;
    fn admin_thread(&self, id: i64) -> Option<admin::ThreadSummary>;
    /// A page of all messages matching the filter, newest first.
    fn admin_messages(&self, filter: admin::MessageFilter, limit: i64, offset: i64) -> Counted<admin::MessageSummary>;
    fn admin_message(&self, id: i64) -> Option<admin::MessageSummary>;
    /// Deletes one message; the thread's counters follow and both participants get
    /// `message.deleted`. `None` when there was no such message.
    fn delete_message(&self, id: i64) -> Option<Message>;

    // ----- moving data (see `transfer`) -----

    fn count_rows(&self, table: transfer::Table) -> i64;
    /// Up to `limit` rows of a table after the key `after`, in key order.
    fn dump(&self, table: transfer::Table, after: (i64, i64), limit: i64) -> transfer::Rows;
    /// Inserts rows with their ids, in one transaction.
    fn load(&self, rows: transfer::Rows) -> ();
    /// Recomputes message counts, last messages, activity and unread counters.
    fn recount(&self) -> ();
    /// Lets new ids continue after the loaded ones.
    fn finish_load(&self) -> ();
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub(crate) fn escape_like(term: &str) -> String {
    term.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
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
    /// A deadlock or serialization failure: the transaction may simply be run again.
    #[error("transaction conflict: {0}")]
    Retry(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// The password hash (argon2id PHC string, or an imported Django hash).
    pub password: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: Timestamp,
    pub last_login: Option<Timestamp>,
    pub token_version: i64,
}

impl User {
    /// The contract's user JSON (never the password or its hash).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "is_active": self.is_active,
            "is_staff": self.is_staff,
            "is_superuser": self.is_superuser,
            "date_joined": self.date_joined,
            "last_login": self.last_login,
        })
    }

    /// What any signed-in user may see of another.
    pub fn to_public_json(&self) -> Value {
        json!({ "id": self.id, "username": self.username })
    }
}

/// A user to create; the password is already hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password_hash: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

impl UserChanges {
    /// Whether the change must end the user's existing tokens.
    pub fn ends_tokens(&self) -> bool {
        self.password_hash.is_some() || self.is_active == Some(false)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: i64,
    pub thread: i64,
    pub sender: i64,
    pub text: String,
    pub created: Timestamp,
    pub is_read: bool,
    pub client_id: Option<String>,
}

/// One message of a batch to post; already validated.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub text: String,
    pub client_id: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Participant {
    pub id: i64,
    pub username: String,
}

/// A thread as one user sees it: the contract's thread JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadView {
    pub id: i64,
    pub participants: [Participant; 2],
    pub participants_list: [String; 2],
    pub created: Timestamp,
    pub updated: Timestamp,
    pub last_message: Option<Message>,
    pub unread_count: i64,
}

impl ThreadView {
    /// Who takes part in the thread.
    pub fn members(&self) -> ThreadMembers {
        ThreadMembers {
            id: self.id,
            users: [self.participants[0].id, self.participants[1].id],
        }
    }
}

/// Who takes part in a thread (ids in ascending order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadMembers {
    pub id: i64,
    pub users: [i64; 2],
}

impl ThreadMembers {
    pub fn includes(&self, user_id: i64) -> bool {
        self.users.contains(&user_id)
    }

    pub fn other(&self, user_id: i64) -> i64 {
        if self.users[0] == user_id {
            self.users[1]
        } else {
            self.users[0]
        }
    }
}

/// Which slice of a thread's messages to read, oldest first.
#[derive(Clone, Copy, Debug)]
pub enum MessageWindow {
    Offset { limit: i64, offset: i64 },
    After { id: i64, limit: i64 },
    Before { id: i64, limit: i64 },
}

/// A page of a list plus the total the list has.
#[derive(Debug)]
pub struct Counted<T> {
    pub count: i64,
    pub items: Vec<T>,
}

/// What one committed transaction changed, for the real-time layer: the users whose event logs
/// grew, and the users whose sessions ended (password change, deactivation, deletion).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub events_for: Vec<i64>,
    pub signed_out: Vec<i64>,
    /// Wake every connection (after notifications may have been missed).
    pub everyone: bool,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.events_for.is_empty() && self.signed_out.is_empty() && !self.everyone
    }

    /// A position to [`rewind`](Self::rewind) to when a job rolls back.
    pub fn mark(&self) -> (usize, usize) {
        (self.events_for.len(), self.signed_out.len())
    }

    pub fn rewind(&mut self, (events_for, signed_out): (usize, usize)) {
        self.events_for.truncate(events_for);
        self.signed_out.truncate(signed_out);
    }

    pub fn dedup(&mut self) {
        for users in [&mut self.events_for, &mut self.signed_out] {
            users.sort_unstable();
            users.dedup();
        }
    }
}

/// One entry of a user's event log.
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: i64,
    pub payload: Value,
}

/// The payloads of the events in users' logs (`seq` is added when they are served), written
/// once for every backend.
pub(crate) mod payload {
    use serde_json::{Value, json};

    use super::{Message, ThreadView};

    pub fn thread_created(thread: &ThreadView) -> Value {
        json!({"type": "thread.created", "thread": thread})
    }

    pub fn thread_deleted(thread: i64) -> Value {
        json!({"type": "thread.deleted", "thread": thread})
    }

    pub fn message_created(message: &Message, unread_count: i64) -> Value {
        json!({"type": "message.created", "message": message, "unread_count": unread_count})
    }

    pub fn message_deleted(thread: i64, message: i64, unread_count: i64) -> Value {
        json!({"type": "message.deleted", "thread": thread, "message": message,
               "unread_count": unread_count})
    }

    pub fn messages_read(thread: i64, ids: &[i64], reader: i64, unread_count: i64) -> Value {
        json!({"type": "messages.read", "thread": thread, "ids": ids, "reader": reader,
               "unread_count": unread_count})
    }
}
