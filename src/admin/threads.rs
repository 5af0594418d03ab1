//! Threads: the list (participants, message count, last activity; search by username), one
//! thread with its messages, and deleting a thread.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde_json::json;

use super::{
    page::{AdminError, AdminResult, Pager, Params, parse_id, render, see_other},
    session::{Staff, StaffForm},
};
use crate::{
    AppState,
    store::{MessageWindow, admin::ThreadSummary},
};

const PER_PAGE: i64 = 25;
const MESSAGES_PER_PAGE: i64 = 50;

/// `GET /admin/threads/?q=&page=`: most recent activity first.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> AdminResult<Response> {
    let params = Params::parse(query.as_deref());
    let pager = Pager::new(&params, PER_PAGE);
    let search = params.get("q");
    let page = state
        .store
        .admin_threads(search, pager.per_page, pager.offset())
        .await?;
    Ok(render(
        StatusCode::OK,
        "threads/list.html",
        context! {
            threads => page.items,
            pager => pager.context(page.count, "/admin/threads/", &[("q", search)]),
            q => search,
            ..staff.layout("threads")
        },
    ))
}

async fn thread(state: &AppState, id: &str) -> AdminResult<ThreadSummary> {
    let id = parse_id(id)?;
    state
        .store
        .admin_thread(id)
        .await?
        .ok_or(AdminError::NotFound)
}

/// `GET /admin/threads/<id>/?page=`: the thread's messages, oldest first.
pub async fn detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> AdminResult<Response> {
    let thread = thread(&state, &id).await?;
    let params = Params::parse(query.as_deref());
    let pager = Pager::new(&params, MESSAGES_PER_PAGE);
    let (page, _) = state
        .store
        .messages(
            thread.id,
            MessageWindow::Offset {
                limit: pager.per_page,
                offset: pager.offset(),
            },
        )
        .await?;
    let username = |id: i64| {
        thread
            .participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.username.clone())
            .unwrap_or_default()
    };
    let messages: Vec<_> = page
        .items
        .iter()
        .map(|m| json!({"message": m, "sender": username(m.sender)}))
        .collect();
    let path = format!("/admin/threads/{}/", thread.id);
    let here = match params.page() {
        1 => path.clone(),
        n => format!("{path}?page={n}"),
    };
    Ok(render(
        StatusCode::OK,
        "threads/detail.html",
        context! {
            pager => pager.context(page.count, &path, &[]),
            thread,
            messages,
            here,
            ..staff.layout("threads")
        },
    ))
}

/// `GET /admin/threads/<id>/delete/`
pub async fn confirm_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> AdminResult<Response> {
    let thread = thread(&state, &id).await?;
    let [a, b] = &thread.participants;
    let count = thread.message_count;
    Ok(render(
        StatusCode::OK,
        "confirm_delete.html",
        context! {
            title => format!("Delete the thread of {} and {}?", a.username, b.username),
            what => format!("thread #{}", thread.id),
            consequences => vec![
                format!(
                    "Its {count} message{} will be deleted too.",
                    if count == 1 { "" } else { "s" }
                ),
                "Both participants see the thread disappear. This cannot be undone.".to_owned(),
            ],
            action => format!("/admin/threads/{}/delete/", thread.id),
            cancel => format!("/admin/threads/{}/", thread.id),
            confirm_label => "Yes, delete the thread",
            ..staff.layout("threads")
        },
    ))
}

/// `POST /admin/threads/<id>/delete/`: the same operation as `DELETE /chat/thread/<id>/`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    StaffForm { staff, .. }: StaffForm,
) -> AdminResult<Response> {
    let thread = thread(&state, &id).await?;
    if !state.store.delete_thread(thread.id).await? {
        return Err(AdminError::NotFound);
    }
    let [a, b] = &thread.participants;
    staff
        .flash(
            &state,
            format!(
                "The thread of {} and {} was deleted with its messages.",
                a.username, b.username
            ),
        )
        .await?;
    Ok(see_other("/admin/threads/"))
}
