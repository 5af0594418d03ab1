//! Settings: a few named values kept in the database so that every instance on it agrees
//! (the generated token signing key).

use super::db::Db;
use super::{Store, StoreResult, db::Sql, write};

static INSERT: Sql =
    Sql::new("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING");
static VALUE: Sql = Sql::new("SELECT value FROM settings WHERE key = $1");

impl Store {
    /// The value of a setting, storing `default` first when there is none (first writer wins,
    /// so every instance on one database ends up with the same value).
    pub async fn setting_or_insert(&self, key: &str, default: String) -> StoreResult<String> {
        let key = key.to_owned();
        write!(self, |tx| {
            tx.execute(&INSERT, &[&key, &default]).await?;
            tx.one(&VALUE, &[&key]).await
        })
    }
}
