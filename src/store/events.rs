//! Each user's event log: what the user should learn about, numbered by a per-user `seq` that
//! grows by exactly one per event. Events are appended by the writing operations of the other
//! topics, in their own transaction (see [`Tx::append_events`]); this module owns their shapes,
//! reading them back, pruning, and redacting the text of deleted messages.

use serde::Serialize;

use super::{
    Store, StoreResult,
    db::{Db, FromRow, Row, Sql, Tx},
    messages::Message,
    read,
    threads::ThreadView,
    write,
};
use crate::clock::Timestamp;

/// What a user's log says happened; serialized as the frame clients receive (without `seq`).
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "type")]
pub enum Payload<'a> {
    #[serde(rename = "thread.created")]
    ThreadCreated { thread: &'a ThreadView },
    #[serde(rename = "thread.deleted")]
    ThreadDeleted { thread: i64 },
    #[serde(rename = "message.created")]
    MessageCreated {
        message: &'a Message,
        unread_count: i64,
    },
    #[serde(rename = "message.updated")]
    MessageUpdated { message: &'a Message },
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        thread: i64,
        message: i64,
        unread_count: i64,
    },
    #[serde(rename = "messages.read")]
    MessagesRead {
        thread: i64,
        ids: &'a [i64],
        reader: i64,
        unread_count: i64,
    },
}

/// What replaces an event whose message was deleted: clients skip types they do not know, and
/// the seq stays, so the log keeps growing by exactly one per event.
pub const REDACTED: &str = r#"{"type":"redacted"}"#;

/// An event ready to append: its JSON, and the message whose text it carries (if any).
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub payload: String,
    pub message: Option<i64>,
}

impl From<Payload<'_>> for NewEvent {
    fn from(payload: Payload<'_>) -> NewEvent {
        let message = match payload {
            Payload::MessageCreated { message, .. } | Payload::MessageUpdated { message } => {
                Some(message.id)
            }
            _ => None,
        };
        NewEvent {
            payload: serde_json::to_string(&payload).unwrap_or_else(|_| REDACTED.into()),
            message,
        }
    }
}

/// One stored entry of a user's log: the payload as stored (JSON text).
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: i64,
    pub payload: String,
}

impl FromRow for Event {
    fn from_row(row: &impl Row) -> StoreResult<Event> {
        Ok(Event {
            seq: row.get("seq")?,
            payload: row.get("payload")?,
        })
    }
}

/// User `$1`'s head on SQLite: its newest kept event, or `users.event_seq` when that is
/// larger. There the column is only a floor under the head, raised as events are deleted
/// (`migrations/sqlite/0009_event_seq_floor.sql`); on PostgreSQL it is the head itself.
macro_rules! sqlite_head {
    () => {
        "MAX(event_seq, COALESCE((SELECT MAX(seq) FROM events WHERE user_id = $1), 0))"
    };
}

/// PostgreSQL: takes `$2` seqs for user `$1`, the new head (`None` when the user is gone).
pub(crate) static TAKE_SEQS: Sql =
    Sql::new("UPDATE users SET event_seq = event_seq + $2 WHERE id = $1 RETURNING event_seq");
/// SQLite: the seq of user `$1`'s next event (`None` when the user is gone). Nothing is
/// written to `users`: the single writer numbers events one at a time, and the new event is
/// the user's newest.
pub(crate) static NEXT_SEQ_SQLITE: Sql = Sql::new(concat!(
    "SELECT ",
    sqlite_head!(),
    " + 1 FROM users WHERE id = $1"
));
pub(crate) static INSERT: Sql = Sql::new(
    "INSERT INTO events (user_id, seq, created, message_id, payload) VALUES ($1, $2, $3, $4, $5)",
);
/// PostgreSQL takes a user's events of one transaction in one statement.
pub(crate) static INSERT_MANY_POSTGRES: Sql = Sql::new(
    "INSERT INTO events (user_id, seq, created, message_id, payload)
     SELECT $1, s.seq, $3, s.message_id, s.payload
     FROM unnest(CAST($2 AS BIGINT[]), CAST($4 AS BIGINT[]), CAST($5 AS TEXT[]))
          AS s(seq, message_id, payload)",
);
pub(crate) static AFTER: Sql = Sql::new(
    "SELECT seq, payload FROM events WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
);
static HEAD: Sql = Sql::dialects(
    concat!("SELECT ", sqlite_head!(), " FROM users WHERE id = $1"),
    "SELECT event_seq FROM users WHERE id = $1",
);
static BOUNDS: Sql = Sql::dialects(
    concat!(
        "SELECT ",
        sqlite_head!(),
        " AS head, (SELECT MIN(seq) FROM events WHERE user_id = $1) AS oldest
         FROM users WHERE id = $1"
    ),
    "SELECT event_seq AS head, (SELECT MIN(seq) FROM events WHERE user_id = $1) AS oldest
     FROM users WHERE id = $1",
);
/// A user's head as the `event_seq` column of a `users` row: the rule of `sqlite_head!`,
/// written for both engines (a dump may read either). Moving a database copies heads.
pub(crate) const HEAD_AS_COLUMN: &str =
    "CASE WHEN (SELECT MAX(e.seq) FROM events e WHERE e.user_id = users.id) > users.event_seq
          THEN (SELECT MAX(e.seq) FROM events e WHERE e.user_id = users.id)
          ELSE users.event_seq END AS event_seq";
static PRUNE: Sql = Sql::new(
    "DELETE FROM events WHERE (user_id, seq) IN (
         SELECT user_id, seq FROM events WHERE created < $1 LIMIT $2
     )",
);
pub(crate) static REDACT_MESSAGE: Sql =
    Sql::new("UPDATE events SET payload = $2, message_id = NULL WHERE message_id = $1");
static REDACT_THREAD: Sql = Sql::new(
    "UPDATE events SET payload = $2, message_id = NULL
     WHERE message_id IN (SELECT id FROM messages WHERE thread_id = $1)",
);
static REDACT_THREADS_OF: Sql = Sql::new(
    "UPDATE events SET payload = $2, message_id = NULL
     WHERE message_id IN (
         SELECT m.id FROM thread_members tm JOIN messages m ON m.thread_id = tm.thread_id
         WHERE tm.user_id = $1
     )",
);

/// The head and the oldest kept seq of a user's log.
struct Bounds(i64, Option<i64>);

impl FromRow for Bounds {
    fn from_row(row: &impl Row) -> StoreResult<Bounds> {
        Ok(Bounds(row.get("head")?, row.get("oldest")?))
    }
}

/// Appends `payload` to the log of each of `users`.
pub(crate) async fn tell(tx: &mut impl Tx, users: &[i64], payload: Payload<'_>) -> StoreResult<()> {
    let event = NewEvent::from(payload);
    metrics::counter!("simple_chat_events_appended_total").increment(users.len() as u64);
    for user in users {
        tx.append_events(*user, vec![event.clone()]).await?;
    }
    Ok(())
}

/// Appends `payloads` to `user`'s log, in order (a batch of posts: the engine takes the
/// user's place in the log once for all of them).
pub(crate) async fn tell_in_turn<'a>(
    tx: &mut impl Tx,
    user: i64,
    payloads: impl IntoIterator<Item = Payload<'a>>,
) -> StoreResult<()> {
    let events: Vec<NewEvent> = payloads.into_iter().map(NewEvent::from).collect();
    metrics::counter!("simple_chat_events_appended_total").increment(events.len() as u64);
    tx.append_events(user, events).await
}

/// Removes a message's text from every stored log (the message is being deleted).
pub(crate) async fn redact_message(tx: &impl Tx, message: i64) -> StoreResult<()> {
    tx.execute(&REDACT_MESSAGE, &[&message, &REDACTED]).await?;
    Ok(())
}

static OF_MESSAGE: Sql = Sql::new("SELECT user_id, seq, payload FROM events WHERE message_id = $1");
static SET_PAYLOAD: Sql =
    Sql::new("UPDATE events SET payload = $3 WHERE user_id = $1 AND seq = $2");

/// A stored event of one user.
struct Stored {
    user: i64,
    seq: i64,
    payload: String,
}

impl FromRow for Stored {
    fn from_row(row: &impl Row) -> StoreResult<Stored> {
        Ok(Stored {
            user: row.get("user_id")?,
            seq: row.get("seq")?,
            payload: row.get("payload")?,
        })
    }
}

/// Makes every stored event of a message carry it as it is now (after an edit, so the old text
/// is kept nowhere).
pub(crate) async fn rewrite_message(tx: &impl Tx, message: &Message) -> StoreResult<()> {
    let current = serde_json::to_value(message).map_err(|e| super::StoreError::Other(e.into()))?;
    let stored: Vec<Stored> = tx.rows(&OF_MESSAGE, &[&message.id]).await?;
    for Stored { user, seq, payload } in stored {
        let Ok(mut event) = serde_json::from_str::<serde_json::Value>(&payload) else {
            continue;
        };
        if let Some(slot) = event.get_mut("message") {
            *slot = current.clone();
            tx.execute(&SET_PAYLOAD, &[&user, &seq, &event.to_string()])
                .await?;
        }
    }
    Ok(())
}

/// Removes the text of a thread's messages from every stored log (the thread is being deleted).
pub(crate) async fn redact_thread(tx: &impl Tx, thread: i64) -> StoreResult<()> {
    tx.execute(&REDACT_THREAD, &[&thread, &REDACTED]).await?;
    Ok(())
}

/// Removes the text of every message of a user's threads from every stored log (the user is
/// being deleted, and their threads with them).
pub(crate) async fn redact_threads_of(tx: &impl Tx, user: i64) -> StoreResult<()> {
    tx.execute(&REDACT_THREADS_OF, &[&user, &REDACTED]).await?;
    Ok(())
}

impl Store {
    /// The user's current seq and up to `limit` events after `since`, oldest first.
    pub async fn events_after(
        &self,
        user: i64,
        since: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<Event>)> {
        read!(self, |db| {
            let head: Option<i64> = db.row(&HEAD, &[&user]).await?;
            let events = db.rows(&AFTER, &[&user, &since, &limit]).await?;
            Ok((head.unwrap_or(0), events))
        })
    }

    /// The user's current seq and the oldest seq still kept (`None` when the log is empty).
    pub async fn event_bounds(&self, user: i64) -> StoreResult<(i64, Option<i64>)> {
        read!(self, |db| {
            let bounds: Option<Bounds> = db.row(&BOUNDS, &[&user]).await?;
            Ok(bounds.map_or((0, None), |Bounds(head, oldest)| (head, oldest)))
        })
    }

    /// Deletes up to `limit` events created before `cutoff`; returns how many went.
    pub async fn prune_events(&self, cutoff: Timestamp, limit: i64) -> StoreResult<usize> {
        write!(self, |tx| Ok(
            tx.execute(&PRUNE, &[&cutoff, &limit]).await? as usize
        ))
    }
}
