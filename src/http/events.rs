//! The event log over plain HTTP: `GET /api/events/` (long poll), and what it shares with the
//! WebSocket ([`super::socket`]): who is connecting and from which `seq`. See docs/REALTIME.md.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::State,
    http::{header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json, value::RawValue};
use tokio::time::Instant;

use super::{
    error::{Detail, ValidationErrors},
    extract::{ListQuery, authenticate, authenticate_access, bearer_token, not_a_count},
};
use crate::{
    AppState,
    auth::{jwt::TokenType, verified::Access},
    domain::{FieldErrors, NOT_AN_INTEGER},
    error::{AuthProblem, Error},
    realtime::{Wake, frame, needs_resync},
    store::User,
};

const NOT_AUTHENTICATED: Error = Error::Unauthenticated(AuthProblem::NotProvided);

/// Most events one long-poll answer carries.
const POLL_BATCH: i64 = 1_000;
const POLL_DEFAULT_TIMEOUT: u64 = 30;
const POLL_MAX_TIMEOUT: u64 = 60;

/// `since`, validated against the user's log: `None` means "from now".
pub(super) fn parse_since(query: &ListQuery, head: i64) -> Result<Option<i64>, Error> {
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
        _ => errors.add("since", not_a_count(raw)),
    }
    errors.into_result().map(|()| None)
}

/// Who is connecting: a token from `?token=` or the `Authorization` header.
pub(super) async fn connecting_user(
    state: &AppState,
    parts: &Parts,
    query: &ListQuery,
) -> Result<(Arc<User>, Access), Error> {
    let token = match query.get("token") {
        Some(token) => token,
        None => parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| bearer_token(h.as_bytes()))
            .ok_or(NOT_AUTHENTICATED)?,
    };
    authenticate_access(state, token).await
}

/// `?since=&token=` of the real-time endpoints.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventParams {
    /// The last seq the client processed; events after it are sent first. Without it, only
    /// events from now on.
    #[param(minimum = 0)]
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
                Wake::Events | Wake::Frame(_) => {}
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
