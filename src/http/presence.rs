//! `GET /api/presence/?users=1,2,3`: whether those of the listed users who share a thread with
//! the requester are online, and when they were last seen. Others are left out, leaking
//! nothing (nor are users who block the requester, or whom the requester blocks).

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, ListQuery, parse_id},
};
use crate::{AppState, clock::Timestamp, error::Error};

/// Most users one request asks about.
pub const MAX_USERS: usize = 200;

/// One user's presence.
#[derive(Debug, Serialize, ToSchema)]
pub struct Presence {
    pub online: bool,
    /// When their last socket closed (null: never seen, or online since before it was kept).
    pub last_seen: Option<Timestamp>,
}

/// `?users=`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PresenceParams {
    /// User ids, comma-separated (at most 200).
    #[param(pattern = r"^[1-9][0-9]*(,[1-9][0-9]*)*$")]
    users: String,
}

/// The presence of the listed conversation partners, by user id.
#[utoipa::path(get, path = "/api/presence", tag = "real time", security(("bearer" = [])),
    params(PresenceParams),
    responses(
        (status = 200, body = BTreeMap<String, Presence>),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn presence(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    query: ListQuery,
) -> ApiResult<Json<BTreeMap<String, Presence>>> {
    let raw = query
        .get("users")
        .ok_or_else(|| Error::field("users", crate::domain::REQUIRED))?;
    let ids: Option<Vec<i64>> = raw.split(',').map(|id| parse_id(id.trim())).collect();
    let ids = ids.ok_or_else(|| Error::field("users", "Enter user ids separated by commas."))?;
    if ids.len() > MAX_USERS {
        return Err(Error::field(
            "users",
            format!("Ask about at most {MAX_USERS} users at a time."),
        )
        .into());
    }
    let states = state.presence.of(&state.store, user.id, &ids).await?;
    Ok(Json(
        states
            .into_iter()
            .map(|s| {
                let presence = Presence {
                    online: s.online,
                    last_seen: s.last_seen,
                };
                (s.user.to_string(), presence)
            })
            .collect(),
    ))
}
