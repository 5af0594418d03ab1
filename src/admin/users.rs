//! Users: the list (search, filters), "Add user", the detail form, setting a password, and
//! deleting. Every rule comes from [`accounts`] (validation) and [`policy`] (who may change
//! whom); this module only turns forms into calls and errors into pages.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde_json::json;

use super::{
    page::{AdminError, AdminResult, Pager, Params, field_errors, parse_id, render, see_other},
    session::{self, Staff, StaffForm, with_cookie},
};
use crate::{
    AppState,
    accounts::{self, AccountChanges, NewAccount},
    domain::{Username, password_problems},
    error::Error,
    policy,
    store::{User, admin::UserFilter},
};

const PER_PAGE: i64 = 25;
const PASSWORDS_DIFFER: &str = "The two password fields didn’t match.";

type Errors = HashMap<String, Vec<String>>;

/// `GET /admin/users/?q=&active=&staff=&superuser=&page=`
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> AdminResult<Response> {
    let params = Params::parse(query.as_deref());
    let pager = Pager::new(&params, PER_PAGE);
    let filter = UserFilter {
        search: params.get("q").to_owned(),
        is_active: params.yes_no("active"),
        is_staff: params.yes_no("staff"),
        is_superuser: params.yes_no("superuser"),
    };
    let page = state
        .store
        .admin_users(filter, pager.per_page, pager.offset())
        .await?;
    let filters = [
        ("q", params.get("q")),
        ("active", params.get("active")),
        ("staff", params.get("staff")),
        ("superuser", params.get("superuser")),
    ];
    let users: Vec<_> = page.items.iter().map(|u| json!(u)).collect();
    Ok(render(
        StatusCode::OK,
        "users/list.html",
        context! {
            users,
            pager => pager.context(page.count, "/admin/users/", &filters),
            filters => filters.iter().copied().collect::<HashMap<_, _>>(),
            filtered => filters.iter().any(|(_, v)| !v.is_empty()),
            ..staff.layout("users")
        },
    ))
}

fn add_page(staff: &Staff, status: StatusCode, username: &str, errors: &Errors) -> Response {
    render(
        status,
        "users/add.html",
        context! { username, errors, ..staff.layout("users") },
    )
}

/// `GET /admin/users/add/`
pub async fn add_form(staff: Staff) -> Response {
    add_page(&staff, StatusCode::OK, "", &Errors::new())
}

/// Every broken rule of a password typed twice: the account rules, and the two must match.
fn check_new_password(errors: &mut Errors, password: &str, again: &str, username: &str) {
    if password != again {
        errors
            .entry("password2".into())
            .or_default()
            .push(PASSWORDS_DIFFER.into());
        for problem in password_problems(password, username) {
            errors.entry("password".into()).or_default().push(problem);
        }
    }
}

/// The field errors of a failed account change, or the page for any other failure.
fn validation(error: Error) -> AdminResult<Errors> {
    match error {
        Error::Invalid(errors) => Ok(field_errors(&errors)),
        other => Err(other.into()),
    }
}

/// `POST /admin/users/add/`: username and password twice → the new user's detail form.
pub async fn add(
    State(state): State<AppState>,
    StaffForm { staff, form }: StaffForm,
) -> AdminResult<Response> {
    let username = form.get("username");
    let password = form.get("password");
    let mut errors = Errors::new();
    check_new_password(&mut errors, password, form.get("password2"), username);
    if !errors.is_empty() {
        // The account rules are not asked while the passwords differ, so say what they would.
        if let Err(message) = Username::parse(username) {
            errors.entry("username".into()).or_default().push(message);
        }
        return Ok(add_page(&staff, StatusCode::BAD_REQUEST, username, &errors));
    }
    let created = accounts::create(
        &state.store,
        &state.checks,
        NewAccount {
            username: username.to_owned(),
            password: password.to_owned(),
            is_active: true,
            ..NewAccount::default()
        },
    )
    .await;
    match created {
        Ok(user) => {
            staff
                .flash(
                    &state,
                    format!(
                        "The user “{}” was added. You can add their details below.",
                        user.username
                    ),
                )
                .await?;
            Ok(see_other(&format!("/admin/users/{}/", user.id)))
        }
        Err(error) => {
            let errors = validation(error)?;
            Ok(add_page(&staff, StatusCode::BAD_REQUEST, username, &errors))
        }
    }
}

async fn target(state: &AppState, id: &str) -> AdminResult<User> {
    let id = parse_id(id)?;
    let user = state.store.user(id).await?.ok_or(AdminError::NotFound)?;
    Ok(Arc::unwrap_or_clone(user))
}

/// What the detail form lets `actor` change of `target`.
struct Allowed {
    /// Anything at all (a superuser's account is for superusers only).
    edit: bool,
    /// Active and staff status (not one's own: nobody locks themselves out here).
    status: bool,
    /// Superuser status (superusers only, and not their own).
    superuser: bool,
}

fn allowed(actor: &User, target: &User) -> Allowed {
    let edit = policy::may_manage(actor, target, false).is_ok();
    let status = edit && actor.id != target.id;
    Allowed {
        edit,
        status,
        superuser: status && policy::may_manage(actor, target, true).is_ok(),
    }
}

fn detail_page(
    staff: &Staff,
    status: StatusCode,
    target: &User,
    values: serde_json::Value,
    errors: &Errors,
) -> Response {
    let allowed = allowed(&staff.user, target);
    render(
        status,
        "users/detail.html",
        context! {
            target => json!(target),
            values,
            errors,
            can_edit => allowed.edit,
            can_set_status => allowed.status,
            can_set_superuser => allowed.superuser,
            is_self => staff.user.id == target.id,
            ..staff.layout("users")
        },
    )
}

/// `GET /admin/users/<id>/`: the detail form.
pub async fn detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> AdminResult<Response> {
    let target = target(&state, &id).await?;
    Ok(detail_page(
        &staff,
        StatusCode::OK,
        &target,
        json!(target),
        &Errors::new(),
    ))
}

/// `POST /admin/users/<id>/`: saves the detail form.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> AdminResult<Response> {
    let target = target(&state, &id).await?;
    let allowed = allowed(&staff.user, &target);
    let status = |name: &str, current: bool| {
        let ticked = form.checked(name);
        allowed.status.then_some(ticked).filter(|v| *v != current)
    };
    let changes = AccountChanges {
        username: Some(form.get("username").to_owned()),
        email: Some(form.get("email").to_owned()),
        first_name: Some(form.get("first_name").to_owned()),
        last_name: Some(form.get("last_name").to_owned()),
        is_active: status("is_active", target.is_active),
        is_staff: status("is_staff", target.is_staff),
        // Not the actor's own; anyone else's only when it changes (a superuser's decision).
        is_superuser: (target.id != staff.user.id)
            .then(|| form.checked("is_superuser"))
            .filter(|v| *v != target.is_superuser),
        password: None,
    };
    // A tampered form cannot do more than the rules allow: this is the same check as the API's.
    policy::may_manage(&staff.user, &target, changes.is_superuser.is_some())?;
    let values = json!({
        "username": form.get("username"),
        "email": form.get("email"),
        "first_name": form.get("first_name"),
        "last_name": form.get("last_name"),
        "is_active": changes.is_active.unwrap_or(target.is_active),
        "is_staff": changes.is_staff.unwrap_or(target.is_staff),
        "is_superuser": changes.is_superuser.unwrap_or(target.is_superuser),
    });
    match accounts::update(&state.store, &state.checks, &target, changes).await {
        Ok(Some(user)) => {
            staff
                .flash(&state, format!("The user “{}” was saved.", user.username))
                .await?;
            Ok(see_other(&format!("/admin/users/{}/", user.id)))
        }
        Ok(None) => Err(AdminError::NotFound),
        Err(error) => {
            let errors = validation(error)?;
            Ok(detail_page(
                &staff,
                StatusCode::BAD_REQUEST,
                &target,
                values,
                &errors,
            ))
        }
    }
}

fn password_page(staff: &Staff, status: StatusCode, target: &User, errors: &Errors) -> Response {
    render(
        status,
        "users/password.html",
        context! {
            target => json!(target),
            errors,
            is_self => staff.user.id == target.id,
            ..staff.layout("users")
        },
    )
}

/// The user whose account `staff` may change (a superuser's only by a superuser).
async fn manageable(state: &AppState, staff: &Staff, id: &str) -> AdminResult<User> {
    let target = target(state, id).await?;
    policy::may_manage(&staff.user, &target, false)?;
    Ok(target)
}

/// `GET /admin/users/<id>/password/`
pub async fn password_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> AdminResult<Response> {
    let target = manageable(&state, &staff, &id).await?;
    Ok(password_page(
        &staff,
        StatusCode::OK,
        &target,
        &Errors::new(),
    ))
}

/// `POST /admin/users/<id>/password/`: the new password twice. It ends the user's tokens and
/// sessions; a staff member changing their own stays signed in on a fresh session.
pub async fn set_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> AdminResult<Response> {
    let target = manageable(&state, &staff, &id).await?;
    let password = form.get("password");
    let mut errors = Errors::new();
    check_new_password(
        &mut errors,
        password,
        form.get("password2"),
        &target.username,
    );
    if !errors.is_empty() {
        return Ok(password_page(
            &staff,
            StatusCode::BAD_REQUEST,
            &target,
            &errors,
        ));
    }
    let changes = AccountChanges {
        password: Some(password.to_owned()),
        ..AccountChanges::default()
    };
    let user = match accounts::update(&state.store, &state.checks, &target, changes).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(AdminError::NotFound),
        Err(error) => {
            let errors = validation(error)?;
            return Ok(password_page(
                &staff,
                StatusCode::BAD_REQUEST,
                &target,
                &errors,
            ));
        }
    };
    let location = format!("/admin/users/{}/", user.id);
    let message = format!("The password of “{}” was changed.", user.username);
    if user.id != staff.user.id {
        staff.flash(&state, message).await?;
        return Ok(see_other(&location));
    }
    // The change ended this session too (as it ends every session of the user): a new one.
    let cookie = session::start(&state, &user, staff.secure, Some(message)).await?;
    Ok(with_cookie(see_other(&location), cookie))
}

/// `GET /admin/users/<id>/delete/`: what deleting would take away, and a button to do it.
pub async fn confirm_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> AdminResult<Response> {
    let target = deletable(&state, &staff, &id).await?;
    let threads = state.store.threads_of(target.id, 0, 0).await?.count;
    Ok(render(
        StatusCode::OK,
        "confirm_delete.html",
        context! {
            title => format!("Delete the user “{}”?", target.username),
            what => format!("the user “{}”", target.username),
            consequences => vec![
                format!(
                    "{} conversation{} with everything in {} will be deleted too.",
                    threads,
                    if threads == 1 { "" } else { "s" },
                    if threads == 1 { "it" } else { "them" },
                ),
                "Their tokens stop working at once. This cannot be undone.".to_owned(),
            ],
            action => format!("/admin/users/{}/delete/", target.id),
            cancel => format!("/admin/users/{}/", target.id),
            confirm_label => format!("Yes, delete {}", target.username),
            ..staff.layout("users")
        },
    ))
}

async fn deletable(state: &AppState, staff: &Staff, id: &str) -> AdminResult<User> {
    let target = manageable(state, staff, id).await?;
    if target.id == staff.user.id {
        return Err(AdminError::Forbidden(
            "You cannot delete your own account.".into(),
        ));
    }
    Ok(target)
}

/// `POST /admin/users/<id>/delete/`
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    StaffForm { staff, .. }: StaffForm,
) -> AdminResult<Response> {
    let target = deletable(&state, &staff, &id).await?;
    if !state.store.delete_user(target.id).await? {
        return Err(AdminError::NotFound);
    }
    staff
        .flash(
            &state,
            format!("The user “{}” was deleted.", target.username),
        )
        .await?;
    Ok(see_other("/admin/users/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_passwords_also_report_the_password_rules() {
        let mut errors = Errors::new();
        check_new_password(&mut errors, "1234", "12345", "alice");
        assert_eq!(errors["password2"], vec![PASSWORDS_DIFFER.to_owned()]);
        assert_eq!(errors["password"].len(), 2);
        let mut none = Errors::new();
        check_new_password(&mut none, "same-pass", "same-pass", "alice");
        assert!(none.is_empty());
    }
}
