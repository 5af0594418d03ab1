//! The admin page at `/admin/`: server-rendered HTML for staff to manage users, threads and
//! messages without curl.
//!
//! Everything it changes goes through the same code as the API: accounts through
//! [`crate::accounts`], permissions through [`crate::policy`], data through the
//! [`crate::store::Store`] operations (which append the participants' events). What this module
//! owns is the page itself: sessions and CSRF ([`session`]), templates and forms ([`page`]), and
//! one handler module per section. `docs/ADMIN.md` describes sessions, CSRF and headers.

mod home;
mod messages;
mod page;
mod session;
mod threads;
mod users;

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::AppState;

use page::AdminError;

/// The admin pages. Paths carry no trailing slash: the server trims it before routing.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(home::index))
        .route("/admin/login", get(home::login_form).post(home::login))
        .route("/admin/logout", post(home::logout))
        .route("/admin/static/admin.css", get(stylesheet))
        .route("/admin/users", get(users::list))
        .route("/admin/users/add", get(users::add_form).post(users::add))
        .route("/admin/users/{id}", get(users::detail).post(users::update))
        .route(
            "/admin/users/{id}/password",
            get(users::password_form).post(users::set_password),
        )
        .route(
            "/admin/users/{id}/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route("/admin/threads", get(threads::list))
        .route("/admin/threads/{id}", get(threads::detail))
        .route(
            "/admin/threads/{id}/delete",
            get(threads::confirm_delete).post(threads::delete),
        )
        .route("/admin/messages", get(messages::list))
        .route(
            "/admin/messages/{id}/delete",
            get(messages::confirm_delete).post(messages::delete),
        )
        .route("/admin/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn(security_headers))
}

const STYLESHEET: &str = include_str!("static/admin.css");

/// The page's only asset: embedded, so the admin works offline.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn not_found() -> AdminError {
    AdminError::NotFound
}

/// The page runs no script at all, loads only its own stylesheet, posts forms only to itself
/// and is never framed or cached.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
