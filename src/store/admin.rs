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

/// A `WHERE` clause built from optional conditions, with its parameters in order. Each `?` of a
/// clause becomes the backend's numbered placeholder (`?1` on SQLite, `$1` on PostgreSQL).
pub(crate) struct Conditions<V> {
    marker: char,
    flag_value: fn(bool) -> V,
    clauses: Vec<String>,
    pub(crate) values: Vec<V>,
}

impl<V> Conditions<V> {
    pub(crate) fn new(marker: char, flag_value: fn(bool) -> V) -> Conditions<V> {
        Conditions {
            marker,
            flag_value,
            clauses: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Adds a condition whose `?` placeholders take `values`, numbered in order.
    pub(crate) fn add(&mut self, clause: &str, values: Vec<V>) {
        let mut numbered = String::new();
        let mut next = self.values.len();
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                next += 1;
                numbered.push_str(&self.placeholder(next));
            }
            numbered.push_str(part);
        }
        self.clauses.push(numbered);
        self.values.extend(values);
    }

    /// `column = value` when a value is given.
    pub(crate) fn flag(&mut self, column: &str, value: Option<bool>) {
        if let Some(value) = value {
            let value = (self.flag_value)(value);
            self.add(&format!("{column} = ?"), vec![value]);
        }
    }

    /// The placeholder of the `n`th parameter (1-based).
    pub(crate) fn placeholder(&self, n: usize) -> String {
        format!("{}{n}", self.marker)
    }

    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_number_their_placeholders_in_order() {
        let mut conditions = Conditions::new('$', i64::from);
        conditions.add("(a LIKE ? OR b LIKE ?)", vec![10, 20]);
        conditions.flag("c", Some(true));
        conditions.flag("d", None);
        assert_eq!(
            conditions.sql(),
            "WHERE (a LIKE $1 OR b LIKE $2) AND c = $3"
        );
        assert_eq!(conditions.values, [10, 20, 1]);
    }

    #[test]
    fn no_conditions_no_where() {
        assert_eq!(Conditions::new('?', |b| b).sql(), "");
    }
}
