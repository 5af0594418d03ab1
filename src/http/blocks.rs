//! `/api/me/blocks/`: the users the signed-in user blocks. While either of two users blocks the
//! other, neither can start their thread or post in it, and they share no typing or presence;
//! the history stays readable, and the blocked user is not told.

use axum::{Json, extract::State, http::StatusCode};

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, Id, ListQuery},
    page::{Page, PageParams},
};
use crate::{AppState, error::Error, store::Participant};

/// The user exists and is not the requester.
async fn other_user(state: &AppState, requester: i64, id: i64) -> ApiResult<()> {
    if id == requester {
        return Err(Error::field("non_field_errors", "You cannot block yourself.").into());
    }
    state.store.user(id).await?.ok_or(Error::NotFound)?;
    Ok(())
}

/// Blocks a user (again: nothing changes).
#[utoipa::path(put, path = "/api/me/blocks/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user to block")),
    responses(
        (status = 204),
        (status = 400, body = ValidationErrors, description = "Oneself"),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn block(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    other_user(&state, user.id, id).await?;
    state.store.block(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops blocking a user (also when they were not blocked).
#[utoipa::path(delete, path = "/api/me/blocks/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn unblock(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    other_user(&state, user.id, id).await?;
    state.store.unblock(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The users the requester blocks, in the order blocked.
#[utoipa::path(get, path = "/api/me/blocks", tag = "users", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = Page<Participant>), (status = 401, body = Detail)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    query: ListQuery,
) -> ApiResult<Json<Page<Participant>>> {
    let page = state
        .store
        .blocked_by(user.id, query.limit, query.offset)
        .await?;
    Ok(Json(Page::by_offset(page, &query)))
}
