//! User accounts: the rules for creating and changing users and for logging in, shared by the
//! API, the admin page and the command line, so there is one copy of each rule.

use crate::{
    auth::{
        checks::PasswordChecks,
        password::{self, Verified},
        throttle::LoginThrottle,
    },
    domain::{FieldErrors, USERNAME_MAX, Username, password_problems},
    error::{AuthProblem, Error},
    store::{NewUser, Store, StoreError, User, UserChanges},
};

pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
const NAME_MAX: usize = 150;
const EMAIL_MAX: usize = 254;

/// A user to create, as typed (not yet validated).
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// Changes to a user, as typed; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct AccountChanges {
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

fn check_profile(
    errors: &mut FieldErrors,
    email: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
) {
    if let Some(email) = email.filter(|e| !e.is_empty()) {
        let valid = email.chars().count() <= EMAIL_MAX
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            });
        if !valid {
            errors.add("email", "Enter a valid email address.");
        }
    }
    for (field, value) in [("first_name", first_name), ("last_name", last_name)] {
        if value.is_some_and(|v| v.chars().count() > NAME_MAX) {
            errors.add(
                field,
                format!("Ensure this field has no more than {NAME_MAX} characters."),
            );
        }
    }
}

async fn hash_password(checks: &PasswordChecks, password: String) -> Result<String, Error> {
    checks
        .run(move |scratch| password::hash(&password, scratch))
        .await
}

fn username_conflict(error: StoreError) -> Error {
    match error {
        StoreError::Conflict(ref what) if what == "users.username" => {
            Error::field("username", USERNAME_TAKEN)
        }
        other => other.into(),
    }
}

pub async fn create(
    store: &Store,
    checks: &PasswordChecks,
    account: NewAccount,
) -> Result<User, Error> {
    let mut errors = FieldErrors::default();
    let username = match Username::parse(&account.username) {
        Ok(username) => Some(username),
        Err(message) => {
            errors.add("username", message);
            None
        }
    };
    for problem in password_problems(&account.password, &account.username) {
        errors.add("password", problem);
    }
    check_profile(
        &mut errors,
        Some(&account.email),
        Some(&account.first_name),
        Some(&account.last_name),
    );
    if let Some(username) = &username
        && !errors.contains("username")
        && store.user_by_username(username.as_str()).await?.is_some()
    {
        errors.add("username", USERNAME_TAKEN);
    }
    errors.into_result()?;
    let username = username.expect("checked above");
    let password_hash = hash_password(checks, account.password).await?;
    store
        .create_user(NewUser {
            username: username.into_inner(),
            password_hash,
            email: account.email,
            first_name: account.first_name,
            last_name: account.last_name,
            is_active: account.is_active,
            is_staff: account.is_staff,
            is_superuser: account.is_superuser,
        })
        .await
        .map_err(username_conflict)
}

/// Validates and applies changes to `user`. `None` when the user vanished meanwhile.
pub async fn update(
    store: &Store,
    checks: &PasswordChecks,
    user: &User,
    changes: AccountChanges,
) -> Result<Option<User>, Error> {
    let mut errors = FieldErrors::default();
    if let Some(username) = &changes.username
        && let Err(message) = Username::parse(username)
    {
        errors.add("username", message);
    }
    if let Some(password) = &changes.password {
        let username = changes.username.as_deref().unwrap_or(&user.username);
        for problem in password_problems(password, username) {
            errors.add("password", problem);
        }
    }
    check_profile(
        &mut errors,
        changes.email.as_deref(),
        changes.first_name.as_deref(),
        changes.last_name.as_deref(),
    );
    errors.into_result()?;
    let password_hash = match changes.password {
        Some(password) => Some(hash_password(checks, password).await?),
        None => None,
    };
    store
        .update_user(
            user.id,
            UserChanges {
                username: changes.username,
                email: changes.email,
                first_name: changes.first_name,
                last_name: changes.last_name,
                password_hash,
                is_active: changes.is_active,
                is_staff: changes.is_staff,
                is_superuser: changes.is_superuser,
            },
        )
        .await
        .map_err(username_conflict)
}

/// Why a login failed.
#[derive(Debug)]
pub enum LoginError {
    /// Too many failures for this username lately; retry after this many seconds.
    Throttled(u64),
    /// Wrong username or password, or an inactive user (indistinguishable on purpose).
    Invalid,
    Failed(Error),
}

impl From<LoginError> for Error {
    fn from(error: LoginError) -> Error {
        match error {
            LoginError::Throttled(seconds) => Error::Throttled(seconds),
            LoginError::Invalid => Error::Unauthenticated(AuthProblem::BadCredentials),
            LoginError::Failed(error) => error,
        }
    }
}

/// Who is signing in, from where.
pub struct Login<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub address: std::net::IpAddr,
}

/// Checks a username and password: throttled per username and address and per address
/// (counted before the check, so parallel guesses are throttled too), the hash computed in its
/// bounded turn. On success records the login and upgrades an old (Django) password hash to
/// argon2id. A username longer than any valid one is refused before any hashing or counting.
pub async fn login(
    store: &Store,
    checks: &PasswordChecks,
    throttle: &LoginThrottle,
    login: Login<'_>,
) -> Result<User, LoginError> {
    if login.username.chars().count() > USERNAME_MAX {
        return Err(LoginError::Invalid);
    }
    let attempt = throttle
        .begin(login.username, login.address)
        .map_err(LoginError::Throttled)?;
    let user = store
        .user_by_username(login.username)
        .await
        .map_err(|e| LoginError::Failed(e.into()))?;
    let password = login.password.to_owned();
    let stored = user.as_ref().map(|u| u.password.clone());
    let verified = checks
        .run(move |scratch| match stored {
            Some(stored) => password::verify(&password, &stored, scratch),
            None => {
                password::verify_dummy(&password, scratch);
                Verified::No
            }
        })
        .await
        .map_err(LoginError::Failed)?;
    let (user, new_hash) = match (user, verified) {
        (Some(user), Verified::Yes) if user.is_active => (user, None),
        (Some(user), Verified::YesRehash(hash)) if user.is_active => (user, Some(hash)),
        _ => {
            attempt.failed();
            return Err(LoginError::Invalid);
        }
    };
    attempt.succeeded();
    store
        .record_login(user.id, new_hash)
        .await
        .map_err(|e| LoginError::Failed(e.into()))?;
    Ok(user)
}
