//! Real-time delivery. The per-user event log in the database is the truth; this module only
//! wakes the connections (WebSocket or long poll) of a user when their log grew, so a missed
//! wake-up can delay a frame but never lose one: every connection reads the log after its own
//! last `seq`.
//!
//! The [`Hub`] keeps, per user with an open connection, one `watch` channel (wake-ups: events,
//! sign-outs), one small `broadcast` channel of ephemeral frames for their sockets (typing and
//! presence: not in the log, best effort), and the count of their open sockets (bounded by
//! `--max-websockets-per-user`). The store's commit hook calls [`Hub::on_commit`].

pub mod presence;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::value::RawValue;
use tokio::sync::{broadcast, watch};

use crate::store::{Commit, Event};

/// What a connection learns when woken: the sign-out generation of its user (a change means
/// "check your credentials").
type Signal = u64;

/// Ephemeral frames a user's sockets have not taken yet; older ones are dropped for a socket
/// that falls behind (they are worthless late).
const EPHEMERAL_BACKLOG: usize = 16;

struct UserEntry {
    wake: watch::Sender<Signal>,
    frames: broadcast::Sender<Arc<str>>,
    sockets: usize,
}

impl UserEntry {
    fn new() -> UserEntry {
        UserEntry {
            wake: watch::channel(0).0,
            frames: broadcast::channel(EPHEMERAL_BACKLOG).0,
            sockets: 0,
        }
    }
}

#[derive(Default)]
pub struct Hub {
    users: Mutex<HashMap<i64, UserEntry>>,
    shutdown: ShutdownFlag,
    connections: Arc<AtomicUsize>,
}

/// One user's wake-ups, for one connection. Dropping it unsubscribes.
pub struct Subscription<'h> {
    hub: &'h Hub,
    user: i64,
    receiver: watch::Receiver<Signal>,
    frames: Option<broadcast::Receiver<Arc<str>>>,
    signed_out_at: Signal,
}

/// A socket's place among its user's open sockets; dropping it frees the place.
pub struct SocketPlace<'h> {
    hub: &'h Hub,
    user: i64,
}

/// What woke a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// The user's log may have grown.
    Events,
    /// The user's credentials changed: re-check them.
    SignedOut,
    /// An ephemeral frame for the user's sockets (typing, presence).
    Frame(Arc<str>),
    /// The server is shutting down.
    Shutdown,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, UserEntry>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wake-ups for a long poll (no ephemeral frames).
    pub fn subscribe(&self, user: i64) -> Subscription<'_> {
        let mut users = self.lock();
        let entry = users.entry(user).or_insert_with(UserEntry::new);
        let receiver = entry.wake.subscribe();
        let signed_out_at = *receiver.borrow();
        Subscription {
            hub: self,
            user,
            receiver,
            frames: None,
            signed_out_at,
        }
    }

    /// A place for one more socket of `user`, unless they already have `max` open here; with
    /// it, the socket's wake-ups and ephemeral frames.
    pub fn open_socket(
        &self,
        user: i64,
        max: usize,
    ) -> Option<(SocketPlace<'_>, Subscription<'_>)> {
        let mut users = self.lock();
        let entry = users.entry(user).or_insert_with(UserEntry::new);
        if entry.sockets >= max {
            return None;
        }
        entry.sockets += 1;
        let receiver = entry.wake.subscribe();
        let signed_out_at = *receiver.borrow();
        let frames = Some(entry.frames.subscribe());
        Some((
            SocketPlace { hub: self, user },
            Subscription {
                hub: self,
                user,
                receiver,
                frames,
                signed_out_at,
            },
        ))
    }

    /// WebSockets open on this instance, and the users they belong to.
    pub fn open_sockets(&self) -> (usize, usize) {
        let users = self.lock();
        let sockets = users.values().map(|entry| entry.sockets).sum();
        let online = users.values().filter(|entry| entry.sockets > 0).count();
        (sockets, online)
    }

    /// Open sockets of `user` on this instance.
    pub fn sockets_of(&self, user: i64) -> usize {
        self.lock().get(&user).map_or(0, |entry| entry.sockets)
    }

    /// Wakes the connections of these users (their logs grew).
    pub fn notify(&self, users: &[i64]) {
        let map = self.lock();
        for user in users {
            if let Some(entry) = map.get(user) {
                entry.wake.send_modify(|_| {});
            }
        }
    }

    /// Tells the connections of these users that their credentials changed.
    pub fn sign_out(&self, users: &[i64]) {
        let map = self.lock();
        for user in users {
            if let Some(entry) = map.get(user) {
                entry.wake.send_modify(|generation| *generation += 1);
            }
        }
    }

    /// Hands an ephemeral frame to the open sockets of `user` on this instance.
    pub fn send_ephemeral(&self, user: i64, frame: Arc<str>) {
        if let Some(entry) = self.lock().get(&user) {
            let _ = entry.frames.send(frame);
        }
    }

    /// The commit hook: wake whoever a committed transaction concerns.
    pub fn on_commit(&self, commit: &Commit) {
        if commit.everyone {
            let users: Vec<i64> = self.lock().keys().copied().collect();
            // A sign-out wake makes each connection re-check its credentials and re-read its log.
            self.sign_out(&users);
        }
        self.notify(&commit.events_for);
        self.sign_out(&commit.signed_out);
        for ephemeral in &commit.frames {
            for user in &ephemeral.to {
                self.send_ephemeral(*user, ephemeral.frame.clone());
            }
        }
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

    /// Removes a user's entry once nothing listens to it any more.
    fn forget_if_unused(users: &mut HashMap<i64, UserEntry>, user: i64, leaving_receivers: usize) {
        if users.get(&user).is_some_and(|entry| {
            entry.sockets == 0 && entry.wake.receiver_count() <= leaving_receivers
        }) {
            users.remove(&user);
        }
    }

    /// Users with at least one open connection.
    #[cfg(test)]
    fn subscribed_users(&self) -> usize {
        self.lock().len()
    }
}

impl Subscription<'_> {
    /// Waits for the next reason to act.
    pub async fn wake(&mut self) -> Wake {
        let mut shutdown = self.hub.shutdown.subscribe();
        if *shutdown.borrow() {
            return Wake::Shutdown;
        }
        let frame = async {
            match self.frames.as_mut() {
                Some(frames) => loop {
                    match frames.recv().await {
                        Ok(frame) => return frame,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                },
                None => std::future::pending().await,
            }
        };
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
            frame = frame => Wake::Frame(frame),
            _ = shutdown.changed() => Wake::Shutdown,
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut users = self.hub.lock();
        // Our receiver is still alive here: the last one out has a count of 1.
        Hub::forget_if_unused(&mut users, self.user, 1);
    }
}

impl Drop for SocketPlace<'_> {
    fn drop(&mut self) {
        let mut users = self.hub.lock();
        if let Some(entry) = users.get_mut(&self.user) {
            entry.sockets = entry.sockets.saturating_sub(1);
        }
        Hub::forget_if_unused(&mut users, self.user, 0);
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

    #[tokio::test]
    async fn ephemeral_frames_reach_sockets_not_long_polls() {
        let hub = Hub::default();
        let (_place, mut socket) = hub.open_socket(1, 5).unwrap();
        let mut poll = hub.subscribe(1);
        hub.send_ephemeral(1, Arc::from("{\"type\":\"typing\"}"));
        assert_eq!(
            socket.wake().await,
            Wake::Frame(Arc::from("{\"type\":\"typing\"}"))
        );
        let quiet = tokio::time::timeout(Duration::from_millis(30), poll.wake()).await;
        assert!(quiet.is_err(), "a long poll got an ephemeral frame");
    }

    #[test]
    fn sockets_per_user_are_bounded_and_places_come_back() {
        let hub = Hub::default();
        let first = hub.open_socket(1, 2).unwrap();
        let second = hub.open_socket(1, 2).unwrap();
        assert!(hub.open_socket(1, 2).is_none());
        assert!(
            hub.open_socket(2, 2).is_some(),
            "another user is not affected"
        );
        drop(first);
        assert_eq!(hub.sockets_of(1), 1);
        assert!(hub.open_socket(1, 2).is_some());
        drop(second);
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
        let (place, socket) = hub.open_socket(1, 1).unwrap();
        drop(socket);
        assert_eq!(
            hub.subscribed_users(),
            1,
            "the socket still holds its place"
        );
        drop(place);
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
