//! The layers every route shares: request ids, logs without secrets, panics as JSON 500s,
//! bodies announced too large refused first, and trailing slashes trimmed.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use crate::{AppState, error::Error, http::error::ApiError};

/// The largest bodies accepted: JSON requests, and uploads (`POST /api/files/`, which also
/// counts the bytes as they stream in).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub json: usize,
    pub upload: usize,
}

/// What a multipart upload may carry besides the file (boundaries, part headers).
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// Wraps every route in the layers they share.
pub fn with_shared_layers(routes: Router<AppState>, limits: BodyLimits) -> Router<AppState> {
    routes
        .layer(middleware::from_fn_with_state(limits, reject_large_bodies))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let id = request
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    // The path only: a query string may carry a token.
                    tracing::info_span!(
                        "request",
                        id,
                        method = %request.method(),
                        path = request.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(
            REQUEST_ID.clone(),
            Counter::default(),
        ))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
}

/// `/chat/thread/` → `/chat/thread` (no redirect). The API reference under `/api/docs/` keeps
/// its slashes: its pages are relative to them.
pub fn trim_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') && !path.starts_with("/api/docs") {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rebuilt = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a per-process random prefix and a counter (cheap, unique enough to grep logs).
#[derive(Clone)]
struct Counter {
    prefix: String,
    next: Arc<AtomicU64>,
}

impl Default for Counter {
    fn default() -> Counter {
        Counter {
            prefix: format!("{:08x}", rand::random::<u32>()),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// A body announced larger than the limit is refused before anything else looks at it.
async fn reject_large_bodies(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let upload =
        request.method() == axum::http::Method::POST && request.uri().path() == "/api/files";
    let (limit, told) = if upload {
        (limits.upload + MULTIPART_OVERHEAD, limits.upload)
    } else {
        (limits.json, limits.json)
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return ApiError::PayloadTooLarge(told).into_response();
    }
    next.run(request).await
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    Error::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trimmed(uri: &str) -> String {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        trim_trailing_slash(request).uri().to_string()
    }

    #[test]
    fn trailing_slashes_are_trimmed_except_for_the_reference() {
        assert_eq!(trimmed("/chat/thread/"), "/chat/thread");
        assert_eq!(
            trimmed("/thread/1/message/?limit=2"),
            "/thread/1/message?limit=2"
        );
        assert_eq!(trimmed("/"), "/");
        assert_eq!(trimmed("/api/docs/"), "/api/docs/");
        assert_eq!(trimmed("/api/me"), "/api/me");
    }
}
