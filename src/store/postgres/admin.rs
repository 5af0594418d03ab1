//! The admin page's storage on PostgreSQL: the same operations as `sqlite/admin.rs`.

use tokio_postgres::{Row, types::ToSql};

use super::{
    MESSAGE_COLUMNS, PgTx, PostgresStore, RETRIES, USER_COLUMNS, message_at, message_from_row,
    retryable, user_from_row,
};
use crate::{
    clock::Timestamp,
    store::{
        Commit, Counted, Message, Participant, StoreError, StoreResult, User,
        admin::{
            AdminSession, Conditions, MessageFilter, MessageSummary, NewAdminSession, SiteCounts,
            ThreadSummary, UserFilter,
        },
        escape_like, payload,
    },
};

const THREAD_COLUMNS: &str = "t.id, t.user_low, ul.username, t.user_high, uh.username, \
    t.message_count, t.created, t.updated";
const THREAD_FROM: &str =
    "threads t JOIN users ul ON ul.id = t.user_low JOIN users uh ON uh.id = t.user_high";
const MESSAGE_SUMMARY_COLUMNS: &str = "m.id, m.thread_id, m.sender_id, m.text, m.created, \
    m.is_read, m.client_id, s.username, r.username";
const MESSAGE_FROM: &str = "messages m \
    JOIN threads t ON t.id = m.thread_id \
    JOIN users s ON s.id = m.sender_id \
    JOIN users r ON r.id = CASE WHEN t.user_low = m.sender_id THEN t.user_high ELSE t.user_low END";

fn thread_summary_from_row(row: &Row) -> ThreadSummary {
    ThreadSummary {
        id: row.get(0),
        participants: [
            Participant {
                id: row.get(1),
                username: row.get(2),
            },
            Participant {
                id: row.get(3),
                username: row.get(4),
            },
        ],
        message_count: row.get(5),
        created: Timestamp(row.get(6)),
        updated: Timestamp(row.get(7)),
    }
}

fn message_summary_from_row(row: &Row) -> MessageSummary {
    MessageSummary {
        message: message_at(row, 0).expect("a selected message row has an id"),
        sender: row.get(7),
        recipient: row.get(8),
    }
}

type PgConditions = Conditions<Box<dyn ToSql + Sync + Send>>;

fn conditions() -> PgConditions {
    Conditions::new('$', |flag| Box::new(flag))
}

impl PgConditions {
    async fn page<T>(
        &self,
        store: &PostgresStore,
        (columns, from, order): (&str, &str, &str),
        (limit, offset): (i64, i64),
        from_row: impl Fn(&Row) -> T,
    ) -> StoreResult<Counted<T>> {
        let filter = self.sql();
        let mut params: Vec<&(dyn ToSql + Sync)> = self
            .values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let count = store
            .query_opt(
                &format!("SELECT COUNT(*) FROM {from} {filter}"),
                &params,
                |row| row.get::<_, i64>(0),
            )
            .await?
            .unwrap_or(0);
        let (limit_at, offset_at) = (
            self.placeholder(params.len() + 1),
            self.placeholder(params.len() + 2),
        );
        params.push(&limit);
        params.push(&offset);
        let items = store
            .query_all(
                &format!(
                    "SELECT {columns} FROM {from} {filter} ORDER BY {order} \
                     LIMIT {limit_at} OFFSET {offset_at}"
                ),
                &params,
                from_row,
            )
            .await?;
        Ok(Counted { count, items })
    }
}

fn contains(term: &str) -> Box<dyn ToSql + Sync + Send> {
    Box::new(format!("%{}%", escape_like(term)))
}

impl PostgresStore {
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }

    pub async fn create_admin_session(&self, session: NewAdminSession) -> StoreResult<()> {
        let now = Timestamp::now().micros();
        self.execute("DELETE FROM admin_sessions WHERE expires <= $1", &[&now])
            .await?;
        self.execute(
            "INSERT INTO admin_sessions (id_hash, user_id, csrf_token, created, expires, flash)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &session.id_hash,
                &session.user_id,
                &session.csrf_token,
                &now,
                &session.expires.micros(),
                &session.flash,
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn admin_session(&self, id_hash: &str) -> StoreResult<Option<AdminSession>> {
        self.query_opt(
            &format!(
                "SELECT {USER_COLUMNS}, csrf_token, flash, expires
                 FROM admin_sessions JOIN users ON users.id = admin_sessions.user_id
                 WHERE id_hash = $1 AND expires > $2"
            ),
            &[&id_hash, &Timestamp::now().micros()],
            |row| AdminSession {
                user: user_from_row(row),
                csrf_token: row.get(12),
                flash: row.get(13),
                expires: Timestamp(row.get(14)),
            },
        )
        .await
    }

    pub async fn touch_admin_session(
        &self,
        id_hash: &str,
        expires: Timestamp,
    ) -> StoreResult<Option<String>> {
        // The old flash, read in the same statement that clears it.
        Ok(self
            .query_opt(
                "UPDATE admin_sessions s SET expires = $2, flash = NULL
                 FROM (SELECT id_hash, flash FROM admin_sessions WHERE id_hash = $1 FOR UPDATE) old
                 WHERE s.id_hash = old.id_hash
                 RETURNING old.flash",
                &[&id_hash, &expires.micros()],
                |row| row.get::<_, Option<String>>(0),
            )
            .await?
            .flatten())
    }

    pub async fn set_admin_flash(&self, id_hash: &str, message: String) -> StoreResult<()> {
        self.execute(
            "UPDATE admin_sessions SET flash = $2 WHERE id_hash = $1",
            &[&id_hash, &message],
        )
        .await?;
        Ok(())
    }

    pub async fn delete_admin_session(&self, id_hash: &str) -> StoreResult<()> {
        self.execute("DELETE FROM admin_sessions WHERE id_hash = $1", &[&id_hash])
            .await?;
        Ok(())
    }

    pub async fn site_counts(&self) -> StoreResult<SiteCounts> {
        Ok(self
            .query_opt(
                "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM threads),
                        CAST((SELECT COALESCE(SUM(message_count), 0) FROM threads) AS BIGINT)",
                &[],
                |row| SiteCounts {
                    users: row.get(0),
                    threads: row.get(1),
                    messages: row.get(2),
                },
            )
            .await?
            .unwrap_or(SiteCounts {
                users: 0,
                threads: 0,
                messages: 0,
            }))
    }

    pub async fn admin_users(
        &self,
        filter: UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<User>> {
        let mut conditions = conditions();
        let term = filter.search.trim();
        if !term.is_empty() {
            conditions.add(
                "(username ILIKE ? OR email ILIKE ? OR first_name ILIKE ? OR last_name ILIKE ?)",
                (0..4).map(|_| contains(term)).collect(),
            );
        }
        conditions.flag("is_active", filter.is_active);
        conditions.flag("is_staff", filter.is_staff);
        conditions.flag("is_superuser", filter.is_superuser);
        conditions
            .page(
                self,
                (USER_COLUMNS, "users", "username, id"),
                (limit, offset),
                user_from_row,
            )
            .await
    }

    pub async fn admin_threads(
        &self,
        search: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<ThreadSummary>> {
        let mut conditions = conditions();
        let term = search.trim();
        if !term.is_empty() {
            conditions.add(
                "(ul.username ILIKE ? OR uh.username ILIKE ?)",
                vec![contains(term), contains(term)],
            );
        }
        conditions
            .page(
                self,
                (THREAD_COLUMNS, THREAD_FROM, "t.updated DESC, t.id DESC"),
                (limit, offset),
                thread_summary_from_row,
            )
            .await
    }

    pub async fn admin_thread(&self, id: i64) -> StoreResult<Option<ThreadSummary>> {
        self.query_opt(
            &format!("SELECT {THREAD_COLUMNS} FROM {THREAD_FROM} WHERE t.id = $1"),
            &[&id],
            thread_summary_from_row,
        )
        .await
    }

    pub async fn admin_messages(
        &self,
        filter: MessageFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<MessageSummary>> {
        let mut conditions = conditions();
        let term = filter.search.trim();
        if !term.is_empty() {
            conditions.add("m.text ILIKE ?", vec![contains(term)]);
        }
        conditions.flag("m.is_read", filter.is_read);
        conditions
            .page(
                self,
                (MESSAGE_SUMMARY_COLUMNS, MESSAGE_FROM, "m.id DESC"),
                (limit, offset),
                message_summary_from_row,
            )
            .await
    }

    pub async fn admin_message(&self, id: i64) -> StoreResult<Option<MessageSummary>> {
        self.query_opt(
            &format!("SELECT {MESSAGE_SUMMARY_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = $1"),
            &[&id],
            message_summary_from_row,
        )
        .await
    }

    pub async fn delete_message(&self, id: i64) -> StoreResult<Option<Message>> {
        transaction!(self, tx => {
            let deleted = tx
                .txn
                .query_opt(
                    &format!("DELETE FROM messages WHERE id = $1 RETURNING {MESSAGE_COLUMNS}"),
                    &[&id],
                )
                .await?
                .as_ref()
                .map(message_from_row);
            match deleted {
                None => None,
                Some(message) => {
                    forget_message(&mut tx, &message).await?;
                    Some(message)
                }
            }
        })
    }
}

/// Keeps the thread's counters right after one of its messages was deleted, and tells both
/// participants.
async fn forget_message(tx: &mut PgTx<'_>, message: &Message) -> StoreResult<()> {
    let thread = message.thread;
    let members = tx.members(thread).await?;
    tx.txn
        .execute(
            "UPDATE threads SET message_count = message_count - 1,
                 last_message_id = (SELECT MAX(id) FROM messages WHERE thread_id = $1)
             WHERE id = $1",
            &[&thread],
        )
        .await?;
    if !message.is_read {
        tx.txn
            .execute(
                "UPDATE thread_members SET unread = unread - 1
                 WHERE user_id = $1 AND thread_id = $2 AND unread > 0",
                &[&members.other(message.sender), &thread],
            )
            .await?;
    }
    for user in members.users {
        let unread = tx.unread_in(user, thread).await?;
        tx.append_event(user, payload::message_deleted(thread, message.id, unread));
    }
    Ok(())
}
