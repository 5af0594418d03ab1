//! What this process keeps in memory of the database ([`super::super::kept`],
//! [`super::super::user_cache`]), brought up to date by the writer after each commit and
//! dropped whole when another process wrote the file.

use crate::store::{
    Commit,
    kept::Kept,
    list_cache::{ListCache, PairCache},
    messages::{UnreadCache, kept_pages::PageCache},
    threads::MembersCache,
    user_cache::UserCache,
};

pub(crate) struct Caches {
    pub(super) users: UserCache,
    pub(crate) lists: ListCache,
    pub(crate) pairs: PairCache,
    pub(crate) pages: PageCache,
    pub(crate) members: MembersCache,
    pub(crate) unread: UnreadCache,
}

impl Caches {
    /// `kept_bytes` shared in 27ths by what is kept while unchanged, of the default 216 MB: 96
    /// for thread lists (asked for at every start and reconnect), 64 for latest message pages,
    /// 32 for threads by pair, 16 for threads' members (131,072 threads) and 8 for unread
    /// totals (65,536 users).
    pub(super) fn new(kept_bytes: usize) -> Caches {
        let share = |of_27: usize| kept_bytes / 27 * of_27;
        Caches {
            users: UserCache::default(),
            lists: Kept::new(share(12)),
            pages: Kept::new(share(8)),
            pairs: Kept::new(share(4)),
            members: Kept::new(share(2)),
            unread: Kept::new(share(1)),
        }
    }

    pub(super) fn apply(&self, commit: &Commit) {
        self.users.apply(commit);
        self.lists.apply(commit);
        self.pairs.apply(commit);
        self.pages.apply(commit);
        self.unread.apply(commit);
        // Members never change while their thread exists: only a deletion (or not knowing
        // what changed) drops them, and then all of them.
        if commit.threads_deleted || commit.everyone {
            self.members.forget_all();
        }
    }

    pub(super) fn forget_all(&self) {
        self.users.forget_all();
        self.lists.forget_all();
        self.pairs.forget_all();
        self.pages.forget_all();
        self.members.forget_all();
        self.unread.forget_all();
    }
}
