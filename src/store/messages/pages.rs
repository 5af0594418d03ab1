//! Reading a thread's messages a page at a time: by offset, or before, after or between
//! message ids (keyset), each with how many messages the window holds and the thread's total.

use std::sync::LazyLock;

use super::{Message, with_columns};
use crate::store::{
    Counted, Store, StoreResult,
    db::{Db, FromRow, Param, Row, Sql},
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
/// [`BY_OFFSET`] counted from the newest message: `$3` skipped from the end, then `$2`, newest
/// first (see [`newest_first`]).
pub(crate) static BY_OFFSET_FROM_END: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT {columns} FROM messages WHERE thread_id = $1
         ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
});
pub(crate) static AFTER: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT {columns} FROM messages WHERE thread_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
});
/// The `$3` messages before id `$2`, newest first (see [`newest_first`]).
pub(crate) static BEFORE: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT {columns} FROM messages WHERE thread_id = $1 AND id < $2
         ORDER BY id DESC LIMIT $3",
    )
});
pub(crate) static BETWEEN: LazyLock<Sql> = LazyLock::new(|| {
    with_columns(
        "SELECT {columns} FROM messages WHERE thread_id = $1 AND id > $2 AND id < $3
         ORDER BY id LIMIT $4",
    )
});
/// A thread's total and newest message ([`Extent`]).
pub(crate) static TOTAL: Sql =
    Sql::new("SELECT message_count, last_message_id FROM threads WHERE id = $1");
/// A thread's members, total and newest message in one lookup, for [`Store::thread_messages`](super::kept_pages).
pub(crate) static PAGE_HEAD: Sql = Sql::new(
    "SELECT id, user_low, user_high, message_count, last_message_id FROM threads WHERE id = $1",
);
pub(crate) static COUNT_AFTER: Sql =
    Sql::new("SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id > $2");
pub(crate) static COUNT_BEFORE: Sql =
    Sql::new("SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id < $2");
/// A thread's total, and how many of its messages are at or after an id, counting at most
/// `$3` ([`Sides`]). One statement, so that on PostgreSQL (a read is not one snapshot there)
/// both numbers are of the same moment.
pub(crate) static COUNT_FROM: Sql = Sql::new(
    "SELECT t.message_count AS total, (
         SELECT COUNT(*) FROM (
             SELECT 1 FROM messages WHERE thread_id = $1 AND id >= $2 LIMIT $3
         ) AS s
     ) AS other
     FROM threads t WHERE t.id = $1",
);
/// [`COUNT_FROM`] for the messages at or before an id.
pub(crate) static COUNT_UP_TO: Sql = Sql::new(
    "SELECT t.message_count AS total, (
         SELECT COUNT(*) FROM (
             SELECT 1 FROM messages WHERE thread_id = $1 AND id <= $2 LIMIT $3
         ) AS s
     ) AS other
     FROM threads t WHERE t.id = $1",
);
/// Most messages [`count_beside`] counts on the other side of its id before it counts its
/// own side instead.
const COUNTED_FROM_THE_OTHER_SIDE: i64 = 10_000;
pub(crate) static COUNT_BETWEEN: Sql =
    Sql::new("SELECT COUNT(*) FROM messages WHERE thread_id = $1 AND id > $2 AND id < $3");

/// A window of a thread's messages, and the thread's total.
async fn page(
    db: &impl Db,
    thread: i64,
    window: MessageWindow,
) -> StoreResult<(Counted<Message>, i64)> {
    let extent: Option<Extent> = db.row(&TOTAL, &[&thread]).await?;
    let extent = extent.unwrap_or_default();
    Ok((page_of(db, thread, extent, window).await?, extent.total))
}

/// How many messages a thread has and the newest one's id ([`TOTAL`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Extent {
    pub(super) total: i64,
    pub(super) last: Option<i64>,
}

impl FromRow for Extent {
    fn from_row(row: &impl Row) -> StoreResult<Extent> {
        Ok(Extent {
            total: row.get("message_count")?,
            last: row.get("last_message_id")?,
        })
    }
}

/// A thread's members and [`Extent`] ([`PAGE_HEAD`]).
pub(super) struct PageHead {
    pub(super) members: ThreadMembers,
    pub(super) extent: Extent,
}

impl FromRow for PageHead {
    fn from_row(row: &impl Row) -> StoreResult<PageHead> {
        Ok(PageHead {
            members: ThreadMembers::from_row(row)?,
            extent: Extent::from_row(row)?,
        })
    }
}

/// The window of [`page`] when the thread's [`Extent`] is known: an offset page counts the
/// total, and so does a page before an id past the newest message (the latest page, which
/// is what opening a conversation reads).
pub(super) async fn page_of(
    db: &impl Db,
    thread: i64,
    extent: Extent,
    window: MessageWindow,
) -> StoreResult<Counted<Message>> {
    let (count, items) = match window {
        MessageWindow::Offset { limit, offset } => (
            extent.total,
            by_offset(db, thread, extent.total, limit, offset).await?,
        ),
        MessageWindow::Before { id, limit } if extent.last.is_none_or(|last| id > last) => (
            extent.total,
            newest_first(db, &BEFORE, &[&thread, &id, &limit]).await?,
        ),
        MessageWindow::After { id, limit } => (
            count_beside(db, thread, Beside::After(id)).await?,
            db.rows(&AFTER, &[&thread, &id, &limit]).await?,
        ),
        MessageWindow::Before { id, limit } => (
            count_beside(db, thread, Beside::Before(id)).await?,
            newest_first(db, &BEFORE, &[&thread, &id, &limit]).await?,
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

/// The messages at `offset..offset + limit` of a thread's `total`, oldest first. An offset is
/// a walk over the skipped messages, so one in the newer half is walked from the newest (the
/// last page of a long conversation skipped nearly all of it).
async fn by_offset(
    db: &impl Db,
    thread: i64,
    total: i64,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<Message>> {
    if offset <= total / 2 {
        return db.rows(&BY_OFFSET, &[&thread, &limit, &offset]).await;
    }
    let end = offset.saturating_add(limit).min(total);
    if end <= offset {
        return Ok(Vec::new());
    }
    newest_first(
        db,
        &BY_OFFSET_FROM_END,
        &[&thread, &(end - offset), &(total - end)],
    )
    .await
}

/// The messages of a query that reads them newest first, oldest first as pages are. Turned
/// around here rather than by an outer `ORDER BY id`, which made the database sort every page
/// (most pages read are the latest).
async fn newest_first(db: &impl Db, sql: &Sql, params: &[&dyn Param]) -> StoreResult<Vec<Message>> {
    let mut messages: Vec<Message> = db.rows(sql, params).await?;
    messages.reverse();
    Ok(messages)
}

/// Which of a thread's messages [`count_beside`] counts.
#[derive(Clone, Copy, Debug)]
enum Beside {
    Before(i64),
    After(i64),
}

/// How many of a thread's messages come before or after an id. Counting is a walk over the
/// index, so a count of everything before a page near the end of a long conversation (a
/// reader scrolling back from the newest) walked nearly all of it, and so did a count of
/// everything after a page near its start (reading on from an old message). Those on one
/// side are the total less those on the other (and the id's own), and when those are few,
/// they are counted instead.
async fn count_beside(db: &impl Db, thread: i64, side: Beside) -> StoreResult<i64> {
    let (other_side, own_side, id) = match side {
        Beside::Before(id) => (&COUNT_FROM, &COUNT_BEFORE, id),
        Beside::After(id) => (&COUNT_UP_TO, &COUNT_AFTER, id),
    };
    let sides: Option<Sides> = db
        .row(other_side, &[&thread, &id, &COUNTED_FROM_THE_OTHER_SIDE])
        .await?;
    match sides {
        None => Ok(0),
        Some(Sides { total, other }) if other < COUNTED_FROM_THE_OTHER_SIDE => Ok(total - other),
        Some(_) => db.one(own_side, &[&thread, &id]).await,
    }
}

/// A row of [`COUNT_FROM`] or [`COUNT_UP_TO`].
struct Sides {
    total: i64,
    other: i64,
}

impl FromRow for Sides {
    fn from_row(row: &impl Row) -> StoreResult<Sides> {
        Ok(Sides {
            total: row.get("total")?,
            other: row.get("other")?,
        })
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{
        run_now,
        tests::{planning_database, reader},
    };

    #[test]
    fn pages_are_walked_to_from_whichever_end_is_nearer() {
        let (_dir, conn) = planning_database();
        let total = COUNTED_FROM_THE_OTHER_SIDE + 50;
        conn.execute_batch(&format!(
            "INSERT INTO users (id, username, password, date_joined) VALUES (1, 'a', '', 0), (2, 'b', '', 0);
             INSERT INTO threads (id, user_low, user_high, created, updated) VALUES (1, 1, 2, 0, 0);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {total})
             INSERT INTO messages (id, thread_id, sender_id, text, created) SELECT i, 1, 1, 'm', 0 FROM n;
             UPDATE threads SET message_count = {total}, last_message_id = {total};"
        ))
        .unwrap();
        let db = reader(&conn);
        let extent: Extent = run_now(db.one(&TOTAL, &[&1_i64])).unwrap();
        assert_eq!((extent.total, extent.last), (total, Some(total)));
        // Ids are 1..=total: `id - 1` messages come before each and `total - id` after. Up
        // to `edge` the other side holds the bound's number or more, and is not counted.
        let edge = total - COUNTED_FROM_THE_OTHER_SIDE + 1;
        for id in [1, 2, edge - 1, edge, edge + 1, total - 1, total] {
            let before = run_now(count_beside(&db, 1, Beside::Before(id))).unwrap();
            assert_eq!(before, id - 1, "before {id}");
            let mirror = total + 1 - id;
            let after = run_now(count_beside(&db, 1, Beside::After(mirror))).unwrap();
            assert_eq!(after, total - mirror, "after {mirror}");
        }
        // Offsets in either half, the last page cut short, and past the end.
        for (offset, limit, expected) in [
            (0, 2, vec![1, 2]),
            (total / 2, 2, vec![total / 2 + 1, total / 2 + 2]),
            (total / 2 + 1, 2, vec![total / 2 + 2, total / 2 + 3]),
            (total - 3, 2, vec![total - 2, total - 1]),
            (total - 1, 5, vec![total]),
            (total, 5, vec![]),
            (total + 7, 5, vec![]),
        ] {
            let window = MessageWindow::Offset { limit, offset };
            let page = run_now(page_of(&db, 1, extent, window)).unwrap();
            let ids: Vec<i64> = page.items.iter().map(|m| m.id).collect();
            assert_eq!(ids, expected, "offset {offset}, limit {limit}");
            assert_eq!(page.count, total);
        }
        let window = MessageWindow::Before {
            id: total + 1,
            limit: 3,
        };
        let page = run_now(page_of(&db, 1, extent, window)).unwrap();
        assert_eq!(page.count, total);
        let ids: Vec<i64> = page.items.iter().map(|m| m.id).collect();
        assert_eq!(ids, [total - 2, total - 1, total]);
    }
}
