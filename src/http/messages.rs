//! Messages: list and post in batches, mark read, unread counts.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    AppState,
    extract::{AuthUser, Id, JsonBody, ListQuery, parse_id},
};
use crate::{
    domain::{
        CLIENT_ID_MAX, FieldErrors, Fields, IDS_PER_MARK, MESSAGES_PER_BATCH, NOT_AN_INTEGER,
        message_text_problem, type_name,
    },
    error::{ApiError, ApiResult},
    policy,
    store::{MessageWindow, NewMessage},
};

/// `GET /thread/<id>/message/`: oldest first; `?limit=&offset=`, or keyset `?after=<id>` /
/// `?before=<id>`.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(thread): Id,
    query: ListQuery,
) -> ApiResult<Json<Value>> {
    let mut errors = FieldErrors::default();
    let mut cursor = |name: &str| {
        let raw = query.get(name)?;
        let id = parse_id(raw).or_else(|| (raw == "0").then_some(0));
        if id.is_none() {
            errors.add(name, NOT_AN_INTEGER);
        }
        id
    };
    let (after, before) = (cursor("after"), cursor("before"));
    errors.into_result()?;
    policy::visible_thread(&state.store, &user, thread).await?;

    let limit = query.limit;
    let window = match (after, before) {
        (Some(after), Some(before)) => MessageWindow::Between {
            after,
            before,
            limit,
        },
        (Some(id), None) => MessageWindow::After { id, limit },
        (None, Some(id)) => MessageWindow::Before { id, limit },
        (None, None) => MessageWindow::Offset {
            limit,
            offset: query.offset,
        },
    };
    let (page, total) = state.store.messages(thread, window).await?;
    let first = page.items.first().map(|m| m.id);
    let last = page.items.last().map(|m| m.id);
    let keyset = |after: Option<i64>, before: Option<i64>| {
        query.link(&[
            ("limit", Some(limit.to_string())),
            ("offset", None),
            ("after", after.map(|id| id.to_string())),
            ("before", before.map(|id| id.to_string())),
        ])
    };
    let shown = page.items.len() as i64;
    let (next, previous) = match window {
        MessageWindow::Offset { .. } => query.offset_links(page.count),
        MessageWindow::After { .. } => (
            last.filter(|_| page.count > shown)
                .map(|id| keyset(Some(id), None)),
            first
                .filter(|_| total > page.count)
                .map(|id| keyset(None, Some(id))),
        ),
        MessageWindow::Before { .. } => (
            last.filter(|_| total > page.count)
                .map(|id| keyset(Some(id), None)),
            first
                .filter(|_| page.count > shown)
                .map(|id| keyset(None, Some(id))),
        ),
        // The rest of the gap, if this page did not fill it.
        MessageWindow::Between { before, .. } => (
            last.filter(|_| page.count > shown)
                .map(|id| keyset(Some(id), Some(before))),
            None,
        ),
    };
    Ok(Json(json!({
        "count": page.count, "next": next, "previous": previous, "results": page.items,
    })))
}

/// `POST /thread/<id>/message/` `{"messages": [{"sender"?, "text", "client_id"?}, ...]}` →
/// 201 with the stored messages in the order sent; all or nothing.
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(thread): Id,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let members = policy::visible_thread(&state.store, &user, thread).await?;
    let (batch, senders) = parse_batch(&body)?;
    if senders.iter().any(|sender| *sender != user.id) {
        return Err(ApiError::Forbidden(
            "You can only post messages as yourself.",
        ));
    }
    policy::may_post(&user, &members)?;
    let stored = state
        .store
        .post_messages(thread, user.id, batch)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// Validates a batch; returns its messages and the senders that were named.
fn parse_batch(body: &Value) -> ApiResult<(Vec<NewMessage>, Vec<i64>)> {
    let mut fields = Fields::new(body);
    let mut batch = Vec::new();
    let mut senders = Vec::new();
    match fields.raw("messages") {
        None if body.is_object() => fields.error("messages", crate::domain::REQUIRED),
        None => {}
        Some(Value::Array(items)) if items.is_empty() => {
            fields.error("messages", "This list may not be empty.")
        }
        Some(Value::Array(items)) if items.len() > MESSAGES_PER_BATCH => fields.error(
            "messages",
            format!("Ensure this field has no more than {MESSAGES_PER_BATCH} elements."),
        ),
        Some(Value::Array(items)) => {
            let mut item_errors = Vec::with_capacity(items.len());
            for item in items {
                let mut item_fields = Fields::new(item);
                let sender = item_fields.optional_id("sender");
                let text = item_fields.required_str("text");
                if let Some(problem) = text.and_then(message_text_problem) {
                    item_fields.error("text", problem);
                }
                let client_id = item_fields.optional_str("client_id");
                match client_id {
                    Some("") => item_fields.error("client_id", "This field may not be blank."),
                    Some(c) if c.chars().count() > CLIENT_ID_MAX => item_fields.error(
                        "client_id",
                        format!("Ensure this field has no more than {CLIENT_ID_MAX} characters."),
                    ),
                    _ => {}
                }
                match item_fields.finish() {
                    Ok(()) => {
                        item_errors.push(Value::Object(Map::new()));
                        senders.extend(sender);
                        batch.push(NewMessage {
                            text: text.unwrap_or_default().to_owned(),
                            client_id: client_id.map(str::to_owned),
                        });
                    }
                    Err(ApiError::Validation(errors)) => item_errors.push(errors),
                    Err(other) => return Err(other),
                }
            }
            if batch.len() != items.len() {
                fields.errors.set("messages", Value::Array(item_errors));
            }
        }
        Some(other) => fields.error(
            "messages",
            format!(
                "Expected a list of items but got type \"{}\".",
                type_name(other)
            ),
        ),
    }
    fields.finish()?;
    Ok((batch, senders))
}

/// `POST`/`PATCH /message/` `{"messages_ids": [...]}` → `{"marked": N}`.
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let mut fields = Fields::new(&body);
    let mut ids = Vec::new();
    match fields.raw("messages_ids") {
        None if body.is_object() => fields.error("messages_ids", crate::domain::REQUIRED),
        None => {}
        Some(Value::Array(items)) if items.is_empty() => {
            fields.error("messages_ids", "This list may not be empty.")
        }
        Some(Value::Array(items)) if items.len() > IDS_PER_MARK => fields.error(
            "messages_ids",
            format!("Ensure this field has no more than {IDS_PER_MARK} elements."),
        ),
        Some(Value::Array(items)) => {
            let mut bad = Map::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_i64() {
                    Some(id) => ids.push(id),
                    None => {
                        bad.insert(i.to_string(), json!([NOT_AN_INTEGER]));
                    }
                }
            }
            if !bad.is_empty() {
                fields.errors.set("messages_ids", Value::Object(bad));
            }
        }
        Some(other) => fields.error(
            "messages_ids",
            format!(
                "Expected a list of items but got type \"{}\".",
                type_name(other)
            ),
        ),
    }
    fields.finish()?;
    ids.sort_unstable();
    ids.dedup();
    let marked = state.store.mark_read(user.id, ids).await?;
    Ok(Json(json!({ "marked": marked })))
}

/// `GET /user/<id>/message/` → `{"unread_count": N}`.
pub async fn unread_count(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(target): Id,
) -> ApiResult<Json<Value>> {
    policy::user_scope(&state.store, &user, target).await?;
    let count = state.store.unread_count(target).await?;
    Ok(Json(json!({ "unread_count": count })))
}
