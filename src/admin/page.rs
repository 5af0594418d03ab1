//! Rendering: the embedded templates (minijinja, HTML autoescaped), the error pages, form and
//! query parsing, and pagination.

use std::{collections::HashMap, fmt::Write, sync::LazyLock};

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use minijinja::{AutoEscape, Environment, ErrorKind, Value, context};
use serde_json::Value as Json;
use time::{OffsetDateTime, macros::format_description};

use crate::{
    clock::Timestamp,
    domain::{NUL_NOT_ALLOWED, PASSWORD_MIN, has_nul},
    error::Error,
    store::StoreError,
};

/// Every template, embedded in the binary by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("home.html", include_str!("templates/home.html")),
    (
        "confirm_delete.html",
        include_str!("templates/confirm_delete.html"),
    ),
    ("users/list.html", include_str!("templates/users/list.html")),
    ("users/add.html", include_str!("templates/users/add.html")),
    (
        "users/detail.html",
        include_str!("templates/users/detail.html"),
    ),
    (
        "users/password.html",
        include_str!("templates/users/password.html"),
    ),
    (
        "threads/list.html",
        include_str!("templates/threads/list.html"),
    ),
    (
        "threads/detail.html",
        include_str!("templates/threads/detail.html"),
    ),
    (
        "messages/list.html",
        include_str!("templates/messages/list.html"),
    ),
];

static TEMPLATE_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` templates are HTML-escaped by default (minijinja's default auto-escape rule).
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("admin template {name} does not parse: {e:#}"));
    }
    env.set_formatter(escape_like_markupsafe);
    env.add_filter("datetime", datetime);
    env.add_global("password_min", PASSWORD_MIN);
    env
});

/// HTML-escapes strings as Jinja2's MarkupSafe does (`& < > " '`): minijinja's own escaping
/// also turns every `/` into `&#x2f;`, which is safe but makes every URL in the markup unreadable.
fn escape_like_markupsafe(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            for c in text.chars() {
                match c {
                    '&' => out.write_str("&amp;"),
                    '<' => out.write_str("&lt;"),
                    '>' => out.write_str("&gt;"),
                    '"' => out.write_str("&#34;"),
                    '\'' => out.write_str("&#39;"),
                    c => out.write_char(c),
                }
                .map_err(|_| minijinja::Error::new(ErrorKind::WriteFailure, "writing a page"))?;
            }
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// `2026-11-24T09:30:00.123456Z` → `24 Nov 2026, 09:30 UTC` (what a person reads).
fn datetime(value: String) -> String {
    let Some(timestamp) = Timestamp::parse(&value) else {
        return value;
    };
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp.micros()) * 1_000)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or(value)
}

/// Renders a template with `status`.
pub fn render(status: StatusCode, template: &str, ctx: Value) -> Response {
    let rendered = TEMPLATE_ENV
        .get_template(template)
        .and_then(|t| t.render(ctx));
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(
                template,
                error = format!("{error:#}"),
                "admin template failed"
            );
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Server error</title><p>A server error occurred.</p>"),
            )
                .into_response()
        }
    }
}

/// `303 See Other` to `location` (after a form, so a reload does not post again).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// Why a page could not be shown; each becomes an HTML page (or a redirect to the login).
#[derive(Debug)]
pub enum AdminError {
    /// A page asked without a staff session: to the login form, back here afterwards.
    LoginRequired {
        next: String,
    },
    /// A form posted without a staff session (it ended, or there never was one).
    SessionEnded,
    /// A form without the right CSRF token.
    Csrf,
    Forbidden(String),
    NotFound,
    BadRequest(String),
    /// A form larger than the server's body limit.
    TooLarge,
    Unavailable,
    Internal(anyhow::Error),
}

impl AdminError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            AdminError::LoginRequired { .. } => (
                StatusCode::UNAUTHORIZED,
                "Log in required",
                "Log in with a staff account to see this page.".into(),
            ),
            AdminError::SessionEnded => (
                StatusCode::FORBIDDEN,
                "Your session has ended",
                "Your admin session has ended (you logged out, it expired, or your account \
                 changed), so the form was not sent. Log in again and repeat the change."
                    .into(),
            ),
            AdminError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form was refused because its security token (CSRF) is missing or does \
                 not match your session. This happens when a form was open for a long time or \
                 was sent from another site. Go back, reload the page and try again."
                    .into(),
            ),
            AdminError::Forbidden(message) => {
                (StatusCode::FORBIDDEN, "Not allowed", message.clone())
            }
            AdminError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is no such page, or what it showed has been deleted.".into(),
            ),
            AdminError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "Bad request", message.clone())
            }
            AdminError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form is larger than this server accepts.".into(),
            ),
            AdminError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "The database cannot be reached right now. Try again in a moment.".into(),
            ),
            AdminError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server error",
                "Something went wrong on the server. The details are in its log.".into(),
            ),
        }
    }
}

impl From<Error> for AdminError {
    fn from(error: Error) -> AdminError {
        match error {
            Error::NotFound => AdminError::NotFound,
            Error::Forbidden(message) => AdminError::Forbidden(message.into()),
            Error::Unavailable { reason, .. } => {
                tracing::warn!(%reason, "service unavailable");
                AdminError::Unavailable
            }
            Error::Internal(error) => AdminError::Internal(error),
            other => AdminError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> AdminError {
        Error::from(error).into()
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        if let AdminError::LoginRequired { next } = &self {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            return see_other(&format!("/admin/login/?{query}"));
        }
        if let AdminError::Internal(error) = &self {
            tracing::error!(error = ?error, "admin page error");
        }
        let (status, title, message) = self.parts();
        render(
            status,
            "error.html",
            context! { title, message, status => status.as_u16() },
        )
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// A submitted `application/x-www-form-urlencoded` form.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The field's value, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }

    /// A checkbox: sent (with any value) means ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> AdminResult<Form> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AdminError::TooLarge
                } else {
                    AdminError::BadRequest(rejection.body_text())
                }
            })?;
        let form = Form::parse(&bytes);
        if form.0.iter().any(|(k, v)| has_nul(k) || has_nul(v)) {
            return Err(AdminError::BadRequest(format!(
                "A field holds a NUL character. {NUL_NOT_ALLOWED}"
            )));
        }
        Ok(form)
    }
}

/// The query string of a page (`?q=…&page=2`).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// The parameters; one holding a NUL character reads as absent (it can match nothing).
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .filter(|(k, v)| !has_nul(k) && !has_nul(v))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(|v| v.trim()).unwrap_or_default()
    }

    /// A yes/no filter: `yes` → `Some(true)`, `no` → `Some(false)`, anything else → any.
    pub fn yes_no(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }

    /// The 1-based page number; anything unparsable is the first page.
    pub fn page(&self) -> i64 {
        self.get("page")
            .parse::<i64>()
            .ok()
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }
}

/// One page of a list of `per_page`, and the links around it.
pub struct Pager {
    pub page: i64,
    pub per_page: i64,
}

impl Pager {
    pub fn new(params: &Params, per_page: i64) -> Pager {
        Pager {
            page: params.page().min(i64::MAX / per_page),
            per_page,
        }
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }

    /// What the templates show: "Showing 26–50 of 83", page N of M, and the previous/next
    /// links, which keep the list's other `filters`.
    pub fn context(&self, count: i64, path: &str, filters: &[(&str, &str)]) -> Value {
        let pages = ((count + self.per_page - 1) / self.per_page).max(1);
        let link = |page: i64| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
                query.append_pair(name, value);
            }
            if page > 1 {
                query.append_pair("page", &page.to_string());
            }
            let query = query.finish();
            if query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{query}")
            }
        };
        let first = (self.offset() + 1).min(count);
        let last = (self.offset() + self.per_page).min(count);
        context! {
            count,
            page => self.page,
            pages,
            first,
            last,
            previous => (self.page > 1).then(|| link((self.page - 1).min(pages))),
            next => (self.page < pages).then(|| link(self.page + 1)),
        }
    }
}

/// The field errors of a validation error from the account rules (`{"field": ["message"]}`),
/// for the template to show each next to its field.
pub fn field_errors(errors: &Json) -> HashMap<String, Vec<String>> {
    errors
        .as_object()
        .into_iter()
        .flatten()
        .map(|(field, messages)| {
            let messages = messages
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect();
            (field.clone(), messages)
        })
        .collect()
}

/// A path id: a positive integer, anything else is a missing page.
pub fn parse_id(raw: &str) -> AdminResult<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdminError::NotFound);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AdminError::NotFound)
}

/// Where to go after a form: `next` when it is a page of the admin, else `fallback`.
pub fn safe_next<'a>(next: &'a str, fallback: &'a str) -> &'a str {
    let local = next.starts_with("/admin")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { fallback }
}

/// `Retry-After` for a throttled login page.
pub fn retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes_html() {
        let html = TEMPLATE_ENV
            .get_template("error.html")
            .unwrap()
            .render(context! { title => "<b>", message => "<script>x</script>", status => 400 })
            .unwrap();
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert_eq!(TEMPLATE_ENV.templates().count(), TEMPLATES.len());
    }

    #[test]
    fn dates_read_like_dates() {
        assert_eq!(
            datetime("2026-11-24T09:30:00.123456Z".into()),
            "24 Nov 2026, 09:30 UTC"
        );
        assert_eq!(datetime("not a date".into()), "not a date");
    }

    #[test]
    fn next_stays_inside_the_admin() {
        assert_eq!(
            safe_next("/admin/users/?q=a", "/admin/"),
            "/admin/users/?q=a"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/api/me",
            "/admin//x",
            "/admin\\x",
        ] {
            assert_eq!(safe_next(bad, "/admin/"), "/admin/", "{bad}");
        }
    }

    #[test]
    fn pages_link_with_their_filters() {
        let pager = Pager::new(&Params::parse(Some("page=2&q=al")), 10);
        assert_eq!(pager.offset(), 10);
        let ctx = pager.context(25, "/admin/users/", &[("q", "al"), ("active", "")]);
        assert_eq!(ctx.get_attr("pages").unwrap(), Value::from(3));
        assert_eq!(ctx.get_attr("first").unwrap(), Value::from(11));
        assert_eq!(ctx.get_attr("last").unwrap(), Value::from(20));
        assert_eq!(
            ctx.get_attr("previous").unwrap(),
            Value::from("/admin/users/?q=al")
        );
        assert_eq!(
            ctx.get_attr("next").unwrap(),
            Value::from("/admin/users/?q=al&page=3")
        );
        let empty = Pager::new(&Params::default(), 10).context(0, "/x", &[]);
        assert_eq!(empty.get_attr("first").unwrap(), Value::from(0));
        assert!(empty.get_attr("next").unwrap().is_none());
    }

    #[test]
    fn path_ids_are_positive_integers() {
        assert_eq!(parse_id("42").unwrap(), 42);
        for bad in ["0", "-1", "x", "", "99999999999999999999"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }
}
