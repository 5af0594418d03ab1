//! The admin page over HTTP: login and sessions, CSRF, permissions, and every page and form
//! ([`sessions`], [`users`], [`content`]); this file holds what they share.
//! Cookies are handled by hand, as a browser would: the login form's CSRF cookie, then the
//! session cookie.

use reqwest::{
    Method,
    header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE},
};
use serde_json::json;

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, Conversation, PASSWORD, TestApp, parts, spawn_app, spawn_app_with,
};

/// An answer of the admin page.
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    async fn read(response: reqwest::Response) -> Page {
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.expect("read the page"),
        }
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location on a {} answer: {}", self.status, self.body))
    }

    /// A `303 See Other` to a location starting with `to`.
    fn assert_redirect(&self, to: &str) {
        assert_eq!(
            self.status, 303,
            "expected a redirect to {to}: {}",
            self.body
        );
        assert!(
            self.location().starts_with(to),
            "redirected to {}, expected {to}",
            self.location()
        );
    }

    /// A page with `status` that says `text`.
    fn assert_shows(&self, status: u16, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(text), "{text:?} not in:\n{}", self.body);
    }

    /// The `Set-Cookie` line for `name`, if the answer sets it.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value a `Set-Cookie` gives `name`.
    fn cookie_value(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let value = line.split(';').next()?.split_once('=')?.1.to_owned();
        (!value.is_empty()).then_some(value)
    }

    /// The value of the first hidden `csrf_token` field.
    fn csrf(&self) -> String {
        field_value(&self.body, "csrf_token")
    }
}

/// The `value` of the input named `name` in a page.
fn field_value(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in:\n{body}"));
    let rest = &body[at..];
    let start = rest.find("value=\"").expect("a value") + 7;
    let end = rest[start..].find('"').expect("the value's end");
    rest[start..start + end].to_owned()
}

fn send(app: &TestApp, method: Method, path: &str, cookies: &str) -> reqwest::RequestBuilder {
    let builder = app.client.request(method, format!("{}{path}", app.address));
    if cookies.is_empty() {
        builder
    } else {
        builder.header(COOKIE, cookies)
    }
}

/// `GET /admin/login/` without cookies: the page and its CSRF cookie value.
async fn login_form(app: &TestApp) -> (Page, String) {
    let page = Page::read(
        send(app, Method::GET, "/admin/login/", "")
            .send()
            .await
            .expect("get the login form"),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = page
        .cookie_value("admin_csrf")
        .expect("the login form sets its CSRF cookie");
    (page, cookie)
}

/// Posts the login form the way a browser would (CSRF cookie and field).
async fn submit_login(app: &TestApp, username: &str, password: &str, next: &str) -> Page {
    let (form, cookie) = login_form(app).await;
    let fields = [
        ("csrf_token", form.csrf()),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
        ("next", next.to_owned()),
    ];
    Page::read(
        send(
            app,
            Method::POST,
            "/admin/login/",
            &format!("admin_csrf={cookie}"),
        )
        .form(&fields)
        .send()
        .await
        .expect("post the login form"),
    )
    .await
}

/// A signed-in admin session.
struct Admin<'a> {
    app: &'a TestApp,
    session: String,
    csrf: String,
}

impl<'a> Admin<'a> {
    async fn log_in(app: &'a TestApp, username: &str, password: &str) -> Admin<'a> {
        let page = submit_login(app, username, password, "").await;
        page.assert_redirect("/admin/");
        let session = page
            .cookie_value("admin_session")
            .expect("a session cookie");
        let mut admin = Admin {
            app,
            session,
            csrf: String::new(),
        };
        let home = admin.get("/admin/").await;
        assert_eq!(home.status, 200, "{}", home.body);
        admin.csrf = home.csrf();
        admin
    }

    async fn superuser(app: &'a TestApp) -> Admin<'a> {
        Admin::log_in(app, ADMIN, ADMIN_PASSWORD).await
    }

    fn cookies(&self) -> String {
        format!("admin_session={}", self.session)
    }

    async fn get(&self, path: &str) -> Page {
        Page::read(
            send(self.app, Method::GET, path, &self.cookies())
                .send()
                .await
                .expect("get an admin page"),
        )
        .await
    }

    /// A page that must answer 200.
    async fn page(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "GET {path}: {}", page.body);
        page.body
    }

    /// Posts a form with the session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &self.csrf));
        self.post_raw(path, &fields).await
    }

    /// Posts a form exactly as given (no CSRF token added).
    async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        Page::read(
            send(self.app, Method::POST, path, &self.cookies())
                .form(fields)
                .send()
                .await
                .expect("post an admin form"),
        )
        .await
    }

    /// Whether the session still opens admin pages.
    async fn is_signed_in(&self) -> bool {
        let page = self.get("/admin/").await;
        match page.status {
            200 => true,
            303 => {
                page.assert_redirect("/admin/login/");
                false
            }
            other => panic!("unexpected {other}: {}", page.body),
        }
    }
}

/// Every admin page, with ids of things that exist when `ids` come from a conversation.
fn pages(user: i64, thread: i64, message: i64) -> Vec<String> {
    vec![
        "/admin/".into(),
        "/admin/users/".into(),
        "/admin/users/add/".into(),
        format!("/admin/users/{user}/"),
        format!("/admin/users/{user}/password/"),
        format!("/admin/users/{user}/delete/"),
        "/admin/threads/".into(),
        format!("/admin/threads/{thread}/"),
        format!("/admin/threads/{thread}/delete/"),
        "/admin/messages/".into(),
        format!("/admin/messages/{message}/delete/"),
    ]
}

/// Every admin form that changes something, with fields that would be accepted.
fn forms(user: i64, thread: i64, message: i64) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            "/admin/users/add/".into(),
            vec![
                ("username", "mallory"),
                ("password", "Mallory-pass-1"),
                ("password2", "Mallory-pass-1"),
            ],
        ),
        (
            format!("/admin/users/{user}/"),
            vec![("username", "renamed"), ("email", "x@example.com")],
        ),
        (
            format!("/admin/users/{user}/password/"),
            vec![
                ("password", "Other-pass-99"),
                ("password2", "Other-pass-99"),
            ],
        ),
        (format!("/admin/users/{user}/delete/"), vec![]),
        (format!("/admin/threads/{thread}/delete/"), vec![]),
        (format!("/admin/messages/{message}/delete/"), vec![]),
    ]
}

/// Alice and Bob with a thread and one message from Alice; returns it and the message id.
async fn conversation_with_message(app: &TestApp) -> (Conversation, i64) {
    let conversation = app.conversation().await;
    let messages = app
        .post_messages(&conversation.alice, conversation.thread_id, &["Hello Bob"])
        .await;
    (conversation, crate::helpers::id(&messages[0]))
}

/// Asserts nothing any form of [`forms`] would do has happened.
async fn assert_untouched(app: &TestApp, conversation: &Conversation) {
    let token = app.admin_token().await;
    let (status, user) = parts(
        app.get(
            &format!("/api/users/{}/", conversation.bob_id),
            Some(&token),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "bob still exists");
    assert_eq!(user["username"], "bob");
    assert_eq!(user["email"], "");
    assert_eq!(app.message_count(&token, conversation.thread_id).await, 1);
    let page = app.get_ok("/api/users/?search=mallory", &token).await;
    assert_eq!(page["count"], 0, "nobody was added");
    app.token("bob", PASSWORD).await;
}

mod content;
mod sessions;
mod users;
