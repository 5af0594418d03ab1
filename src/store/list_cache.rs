//! Users' thread lists kept in memory (SQLite): a client asks for its list whenever it opens,
//! comes back or reconnects, and most of those times nothing in it changed. A list read from
//! the database cost four row lookups per thread (the thread, both usernames, the last
//! message) and was the slowest of the common reads. A list is kept until its user is told
//! of a change, or a username changes (see [`super::kept`] for why that is enough).
//!
//! So is one thread as creating it answers when it exists already (a client opening a
//! conversation with someone by name): kept until either member is told of a change.

use std::sync::Arc;

use super::{
    Counted, StoreResult,
    kept::{Kept, Weigh},
    packed::KeptJson,
    threads::ThreadView,
};

/// Which list: the user, `limit`, `offset`.
pub type Key = (i64, i64, i64);

/// The thread lists kept (96 MB of the default `serve --kept-answers-mb`, split in
/// `sqlite::caches::Caches::new`: scenario A's 20,000 lists of about 10 threads take about
/// 32 MB of it, packed).
pub type ListCache = Kept<Key, KeptList>;

/// A kept list, shared with the requests answered from it: a hit copies a pointer, not the
/// list (cloning every thread's strings under the lock was a tenth of a hit's time).
pub type List = Arc<KeptList>;

/// A thread list as the endpoint answers it, its threads already JSON (packed): writing the
/// threads out was a fifth of a hit's time.
#[derive(Debug)]
pub struct KeptList {
    /// How many threads the user has.
    pub count: i64,
    /// The page's threads: a JSON array of the contract's thread JSON.
    pub results: KeptJson,
}

impl KeptList {
    /// `list` as it is answered, packed if it is to be `kept`.
    pub fn new(list: &Counted<ThreadView>, kept: bool) -> StoreResult<KeptList> {
        Ok(KeptList {
            count: list.count,
            results: KeptJson::of(&list.items, kept)?,
        })
    }
}

impl Weigh for KeptList {
    fn weight(&self) -> usize {
        self.results.stored_len()
    }
}

/// Which thread as whom: the lower user id, the higher, the viewer.
pub type PairKey = (i64, i64, i64);

/// The threads kept for creating a thread that exists already (32 MB of the default
/// `serve --kept-answers-mb`, split in `sqlite::caches::Caches::new`).
pub type PairCache = Kept<PairKey, KeptThread>;

/// A thread as one viewer sees it: the contract's thread JSON.
#[derive(Debug)]
pub struct KeptThread {
    pub json: KeptJson,
}

impl KeptThread {
    /// `thread` as it is answered, packed if it is to be `kept`.
    pub fn new(thread: &ThreadView, kept: bool) -> StoreResult<KeptThread> {
        Ok(KeptThread {
            json: KeptJson::of(thread, kept)?,
        })
    }
}

impl Weigh for KeptThread {
    fn weight(&self) -> usize {
        self.json.stored_len()
    }
}
