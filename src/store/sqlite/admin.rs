//! The admin page's storage on SQLite: sessions, the lists across all users, and deleting a
//! single message (with the thread's counters and both participants' event logs kept right, in
//! the same transaction).

use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::{
    MESSAGE_COLUMNS, SqliteStore, USER_COLUMNS, members, message_at, message_from_row, unread_in,
    user_from_row, vanished,
};
use crate::{
    clock::Timestamp,
    store::{
        Counted, Message, Participant, StoreResult, User,
        admin::{
            AdminSession, Conditions, MessageFilter, MessageSummary, NewAdminSession, SiteCounts,
            ThreadSummary, UserFilter,
        },
        escape_like, payload,
    },
};

/// The columns of [`ThreadSummary`], from [`THREAD_FROM`].
const THREAD_COLUMNS: &str = "t.id, t.user_low, ul.username, t.user_high, uh.username, t.message_count, t.created, t.updated";
const THREAD_FROM: &str =
    "threads t JOIN users ul ON ul.id = t.user_low JOIN users uh ON uh.id = t.user_high";

fn thread_summary_from_row(row: &Row<'_>) -> rusqlite::Result<ThreadSummary> {
    Ok(ThreadSummary {
        id: row.get(0)?,
        participants: [
            Participant {
                id: row.get(1)?,
                username: row.get(2)?,
            },
            Participant {
                id: row.get(3)?,
                username: row.get(4)?,
            },
        ],
        message_count: row.get(5)?,
        created: Timestamp(row.get(6)?),
        updated: Timestamp(row.get(7)?),
    })
}

/// The columns of [`MessageSummary`], from [`MESSAGE_FROM`]: the message, then the sender's and
/// the recipient's usernames.
const MESSAGE_SUMMARY_COLUMNS: &str = "m.id, m.thread_id, m.sender_id, m.text, m.created, \
    m.is_read, m.client_id, s.username, r.username";
const MESSAGE_FROM: &str = "messages m \
    JOIN threads t ON t.id = m.thread_id \
    JOIN users s ON s.id = m.sender_id \
    JOIN users r ON r.id = CASE WHEN t.user_low = m.sender_id THEN t.user_high ELSE t.user_low END";

fn message_summary_from_row(row: &Row<'_>) -> rusqlite::Result<MessageSummary> {
    Ok(MessageSummary {
        message: message_at(row, 0)?.ok_or(rusqlite::Error::InvalidColumnIndex(0))?,
        sender: row.get(7)?,
        recipient: row.get(8)?,
    })
}

type SqlConditions = Conditions<Box<dyn ToSql>>;

fn conditions() -> SqlConditions {
    Conditions::new('?', |flag| Box::new(flag))
}

impl SqlConditions {
    /// The page: the `count` of all matches, then `limit` rows from `offset` in `order`.
    fn page<T>(
        &self,
        conn: &Connection,
        (columns, from, order): (&str, &str, &str),
        (limit, offset): (i64, i64),
        from_row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Counted<T>> {
        let filter = self.sql();
        let params: Vec<&dyn ToSql> = self.values.iter().map(|v| v as &dyn ToSql).collect();
        let count = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM {from} {filter}"))?
            .query_row(params.as_slice(), |row| row.get(0))?;
        let (limit_at, offset_at) = (
            self.placeholder(params.len() + 1),
            self.placeholder(params.len() + 2),
        );
        let mut paged = params;
        paged.push(&limit);
        paged.push(&offset);
        let items = conn
            .prepare_cached(&format!(
                "SELECT {columns} FROM {from} {filter} ORDER BY {order} LIMIT {limit_at} OFFSET {offset_at}"
            ))?
            .query_map(paged.as_slice(), from_row)?
            .collect::<Result<_, _>>()?;
        Ok(Counted { count, items })
    }
}

fn contains(term: &str) -> Box<dyn ToSql> {
    Box::new(format!("%{}%", escape_like(term)))
}

impl SqliteStore {
    // ----- sessions -----

    /// Stores a new admin session; expired sessions of everyone are swept on the way.
    pub async fn create_admin_session(&self, session: NewAdminSession) -> StoreResult<()> {
        self.write(move |tx| {
            tx.conn
                .prepare_cached("DELETE FROM admin_sessions WHERE expires <= ?1")?
                .execute([tx.now.micros()])?;
            tx.conn
                .prepare_cached(
                    "INSERT INTO admin_sessions (id_hash, user_id, csrf_token, created, expires,
                                                 flash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    session.id_hash,
                    session.user_id,
                    session.csrf_token,
                    tx.now.micros(),
                    session.expires.micros(),
                    session.flash
                ])?;
            Ok(())
        })
        .await
    }

    /// The unexpired session with this id hash, with its user as they are now.
    pub async fn admin_session(&self, id_hash: &str) -> StoreResult<Option<AdminSession>> {
        let id_hash = id_hash.to_owned();
        self.read(move |conn| {
            // No column name of admin_sessions is also one of users', so none needs a prefix.
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, csrf_token, flash, expires
                     FROM admin_sessions JOIN users ON users.id = admin_sessions.user_id
                     WHERE id_hash = ?1 AND expires > ?2"
                ))?
                .query_row(params![id_hash, Timestamp::now().micros()], |row| {
                    Ok(AdminSession {
                        user: user_from_row(row)?,
                        csrf_token: row.get(12)?,
                        flash: row.get(13)?,
                        expires: Timestamp(row.get(14)?),
                    })
                })
                .optional()?)
        })
        .await
    }

    /// Pushes a session's expiry forward and takes its waiting message (if any).
    pub async fn touch_admin_session(
        &self,
        id_hash: &str,
        expires: Timestamp,
    ) -> StoreResult<Option<String>> {
        let id_hash = id_hash.to_owned();
        self.write(move |tx| {
            let flash: Option<String> = tx
                .conn
                .prepare_cached("SELECT flash FROM admin_sessions WHERE id_hash = ?1")?
                .query_row([&id_hash], |row| row.get(0))
                .optional()?
                .flatten();
            tx.conn
                .prepare_cached(
                    "UPDATE admin_sessions SET expires = ?2, flash = NULL WHERE id_hash = ?1",
                )?
                .execute(params![id_hash, expires.micros()])?;
            Ok(flash)
        })
        .await
    }

    /// Leaves a message for the session's next page.
    pub async fn set_admin_flash(&self, id_hash: &str, message: String) -> StoreResult<()> {
        let id_hash = id_hash.to_owned();
        self.write(move |tx| {
            tx.conn
                .prepare_cached("UPDATE admin_sessions SET flash = ?2 WHERE id_hash = ?1")?
                .execute(params![id_hash, message])?;
            Ok(())
        })
        .await
    }

    pub async fn delete_admin_session(&self, id_hash: &str) -> StoreResult<()> {
        let id_hash = id_hash.to_owned();
        self.write(move |tx| {
            tx.conn
                .prepare_cached("DELETE FROM admin_sessions WHERE id_hash = ?1")?
                .execute([id_hash])?;
            Ok(())
        })
        .await
    }

    // ----- lists -----

    pub async fn site_counts(&self) -> StoreResult<SiteCounts> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM threads),
                            (SELECT COALESCE(SUM(message_count), 0) FROM threads)",
                )?
                .query_row([], |row| {
                    Ok(SiteCounts {
                        users: row.get(0)?,
                        threads: row.get(1)?,
                        messages: row.get(2)?,
                    })
                })?)
        })
        .await
    }

    /// A page of all users matching the filter, by username.
    pub async fn admin_users(
        &self,
        filter: UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<User>> {
        self.read(move |conn| {
            let mut conditions = conditions();
            let term = filter.search.trim();
            if !term.is_empty() {
                conditions.add(
                    "(username LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\'
                      OR first_name LIKE ? ESCAPE '\\' OR last_name LIKE ? ESCAPE '\\')",
                    (0..4).map(|_| contains(term)).collect(),
                );
            }
            conditions.flag("is_active", filter.is_active);
            conditions.flag("is_staff", filter.is_staff);
            conditions.flag("is_superuser", filter.is_superuser);
            conditions.page(
                conn,
                (USER_COLUMNS, "users", "username, id"),
                (limit, offset),
                user_from_row,
            )
        })
        .await
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
        self.read(move |conn| {
            let mut conditions = conditions();
            if !term.is_empty() {
                conditions.add(
                    "(ul.username LIKE ? ESCAPE '\\' OR uh.username LIKE ? ESCAPE '\\')",
                    vec![contains(&term), contains(&term)],
                );
            }
            conditions.page(
                conn,
                (THREAD_COLUMNS, THREAD_FROM, "t.updated DESC, t.id DESC"),
                (limit, offset),
                thread_summary_from_row,
            )
        })
        .await
    }

    pub async fn admin_thread(&self, id: i64) -> StoreResult<Option<ThreadSummary>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {THREAD_COLUMNS} FROM {THREAD_FROM} WHERE t.id = ?1"
                ))?
                .query_row([id], thread_summary_from_row)
                .optional()?)
        })
        .await
    }

    /// A page of all messages matching the filter, newest first.
    pub async fn admin_messages(
        &self,
        filter: MessageFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<MessageSummary>> {
        self.read(move |conn| {
            let mut conditions = conditions();
            let term = filter.search.trim();
            if !term.is_empty() {
                conditions.add("m.text LIKE ? ESCAPE '\\'", vec![contains(term)]);
            }
            conditions.flag("m.is_read", filter.is_read);
            conditions.page(
                conn,
                (MESSAGE_SUMMARY_COLUMNS, MESSAGE_FROM, "m.id DESC"),
                (limit, offset),
                message_summary_from_row,
            )
        })
        .await
    }

    pub async fn admin_message(&self, id: i64) -> StoreResult<Option<MessageSummary>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_SUMMARY_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = ?1"
                ))?
                .query_row([id], message_summary_from_row)
                .optional()?)
        })
        .await
    }

    /// Deletes one message. The thread's message count and last message, and the recipient's
    /// unread count when it was unread, follow in the same transaction; both participants get
    /// `message.deleted` with their unread count in that thread. `None` when there was no such
    /// message.
    pub async fn delete_message(&self, id: i64) -> StoreResult<Option<Message>> {
        self.write(move |tx| {
            let Some(message) = tx
                .conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
                ))?
                .query_row([id], message_from_row)
                .optional()?
            else {
                return Ok(None);
            };
            let thread = message.thread;
            let members = members(tx.conn, thread)?.ok_or_else(vanished)?;
            tx.conn
                .prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?;
            tx.conn
                .prepare_cached(
                    "UPDATE threads SET message_count = message_count - 1,
                         last_message_id = (SELECT MAX(id) FROM messages WHERE thread_id = ?1)
                     WHERE id = ?1",
                )?
                .execute([thread])?;
            if !message.is_read {
                tx.conn
                    .prepare_cached(
                        "UPDATE thread_members SET unread = unread - 1
                         WHERE user_id = ?1 AND thread_id = ?2 AND unread > 0",
                    )?
                    .execute(params![members.other(message.sender), thread])?;
            }
            for user in members.users {
                let unread = unread_in(tx.conn, user, thread)?;
                tx.append_event(user, &payload::message_deleted(thread, id, unread))?;
            }
            Ok(Some(message))
        })
        .await
    }
}
