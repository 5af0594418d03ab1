//! Threads: a conversation of exactly two different users, stored once per pair
//! (`user_low < user_high`), with one `thread_members` row per participant that holds what
//! only that user sees of it (their unread count). The thread's own `updated`, moved by every
//! post, places it in both participants' lists.

use std::{
    cmp::Reverse,
    sync::{Arc, LazyLock},
};

use serde::Serialize;

use super::{
    Counted, Store, StoreResult,
    db::{Db, FromRow, Row, Sql, Tx},
    events::{self, Payload},
    files,
    list_cache::{KeptList, KeptThread, List},
    messages::{self, Message},
    read,
    users::{self, User},
    write,
};
use crate::clock::Timestamp;

/// Two users looked up by username, and their thread (see [`Store::pair_by_usernames`]).
#[derive(Debug)]
pub struct Pair {
    pub users: [Option<Arc<User>>; 2],
    pub thread: Option<Arc<KeptThread>>,
}

/// A user as anyone signed in may see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Participant {
    pub id: i64,
    pub username: String,
}

/// A thread as one user sees it: the contract's thread JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ThreadView {
    pub id: i64,
    pub participants: [Participant; 2],
    /// The participants' usernames, ordered by user id (the original's field).
    pub participants_list: [String; 2],
    pub created: Timestamp,
    pub updated: Timestamp,
    pub last_message: Option<Message>,
    /// Unread messages for the user this view is for.
    pub unread_count: i64,
}

impl ThreadView {
    /// Who takes part in the thread.
    pub fn members(&self) -> ThreadMembers {
        ThreadMembers {
            id: self.id,
            users: [self.participants[0].id, self.participants[1].id],
        }
    }
}

impl FromRow for ThreadView {
    fn from_row(row: &impl Row) -> StoreResult<ThreadView> {
        let low = Participant {
            id: row.get("user_low")?,
            username: row.get("low_username")?,
        };
        let high = Participant {
            id: row.get("user_high")?,
            username: row.get("high_username")?,
        };
        Ok(ThreadView {
            id: row.get("id")?,
            participants_list: [low.username.clone(), high.username.clone()],
            participants: [low, high],
            created: row.get("created")?,
            updated: row.get("updated")?,
            unread_count: row.get("unread_count")?,
            last_message: messages::last_message_from_row(row)?,
        })
    }
}

/// Who takes part in a thread (ids in ascending order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadMembers {
    pub id: i64,
    pub users: [i64; 2],
}

/// Threads' members by thread id, kept while no thread is deleted (SQLite; 16 MB of the
/// default `serve --kept-answers-mb`, split in `sqlite::caches::Caches::new`).
pub type MembersCache = super::kept::Kept<i64, ThreadMembers>;

/// Two ids take nothing beyond the entry.
impl super::kept::Weigh for ThreadMembers {
    fn weight(&self) -> usize {
        0
    }
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

impl FromRow for ThreadMembers {
    fn from_row(row: &impl Row) -> StoreResult<ThreadMembers> {
        Ok(ThreadMembers {
            id: row.get("id")?,
            users: [row.get("user_low")?, row.get("user_high")?],
        })
    }
}

/// The thread view's columns, for one thread (`t`) and one viewer (`me`), with its two users'
/// names from `low` and `high`.
fn view_select(low: &str, high: &str) -> String {
    format!(
        "SELECT t.id, t.created, t.updated, t.user_low, {low} AS low_username,
                t.user_high, {high} AS high_username,
                COALESCE(me.unread, 0) AS unread_count, {}",
        messages::last_message_columns("m")
    )
}

/// [`view_select`] with the names from the joined users (`ul`, `uh` of [`VIEW_JOINS`]).
fn joined_view_select() -> String {
    view_select("ul.username", "uh.username")
}

const VIEW_JOINS: &str = "JOIN users ul ON ul.id = t.user_low
     JOIN users uh ON uh.id = t.user_high
     LEFT JOIN messages m ON m.id = t.last_message_id";

/// The view of one thread (`t`), as the user in parameter `viewer` sees it, where `condition`.
fn one_view(viewer: &str, condition: &str) -> Sql {
    Sql::owned(format!(
        "{}
         FROM threads t
         LEFT JOIN thread_members me ON me.thread_id = t.id AND me.user_id = {viewer}
         {VIEW_JOINS}
         WHERE {condition}",
        joined_view_select()
    ))
}

pub(crate) static VIEW: LazyLock<Sql> = LazyLock::new(|| one_view("$2", "t.id = $1"));
/// [`VIEW`] of the thread of users `$1` < `$2` (named `$4` and `$5`), as `$3` sees it: one
/// statement where looking the pair's thread up first took two. Whoever asks has both users
/// at hand already, so they are not joined again.
static VIEW_BY_PAIR: LazyLock<Sql> = LazyLock::new(|| {
    Sql::owned(format!(
        "{}
         FROM threads t
         LEFT JOIN thread_members me ON me.thread_id = t.id AND me.user_id = $3
         LEFT JOIN messages m ON m.id = t.last_message_id
         WHERE t.user_low = $1 AND t.user_high = $2",
        view_select("CAST($4 AS TEXT)", "CAST($5 AS TEXT)")
    ))
});
/// A page of a user's threads (put latest activity first in Rust: [`Store::threads_of`]). The
/// user's member rows are sorted by their threads' `updated` (no index orders them: a post
/// would have to move an entry of each member's); the inner query picks the page with one
/// thread lookup per member row, and only the page's rows are joined to their users and last
/// message.
pub(crate) static LIST: LazyLock<Sql> = LazyLock::new(|| {
    Sql::owned(format!(
        "{}
         FROM (SELECT mine.thread_id, mine.unread
               FROM thread_members mine JOIN threads mt ON mt.id = mine.thread_id
               WHERE mine.user_id = $1
               ORDER BY mt.updated DESC, mt.id DESC
               LIMIT $2 OFFSET $3) me
         JOIN threads t ON t.id = me.thread_id
         {VIEW_JOINS}",
        joined_view_select()
    ))
});
pub(crate) static COUNT: Sql = Sql::new("SELECT COUNT(*) FROM thread_members WHERE user_id = $1");
pub(crate) static MEMBERS: Sql =
    Sql::new("SELECT id, user_low, user_high FROM threads WHERE id = $1");
/// The members, locking the thread row on PostgreSQL so concurrent writes to one thread queue.
pub(crate) static MEMBERS_FOR_UPDATE: Sql = Sql::dialects(
    "SELECT id, user_low, user_high FROM threads WHERE id = $1",
    "SELECT id, user_low, user_high FROM threads WHERE id = $1 FOR UPDATE",
);
static INSERT: Sql = Sql::new(
    "INSERT INTO threads (user_low, user_high, created, updated)
     VALUES ($1, $2, $3, $3)
     ON CONFLICT (user_low, user_high) DO NOTHING
     RETURNING id",
);
static ADD_MEMBERS: Sql =
    Sql::new("INSERT INTO thread_members (user_id, thread_id) VALUES ($1, $3), ($2, $3)");
static BY_PAIR: Sql = Sql::new("SELECT id FROM threads WHERE user_low = $1 AND user_high = $2");
static DELETE: Sql = Sql::new("DELETE FROM threads WHERE id = $1");
pub(crate) static UNREAD_IN: Sql =
    Sql::new("SELECT unread FROM thread_members WHERE user_id = $1 AND thread_id = $2");

pub(crate) async fn members(db: &impl Db, id: i64) -> StoreResult<Option<ThreadMembers>> {
    db.row(&MEMBERS, &[&id]).await
}

pub(crate) async fn view(db: &impl Db, id: i64, viewer: i64) -> StoreResult<Option<ThreadView>> {
    db.row(&VIEW, &[&id, &viewer]).await
}

/// A user's unread count in one thread (0 when they are not in it).
pub(crate) async fn unread_in(db: &impl Db, user: i64, thread: i64) -> StoreResult<i64> {
    let unread: Option<i64> = db.row(&UNREAD_IN, &[&user, &thread]).await?;
    Ok(unread.unwrap_or(0))
}

async fn create(
    tx: &mut impl Tx,
    low: i64,
    high: i64,
    viewer: i64,
) -> StoreResult<(ThreadView, bool)> {
    let now = tx.now();
    let inserted: Option<i64> = tx.row(&INSERT, &[&low, &high, &now]).await?;
    let (id, created) = match inserted {
        Some(id) => {
            tx.execute(&ADD_MEMBERS, &[&low, &high, &id]).await?;
            for user in [low, high] {
                let view = view(tx, id, user).await?.ok_or_else(super::db::vanished)?;
                events::tell(tx, &[user], Payload::ThreadCreated { thread: &view }).await?;
            }
            (id, true)
        }
        None => (tx.one(&BY_PAIR, &[&low, &high]).await?, false),
    };
    let view = view(tx, id, viewer)
        .await?
        .ok_or_else(super::db::vanished)?;
    Ok((view, created))
}

async fn delete(tx: &mut impl Tx, id: i64) -> StoreResult<bool> {
    let Some(members) = tx.row::<ThreadMembers>(&MEMBERS_FOR_UPDATE, &[&id]).await? else {
        return Ok(false);
    };
    events::redact_thread(tx, id).await?;
    let attached: Vec<i64> = tx.rows(&files::OF_THREAD, &[&id]).await?;
    tx.execute(&DELETE, &[&id]).await?;
    tx.thread_deleted();
    files::delete_unused(tx, &attached).await?;
    events::tell(tx, &members.users, Payload::ThreadDeleted { thread: id }).await?;
    Ok(true)
}

/// The thread of two users as `viewer` sees it; `None` when they are one user or have none.
async fn thread_of(
    db: &impl Db,
    [a, b]: [&User; 2],
    viewer: i64,
) -> StoreResult<Option<ThreadView>> {
    if a.id == b.id {
        return Ok(None);
    }
    let (low, high) = if a.id < b.id { (a, b) } else { (b, a) };
    db.row(
        &VIEW_BY_PAIR,
        &[&low.id, &high.id, &viewer, &low.username, &high.username],
    )
    .await
}

impl Store {
    /// Who takes part in thread `id`. They never change while it exists, and its id names no
    /// other thread after it (ids are not reused): on SQLite they are kept in memory until a
    /// thread is deleted ([`Commit::threads_deleted`]), so posting, editing and reacting read
    /// them without opening a snapshot.
    ///
    /// [`Commit::threads_deleted`]: super::Commit::threads_deleted
    pub async fn thread_members(&self, id: i64) -> StoreResult<Option<ThreadMembers>> {
        let read = async || read!(self, |db| members(db, id).await);
        let Some(cache) = self.kept().map(|kept| &kept.members) else {
            return read().await;
        };
        let read = async || Ok(read().await?.map(Arc::new));
        let counter = "simple_chat_thread_members_cache_total";
        let kept = cache.get_or_read(id, counter, read, |members| members.users);
        Ok(kept.await?.map(|members| *members))
    }

    /// A thread as `viewer` sees it.
    pub async fn thread_view(&self, id: i64, viewer: i64) -> StoreResult<Option<ThreadView>> {
        read!(self, |db| view(db, id, viewer).await)
    }

    /// Two users by username and, when both exist and differ, their thread as `viewer` sees
    /// it: what creating a thread reads first. Users kept in memory ([`UserCache`]: never stale
    /// in this process) are not read again; otherwise all three are read in one snapshot.
    ///
    /// [`UserCache`]: super::user_cache::UserCache
    pub async fn pair_by_usernames(
        &self,
        usernames: [String; 2],
        viewer: i64,
    ) -> StoreResult<Pair> {
        let cache = self.user_cache();
        if let [Some(a), Some(b)] = usernames.each_ref().map(|name| cache.by_username(name)) {
            let thread = self.kept_thread_of([&a, &b], viewer).await?;
            let users = [Some(a), Some(b)];
            return Ok(Pair { users, thread });
        }
        let ticket = cache.ticket();
        let pair = read!(self, |db| {
            let users = [
                users::by_username(db, &usernames[0]).await?.map(Arc::new),
                users::by_username(db, &usernames[1]).await?.map(Arc::new),
            ];
            let thread = match &users {
                [Some(a), Some(b)] => thread_of(db, [a, b], viewer).await?,
                _ => None,
            };
            let thread = thread.map(|t| KeptThread::new(&t, false).map(Arc::new));
            Ok(Pair {
                users,
                thread: thread.transpose()?,
            })
        })?;
        for user in pair.users.iter().flatten() {
            cache.keep(ticket, user);
        }
        Ok(pair)
    }

    /// The thread of two users as `viewer` sees it, from memory when nothing in it changed
    /// since this process read it (see [`super::list_cache`]).
    async fn kept_thread_of(
        &self,
        users: [&User; 2],
        viewer: i64,
    ) -> StoreResult<Option<Arc<KeptThread>>> {
        let [a, b] = users.map(|user| user.id);
        let read = async |kept: bool| -> StoreResult<Option<Arc<KeptThread>>> {
            let thread = read!(self, |db| thread_of(db, users, viewer).await)?;
            Ok(thread
                .map(|t| KeptThread::new(&t, kept))
                .transpose()?
                .map(Arc::new))
        };
        let cache = self.kept().map(|kept| &kept.pairs);
        let Some(cache) = cache.filter(|cache| cache.keeps_any() && a != b) else {
            return read(false).await;
        };
        let (low, high) = (a.min(b), a.max(b));
        let counter = "simple_chat_thread_pair_cache_total";
        let read = async || read(true).await;
        cache
            .get_or_read((low, high, viewer), counter, read, |_| [low, high])
            .await
    }

    /// The thread of two different users as `viewer` sees it, created when there is none
    /// (`true`). The pair's unique constraint makes concurrent creations end in one thread.
    pub async fn create_thread(
        &self,
        a: i64,
        b: i64,
        viewer: i64,
    ) -> StoreResult<(ThreadView, bool)> {
        let (low, high) = (a.min(b), a.max(b));
        write!(self, |tx| create(tx, low, high, viewer).await)
    }

    /// Deletes a thread and its messages (whose text leaves every stored log); both
    /// participants get `thread.deleted`.
    pub async fn delete_thread(&self, id: i64) -> StoreResult<bool> {
        write!(self, |tx| delete(tx, id).await)
    }

    /// A page of a user's threads, most recent activity first.
    pub async fn threads_of(
        &self,
        user: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<ThreadView>> {
        read!(self, |db| {
            let mut items: Vec<ThreadView> = db.rows(&LIST, &[&user, &limit, &offset]).await?;
            // The page's few rows, ordered here rather than by a second sort in the database.
            items.sort_unstable_by_key(|thread| Reverse((thread.updated, thread.id)));
            Ok(Counted {
                count: db.one(&COUNT, &[&user]).await?,
                items,
            })
        })
    }

    /// [`threads_of`](Self::threads_of) for the thread-list endpoint: from memory when nothing
    /// in it changed since this process read it (see [`super::list_cache`]). Exports and the
    /// admin page read past it, so their pages do not push users' lists out.
    pub async fn thread_list(&self, user: i64, limit: i64, offset: i64) -> StoreResult<List> {
        let read = async |kept: bool| -> StoreResult<List> {
            let list = self.threads_of(user, limit, offset).await?;
            Ok(Arc::new(KeptList::new(&list, kept)?))
        };
        let cache = self.kept().map(|kept| &kept.lists);
        let Some(cache) = cache.filter(|cache| cache.keeps_any()) else {
            return read(false).await;
        };
        let read = async || Ok(Some(read(true).await?));
        let counter = "simple_chat_thread_list_cache_total";
        let kept = cache.get_or_read((user, limit, offset), counter, read, |_| [user, user]);
        kept.await?.ok_or_else(super::db::vanished)
    }
}
