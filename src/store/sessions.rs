//! The admin page's sessions. The browser holds a random id; only its SHA-256 is stored, with
//! the session's CSRF token, idle expiry and a one-shot message for the next page.

use super::{
    Store, StoreResult,
    db::{Db, FromRow, Row, Sql, Tx},
    read,
    users::{User, user_columns},
    write,
};
use crate::clock::Timestamp;

/// A signed-in admin session, found by the hash of its id.
#[derive(Clone, Debug)]
pub struct AdminSession {
    pub user: User,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// The message waiting to be shown on the next page, if any.
    pub flash: Option<String>,
    pub expires: Timestamp,
}

impl FromRow for AdminSession {
    fn from_row(row: &impl Row) -> StoreResult<AdminSession> {
        Ok(AdminSession {
            user: User::from_row(row)?,
            csrf_token: row.get("csrf_token")?,
            flash: row.get("flash")?,
            expires: row.get("expires")?,
        })
    }
}

/// A session to store: only the SHA-256 of the id the browser holds.
#[derive(Clone, Debug)]
pub struct NewAdminSession {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub expires: Timestamp,
    /// A message for the session's first page.
    pub flash: Option<String>,
}

static SWEEP: Sql = Sql::new("DELETE FROM admin_sessions WHERE expires <= $1");
static INSERT: Sql = Sql::new(
    "INSERT INTO admin_sessions (id_hash, user_id, csrf_token, created, expires, flash)
     VALUES ($1, $2, $3, $4, $5, $6)",
);
// No column name of admin_sessions is also one of users', so none needs a prefix.
static FIND: Sql = Sql::new(concat!(
    "SELECT ",
    user_columns!(),
    ", csrf_token, flash, expires
     FROM admin_sessions JOIN users ON users.id = admin_sessions.user_id
     WHERE id_hash = $1 AND expires > $2"
));
static FLASH: Sql = Sql::new("SELECT flash FROM admin_sessions WHERE id_hash = $1");
static TOUCH: Sql =
    Sql::new("UPDATE admin_sessions SET expires = $2, flash = NULL WHERE id_hash = $1");
static SET_FLASH: Sql = Sql::new("UPDATE admin_sessions SET flash = $2 WHERE id_hash = $1");
static DELETE: Sql = Sql::new("DELETE FROM admin_sessions WHERE id_hash = $1");

impl Store {
    /// Stores a new admin session; expired sessions of everyone are swept on the way.
    pub async fn create_admin_session(&self, session: NewAdminSession) -> StoreResult<()> {
        write!(self, |tx| {
            let now = tx.now();
            tx.execute(&SWEEP, &[&now]).await?;
            tx.execute(
                &INSERT,
                &[
                    &session.id_hash,
                    &session.user_id,
                    &session.csrf_token,
                    &now,
                    &session.expires,
                    &session.flash,
                ],
            )
            .await?;
            Ok(())
        })
    }

    /// The unexpired session with this id hash, with its user as they are now.
    pub async fn admin_session(&self, id_hash: &str) -> StoreResult<Option<AdminSession>> {
        let id_hash = id_hash.to_owned();
        let now = Timestamp::now();
        read!(self, |db| db.row(&FIND, &[&id_hash, &now]).await)
    }

    /// Pushes a session's expiry forward and takes its waiting message (if any).
    pub async fn touch_admin_session(
        &self,
        id_hash: &str,
        expires: Timestamp,
    ) -> StoreResult<Option<String>> {
        let id_hash = id_hash.to_owned();
        write!(self, |tx| {
            let flash: Option<Option<String>> = tx.row(&FLASH, &[&id_hash]).await?;
            tx.execute(&TOUCH, &[&id_hash, &expires]).await?;
            Ok(flash.flatten())
        })
    }

    /// Leaves a message for the session's next page.
    pub async fn set_admin_flash(&self, id_hash: &str, message: String) -> StoreResult<()> {
        let id_hash = id_hash.to_owned();
        write!(self, |tx| {
            tx.execute(&SET_FLASH, &[&id_hash, &message]).await?;
            Ok(())
        })
    }

    pub async fn delete_admin_session(&self, id_hash: &str) -> StoreResult<()> {
        let id_hash = id_hash.to_owned();
        write!(self, |tx| {
            tx.execute(&DELETE, &[&id_hash]).await?;
            Ok(())
        })
    }
}
