//! What the admin page reads across all users: every user, thread and message, with search
//! and filters, and the site's counts. (Its sessions are in `sessions`; deleting goes through
//! the same operations as the API.)

use serde::Serialize;

use super::{
    Counted, Store, StoreResult,
    db::{Db, Dialect, FromRow, Param, Row, Sql},
    messages::{self, Message},
    read_apart,
    threads::Participant,
    users::{User, user_columns},
};
use crate::clock::Timestamp;

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

impl FromRow for ThreadSummary {
    fn from_row(row: &impl Row) -> StoreResult<ThreadSummary> {
        Ok(ThreadSummary {
            id: row.get("id")?,
            participants: [
                Participant {
                    id: row.get("user_low")?,
                    username: row.get("low_username")?,
                },
                Participant {
                    id: row.get("user_high")?,
                    username: row.get("high_username")?,
                },
            ],
            message_count: row.get("message_count")?,
            created: row.get("created")?,
            updated: row.get("updated")?,
        })
    }
}

/// A message with the usernames of its sender and recipient.
#[derive(Clone, Debug, Serialize)]
pub struct MessageSummary {
    pub message: Message,
    pub sender: String,
    pub recipient: String,
}

impl FromRow for MessageSummary {
    fn from_row(row: &impl Row) -> StoreResult<MessageSummary> {
        Ok(MessageSummary {
            message: Message::from_row(row)?,
            sender: row.get("sender_username")?,
            recipient: row.get("recipient_username")?,
        })
    }
}

/// How much there is, for the admin home page.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SiteCounts {
    pub users: i64,
    pub threads: i64,
    pub messages: i64,
}

impl FromRow for SiteCounts {
    fn from_row(row: &impl Row) -> StoreResult<SiteCounts> {
        Ok(SiteCounts {
            users: row.get("users")?,
            threads: row.get("threads")?,
            messages: row.get("messages")?,
        })
    }
}

const THREAD_COLUMNS: &str = "t.id, t.user_low, ul.username AS low_username, t.user_high, \
    uh.username AS high_username, t.message_count, t.created, t.updated";
const THREAD_FROM: &str =
    "threads t JOIN users ul ON ul.id = t.user_low JOIN users uh ON uh.id = t.user_high";
const MESSAGE_FROM: &str = "messages m
    JOIN threads t ON t.id = m.thread_id
    JOIN users s ON s.id = m.sender_id
    JOIN users r ON r.id = CASE WHEN t.user_low = m.sender_id THEN t.user_high ELSE t.user_low END";

fn message_summary_columns() -> String {
    format!(
        "{}, s.username AS sender_username, r.username AS recipient_username",
        messages::columns("m")
    )
}

static COUNTS: Sql = Sql::new(
    "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM threads) AS threads,
            CAST((SELECT COALESCE(SUM(message_count), 0) FROM threads) AS BIGINT) AS messages",
);

/// A `WHERE` clause built from optional conditions, with its parameters in order. Each `?` of a
/// clause becomes the next numbered placeholder (`$1`, `$2`, ...).
#[derive(Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    values: Vec<Box<dyn Param + Send>>,
}

impl Conditions {
    /// Adds a condition whose `?` placeholders take `values`, numbered in order.
    pub(crate) fn add(&mut self, clause: &str, values: Vec<Box<dyn Param + Send>>) {
        let mut numbered = String::new();
        let mut next = self.values.len();
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                next += 1;
                numbered.push_str(&format!("${next}"));
            }
            numbered.push_str(part);
        }
        self.clauses.push(numbered);
        self.values.extend(values);
    }

    /// `column = value` when a value is given.
    pub(crate) fn flag(&mut self, column: &str, value: Option<bool>) {
        if let Some(value) = value {
            self.add(&format!("{column} = ?"), vec![Box::new(value)]);
        }
    }

    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The page: the `count` of all matches, then `limit` rows from `offset` in `order`.
    async fn page<T: FromRow>(
        &self,
        db: &impl Db,
        (columns, from, order): (&str, &str, &str),
        (limit, offset): (i64, i64),
    ) -> StoreResult<Counted<T>> {
        let filter = self.sql();
        let mut params: Vec<&dyn Param> = self.values.iter().map(|v| v.as_ref() as _).collect();
        let count = db
            .one(
                &Sql::owned(format!("SELECT COUNT(*) FROM {from} {filter}")),
                &params,
            )
            .await?;
        let (limit_at, offset_at) = (params.len() + 1, params.len() + 2);
        params.push(&limit);
        params.push(&offset);
        let page = Sql::owned(format!(
            "SELECT {columns} FROM {from} {filter} ORDER BY {order} LIMIT ${limit_at} OFFSET ${offset_at}"
        ));
        let items = db.rows(&page, &params).await?;
        Ok(Counted { count, items })
    }
}

/// `LIKE` is case-insensitive for ASCII on SQLite; PostgreSQL needs `ILIKE`.
fn like(db: &impl Db) -> &'static str {
    match db.dialect() {
        Dialect::Sqlite => "LIKE",
        Dialect::Postgres => "ILIKE",
    }
}

fn contains(term: &str) -> Box<dyn Param + Send> {
    Box::new(super::contains_pattern(term))
}

async fn user_page(
    db: &impl Db,
    filter: &UserFilter,
    limit: i64,
    offset: i64,
) -> StoreResult<Counted<User>> {
    let mut conditions = Conditions::default();
    let term = filter.search.trim();
    if !term.is_empty() {
        let like = like(db);
        conditions.add(
            &format!(
                "(username {like} ? ESCAPE '\\' OR email {like} ? ESCAPE '\\'
                  OR first_name {like} ? ESCAPE '\\' OR last_name {like} ? ESCAPE '\\')"
            ),
            (0..4).map(|_| contains(term)).collect(),
        );
    }
    conditions.flag("is_active", filter.is_active);
    conditions.flag("is_staff", filter.is_staff);
    conditions.flag("is_superuser", filter.is_superuser);
    conditions
        .page(
            db,
            (user_columns!(), "users", "username, id"),
            (limit, offset),
        )
        .await
}

async fn thread_page(
    db: &impl Db,
    term: &str,
    limit: i64,
    offset: i64,
) -> StoreResult<Counted<ThreadSummary>> {
    let mut conditions = Conditions::default();
    if !term.is_empty() {
        let like = like(db);
        conditions.add(
            &format!("(ul.username {like} ? ESCAPE '\\' OR uh.username {like} ? ESCAPE '\\')"),
            vec![contains(term), contains(term)],
        );
    }
    conditions
        .page(
            db,
            (THREAD_COLUMNS, THREAD_FROM, "t.updated DESC, t.id DESC"),
            (limit, offset),
        )
        .await
}

async fn message_page(
    db: &impl Db,
    filter: &MessageFilter,
    limit: i64,
    offset: i64,
) -> StoreResult<Counted<MessageSummary>> {
    let mut conditions = Conditions::default();
    let term = filter.search.trim();
    if !term.is_empty() {
        let like = like(db);
        conditions.add(
            &format!("m.text {like} ? ESCAPE '\\'"),
            vec![contains(term)],
        );
    }
    conditions.flag("m.is_read", filter.is_read);
    conditions
        .page(
            db,
            (&message_summary_columns(), MESSAGE_FROM, "m.id DESC"),
            (limit, offset),
        )
        .await
}

impl Store {
    pub async fn site_counts(&self) -> StoreResult<SiteCounts> {
        read_apart!(self, |db| db.one(&COUNTS, &[]).await)
    }

    /// A page of all users matching the filter, by username.
    pub async fn admin_users(
        &self,
        filter: UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<User>> {
        read_apart!(self, |db| user_page(db, &filter, limit, offset).await)
    }

    /// A page of all threads (optionally those of a user whose username contains `search`),
    /// most recent activity first.
    pub async fn admin_threads(
        &self,
        search: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<ThreadSummary>> {
        let term = search.trim().to_owned();
        read_apart!(self, |db| thread_page(db, &term, limit, offset).await)
    }

    pub async fn admin_thread(&self, id: i64) -> StoreResult<Option<ThreadSummary>> {
        let sql = Sql::owned(format!(
            "SELECT {THREAD_COLUMNS} FROM {THREAD_FROM} WHERE t.id = $1"
        ));
        read_apart!(self, |db| db.row(&sql, &[&id]).await)
    }

    /// A page of all messages matching the filter, newest first.
    pub async fn admin_messages(
        &self,
        filter: MessageFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<MessageSummary>> {
        read_apart!(self, |db| message_page(db, &filter, limit, offset).await)
    }

    pub async fn admin_message(&self, id: i64) -> StoreResult<Option<MessageSummary>> {
        let sql = Sql::owned(format!(
            "SELECT {} FROM {MESSAGE_FROM} WHERE m.id = $1",
            message_summary_columns()
        ));
        read_apart!(self, |db| db.row(&sql, &[&id]).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_number_their_placeholders_in_order() {
        let mut conditions = Conditions::default();
        conditions.add(
            "(a LIKE ? OR b LIKE ?)",
            vec![Box::new(10_i64), Box::new(20_i64)],
        );
        conditions.flag("c", Some(true));
        conditions.flag("d", None);
        assert_eq!(
            conditions.sql(),
            "WHERE (a LIKE $1 OR b LIKE $2) AND c = $3"
        );
        assert_eq!(conditions.values.len(), 3);
    }

    #[test]
    fn no_conditions_no_where() {
        assert_eq!(Conditions::default().sql(), "");
    }
}
