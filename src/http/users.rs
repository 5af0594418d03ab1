//! `/api/users/…` and `/api/me/`: staff manage users; any signed-in user can look users up.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    error::{ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, Deferred, FromJson, Id, ListQuery},
    page::{Page, PageParams},
};
use crate::{
    AppState,
    accounts::{self, AccountChanges, NewAccount},
    domain::Fields,
    error::Error,
    policy,
    store::{Participant, User},
};

/// `POST /api/users/`.
#[derive(Debug, ToSchema)]
pub struct NewUserRequest {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Default true.
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    /// Only a superuser may set it.
    pub is_superuser: Option<bool>,
}

impl FromJson for NewUserRequest {
    fn from_json(body: &serde_json::Value) -> Result<NewUserRequest, Error> {
        let mut fields = Fields::new(body);
        let request = NewUserRequest {
            username: fields.required_str("username").unwrap_or_default().into(),
            password: fields.required_str("password").unwrap_or_default().into(),
            email: fields.optional_str("email").map(str::to_owned),
            first_name: fields.optional_str("first_name").map(str::to_owned),
            last_name: fields.optional_str("last_name").map(str::to_owned),
            is_active: fields.optional_bool("is_active"),
            is_staff: fields.optional_bool("is_staff"),
            is_superuser: fields.optional_bool("is_superuser"),
        };
        fields.finish()?;
        Ok(request)
    }
}

/// `PATCH /api/users/<id>/`: any subset of the fields.
#[derive(Debug, ToSchema)]
pub struct UserChangesRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

impl FromJson for UserChangesRequest {
    fn from_json(body: &serde_json::Value) -> Result<UserChangesRequest, Error> {
        let mut fields = Fields::new(body);
        let request = UserChangesRequest {
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
        Ok(request)
    }
}

/// A user in a search: everything for staff, `{"id", "username"}` for everyone else.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum FoundUser {
    Full(User),
    Public(Participant),
}

impl utoipa::PartialSchema for FoundUser {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{Ref, schema::AnyOfBuilder};
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("User"))
            .item(Ref::from_schema_name("Participant"))
            .description(Some("A full user (staff) or `{\"id\", \"username\"}`"))
            .into()
    }
}

impl ToSchema for FoundUser {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push(("User".into(), <User as utoipa::PartialSchema>::schema()));
        schemas.push((
            "Participant".into(),
            <Participant as utoipa::PartialSchema>::schema(),
        ));
        <User as ToSchema>::schemas(schemas);
        <Participant as ToSchema>::schemas(schemas);
    }
}

/// `?search=`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SearchParams {
    /// Part of a username (staff: also of an email or name), case-insensitive.
    search: Option<String>,
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = Detail)))]
pub async fn me(AuthUser(user): AuthUser) -> Json<User> {
    Json(Arc::unwrap_or_clone(user))
}

/// Looks users up: staff search usernames, emails and names and see everything; others
/// search active usernames and see `{"id", "username"}`.
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])),
    params(SearchParams, PageParams),
    responses((status = 200, body = Page<FoundUser>), (status = 401, body = Detail)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    query: ListQuery,
) -> ApiResult<Json<Page<FoundUser>>> {
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
    let mut page = Page::by_offset(page, &query);
    let results = std::mem::take(&mut page.results);
    Ok(Json(Page {
        count: page.count,
        next: page.next,
        previous: page.previous,
        results: results
            .into_iter()
            .map(|u| {
                if user.is_staff {
                    FoundUser::Full(u)
                } else {
                    FoundUser::Public(Participant {
                        id: u.id,
                        username: u.username,
                    })
                }
            })
            .collect(),
    }))
}

/// Creates a user (staff) → 201.
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])),
    request_body = NewUserRequest,
    responses(
        (status = 201, body = User),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    body: Deferred<NewUserRequest>,
) -> ApiResult<Response> {
    policy::require_staff(&actor)?;
    let request = body.parse()?;
    let is_superuser = request.is_superuser.unwrap_or(false);
    if is_superuser && !actor.is_superuser {
        return Err(
            Error::Forbidden("Only a superuser may change superuser accounts or status.").into(),
        );
    }
    let user = accounts::create(
        &state.store,
        &state.checks,
        NewAccount {
            username: request.username,
            password: request.password,
            email: request.email.unwrap_or_default(),
            first_name: request.first_name.unwrap_or_default(),
            last_name: request.last_name.unwrap_or_default(),
            is_active: request.is_active.unwrap_or(true),
            is_staff: request.is_staff.unwrap_or(false),
            is_superuser,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// A user (staff).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = User),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    Id(id): Id,
) -> ApiResult<Json<User>> {
    policy::require_staff(&actor)?;
    let user = state.store.user(id).await?.ok_or(Error::NotFound)?;
    Ok(Json(Arc::unwrap_or_clone(user)))
}

/// Changes a user (staff; superuser status and superuser accounts: superusers). A password
/// change or deactivation ends the user's tokens and closes their sockets.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = UserChangesRequest,
    responses(
        (status = 200, body = User),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    Id(id): Id,
    body: Deferred<UserChangesRequest>,
) -> ApiResult<Json<User>> {
    policy::require_staff(&actor)?;
    let target = state.store.user(id).await?.ok_or(Error::NotFound)?;
    let request = body.parse()?;
    let sets_superuser = request
        .is_superuser
        .is_some_and(|s| s != target.is_superuser);
    policy::may_manage(&actor, &target, sets_superuser)?;
    let changes = AccountChanges {
        username: request.username,
        password: request.password,
        email: request.email,
        first_name: request.first_name,
        last_name: request.last_name,
        is_active: request.is_active,
        is_staff: request.is_staff,
        is_superuser: request.is_superuser,
    };
    let user = accounts::update(&state.store, &state.checks, &target, changes)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Json(user))
}

/// Deletes a user (staff) → 204; their threads and messages go too.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204),
        (status = 401, body = Detail),
        (status = 403, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    policy::require_staff(&actor)?;
    let target = state.store.user(id).await?.ok_or(Error::NotFound)?;
    policy::may_manage(&actor, &target, false)?;
    if target.id == actor.id {
        return Err(Error::Forbidden("You cannot delete your own account.").into());
    }
    if state.store.delete_user(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound.into())
    }
}
