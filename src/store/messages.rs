//! Messages: pages of a thread (in [`pages`]), posting batches (all or nothing, idempotent by
//! `client_id`), marking read, unread counts, deleting. Every change keeps the thread's
//! counters and both participants' logs right in the same transaction.
//!
//! A message's columns are listed once, in `message_row!`: the struct, the column list of
//! every `SELECT`, and reading a row by column name (plain, or as a thread's last message)
//! all come from that list.

use std::{
    collections::BTreeMap,
    sync::{Arc, LazyLock},
};

use serde::Serialize;

use super::{
    Store, StoreResult, blocks,
    db::{Db, FromRow, IdList, Row, Sql, Tx},
    events::{self, Payload},
    files::{self, FileJson, Files},
    json_list::JsonList,
    kept::Kept,
    reactions::Reactions,
    read, search,
    threads::{self, ThreadMembers},
    transfer::{ColumnValue, Kind, Value},
    write,
};
use crate::clock::Timestamp;

/// Users' unread totals kept, by user (8 MB of the default `serve --kept-answers-mb`, split
/// in `sqlite::caches::Caches::new`).
pub type UnreadCache = Kept<i64, i64>;

/// Declares [`Message`] from its columns: `field: Type = "column"`.
macro_rules! message_row {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty = $column:literal ),* $(,)?) => {
        /// A message: the contract's message JSON.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
        pub struct Message {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        /// The column names a message is read from.
        struct Names {
            $( $field: &'static str, )*
        }

        /// A message selected on its own.
        const PLAIN: Names = Names { $( $field: $column, )* };
        /// A thread's last message, selected beside the thread with `last_` aliases.
        const LAST: Names = Names { $( $field: concat!("last_", $column), )* };
        const COLUMN_NAMES: &[&str] = &[$( $column ),*];

        /// The columns and their kinds, for moving whole databases.
        pub(crate) const TRANSFER_COLUMNS: &[(&str, Kind)] =
            &[$( ($column, <$ty as ColumnValue>::KIND) ),*];

        fn read_message(row: &impl Row, names: &Names) -> StoreResult<Message> {
            Ok(Message { $( $field: row.get(names.$field)?, )* })
        }

        impl Message {
            /// The column values, in [`TRANSFER_COLUMNS`] order.
            pub(crate) fn values(&self) -> Vec<Value> {
                vec![$( self.$field.value() ),*]
            }
        }
    };
}

message_row! {
    id: i64 = "id",
    thread: i64 = "thread_id",
    sender: i64 = "sender_id",
    text: String = "text",
    created: Timestamp = "created",
    is_read: bool = "is_read",
    /// The sender's own id for this message, if they sent one (retries reuse it).
    client_id: Option<String> = "client_id",
    /// When the text was last edited (null: never).
    edited: Option<Timestamp> = "edited_at",
    /// The message this one answers (it may since have been deleted).
    reply_to: Option<i64> = "reply_to",
    /// Emoji on the message, in the order first used.
    reactions: Reactions = "reactions",
    /// Files attached when it was posted.
    files: Files = "files",
}

impl FromRow for Message {
    fn from_row(row: &impl Row) -> StoreResult<Message> {
        read_message(row, &PLAIN)
    }
}

/// `m.id AS id, m.thread_id AS thread_id, ...`: a message's columns from table alias `table`.
pub(crate) fn columns(table: &str) -> String {
    let qualified: Vec<String> = COLUMN_NAMES
        .iter()
        .map(|c| format!("{table}.{c} AS {c}"))
        .collect();
    qualified.join(", ")
}

/// The columns of a thread's last message (from table alias `table`), aliased `last_*`.
pub(crate) fn last_message_columns(table: &str) -> String {
    let aliased: Vec<String> = COLUMN_NAMES
        .iter()
        .map(|c| format!("{table}.{c} AS last_{c}"))
        .collect();
    aliased.join(", ")
}

/// The last message of a thread row, `None` when the `LEFT JOIN` found none.
pub(crate) fn last_message_from_row(row: &impl Row) -> StoreResult<Option<Message>> {
    let id: Option<i64> = row.get(LAST.id)?;
    match id {
        Some(_) => read_message(row, &LAST).map(Some),
        None => Ok(None),
    }
}

impl Message {
    /// A message brought in from elsewhere (`import-django`), with every later field empty.
    pub fn imported(
        id: i64,
        (thread, sender): (i64, i64),
        text: String,
        created: Timestamp,
        is_read: bool,
    ) -> Message {
        Message {
            id,
            thread,
            sender,
            text,
            created,
            is_read,
            client_id: None,
            edited: None,
            reply_to: None,
            reactions: Reactions::default(),
            files: Files::default(),
        }
    }
}

/// One message of a batch to post; already validated.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub text: String,
    pub client_id: Option<String>,
    /// A message of the same thread (checked before posting).
    pub reply_to: Option<i64>,
    /// Files its sender uploaded (checked before posting).
    pub files: Vec<FileJson>,
}

/// What posting a batch did.
#[derive(Debug)]
pub enum Posted {
    /// The messages in the order sent (earlier ones for `client_id`s used before).
    Stored(Vec<Message>),
    /// The thread no longer exists.
    NoThread,
    /// One of the two blocks the other.
    Blocked,
}

/// What editing a message did.
#[derive(Debug)]
pub enum Edited {
    Done(Message),
    /// The message no longer exists.
    Gone,
    /// One of the two participants blocks the other.
    Blocked,
}

pub mod kept_pages;
pub(crate) mod pages;
pub use pages::MessageWindow;

/// A statement over the message columns, `{columns}` replaced.
fn with_columns(text: &str) -> Sql {
    Sql::owned(text.replace("{columns}", &columns("messages")))
}

static BY_ID: LazyLock<Sql> =
    LazyLock::new(|| with_columns("SELECT {columns} FROM messages WHERE id = $1"));
static BY_CLIENT_ID: LazyLock<Sql> = LazyLock::new(|| {
    with_columns("SELECT {columns} FROM messages WHERE sender_id = $1 AND client_id = $2")
});
/// No row when the sender already used the `client_id` (then [`BY_CLIENT_ID`] finds that
/// message): the unique index is checked once, by the insert, instead of a read before it.
static INSERT: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "INSERT INTO messages (thread_id, sender_id, text, created, client_id, reply_to, files)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (sender_id, client_id) DO NOTHING
         RETURNING {columns}",
    )
});
static EDIT: LazyLock<Sql> = LazyLock::new(|| {
    with_columns("UPDATE messages SET text = $2, edited_at = $3 WHERE id = $1 RETURNING {columns}")
});
/// Which of the ids in `$2` (JSON) are messages of thread `$1`.
static OF_THREAD: Sql = Sql::dialects(
    "SELECT id FROM messages WHERE thread_id = $1 AND id IN (SELECT value FROM json_each($2))",
    "SELECT id FROM messages WHERE thread_id = $1
       AND id IN (SELECT CAST(value AS BIGINT)
                  FROM json_array_elements_text(CAST(CAST($2 AS TEXT) AS JSON)))",
);
pub(crate) static UNREAD_TOTAL: Sql = Sql::new(
    "SELECT CAST(COALESCE(SUM(unread), 0) AS BIGINT) FROM thread_members WHERE user_id = $1",
);
/// The thread's activity (`updated`, which orders both members' thread lists), last message
/// and total.
static AFTER_POST_THREAD: Sql = Sql::new(
    "UPDATE threads SET updated = $2, last_message_id = $3, message_count = message_count + $4
     WHERE id = $1",
);
static ADD_UNREAD: Sql = Sql::new(
    "UPDATE thread_members SET unread = unread + $3 WHERE user_id = $1 AND thread_id = $2
     RETURNING unread",
);
/// Marks read the listed messages the reader received (JSON list of ids in `$1`).
pub(crate) static MARK_READ: Sql = Sql::dialects(
    "UPDATE messages SET is_read = TRUE
     WHERE id IN (SELECT value FROM json_each($1))
       AND NOT is_read
       AND sender_id <> $2
       AND thread_id IN (SELECT thread_id FROM thread_members WHERE user_id = $2)
     RETURNING thread_id, id",
    "UPDATE messages SET is_read = TRUE
     WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(CAST($1 AS TEXT) AS JSON)))
       AND NOT is_read
       AND sender_id <> $2
       AND thread_id IN (SELECT thread_id FROM thread_members WHERE user_id = $2)
     RETURNING thread_id, id",
);
static SUBTRACT_UNREAD: Sql = Sql::new(
    "UPDATE thread_members SET unread = unread - $3 WHERE user_id = $1 AND thread_id = $2
     RETURNING unread",
);
static DELETE: Sql = Sql::new("DELETE FROM messages WHERE id = $1");
static AFTER_DELETE_THREAD: Sql = Sql::new(
    "UPDATE threads SET message_count = message_count - 1,
         last_message_id = (SELECT MAX(id) FROM messages WHERE thread_id = $1)
     WHERE id = $1",
);
static AFTER_DELETE_UNREAD: Sql = Sql::new(
    "UPDATE thread_members SET unread = unread - 1
     WHERE user_id = $1 AND thread_id = $2 AND unread > 0",
);

/// A message marked read, and its thread.
struct Marked {
    thread: i64,
    id: i64,
}

impl FromRow for Marked {
    fn from_row(row: &impl Row) -> StoreResult<Marked> {
        Ok(Marked {
            thread: row.get("thread_id")?,
            id: row.get("id")?,
        })
    }
}

pub(crate) async fn by_id(db: &impl Db, id: i64) -> StoreResult<Option<Message>> {
    db.row(&BY_ID, &[&id]).await
}

/// Stores a batch in a thread (see [`Store::post_messages`]).
async fn post(
    tx: &mut impl Tx,
    thread: i64,
    sender: i64,
    batch: &[NewMessage],
) -> StoreResult<Posted> {
    let Some(members) = tx
        .row::<ThreadMembers>(&threads::MEMBERS_FOR_UPDATE, &[&thread])
        .await?
    else {
        return Ok(Posted::NoThread);
    };
    let recipient = members.other(sender);
    if blocks::between(tx, sender, recipient).await? {
        return Ok(Posted::Blocked);
    }
    let now = tx.now();
    let mut stored = Vec::with_capacity(batch.len());
    let mut fresh = Vec::new();
    for message in batch {
        let inserted: Option<Message> = tx
            .row(
                &INSERT,
                &[
                    &thread,
                    &sender,
                    &message.text,
                    &now,
                    &message.client_id,
                    &message.reply_to,
                    &JsonList(message.files.clone()).to_column(),
                ],
            )
            .await?;
        let Some(inserted) = inserted else {
            // Sent before (a retry): answered with the message stored then.
            let earlier: Message = tx
                .one(&BY_CLIENT_ID, &[&sender, &message.client_id])
                .await?;
            stored.push(earlier);
            continue;
        };
        files::attach(tx, inserted.id, &message.files).await?;
        search::index(tx, &inserted).await?;
        fresh.push(inserted.clone());
        stored.push(inserted);
    }
    let Some(last) = fresh.last() else {
        return Ok(Posted::Stored(stored));
    };
    let added = fresh.len() as i64;
    tx.execute(&AFTER_POST_THREAD, &[&thread, &now, &last.id, &added])
        .await?;
    let recipient_unread: i64 = tx.one(&ADD_UNREAD, &[&recipient, &thread, &added]).await?;
    let sender_unread = threads::unread_in(tx, sender, thread).await?;
    let first_unread = recipient_unread - added;
    let created = |message, unread_count| Payload::MessageCreated {
        message,
        unread_count,
    };
    let to_sender = fresh.iter().map(|message| created(message, sender_unread));
    events::tell_in_turn(tx, sender, to_sender).await?;
    let to_recipient =
        (fresh.iter().zip(1..)).map(|(message, i)| created(message, first_unread + i));
    events::tell_in_turn(tx, recipient, to_recipient).await?;
    Ok(Posted::Stored(stored))
}

/// Replaces a message's text (see [`Store::edit_message`]).
async fn edit(tx: &mut impl Tx, id: i64, text: &str) -> StoreResult<Edited> {
    let Some(message) = by_id(tx, id).await? else {
        return Ok(Edited::Gone);
    };
    let members: ThreadMembers = tx
        .one(&threads::MEMBERS_FOR_UPDATE, &[&message.thread])
        .await?;
    if blocks::between(tx, members.users[0], members.users[1]).await? {
        return Ok(Edited::Blocked);
    }
    let now = tx.now();
    let edited: Message = tx.one(&EDIT, &[&id, &text, &now]).await?;
    search::reindex(tx, &edited).await?;
    // The old text leaves the logs: earlier events of this message now carry it as it is.
    events::rewrite_message(tx, &edited).await?;
    let payload = Payload::MessageUpdated { message: &edited };
    events::tell(tx, &members.users, payload).await?;
    Ok(Edited::Done(edited))
}

async fn mark_read(tx: &mut impl Tx, reader: i64, ids: &[i64]) -> StoreResult<i64> {
    let marked: Vec<Marked> = tx.rows(&MARK_READ, &[&IdList::new(ids).0, &reader]).await?;
    let total = marked.len() as i64;
    let mut by_thread: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for Marked { thread, id } in marked {
        by_thread.entry(thread).or_default().push(id);
    }
    for (thread, mut ids) in by_thread {
        ids.sort_unstable();
        let n = ids.len() as i64;
        let reader_unread: i64 = tx.one(&SUBTRACT_UNREAD, &[&reader, &thread, &n]).await?;
        let members = threads::members(tx, thread)
            .await?
            .ok_or_else(super::db::vanished)?;
        let sender = members.other(reader);
        let sender_unread = threads::unread_in(tx, sender, thread).await?;
        for (user, unread_count) in [(reader, reader_unread), (sender, sender_unread)] {
            let payload = Payload::MessagesRead {
                thread,
                ids: &ids,
                reader,
                unread_count,
            };
            events::tell(tx, &[user], payload).await?;
        }
    }
    Ok(total)
}

/// Deletes one message (see [`Store::delete_message`]).
async fn delete(tx: &mut impl Tx, id: i64) -> StoreResult<Option<Message>> {
    let Some(message) = by_id(tx, id).await? else {
        return Ok(None);
    };
    let thread = message.thread;
    let members: ThreadMembers = tx.one(&threads::MEMBERS_FOR_UPDATE, &[&thread]).await?;
    events::redact_message(tx, id).await?;
    let attached: Vec<i64> = tx.rows(&files::OF_MESSAGE, &[&id]).await?;
    tx.execute(&DELETE, &[&id]).await?;
    files::delete_unused(tx, &attached).await?;
    tx.execute(&AFTER_DELETE_THREAD, &[&thread]).await?;
    if !message.is_read {
        let recipient = members.other(message.sender);
        tx.execute(&AFTER_DELETE_UNREAD, &[&recipient, &thread])
            .await?;
    }
    for user in members.users {
        let unread_count = threads::unread_in(tx, user, thread).await?;
        let payload = Payload::MessageDeleted {
            thread,
            message: id,
            unread_count,
        };
        events::tell(tx, &[user], payload).await?;
    }
    Ok(Some(message))
}

impl Store {
    pub async fn message(&self, id: i64) -> StoreResult<Option<Message>> {
        read!(self, |db| by_id(db, id).await)
    }

    /// Which of `ids` are messages of `thread`.
    pub async fn messages_of_thread(&self, thread: i64, ids: &[i64]) -> StoreResult<Vec<i64>> {
        let ids = IdList::new(ids).0;
        read!(self, |db| db.rows(&OF_THREAD, &[&thread, &ids]).await)
    }

    /// Replaces a message's text, marks it edited, and tells both participants
    /// (`message.updated`); the old text is not kept in any stored event.
    pub async fn edit_message(&self, id: i64, text: String) -> StoreResult<Edited> {
        write!(self, |tx| edit(tx, id, &text).await)
    }

    /// Stores a batch from `sender`, all or nothing, and tells both participants. A message whose
    /// `client_id` this sender used before is answered with the stored one. Nothing is stored
    /// when the thread no longer exists or either participant blocks the other.
    pub async fn post_messages(
        &self,
        thread: i64,
        sender: i64,
        batch: Vec<NewMessage>,
    ) -> StoreResult<Posted> {
        write!(self, |tx| post(tx, thread, sender, &batch).await)
    }

    /// Marks read the listed messages that `reader` received; returns how many were newly
    /// marked. Ids that are unknown, sent by the reader, or in other people's threads are
    /// ignored. Each thread touched gets one `messages.read` event in both logs.
    ///
    /// Opening a conversation marks it read, mostly with nothing unread: where unread totals
    /// are kept (SQLite), a reader whose total is 0 has nothing to mark, and is answered
    /// without a write (the total is current: every post to the reader drops it).
    pub async fn mark_read(&self, reader: i64, ids: Vec<i64>) -> StoreResult<i64> {
        let kept = self.kept().is_some_and(|kept| kept.unread.keeps_any());
        if ids.is_empty() || kept && self.unread_count(reader).await? == 0 {
            return Ok(0);
        }
        write!(self, |tx| mark_read(tx, reader, &ids).await)
    }

    /// Messages sent to `user` that they have not read, over all their threads; from memory
    /// when the user was told of no change since this process read it (clients ask often).
    pub async fn unread_count(&self, user: i64) -> StoreResult<i64> {
        let read = async || read!(self, |db| db.one(&UNREAD_TOTAL, &[&user]).await);
        let Some(cache) = self.kept().map(|kept| &kept.unread) else {
            return read().await;
        };
        let read = async || Ok(Some(Arc::new(read().await?)));
        let kept = cache.get_or_read(user, "simple_chat_unread_cache_total", read, |_| {
            [user, user]
        });
        Ok(kept.await?.map_or(0, |total| *total))
    }

    /// Deletes one message: it leaves the thread's count and last message, and the recipient's
    /// unread count when it was unread; its text leaves every stored log; both participants get
    /// `message.deleted` with their unread count in that thread. `None` when there was no
    /// such message.
    pub async fn delete_message(&self, id: i64) -> StoreResult<Option<Message>> {
        write!(self, |tx| delete(tx, id).await)
    }
}
