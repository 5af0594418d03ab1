//! Users' thread lists kept in memory (SQLite): a client asks for its list whenever it opens,
//! comes back or reconnects, and most of those times nothing in it changed. A list read from
//! the database cost four row lookups per thread (the thread, both usernames, the last
//! message) and was the slowest of the common reads. A list is kept until its user is told
//! of a change, or a username changes (see [`super::kept`] for why that is enough).
//!
//! So is one thread as creating it answers when it exists already (a client opening a
//! conversation with someone by name): kept until either member is told of a change.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::{
    Counted, StoreError, StoreResult,
    kept::{Kept, Weigh},
    threads::ThreadView,
};

/// Which list: the user, `limit`, `offset`.
pub type Key = (i64, i64, i64);

/// The thread lists kept (96 MB of the default `serve --kept-answers-mb`, split in
/// `sqlite::caches::Caches::new`: scenario A's 20,000 lists of about 10 threads come near it).
pub type ListCache = Kept<Key, KeptList>;

/// A kept list, shared with the requests answered from it: a hit copies a pointer, not the
/// list (cloning every thread's strings under the lock was a tenth of a hit's time).
pub type List = Arc<KeptList>;

/// A thread list as the endpoint answers it, its threads already JSON: writing the threads
/// out was a fifth of a hit's time.
#[derive(Debug)]
pub struct KeptList {
    /// How many threads the user has.
    pub count: i64,
    /// The page's threads: a JSON array of the contract's thread JSON.
    pub results: Box<RawValue>,
}

impl KeptList {
    pub fn new(list: &Counted<ThreadView>) -> StoreResult<KeptList> {
        Ok(KeptList {
            count: list.count,
            results: serde_json::value::to_raw_value(&list.items)
                .map_err(|e| StoreError::Other(e.into()))?,
        })
    }
}

impl Weigh for KeptList {
    fn weight(&self) -> usize {
        self.results.get().len()
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
    pub json: Box<RawValue>,
}

impl KeptThread {
    pub fn new(thread: &ThreadView) -> StoreResult<KeptThread> {
        Ok(KeptThread {
            json: serde_json::value::to_raw_value(thread)
                .map_err(|e| StoreError::Other(e.into()))?,
        })
    }
}

impl Weigh for KeptThread {
    fn weight(&self) -> usize {
        self.json.get().len()
    }
}
