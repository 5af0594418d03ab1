//! The HTTP API: routes (every URL of the original in both spellings), the middleware that makes
//! every answer follow the contract (JSON errors, body limit, request ids, logs, panics), and
//! the server loop with graceful shutdown.

mod events;
mod extract;
mod health;
mod messages;
mod threads;
mod tokens;
mod users;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tower::Layer;
use tower_http::{
    catch_panic::CatchPanicLayer,
    normalize_path::NormalizePathLayer,
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::Level;

pub use extract::AuthUser;

use crate::{
    auth::{jwt::TokenKeys, throttle::LoginThrottle},
    config::Config,
    error::ApiError,
    realtime::Hub,
    store::Store,
};

/// What every handler can reach.
pub struct Shared {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub keys: TokenKeys,
    pub throttle: LoginThrottle,
    pub config: Config,
}

pub type AppState = Arc<Shared>;

pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/ws", get(events::websocket))
        .route("/api/events", get(events::poll))
        .route("/api/token", post(tokens::obtain))
        .route("/api/token/refresh", post(tokens::refresh))
        .route("/api/token/verify", post(tokens::verify))
        .route("/api/me", get(users::me))
        .route("/api/users", get(users::list).post(users::create))
        .route(
            "/api/users/{id}",
            get(users::detail)
                .patch(users::update)
                .delete(users::delete),
        )
        .route("/chat/thread", post(threads::create))
        .route(
            "/chat/thread/{id}",
            get(threads::detail).delete(threads::delete),
        )
        .route("/chat/user/{id}/thread", get(threads::list_for_user))
        .route(
            "/thread/{id}/message",
            get(messages::list).post(messages::create),
        )
        .route(
            "/chat/thread/{id}/message",
            get(messages::list).post(messages::create),
        )
        .route(
            "/message",
            post(messages::mark_read).patch(messages::mark_read),
        )
        .route(
            "/chat/messages",
            post(messages::mark_read).patch(messages::mark_read),
        )
        .route("/user/{id}/message", get(messages::unread_count))
        .route("/chat/user/{id}/message", get(messages::unread_count))
        .merge(crate::admin::router())
        .merge(crate::web::router())
        .fallback(not_found)
        .layer(middleware::from_fn(contract_responses))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(limit, reject_large_bodies))
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
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hub = state.hub.clone();
    // Trailing slashes are trimmed before routing, so every URL works with and without one.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(state));
    let stop_realtime = {
        let hub = hub.clone();
        async move {
            shutdown.await;
            // Long polls answer at once and sockets close with 1001.
            hub.shut_down();
        }
    };
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(stop_realtime)
    .await?;
    hub.drained(Duration::from_secs(5)).await;
    Ok(())
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

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// A body announced larger than the limit is refused before anything else looks at it.
async fn reject_large_bodies(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    next.run(request).await
}

/// Gives the router's own answers (405) the contract's JSON shape, and every JSON answer its
/// charset.
async fn contract_responses(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let mut response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response.headers().get(header::CONTENT_TYPE).is_none()
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ApiError::MethodNotAllowed(method.to_string()).into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    if response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json")
    {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    response
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}
