//! `GET /api/search/?q=<words>[&thread=<id>]`: the requester's own messages (staff too) that
//! contain every word, newest first, paginated. See `store::search` for what matches.

use axum::{Json, extract::State};
use utoipa::IntoParams;

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, ListQuery},
    page::{Page, PageParams},
};
use crate::{
    AppState,
    domain::{FieldErrors, REQUIRED},
    store::{Message, search::words},
};

/// `?q=&thread=`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SearchParams {
    /// Words that must all appear (case-insensitive); the last one also matches as a prefix.
    #[param(min_length = 1)]
    q: String,
    /// Only this thread.
    thread: Option<i64>,
}

/// Searches the requester's messages.
#[utoipa::path(get, path = "/api/search", tag = "messages", security(("bearer" = [])),
    params(SearchParams, PageParams),
    responses(
        (status = 200, body = Page<Message>),
        (status = 400, body = ValidationErrors, description = "A blank or missing q"),
        (status = 401, body = Detail),
    ))]
pub async fn search(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    query: ListQuery,
) -> ApiResult<Json<Page<Message>>> {
    let mut errors = FieldErrors::default();
    let thread = query.id("thread", &mut errors);
    let wanted = match query.get("q") {
        None => {
            errors.add("q", REQUIRED);
            Vec::new()
        }
        Some(q) => {
            let wanted = words(q);
            if wanted.is_empty() {
                errors.add("q", "Enter at least one word to search for.");
            }
            wanted
        }
    };
    errors.into_result()?;
    let page = state
        .store
        .search_messages(user.id, wanted, thread, query.limit, query.offset)
        .await?;
    Ok(Json(Page::by_offset(page, &query)))
}
