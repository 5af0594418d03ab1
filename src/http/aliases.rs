//! The original's other spellings of three URLs (its README and its code disagreed), served
//! and described like the main ones: each handler here only hands over to the main one.

use axum::{Json, extract::State, response::Response};

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, Body, Deferred, Id, ListQuery},
    messages::{self, MarkRead, Marked, PostMessages, UnreadCount},
    page::{Page, PageParams},
};
use crate::{AppState, store::Message};

/// The thread's messages (the original code's spelling of `/thread/{id}/message`).
#[utoipa::path(get, path = "/chat/thread/{id}/message", tag = "messages",
    security(("bearer" = [])), params(("id" = i64, Path), PageParams, messages::Cursor),
    responses(
        (status = 200, body = Page<Message>),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn list_messages(
    state: State<AppState>,
    user: AuthUser,
    thread: Id,
    query: ListQuery,
) -> ApiResult<Response> {
    messages::list(state, user, thread, query).await
}

/// Posts a batch (the original code's spelling of `/thread/{id}/message`).
#[utoipa::path(post, path = "/chat/thread/{id}/message", tag = "messages",
    security(("bearer" = [])), params(("id" = i64, Path)), request_body = PostMessages,
    responses(
        (status = 201, body = Vec<Message>),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn post_messages(
    state: State<AppState>,
    user: AuthUser,
    thread: Id,
    body: Deferred<PostMessages>,
) -> ApiResult<Response> {
    messages::create(state, user, thread, body).await
}

/// Marks read (`PATCH` is accepted as well as `POST`).
#[utoipa::path(patch, path = "/message", tag = "messages", security(("bearer" = [])),
    request_body = MarkRead,
    responses(
        (status = 200, body = Marked),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn mark_read_patch(
    state: State<AppState>,
    user: AuthUser,
    body: Body<MarkRead>,
) -> ApiResult<Json<Marked>> {
    messages::mark_read(state, user, body).await
}

/// Marks read (the original code's spelling of `/message`).
#[utoipa::path(post, path = "/chat/messages", tag = "messages", security(("bearer" = [])),
    request_body = MarkRead,
    responses(
        (status = 200, body = Marked),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn mark_read_post(
    state: State<AppState>,
    user: AuthUser,
    body: Body<MarkRead>,
) -> ApiResult<Json<Marked>> {
    messages::mark_read(state, user, body).await
}

/// Marks read (the original code's spelling, with `PATCH`).
#[utoipa::path(patch, path = "/chat/messages", tag = "messages", security(("bearer" = [])),
    request_body = MarkRead,
    responses(
        (status = 200, body = Marked),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn mark_read_patch_chat(
    state: State<AppState>,
    user: AuthUser,
    body: Body<MarkRead>,
) -> ApiResult<Json<Marked>> {
    messages::mark_read(state, user, body).await
}

/// Unread count (the original code's spelling of `/user/{id}/message`).
#[utoipa::path(get, path = "/chat/user/{id}/message", tag = "messages",
    security(("bearer" = [])), params(("id" = i64, Path, description = "The user")),
    responses(
        (status = 200, body = UnreadCount),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn unread_count(
    state: State<AppState>,
    user: AuthUser,
    target: Id,
) -> ApiResult<Json<UnreadCount>> {
    messages::unread_count(state, user, target).await
}
