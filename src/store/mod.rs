//! Storage: the one seam between the application and its database.
//!
//! Handlers and the CLI call the domain operations of [`Store`] (create a thread, post a batch,
//! mark read, ...) and never see SQL. Each operation that changes something runs in one
//! transaction together with the events it appends to the participants' event logs, so the log
//! can never disagree with the data. The SQLite backend lives in [`sqlite`]; a second backend
//! implements the same operations with its own SQL behind the same `Store` type.

pub mod admin;
mod sqlite;

use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::Timestamp;

pub use sqlite::SqliteStore;

/// The storage of an instance. Cheap to clone.
pub type Store = SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the name says which (e.g. `users.username`).
    #[error("unique constraint {0} violated")]
    Conflict(String),
    /// The database cannot be reached or is shutting down; worth a retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unsupported database URL {0:?}: use sqlite://path")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user account as stored.
#[derive(Clone, Debug)]
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

#[derive(Clone, Debug, Serialize)]
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

/// One entry of a user's event log.
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: i64,
    pub payload: Value,
}
