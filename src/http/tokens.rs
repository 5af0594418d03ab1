//! simplejwt's token endpoints: obtain a pair, refresh, verify, blacklist (sign out).

use std::sync::Arc;

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{Body, FromJson, authenticate},
};
use crate::{
    AppState,
    accounts::{self, Login},
    auth::{
        address::ClientAddress,
        jwt::{Claims, TokenType},
    },
    clock::Timestamp,
    domain::Fields,
    error::{AuthProblem, Error},
    store::User,
};

/// `{"username", "password"}`.
#[derive(Debug, ToSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl FromJson for Credentials {
    fn from_json(body: &serde_json::Value) -> Result<Credentials, Error> {
        let mut fields = Fields::new(body);
        let username = fields
            .required_str("username")
            .unwrap_or_default()
            .to_owned();
        let password = fields
            .required_str("password")
            .unwrap_or_default()
            .to_owned();
        fields.finish()?;
        Ok(Credentials { username, password })
    }
}

/// `{"refresh"}`.
#[derive(Debug, ToSchema)]
pub struct RefreshRequest {
    pub refresh: String,
}

impl FromJson for RefreshRequest {
    fn from_json(body: &serde_json::Value) -> Result<RefreshRequest, Error> {
        let mut fields = Fields::new(body);
        let refresh = fields
            .required_str("refresh")
            .unwrap_or_default()
            .to_owned();
        fields.finish()?;
        Ok(RefreshRequest { refresh })
    }
}

/// `{"token"}`.
#[derive(Debug, ToSchema)]
pub struct VerifyRequest {
    pub token: String,
}

impl FromJson for VerifyRequest {
    fn from_json(body: &serde_json::Value) -> Result<VerifyRequest, Error> {
        let mut fields = Fields::new(body);
        let token = fields.required_str("token").unwrap_or_default().to_owned();
        fields.finish()?;
        Ok(VerifyRequest { token })
    }
}

/// An access token, and a refresh token when one is issued.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

/// `{}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// Signs in: a new access and refresh token.
#[utoipa::path(post, path = "/api/token", tag = "tokens", request_body = Credentials,
    responses(
        (status = 200, body = TokenPair),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail, description = "Wrong credentials or inactive user"),
        (status = 429, body = Detail, description = "Too many failed logins; see Retry-After"),
    ))]
pub async fn obtain(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Body(credentials): Body<Credentials>,
) -> ApiResult<Json<TokenPair>> {
    let login = Login {
        username: &credentials.username,
        password: &credentials.password,
        address,
    };
    let user = accounts::login(&state.store, &state.checks, &state.throttle, login)
        .await
        .map_err(Error::from)?;
    Ok(Json(TokenPair {
        access: state
            .keys
            .issue(TokenType::Access, user.id, user.token_version),
        refresh: Some(
            state
                .keys
                .issue(TokenType::Refresh, user.id, user.token_version),
        ),
    }))
}

/// A new access token for a refresh token (and a new refresh token when rotation is on; the
/// used one is then blacklisted, so a stolen refresh token is good for one use).
#[utoipa::path(post, path = "/api/token/refresh", tag = "tokens", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Body(request): Body<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    let (user, claims) = valid_refresh_token(&state, &request.refresh).await?;
    let refresh = if state.config.rotate_refresh_tokens {
        if !state
            .store
            .blacklist_token(&claims.jti, expiry(&claims))
            .await?
        {
            return Err(Error::Unauthenticated(AuthProblem::TokenNotValid).into());
        }
        Some(
            state
                .keys
                .issue(TokenType::Refresh, user.id, user.token_version),
        )
    } else {
        None
    };
    let access = state
        .keys
        .issue(TokenType::Access, user.id, user.token_version);
    Ok(Json(TokenPair { access, refresh }))
}

/// Signs out: the refresh token never works again (simplejwt's blacklist app).
#[utoipa::path(post, path = "/api/token/blacklist", tag = "tokens", request_body = RefreshRequest,
    responses(
        (status = 200, body = Empty),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn blacklist(
    State(state): State<AppState>,
    Body(request): Body<RefreshRequest>,
) -> ApiResult<Json<Empty>> {
    let (_, claims) = valid_refresh_token(&state, &request.refresh).await?;
    state
        .store
        .blacklist_token(&claims.jti, expiry(&claims))
        .await?;
    Ok(Json(Empty {}))
}

/// A refresh token that is well signed, unexpired, not blacklisted, of a user who may still
/// sign in.
async fn valid_refresh_token(state: &AppState, token: &str) -> Result<(Arc<User>, Claims), Error> {
    let user = authenticate(state, token, TokenType::Refresh).await?;
    let claims = state
        .keys
        .verify(token, TokenType::Refresh)
        .ok_or(Error::Unauthenticated(AuthProblem::TokenNotValid))?;
    if state.store.is_blacklisted(&claims.jti).await? {
        return Err(Error::Unauthenticated(AuthProblem::TokenNotValid));
    }
    Ok((user, claims))
}

fn expiry(claims: &Claims) -> Timestamp {
    Timestamp(claims.exp.saturating_mul(1_000_000))
}

/// `{}` when the token (of either type) is valid.
#[utoipa::path(post, path = "/api/token/verify", tag = "tokens", request_body = VerifyRequest,
    responses(
        (status = 200, body = Empty),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    Body(request): Body<VerifyRequest>,
) -> ApiResult<Json<Empty>> {
    let wanted = match state.keys.verify_any(&request.token) {
        Some(claims) => claims.token_type,
        None => TokenType::Access,
    };
    authenticate(&state, &request.token, wanted).await?;
    Ok(Json(Empty {}))
}
