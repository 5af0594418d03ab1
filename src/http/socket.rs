//! `GET /ws`: the WebSocket. It first states the user's current `seq` (`hello`), replays the
//! log after `since`, then streams new events as they are committed, plus the ephemeral frames
//! of the user's partners (typing, presence). See docs/REALTIME.md for frames and close codes.
//!
//! A socket lives as long as its latest access token: it is closed with 4001 when that token
//! expires, unless the client sent a fresh one in an `auth` frame. Each user has at most
//! `--max-websockets-per-user` sockets on an instance (one more is 429 before the upgrade), and
//! a client frame over 16 KiB closes the socket with 1009.
//!
//! An idle socket is a task waiting in [`Session::stream`]'s `select!`, and a task takes the
//! size of the largest state its future can be in. So the awaits an idle socket is not in (the
//! store's reads, presence, handling a client frame) are boxed: the task holds a pointer to
//! them while they run, and nothing of them while it waits. The socket's task went from 5.7 to
//! 2.6 KB (debug build), and the footprint scenario's RSS per idle socket from 10.1 to 7.6 KiB
//! (two alternating rounds, 2026-12-02).

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        FromRequestParts, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::request::Parts,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use tokio::time::{Instant, timeout};

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    events::{EventParams, connecting_user, parse_since},
    extract::{ListQuery, authenticate_access},
};
use crate::{
    AppState,
    auth::verified::Access,
    error::Error,
    realtime::{Subscription, Wake, frame, needs_resync},
    store::User,
};

/// The user's session ended (password changed, deactivated, deleted, token expired or
/// invalid): authenticate again.
pub const CLOSE_SIGNED_OUT: u16 = 4001;
/// The client did not read its frames fast enough; reconnect with `since` = last seq seen.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// No frame (not even a pong) from the client for too long.
pub const CLOSE_IDLE: u16 = 4000;
/// The server is shutting down; reconnect (to another instance) with `since`.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// A client frame was larger than 16 KiB.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The server could not read the log; reconnect with `since`.
pub const CLOSE_SERVER_ERROR: u16 = 1011;

const PING_EVERY: Duration = Duration::from_secs(25);
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Events read from the log at a time while catching up.
const BATCH: i64 = 200;
/// Small socket buffers keep an idle connection cheap (about 6 KB in all, measured by
/// `cargo bench --bench ws_memory`, instead of ~130 KB with the defaults).
const SOCKET_BUFFER: usize = 1024;
/// The largest client frame the server acts on.
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// Frames up to this size are read whole (then refused with 1009 when over
/// [`MAX_CLIENT_FRAME`]); larger ones break the connection at once.
const MAX_READ_FRAME: usize = 64 * 1024;

/// The WebSocket: `hello`, then the user's events after `since`, then live ones (see
/// docs/REALTIME.md for frames and close codes). Refused before the upgrade when the token or
/// `since` is bad (401/400), or when the user has too many sockets open (429).
#[utoipa::path(get, path = "/ws", tag = "real time", params(EventParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 429, body = Detail, description = "Too many open sockets for this user"),
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
    let (user, access) = connecting_user(&state, parts, &query).await?;
    // The log's bounds as the upgrade found them serve the hello too: whatever is appended
    // after this read is sent after the hello, by the first catch-up.
    let bounds = state.store.event_bounds(user.id).await?;
    let since = parse_since(&query, bounds.0)?;
    let upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|rejection| Error::Malformed(rejection.body_text()))?;
    // Counted now, so the refusal comes before the upgrade; the place is taken again (and
    // kept) by the socket itself.
    if state.hub.sockets_of(user.id) >= state.config.max_websockets_per_user {
        return Err(Error::Throttled(1).into());
    }
    Ok(upgrade
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * SOCKET_BUFFER + MAX_READ_FRAME)
        .max_message_size(MAX_READ_FRAME)
        .max_frame_size(MAX_READ_FRAME)
        .on_upgrade(move |socket| run(state, user, access, since, bounds, socket)))
}

/// How a socket session ended.
enum End {
    ClientLeft,
    SignedOut,
    TokenExpired,
    TooSlow,
    TooBig,
    Idle,
    Shutdown,
    Failed,
}

async fn run(
    state: AppState,
    user: Arc<User>,
    access: Access,
    since: Option<i64>,
    bounds: (i64, Option<i64>),
    mut socket: WebSocket,
) {
    let _guard = state.hub.connection_guard();
    let max = state.config.max_websockets_per_user;
    let user_id = user.id;
    let end = match state.hub.open_socket(user_id, max) {
        // Another socket of the user took the last place meanwhile.
        None => End::TooSlow,
        Some((place, subscription)) => {
            Box::pin(state.presence.sync(&state.store, &state.hub, user_id)).await;
            let mut session = Session {
                state: &state,
                user,
                expires: expiry(&access),
                subscription,
                socket: &mut socket,
            };
            let end = match session.stream(since, bounds).await {
                Ok(never) => match never {},
                Err(end) => end,
            };
            drop(session);
            drop(place);
            let state = state.clone();
            // Told in the background: the closing frame need not wait for it.
            tokio::spawn(async move {
                state.presence.sync(&state.store, &state.hub, user_id).await;
            });
            end
        }
    };
    let (code, reason) = match end {
        End::ClientLeft => return,
        End::SignedOut => (CLOSE_SIGNED_OUT, "signed out"),
        End::TokenExpired => (CLOSE_SIGNED_OUT, "token expired: renew with an auth frame"),
        End::TooSlow => (CLOSE_TOO_SLOW, "too slow: resume with since"),
        End::TooBig => (CLOSE_TOO_BIG, "frame too large"),
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

/// When a token's lifetime ends, as a deadline.
fn expiry(access: &Access) -> Instant {
    let now = crate::clock::Timestamp::now().micros() / 1_000_000;
    let left = access.exp.saturating_sub(now).max(0) as u64;
    Instant::now() + Duration::from_secs(left)
}

/// A frame the client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ClientFrame {
    /// Renews the socket's authentication.
    #[serde(rename = "auth")]
    Auth { token: String },
    /// The user is typing in a thread.
    #[serde(rename = "typing")]
    Typing { thread: i64 },
    #[serde(other)]
    Other,
}

struct Session<'a> {
    state: &'a AppState,
    user: Arc<User>,
    /// When the latest token expires.
    expires: Instant,
    subscription: Subscription<'a>,
    socket: &'a mut WebSocket,
}

impl Session<'_> {
    /// Sends one frame; a client that does not take it within the send timeout is too slow.
    async fn send(&mut self, frame: &str) -> Result<(), End> {
        let limit = self.state.config.websocket_send_timeout;
        match timeout(limit, self.socket.send(Message::Text(frame.into()))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientLeft),
            Err(_) => Err(End::TooSlow),
        }
    }

    /// Whether the user may still be connected (active, same token version).
    async fn still_signed_in(&mut self) -> Result<bool, End> {
        match Box::pin(self.state.store.user(self.user.id)).await {
            Ok(Some(now)) => Ok(now.is_active && now.token_version == self.user.token_version),
            Ok(None) => Ok(false),
            Err(_) => Err(End::Failed),
        }
    }

    /// The hello (at `head`, with `oldest` the oldest seq kept), what came after `since`, then
    /// everything live.
    async fn stream(
        &mut self,
        since: Option<i64>,
        (head, oldest): (i64, Option<i64>),
    ) -> Result<std::convert::Infallible, End> {
        self.send(&json!({"type": "hello", "seq": head}).to_string())
            .await?;
        let mut cursor = match since {
            Some(since) if needs_resync(since, head, oldest) => {
                self.send(&json!({"type": "resync_required", "seq": head}).to_string())
                    .await?;
                head
            }
            Some(since) => since,
            None => head,
        };
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut last_heard = Instant::now();
        loop {
            cursor = self.catch_up(cursor).await?;
            tokio::select! {
                wake = self.subscription.wake() => match wake {
                    Wake::Events => {}
                    Wake::Frame(frame) => self.send(&frame).await?,
                    Wake::SignedOut => {
                        if !self.still_signed_in().await? {
                            return Err(End::SignedOut);
                        }
                    }
                    Wake::Shutdown => return Err(End::Shutdown),
                },
                message = self.socket.recv() => {
                    last_heard = Instant::now();
                    Box::pin(self.received(message)).await?;
                }
                () = tokio::time::sleep_until(self.expires) => return Err(End::TokenExpired),
                _ = ping.tick() => {
                    if last_heard.elapsed() > IDLE_LIMIT {
                        return Err(End::Idle);
                    }
                    // Also catches a sign-out whose wake-up came from another instance and was
                    // lost.
                    if !self.still_signed_in().await? {
                        return Err(End::SignedOut);
                    }
                    let limit = self.state.config.websocket_send_timeout;
                    match timeout(limit, self.socket.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Err(End::ClientLeft),
                        Err(_) => return Err(End::TooSlow),
                    }
                }
            }
        }
    }

    /// Sends every event after `cursor`; returns the new cursor.
    async fn catch_up(&mut self, mut cursor: i64) -> Result<i64, End> {
        loop {
            let (_, events) = Box::pin(self.state.store.events_after(self.user.id, cursor, BATCH))
                .await
                .map_err(|_| End::Failed)?;
            if events.is_empty() {
                return Ok(cursor);
            }
            for event in events {
                cursor = event.seq;
                self.send(frame(event).get()).await?;
            }
        }
    }

    /// Acts on what the client sent.
    async fn received(&mut self, message: Option<Result<Message, axum::Error>>) -> Result<(), End> {
        let text = match message {
            None | Some(Ok(Message::Close(_))) => return Err(End::ClientLeft),
            // Larger than even the read limit.
            Some(Err(error)) if error.to_string().contains("too long") => return Err(End::TooBig),
            Some(Err(_)) => return Err(End::ClientLeft),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(bytes))) if bytes.len() > MAX_CLIENT_FRAME => {
                return Err(End::TooBig);
            }
            Some(Ok(_)) => return Ok(()),
        };
        if text.len() > MAX_CLIENT_FRAME {
            return Err(End::TooBig);
        }
        match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(ClientFrame::Auth { token }) => self.renew(&token).await,
            Ok(ClientFrame::Typing { thread }) => {
                let state = self.state;
                state
                    .presence
                    .typing(&state.store, self.user.id, thread)
                    .await;
                Ok(())
            }
            Ok(ClientFrame::Other) | Err(_) => Ok(()),
        }
    }

    /// `{"type": "auth", "token"}`: a valid access token of this user extends the socket's life
    /// to that token's; anything else closes it with 4001 at once.
    async fn renew(&mut self, token: &str) -> Result<(), End> {
        match authenticate_access(self.state, token).await {
            Ok((user, access)) if user.id == self.user.id => {
                self.user = user;
                self.expires = expiry(&access);
                self.send(r#"{"type":"auth.ok"}"#).await
            }
            Ok(_) | Err(Error::Unauthenticated(_)) => Err(End::SignedOut),
            Err(_) => Err(End::Failed),
        }
    }
}
