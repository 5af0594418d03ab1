//! Messages: list and post in batches, mark read, unread counts.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, Body, Deferred, FromJson, Id, ListQuery},
    page::{JsonPage, Page, PageParams},
};
use crate::{
    AppState,
    domain::{
        CLIENT_ID_MAX, FieldErrors, Fields, IDS_PER_MARK, MESSAGES_PER_BATCH, MessageText,
        NOT_AN_INTEGER, REQUIRED, json_integer, type_name,
    },
    error::Error,
    policy,
    store::{
        Message, MessageWindow, NewMessage,
        files::{FILES_PER_MESSAGE, FileJson},
        messages::Posted,
    },
};

/// One message of a batch.
#[derive(Debug, ToSchema)]
pub struct NewMessageItem {
    /// When given, it must be the requester.
    pub sender: Option<i64>,
    #[schema(value_type = String)]
    pub text: Option<MessageText>,
    /// The sender's own id for the message (≤ 64 characters): a retry with the same one returns
    /// the stored message instead of a duplicate.
    pub client_id: Option<String>,
    /// A message of the same thread that this one answers.
    pub reply_to: Option<i64>,
    /// Up to 10 of the requester's own uploads (then `text` may be empty).
    pub files: Vec<i64>,
}

/// `{"messages": [...]}`: 1 to 100 messages, stored all or none.
#[derive(Debug, ToSchema)]
pub struct PostMessages {
    #[schema(min_items = 1, max_items = 100)]
    pub messages: Vec<NewMessageItem>,
}

impl FromJson for PostMessages {
    fn from_json(body: &Value) -> Result<PostMessages, Error> {
        let mut fields = Fields::new(body);
        let mut messages = Vec::new();
        match fields.raw("messages") {
            None if body.is_object() => fields.error("messages", REQUIRED),
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
                    match item_from_json(item) {
                        Ok(message) => {
                            item_errors.push(Value::Object(Map::new()));
                            messages.push(message);
                        }
                        Err(Error::Invalid(errors)) => item_errors.push(errors),
                        Err(other) => return Err(other),
                    }
                }
                if messages.len() != items.len() {
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
        Ok(PostMessages { messages })
    }
}

fn item_from_json(item: &Value) -> Result<NewMessageItem, Error> {
    let mut fields = Fields::new(item);
    let sender = fields.optional_id("sender");
    let files = match fields.raw("files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) if ids.len() > FILES_PER_MESSAGE => {
            fields.error(
                "files",
                format!("Ensure this field has no more than {FILES_PER_MESSAGE} elements."),
            );
            Vec::new()
        }
        Some(Value::Array(ids)) => {
            match ids.iter().map(json_integer).collect::<Option<Vec<i64>>>() {
                Some(ids) => ids,
                None => {
                    fields.error("files", NOT_AN_INTEGER);
                    Vec::new()
                }
            }
        }
        Some(other) => {
            fields.error(
                "files",
                format!(
                    "Expected a list of items but got type \"{}\".",
                    type_name(other)
                ),
            );
            Vec::new()
        }
    };
    // With files, the text may be empty or left out.
    let text = if files.is_empty() {
        fields.required_str("text")
    } else {
        fields.optional_str("text")
    };
    let text = match text {
        Some(text) if !files.is_empty() && text.trim().is_empty() => None,
        Some(text) => match MessageText::parse(text) {
            Ok(text) => Some(text),
            Err(problem) => {
                fields.error("text", problem);
                None
            }
        },
        None => None,
    };
    let client_id = fields.optional_str("client_id");
    match client_id {
        Some("") => fields.error("client_id", "This field may not be blank."),
        Some(c) if c.chars().count() > CLIENT_ID_MAX => fields.error(
            "client_id",
            format!("Ensure this field has no more than {CLIENT_ID_MAX} characters."),
        ),
        _ => {}
    }
    let client_id = client_id.map(str::to_owned);
    let reply_to = fields.optional_id("reply_to");
    fields.finish()?;
    Ok(NewMessageItem {
        sender,
        text,
        client_id,
        reply_to,
        files,
    })
}

/// `{"messages_ids": [1, 2, 3]}`: 1 to 1,000 ids.
#[derive(Debug, ToSchema)]
pub struct MarkRead {
    #[schema(min_items = 1, max_items = 1000)]
    pub messages_ids: Vec<i64>,
}

impl FromJson for MarkRead {
    fn from_json(body: &Value) -> Result<MarkRead, Error> {
        let mut fields = Fields::new(body);
        let mut ids = Vec::new();
        match fields.raw("messages_ids") {
            None if body.is_object() => fields.error("messages_ids", REQUIRED),
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
                    match json_integer(item) {
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
        Ok(MarkRead { messages_ids: ids })
    }
}

/// `{"marked": N}`: how many were newly marked read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Marked {
    pub marked: i64,
}

/// `{"unread_count": N}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread_count: i64,
}

/// Keyset paging of a thread's messages.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Cursor {
    /// The first `limit` messages after this id (with `before`: strictly between the two).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// The last `limit` messages before this id.
    #[param(minimum = 0)]
    before: Option<i64>,
}

/// The thread's messages, oldest first (participants and staff; anyone else 404).
#[utoipa::path(get, path = "/thread/{id}/message", tag = "messages",
    security(("bearer" = [])), params(("id" = i64, Path), PageParams, Cursor),
    responses(
        (status = 200, body = Page<Message>),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(thread): Id,
    query: ListQuery,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::default();
    let (after, before) = (
        query.id("after", &mut errors),
        query.id("before", &mut errors),
    );
    errors.into_result()?;

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
    let page = state
        .store
        .thread_messages(thread, window)
        .await?
        .ok_or(Error::NotFound)?;
    policy::may_see(&user, &page.members)?;
    let (first, last, total) = (page.first, page.last, page.total);
    let keyset = |after: Option<i64>, before: Option<i64>| {
        query.link(&[
            ("limit", Some(limit.to_string())),
            ("offset", None),
            ("after", after.map(|id| id.to_string())),
            ("before", before.map(|id| id.to_string())),
        ])
    };
    let shown = page.shown;
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
    JsonPage::new(page.count, (next, previous), &page.results).into_response()
}

/// Posts a batch → 201 with the stored messages in the order sent; all or nothing.
#[utoipa::path(post, path = "/thread/{id}/message", tag = "messages",
    security(("bearer" = [])), params(("id" = i64, Path)), request_body = PostMessages,
    responses(
        (status = 201, body = Vec<Message>),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
        (status = 429, body = Detail, description = "Over --post-rate; see Retry-After"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(thread): Id,
    body: Deferred<PostMessages>,
) -> ApiResult<Response> {
    let members = policy::visible_thread(&state.store, &user, thread).await?;
    let batch = body.parse()?;
    if batch
        .messages
        .iter()
        .any(|item| item.sender.is_some_and(|sender| sender != user.id))
    {
        return Err(Error::Forbidden("You can only post messages as yourself.").into());
    }
    policy::may_post(&user, &members)?;
    check_replies(&state, thread, &batch.messages).await?;
    let mut files = attachments(&state, user.id, &batch.messages).await?;
    state.limits.post(user.id, batch.messages.len())?;
    let batch = batch
        .messages
        .into_iter()
        .zip(files.iter_mut())
        .map(|(item, files)| NewMessage {
            text: item.text.map(MessageText::into_inner).unwrap_or_default(),
            client_id: item.client_id,
            reply_to: item.reply_to,
            files: std::mem::take(files),
        })
        .collect();
    match state.store.post_messages(thread, user.id, batch).await? {
        Posted::Stored(stored) => Ok((StatusCode::CREATED, Json(stored)).into_response()),
        Posted::NoThread => Err(Error::NotFound.into()),
        Posted::Blocked => Err(policy::CANNOT_MESSAGE.into()),
    }
}

/// Each item's files, when every one is a complete upload of the requester's; else a 400 on
/// the items at fault.
async fn attachments(
    state: &AppState,
    user: i64,
    items: &[NewMessageItem],
) -> ApiResult<Vec<Vec<FileJson>>> {
    let wanted: Vec<i64> = items.iter().flat_map(|item| item.files.clone()).collect();
    if wanted.is_empty() {
        return Ok(items.iter().map(|_| Vec::new()).collect());
    }
    let owned = state.store.owned_files(user, &wanted).await?;
    let base = super::files::link_base(state);
    let mut errors = Vec::new();
    let mut found = Vec::new();
    for item in items {
        let mut files = Vec::new();
        let mut error = json!({});
        for id in &item.files {
            match owned.iter().find(|file| file.id == *id) {
                Some(file) => files.push(file.json(base)),
                None => {
                    error =
                        json!({"files": [format!("Invalid pk \"{id}\" - object does not exist.")]})
                }
            }
        }
        errors.push(error);
        found.push(files);
    }
    if errors.iter().any(|e| e != &json!({})) {
        return Err(Error::Invalid(json!({ "messages": errors })).into());
    }
    Ok(found)
}

/// Every `reply_to` names a message of this thread, else a 400 on that item.
async fn check_replies(state: &AppState, thread: i64, items: &[NewMessageItem]) -> ApiResult<()> {
    let wanted: Vec<i64> = items.iter().filter_map(|item| item.reply_to).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found = state.store.messages_of_thread(thread, &wanted).await?;
    let errors: Vec<Value> = items
        .iter()
        .map(|item| match item.reply_to {
            Some(id) if !found.contains(&id) => {
                json!({"reply_to": [format!("Invalid pk \"{id}\" - object does not exist.")]})
            }
            _ => json!({}),
        })
        .collect();
    if errors.iter().any(|e| e != &json!({})) {
        return Err(Error::Invalid(json!({ "messages": errors })).into());
    }
    Ok(())
}

/// Marks read the listed messages the requester received; others are ignored.
#[utoipa::path(post, path = "/message", tag = "messages", security(("bearer" = [])),
    request_body = MarkRead,
    responses(
        (status = 200, body = Marked),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Body(request): Body<MarkRead>,
) -> ApiResult<Json<Marked>> {
    let marked = state.store.mark_read(user.id, request.messages_ids).await?;
    Ok(Json(Marked { marked }))
}

/// Messages sent to the user and not yet read (that user or staff).
#[utoipa::path(get, path = "/user/{id}/message", tag = "messages", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user")),
    responses(
        (status = 200, body = UnreadCount),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn unread_count(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(target): Id,
) -> ApiResult<Json<UnreadCount>> {
    policy::user_scope(&state.store, &user, target).await?;
    let unread_count = state.store.unread_count(target).await?;
    Ok(Json(UnreadCount { unread_count }))
}
