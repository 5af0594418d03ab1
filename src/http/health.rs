//! For load balancers: `GET /healthz` (the process is up; no database) and `GET /readyz` (the
//! database answers), neither authenticated.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The process is up (liveness; it does not look at the database).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `/readyz`: whether this instance can serve, and what it runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `unavailable` (503) when the database does not answer.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// The newest migration applied to the database (null when it does not answer).
    pub schema: Option<String>,
}

/// The database answers (readiness; route traffic here).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = Readiness),
        (status = 503, body = Readiness, description = "The database does not answer"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    match state.store.schema_version().await {
        Ok(schema) => Json(Readiness {
            status: "ready",
            version,
            schema: Some(schema),
        })
        .into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            let body = Readiness {
                status: "unavailable",
                version,
                schema: None,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
