//! Presence and typing, the ephemeral side of real time: neither is in any log.
//!
//! Presence: when a user's first socket opens on this instance, or their last one closes, the
//! instance records it (see `store::presence`) and, if the user's presence as a whole changed,
//! sends `{"type": "presence", "user", "online", "last_seen"}` to their conversation partners'
//! sockets on every instance. Changes for one user are made one at a time. Every
//! [`HEARTBEAT_EVERY`] the instance renews its heartbeat and sweeps away instances that stopped
//! beating (their users go offline and their partners hear of it).
//!
//! Typing: `{"type": "typing", "thread"}` from a socket reaches the other participant's sockets
//! as `{"type": "typing", "thread", "user"}`, at most once every 2 s per user and thread; the
//! frames dropped by that limit cost nothing, an accepted one one read and one send.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use super::Hub;
use crate::store::{
    Store,
    presence::{HEARTBEAT_EVERY, PresenceChange},
};

/// At most one typing frame per user and thread in this long.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

pub struct Presence {
    instance: String,
    /// One lock per user whose presence is being changed, so changes apply in order.
    changing: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// When each (user, thread) last sent a typing frame.
    typing: Mutex<HashMap<(i64, i64), Instant>>,
}

impl Default for Presence {
    fn default() -> Presence {
        Presence {
            instance: format!("{:016x}", rand::random::<u64>()),
            changing: Mutex::default(),
            typing: Mutex::default(),
        }
    }
}

fn presence_frame(change: &PresenceChange) -> Arc<str> {
    let state = &change.state;
    json!({
        "type": "presence",
        "user": state.user,
        "online": state.online,
        "last_seen": state.last_seen,
    })
    .to_string()
    .into()
}

impl Presence {
    /// Registers this instance; `alone` on SQLite, where no other instance can exist.
    pub async fn start(&self, store: &Store, alone: bool) {
        if let Err(error) = store.register_instance(&self.instance, alone).await {
            tracing::warn!(%error, "registering this instance for presence failed");
        }
    }

    /// Renews the heartbeat and sweeps stopped instances, every few seconds, forever.
    pub async fn keep_alive(&self, store: Store) {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            every.tick().await;
            self.start(&store, false).await;
            match store.sweep_presence().await {
                Ok(changes) => {
                    for change in changes {
                        announce(&store, &change).await;
                    }
                }
                Err(error) => tracing::warn!(%error, "sweeping stale presence failed"),
            }
        }
    }

    /// Brings the stored presence of `user` in line with their sockets here, and tells their
    /// partners when that changed whether they are online.
    pub async fn sync(&self, store: &Store, hub: &Hub, user: i64) {
        let lock = {
            let mut changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
            changing.entry(user).or_default().clone()
        };
        {
            let _turn = lock.lock().await;
            let here = hub.sockets_of(user) > 0;
            match store.sync_presence(&self.instance, user, here).await {
                Ok(Some(change)) => announce(store, &change).await,
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, user, "recording presence failed"),
            }
        }
        let mut changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        if changing
            .get(&user)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            changing.remove(&user);
        }
    }

    /// `user` is typing in `thread`: tells the other participant, within the rate limit.
    pub async fn typing(&self, store: &Store, user: i64, thread: i64) {
        if !self.may_type(user, thread) {
            return;
        }
        match store.typing_audience(thread, user).await {
            Ok(Some(other)) => {
                let frame = json!({"type": "typing", "thread": thread, "user": user});
                let sent = store
                    .send_ephemeral(frame.to_string().into(), vec![other])
                    .await;
                if let Err(error) = sent {
                    tracing::debug!(%error, "a typing frame was not sent");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "a typing frame was not checked"),
        }
    }

    /// Whether a typing frame of `user` in `thread` may go now (and counts it).
    fn may_type(&self, user: i64, thread: i64) -> bool {
        let mut typing = self.typing.lock().unwrap_or_else(|e| e.into_inner());
        if typing.len() > 10_000 {
            typing.retain(|_, at| at.elapsed() < TYPING_EVERY);
        }
        match typing.get(&(user, thread)) {
            Some(at) if at.elapsed() < TYPING_EVERY => false,
            _ => {
                typing.insert((user, thread), Instant::now());
                true
            }
        }
    }
}

async fn announce(store: &Store, change: &PresenceChange) {
    if let Err(error) = store
        .send_ephemeral(presence_frame(change), change.partners.clone())
        .await
    {
        tracing::warn!(%error, "telling partners about presence failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_limited_per_user_and_thread() {
        let presence = Presence::default();
        assert!(presence.may_type(1, 10));
        assert!(!presence.may_type(1, 10), "again at once");
        assert!(presence.may_type(1, 11), "another thread");
        assert!(presence.may_type(2, 10), "another user");
    }
}
