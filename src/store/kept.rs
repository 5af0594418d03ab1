//! Answers kept in memory while nothing they show can have changed (SQLite): users' thread
//! lists ([`super::list_cache`]), the latest pages of threads
//! ([`super::messages::kept_pages`]) and users' unread totals ([`super::messages`]). Each
//! kept answer names the users whose logs it follows. Threads' members
//! ([`super::threads::MembersCache`]) use it without that rule: nothing is applied to them but
//! a thread's deletion, which drops them all.
//!
//! It rests on a rule the real-time contract already needs: every write that changes what a
//! thread list or a message page shows (a message posted, edited, deleted, read or reacted to;
//! a thread created or deleted; a user deleted) appends an event to the log of each user who
//! sees it, so the commit names them in [`Commit::events_for`]. A username appears in other
//! users' thread lists: a commit that renamed someone ([`Commit::renamed`]) drops everything.
//! The SQLite writer applies each commit before its callers are answered, and drops everything
//! when another process wrote the file (noticed within
//! [`super::user_cache::FOREIGN_WRITES_CHECKED_EVERY`]). PostgreSQL instances learn of each
//! other's commits only through notifications, a moment later: nothing is kept there.
//!
//! An answer read before a change and kept after it must not be given: every change moves a
//! clock on, and an answer counts as current only while none of its users nor everyone changed
//! after the read began ([`Ticket`]).

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
};

use super::{Commit, StoreResult};

/// Users whose last change is remembered at most; past this everything is dropped.
const MAX_USERS: usize = 100_000;

/// What a kept answer takes in memory beyond its own struct (what it points to), about.
pub trait Weigh {
    fn weight(&self) -> usize;
}

/// A number (an unread total) takes nothing beyond its entry.
impl Weigh for i64 {
    fn weight(&self) -> usize {
        0
    }
}

/// Answers of type `V` by key `K`, within a memory budget.
pub struct Kept<K, V> {
    max_bytes: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    /// Moves on at every change applied.
    clock: u64,
    /// The clock when each user's answers last changed.
    changed: HashMap<i64, u64>,
    /// The clock when every answer last changed.
    all_changed: u64,
    entries: HashMap<K, Entry<V>>,
    /// What `entries` take ([`cost`]).
    bytes: usize,
}

struct Entry<V> {
    /// The clock when the read began.
    read_at: u64,
    /// Whose changes drop it.
    users: [i64; 2],
    value: Arc<V>,
}

/// What an entry takes beyond its value: its key, clock and users, and its share of the map.
const ENTRY_BYTES: usize = 128;

/// What keeping `value` takes: its entry, its struct (shared, behind an `Arc`) and its
/// [`Weigh::weight`].
fn cost<V: Weigh>(value: &V) -> usize {
    ENTRY_BYTES + std::mem::size_of::<V>() + value.weight()
}

impl<K: Eq + Hash + Copy, V: Weigh> Inner<K, V> {
    /// Whether `users`' answers are unchanged since the clock read `since`.
    fn unchanged(&self, users: &[i64; 2], since: u64) -> bool {
        self.all_changed <= since
            && users
                .iter()
                .all(|user| self.changed.get(user).is_none_or(|&at| at <= since))
    }

    fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= cost(&*entry.value);
        }
    }

    fn forget_all(&mut self) {
        self.clock += 1;
        self.all_changed = self.clock;
        self.changed.clear();
        self.entries.clear();
        self.bytes = 0;
    }
}

/// When a read began, for [`Kept::keep`].
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

impl<K: Eq + Hash + Copy, V: Weigh> Kept<K, V> {
    /// Keeps at most `max_bytes` of answers; past that each new one replaces arbitrary others.
    pub fn new(max_bytes: usize) -> Kept<K, V> {
        Kept {
            max_bytes,
            inner: Mutex::new(Inner {
                clock: 0,
                changed: HashMap::new(),
                all_changed: 0,
                entries: HashMap::new(),
                bytes: 0,
            }),
        }
    }

    /// Whether it has any memory to keep answers in (`serve --kept-answers-mb 0` gives none).
    pub fn keeps_any(&self) -> bool {
        self.max_bytes > 0
    }

    /// The answer, when one is kept that nothing changed since (one that did is dropped).
    #[cfg(test)]
    pub(crate) fn get(&self, key: &K) -> Option<Arc<V>> {
        self.get_if(key, |_| true)
    }

    /// The answer, when one is kept that nothing changed since and it passes `fits`.
    fn get_if(&self, key: &K, fits: impl FnOnce(&V) -> bool) -> Option<Arc<V>> {
        let mut inner = self.inner.lock().ok()?;
        let entry = inner.entries.get(key)?;
        if !inner.unchanged(&entry.users, entry.read_at) {
            inner.remove(key);
            return None;
        }
        fits(&entry.value).then(|| Arc::clone(&entry.value))
    }

    /// Taken before reading an answer from the database.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.inner.lock().map(|inner| inner.clock).unwrap_or(0))
    }

    /// Keeps an answer read since `ticket` that `users`' changes drop, unless one of them
    /// changed meanwhile. [`get_or_read`](Self::get_or_read) keeps what it reads; this keeps
    /// what another read found on the way (a message page's read finds its thread's members).
    pub(crate) fn keep(&self, ticket: Ticket, key: K, users: [i64; 2], value: &Arc<V>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if !inner.unchanged(&users, ticket.0) {
            return;
        }
        let added = cost(&**value);
        if added > self.max_bytes / 8 {
            return;
        }
        inner.remove(&key);
        while inner.bytes + added > self.max_bytes {
            let Some(any) = inner.entries.keys().next().copied() else {
                break;
            };
            inner.remove(&any);
        }
        inner.bytes += added;
        let entry = Entry {
            read_at: ticket.0,
            users,
            value: Arc::clone(value),
        };
        inner.entries.insert(key, entry);
    }

    /// The answer kept for `key`, else the one `read` finds, kept unless changed meanwhile for
    /// the `users` it names; `counter` counts hits and misses by `outcome`.
    pub async fn get_or_read(
        &self,
        key: K,
        counter: &'static str,
        read: impl AsyncFnOnce() -> StoreResult<Option<Arc<V>>>,
        users: impl FnOnce(&V) -> [i64; 2],
    ) -> StoreResult<Option<Arc<V>>> {
        self.get_or_read_if(key, counter, |_| true, read, users)
            .await
    }

    /// [`get_or_read`](Self::get_or_read) for answers that only some requests may be given
    /// (`fits`): a kept one that does not fit is read again, and only one that fits is kept.
    pub async fn get_or_read_if(
        &self,
        key: K,
        counter: &'static str,
        fits: impl Fn(&V) -> bool,
        read: impl AsyncFnOnce() -> StoreResult<Option<Arc<V>>>,
        users: impl FnOnce(&V) -> [i64; 2],
    ) -> StoreResult<Option<Arc<V>>> {
        if let Some(value) = self.get_if(&key, &fits) {
            metrics::counter!(counter, "outcome" => "hit").increment(1);
            return Ok(Some(value));
        }
        metrics::counter!(counter, "outcome" => "miss").increment(1);
        let ticket = self.ticket();
        let value = read().await?;
        if let Some(value) = value.as_ref().filter(|value| fits(value)) {
            self.keep(ticket, key, users(value), value);
        }
        Ok(value)
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

    /// Drops everything (something changed that this process was not told about in detail).
    pub fn forget_all(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.forget_all();
        }
    }

    /// The memory the kept answers take, as [`Weigh`] estimates it.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap().bytes
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// An answer of `n` bytes.
    struct Blob(usize);

    impl Weigh for Blob {
        fn weight(&self) -> usize {
            self.0
        }
    }

    fn blob(n: usize) -> Arc<Blob> {
        Arc::new(Blob(n))
    }

    fn told(users: &[i64]) -> Commit {
        Commit {
            events_for: users.to_vec(),
            ..Commit::default()
        }
    }

    fn size(kept: &Kept<i64, Blob>, key: i64) -> Option<usize> {
        kept.get(&key).map(|b| b.0)
    }

    #[test]
    fn an_answer_is_given_until_one_of_its_users_is_told_of_a_change() {
        let kept = Kept::new(1 << 20);
        kept.keep(kept.ticket(), 1, [1, 2], &blob(3));
        kept.keep(kept.ticket(), 2, [2, 3], &blob(4));
        kept.keep(kept.ticket(), 3, [4, 4], &blob(5));
        assert_eq!(size(&kept, 1), Some(3));
        assert_eq!(size(&kept, 9), None);
        kept.apply(&told(&[2]));
        assert_eq!((size(&kept, 1), size(&kept, 2)), (None, None));
        assert_eq!(
            kept.bytes(),
            cost(&Blob(5)),
            "changed answers are dropped when met"
        );
        assert_eq!(size(&kept, 3), Some(5));
        // Read again after the change: kept again.
        kept.keep(kept.ticket(), 1, [1, 2], &blob(6));
        assert_eq!(size(&kept, 1), Some(6));
        assert!(kept.get_if(&1, |b| b.0 > 6).is_none());
        assert_eq!(size(&kept, 1), Some(6), "one that does not fit stays kept");
        kept.apply(&Commit {
            renamed: true,
            ..Commit::default()
        });
        assert_eq!((size(&kept, 1), size(&kept, 3)), (None, None));
        kept.keep(kept.ticket(), 3, [4, 4], &blob(5));
        kept.forget_all();
        assert_eq!(size(&kept, 3), None);
        assert_eq!(kept.bytes(), 0);
    }

    /// What [`Kept::get_or_read_if`] answers for `key` (a read finds `n` bytes; answers of at
    /// least `min` bytes fit), and whether it read.
    fn given(kept: &Kept<i64, Blob>, key: i64, n: usize, min: usize) -> (Option<usize>, bool) {
        let mut read = false;
        let answer = kept.get_or_read_if(
            key,
            "test_total",
            |b: &Blob| b.0 >= min,
            async || {
                read = true;
                Ok(Some(blob(n)))
            },
            |_| [key, key],
        );
        let answer = answer.now_or_never().expect("nothing waits").unwrap();
        (answer.map(|b| b.0), read)
    }

    #[test]
    fn get_or_read_reads_on_a_miss_and_keeps_only_what_fits() {
        let kept = Kept::new(1 << 20);
        assert_eq!(given(&kept, 1, 3, 0), (Some(3), true));
        assert_eq!(given(&kept, 1, 4, 0), (Some(3), false), "kept");
        assert_eq!(
            given(&kept, 1, 5, 4),
            (Some(5), true),
            "the kept one does not fit"
        );
        assert_eq!(
            given(&kept, 1, 6, 0),
            (Some(5), false),
            "the one read is kept"
        );
        assert_eq!(given(&kept, 2, 1, 2), (Some(1), true));
        assert_eq!(
            given(&kept, 2, 7, 0),
            (Some(7), true),
            "what did not fit was not kept"
        );
        kept.apply(&told(&[1]));
        assert_eq!(given(&kept, 1, 8, 0), (Some(8), true), "told of a change");
        // A change committed while the answer was being read: given, not kept.
        let answer = kept.get_or_read(
            3,
            "test_total",
            async || {
                kept.apply(&told(&[3]));
                Ok(Some(blob(9)))
            },
            |_| [3, 3],
        );
        let answer = answer.now_or_never().expect("nothing waits").unwrap();
        assert_eq!(answer.map(|b| b.0), Some(9));
        assert_eq!(size(&kept, 3), None);
    }

    #[test]
    fn what_is_kept_stays_within_its_memory() {
        let max = 96 << 20;
        let kept = Kept::new(max);
        let heavy = blob(1 << 20);
        for key in 1..=200 {
            kept.keep(kept.ticket(), key, [key, key], &heavy);
            assert!(kept.bytes() <= max);
        }
        let given = (1..=200).filter(|k| size(&kept, *k).is_some()).count();
        assert!((80..=96).contains(&given), "{given} answers kept");
        assert_eq!(kept.bytes(), given * cost(&*heavy));
        assert!(size(&kept, 200).is_some(), "the newest is kept");
        // One answer too large for its share is not kept at all.
        kept.keep(kept.ticket(), 201, [201, 201], &blob(max / 4));
        assert_eq!(size(&kept, 201), None);
    }

    #[test]
    fn no_memory_keeps_nothing() {
        let kept = Kept::new(0);
        kept.keep(kept.ticket(), 1, [1, 2], &blob(0));
        assert_eq!(size(&kept, 1), None);
        assert_eq!(kept.bytes(), 0);
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept() {
        let kept = Kept::new(1 << 20);
        let ticket = kept.ticket();
        // The read sees the answer before a post; the post commits before the read is kept.
        kept.apply(&told(&[2]));
        kept.keep(ticket, 1, [1, 2], &blob(3));
        assert_eq!(size(&kept, 1), None);
        // Someone else's change does not matter.
        let ticket = kept.ticket();
        kept.apply(&told(&[7]));
        kept.keep(ticket, 1, [1, 2], &blob(4));
        assert_eq!(size(&kept, 1), Some(4));
    }

    #[test]
    fn too_many_changed_users_drop_everything() {
        let kept = Kept::new(1 << 20);
        kept.keep(kept.ticket(), 1, [1, 2], &blob(3));
        let many: Vec<i64> = (10..10 + MAX_USERS as i64).collect();
        kept.apply(&told(&many));
        assert_eq!(size(&kept, 1), Some(3), "users 1 and 2 did not change");
        kept.apply(&told(&[5]));
        assert_eq!(size(&kept, 1), None, "the remembered changes were full");
        assert_eq!(kept.inner.lock().unwrap().changed.len(), 0);
    }
}
