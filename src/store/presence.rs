//! Presence: who is online, for their conversation partners only (scoping it to partners keeps
//! it linear: Zulip found organisation-wide presence "structurally quadratic").
//!
//! Each server instance registers itself with a heartbeat and keeps one `presence` row per user
//! with at least one socket open on it. A user is online while any instance with a fresh
//! heartbeat holds a row for them, so several instances on one PostgreSQL agree, and an
//! instance that dies without closing its sockets stops counting once its heartbeat is stale:
//! the others sweep it away and tell the partners (see docs/REALTIME.md for the timings).
//!
//! Only transitions touch the database: a user's first socket on an instance, their last one
//! closing, the heartbeat, the sweep. The partners to tell are read once per change. On SQLite,
//! the only instance there can be, who is online is kept in memory instead
//! (`realtime::presence`): this module then only reads the partners and stores last seen times.

use super::{
    Store, StoreResult,
    db::{Db, FromRow, IdList, Row, Sql, Tx},
    read, write,
};
use crate::clock::Timestamp;

static REGISTER: Sql = Sql::new(
    "INSERT INTO instances (id, heartbeat) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET heartbeat = $2",
);
static FORGET_ALL_INSTANCES: Sql = Sql::new("DELETE FROM instances WHERE id <> $1");
static JOIN: Sql = Sql::new(
    "INSERT INTO presence (user_id, instance, since) VALUES ($1, $2, $3)
     ON CONFLICT (user_id, instance) DO NOTHING",
);
static LEAVE: Sql = Sql::new("DELETE FROM presence WHERE user_id = $1 AND instance = $2");
/// Whether `$1` is online on an instance whose heartbeat is after `$2`.
static ONLINE: Sql = Sql::new(
    "SELECT EXISTS (
         SELECT 1 FROM presence p JOIN instances i ON i.id = p.instance
         WHERE p.user_id = $1 AND i.heartbeat > $2
     )",
);
static SET_LAST_SEEN: Sql = Sql::new("UPDATE users SET last_seen = $2 WHERE id = $1");
static LAST_SEEN: Sql = Sql::new("SELECT last_seen FROM users WHERE id = $1");
/// Everyone who shares a thread with `$1` and neither blocks nor is blocked by them.
static PARTNERS: Sql = Sql::new(
    "SELECT tm.user_id FROM thread_members me
     JOIN thread_members tm ON tm.thread_id = me.thread_id AND tm.user_id <> me.user_id
     WHERE me.user_id = $1
       AND NOT EXISTS (
           SELECT 1 FROM blocks b
           WHERE (b.blocker_id = $1 AND b.blocked_id = tm.user_id)
              OR (b.blocker_id = tm.user_id AND b.blocked_id = $1)
       )",
);
/// The presence of the listed users (JSON ids in `$2`) who are partners of `$1`.
static OF_PARTNERS: Sql = Sql::dialects(
    "SELECT u.id AS id, u.last_seen AS last_seen,
            EXISTS (SELECT 1 FROM presence p JOIN instances i ON i.id = p.instance
                    WHERE p.user_id = u.id AND i.heartbeat > $3) AS online
     FROM users u
     WHERE u.id IN (SELECT value FROM json_each($2))
       AND u.id IN (SELECT tm.user_id FROM thread_members me
                    JOIN thread_members tm ON tm.thread_id = me.thread_id AND tm.user_id <> $1
                    WHERE me.user_id = $1)
       AND NOT EXISTS (SELECT 1 FROM blocks b
                       WHERE (b.blocker_id = $1 AND b.blocked_id = u.id)
                          OR (b.blocker_id = u.id AND b.blocked_id = $1))
     ORDER BY u.id",
    "SELECT u.id AS id, u.last_seen AS last_seen,
            EXISTS (SELECT 1 FROM presence p JOIN instances i ON i.id = p.instance
                    WHERE p.user_id = u.id AND i.heartbeat > $3) AS online
     FROM users u
     WHERE u.id IN (SELECT CAST(value AS BIGINT)
                    FROM json_array_elements_text(CAST(CAST($2 AS TEXT) AS JSON)))
       AND u.id IN (SELECT tm.user_id FROM thread_members me
                    JOIN thread_members tm ON tm.thread_id = me.thread_id AND tm.user_id <> $1
                    WHERE me.user_id = $1)
       AND NOT EXISTS (SELECT 1 FROM blocks b
                       WHERE (b.blocker_id = $1 AND b.blocked_id = u.id)
                          OR (b.blocker_id = u.id AND b.blocked_id = $1))
     ORDER BY u.id",
);
static STALE_USERS: Sql = Sql::new(
    "SELECT DISTINCT p.user_id FROM presence p JOIN instances i ON i.id = p.instance
     WHERE i.heartbeat <= $1",
);
static FORGET_STALE: Sql = Sql::new("DELETE FROM instances WHERE heartbeat <= $1");

/// How long an instance's heartbeat counts: three missed beats.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(15);

fn fresh_after(now: Timestamp) -> Timestamp {
    Timestamp(now.micros() - FRESH_FOR.as_micros() as i64)
}

/// A user's presence as partners see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceState {
    pub user: i64,
    pub online: bool,
    pub last_seen: Option<Timestamp>,
}

impl FromRow for PresenceState {
    fn from_row(row: &impl Row) -> StoreResult<PresenceState> {
        Ok(PresenceState {
            user: row.get("id")?,
            online: row.get("online")?,
            last_seen: row.get("last_seen")?,
        })
    }
}

/// A user went online or offline: who should be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceChange {
    pub state: PresenceState,
    pub partners: Vec<i64>,
}

async fn online(db: &impl Db, user: i64, now: Timestamp) -> StoreResult<bool> {
    db.one(&ONLINE, &[&user, &fresh_after(now)]).await
}

async fn change(db: &impl Db, user: i64, online: bool) -> StoreResult<PresenceChange> {
    let last_seen: Option<Timestamp> = db.one(&LAST_SEEN, &[&user]).await?;
    Ok(PresenceChange {
        state: PresenceState {
            user,
            online,
            last_seen,
        },
        partners: db.rows(&PARTNERS, &[&user]).await?,
    })
}

/// Makes this instance's row for `user` say `here`; the change partners must hear of, if the
/// user's presence as a whole changed.
async fn sync(
    tx: &mut impl Tx,
    instance: &str,
    user: i64,
    here: bool,
) -> StoreResult<Option<PresenceChange>> {
    let now = tx.now();
    let before = online(tx, user, now).await?;
    if here {
        tx.execute(&JOIN, &[&user, &instance, &now]).await?;
    } else {
        tx.execute(&LEAVE, &[&user, &instance]).await?;
    }
    let after = online(tx, user, now).await?;
    if before == after {
        return Ok(None);
    }
    if !after {
        tx.execute(&SET_LAST_SEEN, &[&user, &now]).await?;
    }
    change(tx, user, after).await.map(Some)
}

/// Forgets instances whose heartbeat is stale; the users that leaves offline.
async fn sweep(tx: &mut impl Tx) -> StoreResult<Vec<PresenceChange>> {
    let now = tx.now();
    let stale = fresh_after(now);
    let users: Vec<i64> = tx.rows(&STALE_USERS, &[&stale]).await?;
    if users.is_empty() {
        tx.execute(&FORGET_STALE, &[&stale]).await?;
        return Ok(Vec::new());
    }
    tx.execute(&FORGET_STALE, &[&stale]).await?;
    let mut changes = Vec::new();
    for user in users {
        if !online(tx, user, now).await? {
            tx.execute(&SET_LAST_SEEN, &[&user, &now]).await?;
            changes.push(change(tx, user, false).await?);
        }
    }
    Ok(changes)
}

impl Store {
    /// Registers (or re-registers) this instance with a fresh heartbeat. `alone`: this is the
    /// only instance there can be (SQLite), so rows left by an earlier run are dropped.
    pub async fn register_instance(&self, instance: &str, alone: bool) -> StoreResult<()> {
        let instance = instance.to_owned();
        write!(self, |tx| {
            let now = tx.now();
            if alone {
                tx.execute(&FORGET_ALL_INSTANCES, &[&instance]).await?;
            }
            tx.execute(&REGISTER, &[&instance, &now]).await?;
            Ok(())
        })
    }

    /// This instance has (`here`) or no longer has a socket of `user` open.
    pub async fn sync_presence(
        &self,
        instance: &str,
        user: i64,
        here: bool,
    ) -> StoreResult<Option<PresenceChange>> {
        let instance = instance.to_owned();
        write!(self, |tx| sync(tx, &instance, user, here).await)
    }

    /// Who to tell that `user` came online or went offline, and when they were last seen as
    /// stored: one read. The only instance (SQLite) keeps who is online in memory, not in
    /// `presence` (`realtime::presence`).
    pub async fn presence_change(&self, user: i64, online: bool) -> StoreResult<PresenceChange> {
        read!(self, |db| change(db, user, online).await)
    }

    /// Stores when each of these users was last seen, in one write.
    pub async fn record_last_seen(&self, seen: Vec<(i64, Timestamp)>) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        write!(self, |tx| {
            for (user, at) in &seen {
                tx.execute(&SET_LAST_SEEN, &[user, at]).await?;
            }
            Ok(())
        })
    }

    /// Forgets instances that stopped beating; the users that leaves offline.
    pub async fn sweep_presence(&self) -> StoreResult<Vec<PresenceChange>> {
        write!(self, |tx| sweep(tx).await)
    }

    /// The presence of those of `users` who share a thread with `viewer` (and are not blocked
    /// either way), by id.
    pub async fn presence_of(&self, viewer: i64, users: &[i64]) -> StoreResult<Vec<PresenceState>> {
        let ids = IdList::new(users).0;
        let now = Timestamp::now();
        read!(self, |db| db
            .rows(&OF_PARTNERS, &[&viewer, &ids, &fresh_after(now)])
            .await)
    }
}

static MEMBERS_AND_BLOCK: Sql = Sql::new(
    "SELECT t.user_low AS user_low, t.user_high AS user_high,
            EXISTS (SELECT 1 FROM blocks b
                    WHERE (b.blocker_id = t.user_low AND b.blocked_id = t.user_high)
                       OR (b.blocker_id = t.user_high AND b.blocked_id = t.user_low)) AS blocked
     FROM threads t WHERE t.id = $1",
);

/// A thread's two users, and whether one blocks the other.
struct Pair {
    users: [i64; 2],
    blocked: bool,
}

impl FromRow for Pair {
    fn from_row(row: &impl Row) -> StoreResult<Pair> {
        Ok(Pair {
            users: [row.get("user_low")?, row.get("user_high")?],
            blocked: row.get("blocked")?,
        })
    }
}

impl Store {
    /// Who should see that `user` is typing in `thread`: the other participant, unless `user`
    /// is not one, or either blocks the other. One read.
    pub async fn typing_audience(&self, thread: i64, user: i64) -> StoreResult<Option<i64>> {
        read!(self, |db| {
            let pair: Option<Pair> = db.row(&MEMBERS_AND_BLOCK, &[&thread]).await?;
            Ok(pair.and_then(|pair| {
                let other = match pair.users {
                    [low, high] if low == user => high,
                    [low, high] if high == user => low,
                    _ => return None,
                };
                (!pair.blocked).then_some(other)
            }))
        })
    }
}
