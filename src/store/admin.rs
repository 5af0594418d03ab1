//! What the admin page keeps and reads beyond the API's own operations: its sessions, and the
//! lists across all users (every user, thread and message, with search and filters). These are
//! the backend-neutral types; each backend implements the operations on [`super::Store`]
//! (SQLite: `sqlite/admin.rs`).

use serde::Serialize;

use super::{Message, Participant, User};
use crate::clock::Timestamp;

/// A signed-in admin session, found by the hash of its id.
#[derive(Clone, Debug)]
pub struct AdminSession {
    pub user: User,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// The message waiting to be shown on the next page, if any.
    pub flash: Option<String>,
    pub expires: Timestamp,
}

/// A session to store: only the SHA-256 of the id the browser holds.
#[derive(Clone, Debug)]
pub struct NewAdminSession {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub expires: Timestamp,
    /// A message for the session's first page.
    pub flash: Option<String>,
}

/// Which users the admin list shows: `search` matches username, email and names
/// (case-insensitive substring); each flag filter is "any" when `None`.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    pub search: String,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

/// Which messages the admin list shows: `search` matches the text (case-insensitive substring
/// for ASCII letters); `is_read` is "any" when `None`.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub search: String,
    pub is_read: Option<bool>,
}

/// A thread as the admin lists show it.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadSummary {
    pub id: i64,
    pub participants: [Participant; 2],
    pub message_count: i64,
    pub created: Timestamp,
    /// The last activity: creation or the newest message.
    pub updated: Timestamp,
}

/// A message with the usernames of its sender and recipient.
#[derive(Clone, Debug, Serialize)]
pub struct MessageSummary {
    pub message: Message,
    pub sender: String,
    pub recipient: String,
}

/// How much there is, for the admin home page.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SiteCounts {
    pub users: i64,
    pub threads: i64,
    pub messages: i64,
}
