//! The real-time endpoints: `GET /ws` (WebSocket) and `GET /api/events/` (long poll), both over
//! the user's event log. See docs/REALTIME.md for the protocol.

use std::time::Duration;

use axum::{
    Json,
    extract::{
        FromRequestParts, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::{header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json, value::RawValue};
use tokio::time::{Instant, timeout};

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{ListQuery, authenticate, bearer_token},
};
use crate::{
    AppState,
    auth::jwt::TokenType,
    domain::{FieldErrors, NOT_AN_INTEGER},
    error::{AuthProblem, Error},
    realtime::{Subscription, Wake, frame, needs_resync},
    store::User,
};

const NOT_AUTHENTICATED: Error = Error::Unauthenticated(AuthProblem::NotProvided);

/// The user's session ended (password changed, deactivated, deleted): sign in again.
pub const CLOSE_SIGNED_OUT: u16 = 4001;
/// The client did not read its frames fast enough; reconnect with `since` = last seq seen.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// No frame (not even a pong) from the client for too long.
pub const CLOSE_IDLE: u16 = 4000;
/// The server is shutting down; reconnect (to another instance) with `since`.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// The server could not read the log; reconnect with `since`.
pub const CLOSE_SERVER_ERROR: u16 = 1011;

const PING_EVERY: Duration = Duration::from_secs(25);
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Events read from the log at a time while catching up.
const BATCH: i64 = 200;
/// Most events one long-poll answer carries.
const POLL_BATCH: i64 = 1_000;
const POLL_DEFAULT_TIMEOUT: u64 = 30;
const POLL_MAX_TIMEOUT: u64 = 60;
/// Small socket buffers keep an idle connection cheap (about 6 KB in all, measured by
/// `cargo bench --bench ws_memory`, instead of ~130 KB with the defaults).
const SOCKET_BUFFER: usize = 1024;
/// Clients send only pongs and small frames.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// `since`, validated against the user's log: `None` means "from now".
fn parse_since(query: &ListQuery, head: i64) -> Result<Option<i64>, Error> {
    let Some(raw) = query.get("since") else {
        return Ok(None);
    };
    let mut errors = FieldErrors::default();
    match raw.parse::<i64>() {
        Ok(since) if (0..=head).contains(&since) => return Ok(Some(since)),
        Ok(since) if since > head => errors.add(
            "since",
            format!("Ensure this value is at most the current seq, {head}."),
        ),
        _ => errors.add("since", NOT_AN_INTEGER),
    }
    errors.into_result().map(|()| None)
}

/// Who is connecting: a token from `?token=` or the `Authorization` header.
async fn connecting_user(
    state: &AppState,
    parts: &Parts,
    query: &ListQuery,
) -> Result<User, Error> {
    let token = match query.get("token") {
        Some(token) => token,
        None => parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| bearer_token(h.as_bytes()))
            .ok_or(NOT_AUTHENTICATED)?,
    };
    authenticate(state, token, TokenType::Access).await
}

/// `?since=&token=` of the real-time endpoints.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventParams {
    /// The last seq the client processed; events after it are sent first. Without it, only
    /// events from now on.
    since: Option<i64>,
    /// The access token (browsers cannot set headers on a WebSocket); or `Authorization`.
    token: Option<String>,
}

/// `?timeout=` of the long poll.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PollParams {
    /// Seconds to wait for an event: default 30, at most 60.
    timeout: Option<u64>,
}

/// The WebSocket: `hello`, then the user's events after `since`, then live ones (see
/// docs/REALTIME.md for frames and close codes). Refused before the upgrade when the token or
/// `since` is bad.
#[utoipa::path(get, path = "/ws", tag = "real time", params(EventParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn websocket(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _) = request.into_parts();
    match upgrade(state, &mut parts).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn upgrade(state: AppState, parts: &mut Parts) -> ApiResult<Response> {
    let query = ListQuery::parse(parts, state.config.public_url.as_deref())?;
    let user = connecting_user(&state, parts, &query).await?;
    let (head, _) = state.store.event_bounds(user.id).await?;
    let since = parse_since(&query, head)?;
    let upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|rejection| Error::Malformed(rejection.body_text()))?;
    Ok(upgrade
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * SOCKET_BUFFER + MAX_CLIENT_MESSAGE)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| run_socket(state, user, since, socket)))
}

/// How a socket session ended.
enum End {
    ClientLeft,
    SignedOut,
    TooSlow,
    Idle,
    Shutdown,
    Failed,
}

async fn run_socket(state: AppState, user: User, since: Option<i64>, mut socket: WebSocket) {
    let _guard = state.hub.connection_guard();
    let mut subscription = state.hub.subscribe(user.id);
    let end = session(&state, &user, since, &mut subscription, &mut socket).await;
    let (code, reason) = match end {
        End::ClientLeft => return,
        End::SignedOut => (CLOSE_SIGNED_OUT, "signed out"),
        End::TooSlow => (CLOSE_TOO_SLOW, "too slow: resume with since"),
        End::Idle => (CLOSE_IDLE, "idle"),
        End::Shutdown => (CLOSE_GOING_AWAY, "server shutting down"),
        End::Failed => (CLOSE_SERVER_ERROR, "server error"),
    };
    let close = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = timeout(Duration::from_secs(1), socket.send(close)).await;
}

/// Sends one frame; a client that does not take it within `limit` is too slow.
async fn send(socket: &mut WebSocket, frame: &str, limit: Duration) -> Result<(), End> {
    match timeout(limit, socket.send(Message::Text(frame.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::ClientLeft),
        Err(_) => Err(End::TooSlow),
    }
}

/// Whether the user may still be connected (active, same token version).
async fn still_signed_in(state: &AppState, user: &User) -> Result<bool, End> {
    match state.store.user(user.id).await {
        Ok(Some(now)) => Ok(now.is_active && now.token_version == user.token_version),
        Ok(None) => Ok(false),
        Err(_) => Err(End::Failed),
    }
}

async fn session(
    state: &AppState,
    user: &User,
    since: Option<i64>,
    subscription: &mut Subscription<'_>,
    socket: &mut WebSocket,
) -> End {
    match stream(state, user, since, subscription, socket).await {
        Ok(never) => match never {},
        Err(end) => end,
    }
}

async fn stream(
    state: &AppState,
    user: &User,
    since: Option<i64>,
    subscription: &mut Subscription<'_>,
    socket: &mut WebSocket,
) -> Result<std::convert::Infallible, End> {
    let limit = state.config.websocket_send_timeout;
    let (head, oldest) = state
        .store
        .event_bounds(user.id)
        .await
        .map_err(|_| End::Failed)?;
    send(
        socket,
        &json!({"type": "hello", "seq": head}).to_string(),
        limit,
    )
    .await?;
    let mut cursor = match since {
        Some(since) if needs_resync(since, head, oldest) => {
            send(
                socket,
                &json!({"type": "resync_required", "seq": head}).to_string(),
                limit,
            )
            .await?;
            head
        }
        Some(since) => since,
        None => head,
    };
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    loop {
        loop {
            let (_, events) = state
                .store
                .events_after(user.id, cursor, BATCH)
                .await
                .map_err(|_| End::Failed)?;
            if events.is_empty() {
                break;
            }
            for event in events {
                cursor = event.seq;
                send(socket, frame(event).get(), limit).await?;
            }
        }
        tokio::select! {
            wake = subscription.wake() => match wake {
                Wake::Events => {}
                Wake::SignedOut => {
                    if !still_signed_in(state, user).await? {
                        return Err(End::SignedOut);
                    }
                }
                Wake::Shutdown => return Err(End::Shutdown),
            },
            message = socket.recv() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Err(End::ClientLeft),
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT {
                    return Err(End::Idle);
                }
                // Also catches a sign-out whose wake-up came from another instance and was lost.
                if !still_signed_in(state, user).await? {
                    return Err(End::SignedOut);
                }
                match timeout(limit, socket.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(End::ClientLeft),
                    Err(_) => return Err(End::TooSlow),
                }
            }
        }
    }
}

/// The long poll's answer: frames after `since`, and where to resume.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsPage {
    /// Frames as on the WebSocket (see docs/REALTIME.md).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Box<RawValue>>,
    /// Where to resume: pass it as `since` next time.
    pub seq: i64,
}

impl EventsPage {
    fn only(frame: Value, seq: i64) -> EventsPage {
        let frame = RawValue::from_string(frame.to_string()).expect("a JSON value is JSON");
        EventsPage {
            events: vec![frame],
            seq,
        }
    }

    fn empty(seq: i64) -> EventsPage {
        EventsPage {
            events: Vec::new(),
            seq,
        }
    }
}

/// The event log over plain HTTP (long poll): answers at once when events after `since`
/// exist, otherwise when one arrives or after `timeout` seconds with an empty list.
#[utoipa::path(get, path = "/api/events", tag = "real time", security(("bearer" = [])),
    params(EventParams, PollParams),
    responses(
        (status = 200, body = EventsPage),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn poll(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _) = request.into_parts();
    match long_poll(state, &mut parts).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn long_poll(state: AppState, parts: &mut Parts) -> Result<EventsPage, Error> {
    let query = ListQuery::parse(parts, state.config.public_url.as_deref())?;
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(NOT_AUTHENTICATED)?;
    let token = bearer_token(header.as_bytes()).ok_or(NOT_AUTHENTICATED)?;
    let user = authenticate(&state, token, TokenType::Access).await?;
    let wait = match query.get("timeout") {
        None => POLL_DEFAULT_TIMEOUT,
        Some(raw) => match raw.parse::<u64>() {
            Ok(seconds) => seconds.min(POLL_MAX_TIMEOUT),
            Err(_) => return Err(Error::field("timeout", NOT_AN_INTEGER)),
        },
    };
    let mut subscription = state.hub.subscribe(user.id);
    let (head, oldest) = state.store.event_bounds(user.id).await?;
    let since = parse_since(&query, head)?;
    let cursor = match since {
        Some(since) if needs_resync(since, head, oldest) => {
            return Ok(EventsPage::only(
                json!({"type": "resync_required", "seq": head}),
                head,
            ));
        }
        Some(since) => since,
        None => head,
    };
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let (head, events) = state
            .store
            .events_after(user.id, cursor, POLL_BATCH)
            .await?;
        if !events.is_empty() {
            // `seq` is where to resume: the last event here (the head unless the batch was cut).
            let resume = events.last().map_or(head, |e| e.seq);
            let events = events.into_iter().map(frame).collect();
            return Ok(EventsPage {
                events,
                seq: resume,
            });
        }
        tokio::select! {
            wake = subscription.wake() => match wake {
                Wake::Events => {}
                Wake::SignedOut => {
                    authenticate(&state, token, TokenType::Access).await?;
                }
                Wake::Shutdown => return Ok(EventsPage::empty(head)),
            },
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(EventsPage::empty(head));
            }
        }
    }
}
