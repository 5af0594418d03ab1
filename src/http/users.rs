//! `/api/users/…` and `/api/me/`: staff manage users; any signed-in user can look users up.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    AppState,
    extract::{AuthUser, Id, JsonBody, ListQuery},
};
use crate::{
    accounts::{self, AccountChanges, NewAccount},
    domain::Fields,
    error::{ApiError, ApiResult},
    policy,
};

/// `GET /api/me/`: the signed-in user.
pub async fn me(AuthUser(user): AuthUser) -> Json<Value> {
    Json(user.to_json())
}

/// `GET /api/users/?search=`: staff search usernames, emails and names and see everything;
/// others search active usernames and see `{"id", "username"}`.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    query: ListQuery,
) -> ApiResult<Json<Value>> {
    let term = query.get("search").unwrap_or_default().trim();
    let page = state
        .store
        .search_users(
            term,
            user.is_staff,
            !user.is_staff,
            query.limit,
            query.offset,
        )
        .await?;
    let (next, previous) = query.offset_links(page.count);
    let results: Vec<Value> = page
        .items
        .iter()
        .map(|u| {
            if user.is_staff {
                u.to_json()
            } else {
                u.to_public_json()
            }
        })
        .collect();
    Ok(Json(json!({
        "count": page.count, "next": next, "previous": previous, "results": results,
    })))
}

/// `POST /api/users/` (staff): creates a user → 201.
pub async fn create(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    policy::require_staff(&actor)?;
    let mut fields = Fields::new(&body);
    let username = fields
        .required_str("username")
        .unwrap_or_default()
        .to_owned();
    let password = fields
        .required_str("password")
        .unwrap_or_default()
        .to_owned();
    let email = fields.optional_str("email").unwrap_or_default().to_owned();
    let first_name = fields
        .optional_str("first_name")
        .unwrap_or_default()
        .to_owned();
    let last_name = fields
        .optional_str("last_name")
        .unwrap_or_default()
        .to_owned();
    let is_active = fields.optional_bool("is_active").unwrap_or(true);
    let is_staff = fields.optional_bool("is_staff").unwrap_or(false);
    let is_superuser = fields.optional_bool("is_superuser").unwrap_or(false);
    fields.finish()?;
    if is_superuser && !actor.is_superuser {
        return Err(ApiError::Forbidden(
            "Only a superuser may change superuser accounts or status.",
        ));
    }
    let user = accounts::create(
        &state.store,
        NewAccount {
            username,
            password,
            email,
            first_name,
            last_name,
            is_active,
            is_staff,
            is_superuser,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.to_json())).into_response())
}

/// `GET /api/users/<id>/` (staff).
pub async fn detail(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    policy::require_staff(&actor)?;
    let user = state.store.user(id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(user.to_json()))
}

/// `PATCH /api/users/<id>/` (staff; superuser status and superuser accounts: superusers).
pub async fn update(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    policy::require_staff(&actor)?;
    let target = state.store.user(id).await?.ok_or(ApiError::NotFound)?;
    let mut fields = Fields::new(&body);
    let changes = AccountChanges {
        username: fields.optional_str("username").map(str::to_owned),
        password: fields.optional_str("password").map(str::to_owned),
        email: fields.optional_str("email").map(str::to_owned),
        first_name: fields.optional_str("first_name").map(str::to_owned),
        last_name: fields.optional_str("last_name").map(str::to_owned),
        is_active: fields.optional_bool("is_active"),
        is_staff: fields.optional_bool("is_staff"),
        is_superuser: fields.optional_bool("is_superuser"),
    };
    fields.finish()?;
    let sets_superuser = changes
        .is_superuser
        .is_some_and(|s| s != target.is_superuser);
    policy::may_manage(&actor, &target, sets_superuser)?;
    let user = accounts::update(&state.store, &target, changes)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user.to_json()))
}

/// `DELETE /api/users/<id>/` (staff) → 204; their threads and messages go too.
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    policy::require_staff(&actor)?;
    let target = state.store.user(id).await?.ok_or(ApiError::NotFound)?;
    policy::may_manage(&actor, &target, false)?;
    if target.id == actor.id {
        return Err(ApiError::Forbidden("You cannot delete your own account."));
    }
    if state.store.delete_user(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
