//! simplejwt's token endpoints: obtain a pair, refresh, verify.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::{
    AppState,
    extract::{JsonBody, authenticate},
};
use crate::{accounts, auth::jwt::TokenType, domain::Fields, error::ApiResult};

/// `POST /api/token/` `{"username", "password"}` → `{"access", "refresh"}`.
pub async fn obtain(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let mut fields = Fields::new(&body);
    let username = fields.required_str("username");
    let password = fields.required_str("password");
    fields.finish()?;
    let (username, password) = (username.unwrap_or_default(), password.unwrap_or_default());
    let user = accounts::login(&state.store, &state.throttle, username, password).await?;
    Ok(Json(json!({
        "access": state.keys.issue(TokenType::Access, user.id, user.token_version),
        "refresh": state.keys.issue(TokenType::Refresh, user.id, user.token_version),
    })))
}

/// `POST /api/token/refresh/` `{"refresh"}` → `{"access"}` (and a new `refresh` when rotating).
pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let mut fields = Fields::new(&body);
    let token = fields.required_str("refresh");
    fields.finish()?;
    let user = authenticate(&state, token.unwrap_or_default(), TokenType::Refresh).await?;
    let access = state
        .keys
        .issue(TokenType::Access, user.id, user.token_version);
    Ok(Json(if state.config.rotate_refresh_tokens {
        json!({
            "access": access,
            "refresh": state.keys.issue(TokenType::Refresh, user.id, user.token_version),
        })
    } else {
        json!({ "access": access })
    }))
}

/// `POST /api/token/verify/` `{"token"}` → `{}` when the token (of either type) is valid.
pub async fn verify(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let mut fields = Fields::new(&body);
    let token = fields.required_str("token");
    fields.finish()?;
    let token = token.unwrap_or_default();
    let wanted = match state.keys.verify_any(token) {
        Some(claims) => claims.token_type,
        None => TokenType::Access,
    };
    authenticate(&state, token, wanted).await?;
    Ok(Json(json!({})))
}
