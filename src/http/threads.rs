//! Threads: a conversation of exactly two different users.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use utoipa::ToSchema;

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, Body, FromJson, Id, ListQuery},
    page::{JsonPage, Page, PageParams, json_response},
};
use crate::{
    AppState,
    domain::{FieldErrors, Fields},
    error::Error,
    policy,
    store::{Pair, ThreadView},
};

/// `{"user1": "<username>", "user2": "<username>"}`.
#[derive(Debug, ToSchema)]
pub struct NewThread {
    pub user1: String,
    pub user2: String,
}

impl FromJson for NewThread {
    fn from_json(body: &serde_json::Value) -> Result<NewThread, Error> {
        let mut fields = Fields::new(body);
        let user1 = fields.required_str("user1").unwrap_or_default().to_owned();
        let user2 = fields.required_str("user2").unwrap_or_default().to_owned();
        fields.finish()?;
        Ok(NewThread { user1, user2 })
    }
}

/// Creates the thread of two users (201), or returns their existing one (200).
#[utoipa::path(post, path = "/chat/thread", tag = "threads", security(("bearer" = [])),
    request_body = NewThread,
    responses(
        (status = 201, body = ThreadView, description = "Created"),
        (status = 200, body = ThreadView, description = "The pair's existing thread"),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 429, body = Detail, description = "Over --thread-rate; see Retry-After"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Body(request): Body<NewThread>,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::default();
    let Pair {
        users: found,
        thread: existing,
    } = state
        .store
        .pair_by_usernames([request.user1.clone(), request.user2.clone()], user.id)
        .await?;
    for (found, (field, name)) in found
        .iter()
        .zip([("user1", &request.user1), ("user2", &request.user2)])
    {
        if found.is_none() {
            errors.add(field, format!("User \"{name}\" does not exist."));
        }
    }
    if let [Some(a), Some(b)] = &found
        && a.id == b.id
    {
        errors.add("non_field_errors", "A thread needs two different users.");
    }
    errors.into_result()?;
    let [Some(a), Some(b)] = found else {
        return Err(Error::Malformed("Both users are required.".into()).into());
    };
    policy::may_create_thread(&user, &a, &b)?;
    // Only a thread that does not exist yet counts against --thread-rate.
    if let Some(existing) = existing {
        return Ok(json_response(StatusCode::OK, existing.json.to_vec()?));
    }
    if state.store.blocked_between(a.id, b.id).await? {
        return Err(policy::CANNOT_MESSAGE.into());
    }
    state.limits.new_thread(user.id)?;
    let (thread, created) = state.store.create_thread(a.id, b.id, user.id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(thread)).into_response())
}

/// A thread (participants and staff; anyone else 404).
#[utoipa::path(get, path = "/chat/thread/{id}", tag = "threads", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = ThreadView),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> ApiResult<Json<ThreadView>> {
    let thread = state
        .store
        .thread_view(id, user.id)
        .await?
        .ok_or(Error::NotFound)?;
    policy::may_see(&user, &thread.members())?;
    Ok(Json(thread))
}

/// Deletes a thread and its messages → 204.
#[utoipa::path(delete, path = "/chat/thread/{id}", tag = "threads", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    policy::visible_thread(&state.store, &user, id).await?;
    if state.store.delete_thread(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound.into())
    }
}

/// A user's threads, most recent activity first, each with that user's unread count (that
/// user or staff).
#[utoipa::path(get, path = "/chat/user/{id}/thread", tag = "threads", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user"), PageParams),
    responses(
        (status = 200, body = Page<ThreadView>),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn list_for_user(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(target): Id,
    query: ListQuery,
) -> ApiResult<Response> {
    policy::user_scope(&state.store, &user, target).await?;
    let list = state
        .store
        .thread_list(target, query.limit, query.offset)
        .await?;
    JsonPage::by_offset(list.count, &list.results, &query).into_response()
}
