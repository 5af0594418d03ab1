//! User accounts as stored: lookups, search, create, change, delete, and the login record.
//! The rules for valid accounts live in `crate::accounts`; this module keeps the rows.

use std::sync::Arc;

use serde::Serialize;

use super::{
    Counted, Store, StoreResult,
    db::{Db, Dialect, FromRow, Row, Sql, Tx},
    events::{self, Payload},
    files, read, write,
};
use crate::clock::Timestamp;

/// A user account as stored; serialized as the contract's user JSON (never the password or
/// its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// The password hash (argon2id PHC string, or an imported Django hash).
    #[serde(skip)]
    pub password: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: Timestamp,
    pub last_login: Option<Timestamp>,
    /// Bumped when the password changes or the user is deactivated: older tokens stop working.
    #[serde(skip)]
    pub token_version: i64,
}

/// The columns [`User`] is read from.
macro_rules! user_columns {
    () => {
        "id, username, email, first_name, last_name, password, is_active, is_staff, \
         is_superuser, date_joined, last_login, token_version"
    };
}
pub(crate) use user_columns;

impl FromRow for User {
    fn from_row(row: &impl Row) -> StoreResult<User> {
        Ok(User {
            id: row.get("id")?,
            username: row.get("username")?,
            email: row.get("email")?,
            first_name: row.get("first_name")?,
            last_name: row.get("last_name")?,
            password: row.get("password")?,
            is_active: row.get("is_active")?,
            is_staff: row.get("is_staff")?,
            is_superuser: row.get("is_superuser")?,
            date_joined: row.get("date_joined")?,
            last_login: row.get("last_login")?,
            token_version: row.get("token_version")?,
        })
    }
}

/// A user to create; the password is already hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

#[cfg(test)]
impl NewUser {
    /// An active user with only a username (no password, not staff), for the store's tests.
    pub fn named(username: &str) -> NewUser {
        NewUser {
            username: username.into(),
            password_hash: String::new(),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
        }
    }
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password_hash: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

impl UserChanges {
    /// Whether the change must end the user's existing tokens.
    pub fn ends_tokens(&self) -> bool {
        self.password_hash.is_some() || self.is_active == Some(false)
    }
}

static BY_ID: Sql = Sql::new(concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE id = $1"
));
static BY_USERNAME: Sql = Sql::new(concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE username = $1"
));
static INSERT: Sql = Sql::new(concat!(
    "INSERT INTO users (username, password, email, first_name, last_name,
                        is_active, is_staff, is_superuser, date_joined)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     RETURNING ",
    user_columns!()
));
static UPDATE: Sql = Sql::new(concat!(
    "UPDATE users SET
         username = COALESCE($2, username),
         email = COALESCE($3, email),
         first_name = COALESCE($4, first_name),
         last_name = COALESCE($5, last_name),
         password = COALESCE($6, password),
         is_active = COALESCE($7, is_active),
         is_staff = COALESCE($8, is_staff),
         is_superuser = COALESCE($9, is_superuser),
         token_version = token_version + $10
     WHERE id = $1
     RETURNING ",
    user_columns!()
));
static RECORD_LOGIN: Sql =
    Sql::new("UPDATE users SET last_login = $2, password = COALESCE($3, password) WHERE id = $1");
/// The user's threads and, for each, the other participant (who is told of its deletion).
/// `FOR UPDATE` on PostgreSQL keeps a concurrent post from slipping in.
static THREADS_AND_OTHERS: Sql = Sql::dialects(
    "SELECT id, CASE WHEN user_low = $1 THEN user_high ELSE user_low END AS other
     FROM threads WHERE user_low = $1
     UNION ALL
     SELECT id, user_low AS other FROM threads WHERE user_high = $1",
    "SELECT id, CASE WHEN user_low = $1 THEN user_high ELSE user_low END AS other
     FROM threads WHERE user_low = $1 OR user_high = $1
     ORDER BY id FOR UPDATE",
);
static DELETE: Sql = Sql::new("DELETE FROM users WHERE id = $1");

/// A thread of a user being deleted, and who else is in it.
struct ThreadAndOther {
    thread: i64,
    other: i64,
}

impl FromRow for ThreadAndOther {
    fn from_row(row: &impl Row) -> StoreResult<ThreadAndOther> {
        Ok(ThreadAndOther {
            thread: row.get("id")?,
            other: row.get("other")?,
        })
    }
}

/// `LIKE` is case-insensitive for ASCII on SQLite; PostgreSQL needs `ILIKE`.
fn like(db: &impl Db) -> &'static str {
    match db.dialect() {
        Dialect::Sqlite => "LIKE",
        Dialect::Postgres => "ILIKE",
    }
}

pub(crate) async fn by_id(db: &impl Db, id: i64) -> StoreResult<Option<User>> {
    db.row(&BY_ID, &[&id]).await
}

pub(crate) async fn by_username(db: &impl Db, username: &str) -> StoreResult<Option<User>> {
    db.row(&BY_USERNAME, &[&username]).await
}

async fn search(
    db: &impl Db,
    pattern: &str,
    everywhere: bool,
    active_only: bool,
    limit: i64,
    offset: i64,
) -> StoreResult<Counted<User>> {
    let like = like(db);
    let filter = if everywhere {
        format!(
            "(username {like} $1 ESCAPE '\\' OR email {like} $1 ESCAPE '\\'
              OR first_name {like} $1 ESCAPE '\\' OR last_name {like} $1 ESCAPE '\\')"
        )
    } else {
        format!("username {like} $1 ESCAPE '\\'")
    };
    let active = if active_only { "AND is_active" } else { "" };
    let count = Sql::owned(format!(
        "SELECT COUNT(*) FROM users WHERE {filter} {active}"
    ));
    let page = Sql::owned(format!(
        "SELECT {} FROM users WHERE {filter} {active} ORDER BY id LIMIT $2 OFFSET $3",
        user_columns!()
    ));
    Ok(Counted {
        count: db.one(&count, &[&pattern]).await?,
        items: db.rows(&page, &[&pattern, &limit, &offset]).await?,
    })
}

async fn delete(tx: &mut impl Tx, id: i64) -> StoreResult<bool> {
    let threads: Vec<ThreadAndOther> = tx.rows(&THREADS_AND_OTHERS, &[&id]).await?;
    events::redact_threads_of(tx, id).await?;
    let attached: Vec<i64> = tx.rows(&files::OF_USERS_THREADS, &[&id]).await?;
    if tx.execute(&DELETE, &[&id]).await? == 0 {
        return Ok(false);
    }
    files::delete_unused(tx, &attached).await?;
    tx.sign_out(id);
    tx.thread_deleted();
    for ThreadAndOther { thread, other } in threads {
        events::tell(tx, &[other], Payload::ThreadDeleted { thread }).await?;
    }
    Ok(true)
}

impl Store {
    /// The user, from memory when this process has read it since it last changed (see
    /// [`super::user_cache`]).
    pub async fn user(&self, id: i64) -> StoreResult<Option<Arc<User>>> {
        let cache = self.user_cache();
        if let Some(user) = cache.get(id) {
            return Ok(Some(user));
        }
        let ticket = cache.ticket();
        let user = read!(self, |db| by_id(db, id).await)?.map(Arc::new);
        if let Some(user) = &user {
            cache.keep(ticket, user);
        }
        Ok(user)
    }

    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        read!(self, |db| by_username(db, &username).await)
    }

    /// Users whose username (with `everywhere`, also email or names) contains `term`
    /// (case-insensitively for ASCII letters), by id.
    pub async fn search_users(
        &self,
        term: &str,
        everywhere: bool,
        active_only: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<User>> {
        let pattern = super::contains_pattern(term);
        read!(self, |db| {
            search(db, &pattern, everywhere, active_only, limit, offset).await
        })
    }

    pub async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        write!(self, |tx| {
            let now = tx.now();
            tx.one(
                &INSERT,
                &[
                    &user.username,
                    &user.password_hash,
                    &user.email,
                    &user.first_name,
                    &user.last_name,
                    &user.is_active,
                    &user.is_staff,
                    &user.is_superuser,
                    &now,
                ],
            )
            .await
        })
    }

    /// Applies the changes; a password change or a deactivation also ends the user's tokens.
    pub async fn update_user(&self, id: i64, changes: UserChanges) -> StoreResult<Option<User>> {
        write!(self, |tx| {
            let bump = i64::from(changes.ends_tokens());
            tx.user_changed(id);
            if changes.username.is_some() {
                tx.user_renamed();
            }
            if changes.ends_tokens() {
                tx.sign_out(id);
            }
            tx.row(
                &UPDATE,
                &[
                    &id,
                    &changes.username,
                    &changes.email,
                    &changes.first_name,
                    &changes.last_name,
                    &changes.password_hash,
                    &changes.is_active,
                    &changes.is_staff,
                    &changes.is_superuser,
                    &bump,
                ],
            )
            .await
        })
    }

    /// Records a successful login, replacing the stored hash when it was upgraded.
    pub async fn record_login(&self, id: i64, new_hash: Option<String>) -> StoreResult<()> {
        write!(self, |tx| {
            let now = tx.now();
            tx.user_changed(id);
            tx.execute(&RECORD_LOGIN, &[&id, &now, &new_hash]).await?;
            Ok(())
        })
    }

    /// Deletes the user with their threads and messages (whose text leaves every stored log);
    /// the other participant of each thread gets `thread.deleted`. `false` when there was no
    /// such user.
    pub async fn delete_user(&self, id: i64) -> StoreResult<bool> {
        write!(self, |tx| delete(tx, id).await)
    }
}
