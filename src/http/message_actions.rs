//! What participants do to a posted message: edit it (`PATCH /api/messages/<id>/`), delete it
//! (`DELETE /api/messages/<id>/`), react to it (`PUT`/`DELETE
//! /api/messages/<id>/reactions/<emoji>/`). Each change reaches both participants' logs as
//! `message.updated` or `message.deleted`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use utoipa::ToSchema;

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, Deferred, FromJson, parse_id},
};
use crate::{
    AppState,
    domain::{Emoji, Fields, MessageText},
    error::Error,
    policy,
    store::{Message, ThreadMembers, User, messages::Edited, reactions::Reacted},
};

/// `{"text"}`: the new text (the rules of posting).
#[derive(Debug, ToSchema)]
pub struct EditRequest {
    #[schema(value_type = String)]
    pub text: MessageText,
}

impl FromJson for EditRequest {
    fn from_json(body: &serde_json::Value) -> Result<EditRequest, Error> {
        let mut fields = Fields::new(body);
        let text = fields
            .required_str("text")
            .and_then(|text| match MessageText::parse(text) {
                Ok(text) => Some(text),
                Err(problem) => {
                    fields.error("text", problem);
                    None
                }
            });
        fields.finish()?;
        let text = text.ok_or_else(|| Error::field("text", crate::domain::REQUIRED))?;
        Ok(EditRequest { text })
    }
}

/// A message and who takes part in its thread, or 404.
async fn message_and_members(state: &AppState, id: &str) -> ApiResult<(Message, ThreadMembers)> {
    let id = parse_id(id).ok_or(Error::NotFound)?;
    let message = state.store.message(id).await?.ok_or(Error::NotFound)?;
    let members = state
        .store
        .thread_members(message.thread)
        .await?
        .ok_or(Error::NotFound)?;
    Ok((message, members))
}

/// Replaces a message's text (its sender only); `edited` is set.
#[utoipa::path(patch, path = "/api/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = EditRequest,
    responses(
        (status = 200, body = Message),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 403, body = Detail, description = "Not the sender, or one blocks the other"),
        (status = 404, body = Detail),
    ))]
pub async fn edit(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Deferred<EditRequest>,
) -> ApiResult<Json<Message>> {
    let (message, members) = message_and_members(&state, &id).await?;
    policy::may_edit(&user, &members, message.sender)?;
    let request = body.parse()?;
    match state
        .store
        .edit_message(message.id, request.text.into_inner())
        .await?
    {
        Edited::Done(message) => Ok(Json(message)),
        Edited::Gone => Err(Error::NotFound.into()),
        Edited::Blocked => Err(policy::CANNOT_MESSAGE.into()),
    }
}

/// Deletes a message (its sender, or staff): it leaves every list, count and log.
#[utoipa::path(delete, path = "/api/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204),
        (status = 401, body = Detail),
        (status = 403, body = Detail, description = "The other participant"),
        (status = 404, body = Detail),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (message, members) = message_and_members(&state, &id).await?;
    policy::may_delete(&user, &members, message.sender)?;
    match state.store.delete_message(message.id).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(Error::NotFound.into()),
    }
}

/// Adds the requester's reaction (adding it twice changes nothing).
#[utoipa::path(put, path = "/api/messages/{id}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("emoji" = String, Path, description = "URL-encoded, 1 to 32 code points")),
    responses(
        (status = 200, body = Message),
        (status = 400, body = ValidationErrors, description = "A bad emoji, or a 21st one"),
        (status = 401, body = Detail),
        (status = 403, body = Detail, description = "One blocks the other"),
        (status = 404, body = Detail),
    ))]
pub async fn react(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, emoji)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    reaction(&state, &user, &id, &emoji, true).await
}

/// Takes the requester's reaction back (also when there was none).
#[utoipa::path(delete, path = "/api/messages/{id}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("emoji" = String, Path, description = "URL-encoded, 1 to 32 code points")),
    responses(
        (status = 200, body = Message),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn unreact(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, emoji)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    reaction(&state, &user, &id, &emoji, false).await
}

async fn reaction(
    state: &AppState,
    user: &User,
    id: &str,
    emoji: &str,
    on: bool,
) -> ApiResult<Json<Message>> {
    let (message, members) = message_and_members(state, id).await?;
    policy::may_react(user, &members)?;
    let emoji = Emoji::parse(emoji).map_err(|problem| Error::field("emoji", problem))?;
    if on
        && state
            .store
            .blocked_between(members.users[0], members.users[1])
            .await?
    {
        return Err(policy::CANNOT_MESSAGE.into());
    }
    match state
        .store
        .react(message.id, user.id, emoji.as_str(), on)
        .await?
    {
        Reacted::Done(message) => Ok(Json(message)),
        Reacted::NotFound | Reacted::NotParticipant => Err(Error::NotFound.into()),
        Reacted::TooMany => Err(Error::field(
            "emoji",
            format!(
                "A message has at most {} different reactions.",
                crate::store::reactions::MAX_REACTIONS
            ),
        )
        .into()),
    }
}
