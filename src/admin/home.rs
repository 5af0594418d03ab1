//! The admin home page, and logging in and out.

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use minijinja::context;

use super::{
    page::{AdminError, AdminResult, Form, Params, render, retry_after, safe_next, see_other},
    session::{
        self, IDLE_LIMIT, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Staff, cookie, is_https, random_token,
        set_cookie, tokens_match, with_cookie,
    },
};
use crate::{
    AppState,
    accounts::{self, Login, LoginError},
    auth::address::ClientAddress,
};

/// `GET /admin/`: what there is, and where to go.
pub async fn index(State(state): State<AppState>, staff: Staff) -> AdminResult<Response> {
    let counts = state.store.site_counts().await?;
    Ok(render(
        StatusCode::OK,
        "home.html",
        context! { counts, ..staff.layout("home") },
    ))
}

/// The login form, with its pre-session CSRF token (`csrf`, also in the `admin_csrf` cookie).
fn login_page(
    status: StatusCode,
    csrf: &str,
    username: &str,
    next: &str,
    error: Option<String>,
    notice: Option<&str>,
) -> Response {
    render(
        status,
        "login.html",
        context! { csrf_token => csrf, username, next, error, notice },
    )
}

/// `GET /admin/login/`: the form (or straight on, for someone already signed in).
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> AdminResult<Response> {
    let params = Params::parse(query.as_deref());
    let next = safe_next(params.get("next"), "/admin/");
    if session::lookup(&state, &headers).await?.is_some() {
        return Ok(see_other(next));
    }
    let notice = (params.get("logged_out") == "1").then_some("You have been logged out.");
    let (csrf, fresh) = match cookie(&headers, LOGIN_CSRF_COOKIE) {
        Some(token) if token.len() == 43 => (token.to_owned(), false),
        _ => (random_token(), true),
    };
    let page = login_page(StatusCode::OK, &csrf, "", next, None, notice);
    Ok(if fresh {
        with_cookie(
            page,
            set_cookie(
                LOGIN_CSRF_COOKIE,
                Some(&csrf),
                IDLE_LIMIT,
                is_https(&headers),
            ),
        )
    } else {
        page
    })
}

/// `POST /admin/login/`: through the same account rules and throttling as `/api/token/`;
/// staff only.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    form: Form,
) -> AdminResult<Response> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let submitted = form.get("csrf_token");
    if !tokens_match(submitted, expected) {
        return Err(AdminError::Csrf);
    }
    let username = form.get("username");
    let next = safe_next(form.get("next"), "/admin/");
    let again =
        |status, error: String| login_page(status, expected, username, next, Some(error), None);
    let attempt = Login {
        username,
        password: form.get("password"),
        address,
    };
    let user = match accounts::login(&state.store, &state.checks, &state.throttle, attempt).await {
        Ok(user) => user,
        Err(LoginError::Invalid) => {
            return Ok(again(
                StatusCode::BAD_REQUEST,
                "Wrong username or password. Both are case-sensitive.".into(),
            ));
        }
        Err(LoginError::Throttled(seconds)) => {
            let page = again(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed attempts. Try again in {seconds} seconds."),
            );
            return Ok(retry_after(page, seconds));
        }
        Err(LoginError::Failed(error)) => return Err(error.into()),
    };
    if !user.is_staff {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "This account has no access to the admin page: only staff members may log in here. \
             Ask a superuser to give it staff status."
                .into(),
        ));
    }
    let secure = is_https(&headers);
    // A fresh session id at every login; the one the browser had (if any) ends.
    session::end(&state, &headers).await?;
    let response = with_cookie(
        see_other(next),
        session::start(&state, &user, secure, None).await?,
    );
    Ok(with_cookie(
        response,
        set_cookie(LOGIN_CSRF_COOKIE, None, IDLE_LIMIT, secure),
    ))
}

/// `POST /admin/logout/` (with the session's CSRF token).
/// Without a valid session there is nothing to end: the browser is just sent to the login.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> AdminResult<Response> {
    if let Some((_, current)) = session::lookup(&state, &headers).await? {
        if !tokens_match(form.get("csrf_token"), &current.csrf_token) {
            return Err(AdminError::Csrf);
        }
        session::end(&state, &headers).await?;
    }
    let gone = set_cookie(SESSION_COOKIE, None, IDLE_LIMIT, is_https(&headers));
    Ok(with_cookie(see_other("/admin/login/?logged_out=1"), gone))
}
