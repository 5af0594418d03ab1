//! Reading a thread's messages a page at a time: by offset, or before, after or between
//! message ids (keyset), each with how many messages the window holds and the thread's total.

use std::sync::LazyLock;

use super::{Message, with_columns};
use crate::store::{
    Counted, Store, StoreResult,
    db::{Db, FromRow, Row, Sql},
    read,
    threads::ThreadMembers,
};

/// Which slice of a thread's messages to read, oldest first.
#[derive(Clone, Copy, Debug)]
pub enum MessageWindow {
    Offset {
        limit: i64,
        offset: i64,
    },
    /// The first `limit` after `id`.
    After {
        id: i64,
        limit: i64,
    },
    /// The last `limit` before `id`.
    Before {
        id: i64,
        limit: i64,
    },
    /// The first `limit` strictly between `after` and `before`.
    Between {
        after: i64,
        before: i64,
        limit: i64,
    },
}

pub(crate) static BY_OFFSET: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT {columns} FROM messages WHERE thread_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
    )
});
pub(crate) static AFTER: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT {columns} FROM messages WHERE thread_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
});
pub(crate) static BEFORE: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT * FROM (
             SELECT {columns} FROM messages WHERE thread_id = $1 AND id < $2
             ORDER BY id DESC LIMIT $3
         ) AS page ORDER BY id",
    )
});
pub(crate) static BETWEEN: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT {columns} FROM messages WHERE thread_id = $1 AND id > $2 AND id < $3
         ORDER BY id LIMIT $4",
    )
});
pub(crate) static TOTAL: Sql = Sql::new("SELECT message_count FROM threads WHERE id = $1");
/// A thread's members and total in one lookup, for [`Store::thread_messages`].
pub(crate) static PAGE_HEAD: Sql =
    Sql::new("SELECT id, user_low, user_high, message_count FROM threads WHERE id = $1");
pub(crate) static COUNT_AFTER: Sql =
    Sql::new("SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id > $2");
pub(crate) static COUNT_BEFORE: Sql =
    Sql::new("SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id < $2");
pub(crate) static COUNT_BETWEEN: Sql =
    Sql::new("SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id > $2 AND id < $3");

/// A window of a thread's messages, and the thread's total.
async fn page(
    db: &impl Db,
    thread: i64,
    window: MessageWindow,
) -> StoreResult<(Counted<Message>, i64)> {
    let total: Option<i64> = db.row(&TOTAL, &[&thread]).await?;
    let total = total.unwrap_or(0);
    Ok((page_of(db, thread, total, window).await?, total))
}

/// A thread's members and message total ([`PAGE_HEAD`]).
struct PageHead {
    members: ThreadMembers,
    total: i64,
}

impl FromRow for PageHead {
    fn from_row(row: &impl Row) -> StoreResult<PageHead> {
        Ok(PageHead {
            members: ThreadMembers::from_row(row)?,
            total: row.get("message_count")?,
        })
    }
}

/// The window of [`page`] when the thread's total is known (an offset page counts it).
async fn page_of(
    db: &impl Db,
    thread: i64,
    total: i64,
    window: MessageWindow,
) -> StoreResult<Counted<Message>> {
    let (count, items) = match window {
        MessageWindow::Offset { limit, offset } => (
            total,
            db.rows(&BY_OFFSET, &[&thread, &limit, &offset]).await?,
        ),
        MessageWindow::After { id, limit } => (
            db.one(&COUNT_AFTER, &[&thread, &id]).await?,
            db.rows(&AFTER, &[&thread, &id, &limit]).await?,
        ),
        MessageWindow::Before { id, limit } => (
            db.one(&COUNT_BEFORE, &[&thread, &id]).await?,
            db.rows(&BEFORE, &[&thread, &id, &limit]).await?,
        ),
        MessageWindow::Between {
            after,
            before,
            limit,
        } => (
            db.one(&COUNT_BETWEEN, &[&thread, &after, &before]).await?,
            db.rows(&BETWEEN, &[&thread, &after, &before, &limit])
                .await?,
        ),
    };
    Ok(Counted { count, items })
}

impl Store {
    /// A window of a thread's messages, oldest first, with the thread's total message count.
    pub async fn messages(
        &self,
        thread: i64,
        window: MessageWindow,
    ) -> StoreResult<(Counted<Message>, i64)> {
        read!(self, |db| page(db, thread, window).await)
    }

    /// The thread's members and a page of its messages, read in one snapshot (one read where
    /// a visibility check and then the page took two); `None` when there is no such thread.
    pub async fn thread_messages(
        &self,
        thread: i64,
        window: MessageWindow,
    ) -> StoreResult<Option<(ThreadMembers, Counted<Message>, i64)>> {
        read!(
            self,
            |db| match db.row::<PageHead>(&PAGE_HEAD, &[&thread]).await? {
                Some(PageHead { members, total }) => {
                    let page = page_of(db, thread, total, window).await?;
                    Ok(Some((members, page, total)))
                }
                None => Ok(None),
            }
        )
    }
}
