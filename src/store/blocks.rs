//! Blocking: while either of two users blocks the other, neither can start their thread or
//! post in it, and typing and presence are not shared between them. The thread and its history
//! stay readable to both, and the blocked user is not told.

use super::{
    Counted, Store, StoreResult,
    db::{Db, Sql, Tx},
    read,
    threads::Participant,
    write,
};

static BLOCK: Sql = Sql::new(
    "INSERT INTO blocks (blocker_id, blocked_id, created) VALUES ($1, $2, $3)
     ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
);
static UNBLOCK: Sql = Sql::new("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2");
static COUNT: Sql = Sql::new("SELECT COUNT(*) FROM blocks WHERE blocker_id = $1");
static LIST: Sql = Sql::new(
    "SELECT u.id AS id, u.username AS username FROM blocks b JOIN users u ON u.id = b.blocked_id
     WHERE b.blocker_id = $1 ORDER BY b.created, u.id LIMIT $2 OFFSET $3",
);
/// Whether either of `$1` and `$2` blocks the other.
pub(crate) static BETWEEN: Sql = Sql::new(
    "SELECT EXISTS (
         SELECT 1 FROM blocks
         WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)
     )",
);

impl super::db::FromRow for Participant {
    fn from_row(row: &impl super::db::Row) -> StoreResult<Participant> {
        Ok(Participant {
            id: row.get("id")?,
            username: row.get("username")?,
        })
    }
}

/// Whether either of two users blocks the other.
pub(crate) async fn between(db: &impl Db, a: i64, b: i64) -> StoreResult<bool> {
    db.one(&BETWEEN, &[&a, &b]).await
}

impl Store {
    /// `blocker` blocks `blocked` (again: nothing changes).
    pub async fn block(&self, blocker: i64, blocked: i64) -> StoreResult<()> {
        write!(self, |tx| {
            let now = tx.now();
            tx.execute(&BLOCK, &[&blocker, &blocked, &now]).await?;
            Ok(())
        })
    }

    pub async fn unblock(&self, blocker: i64, blocked: i64) -> StoreResult<()> {
        write!(self, |tx| {
            tx.execute(&UNBLOCK, &[&blocker, &blocked]).await?;
            Ok(())
        })
    }

    /// The users `blocker` blocks, in the order blocked.
    pub async fn blocked_by(
        &self,
        blocker: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<Participant>> {
        read!(self, |db| {
            Ok(Counted {
                count: db.one(&COUNT, &[&blocker]).await?,
                items: db.rows(&LIST, &[&blocker, &limit, &offset]).await?,
            })
        })
    }

    /// Whether either of two users blocks the other.
    pub async fn blocked_between(&self, a: i64, b: i64) -> StoreResult<bool> {
        read!(self, |db| between(db, a, b).await)
    }
}
