//! The errors the application's rules raise, in terms of what went wrong, not of HTTP: the API
//! maps them to status codes and Django REST framework shaped bodies (`http::error`), the admin
//! page to pages (`admin::page`), the command line to messages (`cli`).

use serde_json::{Map, Value, json};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that breaks a rule: `{"field": ["message", ...]}` (or nested for lists).
    #[error("validation failed: {0}")]
    Invalid(Value),
    /// Input that cannot be read at all (malformed JSON and the like).
    #[error("bad request: {0}")]
    Malformed(String),
    /// Who is asking is not known, or their credentials no longer hold.
    #[error("unauthorized: {0:?}")]
    Unauthenticated(AuthProblem),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// It does not exist, or the requester may not know that it does.
    #[error("not found")]
    NotFound,
    /// Too many attempts; retry after this many seconds.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// The server cannot take this now (a full queue, the database away); worth a retry.
    #[error("service unavailable: {reason}")]
    Unavailable {
        reason: String,
        retry_after: Option<u64>,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a request is not authenticated (each has simplejwt's wording).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthProblem {
    NotProvided,
    TokenNotValid,
    UserNotFound,
    UserInactive,
    /// Wrong username or password, or an inactive user (indistinguishable on purpose).
    BadCredentials,
}

pub const NO_PERMISSION: Error =
    Error::Forbidden("You do not have permission to perform this action.");

impl Error {
    /// `{"field": ["message"]}`.
    pub fn field(field: &str, message: impl Into<String>) -> Error {
        let mut errors = Map::new();
        errors.insert(field.to_owned(), json!([message.into()]));
        Error::Invalid(Value::Object(errors))
    }

    pub fn unavailable(reason: impl Into<String>) -> Error {
        Error::Unavailable {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Error {
        match error {
            StoreError::Unavailable(reason) => Error::unavailable(reason),
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
