//! Real-time delivery. The per-user event log in the database is the truth; this module only
//! wakes the connections (WebSocket or long poll) of a user when their log grew, so a missed
//! wake-up can delay a frame but never lose one: every connection reads the log after its own
//! last `seq`.
//!
//! The [`Hub`] keeps, per user with an open connection, one `watch` channel. The store's commit
//! hook calls [`Hub::notify`] (events) and [`Hub::sign_out`] (password change, deactivation,
//! deletion: the connections re-check their credentials and close).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::store::{Commit, Event};

/// What a connection learns when woken: the sign-out generation of its user (a change means
/// "check your credentials").
type Signal = u64;

#[derive(Default)]
pub struct Hub {
    users: Mutex<HashMap<i64, watch::Sender<Signal>>>,
    shutdown: ShutdownFlag,
    connections: Arc<AtomicUsize>,
}

/// One user's wake-ups, for one connection. Dropping it unsubscribes.
pub struct Subscription<'h> {
    hub: &'h Hub,
    user: i64,
    receiver: watch::Receiver<Signal>,
    signed_out_at: Signal,
}

/// What woke a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// The user's log may have grown.
    Events,
    /// The user's credentials changed: re-check them.
    SignedOut,
    /// The server is shutting down.
    Shutdown,
}

impl Hub {
    pub fn subscribe(&self, user: i64) -> Subscription<'_> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = users
            .entry(user)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        let signed_out_at = *receiver.borrow();
        Subscription {
            hub: self,
            user,
            receiver,
            signed_out_at,
        }
    }

    /// Wakes the connections of these users (their logs grew).
    pub fn notify(&self, users: &[i64]) {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        for user in users {
            if let Some(sender) = map.get(user) {
                sender.send_modify(|_| {});
            }
        }
    }

    /// Tells the connections of these users that their credentials changed.
    pub fn sign_out(&self, users: &[i64]) {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        for user in users {
            if let Some(sender) = map.get(user) {
                sender.send_modify(|generation| *generation += 1);
            }
        }
    }

    /// The commit hook: wake whoever a committed transaction concerns.
    pub fn on_commit(&self, commit: &Commit) {
        if commit.everyone {
            let users: Vec<i64> = {
                let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
                map.keys().copied().collect()
            };
            // A sign-out wake makes each connection re-check its credentials and re-read its log.
            self.sign_out(&users);
        }
        self.notify(&commit.events_for);
        self.sign_out(&commit.signed_out);
    }

    /// Asks every connection to close (server shutdown).
    pub fn shut_down(&self) {
        self.shutdown.raise();
    }

    /// Counts an open WebSocket connection for as long as the guard lives.
    pub fn connection_guard(&self) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(self.connections.clone())
    }

    /// Waits (at most `limit`) until every WebSocket connection has closed.
    pub async fn drained(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.connections.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Users with at least one open connection.
    #[cfg(test)]
    fn subscribed_users(&self) -> usize {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Subscription<'_> {
    /// Waits for the next reason to act.
    pub async fn wake(&mut self) -> Wake {
        let mut shutdown = self.hub.shutdown.subscribe();
        if *shutdown.borrow() {
            return Wake::Shutdown;
        }
        tokio::select! {
            changed = self.receiver.changed() => {
                if changed.is_err() {
                    return Wake::Shutdown;
                }
                let generation = *self.receiver.borrow_and_update();
                if generation != self.signed_out_at {
                    self.signed_out_at = generation;
                    Wake::SignedOut
                } else {
                    Wake::Events
                }
            }
            _ = shutdown.changed() => Wake::Shutdown,
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut users = self.hub.users.lock().unwrap_or_else(|e| e.into_inner());
        // Our receiver is still alive here: the last one out has a count of 1.
        if users
            .get(&self.user)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            users.remove(&self.user);
        }
    }
}

pub struct ConnectionGuard(Arc<AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A flag that, once raised, stays raised and wakes its watchers.
struct ShutdownFlag(watch::Sender<bool>);

impl Default for ShutdownFlag {
    fn default() -> ShutdownFlag {
        ShutdownFlag(watch::channel(false).0)
    }
}

impl ShutdownFlag {
    fn raise(&self) {
        self.0.send_replace(true);
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// An event as the client receives it: its stored payload with `"seq"` first, spliced into the
/// JSON text (no parsing on the hot path).
pub fn frame(event: Event) -> Box<RawValue> {
    let text = match event.payload.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{\"seq\":{}}}", event.seq),
        Some(rest) => format!("{{\"seq\":{},{rest}", event.seq),
        None => format!("{{\"seq\":{}}}", event.seq),
    };
    RawValue::from_string(text).unwrap_or_else(|_| {
        RawValue::from_string(format!("{{\"seq\":{},\"type\":\"redacted\"}}", event.seq))
            .expect("a fixed frame is valid JSON")
    })
}

/// Whether a client at `since` missed events that are no longer kept.
pub fn needs_resync(since: i64, head: i64, oldest_kept: Option<i64>) -> bool {
    since < head && oldest_kept.is_none_or(|oldest| since + 1 < oldest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_wake_for_their_own_user_only() {
        let hub = Hub::default();
        let mut alice = hub.subscribe(1);
        let mut bob = hub.subscribe(2);
        hub.notify(&[1]);
        assert_eq!(alice.wake().await, Wake::Events);
        let quiet = tokio::time::timeout(Duration::from_millis(30), bob.wake()).await;
        assert!(quiet.is_err(), "bob was woken by alice's event");
    }

    #[tokio::test]
    async fn sign_out_and_shutdown_are_told_apart() {
        let hub = Hub::default();
        let mut alice = hub.subscribe(1);
        hub.sign_out(&[1]);
        assert_eq!(alice.wake().await, Wake::SignedOut);
        hub.shut_down();
        assert_eq!(alice.wake().await, Wake::Shutdown);
    }

    #[test]
    fn the_last_subscription_out_removes_the_user() {
        let hub = Hub::default();
        let first = hub.subscribe(1);
        let second = hub.subscribe(1);
        drop(first);
        assert_eq!(hub.subscribed_users(), 1);
        drop(second);
        assert_eq!(hub.subscribed_users(), 0);
    }

    #[test]
    fn frames_carry_their_seq() {
        let frame = |payload: &str| {
            frame(Event {
                seq: 7,
                payload: payload.into(),
            })
            .get()
            .to_owned()
        };
        assert_eq!(
            frame(r#"{"type":"thread.deleted","thread":3}"#),
            r#"{"seq":7,"type":"thread.deleted","thread":3}"#
        );
        assert_eq!(frame("{}"), r#"{"seq":7}"#);
        assert_eq!(frame("not json"), r#"{"seq":7}"#);
    }

    #[test]
    fn resync_only_when_missed_events_are_gone() {
        assert!(!needs_resync(5, 5, None), "nothing missed");
        assert!(!needs_resync(3, 5, Some(4)), "4 and 5 are kept");
        assert!(needs_resync(2, 5, Some(4)), "3 was pruned");
        assert!(needs_resync(0, 5, None), "everything was pruned");
        assert!(!needs_resync(0, 5, Some(1)), "the whole log is kept");
    }
}
