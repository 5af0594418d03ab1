//! Messages: the list across all threads (text search, read/unread filter), and deleting one.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;

use super::{
    page::{AdminError, AdminResult, Pager, Params, parse_id, render, safe_next, see_other},
    session::{Staff, StaffForm},
};
use crate::{
    AppState,
    store::admin::{MessageFilter, MessageSummary},
};

const PER_PAGE: i64 = 25;

/// `GET /admin/messages/?q=&read=read|unread&page=`: newest first.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> AdminResult<Response> {
    let params = Params::parse(query.as_deref());
    let pager = Pager::new(&params, PER_PAGE);
    let read = params.get("read");
    let filter = MessageFilter {
        search: params.get("q").to_owned(),
        is_read: match read {
            "read" => Some(true),
            "unread" => Some(false),
            _ => None,
        },
    };
    let page = state
        .store
        .admin_messages(filter, pager.per_page, pager.offset())
        .await?;
    let filters = [("q", params.get("q")), ("read", read)];
    // Where a deletion started from this page comes back to.
    let here = match query.as_deref() {
        Some(q) if !q.is_empty() => format!("/admin/messages/?{q}"),
        _ => "/admin/messages/".to_owned(),
    };
    Ok(render(
        StatusCode::OK,
        "messages/list.html",
        context! {
            messages => page.items,
            pager => pager.context(page.count, "/admin/messages/", &filters),
            q => params.get("q"),
            read,
            here,
            ..staff.layout("messages")
        },
    ))
}

async fn message(state: &AppState, id: &str) -> AdminResult<MessageSummary> {
    let id = parse_id(id)?;
    state
        .store
        .admin_message(id)
        .await?
        .ok_or(AdminError::NotFound)
}

/// `GET /admin/messages/<id>/delete/?next=`: the message, and a button to delete it.
pub async fn confirm_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> AdminResult<Response> {
    let summary = message(&state, &id).await?;
    let params = Params::parse(query.as_deref());
    let next = safe_next(params.get("next"), "/admin/messages/");
    let id = summary.message.id;
    Ok(render(
        StatusCode::OK,
        "confirm_delete.html",
        context! {
            title => "Delete this message?",
            what => format!("message #{id}"),
            quote => summary,
            consequences => vec![
                "It disappears from the thread for both participants; the thread’s message \
                 count and, if it was unread, the recipient’s unread count go down by one. This \
                 cannot be undone.".to_owned(),
            ],
            action => format!("/admin/messages/{id}/delete/"),
            cancel => next,
            next,
            confirm_label => "Yes, delete the message",
            ..staff.layout("messages")
        },
    ))
}

/// `POST /admin/messages/<id>/delete/`: back to where the deletion started (`next`).
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> AdminResult<Response> {
    let id = parse_id(&id)?;
    let Some(deleted) = state.store.delete_message(id).await? else {
        return Err(AdminError::NotFound);
    };
    staff
        .flash(
            &state,
            format!(
                "Message #{} was deleted from thread #{}.",
                deleted.id, deleted.thread
            ),
        )
        .await?;
    Ok(see_other(safe_next(form.get("next"), "/admin/messages/")))
}
