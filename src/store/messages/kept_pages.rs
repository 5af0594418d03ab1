//! The latest page of each thread kept in memory (SQLite): opening a conversation reads it,
//! and a client opens the same few conversations again and again while nothing in them
//! changed. A page read from the database cost a lookup of the thread and one of each
//! message (the messages of a thread lie scattered over the table, in the order they were
//! posted everywhere); a kept one is a pointer copy.
//!
//! A page is kept until one of the thread's two members is told of a change (every change to
//! a thread's messages tells both, see [`crate::store::kept`]), by `(thread, limit)`, and
//! answers any request for the `limit` messages before an id past the thread's newest
//! message: the web client asks for the page before 2^53 - 1.

use std::sync::Arc;

use super::{
    Message,
    pages::{MessageWindow, PageHead, page_of},
};
use crate::store::{
    Counted, Store, StoreResult,
    db::Db,
    kept::{Kept, Weigh},
    packed::KeptJson,
    read,
    threads::ThreadMembers,
};

/// The pages kept, by thread and `limit` (64 MB of the default `serve --kept-answers-mb`,
/// split in `sqlite::caches::Caches::new`).
pub type PageCache = Kept<(i64, i64), PageJson>;

/// A window of a thread's messages as the endpoint answers it, its messages already JSON.
#[derive(Debug)]
pub struct PageJson {
    pub members: ThreadMembers,
    /// How many messages the window holds (the thread's total for an offset page).
    pub count: i64,
    /// How many messages the thread has.
    pub total: i64,
    /// The ids of the page's first and last messages, and how many it has.
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub shown: i64,
    /// The thread's newest message when the page was read.
    newest: Option<i64>,
    /// The page's messages: a JSON array of the contract's message JSON, oldest first.
    pub results: KeptJson,
}

impl PageJson {
    /// `page` as it is answered, packed if it is to be `kept`.
    fn new(
        members: ThreadMembers,
        page: &Counted<Message>,
        (total, newest): (i64, Option<i64>),
        kept: bool,
    ) -> StoreResult<PageJson> {
        Ok(PageJson {
            members,
            count: page.count,
            total,
            first: page.items.first().map(|m| m.id),
            last: page.items.last().map(|m| m.id),
            shown: page.items.len() as i64,
            newest,
            results: KeptJson::of(&page.items, kept)?,
        })
    }
}

impl Weigh for PageJson {
    fn weight(&self) -> usize {
        self.results.stored_len()
    }
}

/// The page of a window when that is the latest page, by the key it is kept under.
fn latest(thread: i64, window: MessageWindow) -> Option<((i64, i64), i64)> {
    match window {
        MessageWindow::Before { id, limit } => Some(((thread, limit), id)),
        _ => None,
    }
}

impl Store {
    /// The thread's members and a window of its messages, read in one snapshot (one read
    /// where a visibility check and then the page took two); `None` when there is no such
    /// thread. The latest page comes from memory when nothing in the thread changed since
    /// this process read it.
    pub async fn thread_messages(
        &self,
        thread: i64,
        window: MessageWindow,
    ) -> StoreResult<Option<Arc<PageJson>>> {
        let read = async |kept: bool| -> StoreResult<Option<Arc<PageJson>>> {
            // The page's read finds the thread's members: kept for the checks of what the
            // reader does next there (posting, reacting), which would read them again.
            let members = self
                .kept()
                .map(|kept| (&kept.members, kept.members.ticket()));
            let page = read!(self, |db| match db
                .row::<PageHead>(&super::pages::PAGE_HEAD, &[&thread])
                .await?
            {
                Some(PageHead { members, extent }) => {
                    let page = page_of(db, thread, extent, window).await?;
                    let extent = (extent.total, extent.last);
                    let json = PageJson::new(members, &page, extent, kept)?;
                    Ok(Some(Arc::new(json)))
                }
                None => Ok(None),
            })?;
            if let (Some((cache, ticket)), Some(page)) = (members, &page) {
                let kept = &page.members;
                cache.keep(ticket, thread, kept.users, &Arc::new(*kept));
            }
            Ok(page)
        };
        let cache = self.kept().map(|kept| &kept.pages);
        let (Some(cache), Some((key, before))) = (
            cache.filter(|cache| cache.keeps_any()),
            latest(thread, window),
        ) else {
            return read(false).await;
        };
        let past_newest = |page: &PageJson| page.newest.is_none_or(|newest| before > newest);
        let counter = "simple_chat_message_page_cache_total";
        let read = async || read(true).await;
        cache
            .get_or_read_if(key, counter, past_newest, read, |page| page.members.users)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::NewUser;

    /// Opening a conversation reads its members with its page: posting there next finds them
    /// in memory instead of reading them again.
    #[tokio::test]
    async fn reading_a_page_keeps_the_threads_members() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pages.sqlite3").display());
        let (store, _) = Store::open(&url).await.unwrap();
        let mut ids = Vec::new();
        for name in ["alice", "bob"] {
            ids.push(store.create_user(NewUser::named(name)).await.unwrap().id);
        }
        let (thread, _) = store.create_thread(ids[0], ids[1], ids[0]).await.unwrap();
        let members = &store.kept().unwrap().members;
        assert!(members.get(&thread.id).is_none(), "nothing read yet");

        let window = MessageWindow::Before {
            id: i64::MAX,
            limit: 20,
        };
        let page = store.thread_messages(thread.id, window).await.unwrap();
        let kept = members.get(&thread.id).expect("kept by the page's read");
        assert_eq!(kept.users, page.unwrap().members.users);
        assert_eq!(store.thread_members(thread.id).await.unwrap(), Some(*kept));

        // A thread that does not exist leaves nothing behind.
        assert!(store.thread_messages(-5, window).await.unwrap().is_none());
        assert!(members.get(&-5).is_none());
    }
}
