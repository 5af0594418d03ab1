//! Users' thread lists kept in memory (SQLite): a client asks for its list whenever it opens,
//! comes back or reconnects, and most of those times nothing in it changed. A list read from
//! the database cost four row lookups per thread (the thread, both usernames, the last
//! message) and was the slowest of the common reads.
//!
//! A kept list is answered while nothing in it can have changed, which rests on a rule the
//! real-time contract already needs: every write that changes what a user's thread list shows
//! (a message posted, edited, deleted, read or reacted to; a thread created or deleted) appends
//! an event to that user's log, so the commit names the user in [`Commit::events_for`]. A
//! username appears in other users' lists: a commit that renamed someone
//! ([`Commit::renamed`]) drops every list. The SQLite writer applies each commit before its
//! callers are answered, and drops everything when another process wrote the file (noticed
//! within [`super::user_cache::FOREIGN_WRITES_CHECKED_EVERY`]). PostgreSQL instances learn of
//! each other's commits only through notifications, a moment later: lists are not kept there.
//!
//! A list read before a change and kept after it must not be answered: every change moves a
//! clock on, and a list counts as current only while neither its user nor everyone changed
//! after the read began ([`Ticket`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::value::RawValue;

use super::{Commit, Counted, StoreError, StoreResult, threads::ThreadView};

/// Memory the kept lists may take, as [`weight`] estimates it; past this each new list
/// replaces arbitrary others. Scenario A's 20,000 lists of about 10 threads come near it.
const MAX_BYTES: usize = 96 << 20;
/// Users whose last change is remembered at most; past this every list is dropped.
const MAX_USERS: usize = 100_000;

/// Which list: the user, `limit`, `offset`.
type Key = (i64, i64, i64);

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

#[derive(Default)]
pub struct ListCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Moves on at every change applied.
    clock: u64,
    /// The clock when each user's lists last changed.
    changed: HashMap<i64, u64>,
    /// The clock when every list last changed.
    all_changed: u64,
    lists: HashMap<Key, (u64, List)>,
    /// The [`weight`] of `lists`.
    bytes: usize,
}

/// About what a kept list takes in memory: its JSON plus its share of the map.
fn weight(list: &KeptList) -> usize {
    128 + list.results.get().len()
}

impl Inner {
    /// Whether `user`'s lists are unchanged since the clock read `since`.
    fn unchanged(&self, user: i64, since: u64) -> bool {
        self.all_changed <= since && self.changed.get(&user).is_none_or(|&at| at <= since)
    }

    fn remove(&mut self, key: &Key) {
        if let Some((_, list)) = self.lists.remove(key) {
            self.bytes -= weight(&list);
        }
    }

    fn forget_all(&mut self) {
        self.clock += 1;
        self.all_changed = self.clock;
        self.changed.clear();
        self.lists.clear();
        self.bytes = 0;
    }
}

/// When a read began, for [`ListCache::keep`].
#[derive(Clone, Copy)]
pub struct Ticket(u64);

impl ListCache {
    /// The list, when one is kept that nothing changed since (one that did is dropped).
    pub fn get(&self, user: i64, limit: i64, offset: i64) -> Option<List> {
        let mut inner = self.inner.lock().ok()?;
        let (read_at, list) = inner.lists.get(&(user, limit, offset))?;
        if inner.unchanged(user, *read_at) {
            return Some(Arc::clone(list));
        }
        inner.remove(&(user, limit, offset));
        None
    }

    /// Taken before reading a list from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.inner.lock().map(|inner| inner.clock).unwrap_or(0))
    }

    /// Keeps a list read since `ticket`, unless it changed meanwhile.
    pub fn keep(&self, ticket: Ticket, (user, limit, offset): Key, list: &List) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if !inner.unchanged(user, ticket.0) {
            return;
        }
        let added = weight(list);
        if added > MAX_BYTES / 8 {
            return;
        }
        inner.remove(&(user, limit, offset));
        while inner.bytes + added > MAX_BYTES {
            let Some(any) = inner.lists.keys().next().copied() else {
                break;
            };
            inner.remove(&any);
        }
        inner.bytes += added;
        inner
            .lists
            .insert((user, limit, offset), (ticket.0, Arc::clone(list)));
    }

    /// Notes what a committed transaction changed.
    pub fn apply(&self, commit: &Commit) {
        if commit.events_for.is_empty() && !commit.renamed && !commit.everyone {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if commit.renamed || commit.everyone || inner.changed.len() >= MAX_USERS {
            inner.forget_all();
            return;
        }
        inner.clock += 1;
        let now = inner.clock;
        for user in &commit.events_for {
            inner.changed.insert(*user, now);
        }
    }

    /// Drops every list (something changed that this process was not told about in detail).
    pub fn forget_all(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.forget_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(count: i64) -> List {
        let list = Counted {
            count,
            items: Vec::new(),
        };
        Arc::new(KeptList::new(&list).unwrap())
    }

    fn told(users: &[i64]) -> Commit {
        Commit {
            events_for: users.to_vec(),
            ..Commit::default()
        }
    }

    #[test]
    fn a_list_is_answered_until_its_user_is_told_of_a_change() {
        let cache = ListCache::default();
        cache.keep(cache.ticket(), (1, 50, 0), &list(3));
        cache.keep(cache.ticket(), (2, 50, 0), &list(4));
        assert_eq!(cache.get(1, 50, 0).map(|l| l.count), Some(3));
        assert!(cache.get(1, 20, 0).is_none());
        cache.apply(&told(&[1]));
        assert!(cache.get(1, 50, 0).is_none());
        let bytes = cache.inner.lock().unwrap().bytes;
        assert_eq!(
            bytes,
            weight(&list(4)),
            "the changed list is dropped when met"
        );
        assert_eq!(cache.get(2, 50, 0).map(|l| l.count), Some(4));
        // Read again after the change: kept again.
        cache.keep(cache.ticket(), (1, 50, 0), &list(5));
        assert_eq!(cache.get(1, 50, 0).map(|l| l.count), Some(5));
        cache.apply(&Commit {
            renamed: true,
            ..Commit::default()
        });
        assert!(cache.get(1, 50, 0).is_none() && cache.get(2, 50, 0).is_none());
        cache.keep(cache.ticket(), (2, 50, 0), &list(4));
        cache.forget_all();
        assert!(cache.get(2, 50, 0).is_none());
    }

    /// A list of one thread whose last message has `text_bytes` of text.
    fn heavy(text_bytes: usize) -> List {
        use crate::{
            clock::Timestamp,
            store::{messages::Message, threads::Participant},
        };
        let person = |id: i64| Participant {
            id,
            username: format!("user{id}"),
        };
        let now = Timestamp::now();
        let list = Counted {
            count: 1,
            items: vec![ThreadView {
                id: 1,
                participants: [person(1), person(2)],
                participants_list: ["user1".into(), "user2".into()],
                created: now,
                updated: now,
                last_message: Some(Message::imported(
                    1,
                    (1, 1),
                    "x".repeat(text_bytes),
                    now,
                    false,
                )),
                unread_count: 0,
            }],
        };
        Arc::new(KeptList::new(&list).unwrap())
    }

    #[test]
    fn what_is_kept_stays_within_its_memory() {
        let cache = ListCache::default();
        let list = heavy(1 << 20);
        for user in 1..=200 {
            cache.keep(cache.ticket(), (user, 50, 0), &list);
            let inner = cache.inner.lock().unwrap();
            assert!(inner.bytes <= MAX_BYTES);
            let weights: usize = inner.lists.values().map(|(_, l)| weight(l)).sum();
            assert_eq!(inner.bytes, weights);
        }
        let kept = (1..=200).filter(|u| cache.get(*u, 50, 0).is_some()).count();
        assert!((80..=96).contains(&kept), "{kept} lists kept");
        assert!(cache.get(200, 50, 0).is_some(), "the newest is kept");
        // One list too large for its share is not kept at all.
        cache.keep(cache.ticket(), (201, 50, 0), &heavy(MAX_BYTES / 4));
        assert!(cache.get(201, 50, 0).is_none());
        cache.forget_all();
        assert_eq!(cache.inner.lock().unwrap().bytes, 0);
    }

    #[test]
    fn a_list_read_before_a_change_is_not_kept() {
        let cache = ListCache::default();
        let ticket = cache.ticket();
        // The read sees the list before a post; the post commits before the read is kept.
        cache.apply(&told(&[1, 2]));
        cache.keep(ticket, (1, 50, 0), &list(3));
        assert!(cache.get(1, 50, 0).is_none());
        // Someone else's change does not matter.
        let ticket = cache.ticket();
        cache.apply(&told(&[7]));
        cache.keep(ticket, (1, 50, 0), &list(4));
        assert_eq!(cache.get(1, 50, 0).map(|l| l.count), Some(4));
    }
}
