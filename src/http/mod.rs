//! The JSON API: every URL of the original in both spellings, and what Simple Chat adds.
//!
//! Each endpoint is a handler with typed request and answer structs and a
//! `#[utoipa::path]` description; [`api`] registers every one of them through `routes!`, so
//! the router and the OpenAPI description (served at `/api/schema/`, readable at `/api/docs/`)
//! are built from the same list and cannot drift. Errors are answered in Django REST
//! framework's shapes ([`error`]); bad input is refused at the boundary ([`extract`]).

mod aliases;
mod blocks;
mod docs;
pub mod error;
pub mod events;
mod export;
pub mod extract;
mod files;
mod health;
mod message_actions;
mod messages;
pub mod page;
mod presence;
mod search;
pub mod socket;
mod threads;
mod tokens;
mod users;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use extract::AuthUser;

use crate::{AppState, error::Error};
use error::ApiError;

/// Every API route with its description. Routes are only ever added here, through `routes!`
/// (which requires each handler's `#[utoipa::path]`). JSON bodies are limited to
/// `--body-limit`; uploads count their own bytes against `--max-upload`.
fn api(config: &crate::Config) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(files::upload))
        .layer(DefaultBodyLimit::disable());
    json_api()
        .layer(DefaultBodyLimit::max(config.body_limit))
        .merge(uploads)
}

fn json_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(socket::websocket))
        .routes(routes!(events::poll))
        .routes(routes!(tokens::obtain))
        .routes(routes!(tokens::refresh))
        .routes(routes!(tokens::verify))
        .routes(routes!(tokens::blacklist))
        .routes(routes!(health::readyz))
        .routes(routes!(users::me))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::detail, users::update, users::delete))
        .routes(routes!(threads::create))
        .routes(routes!(threads::detail, threads::delete))
        .routes(routes!(threads::list_for_user))
        .routes(routes!(messages::list, messages::create))
        .routes(routes!(aliases::list_messages, aliases::post_messages))
        .routes(routes!(messages::mark_read, aliases::mark_read_patch))
        .routes(routes!(
            aliases::mark_read_post,
            aliases::mark_read_patch_chat
        ))
        .routes(routes!(messages::unread_count))
        .routes(routes!(aliases::unread_count))
        .routes(routes!(message_actions::edit, message_actions::delete))
        .routes(routes!(message_actions::react, message_actions::unreact))
        .routes(routes!(blocks::list))
        .routes(routes!(blocks::block, blocks::unblock))
        .routes(routes!(presence::presence))
        .routes(routes!(files::detail))
        .routes(routes!(files::content))
        .routes(routes!(files::thumbnail))
        .routes(routes!(search::search))
        .routes(routes!(export::export))
}

/// The routes and their finished description.
fn routes_and_description(config: &crate::Config) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut description) = api(config).split_for_parts();
    docs::finish(&mut description);
    (routes, description)
}

/// The OpenAPI 3.1 description of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_description(&crate::Config::new("sqlite://unused")).1
}

/// The API's routes, its description at `/api/schema/` and its reference at `/api/docs/`.
pub fn router(config: &crate::Config) -> Router<AppState> {
    let (routes, description) = routes_and_description(config);
    routes
        .layer(middleware::from_fn(contract_responses))
        .merge(docs::router(description))
}

/// Anything no route serves.
pub async fn not_found() -> ApiError {
    Error::NotFound.into()
}

/// Gives the router's own answers (405) the contract's JSON shape, and every JSON answer its
/// charset.
async fn contract_responses(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let mut response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response.headers().get(header::CONTENT_TYPE).is_none()
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ApiError::MethodNotAllowed(method.to_string()).into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    if response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json")
    {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    response
}
