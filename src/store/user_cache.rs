//! The users that requests authenticate as, kept in memory: every authenticated request needs
//! its user (to check the token's version, that the account is active, and its role), and
//! reading that row from the database was the largest single cost of a cheap request.
//!
//! The cache is never stale inside this process: every write that changes a user row records it
//! ([`super::db::Tx::user_changed`]), and the entry is dropped when that transaction commits,
//! before the writer is answered. Other instances learn of it through the commit's
//! notification (PostgreSQL, within milliseconds). Another process writing an SQLite file (the
//! CLI's `changepassword` while a server runs) is noticed by the SQLite writer, which empties
//! the cache within [`FOREIGN_WRITES_CHECKED_EVERY`].
//!
//! A read that raced an eviction must not put its older row back: each eviction moves a
//! generation on, and a row read under an older generation is not stored.
//!
//! Kept users are also found by username (creating a thread names both users), through a map
//! that holds exactly the kept users' usernames: a rename or a deletion drops the user, and with
//! it the name.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{Commit, User};

/// How often, at most, another process's writes to an SQLite file go unnoticed.
pub const FOREIGN_WRITES_CHECKED_EVERY: Duration = Duration::from_millis(250);

/// Users kept at most; past this the cache starts over (a few hundred bytes each).
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct UserCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Shared with the requests that authenticate as them: a hit copies a pointer, where a
    /// copy of the row allocated its five strings.
    users: HashMap<i64, Arc<User>>,
    /// The username of every user in `users`.
    ids: HashMap<String, i64>,
    generation: u64,
}

impl Inner {
    fn remove(&mut self, id: i64) {
        if let Some(user) = self.users.remove(&id) {
            self.ids.remove(&user.username);
        }
    }

    fn clear(&mut self) {
        self.users.clear();
        self.ids.clear();
    }
}

/// When a read began, for [`UserCache::keep`].
#[derive(Clone, Copy)]
pub struct Ticket(u64);

impl UserCache {
    pub fn get(&self, id: i64) -> Option<Arc<User>> {
        self.inner.lock().ok()?.users.get(&id).cloned()
    }

    pub fn by_username(&self, username: &str) -> Option<Arc<User>> {
        let inner = self.inner.lock().ok()?;
        let id = inner.ids.get(username)?;
        inner.users.get(id).cloned()
    }

    /// Taken before reading a user from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.inner.lock().map(|inner| inner.generation).unwrap_or(0))
    }

    /// Keeps a user read since `ticket`, unless some user changed meanwhile.
    pub fn keep(&self, ticket: Ticket, user: &Arc<User>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != ticket.0 {
            return;
        }
        if inner.users.len() >= CAPACITY {
            inner.clear();
        }
        inner.remove(user.id);
        inner.ids.insert(user.username.clone(), user.id);
        inner.users.insert(user.id, Arc::clone(user));
    }

    /// Drops what a committed transaction (here or on another instance) changed.
    pub fn apply(&self, commit: &Commit) {
        if commit.everyone {
            self.forget_all();
        } else if !commit.users_changed.is_empty() || !commit.signed_out.is_empty() {
            let Ok(mut inner) = self.inner.lock() else {
                return;
            };
            inner.generation += 1;
            for id in commit.users_changed.iter().chain(&commit.signed_out) {
                inner.remove(*id);
            }
        }
    }

    /// Drops every user (something changed that this process was not told about in detail).
    pub fn forget_all(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn user(id: i64, token_version: i64) -> User {
        User {
            id,
            username: format!("user{id}"),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            password: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined: Timestamp::now(),
            last_login: None,
            token_version,
        }
    }

    #[test]
    fn a_commit_that_changed_a_user_drops_it() {
        let cache = UserCache::default();
        cache.keep(cache.ticket(), &Arc::new(user(1, 0)));
        cache.keep(cache.ticket(), &Arc::new(user(2, 0)));
        cache.apply(&Commit {
            users_changed: vec![1],
            ..Commit::default()
        });
        assert!(cache.get(1).is_none());
        assert_eq!(cache.get(2).map(|u| u.token_version), Some(0));
        cache.apply(&Commit {
            everyone: true,
            ..Commit::default()
        });
        assert!(cache.get(2).is_none());
    }

    #[test]
    fn a_row_read_before_a_change_is_not_kept() {
        let cache = UserCache::default();
        let ticket = cache.ticket();
        // The read sees version 0; meanwhile a password change commits.
        cache.apply(&Commit {
            signed_out: vec![1],
            ..Commit::default()
        });
        cache.keep(ticket, &Arc::new(user(1, 0)));
        assert!(cache.get(1).is_none());
        cache.keep(cache.ticket(), &Arc::new(user(1, 1)));
        assert_eq!(cache.get(1).map(|u| u.token_version), Some(1));
    }

    #[test]
    fn a_username_finds_a_kept_user_until_it_changes() {
        let cache = UserCache::default();
        cache.keep(cache.ticket(), &Arc::new(user(1, 0)));
        cache.keep(cache.ticket(), &Arc::new(user(2, 0)));
        assert_eq!(cache.by_username("user1").map(|u| u.id), Some(1));

        // Renamed: the old name finds nobody, and the row read after the change is kept.
        cache.apply(&Commit {
            users_changed: vec![1],
            ..Commit::default()
        });
        assert!(cache.by_username("user1").is_none());
        let renamed = User {
            username: "ursula".into(),
            ..user(1, 0)
        };
        cache.keep(cache.ticket(), &Arc::new(renamed));
        assert_eq!(cache.by_username("ursula").map(|u| u.id), Some(1));
        assert!(cache.by_username("user1").is_none());

        // Kept again under a new name without an eviction in between: the old name goes too.
        cache.keep(cache.ticket(), &Arc::new(user(1, 0)));
        assert!(cache.by_username("ursula").is_none());
        assert_eq!(cache.by_username("user1").map(|u| u.id), Some(1));

        // Deleted (its tokens end), or everything forgotten.
        cache.apply(&Commit {
            signed_out: vec![2],
            ..Commit::default()
        });
        assert!(cache.by_username("user2").is_none());
        cache.forget_all();
        assert!(cache.by_username("user1").is_none());
    }
}
