//! Admin sessions and CSRF protection.
//!
//! - The session cookie (`admin_session`) holds 32 random bytes; the database keeps only their
//!   SHA-256. It is `HttpOnly`, `SameSite=Lax`, `Path=/admin`, and `Secure` when the request
//!   came over HTTPS (`X-Forwarded-Proto: https`). A session ends after [`IDLE_LIMIT`] without
//!   use, at logout, and when its user is deactivated, loses staff status, changes password or
//!   is deleted (the database ends it, whichever code path made the change).
//! - Every form carries the session's CSRF token; a POST without the right one is refused with
//!   403. Before there is a session, the login form uses a double-submit cookie
//!   (`admin_csrf`) instead.

use std::time::Duration;

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, Method, header, request::Parts},
    response::Response,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::page::{AdminError, AdminResult, Form};
use crate::{
    AppState,
    clock::Timestamp,
    store::{
        User,
        sessions::{AdminSession, NewAdminSession},
    },
};

pub const SESSION_COOKIE: &str = "admin_session";
pub const LOGIN_CSRF_COOKIE: &str = "admin_csrf";
/// A session unused for this long has ended.
pub const IDLE_LIMIT: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// The expiry is pushed forward (a database write) at most this often per session.
const TOUCH_EVERY: Duration = Duration::from_secs(60 * 60);

/// 32 random bytes, base64url: session ids and CSRF tokens.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash_id(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time comparison of a submitted token with the expected one.
pub fn tokens_match(submitted: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(submitted.as_bytes().ct_eq(expected.as_bytes()))
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The value of a cookie of the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether the request reached us over HTTPS (through a proxy that says so).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for one of the admin's cookies; `None` deletes the cookie.
pub fn set_cookie(name: &str, value: Option<&str>, max_age: Duration, secure: bool) -> HeaderValue {
    let (value, max_age) = match value {
        Some(value) => (value, max_age.as_secs()),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("cookie values are base64url")
}

/// Adds a `Set-Cookie` to a response.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// Starts a session for `user` (a staff member who just proved who they are), with `flash` for
/// its first page; returns the `Set-Cookie` that hands it to the browser.
pub async fn start(
    state: &AppState,
    user: &User,
    secure: bool,
    flash: Option<String>,
) -> AdminResult<HeaderValue> {
    let id = random_token();
    state
        .store
        .create_admin_session(NewAdminSession {
            id_hash: hash_id(&id),
            user_id: user.id,
            csrf_token: random_token(),
            expires: Timestamp(Timestamp::now().micros() + micros(IDLE_LIMIT)),
            flash,
        })
        .await?;
    Ok(set_cookie(SESSION_COOKIE, Some(&id), IDLE_LIMIT, secure))
}

/// Ends the session the request carries, if any.
pub async fn end(state: &AppState, headers: &HeaderMap) -> AdminResult<()> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        state.store.delete_admin_session(&hash_id(id)).await?;
    }
    Ok(())
}

/// The session of the request (and its id hash) when it belongs to an active staff member.
pub async fn lookup(
    state: &AppState,
    headers: &HeaderMap,
) -> AdminResult<Option<(String, AdminSession)>> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = hash_id(id);
    Ok(state
        .store
        .admin_session(&id_hash)
        .await?
        .filter(|s| s.user.is_active && s.user.is_staff)
        .map(|s| (id_hash, s)))
}

/// The signed-in staff member of an admin page.
pub struct Staff {
    pub user: User,
    pub csrf_token: String,
    /// The message left by the previous action, shown once.
    pub flash: Option<String>,
    /// Whether the request came over HTTPS (for the cookies this page may set).
    pub secure: bool,
    id_hash: String,
}

impl Staff {
    /// What the page layout shows around every page: who is signed in, the navigation's
    /// current `section`, the waiting message, and the token the logout form carries.
    pub fn layout(&self, section: &str) -> minijinja::Value {
        minijinja::context! {
            section,
            user => self.user.username,
            csrf_token => self.csrf_token,
            flash => self.flash,
        }
    }

    /// Leaves `message` for the next page this session shows.
    pub async fn flash(&self, state: &AppState, message: String) -> AdminResult<()> {
        Ok(state.store.set_admin_flash(&self.id_hash, message).await?)
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AdminResult<Staff> {
        let Some((id_hash, session)) = lookup(state, &parts.headers).await? else {
            return Err(
                if parts.method == Method::GET || parts.method == Method::HEAD {
                    AdminError::LoginRequired {
                        next: parts
                            .uri
                            .path_and_query()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_else(|| "/admin/".into()),
                    }
                } else {
                    AdminError::SessionEnded
                },
            );
        };
        let mut flash = None;
        // Pages (not forms) keep the session alive and show the waiting message.
        if parts.method == Method::GET {
            let now = Timestamp::now().micros();
            let stale = session.expires.micros() - now < micros(IDLE_LIMIT - TOUCH_EVERY);
            if session.flash.is_some() || stale {
                flash = state
                    .store
                    .touch_admin_session(&id_hash, Timestamp(now + micros(IDLE_LIMIT)))
                    .await?;
            }
        }
        Ok(Staff {
            user: session.user,
            csrf_token: session.csrf_token,
            flash,
            secure: is_https(&parts.headers),
            id_hash,
        })
    }
}

/// A form posted by a signed-in staff member, its CSRF token checked.
pub struct StaffForm {
    pub staff: Staff,
    pub form: Form,
}

impl FromRequest<AppState> for StaffForm {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &AppState) -> AdminResult<StaffForm> {
        let (mut parts, body) = request.into_parts();
        let staff = Staff::from_request_parts(&mut parts, state).await?;
        let form = Form::from_request(Request::from_parts(parts, body), state).await?;
        if !tokens_match(form.get("csrf_token"), &staff.csrf_token) {
            return Err(AdminError::Csrf);
        }
        Ok(StaffForm { staff, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x_admin_session=no; admin_session=yes; other=1"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("yes"));
        assert_eq!(cookie(&headers, LOGIN_CSRF_COOKIE), None);
    }

    #[test]
    fn session_cookies_are_http_only_lax_and_secure_over_https() {
        let plain = set_cookie(SESSION_COOKIE, Some("abc"), IDLE_LIMIT, false);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"));
        assert!(plain.contains("Path=/admin") && !plain.contains("Secure"));
        let secure = set_cookie(SESSION_COOKIE, Some("abc"), IDLE_LIMIT, true);
        assert!(secure.to_str().unwrap().ends_with("; Secure"));
        let gone = set_cookie(SESSION_COOKIE, None, IDLE_LIMIT, false);
        assert!(gone.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn ids_are_stored_hashed_and_tokens_compared_whole() {
        let id = random_token();
        assert_eq!(id.len(), 43);
        assert_ne!(random_token(), id);
        assert_eq!(hash_id(&id).len(), 64);
        assert!(!hash_id(&id).contains(&id));
        assert!(tokens_match(&id, &id));
        assert!(!tokens_match(&id[..10], &id));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn https_is_read_from_the_proxy_header() {
        let mut headers = HeaderMap::new();
        assert!(!is_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS, http"));
        assert!(is_https(&headers));
    }
}
