//! Refresh tokens that must never work again: signed out (`/api/token/blacklist/`), or used
//! once while rotation is on. Kept by `jti` until they would have expired anyway.

use super::{
    Store, StoreResult,
    db::{Db, Sql},
    read, write,
};
use crate::clock::Timestamp;

static INSERT: Sql = Sql::new(
    "INSERT INTO token_blacklist (jti, expires) VALUES ($1, $2)
     ON CONFLICT (jti) DO NOTHING RETURNING jti",
);
static FIND: Sql = Sql::new("SELECT jti FROM token_blacklist WHERE jti = $1");
static PRUNE: Sql = Sql::new("DELETE FROM token_blacklist WHERE expires < $1");
static SCHEMA: Sql = Sql::new("SELECT MAX(name) FROM schema_migrations");

impl Store {
    /// Blacklists a token; `false` when it already was (a second use of a rotated token).
    pub async fn blacklist_token(&self, jti: &str, expires: Timestamp) -> StoreResult<bool> {
        let jti = jti.to_owned();
        write!(self, |tx| {
            let inserted: Option<String> = tx.row(&INSERT, &[&jti, &expires]).await?;
            Ok(inserted.is_some())
        })
    }

    pub async fn is_blacklisted(&self, jti: &str) -> StoreResult<bool> {
        let jti = jti.to_owned();
        read!(self, |db| {
            let found: Option<String> = db.row(&FIND, &[&jti]).await?;
            Ok(found.is_some())
        })
    }

    /// Forgets blacklisted tokens that have expired anyway; returns how many.
    pub async fn prune_blacklist(&self, now: Timestamp) -> StoreResult<u64> {
        write!(self, |tx| tx.execute(&PRUNE, &[&now]).await)
    }

    /// The newest migration applied (which is also a check that the database answers).
    pub async fn schema_version(&self) -> StoreResult<String> {
        read!(self, |db| {
            let name: Option<String> = db.one(&SCHEMA, &[]).await?;
            Ok(name.unwrap_or_default())
        })
    }
}
