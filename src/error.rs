//! The one error type of the HTTP API. Every variant becomes the Django REST framework shaped
//! answer the contract describes; database and unexpected errors become a bare 500 whose details
//! go to the log only.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with `{"field": ["message", ...]}` (or nested for lists).
    #[error("validation failed: {0}")]
    Validation(Value),
    /// 400 with `{"detail": ...}` (malformed JSON and the like).
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {detail}")]
    Unauthorized {
        detail: &'static str,
        code: Option<&'static str>,
    },
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("payload too large")]
    PayloadTooLarge(usize),
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    #[error("throttled for {0} s")]
    Throttled(u64),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub const NOT_AUTHENTICATED: ApiError = ApiError::Unauthorized {
    detail: "Authentication credentials were not provided.",
    code: None,
};
pub const TOKEN_NOT_VALID: ApiError = ApiError::Unauthorized {
    detail: "Given token not valid for any token type",
    code: Some("token_not_valid"),
};
pub const NO_PERMISSION: ApiError =
    ApiError::Forbidden("You do not have permission to perform this action.");

impl ApiError {
    /// `{"field": ["message"]}`.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let mut errors = Map::new();
        errors.insert(field.to_owned(), json!([message.into()]));
        ApiError::Validation(Value::Object(errors))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> Value {
        match self {
            ApiError::Validation(errors) => errors.clone(),
            ApiError::BadRequest(detail) => json!({ "detail": detail }),
            ApiError::Unauthorized { detail, code } => match code {
                Some(code) => json!({ "detail": detail, "code": code }),
                None => json!({ "detail": detail }),
            },
            ApiError::Forbidden(detail) => json!({ "detail": detail }),
            ApiError::NotFound => json!({ "detail": "Not found." }),
            ApiError::MethodNotAllowed(method) => {
                json!({ "detail": format!("Method \"{method}\" not allowed.") })
            }
            ApiError::PayloadTooLarge(limit) => {
                json!({ "detail": format!("Request body is too large (limit {limit} bytes).") })
            }
            ApiError::UnsupportedMediaType(media) => {
                json!({ "detail": format!("Unsupported media type \"{media}\" in request.") })
            }
            ApiError::Throttled(seconds) => json!({
                "detail": format!("Request was throttled. Expected available in {seconds} seconds.")
            }),
            ApiError::Unavailable(_) => {
                json!({ "detail": "Service temporarily unavailable, try again shortly." })
            }
            ApiError::Internal(_) => json!({ "detail": "A server error occurred." }),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable(reason) => ApiError::Unavailable(reason),
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(error) => tracing::error!(error = ?error, "internal error"),
            ApiError::Unavailable(reason) => tracing::warn!(%reason, "service unavailable"),
            _ => {}
        }
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if let ApiError::Throttled(seconds) = self {
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

pub type ApiResult<T> = Result<T, ApiError>;
