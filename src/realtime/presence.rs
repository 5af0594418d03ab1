//! Presence and typing, the ephemeral side of real time: neither is in any log.
//!
//! Presence: when a user's first socket opens on this instance, or their last one closes, the
//! instance records it (see `store::presence`) and, if the user's presence as a whole changed,
//! sends `{"type": "presence", "user", "online", "last_seen"}` to their conversation partners'
//! sockets on every instance. Changes for one user are made one at a time. Every
//! [`HEARTBEAT_EVERY`] the instance renews its heartbeat and sweeps away instances that stopped
//! beating (their users go offline and their partners hear of it).
//!
//! On SQLite this is the only instance there is, so who is online is kept here in memory
//! ([`Here`]) and the `presence` table, the heartbeat and the sweep are not used. When users
//! were last seen is written every [`HEARTBEAT_EVERY`] in one write (and when the server
//! stops), and answered from memory until then: a crash forgets at most those few seconds. So
//! a first socket or a last close costs one read (the partners to tell), where each was a
//! write transaction of up to seven statements on the single writer, whose commits also make
//! every read connection drop its cache.
//!
//! Typing: `{"type": "typing", "thread"}` from a socket reaches the other participant's sockets
//! as `{"type": "typing", "thread", "user"}`, at most once every 2 s per user and thread; the
//! frames dropped by that limit cost nothing, an accepted one one read and one send.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use super::Hub;
use crate::{
    clock::Timestamp,
    store::{
        Store, StoreResult,
        presence::{HEARTBEAT_EVERY, PresenceChange, PresenceState},
    },
};

/// At most one typing frame per user and thread in this long.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

pub struct Presence {
    instance: String,
    /// One lock per user whose presence is being changed, so changes apply in order.
    changing: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// When each (user, thread) last sent a typing frame.
    typing: Mutex<HashMap<(i64, i64), Instant>>,
    /// The only instance (SQLite): who is online, and last seen times not yet written.
    here: Mutex<Here>,
}

/// What the only instance (SQLite) knows of presence.
#[derive(Default)]
struct Here {
    /// The users it has told partners are online.
    online: HashSet<i64>,
    /// When users went offline, not yet written to `users.last_seen`.
    unwritten: HashMap<i64, Timestamp>,
}

impl Default for Presence {
    fn default() -> Presence {
        Presence {
            instance: format!("{:016x}", rand::random::<u64>()),
            changing: Mutex::default(),
            typing: Mutex::default(),
            here: Mutex::default(),
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
    /// Registers this instance. The only one (SQLite) drops what an earlier run left.
    pub async fn start(&self, store: &Store) {
        self.register(store, store.single_instance()).await;
    }

    async fn register(&self, store: &Store, alone: bool) {
        if let Err(error) = store.register_instance(&self.instance, alone).await {
            tracing::warn!(%error, "registering this instance for presence failed");
        }
    }

    /// Renews the heartbeat and sweeps stopped instances, every few seconds, forever; the only
    /// instance writes when users were last seen instead.
    pub async fn keep_alive(&self, store: Store) {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            every.tick().await;
            if store.single_instance() {
                self.write_last_seen(&store).await;
                continue;
            }
            self.register(&store, false).await;
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
            let changed = if store.single_instance() {
                self.sync_here(store, user, here).await
            } else {
                store.sync_presence(&self.instance, user, here).await
            };
            match changed {
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

    /// [`Presence::sync`] on the only instance: the change, if `here` is news.
    async fn sync_here(
        &self,
        store: &Store,
        user: i64,
        here: bool,
    ) -> StoreResult<Option<PresenceChange>> {
        let now = Timestamp::now();
        {
            let mut known = self.lock_here();
            let changed = if here {
                known.online.insert(user)
            } else {
                known.online.remove(&user)
            };
            if !changed {
                return Ok(None);
            }
            if !here {
                known.unwritten.insert(user, now);
            }
        }
        let mut change = store.presence_change(user, here).await?;
        if let Some(&seen) = self.lock_here().unwritten.get(&user) {
            change.state.last_seen = Some(seen);
        }
        Ok(Some(change))
    }

    fn lock_here(&self) -> std::sync::MutexGuard<'_, Here> {
        self.here.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the last seen times the only instance holds in memory (every few seconds, and
    /// when the server stops). Each stays in memory until written, so readers never see an
    /// older one meanwhile.
    pub async fn write_last_seen(&self, store: &Store) {
        let seen: Vec<(i64, Timestamp)> = self
            .lock_here()
            .unwritten
            .iter()
            .map(|(&user, &at)| (user, at))
            .collect();
        if let Err(error) = store.record_last_seen(seen.clone()).await {
            tracing::warn!(%error, "recording when users were last seen failed");
            return;
        }
        let mut known = self.lock_here();
        for (user, at) in seen {
            if known.unwritten.get(&user) == Some(&at) {
                known.unwritten.remove(&user);
            }
        }
    }

    /// The presence of those of `users` who share a thread with `viewer` (and are not blocked
    /// either way), by id; on the only instance, as this instance knows it.
    pub async fn of(
        &self,
        store: &Store,
        viewer: i64,
        users: &[i64],
    ) -> StoreResult<Vec<PresenceState>> {
        let mut states = store.presence_of(viewer, users).await?;
        if store.single_instance() {
            let known = self.lock_here();
            for state in &mut states {
                state.online = known.online.contains(&state.user);
                if let Some(&seen) = known.unwritten.get(&state.user) {
                    state.last_seen = Some(seen);
                }
            }
        }
        Ok(states)
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
