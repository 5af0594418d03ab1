//! Threads: a conversation of exactly two different users.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    AppState,
    extract::{AuthUser, Id, JsonBody, ListQuery},
};
use crate::{
    domain::Fields,
    error::{ApiError, ApiResult},
    policy,
};

/// `POST /chat/thread/` `{"user1", "user2"}` (usernames) → 201 new, or 200 with the pair's
/// existing thread.
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let mut fields = Fields::new(&body);
    let names = [fields.required_str("user1"), fields.required_str("user2")];
    let mut found = [None, None];
    for (i, field) in ["user1", "user2"].into_iter().enumerate() {
        let Some(name) = names[i] else { continue };
        found[i] = state.store.user_by_username(name).await?;
        if found[i].is_none() {
            fields.error(field, format!("User \"{name}\" does not exist."));
        }
    }
    if let [Some(a), Some(b)] = &found
        && a.id == b.id
    {
        fields.error("non_field_errors", "A thread needs two different users.");
    }
    fields.finish()?;
    let [Some(a), Some(b)] = found else {
        return Err(ApiError::BadRequest("Both users are required.".into()));
    };
    policy::may_create_thread(&user, &a, &b)?;
    let (thread, created) = state.store.create_thread(a.id, b.id, user.id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(thread)).into_response())
}

/// `GET /chat/thread/<id>/`.
pub async fn detail(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> ApiResult<Response> {
    let thread = state
        .store
        .thread_view(id, user.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    policy::may_see(&user, &thread.members())?;
    Ok(Json(thread).into_response())
}

/// `DELETE /chat/thread/<id>/` → 204; its messages go too.
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    policy::visible_thread(&state.store, &user, id).await?;
    if state.store.delete_thread(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /chat/user/<id>/thread/`: the user's threads, most recent activity first, each with
/// that user's unread count.
pub async fn list_for_user(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(target): Id,
    query: ListQuery,
) -> ApiResult<Json<Value>> {
    policy::user_scope(&state.store, &user, target).await?;
    let page = state
        .store
        .threads_of(target, query.limit, query.offset)
        .await?;
    let (next, previous) = query.offset_links(page.count);
    Ok(Json(json!({
        "count": page.count, "next": next, "previous": previous, "results": page.items,
    })))
}
