//! The API's answer to every failure: the application's [`Error`] and the few failures only
//! HTTP has (405, 413, 415), as the Django REST framework shaped bodies the contract describes.
//! Database and unexpected errors become a bare 500 whose details go to the log only.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::{AuthProblem, Error};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    App(#[from] Error),
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("payload too large")]
    PayloadTooLarge(usize),
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> ApiError {
        ApiError::App(error.into())
    }
}

/// `{"detail": "..."}`: the body of 401, 403, 404, 405, 413, 415, 429 and 503 answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Detail {
    pub detail: String,
    /// simplejwt's machine-readable reason, on some 401 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A 400 answer: each field names its problems (`{"text": ["This field may not be blank."]}`),
/// nested for list items; `non_field_errors` for problems not tied to one field; or
/// `{"detail": ...}` for a body that could not be read at all.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ValidationErrors, value_type = Object)]
pub struct ValidationErrors(pub Value);

fn auth_detail(problem: AuthProblem) -> (&'static str, Option<&'static str>) {
    match problem {
        AuthProblem::NotProvided => ("Authentication credentials were not provided.", None),
        AuthProblem::TokenNotValid => (
            "Given token not valid for any token type",
            Some("token_not_valid"),
        ),
        AuthProblem::UserNotFound => ("User not found", Some("user_not_found")),
        AuthProblem::UserInactive => ("User is inactive", Some("user_inactive")),
        AuthProblem::BadCredentials => ("No active account found with the given credentials", None),
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::App(error) => match error {
                Error::Invalid(_) | Error::Malformed(_) => StatusCode::BAD_REQUEST,
                Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                Error::Forbidden(_) => StatusCode::FORBIDDEN,
                Error::NotFound => StatusCode::NOT_FOUND,
                Error::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn body(&self) -> Value {
        let detail = |text: String| json!({ "detail": text });
        match self {
            ApiError::App(error) => match error {
                Error::Invalid(errors) => errors.clone(),
                Error::Malformed(text) => detail(text.clone()),
                Error::Unauthenticated(problem) => match auth_detail(*problem) {
                    (text, Some(code)) => json!({ "detail": text, "code": code }),
                    (text, None) => detail(text.into()),
                },
                Error::Forbidden(text) => detail((*text).into()),
                Error::NotFound => detail("Not found.".into()),
                Error::Throttled(seconds) => detail(format!(
                    "Request was throttled. Expected available in {seconds} seconds."
                )),
                Error::Unavailable { .. } => {
                    detail("Service temporarily unavailable, try again shortly.".into())
                }
                Error::Internal(_) => detail("A server error occurred.".into()),
            },
            ApiError::MethodNotAllowed(method) => {
                detail(format!("Method \"{method}\" not allowed."))
            }
            ApiError::PayloadTooLarge(limit) => {
                detail(format!("Request body is too large (limit {limit} bytes)."))
            }
            ApiError::UnsupportedMediaType(media) => {
                detail(format!("Unsupported media type \"{media}\" in request."))
            }
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::App(Error::Throttled(seconds)) => Some(*seconds),
            ApiError::App(Error::Unavailable { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::App(Error::Internal(error)) => {
                tracing::error!(error = ?error, "internal error")
            }
            ApiError::App(Error::Unavailable { reason, .. }) => {
                tracing::warn!(%reason, "service unavailable")
            }
            _ => {}
        }
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"api\""),
            );
        }
        response
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::App(self).into_response()
    }
}
